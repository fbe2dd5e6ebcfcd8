//! The live state of every extension's line: the devices registered for it
//! and the calls it is in. The engine keeps it current (bindings come and
//! go, calls ring, connect and end) and emits each change of what a line
//! shows as an [`Event::Line`]; routing policies and the console read it
//! from other threads, so it is shared behind a lock that the engine holds
//! only for a map update.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::events::Event;
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
    /// What watchers see: devices, ringing, talking.
    fn look(&self) -> (usize, bool, bool) {
        (self.devices.len(), self.ringing > 0, self.talking > 0)
    }

    /// What the line is doing, busiest first.
    pub fn presence(&self) -> Presence {
        if self.talking > 0 {
            Presence::Busy
        } else if self.ringing > 0 {
            Presence::Ringing
        } else if self.devices.is_empty() {
            Presence::Offline
        } else {
            Presence::Available
        }
    }
}

/// What a line is doing, as routing and presence see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Registered and idle.
    Available,
    /// A call rings it.
    Ringing,
    /// In an answered call.
    Busy,
    /// No device registered.
    Offline,
}

/// Every line, shared between the engine (its one writer: the server only
/// reads it) and readers. Each
/// change of what a line shows (devices, ringing, talking) comes back from
/// the change as an [`Event::Line`] for the engine to emit.
#[derive(Debug, Default)]
pub struct Lines {
    lines: RwLock<HashMap<Aor, LineState>>,
}

impl Lines {
    /// Every line of a tenant that has a device or a call.
    pub fn of_tenant(&self, tenant: &str) -> Vec<(String, LineState)> {
        self.read()
            .iter()
            .filter(|(aor, _)| aor.tenant == tenant)
            .map(|(aor, line)| (aor.extension.clone(), line.clone()))
            .collect()
    }

    /// The line's new look, when it changed.
    fn change(aor: &Aor, before: (usize, bool, bool), after: &LineState) -> Option<Event> {
        (before != after.look()).then(|| Event::Line {
            tenant: aor.tenant.clone(),
            extension: aor.extension.clone(),
            devices: after.devices.len(),
            ringing: after.ringing > 0,
            talking: after.talking > 0,
        })
    }

    /// The state of one extension's line.
    pub fn get(&self, aor: &Aor) -> LineState {
        self.read().get(aor).cloned().unwrap_or_default()
    }

    /// The presence of one extension's line and its number of devices,
    /// without copying the devices.
    pub fn status(&self, aor: &Aor) -> (Presence, usize) {
        self.read().get(aor).map_or((Presence::Offline, 0), |line| {
            (line.presence(), line.devices.len())
        })
    }

    /// Replaces the devices of `aor` (after a binding was added or removed);
    /// returns the line's new look when it changed.
    pub fn set_devices(&self, aor: &Aor, bindings: &[Binding]) -> Option<Event> {
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
        Lines::change(aor, before, &after)
    }

    /// Changes the call counters of `aor` by the given amounts; returns the
    /// line's new look when it changed.
    pub fn adjust(&self, aor: &Aor, ringing: i32, talking: i32) -> Option<Event> {
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
        Lines::change(aor, before, &after)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Aor, LineState>> {
        // Every write leaves the map whole.
        self.lines.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Aor, LineState>> {
        self.lines.write().unwrap_or_else(|e| e.into_inner())
    }
}
