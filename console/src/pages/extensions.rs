//! The extensions list: server-side search, sort and paging, live status
//! dots, per-row actions, bulk actions and the "New extension" form.

use std::collections::BTreeSet;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use crate::api;
use crate::model::{BulkResult, Extension, ExtensionPage, Password, Presence};
use crate::route::{Route, Tab};
use crate::state::AppState;
use crate::ui::{self, FieldErrors, StatusDot};

/// Rows per page.
const PER_PAGE: u32 = 50;

/// A sortable column: its API name and its header.
const COLUMNS: [(&str, &str); 6] = [
    ("number", "Number"),
    ("name", "Name"),
    ("status", "Status"),
    ("username", "Username"),
    ("voicemail", "Voicemail"),
    ("devices", "Devices"),
];

/// A password to show once, with the extension it belongs to.
#[derive(Clone, PartialEq)]
struct Secret {
    number: String,
    password: String,
    why: &'static str,
}

/// The extensions list page.
#[component]
pub fn Extensions() -> impl IntoView {
    let state = AppState::get();
    let search = RwSignal::new(String::new());
    let query = RwSignal::new(String::new());
    let sort = RwSignal::new("number");
    let descending = RwSignal::new(false);
    let page = RwSignal::new(1u32);
    let data = RwSignal::new(ExtensionPage::default());
    let loading = RwSignal::new(true);
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let reload = RwSignal::new(0u32);
    let secret = RwSignal::new(None::<Secret>);
    let show_new = RwSignal::new(false);
    // Answers older than the latest request are dropped.
    let sequence = StoredValue::new(0u32);

    Effect::new(move |_| {
        let path = format!(
            "/extensions?q={}&sort={}&order={}&page={}&per_page={PER_PAGE}",
            api::encode(&query.get()),
            sort.get(),
            if descending.get() { "desc" } else { "asc" },
            page.get(),
        );
        reload.track();
        sequence.update_value(|s| *s += 1);
        let mine = sequence.try_get_value();
        loading.set(true);
        spawn_local(async move {
            let answer = api::get::<ExtensionPage>(&path).await;
            // Also true when the page was left meanwhile.
            if sequence.try_get_value() != mine {
                return;
            }
            loading.set(false);
            match answer {
                Ok(p) => {
                    for e in &p.items {
                        let live = Presence {
                            extension: e.number.clone(),
                            status: e.status,
                            devices: e.devices,
                        };
                        state.presence.set(&live, false);
                    }
                    // Selections stay only for rows still listed.
                    selected.update(|s| s.retain(|n| p.items.iter().any(|e| &e.number == n)));
                    data.set(p);
                }
                Err(e) => state.fail(&e),
            }
        });
    });

    // Searching waits for a pause in typing.
    let mut apply = debounce(Duration::from_millis(250), move |text: String| {
        page.set(1);
        query.set(text.trim().to_string());
    });
    let on_search = move |ev| {
        let text = event_target_value(&ev);
        search.set(text.clone());
        apply(text);
    };

    let headers = COLUMNS
        .into_iter()
        .map(|(key, label)| {
            let click = move |_| {
                if sort.get_untracked() == key {
                    descending.update(|d| *d = !*d);
                } else {
                    sort.set(key);
                    descending.set(false);
                }
                page.set(1);
            };
            let arrow = move || match (sort.get() == key, descending.get()) {
                (false, _) => "",
                (true, false) => " ▲",
                (true, true) => " ▼",
            };
            view! {
                <th class="sortable" on:click=click data-testid=format!("sort-{key}")>
                    {label}
                    {arrow}
                </th>
            }
        })
        .collect_view();

    let pages = move || data.with(|d| d.total.div_ceil(PER_PAGE).max(1));
    let all_selected = move || {
        data.with(|d| {
            !d.items.is_empty() && selected.with(|s| d.items.iter().all(|e| s.contains(&e.number)))
        })
    };
    let toggle_all = move |ev| {
        let on = event_target_checked(&ev);
        let numbers: Vec<String> =
            data.with_untracked(|d| d.items.iter().map(|e| e.number.clone()).collect());
        selected.update(|s| {
            for n in numbers {
                if on {
                    s.insert(n);
                } else {
                    s.remove(&n);
                }
            }
        });
    };

    let row_actions = RowActions {
        secret,
        reload,
        selected,
    };

    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Extensions"</h1>
                <input
                    type="search"
                    placeholder="Search number, name, username, alias"
                    data-testid="ext-search"
                    prop:value=search
                    on:input=on_search
                />
                <span class="spacer"></span>
                <button
                    class="primary writes"
                    data-testid="new-ext-toggle"
                    on:click=move |_| show_new.update(|s| *s = !*s)
                >
                    "New extension"
                </button>
            </div>
            <Show when=move || show_new.get()>
                <NewExtension secret reload/>
            </Show>
            {move || secret.get().map(|s| view! { <SecretBox secret=s on_close=move || secret.set(None)/> })}
            <BulkBar selected reload/>
            <table class="grid" data-testid="ext-table">
                <thead>
                    <tr>
                        <th class="check">
                            <input
                                type="checkbox"
                                title="Select all on this page"
                                data-testid="ext-select-all"
                                prop:checked=all_selected
                                on:change=toggle_all
                            />
                        </th>
                        {headers}
                        <th>"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || data.get().items
                        key=|e| (e.number.clone(), e.name.clone(), e.username.clone(), e.voicemail.enabled)
                        children=move |e| view! { <ExtensionRow ext=e actions=row_actions/> }
                    />
                </tbody>
            </table>
            {move || {
                (!loading.get() && data.with(|d| d.items.is_empty()))
                    .then(|| view! { <p class="empty">"No extension matches."</p> })
            }}
            <div class="pager">
                <button
                    data-testid="ext-prev"
                    disabled=move || { page.get() <= 1 }
                    on:click=move |_| page.update(|p| *p = p.saturating_sub(1).max(1))
                >
                    "‹ Previous"
                </button>
                <span data-testid="ext-page">
                    {move || {
                        format!("Page {} of {} · {} extensions", page.get(), pages(), data.with(|d| d.total))
                    }}
                </span>
                <button
                    data-testid="ext-next"
                    disabled=move || { page.get() >= pages() }
                    on:click=move |_| page.update(|p| *p += 1)
                >
                    "Next ›"
                </button>
            </div>
        </section>
    }
}

/// What a row's actions change on the page.
#[derive(Clone, Copy)]
struct RowActions {
    secret: RwSignal<Option<Secret>>,
    reload: RwSignal<u32>,
    selected: RwSignal<BTreeSet<String>>,
}

/// One extension of the list.
#[component]
fn ExtensionRow(ext: Extension, actions: RowActions) -> impl IntoView {
    let state = AppState::get();
    let RowActions {
        secret,
        reload,
        selected,
    } = actions;
    let number = ext.number.clone();
    let live = state.presence.signal(&number);
    let checked = {
        let n = number.clone();
        move || selected.with(|s| s.contains(&n))
    };
    let toggle = {
        let n = number.clone();
        move |ev| {
            let on = event_target_checked(&ev);
            selected.update(|s| {
                if on {
                    s.insert(n.clone());
                } else {
                    s.remove(&n);
                }
            });
        }
    };
    let copy_password = {
        let n = number.clone();
        move |_| {
            let n = n.clone();
            spawn_local(async move {
                match api::get::<Password>(&format!("/extensions/{}/password", api::encode(&n)))
                    .await
                {
                    Ok(p) => match ui::copy(&p.password).await {
                        Ok(()) => state.done(format!("Password of {n} copied to the clipboard.")),
                        Err(e) => state.error.set(Some(e)),
                    },
                    Err(e) => state.fail(&e),
                }
            });
        }
    };
    let reset_password = {
        let n = number.clone();
        move |_| {
            if !ui::confirm(&format!(
                "Reset the SIP password of {n}? Its devices must be given the new one."
            )) {
                return;
            }
            let n = n.clone();
            spawn_local(async move {
                let path = format!("/extensions/{}/password", api::encode(&n));
                match api::post::<_, Password>(&path, &json!({})).await {
                    Ok(p) => {
                        state.clear_banner();
                        secret.set(Some(Secret {
                            number: n,
                            password: p.password,
                            why: "New password",
                        }));
                    }
                    Err(e) => state.fail(&e),
                }
            });
        }
    };
    let delete = {
        let (n, shown) = (number.clone(), ext.etag.clone());
        move |_| {
            if !ui::confirm(&format!(
                "Delete extension {n}? Its devices are unregistered."
            )) {
                return;
            }
            let (n, shown) = (n.clone(), shown.clone());
            spawn_local(async move {
                let path = format!("/extensions/{}", api::encode(&n));
                match api::delete(&path, ui::opt(&shown).as_deref()).await {
                    Ok(()) => {
                        state.done(format!("Extension {n} deleted."));
                        reload.update(|r| *r += 1);
                    }
                    Err(e) => state.fail_write(&e, &format!("extension {n}")),
                }
            });
        }
    };
    let href = Route::Extension(number.clone(), Tab::General).href();
    let devices = move || live.get().devices;
    view! {
        <tr data-testid=format!("ext-row-{number}")>
            <td class="check">
                <input
                    type="checkbox"
                    data-testid=format!("ext-select-{number}")
                    prop:checked=checked
                    on:change=toggle
                />
            </td>
            <td>
                <a href=href.clone()>{number.clone()}</a>
            </td>
            <td>{ext.name.clone()}</td>
            <td>
                <StatusDot number=number.clone()/>
            </td>
            <td class="mono">{ext.username.clone()}</td>
            <td>{if ext.voicemail.enabled { "on" } else { "off" }}</td>
            <td class="num">{devices}</td>
            <td class="actions">
                <a class="button" href=href data-testid=format!("ext-edit-{number}")>
                    {move || if state.read_only() { "View" } else { "Edit" }}
                </a>
                <button class="writes" on:click=copy_password data-testid=format!("ext-copy-{number}")>
                    "Copy password"
                </button>
                <button class="writes" on:click=reset_password data-testid=format!("ext-reset-{number}")>
                    "Reset password"
                </button>
                <button class="danger writes" on:click=delete data-testid=format!("ext-delete-{number}")>
                    "Delete"
                </button>
            </td>
        </tr>
    }
}

/// The actions on the selected extensions.
#[component]
fn BulkBar(selected: RwSignal<BTreeSet<String>>, reload: RwSignal<u32>) -> impl IntoView {
    let state = AppState::get();
    let bulk = move |action: &'static str| {
        let numbers: Vec<String> = selected.get_untracked().into_iter().collect();
        if action == "delete" && !ui::confirm(&format!("Delete {} extensions?", numbers.len())) {
            return;
        }
        spawn_local(async move {
            let body = json!({ "numbers": numbers, "action": action });
            match api::post::<_, BulkResult>("/extensions/bulk", &body).await {
                Ok(r) => {
                    state.done(format!("{} extensions changed.", r.affected));
                    if action == "delete" {
                        selected.set(BTreeSet::new());
                    }
                    reload.update(|r| *r += 1);
                }
                Err(e) => state.fail(&e),
            }
        });
    };
    let export = move |_| {
        let numbers: Vec<String> = selected.get_untracked().into_iter().collect();
        let path = format!(
            "/extensions/export.csv?numbers={}",
            api::encode(&numbers.join(","))
        );
        ui::export_csv(state, path, "extensions.csv");
    };
    view! {
        <Show when=move || selected.with(|s| !s.is_empty())>
            <div class="bulkbar" data-testid="bulk-bar">
                <span data-testid="bulk-count">
                    {move || format!("{} selected", selected.with(BTreeSet::len))}
                </span>
                <button class="danger writes" data-testid="bulk-delete" on:click=move |_| bulk("delete")>
                    "Delete"
                </button>
                <button class="writes" data-testid="bulk-voicemail-on" on:click=move |_| bulk("voicemail_on")>
                    "Voicemail on"
                </button>
                <button class="writes" data-testid="bulk-voicemail-off" on:click=move |_| bulk("voicemail_off")>
                    "Voicemail off"
                </button>
                <button data-testid="bulk-export" on:click=export>
                    "Export CSV"
                </button>
                <button class="link" on:click=move |_| selected.set(BTreeSet::new())>
                    "Clear selection"
                </button>
            </div>
        </Show>
    }
}

/// The form that creates an extension.
#[component]
fn NewExtension(secret: RwSignal<Option<Secret>>, reload: RwSignal<u32>) -> impl IntoView {
    let state = AppState::get();
    let number = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let errors = FieldErrors::new();
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let mut body = json!({
            "number": number.get_untracked().trim(),
            "name": name.get_untracked().trim(),
        });
        if let Some(p) = ui::opt(&password.get_untracked()) {
            body["password"] = json!(p);
        }
        busy.set(true);
        spawn_local(async move {
            match api::post::<_, Extension>("/extensions", &body).await {
                Ok(ext) => {
                    state.done(format!("Extension {} created.", ext.number));
                    if let Some(p) = ext.password {
                        secret.set(Some(Secret {
                            number: ext.number,
                            password: p,
                            why: "Password",
                        }));
                    }
                    number.set(String::new());
                    name.set(String::new());
                    password.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => errors.fail(&state, &e),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card inline-form" on:submit=submit data-testid="new-ext-form">
            <label>
                "Number"
                <input required data-testid="new-ext-number" bind:value=number/>
                {errors.view("number")}
            </label>
            <label>
                "Name"
                <input required data-testid="new-ext-name" bind:value=name/>
                {errors.view("name")}
            </label>
            <label>
                "Password (optional)"
                <input
                    type="text"
                    autocomplete="off"
                    placeholder="generated when empty"
                    data-testid="new-ext-password-input"
                    bind:value=password
                />
                {errors.view("password")}
            </label>
            <button type="submit" class="primary" data-testid="new-ext-submit" disabled=busy>
                "Create"
            </button>
        </form>
    }
}

/// A password shown once, with a copy button.
#[component]
fn SecretBox(secret: Secret, on_close: impl Fn() + Send + Sync + 'static) -> impl IntoView {
    let state = AppState::get();
    let password = secret.password.clone();
    let copy = move |_| {
        let password = password.clone();
        spawn_local(async move {
            match ui::copy(&password).await {
                Ok(()) => state.done("Password copied to the clipboard."),
                Err(e) => state.error.set(Some(e)),
            }
        });
    };
    view! {
        <div class="card secret" data-testid="ext-secret">
            <span>{format!("{} of {}: ", secret.why, secret.number)}</span>
            <code data-testid="new-ext-password">{secret.password.clone()}</code>
            <button on:click=copy>"Copy"</button>
            <span class="hint">"It is shown only now."</span>
            <button class="link" on:click=move |_| on_close()>
                "Dismiss"
            </button>
        </div>
    }
}
