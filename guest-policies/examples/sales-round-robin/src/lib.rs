//! Sales round-robin: calls to the sales number are shared out among the
//! sales team one at a time, each call starting with the next salesperson,
//! skipping anyone offline, busy or on do-not-disturb; unanswered calls end
//! in the sales voicemail box. The called party sees "Sales: " before the
//! caller's name. Every other call is routed by the built-in policy.
//!
//! The rotation counter lives in the tenant's key-value store, so it is
//! shared by all calls and survives restarts and policy upgrades.

use edgepbx_policy_default::Builtin;
use edgepbx_policy_sdk::{Call, Decision, Host, Level, Policy, Ring};

/// The number (or alias) callers dial for sales.
pub const SALES_NUMBERS: &[&str] = &["600", "sales"];

/// The team, in rotation order.
pub const SALES_TEAM: &[&str] = &["101", "102", "103", "104"];

/// Each salesperson rings this long before the next one is tried.
pub const RING_SECS: u32 = 15;

/// The voicemail box for calls nobody took.
pub const SALES_VOICEMAIL: &str = "600";

/// The sales round-robin policy.
pub struct SalesRoundRobin;

edgepbx_policy_sdk::export_policy!(SalesRoundRobin);

impl Policy for SalesRoundRobin {
    fn decide(call: &Call, host: &impl Host) -> Decision {
        if !SALES_NUMBERS.contains(&call.dialled.number.as_str()) {
            return Builtin::decide(call, host);
        }
        if !call.history.is_empty() {
            return Decision::voicemail(SALES_VOICEMAIL);
        }
        let mut team: Vec<&str> = SALES_TEAM
            .iter()
            .copied()
            .filter(|number| host.status(number).is_some_and(|s| s.is_available()))
            .collect();
        if team.is_empty() {
            return Decision::voicemail(SALES_VOICEMAIL);
        }
        match host.kv_increment("sales:turn", 1) {
            Ok(turn) => {
                let len = i64::try_from(team.len()).unwrap_or(i64::MAX);
                let start = usize::try_from((turn - 1).rem_euclid(len)).unwrap_or(0);
                team.rotate_left(start);
            }
            Err(error) => host.log(
                Level::Warn,
                &format!("sales counter unavailable: {error:?}"),
            ),
        }
        let ring = team.into_iter().fold(Ring::sequential(), |ring, number| {
            ring.extension(number, RING_SECS)
        });
        Decision::ring(ring).with_name_prefix("Sales: ")
    }
}
