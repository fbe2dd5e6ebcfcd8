//! State shared by every page: the session, the chosen tenant, the error
//! banner and the live presence of extensions.
//!
//! Presence is one signal per extension, so that an event changes one dot
//! or one tile and nothing else is rendered again. The signals live in a
//! map filled from `GET /presence`, the extension pages and the
//! `presence` events of `GET /api/v1/events`.

use std::cell::RefCell;
use std::collections::HashMap;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{EventSource, MessageEvent};

use crate::api::{self, ApiError};
use crate::model::{Presence, Session, Status};

/// The live status and device count of one extension.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Live {
    /// Status.
    pub status: Status,
    /// Registered devices.
    pub devices: u32,
}

/// One signal per extension number.
#[derive(Clone, Copy)]
pub struct PresenceMap {
    /// Why a map and not a signal of a map: an update touches one entry.
    signals: StoredValue<HashMap<String, ArcRwSignal<Live>>>,
    /// The numbers known, in order; changes only when one appears or the
    /// map is cleared, so that the grid is diffed only then.
    numbers: RwSignal<Vec<String>>,
}

impl PresenceMap {
    fn new() -> PresenceMap {
        PresenceMap {
            signals: StoredValue::new(HashMap::new()),
            numbers: RwSignal::new(Vec::new()),
        }
    }

    /// The signal of an extension, created offline when unknown.
    pub fn signal(&self, number: &str) -> ArcRwSignal<Live> {
        if let Some(s) = self.signals.with_value(|m| m.get(number).cloned()) {
            return s;
        }
        let s = ArcRwSignal::new(Live::default());
        self.signals
            .update_value(|m| drop(m.insert(number.to_string(), s.clone())));
        s
    }

    /// Updates an extension's signal, touching it only on a change so that
    /// its tile does not redraw for nothing.
    fn record(&self, p: &Presence) {
        let live = Live {
            status: p.status,
            devices: p.devices,
        };
        let signal = self.signal(&p.extension);
        if signal.get_untracked() != live {
            signal.set(live);
        }
    }

    /// Records an extension's state; with `add_tile`, the grid gains a
    /// tile when the extension is new.
    pub fn set(&self, p: &Presence, add_tile: bool) {
        self.record(p);
        if add_tile && !self.numbers.with_untracked(|n| n.contains(&p.extension)) {
            self.numbers.update(|n| {
                n.push(p.extension.clone());
                n.sort_by(|a, b| number_order(a, b));
            });
        }
    }

    /// Replaces everything with a full snapshot (`GET /presence`).
    pub fn load(&self, all: &[Presence]) {
        for p in all {
            self.record(p);
        }
        let mut numbers: Vec<String> = all.iter().map(|p| p.extension.clone()).collect();
        numbers.sort_by(|a, b| number_order(a, b));
        numbers.dedup();
        self.numbers.set(numbers);
    }

    /// Drops the tile of an extension that no longer exists.
    pub fn remove(&self, number: &str) {
        if self
            .numbers
            .with_untracked(|n| n.iter().any(|x| x == number))
        {
            self.numbers.update(|n| n.retain(|x| x != number));
        }
    }

    /// The numbers of every known extension (for the BLF grid).
    pub fn numbers(&self) -> RwSignal<Vec<String>> {
        self.numbers
    }

    /// Forgets everything (tenant switch, logout).
    pub fn clear(&self) {
        self.signals.update_value(HashMap::clear);
        self.numbers.set(Vec::new());
    }
}

/// Orders extension numbers numerically when both are numbers.
pub fn number_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

/// Everything the pages share, provided as context.
#[derive(Clone, Copy)]
pub struct AppState {
    /// The logged-in user; `None` shows the login page.
    pub session: RwSignal<Option<Session>>,
    /// The tenant a system admin acts on.
    pub tenant: RwSignal<Option<String>>,
    /// The error shown in the banner.
    pub error: RwSignal<Option<String>>,
    /// A short confirmation shown in the banner.
    pub notice: RwSignal<Option<String>>,
    /// Live presence.
    pub presence: PresenceMap,
}

impl AppState {
    /// Creates the state and provides it as context.
    pub fn provide() -> AppState {
        let state = AppState {
            session: RwSignal::new(None),
            tenant: RwSignal::new(None),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            presence: PresenceMap::new(),
        };
        provide_context(state);
        state
    }

    /// The state provided by [`AppState::provide`].
    pub fn get() -> AppState {
        // The root component provides it before any page is created.
        expect_context::<AppState>()
    }

    /// Shows a failed request: a lost session returns to the login page,
    /// anything else goes to the banner.
    pub fn fail(&self, error: &ApiError) {
        if matches!(error, ApiError::Unauthorized(_)) && self.session.get_untracked().is_some() {
            self.logged_out();
            self.error
                .set(Some("Your session has ended; please log in again.".into()));
            return;
        }
        self.notice.set(None);
        self.error.set(Some(error.to_string()));
    }

    /// Shows a failed write to `what`: when it was refused because `what`
    /// changed since the page showed it (412, a stale `If-Match`), says
    /// what to do; anything else as [`fail`](AppState::fail) does.
    pub fn fail_write(&self, error: &ApiError, what: &str) {
        if matches!(error, ApiError::Problem(p) if p.status == 412) {
            self.notice.set(None);
            self.error.set(Some(format!(
                "Someone changed {what} after this page showed it. Reload the page to see \
                 their change, then make yours again."
            )));
        } else {
            self.fail(error);
        }
    }

    /// Shows a confirmation and clears the error.
    pub fn done(&self, message: impl Into<String>) {
        self.error.set(None);
        self.notice.set(Some(message.into()));
    }

    /// Clears the banner.
    pub fn clear_banner(&self) {
        self.error.set(None);
        self.notice.set(None);
    }

    /// Whether tenant pages can be shown: a tenant user, or a system admin
    /// who has chosen a tenant.
    pub fn has_tenant(&self) -> bool {
        self.session
            .with(|s| s.as_ref().is_some_and(|s| !s.is_system_admin()))
            || self.tenant.with(Option::is_some)
    }

    /// The extension of an extension user, who sees only it.
    pub fn own_extension(&self) -> Option<String> {
        self.session
            .with(|s| s.as_ref().and_then(|s| s.extension.clone()))
    }

    /// Whether the user may only read.
    pub fn read_only(&self) -> bool {
        self.session
            .with(|s| s.as_ref().is_some_and(|s| s.role == "read-only"))
    }

    /// Acts on another tenant (system admin): requests, events and pages follow.
    pub fn switch_tenant(&self, code: Option<String>) {
        api::set_tenant(code.clone());
        self.presence.clear();
        self.tenant.set(code);
        self.clear_banner();
        live_events::restart(*self);
    }

    /// Forgets the session and everything of the tenant.
    pub fn logged_out(&self) {
        live_events::stop();
        api::set_tenant(None);
        self.presence.clear();
        self.tenant.set(None);
        self.session.set(None);
    }
}

/// The `GET /api/v1/events` stream.
pub mod live_events {
    use super::*;

    /// The open stream and its listener, kept alive together.
    struct Stream {
        source: EventSource,
        /// Dropping them would detach the listeners.
        _listeners: Vec<Closure<dyn FnMut(MessageEvent)>>,
    }

    thread_local! {
        static STREAM: RefCell<Option<Stream>> = const { RefCell::new(None) };
    }

    /// Closes the stream, if open.
    pub fn stop() {
        STREAM.with(|s| {
            if let Some(stream) = s.borrow_mut().take() {
                stream.source.close();
            }
        });
    }

    /// (Re)opens the stream for the current tenant. The browser reconnects
    /// by itself after a network error.
    pub fn restart(state: AppState) {
        stop();
        // An extension user sees no tenant-wide presence.
        if !state.has_tenant() || state.own_extension().is_some() {
            return;
        }
        let Ok(source) = EventSource::new(&api::url("/events")) else {
            state.error.set(Some(
                "Live updates are not available in this browser.".into(),
            ));
            return;
        };
        let presence = state.presence;
        let on_presence = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(data) = ev.data().as_string() else {
                return;
            };
            // An event that does not parse is skipped: the next snapshot
            // or event corrects the state.
            if let Ok(p) = serde_json::from_str::<Presence>(&data) {
                presence.set(&p, true);
            }
        });
        // An extension removed from the tenant.
        let on_removed = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(data) = ev.data().as_string() else {
                return;
            };
            if let Ok(gone) = serde_json::from_str::<serde_json::Value>(&data)
                && let Some(number) = gone.get("extension").and_then(|n| n.as_str())
            {
                presence.remove(number);
            }
        });
        // The server dropped events for this stream: take a full snapshot.
        let on_resync = Closure::<dyn FnMut(MessageEvent)>::new(move |_: MessageEvent| {
            leptos::task::spawn_local(async move {
                if let Ok(all) = api::get::<Vec<Presence>>("/presence").await {
                    presence.load(&all);
                }
            });
        });
        let listeners = [
            ("presence", on_presence),
            ("removed", on_removed),
            ("resync", on_resync),
        ];
        for (name, listener) in &listeners {
            if source
                .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
                .is_err()
            {
                source.close();
                return;
            }
        }
        STREAM.with(|s| {
            *s.borrow_mut() = Some(Stream {
                source,
                _listeners: listeners.into_iter().map(|(_, l)| l).collect(),
            })
        });
    }
}
