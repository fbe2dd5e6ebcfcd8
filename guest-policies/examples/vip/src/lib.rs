//! VIP routing: calls from a short list of important callers skip the desk
//! phone and go straight to the called person's mobile, with "VIP " before
//! the caller's name; everyone else is routed by the built-in policy. When
//! the mobile does not answer, the built-in policy takes over (voicemail or
//! the extension's forwarding).
//!
//! Mobile numbers are kept in the tenant's key-value store under
//! `mobile:<extension>`, so they change without a rebuild; extensions with
//! no mobile number ring as usual.

use edgepbx_policy_default::Builtin;
use edgepbx_policy_sdk::{Call, Decision, Destination, Host, Level, Outcome, Policy, Ring};

/// Caller numbers treated as VIPs.
pub const VIP_CALLERS: &[&str] = &["+4930555000", "+14155550100", "+442079460000"];

/// How long the mobile rings, in seconds.
pub const MOBILE_RING_SECS: u32 = 30;

/// The VIP policy.
pub struct Vip;

edgepbx_policy_sdk::export_policy!(Vip);

impl Policy for Vip {
    fn decide(call: &Call, host: &impl Host) -> Decision {
        let vip = VIP_CALLERS.contains(&call.caller.number.as_str());
        let Destination::Extension(extension) = &call.dialled.destination else {
            return Builtin::decide(call, host);
        };
        if !vip {
            return Builtin::decide(call, host);
        }
        match call.history.len() {
            0 => match host.kv_get(&format!("mobile:{}", extension.number)) {
                Some(mobile) => {
                    host.log(
                        Level::Info,
                        &format!(
                            "VIP {} to the mobile of {}",
                            call.caller.number, extension.number
                        ),
                    );
                    Decision::ring(Ring::simultaneous().external(mobile, MOBILE_RING_SECS))
                        .with_name_prefix("VIP ")
                }
                None => Builtin::decide(call, host).with_name_prefix("VIP "),
            },
            // The mobile did not answer: on with the usual rules, as if
            // the desk phone had not.
            _ => {
                let mut usual = call.clone();
                if let Some(last) = usual.history.last_mut() {
                    last.outcome = match last.outcome {
                        Outcome::Busy | Outcome::Declined => Outcome::Busy,
                        _ => Outcome::NoAnswer,
                    };
                }
                Builtin::decide(&usual, host)
            }
        }
    }
}
