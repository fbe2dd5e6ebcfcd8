//! Routing policies: the versions, upload, activate, roll back (activate
//! an earlier version), deactivate, and trying a decision.

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};

use crate::api;
use crate::model::Policy;
use crate::state::AppState;
use crate::ui;

/// The policies page.
#[component]
pub fn Policies() -> impl IntoView {
    let state = AppState::get();
    let policies = RwSignal::new(Vec::<Policy>::new());
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        reload.track();
        spawn_local(async move {
            match api::get::<Vec<Policy>>("/policies").await {
                Ok(mut list) => {
                    list.sort_by_key(|p| std::cmp::Reverse(p.version));
                    policies.set(list);
                }
                Err(e) => state.fail(&e),
            }
        });
    });
    let active = move || policies.with(|l| l.iter().find(|p| p.active).map(|p| p.version));
    let activate = move |version: u32| {
        spawn_local(async move {
            match api::post_unit(&format!("/policies/{version}/activate"), &json!({})).await {
                Ok(_) => {
                    state.done(format!("Version {version} now decides the tenant's calls."));
                    reload.update(|r| *r += 1);
                }
                Err(e) => state.fail(&e),
            }
        });
    };
    let deactivate = move |_| {
        if !ui::confirm("Return to the built-in policy?") {
            return;
        }
        spawn_local(async move {
            match api::post_unit("/policies/deactivate", &json!({})).await {
                Ok(_) => {
                    state.done("The built-in policy decides the tenant's calls.");
                    reload.update(|r| *r += 1);
                }
                Err(e) => state.fail(&e),
            }
        });
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Policies"</h1>
                <span class="hint" data-testid="policy-active">
                    {move || match active() {
                        Some(v) => format!("Version {v} is active."),
                        None => "The built-in policy is active.".to_string(),
                    }}
                </span>
                <span class="spacer"></span>
                <button
                    class="danger writes"
                    data-testid="policy-deactivate"
                    disabled=move || active().is_none()
                    on:click=deactivate
                >
                    "Deactivate"
                </button>
            </div>
            <Upload reload/>
            <table class="grid" data-testid="policies-table">
                <thead>
                    <tr>
                        <th>"Version"</th>
                        <th>"Hash"</th>
                        <th>"Size"</th>
                        <th>"Uploader"</th>
                        <th>"Uploaded"</th>
                        <th>"State"</th>
                        <th>"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || policies.get()
                        key=|p| format!("{p:?}")
                        children=move |p| {
                            let version = p.version;
                            let label = move || match active() {
                                Some(a) if a > version => "Roll back",
                                _ => "Activate",
                            };
                            let state_text = if p.active {
                                "active".to_string()
                            } else if let Some(r) = &p.deactivated_reason {
                                format!("deactivated: {r}")
                            } else {
                                String::new()
                            };
                            view! {
                                <tr data-testid=format!("policy-row-{version}") class:active-row=p.active>
                                    <td>{version}</td>
                                    <td class="mono" title=p.hash.clone()>{p.hash.chars().take(12).collect::<String>()}</td>
                                    <td class="num">{format_size(p.size)}</td>
                                    <td>{p.uploader.clone()}</td>
                                    <td>{ui::local_time(&p.uploaded_at)}</td>
                                    <td>{state_text}</td>
                                    <td class="actions">
                                        {(!p.active).then(|| view! {
                                            <button
                                                class="writes"
                                                data-testid=format!("policy-activate-{version}")
                                                on:click=move |_| activate(version)
                                            >
                                                {label}
                                            </button>
                                        })}
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            {move || {
                policies.with(Vec::is_empty).then(|| view! { <p class="empty">"No policy uploaded."</p> })
            }}
            <TryDecision policies/>
        </section>
    }
}

fn format_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else if bytes >= 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// Uploads a `.wasm` file as the next version (`POST /policies`).
#[component]
fn Upload(reload: RwSignal<u32>) -> impl IntoView {
    let state = AppState::get();
    let file = NodeRef::<Input>::new();
    let activate = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(f) = ui::chosen_file(&file) else {
            state.error.set(Some("Choose a .wasm file first.".into()));
            return;
        };
        busy.set(true);
        let path = format!("/policies?activate={}", activate.get_untracked());
        spawn_local(async move {
            match api::post_body::<Value>(&path, "application/wasm", f).await {
                Ok(p) => {
                    match p.get("version").and_then(Value::as_u64) {
                        Some(v) => state.done(format!("Uploaded as version {v}.")),
                        None => state.done("Uploaded."),
                    }
                    reload.update(|r| *r += 1);
                }
                Err(e) => state.fail(&e),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card inline-form writes" on:submit=submit>
            <label>
                "Policy (.wasm)"
                <input type="file" accept=".wasm,application/wasm" node_ref=file data-testid="policy-file"/>
            </label>
            <label class="check">
                <input type="checkbox" bind:checked=activate data-testid="policy-upload-activate"/>
                "Activate at once"
            </label>
            <button type="submit" class="primary" disabled=busy data-testid="policy-upload">
                "Upload"
            </button>
        </form>
    }
}

/// Asks a policy what it would decide (`POST /policies/try`).
#[component]
fn TryDecision(policies: RwSignal<Vec<Policy>>) -> impl IntoView {
    let state = AppState::get();
    let caller = RwSignal::new(String::new());
    let dialled = RwSignal::new(String::new());
    let version = RwSignal::new(String::new());
    let result = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let version: Option<u32> = version.get_untracked().parse().ok();
        let body = json!({
            "version": version,
            "call": { "caller": caller.get_untracked().trim(), "dialled": dialled.get_untracked().trim() },
        });
        spawn_local(async move {
            match api::post::<_, Value>("/policies/try", &body).await {
                Ok(v) => {
                    state.clear_banner();
                    result.set(Some(
                        serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string()),
                    ));
                }
                Err(e) => {
                    result.set(None);
                    state.fail(&e);
                }
            }
        });
    };
    view! {
        <form class="card form writes" on:submit=submit data-testid="policy-try-form">
            <h2>"Try a decision"</h2>
            <label>
                "Policy"
                <select on:change=move |ev| version.set(event_target_value(&ev)) data-testid="policy-try-version">
                    <option value="">"The active one"</option>
                    <For
                        each=move || policies.get()
                        key=|p| p.version
                        children=move |p| view! { <option value=p.version.to_string()>{format!("Version {}", p.version)}</option> }
                    />
                </select>
            </label>
            <label>"Caller"<input required placeholder="100" bind:value=caller data-testid="policy-try-caller"/></label>
            <label>"Dialled number"<input required placeholder="200" bind:value=dialled data-testid="policy-try-dialled"/></label>
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="policy-try-submit">"Try"</button>
            </div>
            {move || result.get().map(|r| view! { <pre class="json" data-testid="policy-try-result">{r}</pre> })}
        </form>
    }
}
