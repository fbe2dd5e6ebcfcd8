//! The server's event bus: every state change that presence, the console
//! or an operator may want to follow (devices coming and going, call legs
//! ringing, answered and ending: the engine's [`Event`]s) is published here
//! once, as it happens, stamped with its time. Subscribers that fall
//! behind lose the oldest events, never slow the SIP plane.

use std::sync::Arc;
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

/// The bus. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Stamped>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publishes an event to whoever listens now; with nobody listening
    /// (no console, no `edgepbx events`) it costs nothing on the SIP
    /// core's path.
    pub fn publish(&self, event: Event) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::new(Stamped { at_ms, event }));
    }

    /// A new subscription, from the next event on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stamped>> {
        self.sender.subscribe()
    }
}
