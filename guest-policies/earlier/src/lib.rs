//! A policy built against the contract as it was before `get-status` was
//! added (`wit/` is `guest-policies/wit` as of commit fc1c53d, kept
//! unchanged: the one copy of the contract that is not the current one), so
//! that the host's tests show that a module a tenant built then still loads
//! and decides. It calls every function that revision offers: it rings the
//! dialled extension when `get-extension` says it has a device, and
//! otherwise rejects with 480 and a reason saying what the other functions
//! answered.

/// The bindings of the earlier contract.
#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "policy" });
}

use bindings::edgepbx::policy::directory::{get_extension, get_group, groups_of};
use bindings::edgepbx::policy::kv::{delete, get, increment, set};
use bindings::edgepbx::policy::log::{Level, write};
use bindings::edgepbx::policy::types::{
    Action, Call, Decision, Reject, Ring, RingMode, RingTarget, Target,
};

/// The policy.
struct Earlier;

impl bindings::Guest for Earlier {
    fn decide(call: Call) -> Decision {
        let number = call.dialled.number;
        let groups = groups_of(&number)
            .iter()
            .filter(|group| get_group(group).is_some())
            .count();
        let calls = increment("calls", 1).unwrap_or(-1);
        let kept = set("last", &number).is_ok() && get("last").is_some_and(|v| v == number);
        delete("last");
        write(Level::Info, "a policy of the earlier contract decides");
        let action = match get_extension(&number) {
            Some(extension) if !extension.devices.is_empty() => Action::Ring(Ring {
                mode: RingMode::Simultaneous,
                targets: vec![RingTarget {
                    target: Target::Extension(extension.number),
                    timeout_secs: extension.ring_timeout_secs,
                }],
            }),
            _ => Action::Reject(Reject {
                status: 480,
                reason: Some(format!("groups {groups}, calls {calls}, kept {kept}")),
            }),
        };
        Decision {
            action,
            presentation: None,
        }
    }
}

bindings::export!(Earlier with_types_in bindings);
