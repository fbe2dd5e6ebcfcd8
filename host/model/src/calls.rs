//! What a call leaves behind.

use std::time::SystemTime;

/// One ended call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Tenant code.
    pub tenant: String,
    /// The call's id, unique across restarts.
    pub id: String,
    /// The calling extension (or external number).
    pub caller: String,
    /// The number dialled.
    pub dialled: String,
    /// The extension that answered, if any.
    pub answered_by: Option<String>,
    /// When the INVITE arrived.
    pub started_at: SystemTime,
    /// When it was answered.
    pub answered_at: Option<SystemTime>,
    /// When it ended.
    pub ended_at: SystemTime,
    /// Talk time in seconds (0 when unanswered).
    pub duration_secs: u64,
    /// `answered`, `cancelled`, `busy`, `no-answer`, `rejected`, `failed`.
    pub outcome: String,
    /// Why it ended, for people (`caller hung up`, `rejected with 486`).
    pub cause: String,
    /// The policy that decided: `builtin`, or the tenant module's version.
    pub policy: String,
}
