//! IANA time zones in the forms phones want.
//!
//! Neither vendor takes an IANA name. Yealink wants an offset
//! (`local_time.time_zone = +1`) and a name from its own list
//! (`local_time.time_zone_name = Germany(Berlin)`), from which its built-in
//! AutoDST table knows the summer time rules. Grandstream's P64 takes a
//! POSIX TZ string with the rules spelled out
//! (`CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00`: standard name and
//! offset west of UTC, summer name and offset, then the changes as
//! month.week.weekday/time, week 5 meaning the last).
//!
//! The table covers the zones of edgepbx's first sites; a zone not in it
//! renders as UTC and the caller is told ([`Rendered::unknown_time_zone`]),
//! so that it can warn the administrator rather than show a wrong clock
//! silently. Adding a zone is adding a row, with a Yealink name taken from
//! the phone's own drop-down list.
//!
//! [`Rendered::unknown_time_zone`]: crate::Rendered::unknown_time_zone

/// One time zone in each vendor's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneTimeZone {
    /// The IANA name (`Europe/Berlin`).
    pub iana: &'static str,
    /// Yealink `local_time.time_zone`: standard offset from UTC (`+1`,
    /// `0`, `-5`, `+5:30`).
    pub yealink_offset: &'static str,
    /// Yealink `local_time.time_zone_name`, from the phone's list.
    pub yealink_name: &'static str,
    /// Grandstream P64: a POSIX TZ string.
    pub posix: &'static str,
}

/// Central European Time with EU summer time rules.
const CET: &str = "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00";
/// Eastern European Time with EU summer time rules.
const EET: &str = "EET-2EEST-3,M3.5.0/03:00:00,M10.5.0/04:00:00";

const fn zone(
    iana: &'static str,
    yealink_offset: &'static str,
    yealink_name: &'static str,
    posix: &'static str,
) -> PhoneTimeZone {
    PhoneTimeZone {
        iana,
        yealink_offset,
        yealink_name,
        posix,
    }
}

/// The zones edgepbx knows, UTC first.
const ZONES: &[PhoneTimeZone] = &[
    PhoneTimeZone::UTC,
    zone("Etc/UTC", "0", "GMT", "UTC0"),
    zone("Etc/GMT", "0", "GMT", "UTC0"),
    zone("GMT", "0", "GMT", "UTC0"),
    zone(
        "Europe/London",
        "0",
        "United Kingdom(London)",
        "GMT+0BST-1,M3.5.0/01:00:00,M10.5.0/02:00:00",
    ),
    zone(
        "Europe/Dublin",
        "0",
        "Ireland(Dublin)",
        "GMT+0IST-1,M3.5.0/01:00:00,M10.5.0/02:00:00",
    ),
    zone(
        "Europe/Lisbon",
        "0",
        "Portugal(Lisboa,Porto,Funchal)",
        "WET-0WEST-1,M3.5.0/01:00:00,M10.5.0/02:00:00",
    ),
    zone("Europe/Berlin", "+1", "Germany(Berlin)", CET),
    zone("Europe/Paris", "+1", "France(Paris)", CET),
    zone("Europe/Amsterdam", "+1", "Netherlands(Amsterdam)", CET),
    zone("Europe/Brussels", "+1", "Belgium(Brussels)", CET),
    zone("Europe/Luxembourg", "+1", "Luxembourg(Luxembourg)", CET),
    zone("Europe/Vienna", "+1", "Austria(Vienna)", CET),
    zone("Europe/Madrid", "+1", "Spain(Madrid)", CET),
    zone("Europe/Rome", "+1", "Italy(Rome)", CET),
    zone("Europe/Prague", "+1", "Czech Republic(Prague)", CET),
    zone("Europe/Budapest", "+1", "Hungary(Budapest)", CET),
    zone("Europe/Zagreb", "+1", "Croatia(Zagreb)", CET),
    zone("Europe/Athens", "+2", "Greece(Athens)", EET),
    zone("Europe/Helsinki", "+2", "Finland(Helsinki)", EET),
    zone("Europe/Bucharest", "+2", "Romania(Bucharest)", EET),
    zone("Europe/Riga", "+2", "Latvia(Riga)", EET),
    zone("Europe/Tallinn", "+2", "Estonia(Tallinn)", EET),
    zone("Europe/Moscow", "+3", "Russia(Moscow)", "MSK-3"),
    zone(
        "America/New_York",
        "-5",
        "United States-Eastern Time",
        "EST+5EDT,M3.2.0/02:00:00,M11.1.0/02:00:00",
    ),
    zone(
        "America/Chicago",
        "-6",
        "United States-Central Time",
        "CST+6CDT,M3.2.0/02:00:00,M11.1.0/02:00:00",
    ),
    zone(
        "America/Denver",
        "-7",
        "United States-Mountain Time",
        "MST+7MDT,M3.2.0/02:00:00,M11.1.0/02:00:00",
    ),
    zone("America/Phoenix", "-7", "United States-MST no DST", "MST+7"),
    zone(
        "America/Los_Angeles",
        "-8",
        "United States-Pacific Time",
        "PST+8PDT,M3.2.0/02:00:00,M11.1.0/02:00:00",
    ),
    zone("Asia/Kolkata", "+5:30", "India(Calcutta)", "IST-5:30"),
    zone("Asia/Shanghai", "+8", "China(Beijing)", "CST-8"),
    zone("Asia/Singapore", "+8", "Singapore(Singapore)", "SGT-8"),
    zone("Asia/Tokyo", "+9", "Japan(Tokyo)", "JST-9"),
];

impl PhoneTimeZone {
    /// UTC: what an unknown zone renders as.
    pub const UTC: PhoneTimeZone = zone("UTC", "0", "GMT", "UTC0");

    /// The zone named `iana` (exact spelling), if known.
    pub fn from_iana(iana: &str) -> Option<&'static PhoneTimeZone> {
        ZONES.iter().find(|zone| zone.iana == iana)
    }

    /// Every known zone.
    pub fn known() -> &'static [PhoneTimeZone] {
        ZONES
    }

    /// The zone named `iana`, or UTC; `true` when it was known.
    pub(crate) fn resolve(iana: &str) -> (&'static PhoneTimeZone, bool) {
        match PhoneTimeZone::from_iana(iana) {
            Some(zone) => (zone, true),
            None => (&ZONES[0], false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minutes east of UTC in a Yealink offset (`+5:30`).
    fn yealink_minutes(offset: &str) -> i32 {
        let (sign, rest) = match offset.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, offset.trim_start_matches('+')),
        };
        let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "0"));
        sign * (hours.parse::<i32>().expect("hours") * 60 + minutes.parse::<i32>().expect("min"))
    }

    /// Minutes east of UTC of a POSIX TZ string's standard time (POSIX
    /// counts west, so the sign flips).
    fn posix_minutes(posix: &str) -> i32 {
        let offset: String = posix
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .chars()
            .take_while(|c| c.is_ascii_digit() || "+-:".contains(*c))
            .collect();
        -yealink_minutes(&offset)
    }

    #[test]
    fn common_zones_map_to_each_vendor() {
        let berlin = PhoneTimeZone::from_iana("Europe/Berlin").expect("known");
        assert_eq!(berlin.yealink_offset, "+1");
        assert_eq!(berlin.yealink_name, "Germany(Berlin)");
        assert_eq!(berlin.posix, "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00");
        let new_york = PhoneTimeZone::from_iana("America/New_York").expect("known");
        assert_eq!(new_york.yealink_offset, "-5");
        assert_eq!(new_york.yealink_name, "United States-Eastern Time");
        assert!(new_york.posix.starts_with("EST+5EDT,M3.2.0"));
    }

    #[test]
    fn unknown_zones_fall_back_to_utc() {
        for name in ["Mars/Olympus_Mons", "", "europe/berlin", "Europe/Berlin\n"] {
            let (zone, known) = PhoneTimeZone::resolve(name);
            assert!(!known, "{name:?}");
            assert_eq!(*zone, PhoneTimeZone::UTC);
        }
        assert_eq!(PhoneTimeZone::resolve("UTC"), (&PhoneTimeZone::UTC, true));
    }

    #[test]
    fn the_vendor_forms_of_each_zone_agree() {
        let mut seen = std::collections::HashSet::new();
        for zone in PhoneTimeZone::known() {
            assert!(seen.insert(zone.iana), "{} twice", zone.iana);
            assert_eq!(
                yealink_minutes(zone.yealink_offset),
                posix_minutes(zone.posix),
                "{}",
                zone.iana
            );
            // Rules, when present, are two month.week.day changes.
            if let Some((_, rules)) = zone.posix.split_once(',') {
                assert_eq!(rules.matches(",M").count() + 1, 2, "{}", zone.iana);
                assert!(rules.starts_with('M'), "{}", zone.iana);
            }
        }
    }
}
