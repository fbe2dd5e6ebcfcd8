//! Calls edgepbx answers itself, in virtual time: the policy's voicemail
//! step and the mailbox codes answer the caller with edgepbx's own media
//! and hand the call to the driver's voicemail session.

mod sim;

use std::time::Duration;

use edgepbx_engine::routing::{Action, Decision, DecisionRequest, Outcome};
use edgepbx_engine::{MediaCommand, Served, Service};
use edgepbx_sip::{Method, Request, Response};
use sim::{Sim, Ua, acme, call, config};

fn voicemail_after_busy(request: &DecisionRequest) -> Option<Decision> {
    let action = match request.history.last() {
        None => Action::Ring(edgepbx_engine::routing::Ring {
            mode: edgepbx_engine::routing::RingMode::Simultaneous,
            targets: vec![edgepbx_engine::routing::RingTarget {
                target: edgepbx_engine::routing::Target::Extension("101".into()),
                timeout_secs: 20,
            }],
        }),
        Some(_) => Action::Voicemail(request.dialled.clone()),
    };
    Some(Decision {
        action,
        presentation: None,
    })
}

fn sim() -> Sim {
    Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        Box::new(voicemail_after_busy),
    )
}

fn served(sim: &Sim) -> Served {
    sim.media
        .iter()
        .find_map(|m| match m {
            MediaCommand::Serve(served) => Some((**served).clone()),
            _ => None,
        })
        .expect("the call is served")
}

/// The CSeq number of a request.
fn cseq(request: &Request) -> u32 {
    edgepbx_sip::grammar::parse_cseq(request.headers.get("CSeq").unwrap_or("")).map_or(1, |c| c.seq)
}

/// `caller` calls `number`, is answered and acknowledges the 2xx; returns
/// its INVITE, the 2xx and the INVITE's CSeq number.
fn answered(sim: &mut Sim, caller: &mut Ua, number: &str) -> (Request, Response, u32) {
    let invite = call(sim, caller, number);
    let ok = sim.response(caller.addr, 200);
    let seq = cseq(&invite);
    let ack = caller.stamped(caller.dialog(&invite, &ok).ack(seq));
    sim.send(caller.addr, ack);
    (invite, ok, seq)
}

/// A request inside the caller's dialog.
fn in_dialog(caller: &mut Ua, invite: &Request, ok: &Response, method: &str) -> Request {
    let mut dialog = caller.dialog(invite, ok);
    dialog.local_seq = Some(10);
    caller.stamped(dialog.request(Method::from_token(method), None))
}

#[test]
fn a_busy_extension_sends_the_caller_to_its_mailbox_and_keys_reach_the_session() {
    let mut sim = sim();
    let mut caller = Ua::new("100", 5100);
    let device = Ua::new("101", 6001);
    let invite = call(&mut sim, &mut caller, "101");
    let ringing = sim.request(device.addr, "INVITE");
    sim.send(device.addr, device.answer(&ringing, 486));
    assert_eq!(
        sim.asked
            .last()
            .and_then(|r| r.history.last())
            .map(|a| a.outcome),
        Some(Outcome::Busy)
    );

    // The caller is answered by edgepbx itself, on the slot's A port.
    let ok = sim.response(caller.addr, 200);
    let served = served(&sim);
    assert_eq!(
        served.service,
        Service::Deposit {
            mailbox: "101".into(),
            busy: true
        }
    );
    assert_eq!(
        (served.caller.as_str(), served.tenant.as_str()),
        ("100", "ACME")
    );
    assert_eq!(served.codec.payload_type, 0);
    assert_eq!(served.telephone_event, Some(101));
    let answer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(
        answer.contains(&format!("m=audio {} RTP/AVP 0 101", served.slot.a_port)),
        "{answer}"
    );
    let dialog = caller.dialog(&invite, &ok);
    sim.send(caller.addr, caller.stamped(dialog.ack(cseq(&invite))));

    // A key as INFO goes to the session; a session timer's bodiless
    // UPDATE is answered; an INFO of another kind changes nothing.
    let mut info = in_dialog(&mut caller, &invite, &ok, "INFO");
    info.headers.push("Content-Type", "application/dtmf-relay");
    info.body = b"Signal=5\r\nDuration=160\r\n".to_vec();
    sim.send(caller.addr, info);
    let update = in_dialog(&mut caller, &invite, &ok, "UPDATE");
    sim.send(caller.addr, update);
    let mut other = in_dialog(&mut caller, &invite, &ok, "INFO");
    other
        .headers
        .push("Content-Type", "application/media_control+xml");
    other.body = b"<media_control/>".to_vec();
    sim.send(caller.addr, other);
    assert_eq!(sim.statuses(caller.addr), [200, 200, 200]);
    let keys: Vec<(u64, char)> = sim
        .media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Key { call, key } => Some((*call, *key)),
            _ => None,
        })
        .collect();
    assert_eq!(keys, [(served.call, '5')]);

    // The session is over: the caller gets a BYE, the record says where
    // the call went, the endpoint is stopped.
    sim.engine
        .handle_service_done(sim.now, sim.wall, served.call);
    sim.drain();
    sim.request(caller.addr, "BYE");
    assert_eq!(sim.records.len(), 1);
    assert_eq!(sim.records[0].outcome, "voicemail");
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Stop { call, .. } if *call == served.call))
    );
}

#[test]
fn a_re_invite_to_hold_is_answered_with_the_same_port() {
    let mut sim = sim();
    let mut caller = Ua::new("100", 5100);
    let (invite, ok, _) = answered(&mut sim, &mut caller, "*97");
    let served = served(&sim);
    let mut reinvite = in_dialog(&mut caller, &invite, &ok, "INVITE");
    reinvite.headers.push("Content-Type", "application/sdp");
    let mut held = sim::sdp(4002);
    held.extend_from_slice(b"a=sendonly\r\n");
    reinvite.body = held;
    sim.send(caller.addr, reinvite);
    let again = sim.response(caller.addr, 200);
    let text = String::from_utf8_lossy(&again.body).into_owned();
    assert!(
        text.contains(&format!("m=audio {} ", served.slot.a_port)),
        "{text}"
    );
    assert!(text.contains("a=recvonly"), "{text}");
    let version = |body: &[u8]| {
        let text = String::from_utf8_lossy(body).into_owned();
        let origin = text
            .lines()
            .find(|l| l.starts_with("o="))
            .map(str::to_owned);
        origin.and_then(|o| o.split(' ').nth(2).and_then(|v| v.parse::<u64>().ok()))
    };
    assert_eq!(version(&again.body), version(&ok.body).map(|v| v + 1));
    // The endpoint learns the caller's new address.
    assert!(sim.media.iter().any(|m| matches!(
        m,
        MediaCommand::Announce { address, .. } if address.port() == 4002
    )));
    // The caller hangs up: the endpoint stops (and keeps what it must).
    let bye = in_dialog(&mut caller, &invite, &ok, "BYE");
    sim.send(caller.addr, bye);
    assert!(sim.statuses(caller.addr).contains(&200));
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Stop { .. }))
    );
}

#[test]
fn the_mailbox_codes_need_no_policy() {
    for (code, own) in [("*97", Some("100".to_owned())), ("*98", None)] {
        let mut sim = sim();
        let mut caller = Ua::new("100", 5100);
        call(&mut sim, &mut caller, code);
        sim.response(caller.addr, 200);
        assert!(sim.asked.is_empty(), "{code}: no decision");
        assert_eq!(served(&sim).service, Service::Retrieve { own });
        assert_eq!(sim.engine.active_calls("ACME", sim.wall).len(), 1);
    }
}

#[test]
fn no_media_from_the_caller_ends_a_served_call() {
    let mut sim = sim();
    let mut caller = Ua::new("100", 5100);
    answered(&mut sim, &mut caller, "*98");
    let served = served(&sim);
    sim.engine.handle_media_event(
        sim.now,
        sim.wall,
        served.call,
        edgepbx_media::relay::Event::Silent(edgepbx_media::relay::Side::A),
    );
    sim.drain();
    sim.request(caller.addr, "BYE");
    assert_eq!(sim.records[0].cause, "no media");
    sim.advance(Duration::from_secs(1));
}

#[test]
fn a_caller_without_an_offer_is_offered_g711_and_its_ack_answers() {
    for (answer, served) in [(true, true), (false, false)] {
        let mut sim = sim();
        let mut caller = Ua::new("100", 5100);
        let mut invite = caller.invite("*97");
        invite.body.clear();
        invite.headers.remove("Content-Type");
        let invite = sim::call_with(&mut sim, &mut caller, invite);
        let ok = sim.response(caller.addr, 200);
        let offer = String::from_utf8_lossy(&ok.body).into_owned();
        assert!(offer.contains(" RTP/AVP 0 8 101\r\n"), "{offer}");
        assert!(
            !sim.media
                .iter()
                .any(|m| matches!(m, MediaCommand::Serve(_))),
            "the service waits for the answer"
        );
        let mut ack = caller.dialog(&invite, &ok).ack(cseq(&invite));
        if answer {
            // The caller answers with A-law.
            ack.headers.push("Content-Type", "application/sdp");
            ack.body = String::from_utf8_lossy(&sim::sdp(4000))
                .replace("RTP/AVP 0 101", "RTP/AVP 8 101")
                .replace("rtpmap:0 PCMU", "rtpmap:8 PCMA")
                .into_bytes();
        }
        sim.send(caller.addr, caller.stamped(ack));
        let started = sim.media.iter().find_map(|m| match m {
            MediaCommand::Serve(s) => Some(s.codec.payload_type),
            _ => None,
        });
        if served {
            assert_eq!(started, Some(8));
        } else {
            // An ACK without an answer: nothing to speak, the call ends.
            assert_eq!(started, None);
            sim.request(caller.addr, "BYE");
        }
    }
}

/// Answers a re-INVITE of the engine as the caller does: 200 with its
/// description; returns the re-INVITE.
fn accept_reinvite(sim: &mut Sim, caller: &Ua) -> Request {
    let reinvite = sim.request(caller.addr, "INVITE");
    let mut ok = caller.answer(&reinvite, 200);
    ok.headers.set("Content-Type", "application/sdp");
    ok.body = sim::sdp(4000);
    sim.send(caller.addr, ok);
    reinvite
}

#[test]
fn the_caller_of_a_mailbox_is_connected_elsewhere_on_its_own_codec() {
    let mut sim = sim();
    let mut caller = Ua::new("100", 5100);
    let device = Ua::new("101", 6001);
    let (invite, ok, seq) = answered(&mut sim, &mut caller, "*98");
    let served = served(&sim);

    // Voicemail asks to connect the caller to 101 (a call back).
    sim.engine
        .handle_service_transfer(sim.now, sim.wall, served.call, "101".into());
    sim.drain();
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Stop { call, .. } if *call == served.call)),
        "the voicemail endpoint stops"
    );
    assert_eq!(sim.asked.last().map(|r| r.dialled.as_str()), Some("101"));
    let ringing = sim.request(device.addr, "INVITE");
    let offer = String::from_utf8_lossy(&ringing.body).into_owned();
    assert!(
        offer.contains(" RTP/AVP 0 101\r\n"),
        "only the caller's codec: {offer}"
    );
    sim.send(device.addr, device.answer(&ringing, 200));
    sim.request(device.addr, "ACK");
    // The caller is moved onto the relay's port by a re-INVITE.
    let reinvite = accept_reinvite(&mut sim, &caller);
    let relay = sim.media.iter().rev().find_map(|m| match m {
        MediaCommand::Start { slot, .. } => Some(*slot),
        _ => None,
    });
    let relay = relay.expect("a relay for the new leg");
    let moved = String::from_utf8_lossy(&reinvite.body).into_owned();
    assert!(
        moved.contains(&format!("m=audio {} ", relay.a_port)),
        "{moved}"
    );
    assert_eq!(
        sim.requests(caller.addr, "ACK").len(),
        1,
        "its 200 is acknowledged"
    );
    // Now a call like any other: the caller's BYE reaches the device.
    let mut dialog = caller.dialog(&invite, &ok);
    dialog.local_seq = Some(seq + 5);
    sim.send(
        caller.addr,
        caller.stamped(dialog.request(Method::from_token("BYE"), None)),
    );
    sim.request(device.addr, "BYE");
    assert_eq!(
        sim.records.last().map(|r| r.outcome.as_str()),
        Some("answered")
    );
}

#[test]
fn a_callee_that_does_not_answer_sends_the_caller_to_voicemail_again_or_away() {
    // Busy: the policy chooses voicemail, and the caller is moved onto it.
    let mut sim = sim();
    let mut caller = Ua::new("100", 5100);
    let device = Ua::new("101", 6001);
    answered(&mut sim, &mut caller, "*98");
    let first = served(&sim);
    sim.engine
        .handle_service_transfer(sim.now, sim.wall, first.call, "101".into());
    sim.drain();
    let ringing = sim.request(device.addr, "INVITE");
    sim.send(device.addr, device.answer(&ringing, 486));
    let reinvite = accept_reinvite(&mut sim, &caller);
    let services: Vec<&Served> = sim
        .media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Serve(s) => Some(&**s),
            _ => None,
        })
        .collect();
    assert_eq!(services.len(), 2, "voicemail again");
    assert_eq!(
        services[1].service,
        Service::Deposit {
            mailbox: "101".into(),
            busy: true
        }
    );
    let moved = String::from_utf8_lossy(&reinvite.body).into_owned();
    assert!(
        moved.contains(&format!("m=audio {} ", services[1].slot.a_port)),
        "{moved}"
    );

    // A number nobody can reach: the caller is hung up.
    let mut sim = self::sim();
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "*98");
    sim.response(caller.addr, 200);
    let served = served(&sim);
    sim.engine
        .handle_service_transfer(sim.now, sim.wall, served.call, "+15550100".into());
    sim.drain();
    sim.request(caller.addr, "BYE");
}
