//! The BLF grid: one tile per extension, coloured by its live status.
//!
//! The tiles are a keyed `<For>` over the numbers; each tile reads only its
//! own presence signal, so a `presence` event repaints one tile, and the
//! grid is diffed only when an extension appears.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::{Presence, Status};
use crate::route::{Route, Tab};
use crate::state::AppState;

/// The dashboard page.
#[component]
pub fn Dashboard() -> impl IntoView {
    let state = AppState::get();
    let loaded = RwSignal::new(false);
    spawn_local(async move {
        match api::get::<Vec<Presence>>("/presence").await {
            Ok(all) => state.presence.load(&all),
            Err(e) => state.fail(&e),
        }
        loaded.set(true);
    });
    let numbers = state.presence.numbers();
    let summary = move || {
        let n = numbers.with(Vec::len);
        format!("{n} extensions")
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Dashboard"</h1>
                <span class="hint" data-testid="blf-count">{summary}</span>
                <span class="spacer"></span>
                <Legend/>
            </div>
            {move || {
                (loaded.get() && numbers.with(Vec::is_empty))
                    .then(|| view! { <p class="empty">"No extensions yet."</p> })
            }}
            <div class="blf" data-testid="blf-grid">
                <For each=move || numbers.get() key=|n| n.clone() let:number>
                    <Tile number/>
                </For>
            </div>
        </section>
    }
}

/// One extension's tile.
#[component]
fn Tile(number: String) -> impl IntoView {
    let live = AppState::get().presence.signal(&number);
    // Memos: a change of the device count does not repaint the colour.
    let status = {
        let live = live.clone();
        Memo::new(move |_| live.get().status)
    };
    let devices = Memo::new(move |_| live.get().devices);
    let href = Route::Extension(number.clone(), Tab::General).href();
    view! {
        <a
            href=href
            class=move || format!("tile tile-{}", status.get().as_str())
            data-testid=format!("blf-{number}")
            data-status=move || status.get().as_str()
            title=move || status.get().label()
        >
            <span class="tile-number">{number.clone()}</span>
            <span class="tile-devices">
                {move || match devices.get() {
                    0 => String::new(),
                    1 => "1 device".to_string(),
                    n => format!("{n} devices"),
                }}
            </span>
        </a>
    }
}

/// What the colours mean.
#[component]
fn Legend() -> impl IntoView {
    let items = [
        Status::Online,
        Status::Ringing,
        Status::InUse,
        Status::Dnd,
        Status::Away,
        Status::Offline,
    ]
    .into_iter()
    .map(|s| {
        view! {
            <span class="legend-item">
                <span class=format!("dot dot-{}", s.as_str())></span>
                {s.label()}
            </span>
        }
    })
    .collect_view();
    view! { <div class="legend">{items}</div> }
}
