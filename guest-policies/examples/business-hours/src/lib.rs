//! Business-hours routing: outside opening hours, on weekends and on public
//! holidays, calls from outside the company go to the voicemail box of the
//! number they dialled (or to an out-of-hours number, when one is set);
//! everything else is routed by the built-in policy.
//!
//! Adapt the constants below to your company and rebuild.

use edgepbx_policy_default::Builtin;
use edgepbx_policy_sdk::{Call, Decision, Destination, Host, LocalTime, Policy};

/// Opening hours on working days, in the tenant's time zone: from 08:00
/// (inclusive) to 18:00 (exclusive), as minutes since midnight.
pub const OPEN: (u32, u32) = (8 * 60, 18 * 60);

/// Fridays close earlier: 15:00.
pub const FRIDAY_CLOSE: u32 = 15 * 60;

/// Public holidays as (year, month, day); 0 as the year means every year.
pub const HOLIDAYS: &[(u16, u8, u8)] = &[
    (0, 1, 1),   // New Year's Day
    (0, 5, 1),   // Labour Day
    (0, 10, 3),  // German Unity Day
    (0, 12, 25), // Christmas Day
    (0, 12, 26), // Boxing Day
    (2026, 4, 3),
    (2026, 4, 6),
    (2026, 5, 14),
    (2026, 5, 25),
];

/// Where external calls go when closed; `None` sends them to voicemail.
pub const OUT_OF_HOURS: Option<&str> = None;

/// The business-hours policy.
pub struct BusinessHours;

edgepbx_policy_sdk::export_policy!(BusinessHours);

/// Whether the company is open at `now`.
pub fn is_open(now: &LocalTime) -> bool {
    let holiday = HOLIDAYS
        .iter()
        .any(|&(y, m, d)| (y == 0 || y == now.year) && m == now.month && d == now.day);
    if holiday || now.weekday.is_weekend() {
        return false;
    }
    let close = if now.weekday == edgepbx_policy_sdk::Weekday::Friday {
        FRIDAY_CLOSE
    } else {
        OPEN.1
    };
    (OPEN.0..close).contains(&now.minute_of_day())
}

impl Policy for BusinessHours {
    fn decide(call: &Call, host: &impl Host) -> Decision {
        let closed_to_caller = !call.is_internal() && !is_open(&call.now);
        // Only the first step is changed: once the built-in policy rings
        // someone, its forwarding rules apply as usual.
        if closed_to_caller && call.history.is_empty() {
            match (&call.dialled.destination, OUT_OF_HOURS) {
                (Destination::External(_) | Destination::Unknown, _) => {}
                (_, Some(number)) => return Decision::forward(number),
                (_, None) => return Decision::voicemail(call.dialled.number.clone()),
            }
        }
        Builtin::decide(call, host)
    }
}
