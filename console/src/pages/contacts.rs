//! The company directory: search, create, edit, delete contacts.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::Contact;
use crate::state::AppState;
use crate::ui::{self, FieldErrors};

/// The contacts page.
#[component]
pub fn Contacts() -> impl IntoView {
    let state = AppState::get();
    let contacts = RwSignal::new(Vec::<Contact>::new());
    let search = RwSignal::new(String::new());
    let query = RwSignal::new(String::new());
    let form = RwSignal::new(None::<Contact>);
    let reload = RwSignal::new(0u32);
    let sequence = StoredValue::new(0u32);
    Effect::new(move |_| {
        reload.track();
        let path = format!("/contacts?q={}", api::encode(&query.get()));
        sequence.update_value(|s| *s += 1);
        let mine = sequence.try_get_value();
        spawn_local(async move {
            let answer = api::get::<Vec<Contact>>(&path).await;
            // Also true when the page was left meanwhile.
            if sequence.try_get_value() != mine {
                return;
            }
            match answer {
                Ok(list) => contacts.set(list),
                Err(e) => state.fail(&e),
            }
        });
    });
    // Searching waits for a pause in typing.
    let mut apply = debounce(Duration::from_millis(250), move |text: String| {
        query.set(text.trim().to_string());
    });
    let on_search = move |ev| {
        let text = event_target_value(&ev);
        search.set(text.clone());
        apply(text);
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Contacts"</h1>
                <input
                    type="search"
                    placeholder="Search"
                    data-testid="contact-search"
                    prop:value=search
                    on:input=on_search
                />
                <span class="spacer"></span>
                <button class="primary writes" data-testid="contact-new" on:click=move |_| form.set(Some(Contact::default()))>
                    "New contact"
                </button>
            </div>
            {move || form.get().map(|contact| view! { <ContactForm contact form reload/> })}
            <table class="grid" data-testid="contacts-table">
                <thead>
                    <tr>
                        <th>"Name"</th>
                        <th>"Number"</th>
                        <th>"Email"</th>
                        <th>"Company"</th>
                        <th>"Extension"</th>
                        <th>"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || contacts.get()
                        key=|c| format!("{c:?}")
                        children=move |c| {
                            let edit = {
                                let c = c.clone();
                                move |_| form.set(Some(c.clone()))
                            };
                            let (id, name, shown) = (c.id.clone(), c.name.clone(), c.etag.clone());
                            let delete = move |_| {
                                if !ui::confirm(&format!("Delete contact {name}?")) {
                                    return;
                                }
                                let (id, name, shown) = (id.clone(), name.clone(), shown.clone());
                                spawn_local(async move {
                                    let path = format!("/contacts/{}", api::encode(&id));
                                    match api::delete(&path, ui::opt(&shown).as_deref()).await {
                                        Ok(()) => {
                                            state.done(format!("Contact {name} deleted."));
                                            reload.update(|r| *r += 1);
                                        }
                                        Err(e) => state.fail_write(&e, &format!("contact {name}")),
                                    }
                                });
                            };
                            view! {
                                <tr data-testid=format!("contact-row-{}", c.id)>
                                    <td>{c.name.clone()}</td>
                                    <td>{c.number.clone()}</td>
                                    <td>{c.email.clone().unwrap_or_default()}</td>
                                    <td>{c.company.clone().unwrap_or_default()}</td>
                                    <td>{c.extension.clone().unwrap_or_default()}</td>
                                    <td class="actions">
                                        <button class="writes" on:click=edit>"Edit"</button>
                                        <button class="danger writes" on:click=delete>"Delete"</button>
                                    </td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            {move || contacts.with(Vec::is_empty).then(|| view! { <p class="empty">"No contacts."</p> })}
        </section>
    }
}

/// Creates (`POST /contacts`) or edits (`PUT /contacts/{id}`) a contact.
#[component]
fn ContactForm(
    contact: Contact,
    form: RwSignal<Option<Contact>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let state = AppState::get();
    let errors = FieldErrors::new();
    let id = contact.id.clone();
    let is_new = id.is_empty();
    let name = RwSignal::new(contact.name.clone());
    let number = RwSignal::new(contact.number.clone());
    let email = RwSignal::new(contact.email.clone().unwrap_or_default());
    let company = RwSignal::new(contact.company.clone().unwrap_or_default());
    let extension = RwSignal::new(contact.extension.clone().unwrap_or_default());
    // The version the form shows: a save applies only to it.
    let shown = contact.etag.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let body = Contact {
            id: id.clone(),
            name: name.get_untracked().trim().to_string(),
            number: number.get_untracked().trim().to_string(),
            email: ui::opt(&email.get_untracked()),
            company: ui::opt(&company.get_untracked()),
            extension: ui::opt(&extension.get_untracked()),
            etag: String::new(),
        };
        let shown = shown.clone();
        spawn_local(async move {
            let answer = if body.id.is_empty() {
                api::post::<_, Contact>("/contacts", &body).await
            } else {
                let path = format!("/contacts/{}", api::encode(&body.id));
                api::put::<_, Contact>(&path, &body, ui::opt(&shown).as_deref()).await
            };
            match answer {
                Ok(c) => {
                    state.done(format!("Contact {} saved.", c.name));
                    form.set(None);
                    reload.update(|r| *r += 1);
                }
                Err(e) => errors.fail_write(&state, &e, &format!("contact {}", body.name)),
            }
        });
    };
    view! {
        <form class="card form" on:submit=submit data-testid="contact-form">
            <h2>{if is_new { "New contact" } else { "Edit contact" }}</h2>
            <label>"Name"<input required data-testid="contact-name" bind:value=name/>{errors.view("name")}</label>
            <label>"Number"<input required data-testid="contact-number" bind:value=number/>{errors.view("number")}</label>
            <label>"Email"<input type="email" data-testid="contact-email" bind:value=email/>{errors.view("email")}</label>
            <label>"Company"<input data-testid="contact-company" bind:value=company/>{errors.view("company")}</label>
            <label>
                "Extension"
                <input placeholder="linked extension, optional" data-testid="contact-extension" bind:value=extension/>
                {errors.view("extension")}
            </label>
            {errors.view_others(&["name", "number", "email", "company", "extension"])}
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="contact-save">"Save"</button>
                <button type="button" class="link" on:click=move |_| form.set(None)>"Cancel"</button>
            </div>
        </form>
    }
}
