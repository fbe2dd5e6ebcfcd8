//! Hostile guests: each is refused at upload or stopped at run time, the
//! built-in policy answers instead, and the engine stays healthy.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{HOSTILE, call, directory, engine, engine_with, extension, hostile_call, kv};
use edgepbx_policy::bindings::{Action, Destination, Reject};
use edgepbx_policy::decision::InvalidDecision;
use edgepbx_policy::{DecidedBy, Fault, Limits, Policies, PolicyError};

fn reject_reason(action: &Action) -> Option<&str> {
    match action {
        Action::Reject(Reject { reason, .. }) => reason.as_deref(),
        _ => None,
    }
}

#[test]
fn run_time_faults_are_classified_and_bounded() {
    // A deadline long enough that the memory bomb reaches the memory cap
    // first even on a loaded machine, short enough for the loop.
    let engine = engine_with(Limits {
        deadline: Duration::from_millis(250),
        ..Limits::default()
    });
    let hostile = engine
        .compile(HOSTILE)
        .expect("the hostile module is a valid policy");
    let run = |behaviour: &str| {
        engine.run(
            &hostile,
            "ACME",
            &hostile_call(behaviour),
            directory(),
            kv(),
        )
    };

    let started = Instant::now();
    assert_eq!(run("loop").err(), Some(Fault::Timeout));
    let looped = started.elapsed();
    assert!(looped < Duration::from_secs(2), "the loop ran {looped:?}");

    assert_eq!(run("bomb").err(), Some(Fault::OutOfMemory));
    assert!(
        matches!(run("trap"), Err(Fault::Trap(_))),
        "{:?}",
        run("trap")
    );
    assert_eq!(
        run("huge").err(),
        Some(Fault::Invalid(InvalidDecision::TooManyTargets {
            count: 1000
        }))
    );
    assert!(matches!(
        run("long"),
        Err(Fault::Invalid(InvalidDecision::Number { .. }))
    ));
    let deep = run("deep");
    assert!(matches!(deep, Err(Fault::Trap(_))), "{deep:?}");

    // The engine is still healthy: an ordinary decision works.
    let fine = run("anything").expect("an ordinary decision");
    assert_eq!(reject_reason(&fine.action), Some("hostile"));
}

#[test]
fn a_loop_is_stopped_after_the_engine_sat_idle() {
    // The epoch thread parks when no decision runs; the first decision
    // after a quiet spell must wake it, or a loop would never be stopped.
    let engine = engine_with(Limits {
        deadline: Duration::from_millis(50),
        ..Limits::default()
    });
    let hostile = engine.compile(HOSTILE).expect("valid");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let outcome = engine.run(&hostile, "ACME", &hostile_call("loop"), directory(), kv());
        assert_eq!(outcome.err(), Some(Fault::Timeout));
        let looped = started.elapsed();
        assert!(looped < Duration::from_secs(2), "the loop ran {looped:?}");
    }
}

#[test]
fn host_functions_hold_their_limits() {
    // Ten thousand host calls: a generous deadline, so that a slow debug
    // build on a busy machine still finishes.
    let engine = engine_with(Limits {
        deadline: Duration::from_secs(5),
        ..Limits::default()
    });
    let hostile = engine.compile(HOSTILE).expect("valid");
    let kv = kv();
    let decision = engine
        .run(
            &hostile,
            "ACME",
            &hostile_call("spam"),
            directory(),
            kv.clone(),
        )
        .expect("spam still answers");
    assert_eq!(reject_reason(&decision.action), Some("limits held"));
    assert!(kv.entries("ACME").is_empty(), "{:?}", kv.entries("ACME"));
}

#[test]
fn a_fuel_budget_stops_a_loop_too() {
    let engine = engine_with(Limits {
        fuel: Some(1_000_000),
        deadline: Duration::from_secs(30),
        ..Limits::default()
    });
    let hostile = engine.compile(HOSTILE).expect("valid");
    let fault = engine
        .run(&hostile, "ACME", &hostile_call("loop"), directory(), kv())
        .err();
    assert_eq!(fault, Some(Fault::OutOfFuel));
}

#[test]
fn bad_modules_are_refused_at_upload() {
    let engine = engine_with(Limits {
        max_module_bytes: 1 << 20,
        deadline: Duration::from_secs(2),
        ..Limits::default()
    });
    let core_module = wat::parse_str("(module)").expect("wat");
    assert!(matches!(
        engine.compile(&core_module),
        Err(PolicyError::NotAComponent(_))
    ));
    assert!(matches!(
        engine.compile(b"not wasm at all"),
        Err(PolicyError::NotAComponent(_))
    ));

    let wrong_world = wat::parse_str("(component)").expect("wat");
    assert!(matches!(
        engine.compile(&wrong_world),
        Err(PolicyError::WrongWorld(_))
    ));

    let wrong_signature = wat::parse_str(
        r#"(component
            (core module $m (func (export "decide") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func (export "decide") (result u32)
                (canon lift (core func $i "decide"))))"#,
    )
    .expect("wat");
    assert!(matches!(
        engine.compile(&wrong_signature),
        Err(PolicyError::WrongWorld(_))
    ));

    let filesystem =
        wat::parse_str(r#"(component (import "wasi:filesystem/preopens@0.2.0" (instance)))"#)
            .expect("wat");
    match engine.compile(&filesystem) {
        Err(PolicyError::ForbiddenImport(name)) => {
            assert_eq!(name, "wasi:filesystem/preopens@0.2.0")
        }
        other => panic!("{other:?}"),
    }

    // More memories or core instances than a policy may have: refused,
    // so that no decision can take pool slots from another tenant's.
    let instance = "(core instance (instantiate $m))";
    for (what, wat) in [
        (
            "memories",
            format!("(component (core module $m (memory 1)) {instance} {instance})"),
        ),
        (
            "instances",
            format!("(component (core module $m) {})", instance.repeat(5)),
        ),
    ] {
        match engine.compile(&wat::parse_str(&wat).expect("wat")) {
            Err(PolicyError::NotAComponent(why)) => assert!(why.contains(what), "{why}"),
            other => panic!("{what}: {other:?}"),
        }
    }

    // A function the contract's interface does not have, under its name.
    let extra_function = wat::parse_str(
        r#"(component
            (import "edgepbx:policy/directory@0.1.0" (instance
                (export "read-voicemail" (func (param "box" string) (result string))))))"#,
    )
    .expect("wat");
    match engine.compile(&extra_function) {
        Err(PolicyError::ForbiddenImport(why)) => {
            assert!(why.contains("read-voicemail"), "{why}")
        }
        other => panic!("{other:?}"),
    }

    let mut oversized = HOSTILE.to_vec();
    oversized.resize(2 << 20, 0);
    assert!(matches!(
        engine.compile(&oversized),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn faults_fall_back_to_the_builtin_policy_and_repeated_ones_deactivate() {
    let engine = Arc::new(engine_with(Limits {
        fault_limit: 3,
        deadline: Duration::from_secs(2),
        ..Limits::default()
    }));
    let policies = Policies::new(engine.clone());
    let hostile = engine.compile(HOSTILE).expect("valid");
    policies.activate("ACME", 7, hostile.clone());

    // A call to extension 100 numbered "trap": the hostile module traps,
    // the built-in policy rings 100.
    let trap_call = call("trap", Destination::Extension(extension("100")));
    let now = Instant::now();
    for attempt in 1..=3 {
        let decided = policies.decide(now, "ACME", &trap_call, directory(), kv());
        match &decided.decision.action {
            Action::Ring(ring) => assert_eq!(ring.targets.len(), 1),
            other => panic!("fallback did not ring: {other:?}"),
        }
        assert!(
            matches!(
                &decided.by,
                DecidedBy::Fallback {
                    version: 7,
                    fault: Fault::Trap(_),
                    ..
                }
            ),
            "{:?}",
            decided.by
        );
        assert_eq!(
            decided.deactivated.is_some(),
            attempt == 3,
            "attempt {attempt}"
        );
        if let Some(deactivated) = decided.deactivated {
            assert_eq!(deactivated.version, 7);
            assert_eq!(deactivated.hash, hostile.hash());
            assert!(
                deactivated.reason.contains("trapped"),
                "{}",
                deactivated.reason
            );
        }
    }
    assert!(policies.active("ACME").is_none());
    // Until the embedder has stored the deactivation, the runtime
    // remembers it (a configuration read before then names 7 as active);
    // one writer at a time takes it, and it is forgotten once stored.
    assert_eq!(
        policies.unrecorded_deactivation("ACME").map(|d| d.version),
        Some(7)
    );
    assert_eq!(policies.take_unrecorded_deactivation("ACME", 6), None);
    let taken = policies.take_unrecorded_deactivation("ACME", 7);
    assert!(
        taken.is_some_and(|d| d.reason.contains("trapped")),
        "{:?}",
        policies.unrecorded_deactivation("ACME")
    );
    assert_eq!(policies.take_unrecorded_deactivation("ACME", 7), None);
    // While it is being stored, it is still unrecorded.
    assert!(policies.unrecorded_deactivation("ACME").is_some());
    // A failed write lets the next writer take it again.
    policies.deactivation_not_stored("ACME", 7);
    assert!(policies.take_unrecorded_deactivation("ACME", 7).is_some());
    policies.deactivation_stored("ACME", 6);
    assert!(policies.unrecorded_deactivation("ACME").is_some());
    policies.deactivation_stored("ACME", 7);
    assert_eq!(policies.unrecorded_deactivation("ACME"), None);
    let after = policies.decide(now, "ACME", &trap_call, directory(), kv());
    assert_eq!(after.by, DecidedBy::Builtin);

    // Other tenants never noticed.
    let other = policies.decide(now, "OTHER", &trap_call, directory(), kv());
    assert_eq!(other.by, DecidedBy::Builtin);
}

#[test]
fn every_run_time_fault_falls_back_to_the_builtin_policy() {
    let engine = Arc::new(engine_with(Limits {
        deadline: Duration::from_millis(250),
        fault_limit: 100,
        ..Limits::default()
    }));
    let policies = Policies::new(engine.clone());
    policies.activate("ACME", 3, engine.compile(HOSTILE).expect("valid"));
    let now = Instant::now();
    for behaviour in ["loop", "bomb", "trap", "deep", "huge", "long"] {
        // The hostile module misbehaves as the dialled number says; the
        // number resolved to extension 100, which the built-in policy rings.
        let decided = policies.decide(
            now,
            "ACME",
            &call(behaviour, Destination::Extension(extension("100"))),
            directory(),
            kv(),
        );
        match &decided.decision.action {
            Action::Ring(ring) => assert_eq!(ring.targets.len(), 1, "{behaviour}"),
            other => panic!("{behaviour}: the fallback did not ring: {other:?}"),
        }
        let expected = match behaviour {
            "loop" => matches!(
                decided.by,
                DecidedBy::Fallback {
                    fault: Fault::Timeout,
                    ..
                }
            ),
            "bomb" => matches!(
                decided.by,
                DecidedBy::Fallback {
                    fault: Fault::OutOfMemory,
                    ..
                }
            ),
            "trap" | "deep" => {
                matches!(
                    decided.by,
                    DecidedBy::Fallback {
                        fault: Fault::Trap(_),
                        ..
                    }
                )
            }
            _ => matches!(
                decided.by,
                DecidedBy::Fallback {
                    fault: Fault::Invalid(_),
                    ..
                }
            ),
        };
        assert!(expected, "{behaviour}: {:?}", decided.by);
        assert!(decided.deactivated.is_none(), "{behaviour}");
    }
    // Still active (the limit is high), and answering ordinary calls.
    let fine = policies.decide(now, "ACME", &hostile_call("anything"), directory(), kv());
    assert_eq!(reject_reason(&fine.decision.action), Some("hostile"));
    // Unless the caller asks for the built-in policy alone.
    let builtin = policies.decide_builtin("ACME", &hostile_call("anything"), directory(), kv());
    assert_eq!(builtin.by, DecidedBy::Builtin);
    assert_eq!(reject_reason(&builtin.decision.action), None);
}

#[test]
fn every_decision_gets_a_fresh_instance() {
    let engine = engine();
    let hostile = engine.compile(HOSTILE).expect("valid");
    for _ in 0..5 {
        let decision = engine
            .run(&hostile, "ACME", &hostile_call("fresh"), directory(), kv())
            .expect("decides");
        // A static of the guest counts decisions: it is 1 every time.
        match decision.action {
            Action::Reject(Reject { status, .. }) => assert_eq!(status, 401),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn faults_outside_the_window_do_not_add_up() {
    let engine = Arc::new(engine_with(Limits {
        fault_limit: 2,
        fault_window: Duration::from_secs(60),
        deadline: Duration::from_secs(2),
        ..Limits::default()
    }));
    let policies = Policies::new(engine.clone());
    policies.activate("ACME", 1, engine.compile(HOSTILE).expect("valid"));
    let start = Instant::now();
    let trap = hostile_call("trap");
    for minute in 0..4 {
        let decided = policies.decide(
            start + Duration::from_secs(61 * minute),
            "ACME",
            &trap,
            directory(),
            kv(),
        );
        assert!(decided.deactivated.is_none());
    }
    assert!(policies.active("ACME").is_some());
}

#[test]
fn tenants_have_separate_key_value_stores() {
    let engine = engine();
    let hostile = engine.compile(HOSTILE).expect("valid");
    let kv = kv();
    for tenant in ["ACME", "ACME", "GLOBEX"] {
        engine
            .run(
                &hostile,
                tenant,
                &hostile_call("count"),
                directory(),
                kv.clone(),
            )
            .expect("count answers");
    }
    assert_eq!(
        kv.entries("ACME").get("calls").map(String::as_str),
        Some("2")
    );
    assert_eq!(
        kv.entries("GLOBEX").get("calls").map(String::as_str),
        Some("1")
    );
}
