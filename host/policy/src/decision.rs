//! Checks a policy's answer before the host acts on it. An answer that
//! fails counts as a fault of the policy, like a trap.

use crate::bindings::{Action, Decision, Presentation, RingTarget, Target};

/// Most targets one ring step may have: as many as the largest ring group
/// has members, so that a policy can ring all of them at once.
pub const MAX_TARGETS: usize = 100;
/// Longest ring timeout, in seconds.
pub const MAX_RING_SECS: u32 = 600;
/// Longest number (extension, device id, external number), in bytes.
pub const MAX_NUMBER_BYTES: usize = 64;
/// Longest reason phrase, in bytes.
pub const MAX_REASON_BYTES: usize = 128;
/// Longest caller-ID prefix, in bytes.
pub const MAX_PREFIX_BYTES: usize = 32;

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidDecision {
    /// A ring step without targets.
    #[error("a ring step needs at least one target")]
    NoTargets,
    /// A ring step with too many targets.
    #[error("{count} ring targets; at most {MAX_TARGETS}")]
    TooManyTargets {
        /// How many there were.
        count: usize,
    },
    /// A timeout of 0 or above the maximum.
    #[error("ring timeout {secs} s outside 1–{MAX_RING_SECS}")]
    Timeout {
        /// The timeout given.
        secs: u32,
    },
    /// A number that is empty, too long, or has characters numbers do not.
    #[error("{what} {value:?} is not a valid number")]
    Number {
        /// Which field.
        what: &'static str,
        /// The value, cut to a printable length.
        value: String,
    },
    /// A reject status outside 400–699.
    #[error("reject status {status} outside 400–699")]
    Status {
        /// The status given.
        status: u16,
    },
    /// A reason phrase or prefix that is too long or has control characters.
    #[error("{what} is too long or has control characters")]
    Text {
        /// Which field.
        what: &'static str,
    },
}

/// Checks `decision` against the contract's bounds.
pub fn validate(decision: &Decision) -> Result<(), InvalidDecision> {
    match &decision.action {
        Action::Ring(ring) => {
            if ring.targets.is_empty() {
                return Err(InvalidDecision::NoTargets);
            }
            if ring.targets.len() > MAX_TARGETS {
                return Err(InvalidDecision::TooManyTargets {
                    count: ring.targets.len(),
                });
            }
            ring.targets.iter().try_for_each(target)?;
        }
        Action::Forward(number) => check_number("forward number", number)?,
        Action::Voicemail(number) => check_number("voicemail box", number)?,
        Action::Reject(reject) => {
            if !(400..=699).contains(&reject.status) {
                return Err(InvalidDecision::Status {
                    status: reject.status,
                });
            }
            if let Some(reason) = &reject.reason {
                text("reason phrase", reason, MAX_REASON_BYTES)?;
            }
        }
    }
    if let Some(Presentation {
        number_prefix,
        name_prefix,
    }) = &decision.presentation
    {
        if let Some(prefix) = number_prefix
            && !prefix.is_empty()
        {
            check_number("number prefix", prefix)?;
            if prefix.len() > MAX_PREFIX_BYTES {
                return Err(InvalidDecision::Text {
                    what: "number prefix",
                });
            }
        }
        if let Some(prefix) = name_prefix {
            text("name prefix", prefix, MAX_PREFIX_BYTES)?;
        }
    }
    Ok(())
}

fn target(ring_target: &RingTarget) -> Result<(), InvalidDecision> {
    if ring_target.timeout_secs == 0 || ring_target.timeout_secs > MAX_RING_SECS {
        return Err(InvalidDecision::Timeout {
            secs: ring_target.timeout_secs,
        });
    }
    match &ring_target.target {
        Target::Extension(number) => check_number("extension", number),
        Target::External(number) => check_number("external number", number),
        Target::Device(device) => {
            check_number("extension", &device.extension)?;
            if device.device.is_empty() || device.device.len() > MAX_NUMBER_BYTES {
                return Err(InvalidDecision::Number {
                    what: "device id",
                    value: cut(&device.device),
                });
            }
            text("device id", &device.device, MAX_NUMBER_BYTES)
        }
    }
}

/// Numbers, aliases and box names: digits, letters and `+*#._-`.
fn check_number(what: &'static str, value: &str) -> Result<(), InvalidDecision> {
    let valid = !value.is_empty()
        && value.len() <= MAX_NUMBER_BYTES
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+*#._-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(InvalidDecision::Number {
            what,
            value: cut(value),
        })
    }
}

fn text(what: &'static str, value: &str, max: usize) -> Result<(), InvalidDecision> {
    if value.len() > max || value.chars().any(char::is_control) {
        Err(InvalidDecision::Text { what })
    } else {
        Ok(())
    }
}

fn cut(value: &str) -> String {
    crate::host::printable(value, MAX_NUMBER_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{DeviceTarget, Reject, Ring, RingMode};

    fn ring(targets: Vec<RingTarget>) -> Decision {
        Decision {
            action: Action::Ring(Ring {
                mode: RingMode::Simultaneous,
                targets,
            }),
            presentation: None,
        }
    }

    fn extension(number: &str, timeout_secs: u32) -> RingTarget {
        RingTarget {
            target: Target::Extension(number.into()),
            timeout_secs,
        }
    }

    fn device(extension: &str, device: &str) -> RingTarget {
        RingTarget {
            target: Target::Device(DeviceTarget {
                extension: extension.into(),
                device: device.into(),
            }),
            timeout_secs: 20,
        }
    }

    fn reject(status: u16, reason: Option<&str>) -> Decision {
        Decision {
            action: Action::Reject(Reject {
                status,
                reason: reason.map(Into::into),
            }),
            presentation: None,
        }
    }

    fn presented(number_prefix: Option<&str>, name_prefix: Option<&str>) -> Decision {
        Decision {
            action: Action::Forward("+4930123".into()),
            presentation: Some(Presentation {
                number_prefix: number_prefix.map(Into::into),
                name_prefix: name_prefix.map(Into::into),
            }),
        }
    }

    fn number(what: &'static str, value: &str) -> InvalidDecision {
        InvalidDecision::Number {
            what,
            value: value.into(),
        }
    }

    #[test]
    fn answers_within_the_contract_pass_and_the_rest_say_why_not() {
        let long = "1".repeat(MAX_NUMBER_BYTES + 1);
        let cases: Vec<(&str, Decision, Result<(), InvalidDecision>)> = vec![
            ("ring one", ring(vec![extension("100", 20)]), Ok(())),
            (
                "ring the most",
                ring(
                    (0..MAX_TARGETS)
                        .map(|i| extension(&i.to_string(), 20))
                        .collect(),
                ),
                Ok(()),
            ),
            (
                "empty ring",
                ring(Vec::new()),
                Err(InvalidDecision::NoTargets),
            ),
            (
                "too many",
                ring(
                    (0..=MAX_TARGETS)
                        .map(|i| extension(&i.to_string(), 20))
                        .collect(),
                ),
                Err(InvalidDecision::TooManyTargets {
                    count: MAX_TARGETS + 1,
                }),
            ),
            (
                "no time to ring",
                ring(vec![extension("100", 0)]),
                Err(InvalidDecision::Timeout { secs: 0 }),
            ),
            (
                "longest ring",
                ring(vec![extension("100", MAX_RING_SECS)]),
                Ok(()),
            ),
            (
                "too long a ring",
                ring(vec![extension("100", MAX_RING_SECS + 1)]),
                Err(InvalidDecision::Timeout {
                    secs: MAX_RING_SECS + 1,
                }),
            ),
            (
                "a SIP URI is not a number",
                ring(vec![extension("sip:100@evil", 20)]),
                Err(number("extension", "sip:100@evil")),
            ),
            (
                "number too long",
                ring(vec![extension(&long, 20)]),
                Err(number("extension", &long[..MAX_NUMBER_BYTES])),
            ),
            ("a device", ring(vec![device("100", "desk phone")]), Ok(())),
            (
                "an empty device id",
                ring(vec![device("100", "")]),
                Err(number("device id", "")),
            ),
            (
                "a device id with a line break",
                ring(vec![device("100", "desk\r\nVia: x")]),
                Err(InvalidDecision::Text { what: "device id" }),
            ),
            (
                "an external number",
                ring(vec![RingTarget {
                    target: Target::External("+49 30".into()),
                    timeout_secs: 20,
                }]),
                Err(number("external number", "+49 30")),
            ),
            ("reject busy", reject(486, Some("Busy Here")), Ok(())),
            ("reject 699", reject(699, None), Ok(())),
            (
                "a success is not a rejection",
                reject(200, None),
                Err(InvalidDecision::Status { status: 200 }),
            ),
            (
                "a redirect is not a rejection",
                reject(302, None),
                Err(InvalidDecision::Status { status: 302 }),
            ),
            (
                "beyond SIP's statuses",
                reject(700, None),
                Err(InvalidDecision::Status { status: 700 }),
            ),
            (
                "a reason with a header in it",
                reject(486, Some("Busy\r\nContact: <sip:evil>")),
                Err(InvalidDecision::Text {
                    what: "reason phrase",
                }),
            ),
            (
                "a reason too long",
                reject(486, Some(&"x".repeat(MAX_REASON_BYTES + 1))),
                Err(InvalidDecision::Text {
                    what: "reason phrase",
                }),
            ),
            (
                "forward nowhere",
                Decision {
                    action: Action::Forward(String::new()),
                    presentation: None,
                },
                Err(number("forward number", "")),
            ),
            (
                "voicemail box with a slash",
                Decision {
                    action: Action::Voicemail("../100".into()),
                    presentation: None,
                },
                Err(number("voicemail box", "../100")),
            ),
            ("prefixes", presented(Some("0"), Some("Sales: ")), Ok(())),
            ("an empty number prefix", presented(Some(""), None), Ok(())),
            (
                "a number prefix with a space",
                presented(Some("0 "), None),
                Err(number("number prefix", "0 ")),
            ),
            (
                "a number prefix too long",
                presented(Some(&"0".repeat(MAX_PREFIX_BYTES + 1)), None),
                Err(InvalidDecision::Text {
                    what: "number prefix",
                }),
            ),
            (
                "a name prefix with a control character",
                presented(None, Some("VIP\u{7}")),
                Err(InvalidDecision::Text {
                    what: "name prefix",
                }),
            ),
        ];
        for (name, decision, expected) in cases {
            assert_eq!(validate(&decision), expected, "{name}");
        }
    }
}
