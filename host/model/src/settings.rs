//! What an administrator sets about an extension's calls: ring time, do
//! not disturb, forwarding, find-me/follow-me, voicemail, caller ID and
//! which destinations it may dial. The routing policy reads these; the
//! checks here only say that each value is well formed.

use crate::InvalidField;

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
    pub fn parse(field: &'static str, text: &str) -> Result<ForwardTarget, InvalidField> {
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
    pub fn parse(text: &str) -> Result<RingMode, InvalidField> {
        match text {
            "simultaneous" => Ok(RingMode::Simultaneous),
            "sequential" => Ok(RingMode::Sequential),
            _ => Err(InvalidField::new(
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

impl FollowMe {
    /// Parses the text form `sequential:0612345678/20,102/15` (or
    /// `simultaneous:`): the mode, then NUMBER/SECONDS items separated by
    /// commas. The values are checked with the rest of the settings
    /// ([`CallSettings::validate`]).
    pub fn parse(text: &str) -> Result<FollowMe, InvalidField> {
        let usage = || {
            InvalidField::new(
                "follow_me",
                "follow-me is simultaneous: or sequential: then NUMBER/SECONDS items separated by commas",
            )
        };
        let (mode, list) = text.split_once(':').ok_or_else(usage)?;
        let destinations = list
            .split(',')
            .map(|item| {
                let (number, secs) = item.trim().split_once('/').ok_or_else(usage)?;
                Ok(FollowMeDestination {
                    number: number.to_owned(),
                    timeout_secs: secs.parse().map_err(|_| usage())?,
                })
            })
            .collect::<Result<Vec<_>, InvalidField>>()?;
        Ok(FollowMe {
            mode: RingMode::parse(mode)?,
            destinations,
        })
    }
}

/// The text form [`FollowMe::parse`] reads.
impl std::fmt::Display for FollowMe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.mode.as_str())?;
        for (i, d) in self.destinations.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{}/{}", d.number, d.timeout_secs)?;
        }
        Ok(())
    }
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
    pub fn parse(text: &str) -> Result<AllowedDestinations, InvalidField> {
        const FIELD: &str = "allowed_destinations";
        match text.trim() {
            "all" => return Ok(AllowedDestinations::All),
            "none" => return Ok(AllowedDestinations::None),
            _ => {}
        }
        if text.len() > MAX_PATTERNS_LEN {
            return Err(InvalidField::new(FIELD, "too long"));
        }
        let patterns: Vec<String> = text.split(',').map(|p| p.trim().to_owned()).collect();
        for pattern in &patterns {
            let body = pattern.strip_suffix('.').unwrap_or(pattern);
            let valid = !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"+*#XZN".contains(&b));
            if !valid {
                return Err(InvalidField::new(
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

/// Which forwarding rule a phone's key sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardWhen {
    /// Every call (`forward_unconditional`).
    Always,
    /// When busy (`forward_busy`).
    Busy,
    /// When not answered (`forward_no_answer`).
    NoAnswer,
}

/// One setting a phone's feature key changes (DND and forwarding keys,
/// synchronised with the phone); the store writes that one field alone,
/// so a change made meanwhile elsewhere is not lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureKey {
    /// Do not disturb on or off.
    Dnd(bool),
    /// A forwarding rule set (`Some`) or cleared.
    Forward(ForwardWhen, Option<ForwardTarget>),
}

impl CallSettings {
    /// These settings with `key` applied.
    pub fn with(&self, key: &FeatureKey) -> CallSettings {
        let mut next = self.clone();
        match key {
            FeatureKey::Dnd(on) => next.dnd = *on,
            FeatureKey::Forward(when, target) => *next.forward_rule(*when) = target.clone(),
        }
        next
    }

    /// The forwarding rule a key sets.
    pub fn forward_rule(&mut self, when: ForwardWhen) -> &mut Option<ForwardTarget> {
        match when {
            ForwardWhen::Always => &mut self.forward_unconditional,
            ForwardWhen::Busy => &mut self.forward_busy,
            ForwardWhen::NoAnswer => &mut self.forward_no_answer,
        }
    }
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
    /// Away from the desk: watchers' buddy lists show it (presence);
    /// calls ring as usual.
    pub away: bool,
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
    pub fn validate(&self) -> Result<(), InvalidField> {
        if let Some(secs) = self.ring_timeout_secs
            && !(1..=MAX_RING_SECS).contains(&secs)
        {
            return Err(InvalidField::new(
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
                return Err(InvalidField::new(
                    "follow_me",
                    format!("needs 1 to {MAX_FOLLOW_ME} destinations"),
                ));
            }
            for d in &follow_me.destinations {
                dialable("follow_me", &d.number)?;
                if !(1..=MAX_RING_SECS).contains(&d.timeout_secs) {
                    return Err(InvalidField::new(
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
            return Err(InvalidField::new(
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

/// Whether `number` can be dialled: 1 to 32 of digits, `+`, `*`, `#`.
pub fn is_dialable(number: &str) -> bool {
    (1..=MAX_NUMBER_LEN).contains(&number.len())
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+*#".contains(&b))
}

/// `text` when it [can be dialled](is_dialable); `field` names the setting
/// in the error.
pub fn dialable(field: &'static str, text: &str) -> Result<String, InvalidField> {
    if !is_dialable(text) {
        return Err(InvalidField::new(
            field,
            format!(
                "{text:?} is not 1 to {MAX_NUMBER_LEN} of digits, '+', '*', '#' (or voicemail)"
            ),
        ));
    }
    Ok(text.to_owned())
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
    fn follow_me_reads_its_own_text() {
        let f = FollowMe::parse("sequential:0612345678/20,102/15").expect("valid");
        assert_eq!(f.destinations.len(), 2);
        assert_eq!(f.to_string(), "sequential:0612345678/20,102/15");
        for bad in [
            "sequential",
            "sometimes:102/5",
            "simultaneous:102",
            "sequential:102/x",
        ] {
            assert!(FollowMe::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        let mut s = CallSettings {
            ring_timeout_secs: Some(0),
            ..CallSettings::default()
        };
        let field = |s: &CallSettings| match s.validate() {
            Err(InvalidField { field, .. }) => field,
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
}
