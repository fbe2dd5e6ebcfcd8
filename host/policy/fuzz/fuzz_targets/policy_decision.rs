//! Any answer a policy can give, as the component model hands it to the
//! host: the check never panics; an accepted answer is within the
//! contract's bounds and carries no text a SIP header could not; a
//! refused one says why with nothing but a short, printable excerpt; and
//! an answer survives the JSON the playground and the call records use.
#![no_main]

use edgepbx_policy::bindings::{
    DeviceTarget, Presentation, Reject, Ring, RingMode, RingTarget, Target,
};
use edgepbx_policy::decision::{
    InvalidDecision, MAX_NUMBER_BYTES, MAX_RING_SECS, MAX_TARGETS, validate,
};
use edgepbx_policy::{Action, Decision};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(decision) = decision(&mut Unstructured::new(data)) else {
        return;
    };
    match validate(&decision) {
        Ok(()) => within_contract(&decision),
        Err(error) => {
            assert!(!error.to_string().is_empty());
            if let InvalidDecision::Number { value, .. } = &error {
                assert!(value.len() <= MAX_NUMBER_BYTES, "{error}");
                assert!(!value.chars().any(char::is_control), "{error}");
            }
        }
    }
    let json = serde_json::to_string(&decision).expect("a decision is JSON");
    let back: Decision = serde_json::from_str(&json).expect("its JSON reads back");
    assert_eq!(back, decision);
});

/// What the contract (`guest-policies/wit`) promises the host about an
/// accepted answer.
fn within_contract(decision: &Decision) {
    let mut texts: Vec<&str> = Vec::new();
    match &decision.action {
        Action::Ring(ring) => {
            assert!((1..=MAX_TARGETS).contains(&ring.targets.len()));
            for target in &ring.targets {
                assert!((1..=MAX_RING_SECS).contains(&target.timeout_secs));
                match &target.target {
                    Target::Extension(number) | Target::External(number) => texts.push(number),
                    Target::Device(device) => {
                        texts.extend([device.extension.as_str(), device.device.as_str()]);
                    }
                }
            }
        }
        Action::Forward(number) | Action::Voicemail(number) => texts.push(number),
        Action::Reject(reject) => {
            assert!((400..=699).contains(&reject.status));
            texts.extend(reject.reason.as_deref());
        }
    }
    if let Some(presentation) = &decision.presentation {
        texts.extend(presentation.number_prefix.as_deref());
        texts.extend(presentation.name_prefix.as_deref());
    }
    for text in texts {
        assert!(text.len() <= 128, "{text:?} is too long");
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
}

/// A decision built from the input, close to the bounds more often than
/// chance would be.
fn decision(u: &mut Unstructured<'_>) -> Result<Decision> {
    let action = match u.int_in_range(0..=3)? {
        0 => {
            let count = u.int_in_range(0..=MAX_TARGETS + 1)?;
            let mut targets = Vec::with_capacity(count);
            for _ in 0..count {
                targets.push(ring_target(u)?);
            }
            Action::Ring(Ring {
                mode: if u.arbitrary()? {
                    RingMode::Simultaneous
                } else {
                    RingMode::Sequential
                },
                targets,
            })
        }
        1 => Action::Forward(text(u)?),
        2 => Action::Voicemail(text(u)?),
        _ => Action::Reject(Reject {
            status: u.int_in_range(300..=799)?,
            reason: optional(u)?,
        }),
    };
    let presentation = if u.arbitrary()? {
        Some(Presentation {
            number_prefix: optional(u)?,
            name_prefix: optional(u)?,
        })
    } else {
        None
    };
    Ok(Decision {
        action,
        presentation,
    })
}

fn ring_target(u: &mut Unstructured<'_>) -> Result<RingTarget> {
    let target = match u.int_in_range(0..=2)? {
        0 => Target::Extension(text(u)?),
        1 => Target::External(text(u)?),
        _ => Target::Device(DeviceTarget {
            extension: text(u)?,
            device: text(u)?,
        }),
    };
    Ok(RingTarget {
        target,
        timeout_secs: if u.arbitrary()? {
            u.int_in_range(0..=MAX_RING_SECS + 1)?
        } else {
            u.arbitrary()?
        },
    })
}

fn optional(u: &mut Unstructured<'_>) -> Result<Option<String>> {
    Ok(if u.arbitrary()? { Some(text(u)?) } else { None })
}

/// Any string, or one that repeats a character to near the length limits.
fn text(u: &mut Unstructured<'_>) -> Result<String> {
    if u.ratio(1, 8)? {
        let c: char = u.arbitrary()?;
        let len = u.int_in_range(MAX_NUMBER_BYTES - 2..=MAX_NUMBER_BYTES * 3)?;
        Ok(std::iter::repeat_n(c, len).collect())
    } else {
        u.arbitrary()
    }
}
