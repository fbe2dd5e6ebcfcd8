//! The console users of one extension (role `extension-user`): the people
//! who log in to change its call settings and use its web phone.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use crate::api;
use crate::model::ConsoleUser;
use crate::state::AppState;
use crate::ui::{self, FieldErrors};

/// The extension's users, with a form to add one and a button to remove
/// each.
#[component]
pub fn ExtensionUsers(
    /// Extension number.
    number: String,
) -> impl IntoView {
    let state = AppState::get();
    let number = StoredValue::new(number);
    let users = RwSignal::new(Vec::<ConsoleUser>::new());
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        reload.track();
        spawn_local(async move {
            match api::get::<Vec<ConsoleUser>>("/users").await {
                Ok(list) => users.set(
                    list.into_iter()
                        .filter(|u| u.extension.as_deref() == Some(number.get_value().as_str()))
                        .collect(),
                ),
                Err(e) => state.fail(&e),
            }
        });
    });
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let errors = FieldErrors::new();
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let body = json!({
            "email": email.get_untracked().trim(),
            "password": password.get_untracked(),
            "role": "extension-user",
            "extension": number.get_value(),
        });
        spawn_local(async move {
            match api::post::<_, ConsoleUser>("/users", &body).await {
                Ok(u) => {
                    state.done(format!(
                        "{} may now log in as extension {}.",
                        u.email,
                        number.get_value()
                    ));
                    email.set(String::new());
                    password.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(e) => errors.fail(&state, &e),
            }
        });
    };
    let remove = move |address: String| {
        if !ui::confirm(&format!(
            "Remove console user {address}? They are logged out at once."
        )) {
            return;
        }
        spawn_local(async move {
            match api::delete(&format!("/users/{}", api::encode(&address)), None).await {
                Ok(()) => {
                    state.done(format!("{address} removed."));
                    reload.update(|r| *r += 1);
                }
                Err(e) => state.fail(&e),
            }
        });
    };
    view! {
        <div class="card" data-testid="extension-users">
            <h2>"Console users of this extension"</h2>
            <p class="hint">
                "They log in to the console to change this extension's forwarding, do not disturb, \
                 follow-me and voicemail, and to use its web phone; nothing else."
            </p>
            <ul>
                <For
                    each=move || users.get()
                    key=|u| u.email.clone()
                    children=move |u| {
                        let address = u.email.clone();
                        view! {
                            <li data-testid=format!("extension-user-{}", u.email)>
                                {u.email.clone()}
                                " "
                                <button
                                    type="button"
                                    class="danger writes"
                                    on:click=move |_| remove(address.clone())
                                >
                                    "Remove"
                                </button>
                            </li>
                        }
                    }
                />
            </ul>
            <form class="inline-form writes" on:submit=add>
                <label>
                    "E-mail"
                    <input type="email" required data-testid="extension-user-email" bind:value=email/>
                    {errors.view("email")}
                </label>
                <label>
                    "Password"
                    <input
                        type="password"
                        required
                        autocomplete="new-password"
                        data-testid="extension-user-password"
                        bind:value=password
                    />
                    {errors.view("password")}
                </label>
                <button type="submit" class="primary" data-testid="extension-user-add">
                    "Add user"
                </button>
                {errors.view_others(&["email", "password"])}
            </form>
        </div>
    }
}
