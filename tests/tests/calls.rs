//! Calls through edgepbx between SIPp phones: an extension with two
//! registered devices rings on both, the first to answer gets the call and
//! the other is cancelled with the RFC 3326 reason; a caller who gives up
//! cancels every device.
//!
//! Each device is one SIPp process: `device_register.xml` registers it and
//! keeps it on line, and the INVITE edgepbx sends (a Call-ID SIPp has not
//! seen) runs the out-of-call scenario given with `-oocsf`
//! (`device_answer.xml` or `device_ring.xml`). Debian's SIPp 3.6 reads only
//! the first digest challenge, so these servers offer MD5 first.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::sip::{RegisterParams, SipClient, SipMessage};
use edgepbx_e2e::sipp::{Sipp, SippOutcome};
use edgepbx_e2e::{sipp_dir, wait_for};

/// MD5 first for SIPp; no keepalive OPTIONS (SIPp devices would not answer
/// them outside their scenario).
const CONFIG: &str = "[security]\ndigest_algorithms = [\"MD5\", \"SHA-256\"]\n\
                      [registrar]\nkeepalive_interval_secs = 0\n";

/// How long a device stays registered and on line.
const DEVICE_HOLD: Duration = Duration::from_secs(10);

/// Starts a SIPp device of `ext` named `name` whose INVITEs run the
/// out-of-call scenario `ooc`; returns once the device is registered.
fn device(
    dir: &Path,
    pbx: &RunningPbx,
    ext: &Extension,
    name: &str,
    ooc: &str,
) -> JoinHandle<SippOutcome> {
    let sipp = Sipp::new("device_register", pbx.udp())
        .account(&ext.domain, &ext.number, &ext.password)
        .key("device", name)
        .arg("-d")
        .arg(&DEVICE_HOLD.as_millis().to_string())
        .arg("-oocsf")
        .arg(&sipp_dir().join(format!("{ooc}.xml")).to_string_lossy())
        .timeout(DEVICE_HOLD + Duration::from_secs(20));
    let (dir, name) = (dir.to_owned(), name.to_owned());
    std::thread::spawn(move || sipp.run(&dir, &name))
}

/// Waits until `ext` has `count` bindings.
fn wait_for_bindings(pbx: &RunningPbx, ext: &Extension, count: usize) {
    let listed = wait_for(Duration::from_secs(20), || {
        let mut ua = ext.agent(SipClient::udp(pbx.udp()));
        let response = ua.register(&RegisterParams::query());
        (response.contacts().len() == count).then_some(())
    });
    assert!(
        listed.is_some(),
        "{} never had {count} bindings",
        ext.number
    );
}

/// A SIPp caller as `caller` dialling `callee`.
fn caller(scenario: &str, pbx: &RunningPbx, caller: &Extension, callee: &Extension) -> Sipp {
    Sipp::new(scenario, pbx.udp())
        .key("domain", &caller.domain)
        .key("user", &caller.number)
        .key("password", &caller.password)
        // `[service]` is SIPp's own keyword, set with -s.
        .arg("-s")
        .arg(&callee.number)
        // The digest covers the Request-URI (SIPp prefixes `sip:`).
        .auth_uri(&format!("{}@{}", callee.number, caller.domain))
}

/// The requests a SIPp run received, by method.
fn received_requests<'a>(outcome: &'a SippOutcome, method: &str) -> Vec<&'a SipMessage> {
    outcome
        .received()
        .filter(|m| m.method() == Some(method))
        .collect()
}

fn finish(handle: JoinHandle<SippOutcome>) -> SippOutcome {
    handle
        .join()
        .unwrap_or_else(|_| panic!("a SIPp device thread panicked"))
}

#[test]
fn both_devices_ring_the_first_answer_wins_and_the_other_is_cancelled() {
    let deployment = Deployment::with_config("call-fork", CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();

    let desk = device(dir, &pbx, &bob, "desk", "device_answer");
    let mobile = device(dir, &pbx, &bob, "mobile", "device_ring");
    wait_for_bindings(&pbx, &bob, 2);

    let call = caller("call", &pbx, &alice, &bob)
        .arg("-d")
        .arg("1000")
        .run(dir, "caller");
    call.assert_all_succeeded(1);

    let (desk, mobile) = (finish(desk), finish(mobile));
    // The desk phone answered: it got the INVITE, the ACK and the BYE.
    for method in ["INVITE", "ACK", "BYE"] {
        assert_eq!(
            received_requests(&desk, method).len(),
            1,
            "desk phone: {method}\n{}",
            desk.report()
        );
    }
    // The mobile rang too and was cancelled because the call was answered
    // elsewhere.
    let reason = rang_then_cancelled(&mobile, "mobile")
        .header("Reason")
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("cause=200") && reason.contains("Call completed elsewhere"),
        "CANCEL without the RFC 3326 reason: {reason:?}"
    );
    // The caller heard the ringing, then got an answer whose media address
    // is edgepbx's relay port, not the desk phone's.
    assert!(call.last_response(180).is_some(), "{}", call.report());
    let answered = call
        .responses()
        .find(|m| m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.contains("INVITE")))
        .unwrap_or_else(|| panic!("no 200 for the INVITE\n{}", call.report()));
    let desk_ok = desk
        .messages
        .iter()
        .find(|m| !m.received && m.message.status() == Some(200) && !m.message.body.is_empty())
        .unwrap_or_else(|| panic!("the desk phone sent no answer\n{}", desk.report()));
    let (relay_port, desk_port) = (audio_port(answered), audio_port(&desk_ok.message));
    assert_ne!(
        relay_port,
        desk_port,
        "media was not anchored:\n{}",
        answered.text()
    );
    assert!(
        (20_000..30_000).contains(&relay_port),
        "not a port of the media range: {relay_port}"
    );
}

/// The port of the audio stream of a message's description.
fn audio_port(message: &SipMessage) -> u16 {
    let body = String::from_utf8_lossy(&message.body);
    body.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no audio stream in\n{}", message.text()))
}

/// Checks that a device got one INVITE and then one CANCEL; returns the
/// CANCEL.
fn rang_then_cancelled<'a>(outcome: &'a SippOutcome, name: &str) -> &'a SipMessage {
    assert_eq!(
        received_requests(outcome, "INVITE").len(),
        1,
        "{name}: {}",
        outcome.report()
    );
    let cancels = received_requests(outcome, "CANCEL");
    assert_eq!(cancels.len(), 1, "{name}: {}", outcome.report());
    cancels[0]
}

#[test]
fn a_caller_who_gives_up_cancels_every_device() {
    let deployment = Deployment::with_config("call-cancel", CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();

    let desk = device(dir, &pbx, &bob, "desk", "device_ring");
    let mobile = device(dir, &pbx, &bob, "mobile", "device_ring");
    wait_for_bindings(&pbx, &bob, 2);

    let call = caller("call_cancel", &pbx, &alice, &bob)
        .arg("-d")
        .arg("1000")
        .run(dir, "caller");
    call.assert_all_succeeded(1);
    assert!(call.last_response(487).is_some(), "{}", call.report());

    for (name, outcome) in [("desk", finish(desk)), ("mobile", finish(mobile))] {
        let cancel = rang_then_cancelled(&outcome, name);
        assert!(
            !cancel
                .header("Reason")
                .is_some_and(|r| r.contains("cause=200")),
            "{name}: a caller's CANCEL is not 'completed elsewhere'"
        );
    }
}
