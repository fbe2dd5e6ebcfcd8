//! The web phone page: the logged-in user's extension (an extension user)
//! or one they pick (an administrator) registers over the SIP WebSocket,
//! dials, answers, holds, mutes and sends keys, with the audio in an
//! `RTCPeerConnection`. The credentials come from the API for this page
//! and stay in its memory; leaving the page unregisters.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::{ExtensionPage, WebPhone};
use crate::pages::phone_line::{CallState, Line, View};
use crate::state::AppState;

/// The page.
#[component]
pub fn PhonePage() -> impl IntoView {
    let state = AppState::get();
    let own = state.own_extension();
    let choices = RwSignal::new(Vec::<(String, String)>::new());
    let chosen = RwSignal::new(own.clone());
    if own.is_none() {
        spawn_local(async move {
            match api::get::<ExtensionPage>("/extensions?per_page=1000&sort=number").await {
                Ok(page) => {
                    let list: Vec<(String, String)> =
                        page.items.into_iter().map(|e| (e.number, e.name)).collect();
                    if chosen.get_untracked().is_none() {
                        chosen.set(list.first().map(|(n, _)| n.clone()));
                    }
                    choices.set(list);
                }
                Err(e) => state.fail(&e),
            }
        });
    }
    let picker = move || {
        own.is_none().then(|| {
            view! {
                <label>
                    "Extension "
                    <select
                        data-testid="phone-extension"
                        on:change=move |ev| chosen.set(crate::ui::opt(&event_target_value(&ev)))
                    >
                        <For
                            each=move || choices.get()
                            key=|(n, _)| n.clone()
                            children=move |(number, name)| {
                                let selected = {
                                    let number = number.clone();
                                    move || chosen.with(|c| c.as_deref() == Some(number.as_str()))
                                };
                                view! {
                                    <option value=number.clone() prop:selected=selected>
                                        {format!("{number} · {name}")}
                                    </option>
                                }
                            }
                        />
                    </select>
                </label>
            }
        })
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Phone"</h1>
                {picker}
            </div>
            {move || chosen.get().map(|number| view! { <Handset number/> })}
        </section>
    }
}

/// One extension's phone: registered while shown.
#[component]
fn Handset(number: String) -> impl IntoView {
    let state = AppState::get();
    let view = View::new();
    let line: Rc<RefCell<Option<Line>>> = Rc::default();
    let remote_audio = NodeRef::<leptos::html::Audio>::new();
    {
        let line = line.clone();
        spawn_local(async move {
            let path = format!("/extensions/{}/webphone", api::encode(&number));
            match api::get::<WebPhone>(&path).await {
                Ok(credentials) => {
                    *line.borrow_mut() = Some(Line::start(credentials, view, remote_audio));
                }
                Err(e) => {
                    view.registration.set(format!("Not registered: {e}"));
                    state.fail(&e);
                }
            }
        });
    }
    // Runs `act` on the line once it is there.
    let with_line = move |act: &dyn Fn(&Line)| {
        if let Some(l) = line.borrow().as_ref() {
            act(l);
        }
    };
    let with_line = Rc::new(with_line);
    let ticker = {
        let with_line = with_line.clone();
        set_interval_with_handle(
            move || with_line(&Line::tick),
            std::time::Duration::from_secs(1),
        )
        .ok()
    };
    {
        // Kept in the reactive arena: on_cleanup wants a Send closure, and
        // these never leave the browser's one thread.
        let stop = StoredValue::new_local(with_line.clone());
        let ticker = StoredValue::new_local(ticker);
        on_cleanup(move || {
            if let Some(Some(t)) = ticker.try_get_value() {
                t.clear();
            }
            if let Some(with_line) = stop.try_get_value() {
                with_line(&Line::stop);
            }
        });
    }
    let target = RwSignal::new(String::new());
    let dial = {
        let with_line = with_line.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let to = target.get_untracked().trim().to_owned();
            if !to.is_empty() && view.registered.get_untracked() {
                with_line(&|l| l.dial(to.clone()));
            }
        }
    };
    let answer = {
        let with_line = with_line.clone();
        move |_| with_line(&Line::answer)
    };
    let hang_up = {
        let with_line = with_line.clone();
        move |_| with_line(&Line::hang_up)
    };
    let hold = {
        let with_line = with_line.clone();
        move |_| {
            let on = !view.held.get_untracked();
            with_line(&|l| l.hold(on));
        }
    };
    let mute = {
        let with_line = with_line.clone();
        move |_| {
            let on = !view.muted.get_untracked();
            with_line(&|l| l.mute(on));
        }
    };
    let keys = "123456789*0#"
        .chars()
        .map(|key| {
            let with_line = with_line.clone();
            let press = move |_| with_line(&|l| l.press(key));
            view! {
                <button type="button" class="key" data-testid=format!("phone-key-{key}") on:click=press>
                    {key.to_string()}
                </button>
            }
        })
        .collect_view();
    let in_call = move || !matches!(view.call.get(), CallState::Idle(_));
    let up = move || matches!(view.call.get(), CallState::Up { .. });
    let ringing_here = move || matches!(view.call.get(), CallState::Incoming(_));
    view! {
        <div class="card phone" data-testid="phone">
            <p data-testid="phone-registration" data-registered=move || view.registered.get().to_string()>
                {move || view.registration.get()}
            </p>
            <form class="inline-form" on:submit=dial>
                <input
                    data-testid="phone-target"
                    placeholder="Number"
                    bind:value=target
                    disabled=in_call
                />
                <button
                    type="submit"
                    class="primary"
                    data-testid="phone-call"
                    disabled=move || in_call() || !view.registered.get()
                >
                    "Call"
                </button>
            </form>
            <p class="call-state" data-testid="phone-state" data-state=move || state_name(&view.call.get())>
                {move || describe(&view.call.get(), view.now.get(), view.held.get())}
            </p>
            <div class="row">
                <button type="button" class="primary" data-testid="phone-answer" on:click=answer
                    style:display=move || if ringing_here() { "" } else { "none" }>
                    "Answer"
                </button>
                <button type="button" class="danger" data-testid="phone-hangup" on:click=hang_up disabled=move || !in_call()>
                    {move || if ringing_here() { "Decline" } else { "Hang up" }}
                </button>
                <button type="button" data-testid="phone-hold" on:click=hold disabled=move || !up()>
                    {move || if view.held.get() { "Resume" } else { "Hold" }}
                </button>
                <button type="button" data-testid="phone-mute" on:click=mute disabled=move || !up()>
                    {move || if view.muted.get() { "Unmute" } else { "Mute" }}
                </button>
            </div>
            <div class="keypad">{keys}</div>
            <p class="hint" data-testid="phone-stats"
                data-packets=move || view.stats.with(|s| s.as_ref().map(|s| s.packets)).unwrap_or(0)
                data-energy=move || view.stats.with(|s| s.as_ref().map(|s| s.energy)).unwrap_or(0.0)>
                {move || view.stats.with(|s| s.as_ref().map(ToString::to_string))}
            </p>
            <audio node_ref=remote_audio autoplay></audio>
        </div>
    }
}

fn state_name(call: &CallState) -> &'static str {
    match call {
        CallState::Idle(_) => "idle",
        CallState::Calling(_) => "calling",
        CallState::Ringing(_) => "ringing",
        CallState::Incoming(_) => "incoming",
        CallState::Up { .. } => "up",
    }
}

fn describe(call: &CallState, now: f64, held: bool) -> String {
    match call {
        CallState::Idle(None) => "No call.".into(),
        CallState::Idle(Some(why)) => format!("Call ended: {why}."),
        CallState::Calling(peer) => format!("Calling {peer}…"),
        CallState::Ringing(peer) => format!("{peer} is ringing…"),
        CallState::Incoming(caller) => format!("{caller} is calling"),
        CallState::Up { peer, since } => {
            let secs = ((now - since) / 1000.0).max(0.0) as u64;
            format!(
                "{}{peer} · {}:{:02}",
                if held { "On hold: " } else { "In call with " },
                secs / 60,
                secs % 60
            )
        }
    }
}
