//! Call pickup, observed by SIPp phones: while 100's call rings 101's
//! desk phone, 102 answers it by dialling `**101` (directed pickup), by
//! `*8` (a call to its group, or ringing a fellow member), or with an
//! INVITE whose `Replaces` names the early dialog its BLF key showed
//! (RFC 4235, RFC 3891). The picker and the caller each get a 200 with
//! one codec anchored on the relay, the desk phone is cancelled as
//! answered elsewhere, and the call record names the picker. With nothing
//! ringing, a pickup is 480; a Replaces naming no ringing call is 481.

use std::path::Path;
use std::time::{Duration, Instant};

use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, audio_port, caller, final_status, received_requests,
    wait_for_bindings,
};
use edgepbx_e2e::sip::SipMessage;
use edgepbx_e2e::sipp::{Sipp, SippOutcome};

/// How long 101's desk phone stays on line.
const HOLD: Duration = Duration::from_secs(8);

/// What a device cancelled because another phone answered hears.
const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// ACME with 100 (the caller), 101 (one desk phone that rings until
/// cancelled, on line for `hold`) and 102 (the picker, no device), and
/// whatever `prepare` adds before the server starts.
fn desk_rings(
    name: &str,
    hold: Duration,
    prepare: impl FnOnce(&Deployment),
) -> (Deployment, Vec<Extension>, RunningPbx, Device) {
    let deployment = Deployment::with_config(name, CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102]);
    prepare(&deployment);
    let pbx = deployment.start();
    let desk = Device::start(
        deployment.work().path(),
        &pbx,
        &exts[1],
        "desk",
        Behaviour::Ring,
        hold,
    );
    wait_for_bindings(&pbx, &exts[1], 1);
    (deployment, exts, pbx, desk)
}

/// 100 calls `number` and stays until edgepbx hangs up on it; once that
/// call made the desk phone ring for the `ring`th time, `pick_up` runs.
/// Returns the caller's and the picker's outcomes (SIPp files under
/// `dir/<label>-caller` and `dir/<label>-picker`).
fn call_picked_up(
    pbx: &RunningPbx,
    alice: &Extension,
    number: &str,
    desk: &Device,
    ring: usize,
    (dir, label): (&Path, &str),
    pick_up: impl FnOnce(&str) -> SippOutcome,
) -> (SippOutcome, SippOutcome) {
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            caller("call_until_bye", pbx, alice, number)
                .timeout(Duration::from_secs(30))
                .run(dir, &format!("{label}-caller"))
        });
        assert!(
            desk.wait_for_trace("SIP/2.0 180 Ringing", ring, Duration::from_secs(15)),
            "the desk phone never rang ({label})"
        );
        let picker = pick_up(&format!("{label}-picker"));
        (call.join().expect("the caller's thread"), picker)
    })
}

fn body(message: &SipMessage) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}

/// The 200 a SIPp run got for its authenticated INVITE (CSeq 2).
fn invite_ok(outcome: &SippOutcome) -> &SipMessage {
    outcome
        .responses()
        .find(|m| {
            m.status() == Some(200)
                && m.header("CSeq")
                    .is_some_and(|c| c.trim().starts_with("2 INVITE"))
        })
        .unwrap_or_else(|| panic!("no 200 for the INVITE\n{}", outcome.report()))
}

/// An answer with one audio stream on edgepbx's relay and one codec
/// (PCMU, the first both offers have); returns its port.
fn assert_anchored_answer(answer: &SipMessage) -> u16 {
    assert_eq!(
        answer.header("Content-Type"),
        Some("application/sdp"),
        "{}",
        answer.text()
    );
    let sdp = body(answer);
    let port = audio_port(answer);
    assert!((20_000..30_000).contains(&port), "not on the relay: {sdp}");
    assert!(
        sdp.contains(&format!("m=audio {port} RTP/AVP 0\r\n")),
        "one codec, PCMU: {sdp}"
    );
    assert!(!sdp.contains("PCMA"), "one codec, PCMU: {sdp}");
    assert!(sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");
    port
}

/// What every pickup ends with: the picker got a 200 with an answer and
/// ACKed it, then hung up (its BYE answered); the caller got its 200 with
/// an answer on the relay and edgepbx's BYE; the record names the picker.
fn assert_connected(
    deployment: &Deployment,
    call: &SippOutcome,
    picker: &SippOutcome,
    picker_number: &str,
) {
    picker.assert_all_succeeded(1);
    call.assert_all_succeeded(1);

    let picker_port = assert_anchored_answer(invite_ok(picker));
    let acks = picker
        .messages
        .iter()
        .filter(|m| !m.received && m.message.method() == Some("ACK"))
        .filter(|m| {
            m.message
                .header("CSeq")
                .is_some_and(|c| c.trim() == "2 ACK")
        })
        .count();
    assert_eq!(acks, 1, "the picker ACKs the 200\n{}", picker.report());

    assert_eq!(final_status(call), Some(200), "{}", call.report());
    let caller_port = assert_anchored_answer(invite_ok(call));
    assert_ne!(
        caller_port, picker_port,
        "each party has its own relay port"
    );
    assert_eq!(
        received_requests(call, "BYE").len(),
        1,
        "the caller is hung up on when the picker hangs up\n{}",
        call.report()
    );

    let record = deployment.last_call_record("ACME");
    assert_eq!(record["caller"], "100", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["answered_by"], picker_number, "{record}");
    assert_eq!(record["cause"], "callee hung up", "{record}");
}

/// The desk phone rang `calls` times and each time was cancelled as
/// answered elsewhere.
fn assert_cancelled_elsewhere(desk: &SippOutcome, calls: usize) {
    assert_eq!(
        received_requests(desk, "INVITE").len(),
        calls,
        "{}",
        desk.report()
    );
    let cancels = received_requests(desk, "CANCEL");
    assert_eq!(cancels.len(), calls, "{}", desk.report());
    for cancel in cancels {
        assert_eq!(
            cancel.header("Reason"),
            Some(COMPLETED_ELSEWHERE),
            "{}",
            cancel.text()
        );
    }
}

/// `caller` as the picker dialling `number`, talking for a second.
fn picker_dialling(pbx: &RunningPbx, picker: &Extension, number: &str) -> Sipp {
    caller("call", pbx, picker, number)
        .arg("-d")
        .arg("1000")
        .timeout(Duration::from_secs(20))
}

#[test]
fn dialling_star_star_and_the_extension_picks_up_its_ringing_call() {
    let started = Instant::now();
    let (deployment, exts, pbx, desk) = desk_rings("pickup-directed", HOLD, |_| {});
    let dir = deployment.work().path();

    let (call, picker) = call_picked_up(
        &pbx,
        &exts[0],
        "101",
        &desk,
        1,
        (dir, "directed"),
        |label| picker_dialling(&pbx, &exts[2], "**101").run(dir, label),
    );
    assert_connected(&deployment, &call, &picker, "102");
    assert_cancelled_elsewhere(&desk.finish(), 1);
    eprintln!("directed pickup took {:?}", started.elapsed());
}

#[test]
fn a_blf_key_picks_up_the_early_dialog_it_shows_with_replaces() {
    let started = Instant::now();
    let (deployment, exts, pbx, desk) = desk_rings("pickup-replaces", HOLD, |_| {});
    let dir = deployment.work().path();
    let carol = &exts[2];

    let (call, picker) = call_picked_up(&pbx, &exts[0], "101", &desk, 1, (dir, "blf"), |label| {
        Sipp::new("pickup_replaces", pbx.udp())
            .key("domain", &carol.domain)
            .key("user", &carol.number)
            .key("password", &carol.password)
            .key("target", "101")
            // The SUBSCRIBE and the INVITE both go to sip:101@acme.test.
            .auth_uri("101@acme.test")
            // NOTIFYs of the subscription during the call: answered 200.
            .arg("-aa")
            .arg("-d")
            .arg("1000")
            .timeout(Duration::from_secs(30))
            .run(dir, label)
    });
    assert_connected(&deployment, &call, &picker, "102");
    assert_cancelled_elsewhere(&desk.finish(), 1);

    // The INVITE named the early dialog of the NOTIFY, which is the call.
    let early = received_requests(&picker, "NOTIFY")
        .into_iter()
        .map(body)
        .find(|b| b.contains("<state>early</state>"))
        .unwrap_or_else(|| panic!("no NOTIFY showed the call ringing\n{}", picker.report()));
    let invite = picker
        .messages
        .iter()
        .filter(|m| !m.received && m.message.method() == Some("INVITE"))
        .map(|m| &m.message)
        .next_back()
        .unwrap_or_else(|| panic!("the picker sent no INVITE\n{}", picker.report()));
    let replaces = invite.header("Replaces").unwrap_or_default();
    let call_id = replaces.split(';').next().unwrap_or_default();
    assert!(!call_id.is_empty(), "{}", invite.text());
    assert!(
        early.contains(&format!(" call-id=\"{call_id}\"")),
        "Replaces: {replaces}\n{early}"
    );
    assert!(
        replaces.ends_with(";early-only")
            && replaces.contains(";to-tag=")
            && replaces.contains(";from-tag="),
        "{replaces}"
    );
    let record = deployment.last_call_record("ACME");
    assert_eq!(
        record["id"], call_id,
        "the dialog id is the call's: {record}"
    );
    // 101's lamp: the call ended for it once picked up (SIPp answered
    // that NOTIFY with -aa), and it never showed 101 talking.
    let after: Vec<String> = received_requests(&picker, "NOTIFY")
        .into_iter()
        .map(body)
        .skip_while(|b| !b.contains("<state>early</state>"))
        .skip(1)
        .collect();
    assert!(
        after
            .iter()
            .any(|b| b.contains(&format!("<dialog id=\"{call_id}\""))
                && b.contains("<state>terminated</state>")),
        "101's watcher never saw the call end there: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|b| !b.contains("<state>confirmed</state>")),
        "101 was shown talking: {after:?}"
    );
    eprintln!("pickup by Replaces took {:?}", started.elapsed());
}

#[test]
fn star_eight_picks_up_a_call_to_the_group_or_ringing_a_fellow_member() {
    let started = Instant::now();
    // Two calls, each picked up within a few seconds.
    let (deployment, exts, pbx, desk) =
        desk_rings("pickup-group", HOLD + Duration::from_secs(6), |d| {
            d.admin(&[
                "group",
                "add",
                "ACME",
                "600",
                "--name",
                "Sales",
                "--members",
                "101,102",
            ]);
        });
    let dir = deployment.work().path();

    // 100 calls 101 directly: 102 is a fellow member of 600.
    let (call, picker) =
        call_picked_up(&pbx, &exts[0], "101", &desk, 1, (dir, "member"), |label| {
            picker_dialling(&pbx, &exts[2], "*8").run(dir, label)
        });
    assert_connected(&deployment, &call, &picker, "102");
    // 100 calls the group, which rings 101's desk phone (102 has none).
    let (call, picker) = call_picked_up(&pbx, &exts[0], "600", &desk, 2, (dir, "group"), |label| {
        picker_dialling(&pbx, &exts[2], "*8").run(dir, label)
    });
    assert_connected(&deployment, &call, &picker, "102");
    assert_cancelled_elsewhere(&desk.finish(), 2);
    eprintln!("group pickups took {:?}", started.elapsed());
}

#[test]
fn with_nothing_ringing_a_pickup_is_480_and_an_unknown_dialog_481() {
    let started = Instant::now();
    let deployment = Deployment::with_config("pickup-nothing", CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102]);
    deployment.admin(&[
        "group",
        "add",
        "ACME",
        "600",
        "--name",
        "Sales",
        "--members",
        "101,102",
    ]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let carol = &exts[2];

    for (label, number) in [("directed", "**101"), ("group", "*8")] {
        let refused = caller("call_refused", &pbx, carol, number)
            .timeout(Duration::from_secs(20))
            .run(dir, label);
        refused.assert_all_succeeded(1);
        assert_eq!(
            final_status(&refused),
            Some(480),
            "{label}\n{}",
            refused.report()
        );
    }
    let unknown = caller("pickup_unknown", &pbx, carol, "101")
        .key("replaces", "no-such-call")
        .timeout(Duration::from_secs(20))
        .run(dir, "replaces");
    unknown.assert_all_succeeded(1);
    assert_eq!(final_status(&unknown), Some(481), "{}", unknown.report());
    // No call was ever made.
    let records = deployment.admin(&["calls", "ACME", "--recent", "5", "--json"]);
    let records: serde_json::Value = serde_json::from_str(&records).expect("JSON records");
    assert_eq!(records, serde_json::json!([]), "{records}");
    eprintln!("refused pickups took {:?}", started.elapsed());
}
