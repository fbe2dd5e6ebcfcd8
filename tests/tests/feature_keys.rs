//! Feature key synchronisation (BroadSoft `as-feature-event`, ECMA-323
//! CSTA) with SIPp desk phones: a phone subscribes to its own extension
//! and is shown DND and its three forwarding rules in one multipart
//! NOTIFY; pressing its DND key (a SUBSCRIBE refresh with
//! `SetDoNotDisturb`) is confirmed by NOTIFY, written to the settings the
//! API shows and obeyed by the next call; turning DND off in the CLI
//! reaches the phone by NOTIFY. `SetForwarding` sets a forwarding rule
//! the same way, and clearing it in the API reaches the phone.

use std::time::{Duration, Instant};

use edgepbx_e2e::http::Client;
use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, caller, final_status, received_requests, wait_for_bindings,
};
use edgepbx_e2e::sip::SipMessage;
use edgepbx_e2e::sipp::{Sipp, SippOutcome};
use edgepbx_e2e::wait_for;
use serde_json::{Value, json};

/// How long the SIPp desk phones stay on line.
const HOLD: Duration = Duration::from_secs(12);

/// The namespace of CSTA feature events.
const CSTA: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed3";

/// ACME with 100 (the caller), 101 (the phone with feature keys, plus a
/// desk phone of 101 that answers) and 102, an API key, the server
/// running.
fn setup(name: &str) -> (Deployment, Vec<Extension>, RunningPbx, Client) {
    let deployment = Deployment::with_config(name, CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102]);
    let key = deployment.api_key("ACME", false);
    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);
    (deployment, exts, pbx, api)
}

/// A SIPp phone of `ext` syncing its feature keys with `scenario`.
fn feature_phone(scenario: &str, pbx: &RunningPbx, ext: &Extension) -> Sipp {
    Sipp::new(scenario, pbx.udp())
        .key("domain", &ext.domain)
        .key("user", &ext.number)
        .key("password", &ext.password)
        // The digest covers the Request-URI: its own extension.
        .auth_uri(&format!("{}@{}", ext.number, ext.domain))
        .timeout(Duration::from_secs(45))
}

/// Extension 101 as the API shows it.
fn extension_101(api: &Client) -> Value {
    let r = api.get("/api/v1/extensions/101");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Waits until the API shows `check` true of extension 101.
fn wait_for_api(api: &Client, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_for(Duration::from_secs(10), || {
        let e = extension_101(api);
        check(&e).then_some(e)
    })
    .unwrap_or_else(|| panic!("the API never showed {what}: {}", extension_101(api)))
}

fn body(message: &SipMessage) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}

/// The NOTIFYs a SIPp phone received, in order, without retransmissions.
fn notifies(outcome: &SippOutcome) -> Vec<&SipMessage> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for notify in received_requests(outcome, "NOTIFY") {
        let cseq = notify.cseq();
        if !seen.contains(&cseq) {
            seen.push(cseq);
            out.push(notify);
        }
    }
    out
}

/// The parts of a feature NOTIFY's multipart body, each checked to be one
/// `application/x-as-feature-event+xml` document; returns the documents.
fn feature_parts(notify: &SipMessage) -> Vec<String> {
    assert_eq!(
        notify.header("Event"),
        Some("as-feature-event"),
        "{}",
        notify.text()
    );
    assert_eq!(
        notify.header("Content-Type"),
        Some("multipart/mixed;boundary=edgepbx-features"),
        "{}",
        notify.text()
    );
    let text = body(notify);
    let (parts, rest) = text
        .split_once("--edgepbx-features--")
        .unwrap_or_else(|| panic!("no closing boundary:\n{text}"));
    assert!(
        rest.trim().is_empty(),
        "text after the closing boundary:\n{text}"
    );
    parts
        .split("--edgepbx-features\r\n")
        .skip(1)
        .map(|part| {
            let (headers, document) = part
                .split_once("\r\n\r\n")
                .unwrap_or_else(|| panic!("a part without headers:\n{text}"));
            assert_eq!(
                headers, "Content-Type: application/x-as-feature-event+xml",
                "{text}"
            );
            document.trim().to_owned()
        })
        .collect()
}

/// A forwarding rule as a `ForwardingEvent` shows it: forwardingType,
/// forwardStatus, forwardTo.
type Forward = (String, bool, String);

/// What a feature NOTIFY shows.
#[derive(Debug, PartialEq)]
struct Features {
    dnd: bool,
    /// Each forwarding rule, in the order sent.
    forwards: Vec<Forward>,
}

/// What a feature NOTIFY shows.
fn features_shown(notify: &SipMessage) -> Features {
    let parts = feature_parts(notify);
    assert_eq!(parts.len(), 4, "DND and three forwarding rules: {parts:?}");
    let element = |doc: &str, name: &str| -> String {
        let open = format!("<{name}>");
        doc.split_once(&open)
            .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
            .map(|(value, _)| value.to_owned())
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
    };
    for doc in &parts {
        assert!(doc.starts_with("<?xml"), "{doc}");
        assert!(doc.contains(&format!(" xmlns=\"{CSTA}\"")), "{doc}");
        assert_eq!(element(doc, "device"), "101", "{doc}");
    }
    assert!(parts[0].contains("<DoNotDisturbEvent "), "{}", parts[0]);
    let dnd = match element(&parts[0], "doNotDisturbOn").as_str() {
        "true" => true,
        "false" => false,
        other => panic!("doNotDisturbOn {other}"),
    };
    let forwards = parts[1..]
        .iter()
        .map(|doc| {
            assert!(doc.contains("<ForwardingEvent "), "{doc}");
            (
                element(doc, "forwardingType"),
                element(doc, "forwardStatus") == "true",
                element(doc, "forwardTo"),
            )
        })
        .collect();
    Features { dnd, forwards }
}

/// The three rules, all off.
fn no_forwarding() -> Vec<Forward> {
    ["forwardImmediate", "forwardBusy", "forwardNoAns"]
        .into_iter()
        .map(|t| (t.to_owned(), false, String::new()))
        .collect()
}

#[test]
fn the_dnd_key_follows_the_settings_both_ways() {
    let started = Instant::now();
    let (deployment, exts, pbx, api) = setup("features-dnd");
    let dir = deployment.work().path();
    let desk = Device::start(dir, &pbx, &exts[1], "desk", Behaviour::Answer, HOLD);
    wait_for_bindings(&pbx, &exts[1], 1);
    assert_eq!(extension_101(&api)["dnd"], false);

    let phone = std::thread::scope(|scope| {
        let phone = scope.spawn(|| feature_phone("features_dnd", &pbx, &exts[1]).run(dir, "phone"));
        // The key press is written to the settings.
        wait_for_api(&api, "DND on", |e| e["dnd"] == true);
        // And obeyed: without a busy rule, DND refuses the call as busy.
        let refused = caller("call_refused", &pbx, &exts[0], "101").run(dir, "to-dnd");
        refused.assert_all_succeeded(1);
        assert_eq!(final_status(&refused), Some(486), "{}", refused.report());
        // Turned off in the CLI (through the running server).
        deployment.admin(&["ext", "set", "ACME", "101", "--dnd", "off"]);
        phone.join().expect("the phone's thread")
    });
    phone.assert_all_succeeded(1);

    // Subscribed: off; pressed: on; turned off in the CLI: off; the final
    // NOTIFY of the unsubscription: off.
    let received = notifies(&phone);
    let shown: Vec<Features> = received.iter().map(|n| features_shown(n)).collect();
    let dnd: Vec<bool> = shown.iter().map(|f| f.dnd).collect();
    assert_eq!(dnd, [false, true, false, false], "{}", phone.report());
    for features in &shown {
        assert_eq!(features.forwards, no_forwarding());
    }
    let states: Vec<&str> = received
        .iter()
        .map(|n| n.header("Subscription-State").unwrap_or_default())
        .collect();
    assert!(
        states[..3].iter().all(|s| s.starts_with("active;expires=")),
        "{states:?}"
    );
    assert!(states[3].starts_with("terminated"), "{states:?}");
    let ok = phone
        .responses()
        .find(|m| m.status() == Some(200))
        .unwrap_or_else(|| panic!("no 200 for the SUBSCRIBE\n{}", phone.report()));
    assert_eq!(ok.header("Expires"), Some("600"), "{}", ok.text());

    // DND off in the settings too, and calls reach the desk phone again.
    assert_eq!(extension_101(&api)["dnd"], false);
    caller("call", &pbx, &exts[0], "101")
        .arg("-d")
        .arg("500")
        .run(dir, "to-desk")
        .assert_all_succeeded(1);
    let desk = desk.finish();
    assert_eq!(
        received_requests(&desk, "INVITE").len(),
        1,
        "only the call after DND rang the desk phone\n{}",
        desk.report()
    );
    assert!(
        pbx.log().contains("setting changed by a feature key"),
        "the server wrote the change"
    );
    eprintln!("DND key took {:?}", started.elapsed());
}

#[test]
fn the_forwarding_key_sets_a_rule_and_a_rule_cleared_in_the_api_reaches_the_phone() {
    let started = Instant::now();
    let (deployment, exts, pbx, api) = setup("features-forward");
    let dir = deployment.work().path();
    let desk = Device::start(dir, &pbx, &exts[1], "desk", Behaviour::Answer, HOLD);
    let carol = Device::start(dir, &pbx, &exts[2], "carol", Behaviour::Answer, HOLD);
    wait_for_bindings(&pbx, &exts[1], 1);
    wait_for_bindings(&pbx, &exts[2], 1);

    let phone = std::thread::scope(|scope| {
        let phone = scope.spawn(|| {
            feature_phone("features_forward", &pbx, &exts[1])
                .key("forward_to", "102")
                .run(dir, "phone")
        });
        // The key press is written to the settings, that rule only.
        let e = wait_for_api(&api, "forwarding to 102", |e| {
            e["forwarding"]["unconditional"] == "102"
        });
        assert_eq!(
            e["forwarding"],
            json!({"unconditional": "102", "busy": null, "no_answer": null, "offline": null}),
            "{e}"
        );
        assert_eq!(e["dnd"], false, "{e}");
        // And obeyed: the call goes to 102, never to 101's desk phone.
        caller("call", &pbx, &exts[0], "101")
            .arg("-d")
            .arg("500")
            .run(dir, "forwarded")
            .assert_all_succeeded(1);
        // Cleared in the API.
        let r = api.json(
            "PATCH",
            "/api/v1/extensions/101",
            &json!({"forwarding": {"unconditional": null}}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        phone.join().expect("the phone's thread")
    });
    phone.assert_all_succeeded(1);

    // Subscribed: off; pressed: forwarding every call to 102; cleared in
    // the API: off; the final NOTIFY: off.
    let received = notifies(&phone);
    let shown: Vec<Features> = received.iter().map(|n| features_shown(n)).collect();
    let off = || Features {
        dnd: false,
        forwards: no_forwarding(),
    };
    let mut always = off();
    always.forwards[0] = ("forwardImmediate".to_owned(), true, "102".to_owned());
    let expected = vec![off(), always, off(), off()];
    assert_eq!(shown, expected, "{}", phone.report());
    assert!(
        received[3]
            .header("Subscription-State")
            .is_some_and(|s| s.starts_with("terminated")),
        "{}",
        received[3].text()
    );

    assert_eq!(
        extension_101(&api)["forwarding"]["unconditional"],
        Value::Null
    );
    let (desk, carol) = (desk.finish(), carol.finish());
    assert_eq!(
        received_requests(&desk, "INVITE").len(),
        0,
        "{}",
        desk.report()
    );
    for method in ["INVITE", "ACK", "BYE"] {
        assert_eq!(
            received_requests(&carol, method).len(),
            1,
            "102 answered the forwarded call: {method}\n{}",
            carol.report()
        );
    }
    eprintln!("forwarding key took {:?}", started.elapsed());
}
