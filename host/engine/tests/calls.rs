//! The call engine in virtual time: a caller and devices as scripted
//! peers, a scripted policy, every message the engine sends read back.

mod sim;

use std::time::Duration;

use edgepbx_engine::MediaCommand;
use edgepbx_engine::routing::{
    Action, Decision, DecisionRequest, Outcome, Ring, RingMode, RingTarget, Target,
};
use edgepbx_media::relay::Side;
use edgepbx_sip::{Method, Response};
use sim::{
    CARRIER, Sim, Ua, acme, beta_sharing_the_carrier, call, call_with, config, one_device,
    ring_dialled,
};

const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

fn ring(targets: &[&str], secs: u32, mode: RingMode) -> Decision {
    Decision {
        action: Action::Ring(Ring {
            mode,
            targets: targets
                .iter()
                .map(|t| RingTarget {
                    target: if t.len() > 5 {
                        Target::External((*t).into())
                    } else {
                        Target::Extension((*t).into())
                    },
                    timeout_secs: secs,
                })
                .collect(),
        }),
        presentation: None,
    }
}

fn reject(status: u16) -> Decision {
    Decision {
        action: Action::Reject(status),
        presentation: None,
    }
}

/// The outcome of the last step the policy was told of.
fn last_outcome(sim: &Sim) -> Option<Outcome> {
    sim.asked
        .last()
        .and_then(|r| r.history.last())
        .map(|a| a.outcome)
}

/// The ACK of the 2xx `ok` to `invite`, from `ua`.
fn ack_ok(ua: &mut Ua, invite: &edgepbx_sip::Request, ok: &Response) -> edgepbx_sip::Request {
    let dialog = ua.dialog(invite, ok);
    let seq = edgepbx_sip::grammar::parse_cseq(invite.headers.get("CSeq").unwrap_or(""))
        .map_or(1, |c| c.seq);
    ua.stamped(dialog.ack(seq))
}

/// Answers the CANCEL `cancel` of `invite` as a device does: 200 to the
/// CANCEL, 487 to the INVITE.
fn accept_cancel(
    sim: &mut Sim,
    device: &Ua,
    invite: &edgepbx_sip::Request,
    cancel: &edgepbx_sip::Request,
) {
    sim.send(device.addr, device.answer(cancel, 200));
    sim.send(device.addr, device.answer(invite, 487));
}

/// A call answered by `device` of extension 101 after ringing; returns the
/// caller's INVITE, the caller's 200 and the device's INVITE.
fn answered_call(
    sim: &mut Sim,
    caller: &mut Ua,
    device: &Ua,
) -> (edgepbx_sip::Request, Response, edgepbx_sip::Request) {
    let invite = call(sim, caller, "101");
    let to_device = sim.request(device.addr, "INVITE");
    sim.send(device.addr, device.answer(&to_device, 180));
    sim.send(device.addr, device.answer(&to_device, 200));
    let ok = sim.response(caller.addr, 200);
    (invite, ok, to_device)
}

/// Extension 101 on two devices (ports 6001 and 6002), rung for 20 s.
fn two_devices(config: edgepbx_engine::EngineConfig) -> Sim {
    Sim::new(
        config,
        acme(false, &[]),
        &[("101", 6001), ("101", 6002)],
        ring_dialled(20),
    )
}

/// [`answered_call`], acknowledged, with everything said so far read.
fn connected_call(
    sim: &mut Sim,
    caller: &mut Ua,
    device: &Ua,
) -> (edgepbx_sip::Request, Response, edgepbx_sip::Request) {
    let (invite, ok, to_device) = answered_call(sim, caller, device);
    sim.send(caller.addr, ack_ok(caller, &invite, &ok));
    sim.take(caller.addr);
    sim.take(device.addr);
    (invite, ok, to_device)
}

#[test]
fn a_call_forks_to_every_device_and_cancels_the_losers_with_a_reason() {
    let mut sim = two_devices(config());
    let mut caller = Ua::new("100", 5100);
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("101", 6002));
    let invite = call(&mut sim, &mut caller, "101");
    assert_eq!(sim.statuses(caller.addr), [100]);
    let (i1, i2) = (
        sim.request(d1.addr, "INVITE"),
        sim.request(d2.addr, "INVITE"),
    );
    assert_eq!(i1.headers.get("Max-Forwards"), Some("69"));
    assert!(
        i1.headers
            .get("From")
            .is_some_and(|f| f.contains("\"User 100\" <sip:100@acme.test>"))
    );
    sim.send(d1.addr, d1.answer(&i1, 180));
    sim.send(d2.addr, d2.answer(&i2, 180));
    assert_eq!(sim.statuses(caller.addr), [180, 180]);
    sim.send(d2.addr, d2.answer(&i2, 200));

    // The winner is acknowledged, the loser cancelled with the reason.
    let ack = sim.request(d2.addr, "ACK");
    assert_eq!(ack.headers.get("CSeq"), Some("1 ACK"));
    let cancel = sim.request(d1.addr, "CANCEL");
    assert_eq!(cancel.headers.get("Reason"), Some(COMPLETED_ELSEWHERE));
    assert_eq!(cancel.headers.get("Via"), i1.headers.get("Via"));
    accept_cancel(&mut sim, &d1, &i1, &cancel);
    assert_eq!(
        sim.requests(d1.addr, "ACK").len(),
        1,
        "the 487 is acknowledged"
    );

    // The caller gets the answer, anchored on the call's media slot.
    let ok = sim.response(caller.addr, 200);
    let answer = String::from_utf8_lossy(&ok.body).into_owned();
    let slot = sim.media.iter().find_map(|m| match m {
        MediaCommand::Start { slot, .. } => Some(*slot),
        _ => None,
    });
    let slot = slot.expect("media started");
    assert!(
        answer.contains(&format!("m=audio {} ", slot.a_port)),
        "{answer}"
    );
    let offer = String::from_utf8_lossy(&i2.body).into_owned();
    assert!(
        offer.contains(&format!("m=audio {} ", slot.b_port)),
        "{offer}"
    );
    sim.send(caller.addr, ack_ok(&mut caller, &invite, &ok));
    assert_eq!(
        sim.leg_events(),
        [
            "Caller 100 Calling",
            "Callee 101 Ringing",
            "Callee 101 Ringing",
            "Callee 101 Answered",
            "Caller 100 Answered",
            "Callee 101 Ended (answered elsewhere)",
        ]
    );
    // Nothing is retransmitted once everyone has answered and acknowledged.
    sim.advance(Duration::from_secs(40));
    assert!(sim.take(caller.addr).is_empty());
    assert!(sim.take(d1.addr).is_empty());
    assert!(sim.take(d2.addr).is_empty());
}

#[test]
fn a_caller_cancel_cancels_every_branch_with_the_callers_reason() {
    let mut sim = two_devices(config());
    let mut caller = Ua::new("100", 5100);
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("101", 6002));
    let invite = call(&mut sim, &mut caller, "101");
    let (i1, i2) = (
        sim.request(d1.addr, "INVITE"),
        sim.request(d2.addr, "INVITE"),
    );
    sim.send(d1.addr, d1.answer(&i1, 180));
    sim.send(caller.addr, caller.cancel(&invite, Some("SIP;cause=487")));
    let statuses = sim.statuses(caller.addr);
    assert!(statuses.ends_with(&[200, 487]), "{statuses:?}");
    for (device, invite) in [(&d1, &i1), (&d2, &i2)] {
        let cancel = sim.request(device.addr, "CANCEL");
        assert_eq!(cancel.headers.get("Reason"), Some("SIP;cause=487"));
        accept_cancel(&mut sim, device, invite, &cancel);
    }
    assert_eq!(sim.records.len(), 1);
    assert_eq!(sim.records[0].outcome, "cancelled");
    assert!(
        sim.media
            .iter()
            .any(|m| matches!(m, MediaCommand::Stop { .. }))
    );
    assert_eq!(
        sim.asked.len(),
        1,
        "no further step after the caller gave up"
    );
    // Both lines are idle again once the devices have stopped ringing.
    assert_eq!(last_line(&sim, "101"), Some((false, false)));
    assert_eq!(last_line(&sim, "100"), Some((false, false)));
    assert!(sim.engine.active_calls("ACME", sim.wall).is_empty());
}

/// What the line of `extension` showed last: (ringing, talking).
fn last_line(sim: &Sim, extension: &str) -> Option<(bool, bool)> {
    sim.events.iter().rev().find_map(|e| match e {
        edgepbx_engine::Event::Line {
            extension: x,
            ringing,
            talking,
            ..
        } if x == extension => Some((*ringing, *talking)),
        _ => None,
    })
}

#[test]
fn a_cancelled_branch_that_never_answers_is_given_up_after_64_t1() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    let invite = call(&mut sim, &mut caller, "101");
    let to_device = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&to_device, 180));
    let cancel = caller.cancel(&invite, None);
    sim.send(caller.addr, cancel);
    // The device answers the CANCEL but never its INVITE.
    let cancel = sim.request(d1.addr, "CANCEL");
    sim.send(d1.addr, d1.answer(&cancel, 200));
    sim.advance(Duration::from_secs(31));
    assert_eq!(
        last_line(&sim, "101"),
        Some((true, false)),
        "still waiting for the INVITE's answer"
    );
    sim.advance(Duration::from_secs(2));
    assert_eq!(last_line(&sim, "101"), Some((false, false)), "given up");
}

#[test]
fn busy_leads_to_the_next_step_with_the_outcome() {
    let policy: sim::Policy = Box::new(|r: &DecisionRequest| {
        Some(match r.history.len() {
            0 => ring(&["101"], 20, RingMode::Simultaneous),
            _ => ring(&["102"], 20, RingMode::Simultaneous),
        })
    });
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001), ("102", 6002)],
        policy,
    );
    let mut caller = Ua::new("100", 5100);
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("102", 6002));
    call(&mut sim, &mut caller, "101");
    let i1 = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&i1, 486));
    assert_eq!(last_outcome(&sim), Some(Outcome::Busy));
    let i2 = sim.request(d2.addr, "INVITE");
    assert!(i2.uri.starts_with("sip:102@"));
    sim.send(d2.addr, d2.answer(&i2, 200));
    assert!(sim.statuses(caller.addr).contains(&200));
}

#[test]
fn a_target_that_rings_out_is_cancelled_and_counts_as_no_answer() {
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        ring_dialled(15),
    );
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    call(&mut sim, &mut caller, "101");
    let i1 = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&i1, 180));
    sim.advance(Duration::from_millis(14_900));
    assert!(
        sim.requests(d1.addr, "CANCEL").is_empty(),
        "not before its time"
    );
    sim.advance(Duration::from_millis(200));
    let cancel = sim.request(d1.addr, "CANCEL");
    assert_eq!(cancel.headers.get("Reason"), None);
    accept_cancel(&mut sim, &d1, &i1, &cancel);
    assert_eq!(last_outcome(&sim), Some(Outcome::NoAnswer));
    let statuses = sim.statuses(caller.addr);
    assert_eq!(statuses.last(), Some(&480), "{statuses:?}");
    assert_eq!(sim.records[0].outcome, "no-answer");
}

#[test]
fn a_sequential_step_rings_each_target_in_turn() {
    let policy: sim::Policy = Box::new(|r: &DecisionRequest| {
        r.history
            .is_empty()
            .then(|| ring(&["101", "103", "102"], 10, RingMode::Sequential))
    });
    // 103 has no device: it is skipped.
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001), ("102", 6002)],
        policy,
    );
    let mut caller = Ua::new("100", 5100);
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("102", 6002));
    call(&mut sim, &mut caller, "101");
    let i1 = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&i1, 180));
    assert!(sim.requests(d2.addr, "INVITE").is_empty(), "one at a time");
    sim.advance(Duration::from_secs(10));
    let cancel = sim.request(d1.addr, "CANCEL");
    accept_cancel(&mut sim, &d1, &i1, &cancel);
    let i2 = sim.request(d2.addr, "INVITE");
    sim.send(d2.addr, d2.answer(&i2, 200));
    assert!(sim.statuses(caller.addr).contains(&200));
    assert_eq!(sim.asked.len(), 1, "one step for the whole sequence");
}

#[test]
fn a_forward_out_is_bound_by_the_forwarding_extensions_allowed_destinations() {
    let policy: sim::Policy = Box::new(|r: &DecisionRequest| {
        Some(Decision {
            action: Action::Forward("0899123456".into()),
            presentation: None,
        })
        .filter(|_| r.dialled == "101")
    });
    let restricted = edgepbx_model::CallSettings {
        allowed_destinations: edgepbx_model::AllowedDestinations::None,
        ..edgepbx_model::CallSettings::default()
    };
    let mut sim = Sim::new(config(), acme(true, &[("101", restricted)]), &[], policy);
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "101");
    let carrier_addr: std::net::SocketAddr = CARRIER.parse().expect("addr");
    assert!(sim.requests(carrier_addr, "INVITE").is_empty());
    assert!(sim.statuses(caller.addr).contains(&403));
}

#[test]
fn an_unconditional_forward_goes_out_through_the_trunk_answering_its_challenge() {
    let policy: sim::Policy = Box::new(|r: &DecisionRequest| {
        Some(if r.dialled == "101" {
            Decision {
                action: Action::Forward("0612345678".into()),
                presentation: None,
            }
        } else {
            ring(&[&r.dialled], 30, RingMode::Simultaneous)
        })
    });
    let mut sim = Sim::new(config(), acme(true, &[]), &[], policy);
    let mut caller = Ua::new("100", 5100);
    let carrier = Ua::new(
        "carrier",
        CARRIER
            .parse::<std::net::SocketAddr>()
            .expect("addr")
            .port(),
    );
    let carrier_addr: std::net::SocketAddr = CARRIER.parse().expect("addr");
    let invite = call(&mut sim, &mut caller, "101");
    assert_eq!(sim.asked.len(), 2);
    assert_eq!(sim.asked[1].dialled, "0612345678");
    assert!(sim.asked[1].history.is_empty(), "a forward starts afresh");
    let out = sim.request(carrier_addr, "INVITE");
    assert_eq!(out.uri, format!("sip:0612345678@{CARRIER}"));
    let from = out.headers.get("From").unwrap_or_default();
    assert!(
        from.starts_with("<sip:0140000100@127.0.0.9>"),
        "the trunk's number: {from}"
    );
    let challenge = sim::challenge(&out, 407, "n1");
    sim.send(carrier_addr, challenge);
    assert_eq!(sim.requests(carrier_addr, "ACK").len(), 1);
    let again = sim.request(carrier_addr, "INVITE");
    assert_eq!(again.headers.get("CSeq"), Some("2 INVITE"));
    let auth = again.headers.get("Proxy-Authorization").unwrap_or_default();
    assert!(auth.contains("username=\"acme\""), "{auth}");
    let mut carrier = carrier;
    carrier.number = "0612345678".into();
    sim.send(carrier_addr, carrier.answer(&again, 200));
    let ack = sim.request(carrier_addr, "ACK");
    assert_eq!(ack.headers.get("CSeq"), Some("2 ACK"));
    let ok = sim.response(caller.addr, 200);
    sim.send(caller.addr, ack_ok(&mut caller, &invite, &ok));
    assert_eq!(
        sim.engine.active_calls("ACME", sim.wall)[0].state,
        "answered"
    );
}

#[test]
fn a_2xx_is_retransmitted_until_its_ack_arrives() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    let (invite, ok, _) = answered_call(&mut sim, &mut caller, &d1);
    // T1, then 2 T1, 4 T1: three retransmissions in 3.5 s.
    sim.advance(Duration::from_millis(3_600));
    let again = sim.statuses(caller.addr);
    assert_eq!(again, [200, 200, 200], "{again:?}");
    sim.send(caller.addr, ack_ok(&mut caller, &invite, &ok));
    sim.advance(Duration::from_secs(60));
    assert!(
        sim.statuses(caller.addr).is_empty(),
        "no more after the ACK"
    );
    assert!(sim.records.is_empty(), "the call goes on");
}

#[test]
fn a_2xx_never_acknowledged_ends_the_call_after_64_t1() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    answered_call(&mut sim, &mut caller, &d1);
    sim.advance(Duration::from_millis(31_900));
    assert!(sim.records.is_empty());
    sim.advance(Duration::from_millis(200));
    assert_eq!(sim.records.len(), 1);
    assert_eq!(sim.records[0].cause, "no ACK");
    assert_eq!(sim.requests(caller.addr, "BYE").len(), 1);
    assert_eq!(sim.requests(d1.addr, "BYE").len(), 1);
}

#[test]
fn bye_from_either_side_ends_the_call_on_both() {
    for caller_hangs_up in [true, false] {
        let mut sim = one_device();
        let mut caller = Ua::new("100", 5100);
        let mut d1 = Ua::new("101", 6001);
        let (invite, ok, to_device) = connected_call(&mut sim, &mut caller, &d1);
        if caller_hangs_up {
            let mut dialog = caller.dialog(&invite, &ok);
            let bye = caller.stamped(dialog.request(Method::from_token("BYE"), None));
            sim.send(caller.addr, bye);
            assert_eq!(sim.statuses(caller.addr), [200]);
            let bye = sim.request(d1.addr, "BYE");
            sim.send(d1.addr, d1.answer(&bye, 200));
            assert_eq!(sim.records[0].cause, "caller hung up");
        } else {
            let mut dialog = edgepbx_sip::dialog::Dialog::as_uas(&to_device, "dev-6001", false)
                .expect("a dialog");
            let bye = d1.stamped(dialog.request(Method::from_token("BYE"), None));
            sim.send(d1.addr, bye);
            assert_eq!(sim.statuses(d1.addr), [200]);
            let bye = sim.request(caller.addr, "BYE");
            sim.send(caller.addr, caller.answer(&bye, 200));
            assert_eq!(sim.records[0].cause, "callee hung up");
        }
        assert_eq!(sim.records[0].outcome, "answered");
        assert!(sim.engine.active_calls("ACME", sim.wall).is_empty());
    }
}

#[test]
fn re_invite_glare_gets_491_and_the_call_goes_on() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let mut d1 = Ua::new("101", 6001);
    let (invite, ok, to_device) = connected_call(&mut sim, &mut caller, &d1);
    // The caller re-offers; the engine relays it to the device.
    let mut a_dialog = caller.dialog(&invite, &ok);
    let mut reinvite = caller.stamped(a_dialog.request(Method::from_token("INVITE"), None));
    reinvite.headers.push("Content-Type", "application/sdp");
    reinvite.body = sim::sdp(4002);
    sim.send(caller.addr, reinvite.clone());
    let relayed = sim.request(d1.addr, "INVITE");
    // Meanwhile the device re-offers too: glare.
    let mut b_dialog =
        edgepbx_sip::dialog::Dialog::as_uas(&to_device, "dev-6001", false).expect("a dialog");
    let mut theirs = d1.stamped(b_dialog.request(Method::from_token("INVITE"), None));
    theirs.headers.push("Content-Type", "application/sdp");
    theirs.body = sim::sdp(7002);
    sim.send(d1.addr, theirs);
    assert_eq!(
        sim.statuses(d1.addr),
        [491],
        "the engine's INVITE to it is pending"
    );
    // The device refuses ours the same way; the caller hears it.
    sim.send(d1.addr, d1.answer(&relayed, 491));
    let statuses = sim.statuses(caller.addr);
    assert!(statuses.contains(&491), "{statuses:?}");
    assert!(sim.records.is_empty(), "the call goes on");
    // Once the glare is over, a re-INVITE passes again.
    let mut retry = caller.stamped(a_dialog.request(Method::from_token("INVITE"), None));
    retry.headers.push("Content-Type", "application/sdp");
    retry.body = sim::sdp(4004);
    sim.send(caller.addr, retry);
    assert_eq!(sim.requests(d1.addr, "INVITE").len(), 1);
}

#[test]
fn max_forwards_is_decremented_and_zero_is_refused() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let mut invite = caller.invite("101");
    invite.headers.set("Max-Forwards", "0");
    sim.send(caller.addr, invite.clone());
    let challenge = sim.response(caller.addr, 407);
    sim.send(caller.addr, caller.ack_failure(&invite, &challenge));
    let authed = caller.with_credentials(&invite, &challenge);
    sim.send(caller.addr, authed);
    assert_eq!(sim.statuses(caller.addr), [483]);
    assert!(sim.asked.is_empty());
}

#[test]
fn the_tenants_call_limit_refuses_one_call_more_with_503() {
    let mut tenant = acme(false, &[]);
    tenant.max_calls = Some(1);
    let mut sim = Sim::new(
        config(),
        tenant,
        &[("101", 6001), ("102", 6002)],
        ring_dialled(20),
    );
    let mut first = Ua::new("100", 5100);
    call(&mut sim, &mut first, "101");
    let mut second = Ua::new("103", 5103);
    call(&mut sim, &mut second, "102");
    assert_eq!(sim.statuses(second.addr), [503]);
    assert!(
        sim.requests("127.0.0.1:6002".parse().expect("addr"), "INVITE")
            .is_empty()
    );
}

#[test]
fn a_decision_that_comes_back_after_the_caller_gave_up_is_ignored() {
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        Box::new(|_: &DecisionRequest| None),
    );
    let mut caller = Ua::new("100", 5100);
    let invite = call(&mut sim, &mut caller, "101");
    assert_eq!(sim.pending.len(), 1, "the policy is still deciding");
    let cancel = caller.cancel(&invite, None);
    sim.send(caller.addr, cancel);
    assert!(sim.statuses(caller.addr).ends_with(&[200, 487]));
    sim.decide(ring(&["101"], 20, RingMode::Simultaneous));
    assert!(sim.take("127.0.0.1:6001".parse().expect("addr")).is_empty());
    assert_eq!(sim.records.len(), 1);
}

#[test]
fn a_fallback_decision_after_a_fault_is_carried_out_like_any_other() {
    // The runtime answers a faulty module's call with the built-in
    // policy's decision, or (when that fails too) a rejection.
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[],
        Box::new(|_: &DecisionRequest| None),
    );
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "101");
    sim.decide(reject(500));
    assert_eq!(sim.statuses(caller.addr), [100, 500]);
    assert_eq!(sim.records[0].outcome, "rejected");
}

#[test]
fn a_call_asking_too_many_steps_is_refused_with_480() {
    // A policy that rings an extension without devices, again and again.
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[],
        Box::new(|_: &DecisionRequest| Some(ring(&["105"], 5, RingMode::Simultaneous))),
    );
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "105");
    assert_eq!(sim.asked.len(), 8);
    assert!(
        sim.asked
            .last()
            .is_some_and(|r| r.history.iter().all(|a| a.outcome == Outcome::Offline))
    );
    assert_eq!(sim.statuses(caller.addr), [100, 480]);
}

#[test]
fn no_free_media_ports_fail_the_step() {
    let mut sim = one_device();
    sim.ports_exhausted = true;
    // Use up the slots reserved before the ports ran out.
    for n in 0..8u16 {
        let mut caller = Ua::new("100", 5200 + n);
        call(&mut sim, &mut caller, "101");
    }
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "101");
    assert_eq!(last_outcome(&sim), Some(Outcome::Failed));
    assert_eq!(sim.statuses(caller.addr), [100, 480]);
}

/// Every final status a device may answer, in both states a branch can be
/// in before it answers: what the policy is told, and that the failure is
/// acknowledged.
#[test]
fn every_final_status_in_every_state_maps_to_an_outcome() {
    for status in 300..700u16 {
        for ringing in [false, true] {
            let mut sim = one_device();
            let mut caller = Ua::new("100", 5100);
            let d1 = Ua::new("101", 6001);
            call(&mut sim, &mut caller, "101");
            let invite = sim.request(d1.addr, "INVITE");
            if ringing {
                sim.send(d1.addr, d1.answer(&invite, 180));
            }
            let mut response = d1.answer(&invite, status);
            if status == 401 || status == 407 {
                // A device that challenges the engine: nothing to answer.
                response.headers.push(
                    if status == 401 {
                        "WWW-Authenticate"
                    } else {
                        "Proxy-Authenticate"
                    },
                    "Digest realm=\"x\", nonce=\"n\", qop=\"auth\"",
                );
            }
            sim.send(d1.addr, response);
            let expected = match status {
                486 | 600 => Outcome::Busy,
                603 => Outcome::Declined,
                408 | 480 => Outcome::NoAnswer,
                _ => Outcome::Failed,
            };
            assert_eq!(
                last_outcome(&sim),
                Some(expected),
                "{status} (ringing: {ringing})"
            );
            assert_eq!(
                sim.requests(d1.addr, "ACK").len(),
                1,
                "{status} acknowledged"
            );
            let statuses = sim.statuses(caller.addr);
            assert_eq!(statuses.last(), Some(&480), "{status}: {statuses:?}");
        }
    }
}

#[test]
fn early_media_reaches_the_caller_once_anchored() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    call(&mut sim, &mut caller, "101");
    let invite = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&invite, 183));
    sim.send(d1.addr, d1.answer(&invite, 183));
    let provisional: Vec<Response> = sim
        .responses(caller.addr)
        .into_iter()
        .filter(|r| r.status == 183)
        .collect();
    assert_eq!(provisional.len(), 2);
    let body = String::from_utf8_lossy(&provisional[0].body).into_owned();
    let slot = sim
        .media
        .iter()
        .find_map(|m| match m {
            MediaCommand::Start { slot, .. } => Some(*slot),
            _ => None,
        })
        .expect("media started");
    assert!(
        body.contains(&format!("m=audio {} ", slot.a_port)),
        "{body}"
    );
    assert!(
        provisional[1].body.is_empty(),
        "early media is offered once"
    );
    // The relay learns where each party receives.
    let announced = sim
        .media
        .iter()
        .filter(|m| matches!(m, MediaCommand::Announce { .. }))
        .count();
    assert_eq!(announced, 2);
}

/// An offer as a browser makes it: full ICE, DTLS-SRTP, G.711.
fn browser_offer() -> String {
    let mut rtc = str0m::Rtc::builder()
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(std::time::Instant::now());
    let candidate = str0m::Candidate::host("127.0.0.1:40000".parse().expect("an address"), "udp")
        .expect("a candidate");
    rtc.add_local_candidate(candidate);
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    );
    let (offer, _) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

#[test]
fn a_browser_callers_callee_is_announced_to_the_relay() {
    // A callee that waits to hear before it speaks (an echo, a paging
    // speaker) must still get the browser's audio: the relay cannot wait
    // for the callee's first packet to learn where it receives.
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    let offer = browser_offer();
    let mut invite = caller.invite("101");
    invite.body = offer.into_bytes();
    call_with(&mut sim, &mut caller, invite);
    let to_device = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&to_device, 200));
    let ok = sim.response(caller.addr, 200);
    assert!(
        String::from_utf8_lossy(&ok.body).contains("UDP/TLS/RTP/SAVPF"),
        "the browser is answered by a WebRTC leg: {}",
        String::from_utf8_lossy(&ok.body)
    );
    let callee_media = std::net::SocketAddr::new(d1.addr.ip(), d1.addr.port() + 1000);
    assert!(
        sim.media.iter().any(|m| matches!(
            m,
            MediaCommand::Announce { side: Side::B, address, .. } if *address == callee_media
        )),
        "{:?}",
        sim.media
    );
}

#[test]
fn an_offerless_invite_gets_the_callees_offer_and_its_ack_carries_the_answer() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    let mut invite = caller.invite("101");
    invite.body.clear();
    invite.headers.remove("Content-Type");
    let invite = call_with(&mut sim, &mut caller, invite);
    let to_device = sim.request(d1.addr, "INVITE");
    assert!(to_device.body.is_empty(), "no offer to pass on");
    sim.send(d1.addr, d1.answer(&to_device, 200));
    assert!(
        sim.requests(d1.addr, "ACK").is_empty(),
        "the device's offer waits for the caller's answer"
    );
    let ok = sim.response(caller.addr, 200);
    assert!(!ok.body.is_empty(), "the callee's offer, anchored");
    let mut ack = ack_ok(&mut caller, &invite, &ok);
    ack.headers.push("Content-Type", "application/sdp");
    ack.body = sim::sdp(4010);
    sim.send(caller.addr, ack);
    let forwarded = sim.request(d1.addr, "ACK");
    let answer = String::from_utf8_lossy(&forwarded.body).into_owned();
    assert!(answer.contains("m=audio "), "{answer}");
    assert!(!answer.contains("m=audio 4010 "), "anchored: {answer}");
}

#[test]
fn a_2xx_after_the_caller_gave_up_is_acknowledged_and_hung_up() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    let invite = call(&mut sim, &mut caller, "101");
    let to_device = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&to_device, 180));
    let cancel = caller.cancel(&invite, None);
    sim.send(caller.addr, cancel);
    // The device answered before the CANCEL reached it.
    sim.send(d1.addr, d1.answer(&to_device, 200));
    assert_eq!(sim.requests(d1.addr, "ACK").len(), 1);
    assert_eq!(sim.requests(d1.addr, "BYE").len(), 1);
    assert!(sim.statuses(caller.addr).ends_with(&[200, 487]));
    assert_eq!(sim.records[0].outcome, "cancelled");
}

#[test]
fn a_second_device_answering_too_is_acknowledged_and_hung_up() {
    let mut sim = two_devices(config());
    let mut caller = Ua::new("100", 5100);
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("101", 6002));
    call(&mut sim, &mut caller, "101");
    let (i1, i2) = (
        sim.request(d1.addr, "INVITE"),
        sim.request(d2.addr, "INVITE"),
    );
    sim.send(d1.addr, d1.answer(&i1, 200));
    sim.send(d2.addr, d2.answer(&i2, 200));
    assert_eq!(sim.requests(d1.addr, "ACK").len(), 1);
    assert!(sim.requests(d1.addr, "BYE").is_empty(), "the winner stays");
    assert_eq!(sim.requests(d2.addr, "ACK").len(), 1);
    assert_eq!(
        sim.requests(d2.addr, "BYE").len(),
        1,
        "the late one is hung up"
    );
    let oks = sim
        .responses(caller.addr)
        .into_iter()
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(oks, 1, "the caller is answered once");
}

#[test]
fn silence_from_both_parties_ends_a_call_unless_it_is_on_hold() {
    for held in [false, true] {
        let mut sim = one_device();
        let mut caller = Ua::new("100", 5100);
        let d1 = Ua::new("101", 6001);
        let (invite, ok, _) = connected_call(&mut sim, &mut caller, &d1);
        if held {
            let mut dialog = caller.dialog(&invite, &ok);
            let mut hold = caller.stamped(dialog.request(Method::from_token("INVITE"), None));
            hold.headers.push("Content-Type", "application/sdp");
            let mut body = String::from_utf8_lossy(&sim::sdp(4000)).into_owned();
            body.push_str("a=sendonly\r\n");
            hold.body = body.into_bytes();
            sim.send(caller.addr, hold);
        }
        let call = sim
            .media
            .iter()
            .find_map(|m| match m {
                MediaCommand::Start { call, .. } => Some(*call),
                _ => None,
            })
            .expect("media started");
        for side in [edgepbx_media::relay::Side::A, edgepbx_media::relay::Side::B] {
            sim.engine.handle_media_event(
                sim.now,
                sim.wall,
                call,
                edgepbx_media::relay::Event::Silent(side),
            );
            sim.drain();
        }
        if held {
            assert!(sim.records.is_empty(), "a held call is silent on purpose");
        } else {
            assert_eq!(sim.records[0].cause, "no media");
            assert_eq!(sim.requests(caller.addr, "BYE").len(), 1);
            assert_eq!(sim.requests(d1.addr, "BYE").len(), 1);
        }
    }
}

#[test]
fn a_call_ends_at_its_maximum_duration() {
    let mut config = config();
    config.calls.max_duration_secs = 3600;
    let mut sim = Sim::new(config, acme(false, &[]), &[("101", 6001)], ring_dialled(20));
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    connected_call(&mut sim, &mut caller, &d1);
    sim.advance(Duration::from_secs(3599));
    assert!(sim.records.is_empty());
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.records[0].cause, "maximum duration");
    assert_eq!(sim.records[0].duration_secs, 3600);
}

#[test]
fn a_device_that_never_answers_counts_as_no_answer_after_timer_b() {
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        ring_dialled(60),
    );
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "101");
    // No 100, no 180: the INVITE is retransmitted, then timer B (64 T1).
    sim.advance(Duration::from_secs(33));
    assert_eq!(last_outcome(&sim), Some(Outcome::NoAnswer));
    assert!(
        sim.requests("127.0.0.1:6001".parse().expect("addr"), "INVITE")
            .len()
            > 1,
        "retransmitted over UDP"
    );
}

#[test]
fn a_carriers_call_to_a_did_rings_its_extension_without_a_challenge() {
    let mut sim = Sim::new(
        config(),
        acme(true, &[]),
        &[("100", 6000)],
        ring_dialled(20),
    );
    let mut carrier = Ua::at("0612345678", CARRIER);
    let mut invite = carrier.invite("0140000100");
    invite.uri = "sip:0140000100@127.0.0.1".into();
    sim.send(carrier.addr, invite);
    assert_eq!(sim.statuses(carrier.addr), [100]);
    assert_eq!(sim.asked[0].dialled, "100");
    assert_eq!(sim.asked[0].caller.number, "0612345678");
    let to_device = sim.request("127.0.0.1:6000".parse().expect("addr"), "INVITE");
    assert!(
        to_device
            .headers
            .get("From")
            .is_some_and(|f| f.contains("<sip:0612345678@acme.test>")),
        "{:?}",
        to_device.headers.get("From")
    );
    // A number that is not one of the trunk's DIDs is refused.
    let mut other = carrier.invite("0149999999");
    other.uri = "sip:0149999999@127.0.0.1".into();
    sim.send(carrier.addr, other);
    assert_eq!(sim.statuses(carrier.addr), [404]);
}

#[test]
fn tenants_sharing_a_carrier_each_receive_their_own_dids() {
    let mut sim = Sim::new(
        config(),
        acme(true, &[]),
        &[("100", 6000)],
        ring_dialled(20),
    );
    sim.set_tenants(vec![acme(true, &[]), beta_sharing_the_carrier()]);
    let mut carrier = Ua::at("0612345678", CARRIER);
    for (did, tenant, number) in [("0150000200", "BETA", "200"), ("0140000100", "ACME", "100")] {
        let mut invite = carrier.invite(did);
        invite.uri = format!("sip:{did}@127.0.0.1");
        sim.send(carrier.addr, invite);
        let asked = sim.asked.last().expect("a routing decision");
        assert_eq!(
            (asked.tenant.code.as_str(), asked.dialled.as_str()),
            (tenant, number),
            "{did}"
        );
    }
    // A DID neither has is refused.
    let mut other = carrier.invite("0149999999");
    other.uri = "sip:0149999999@127.0.0.1".into();
    sim.send(carrier.addr, other);
    assert!(sim.statuses(carrier.addr).contains(&404));
}

#[test]
fn a_decision_that_never_comes_back_refuses_the_call_after_ten_seconds() {
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        Box::new(|_: &DecisionRequest| None),
    );
    let mut caller = Ua::new("100", 5100);
    call(&mut sim, &mut caller, "101");
    sim.advance(Duration::from_millis(9_900));
    assert_eq!(sim.statuses(caller.addr), [100]);
    sim.advance(Duration::from_millis(200));
    assert_eq!(sim.statuses(caller.addr), [500]);
    assert_eq!(sim.records[0].outcome, "failed");
    // The decision coming back after all changes nothing.
    sim.decide(ring(&["101"], 20, RingMode::Simultaneous));
    assert!(sim.take("127.0.0.1:6001".parse().expect("addr")).is_empty());
}

#[test]
fn ports_freed_by_a_call_are_bound_again_for_the_next() {
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        ring_dialled(20),
    );
    // Every port is taken: the eight slots bound at start go to eight
    // calls, and binding more fails.
    sim.ports_exhausted = true;
    let mut callers: Vec<(Ua, edgepbx_sip::Request)> = Vec::new();
    for n in 0..8u16 {
        let mut caller = Ua::new("100", 5200 + n);
        let invite = call(&mut sim, &mut caller, "101");
        callers.push((caller, invite));
    }
    // One call ends, and its ports are free again.
    sim.ports_exhausted = false;
    let (caller, invite) = &callers[0];
    sim.send(caller.addr, caller.cancel(invite, None));
    let mut next = Ua::new("100", 5300);
    call(&mut sim, &mut next, "101");
    assert_ne!(last_outcome(&sim), Some(Outcome::Failed));
    assert_eq!(sim.statuses(next.addr), [100], "it rings");
}

#[test]
fn a_call_that_ended_ends_once_while_a_branch_still_cancels() {
    let mut config = config();
    config.calls.max_duration_secs = 10;
    let mut sim = two_devices(config);
    let mut caller = Ua::new("100", 5100);
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("101", 6002));
    let invite = call(&mut sim, &mut caller, "101");
    let (i1, _i2) = (
        sim.request(d1.addr, "INVITE"),
        sim.request(d2.addr, "INVITE"),
    );
    sim.send(d1.addr, d1.answer(&i1, 200));
    // The loser answers its CANCEL but never its INVITE.
    let cancel = sim.request(d2.addr, "CANCEL");
    sim.send(d2.addr, d2.answer(&cancel, 200));
    let ok = sim.response(caller.addr, 200);
    sim.send(caller.addr, ack_ok(&mut caller, &invite, &ok));
    let mut dialog = caller.dialog(&invite, &ok);
    let bye = caller.stamped(dialog.request(Method::from_token("BYE"), None));
    sim.send(caller.addr, bye);
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.records.len(), 1, "one record: {:?}", sim.records);
    assert_eq!(sim.records[0].cause, "caller hung up");
}

#[test]
fn a_session_refresh_without_a_body_is_answered_here() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    let (invite, ok, _) = connected_call(&mut sim, &mut caller, &d1);
    // JsSIP's session timer: an UPDATE without a body every 45 s.
    let mut a_dialog = caller.dialog(&invite, &ok);
    let mut update = caller.stamped(a_dialog.request(Method::from_token("UPDATE"), None));
    update.headers.push("Session-Expires", "90;refresher=uac");
    update.headers.push("Supported", "timer");
    sim.send(caller.addr, update);
    let answer = sim.response(caller.addr, 200);
    assert_eq!(
        answer.headers.get("Session-Expires"),
        Some("90;refresher=uac")
    );
    assert_eq!(answer.headers.get("Require"), Some("timer"));
    assert!(answer.headers.get("Contact").is_some());
    // The other party and the media are not disturbed.
    assert!(sim.take(d1.addr).is_empty());
    assert!(sim.records.is_empty(), "the call goes on");
}

#[test]
fn shutdown_ends_every_call_with_its_byes_and_records() {
    let mut sim = one_device();
    let mut caller = Ua::new("100", 5100);
    let d1 = Ua::new("101", 6001);
    connected_call(&mut sim, &mut caller, &d1);
    // A second caller is still ringing the device.
    let mut waiting = Ua::new("102", 5102);
    call(&mut sim, &mut waiting, "101");
    let ringing = sim.request(d1.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&ringing, 180));
    let _ = sim.take(waiting.addr);

    let (now, wall) = (sim.now, sim.wall);
    sim.engine.handle_shutdown(now, wall);
    sim.drain();
    // Both parties of the answered call get a BYE; the ringing device a
    // CANCEL, and its caller a 503.
    let bye_to_caller = sim.request(caller.addr, "BYE");
    let bye_to_device = sim.request(d1.addr, "BYE");
    let cancel = sim.request(d1.addr, "CANCEL");
    assert_eq!(sim.statuses(waiting.addr), [503]);
    assert!(!sim.engine.is_settled(), "the BYEs are not answered yet");
    sim.send(caller.addr, caller.answer(&bye_to_caller, 200));
    sim.send(d1.addr, d1.answer(&bye_to_device, 200));
    sim.send(d1.addr, d1.answer(&cancel, 200));
    sim.send(d1.addr, d1.answer(&ringing, 487));
    assert!(sim.engine.is_settled());
    let mut causes: Vec<&str> = sim.records.iter().map(|r| r.cause.as_str()).collect();
    causes.sort_unstable();
    assert_eq!(causes, ["server shutting down", "server shutting down"]);
}
