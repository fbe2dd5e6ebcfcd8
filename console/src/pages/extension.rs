//! One extension, one tab per group of settings. Every tab saves with a
//! JSON merge patch (RFC 7396) of its own fields and shows the problem's
//! field errors next to the fields they name.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};

use crate::api;
use crate::model::{
    Device, Extension, FollowMe, FollowMeDestination, HistoryEvent, Password, Subscription,
};
use crate::pages::phones::ExtensionPhones;
use crate::pages::voicemail::MailboxPanel;
use crate::pages::web_users::ExtensionUsers;
use crate::route::{Route, Tab};
use crate::state::AppState;
use crate::ui::{self, FieldErrors, StatusDot, TextField};

/// What every tab works on: the extension as last loaded or saved.
#[derive(Clone, Copy)]
struct Editor {
    state: AppState,
    number: StoredValue<String>,
    ext: RwSignal<Option<Extension>>,
    errors: FieldErrors,
    busy: RwSignal<bool>,
}

impl Editor {
    fn path(&self, rest: &str) -> String {
        format!(
            "/extensions/{}{rest}",
            api::encode(&self.number.get_value())
        )
    }

    /// Sends a merge patch and takes the extension the server answers. The
    /// patch applies only to the version shown: if somebody changed the
    /// extension meanwhile, the server refuses it (412) and says so.
    fn save(&self, patch: Value) {
        let editor = *self;
        let state = editor.state;
        editor.errors.clear();
        editor.busy.set(true);
        let shown = editor
            .ext
            .with_untracked(|e| e.as_ref().map(|e| e.etag.clone()))
            .filter(|tag| !tag.is_empty());
        spawn_local(async move {
            match api::patch::<Extension>(&editor.path(""), &patch, shown.as_deref()).await {
                Ok(ext) => {
                    state.done(format!("Extension {} saved.", ext.number));
                    editor.ext.set(Some(ext));
                }
                Err(e) => editor.errors.fail_write(&state, &e, "this extension"),
            }
            editor.busy.set(false);
        });
    }
}

/// The extension detail page.
#[component]
pub fn ExtensionDetail(
    /// Extension number.
    number: String,
    /// The tab shown.
    tab: Tab,
) -> impl IntoView {
    let state = AppState::get();
    let editor = Editor {
        state,
        number: StoredValue::new(number.clone()),
        ext: RwSignal::new(None),
        errors: FieldErrors::new(),
        busy: RwSignal::new(false),
    };
    let missing = RwSignal::new(false);
    spawn_local(async move {
        match api::get::<Extension>(&editor.path("")).await {
            Ok(ext) => editor.ext.set(Some(ext)),
            Err(e) => {
                missing.set(true);
                state.fail(&e);
            }
        }
    });
    // An extension user sees the tabs of what they may change.
    let personal = state.own_extension().is_some();
    let tabs = Tab::ALL
        .into_iter()
        .filter(|t| !personal || t.personal())
        .map(|t| {
            let href = Route::Extension(number.clone(), t).href();
            view! {
                <a href=href class:active=t == tab data-testid=format!("tab-{}", t.slug())>
                    {t.title()}
                </a>
            }
        })
        .collect_view();
    let title = {
        let number = number.clone();
        move || match editor.ext.get() {
            Some(e) => format!("{} · {}", e.number, e.name),
            None => number.clone(),
        }
    };
    view! {
        <section class="page">
            <div class="toolbar">
                {(!personal).then(|| view! { <a href=Route::Extensions.href()>"‹ Extensions"</a> })}
                <h1 data-testid="ext-title">{title}</h1>
                {(!personal).then(|| view! { <StatusDot number=number.clone()/> })}
            </div>
            <nav class="tabs">{tabs}</nav>
            {move || {
                if missing.get() {
                    return view! { <p class="empty">"This extension could not be loaded."</p> }
                        .into_any();
                }
                match editor.ext.get() {
                    None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                    // Read-only users see the settings without being able
                    // to change them.
                    Some(ext) => view! {
                        <fieldset class="bare" disabled=move || state.read_only()>
                            {tab_view(tab, editor, ext)}
                        </fieldset>
                    }
                    .into_any(),
                }
            }}
        </section>
    }
}

fn tab_view(tab: Tab, editor: Editor, ext: Extension) -> AnyView {
    match tab {
        Tab::General => view! { <General editor ext/> }.into_any(),
        Tab::Aliases => view! { <Aliases editor ext/> }.into_any(),
        Tab::Devices => view! { <Devices editor/> }.into_any(),
        Tab::Forwarding => view! { <Forwarding editor ext/> }.into_any(),
        Tab::FollowMe => view! { <FollowMeTab editor ext/> }.into_any(),
        Tab::Voicemail => view! { <VoicemailTab editor ext/> }.into_any(),
        Tab::CallerId => view! { <CallerIdTab editor ext/> }.into_any(),
        Tab::Reliability => view! { <Reliability editor ext/> }.into_any(),
    }
}

/// A labelled checkbox bound to a signal, with its field error.
#[component]
fn CheckField(
    label: &'static str,
    value: RwSignal<bool>,
    field: &'static str,
    errors: FieldErrors,
) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" data-testid=format!("field-{field}") bind:checked=value/>
            {label}
            {errors.view(field)}
        </label>
    }
}

/// The form's Save button.
#[component]
fn SaveButton(editor: Editor) -> impl IntoView {
    view! {
        <div class="form-actions">
            <button type="submit" class="primary" data-testid="ext-save" disabled=editor.busy>
                "Save"
            </button>
        </div>
    }
}

/// Validation errors of fields this tab does not show.
fn other_errors(editor: Editor, shown: &'static [&'static str]) -> impl IntoView {
    editor.errors.view_others(shown)
}

/// A number of seconds typed in a field: `Ok(None)` when blank.
fn seconds(text: &str) -> Result<Option<u32>, ()> {
    match ui::opt(text) {
        None => Ok(None),
        Some(t) => t.parse::<u32>().map(Some).map_err(drop),
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn secs_text(value: Option<u32>) -> String {
    value.map(|s| s.to_string()).unwrap_or_default()
}

fn submit_handler(
    f: impl Fn() -> Result<Value, (&'static str, &'static str)> + 'static,
    editor: Editor,
) -> impl Fn(leptos::ev::SubmitEvent) + 'static {
    move |ev| {
        ev.prevent_default();
        match f() {
            Ok(patch) => editor.save(patch),
            Err((field, message)) => editor.errors.set_one(field, message),
        }
    }
}

/// Number, name, password, outbound caller ID, ring timeout.
#[component]
fn General(editor: Editor, ext: Extension) -> impl IntoView {
    let state = AppState::get();
    let name = RwSignal::new(ext.name.clone());
    let outbound = RwSignal::new(text(&ext.caller_id.outbound));
    let ring = RwSignal::new(secs_text(ext.ring_timeout_secs));
    let dnd = RwSignal::new(ext.dnd);
    let away = RwSignal::new(ext.away);
    let allowed = RwSignal::new(ext.allowed_destinations.clone());
    let revealed = RwSignal::new(None::<String>);
    let errors = editor.errors;
    // An extension user changes how calls reach them, not the rest.
    let personal = state.own_extension().is_some();
    let submit = submit_handler(
        move || {
            let ring = seconds(&ring.get_untracked())
                .map_err(|_| ("ring_timeout_secs", "a whole number of seconds"))?;
            let mut patch = json!({
                "ring_timeout_secs": ring,
                "dnd": dnd.get_untracked(),
                "away": away.get_untracked(),
            });
            if !personal {
                patch["name"] = json!(name.get_untracked().trim());
                patch["caller_id"] = json!({ "outbound": ui::opt(&outbound.get_untracked()) });
                patch["allowed_destinations"] = json!(allowed.get_untracked().trim());
            }
            Ok(patch)
        },
        editor,
    );
    let reveal = move |_| {
        spawn_local(async move {
            match api::get::<Password>(&editor.path("/password")).await {
                Ok(p) => revealed.set(Some(p.password)),
                Err(e) => state.fail(&e),
            }
        });
    };
    let reset = move |_| {
        if !ui::confirm("Reset the SIP password? Its devices must be given the new one.") {
            return;
        }
        spawn_local(async move {
            match api::post::<_, Password>(&editor.path("/password"), &json!({})).await {
                Ok(p) => {
                    state.done("Password reset.");
                    revealed.set(Some(p.password));
                }
                Err(e) => state.fail(&e),
            }
        });
    };
    let copy = move |_| {
        let Some(p) = revealed.get_untracked() else {
            return;
        };
        spawn_local(async move {
            match ui::copy(&p).await {
                Ok(()) => state.done("Password copied to the clipboard."),
                Err(e) => state.error.set(Some(e)),
            }
        });
    };
    let admin_fields = move || {
        view! {
            <TextField label="Name" value=name field="name" errors/>
            <div class="field">
                <span>"SIP password"</span>
                <div class="row">
                    <code data-testid="ext-password">
                        {move || revealed.get().unwrap_or_else(|| "••••••••".into())}
                    </code>
                    <button type="button" data-testid="ext-password-reveal" on:click=reveal>
                        "Reveal"
                    </button>
                    <button type="button" on:click=copy disabled=move || revealed.with(Option::is_none)>
                        "Copy"
                    </button>
                    <button type="button" class="danger" data-testid="ext-password-reset" on:click=reset>
                        "Reset"
                    </button>
                </div>
            </div>
            <TextField
                label="Outbound caller ID"
                value=outbound
                field="caller_id.outbound"
                errors
                placeholder="e.g. +3312345678"
            />
        }
    };
    let number = ext.number.clone();
    view! {
        <form class="card form" on:submit=submit>
            <label>
                "Number"
                <input value=ext.number.clone() disabled/>
            </label>
            <label>
                "Username"
                <input value=ext.username.clone() disabled/>
            </label>
            {(!personal).then(admin_fields)}
            <TextField
                label="Ring timeout (seconds)"
                value=ring
                field="ring_timeout_secs"
                errors
                placeholder="server default"
            />
            <CheckField label="Do not disturb" value=dnd field="dnd" errors/>
            <CheckField label="Away (buddy lists show it; calls ring as usual)" value=away field="away" errors/>
            {(!personal)
                .then(|| {
                    view! {
                        <TextField
                            label="Allowed destinations"
                            value=allowed
                            field="allowed_destinations"
                            errors
                            placeholder="all, none or patterns like 0X.,+33X."
                        />
                    }
                })}
            {other_errors(editor, &["name", "caller_id.outbound", "ring_timeout_secs", "dnd", "away", "allowed_destinations"])}
            <SaveButton editor/>
        </form>
        {(!personal).then(|| view! { <ExtensionUsers number/> })}
    }
}

/// Other numbers that reach the extension.
#[component]
fn Aliases(editor: Editor, ext: Extension) -> impl IntoView {
    let new_alias = RwSignal::new(String::new());
    let aliases = ext.aliases.clone();
    let save = move |list: Vec<String>| editor.save(json!({ "aliases": list }));
    let add = {
        let aliases = aliases.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let Some(a) = ui::opt(&new_alias.get_untracked()) else {
                return;
            };
            let mut list = aliases.clone();
            if !list.contains(&a) {
                list.push(a);
            }
            save(list);
        }
    };
    let rows = aliases
        .iter()
        .map(|a| {
            let remove = {
                let aliases = aliases.clone();
                let a = a.clone();
                move |_| save(aliases.iter().filter(|x| **x != a).cloned().collect())
            };
            view! {
                <li data-testid=format!("alias-{a}")>
                    <span>{a.clone()}</span>
                    <button class="danger small" on:click=remove data-testid=format!("alias-remove-{a}")>
                        "Remove"
                    </button>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="card">
            {aliases.is_empty().then(|| view! { <p class="empty">"No aliases."</p> })}
            <ul class="plain">{rows}</ul>
            <form class="row" on:submit=add>
                <input placeholder="New alias" data-testid="alias-new" bind:value=new_alias/>
                <button type="submit" class="primary" data-testid="alias-add" disabled=editor.busy>
                    "Add"
                </button>
            </form>
            {editor.errors.view("aliases")}
        </div>
    }
}

/// The registered devices and the desk phones provisioned for the extension.
#[component]
fn Devices(editor: Editor) -> impl IntoView {
    let state = AppState::get();
    let devices = RwSignal::new(None::<Vec<Device>>);
    spawn_local(async move {
        match api::get::<Vec<Device>>(&editor.path("/devices")).await {
            Ok(list) => devices.set(Some(list)),
            Err(e) => state.fail(&e),
        }
    });
    let registered = move || {
        match devices.get() {
        None => view! { <p class="loading">"Loading…"</p> }.into_any(),
        Some(list) if list.is_empty() => {
            view! { <p class="empty">"No device is registered."</p> }.into_any()
        }
        Some(list) => view! {
            <table class="grid" data-testid="devices-table">
                <thead>
                    <tr>
                        <th>"Contact"</th>
                        <th>"User agent"</th>
                        <th>"Source"</th>
                        <th>"Transport"</th>
                        <th>"Last seen"</th>
                        <th>"Expires"</th>
                        <th>"Subscriptions"</th>
                    </tr>
                </thead>
                <tbody>
                    {list
                        .into_iter()
                        .map(|d| {
                            let subscriptions = subscriptions_text(&d.subscriptions);
                            view! {
                                <tr>
                                    <td class="mono">{d.contact}</td>
                                    <td>{d.user_agent.unwrap_or_default()}</td>
                                    <td class="mono">{d.source}</td>
                                    <td>{d.transport.to_uppercase()}</td>
                                    <td>{d.last_seen.as_deref().map(ui::local_time).unwrap_or_default()}</td>
                                    <td>{ui::local_time(&d.expires_at)}</td>
                                    <td data-testid="device-subscriptions">{subscriptions}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
    };
    view! {
        {registered}
        <ExtensionPhones number=editor.number.get_value()/>
    }
}

/// A device's subscriptions, one per line: `dialog 102 (until 10:42)`.
fn subscriptions_text(list: &[Subscription]) -> String {
    list.iter()
        .map(|s| {
            format!(
                "{} {} (until {})",
                s.package,
                s.target,
                ui::local_time(&s.expires_at)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `voicemail` choice offered by forwarding fields.
#[component]
fn TargetChoices() -> impl IntoView {
    view! {
        <datalist id="forward-targets">
            <option value="voicemail"></option>
        </datalist>
    }
}

/// Forwarding rules and the no-answer timeout.
#[component]
fn Forwarding(editor: Editor, ext: Extension) -> impl IntoView {
    let f = &ext.forwarding;
    let unconditional = RwSignal::new(text(&f.unconditional));
    let busy = RwSignal::new(text(&f.busy));
    let no_answer = RwSignal::new(text(&f.no_answer));
    let offline = RwSignal::new(text(&f.offline));
    let ring = RwSignal::new(secs_text(ext.ring_timeout_secs));
    let errors = editor.errors;
    let submit = submit_handler(
        move || {
            let ring = seconds(&ring.get_untracked())
                .map_err(|_| ("ring_timeout_secs", "a whole number of seconds"))?;
            Ok(json!({
                "forwarding": {
                    "unconditional": ui::opt(&unconditional.get_untracked()),
                    "busy": ui::opt(&busy.get_untracked()),
                    "no_answer": ui::opt(&no_answer.get_untracked()),
                    "offline": ui::opt(&offline.get_untracked()),
                },
                "ring_timeout_secs": ring,
            }))
        },
        editor,
    );
    let hint = "a number, voicemail, or empty";
    view! {
        <form class="card form" on:submit=submit>
            <TargetChoices/>
            <TextField label="Always" value=unconditional field="forwarding.unconditional" errors placeholder=hint list="forward-targets"/>
            <TextField label="When busy" value=busy field="forwarding.busy" errors placeholder=hint list="forward-targets"/>
            <TextField label="When not answered" value=no_answer field="forwarding.no_answer" errors placeholder=hint list="forward-targets"/>
            <TextField
                label="No-answer timeout (seconds)"
                value=ring
                field="ring_timeout_secs"
                errors
                placeholder="server default"
            />
            <TextField label="When offline" value=offline field="forwarding.offline" errors placeholder=hint list="forward-targets"/>
            {other_errors(editor, &["forwarding", "ring_timeout_secs"])}
            <SaveButton editor/>
        </form>
    }
}

/// One editable destination row.
#[derive(Clone, Copy)]
struct DestinationRow {
    id: u32,
    number: RwSignal<String>,
    timeout: RwSignal<String>,
}

/// Find-me/follow-me: strategy, destinations, no-answer action.
#[component]
fn FollowMeTab(editor: Editor, ext: Extension) -> impl IntoView {
    let follow = ext.follow_me.clone().unwrap_or_default();
    let mode = RwSignal::new(if ext.follow_me.is_some() {
        follow.mode.clone()
    } else {
        String::new()
    });
    let next_id = StoredValue::new(0u32);
    let new_row = move |d: &FollowMeDestination| {
        next_id.update_value(|n| *n += 1);
        DestinationRow {
            id: next_id.get_value(),
            number: RwSignal::new(d.number.clone()),
            timeout: RwSignal::new(d.timeout_secs.to_string()),
        }
    };
    let rows = RwSignal::new(follow.destinations.iter().map(new_row).collect::<Vec<_>>());
    let no_answer = RwSignal::new(text(&ext.forwarding.no_answer));
    let errors = editor.errors;
    let submit = submit_handler(
        move || {
            let mode = mode.get_untracked();
            let follow_me = if mode.is_empty() {
                Value::Null
            } else {
                let mut destinations = Vec::new();
                for row in rows.get_untracked() {
                    let Some(number) = ui::opt(&row.number.get_untracked()) else {
                        continue;
                    };
                    let timeout_secs =
                        seconds(&row.timeout.get_untracked())
                            .ok()
                            .flatten()
                            .ok_or((
                                "follow_me.destinations",
                                "every destination needs a timeout in seconds",
                            ))?;
                    destinations.push(FollowMeDestination {
                        number,
                        timeout_secs,
                    });
                }
                // The value is built from plain strings and numbers.
                serde_json::to_value(FollowMe { mode, destinations }).unwrap_or(Value::Null)
            };
            Ok(json!({
                "follow_me": follow_me,
                "forwarding": { "no_answer": ui::opt(&no_answer.get_untracked()) },
            }))
        },
        editor,
    );
    let add = move |_| {
        let row = new_row(&FollowMeDestination {
            number: String::new(),
            timeout_secs: 20,
        });
        rows.update(|r| r.push(row));
    };
    view! {
        <form class="card form" on:submit=submit>
            <label>
                "Strategy"
                <select data-testid="field-follow_me.mode" on:change=move |ev| mode.set(event_target_value(&ev))>
                    <option value="" selected=mode.get_untracked().is_empty()>"Off"</option>
                    <option value="simultaneous" selected=mode.get_untracked() == "simultaneous">
                        "Simultaneous: ring all at once"
                    </option>
                    <option value="sequential" selected=mode.get_untracked() == "sequential">
                        "Sequential: one after another"
                    </option>
                </select>
                {errors.view("follow_me.mode")}
            </label>
            <div class="field">
                <span>"Destinations"</span>
                <table class="grid compact" data-testid="follow-me-destinations">
                    <thead>
                        <tr>
                            <th>"Number"</th>
                            <th>"Ring for (seconds)"</th>
                            <th></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || rows.get()
                            key=|r| r.id
                            children=move |r| {
                                let remove = move |_| rows.update(|list| list.retain(|x| x.id != r.id));
                                view! {
                                    <tr>
                                        <td><input bind:value=r.number placeholder="e.g. 0612345678"/></td>
                                        <td><input class="short" bind:value=r.timeout inputmode="numeric"/></td>
                                        <td>
                                            <button type="button" class="danger small" on:click=remove>
                                                "Remove"
                                            </button>
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
                <button type="button" data-testid="follow-me-add" on:click=add>
                    "Add destination"
                </button>
                {errors.view("follow_me.destinations")}
            </div>
            <TargetChoices/>
            <TextField
                label="When nobody answers"
                value=no_answer
                field="forwarding.no_answer"
                errors
                placeholder="a number, voicemail, or empty"
                list="forward-targets"
            />
            {other_errors(editor, &["follow_me", "forwarding.no_answer"])}
            <SaveButton editor/>
        </form>
    }
}

/// Voicemail: enabled, email, PIN.
#[component]
fn VoicemailTab(editor: Editor, ext: Extension) -> impl IntoView {
    let enabled = RwSignal::new(ext.voicemail.enabled);
    let email = RwSignal::new(text(&ext.voicemail.email));
    let attach = RwSignal::new(ext.voicemail.attach_audio);
    let delete_after = RwSignal::new(ext.voicemail.delete_after_email);
    let skip_pin = RwSignal::new(ext.voicemail.skip_pin_on_own_phone);
    let pin = RwSignal::new(String::new());
    let errors = editor.errors;
    let submit = submit_handler(
        move || {
            let mut voicemail = json!({
                "enabled": enabled.get_untracked(),
                "email": ui::opt(&email.get_untracked()),
                "attach_audio": attach.get_untracked(),
                "delete_after_email": delete_after.get_untracked(),
                "skip_pin_on_own_phone": skip_pin.get_untracked(),
            });
            if let Some(p) = ui::opt(&pin.get_untracked()) {
                if !p.chars().all(|c| c.is_ascii_digit()) {
                    return Err(("voicemail.pin", "digits only"));
                }
                voicemail["pin"] = json!(p);
            }
            Ok(json!({ "voicemail": voicemail }))
        },
        editor,
    );
    let pin_hint = if ext.voicemail.pin_set {
        "set; type a new one to change it"
    } else {
        "not set"
    };
    view! {
        <form class="card form" on:submit=submit>
            <CheckField label="Voicemail enabled" value=enabled field="voicemail.enabled" errors/>
            <TextField label="Send messages to email" value=email field="voicemail.email" errors/>
            <CheckField label="Attach the audio to the email" value=attach field="voicemail.attach_audio" errors/>
            <CheckField label="Delete messages once emailed" value=delete_after field="voicemail.delete_after_email" errors/>
            <CheckField label="No PIN from the extension's own phones (*97)" value=skip_pin field="voicemail.skip_pin_on_own_phone" errors/>
            <label>
                "PIN"
                <input
                    type="password"
                    inputmode="numeric"
                    autocomplete="new-password"
                    placeholder=pin_hint
                    data-testid="field-voicemail.pin"
                    bind:value=pin
                />
                {errors.view("voicemail.pin")}
            </label>
            {other_errors(editor, &["voicemail"])}
            <SaveButton editor/>
        </form>
        <MailboxPanel number=editor.number.get_value()/>
    }
}

/// Caller ID and the company directory entry.
#[component]
fn CallerIdTab(editor: Editor, ext: Extension) -> impl IntoView {
    let outbound = RwSignal::new(text(&ext.caller_id.outbound));
    let prefix = RwSignal::new(text(&ext.caller_id.inbound_prefix));
    let listed = RwSignal::new(ext.directory.listed);
    let email = RwSignal::new(text(&ext.directory.email));
    let department = RwSignal::new(text(&ext.directory.department));
    let errors = editor.errors;
    let submit = submit_handler(
        move || {
            // The prefix keeps its spaces ("Sales: ").
            let prefix = prefix.get_untracked();
            Ok(json!({
                "caller_id": {
                    "outbound": ui::opt(&outbound.get_untracked()),
                    "inbound_prefix": (!prefix.is_empty()).then_some(prefix),
                },
                "directory": {
                    "listed": listed.get_untracked(),
                    "email": ui::opt(&email.get_untracked()),
                    "department": ui::opt(&department.get_untracked()),
                },
            }))
        },
        editor,
    );
    view! {
        <form class="card form" on:submit=submit>
            <h2>"Caller ID"</h2>
            <TextField label="Outbound caller ID" value=outbound field="caller_id.outbound" errors placeholder="e.g. +3312345678"/>
            <TextField label="Inbound prefix" value=prefix field="caller_id.inbound_prefix" errors placeholder="e.g. Sales: "/>
            <h2>"Directory"</h2>
            <CheckField label="Listed in the directory" value=listed field="directory.listed" errors/>
            <TextField label="Email" value=email field="directory.email" errors/>
            <TextField label="Department" value=department field="directory.department" errors/>
            {other_errors(editor, &["caller_id", "directory"])}
            <SaveButton editor/>
        </form>
    }
}

/// One stretch of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// Start, in milliseconds since the epoch.
    pub from: f64,
    /// End.
    pub to: f64,
    /// Whether any device was registered.
    pub online: bool,
}

/// The online/offline stretches of `[start, end]` from registration
/// transitions (oldest first, times in milliseconds). Each device is
/// assumed to have been in the opposite state before its first
/// transition; with no transition at all, `online_now` holds throughout.
pub fn timeline(
    events: &[(f64, String, bool)],
    start: f64,
    end: f64,
    online_now: bool,
) -> Vec<Segment> {
    let mut devices: HashMap<&str, bool> = HashMap::new();
    for (_, contact, online) in events {
        devices.entry(contact.as_str()).or_insert(!online);
    }
    let mut online = if events.is_empty() {
        online_now
    } else {
        devices.values().any(|o| *o)
    };
    let mut segments = Vec::new();
    let mut from = start;
    for (at, contact, on) in events {
        let at = at.clamp(start, end);
        devices.insert(contact.as_str(), *on);
        let now = devices.values().any(|o| *o);
        if now != online {
            if at > from {
                segments.push(Segment {
                    from,
                    to: at,
                    online,
                });
            }
            from = at;
            online = now;
        }
    }
    if end > from {
        segments.push(Segment {
            from,
            to: end,
            online,
        });
    }
    segments
}

/// A 24-hour timeline of online/offline from `/history`.
#[component]
fn Reliability(editor: Editor, ext: Extension) -> impl IntoView {
    let state = AppState::get();
    let history = RwSignal::new(None::<Vec<HistoryEvent>>);
    spawn_local(async move {
        match api::get::<Vec<HistoryEvent>>(&editor.path("/history?hours=24")).await {
            Ok(list) => history.set(Some(list)),
            Err(e) => state.fail(&e),
        }
    });
    let online_now = ext.devices > 0;
    move || {
        let Some(list) = history.get() else {
            return view! { <p class="loading">"Loading…"</p> }.into_any();
        };
        let end = js_sys::Date::now();
        let start = end - 24.0 * 3600.0 * 1000.0;
        let events: Vec<(f64, String, bool)> = list
            .iter()
            .filter_map(|e| {
                let at = js_sys::Date::parse(&e.at);
                (!at.is_nan()).then(|| (at, e.contact.clone().unwrap_or_default(), e.online))
            })
            .collect();
        let segments = timeline(&events, start, end, online_now);
        let up: f64 = segments
            .iter()
            .filter(|s| s.online)
            .map(|s| s.to - s.from)
            .sum();
        let percent = up / (end - start) * 100.0;
        view! { <TimelineView segments start end percent list/> }.into_any()
    }
}

/// The SVG of a timeline and the table of its transitions.
#[component]
fn TimelineView(
    segments: Vec<Segment>,
    start: f64,
    end: f64,
    percent: f64,
    list: Vec<HistoryEvent>,
) -> impl IntoView {
    const WIDTH: f64 = 960.0;
    let x = move |t: f64| (t - start) / (end - start) * WIDTH;
    let bars = segments
        .into_iter()
        .map(|s| {
            let x0 = x(s.from);
            let w = (x(s.to) - x0).max(0.5);
            let title = format!(
                "{} from {} to {}",
                if s.online { "Online" } else { "Offline" },
                local_hm(s.from),
                local_hm(s.to)
            );
            view! {
                <rect
                    x=format!("{x0:.1}")
                    y="0"
                    width=format!("{w:.1}")
                    height="32"
                    class=if s.online { "up" } else { "down" }
                    data-online=s.online.to_string()
                >
                    <title>{title}</title>
                </rect>
            }
        })
        .collect_view();
    // A tick every 3 hours on the hour.
    let hour = 3600.0 * 1000.0;
    let first = (start / hour).ceil() * hour;
    let ticks = (0..25)
        .map(|i| first + i as f64 * hour)
        .filter(|t| *t <= end && (((*t / hour) as i64) % 3 == 0))
        .map(|t| {
            let tx = x(t);
            view! {
                <line x1=format!("{tx:.1}") x2=format!("{tx:.1}") y1="32" y2="38" class="tick"></line>
                <text x=format!("{tx:.1}") y="50" class="tick-label">{local_hm(t)}</text>
            }
        })
        .collect_view();
    let rows = list
        .into_iter()
        .rev()
        .map(|e| {
            view! {
                <tr>
                    <td>{ui::local_time(&e.at)}</td>
                    <td>{if e.online { "online" } else { "offline" }}</td>
                    <td class="mono">{e.contact.unwrap_or_default()}</td>
                    <td>{e.reason.unwrap_or_default()}</td>
                    <td class="mono">{e.source.unwrap_or_default()}</td>
                    <td>{e.user_agent.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="card">
            <p data-testid="reliability-uptime">{format!("Online {percent:.1}% of the last 24 hours")}</p>
            <svg
                class="timeline"
                viewBox="0 0 960 56"
                preserveAspectRatio="none"
                data-testid="reliability-timeline"
            >
                {bars}
                {ticks}
            </svg>
            <table class="grid compact">
                <thead>
                    <tr>
                        <th>"When"</th>
                        <th>"State"</th>
                        <th>"Contact"</th>
                        <th>"Reason"</th>
                        <th>"Source"</th>
                        <th>"User agent"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// `HH:MM` in the browser's time zone.
fn local_hm(ms: f64) -> String {
    let d = js_sys::Date::new(&ms.into());
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: f64, contact: &str, online: bool) -> (f64, String, bool) {
        (at, contact.to_string(), online)
    }

    #[test]
    fn no_events_is_the_current_state_throughout() {
        assert_eq!(
            timeline(&[], 0.0, 100.0, true),
            vec![Segment {
                from: 0.0,
                to: 100.0,
                online: true
            }]
        );
    }

    #[test]
    fn one_device_going_offline_and_back() {
        let events = [ev(30.0, "a", false), ev(60.0, "a", true)];
        let s = timeline(&events, 0.0, 100.0, true);
        assert_eq!(
            s,
            vec![
                Segment {
                    from: 0.0,
                    to: 30.0,
                    online: true
                },
                Segment {
                    from: 30.0,
                    to: 60.0,
                    online: false
                },
                Segment {
                    from: 60.0,
                    to: 100.0,
                    online: true
                },
            ]
        );
    }

    #[test]
    fn a_second_device_keeps_the_extension_online() {
        let events = [
            ev(10.0, "a", true),
            ev(20.0, "b", true),
            ev(30.0, "a", false),
        ];
        let s = timeline(&events, 0.0, 100.0, true);
        assert_eq!(
            s,
            vec![
                Segment {
                    from: 0.0,
                    to: 10.0,
                    online: false
                },
                Segment {
                    from: 10.0,
                    to: 100.0,
                    online: true
                },
            ]
        );
    }
}
