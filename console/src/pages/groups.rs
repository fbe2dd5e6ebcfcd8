//! Ring groups and virtual extensions: list, create, edit, delete.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::Group;
use crate::state::AppState;
use crate::ui::{self, FieldErrors};

/// The ring strategies the built-in policy knows.
const STRATEGIES: [(&str, &str); 5] = [
    ("ring-all", "Ring all"),
    ("hunt", "Hunt (in order)"),
    ("round-robin", "Round robin"),
    ("random", "Random"),
    ("least-recent", "Least recently called"),
];

/// What the form edits: a new group, or the group with this number.
#[derive(Clone, PartialEq)]
enum Editing {
    New,
    Existing(String),
}

/// The groups page.
#[component]
pub fn Groups() -> impl IntoView {
    let state = AppState::get();
    let groups = RwSignal::new(Vec::<Group>::new());
    let form = RwSignal::new(None::<(Editing, Group)>);
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        reload.track();
        spawn_local(async move {
            match api::get::<Vec<Group>>("/groups").await {
                Ok(list) => groups.set(list),
                Err(e) => state.fail(&e),
            }
        });
    });
    let new_group = move |_| {
        form.set(Some((
            Editing::New,
            Group {
                kind: "ring_group".into(),
                strategy: "ring-all".into(),
                ring_timeout_secs: Some(20),
                ..Group::default()
            },
        )))
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Groups"</h1>
                <span class="spacer"></span>
                <button class="primary writes" data-testid="group-new" on:click=new_group>
                    "New group"
                </button>
            </div>
            {move || {
                form.get()
                    .map(|(editing, group)| view! { <GroupForm editing group form reload/> })
            }}
            <table class="grid" data-testid="groups-table">
                <thead>
                    <tr>
                        <th>"Number"</th>
                        <th>"Name"</th>
                        <th>"Kind"</th>
                        <th>"Strategy"</th>
                        <th>"Members"</th>
                        <th>"Ring timeout"</th>
                        <th>"No answer"</th>
                        <th>"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || groups.get()
                        key=|g| format!("{g:?}")
                        children=move |g| {
                            let edit = {
                                let g = g.clone();
                                move |_| form.set(Some((Editing::Existing(g.number.clone()), g.clone())))
                            };
                            let number = g.number.clone();
                            let shown = g.etag.clone();
                            let delete = move |_| {
                                if !ui::confirm(&format!("Delete group {number}?")) {
                                    return;
                                }
                                let number = number.clone();
                                let shown = shown.clone();
                                spawn_local(async move {
                                    let path = format!("/groups/{}", api::encode(&number));
                                    match api::delete(&path, ui::opt(&shown).as_deref()).await {
                                        Ok(()) => {
                                            state.done(format!("Group {number} deleted."));
                                            reload.update(|r| *r += 1);
                                        }
                                        Err(e) => state.fail_write(&e, &format!("group {number}")),
                                    }
                                });
                            };
                            view! {
                                <tr data-testid=format!("group-row-{}", g.number)>
                                    <td>{g.number.clone()}</td>
                                    <td>{g.name.clone()}</td>
                                    <td>{if g.kind == "virtual" { "Virtual extension" } else { "Ring group" }}</td>
                                    <td>{g.strategy.clone()}</td>
                                    <td>{g.members.join(", ")}</td>
                                    <td>{g.ring_timeout_secs.map(|s| format!("{s} s")).unwrap_or_default()}</td>
                                    <td>{g.no_answer.clone().unwrap_or_default()}</td>
                                    <td class="actions">
                                        <button class="writes" on:click=edit data-testid=format!("group-edit-{}", g.number)>"Edit"</button>
                                        <button class="danger writes" on:click=delete data-testid=format!("group-delete-{}", g.number)>
                                            "Delete"
                                        </button>
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            {move || groups.with(Vec::is_empty).then(|| view! { <p class="empty">"No groups."</p> })}
        </section>
    }
}

/// Creates or edits a group (`POST /groups`, `PUT /groups/{number}`).
#[component]
fn GroupForm(
    editing: Editing,
    group: Group,
    form: RwSignal<Option<(Editing, Group)>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let state = AppState::get();
    let errors = FieldErrors::new();
    let number = RwSignal::new(group.number.clone());
    let name = RwSignal::new(group.name.clone());
    let kind = RwSignal::new(group.kind.clone());
    let strategy = RwSignal::new(group.strategy.clone());
    let members = RwSignal::new(group.members.join(", "));
    let ring = RwSignal::new(
        group
            .ring_timeout_secs
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    let no_answer = RwSignal::new(group.no_answer.clone().unwrap_or_default());
    let existing = match &editing {
        Editing::Existing(n) => Some(n.clone()),
        Editing::New => None,
    };
    let is_new = existing.is_none();
    // The version the form shows: a save applies only to it.
    let shown = group.etag.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let ring_timeout_secs = match ui::opt(&ring.get_untracked()) {
            None => None,
            Some(t) => match t.parse::<u32>() {
                Ok(s) => Some(s),
                Err(_) => {
                    errors.set_one("ring_timeout_secs", "a whole number of seconds");
                    return;
                }
            },
        };
        let group = Group {
            number: number.get_untracked().trim().to_string(),
            name: name.get_untracked().trim().to_string(),
            kind: kind.get_untracked(),
            strategy: strategy.get_untracked(),
            members: members
                .get_untracked()
                .split([',', ' ', ';'])
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
            ring_timeout_secs,
            no_answer: ui::opt(&no_answer.get_untracked()),
            etag: String::new(),
        };
        let existing = existing.clone();
        let shown = shown.clone();
        spawn_local(async move {
            let answer = match &existing {
                None => api::post::<_, Group>("/groups", &group).await,
                Some(n) => {
                    let path = format!("/groups/{}", api::encode(n));
                    api::put::<_, Group>(&path, &group, ui::opt(&shown).as_deref()).await
                }
            };
            match answer {
                Ok(g) => {
                    state.done(format!("Group {} saved.", g.number));
                    form.set(None);
                    reload.update(|r| *r += 1);
                }
                Err(e) => errors.fail_write(&state, &e, &format!("group {}", group.number)),
            }
        });
    };
    let strategies = STRATEGIES
        .into_iter()
        .map(|(value, label)| {
            view! { <option value=value selected=group.strategy == value>{label}</option> }
        })
        .collect_view();
    view! {
        <form class="card form" on:submit=submit data-testid="group-form">
            <h2>{if is_new { "New group" } else { "Edit group" }}</h2>
            <label>
                "Number"
                <input required disabled=!is_new data-testid="group-number" bind:value=number/>
                {errors.view("number")}
            </label>
            <label>
                "Name"
                <input required data-testid="group-name" bind:value=name/>
                {errors.view("name")}
            </label>
            <label>
                "Kind"
                <select data-testid="group-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                    <option value="ring_group" selected=group.kind != "virtual">"Ring group"</option>
                    <option value="virtual" selected=group.kind == "virtual">
                        "Virtual extension (rings all members)"
                    </option>
                </select>
                {errors.view("kind")}
            </label>
            <label>
                "Strategy"
                <select data-testid="group-strategy" on:change=move |ev| strategy.set(event_target_value(&ev))>
                    {strategies}
                </select>
                {errors.view("strategy")}
            </label>
            <label>
                "Members"
                <input placeholder="101, 102, 103" data-testid="group-members" bind:value=members/>
                {errors.view("members")}
            </label>
            <label>
                "Ring timeout (seconds)"
                <input inputmode="numeric" data-testid="group-ring-timeout" bind:value=ring/>
                {errors.view("ring_timeout_secs")}
            </label>
            <label>
                "When nobody answers"
                <input placeholder="a number, voicemail, or empty" data-testid="group-no-answer" bind:value=no_answer/>
                {errors.view("no_answer")}
            </label>
            {errors.view_others(&["number", "name", "kind", "strategy", "members", "ring_timeout_secs", "no_answer"])}
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="group-save">"Save"</button>
                <button type="button" class="link" on:click=move |_| form.set(None)>"Cancel"</button>
            </div>
        </form>
    }
}
