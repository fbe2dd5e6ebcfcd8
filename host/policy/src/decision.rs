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
