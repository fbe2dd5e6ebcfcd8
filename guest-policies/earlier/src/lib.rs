//! A policy built against the contract as it was before `get-status` was
//! added (`wit/` is `guest-policies/wit` as of commit fc1c53d, kept
//! unchanged), so that the host's tests show that a module a tenant built
//! then still loads and decides. It rings the dialled extension when
//! `get-extension` says it has a device, and rejects with 480 otherwise.

/// The bindings of the earlier contract.
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "policy" });
}

use bindings::edgepbx::policy::directory::get_extension;
use bindings::edgepbx::policy::types::{
    Action, Call, Decision, Reject, Ring, RingMode, RingTarget, Target,
};

/// The policy.
struct Earlier;

impl bindings::Guest for Earlier {
    fn decide(call: Call) -> Decision {
        let action = match get_extension(&call.dialled.number) {
            Some(extension) if !extension.devices.is_empty() => Action::Ring(Ring {
                mode: RingMode::Simultaneous,
                targets: vec![RingTarget {
                    target: Target::Extension(extension.number),
                    timeout_secs: extension.ring_timeout_secs,
                }],
            }),
            _ => Action::Reject(Reject {
                status: 480,
                reason: None,
            }),
        };
        Decision {
            action,
            presentation: None,
        }
    }
}

bindings::export!(Earlier with_types_in bindings);
