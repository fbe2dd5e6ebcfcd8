//! Early media reaches the caller anchored. Inside an answered call: a
//! re-INVITE puts the other party on hold with descriptions still anchored
//! on the relay, UPDATE changes the codec the same way, INFO (DTMF) is
//! passed on, the callee may hang up, a call that outlives the maximum
//! duration is ended on both sides, so is a call up when the server
//! stops, and parties on the same network may send media to each other
//! directly.

use std::time::Duration;

use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, audio_port, caller, received_requests, wait_for_bindings,
};
use edgepbx_e2e::sip::SipMessage;

const HOLD: Duration = Duration::from_secs(10);

/// Alice calls Bob and never hangs up herself: the call must end with a
/// BYE to her.
fn alice_stays_until_bye(pbx: &RunningPbx, alice: &Extension, dir: &std::path::Path) {
    caller("call_until_bye", pbx, alice, "101")
        .timeout(Duration::from_secs(20))
        .run(dir, "alice")
        .assert_all_succeeded(1);
}

/// ACME with Alice (100) and Bob (101, settings from `ext set` options),
/// the server running with `config`, and Bob's device behaving as told.
fn alice_calls_bob(
    name: &str,
    config: &str,
    settings: &[&str],
    behaviour: Behaviour,
) -> (Deployment, Vec<Extension>, RunningPbx, Device) {
    let deployment = Deployment::with_config(name, config);
    let exts = deployment.acme_with([100, 101]);
    if !settings.is_empty() {
        let mut args = vec!["ext", "set", "ACME", "101"];
        args.extend_from_slice(settings);
        deployment.admin(&args);
    }
    let pbx = deployment.start();
    let bob = Device::start(
        deployment.work().path(),
        &pbx,
        &exts[1],
        "bob",
        behaviour,
        HOLD,
    );
    wait_for_bindings(&pbx, &exts[1], 1);
    (deployment, exts, pbx, bob)
}

fn body(message: &SipMessage) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}

#[test]
fn a_re_invite_puts_the_other_party_on_hold_through_the_relay() {
    let (deployment, exts, pbx, bob) = alice_calls_bob("hold", CALL_CONFIG, &[], Behaviour::Hold);
    let dir = deployment.work().path();

    let call = caller("call_hold", &pbx, &exts[0], "101").run(dir, "alice");
    call.assert_all_succeeded(1);
    let bob = bob.finish();
    let invites = received_requests(&bob, "INVITE");
    assert_eq!(invites.len(), 2, "{}", bob.report());
    // Bob is told to hold, with edgepbx's address, not Alice's port.
    let hold = body(invites[1]);
    assert!(hold.contains("a=sendonly"), "{hold}");
    let relay_port = audio_port(invites[1]);
    assert!((20_000..30_000).contains(&relay_port), "{hold}");
    assert_eq!(relay_port, audio_port(invites[0]), "the relay port stays");
    // Alice gets Bob's answer, anchored too.
    let answer = call
        .responses()
        .filter(|m| {
            m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.contains("3 INVITE"))
        })
        .last()
        .unwrap_or_else(|| panic!("no 200 for the re-INVITE\n{}", call.report()));
    assert!(body(answer).contains("a=recvonly"), "{}", answer.text());
    assert!((20_000..30_000).contains(&audio_port(answer)));
    assert_eq!(received_requests(&bob, "BYE").len(), 1);
}

#[test]
fn early_media_reaches_the_caller_through_the_relay() {
    let (deployment, exts, pbx, bob) =
        alice_calls_bob("early-media", CALL_CONFIG, &[], Behaviour::EarlyMedia);
    let dir = deployment.work().path();

    let call = caller("call", &pbx, &exts[0], "101")
        .arg("-d")
        .arg("500")
        .run(dir, "alice");
    call.assert_all_succeeded(1);
    bob.finish();
    let early = call
        .last_response(183)
        .unwrap_or_else(|| panic!("no 183 reached the caller\n{}", call.report()));
    assert!(
        (20_000..30_000).contains(&audio_port(early)),
        "{}",
        early.text()
    );
}

#[test]
fn info_inside_the_call_reaches_the_other_party() {
    // Bob's phone shows which of his lines rings.
    let (deployment, exts, pbx, bob) = alice_calls_bob(
        "info",
        CALL_CONFIG,
        &["--inbound-prefix", "Ops: "],
        Behaviour::Info,
    );
    let dir = deployment.work().path();

    caller("call_info", &pbx, &exts[0], "101")
        .run(dir, "alice")
        .assert_all_succeeded(1);
    let bob = bob.finish();
    let infos = received_requests(&bob, "INFO");
    assert_eq!(infos.len(), 1, "{}", bob.report());
    assert_eq!(
        infos[0].header("Content-Type"),
        Some("application/dtmf-relay")
    );
    assert!(body(infos[0]).contains("Signal=5"), "{}", infos[0].text());
    let from = received_requests(&bob, "INVITE")[0]
        .header("From")
        .unwrap_or_default()
        .to_owned();
    assert!(from.contains("\"Ops: Test 100\""), "{from}");
}

#[test]
fn an_update_changes_the_codec_through_the_relay() {
    let (deployment, exts, pbx, bob) =
        alice_calls_bob("update", CALL_CONFIG, &[], Behaviour::Update);
    let dir = deployment.work().path();

    let call = caller("call_update", &pbx, &exts[0], "101").run(dir, "alice");
    call.assert_all_succeeded(1);
    let bob = bob.finish();
    let updates = received_requests(&bob, "UPDATE");
    assert_eq!(updates.len(), 1, "{}", bob.report());
    let offer = body(updates[0]);
    assert!(
        offer.contains("m=audio") && offer.contains("RTP/AVP 8"),
        "{offer}"
    );
    assert!(
        (20_000..30_000).contains(&audio_port(updates[0])),
        "{offer}"
    );
    let answer = call
        .responses()
        .find(|m| m.header("CSeq").is_some_and(|c| c.contains("UPDATE")))
        .unwrap_or_else(|| panic!("no answer to the UPDATE\n{}", call.report()));
    assert_eq!(answer.status(), Some(200));
    assert!(body(answer).contains("PCMA/8000"), "{}", answer.text());
    assert!((20_000..30_000).contains(&audio_port(answer)));
}

#[test]
fn the_callee_hangs_up_and_the_caller_gets_the_bye() {
    let (deployment, exts, pbx, bob) =
        alice_calls_bob("callee-bye", CALL_CONFIG, &[], Behaviour::Hangup);
    let dir = deployment.work().path();

    alice_stays_until_bye(&pbx, &exts[0], dir);
    let bob = bob.finish();
    assert!(bob.last_response(200).is_some(), "{}", bob.report());
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["cause"], "callee hung up", "{record}");
}

#[test]
fn a_call_past_its_maximum_duration_is_ended_on_both_sides() {
    let (deployment, exts, pbx, bob) = alice_calls_bob(
        "max-duration",
        &format!("{CALL_CONFIG}[calls]\nmax_duration_secs = 2\n"),
        &[],
        Behaviour::Answer,
    );
    let dir = deployment.work().path();

    // Alice never hangs up: edgepbx sends her (and Bob) a BYE.
    alice_stays_until_bye(&pbx, &exts[0], dir);
    let bob = bob.finish();
    assert_eq!(received_requests(&bob, "BYE").len(), 1, "{}", bob.report());
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["cause"], "maximum duration", "{record}");
}

#[test]
fn a_call_up_when_the_server_stops_gets_its_byes_and_its_record() {
    let (deployment, exts, pbx, bob) =
        alice_calls_bob("shutdown-call", CALL_CONFIG, &[], Behaviour::Answer);
    let dir = deployment.work().path().to_path_buf();
    let alice = caller("call_until_bye", &pbx, &exts[0], "101").timeout(Duration::from_secs(20));
    let alice = std::thread::spawn(move || alice.run(&dir, "alice"));
    // The call is answered well within this.
    std::thread::sleep(Duration::from_secs(3));
    let status = pbx.stop();
    assert!(status.success(), "{status}");
    // Both parties were hung up before the server went.
    alice.join().expect("alice's SIPp").assert_all_succeeded(1);
    let bob = bob.finish();
    assert_eq!(received_requests(&bob, "BYE").len(), 1, "{}", bob.report());
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["cause"], "server shutting down", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
}

#[test]
fn parties_on_the_same_network_may_exchange_media_directly() {
    let (deployment, exts, pbx, bob) = alice_calls_bob(
        "direct-media",
        &format!("{CALL_CONFIG}[media]\ndirect_same_network = true\n"),
        &[],
        Behaviour::Answer,
    );
    let dir = deployment.work().path();

    let call = caller("call", &pbx, &exts[0], "101")
        .arg("-d")
        .arg("500")
        .run(dir, "alice");
    call.assert_all_succeeded(1);
    let bob = bob.finish();
    // Both signal from 127.0.0.1: each gets the other's own description.
    let offer = received_requests(&bob, "INVITE")[0];
    let alice_invite = call
        .messages
        .iter()
        .find(|m| !m.received && m.message.method() == Some("INVITE"))
        .map(|m| &m.message)
        .expect("Alice's INVITE");
    assert_eq!(audio_port(offer), audio_port(alice_invite));
    let answered = call
        .responses()
        .find(|m| m.status() == Some(200) && !m.body.is_empty())
        .expect("the answer");
    let bob_answer = bob
        .messages
        .iter()
        .find(|m| !m.received && m.message.status() == Some(200) && !m.message.body.is_empty())
        .map(|m| &m.message)
        .expect("Bob's answer");
    assert_eq!(audio_port(answered), audio_port(bob_answer));
}
