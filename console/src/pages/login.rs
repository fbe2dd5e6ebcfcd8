//! The login page (`POST /api/v1/session`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::Serialize;

use crate::api;
use crate::model::Session;
use crate::state::AppState;

#[derive(Serialize)]
struct Credentials {
    email: String,
    password: String,
}

/// Email and password; the problem's detail is shown when they are refused.
#[component]
pub fn Login() -> impl IntoView {
    let state = AppState::get();
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        failure.set(None);
        let credentials = Credentials {
            email: email.get_untracked().trim().to_string(),
            password: password.get_untracked(),
        };
        spawn_local(async move {
            match api::post::<_, Session>("/session", &credentials).await {
                Ok(session) => crate::start_session(state, session),
                Err(e) => failure.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="login card" on:submit=submit>
            <h1>"edgepbx"</h1>
            <label>
                "Email"
                <input
                    type="email"
                    autocomplete="username"
                    required
                    data-testid="login-email"
                    bind:value=email
                />
            </label>
            <label>
                "Password"
                <input
                    type="password"
                    autocomplete="current-password"
                    required
                    data-testid="login-password"
                    bind:value=password
                />
            </label>
            {move || {
                failure
                    .get()
                    .map(|f| view! { <p class="field-error" data-testid="login-error">{f}</p> })
            }}
            <button type="submit" class="primary" data-testid="login-submit" disabled=busy>
                "Log in"
            </button>
        </form>
    }
}
