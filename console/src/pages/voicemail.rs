//! An extension's mailbox in its Voicemail tab: the messages (played in
//! the page, downloaded, marked heard or new, deleted) and the greetings
//! (played, replaced by an uploaded WAV file, removed).

use leptos::html::Input;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use crate::api;
use crate::model::{Mailbox, VoiceMessage};
use crate::state::AppState;
use crate::ui;

/// The greetings, with what the page calls them.
const GREETINGS: [(&str, &str); 3] = [
    ("unavailable", "Unavailable"),
    ("busy", "Busy"),
    ("name", "Name"),
];

/// The URL of an API path the API gave in full (`/api/v1/...`).
fn api_url(path: &str) -> String {
    api::url(path.strip_prefix(api::BASE).unwrap_or(path))
}

/// Minutes and seconds of a length in milliseconds.
fn length(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The messages and greetings of extension `number`.
#[component]
pub fn MailboxPanel(number: String) -> impl IntoView {
    let state = AppState::get();
    let base = format!("/extensions/{}/voicemail", api::encode(&number));
    let mailbox = RwSignal::new(None::<Mailbox>);
    let reload = {
        let base = base.clone();
        move || {
            let base = base.clone();
            spawn_local(async move {
                match api::get::<Mailbox>(&base).await {
                    Ok(m) => mailbox.set(Some(m)),
                    Err(e) => state.fail(&e),
                }
            });
        }
    };
    reload();
    let messages = {
        let (base, reload) = (base.clone(), reload.clone());
        move || match mailbox.get() {
            None => view! { <p class="loading">"Loading…"</p> }.into_any(),
            Some(m) if m.messages.is_empty() => {
                view! { <p class="empty" data-testid="voicemail-empty">"No messages."</p> }
                    .into_any()
            }
            Some(m) => {
                let rows = m
                    .messages
                    .into_iter()
                    .map(|message| message_row(base.clone(), message, reload.clone()))
                    .collect_view();
                view! {
                    <p data-testid="voicemail-counts">
                        {format!("{} new, {} heard", m.new, m.saved)}
                    </p>
                    <table class="grid" data-testid="voicemail-messages">
                        <thead>
                            <tr>
                                <th>"From"</th>
                                <th>"Received"</th>
                                <th>"Length"</th>
                                <th>"Status"</th>
                                <th>"Transcript"</th>
                                <th>"Email"</th>
                                <th>"Listen"</th>
                                <th></th>
                            </tr>
                        </thead>
                        <tbody>{rows}</tbody>
                    </table>
                }
                .into_any()
            }
        }
    };
    let greetings = {
        let (base, reload) = (base.clone(), reload.clone());
        move || {
            let recorded = mailbox.with(|m| m.as_ref().map(|m| m.greetings.clone()));
            let recorded = recorded.unwrap_or_default();
            GREETINGS
                .into_iter()
                .map(|(kind, label)| {
                    greeting_row(
                        base.clone(),
                        kind,
                        label,
                        recorded.iter().any(|g| g == kind),
                        reload.clone(),
                    )
                })
                .collect_view()
        }
    };
    view! {
        <section class="card" data-testid="voicemail-mailbox">
            <h3>"Messages"</h3>
            {messages}
            <h3>"Greetings"</h3>
            <table class="grid compact" data-testid="voicemail-greetings">
                <tbody>{greetings}</tbody>
            </table>
        </section>
    }
}

/// One message: who, when, how long, its player and actions.
fn message_row(
    base: String,
    m: VoiceMessage,
    reload: impl Fn() + Clone + 'static,
) -> impl IntoView {
    let state = AppState::get();
    let path = format!("{base}/messages/{}", api::encode(&m.id));
    let audio = api_url(&m.audio);
    let from = match &m.caller_name {
        Some(name) => format!("{name} ({})", m.caller),
        None => m.caller.clone(),
    };
    let toggle = {
        let (path, reload, saved) = (path.clone(), reload.clone(), m.saved);
        move |_| {
            let (path, reload) = (path.clone(), reload.clone());
            spawn_local(async move {
                let patch = json!({ "saved": !saved });
                match api::patch::<serde_json::Value>(&path, &patch, None).await {
                    Ok(_) => reload(),
                    Err(e) => state.fail(&e),
                }
            });
        }
    };
    let remove = move |_| {
        if !ui::confirm("Delete this message?") {
            return;
        }
        let (path, reload) = (path.clone(), reload.clone());
        spawn_local(async move {
            match api::delete(&path, None).await {
                Ok(()) => reload(),
                Err(e) => state.fail(&e),
            }
        });
    };
    let filename = format!("voicemail-{}.wav", m.id);
    let transcript = match m.transcription.as_str() {
        "done" => m.transcript.clone().unwrap_or_default(),
        "pending" => "being transcribed…".to_owned(),
        "failed" => "transcription failed".to_owned(),
        _ => String::new(),
    };
    let email = match (m.email.as_str(), &m.email_error) {
        ("done", _) => "sent".to_owned(),
        ("pending", Some(error)) => format!("retrying: {error}"),
        ("pending", None) => "pending".to_owned(),
        ("failed", Some(error)) => format!("failed: {error}"),
        ("failed", None) => "failed".to_owned(),
        _ => String::new(),
    };
    view! {
        <tr data-testid="voicemail-message">
            <td>{from}</td>
            <td>{ui::local_time(&m.received_at)}</td>
            <td>{length(m.duration_ms)}</td>
            <td>{if m.saved { "heard" } else { "new" }}</td>
            <td data-testid="voicemail-transcript">{transcript}</td>
            <td data-testid="voicemail-email">{email}</td>
            <td><audio controls preload="none" src=audio.clone()></audio></td>
            <td class="actions">
                <a href=audio download=filename>"Download"</a>
                <button type="button" on:click=toggle>
                    {if m.saved { "Mark new" } else { "Mark heard" }}
                </button>
                <button type="button" class="danger" on:click=remove data-testid="voicemail-delete">
                    "Delete"
                </button>
            </td>
        </tr>
    }
}

/// One greeting: recorded or the default, its player, upload and removal.
fn greeting_row(
    base: String,
    kind: &'static str,
    label: &'static str,
    recorded: bool,
    reload: impl Fn() + Clone + 'static,
) -> impl IntoView {
    let state = AppState::get();
    let path = format!("{base}/greetings/{kind}");
    let file = NodeRef::<Input>::new();
    let upload = {
        let (path, reload) = (path.clone(), reload.clone());
        move |_| {
            let Some(f) = ui::chosen_file(&file) else {
                state.error.set(Some("Choose a WAV file first.".into()));
                return;
            };
            let (path, reload) = (path.clone(), reload.clone());
            spawn_local(async move {
                match api::put_body(&path, "audio/wav", f).await {
                    Ok(()) => {
                        state.done(format!("{label} greeting saved."));
                        reload();
                    }
                    Err(e) => state.fail(&e),
                }
            });
        }
    };
    let remove = {
        let path = path.clone();
        move |_| {
            let (path, reload) = (path.clone(), reload.clone());
            spawn_local(async move {
                match api::delete(&path, None).await {
                    Ok(()) => reload(),
                    Err(e) => state.fail(&e),
                }
            });
        }
    };
    let player = recorded.then(|| {
        view! { <audio controls preload="none" src=api::url(&path)></audio> }
    });
    view! {
        <tr data-testid=format!("greeting-{kind}")>
            <td>{label}</td>
            <td>{if recorded { "recorded" } else { "default" }}</td>
            <td>{player}</td>
            <td class="actions">
                <input type="file" accept="audio/wav,.wav" node_ref=file/>
                <button type="button" on:click=upload>"Upload"</button>
                {recorded.then(|| view! {
                    <button type="button" class="danger" on:click=remove.clone()>"Remove"</button>
                })}
            </td>
        </tr>
    }
}
