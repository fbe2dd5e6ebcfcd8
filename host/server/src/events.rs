//! The server's event bus: every state change that presence, the console
//! or an operator may want to follow (devices coming and going, call legs
//! ringing, answered and ending: the engine's [`Event`]s) is published here
//! once, as it happens, stamped with its time. Subscribers that fall
//! behind lose the oldest events, never slow the SIP plane.
//!
//! Each tenant has a channel of its own, so a busy tenant can only make
//! its own subscribers fall behind, never another tenant's. The operator's
//! stream of every tenant (`edgepbx events` without a tenant) has its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use edgepbx_engine::Event;
use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts losing them.
const CAPACITY: usize = 4_096;

/// An event with its time, as subscribers get it.
#[derive(Debug, Clone, Serialize)]
pub struct Stamped {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

type Channel = broadcast::Sender<Arc<Stamped>>;

/// The bus. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    /// Every tenant's events.
    all: Channel,
    /// Each tenant's events, by tenant code, while someone listens.
    tenants: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            all: broadcast::channel(CAPACITY).0,
            tenants: Arc::default(),
        }
    }
}

impl EventBus {
    /// Publishes an event to whoever listens now; with nobody listening
    /// (no console, no `edgepbx events`) it costs a lock and a look-up on
    /// the SIP core's path.
    pub fn publish(&self, event: Event) {
        let tenant = {
            let Ok(mut tenants) = self.tenants.lock() else {
                return;
            };
            match tenants.get(event.tenant()) {
                Some(channel) if channel.receiver_count() > 0 => Some(channel.clone()),
                Some(_) => {
                    // Its last subscriber left.
                    tenants.remove(event.tenant());
                    None
                }
                None => None,
            }
        };
        if tenant.is_none() && self.all.receiver_count() == 0 {
            return;
        }
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let stamped = Arc::new(Stamped { at_ms, event });
        // No subscriber is not an error.
        if let Some(channel) = tenant {
            let _ = channel.send(stamped.clone());
        }
        let _ = self.all.send(stamped);
    }

    /// A new subscription to `tenant`'s events (every tenant's with
    /// `None`), from the next event on.
    pub fn subscribe(&self, tenant: Option<&str>) -> broadcast::Receiver<Arc<Stamped>> {
        let Some(tenant) = tenant else {
            return self.all.subscribe();
        };
        match self.tenants.lock() {
            Ok(mut tenants) => tenants
                .entry(tenant.to_owned())
                .or_insert_with(|| broadcast::channel(CAPACITY).0)
                .subscribe(),
            // A poisoned map: the stream of every tenant, which callers
            // filter by tenant anyway.
            Err(_) => self.all.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tenant: &str) -> Event {
        Event::Configured {
            tenant: tenant.to_owned(),
        }
    }

    #[test]
    fn a_busy_tenant_cannot_make_another_lose_events() {
        let bus = EventBus::default();
        let mut acme = bus.subscribe(Some("ACME"));
        let mut beta = bus.subscribe(Some("BETA"));
        let mut all = bus.subscribe(None);
        for _ in 0..CAPACITY * 2 {
            bus.publish(event("ACME"));
        }
        bus.publish(event("BETA"));
        // Beta sees its one event, and nothing of Acme's.
        let got = beta.try_recv().expect("beta's event");
        assert_eq!(got.event.tenant(), "BETA");
        assert!(beta.try_recv().is_err());
        // Acme's own subscriber and the operator's fell behind.
        assert!(matches!(
            acme.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        assert!(matches!(
            all.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn a_tenant_channel_goes_with_its_last_subscriber() {
        let bus = EventBus::default();
        drop(bus.subscribe(Some("ACME")));
        bus.publish(event("ACME"));
        assert!(bus.tenants.lock().map(|t| t.is_empty()).unwrap_or(false));
    }
}
