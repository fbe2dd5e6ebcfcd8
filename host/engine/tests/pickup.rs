//! Call pickup in virtual time: by feature code, by Replaces naming the
//! dialog a BLF NOTIFY showed, by group; and what a picker hears when
//! nothing rings.

mod sim;

use std::time::SystemTime;

use edgepbx_model::{Group, GroupKind, GroupStrategy};
use edgepbx_sip::{Request, Response};
use sim::{Sim, Ua, acme, call, call_with, config, ring_dialled};

const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// ACME with group 600 (101 and 102), 101 on one device at port 6001.
fn world() -> Sim {
    let mut tenant = acme(false, &[]);
    tenant.add_group(Group {
        tenant: "ACME".into(),
        number: "600".into(),
        name: "Sales".into(),
        kind: GroupKind::Ring,
        strategy: GroupStrategy::RingAll,
        members: vec!["101".into(), "102".into()],
        ring_timeout_secs: 20,
        no_answer: None,
        updated_at: SystemTime::UNIX_EPOCH,
    });
    Sim::new(config(), tenant, &[("101", 6001)], ring_dialled(20))
}

/// 100 calls 101, whose device rings; returns the caller and the
/// device's INVITE.
fn ringing_101(sim: &mut Sim) -> (Ua, Request) {
    let mut caller = Ua::new("100", 7000);
    call(sim, &mut caller, "101");
    let device = Ua::new("101", 6001);
    let invite = sim.request(device.addr, "INVITE");
    sim.send(device.addr, device.answer(&invite, 180));
    let _ = sim.responses(caller.addr);
    (caller, invite)
}

/// The picker's call went through: it and the caller got a 200 with a
/// description on the relay, the device was cancelled as answered
/// elsewhere.
fn assert_picked_up(sim: &mut Sim, caller: &Ua, picker: &Ua, device_invite: &Request) {
    let to_picker = sim.response(picker.addr, 200);
    let body = String::from_utf8_lossy(&to_picker.body).into_owned();
    assert!(
        body.contains("m=audio 2000"),
        "anchored on the relay: {body}"
    );
    let to_caller = sim.response(caller.addr, 200);
    let body = String::from_utf8_lossy(&to_caller.body).into_owned();
    assert!(
        body.contains("m=audio 2000"),
        "anchored on the relay: {body}"
    );
    let device = Ua::new("101", 6001);
    let cancel = sim.request(device.addr, "CANCEL");
    assert_eq!(cancel.headers.get("Reason"), Some(COMPLETED_ELSEWHERE));
    sim.send(device.addr, device.answer(&cancel, 200));
    sim.send(device.addr, device.answer(device_invite, 487));
    let calls = sim.engine.active_calls("ACME", sim.wall);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].state, "answered");
    assert_eq!(
        calls[0].answered_by.as_deref(),
        Some(picker.number.as_str())
    );
}

#[test]
fn a_feature_code_picks_up_the_call_ringing_an_extension() {
    let mut sim = world();
    let (caller, device_invite) = ringing_101(&mut sim);
    let mut picker = Ua::new("103", 7003);
    call(&mut sim, &mut picker, "**101");
    assert_picked_up(&mut sim, &caller, &picker, &device_invite);
}

#[test]
fn a_tenant_chooses_its_pickup_code() {
    let mut tenant = acme(false, &[]);
    tenant.features.pickup_code = "*9".into();
    let mut sim = Sim::new(config(), tenant, &[("101", 6001)], ring_dialled(20));
    let (caller, device_invite) = ringing_101(&mut sim);
    let mut picker = Ua::new("103", 7003);
    call(&mut sim, &mut picker, "*9101");
    assert_picked_up(&mut sim, &caller, &picker, &device_invite);
}

#[test]
fn replaces_names_the_ringing_call_a_blf_key_showed() {
    let mut sim = world();
    let (caller, device_invite) = ringing_101(&mut sim);
    let id = sim.engine.active_calls("ACME", sim.wall)[0].id.clone();
    let mut picker = Ua::new("103", 7003);
    let mut invite = picker.invite("101");
    invite.headers.push(
        "Replaces",
        format!("{id};to-tag={id}-l;from-tag={id}-r;early-only"),
    );
    invite.headers.push("Require", "replaces");
    call_with(&mut sim, &mut picker, invite);
    assert_picked_up(&mut sim, &caller, &picker, &device_invite);
}

#[test]
fn replacing_a_call_already_picked_up_is_486() {
    let mut sim = world();
    let (caller, device_invite) = ringing_101(&mut sim);
    let id = sim.engine.active_calls("ACME", sim.wall)[0].id.clone();
    let replaces = format!("{id};to-tag={id}-l;from-tag={id}-r;early-only");
    let mut first = Ua::new("103", 7003);
    let mut invite = first.invite("101");
    invite.headers.push("Replaces", replaces.clone());
    call_with(&mut sim, &mut first, invite);
    assert_picked_up(&mut sim, &caller, &first, &device_invite);
    let mut second = Ua::new("104", 7004);
    let mut invite = second.invite("101");
    invite.headers.push("Replaces", replaces);
    call_with(&mut sim, &mut second, invite);
    assert_eq!(final_status(&mut sim, &second), 486);
}

#[test]
fn group_pickup_answers_a_call_ringing_a_fellow_member() {
    let mut sim = world();
    let (caller, device_invite) = ringing_101(&mut sim);
    let mut picker = Ua::new("102", 7002);
    call(&mut sim, &mut picker, "*8");
    assert_picked_up(&mut sim, &caller, &picker, &device_invite);
}

#[test]
fn nothing_to_pick_up_is_480_and_an_unknown_dialog_481() {
    let mut sim = world();
    let mut picker = Ua::new("103", 7003);
    call(&mut sim, &mut picker, "**101");
    assert_eq!(final_status(&mut sim, &picker), 480);
    // 103 is in no group: nothing rings for it even while 101 rings.
    let (_caller, _) = ringing_101(&mut sim);
    call(&mut sim, &mut picker, "*8");
    assert_eq!(final_status(&mut sim, &picker), 480);
    let mut invite = picker.invite("101");
    invite
        .headers
        .push("Replaces", "no-such-call;to-tag=a;from-tag=b");
    call_with(&mut sim, &mut picker, invite);
    assert_eq!(final_status(&mut sim, &picker), 481);
    // The ringing call's id with tags it was never given: 481 too.
    let id = sim.engine.active_calls("ACME", sim.wall)[0].id.clone();
    let mut invite = picker.invite("101");
    invite
        .headers
        .push("Replaces", format!("{id};to-tag=x;from-tag=y"));
    call_with(&mut sim, &mut picker, invite);
    assert_eq!(final_status(&mut sim, &picker), 481);
    // The call still rings 101.
    assert_eq!(
        sim.engine.active_calls("ACME", sim.wall)[0].state,
        "ringing"
    );
}

fn final_status(sim: &mut Sim, ua: &Ua) -> u16 {
    let finals: Vec<Response> = sim
        .responses(ua.addr)
        .into_iter()
        .filter(|r| r.status >= 200)
        .collect();
    finals.last().map(|r| r.status).expect("a final answer")
}
