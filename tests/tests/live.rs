//! Administration of a running server: configuration and routing policies
//! change without a restart (the commands reach the server through its
//! control socket), calls in progress and call records are listed, and the
//! event bus reports every leg.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, caller, final_status, received_requests, wait_for_bindings,
};
use edgepbx_e2e::policies::policy_module;
use edgepbx_e2e::wait_for;
use serde_json::Value;

/// Alice calls `number` and talks for `talk_ms`; the call must connect.
fn call(
    deployment: &Deployment,
    pbx: &RunningPbx,
    alice: &Extension,
    number: &str,
    talk_ms: u64,
    label: &str,
) {
    caller("call", pbx, alice, number)
        .arg("-d")
        .arg(&talk_ms.to_string())
        .run(deployment.work().path(), label)
        .assert_all_succeeded(1);
}

#[test]
fn configuration_and_policies_change_while_the_server_runs() {
    let deployment = Deployment::with_config("live", CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102, 103, 104]);
    let sales = policy_module("edgepbx_policy_example_sales_round_robin");
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let hold = Duration::from_secs(40);
    let bob = Device::start(dir, &pbx, &exts[1], "bob", Behaviour::Answer, hold);
    let carol = Device::start(dir, &pbx, &exts[2], "carol", Behaviour::Answer, hold);
    wait_for_bindings(&pbx, &exts[1], 1);
    wait_for_bindings(&pbx, &exts[2], 1);

    // Follow the event bus.
    let mut follower = deployment.admin_child(&["events", "--tenant", "ACME"]);
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let stdout = follower.stdout.take().expect("piped stdout");
    let sink = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str(&line) {
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(event);
            }
        }
    });

    // With the built-in policy, 600 is nobody.
    let before = caller("call_refused", &pbx, &exts[0], "600").run(dir, "600-builtin");
    before.assert_all_succeeded(1);
    assert_eq!(final_status(&before), Some(404), "{}", before.report());

    // The sales round-robin policy, uploaded and activated on the running
    // server, takes the next call to 600: the one available salesperson
    // (101) rings with "Sales: " before the caller's name.
    let out = deployment.admin(&[
        "policy",
        "upload",
        "ACME",
        &sales.to_string_lossy(),
        "--activate",
    ]);
    assert!(out.contains("version 1 is now active"), "{out}");
    call(&deployment, &pbx, &exts[0], "600", 1000, "600-sales");

    // A forwarding rule set now applies to the next call, which is listed
    // while it lasts.
    deployment.admin(&[
        "ext",
        "set",
        "ACME",
        "101",
        "--forward-unconditional",
        "102",
    ]);
    let during = std::thread::scope(|scope| {
        let talk = scope.spawn(|| call(&deployment, &pbx, &exts[0], "101", 4000, "101-forwarded"));
        let listed = wait_for(Duration::from_secs(10), || {
            let out = deployment.admin(&["calls", "ACME", "--json"]);
            let calls: Value = serde_json::from_str(&out).ok()?;
            let first = calls.as_array()?.first()?.clone();
            (first["state"] == "answered").then_some(first)
        });
        talk.join().expect("the caller thread");
        listed
    });
    let during = during.expect("the call was never listed as answered");
    assert_eq!(during["dialled"], "102", "{during}");
    assert_eq!(during["answered_by"], "102", "{during}");

    // Back to the built-in policy: 600 is nobody again.
    deployment.admin(&["policy", "deactivate", "ACME"]);
    let after = caller("call_refused", &pbx, &exts[0], "600").run(dir, "600-again");
    assert_eq!(final_status(&after), Some(404), "{}", after.report());

    let (bob, carol) = (bob.finish(), carol.finish());
    let invites = received_requests(&bob, "INVITE");
    assert_eq!(invites.len(), 1, "{}", bob.report());
    let from = invites[0].header("From").unwrap_or_default();
    assert!(from.contains("\"Sales: Test 100\""), "{from}");
    assert_eq!(
        received_requests(&carol, "INVITE").len(),
        1,
        "{}",
        carol.report()
    );

    // The records, newest first, name the policy that routed each call.
    let records: Value =
        serde_json::from_str(&deployment.admin(&["calls", "ACME", "--recent", "10", "--json"]))
            .expect("JSON records");
    let summary: Vec<(String, String, String)> = records
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["dialled"].as_str().unwrap_or_default().to_owned(),
                r["outcome"].as_str().unwrap_or_default().to_owned(),
                r["policy"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("600", "rejected", "builtin"),
        // The sales policy was still active: it passed this call to the
        // built-in rules it embeds.
        ("102", "answered", "v1"),
        ("600", "answered", "v1"),
        ("600", "rejected", "builtin"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(summary, expected);

    // The event bus told the story of the sales call: the caller calling,
    // 101 ringing, both answered, both ended.
    let _ = follower.kill();
    let _ = follower.wait();
    let events = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let legs: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["type"] == "leg" && e["extension"] == "101")
        .map(|e| {
            (
                e["role"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
                e["cause"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            ("callee".into(), "ringing".into(), String::new()),
            ("callee".into(), "answered".into(), String::new()),
            ("callee".into(), "ended".into(), "caller hung up".into()),
        ],
        "{events:#?}"
    );
}

#[test]
fn a_policys_round_robin_counter_survives_a_restart() {
    let deployment = Deployment::with_config("kv-restart", CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102]);
    let sales = policy_module("edgepbx_policy_example_sales_round_robin");
    // Uploaded while the server is stopped: straight into the store.
    deployment.admin(&[
        "policy",
        "upload",
        "ACME",
        &sales.to_string_lossy(),
        "--activate",
    ]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let hold = Duration::from_secs(30);
    let bob = Device::start(dir, &pbx, &exts[1], "bob", Behaviour::Answer, hold);
    let carol = Device::start(dir, &pbx, &exts[2], "carol", Behaviour::Answer, hold);
    wait_for_bindings(&pbx, &exts[1], 1);
    wait_for_bindings(&pbx, &exts[2], 1);

    // The first call's turn goes to 101.
    call(&deployment, &pbx, &exts[0], "600", 500, "before-restart");
    assert!(pbx.stop().success(), "graceful stop");
    // After the restart (bindings and the counter restored), the next turn
    // is 102's. The policy's compiled artifact was cached at the first
    // start: this one loads it instead of compiling again.
    let pbx = deployment.start();
    let log = pbx.log();
    assert!(
        log.lines()
            .any(|l| l.contains("routing policy activated") && l.contains("from_cache=true")),
        "{log}"
    );
    call(&deployment, &pbx, &exts[0], "600", 500, "after-restart");
    for (name, device) in [("bob", bob), ("carol", carol)] {
        let outcome = device.finish();
        assert_eq!(
            received_requests(&outcome, "INVITE").len(),
            1,
            "{name}: {}",
            outcome.report()
        );
    }
}

#[test]
fn a_faulting_policy_is_taken_out_of_service_and_stays_out() {
    // Deactivations are written behind; a long delay (the batch the first
    // call's record starts is written ten seconds later) keeps the store
    // saying "active" while the tenant is reloaded below.
    let config = format!("{CALL_CONFIG}[store]\nwrite_delay_ms = 10000\n");
    let deployment = Deployment::with_config("policy-faults", &config);
    let exts = deployment.acme_with([100, 101]);
    let hostile = policy_module("edgepbx_policy_hostile");
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let out = deployment.admin(&[
        "policy",
        "upload",
        "ACME",
        &hostile.to_string_lossy(),
        "--activate",
    ]);
    assert!(out.contains("version 1 is now active"), "{out}");

    // The hostile module traps on calls to 8727 ("trap" on a keypad); the
    // built-in policy decides each of them instead (nobody has that
    // number). The fifth fault takes the module out of service.
    for attempt in 1..=5 {
        let refused =
            caller("call_refused", &pbx, &exts[0], "8727").run(dir, &format!("trap-{attempt}"));
        refused.assert_all_succeeded(1);
        assert_eq!(final_status(&refused), Some(404), "{}", refused.report());
    }
    // A change to the tenant at once: its reload reads a store that may
    // still name version 1 as active. The module must stay out.
    deployment.admin(&[
        "ext",
        "set",
        "ACME",
        "101",
        "--forward-unconditional",
        "100",
    ]);
    let after = caller("call_refused", &pbx, &exts[0], "8727").run(dir, "trap-after");
    assert_eq!(final_status(&after), Some(404), "{}", after.report());

    // The administrator reads why, at once: the reload stored it.
    let versions: Value =
        serde_json::from_str(&deployment.admin(&["policy", "list", "ACME", "--json"]))
            .expect("JSON versions");
    let v1 = &versions[0];
    assert_eq!(v1["version"], 1, "{versions}");
    assert_eq!(v1["active"], false, "{versions}");
    let reason = v1["deactivated_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("5 faults") && reason.contains("trapped"),
        "{reason}"
    );

    // The records (written behind) say who decided each call: the five
    // faulted ones, then the built-in policy alone.
    let mut expected = vec!["builtin".to_owned()];
    expected.extend(std::iter::repeat_n("builtin (v1 faulted)".to_owned(), 5));
    let deciders = || {
        let records: Value =
            serde_json::from_str(&deployment.admin(&["calls", "ACME", "--recent", "10", "--json"]))
                .expect("JSON records");
        records
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| r["policy"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let recorded = wait_for(Duration::from_secs(30), || {
        (deciders().len() == expected.len()).then_some(())
    });
    assert!(recorded.is_some(), "{:?}", deciders());
    assert_eq!(deciders(), expected);

    // Each fault was logged with the tenant and the module's hash.
    let hash = v1["hash"].as_str().unwrap_or_default();
    let attributed = format!("tenant=\"ACME\" module=\"{}\"", &hash[..12.min(hash.len())]);
    let log = pbx.log();
    let logged = |what: &str| {
        log.lines()
            .filter(|l| l.contains(what) && l.contains(&attributed))
            .count()
    };
    assert_eq!(logged("policy fault;"), 5, "{log}");
    assert_eq!(logged("policy deactivated;"), 1, "{log}");

    // The store keeps it out after a restart too: the new server does not
    // activate it, and its call is the built-in policy's alone.
    assert!(pbx.stop().success(), "graceful stop");
    let pbx = deployment.start();
    let restarted = caller("call_refused", &pbx, &exts[0], "8727").run(dir, "trap-restarted");
    assert_eq!(
        final_status(&restarted),
        Some(404),
        "{}",
        restarted.report()
    );
    let log = pbx.log();
    assert!(!log.contains("routing policy activated"), "{log}");
    assert!(!log.contains("policy fault;"), "{log}");
    // Stopping writes what was written behind; the store is read directly.
    assert!(pbx.stop().success(), "graceful stop");
    let records: Value =
        serde_json::from_str(&deployment.admin(&["calls", "ACME", "--recent", "10", "--json"]))
            .expect("JSON records");
    let deciders: Vec<&str> = records
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["policy"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(deciders.len(), 7, "{records}");
    assert_eq!(deciders[0], "builtin", "{records}");
}
