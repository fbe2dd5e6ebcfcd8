//! Small pieces shared by the pages: the status dot, field errors, the row
//! errors of a CSV import, secrets shown once, the clipboard, downloads
//! and confirmations.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::api::{self, ApiError};
use crate::model::{FieldError, ImportError};
use crate::state::AppState;

/// The live status dot of an extension, following its presence signal.
#[component]
pub fn StatusDot(
    /// Extension number.
    number: String,
) -> impl IntoView {
    let live = AppState::get().presence.signal(&number);
    let status = {
        let live = live.clone();
        move || live.get().status
    };
    let status2 = status.clone();
    let status3 = status.clone();
    view! {
        <span
            class=move || format!("dot dot-{}", status().as_str())
            data-testid=format!("status-{number}")
            data-status=move || status2().as_str()
            title=move || status3().label()
        ></span>
    }
}

/// The validation errors of a form, by field.
#[derive(Clone, Copy)]
pub struct FieldErrors(RwSignal<Vec<FieldError>>);

impl FieldErrors {
    /// No errors.
    pub fn new() -> FieldErrors {
        FieldErrors(RwSignal::new(Vec::new()))
    }

    /// Clears them (before a new attempt).
    pub fn clear(&self) {
        self.0.set(Vec::new());
    }

    /// Takes the field errors of a failed request and reports the failure.
    pub fn fail(&self, state: &AppState, error: &ApiError) {
        self.0.set(error.field_errors().to_vec());
        state.fail(error);
    }

    /// [`fail`](FieldErrors::fail) for a write to `what`: see
    /// [`AppState::fail_write`].
    pub fn fail_write(&self, state: &AppState, error: &ApiError, what: &str) {
        self.0.set(error.field_errors().to_vec());
        state.fail_write(error, what);
    }

    /// Shows one error found before sending anything.
    pub fn set_one(&self, field: &str, message: &str) {
        self.0.set(vec![FieldError {
            field: field.to_string(),
            message: message.to_string(),
        }]);
    }

    /// The errors of fields other than `shown` (a form cannot place them),
    /// each with its field's name.
    pub fn view_others(&self, shown: &'static [&'static str]) -> impl IntoView + use<> {
        let errors = self.0;
        move || {
            errors.with(|list| {
                list.iter()
                    .filter(|e| !shown.iter().any(|f| field_matches(&e.field, f)))
                    .map(|e| {
                        let text = if e.field.is_empty() {
                            e.message.clone()
                        } else {
                            format!("{}: {}", e.field, e.message)
                        };
                        view! { <p class="field-error" data-field=e.field.clone()>{text}</p> }
                    })
                    .collect_view()
            })
        }
    }

    /// The message shown next to a field, empty when it has none. Errors
    /// of nested fields (`forwarding.busy`) or items (`members[1]`) count
    /// for the field that names them.
    pub fn view(&self, field: &'static str) -> impl IntoView + use<> {
        let errors = self.0;
        move || {
            errors.with(|list| {
                let text = list
                    .iter()
                    .filter(|e| field_matches(&e.field, field))
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                (!text.is_empty()).then(|| {
                    view! { <span class="field-error" data-field=field>{text}</span> }
                })
            })
        }
    }
}

impl Default for FieldErrors {
    fn default() -> Self {
        FieldErrors::new()
    }
}

fn field_matches(reported: &str, field: &str) -> bool {
    let reported = reported.trim_start_matches('/').replace('/', ".");
    reported == field
        || reported
            .strip_prefix(field)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// A labelled text input bound to a signal, with its field error; its
/// `data-testid` is `field-<field>`.
#[component]
pub fn TextField(
    /// What the person reads.
    label: &'static str,
    /// The text.
    value: RwSignal<String>,
    /// The API's name of the field, as problem details name it.
    field: &'static str,
    /// The form's errors.
    errors: FieldErrors,
    /// A hint shown while it is empty.
    #[prop(optional)]
    placeholder: &'static str,
    /// The id of a `<datalist>` of suggestions.
    #[prop(optional)]
    list: &'static str,
    /// Whether the form needs it.
    #[prop(optional)]
    required: bool,
    /// Whether it cannot be changed (a record's key).
    #[prop(optional)]
    disabled: bool,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <input
                data-testid=format!("field-{field}")
                placeholder=placeholder
                list=(!list.is_empty()).then_some(list)
                required=required
                disabled=disabled
                bind:value=value
            />
            {errors.view(field)}
        </label>
    }
}

/// The errors of a CSV import in a table, a row each: the file's row (the
/// header being row 1), the column and what is wrong; nothing when there
/// are none.
#[component]
pub fn RowErrors(
    /// The errors, in file order.
    errors: Vec<ImportError>,
    /// `data-testid` of the table.
    testid: &'static str,
) -> impl IntoView {
    (!errors.is_empty()).then(|| {
        let rows = errors
            .into_iter()
            .map(|e| {
                view! {
                    <tr>
                        <td class="num">{e.row}</td>
                        <td>{e.field}</td>
                        <td>{e.message}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="grid compact" data-testid=testid>
                <thead>
                    <tr>
                        <th>"Row"</th>
                        <th>"Column"</th>
                        <th>"Error"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        }
    })
}

/// `no errors`, `1 error`, `3 errors`.
pub fn errors_text(n: usize) -> String {
    match n {
        0 => "no errors".to_string(),
        1 => "1 error".to_string(),
        n => format!("{n} errors"),
    }
}

/// A secret the server shows only once (a new API key or password), with
/// a Copy button.
#[component]
pub fn OneTimeSecret(
    /// What it is, written before it ("Key deploy").
    what: String,
    /// The secret.
    secret: String,
    /// `data-testid` of the card.
    testid: &'static str,
    /// `data-testid` of the secret itself.
    value_testid: &'static str,
    /// Hides the card.
    #[prop(into)]
    dismiss: Callback<()>,
) -> impl IntoView {
    let state = AppState::get();
    let on_copy = {
        let (what, secret) = (what.clone(), secret.clone());
        move |_| {
            let (what, secret) = (what.clone(), secret.clone());
            spawn_local(async move {
                match copy(&secret).await {
                    Ok(()) => state.done(format!("{what} copied to the clipboard.")),
                    Err(e) => state.error.set(Some(e)),
                }
            });
        }
    };
    view! {
        <div class="card secret" data-testid=testid>
            <span>{format!("{what}: ")}</span>
            <code data-testid=value_testid>{secret}</code>
            <button on:click=on_copy>"Copy"</button>
            <span class="hint">"It is shown only now."</span>
            <button class="link" on:click=move |_| dismiss.run(())>"Dismiss"</button>
        </div>
    }
}

/// Asks the person to confirm a destructive action.
pub fn confirm(message: &str) -> bool {
    window().confirm_with_message(message).unwrap_or(false)
}

/// Puts text on the clipboard.
pub async fn copy(text: &str) -> Result<(), String> {
    let promise = window().navigator().clipboard().write_text(text);
    JsFuture::from(promise)
        .await
        .map(drop)
        .map_err(|_| "The browser refused to write to the clipboard.".to_string())
}

/// Offers text to the person as a file download.
pub fn download(filename: &str, mime: &str, text: &str) -> Result<(), String> {
    let fail = |_| "The browser could not start the download.".to_string();
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(fail)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(fail)?;
    let anchor = document()
        .create_element("a")
        .map_err(fail)?
        .unchecked_into::<web_sys::HtmlAnchorElement>();
    anchor.set_href(&url);
    anchor.set_download(filename);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Fetches a CSV export (`GET path`) and offers it as the download
/// `filename`; a failure goes to the banner.
pub fn export_csv(state: AppState, path: String, filename: &'static str) {
    spawn_local(async move {
        match api::get_text(&path).await {
            Ok(csv) => {
                if let Err(e) = download(filename, "text/csv", &csv) {
                    state.error.set(Some(e));
                }
            }
            Err(e) => state.fail(&e),
        }
    });
}

/// The value of an optional text field: `None` when blank.
pub fn opt(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A time as the person's browser writes it, or the raw text when it is
/// not a date.
pub fn local_time(rfc3339: &str) -> String {
    let ms = js_sys::Date::parse(rfc3339);
    if ms.is_nan() {
        return rfc3339.to_string();
    }
    String::from(js_sys::Date::new(&ms.into()).to_locale_string("default", &js_sys::Object::new()))
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        // Without a timer the promise never resolves: the caller waits on,
        // which only happens in a browser that has none.
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// The files chosen in a file input.
pub fn chosen_file(input: &NodeRef<leptos::html::Input>) -> Option<web_sys::File> {
    input.get_untracked()?.files()?.get(0)
}

#[cfg(test)]
mod tests {
    use super::field_matches;

    #[test]
    fn nested_fields_count_for_their_parent() {
        assert!(field_matches("forwarding.busy", "forwarding.busy"));
        assert!(field_matches("/forwarding/busy", "forwarding.busy"));
        assert!(field_matches("members[1]", "members"));
        assert!(!field_matches("name2", "name"));
    }
}
