//! What an administrator sets about an extension's calls: ring time, do
//! not disturb, forwarding, find-me/follow-me, voicemail, caller ID and
//! which destinations it may dial. The routing policy reads these; the
//! store only checks that each value is well formed.

use surrealdb::types::SurrealValue;

use crate::StoreError;

/// Longest dialable number, in characters.
pub const MAX_NUMBER_LEN: usize = 32;
/// Longest ring time a setting may ask for, in seconds.
pub const MAX_RING_SECS: u32 = 600;
/// Most find-me/follow-me destinations.
pub const MAX_FOLLOW_ME: usize = 10;
/// Longest inbound caller-ID prefix, in characters.
const MAX_PREFIX_CHARS: usize = 16;
/// Longest list of destination patterns, in bytes.
const MAX_PATTERNS_LEN: usize = 256;

/// Where a forwarding rule sends a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTarget {
    /// Another number: an extension, group or alias of the tenant, or an
    /// external number (through the tenant's trunk).
    Number(String),
    /// The extension's voicemail box.
    Voicemail,
}

impl ForwardTarget {
    /// Parses `voicemail` or a dialable number; `field` names the setting
    /// in the error.
    pub fn parse(field: &'static str, text: &str) -> Result<ForwardTarget, StoreError> {
        if text.eq_ignore_ascii_case("voicemail") {
            return Ok(ForwardTarget::Voicemail);
        }
        dialable(field, text).map(ForwardTarget::Number)
    }
}

impl std::fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardTarget::Number(n) => f.write_str(n),
            ForwardTarget::Voicemail => f.write_str("voicemail"),
        }
    }
}

/// Ring all destinations together or one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMode {
    /// All at once.
    Simultaneous,
    /// In order, each for its own time.
    Sequential,
}

impl RingMode {
    /// `simultaneous` or `sequential`.
    pub fn as_str(self) -> &'static str {
        match self {
            RingMode::Simultaneous => "simultaneous",
            RingMode::Sequential => "sequential",
        }
    }

    /// Parses [`RingMode::as_str`]'s words.
    pub fn parse(text: &str) -> Result<RingMode, StoreError> {
        match text {
            "simultaneous" => Ok(RingMode::Simultaneous),
            "sequential" => Ok(RingMode::Sequential),
            _ => Err(StoreError::invalid(
                "follow_me.mode",
                "must be simultaneous or sequential",
            )),
        }
    }
}

/// One find-me/follow-me destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowMeDestination {
    /// The number to ring.
    pub number: String,
    /// How long, in seconds.
    pub timeout_secs: u32,
}

/// Find-me/follow-me: other numbers that ring for the extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowMe {
    /// Together with the extension's devices, or one after another.
    pub mode: RingMode,
    /// In order.
    pub destinations: Vec<FollowMeDestination>,
}

/// Which numbers an extension may call outside the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedDestinations {
    /// Any number.
    #[default]
    All,
    /// None: internal calls only.
    None,
    /// Numbers matching one of the patterns: digits, `+*#` as themselves,
    /// `X` any digit, `Z` 1–9, `N` 2–9, and a final `.` for one or more
    /// further characters (e.g. `0X.` or `+3312XXXXXXX`).
    Patterns(Vec<String>),
}

impl AllowedDestinations {
    /// Parses `all`, `none` or comma-separated patterns.
    pub fn parse(text: &str) -> Result<AllowedDestinations, StoreError> {
        const FIELD: &str = "allowed_destinations";
        match text.trim() {
            "all" => return Ok(AllowedDestinations::All),
            "none" => return Ok(AllowedDestinations::None),
            _ => {}
        }
        if text.len() > MAX_PATTERNS_LEN {
            return Err(StoreError::invalid(FIELD, "too long"));
        }
        let patterns: Vec<String> = text.split(',').map(|p| p.trim().to_owned()).collect();
        for pattern in &patterns {
            let body = pattern.strip_suffix('.').unwrap_or(pattern);
            let valid = !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"+*#XZN".contains(&b));
            if !valid {
                return Err(StoreError::invalid(
                    FIELD,
                    format!(
                        "{pattern:?} is not all, none or a pattern of digits, X, Z, N and a final '.'"
                    ),
                ));
            }
        }
        Ok(AllowedDestinations::Patterns(patterns))
    }

    /// Whether `number` may be called.
    pub fn permits(&self, number: &str) -> bool {
        match self {
            AllowedDestinations::All => true,
            AllowedDestinations::None => false,
            AllowedDestinations::Patterns(patterns) => {
                patterns.iter().any(|p| pattern_matches(p, number))
            }
        }
    }
}

impl std::fmt::Display for AllowedDestinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowedDestinations::All => f.write_str("all"),
            AllowedDestinations::None => f.write_str("none"),
            AllowedDestinations::Patterns(p) => f.write_str(&p.join(",")),
        }
    }
}

fn pattern_matches(pattern: &str, number: &str) -> bool {
    let (body, open) = match pattern.strip_suffix('.') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    let (b, n) = (body.as_bytes(), number.as_bytes());
    let length_ok = if open {
        n.len() > b.len()
    } else {
        n.len() == b.len()
    };
    length_ok
        && b.iter().zip(n).all(|(p, c)| match p {
            b'X' => c.is_ascii_digit(),
            b'Z' => (b'1'..=b'9').contains(c),
            b'N' => (b'2'..=b'9').contains(c),
            other => other == c,
        })
}

/// An extension's call settings. The default is what a new extension
/// gets: ring for the server's default time, no forwarding, no voicemail,
/// every destination allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallSettings {
    /// Ring time in seconds; `None` for the server default.
    pub ring_timeout_secs: Option<u32>,
    /// Do not disturb.
    pub dnd: bool,
    /// Forward every call.
    pub forward_unconditional: Option<ForwardTarget>,
    /// Forward when busy (or declined).
    pub forward_busy: Option<ForwardTarget>,
    /// Forward when not answered in the ring time.
    pub forward_no_answer: Option<ForwardTarget>,
    /// Forward when no device is registered.
    pub forward_offline: Option<ForwardTarget>,
    /// Find-me/follow-me.
    pub follow_me: Option<FollowMe>,
    /// Unanswered calls go to voicemail when no rule applies.
    pub voicemail: bool,
    /// Number shown on calls it makes to external numbers; `None` for the
    /// tenant's.
    pub outbound_caller_id: Option<String>,
    /// Put before the caller's name on calls to this extension (e.g.
    /// `Sales: `), so the phone shows which line rings.
    pub inbound_prefix: Option<String>,
    /// External numbers it may call.
    pub allowed_destinations: AllowedDestinations,
}

impl CallSettings {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), StoreError> {
        if let Some(secs) = self.ring_timeout_secs
            && !(1..=MAX_RING_SECS).contains(&secs)
        {
            return Err(StoreError::invalid(
                "ring_timeout_secs",
                format!("must be 1 to {MAX_RING_SECS}"),
            ));
        }
        for (field, rule) in [
            ("forward_unconditional", &self.forward_unconditional),
            ("forward_busy", &self.forward_busy),
            ("forward_no_answer", &self.forward_no_answer),
            ("forward_offline", &self.forward_offline),
        ] {
            if let Some(ForwardTarget::Number(n)) = rule {
                dialable(field, n)?;
            }
        }
        if let Some(follow_me) = &self.follow_me {
            if follow_me.destinations.is_empty() || follow_me.destinations.len() > MAX_FOLLOW_ME {
                return Err(StoreError::invalid(
                    "follow_me",
                    format!("needs 1 to {MAX_FOLLOW_ME} destinations"),
                ));
            }
            for d in &follow_me.destinations {
                dialable("follow_me", &d.number)?;
                if !(1..=MAX_RING_SECS).contains(&d.timeout_secs) {
                    return Err(StoreError::invalid(
                        "follow_me",
                        format!("timeouts must be 1 to {MAX_RING_SECS} seconds"),
                    ));
                }
            }
        }
        if let Some(id) = &self.outbound_caller_id {
            dialable("outbound_caller_id", id)?;
        }
        if let Some(prefix) = &self.inbound_prefix
            && (prefix.is_empty()
                || prefix.chars().count() > MAX_PREFIX_CHARS
                || prefix
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == '\\'))
        {
            return Err(StoreError::invalid(
                "inbound_prefix",
                format!("must be 1 to {MAX_PREFIX_CHARS} printable characters without quotes"),
            ));
        }
        if let AllowedDestinations::Patterns(p) = &self.allowed_destinations {
            AllowedDestinations::parse(&p.join(","))?;
        }
        Ok(())
    }
}

/// A dialable number: 1 to 32 of digits, `+`, `*`, `#`.
pub(crate) fn dialable(field: &'static str, text: &str) -> Result<String, StoreError> {
    let ok = (1..=MAX_NUMBER_LEN).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+*#".contains(&b));
    if !ok {
        return Err(StoreError::invalid(
            field,
            format!(
                "{text:?} is not 1 to {MAX_NUMBER_LEN} of digits, '+', '*', '#' (or voicemail)"
            ),
        ));
    }
    Ok(text.to_owned())
}

/// The stored form: every field optional, so rows written before a field
/// existed read as the default.
#[derive(SurrealValue, Default)]
pub(crate) struct SettingsRow {
    ring_timeout_secs: Option<u32>,
    dnd: Option<bool>,
    forward_unconditional: Option<String>,
    forward_busy: Option<String>,
    forward_no_answer: Option<String>,
    forward_offline: Option<String>,
    follow_me_mode: Option<String>,
    follow_me: Option<Vec<FollowMeRow>>,
    voicemail: Option<bool>,
    outbound_caller_id: Option<String>,
    inbound_prefix: Option<String>,
    allowed_destinations: Option<String>,
}

#[derive(SurrealValue)]
pub(crate) struct FollowMeRow {
    number: String,
    timeout_secs: u32,
}

impl From<&CallSettings> for SettingsRow {
    fn from(s: &CallSettings) -> Self {
        let text = |t: &Option<ForwardTarget>| t.as_ref().map(ToString::to_string);
        SettingsRow {
            ring_timeout_secs: s.ring_timeout_secs,
            dnd: Some(s.dnd),
            forward_unconditional: text(&s.forward_unconditional),
            forward_busy: text(&s.forward_busy),
            forward_no_answer: text(&s.forward_no_answer),
            forward_offline: text(&s.forward_offline),
            follow_me_mode: s.follow_me.as_ref().map(|f| f.mode.as_str().to_owned()),
            follow_me: s.follow_me.as_ref().map(|f| {
                f.destinations
                    .iter()
                    .map(|d| FollowMeRow {
                        number: d.number.clone(),
                        timeout_secs: d.timeout_secs,
                    })
                    .collect()
            }),
            voicemail: Some(s.voicemail),
            outbound_caller_id: s.outbound_caller_id.clone(),
            inbound_prefix: s.inbound_prefix.clone(),
            allowed_destinations: Some(s.allowed_destinations.to_string()),
        }
    }
}

impl SettingsRow {
    /// Reads a row back; a value that no longer parses is an invalid record.
    pub(crate) fn into_settings(self) -> Result<CallSettings, StoreError> {
        let bad = |e: StoreError| StoreError::InvalidRecord {
            table: "extension",
            reason: e.to_string(),
        };
        let target = |field: &'static str, t: Option<String>| {
            t.map(|t| ForwardTarget::parse(field, &t)).transpose()
        };
        let follow_me = match (self.follow_me_mode, self.follow_me) {
            (Some(mode), Some(rows)) => Some(FollowMe {
                mode: RingMode::parse(&mode).map_err(bad)?,
                destinations: rows
                    .into_iter()
                    .map(|r| FollowMeDestination {
                        number: r.number,
                        timeout_secs: r.timeout_secs,
                    })
                    .collect(),
            }),
            _ => None,
        };
        Ok(CallSettings {
            ring_timeout_secs: self.ring_timeout_secs,
            dnd: self.dnd.unwrap_or(false),
            forward_unconditional: target("forward_unconditional", self.forward_unconditional)
                .map_err(bad)?,
            forward_busy: target("forward_busy", self.forward_busy).map_err(bad)?,
            forward_no_answer: target("forward_no_answer", self.forward_no_answer).map_err(bad)?,
            forward_offline: target("forward_offline", self.forward_offline).map_err(bad)?,
            follow_me,
            voicemail: self.voicemail.unwrap_or(false),
            outbound_caller_id: self.outbound_caller_id,
            inbound_prefix: self.inbound_prefix,
            allowed_destinations: self
                .allowed_destinations
                .map(|a| AllowedDestinations::parse(&a))
                .transpose()
                .map_err(bad)?
                .unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_a_dial_plan() {
        let allowed = AllowedDestinations::parse("0X., +3312XXXXXXX, 1NZ").expect("valid");
        for ok in ["012", "0612345678", "+33123456789", "129"] {
            assert!(allowed.permits(ok), "{ok}");
        }
        for refused in ["01", "+3312345678", "119", "+44123456789", "1290"] {
            assert!(!allowed.permits(refused), "{refused}");
        }
        assert!(!AllowedDestinations::None.permits("100"));
        assert!(AllowedDestinations::parse("0X.Y").is_err());
        assert!(AllowedDestinations::parse("").is_err());
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut s = CallSettings {
            ring_timeout_secs: Some(0),
            ..CallSettings::default()
        };
        let field = |s: &CallSettings| match s.validate() {
            Err(StoreError::InvalidField { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        assert_eq!(field(&s), "ring_timeout_secs");
        s.ring_timeout_secs = None;
        s.forward_busy = Some(ForwardTarget::Number("10a".into()));
        assert_eq!(field(&s), "forward_busy");
        s.forward_busy = None;
        s.inbound_prefix = Some("a\"b".into());
        assert_eq!(field(&s), "inbound_prefix");
    }

    #[test]
    fn settings_survive_the_row_form() {
        let s = CallSettings {
            ring_timeout_secs: Some(15),
            dnd: true,
            forward_busy: Some(ForwardTarget::Voicemail),
            forward_no_answer: Some(ForwardTarget::Number("102".into())),
            follow_me: Some(FollowMe {
                mode: RingMode::Sequential,
                destinations: vec![FollowMeDestination {
                    number: "+33612345678".into(),
                    timeout_secs: 20,
                }],
            }),
            allowed_destinations: AllowedDestinations::Patterns(vec!["0X.".into()]),
            ..CallSettings::default()
        };
        let back = SettingsRow::from(&s).into_settings().expect("reads back");
        assert_eq!(back, s);
        let empty = SettingsRow::default().into_settings().expect("defaults");
        assert_eq!(empty, CallSettings::default());
    }
}
