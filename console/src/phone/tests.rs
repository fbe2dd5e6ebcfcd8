//! The user agent against scripted server messages, in virtual time.

use super::message::{Message, param, uri_of};
use super::ua::{Account, Event, Phone};

fn phone() -> Phone {
    Phone::new(
        Account {
            extension: "101".into(),
            domain: "acme.test".into(),
            username: "101-ACME".into(),
            password: "secret".into(),
            secure: true,
        },
        42,
    )
}

/// The next message the phone sends, read.
fn sent(phone: &mut Phone) -> Message {
    let text = phone.poll_transmit().expect("a message to send");
    Message::parse(&text).unwrap_or_else(|| panic!("unreadable: {text}"))
}

fn events(phone: &mut Phone) -> Vec<Event> {
    std::iter::from_fn(|| phone.poll_event()).collect()
}

/// The server's answer to `request`: its Via, From, Call-ID and CSeq,
/// its To with a tag, and `extra` headers.
fn answer(request: &Message, status: &str, extra: &[&str], body: &str) -> String {
    let to = request.header("To").unwrap_or_default();
    let to = if to.contains("tag=") {
        to.to_owned()
    } else {
        format!("{to};tag=srv")
    };
    let mut text = format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        request.header("Via").unwrap_or_default(),
        request.header("From").unwrap_or_default(),
        request.header("Call-ID").unwrap_or_default(),
        request.header("CSeq").unwrap_or_default(),
    );
    for h in extra {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

const CHALLENGES: [&str; 2] = [
    "WWW-Authenticate: Digest realm=\"acme.test\", nonce=\"n-sha\", algorithm=SHA-256, qop=\"auth\"",
    "WWW-Authenticate: Digest realm=\"acme.test\", nonce=\"n-md5\", algorithm=MD5, qop=\"auth\"",
];

/// A phone registered at time 0.
fn registered() -> Phone {
    let mut p = phone();
    p.connected(0.0);
    let first = sent(&mut p);
    p.receive(&answer(&first, "401 Unauthorized", &CHALLENGES, ""), 10.0);
    let second = sent(&mut p);
    let contact = uri_of(second.header("Contact").unwrap_or_default()).to_owned();
    p.receive(
        &answer(
            &second,
            "200 OK",
            &[&format!("Contact: <{contact}>;expires=300")],
            "",
        ),
        20.0,
    );
    assert_eq!(events(&mut p), [Event::Registered]);
    p
}

#[test]
fn it_registers_answering_the_sha256_challenge_and_refreshes_halfway() {
    let mut p = phone();
    p.connected(0.0);
    let first = sent(&mut p);
    assert_eq!(
        first.request.as_ref().map(|r| r.1.as_str()),
        Some("sip:acme.test")
    );
    assert!(first.header("Authorization").is_none());
    assert!(
        first
            .header("Via")
            .unwrap_or_default()
            .starts_with("SIP/2.0/WSS ")
    );
    let contact = first.header("Contact").unwrap_or_default();
    assert!(
        contact.contains(";transport=ws>") && contact.contains("+sip.instance=\"<urn:uuid:"),
        "{contact}"
    );
    p.receive(&answer(&first, "401 Unauthorized", &CHALLENGES, ""), 10.0);
    let second = sent(&mut p);
    let auth = second.header("Authorization").unwrap_or_default();
    assert!(
        auth.contains("algorithm=SHA-256") && auth.contains("nonce=\"n-sha\""),
        "{auth}"
    );
    assert!(
        auth.contains("username=\"101-ACME\"") && auth.contains("uri=\"sip:acme.test\""),
        "{auth}"
    );
    assert_eq!(second.cseq(), (first.cseq().0 + 1, "REGISTER"));
    let granted = format!(
        "Contact: <{}>;expires=300",
        uri_of(second.header("Contact").unwrap_or_default())
    );
    p.receive(&answer(&second, "200 OK", &[&granted], ""), 20.0);
    assert_eq!(events(&mut p), [Event::Registered]);
    p.tick(150_019.0);
    assert!(p.poll_transmit().is_none());
    p.tick(150_020.0);
    let refresh = sent(&mut p);
    assert!(
        refresh.header("Authorization").is_some(),
        "the nonce is used again"
    );
    assert!(param(refresh.header("Authorization").unwrap_or_default(), "nc").is_none());
    assert!(
        refresh
            .header("Authorization")
            .unwrap_or_default()
            .contains("nc=00000002")
    );
}

#[test]
fn a_second_challenge_or_a_refusal_fails_the_registration_and_it_retries_later() {
    let mut p = phone();
    p.connected(0.0);
    let first = sent(&mut p);
    p.receive(&answer(&first, "401 Unauthorized", &CHALLENGES, ""), 0.0);
    let second = sent(&mut p);
    p.receive(&answer(&second, "401 Unauthorized", &CHALLENGES, ""), 0.0);
    assert_eq!(
        events(&mut p),
        [Event::RegistrationFailed(
            "wrong username or password".into()
        )]
    );
    assert!(p.poll_transmit().is_none(), "no third try at once");
    p.tick(30_000.0);
    assert_eq!(sent(&mut p).method(), "REGISTER");
    // Unanswered: a failure after 32 s.
    p.tick(62_000.0);
    assert_eq!(
        events(&mut p),
        [Event::RegistrationFailed(
            "the server did not answer".into()
        )]
    );
}

#[test]
fn an_outgoing_call_is_authenticated_rings_connects_and_ends_with_bye() {
    let mut p = registered();
    p.dial("100", "v=0 offer".into(), 1_000.0);
    let invite = sent(&mut p);
    assert_eq!(
        invite.request.as_ref().map(|r| r.1.as_str()),
        Some("sip:100@acme.test")
    );
    assert_eq!(invite.body, "v=0 offer");
    p.receive(
        &answer(&invite, "401 Unauthorized", &CHALLENGES, ""),
        1_010.0,
    );
    let ack = sent(&mut p);
    assert_eq!((ack.method(), ack.cseq().0), ("ACK", 1));
    assert_eq!(
        ack.header("Via"),
        invite.header("Via"),
        "the INVITE's transaction"
    );
    let again = sent(&mut p);
    assert_eq!(again.cseq(), (2, "INVITE"));
    assert!(
        again
            .header("Authorization")
            .unwrap_or_default()
            .contains("uri=\"sip:100@acme.test\"")
    );
    p.receive(&answer(&again, "100 Trying", &[], ""), 1_020.0);
    p.receive(&answer(&again, "180 Ringing", &[], ""), 1_030.0);
    assert_eq!(events(&mut p), [Event::Ringing]);
    p.receive(
        &answer(
            &again,
            "200 OK",
            &["Contact: <sip:b2bua@127.0.0.1:5060>"],
            "v=0 answer",
        ),
        2_000.0,
    );
    assert_eq!(
        events(&mut p),
        [Event::RemoteAnswer("v=0 answer".into()), Event::Connected]
    );
    let ack = sent(&mut p);
    assert_eq!(
        ack.request.as_ref().map(|r| r.1.as_str()),
        Some("sip:b2bua@127.0.0.1:5060")
    );
    assert_eq!(ack.cseq(), (2, "ACK"));
    assert_eq!(ack.tag("To").as_deref(), Some("srv"));
    // Hold: a re-INVITE, its answer handed over, acknowledged.
    p.reoffer("v=0 sendonly".into());
    let hold = sent(&mut p);
    assert_eq!(
        (hold.cseq(), hold.body.as_str()),
        ((3, "INVITE"), "v=0 sendonly")
    );
    p.receive(&answer(&hold, "200 OK", &[], "v=0 recvonly"), 3_000.0);
    assert_eq!(sent(&mut p).cseq(), (3, "ACK"));
    assert_eq!(events(&mut p), [Event::RemoteAnswer("v=0 recvonly".into())]);
    p.press('5');
    let info = sent(&mut p);
    assert_eq!(
        (info.method(), info.body.as_str()),
        ("INFO", "Signal=5\r\nDuration=160\r\n")
    );
    p.hang_up(4_000.0);
    let bye = sent(&mut p);
    assert_eq!((bye.method(), bye.cseq().0), ("BYE", 5));
    assert_eq!(bye.tag("To").as_deref(), Some("srv"));
    assert_eq!(events(&mut p), [Event::Ended("hung up".into())]);
    assert!(!p.in_call());
}

#[test]
fn an_early_answer_is_applied_once_and_a_refusal_ends_the_call() {
    let mut p = registered();
    p.dial("100", "offer".into(), 0.0);
    let invite = sent(&mut p);
    p.receive(&answer(&invite, "183 Session Progress", &[], "early"), 10.0);
    p.receive(
        &answer(&invite, "200 OK", &["Contact: <sip:x@127.0.0.1>"], "early"),
        20.0,
    );
    assert_eq!(
        events(&mut p),
        [
            Event::Ringing,
            Event::RemoteAnswer("early".into()),
            Event::Connected
        ]
    );
    p.hang_up(30.0);
    events(&mut p);
    p.dial("102", "offer".into(), 40.0);
    sent(&mut p);
    sent(&mut p);
    let invite = sent(&mut p);
    p.receive(&answer(&invite, "486 Busy Here", &[], ""), 50.0);
    assert_eq!(sent(&mut p).method(), "ACK");
    assert_eq!(events(&mut p), [Event::Ended("busy".into())]);
}

#[test]
fn an_unanswered_invite_fails_after_32_s_and_a_trying_one_waits() {
    let mut p = registered();
    p.dial("100", "offer".into(), 0.0);
    sent(&mut p);
    p.tick(31_999.0);
    assert!(events(&mut p).is_empty());
    p.tick(32_000.0);
    assert_eq!(
        events(&mut p),
        [Event::Ended("the server did not answer".into())]
    );
    p.dial("100", "offer".into(), 40_000.0);
    let invite = sent(&mut p);
    p.receive(&answer(&invite, "100 Trying", &[], ""), 40_010.0);
    p.tick(200_000.0);
    assert!(p.in_call(), "a call in progress rings as long as it rings");
}

#[test]
fn cancelling_a_ringing_call_sends_cancel_on_the_invites_branch() {
    let mut p = registered();
    p.dial("100", "offer".into(), 0.0);
    let invite = sent(&mut p);
    p.receive(&answer(&invite, "180 Ringing", &[], ""), 10.0);
    p.hang_up(20.0);
    let cancel = sent(&mut p);
    assert_eq!(cancel.method(), "CANCEL");
    assert_eq!(cancel.header("Via"), invite.header("Via"));
    assert_eq!(cancel.cseq(), (1, "CANCEL"));
    // The 487 that follows is acknowledged, the call being gone.
    p.receive(&answer(&invite, "487 Request Terminated", &[], ""), 30.0);
    assert_eq!(sent(&mut p).method(), "ACK");
}

/// An INVITE from the server to the phone.
fn server_invite(body: &str) -> String {
    format!(
        "INVITE sip:u@x.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WSS 127.0.0.1:8080;branch=z9hG4bKsrv1\r\n\
         From: \"Ann\" <sip:100@acme.test>;tag=caller\r\nTo: <sip:101@acme.test>\r\nCall-ID: in-1\r\n\
         CSeq: 7 INVITE\r\nContact: <sip:b2bua@127.0.0.1:8080;transport=ws>\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn server_request(method: &str, cseq: u32, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:u@x.invalid SIP/2.0\r\nVia: SIP/2.0/WSS 127.0.0.1:8080;branch=z9hG4bK{method}{cseq}\r\n\
         From: <sip:100@acme.test>;tag=caller\r\nTo: <sip:101@acme.test>;tag=mine\r\nCall-ID: in-1\r\n\
         CSeq: {cseq} {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn an_incoming_call_rings_is_answered_and_ended_by_the_other_side() {
    let mut p = registered();
    p.receive(&server_invite("offer"), 0.0);
    let ringing = sent(&mut p);
    assert_eq!(ringing.status, 180);
    let tag = ringing.tag("To").expect("our tag");
    assert_eq!(
        events(&mut p),
        [Event::Incoming {
            caller: "Ann (100)".into(),
            offer: "offer".into()
        }]
    );
    // A second call meanwhile is busy.
    p.receive(&server_invite("other").replace("in-1", "in-2"), 5.0);
    assert_eq!(sent(&mut p).status, 486);
    p.answer("answer".into());
    let ok = sent(&mut p);
    assert_eq!((ok.status, ok.body.as_str()), (200, "answer"));
    assert_eq!(ok.tag("To"), Some(tag));
    assert!(ok.header("Contact").is_some());
    p.receive(&server_request("ACK", 7, "", ""), 10.0);
    assert_eq!(events(&mut p), [Event::Connected]);
    // A session refresh without a body and a key as INFO: 200, nothing else.
    p.receive(&server_request("UPDATE", 8, "", ""), 20.0);
    assert_eq!(sent(&mut p).status, 200);
    // The desk phone holds: a re-INVITE, answered by the page.
    p.receive(
        &server_request(
            "INVITE",
            9,
            "Contact: <sip:b2bua@127.0.0.1:8080>\r\n",
            "held",
        ),
        30.0,
    );
    assert_eq!(events(&mut p), [Event::Reoffer("held".into())]);
    p.answer_reoffer("ok held".into());
    let ok = sent(&mut p);
    assert_eq!((ok.status, ok.cseq()), (200, (9, "INVITE")));
    p.receive(&server_request("BYE", 10, "", ""), 40.0);
    let ok = sent(&mut p);
    assert_eq!((ok.status, ok.cseq()), (200, (10, "BYE")));
    assert_eq!(
        events(&mut p),
        [Event::Ended("the other side hung up".into())]
    );
    // Requests for calls it does not have are 481; unknown methods 405.
    p.receive(&server_request("BYE", 11, "", ""), 50.0);
    assert_eq!(sent(&mut p).status, 481);
    p.receive(
        &server_request("MESSAGE", 1, "", "hi").replace("Call-ID: in-1", "Call-ID: m-1"),
        50.0,
    );
    let refused = sent(&mut p);
    assert_eq!(refused.status, 405);
    assert!(refused.header("Allow").is_some());
}

#[test]
fn a_call_cancelled_while_ringing_ends_with_the_reason() {
    let mut p = registered();
    p.receive(&server_invite("offer"), 0.0);
    sent(&mut p);
    events(&mut p);
    let cancel = server_request(
        "CANCEL",
        7,
        "Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\n",
        "",
    )
    .replace(
        "To: <sip:101@acme.test>;tag=mine",
        "To: <sip:101@acme.test>",
    )
    .replace("z9hG4bKCANCEL7", "z9hG4bKsrv1");
    p.receive(&cancel, 10.0);
    assert_eq!(sent(&mut p).status, 200);
    let terminated = sent(&mut p);
    assert_eq!((terminated.status, terminated.cseq()), (487, (7, "INVITE")));
    assert_eq!(
        events(&mut p),
        [Event::Ended("Call completed elsewhere".into())]
    );
    assert!(!p.in_call());
}

#[test]
fn a_lost_connection_ends_the_call_and_leaving_unregisters() {
    let mut p = registered();
    p.dial("100", "offer".into(), 0.0);
    sent(&mut p);
    p.closed();
    assert_eq!(
        events(&mut p),
        [Event::Ended("the connection to the server was lost".into())]
    );
    p.connected(100.0);
    let register = sent(&mut p);
    assert_eq!(register.method(), "REGISTER");
    p.leave(200.0);
    let leaving = sent(&mut p);
    assert_eq!(leaving.header("Expires"), Some("0"));
}
