//! API keys: list, create (the key is shown once), revoke.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use crate::api;
use crate::model::ApiKey;
use crate::state::AppState;
use crate::ui::{self, FieldErrors, OneTimeSecret};

/// The API keys page.
#[component]
pub fn ApiKeys() -> impl IntoView {
    let state = AppState::get();
    let keys = RwSignal::new(Vec::<ApiKey>::new());
    let reload = RwSignal::new(0u32);
    let created = RwSignal::new(None::<ApiKey>);
    Effect::new(move |_| {
        reload.track();
        spawn_local(async move {
            match api::get::<Vec<ApiKey>>("/api-keys").await {
                Ok(list) => keys.set(list),
                Err(e) => state.fail(&e),
            }
        });
    });
    let name = RwSignal::new(String::new());
    let read_only = RwSignal::new(false);
    let errors = FieldErrors::new();
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let body =
            json!({ "name": name.get_untracked().trim(), "read_only": read_only.get_untracked() });
        spawn_local(async move {
            match api::post::<_, ApiKey>("/api-keys", &body).await {
                Ok(k) => {
                    state.done(format!("API key {} created.", k.name));
                    name.set(String::new());
                    created.set(Some(k));
                    reload.update(|r| *r += 1);
                }
                Err(e) => errors.fail(&state, &e),
            }
        });
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"API keys"</h1>
            </div>
            <form class="card inline-form writes" on:submit=create>
                <label>
                    "Name"
                    <input required data-testid="apikey-name" bind:value=name/>
                    {errors.view("name")}
                </label>
                <label class="check">
                    <input type="checkbox" data-testid="apikey-read-only" bind:checked=read_only/>
                    "Read-only"
                </label>
                <button type="submit" class="primary" data-testid="apikey-create">
                    "Create key"
                </button>
                {errors.view_others(&["name", "read_only"])}
            </form>
            {move || {
                created
                    .get()
                    .map(|k| {
                        view! {
                            <OneTimeSecret
                                what=format!("Key {}", k.name)
                                secret=k.key.unwrap_or_default()
                                testid="apikey-secret"
                                value_testid="apikey-key"
                                dismiss=move || created.set(None)
                            />
                        }
                    })
            }}
            <table class="grid" data-testid="apikeys-table">
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Access"</th>
                        <th>"Created"</th>
                        <th>"Last used"</th>
                        <th>"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || keys.get()
                        key=|k| format!("{k:?}")
                        children=move |k| {
                            let (id, name) = (k.id.clone(), k.name.clone());
                            let revoke = move |_| {
                                if !ui::confirm(&format!("Revoke API key {name}? Programs using it lose access at once.")) {
                                    return;
                                }
                                let (id, name) = (id.clone(), name.clone());
                                spawn_local(async move {
                                    match api::delete(&format!("/api-keys/{}", api::encode(&id)), None).await {
                                        Ok(()) => {
                                            state.done(format!("API key {name} revoked."));
                                            reload.update(|r| *r += 1);
                                        }
                                        Err(e) => state.fail(&e),
                                    }
                                });
                            };
                            view! {
                                <tr data-testid=format!("apikey-row-{}", k.id)>
                                    <td>{k.name.clone()}</td>
                                    <td>{if k.read_only { "read-only" } else { "read-write" }}</td>
                                    <td>{ui::local_time(&k.created_at)}</td>
                                    <td>{k.last_used_at.as_deref().map(ui::local_time).unwrap_or_else(|| "never".into())}</td>
                                    <td class="actions">
                                        <button class="danger writes" on:click=revoke data-testid=format!("apikey-revoke-{}", k.id)>
                                            "Revoke"
                                        </button>
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            {move || keys.with(Vec::is_empty).then(|| view! { <p class="empty">"No API keys."</p> })}
        </section>
    }
}
