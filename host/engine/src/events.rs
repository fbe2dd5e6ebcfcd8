//! What happened, for whoever follows it: devices coming and going, call
//! legs ringing, answered and ending, lines changing what they show. The
//! engine emits these as [`Output::Event`](crate::Output::Event); the
//! driver stamps them with the time and publishes them (presence, the
//! console, `edgepbx events`).

use serde::Serialize;

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
    /// The tenant's configuration changed (extensions, settings, groups...);
    /// the driver publishes it when it hands the engine a reloaded tenant.
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
