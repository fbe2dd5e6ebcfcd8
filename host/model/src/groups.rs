//! Ring groups and virtual extensions: numbers that ring other extensions.
//!
//! A ring group hunts through its members by a strategy; a virtual
//! extension rings all its members at once and has no device of its own.
//! Their numbers share the tenant's dialling namespace with extension
//! numbers and aliases.

use std::time::SystemTime;

use crate::InvalidField;
use crate::settings::ForwardTarget;

/// Most members of one group.
pub const MAX_MEMBERS: usize = 100;

/// A group's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// A ring group with a strategy.
    Ring,
    /// A virtual extension: rings all members, has no devices.
    Virtual,
}

/// How a ring group picks whom to ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStrategy {
    /// Every available member at once.
    RingAll,
    /// Members in list order, one after another.
    Hunt,
    /// One after another, starting one further along each call.
    RoundRobin,
    /// One after another in random order.
    Random,
    /// One after another, the member offered a call longest ago first.
    LeastRecent,
}

impl GroupStrategy {
    /// Every strategy, for help texts.
    pub const ALL: [GroupStrategy; 5] = [
        GroupStrategy::RingAll,
        GroupStrategy::Hunt,
        GroupStrategy::RoundRobin,
        GroupStrategy::Random,
        GroupStrategy::LeastRecent,
    ];

    /// `ring-all`, `hunt`, `round-robin`, `random` or `least-recent`.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStrategy::RingAll => "ring-all",
            GroupStrategy::Hunt => "hunt",
            GroupStrategy::RoundRobin => "round-robin",
            GroupStrategy::Random => "random",
            GroupStrategy::LeastRecent => "least-recent",
        }
    }

    /// Parses [`GroupStrategy::as_str`]'s words.
    pub fn parse(text: &str) -> Result<GroupStrategy, InvalidField> {
        GroupStrategy::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                InvalidField::new(
                    "strategy",
                    "must be ring-all, hunt, round-robin, random or least-recent",
                )
            })
    }
}

/// A ring group or virtual extension as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Code of the owning tenant.
    pub tenant: String,
    /// Its number.
    pub number: String,
    /// Display name.
    pub name: String,
    /// Ring group or virtual extension.
    pub kind: GroupKind,
    /// How members are rung (virtual extensions ring all).
    pub strategy: GroupStrategy,
    /// Member extension numbers, in order.
    pub members: Vec<String>,
    /// How long each member (or all, for ring-all) rings, seconds.
    pub ring_timeout_secs: u32,
    /// Where an unanswered call goes; `None` ends it.
    pub no_answer: Option<ForwardTarget>,
    /// When it last changed: its version. Set by the store; what a write
    /// passes is ignored.
    pub updated_at: SystemTime,
}
