//! The transaction layer: every client and server transaction of one
//! endpoint, their tables and indexes, and the drain rule.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::grammar::{CSeq, Via};
use crate::message::{Request, Response};

use super::client::{ClientState, ClientTransaction};
use super::matching::*;
use super::server::{AckOutcome, ServerTransaction};
use super::timers::{Armed, Deadlines, Timer, TransactionConfig, deadline};
use super::*;

// ---------------------------------------------------------------------------
// The layer

/// Every client and server transaction of one endpoint.
///
/// `D` is the driver's opaque destination: a socket address, a connection
/// id, whatever the driver routes by. The layer only clones it into
/// [`Transmit`]s and events.
///
/// # Drain rule
///
/// After every call to a `handle_*` method, [`TransactionLayer::respond`]
/// or [`TransactionLayer::start_client`], the driver drains
/// [`TransactionLayer::poll_transmit`] until it returns `None` (sending
/// each message, and reporting a failed send with
/// [`TransactionLayer::handle_transport_error`]), then
/// [`TransactionLayer::poll_event`] until it returns `None` (passing each
/// event to the TU), and finally sleeps until
/// [`TransactionLayer::poll_timeout`], at which instant it calls
/// [`TransactionLayer::handle_timeout`]. Undrained output accumulates.
///
/// # Lifetimes
///
/// Transactions end by themselves (timers B, D, F, H, I, J, K, L, M, or at
/// once on reliable transports) and are removed when they do, with one
/// [`TransactionEvent::Terminated`] each. Two states have no timer in RFC
/// 3261 and wait for the TU: a server transaction it has not answered, and
/// an INVITE client transaction that got a provisional response but no
/// final one. The TU answers, cancels or [`TransactionLayer::abandon`]s
/// them; [`TransactionConfig::max_transactions`] bounds what a TU that does
/// not can hold.
#[derive(Debug)]
pub struct TransactionLayer<D> {
    config: TransactionConfig,
    /// Source of keys; never reused.
    next_id: u64,
    // Transactions and matching keys are boxed: tens of thousands of
    // transactions wait out timer J at a few thousand requests per second,
    // and growing a table then moves pointers, not kilobytes of state
    // (moving the state stalled every message for milliseconds).
    clients: HashMap<ClientKey, Box<ClientTransaction<D>>>,
    /// §17.1.3 index of `clients`.
    client_index: HashMap<Box<ClientMatch>, ClientKey>,
    servers: HashMap<ServerKey, Box<ServerTransaction<D>>>,
    /// §17.2.3 index of `servers`.
    server_index: HashMap<Box<ServerMatch>, ServerKey>,
    /// Non-INVITE server transactions that entered Completed on UDP, in
    /// that order, which is also the order their timer J fires in: the ones
    /// to end early when the table is full. Keys of transactions already
    /// ended are dropped as they reach the front.
    lingering: VecDeque<ServerKey>,
    out: Output<D>,
}

/// Most server transactions the tables are sized for before any arrives.
const PRESIZED_MAX: usize = 1 << 18;

impl<D: Clone> TransactionLayer<D> {
    /// An empty layer.
    pub fn new(config: TransactionConfig) -> Self {
        TransactionLayer {
            config,
            next_id: 0,
            clients: HashMap::new(),
            client_index: HashMap::new(),
            // Growing a table rehashes every entry in one go: at a few
            // thousand requests per second the server tables reach tens of
            // thousands of transactions, and each doubling stalled the
            // thread for milliseconds. Sized for the limit up front (up to
            // a bound, whatever the limit).
            servers: HashMap::with_capacity(config.max_transactions.min(PRESIZED_MAX)),
            server_index: HashMap::with_capacity(config.max_transactions.min(PRESIZED_MAX)),
            lingering: VecDeque::new(),
            out: Output {
                transmits: VecDeque::new(),
                events: VecDeque::new(),
                deadlines: Deadlines::default(),
            },
        }
    }

    /// The settings the layer runs with.
    pub fn config(&self) -> &TransactionConfig {
        &self.config
    }

    /// Number of live transactions, client and server.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// Client transactions still waiting for a final response.
    pub fn awaiting_final(&self) -> usize {
        self.clients
            .values()
            .filter(|t| {
                matches!(
                    t.state,
                    ClientState::Calling | ClientState::Trying | ClientState::Proceeding
                )
            })
            .count()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn next_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// A request arrived from `source` over a reliable (TCP, TLS, WS) or
    /// unreliable (UDP) transport. The request has passed message
    /// validation; the layer checks only the Via and CSeq it needs.
    pub fn handle_request(
        &mut self,
        now: Instant,
        request: Request,
        source: D,
        reliable: bool,
    ) -> Incoming {
        let (via, cseq) = match transaction_ids(&request.headers) {
            Ok(ids) => ids,
            Err(error) => return Incoming::Rejected { request, error },
        };
        if cseq.method != request.method {
            let error = TransactionError::CSeqMethodMismatch {
                request: request.method.clone(),
                cseq: cseq.method,
            };
            return Incoming::Rejected { request, error };
        }
        if request.method.is_ack() {
            return self.handle_ack(now, request, &via, &cseq);
        }

        let method = request.method.as_str().into_owned();
        let to_tag = header_tag(&request.headers, "To");
        let matcher = server_match(&request, &via, &cseq, &method, to_tag);
        if let Some(key) = self.server_index.get(&matcher) {
            if let Some(txn) = self.servers.get(key) {
                txn.on_retransmission(&mut self.out);
            }
            return Incoming::Absorbed;
        }

        if !self.make_room() {
            let error = TransactionError::TooManyTransactions {
                limit: self.config.max_transactions,
            };
            return Incoming::Rejected { request, error };
        }

        let key = ServerKey(self.next_id());
        let invite = request.method.is_invite();
        let mut txn = ServerTransaction {
            key,
            invite,
            state: if invite {
                ServerState::Proceeding
            } else {
                ServerState::Trying
            },
            source,
            reliable,
            matcher: matcher.clone(),
            response_to_tag: None,
            last_response: None,
            trying: None,
            interval: self.config.timers.first_interval(),
            armed: Armed::new(key.into()),
        };
        if invite && let Some(delay) = self.config.auto_trying {
            txn.trying = Some(trying_for(&request));
            txn.armed
                .arm(&mut self.out.deadlines, Timer::Trying, deadline(now, delay));
        }
        self.servers.insert(key, Box::new(txn));
        self.server_index.insert(Box::new(matcher), key);
        Incoming::New(key, request)
    }

    /// §17.2.3 for ACK: it matches the INVITE transaction it acknowledges;
    /// for RFC 2543 peers its To tag must also be the response's.
    fn handle_ack(&mut self, now: Instant, request: Request, via: &Via, cseq: &CSeq) -> Incoming {
        let ack_tag = header_tag(&request.headers, "To");
        // An RFC 2543 ACK carries the tag of the response; the INVITE had
        // that tag too (re-INVITE) or none (initial INVITE).
        let first = server_match(&request, via, cseq, INVITE, ack_tag.clone());
        let legacy = matches!(first, ServerMatch::Rfc2543 { .. });
        let mut candidates = vec![first];
        if legacy && ack_tag.is_some() {
            candidates.push(server_match(&request, via, cseq, INVITE, None));
        }
        for matcher in &candidates {
            let Some(&key) = self.server_index.get(matcher) else {
                continue;
            };
            let Some(txn) = self.servers.get_mut(&key) else {
                continue;
            };
            if !txn.invite {
                continue;
            }
            if legacy
                && matches!(txn.state, ServerState::Completed | ServerState::Confirmed)
                && txn.response_to_tag != ack_tag
            {
                continue;
            }
            return match txn.on_ack(now, &self.config.timers, &mut self.out) {
                AckOutcome::Absorbed(next) => {
                    if next == Next::Terminate {
                        self.end_server(key);
                    }
                    Incoming::Absorbed
                }
                AckOutcome::PassUp => Incoming::Ack(request),
            };
        }
        Incoming::Ack(request)
    }

    /// The INVITE server transaction a CANCEL request targets (§9.2: the
    /// §17.2.3 match with method INVITE), if it is still live.
    pub fn cancel_target(&self, cancel: &Request) -> Option<ServerKey> {
        if cancel.method.as_str() != "CANCEL" {
            return None;
        }
        let (via, cseq) = transaction_ids(&cancel.headers).ok()?;
        let to_tag = header_tag(&cancel.headers, "To");
        let matcher = server_match(cancel, &via, &cseq, INVITE, to_tag);
        let key = *self.server_index.get(&matcher)?;
        self.servers.get(&key).filter(|txn| txn.invite).map(|_| key)
    }

    /// The state of a live server transaction.
    pub fn server_state(&self, key: ServerKey) -> Option<ServerState> {
        self.servers.get(&key).map(|txn| txn.state)
    }

    /// The TU answers server transaction `key`. The response is sent to
    /// the request's source; a final response moves the transaction on
    /// (for INVITE: a 2xx to Accepted, after which the TU may pass further
    /// 2xx responses, its own retransmissions, through here).
    pub fn respond(
        &mut self,
        now: Instant,
        key: ServerKey,
        response: Response,
    ) -> Result<(), TransactionError> {
        if !(100..=699).contains(&response.status) {
            return Err(TransactionError::InvalidStatus {
                status: response.status,
            });
        }
        let txn = self
            .servers
            .get_mut(&key)
            .ok_or(TransactionError::UnknownTransaction { key: key.into() })?;
        let next = txn.on_respond(now, response, &self.config.timers, &mut self.out)?;
        if next == Next::Terminate {
            self.end_server(key);
        } else if !txn.invite && txn.state == ServerState::Completed {
            self.linger(key);
        }
        Ok(())
    }

    /// Queues a server transaction that now only absorbs retransmissions.
    fn linger(&mut self, key: ServerKey) {
        self.drop_ended_lingering();
        self.lingering.push_back(key);
    }

    fn drop_ended_lingering(&mut self) {
        while let Some(front) = self.lingering.front() {
            if self.servers.contains_key(front) {
                break;
            }
            self.lingering.pop_front();
        }
    }

    /// Whether a new transaction fits, after ending the oldest lingering
    /// ones if the table is full.
    fn make_room(&mut self) -> bool {
        while self.len() >= self.config.max_transactions {
            self.drop_ended_lingering();
            let Some(oldest) = self.lingering.pop_front() else {
                return false;
            };
            self.end_server(oldest);
        }
        true
    }

    /// The TU starts a client transaction: `request` carries its final top
    /// Via with a fresh RFC 3261 branch (see [`new_branch`]) and a CSeq
    /// whose method is the request's. CANCEL is started here like any
    /// non-INVITE request; ACK is not a transaction and is refused.
    pub fn start_client(
        &mut self,
        now: Instant,
        request: Request,
        destination: D,
        reliable: bool,
    ) -> Result<ClientKey, TransactionError> {
        if request.method.is_ack() {
            return Err(TransactionError::AckWithoutTransaction);
        }
        let (via, cseq) = transaction_ids(&request.headers)?;
        if cseq.method != request.method {
            return Err(TransactionError::CSeqMethodMismatch {
                request: request.method.clone(),
                cseq: cseq.method,
            });
        }
        let branch = match via.branch() {
            Some(branch) if is_rfc3261_branch(branch) => branch.to_owned(),
            other => {
                return Err(TransactionError::NotRfc3261Branch {
                    branch: other.map(str::to_owned),
                });
            }
        };
        let matcher = ClientMatch {
            branch,
            method: request.method.as_str().into_owned(),
        };
        if self.client_index.contains_key(&matcher) {
            return Err(TransactionError::DuplicateTransaction {
                branch: matcher.branch,
                method: request.method,
            });
        }
        if !self.make_room() {
            return Err(TransactionError::TooManyTransactions {
                limit: self.config.max_transactions,
            });
        }

        let key = ClientKey(self.next_id());
        let invite = request.method.is_invite();
        let mut txn = ClientTransaction {
            key,
            invite,
            state: if invite {
                ClientState::Calling
            } else {
                ClientState::Trying
            },
            destination,
            reliable,
            request,
            seq: cseq.seq,
            ack: None,
            interval: self.config.timers.first_interval(),
            matcher: matcher.clone(),
            armed: Armed::new(key.into()),
        };
        txn.start(now, &self.config.timers, &mut self.out);
        self.clients.insert(key, Box::new(txn));
        self.client_index.insert(Box::new(matcher), key);
        Ok(key)
    }

    /// A response arrived from `source`. A matched response drives its
    /// client transaction, which passes it up as
    /// [`TransactionEvent::Response`] where §17.1 says so; any other
    /// response becomes [`TransactionEvent::StrayResponse`].
    pub fn handle_response(&mut self, now: Instant, response: Response, source: D) {
        let key = response_match(&response).and_then(|m| self.client_index.get(&m).copied());
        let Some(txn) = key.and_then(|key| self.clients.get_mut(&key)) else {
            self.out
                .events
                .push_back(TransactionEvent::StrayResponse { response, source });
            return;
        };
        let key = txn.key;
        if txn.on_response(now, response, &self.config.timers, &mut self.out) == Next::Terminate {
            self.end_client(key);
        }
    }

    /// Sending a message of transaction `key` failed (§17.1.4, §17.2.4):
    /// the transaction ends with [`TransactionEvent::TransportError`] and
    /// [`TransactionEvent::Terminated`]. Unknown keys (the transaction has
    /// already ended) are ignored.
    pub fn handle_transport_error(&mut self, key: TransactionKey) {
        let live = match key {
            TransactionKey::Client(k) => self.clients.contains_key(&k),
            TransactionKey::Server(k) => self.servers.contains_key(&k),
        };
        if !live {
            return;
        }
        self.out
            .events
            .push_back(TransactionEvent::TransportError(key));
        match key {
            TransactionKey::Client(k) => self.end_client(k),
            TransactionKey::Server(k) => self.end_server(k),
        }
    }

    /// The TU gives up on transaction `key`: it is removed at once, with a
    /// [`TransactionEvent::Terminated`] and nothing sent. This is how a UAC
    /// destroys an INVITE transaction that got no final response within
    /// 64·T1 of its CANCEL (§9.1) — an INVITE client transaction in
    /// Proceeding has no timer of its own — and how a TU drops a server
    /// transaction it will never answer. Unknown keys are ignored.
    pub fn abandon(&mut self, key: TransactionKey) {
        match key {
            TransactionKey::Client(k) => self.end_client(k),
            TransactionKey::Server(k) => self.end_server(k),
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Timers re-armed while firing are strictly later than `now`
        // (intervals are at least MIN_RETRANSMIT_INTERVAL), so this ends.
        while let Some(&(at, key, timer)) = self.out.deadlines.set.first() {
            if at > now {
                break;
            }
            self.out.deadlines.set.remove(&(at, key, timer));
            let timers = self.config.timers;
            match key {
                TransactionKey::Client(k) => {
                    let Some(txn) = self.clients.get_mut(&k) else {
                        continue;
                    };
                    txn.armed.fired(timer);
                    if txn.on_timer(now, timer, &timers, &mut self.out) == Next::Terminate {
                        self.end_client(k);
                    }
                }
                TransactionKey::Server(k) => {
                    let Some(txn) = self.servers.get_mut(&k) else {
                        continue;
                    };
                    txn.armed.fired(timer);
                    if txn.on_timer(now, timer, &timers, &mut self.out) == Next::Terminate {
                        self.end_server(k);
                    }
                }
            }
        }
    }

    /// Whether transmits or events are waiting to be polled.
    pub fn has_output(&self) -> bool {
        !self.out.transmits.is_empty() || !self.out.events.is_empty()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit<D>> {
        self.out.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TransactionEvent<D>> {
        self.out.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called;
    /// `None` when no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.out.deadlines.set.first().map(|(at, _, _)| *at)
    }

    fn end_client(&mut self, key: ClientKey) {
        if let Some(mut txn) = self.clients.remove(&key) {
            txn.armed.disarm_all(&mut self.out.deadlines);
            if self.client_index.get(&txn.matcher) == Some(&key) {
                self.client_index.remove(&txn.matcher);
            }
            self.out
                .events
                .push_back(TransactionEvent::Terminated(key.into()));
        }
    }

    fn end_server(&mut self, key: ServerKey) {
        if let Some(mut txn) = self.servers.remove(&key) {
            txn.armed.disarm_all(&mut self.out.deadlines);
            if self.server_index.get(&txn.matcher) == Some(&key) {
                self.server_index.remove(&txn.matcher);
            }
            self.out
                .events
                .push_back(TransactionEvent::Terminated(key.into()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::message::Headers;

    use super::*;

    fn request(method: &str, branch: &str) -> Request {
        let mut headers = Headers::default();
        headers.push(
            "Via",
            format!("SIP/2.0/UDP pc33.example.com;branch={branch}, SIP/2.0/UDP other.example.com;branch=z9hG4bKold"),
        );
        headers.push("Max-Forwards", "70");
        headers.push("Route", "<sip:p1.example.com;lr>");
        headers.push("Route", "<sip:p2.example.com;lr>");
        headers.push("From", "<sip:alice@example.com>;tag=a1");
        headers.push("To", "<sip:bob@example.com>");
        headers.push("Call-ID", "call-1");
        headers.push("CSeq", format!("7 {method}"));
        headers.push("Contact", "<sip:alice@pc33.example.com>");
        Request {
            method: Method::from_token(method),
            uri: "sip:bob@example.com".to_owned(),
            headers,
            body: b"v=0\r\n".to_vec(),
        }
    }

    #[test]
    fn branches() {
        assert_eq!(new_branch(0xab), "z9hG4bK00000000000000ab");
        assert!(is_rfc3261_branch(&new_branch(1)));
        assert!(!is_rfc3261_branch("z9hG4bK"));
        assert!(!is_rfc3261_branch("abc"));
        assert!(!is_rfc3261_branch(""));
    }

    #[test]
    fn ack_follows_17_1_1_3() {
        let invite = request("INVITE", "z9hG4bKabc");
        let mut response = Response::for_request(&invite, 486, Some("b9"));
        response
            .headers
            .push("Record-Route", "<sip:rr.example.com;lr>");
        let ack = ack_for(&invite, 7, &response);
        assert!(ack.method.is_ack());
        assert_eq!(ack.uri, invite.uri);
        let vias: Vec<_> = ack.headers.get_all("Via").collect();
        assert_eq!(vias, ["SIP/2.0/UDP pc33.example.com;branch=z9hG4bKabc"]);
        let routes: Vec<_> = ack.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(ack.headers.get("To"), Some("<sip:bob@example.com>;tag=b9"));
        assert_eq!(ack.headers.get("From"), invite.headers.get("From"));
        assert_eq!(ack.headers.get("Call-ID"), Some("call-1"));
        assert_eq!(ack.headers.get("CSeq"), Some("7 ACK"));
        assert_eq!(ack.headers.get("Max-Forwards"), Some("70"));
        assert_eq!(ack.headers.get("Contact"), None);
        assert_eq!(ack.headers.get("Record-Route"), None);
        assert!(ack.body.is_empty());
    }

    #[test]
    fn zero_timers_do_not_loop() {
        let config = TransactionConfig {
            timers: Timers {
                t1: Duration::ZERO,
                t2: Duration::ZERO,
                t4: Duration::ZERO,
            },
            ..TransactionConfig::default()
        };
        let mut layer = TransactionLayer::<u8>::new(config);
        let now = Instant::now();
        let result = layer.start_client(now, request("OPTIONS", "z9hG4bKz"), 1, false);
        assert!(result.is_ok());
        // Timer F is zero: the transaction times out at once.
        layer.handle_timeout(now);
        assert!(layer.is_empty());
        assert_eq!(layer.poll_timeout(), None);
    }

    #[test]
    fn huge_timers_do_not_overflow() {
        let config = TransactionConfig {
            timers: Timers {
                t1: Duration::MAX,
                t2: Duration::MAX,
                t4: Duration::MAX,
            },
            ..TransactionConfig::default()
        };
        let mut layer = TransactionLayer::<u8>::new(config);
        let now = Instant::now();
        assert!(
            layer
                .start_client(now, request("INVITE", "z9hG4bKhuge"), 1, false)
                .is_ok()
        );
        layer.handle_timeout(now);
        assert_eq!(layer.len(), 1);
    }

    #[test]
    fn requests_without_via_or_cseq_are_rejected() {
        let mut layer = TransactionLayer::<u8>::new(TransactionConfig::default());
        let now = Instant::now();
        let mut no_via = request("INVITE", "z9hG4bKa");
        no_via.headers.remove("Via");
        let Incoming::Rejected { error, .. } = layer.handle_request(now, no_via, 1, false) else {
            panic!("accepted a request without Via");
        };
        assert_eq!(error.status_code(), Some(400));

        let mut bad_cseq = request("INVITE", "z9hG4bKa");
        bad_cseq.headers.set("CSeq", "seven INVITE");
        assert!(matches!(
            layer.handle_request(now, bad_cseq, 1, false),
            Incoming::Rejected { .. }
        ));

        let mut mismatch = request("INVITE", "z9hG4bKa");
        mismatch.headers.set("CSeq", "7 BYE");
        let Incoming::Rejected { error, .. } = layer.handle_request(now, mismatch, 1, false) else {
            panic!("accepted a CSeq method mismatch");
        };
        assert!(matches!(error, TransactionError::CSeqMethodMismatch { .. }));
        assert!(layer.is_empty());
    }

    #[test]
    fn odd_responses_are_stray() {
        let mut layer = TransactionLayer::<u8>::new(TransactionConfig::default());
        let now = Instant::now();
        let invite = request("INVITE", "z9hG4bKodd");
        let key = layer.start_client(now, invite.clone(), 1, false);
        assert!(key.is_ok());
        let base = Response::for_request(&invite, 180, None);
        let mut cases = Vec::new();
        let mut no_via = base.clone();
        no_via.headers.remove("Via");
        cases.push(no_via);
        let mut no_cseq = base.clone();
        no_cseq.headers.remove("CSeq");
        cases.push(no_cseq);
        let mut bad_status = base.clone();
        bad_status.status = 42;
        cases.push(bad_status);
        let mut big_status = base.clone();
        big_status.status = 999;
        cases.push(big_status);
        let mut other_method = base.clone();
        other_method.headers.set("CSeq", "7 BYE");
        cases.push(other_method);
        let mut garbage_via = base;
        garbage_via.headers.set("Via", ";;;,,,");
        cases.push(garbage_via);
        let count = cases.len();
        for response in cases {
            layer.handle_response(now, response, 2);
        }
        for _ in 0..count {
            assert!(matches!(
                layer.poll_event(),
                Some(TransactionEvent::StrayResponse { source: 2, .. })
            ));
        }
        assert_eq!(layer.poll_event(), None);
    }
}
