//! The server's event bus: every state change that presence, the console
//! or an operator may want to follow (devices coming and going, call legs
//! ringing, answered and ending) is published here once, as it happens.
//! Subscribers that fall behind lose the oldest events, never slow the
//! SIP core.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts losing them.
const CAPACITY: usize = 4_096;

/// Which side of a call a leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegRole {
    /// The party that called.
    Caller,
    /// A device or number being rung, or the one that answered.
    Callee,
}

/// The state a leg reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegState {
    /// The caller is waiting for an answer.
    Calling,
    /// The callee's device rings.
    Ringing,
    /// The leg is connected.
    Answered,
    /// The leg is over (see the cause).
    Ended,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A device registered or went away.
    Device {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        extension: String,
        /// The device's contact URI.
        contact: String,
        /// Registered (true) or gone (false).
        online: bool,
        /// Why it went away, when it did.
        reason: Option<String>,
    },
    /// A call leg changed state.
    Leg {
        /// Tenant code.
        tenant: String,
        /// The call's id.
        call: String,
        /// Caller or callee.
        role: LegRole,
        /// The extension of the leg, when it is one.
        extension: Option<String>,
        /// Its new state.
        state: LegState,
        /// Why it ended (`answered elsewhere`, `busy`, `caller hung up`...).
        cause: Option<String>,
    },
    /// What an extension's line shows changed (BLF).
    Line {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        extension: String,
        /// Registered devices.
        devices: usize,
        /// A call rings it.
        ringing: bool,
        /// It is in an answered call.
        talking: bool,
    },
    /// The tenant's configuration changed (extensions, settings, groups...).
    Configured {
        /// Tenant code.
        tenant: String,
    },
}

impl Event {
    /// The tenant the event belongs to.
    pub fn tenant(&self) -> &str {
        match self {
            Event::Device { tenant, .. }
            | Event::Leg { tenant, .. }
            | Event::Line { tenant, .. }
            | Event::Configured { tenant } => tenant,
        }
    }
}

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
