//! The edgepbx web console: a client-side rendered Leptos app, compiled to
//! WebAssembly and served by the edgepbx server at `/`, talking to its REST
//! API at `/api/v1` with the session cookie.
//!
//! Module map:
//! - [`api`]: the HTTP client (same-origin fetch, tenant parameter,
//!   problem details as [`api::ApiError`]).
//! - [`model`]: the JSON shapes of the API contract.
//! - [`state`]: the session, the chosen tenant, the banner and live
//!   presence (one signal per extension, fed by Server-Sent Events).
//! - [`route`]: pages addressed by the URL fragment.
//! - [`ui`]: small shared widgets and browser helpers.
//! - [`pages`]: one module per page.
//! - [`phone`]: the web phone's SIP user agent, sans-IO (the page that
//!   drives it is `pages::phone`, its media `pages::phone_media`).

mod api;
mod model;
mod pages;
mod phone;
mod route;
mod state;
mod ui;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::{Session, Tenant};
use crate::route::{Route, Tab};
use crate::state::{AppState, live_events};

fn main() {
    // A panic is a bug; say so on the page and in the browser's console
    // instead of failing silently (the release build aborts on panic).
    std::panic::set_hook(Box::new(|info| {
        let message = format!("The console stopped on a bug: {info}");
        web_sys::console::error_1(&message.as_str().into());
        if let Some(body) = document().body() {
            body.set_text_content(Some(&message));
        }
    }));
    leptos::mount::mount_to_body(App);
}

/// Whether the first `GET /session` has answered.
#[derive(Clone, Copy, PartialEq)]
enum Boot {
    Checking,
    Ready,
}

/// The whole console: the login page, or the navigation and a page.
#[component]
fn App() -> impl IntoView {
    let state = AppState::provide();
    let boot = RwSignal::new(Boot::Checking);
    spawn_local(async move {
        match api::get::<Session>("/session").await {
            Ok(session) => logged_in(state, session).await,
            Err(api::ApiError::Unauthorized(_)) => {}
            Err(e) => state.fail(&e),
        }
        boot.set(Boot::Ready);
    });
    view! {
        {move || match (boot.get(), state.session.with(Option::is_some)) {
            (Boot::Checking, _) => view! { <p class="loading">"Loading…"</p> }.into_any(),
            (Boot::Ready, false) => view! { <Banner/> <pages::login::Login/> }.into_any(),
            (Boot::Ready, true) => view! { <Console/> }.into_any(),
        }}
    }
}

/// After a login: for a system admin, choose the first tenant; then open
/// the live events.
async fn logged_in(state: AppState, session: Session) {
    let admin = session.is_system_admin();
    state.session.set(Some(session));
    if admin {
        match api::get::<Vec<Tenant>>("/tenants").await {
            Ok(tenants) => {
                let first = tenants.first().map(|t| t.code.clone());
                state.switch_tenant(first);
            }
            Err(e) => state.fail(&e),
        }
    } else {
        live_events::restart(state);
    }
}

/// Logs in with the session a login returned.
pub fn start_session(state: AppState, session: Session) {
    state.clear_banner();
    spawn_local(logged_in(state, session));
}

/// The error or confirmation banner.
#[component]
fn Banner() -> impl IntoView {
    let state = AppState::get();
    view! {
        {move || {
            state
                .error
                .get()
                .map(|e| {
                    view! {
                        <div class="banner error" role="alert" data-testid="error-banner">
                            <span>{e}</span>
                            <button class="close" on:click=move |_| state.error.set(None)>
                                "×"
                            </button>
                        </div>
                    }
                })
        }}
        {move || {
            state
                .notice
                .get()
                .map(|n| {
                    view! {
                        <div class="banner notice" role="status" data-testid="notice-banner">
                            <span>{n}</span>
                            <button class="close" on:click=move |_| state.notice.set(None)>
                                "×"
                            </button>
                        </div>
                    }
                })
        }}
    }
}

/// The navigation and the current page.
#[component]
fn Console() -> impl IntoView {
    let state = AppState::get();
    let route = route::current();
    // An extension user has one page: their own extension.
    let own = state.own_extension();
    let links = match &own {
        Some(number) => vec![
            (
                Route::Extension(number.clone(), Tab::General),
                "My extension",
                "nav-my-extension",
            ),
            (Route::Phone, "Phone", "nav-phone"),
        ],
        None => vec![
            (Route::Extensions, "Extensions", "nav-extensions"),
            (Route::Dashboard, "Dashboard", "nav-dashboard"),
            (Route::Groups, "Groups", "nav-groups"),
            (Route::Contacts, "Contacts", "nav-contacts"),
            (Route::Phones, "Phones", "nav-phones"),
            (Route::Policies, "Policies", "nav-policies"),
            (Route::ImportExport, "Import/Export", "nav-import-export"),
            (Route::ApiKeys, "API keys", "nav-api-keys"),
            (Route::Phone, "Phone", "nav-phone"),
        ],
    };
    let logout = move |_| {
        spawn_local(async move {
            // Logged out locally whatever the server says.
            let _ = api::delete("/session", None).await;
            state.logged_out();
            state.clear_banner();
        });
    };
    let nav = links
        .into_iter()
        .map(|(target, label, id)| {
            let href = target.href();
            let active = move || {
                let current = route.get();
                current == target
                    || (matches!(target, Route::Extensions | Route::Extension(..))
                        && matches!(current, Route::Extension(..)))
            };
            view! {
                <a href=href class:active=active data-testid=id>
                    {label}
                </a>
            }
        })
        .collect_view();
    view! {
        <header class="topbar">
            <span class="brand">"edgepbx"</span>
            <nav>{nav}</nav>
            <span class="spacer"></span>
            <TenantSwitcher/>
            <span class="who">{move || state.session.get().map(|s| s.email)}</span>
            {move || state.read_only().then(|| view! { <span class="badge">"read-only"</span> })}
            <button class="link" on:click=logout data-testid="nav-logout">
                "Logout"
            </button>
        </header>
        <Banner/>
        // Controls that change something carry the class `writes`; a
        // read-only user is not offered them (the API refuses them anyway).
        <main class:read-only=move || state.read_only()>
            {move || {
                let route = route.get();
                // A tenant switch shows the page anew, loading the tenant's data.
                state.tenant.track();
                if !state.has_tenant() {
                    return view! {
                        <p class="empty">
                            "Choose a tenant to administer (or add one with `edgepbx tenant add`)."
                        </p>
                    }
                        .into_any();
                }
                if let Some(number) = own.clone() {
                    // Whatever the address says, an extension user sees
                    // their own extension (or their phone).
                    let tab = match route {
                        Route::Phone => {
                            return view! { <pages::phone::PhonePage/> }.into_any();
                        }
                        Route::Extension(n, tab) if n == number && tab.personal() => tab,
                        _ => Tab::General,
                    };
                    return view! { <pages::extension::ExtensionDetail number tab/> }.into_any();
                }
                match route {
                    Route::Extensions => view! { <pages::extensions::Extensions/> }.into_any(),
                    Route::Extension(number, tab) => {
                        view! { <pages::extension::ExtensionDetail number tab/> }.into_any()
                    }
                    Route::Dashboard => view! { <pages::dashboard::Dashboard/> }.into_any(),
                    Route::Groups => view! { <pages::groups::Groups/> }.into_any(),
                    Route::Contacts => view! { <pages::contacts::Contacts/> }.into_any(),
                    Route::Phones => view! { <pages::phones::Phones/> }.into_any(),
                    Route::Policies => view! { <pages::policies::Policies/> }.into_any(),
                    Route::ImportExport => {
                        view! { <pages::import_export::ImportExport/> }.into_any()
                    }
                    Route::ApiKeys => view! { <pages::api_keys::ApiKeys/> }.into_any(),
                    Route::Phone => view! { <pages::phone::PhonePage/> }.into_any(),
                }
            }}
        </main>
    }
}

/// The tenant chooser of a system admin.
#[component]
fn TenantSwitcher() -> impl IntoView {
    let state = AppState::get();
    let tenants = RwSignal::new(Vec::<Tenant>::new());
    let admin = move || {
        state
            .session
            .with(|s| s.as_ref().is_some_and(Session::is_system_admin))
    };
    if admin() {
        spawn_local(async move {
            match api::get::<Vec<Tenant>>("/tenants").await {
                Ok(list) => tenants.set(list),
                Err(e) => state.fail(&e),
            }
        });
    }
    let on_change = move |ev| {
        let code = event_target_value(&ev);
        state.switch_tenant(ui::opt(&code));
    };
    move || {
        admin().then(|| {
            view! {
                <label class="tenant">
                    "Tenant "
                    <select on:change=on_change data-testid="tenant-switcher">
                        <option value="" prop:selected=move || state.tenant.with(Option::is_none)>
                            "—"
                        </option>
                        <For
                            each=move || tenants.get()
                            key=|t| t.code.clone()
                            children=move |t| {
                                let code = t.code.clone();
                                let selected = move || {
                                    state.tenant.with(|c| c.as_deref() == Some(code.as_str()))
                                };
                                view! {
                                    <option value=t.code.clone() prop:selected=selected>
                                        {format!("{} ({})", t.code, t.sip_domain)}
                                    </option>
                                }
                            }
                        />
                    </select>
                </label>
            }
        })
    }
}
