//! The live state of every extension's line: the devices registered for it
//! and the calls it is in. The SIP core keeps it current (bindings come and
//! go, calls ring, connect and end); routing policies read it through
//! [`PolicyDirectory`], and presence will publish it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use edgepbx_policy::bindings as policy;

use crate::directory::Tenant;
use crate::registrar::{Aor, Binding};

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

/// Every line, shared between the SIP core (writer) and readers.
#[derive(Debug, Default)]
pub struct Lines {
    lines: RwLock<HashMap<Aor, LineState>>,
}

impl Lines {
    /// The state of one extension's line.
    pub fn get(&self, aor: &Aor) -> LineState {
        self.read().get(aor).cloned().unwrap_or_default()
    }

    /// Replaces the devices of `aor` (after a binding was added or removed).
    pub fn set_devices(&self, aor: &Aor, bindings: &[Binding]) {
        let mut lines = self.write();
        let line = lines.entry(aor.clone()).or_default();
        line.devices = bindings.iter().map(Device::of).collect();
        if *line == LineState::default() {
            lines.remove(aor);
        }
    }

    /// Changes the call counters of `aor` by the given amounts.
    pub fn adjust(&self, aor: &Aor, ringing: i32, talking: i32) {
        let mut lines = self.write();
        let line = lines.entry(aor.clone()).or_default();
        line.ringing = line.ringing.saturating_add_signed(ringing);
        line.talking = line.talking.saturating_add_signed(talking);
        if *line == LineState::default() {
            lines.remove(aor);
        }
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
/// their settings and live state.
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
        let line = self.lines.get(&Aor {
            tenant: self.tenant.code.clone(),
            extension: extension.number.clone(),
        });
        Some(policy::Extension {
            number: extension.number.clone(),
            name: extension.name.clone(),
            ring_timeout_secs: self.ring_timeout_secs,
            dnd: false,
            forwarding: policy::Forwarding {
                unconditional: None,
                busy: None,
                no_answer: None,
                offline: None,
            },
            follow_me: None,
            voicemail: false,
            presence: line.presence(),
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
}

impl edgepbx_policy::Directory for PolicyDirectory {
    fn extension(&self, number: &str) -> Option<policy::Extension> {
        PolicyDirectory::extension(self, number)
    }

    fn group(&self, _number: &str) -> Option<policy::Group> {
        None
    }

    fn groups_of(&self, _extension: &str) -> Vec<String> {
        Vec::new()
    }
}
