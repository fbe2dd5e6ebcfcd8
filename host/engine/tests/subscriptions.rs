//! Subscriptions in virtual time: a watcher's SUBSCRIBE, its NOTIFYs
//! through a call's life, refresh, expiry, unsubscription, a watcher that
//! stops answering, the answers that reveal nothing, limits, groups and
//! presence.

mod sim;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgepbx_engine::TenantTable;
use edgepbx_engine::routing::{
    Action, Decision, DecisionRequest, Ring, RingMode, RingTarget, Target,
};
use edgepbx_engine::subscriptions::SubscriptionsConfig;
use edgepbx_model::{CallSettings, Group, GroupKind, GroupStrategy};
use edgepbx_sip::{Method, Request, Response};
use sim::watcher::Watcher;
use sim::{Sim, Ua, acme, call, config, one_device, ring_dialled};

fn body(r: &Request) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The `<state>` elements of a dialog-info body, in order.
fn states(r: &Request) -> Vec<String> {
    body(r)
        .split("<state>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap_or("").to_owned())
        .collect()
}

fn version(r: &Request) -> u32 {
    let b = body(r);
    let document = b.split("<dialog-info").nth(1).expect("a dialog-info");
    let v = document.split("version=\"").nth(1).expect("a version");
    v.split('"')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

#[test]
fn a_watcher_sees_a_call_ring_connect_and_end() {
    let mut sim = Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001), ("101", 6002)],
        ring_dialled(20),
    );
    let mut watcher = Watcher::new("102", 7002);
    let ok = watcher.subscribe(&mut sim, "101", "dialog", 600);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers.get("Expires"), Some("600"));
    let first = watcher.notify(&mut sim);
    assert_eq!(
        first.headers.get("Subscription-State"),
        Some("active;expires=600")
    );
    assert_eq!(
        first.headers.get("Content-Type"),
        Some("application/dialog-info+xml")
    );
    assert_eq!(states(&first), ["terminated"]);
    assert_eq!(version(&first), 0);

    // 100 calls 101, whose two devices ring: one early dialog.
    let mut caller = Ua::new("100", 7000);
    let invite = call(&mut sim, &mut caller, "101");
    let (d1, d2) = (Ua::new("101", 6001), Ua::new("101", 6002));
    let one = sim.request(d1.addr, "INVITE");
    let two = sim.request(d2.addr, "INVITE");
    sim.send(d1.addr, d1.answer(&one, 180));
    sim.send(d2.addr, d2.answer(&two, 180));
    let ringing = watcher.notify(&mut sim);
    assert_eq!(states(&ringing), ["early"]);
    let b = body(&ringing);
    assert!(b.contains("direction=\"recipient\""), "{b}");
    assert!(
        b.contains("display=\"User 100\">sip:100@acme.test</identity>"),
        "{b}"
    );
    assert_eq!(version(&ringing), 1);

    // The first device answers: the call is confirmed, and the cancelled
    // branch never shows as terminated.
    sim.send(d1.addr, d1.answer(&one, 200));
    let cancel = sim.request(d2.addr, "CANCEL");
    sim.send(d2.addr, d2.answer(&cancel, 200));
    sim.send(d2.addr, d2.answer(&two, 487));
    let notifies = watcher.notifies(&mut sim, 200);
    assert!(!notifies.is_empty());
    for n in &notifies {
        assert_eq!(states(n), ["confirmed"], "{}", body(n));
    }

    // The caller hangs up (the engine's 200 is acknowledged first).
    let ok = sim.response(caller.addr, 200);
    let mut dialog = caller.dialog(&invite, &ok);
    let ack = caller.stamped(dialog.ack(1));
    sim.send(caller.addr, ack);
    let bye = caller.stamped(dialog.request(Method::from_token("BYE"), None));
    sim.send(caller.addr, bye);
    let ended = watcher.notify(&mut sim);
    assert_eq!(states(&ended), ["terminated"]);
    assert!(
        !body(&ended).contains("<dialog id=\"101\""),
        "the call's own id"
    );
    assert!(version(&ended) > version(&ringing));
}

#[test]
fn the_caller_is_the_initiator_of_its_call() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "100", "dialog", 600);
    watcher.notify(&mut sim);
    let mut caller = Ua::new("100", 7000);
    call(&mut sim, &mut caller, "101");
    let n = watcher.notify(&mut sim);
    let b = body(&n);
    assert!(b.contains("direction=\"initiator\""), "{b}");
    assert!(b.contains("sip:101@acme.test"), "{b}");
    assert_eq!(states(&n), ["early"]);
}

#[test]
fn only_one_notify_is_in_flight_and_the_newest_state_follows_it() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "101", "dialog", 600);
    let first = sim.requests(watcher.ua.addr, "NOTIFY");
    assert_eq!(first.len(), 1);
    // Unanswered: a call rings and is answered meanwhile.
    let mut caller = Ua::new("100", 7000);
    call(&mut sim, &mut caller, "101");
    let device = Ua::new("101", 6001);
    let to_device = sim.request(device.addr, "INVITE");
    sim.send(device.addr, device.answer(&to_device, 180));
    sim.send(device.addr, device.answer(&to_device, 200));
    assert!(sim.requests(watcher.ua.addr, "NOTIFY").is_empty());
    // The first NOTIFY answered: the state now follows, the states it
    // went through meanwhile skipped.
    sim.send(watcher.ua.addr, Response::for_request(&first[0], 200, None));
    let next = watcher.notify(&mut sim);
    assert_eq!(states(&next), ["confirmed"]);
    assert_eq!(version(&next), 1);
}

#[test]
fn refresh_unsubscribe_and_expiry_end_with_a_terminated_notify() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "101", "dialog", 120);
    watcher.notify(&mut sim);

    // A refresh renews it and tells the state again (version goes on).
    let ok = watcher.subscribe(&mut sim, "101", "dialog", 300);
    assert_eq!(ok.status, 200);
    let again = watcher.notify(&mut sim);
    assert_eq!(
        again.headers.get("Subscription-State"),
        Some("active;expires=300")
    );
    assert_eq!(version(&again), 1);

    // Expires: 0 ends it.
    let ok = watcher.subscribe(&mut sim, "101", "dialog", 0);
    assert_eq!(ok.status, 200);
    let last = watcher.notify(&mut sim);
    assert_eq!(
        last.headers.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    // Nothing of it is left: a refresh is 481.
    let request = watcher.subscribe_request("101", "dialog", 300);
    sim.send(watcher.ua.addr, request);
    assert_eq!(sim.statuses(watcher.ua.addr), [481]);

    // A second subscription that is never refreshed expires.
    let mut other = Watcher::new("103", 7003);
    other.subscribe(&mut sim, "101", "dialog", 60);
    other.notify(&mut sim);
    sim.advance(Duration::from_secs(61));
    // Unanswered during the wait: the NOTIFY was retransmitted.
    let sent = other.notifies(&mut sim, 200);
    assert!(
        sent.iter()
            .all(|n| n.headers.get("CSeq") == sent[0].headers.get("CSeq"))
    );
    let expired = &sent[0];
    assert_eq!(
        expired.headers.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(sim.engine.subscriptions(&aor("103")).is_empty());
}

fn aor(number: &str) -> edgepbx_engine::registrar::Aor {
    edgepbx_engine::registrar::Aor {
        tenant: "ACME".into(),
        extension: number.into(),
    }
}

/// Makes the line of 101 change: a call rings it and is cancelled.
fn ring_and_cancel(sim: &mut Sim) {
    let mut caller = Ua::new("100", 7000);
    let invite = call(sim, &mut caller, "101");
    sim.send(caller.addr, caller.cancel(&invite, None));
    let device = Ua::new("101", 6001);
    let to_device = sim.request(device.addr, "INVITE");
    let cancel = sim.request(device.addr, "CANCEL");
    sim.send(device.addr, device.answer(&cancel, 200));
    sim.send(device.addr, device.answer(&to_device, 487));
}

#[test]
fn a_watcher_that_refuses_or_ignores_notifies_is_dropped() {
    let mut sim = one_device();
    // One answers 481: gone at once.
    let mut refusing = Watcher::new("102", 7002);
    refusing.subscribe(&mut sim, "101", "dialog", 600);
    refusing.notifies(&mut sim, 481);
    assert!(sim.engine.subscriptions(&aor("102")).is_empty());

    // One never answers: its NOTIFY is retransmitted, then given up after
    // 64·T1, and the subscription with it.
    let mut silent = Watcher::new("103", 7003);
    silent.subscribe(&mut sim, "101", "dialog", 600);
    assert_eq!(sim.engine.subscriptions(&aor("103")).len(), 1);
    sim.advance(Duration::from_secs(33));
    let sent = sim.requests(silent.ua.addr, "NOTIFY");
    assert!(sent.len() > 5, "retransmitted: {}", sent.len());
    assert!(sim.engine.subscriptions(&aor("103")).is_empty());
    ring_and_cancel(&mut sim);
    assert!(sim.requests(silent.ua.addr, "NOTIFY").is_empty());
    assert!(sim.requests(refusing.ua.addr, "NOTIFY").is_empty());
}

#[test]
fn answers_to_refused_subscriptions_reveal_nothing() {
    let mut globex = edgepbx_engine::Tenant::new("GLOBEX".into(), "globex.test".into());
    globex.add_extension(
        edgepbx_engine::tenants::Extension {
            number: "555".into(),
            name: "Elsewhere".into(),
            aliases: Vec::new(),
            settings: CallSettings::default(),
        },
        [],
    );
    let mut sim = one_device();
    let table = TenantTable::new([acme(false, &[]), globex]);
    sim.engine
        .handle_tenants(sim.now, sim.wall, Arc::new(table));
    sim.drain();
    let mut watcher = Watcher::new("102", 7002);

    // Without credentials: 407, nothing else.
    let request = watcher.subscribe_request("101", "dialog", 600);
    sim.send(watcher.ua.addr, request);
    assert_eq!(sim.statuses(watcher.ua.addr), [407]);

    // Another tenant's extension (by its domain or its suffix) and a
    // number that exists nowhere: the same 404.
    let mut answers = Vec::new();
    for target in ["555-GLOBEX", "999"] {
        watcher.tag = None;
        let r = watcher.subscribe(&mut sim, target, "dialog", 600);
        answers.push((r.status, r.reason.clone()));
    }
    watcher.tag = None;
    let mut request = watcher.subscribe_request("555", "dialog", 600);
    request.uri = "sip:555@globex.test".into();
    sim.send(watcher.ua.addr, request.clone());
    let challenge = sim.response(watcher.ua.addr, 407);
    let again = watcher.ua.with_credentials(&request, &challenge);
    sim.send(watcher.ua.addr, again);
    let r = sim.response(watcher.ua.addr, 404);
    answers.push((r.status, r.reason));
    assert!(
        answers.iter().all(|a| *a == (404, "Not Found".to_owned())),
        "{answers:?}"
    );

    // Another extension's mailbox: 403. An unknown package: 489.
    assert_eq!(
        watcher
            .subscribe(&mut sim, "101", "message-summary", 600)
            .status,
        403
    );
    let request = watcher.subscribe_request("101", "reg", 600);
    sim.send(watcher.ua.addr, request);
    let r = sim.response(watcher.ua.addr, 489);
    assert_eq!(
        r.headers.get("Allow-Events"),
        Some("dialog, presence, message-summary, as-feature-event")
    );
    // Too short: 423 with the minimum.
    let request = watcher.subscribe_request("101", "dialog", 10);
    sim.send(watcher.ua.addr, request);
    let r = sim.response(watcher.ua.addr, 423);
    assert_eq!(r.headers.get("Min-Expires"), Some("60"));
    assert!(sim.engine.subscriptions(&aor("102")).is_empty());
}

#[test]
fn a_device_past_its_limit_is_refused_with_a_reason() {
    let mut cfg = config();
    cfg.subscriptions = SubscriptionsConfig {
        max_per_device: 2,
        ..SubscriptionsConfig::default()
    };
    let mut sim = Sim::new(cfg, acme(false, &[]), &[("101", 6001)], ring_dialled(20));
    let mut watcher = Watcher::new("102", 7002);
    for (i, target) in ["100", "101", "103"].into_iter().enumerate() {
        watcher.tag = None;
        watcher.call_id = format!("sub-{i}");
        let r = watcher.subscribe(&mut sim, target, "dialog", 600);
        let expected = if i < 2 { 200 } else { 403 };
        assert_eq!(r.status, expected, "{target}");
        if i == 2 {
            assert_eq!(r.reason, "Too Many Subscriptions For This Device");
        }
    }
    assert_eq!(sim.engine.subscriptions(&aor("102")).len(), 2);
}

#[test]
fn a_group_is_ringing_while_its_call_rings_a_member() {
    let mut tenant = acme(false, &[]);
    tenant.add_group(Group {
        tenant: "ACME".into(),
        number: "600".into(),
        name: "Sales".into(),
        kind: GroupKind::Ring,
        strategy: GroupStrategy::RingAll,
        members: vec!["101".into()],
        ring_timeout_secs: 20,
        no_answer: None,
        updated_at: SystemTime::UNIX_EPOCH,
    });
    let policy = Box::new(|r: &DecisionRequest| {
        Some(Decision {
            action: if r.history.is_empty() {
                Action::Ring(Ring {
                    mode: RingMode::Simultaneous,
                    targets: vec![RingTarget {
                        target: Target::Extension("101".into()),
                        timeout_secs: 20,
                    }],
                })
            } else {
                Action::Reject(480)
            },
            presentation: None,
        })
    });
    let mut sim = Sim::new(config(), tenant, &[("101", 6001)], policy);
    let mut watcher = Watcher::new("102", 7002);
    assert_eq!(
        watcher.subscribe(&mut sim, "600", "dialog", 600).status,
        200
    );
    watcher.notify(&mut sim);
    let mut caller = Ua::new("100", 7000);
    call(&mut sim, &mut caller, "600");
    let n = watcher.notify(&mut sim);
    assert_eq!(states(&n), ["early"]);
    assert!(body(&n).contains("entity=\"sip:600@acme.test\""));
}

#[test]
fn presence_follows_devices_calls_and_do_not_disturb() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    assert_eq!(
        watcher.subscribe(&mut sim, "101", "presence", 600).status,
        200
    );
    let n = watcher.notify(&mut sim);
    assert_eq!(n.headers.get("Content-Type"), Some("application/pidf+xml"));
    assert!(body(&n).contains("<basic>open</basic>"), "{}", body(&n));

    // DND set in the configuration: busy.
    let dnd = CallSettings {
        dnd: true,
        ..CallSettings::default()
    };
    let table = TenantTable::new([acme(false, &[("101", dnd)])]);
    sim.engine
        .handle_tenants(sim.now, sim.wall, Arc::new(table));
    sim.drain();
    let n = watcher.notify(&mut sim);
    assert!(body(&n).contains("<rpid:busy/>"), "{}", body(&n));

    // DND off, away: still open, away.
    let away = CallSettings {
        away: true,
        ..CallSettings::default()
    };
    let table = TenantTable::new([acme(false, &[("101", away)])]);
    sim.engine
        .handle_tenants(sim.now, sim.wall, Arc::new(table));
    sim.drain();
    let n = watcher.notify(&mut sim);
    assert!(body(&n).contains("<basic>open</basic>"), "{}", body(&n));
    assert!(body(&n).contains("<rpid:away/>"), "{}", body(&n));

    // 100 (no device, so closed) is watched too: offline.
    let mut other = Watcher::new("103", 7003);
    other.subscribe(&mut sim, "100", "presence", 600);
    let n = other.notify(&mut sim);
    assert!(body(&n).contains("<basic>closed</basic>"), "{}", body(&n));

    // The own mailbox: no messages, well formed.
    let mut mwi = Watcher::new("101", 7004);
    assert_eq!(
        mwi.subscribe(&mut sim, "101", "message-summary", 600)
            .status,
        200
    );
    let n = mwi.notify(&mut sim);
    assert_eq!(
        body(&n),
        "Messages-Waiting: no\r\nMessage-Account: sip:101@acme.test\r\nVoice-Message: 0/0 (0/0)\r\n"
    );
    // A message arrives: the lamp lights with the counts; heard, it goes
    // out.
    sim.engine
        .handle_mailbox(sim.now, sim.wall, aor("101"), 2, 1);
    sim.drain();
    let n = mwi.notify(&mut sim);
    assert!(
        body(&n).starts_with("Messages-Waiting: yes\r\n")
            && body(&n).contains("Voice-Message: 2/1 (0/0)"),
        "{}",
        body(&n)
    );
    sim.engine
        .handle_mailbox(sim.now, sim.wall, aor("101"), 0, 3);
    sim.drain();
    let n = mwi.notify(&mut sim);
    assert!(
        body(&n).contains("Voice-Message: 0/3 (0/0)"),
        "{}",
        body(&n)
    );
    // Another mailbox changing tells this watcher nothing.
    sim.engine
        .handle_mailbox(sim.now, sim.wall, aor("102"), 1, 0);
    sim.drain();
    assert!(sim.requests(mwi.ua.addr, "NOTIFY").is_empty());
}

#[test]
fn feature_keys_change_the_settings_and_the_settings_reach_the_phone() {
    let mut sim = one_device();
    let mut phone = Watcher::new("101", 6001);
    let ok = phone.subscribe(&mut sim, "101", "as-feature-event", 600);
    assert_eq!(ok.status, 200);
    let n = phone.notify(&mut sim);
    assert!(
        n.headers
            .get("Content-Type")
            .is_some_and(|t| t.starts_with("multipart/mixed"))
    );
    assert!(
        body(&n).contains("<doNotDisturbOn>false</doNotDisturbOn>"),
        "{}",
        body(&n)
    );

    // The DND key: the change goes to the store and the phone is shown it.
    let mut request = phone.subscribe_request("101", "as-feature-event", 600);
    request
        .headers
        .push("Content-Type", "application/x-as-feature-event+xml");
    request.body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\
        <SetDoNotDisturb xmlns=\"http://www.ecma-international.org/standards/ecma-323/csta/ed3\">\
        <device>101</device><doNotDisturbOn>true</doNotDisturbOn></SetDoNotDisturb>"
        .to_vec();
    assert_eq!(phone.authenticated(&mut sim, request).status, 200);
    assert_eq!(
        sim.settings,
        [(
            "ACME".into(),
            "101".into(),
            edgepbx_model::FeatureKey::Dnd(true)
        )]
    );
    let n = phone.notify(&mut sim);
    assert!(
        body(&n).contains("<doNotDisturbOn>true</doNotDisturbOn>"),
        "{}",
        body(&n)
    );

    // The store wrote it and the tenant came back: nothing new to show.
    let dnd = CallSettings {
        dnd: true,
        ..CallSettings::default()
    };
    let table = TenantTable::new([acme(false, &[("101", dnd)])]);
    sim.engine
        .handle_tenants(sim.now, sim.wall, Arc::new(table));
    sim.drain();
    assert!(sim.requests(phone.ua.addr, "NOTIFY").is_empty());

    // The console turns DND off and forwards every call: the phone is told.
    let forward = CallSettings {
        forward_unconditional: Some(edgepbx_model::ForwardTarget::Number("105".into())),
        ..CallSettings::default()
    };
    let table = TenantTable::new([acme(false, &[("101", forward)])]);
    sim.engine
        .handle_tenants(sim.now, sim.wall, Arc::new(table));
    sim.drain();
    let n = phone.notify(&mut sim);
    let b = body(&n);
    assert!(b.contains("<doNotDisturbOn>false</doNotDisturbOn>"), "{b}");
    assert!(
        b.contains("<forwardingType>forwardImmediate</forwardingType><forwardStatus>true</forwardStatus><forwardTo>105</forwardTo>"),
        "{b}"
    );

    // A request it cannot read: 400, nothing changed. Another
    // extension's settings: 403.
    let mut request = phone.subscribe_request("101", "as-feature-event", 600);
    request
        .headers
        .push("Content-Type", "application/x-as-feature-event+xml");
    request.body =
        b"<SetDoNotDisturb><doNotDisturbOn>perhaps</doNotDisturbOn></SetDoNotDisturb>".to_vec();
    assert_eq!(phone.authenticated(&mut sim, request).status, 400);
    assert_eq!(sim.settings.len(), 1);
    let mut other = Watcher::new("102", 7002);
    assert_eq!(
        other
            .subscribe(&mut sim, "101", "as-feature-event", 600)
            .status,
        403
    );
}

#[test]
fn the_final_notify_waits_for_the_one_in_flight() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "101", "presence", 600);
    let first = sim.requests(watcher.ua.addr, "NOTIFY");
    assert_eq!(first.len(), 1);
    assert_eq!(
        watcher.subscribe(&mut sim, "101", "presence", 0).status,
        200
    );
    assert!(sim.requests(watcher.ua.addr, "NOTIFY").is_empty());
    sim.send(watcher.ua.addr, Response::for_request(&first[0], 200, None));
    let last = watcher.notify(&mut sim);
    assert_eq!(
        last.headers.get("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(last.headers.get("CSeq"), Some("2 NOTIFY"));
    assert!(sim.engine.subscriptions(&aor("102")).is_empty());
}

#[test]
fn a_private_tenant_shows_the_caller_to_the_called_extension_alone() {
    let mut tenant = acme(false, &[]);
    tenant.features.blf_shows_caller = false;
    let mut sim = Sim::new(config(), tenant, &[("101", 6001)], ring_dialled(20));
    let mut colleague = Watcher::new("102", 7002);
    colleague.subscribe(&mut sim, "101", "dialog", 600);
    colleague.notify(&mut sim);
    let mut own = Watcher::new("101", 7101);
    own.subscribe(&mut sim, "101", "dialog", 600);
    own.notify(&mut sim);
    let mut caller = Ua::new("100", 7000);
    call(&mut sim, &mut caller, "101");
    let seen = body(&colleague.notify(&mut sim));
    assert!(seen.contains("sip:anonymous@acme.test"), "{seen}");
    assert!(
        !seen.contains("User 100") && !seen.contains("sip:100@"),
        "{seen}"
    );
    let seen = body(&own.notify(&mut sim));
    assert!(
        seen.contains("display=\"User 100\">sip:100@acme.test"),
        "{seen}"
    );
}

#[test]
fn a_removed_extension_ends_its_watchers() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "101", "dialog", 600);
    watcher.notify(&mut sim);
    let mut tenant = acme(false, &[]);
    tenant.extensions.remove("101");
    sim.engine
        .handle_tenants(sim.now, sim.wall, Arc::new(TenantTable::new([tenant])));
    sim.drain();
    let last = watcher.notify(&mut sim);
    assert_eq!(
        last.headers.get("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    assert!(sim.engine.subscriptions(&aor("102")).is_empty());
}

#[test]
fn a_devices_subscriptions_are_listed_with_it() {
    let mut sim = one_device();
    // The registered device of 101 (sip:101@127.0.0.1:6001) watches 102.
    let mut phone = Watcher::new("101", 6001);
    assert_eq!(phone.subscribe(&mut sim, "102", "dialog", 600).status, 200);
    phone.notify(&mut sim);
    let devices = sim.engine.devices(&aor("101"));
    assert_eq!(devices.len(), 1);
    let listed = &devices[0].subscriptions;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].package, "dialog");
    assert_eq!(listed[0].target, "102");
    assert_eq!(listed[0].device, "sip:101@127.0.0.1:6001");
    assert_eq!(
        listed[0].expires_at,
        sim.wall + std::time::Duration::from_secs(600)
    );
}

#[test]
fn notifies_go_over_the_connection_the_subscription_came_on() {
    let mut sim = one_device();
    let mut phone = Watcher::new("102", 7002);
    sim.engine.handle_connected(9);
    let request = phone.subscribe_request("101", "dialog", 600);
    sim.send_tcp(9, phone.ua.addr, request.clone());
    let challenge = sim.response(phone.ua.addr, 407);
    let again = phone.ua.with_credentials(&request, &challenge);
    sim.send_tcp(9, phone.ua.addr, again);
    assert_eq!(sim.response(phone.ua.addr, 200).status, 200);
    let notify = sim.request(phone.ua.addr, "NOTIFY");
    assert_eq!(
        sim.flows.get(&phone.ua.addr),
        Some(&edgepbx_engine::Peer::Stream {
            conn: 9,
            addr: phone.ua.addr,
            kind: edgepbx_engine::StreamKind::Tcp,
        })
    );
    assert!(
        notify
            .headers
            .get("Via")
            .is_some_and(|v| v.contains("SIP/2.0/TCP"))
    );
    // The connection closes: the subscription is over, nothing is sent.
    sim.close(9);
    assert!(sim.engine.subscriptions(&aor("102")).is_empty());
    ring_and_cancel(&mut sim);
    assert!(sim.requests(phone.ua.addr, "NOTIFY").is_empty());
}

/// A refresh of `phone`'s feature subscription carrying `body`.
fn press(sim: &mut Sim, phone: &mut Watcher, body: &str) -> Response {
    let mut request = phone.subscribe_request("101", "as-feature-event", 600);
    request
        .headers
        .push("Content-Type", "application/x-as-feature-event+xml");
    request.body = body.as_bytes().to_vec();
    phone.authenticated(sim, request)
}

const DND_ON: &str =
    "<SetDoNotDisturb><device>101</device><doNotDisturbOn>true</doNotDisturbOn></SetDoNotDisturb>";

#[test]
fn feature_keys_cannot_forward_where_the_extension_may_not_call_nor_press_too_fast() {
    let restricted = CallSettings {
        allowed_destinations: edgepbx_model::AllowedDestinations::None,
        ..CallSettings::default()
    };
    let mut sim = Sim::new(
        config(),
        acme(true, &[("101", restricted)]),
        &[("101", 6001)],
        ring_dialled(20),
    );
    let mut phone = Watcher::new("101", 6001);
    phone.subscribe(&mut sim, "101", "as-feature-event", 600);
    phone.notify(&mut sim);
    // Forwarding every call to a premium number: refused, nothing asked.
    let premium = "<SetForwarding><device>101</device><activateForward>true</activateForward>\
        <forwardingType>forwardImmediate</forwardingType><forwardDN>0899123456</forwardDN></SetForwarding>";
    let r = press(&mut sim, &mut phone, premium);
    assert_eq!(
        (r.status, r.reason.as_str()),
        (403, "Destination Not Allowed")
    );
    // To a colleague: allowed.
    let colleague = premium.replace("0899123456", "102");
    assert_eq!(press(&mut sim, &mut phone, &colleague).status, 200);
    assert_eq!(sim.settings.len(), 1);
    phone.notify(&mut sim);
    // A second press within the second is shown as not made.
    sim.advance(std::time::Duration::from_millis(200));
    phone.notifies(&mut sim, 200);
    assert_eq!(press(&mut sim, &mut phone, DND_ON).status, 200);
    assert_eq!(sim.settings.len(), 1);
    let n = phone.notify(&mut sim);
    assert!(
        body(&n).contains("<doNotDisturbOn>false</doNotDisturbOn>"),
        "{}",
        body(&n)
    );
    // Later, it is made; pressing what is already so asks nothing.
    sim.advance(std::time::Duration::from_secs(2));
    phone.notifies(&mut sim, 200);
    assert_eq!(press(&mut sim, &mut phone, DND_ON).status, 200);
    assert_eq!(sim.settings.len(), 2);
    let n = phone.notify(&mut sim);
    assert!(
        body(&n).contains("<doNotDisturbOn>true</doNotDisturbOn>"),
        "{}",
        body(&n)
    );
    sim.advance(std::time::Duration::from_secs(2));
    let off = DND_ON.replace("true", "false");
    phone.notifies(&mut sim, 200);
    press(&mut sim, &mut phone, &off);
    assert_eq!(
        sim.settings.len(),
        2,
        "DND was never stored on: nothing to change"
    );
}

#[test]
fn a_refresh_for_another_package_is_refused_and_reveals_nothing() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "101", "dialog", 600);
    watcher.notify(&mut sim);
    // The dialog subscription to 101, "refreshed" as 101's feature keys.
    let mut request = watcher.subscribe_request("101", "as-feature-event", 600);
    request
        .headers
        .push("Content-Type", "application/x-as-feature-event+xml");
    request.body = DND_ON.as_bytes().to_vec();
    sim.send(watcher.ua.addr, request);
    assert_eq!(sim.statuses(watcher.ua.addr), [489]);
    assert!(sim.settings.is_empty());
    assert!(sim.requests(watcher.ua.addr, "NOTIFY").is_empty());
}

#[test]
fn a_refused_notify_keeps_the_subscription_and_a_moved_device_is_followed() {
    let mut sim = one_device();
    let mut watcher = Watcher::new("102", 7002);
    watcher.subscribe(&mut sim, "101", "dialog", 600);
    watcher.notifies(&mut sim, 503);
    assert_eq!(sim.engine.subscriptions(&aor("102")).len(), 1);
    // The device moved (a new NAT binding) and refreshes from there.
    let moved = Ua::new("102", 7102);
    let old = std::mem::replace(&mut watcher.ua, moved);
    watcher.ua.number = old.number;
    assert_eq!(
        watcher.subscribe(&mut sim, "101", "dialog", 600).status,
        200
    );
    let n = watcher.notify(&mut sim);
    assert_eq!(states(&n), ["terminated"]);
    ring_and_cancel(&mut sim);
    assert!(
        sim.requests("127.0.0.1:7002".parse().expect("address"), "NOTIFY")
            .is_empty()
    );
    assert!(!watcher.notifies(&mut sim, 200).is_empty());
    let listed = sim.engine.subscriptions(&aor("102"));
    assert_eq!(listed[0].device, "sip:102@127.0.0.1:7102");
}
