//! Calls and engines for the runtime's tests.

use std::sync::Arc;

use edgepbx_policy::bindings::{
    Caller, CallerKind, Destination, Device, Dialled, Extension, Forwarding, LocalTime, Presence,
    Weekday,
};
use edgepbx_policy::{Call, Limits, MemoryKv, PolicyEngine, StaticDirectory};

/// The misbehaving policy of `guest-policies/hostile`, built by build.rs.
pub const HOSTILE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hostile-policy.wasm"));

/// An engine with the default limits but a deadline that a debug build on
/// a busy CI machine never reaches: tests that are not about time must not
/// fail when the machine is slow.
pub fn engine() -> PolicyEngine {
    engine_with(Limits {
        deadline: std::time::Duration::from_secs(2),
        ..Limits::default()
    })
}

pub fn engine_with(limits: Limits) -> PolicyEngine {
    PolicyEngine::new(limits, None).expect("the engine starts")
}

pub fn extension(number: &str) -> Extension {
    Extension {
        number: number.into(),
        name: format!("Extension {number}"),
        ring_timeout_secs: 20,
        dnd: false,
        forwarding: Forwarding {
            unconditional: None,
            busy: None,
            no_answer: None,
            offline: None,
        },
        follow_me: None,
        voicemail: true,
        presence: Presence::Available,
        devices: vec![Device {
            id: "desk".into(),
            user_agent: None,
        }],
    }
}

/// A call from internal 200 to `number`, resolved to `destination`.
pub fn call(number: &str, destination: Destination) -> Call {
    Call {
        id: "call-1".into(),
        tenant: "ACME".into(),
        caller: Caller {
            number: "200".into(),
            name: None,
            kind: CallerKind::Internal,
            source: "200".into(),
        },
        dialled: Dialled {
            number: number.into(),
            alias_of: None,
            destination,
        },
        now: LocalTime {
            year: 2026,
            month: 11,
            day: 30,
            weekday: Weekday::Monday,
            hour: 9,
            minute: 0,
            time_zone: "UTC".into(),
        },
        entropy: 42,
        history: Vec::new(),
    }
}

/// A call to the hostile policy asking for `behaviour`.
pub fn hostile_call(behaviour: &str) -> Call {
    call(behaviour, Destination::Unknown)
}

pub fn directory() -> Arc<StaticDirectory> {
    Arc::new(StaticDirectory {
        extensions: vec![extension("100"), extension("101")],
        groups: Vec::new(),
    })
}

pub fn kv() -> Arc<MemoryKv> {
    Arc::new(MemoryKv::new(100))
}
