//! The registrar, the digest gate and keepalives in virtual time.

mod sim;

use std::time::Duration;

use edgepbx_engine::Event;
use edgepbx_engine::registrar::{Change, RemovalReason};
use edgepbx_engine::routing::DecisionRequest;
use edgepbx_sip::{Method, Request, Response};
use sim::{DOMAIN, Sim, Ua, acme, config};

fn no_policy() -> sim::Policy {
    Box::new(|_: &DecisionRequest| None)
}

/// A world whose tenant has a registering trunk; `credentials` off takes
/// its username and password away.
fn registering_trunk(credentials: bool) -> (Sim, std::net::SocketAddr) {
    let mut tenant = acme(true, &[]);
    let mut link = (*tenant.trunks[0]).clone();
    link.trunk.register = true;
    if !credentials {
        link.trunk.username = None;
        link.trunk.password = None;
    }
    tenant.trunks = vec![std::sync::Arc::new(link)];
    let sim = Sim::new(config(), tenant, &[], no_policy());
    (sim, sim::CARRIER.parse().expect("a socket address"))
}

fn register(ua: &mut Ua, user: &str, expires: u32, cseq: u32) -> Request {
    let mut r = Request {
        method: Method::from_token("REGISTER"),
        uri: format!("sip:{DOMAIN}"),
        headers: Default::default(),
        body: Vec::new(),
    };
    let via = ua.via();
    let h = &mut r.headers;
    h.push("Via", via);
    h.push("Max-Forwards", "70");
    h.push(
        "From",
        format!("<sip:{user}@{DOMAIN}>;tag=reg-{}", ua.addr.port()),
    );
    h.push("To", format!("<sip:{user}@{DOMAIN}>"));
    h.push("Call-ID", format!("reg-{}@sim", ua.addr.port()));
    h.push("CSeq", format!("{cseq} REGISTER"));
    h.push("Contact", format!("<sip:{user}@{}>", ua.addr));
    h.push("Expires", expires.to_string());
    r
}

/// Registers `ua` as `number` through the challenge; returns the 200.
fn registered(sim: &mut Sim, ua: &mut Ua, expires: u32) -> Response {
    let number = ua.number.clone();
    let first = register(ua, &number, expires, 1);
    sim.send(ua.addr, first.clone());
    let challenge = sim.responses(ua.addr).pop().expect("a challenge");
    assert_eq!(challenge.status, 401);
    let second = ua.with_credentials(&first, &challenge);
    sim.send(ua.addr, second);
    sim.responses(ua.addr).pop().expect("an answer")
}

#[test]
fn a_device_registers_through_the_challenge_and_expires_in_virtual_time() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let mut phone = Ua::new("101", 6001);
    let ok = registered(&mut sim, &mut phone, 60);
    assert_eq!(ok.status, 200);
    let contact = ok.headers.get("Contact").unwrap_or_default();
    assert_eq!(contact, "<sip:101@127.0.0.1:6001>;expires=60");
    assert!(ok.headers.get("Date").is_some_and(|d| d.ends_with("GMT")));
    assert!(matches!(sim.stored.as_slice(), [Change::Added(aor, _)] if aor.extension == "101"));
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, Event::Device { online: true, .. }))
    );
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, Event::Line { devices: 1, .. }))
    );
    sim.advance(Duration::from_secs(59));
    assert_eq!(sim.stored.len(), 1);
    sim.advance(Duration::from_secs(2));
    assert!(matches!(
        sim.stored.last(),
        Some(Change::Removed(_, _, RemovalReason::Expired))
    ));
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, Event::Line { devices: 0, .. }))
    );
}

#[test]
fn a_nonce_of_a_previous_boot_is_not_accepted() {
    let mut phone = Ua::new("101", 6001);
    let mut before = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let first = register(&mut phone, "101", 300, 1);
    before.send(phone.addr, first.clone());
    let challenge = before.responses(phone.addr).pop().expect("a challenge");
    let answered = phone.with_credentials(&first, &challenge);
    // The same server restarted (same key, a new boot): the answer to the
    // old challenge, replayed, does not get in (its nonce counts were in
    // the memory of the boot that issued it).
    let mut after = Sim::booted(config(), acme(false, &[]), &[], no_policy(), [2; 32]);
    after.send(phone.addr, answered.clone());
    let replayed = after.responses(phone.addr).pop().expect("an answer");
    assert_eq!(replayed.status, 401, "a previous boot's nonce is refused");
    // The boot that issued it takes it.
    before.send(phone.addr, answered);
    let ok = before.responses(phone.addr).pop().expect("an answer");
    assert_eq!(ok.status, 200);
}

#[test]
fn an_unknown_user_and_a_wrong_password_get_the_same_answer() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let shape = |r: &Response| {
        let mut names: Vec<String> = r.headers.0.iter().map(|h| h.name.clone()).collect();
        names.sort();
        (r.status, names)
    };
    let mut known = Ua::new("101", 6001);
    known.number = "101".into();
    let first = register(&mut known, "101", 60, 1);
    sim.send(known.addr, first.clone());
    let challenge = sim.responses(known.addr).pop().expect("401");
    let mut wrong = known.with_credentials(&first, &challenge);
    let auth = wrong
        .headers
        .get("Authorization")
        .unwrap_or_default()
        .to_owned();
    let tampered = auth.replacen("response=\"", "response=\"0", 1);
    wrong.headers.set("Authorization", tampered);
    sim.send(known.addr, wrong);
    let refused_known = sim.responses(known.addr).pop().expect("401");

    let mut unknown = Ua::new("999", 6009);
    let first = register(&mut unknown, "999", 60, 1);
    sim.send(unknown.addr, first.clone());
    let challenge = sim.responses(unknown.addr).pop().expect("401");
    let attempt = unknown.with_credentials(&first, &challenge);
    sim.send(unknown.addr, attempt);
    let refused_unknown = sim.responses(unknown.addr).pop().expect("401");
    assert_eq!(shape(&refused_known), shape(&refused_unknown));
    assert_eq!(refused_known.status, 401);
}

/// Twelve wrong passwords from `attacker` (enough to block its address);
/// returns how many of them were answered.
fn fail_until_blocked(sim: &mut Sim, attacker: &mut Ua) -> usize {
    let mut answered = 0;
    for cseq in 1..=12 {
        let first = register(attacker, "101", 60, cseq * 2);
        sim.send(attacker.addr, first.clone());
        let Some(challenge) = sim.responses(attacker.addr).pop() else {
            continue;
        };
        let mut wrong = attacker.with_credentials(&first, &challenge);
        let auth = wrong
            .headers
            .get("Authorization")
            .unwrap_or_default()
            .replace("response=\"", "response=\"f");
        wrong.headers.set("Authorization", auth);
        sim.send(attacker.addr, wrong);
        answered += sim.responses(attacker.addr).len();
    }
    answered
}

#[test]
fn a_blocked_address_still_gets_its_answers_through_and_a_carrier_is_never_blocked() {
    let mut sim = Sim::new(config(), acme(true, &[]), &[], sim::ring_dialled(20));
    // A phone at 127.0.0.5; someone sending from its address (another
    // port) fails until the address is blocked.
    let mut phone = Ua::at("101", "127.0.0.5:6001");
    assert_eq!(registered(&mut sim, &mut phone, 300).status, 200);
    let mut spoofer = Ua::at("101", "127.0.0.5:7000");
    fail_until_blocked(&mut sim, &mut spoofer);
    let probe = register(&mut spoofer, "101", 60, 99);
    sim.send(spoofer.addr, probe);
    assert!(
        sim.responses(spoofer.addr).is_empty(),
        "the address is blocked"
    );
    // A call to 101 still reaches the phone, and its answers reach
    // edgepbx: they match edgepbx's own INVITE.
    let mut caller = Ua::new("100", 5100);
    sim::call(&mut sim, &mut caller, "101");
    let invite = sim.request(phone.addr, "INVITE");
    sim.send(phone.addr, phone.answer(&invite, 200));
    assert!(
        sim.statuses(caller.addr).contains(&200),
        "the phone's 200 got through"
    );
    // The carrier's address is never blocked, whatever is sent from it.
    let mut spoofed_carrier = Ua::at("101", "127.0.0.9:7000");
    fail_until_blocked(&mut sim, &mut spoofed_carrier);
    let probe = register(&mut spoofed_carrier, "101", 60, 99);
    sim.send(spoofed_carrier.addr, probe);
    assert!(
        !sim.responses(spoofed_carrier.addr).is_empty(),
        "the carrier's address is not blocked"
    );
    let mut carrier = Ua::at("0612345678", sim::CARRIER);
    let mut inbound = carrier.invite("0140000100");
    inbound.uri = "sip:0140000100@127.0.0.1".into();
    sim.send(carrier.addr, inbound);
    assert!(
        sim.statuses(carrier.addr).contains(&100),
        "the carrier's call is taken"
    );
}

#[test]
fn failures_sent_from_an_address_that_never_saw_a_challenge_block_nobody() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    // The spoofer gets a nonce at its own address...
    let mut own = Ua::at("101", "127.0.0.66:6666");
    let first = register(&mut own, "101", 60, 1);
    sim.send(own.addr, first.clone());
    let challenge = sim.responses(own.addr).pop().expect("a challenge");
    // ...and sends wrong answers with it, and malformed ones, as if from
    // the phone's address, where it cannot receive anything.
    let mut forged = Ua::at("101", "127.0.0.5:7000");
    for cseq in 1..=30 {
        let request = register(&mut forged, "101", 60, cseq);
        let mut wrong = own.with_credentials(&request, &challenge);
        let auth = match cseq % 3 {
            0 => "Digest username=\"101\", realm=\"acme.test\", nonce=\"x\"".to_owned(),
            1 => "Digest garbage".to_owned(),
            _ => wrong
                .headers
                .get("Authorization")
                .unwrap_or_default()
                .replace("response=\"", "response=\"f"),
        };
        wrong.headers.set("Authorization", auth);
        sim.send(forged.addr, wrong);
        assert_eq!(
            sim.responses(forged.addr).pop().map(|r| r.status),
            Some(401),
            "each is challenged, none counted"
        );
    }
    // The phone at that address registers as usual.
    let mut phone = Ua::at("101", "127.0.0.5:6001");
    assert_eq!(registered(&mut sim, &mut phone, 300).status, 200);
}

#[test]
fn repeated_failures_are_throttled_then_blocked_per_source() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let mut attacker = Ua::at("101", "127.0.0.66:6666");
    let answered = fail_until_blocked(&mut sim, &mut attacker);
    assert!(
        answered < 12,
        "failures past the limit go unanswered ({answered})"
    );
    // Blocked: even a first REGISTER gets nothing now...
    let probe = register(&mut attacker, "101", 60, 100);
    sim.send(attacker.addr, probe);
    assert!(sim.responses(attacker.addr).is_empty());
    // ...while another source is served.
    let mut phone = Ua::new("101", 6001);
    assert_eq!(registered(&mut sim, &mut phone, 60).status, 200);
    // The block ends after block_secs.
    sim.advance(Duration::from_secs(601));
    let probe = register(&mut attacker, "101", 60, 200);
    sim.send(attacker.addr, probe);
    assert_eq!(
        sim.responses(attacker.addr).pop().map(|r| r.status),
        Some(401)
    );
}

#[test]
fn a_binding_that_stops_answering_keepalives_goes_offline() {
    let mut config = config();
    config.registrar.keepalive_interval_secs = 30;
    let mut sim = Sim::new(config, acme(false, &[]), &[], no_policy());
    let mut phone = Ua::new("101", 6001);
    assert_eq!(registered(&mut sim, &mut phone, 3600).status, 200);
    sim.advance(Duration::from_secs(31));
    let ping = sim.request(phone.addr, "OPTIONS");
    sim.send(phone.addr, phone.answer(&ping, 200));
    let seen = sim.engine.devices(&edgepbx_engine::registrar::Aor {
        tenant: "ACME".into(),
        extension: "101".into(),
    });
    assert_eq!(seen[0].last_seen, Some(sim.wall));
    // The next ping goes unanswered: timer F (64 T1) takes the binding.
    sim.advance(Duration::from_secs(30));
    sim.request(phone.addr, "OPTIONS");
    sim.advance(Duration::from_secs(33));
    assert!(matches!(
        sim.stored.last(),
        Some(Change::Removed(_, _, RemovalReason::Unreachable))
    ));
}

#[test]
fn a_register_too_brief_gets_423_and_a_query_lists_bindings() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let mut phone = Ua::new("101", 6001);
    let ok = registered(&mut sim, &mut phone, 30);
    assert_eq!(ok.status, 423);
    assert_eq!(ok.headers.get("Min-Expires"), Some("60"));
    assert!(sim.stored.is_empty());
}

#[test]
fn a_register_the_store_could_not_keep_is_refused_with_400() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let mut phone = Ua::new("101", 6001);
    let number = phone.number.clone();
    let long_call_id = format!("{}@sim", "c".repeat(300));
    for (header, value) in [
        ("Contact", format!("<sip:101@{}>;q=2", phone.addr)),
        ("Contact", format!("<sip:101@{}>;q=0.1234", phone.addr)),
        ("Call-ID", long_call_id),
    ] {
        let mut first = register(&mut phone, &number, 60, 1);
        first.headers.set(header, value.clone());
        sim.send(phone.addr, first.clone());
        let challenge = sim.responses(phone.addr).pop().expect("a challenge");
        assert_eq!(challenge.status, 401);
        let second = phone.with_credentials(&first, &challenge);
        sim.send(phone.addr, second);
        let answer = sim.responses(phone.addr).pop().expect("an answer");
        assert_eq!(answer.status, 400, "{header}: {value}");
    }
    assert!(sim.stored.is_empty(), "nothing to write behind");
    // Within the bounds: accepted, and kept as it came.
    let mut first = register(&mut phone, &number, 60, 1);
    first
        .headers
        .set("Contact", format!("<sip:101@{}>;q=0.5", phone.addr));
    first.headers.set("User-Agent", "x".repeat(500));
    sim.send(phone.addr, first.clone());
    let challenge = sim.responses(phone.addr).pop().expect("a challenge");
    let second = phone.with_credentials(&first, &challenge);
    sim.send(phone.addr, second);
    assert_eq!(sim.responses(phone.addr).pop().map(|r| r.status), Some(200));
    match sim.stored.as_slice() {
        [Change::Added(_, binding)] => {
            assert_eq!(binding.q.as_deref(), Some("0.5"));
            assert_eq!(binding.user_agent.as_ref().map(String::len), Some(128));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_trunk_registers_answering_the_carriers_challenge_and_refreshes() {
    let (mut sim, carrier) = registering_trunk(true);
    let first = sim.request(carrier, "REGISTER");
    assert_eq!(first.headers.get("Expires"), Some("300"));
    let challenge = sim::challenge(&first, 401, "n");
    sim.send(carrier, challenge);
    let second = sim.request(carrier, "REGISTER");
    assert_eq!(second.headers.get("CSeq"), Some("2 REGISTER"));
    assert!(
        second
            .headers
            .get("Authorization")
            .is_some_and(|a| a.contains("username=\"acme\""))
    );
    let mut ok = Response::for_request(&second, 200, Some("c"));
    ok.headers.push("Expires", "120");
    sim.send(carrier, ok);
    // Refreshed at three quarters of what the carrier granted.
    sim.advance(Duration::from_secs(89));
    assert!(sim.requests(carrier, "REGISTER").is_empty());
    sim.advance(Duration::from_secs(2));
    let refresh = sim.request(carrier, "REGISTER");
    assert_eq!(refresh.headers.get("CSeq"), Some("3 REGISTER"));
    // A refusal is retried after 30 s.
    sim.send(carrier, Response::for_request(&refresh, 403, Some("c")));
    sim.advance(Duration::from_secs(29));
    assert!(sim.requests(carrier, "REGISTER").is_empty());
    sim.advance(Duration::from_secs(2));
    let retry = sim.request(carrier, "REGISTER");
    assert_eq!(retry.headers.get("CSeq"), Some("4 REGISTER"));
}

#[test]
fn a_carriers_expiry_is_bounded_and_a_challenge_without_credentials_waits() {
    let (mut sim, carrier) = registering_trunk(true);
    let first = sim.request(carrier, "REGISTER");
    let mut ok = Response::for_request(&first, 200, Some("c"));
    ok.headers.push("Expires", "18446744073709551615");
    sim.send(carrier, ok);
    // Refreshed at three quarters of a day however long the carrier says.
    sim.advance(Duration::from_secs(64_799));
    assert!(sim.requests(carrier, "REGISTER").is_empty());
    sim.advance(Duration::from_secs(2));
    let refresh = sim.request(carrier, "REGISTER");
    // A second challenge to a request that answered one is a failure:
    // retried after 30 s, not every second.
    let challenge = sim::challenge(&refresh, 401, "n");
    sim.send(carrier, challenge);
    let answered = sim.request(carrier, "REGISTER");
    let again = sim::challenge(&answered, 401, "m");
    sim.send(carrier, again);
    sim.advance(Duration::from_secs(29));
    assert!(sim.requests(carrier, "REGISTER").is_empty());
    sim.advance(Duration::from_secs(2));
    sim.request(carrier, "REGISTER");
}

#[test]
fn a_trunk_without_credentials_that_is_challenged_retries_after_30_seconds() {
    let (mut sim, carrier) = registering_trunk(false);
    let first = sim.request(carrier, "REGISTER");
    let challenge = sim::challenge(&first, 401, "n");
    sim.send(carrier, challenge);
    sim.advance(Duration::from_secs(29));
    assert!(
        sim.requests(carrier, "REGISTER").is_empty(),
        "not every second"
    );
    sim.advance(Duration::from_secs(2));
    sim.request(carrier, "REGISTER");
}

#[test]
fn a_provisioned_phone_and_only_it_is_told_to_check_sync() {
    let mut sim = Sim::new(config(), acme(false, &[]), &[], no_policy());
    let mac: edgepbx_model::Mac = "805ec0123456".parse().expect("a MAC");
    let aor = edgepbx_engine::registrar::Aor {
        tenant: "ACME".into(),
        extension: "101".into(),
    };
    // The desk phone names its MAC in its User-Agent; the softphone of the
    // same extension does not.
    let mut desk = Ua::new("101", 6001);
    let mut softphone = Ua::new("101", 6002);
    for (ua, agent) in [
        (&mut desk, "Yealink SIP-T46U 108.86.0.20 80:5e:c0:12:34:56"),
        (&mut softphone, "baresip v1.0.0 (x86_64/linux)"),
    ] {
        let number = ua.number.clone();
        let mut first = register(ua, &number, 600, 1);
        first.headers.push("User-Agent", agent);
        sim.send(ua.addr, first.clone());
        let challenge = sim.responses(ua.addr).pop().expect("a challenge");
        let second = ua.with_credentials(&first, &challenge);
        sim.send(ua.addr, second);
        assert_eq!(sim.responses(ua.addr).pop().map(|r| r.status), Some(200));
    }
    let sent = sim
        .engine
        .handle_resync(sim.now, &aor, &mac, "check-sync;reboot=false");
    sim.drain();
    assert_eq!(sent, 1);
    let notifies = sim.requests(desk.addr, "NOTIFY");
    assert_eq!(notifies.len(), 1);
    let notify = &notifies[0];
    assert_eq!(notify.uri, format!("sip:101@{}", desk.addr));
    assert_eq!(notify.headers.get("Event"), Some("check-sync;reboot=false"));
    assert_eq!(notify.headers.get("Subscription-State"), Some("terminated"));
    assert!(sim.requests(softphone.addr, "NOTIFY").is_empty());
    // Its answer ends the transaction; a phone of another MAC is told
    // nothing.
    sim.send(desk.addr, Response::for_request(notify, 200, None));
    let other: edgepbx_model::Mac = "805ec0123457".parse().expect("a MAC");
    assert_eq!(
        sim.engine
            .handle_resync(sim.now, &aor, &other, "check-sync"),
        0
    );
}

/// A REGISTER as a WebRTC SIP client (JsSIP, SIP.js) sends it over its
/// WebSocket: an `.invalid` Via and Contact, an RFC 5626 instance.
fn register_over_websocket(ua: &mut Ua, cseq: u32) -> Request {
    let mut r = register(ua, &ua.number.clone(), 600, cseq);
    r.headers.set(
        "Via",
        format!("SIP/2.0/WSS k3x9.invalid;branch=z9hG4bK-ws-{cseq}"),
    );
    r.headers.set(
        "Contact",
        "<sip:q8v2m1@k3x9.invalid;transport=ws>;+sip.ice;reg-id=1;\
         +sip.instance=\"<urn:uuid:6f1c2b84-5bd8-4a53-9d34-0c2b7d1e8a10>\";expires=600",
    );
    r
}

#[test]
fn a_websocket_client_is_reached_over_its_connection_until_it_closes() {
    use edgepbx_engine::StreamKind;
    let mut sim = Sim::new(config(), acme(false, &[]), &[], sim::ring_dialled(30));
    let mut browser = Ua::new("101", 50_123);
    let first = register_over_websocket(&mut browser, 1);
    sim.send_stream(7, browser.addr, StreamKind::Wss, first.clone());
    let challenge = sim.response(browser.addr, 401);
    let second = browser.with_credentials(&first, &challenge);
    sim.send_stream(7, browser.addr, StreamKind::Wss, second);
    let ok = sim.response(browser.addr, 200);
    // The client's own contact comes back with its instance and reg-id (the
    // clients ignore a 200 that does not list them), under one Via.
    let contact = ok.headers.get("Contact").unwrap_or_default();
    assert!(contact.starts_with("<sip:q8v2m1@k3x9.invalid;transport=ws>;expires=600"));
    assert!(contact.contains("+sip.instance=\"<urn:uuid:6f1c2b84-5bd8-4a53-9d34-0c2b7d1e8a10>\""));
    assert!(contact.contains(";reg-id=1"));
    assert_eq!(
        ok.headers
            .0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("Via"))
            .count(),
        1
    );

    // A call to the extension goes to the browser over its connection.
    let mut caller = Ua::new("102", 6002);
    sim::call(&mut sim, &mut caller, "101");
    let invite = sim.request(browser.addr, "INVITE");
    assert_eq!(invite.uri, "sip:q8v2m1@k3x9.invalid;transport=ws");
    assert!(matches!(
        sim.flows.get(&browser.addr),
        Some(edgepbx_engine::Peer::Stream {
            conn: 7,
            kind: StreamKind::Wss,
            ..
        })
    ));
    let via = invite.headers.get("Via").unwrap_or_default();
    assert!(via.starts_with("SIP/2.0/WSS 127.0.0.1:8080;"), "{via}");
    assert!(
        invite
            .headers
            .get("Contact")
            .is_some_and(|c| c.contains("transport=wss")),
    );

    // The connection closes: the binding is offline at once.
    sim.close(7);
    assert!(matches!(
        sim.stored.last(),
        Some(Change::Removed(_, _, RemovalReason::Disconnected))
    ));
    assert!(
        sim.events.iter().rev().find_map(|e| match e {
            Event::Line { devices, .. } => Some(*devices),
            _ => None,
        }) == Some(0)
    );
}

#[test]
fn a_browser_is_challenged_with_md5_last_whatever_the_order() {
    use edgepbx_engine::StreamKind;
    // MD5 first, for phones that read the first challenge only.
    let mut config = config();
    config.security.digest_algorithms = vec!["MD5".into(), "SHA-256".into()];
    let mut sim = Sim::new(config, acme(false, &[]), &[], no_policy());
    let algorithms = |r: &Response| -> Vec<String> {
        r.headers
            .0
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("WWW-Authenticate"))
            .filter_map(|h| h.value.split("algorithm=").nth(1))
            .map(|a| a.split(',').next().unwrap_or_default().to_owned())
            .collect()
    };
    let mut phone = Ua::new("101", 6001);
    sim.send(phone.addr, register(&mut phone, "101", 60, 1));
    let challenge = sim.response(phone.addr, 401);
    assert_eq!(algorithms(&challenge), ["MD5", "SHA-256"]);
    // JsSIP answers the last challenge and knows MD5 only.
    let mut browser = Ua::new("101", 50_124);
    let first = register_over_websocket(&mut browser, 1);
    sim.send_stream(8, browser.addr, StreamKind::Wss, first.clone());
    let challenge = sim.response(browser.addr, 401);
    assert_eq!(algorithms(&challenge), ["SHA-256", "MD5"]);
}
