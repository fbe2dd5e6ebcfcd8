//! Virtual-time simulations of the RFC 3261 §17 transaction layer.
//!
//! Every test starts one clock reading and moves it forward by hand: the
//! layer never reads the clock, so the runs are deterministic.

use std::time::{Duration, Instant};

use edgepbx_sip::message::{Headers, Message, Method, Request, Response};
use edgepbx_sip::transaction::{
    ClientKey, Incoming, ServerKey, ServerState, TransactionConfig, TransactionError,
    TransactionEvent, TransactionKey, TransactionLayer, Transmit, new_branch,
};

const UDP: bool = false;
const TCP: bool = true;

/// The driver's destination type in these tests: a peer name.
type Peer = &'static str;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A request as a UA at `pc33.example.com` would send it.
fn request(method: &str, branch: Option<&str>, seq: u32) -> Request {
    let mut headers = Headers::default();
    let via = match branch {
        Some(branch) => format!("SIP/2.0/UDP pc33.example.com:5060;branch={branch}"),
        None => "SIP/2.0/UDP pc33.example.com:5060".to_owned(),
    };
    headers.push("Via", via);
    headers.push("Max-Forwards", "70");
    headers.push("Route", "<sip:proxy.example.com;lr>");
    headers.push("From", "Alice <sip:alice@example.com>;tag=1928301774");
    headers.push("To", "Bob <sip:bob@example.com>");
    headers.push("Call-ID", "a84b4c76e66710@pc33.example.com");
    headers.push("CSeq", format!("{seq} {method}"));
    headers.push("Contact", "<sip:alice@pc33.example.com>");
    Request {
        method: Method::from_token(method),
        uri: "sip:bob@example.com".to_owned(),
        headers,
        body: Vec::new(),
    }
}

fn invite(branch: &str) -> Request {
    request("INVITE", Some(branch), 314159)
}

/// The ACK a UAC sends for a non-2xx response to `invite` (same branch).
fn ack_for(invite: &Request, to_tag: &str) -> Request {
    let mut ack = invite.clone();
    ack.method = Method::from_token("ACK");
    let seq = ack
        .headers
        .get("CSeq")
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("0")
        .to_owned();
    ack.headers.set("CSeq", format!("{seq} ACK"));
    let to = format!("{};tag={to_tag}", invite.headers.get("To").unwrap_or(""));
    ack.headers.set("To", to);
    ack
}

/// A layer plus a virtual clock and what it produced.
struct Sim {
    layer: TransactionLayer<Peer>,
    start: Instant,
    now: Instant,
}

impl Sim {
    fn new() -> Self {
        Self::with(TransactionConfig::default())
    }

    fn with(config: TransactionConfig) -> Self {
        let start = Instant::now();
        Sim {
            layer: TransactionLayer::new(config),
            start,
            now: start,
        }
    }

    /// Time since the start.
    fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Moves the clock to `at` (since start), firing every timer on the
    /// way at its own deadline, as a driver sleeping on poll_timeout does.
    fn run_until(&mut self, at: Duration) -> Vec<(Duration, Transmit<Peer>)> {
        let end = self.start + at;
        let mut sent = self.transmits();
        while let Some(deadline) = self.layer.poll_timeout() {
            if deadline > end {
                break;
            }
            assert!(deadline >= self.now, "timer in the past");
            self.now = deadline;
            self.layer.handle_timeout(deadline);
            sent.extend(self.transmits());
        }
        self.now = end;
        self.layer.handle_timeout(end);
        sent.extend(self.transmits());
        sent
    }

    fn advance(&mut self, by: Duration) -> Vec<(Duration, Transmit<Peer>)> {
        let at = self.elapsed() + by;
        self.run_until(at)
    }

    fn transmits(&mut self) -> Vec<(Duration, Transmit<Peer>)> {
        let at = self.elapsed();
        std::iter::from_fn(|| self.layer.poll_transmit())
            .map(|t| (at, t))
            .collect()
    }

    fn events(&mut self) -> Vec<TransactionEvent<Peer>> {
        std::iter::from_fn(|| self.layer.poll_event()).collect()
    }

    fn receive(&mut self, request: Request, reliable: bool) -> Incoming {
        self.layer
            .handle_request(self.now, request, "uac", reliable)
    }

    fn new_server(&mut self, request: Request, reliable: bool) -> ServerKey {
        match self.receive(request, reliable) {
            Incoming::New(key, _) => key,
            other => panic!("expected a new transaction, got {other:?}"),
        }
    }

    fn respond(&mut self, key: ServerKey, response: Response) {
        let result = self.layer.respond(self.now, key, response);
        assert_eq!(result, Ok(()));
    }

    fn start(&mut self, request: Request, reliable: bool) -> ClientKey {
        let key = self.layer.start_client(self.now, request, "uas", reliable);
        key.expect("client transaction starts")
    }

    fn response(&mut self, response: Response) {
        self.layer.handle_response(self.now, response, "uas");
    }
}

fn times(sent: &[(Duration, Transmit<Peer>)]) -> Vec<Duration> {
    sent.iter().map(|(at, _)| *at).collect()
}

fn as_request(t: &Transmit<Peer>) -> &Request {
    match &t.message {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, sent {}", r.status),
    }
}

fn status(t: &Transmit<Peer>) -> u16 {
    match &t.message {
        Message::Response(r) => r.status,
        Message::Request(r) => panic!("expected a response, sent {}", r.method),
    }
}

fn terminated(key: impl Into<TransactionKey>) -> TransactionEvent<Peer> {
    TransactionEvent::Terminated(key.into())
}

// ---------------------------------------------------------------------------
// Non-INVITE client (§17.1.2)

#[test]
fn nict_udp_timer_e_doubles_to_t2_and_timer_f_times_out() {
    let mut sim = Sim::new();
    let key = sim.start(request("OPTIONS", Some("z9hG4bKnict1"), 1), UDP);
    let sent = sim.run_until(secs(40));
    let expected: Vec<Duration> = [
        0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ]
    .into_iter()
    .map(ms)
    .collect();
    assert_eq!(times(&sent), expected);
    for (_, t) in &sent {
        assert_eq!(t.destination, "uas");
        assert_eq!(t.transaction, TransactionKey::Client(key));
        assert_eq!(as_request(t).method.as_str(), "OPTIONS");
    }
    assert_eq!(
        sim.events(),
        [TransactionEvent::Timeout(key.into()), terminated(key)]
    );
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
}

#[test]
fn nict_timer_f_fires_at_64_t1() {
    let mut sim = Sim::new();
    let key = sim.start(request("OPTIONS", Some("z9hG4bKnictf"), 1), UDP);
    sim.run_until(secs(32) - ms(1));
    assert_eq!(sim.events(), []);
    sim.run_until(secs(32));
    assert_eq!(
        sim.events(),
        [TransactionEvent::Timeout(key.into()), terminated(key)]
    );
}

#[test]
fn nict_tcp_does_not_retransmit() {
    let mut sim = Sim::new();
    let key = sim.start(request("REGISTER", Some("z9hG4bKnict2"), 1), TCP);
    let sent = sim.run_until(secs(40));
    assert_eq!(times(&sent), [Duration::ZERO]);
    assert_eq!(
        sim.events(),
        [TransactionEvent::Timeout(key.into()), terminated(key)]
    );
}

#[test]
fn nict_proceeding_retransmits_every_t2() {
    let mut sim = Sim::new();
    let req = request("BYE", Some("z9hG4bKnict3"), 2);
    let key = sim.start(req.clone(), UDP);
    sim.run_until(ms(600)); // sent at 0 and 500
    sim.response(Response::for_request(&req, 100, None));
    assert!(
        matches!(&sim.events()[..], [TransactionEvent::Response(k, r)] if *k == key && r.status == 100)
    );
    // Timer E was due at 1500 and is reset to T2 from then on.
    let sent = sim.run_until(secs(12));
    assert_eq!(times(&sent), [ms(1500), ms(5500), ms(9500)]);
}

#[test]
fn nict_final_response_then_timer_k() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", Some("z9hG4bKnict4"), 1);
    let key = sim.start(req.clone(), UDP);
    sim.advance(ms(100));
    sim.response(Response::for_request(&req, 200, Some("x")));
    assert!(
        matches!(&sim.events()[..], [TransactionEvent::Response(k, r)] if *k == key && r.status == 200)
    );
    // Retransmissions of the final response are absorbed.
    sim.response(Response::for_request(&req, 200, Some("x")));
    assert_eq!(sim.events(), []);
    // No more request retransmissions; timer K = T4.
    let sent = sim.advance(secs(5) - ms(1));
    assert!(sent.is_empty());
    assert_eq!(sim.layer.len(), 1);
    sim.advance(ms(1));
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
}

#[test]
fn nict_tcp_final_response_terminates_at_once() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", Some("z9hG4bKnict5"), 1);
    let key = sim.start(req.clone(), TCP);
    sim.response(Response::for_request(&req, 404, Some("x")));
    let events = sim.events();
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[0], TransactionEvent::Response(_, r) if r.status == 404));
    assert_eq!(events[1], terminated(key));
    assert!(sim.layer.is_empty());
}

// ---------------------------------------------------------------------------
// Non-INVITE server (§17.2.2)

#[test]
fn nist_absorbs_retransmissions_and_resends_responses_then_timer_j() {
    let mut sim = Sim::new();
    let req = request("REGISTER", Some("z9hG4bKnist1"), 1);
    let key = sim.new_server(req.clone(), UDP);
    assert_eq!(sim.layer.server_state(key), Some(ServerState::Trying));

    // Trying: absorbed, nothing to re-send; no automatic 100 for non-INVITE.
    assert_eq!(sim.receive(req.clone(), UDP), Incoming::Absorbed);
    assert!(sim.advance(secs(1)).is_empty());

    sim.respond(key, Response::for_request(&req, 100, None));
    assert_eq!(sim.transmits().len(), 1);
    assert_eq!(sim.receive(req.clone(), UDP), Incoming::Absorbed);
    let resent = sim.transmits();
    assert_eq!(resent.len(), 1);
    assert_eq!(status(&resent[0].1), 100);

    sim.respond(key, Response::for_request(&req, 200, Some("s1")));
    let sent = sim.transmits();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.destination, "uac");
    assert_eq!(sim.layer.server_state(key), Some(ServerState::Completed));

    sim.advance(secs(10));
    assert_eq!(sim.receive(req.clone(), UDP), Incoming::Absorbed);
    let resent = sim.transmits();
    assert_eq!(resent.len(), 1);
    assert_eq!(status(&resent[0].1), 200);

    // A second final response is refused.
    let again = sim
        .layer
        .respond(sim.now, key, Response::for_request(&req, 500, None));
    assert_eq!(
        again,
        Err(TransactionError::ResponseNotAllowed {
            key,
            status: 500,
            state: ServerState::Completed
        })
    );

    // Timer J: 64*T1 after the final response.
    sim.run_until(secs(1 + 32) - ms(1));
    assert_eq!(sim.layer.len(), 1);
    sim.run_until(secs(1 + 32));
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
    assert!(matches!(
        sim.layer
            .respond(sim.now, key, Response::for_request(&req, 200, None)),
        Err(TransactionError::UnknownTransaction { .. })
    ));
    // Late retransmission: a new transaction (the TU answers it again).
    assert!(matches!(sim.receive(req, UDP), Incoming::New(..)));
}

#[test]
fn nist_tcp_final_response_terminates_at_once() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", Some("z9hG4bKnist2"), 1);
    let key = sim.new_server(req.clone(), TCP);
    sim.respond(key, Response::for_request(&req, 200, Some("s")));
    assert_eq!(sim.transmits().len(), 1);
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
}

#[test]
fn server_rejects_invalid_status() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", Some("z9hG4bKnist3"), 1);
    let key = sim.new_server(req.clone(), UDP);
    let mut bad = Response::for_request(&req, 200, None);
    bad.status = 99;
    assert_eq!(
        sim.layer.respond(sim.now, key, bad),
        Err(TransactionError::InvalidStatus { status: 99 })
    );
}

// ---------------------------------------------------------------------------
// INVITE client (§17.1.1)

#[test]
fn ict_timer_a_retransmits_until_timer_b() {
    let mut sim = Sim::new();
    let key = sim.start(invite("z9hG4bKict1"), UDP);
    let sent = sim.run_until(secs(40));
    let expected: Vec<Duration> = [0, 500, 1500, 3500, 7500, 15500, 31500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(times(&sent), expected);
    assert_eq!(
        sim.events(),
        [TransactionEvent::Timeout(key.into()), terminated(key)]
    );
    assert!(sim.layer.is_empty());
}

#[test]
fn ict_tcp_no_retransmission_timer_b_still_fires() {
    let mut sim = Sim::new();
    let key = sim.start(invite("z9hG4bKict2"), TCP);
    let sent = sim.run_until(secs(31));
    assert_eq!(sent.len(), 1);
    assert_eq!(sim.events(), []);
    sim.run_until(secs(32));
    assert_eq!(
        sim.events(),
        [TransactionEvent::Timeout(key.into()), terminated(key)]
    );
}

#[test]
fn ict_provisional_stops_retransmissions_and_timer_b() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKict3");
    let key = sim.start(inv.clone(), UDP);
    sim.run_until(ms(700));
    sim.response(Response::for_request(&inv, 100, None));
    sim.response(Response::for_request(&inv, 180, Some("b")));
    let events = sim.events();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, TransactionEvent::Response(k, _) if *k == key))
    );
    // Proceeding has no timer: the TU decides how long to ring.
    assert_eq!(sim.layer.poll_timeout(), None);
    assert!(sim.run_until(secs(120)).is_empty());
    assert_eq!(sim.events(), []);
    assert_eq!(sim.layer.len(), 1);
}

#[test]
fn ict_non_2xx_generates_ack_reacks_retransmissions_then_timer_d() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKict4");
    let key = sim.start(inv.clone(), UDP);
    sim.transmits();
    sim.advance(ms(100));
    sim.response(Response::for_request(&inv, 180, Some("b7")));
    let mut busy = Response::for_request(&inv, 486, Some("b7"));
    busy.headers.push("Record-Route", "<sip:rr.example.com;lr>");
    sim.response(busy.clone());

    let sent = sim.transmits();
    assert_eq!(sent.len(), 1);
    let ack = as_request(&sent[0].1).clone();
    assert_eq!(sent[0].1.destination, "uas");
    assert!(ack.method.is_ack());
    assert_eq!(ack.uri, inv.uri);
    assert_eq!(
        ack.headers.get_all("Via").collect::<Vec<_>>(),
        [inv.headers.get("Via").unwrap_or("")]
    );
    assert_eq!(ack.headers.get("From"), inv.headers.get("From"));
    assert_eq!(
        ack.headers.get("To"),
        Some("Bob <sip:bob@example.com>;tag=b7")
    );
    assert_eq!(ack.headers.get("Call-ID"), inv.headers.get("Call-ID"));
    assert_eq!(ack.headers.get("CSeq"), Some("314159 ACK"));
    assert_eq!(
        ack.headers.get_all("Route").collect::<Vec<_>>(),
        ["<sip:proxy.example.com;lr>"]
    );
    assert_eq!(ack.headers.get("Contact"), None);

    let events = sim.events();
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[1], TransactionEvent::Response(k, r) if *k == key && r.status == 486));

    // The 486 again: the ACK is re-sent, the TU does not hear of it.
    sim.advance(secs(1));
    sim.response(busy);
    let resent = sim.transmits();
    assert_eq!(resent.len(), 1);
    assert_eq!(as_request(&resent[0].1), &ack);
    assert_eq!(sim.events(), []);

    // Timer D: 32 s after the 486 (which came at 100 ms).
    sim.run_until(ms(100) + secs(32) - ms(1));
    assert_eq!(sim.layer.len(), 1);
    sim.run_until(ms(100) + secs(32));
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
}

#[test]
fn ict_tcp_non_2xx_acks_and_terminates() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKict5");
    let key = sim.start(inv.clone(), TCP);
    sim.transmits();
    sim.response(Response::for_request(&inv, 603, Some("t")));
    let sent = sim.transmits();
    assert_eq!(sent.len(), 1);
    assert!(as_request(&sent[0].1).method.is_ack());
    let events = sim.events();
    assert!(
        matches!(&events[..], [TransactionEvent::Response(_, r), TransactionEvent::Terminated(k)]
        if r.status == 603 && *k == TransactionKey::Client(key))
    );
}

#[test]
fn ict_2xx_is_passed_up_without_ack_and_retransmissions_too() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKict6");
    let key = sim.start(inv.clone(), UDP);
    sim.transmits();
    sim.advance(ms(200));
    let ok = Response::for_request(&inv, 200, Some("b2"));
    sim.response(ok.clone());
    assert!(
        matches!(&sim.events()[..], [TransactionEvent::Response(k, r)] if *k == key && r.status == 200)
    );
    // The transaction generates no ACK and stops retransmitting.
    let sent = sim.advance(secs(10));
    assert!(sent.is_empty(), "sent {sent:?}");
    // A retransmitted (or forked) 2xx still reaches the TU, which ACKs it.
    sim.response(ok.clone());
    assert!(matches!(&sim.events()[..], [TransactionEvent::Response(_, r)] if r.status == 200));
    assert!(sim.transmits().is_empty());
    // Non-2xx in Accepted is absorbed.
    sim.response(Response::for_request(&inv, 500, Some("b3")));
    assert_eq!(sim.events(), []);
    // Timer M ends it without a timeout.
    sim.run_until(ms(200) + secs(32));
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
    // Later 2xx retransmissions are stray: the dialog layer handles them.
    sim.response(ok);
    assert!(
        matches!(&sim.events()[..], [TransactionEvent::StrayResponse { response, source: "uas" }] if response.status == 200)
    );
}

#[test]
fn client_transport_error_ends_the_transaction() {
    let mut sim = Sim::new();
    let key = sim.start(invite("z9hG4bKict7"), TCP);
    let sent = sim.transmits();
    sim.layer.handle_transport_error(sent[0].1.transaction);
    assert_eq!(
        sim.events(),
        [
            TransactionEvent::TransportError(key.into()),
            terminated(key)
        ]
    );
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
    // Reporting it again is harmless.
    sim.layer.handle_transport_error(key.into());
    assert_eq!(sim.events(), []);
}

#[test]
fn start_client_validates_the_request() {
    let mut sim = Sim::new();
    let now = sim.now;
    let ack = request("ACK", Some("z9hG4bKs1"), 1);
    assert_eq!(
        sim.layer.start_client(now, ack, "uas", UDP),
        Err(TransactionError::AckWithoutTransaction)
    );
    let no_branch = request("OPTIONS", None, 1);
    assert_eq!(
        sim.layer.start_client(now, no_branch, "uas", UDP),
        Err(TransactionError::NotRfc3261Branch { branch: None })
    );
    let bare_cookie = request("OPTIONS", Some("z9hG4bK"), 1);
    assert_eq!(
        sim.layer.start_client(now, bare_cookie, "uas", UDP),
        Err(TransactionError::NotRfc3261Branch {
            branch: Some("z9hG4bK".to_owned())
        })
    );
    let mut no_cseq = request("OPTIONS", Some("z9hG4bKs2"), 1);
    no_cseq.headers.remove("CSeq");
    assert!(matches!(
        sim.layer.start_client(now, no_cseq, "uas", UDP),
        Err(TransactionError::BadHeader { header: "CSeq", .. })
    ));
    let branch = new_branch(0x5eed);
    sim.start(request("OPTIONS", Some(&branch), 1), UDP);
    assert!(matches!(
        sim.layer
            .start_client(now, request("OPTIONS", Some(&branch), 2), "uas", UDP),
        Err(TransactionError::DuplicateTransaction { .. })
    ));
    assert_eq!(sim.layer.len(), 1);
}

// ---------------------------------------------------------------------------
// INVITE server (§17.2.1)

#[test]
fn ist_sends_100_after_200ms_and_resends_it() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKist1");
    let key = sim.new_server(inv.clone(), UDP);
    assert!(sim.advance(ms(199)).is_empty());
    // A retransmission before any response: nothing to re-send yet.
    assert_eq!(sim.receive(inv.clone(), UDP), Incoming::Absorbed);
    assert!(sim.transmits().is_empty());
    let sent = sim.advance(ms(1));
    assert_eq!(sent.len(), 1);
    let trying = &sent[0].1;
    assert_eq!(status(trying), 100);
    assert_eq!(trying.transaction, TransactionKey::Server(key));
    assert_eq!(trying.destination, "uac");
    assert_eq!(sim.receive(inv, UDP), Incoming::Absorbed);
    assert_eq!(status(&sim.transmits()[0].1), 100);
}

#[test]
fn ist_no_automatic_100_when_tu_answers_or_disabled() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKist2");
    let key = sim.new_server(inv.clone(), UDP);
    sim.respond(key, Response::for_request(&inv, 180, Some("r")));
    let sent = sim.advance(secs(1));
    assert_eq!(
        sent.iter().map(|(_, t)| status(t)).collect::<Vec<_>>(),
        [180]
    );

    let mut quiet = Sim::with(TransactionConfig {
        auto_trying: None,
        ..TransactionConfig::default()
    });
    quiet.new_server(invite("z9hG4bKist3"), UDP);
    assert!(quiet.advance(secs(5)).is_empty());
}

#[test]
fn ist_timer_g_retransmits_final_until_ack_then_timer_i() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKist4");
    let key = sim.new_server(inv.clone(), UDP);
    sim.respond(key, Response::for_request(&inv, 180, Some("r4")));
    // A retransmitted INVITE in Proceeding gets the 180 again.
    assert_eq!(sim.receive(inv.clone(), UDP), Incoming::Absorbed);
    assert_eq!(status(&sim.transmits()[1].1), 180);

    sim.respond(key, Response::for_request(&inv, 486, Some("r4")));
    assert_eq!(sim.layer.server_state(key), Some(ServerState::Completed));
    let sent = sim.run_until(ms(12_000));
    let expected: Vec<Duration> = [0, 500, 1500, 3500, 7500, 11500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(times(&sent), expected);
    assert!(sent.iter().all(|(_, t)| status(t) == 486));

    // A retransmitted INVITE in Completed gets the 486 again.
    assert_eq!(sim.receive(inv.clone(), UDP), Incoming::Absorbed);
    assert_eq!(status(&sim.transmits()[0].1), 486);

    // The ACK is absorbed and stops timer G.
    assert_eq!(sim.receive(ack_for(&inv, "r4"), UDP), Incoming::Absorbed);
    assert_eq!(sim.layer.server_state(key), Some(ServerState::Confirmed));
    // ACK retransmissions and INVITE retransmissions are absorbed silently.
    assert_eq!(sim.receive(ack_for(&inv, "r4"), UDP), Incoming::Absorbed);
    assert_eq!(sim.receive(inv, UDP), Incoming::Absorbed);
    assert!(sim.transmits().is_empty());
    // Timer I = T4.
    assert!(sim.run_until(ms(12_000) + secs(5) - ms(1)).is_empty());
    assert_eq!(sim.layer.len(), 1);
    sim.run_until(ms(12_000) + secs(5));
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
}

#[test]
fn ist_timer_h_without_ack() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKist5");
    let key = sim.new_server(inv.clone(), UDP);
    sim.respond(key, Response::for_request(&inv, 503, Some("r5")));
    let sent = sim.run_until(secs(40));
    // 0, then G at 0.5, 1.5, 3.5, 7.5 and every 4 s up to 31.5.
    assert_eq!(sent.len(), 1 + 4 + 6);
    assert_eq!(
        sim.events(),
        [TransactionEvent::Timeout(key.into()), terminated(key)]
    );
    assert!(sim.layer.is_empty());
}

#[test]
fn ist_tcp_no_timer_g_and_ack_terminates() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKist6");
    let key = sim.new_server(inv.clone(), TCP);
    sim.respond(key, Response::for_request(&inv, 404, Some("r6")));
    assert_eq!(sim.advance(secs(10)).len(), 1);
    assert_eq!(sim.receive(ack_for(&inv, "r6"), TCP), Incoming::Absorbed);
    assert_eq!(sim.events(), [terminated(key)]);
}

#[test]
fn ist_2xx_moves_to_accepted() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKist7");
    let key = sim.new_server(inv.clone(), UDP);
    let ok = Response::for_request(&inv, 200, Some("r7"));
    sim.respond(key, ok.clone());
    assert_eq!(sim.layer.server_state(key), Some(ServerState::Accepted));
    assert_eq!(sim.transmits().len(), 1);
    // The transaction does not retransmit the 2xx (the TU does, through
    // respond) and absorbs INVITE retransmissions.
    assert!(sim.advance(secs(2)).is_empty());
    assert_eq!(sim.receive(inv.clone(), UDP), Incoming::Absorbed);
    assert!(sim.transmits().is_empty());
    sim.respond(key, ok);
    assert_eq!(sim.transmits().len(), 1);
    assert!(matches!(
        sim.layer
            .respond(sim.now, key, Response::for_request(&inv, 486, None)),
        Err(TransactionError::ResponseNotAllowed {
            state: ServerState::Accepted,
            ..
        })
    ));
    // The ACK of a 2xx has its own branch: it goes to the TU.
    let mut ack = ack_for(&inv, "r7");
    ack.headers.set(
        "Via",
        "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bKack2xx",
    );
    assert_eq!(sim.receive(ack.clone(), UDP), Incoming::Ack(ack));
    // Timer L.
    sim.run_until(secs(32));
    assert_eq!(sim.events(), [terminated(key)]);
}

#[test]
fn stray_ack_goes_to_the_tu() {
    let mut sim = Sim::new();
    let ack = request("ACK", Some("z9hG4bKnothing"), 1);
    assert_eq!(sim.receive(ack.clone(), UDP), Incoming::Ack(ack));
    assert!(sim.layer.is_empty());
}

// ---------------------------------------------------------------------------
// Matching (§17.1.3, §17.2.3)

#[test]
fn server_cancel_is_its_own_transaction_and_finds_its_invite() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKcan1");
    let invite_key = sim.new_server(inv.clone(), UDP);
    let cancel = request("CANCEL", Some("z9hG4bKcan1"), 314159);
    assert_eq!(sim.layer.cancel_target(&cancel), Some(invite_key));
    let cancel_key = sim.new_server(cancel.clone(), UDP);
    assert_ne!(cancel_key, invite_key);
    // Retransmitted CANCEL matches the CANCEL transaction, not the INVITE.
    assert_eq!(sim.receive(cancel.clone(), UDP), Incoming::Absorbed);
    sim.respond(cancel_key, Response::for_request(&cancel, 200, Some("c")));
    sim.respond(invite_key, Response::for_request(&inv, 487, Some("c")));
    assert_eq!(
        sim.layer.server_state(invite_key),
        Some(ServerState::Completed)
    );
    assert_eq!(sim.receive(ack_for(&inv, "c"), UDP), Incoming::Absorbed);
    assert_eq!(
        sim.layer.server_state(invite_key),
        Some(ServerState::Confirmed)
    );
    // A CANCEL for another branch targets nothing.
    let other = request("CANCEL", Some("z9hG4bKcan2"), 314159);
    assert_eq!(sim.layer.cancel_target(&other), None);
    assert_eq!(sim.layer.cancel_target(&inv), None);
}

#[test]
fn client_cancel_and_invite_share_a_branch() {
    let mut sim = Sim::new();
    let branch = new_branch(42);
    let inv = invite(&branch);
    let invite_key = sim.start(inv.clone(), UDP);
    sim.response(Response::for_request(&inv, 180, Some("t")));
    let cancel = request("CANCEL", Some(&branch), 314159);
    let cancel_key = sim.start(cancel.clone(), UDP);
    sim.events();
    sim.response(Response::for_request(&cancel, 200, Some("t")));
    sim.response(Response::for_request(&inv, 487, Some("t")));
    let events = sim.events();
    assert!(
        matches!(&events[0], TransactionEvent::Response(k, r) if *k == cancel_key && r.status == 200)
    );
    assert!(
        matches!(&events[1], TransactionEvent::Response(k, r) if *k == invite_key && r.status == 487)
    );
}

#[test]
fn responses_match_on_branch_and_cseq_method() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", Some("z9hG4bKm1"), 1);
    sim.start(req.clone(), UDP);
    let mut wrong_branch = Response::for_request(&req, 200, None);
    wrong_branch
        .headers
        .set("Via", "SIP/2.0/UDP pc33.example.com:5060;branch=z9hG4bKm2");
    sim.response(wrong_branch);
    let mut wrong_method = Response::for_request(&req, 200, None);
    wrong_method.headers.set("CSeq", "1 INFO");
    sim.response(wrong_method);
    let events = sim.events();
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, TransactionEvent::StrayResponse { .. }))
    );
}

#[test]
fn sent_by_is_part_of_the_server_key() {
    let mut sim = Sim::new();
    let req = request("OPTIONS", Some("z9hG4bKsb"), 1);
    let first = sim.new_server(req.clone(), UDP);
    let mut other_host = req.clone();
    other_host
        .headers
        .set("Via", "SIP/2.0/UDP evil.example.com:5060;branch=z9hG4bKsb");
    let second = sim.new_server(other_host, UDP);
    assert_ne!(first, second);
    // Host case does not matter.
    let mut upper = req;
    upper
        .headers
        .set("Via", "SIP/2.0/UDP PC33.Example.COM:5060;branch=z9hG4bKsb");
    assert_eq!(sim.receive(upper, UDP), Incoming::Absorbed);
}

#[test]
fn rfc2543_fallback_matching() {
    for branch in [None, Some("z9hG4bK"), Some("1234abcd")] {
        let mut sim = Sim::new();
        let inv = request("INVITE", branch, 5);
        let key = sim.new_server(inv.clone(), UDP);
        // Same request again: a retransmission.
        assert_eq!(
            sim.receive(inv.clone(), UDP),
            Incoming::Absorbed,
            "{branch:?}"
        );
        // Another From tag or Call-ID or CSeq: another transaction.
        let mut other_from = inv.clone();
        other_from
            .headers
            .set("From", "Alice <sip:alice@example.com>;tag=other");
        let other = sim.new_server(other_from, UDP);
        assert_ne!(other, key);
        let mut next_cseq = inv.clone();
        next_cseq.headers.set("CSeq", "6 INVITE");
        sim.new_server(next_cseq, UDP);
        let mut other_uri = inv.clone();
        other_uri.uri = "sip:carol@example.com".to_owned();
        sim.new_server(other_uri, UDP);
        assert_eq!(sim.layer.len(), 4);

        // CANCEL: own transaction, finds the INVITE.
        let cancel = request("CANCEL", branch, 5);
        assert_eq!(sim.layer.cancel_target(&cancel), Some(key));
        assert!(matches!(sim.receive(cancel, UDP), Incoming::New(..)));

        sim.respond(key, Response::for_request(&inv, 480, Some("legacy")));
        sim.transmits();
        // An ACK with another To tag is not for this transaction.
        let wrong = ack_for(&inv, "nope");
        assert_eq!(sim.receive(wrong.clone(), UDP), Incoming::Ack(wrong));
        assert_eq!(sim.layer.server_state(key), Some(ServerState::Completed));
        // The ACK carrying the response's To tag is absorbed.
        assert_eq!(
            sim.receive(ack_for(&inv, "legacy"), UDP),
            Incoming::Absorbed
        );
        assert_eq!(sim.layer.server_state(key), Some(ServerState::Confirmed));
        assert!(sim.transmits().is_empty());
    }
}

#[test]
fn rfc2543_reinvite_ack_matches() {
    let mut sim = Sim::new();
    let mut reinvite = request("INVITE", None, 9);
    reinvite
        .headers
        .set("To", "Bob <sip:bob@example.com>;tag=dlg");
    let key = sim.new_server(reinvite.clone(), UDP);
    sim.respond(key, Response::for_request(&reinvite, 491, Some("ignored")));
    let mut ack = reinvite.clone();
    ack.method = Method::from_token("ACK");
    ack.headers.set("CSeq", "9 ACK");
    assert_eq!(sim.receive(ack, UDP), Incoming::Absorbed);
    assert_eq!(sim.layer.server_state(key), Some(ServerState::Confirmed));
}

// ---------------------------------------------------------------------------
// Limits

#[test]
fn max_transactions_limits_new_requests_and_clients() {
    let mut sim = Sim::with(TransactionConfig {
        max_transactions: 2,
        ..TransactionConfig::default()
    });
    let first = request("OPTIONS", Some("z9hG4bKlim1"), 1);
    let first_key = sim.new_server(first.clone(), UDP);
    sim.start(request("OPTIONS", Some("z9hG4bKlim2"), 1), UDP);

    let third = request("OPTIONS", Some("z9hG4bKlim3"), 1);
    let Incoming::Rejected { request, error } = sim.receive(third.clone(), UDP) else {
        panic!("accepted a request over the limit");
    };
    assert_eq!(request, third);
    assert_eq!(error, TransactionError::TooManyTransactions { limit: 2 });
    assert_eq!(error.status_code(), Some(503));
    assert_eq!(
        sim.layer.start_client(sim.now, request.clone(), "uas", UDP),
        Err(TransactionError::TooManyTransactions { limit: 2 })
    );
    // Retransmissions of live transactions and ACKs are still handled.
    assert_eq!(sim.receive(first.clone(), UDP), Incoming::Absorbed);
    let ack = request_ack();
    assert_eq!(sim.receive(ack.clone(), UDP), Incoming::Ack(ack));
    assert_eq!(sim.layer.len(), 2);

    // Once one ends, there is room again.
    sim.respond(first_key, Response::for_request(&first, 200, None));
    sim.run_until(secs(33));
    assert!(sim.layer.is_empty());
    assert!(matches!(sim.receive(third, UDP), Incoming::New(..)));
}

/// A full table ends the answered non-INVITE server transactions that only
/// wait out timer J, oldest first, before it refuses anything: a
/// registration storm is served, and a late retransmission of an ended
/// transaction is a new request.
#[test]
fn a_full_table_ends_the_oldest_answered_transactions_first() {
    let mut sim = Sim::with(TransactionConfig {
        max_transactions: 3,
        ..TransactionConfig::default()
    });
    let answered: Vec<Request> = (1..=2)
        .map(|n| request("REGISTER", Some(&format!("z9hG4bKroom{n}")), n))
        .collect();
    let mut answered_keys = Vec::new();
    for register in &answered {
        let key = sim.new_server(register.clone(), UDP);
        sim.respond(key, Response::for_request(register, 200, None));
        answered_keys.push(key);
        sim.advance(ms(10));
    }
    // Still waiting for its answer: never ended early.
    let pending = request("REGISTER", Some("z9hG4bKroom3"), 3);
    let pending_key = sim.new_server(pending.clone(), UDP);
    sim.events();

    // Full: the oldest answered one makes room.
    let fourth = request("REGISTER", Some("z9hG4bKroom4"), 4);
    assert!(matches!(sim.receive(fourth, UDP), Incoming::New(..)));
    assert_eq!(sim.layer.len(), 3);
    assert_eq!(
        sim.events(),
        vec![TransactionEvent::Terminated(answered_keys[0].into())]
    );
    // The younger answered one still absorbs its retransmissions with its
    // response; the ended one's retransmission is a new request, which
    // ends the younger one in turn.
    assert_eq!(sim.receive(answered[1].clone(), UDP), Incoming::Absorbed);
    let resent = sim.transmits();
    assert_eq!(resent.len(), 1);
    assert!(matches!(&resent[0].1.message, Message::Response(r) if r.status == 200));
    assert!(matches!(
        sim.receive(answered[0].clone(), UDP),
        Incoming::New(..)
    ));
    assert_eq!(
        sim.events(),
        vec![TransactionEvent::Terminated(answered_keys[1].into())]
    );

    // Nothing answered is left to end: the next request is refused, and
    // the pending one was never touched.
    let fifth = request("REGISTER", Some("z9hG4bKroom5"), 5);
    assert!(matches!(
        sim.receive(fifth, UDP),
        Incoming::Rejected {
            error: TransactionError::TooManyTransactions { limit: 3 },
            ..
        }
    ));
    sim.respond(pending_key, Response::for_request(&pending, 200, None));
}

fn request_ack() -> Request {
    request("ACK", Some("z9hG4bKlimack"), 1)
}

#[test]
fn many_transactions_are_all_cleaned_up() {
    let mut sim = Sim::new();
    for i in 0..500u64 {
        let branch = new_branch(i);
        let key = sim.new_server(request("OPTIONS", Some(&branch), 1), UDP);
        if i % 2 == 0 {
            sim.respond(
                key,
                Response::for_request(&request("OPTIONS", Some(&branch), 1), 200, None),
            );
        }
        sim.start(request("MESSAGE", Some(&new_branch(i + 1_000_000)), 1), UDP);
        sim.start(invite(&new_branch(i + 2_000_000)), UDP);
    }
    assert_eq!(sim.layer.len(), 1500);
    sim.run_until(secs(40));
    // Server transactions the TU never answered stay until it does.
    assert_eq!(sim.layer.len(), 250);
    sim.events();
}

#[test]
fn automatic_100_copies_timestamp_and_has_no_to_tag() {
    let mut sim = Sim::new();
    let mut inv = invite("z9hG4bKts");
    inv.headers.push("Timestamp", "54");
    sim.new_server(inv.clone(), UDP);
    let sent = sim.advance(ms(200));
    let Message::Response(trying) = &sent[0].1.message else {
        panic!("sent a request");
    };
    assert_eq!(trying.status, 100);
    assert_eq!(trying.headers.get("Timestamp"), Some("54"));
    assert_eq!(trying.headers.get("To"), inv.headers.get("To"));
    assert_eq!(trying.headers.get("Via"), inv.headers.get("Via"));
}

#[test]
fn abandon_removes_a_proceeding_invite() {
    let mut sim = Sim::new();
    let inv = invite("z9hG4bKab");
    let key = sim.start(inv.clone(), UDP);
    sim.response(Response::for_request(&inv, 180, Some("t")));
    sim.events();
    sim.layer.abandon(key.into());
    assert_eq!(sim.events(), [terminated(key)]);
    assert!(sim.layer.is_empty());
    sim.layer.abandon(key.into());
    assert_eq!(sim.events(), []);
}

/// A small deterministic generator, so the chaos run is reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let at = (self.next() % items.len() as u64) as usize;
        &items[at]
    }
}

/// Random requests, responses, answers, errors and clock jumps, with
/// broken and missing headers: nothing panics, every key is terminated at
/// most once, and once the TU answers everything all transactions end.
#[test]
fn chaos_never_panics_and_cleans_up() {
    use std::collections::HashMap;

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut sim = Sim::with(TransactionConfig {
        max_transactions: 64,
        ..TransactionConfig::default()
    });
    let methods = ["INVITE", "ACK", "CANCEL", "OPTIONS", "BYE", "FOO"];
    let branches = [
        Some("z9hG4bK1"),
        Some("z9hG4bK2"),
        Some("z9hG4bK3"),
        Some("z9hG4bK"),
        Some(""),
        Some("legacy"),
        None,
    ];
    let statuses = [
        0u16,
        99,
        100,
        180,
        200,
        202,
        302,
        486,
        487,
        699,
        700,
        u16::MAX,
    ];
    let drops = ["", "Via", "CSeq", "From", "To", "Call-ID"];
    let garbage = [
        "",
        ";;;",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP [::1",
        "x, ,y",
        "SIP/2.0/UDP h;branch",
    ];
    let mut issued: Vec<TransactionKey> = Vec::new();
    let mut ended: HashMap<TransactionKey, u32> = HashMap::new();

    let record = |sim: &mut Sim, ended: &mut HashMap<TransactionKey, u32>| {
        sim.transmits();
        for event in sim.events() {
            if let TransactionEvent::Terminated(key) = event {
                *ended.entry(key).or_default() += 1;
            }
        }
    };

    for round in 0..20_000u32 {
        let method = *rng.pick(&methods);
        let fresh = format!("z9hG4bK{}", rng.next() % 500);
        let branch = if rng.next().is_multiple_of(2) {
            Some(fresh.as_str())
        } else {
            *rng.pick(&branches)
        };
        let mut req = request(method, branch, (rng.next() % 3) as u32);
        // Recently issued keys are the interesting ones.
        let recent = issued
            .len()
            .checked_sub(1 + (rng.next() % 16) as usize)
            .and_then(|at| issued.get(at).copied());
        let drop = *rng.pick(&drops);
        if !drop.is_empty() {
            req.headers.remove(drop);
        }
        if rng.next().is_multiple_of(10) {
            req.headers.set("Via", *rng.pick(&garbage));
        }
        if rng.next().is_multiple_of(10) {
            req.headers.set(
                "CSeq",
                *rng.pick(&["1", "x INVITE", "99999999999 BYE", "1 ACK"]),
            );
        }
        let reliable = rng.next().is_multiple_of(2);
        match rng.next() % 6 {
            0 => {
                if let Incoming::New(key, _) = sim.receive(req, reliable) {
                    issued.push(key.into());
                }
            }
            1 => {
                if let Ok(key) = sim.layer.start_client(sim.now, req, "uas", reliable) {
                    issued.push(key.into());
                }
            }
            2 => {
                let mut response = Response::for_request(&req, *rng.pick(&statuses), Some("r"));
                if rng.next().is_multiple_of(4) {
                    let name = *rng.pick(&drops);
                    response.headers.remove(name);
                }
                sim.response(response);
            }
            3 => {
                if let Some(TransactionKey::Server(key)) = recent {
                    let response = Response::for_request(&req, *rng.pick(&statuses), Some("r"));
                    let _ = sim.layer.respond(sim.now, key, response);
                }
            }
            4 => {
                if let Some(key) = recent {
                    sim.layer.handle_transport_error(key);
                }
            }
            _ => {
                sim.advance(ms(rng.next() % 3000));
            }
        }
        record(&mut sim, &mut ended);
        assert!(sim.layer.len() <= 64, "round {round}");
    }

    // The TU answers everything still waiting, and gives up on INVITEs
    // stuck in Proceeding after their (unanswered) CANCEL.
    for key in issued.clone() {
        if let TransactionKey::Server(k) = key {
            let _ = sim.layer.respond(
                sim.now,
                k,
                Response::for_request(&invite("z9hG4bKend"), 500, Some("e")),
            );
        }
    }
    sim.advance(secs(100));
    record(&mut sim, &mut ended);
    for key in issued.clone() {
        sim.layer.abandon(key);
    }
    record(&mut sim, &mut ended);
    assert!(sim.layer.is_empty());
    assert_eq!(sim.layer.poll_timeout(), None);
    assert!(issued.len() > 1000, "only {} transactions", issued.len());
    for key in &issued {
        assert_eq!(ended.get(key), Some(&1), "{key:?}");
    }
}
