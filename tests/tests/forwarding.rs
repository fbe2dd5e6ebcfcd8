//! Routing that administrators configure, carried out by the built-in
//! policy and observed by SIPp phones: forwarding when busy, unanswered or
//! unconditionally, do not disturb, ring groups with each strategy, and
//! virtual extensions.

use std::time::Duration;

use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, caller, final_status, received_requests, wait_for_bindings,
};
use edgepbx_e2e::sipp::SippOutcome;

/// How long devices stay on line in single-call tests.
const HOLD: Duration = Duration::from_secs(10);

/// ACME with 100 (the caller), 101 and 102, settings of 101 from `set`
/// (arguments of `edgepbx ext set ACME 101`).
fn deployment(name: &str, set: &[&str]) -> (Deployment, Vec<Extension>) {
    let deployment = Deployment::with_config(name, CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102]);
    if !set.is_empty() {
        let mut args = vec!["ext", "set", "ACME", "101"];
        args.extend_from_slice(set);
        deployment.admin(&args);
    }
    (deployment, exts)
}

/// Alice calls `number`, talks for a second and hangs up; the call must
/// be answered.
fn answered_call(deployment: &Deployment, pbx: &RunningPbx, alice: &Extension, number: &str) {
    let call = caller("call", pbx, alice, number)
        .arg("-d")
        .arg("1000")
        .run(deployment.work().path(), &format!("call-{number}"));
    call.assert_all_succeeded(1);
}

/// One device each for 101 (bob) and 102 (carol), registered.
fn bob_and_carol(
    deployment: &Deployment,
    pbx: &RunningPbx,
    exts: &[Extension],
    bob: Behaviour,
    carol: Behaviour,
) -> (Device, Device) {
    let dir = deployment.work().path();
    let devices = (
        Device::start(dir, pbx, &exts[1], "bob", bob, HOLD),
        Device::start(dir, pbx, &exts[2], "carol", carol, HOLD),
    );
    wait_for_bindings(pbx, &exts[1], 1);
    wait_for_bindings(pbx, &exts[2], 1);
    devices
}

fn invites(outcome: &SippOutcome) -> usize {
    received_requests(outcome, "INVITE").len()
}

/// The device answered exactly `calls` calls (INVITE, ACK and BYE each).
fn assert_answered(outcome: &SippOutcome, name: &str, calls: usize) {
    for method in ["INVITE", "ACK", "BYE"] {
        assert_eq!(
            received_requests(outcome, method).len(),
            calls,
            "{name}: {method}\n{}",
            outcome.report()
        );
    }
}

#[test]
fn a_busy_extension_forwards_to_its_busy_destination() {
    let (deployment, exts) = deployment("fwd-busy", &["--forward-busy", "102"]);
    let pbx = deployment.start();
    let (bob, carol) = bob_and_carol(&deployment, &pbx, &exts, Behaviour::Busy, Behaviour::Answer);

    answered_call(&deployment, &pbx, &exts[0], "101");
    let bob = bob.finish();
    assert_eq!(invites(&bob), 1, "{}", bob.report());
    assert_answered(&carol.finish(), "carol", 1);
}

#[test]
fn an_unanswered_extension_forwards_after_its_ring_time() {
    let (deployment, exts) = deployment(
        "fwd-no-answer",
        &["--ring-timeout", "2", "--forward-no-answer", "102"],
    );
    let pbx = deployment.start();
    let (bob, carol) = bob_and_carol(&deployment, &pbx, &exts, Behaviour::Ring, Behaviour::Answer);

    answered_call(&deployment, &pbx, &exts[0], "101");
    let bob = bob.finish();
    assert_eq!(invites(&bob), 1, "{}", bob.report());
    assert_eq!(
        received_requests(&bob, "CANCEL").len(),
        1,
        "{}",
        bob.report()
    );
    assert_answered(&carol.finish(), "carol", 1);
}

#[test]
fn unconditional_forwarding_and_dnd_never_ring_the_extension() {
    for (label, set) in [
        ("fwd-always", ["--forward-unconditional", "102"]),
        ("dnd", ["--dnd", "on"]),
    ] {
        let mut set = set.to_vec();
        if label == "dnd" {
            set.extend(["--forward-busy", "102"]);
        }
        let (deployment, exts) = deployment(label, &set);
        let pbx = deployment.start();
        let (bob, carol) = bob_and_carol(
            &deployment,
            &pbx,
            &exts,
            Behaviour::Answer,
            Behaviour::Answer,
        );

        answered_call(&deployment, &pbx, &exts[0], "101");
        let bob = bob.finish();
        assert_eq!(invites(&bob), 0, "{label}: {}", bob.report());
        assert_answered(&carol.finish(), "carol", 1);
    }
}

#[test]
fn dnd_without_a_rule_is_busy_and_offline_uses_the_offline_rule() {
    let (deployment, exts) = deployment("dnd-busy", &["--dnd", "on"]);
    deployment.admin(&["ext", "set", "ACME", "102", "--forward-offline", "101"]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let bob = Device::start(dir, &pbx, &exts[1], "bob", Behaviour::Answer, HOLD);
    wait_for_bindings(&pbx, &exts[1], 1);

    let refused = caller("call_refused", &pbx, &exts[0], "101").run(dir, "to-dnd");
    refused.assert_all_succeeded(1);
    assert_eq!(final_status(&refused), Some(486), "{}", refused.report());

    // 102 has no device: its offline rule sends the call to 101, which is
    // on DND, so that ends busy too.
    let offline = caller("call_refused", &pbx, &exts[0], "102").run(dir, "to-offline");
    offline.assert_all_succeeded(1);
    assert_eq!(final_status(&offline), Some(486), "{}", offline.report());
    assert_eq!(invites(&bob.finish()), 0);
}

/// ACME with the caller 100, members 101–103 each with one device behaving
/// as `behaviours` says, and group 600 created by `group add ACME 600
/// <args>`; makes `calls` answered calls to 600.
fn group_test(
    name: &str,
    group: &[&str],
    behaviours: [Behaviour; 3],
    calls: usize,
) -> Vec<SippOutcome> {
    let deployment = Deployment::with_config(name, CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102, 103]);
    let mut args = vec!["group", "add", "ACME", "600", "--name", "Sales"];
    args.extend_from_slice(group);
    deployment.admin(&args);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    // Long enough for every call (about three seconds each).
    let hold = Duration::from_secs(8 + 4 * calls as u64);
    let members: Vec<Device> = exts[1..]
        .iter()
        .zip(behaviours)
        .map(|(ext, behaviour)| Device::start(dir, &pbx, ext, &ext.number, behaviour, hold))
        .collect();
    for ext in &exts[1..] {
        wait_for_bindings(&pbx, ext, 1);
    }
    for _ in 0..calls {
        answered_call(&deployment, &pbx, &exts[0], "600");
    }
    members.into_iter().map(Device::finish).collect()
}

#[test]
fn ring_all_and_virtual_extensions_ring_every_member() {
    for (name, kind) in [
        ("group-ring-all", "--strategy=ring-all"),
        ("virtual", "--virtual"),
    ] {
        let members = group_test(
            name,
            &["--members", "101,102,103", kind],
            [Behaviour::Answer, Behaviour::Ring, Behaviour::Ring],
            1,
        );
        // All rang; 101 answered, the others were cancelled.
        assert_answered(&members[0], &format!("{name} 101"), 1);
        for (i, outcome) in members[1..].iter().enumerate() {
            assert_eq!(
                invites(outcome),
                1,
                "{name} member {i}: {}",
                outcome.report()
            );
            assert_eq!(
                received_requests(outcome, "CANCEL").len(),
                1,
                "{name} member {i}: {}",
                outcome.report()
            );
        }
    }
}

#[test]
fn hunt_rings_members_in_order_and_round_robin_and_least_recent_rotate() {
    // Hunt: every call goes to the first member, who answers.
    let hunt = group_test(
        "group-hunt",
        &["--members", "101,102,103", "--strategy", "hunt"],
        [Behaviour::Answer; 3],
        2,
    );
    assert_answered(&hunt[0], "101", 2);
    assert_eq!(invites(&hunt[1]) + invites(&hunt[2]), 0);

    // Round-robin and least-recent: each call starts one member further.
    for strategy in ["round-robin", "least-recent"] {
        let members = group_test(
            &format!("group-{strategy}"),
            &["--members", "101,102,103", "--strategy", strategy],
            [Behaviour::Answer; 3],
            3,
        );
        for (i, outcome) in members.iter().enumerate() {
            assert_answered(outcome, &format!("{strategy} member {i}"), 1);
        }
    }
}

#[test]
fn random_order_reaches_a_member_and_an_unanswered_hunt_goes_on() {
    // Random: each call reaches some member first, who answers.
    let members = group_test(
        "group-random",
        &["--members", "101,102,103", "--strategy", "random"],
        [Behaviour::Answer; 3],
        2,
    );
    let answered: usize = members
        .iter()
        .map(|m| received_requests(m, "BYE").len())
        .sum();
    assert_eq!(answered, 2);

    // A member who does not answer in the group's ring time is skipped.
    let members = group_test(
        "group-hunt-on",
        &[
            "--members",
            "101,102,103",
            "--strategy",
            "hunt",
            "--ring-timeout",
            "2",
        ],
        [Behaviour::Ring, Behaviour::Answer, Behaviour::Answer],
        1,
    );
    assert_eq!(
        received_requests(&members[0], "CANCEL").len(),
        1,
        "{}",
        members[0].report()
    );
    assert_answered(&members[1], "102", 1);
    assert_eq!(invites(&members[2]), 0);
}
