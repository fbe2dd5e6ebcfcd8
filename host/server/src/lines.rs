//! The live state of every extension's line: the devices registered for it
//! and the calls it is in. The SIP core keeps it current (bindings come and
//! go, calls ring, connect and end); routing policies read it through
//! [`PolicyDirectory`], and presence will publish it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use edgepbx_policy::bindings as policy;
use edgepbx_store::{ForwardTarget, Group, GroupKind, GroupStrategy, RingMode};

use crate::directory::{Extension, Tenant};
use crate::events::{Event, EventBus};
use crate::registrar::{Aor, Binding};

// A policy may ring every member of a group in one step, and every
// follow-me number of an extension with it.
const _: () = assert!(
    edgepbx_store::MAX_MEMBERS <= edgepbx_policy::decision::MAX_TARGETS
        && edgepbx_store::MAX_FOLLOW_ME < edgepbx_policy::decision::MAX_TARGETS
);

/// One device registered for an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Stable id: the RFC 5626 instance id when the device sent one, else
    /// its contact URI.
    pub id: String,
    /// Its User-Agent.
    pub user_agent: Option<String>,
}

impl Device {
    /// The device a binding stands for.
    pub fn of(binding: &Binding) -> Device {
        Device {
            id: device_id(binding),
            user_agent: binding.user_agent.clone(),
        }
    }
}

/// The id policies and the engine use for a binding's device.
pub fn device_id(binding: &Binding) -> String {
    binding
        .instance
        .clone()
        .unwrap_or_else(|| binding.contact.clone())
}

/// What one extension's line is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineState {
    /// Registered devices.
    pub devices: Vec<Device>,
    /// Calls it is ringing in.
    pub ringing: u32,
    /// Answered calls it is in.
    pub talking: u32,
}

impl LineState {
    /// What watchers see: devices, ringing, talking.
    fn look(&self) -> (usize, bool, bool) {
        (self.devices.len(), self.ringing > 0, self.talking > 0)
    }

    /// The presence a policy sees.
    pub fn presence(&self) -> policy::Presence {
        if self.talking > 0 {
            policy::Presence::Busy
        } else if self.ringing > 0 {
            policy::Presence::Ringing
        } else if self.devices.is_empty() {
            policy::Presence::Offline
        } else {
            policy::Presence::Available
        }
    }
}

/// Every line, shared between the SIP core (writer) and readers. Each
/// change of what a line shows (devices, ringing, talking) is published on
/// the event bus, for presence and the console.
#[derive(Debug)]
pub struct Lines {
    lines: RwLock<HashMap<Aor, LineState>>,
    events: EventBus,
}

impl Lines {
    /// No line busy, changes published on `events`.
    pub fn new(events: EventBus) -> Lines {
        Lines {
            lines: RwLock::default(),
            events,
        }
    }

    /// Every line of a tenant that has a device or a call.
    pub fn of_tenant(&self, tenant: &str) -> Vec<(String, LineState)> {
        self.read()
            .iter()
            .filter(|(aor, _)| aor.tenant == tenant)
            .map(|(aor, line)| (aor.extension.clone(), line.clone()))
            .collect()
    }

    /// Publishes the line's new look when it changed.
    fn publish(&self, aor: &Aor, before: (usize, bool, bool), after: &LineState) {
        if before != after.look() {
            self.events.publish(Event::Line {
                tenant: aor.tenant.clone(),
                extension: aor.extension.clone(),
                devices: after.devices.len(),
                ringing: after.ringing > 0,
                talking: after.talking > 0,
            });
        }
    }

    /// The state of one extension's line.
    pub fn get(&self, aor: &Aor) -> LineState {
        self.read().get(aor).cloned().unwrap_or_default()
    }

    /// The presence of one extension's line and its number of devices,
    /// without copying the devices.
    pub fn status(&self, aor: &Aor) -> (policy::Presence, usize) {
        self.read()
            .get(aor)
            .map_or((policy::Presence::Offline, 0), |line| {
                (line.presence(), line.devices.len())
            })
    }

    /// Replaces the devices of `aor` (after a binding was added or removed).
    pub fn set_devices(&self, aor: &Aor, bindings: &[Binding]) {
        let (before, after) = {
            let mut lines = self.write();
            let line = lines.entry(aor.clone()).or_default();
            let before = line.look();
            line.devices = bindings.iter().map(Device::of).collect();
            let after = line.clone();
            if *line == LineState::default() {
                lines.remove(aor);
            }
            (before, after)
        };
        self.publish(aor, before, &after);
    }

    /// Changes the call counters of `aor` by the given amounts.
    pub fn adjust(&self, aor: &Aor, ringing: i32, talking: i32) {
        let (before, after) = {
            let mut lines = self.write();
            let line = lines.entry(aor.clone()).or_default();
            let before = line.look();
            line.ringing = line.ringing.saturating_add_signed(ringing);
            line.talking = line.talking.saturating_add_signed(talking);
            let after = line.clone();
            if *line == LineState::default() {
                lines.remove(aor);
            }
            (before, after)
        };
        self.publish(aor, before, &after);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Aor, LineState>> {
        // Every write leaves the map whole.
        self.lines.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Aor, LineState>> {
        self.lines.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// One tenant's directory as its routing policy sees it: extensions with
/// their settings and live state, ring groups and virtual extensions.
pub struct PolicyDirectory {
    /// The tenant.
    pub tenant: Arc<Tenant>,
    /// Live line state.
    pub lines: Arc<Lines>,
    /// Ring timeout of extensions whose settings name none.
    pub ring_timeout_secs: u32,
}

impl PolicyDirectory {
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
    /// [`extension`](PolicyDirectory::extension) tells of it, without
    /// copying its settings and devices.
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
fn with_dnd(presence: policy::Presence, dnd: bool) -> policy::Presence {
    match presence {
        policy::Presence::Available if dnd => policy::Presence::Dnd,
        other => other,
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

fn ring_mode(mode: RingMode) -> policy::RingMode {
    match mode {
        RingMode::Simultaneous => policy::RingMode::Simultaneous,
        RingMode::Sequential => policy::RingMode::Sequential,
    }
}

impl edgepbx_policy::Directory for PolicyDirectory {
    fn extension(&self, number: &str) -> Option<policy::Extension> {
        PolicyDirectory::extension(self, number)
    }

    fn status(&self, number: &str) -> Option<policy::ExtensionStatus> {
        PolicyDirectory::status(self, number)
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
    use edgepbx_store::CallSettings;
    use policy::Presence;

    use super::*;

    /// What `status` answers is what `extension` says of the live state,
    /// by number and by alias, whatever the line is doing.
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
        let lines = Arc::new(Lines::new(EventBus::default()));
        let directory = PolicyDirectory {
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
                    let status = directory.status(&asked).expect("an extension");
                    let whole = directory.extension(&asked).expect("an extension");
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
                &[
                    Binding::for_test("sip:a@127.0.0.1", 1),
                    Binding::for_test("sip:b@127.0.0.1", 1),
                ],
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
        assert_eq!(directory.status("999"), None);
        assert_eq!(directory.status("GLOBEX"), None);
    }
}
