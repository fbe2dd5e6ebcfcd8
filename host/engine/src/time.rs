//! Civil time from wall-clock instants: the Date header of a REGISTER's
//! 200, the time of day a routing policy sees, the times administrators
//! read. One place for the calendar arithmetic, UTC only.

use std::time::{SystemTime, UNIX_EPOCH};

/// A wall-clock instant broken down in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: u64,
    /// Month, 1–12.
    pub month: u64,
    /// Day of the month, 1–31.
    pub day: u64,
    /// Day of the week, 0 for Monday to 6 for Sunday.
    pub weekday: u64,
    /// Hour, 0–23.
    pub hour: u64,
    /// Minute, 0–59.
    pub minute: u64,
    /// Second, 0–59.
    pub second: u64,
}

impl Civil {
    /// `at` in UTC; instants before 1970 count as its first second.
    pub fn of(at: SystemTime) -> Civil {
        let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            // 1970-01-01 was a Thursday.
            weekday: (days + 3) % 7,
            hour: rem / 3_600,
            minute: rem % 3_600 / 60,
            second: rem % 60,
        }
    }
}

/// An RFC 1123 date in GMT, as the Date header field wants it.
pub fn http_date(at: SystemTime) -> String {
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = Civil::of(at);
    // Both indexes are in range by construction (weekday < 7, month 1–12).
    let weekday = WEEKDAYS.get(c.weekday as usize).copied().unwrap_or("Mon");
    let month = MONTHS
        .get(c.month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
        c.day, c.year, c.hour, c.minute, c.second
    )
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, as administrators read times.
pub fn humantime(at: SystemTime) -> String {
    let c = Civil::of(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// RFC 3339 in UTC with seconds: `YYYY-MM-DDTHH:MM:SSZ`, as the API writes
/// times.
pub fn rfc3339(at: SystemTime) -> String {
    let c = Civil::of(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31), after Howard
/// Hinnant's public-domain date algorithms.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(http_date(t), "Wed, 18 Nov 2026 11:06:40 GMT");
        assert_eq!(humantime(t), "2026-11-18 11:06:40");
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(Civil::of(leap).weekday, 1);
    }
}
