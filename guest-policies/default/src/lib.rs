//! The built-in routing policy of edgepbx.
//!
//! edgepbx embeds this policy and uses it for every tenant that has not
//! activated one of its own, and for any call whose tenant policy failed.
//! Other policies can delegate to it ([`Builtin::decide`]) for the calls
//! they do not treat specially.
//!
//! What it does, by destination:
//! - **Extension.** Unconditional forwarding first. Do-not-disturb counts as
//!   busy. Otherwise every registered device rings for the extension's ring
//!   timeout, together with its find-me/follow-me numbers (simultaneous) or
//!   followed by them (sequential). With no device and no follow-me
//!   number, the offline rule applies. After a step that did not connect:
//!   busy or declined → the busy rule; no answer → the no-answer rule; no
//!   device reachable or failure → the offline rule. Each rule forwards
//!   where it says, else to voicemail when the extension has it, else
//!   rejects (486 for busy, 480 otherwise).
//! - **Ring group.** Members on DND or offline are skipped. ring-all rings
//!   the rest together; hunt, round-robin, random and least-recent ring them
//!   one after another, in list order, rotated by a per-group counter,
//!   shuffled with the call's entropy, or least recently offered first.
//!   Then the group's no-answer rule, else 480.
//! - **Virtual extension.** Its available members ring together; then its
//!   no-answer rule, else 480.
//! - **External number.** It rings for 60 seconds; a failure ends the call
//!   with the matching status.
//! - **Unknown number.** 404.

use edgepbx_policy_sdk::{
    Action, Call, Decision, Destination, Extension, ForwardTo, Group, GroupStrategy, Host, Level,
    Outcome, Policy, Presence, Ring, RingMode, Target, VirtualExtension,
};

/// The built-in policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtin;

#[cfg(feature = "component")]
edgepbx_policy_sdk::export_policy!(Builtin);

/// Memory when this crate is the built-in component: every decision runs
/// in a fresh instance, so its allocator is an arena that frees nothing.
#[cfg(all(feature = "component", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: edgepbx_policy_sdk::DecisionArena = edgepbx_policy_sdk::DecisionArena::new();

/// How long an external number rings, in seconds.
pub const EXTERNAL_RING_SECS: u32 = 60;

/// A call has at most this many steps for one dialled number before the
/// built-in policy gives up (a guard against a host that keeps asking).
pub const MAX_STEPS: usize = 8;

impl Policy for Builtin {
    fn decide(call: &Call, host: &impl Host) -> Decision {
        if call.history.len() >= MAX_STEPS {
            return Decision::reject(480);
        }
        match &call.dialled.destination {
            Destination::Extension(extension) => decide_extension(call, extension, host),
            Destination::Group(group) => decide_group(call, group, host),
            Destination::VirtualExtension(virtual_extension) => {
                decide_virtual(call, virtual_extension, host)
            }
            Destination::External(number) => match call.last_outcome() {
                None => Decision::ring(Ring::simultaneous().external(number, EXTERNAL_RING_SECS)),
                Some(outcome) => Decision::reject(status_for(outcome)),
            },
            Destination::Unknown => Decision::reject(404),
        }
    }
}

/// The SIP status that ends a call after a step that ended with `outcome`.
pub fn status_for(outcome: Outcome) -> u16 {
    match outcome {
        Outcome::Busy => 486,
        Outcome::Declined => 603,
        Outcome::Answered | Outcome::NoAnswer | Outcome::Offline | Outcome::Failed => 480,
    }
}

fn decide_extension(call: &Call, extension: &Extension, host: &impl Host) -> Decision {
    let Some(outcome) = call.last_outcome() else {
        return first_ring(extension, host);
    };
    // Only a ring step leads to a forwarding rule; a voicemail step that
    // failed ends the call.
    let after_ring = call
        .history
        .last()
        .is_some_and(|attempt| matches!(attempt.action, Action::Ring(_)));
    if !after_ring {
        return Decision::reject(status_for(outcome));
    }
    match outcome {
        Outcome::Busy | Outcome::Declined => on_busy(extension),
        Outcome::NoAnswer | Outcome::Answered => {
            rule_or_voicemail(extension, extension.forwarding.no_answer.as_ref(), 480)
        }
        Outcome::Offline | Outcome::Failed => {
            rule_or_voicemail(extension, extension.forwarding.offline.as_ref(), 480)
        }
    }
}

fn first_ring(extension: &Extension, host: &impl Host) -> Decision {
    let number = &extension.number;
    if let Some(rule) = &extension.forwarding.unconditional {
        return Decision::forward_to(rule, number);
    }
    if extension.dnd || extension.presence == Presence::Dnd {
        return on_busy(extension);
    }
    let online = extension.is_online();
    let follow_me = extension
        .follow_me
        .as_ref()
        .filter(|follow_me| !follow_me.destinations.is_empty());
    let Some(follow_me) = follow_me else {
        return if online {
            Decision::ring(Ring::simultaneous().extension(number, extension.ring_timeout_secs))
        } else {
            rule_or_voicemail(extension, extension.forwarding.offline.as_ref(), 480)
        };
    };
    let mut ring = Ring {
        mode: follow_me.mode,
        targets: Vec::new(),
    };
    if online {
        ring = ring.extension(number, extension.ring_timeout_secs);
    }
    for destination in &follow_me.destinations {
        ring = ring.target(
            target_for(&destination.number, host),
            destination.timeout_secs,
        );
    }
    Decision::ring(ring)
}

/// An extension of the tenant (by number or alias) rings all its devices;
/// anything else is dialled out.
fn target_for(number: &str, host: &impl Host) -> Target {
    if host.status(number).is_some() {
        Target::Extension(number.to_owned())
    } else {
        Target::External(number.to_owned())
    }
}

fn on_busy(extension: &Extension) -> Decision {
    rule_or_voicemail(extension, extension.forwarding.busy.as_ref(), 486)
}

fn rule_or_voicemail(extension: &Extension, rule: Option<&ForwardTo>, status: u16) -> Decision {
    match rule {
        Some(rule) => Decision::forward_to(rule, &extension.number),
        None if extension.voicemail => Decision::voicemail(&extension.number),
        None => Decision::reject(status),
    }
}

/// Where an unanswered call to a group or virtual extension goes.
fn unanswered(number: &str, rule: Option<&ForwardTo>, outcome: Outcome) -> Decision {
    match rule {
        Some(rule) => Decision::forward_to(rule, number),
        None => Decision::reject(status_for(outcome)),
    }
}

/// The members that can take a call now, in list order.
fn available_members(members: &[String], host: &impl Host) -> Vec<String> {
    members
        .iter()
        .filter(|member| can_take_calls(member, host))
        .cloned()
        .collect()
}

/// Whether the extension `number` can take a call now: registered and not
/// on do-not-disturb (a busy member may still have a free device).
fn can_take_calls(number: &str, host: &impl Host) -> bool {
    host.status(number)
        .is_some_and(|status| status.is_online() && !status.dnd && status.presence != Presence::Dnd)
}

fn decide_group(call: &Call, group: &Group, host: &impl Host) -> Decision {
    if let Some(outcome) = call.last_outcome() {
        return unanswered(&group.number, group.no_answer.as_ref(), outcome);
    }
    let members = available_members(&group.members, host);
    if members.is_empty() {
        return unanswered(&group.number, group.no_answer.as_ref(), Outcome::Offline);
    }
    let (mode, order) = match group.strategy {
        GroupStrategy::RingAll => (RingMode::Simultaneous, members),
        GroupStrategy::Hunt => (RingMode::Sequential, members),
        GroupStrategy::RoundRobin => (
            RingMode::Sequential,
            round_robin(&group.number, members, host),
        ),
        GroupStrategy::Random => (RingMode::Sequential, shuffled(members, call.entropy)),
        GroupStrategy::LeastRecent => (
            RingMode::Sequential,
            least_recent(&group.number, members, host),
        ),
    };
    let ring = order.into_iter().fold(
        Ring {
            mode,
            targets: Vec::new(),
        },
        |ring, member| ring.extension(member, group.ring_timeout_secs),
    );
    Decision::ring(ring)
}

/// The members rotated so that each call starts one further along; the
/// counter lives in the tenant's key-value store.
fn round_robin(group: &str, mut members: Vec<String>, host: &impl Host) -> Vec<String> {
    let key = format!("group:{group}:round-robin");
    match host.kv_increment(&key, 1) {
        Ok(turn) => {
            let len = i64::try_from(members.len()).unwrap_or(i64::MAX);
            let start = usize::try_from((turn - 1).rem_euclid(len)).unwrap_or(0);
            members.rotate_left(start);
        }
        Err(error) => host.log(
            Level::Warn,
            &format!("round-robin counter of group {group} unavailable ({error:?}); starting at the first member"),
        ),
    }
    members
}

/// The members shuffled (Fisher–Yates) by a generator seeded with the
/// call's entropy.
fn shuffled(mut members: Vec<String>, entropy: u64) -> Vec<String> {
    let mut state = entropy;
    for i in (1..members.len()).rev() {
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(splitmix64(&mut state) % bound).unwrap_or(0);
        members.swap(i, j);
    }
    members
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The members ordered by when a call was last offered to them first
/// (never comes first; ties keep list order). The member offered this call
/// first is recorded.
fn least_recent(group: &str, mut members: Vec<String>, host: &impl Host) -> Vec<String> {
    let last_key = |member: &str| format!("group:{group}:offered:{member}");
    members.sort_by_cached_key(|member| {
        host.kv_get(&last_key(member))
            .and_then(|value| value.parse::<i64>().ok())
            .unwrap_or(0)
    });
    if let Some(first) = members.first() {
        let recorded = host
            .kv_increment(&format!("group:{group}:offers"), 1)
            .and_then(|sequence| host.kv_set(&last_key(first), &sequence.to_string()));
        if let Err(error) = recorded {
            host.log(
                Level::Warn,
                &format!("least-recent state of group {group} not recorded ({error:?})"),
            );
        }
    }
    members
}

fn decide_virtual(call: &Call, virtual_extension: &VirtualExtension, host: &impl Host) -> Decision {
    let number = &virtual_extension.number;
    if let Some(outcome) = call.last_outcome() {
        return unanswered(number, virtual_extension.no_answer.as_ref(), outcome);
    }
    let members = available_members(&virtual_extension.members, host);
    if members.is_empty() {
        return unanswered(
            number,
            virtual_extension.no_answer.as_ref(),
            Outcome::Offline,
        );
    }
    let ring = members
        .into_iter()
        .fold(Ring::simultaneous(), |ring, member| {
            ring.extension(member, virtual_extension.ring_timeout_secs)
        });
    Decision::ring(ring)
}
