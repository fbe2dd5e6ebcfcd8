//! Desk phones provisioned by MAC address: list, add, edit, delete,
//! resync, CSV export and import ([`PhoneImport`]), and the tenant's
//! provisioning credential. The extension page's Devices tab shows an
//! extension's phones with [`ExtensionPhones`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;

use super::phones_csv::PhoneImport;
use crate::api;
use crate::model::{BlfKey, Phone, Provisioning, Resynced};
use crate::route::{Route, Tab};
use crate::state::AppState;
use crate::ui::{self, FieldErrors, OneTimeSecret, TextField};

/// The vendors a phone may be, with what the form calls them; the empty
/// value leaves it to the server, which tells it from the MAC address.
const VENDORS: [(&str, &str); 3] = [
    ("", "From the MAC address"),
    ("yealink", "Yealink"),
    ("grandstream", "Grandstream"),
];

/// The phones page.
#[component]
pub fn Phones() -> impl IntoView {
    let state = AppState::get();
    let (phones, reload) = load(None);
    let form = RwSignal::new(None::<Phone>);
    let status = RwSignal::new(None::<String>);
    let resync_all = move |_| resync(state, "/devices/resync".into(), status);
    let export = move |_| ui::export_csv(state, "/devices/export.csv".into(), "phones.csv");
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Phones"</h1>
                <span class="spacer"></span>
                <button data-testid="phones-export" on:click=export>
                    "Export CSV"
                </button>
                <button class="writes" data-testid="phones-resync-all" on:click=resync_all>
                    "Resync all"
                </button>
                <button class="primary writes" data-testid="phone-new" on:click=move |_| form.set(Some(Phone::default()))>
                    "New phone"
                </button>
            </div>
            <ProvisioningPanel/>
            {move || form.get().map(|phone| view! { <PhoneForm phone form reload/> })}
            <PhoneTable phones reload status form/>
            <PhoneImport reload/>
        </section>
    }
}

/// The desk phones of one extension, for its Devices tab.
#[component]
pub fn ExtensionPhones(
    /// Extension number.
    number: String,
) -> impl IntoView {
    let (phones, reload) = load(Some(number));
    let status = RwSignal::new(None::<String>);
    view! {
        <h2>"Desk phones"</h2>
        <PhoneTable phones reload status/>
    }
}

/// The phones (of one extension, when given), loaded now and again
/// whenever the returned counter changes.
fn load(extension: Option<String>) -> (RwSignal<Vec<Phone>>, RwSignal<u32>) {
    let state = AppState::get();
    let phones = RwSignal::new(Vec::<Phone>::new());
    let reload = RwSignal::new(0u32);
    let path = match extension {
        Some(n) => format!("/devices?extension={}", api::encode(&n)),
        None => "/devices".into(),
    };
    Effect::new(move |_| {
        reload.track();
        let path = path.clone();
        spawn_local(async move {
            match api::get::<Vec<Phone>>(&path).await {
                Ok(list) => phones.set(list),
                Err(e) => state.fail(&e),
            }
        });
    });
    (phones, reload)
}

/// Tells phones to fetch their files again (`POST path`) and says in
/// `status` how many registrations were told.
fn resync(state: AppState, path: String, status: RwSignal<Option<String>>) {
    spawn_local(async move {
        match api::post::<_, Resynced>(&path, &json!({})).await {
            Ok(r) => status.set(Some(resync_text(r))),
            Err(e) => state.fail(&e),
        }
    });
}

/// What a resync did: `1 of 2 phones notified; ...`.
fn resync_text(r: Resynced) -> String {
    let phones = if r.devices == 1 { "phone" } else { "phones" };
    format!(
        "Resync: {} of {} {phones} notified. A phone that is not registered fetches its files \
         when it next starts.",
        r.notified, r.devices
    )
}

/// Phones in a table with a Resync button each; with `form`, also Edit
/// (which opens the form on the phone) and Delete.
#[component]
pub fn PhoneTable(
    phones: RwSignal<Vec<Phone>>,
    reload: RwSignal<u32>,
    /// Where resyncs report.
    status: RwSignal<Option<String>>,
    #[prop(optional)] form: Option<RwSignal<Option<Phone>>>,
) -> impl IntoView {
    let state = AppState::get();
    view! {
        {move || status.get().map(|text| view! { <p class="hint" data-testid="phones-status">{text}</p> })}
        <table class="grid" data-testid="phones-table">
            <thead>
                <tr>
                    <th>"MAC address"</th>
                    <th>"Vendor"</th>
                    <th>"Model"</th>
                    <th>"Extension"</th>
                    <th>"BLF keys"</th>
                    <th>"Label"</th>
                    <th>"Last provisioned"</th>
                    <th>"Registered"</th>
                    <th>"Actions"</th>
                </tr>
            </thead>
            <tbody>
                <For
                    each=move || phones.get()
                    key=|p| format!("{p:?}")
                    children=move |p| {
                        let mac = p.mac.clone();
                        let shown_mac = mac_text(&mac);
                        let on_resync = {
                            let path = format!("/devices/{}/resync", api::encode(&mac));
                            move |_| resync(state, path.clone(), status)
                        };
                        let manage = form.map(|form| {
                            let edit = {
                                let p = p.clone();
                                move |_| form.set(Some(p.clone()))
                            };
                            let (shown, name) = (p.etag.clone(), shown_mac.clone());
                            let delete = move |_| {
                                if !ui::confirm(&format!("Delete phone {name}? It keeps its files until it is reset.")) {
                                    return;
                                }
                                let (shown, name) = (shown.clone(), name.clone());
                                let path = format!("/devices/{}", api::encode(&mac));
                                spawn_local(async move {
                                    match api::delete(&path, ui::opt(&shown).as_deref()).await {
                                        Ok(()) => {
                                            state.done(format!("Phone {name} deleted."));
                                            reload.update(|r| *r += 1);
                                        }
                                        Err(e) => state.fail_write(&e, &format!("phone {name}")),
                                    }
                                });
                            };
                            view! {
                                <button class="writes" on:click=edit data-testid=format!("phone-edit-{}", p.mac)>"Edit"</button>
                                <button class="danger writes" on:click=delete data-testid=format!("phone-delete-{}", p.mac)>
                                    "Delete"
                                </button>
                            }
                        });
                        let extension = Route::Extension(p.extension.clone(), Tab::Devices).href();
                        let (fetched, fetch_detail) = match &p.last_provisioned {
                            Some(f) => (
                                format!("{} from {}", ui::local_time(&f.at), f.address),
                                format!("{} ({})", f.file, f.user_agent.clone().unwrap_or_default()),
                            ),
                            None => ("never".to_string(), String::new()),
                        };
                        view! {
                            <tr data-testid=format!("phone-row-{}", p.mac)>
                                <td class="mono">{shown_mac}</td>
                                <td>{vendor_name(p.vendor.as_deref().unwrap_or_default()).to_string()}</td>
                                <td>{p.model.clone().unwrap_or_default()}</td>
                                <td><a href=extension>{p.extension.clone()}</a></td>
                                <td>{blf_text(&p.blf_keys)}</td>
                                <td>{p.label.clone().unwrap_or_default()}</td>
                                <td title=fetch_detail>{fetched}</td>
                                <td data-testid=format!("phone-registered-{}", p.mac)>
                                    {match &p.registered {
                                        Some(r) => format!("yes ({} from {})", r.transport, r.address),
                                        None => "no".to_string(),
                                    }}
                                </td>
                                <td class="actions">
                                    <button class="writes" on:click=on_resync data-testid=format!("phone-resync-{}", p.mac)>
                                        "Resync"
                                    </button>
                                    {manage}
                                </td>
                            </tr>
                        }
                    }
                />
            </tbody>
        </table>
        {move || phones.with(Vec::is_empty).then(|| view! { <p class="empty">"No phones."</p> })}
    }
}

/// Adds (`POST /devices`) or edits (`PUT /devices/{mac}`) a phone.
#[component]
fn PhoneForm(phone: Phone, form: RwSignal<Option<Phone>>, reload: RwSignal<u32>) -> impl IntoView {
    let state = AppState::get();
    let errors = FieldErrors::new();
    // A phone the server answered with has a version; a new one has none.
    let is_new = phone.etag.is_empty();
    let mac = RwSignal::new(mac_text(&phone.mac));
    let vendor = RwSignal::new(phone.vendor.clone().unwrap_or_default());
    let model = RwSignal::new(phone.model.clone().unwrap_or_default());
    let extension = RwSignal::new(phone.extension.clone());
    let blf = RwSignal::new(blf_text(&phone.blf_keys));
    let label = RwSignal::new(phone.label.clone().unwrap_or_default());
    // The version the form shows: a save applies only to it.
    let shown = phone.etag.clone();
    let line = phone.line;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        errors.clear();
        let body = Phone {
            mac: mac.get_untracked().trim().to_string(),
            vendor: ui::opt(&vendor.get_untracked()),
            model: ui::opt(&model.get_untracked()),
            extension: extension.get_untracked().trim().to_string(),
            line,
            blf_keys: parse_blf(&blf.get_untracked()),
            label: ui::opt(&label.get_untracked()),
            last_provisioned: None,
            registered: None,
            etag: String::new(),
        };
        let shown = shown.clone();
        spawn_local(async move {
            let answer = if is_new {
                api::post::<_, Phone>("/devices", &body).await
            } else {
                let path = format!("/devices/{}", api::encode(&body.mac));
                api::put::<_, Phone>(&path, &body, ui::opt(&shown).as_deref()).await
            };
            match answer {
                Ok(p) => {
                    state.done(format!("Phone {} saved.", mac_text(&p.mac)));
                    form.set(None);
                    reload.update(|r| *r += 1);
                }
                Err(e) => errors.fail_write(&state, &e, &format!("phone {}", body.mac)),
            }
        });
    };
    let vendors = VENDORS
        .into_iter()
        .map(|(value, name)| {
            let selected = phone.vendor.as_deref().unwrap_or_default() == value;
            view! { <option value=value selected=selected>{name}</option> }
        })
        .collect_view();
    view! {
        <form class="card form" on:submit=submit data-testid="phone-form">
            <h2>{if is_new { "New phone" } else { "Edit phone" }}</h2>
            <TextField label="MAC address" value=mac field="mac" errors required=true disabled=!is_new placeholder="80:5e:c0:12:34:56"/>
            <label>
                "Vendor"
                <select data-testid="field-vendor" on:change=move |ev| vendor.set(event_target_value(&ev))>
                    {vendors}
                </select>
                {errors.view("vendor")}
            </label>
            <TextField label="Model" value=model field="model" errors placeholder="e.g. T46U, GXP2170"/>
            <TextField label="Extension" value=extension field="extension" errors required=true/>
            <TextField label="BLF keys" value=blf field="blf_keys" errors placeholder="101=Bob, 102"/>
            <TextField label="Label" value=label field="label" errors/>
            {errors.view_others(&["mac", "vendor", "model", "extension", "blf_keys", "label"])}
            <div class="form-actions">
                <button type="submit" class="primary" data-testid="phone-save">"Save"</button>
                <button type="button" class="link" on:click=move |_| form.set(None)>"Cancel"</button>
            </div>
        </form>
    }
}

/// Where phones fetch their files, with which user name, whether a
/// password is set, and a button that sets a new one (shown once).
#[component]
fn ProvisioningPanel() -> impl IntoView {
    let state = AppState::get();
    let credential = RwSignal::new(None::<Provisioning>);
    let password = RwSignal::new(None::<String>);
    spawn_local(async move {
        match api::get::<Provisioning>("/provisioning").await {
            Ok(p) => credential.set(Some(p)),
            Err(e) => state.fail(&e),
        }
    });
    let renew = move |_| {
        let configured = credential.with_untracked(|c| c.as_ref().is_some_and(|c| c.configured));
        if configured
            && !ui::confirm(
                "Set a new provisioning password? The current one stops working at once: \
                 phones fetch nothing until they are given the new one.",
            )
        {
            return;
        }
        spawn_local(async move {
            match api::post::<_, Provisioning>("/provisioning/credential", &json!({})).await {
                Ok(mut p) => {
                    state.done("New provisioning password set.");
                    password.set(p.password.take());
                    credential.set(Some(p));
                }
                Err(e) => state.fail(&e),
            }
        });
    };
    let host = window().location().host().unwrap_or_default();
    view! {
        <div class="card" data-testid="provisioning">
            <h2>"Provisioning"</h2>
            {move || {
                credential
                    .get()
                    .map(|c| {
                        let configured = if c.configured { "set" } else { "not set: phones fetch nothing" };
                        view! {
                            <p class="row">
                                <span class="hint">"URL"</span>
                                <code data-testid="prov-url">{format!("https://{host}{}", c.path)}</code>
                            </p>
                            <p class="row">
                                <span class="hint">"User name"</span>
                                <code data-testid="prov-username">{c.username}</code>
                                <span class="hint">"Password"</span>
                                <span data-testid="prov-configured" data-configured=c.configured.to_string()>
                                    {configured}
                                </span>
                                <button class="writes" data-testid="prov-new-password" on:click=renew>
                                    "New password"
                                </button>
                            </p>
                        }
                    })
            }}
            {move || {
                password
                    .get()
                    .map(|p| {
                        view! {
                            <OneTimeSecret
                                what="Provisioning password".to_string()
                                secret=p
                                testid="prov-secret"
                                value_testid="prov-password"
                                dismiss=move || password.set(None)
                            />
                        }
                    })
            }}
        </div>
    }
}

/// What the console calls a vendor.
fn vendor_name(vendor: &str) -> &str {
    VENDORS
        .iter()
        .find(|(value, _)| !value.is_empty() && *value == vendor)
        .map_or(vendor, |(_, name)| name)
}

/// A MAC address as `80:5e:c0:12:34:56`, or as given when it is not 12
/// hex digits.
pub fn mac_text(mac: &str) -> String {
    if mac.len() != 12 || !mac.chars().all(|c| c.is_ascii_hexdigit()) {
        return mac.to_string();
    }
    mac.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// BLF keys as the form writes them: `101=Bob, 102`.
fn blf_text(keys: &[BlfKey]) -> String {
    keys.iter()
        .map(|k| {
            if k.label.is_empty() {
                k.number.clone()
            } else {
                format!("{}={}", k.number, k.label)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads `101=Bob, 102` as BLF keys, in order; the server checks numbers
/// and labels.
fn parse_blf(text: &str) -> Vec<BlfKey> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (number, label) = item.split_once('=').unwrap_or((item, ""));
            BlfKey {
                number: number.trim().to_string(),
                label: label.trim().to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_written_with_colons() {
        assert_eq!(mac_text("805ec0123456"), "80:5e:c0:12:34:56");
        assert_eq!(mac_text("805EC0123456"), "80:5e:c0:12:34:56");
        assert_eq!(mac_text("80:5e:c0"), "80:5e:c0");
        assert_eq!(mac_text("é05ec012345"), "é05ec012345");
    }

    #[test]
    fn blf_keys_read_and_write_the_same() {
        let keys = parse_blf(" 101 = Bob Smith, 102,, *8103=Pickup ");
        assert_eq!(
            keys,
            [
                BlfKey {
                    number: "101".into(),
                    label: "Bob Smith".into()
                },
                BlfKey {
                    number: "102".into(),
                    label: String::new()
                },
                BlfKey {
                    number: "*8103".into(),
                    label: "Pickup".into()
                },
            ]
        );
        assert_eq!(blf_text(&keys), "101=Bob Smith, 102, *8103=Pickup");
        assert!(parse_blf("  ").is_empty());
    }
}
