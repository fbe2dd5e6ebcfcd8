//! The built-in policy through the sandbox, a module built against an
//! earlier revision of the contract, hot swap under load, and the
//! compiled-artifact cache.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use common::{HOSTILE, call, directory, engine, engine_with, extension, hostile_call, kv};
use edgepbx_policy::bindings::{
    Action, Destination, Device, Extension, ForwardTo, Group, GroupStrategy, Presence, Reject,
    Target,
};
use edgepbx_policy::decision::MAX_TARGETS;
use edgepbx_policy::{BUILTIN_POLICY, DecidedBy, Limits, Policies, PolicyEngine, StaticDirectory};

#[test]
fn the_builtin_policy_decides_through_the_sandbox() {
    let engine = engine();
    let builtin = engine.builtin().clone();
    let ring = engine
        .run(
            &builtin,
            "ACME",
            &call("100", Destination::Extension(extension("100"))),
            directory(),
            kv(),
        )
        .expect("a decision");
    match ring.action {
        Action::Ring(ring) => {
            assert_eq!(ring.targets.len(), 1);
            assert_eq!(ring.targets[0].target, Target::Extension("100".into()));
            assert_eq!(ring.targets[0].timeout_secs, 20);
        }
        other => panic!("{other:?}"),
    }

    let mut forwarded = extension("100");
    forwarded.forwarding.unconditional = Some(ForwardTo::Number("+491701234".into()));
    let forward = engine
        .run(
            &builtin,
            "ACME",
            &call("100", Destination::Extension(forwarded)),
            directory(),
            kv(),
        )
        .expect("a decision");
    assert_eq!(forward.action, Action::Forward("+491701234".into()));

    let unknown = engine
        .run(
            &builtin,
            "ACME",
            &call("999", Destination::Unknown),
            directory(),
            kv(),
        )
        .expect("a decision");
    assert_eq!(
        unknown.action,
        Action::Reject(Reject {
            status: 404,
            reason: None
        })
    );
}

/// `guest-policies/earlier`, built against the contract before `get-status`.
const EARLIER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/earlier-policy.wasm"));

/// A module built against an earlier revision of the contract (one host
/// function fewer) is accepted and decides, every function of that
/// revision answering: the contract only grows, and modules tenants
/// uploaded before keep working.
#[test]
fn a_module_built_against_an_earlier_contract_still_decides() {
    // The fixture imports every function of the earlier directory
    // interface, and not the one added since.
    let types = wasmtime::Engine::new(wasmtime::Config::new().wasm_component_model(true))
        .expect("an engine");
    let component = wasmtime::component::Component::new(&types, EARLIER).expect("a component");
    let imports: Vec<(String, Vec<String>)> = component
        .component_type()
        .imports(&types)
        .filter_map(|(name, item)| match item.ty {
            wasmtime::component::types::ComponentItem::ComponentInstance(instance) => Some((
                name.to_owned(),
                instance
                    .exports(&types)
                    .filter(|(_, export)| {
                        matches!(
                            export.ty,
                            wasmtime::component::types::ComponentItem::ComponentFunc(_)
                        )
                    })
                    .map(|(f, _)| f.to_owned())
                    .collect(),
            )),
            _ => None,
        })
        .collect();
    let functions = |interface: &str| {
        imports
            .iter()
            .find(|(name, _)| name == interface)
            .map(|(_, functions)| functions.clone())
            .unwrap_or_default()
    };
    let mut directory_functions = functions("edgepbx:policy/directory@0.1.0");
    directory_functions.sort();
    assert_eq!(
        directory_functions,
        ["get-extension", "get-group", "groups-of"]
    );
    assert_eq!(functions("edgepbx:policy/kv@0.1.0").len(), 4);
    assert_eq!(functions("edgepbx:policy/log@0.1.0"), ["write"]);

    let engine = engine();
    let policy = engine
        .compile(EARLIER)
        .expect("the earlier module is accepted");
    let mut offline = extension("101");
    offline.devices.clear();
    let directory = Arc::new(StaticDirectory {
        extensions: vec![extension("100"), offline.clone()],
        groups: vec![Group {
            number: "600".into(),
            name: "Sales".into(),
            strategy: GroupStrategy::Hunt,
            members: vec!["101".into()],
            ring_timeout_secs: 15,
            no_answer: None,
        }],
    });
    let kv = kv();
    let decide = |number: &str, destination| {
        engine
            .run(
                &policy,
                "ACME",
                &call(number, destination),
                directory.clone(),
                kv.clone(),
            )
            .expect("a decision")
            .action
    };
    let Action::Ring(ring) = decide("100", Destination::Extension(extension("100"))) else {
        panic!("the online extension rings");
    };
    assert_eq!(
        ring.targets.iter().map(|t| &t.target).collect::<Vec<_>>(),
        [&Target::Extension("100".into())]
    );
    assert_eq!(
        decide("101", Destination::Extension(offline)),
        Action::Reject(Reject {
            status: 480,
            reason: Some("groups 1, calls 2, kept true".into())
        })
    );
}

/// A group as large as one ring step may be (the server's groups are no
/// larger), every member with the most devices a default registrar keeps
/// and long user agents, some of them unable to take calls: the built-in
/// policy asks the host for each member's status and rings the others, in
/// one valid step, within 256 KiB of memory.
#[test]
fn the_builtin_policy_rings_the_largest_group() {
    let members: Vec<String> = (0..MAX_TARGETS).map(|i| format!("{}", 1000 + i)).collect();
    let extensions: Vec<Extension> = members
        .iter()
        .enumerate()
        .map(|(i, number)| {
            let mut member = extension(number);
            member.devices = (0..10)
                .map(|d| Device {
                    id: format!("{number}-device-{d}-{}", "x".repeat(40)),
                    user_agent: Some(format!("Yealink SIP-T54W 96.86.0.{d} {}", "y".repeat(200))),
                })
                .collect();
            match i % 10 {
                // Do not disturb, idle or in a call.
                3 => member.dnd = true,
                5 => (member.dnd, member.presence) = (true, Presence::Busy),
                // No device registered.
                7 => (member.devices, member.presence) = (Vec::new(), Presence::Offline),
                // In a call: may still have a free device.
                9 => member.presence = Presence::Busy,
                _ => {}
            }
            member
        })
        .collect();
    let expected: Vec<Target> = extensions
        .iter()
        .filter(|e| !e.dnd && !e.devices.is_empty())
        .map(|e| Target::Extension(e.number.clone()))
        .collect();
    assert_eq!(expected.len(), 70);
    let directory = Arc::new(StaticDirectory {
        extensions,
        groups: Vec::new(),
    });
    for strategy in [GroupStrategy::RingAll, GroupStrategy::Hunt] {
        let group = Group {
            number: "600".into(),
            name: "Everyone".into(),
            strategy,
            members: members.clone(),
            ring_timeout_secs: 15,
            no_answer: None,
        };
        let engine = engine_with(Limits {
            max_memory_bytes: 256 << 10,
            deadline: std::time::Duration::from_secs(2),
            ..Limits::default()
        });
        let decision = engine
            .run(
                engine.builtin(),
                "ACME",
                &call("600", Destination::Group(group)),
                directory.clone(),
                kv(),
            )
            .unwrap_or_else(|fault| panic!("{strategy:?}: {fault}"));
        let Action::Ring(ring) = decision.action else {
            panic!("{strategy:?}: {:?}", decision.action);
        };
        let rung: Vec<Target> = ring.targets.into_iter().map(|t| t.target).collect();
        assert_eq!(rung, expected, "{strategy:?}");
    }
}

/// Two versions swapped back and forth while eight threads decide: every
/// decision completes, and each is answered wholly by the version that
/// `DecidedBy` names (the hostile module rejects with "hostile", the
/// built-in one rings).
#[test]
fn hot_swap_loses_no_decision_and_mixes_no_versions() {
    // What is tested is the swap: a deadline no busy machine reaches.
    let engine = Arc::new(common::engine_with(Limits {
        deadline: std::time::Duration::from_secs(5),
        ..Limits::default()
    }));
    let policies = Arc::new(Policies::new(engine.clone()));
    let version_a = engine.compile(HOSTILE).expect("valid");
    let version_b = engine.compile(BUILTIN_POLICY).expect("valid");
    policies.activate("ACME", 1, version_a.clone());

    let stop = Arc::new(AtomicBool::new(false));
    let deciders: Vec<_> = (0..8)
        .map(|_| {
            let policies = policies.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let to_100 = call("100", Destination::Extension(extension("100")));
                let mut seen = [0u32; 2];
                while !stop.load(Ordering::Relaxed) {
                    let decided =
                        policies.decide(Instant::now(), "ACME", &to_100, directory(), kv());
                    match (&decided.by, &decided.decision.action) {
                        (DecidedBy::Tenant { version: 1, .. }, Action::Reject(r))
                            if r.reason.as_deref() == Some("hostile") =>
                        {
                            seen[0] += 1
                        }
                        (DecidedBy::Tenant { version: 2, .. }, Action::Ring(_)) => seen[1] += 1,
                        other => panic!("a decision mixed versions or failed: {other:?}"),
                    }
                }
                seen
            })
        })
        .collect();
    for swap in 0..200 {
        if swap % 2 == 0 {
            policies.activate("ACME", 2, version_b.clone());
        } else {
            policies.activate("ACME", 1, version_a.clone());
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    stop.store(true, Ordering::Relaxed);
    let mut totals = [0u32; 2];
    for decider in deciders {
        let seen = decider.join().expect("no decider panicked");
        totals[0] += seen[0];
        totals[1] += seen[1];
    }
    assert!(
        totals[0] > 0 && totals[1] > 0,
        "both versions served: {totals:?}"
    );
}

#[test]
fn a_restart_loads_compiled_modules_from_the_cache() {
    let dir = std::env::temp_dir().join(format!("edgepbx-policy-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let limits = Limits {
        deadline: std::time::Duration::from_secs(2),
        ..Limits::default()
    };
    {
        let first = PolicyEngine::new(limits.clone(), Some(dir.clone())).expect("engine");
        assert!(
            !first.builtin().from_cache(),
            "the built-in policy compiled"
        );
        assert!(!first.compile(HOSTILE).expect("valid").from_cache());
    }
    let second = PolicyEngine::new(limits.clone(), Some(dir.clone())).expect("engine");
    let hostile = second.compile(HOSTILE).expect("valid");
    assert!(
        second.builtin().from_cache() && hostile.from_cache(),
        "nothing compiled after the restart"
    );
    let decision = second
        .run(&hostile, "ACME", &hostile_call("x"), directory(), kv())
        .expect("a cached module runs");
    assert!(matches!(decision.action, Action::Reject(_)));

    // A damaged artifact is compiled again, not loaded.
    for entry in std::fs::read_dir(&dir).expect("cache dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            std::fs::write(&path, b"garbage").expect("damage");
        }
    }
    let third = PolicyEngine::new(limits, Some(dir.clone())).expect("engine");
    assert!(!third.builtin().from_cache());
    assert!(!third.compile(HOSTILE).expect("valid").from_cache());
    let _ = std::fs::remove_dir_all(&dir);
}
