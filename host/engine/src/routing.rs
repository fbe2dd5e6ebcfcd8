//! Routing decisions as the engine keeps them: what the tenant's policy is
//! asked ([`DecisionRequest`]), what it answers ([`Decision`]) and the
//! history of the steps a call went through. These are the engine's own
//! types; the driver converts them to and from the policy contract's
//! types at the policy boundary, so a revision of the contract stops
//! there.

use std::sync::Arc;
use std::time::SystemTime;

use crate::tenants::Tenant;

/// Identifies one decision of one call: a decision that comes back for a
/// step the call is no longer at (the caller hung up meanwhile) is
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecisionId {
    /// The engine's id of the call.
    pub call: u64,
    /// Which decision of the call (1 for the first).
    pub step: usize,
}

/// Where a call comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// An extension of the tenant.
    Internal,
    /// A carrier's caller, through a trunk.
    External,
}

/// Who calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Extension number, or the external number (`anonymous` when hidden).
    pub number: String,
    /// Display name, when known.
    pub name: Option<String>,
    /// Internal or external.
    pub kind: CallerKind,
    /// Where it came from: a source address, or the trunk's name.
    pub source: String,
}

/// Ring targets together or one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMode {
    /// All at once.
    Simultaneous,
    /// In order, each for its own time.
    Sequential,
}

/// Something that can ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every registered device of an extension, by number or alias.
    Extension(String),
    /// One device of an extension.
    Device {
        /// The extension's number.
        extension: String,
        /// The device's id (its instance id, else its contact URI).
        device: String,
    },
    /// A number outside the tenant, through its trunk.
    External(String),
}

/// A target with its own ring time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingTarget {
    /// What rings.
    pub target: Target,
    /// For how long, in seconds.
    pub timeout_secs: u32,
}

/// Ring some targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// Together or in order.
    pub mode: RingMode,
    /// The targets.
    pub targets: Vec<RingTarget>,
}

/// The next step of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ring targets.
    Ring(Ring),
    /// Route the call on to another number, as if the caller had dialled it.
    Forward(String),
    /// Leave a message in the voicemail box of this extension number.
    Voicemail(String),
    /// Refuse the call with this SIP status (400–699).
    Reject(u16),
}

/// Caller-ID changes for the called party.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presentation {
    /// Put before the caller's number.
    pub number_prefix: Option<String>,
    /// Put before the caller's name.
    pub name_prefix: Option<String>,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Someone answered.
    Answered,
    /// Every target was busy.
    Busy,
    /// Nothing answered within the ring times.
    NoAnswer,
    /// No target could be reached (no registered device).
    Offline,
    /// A target declined the call.
    Declined,
    /// The step could not be carried out.
    Failed,
}

impl Outcome {
    /// The outcome as events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::NoAnswer => "no answer",
            Outcome::Offline => "offline",
            Outcome::Declined => "declined",
            Outcome::Failed => "failed",
        }
    }
}

/// A step already tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What the policy chose.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What happens next.
    pub action: Action,
    /// Caller-ID changes, if any.
    pub presentation: Option<Presentation>,
}

/// A decision as it comes back to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Which decision this answers.
    pub id: DecisionId,
    /// What to do.
    pub decision: Decision,
    /// Who decided, for logs and records (`builtin`, `v3`,
    /// `builtin (v3 faulted)`).
    pub by: String,
}

/// What the engine asks of the tenant's routing policy.
#[derive(Debug, Clone)]
pub struct DecisionRequest {
    /// Which decision this is; the answer names it.
    pub id: DecisionId,
    /// The tenant, as the call has known it since it started.
    pub tenant: Arc<Tenant>,
    /// The call's id as policies see it: stable across its decisions.
    pub call_id: String,
    /// Who calls.
    pub caller: Caller,
    /// The number being routed (changes when the call is forwarded).
    pub dialled: String,
    /// When `dialled` is an alias, the extension it belongs to.
    pub alias_of: Option<String>,
    /// The time of the decision.
    pub wall: SystemTime,
    /// Randomness for the policy's choices.
    pub entropy: u64,
    /// What was tried so far for `dialled`.
    pub history: Vec<Attempt>,
}
