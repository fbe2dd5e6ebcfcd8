//! Calls through edgepbx between SIPp phones: an extension with two
//! registered devices rings on both, the first to answer gets the call and
//! the other is cancelled with the RFC 3326 reason; a caller who gives up
//! cancels every device; numbers nobody has, extensions with no device and
//! looping requests are refused; callers cannot tell which users exist.

use std::time::Duration;

use edgepbx_e2e::pbx::Deployment;
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, audio_port, caller, final_status, received_requests,
    wait_for_bindings,
};
use edgepbx_e2e::sip::{SipMessage, normalise};
use edgepbx_e2e::sipp::{Sipp, SippOutcome};

/// How long a device stays registered and on line.
const HOLD: Duration = Duration::from_secs(10);

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
fn both_devices_ring_the_first_answer_wins_and_the_other_is_cancelled() {
    let deployment = Deployment::with_config("call-fork", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();

    let desk = Device::start(dir, &pbx, &bob, "desk", Behaviour::Answer, HOLD);
    let mobile = Device::start(dir, &pbx, &bob, "mobile", Behaviour::Ring, HOLD);
    wait_for_bindings(&pbx, &bob, 2);

    let call = caller("call", &pbx, &alice, &bob.number)
        .arg("-d")
        .arg("1000")
        .run(dir, "caller");
    call.assert_all_succeeded(1);

    let (desk, mobile) = (desk.finish(), mobile.finish());
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
    // The caller's ACK stopped the 200's retransmissions (its talk time
    // outlasts the first retransmission interval).
    let oks = call
        .responses()
        .filter(|m| {
            m.status() == Some(200) && m.header("CSeq").is_some_and(|c| c.contains("INVITE"))
        })
        .count();
    assert_eq!(
        oks,
        1,
        "the 200 was retransmitted after the ACK\n{}",
        call.report()
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
    // The desk phone sees who calls: the caller's extension and name.
    let invite = received_requests(&desk, "INVITE")[0];
    let from = invite.header("From").unwrap_or_default();
    assert!(
        from.contains("\"Test 100\"") && from.contains("sip:100@acme.test"),
        "{from}"
    );
}

#[test]
fn a_caller_who_gives_up_cancels_every_device() {
    let deployment = Deployment::with_config("call-cancel", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();

    let desk = Device::start(dir, &pbx, &bob, "desk", Behaviour::Ring, HOLD);
    let mobile = Device::start(dir, &pbx, &bob, "mobile", Behaviour::Ring, HOLD);
    wait_for_bindings(&pbx, &bob, 2);

    let call = caller("call_cancel", &pbx, &alice, &bob.number)
        .arg("-d")
        .arg("1000")
        .run(dir, "caller");
    call.assert_all_succeeded(1);
    assert!(call.last_response(487).is_some(), "{}", call.report());

    for (name, device) in [("desk", desk), ("mobile", mobile)] {
        let outcome = device.finish();
        let cancel = rang_then_cancelled(&outcome, name);
        assert!(
            !cancel
                .header("Reason")
                .is_some_and(|r| r.contains("cause=200")),
            "{name}: a caller's CANCEL is not 'completed elsewhere'"
        );
    }
}

#[test]
fn unknown_numbers_devices_missing_and_loops_are_refused() {
    let deployment = Deployment::with_config("call-refused", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();

    // Carol, added while the server runs, is reachable by her alias 5102
    // (she has no device yet: 480), unlike 999 (404).
    deployment.admin(&[
        "ext",
        "add",
        "ACME",
        "102",
        "--name",
        "Carol",
        "--password",
        "pw-102-Secret",
        "--alias",
        "5102",
    ]);
    for (number, expected) in [("999", 404), (bob.number.as_str(), 480), ("5102", 480)] {
        let call = caller("call_refused", &pbx, &alice, number).run(dir, &format!("to-{number}"));
        call.assert_all_succeeded(1);
        assert_eq!(final_status(&call), Some(expected), "{}", call.report());
    }
    // A request that has used up its Max-Forwards is looping: 483.
    let looped = caller("call_looped", &pbx, &alice, &bob.number).run(dir, "looped");
    looped.assert_all_succeeded(1);
    assert_eq!(final_status(&looped), Some(483), "{}", looped.report());
}

#[test]
fn a_tenant_at_its_limit_of_simultaneous_calls_gets_503() {
    let deployment = Deployment::with_config("call-limit", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101, 102]);
    deployment.admin(&["tenant", "limits", "ACME", "--max-calls", "1"]);
    let (alice, bob, carol) = (exts.remove(0), exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let desk = Device::start(dir, &pbx, &bob, "desk", Behaviour::Answer, HOLD);
    wait_for_bindings(&pbx, &bob, 1);

    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            caller("call", &pbx, &alice, &bob.number)
                .arg("-d")
                .arg("4000")
                .run(dir, "first")
        });
        // While the first call lasts, the tenant has no call left.
        std::thread::sleep(Duration::from_secs(2));
        let second = caller("call_refused", &pbx, &carol, &alice.number).run(dir, "second");
        assert_eq!(final_status(&second), Some(503), "{}", second.report());
        first
            .join()
            .expect("the first caller")
            .assert_all_succeeded(1);
    });
    desk.finish();
}

#[test]
fn unknown_callers_and_wrong_passwords_get_the_same_answers() {
    let deployment = Deployment::with_config("call-enumeration", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();
    // Alice with a wrong password, and a user ACME does not have.
    let mut answers = Vec::new();
    for user in [alice.number.as_str(), "999"] {
        let run = Sipp::new("call_wrong_password", pbx.udp())
            .key("domain", &alice.domain)
            .key("user", user)
            .key("password", "not-the-password")
            .arg("-s")
            .arg(&bob.number)
            .auth_uri(&format!("{}@{}", bob.number, alice.domain))
            .run(dir, &format!("as-{user}"));
        run.assert_all_succeeded(1);
        let challenges: Vec<String> = run
            .responses()
            .filter(|m| m.status() == Some(407))
            .map(|m| {
                let call_id = m.header("Call-ID").unwrap_or_default().to_owned();
                // Each SIPp run has its own port, echoed in the Via.
                let port = m
                    .header("Via")
                    .and_then(|v| v.split("rport=").nth(1))
                    .map(|p| p.split(';').next().unwrap_or(p).to_owned())
                    .unwrap_or_default();
                normalise(m, user, &call_id)
                    .replace(&format!("{user}@"), "<user>@")
                    .replace(&port, "<port>")
            })
            .collect();
        assert_eq!(challenges.len(), 2, "{}", run.report());
        answers.push(challenges);
    }
    assert_eq!(
        answers[0], answers[1],
        "a caller can tell a known user from an unknown one"
    );
}
