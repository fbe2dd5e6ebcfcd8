//! The policy boundary: where the engine's routing types meet the policy
//! contract's. The engine asks for a decision with a
//! [`DecisionRequest`]; here it becomes the contract's `call` record, the
//! tenant's policy decides (the built-in policy at once, on the SIP
//! thread; a tenant's module on the blocking pool, since it may use its
//! whole deadline), and the contract's decision comes back as the
//! engine's [`Decided`]. [`PolicyView`] is what a policy sees of its
//! tenant while it decides: extensions with their settings and live
//! state, ring groups and virtual extensions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use edgepbx_engine::registrar::Aor;
use edgepbx_engine::routing::{
    Action, Attempt, Caller, CallerKind, Decided, Decision, DecisionId, DecisionRequest, Outcome,
    Presentation, Ring, RingMode, RingTarget, Target,
};
use edgepbx_engine::tenants::{Extension, Tenant};
use edgepbx_engine::time::Civil;
use edgepbx_engine::{Lines, Presence};
use edgepbx_policy::bindings as policy;
use edgepbx_policy::{DecidedBy, KeyValue, Policies};
use edgepbx_store::{ForwardTarget, Group, GroupKind, GroupStrategy};
use tokio::sync::mpsc;

// A policy may ring every member of a group in one step, and every
// follow-me number of an extension with it.
const _: () = assert!(
    edgepbx_store::MAX_MEMBERS <= edgepbx_policy::decision::MAX_TARGETS
        && edgepbx_store::MAX_FOLLOW_ME < edgepbx_policy::decision::MAX_TARGETS
);

/// Asks tenants' policies on the engine's behalf.
pub struct Router {
    policies: Arc<Policies>,
    kv: Arc<dyn KeyValue>,
    lines: Arc<Lines>,
    /// Ring time of extensions whose settings name none.
    ring_timeout_secs: u32,
    /// Where decisions made off the SIP thread come back.
    done: mpsc::UnboundedSender<Made>,
}

/// A decision as the policy runtime made it.
#[derive(Debug)]
pub struct Made {
    /// The decision, for the engine.
    pub decided: Decided,
    /// The tenant it was made for.
    pub tenant: String,
    /// The version of the tenant's module that this decision's fault took
    /// out of service, to be recorded in the store.
    pub deactivated: Option<u32>,
}

impl Router {
    /// A router deciding with `policies`; decisions made on the blocking
    /// pool are sent to `done`.
    pub fn new(
        policies: Arc<Policies>,
        kv: Arc<dyn KeyValue>,
        lines: Arc<Lines>,
        ring_timeout_secs: u32,
        done: mpsc::UnboundedSender<Made>,
    ) -> Router {
        Router {
            policies,
            kv,
            lines,
            ring_timeout_secs,
            done,
        }
    }

    /// Decides `request`: returns the decision when the built-in policy
    /// made it here and now; a tenant's module decides on the blocking pool
    /// and its decision comes back through the channel.
    pub fn decide(&self, request: DecisionRequest) -> Option<Made> {
        let view = Arc::new(PolicyView {
            tenant: request.tenant.clone(),
            lines: self.lines.clone(),
            ring_timeout_secs: self.ring_timeout_secs,
        });
        let call = policy_call(&request, &view);
        let tenant = request.tenant.code.clone();
        let id = request.id;
        // The built-in policy is ours and decides in microseconds: right
        // here. A tenant's module may take its whole deadline, and
        // signalling for everyone else must not wait meanwhile.
        if self.policies.active(&tenant).is_none() {
            let decided = self
                .policies
                .decide_builtin(&tenant, &call, view, self.kv.clone());
            return Some(made(id, tenant, decided));
        }
        let (policies, kv, done) = (self.policies.clone(), self.kv.clone(), self.done.clone());
        tokio::task::spawn_blocking(move || {
            let decided = policies.decide(Instant::now(), &tenant, &call, view, kv);
            let _ = done.send(made(id, tenant, decided));
        });
        None
    }
}

/// The runtime's decision for the engine.
fn made(id: DecisionId, tenant: String, decided: edgepbx_policy::Decided) -> Made {
    let decided_for_engine = Decided {
        id,
        by: describe(&decided.by),
        decision: Decision {
            action: action(decided.decision.action),
            presentation: decided.decision.presentation.map(|p| Presentation {
                number_prefix: p.number_prefix,
                name_prefix: p.name_prefix,
            }),
        },
    };
    Made {
        decided: decided_for_engine,
        deactivated: decided.deactivated.map(|gone| gone.version),
        tenant,
    }
}

/// Who decided, for logs and records.
fn describe(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Builtin => "builtin".into(),
        DecidedBy::Tenant { version, .. } => format!("v{version}"),
        DecidedBy::Fallback { version, .. } => format!("builtin (v{version} faulted)"),
        DecidedBy::LastResort { .. } => "none (builtin faulted)".into(),
    }
}

/// The contract's call record for a request.
fn policy_call(request: &DecisionRequest, view: &PolicyView) -> policy::Call {
    policy::Call {
        id: request.call_id.clone(),
        tenant: request.tenant.code.clone(),
        caller: policy_caller(&request.caller),
        dialled: policy::Dialled {
            number: request.dialled.clone(),
            alias_of: request.alias_of.clone(),
            destination: view.destination(&request.dialled),
        },
        now: local_time(request.wall),
        entropy: request.entropy,
        history: request.history.iter().map(policy_attempt).collect(),
    }
}

fn policy_caller(caller: &Caller) -> policy::Caller {
    policy::Caller {
        number: caller.number.clone(),
        name: caller.name.clone(),
        kind: match caller.kind {
            CallerKind::Internal => policy::CallerKind::Internal,
            CallerKind::External => policy::CallerKind::External,
        },
        source: caller.source.clone(),
    }
}

fn policy_attempt(attempt: &Attempt) -> policy::Attempt {
    policy::Attempt {
        action: policy_action(&attempt.action),
        outcome: match attempt.outcome {
            Outcome::Answered => policy::Outcome::Answered,
            Outcome::Busy => policy::Outcome::Busy,
            Outcome::NoAnswer => policy::Outcome::NoAnswer,
            Outcome::Offline => policy::Outcome::Offline,
            Outcome::Declined => policy::Outcome::Declined,
            Outcome::Failed => policy::Outcome::Failed,
        },
    }
}

fn policy_action(action: &Action) -> policy::Action {
    match action {
        Action::Ring(ring) => policy::Action::Ring(policy::Ring {
            mode: match ring.mode {
                RingMode::Simultaneous => policy::RingMode::Simultaneous,
                RingMode::Sequential => policy::RingMode::Sequential,
            },
            targets: ring
                .targets
                .iter()
                .map(|t| policy::RingTarget {
                    target: match &t.target {
                        Target::Extension(n) => policy::Target::Extension(n.clone()),
                        Target::Device { extension, device } => {
                            policy::Target::Device(policy::DeviceTarget {
                                extension: extension.clone(),
                                device: device.clone(),
                            })
                        }
                        Target::External(n) => policy::Target::External(n.clone()),
                    },
                    timeout_secs: t.timeout_secs,
                })
                .collect(),
        }),
        Action::Forward(n) => policy::Action::Forward(n.clone()),
        Action::Voicemail(n) => policy::Action::Voicemail(n.clone()),
        Action::Reject(status) => policy::Action::Reject(policy::Reject {
            status: *status,
            reason: None,
        }),
    }
}

/// The engine's action for the contract's.
fn action(action: policy::Action) -> Action {
    match action {
        policy::Action::Ring(ring) => Action::Ring(Ring {
            mode: match ring.mode {
                policy::RingMode::Simultaneous => RingMode::Simultaneous,
                policy::RingMode::Sequential => RingMode::Sequential,
            },
            targets: ring
                .targets
                .into_iter()
                .map(|t| RingTarget {
                    target: match t.target {
                        policy::Target::Extension(n) => Target::Extension(n),
                        policy::Target::Device(d) => Target::Device {
                            extension: d.extension,
                            device: d.device,
                        },
                        policy::Target::External(n) => Target::External(n),
                    },
                    timeout_secs: t.timeout_secs,
                })
                .collect(),
        }),
        policy::Action::Forward(n) => Action::Forward(n),
        policy::Action::Voicemail(n) => Action::Voicemail(n),
        policy::Action::Reject(r) => Action::Reject(r.status),
    }
}

/// The time of day a policy sees (UTC until tenants have time zones).
fn local_time(at: SystemTime) -> policy::LocalTime {
    let c = Civil::of(at);
    let weekday = match c.weekday {
        0 => policy::Weekday::Monday,
        1 => policy::Weekday::Tuesday,
        2 => policy::Weekday::Wednesday,
        3 => policy::Weekday::Thursday,
        4 => policy::Weekday::Friday,
        5 => policy::Weekday::Saturday,
        _ => policy::Weekday::Sunday,
    };
    policy::LocalTime {
        year: u16::try_from(c.year).unwrap_or(u16::MAX),
        month: u8::try_from(c.month).unwrap_or(1),
        day: u8::try_from(c.day).unwrap_or(1),
        weekday,
        hour: u8::try_from(c.hour).unwrap_or(0),
        minute: u8::try_from(c.minute).unwrap_or(0),
        time_zone: "UTC".into(),
    }
}

/// A decision context for a sample call from `caller` to `dialled` in the
/// tenant as it is now: what the console's "try a decision" runs.
pub fn sample_context(
    tenant: Arc<Tenant>,
    lines: Arc<Lines>,
    ring_timeout_secs: u32,
    caller: &str,
    dialled: &str,
    kv: BTreeMap<String, String>,
) -> edgepbx_policy::playground::Context {
    let view = PolicyView {
        tenant: tenant.clone(),
        lines,
        ring_timeout_secs,
    };
    let calling = tenant.resolve(caller);
    let caller = Caller {
        number: calling.map_or_else(|| caller.to_owned(), |e| e.number.clone()),
        name: calling.map(|e| e.name.clone()).filter(|n| !n.is_empty()),
        kind: if calling.is_some() {
            CallerKind::Internal
        } else {
            CallerKind::External
        },
        source: "console".into(),
    };
    let mut numbers: Vec<&String> = tenant.extensions.keys().collect();
    numbers.sort();
    let mut groups: Vec<&String> = tenant.groups.keys().collect();
    groups.sort();
    edgepbx_policy::playground::Context {
        call: policy::Call {
            id: "try".into(),
            tenant: tenant.code.clone(),
            caller: policy_caller(&caller),
            dialled: policy::Dialled {
                number: dialled.to_owned(),
                alias_of: tenant
                    .resolve(dialled)
                    .filter(|e| e.number != dialled)
                    .map(|e| e.number.clone()),
                destination: view.destination(dialled),
            },
            now: local_time(SystemTime::now()),
            entropy: rand::random(),
            history: Vec::new(),
        },
        directory: edgepbx_policy::StaticDirectory {
            extensions: numbers
                .into_iter()
                .filter_map(|n| view.extension(n))
                .collect(),
            groups: groups
                .into_iter()
                .filter_map(|n| edgepbx_policy::Directory::group(&view, n))
                .collect(),
        },
        kv,
    }
}

/// One tenant as its routing policy sees it: extensions with their
/// settings and live state, ring groups and virtual extensions.
pub struct PolicyView {
    /// The tenant.
    pub tenant: Arc<Tenant>,
    /// Live line state.
    pub lines: Arc<Lines>,
    /// Ring timeout of extensions whose settings name none.
    pub ring_timeout_secs: u32,
}

impl PolicyView {
    /// The policy's view of the extension `number` (or alias) reaches.
    pub fn extension(&self, number: &str) -> Option<policy::Extension> {
        let extension = self.tenant.resolve(number)?;
        let line = self.lines.get(&self.aor(extension));
        let s = &extension.settings;
        let presence = with_dnd(line.presence(), s.dnd);
        Some(policy::Extension {
            number: extension.number.clone(),
            name: extension.name.clone(),
            ring_timeout_secs: s.ring_timeout_secs.unwrap_or(self.ring_timeout_secs),
            dnd: s.dnd,
            forwarding: policy::Forwarding {
                unconditional: s.forward_unconditional.as_ref().map(forward_to),
                busy: s.forward_busy.as_ref().map(forward_to),
                no_answer: s.forward_no_answer.as_ref().map(forward_to),
                offline: s.forward_offline.as_ref().map(forward_to),
            },
            follow_me: s.follow_me.as_ref().map(|f| policy::FollowMe {
                mode: ring_mode(f.mode),
                destinations: f
                    .destinations
                    .iter()
                    .map(|d| policy::FollowMeDestination {
                        number: d.number.clone(),
                        timeout_secs: d.timeout_secs,
                    })
                    .collect(),
            }),
            voicemail: s.voicemail,
            presence,
            devices: line
                .devices
                .into_iter()
                .map(|d| policy::Device {
                    id: d.id,
                    user_agent: d.user_agent,
                })
                .collect(),
        })
    }

    /// The live state of the extension `number` (or alias) reaches: what
    /// [`extension`](PolicyView::extension) tells of it, without copying
    /// its settings and devices.
    pub fn status(&self, number: &str) -> Option<policy::ExtensionStatus> {
        let extension = self.tenant.resolve(number)?;
        let (presence, devices) = self.lines.status(&self.aor(extension));
        let dnd = extension.settings.dnd;
        Some(policy::ExtensionStatus {
            presence: with_dnd(presence, dnd),
            dnd,
            devices: u32::try_from(devices).unwrap_or(u32::MAX),
        })
    }

    fn aor(&self, extension: &Extension) -> Aor {
        Aor {
            tenant: self.tenant.code.clone(),
            extension: extension.number.clone(),
        }
    }

    /// What a dialled number of the tenant is, as the policy sees it.
    pub fn destination(&self, number: &str) -> policy::Destination {
        if let Some(extension) = self.extension(number) {
            return policy::Destination::Extension(extension);
        }
        match self.tenant.groups.get(number) {
            Some(g) if g.kind == GroupKind::Virtual => {
                policy::Destination::VirtualExtension(policy::VirtualExtension {
                    number: g.number.clone(),
                    name: g.name.clone(),
                    members: g.members.clone(),
                    ring_timeout_secs: g.ring_timeout_secs,
                    no_answer: g.no_answer.as_ref().map(forward_to),
                })
            }
            Some(g) => policy::Destination::Group(policy_group(g)),
            // Numbers outside the tenant go out through its trunk.
            None if self.tenant.outbound_trunk().is_some() => {
                policy::Destination::External(number.to_owned())
            }
            None => policy::Destination::Unknown,
        }
    }
}

/// The presence a policy sees: an idle line on do-not-disturb shows as such.
fn with_dnd(presence: Presence, dnd: bool) -> policy::Presence {
    match presence {
        Presence::Available if dnd => policy::Presence::Dnd,
        Presence::Available => policy::Presence::Available,
        Presence::Ringing => policy::Presence::Ringing,
        Presence::Busy => policy::Presence::Busy,
        Presence::Offline => policy::Presence::Offline,
    }
}

fn policy_group(g: &Group) -> policy::Group {
    policy::Group {
        number: g.number.clone(),
        name: g.name.clone(),
        strategy: match g.strategy {
            GroupStrategy::RingAll => policy::GroupStrategy::RingAll,
            GroupStrategy::Hunt => policy::GroupStrategy::Hunt,
            GroupStrategy::RoundRobin => policy::GroupStrategy::RoundRobin,
            GroupStrategy::Random => policy::GroupStrategy::Random,
            GroupStrategy::LeastRecent => policy::GroupStrategy::LeastRecent,
        },
        members: g.members.clone(),
        ring_timeout_secs: g.ring_timeout_secs,
        no_answer: g.no_answer.as_ref().map(forward_to),
    }
}

fn forward_to(target: &ForwardTarget) -> policy::ForwardTo {
    match target {
        ForwardTarget::Number(n) => policy::ForwardTo::Number(n.clone()),
        ForwardTarget::Voicemail => policy::ForwardTo::Voicemail,
    }
}

fn ring_mode(mode: edgepbx_store::RingMode) -> policy::RingMode {
    match mode {
        edgepbx_store::RingMode::Simultaneous => policy::RingMode::Simultaneous,
        edgepbx_store::RingMode::Sequential => policy::RingMode::Sequential,
    }
}

impl edgepbx_policy::Directory for PolicyView {
    fn extension(&self, number: &str) -> Option<policy::Extension> {
        PolicyView::extension(self, number)
    }

    fn status(&self, number: &str) -> Option<policy::ExtensionStatus> {
        PolicyView::status(self, number)
    }

    fn group(&self, number: &str) -> Option<policy::Group> {
        self.tenant
            .groups
            .get(number)
            .filter(|g| g.kind == GroupKind::Ring)
            .map(|g| policy_group(g))
    }

    fn groups_of(&self, extension: &str) -> Vec<String> {
        let mut numbers: Vec<String> = self
            .tenant
            .groups
            .values()
            .filter(|g| g.kind == GroupKind::Ring && g.members.iter().any(|m| m == extension))
            .map(|g| g.number.clone())
            .collect();
        numbers.sort();
        numbers
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use edgepbx_engine::Peer;
    use edgepbx_engine::registrar::Binding;
    use edgepbx_store::CallSettings;
    use policy::Presence;

    use super::*;

    /// What `status` answers is what `extension` says of the live state,
    /// by number and by alias, whatever the line is doing.
    fn binding(contact: &str) -> Binding {
        Binding {
            contact: contact.to_owned(),
            q: None,
            instance: None,
            reg_id: None,
            call_id: "c".to_owned(),
            cseq: 1,
            expires_at: SystemTime::UNIX_EPOCH,
            stored_expires_at: SystemTime::UNIX_EPOCH,
            deadline: Instant::now(),
            source: Peer::Udp(([127, 0, 0, 1], 5062).into()),
            user_agent: None,
        }
    }

    #[test]
    fn status_agrees_with_the_whole_extension() {
        let mut tenant = Tenant::new("ACME".into(), "acme.example".into());
        for (number, dnd) in [("100", false), ("101", true)] {
            tenant.add_extension(
                Extension {
                    number: number.into(),
                    name: format!("Extension {number}"),
                    aliases: vec![format!("5{number}")],
                    settings: CallSettings {
                        dnd,
                        ..CallSettings::default()
                    },
                },
                [],
            );
        }
        let lines = Arc::new(Lines::default());
        let view = PolicyView {
            tenant: Arc::new(tenant),
            lines: lines.clone(),
            ring_timeout_secs: 20,
        };
        let aor = |extension: &str| Aor {
            tenant: "ACME".into(),
            extension: extension.into(),
        };
        let check = |step: &str, expected: [(Presence, u32); 2]| {
            for (number, (presence, devices)) in ["100", "101"].into_iter().zip(expected) {
                for asked in [number.to_owned(), format!("5{number}")] {
                    let status = view.status(&asked).expect("an extension");
                    let whole = view.extension(&asked).expect("an extension");
                    assert_eq!(status, whole.status(), "{step}: {asked}");
                    assert_eq!(
                        (status.presence, status.devices, status.dnd),
                        (presence, devices, number == "101"),
                        "{step}: {asked}"
                    );
                }
            }
        };
        check("no device", [(Presence::Offline, 0); 2]);
        for number in ["100", "101"] {
            lines.set_devices(
                &aor(number),
                &[binding("sip:a@127.0.0.1"), binding("sip:b@127.0.0.1")],
            );
        }
        check("idle", [(Presence::Available, 2), (Presence::Dnd, 2)]);
        for number in ["100", "101"] {
            lines.adjust(&aor(number), 1, 0);
        }
        check("ringing", [(Presence::Ringing, 2); 2]);
        for number in ["100", "101"] {
            lines.adjust(&aor(number), -1, 1);
        }
        check("talking", [(Presence::Busy, 2); 2]);
        assert_eq!(view.status("999"), None);
        assert_eq!(view.status("GLOBEX"), None);
    }
}
