//! Pages addressed by the URL fragment (`#/extensions/100/forwarding`), so
//! that the server serves one document at `/` and reloads keep the page.

use leptos::prelude::*;

/// A tab of the extension detail page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Number, name, password, caller ID, ring timeout.
    General,
    /// Other numbers of the extension.
    Aliases,
    /// Registered devices.
    Devices,
    /// Forwarding rules.
    Forwarding,
    /// Find-me/follow-me.
    FollowMe,
    /// Voicemail.
    Voicemail,
    /// Caller ID and company directory.
    CallerId,
    /// Online/offline timeline of the last 24 hours.
    Reliability,
}

impl Tab {
    /// Every tab, in the order shown.
    pub const ALL: [Tab; 8] = [
        Tab::General,
        Tab::Aliases,
        Tab::Devices,
        Tab::Forwarding,
        Tab::FollowMe,
        Tab::Voicemail,
        Tab::CallerId,
        Tab::Reliability,
    ];

    /// Whether an extension user sees it (the others hold what only an
    /// administrator changes).
    pub fn personal(self) -> bool {
        !matches!(self, Tab::Aliases | Tab::CallerId)
    }

    /// Its path segment.
    pub fn slug(self) -> &'static str {
        match self {
            Tab::General => "general",
            Tab::Aliases => "aliases",
            Tab::Devices => "devices",
            Tab::Forwarding => "forwarding",
            Tab::FollowMe => "follow-me",
            Tab::Voicemail => "voicemail",
            Tab::CallerId => "caller-id",
            Tab::Reliability => "reliability",
        }
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::General => "General",
            Tab::Aliases => "Aliases",
            Tab::Devices => "Devices",
            Tab::Forwarding => "Forwarding",
            Tab::FollowMe => "Find-me/Follow-me",
            Tab::Voicemail => "Voicemail",
            Tab::CallerId => "Caller ID and Directory",
            Tab::Reliability => "Reliability",
        }
    }

    fn from_slug(slug: &str) -> Tab {
        Tab::ALL
            .into_iter()
            .find(|t| t.slug() == slug)
            .unwrap_or(Tab::General)
    }
}

/// A page of the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// The extensions list.
    Extensions,
    /// One extension.
    Extension(String, Tab),
    /// The BLF grid.
    Dashboard,
    /// Ring groups and virtual extensions.
    Groups,
    /// Company directory.
    Contacts,
    /// Desk phones and their provisioning.
    Phones,
    /// Routing policies.
    Policies,
    /// CSV import and export.
    ImportExport,
    /// API keys.
    ApiKeys,
    /// The web phone.
    Phone,
}

impl Route {
    /// Reads a fragment such as `#/extensions/100/voicemail`; anything
    /// unknown is the extensions list.
    pub fn parse(hash: &str) -> Route {
        let path = hash.trim_start_matches('#').trim_matches('/');
        let mut parts = path.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("extensions"), Some(n), tab) if !n.is_empty() => {
                let number = js_sys::decode_uri_component(n)
                    .ok()
                    .and_then(|s| s.as_string())
                    .unwrap_or_else(|| n.to_string());
                Route::Extension(number, Tab::from_slug(tab.unwrap_or("")))
            }
            (Some("dashboard"), ..) => Route::Dashboard,
            (Some("groups"), ..) => Route::Groups,
            (Some("contacts"), ..) => Route::Contacts,
            (Some("phones"), ..) => Route::Phones,
            (Some("policies"), ..) => Route::Policies,
            (Some("import-export"), ..) => Route::ImportExport,
            (Some("api-keys"), ..) => Route::ApiKeys,
            (Some("phone"), ..) => Route::Phone,
            _ => Route::Extensions,
        }
    }

    /// The link to it.
    pub fn href(&self) -> String {
        match self {
            Route::Extensions => "#/extensions".into(),
            Route::Extension(n, tab) => {
                format!("#/extensions/{}/{}", crate::api::encode(n), tab.slug())
            }
            Route::Dashboard => "#/dashboard".into(),
            Route::Groups => "#/groups".into(),
            Route::Contacts => "#/contacts".into(),
            Route::Phones => "#/phones".into(),
            Route::Policies => "#/policies".into(),
            Route::ImportExport => "#/import-export".into(),
            Route::ApiKeys => "#/api-keys".into(),
            Route::Phone => "#/phone".into(),
        }
    }
}

/// The current route, following the fragment while the calling component
/// lives.
pub fn current() -> ReadSignal<Route> {
    let (route, set_route) = signal(Route::parse(&location_hash_or_empty()));
    let listener = window_event_listener(leptos::ev::hashchange, move |_| {
        set_route.set(Route::parse(&location_hash_or_empty()));
    });
    on_cleanup(move || listener.remove());
    route
}

fn location_hash_or_empty() -> String {
    window().location().hash().unwrap_or_default()
}
