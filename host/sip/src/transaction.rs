//! The SIP transaction layer (RFC 3261 §17), sans-IO.
//!
//! One [`TransactionLayer`] holds every client and server transaction of an
//! endpoint. It opens no socket and reads no clock: the driver hands it
//! requests, responses and the current [`Instant`], and drains what it
//! produces — messages to send ([`TransactionLayer::poll_transmit`]), events
//! for the transaction user ([`TransactionLayer::poll_event`]) and the next
//! deadline ([`TransactionLayer::poll_timeout`]).
//!
//! What is implemented, by section:
//!
//! - §17.1.1 INVITE client transaction (Calling, Proceeding, Completed;
//!   timers A, B, D), including the ACK for a non-2xx final response built
//!   inside the transaction (§17.1.1.3).
//! - §17.1.2 non-INVITE client transaction (Trying, Proceeding, Completed;
//!   timers E, F, K).
//! - §17.2.1 INVITE server transaction (Proceeding, Completed, Confirmed;
//!   timers G, H, I). The layer sends `100 Trying` itself when the TU has
//!   not answered within [`TransactionConfig::auto_trying`] (200 ms by
//!   default, as §17.2.1 asks).
//! - §17.2.2 non-INVITE server transaction (Trying, Proceeding, Completed;
//!   timer J). No automatic 100 is sent for non-INVITE requests (RFC 4320).
//! - RFC 6026 `Accepted` state on both INVITE sides (timers L and M): a 2xx
//!   does not destroy the transaction at once, so retransmitted INVITEs are
//!   absorbed on the server and retransmitted or forked 2xx responses still
//!   reach the TU on the client (which re-sends its ACK, §13.2.2.4).
//! - §17.1.3 response matching (top Via branch + CSeq method) and §17.2.3
//!   request matching (branch with the `z9hG4bK` magic cookie + sent-by +
//!   method, ACK matching its INVITE, CANCEL being a transaction of its
//!   own), with the RFC 2543 fallback (Request-URI, To tag, From tag,
//!   Call-ID, CSeq, top Via) for branches without the cookie. A branch of
//!   exactly `z9hG4bK`, with no identifier after the cookie, uses the
//!   fallback too.
//!
//! Retransmissions (timers A, E, G) run only over unreliable transports;
//! over reliable ones timers D, I, J and K are zero, so the transaction ends
//! as soon as it reaches the state they guard (§17.1.1.2, §17.1.2.2,
//! §17.2.1, §17.2.2). Terminated transactions are removed at once, and the
//! number of live transactions is bounded by
//! [`TransactionConfig::max_transactions`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::grammar::{self, CSeq, GrammarError, Via};
use crate::message::{Headers, Message, Method, Request, Response};

/// The branch prefix that marks an RFC 3261 transaction id (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Shortest interval between two retransmissions of one message. Guards
/// against a configured T1 or T2 of zero turning a retransmission timer
/// into a busy loop.
const MIN_RETRANSMIT_INTERVAL: Duration = Duration::from_millis(1);

/// Timer D's floor on unreliable transports (§17.1.1.2: "at least 32
/// seconds").
const TIMER_D_FLOOR: Duration = Duration::from_secs(32);

/// A fresh RFC 3261 branch from caller-supplied randomness: the magic
/// cookie followed by 16 hex digits. The crate reads no random source
/// itself; the caller passes a value from its RNG.
pub fn new_branch(random: u64) -> String {
    format!("{MAGIC_COOKIE}{random:016x}")
}

/// True when `branch` is an RFC 3261 transaction id: the magic cookie
/// followed by at least one more character. A bare `z9hG4bK` is not one.
pub fn is_rfc3261_branch(branch: &str) -> bool {
    branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE)
}

// ---------------------------------------------------------------------------
// Configuration

/// The base timer values of RFC 3261 §17.1.1.1 and table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip time estimate; first retransmission interval.
    pub t1: Duration,
    /// Longest retransmission interval for non-INVITE requests and INVITE
    /// responses.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for Timers {
    /// T1 = 500 ms, T2 = 4 s, T4 = 5 s.
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// First retransmission interval (timers A, E, G).
    fn first_interval(&self) -> Duration {
        self.t1.max(MIN_RETRANSMIT_INTERVAL)
    }

    /// The cap on timers E and G.
    fn cap(&self) -> Duration {
        self.t2.max(MIN_RETRANSMIT_INTERVAL)
    }

    /// 64·T1: timers B, F, H, and J on unreliable transports; RFC 6026
    /// timers L and M.
    fn transaction_timeout(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// Timer D: at least 32 s (and at least 64·T1, so a server with the
    /// same T1 has stopped retransmitting) on unreliable transports, zero
    /// on reliable ones.
    fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            TIMER_D_FLOOR.max(self.transaction_timeout())
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    fn t4_or_zero(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64·T1 on unreliable transports, zero on reliable ones.
    fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }
}

/// Settings of a [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionConfig {
    /// T1, T2, T4.
    pub timers: Timers,
    /// Most live transactions (client and server together). At the limit,
    /// the non-INVITE server transactions that have answered and only wait
    /// out timer J on UDP, to absorb retransmissions, make room, oldest
    /// first: a retransmission of such a request is then handled as a new
    /// request. Only when none is left is a new request returned as
    /// [`Incoming::Rejected`] with [`TransactionError::TooManyTransactions`]
    /// (answer 503), and a new client transaction refused with the same
    /// error.
    pub max_transactions: usize,
    /// When set, an INVITE server transaction whose TU has sent no response
    /// after this long sends `100 Trying` itself (§17.2.1). `None` leaves
    /// provisional responses entirely to the TU.
    pub auto_trying: Option<Duration>,
}

impl Default for TransactionConfig {
    /// Default timers, 50 000 transactions, automatic 100 after 200 ms.
    fn default() -> Self {
        TransactionConfig {
            timers: Timers::default(),
            max_transactions: 50_000,
            auto_trying: Some(Duration::from_millis(200)),
        }
    }
}

// ---------------------------------------------------------------------------
// Public keys, inputs and outputs

/// Identifies a client transaction for as long as it lives. Keys are never
/// reused by a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey(u64);

/// Identifies a server transaction for as long as it lives. Keys are never
/// reused by a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerKey(u64);

/// Either kind of transaction key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionKey {
    /// A client transaction.
    Client(ClientKey),
    /// A server transaction.
    Server(ServerKey),
}

impl From<ClientKey> for TransactionKey {
    fn from(key: ClientKey) -> Self {
        TransactionKey::Client(key)
    }
}

impl From<ServerKey> for TransactionKey {
    fn from(key: ServerKey) -> Self {
        TransactionKey::Server(key)
    }
}

/// What became of a request given to [`TransactionLayer::handle_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// The request starts a new server transaction; the TU answers it with
    /// [`TransactionLayer::respond`]. A CANCEL is its own transaction: the
    /// TU answers it and finds the INVITE it cancels with
    /// [`TransactionLayer::cancel_target`].
    New(ServerKey, Request),
    /// A retransmission, or the ACK of a non-2xx final response; the layer
    /// dealt with it (re-sending the last response where §17.2 says so).
    Absorbed,
    /// An ACK that belongs to no transaction: the ACK of a 2xx (its own
    /// hop-by-hop branch) or a stray ACK. The dialog layer (or a proxy)
    /// handles it; it is never answered.
    Ack(Request),
    /// The request cannot be handled by a transaction. The driver answers
    /// it statelessly with [`TransactionError::status_code`] (503 when the
    /// layer is full, 400 for unusable Via or CSeq) unless it is an ACK,
    /// or drops it.
    Rejected {
        /// The request, returned for building the response.
        request: Request,
        /// Why it was not taken.
        error: TransactionError,
    },
}

/// A message the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<D> {
    /// Where to: the destination of the client transaction, or the source
    /// the server transaction's request came from. For a connection this is
    /// the connection; for UDP the driver has already applied §18.2.2 and
    /// RFC 3581 when it chose the source value.
    pub destination: D,
    /// The request, ACK or response.
    pub message: Message,
    /// The transaction that sent it, to pass to
    /// [`TransactionLayer::handle_transport_error`] if sending fails.
    pub transaction: TransactionKey,
}

/// Something the transaction user must learn about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionEvent<D> {
    /// A response for a client transaction: every provisional and final
    /// response the state machine passes up, including retransmitted or
    /// forked 2xx responses to an INVITE (RFC 6026 Accepted state), which
    /// the TU acknowledges again.
    Response(ClientKey, Response),
    /// A response that matches no client transaction (or lacks the Via
    /// branch or CSeq to match one). A proxy forwards stray 2xx responses
    /// to INVITE; a UA may re-send its ACK for one.
    StrayResponse {
        /// The response as received.
        response: Response,
        /// Where it came from.
        source: D,
    },
    /// A transaction failed by timeout: timer B or F on a client (no final
    /// response), timer H on an INVITE server (no ACK for a non-2xx final
    /// response). A [`TransactionEvent::Terminated`] follows.
    Timeout(TransactionKey),
    /// The driver reported a transport error for the transaction
    /// (§17.1.4, §17.2.4). A [`TransactionEvent::Terminated`] follows.
    TransportError(TransactionKey),
    /// The transaction is gone; its key is no longer valid. Sent exactly
    /// once for every key the layer handed out.
    Terminated(TransactionKey),
}

/// Errors of the transaction layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// The layer holds `limit` live transactions already.
    #[error("transaction limit of {limit} reached")]
    TooManyTransactions {
        /// The configured [`TransactionConfig::max_transactions`].
        limit: usize,
    },
    /// A header field that matching needs is absent or malformed.
    #[error("{header} header field absent or malformed")]
    BadHeader {
        /// `Via` or `CSeq`.
        header: &'static str,
        /// What the grammar found.
        #[source]
        source: GrammarError,
    },
    /// The CSeq method differs from the request method (§8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {request}")]
    CSeqMethodMismatch {
        /// The method of the start line.
        request: Method,
        /// The method in CSeq.
        cseq: Method,
    },
    /// A client transaction needs a top Via whose branch starts with the
    /// magic cookie and carries an identifier after it (§8.1.1.7).
    #[error("top Via branch is not an RFC 3261 branch")]
    NotRfc3261Branch {
        /// The branch found, if any.
        branch: Option<String>,
    },
    /// ACK is sent without a client transaction (§17.1.1.3, §13.2.2.4).
    #[error("ACK does not start a client transaction")]
    AckWithoutTransaction,
    /// A client transaction with this branch and method is live.
    #[error("a client transaction with branch {branch} and method {method} exists")]
    DuplicateTransaction {
        /// The branch.
        branch: String,
        /// The CSeq method.
        method: Method,
    },
    /// The key names no live transaction (it may have terminated).
    #[error("no live transaction {key:?}")]
    UnknownTransaction {
        /// The key given.
        key: TransactionKey,
    },
    /// A response status outside 100..=699.
    #[error("status {status} is not a SIP status code")]
    InvalidStatus {
        /// The status given.
        status: u16,
    },
    /// The server transaction is past the point where this response may be
    /// sent (a response after a final one; after a 2xx to INVITE, only
    /// further 2xx responses are accepted).
    #[error("server transaction {key:?} cannot send {status} in state {state:?}")]
    ResponseNotAllowed {
        /// The transaction.
        key: ServerKey,
        /// The status of the refused response.
        status: u16,
        /// The state it is in.
        state: ServerState,
    },
}

impl TransactionError {
    /// The status code for answering the request statelessly, for errors
    /// returned in [`Incoming::Rejected`]; `None` for API misuse.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            TransactionError::TooManyTransactions { .. } => Some(503),
            TransactionError::BadHeader { .. } | TransactionError::CSeqMethodMismatch { .. } => {
                Some(400)
            }
            _ => None,
        }
    }
}

/// The state of a server transaction (RFC 3261 §17.2, RFC 6026 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE: request received, no response yet.
    Trying,
    /// A provisional response was sent (INVITE: also the initial state).
    Proceeding,
    /// A final response was sent (for INVITE: a non-2xx one).
    Completed,
    /// INVITE: the ACK for the non-2xx final response arrived.
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026).
    Accepted,
}

/// The state of a client transaction (RFC 3261 §17.1, RFC 6026 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// INVITE sent, no response yet.
    Calling,
    /// Non-INVITE sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (for INVITE: a non-2xx one).
    Completed,
    /// INVITE: a 2xx arrived (RFC 6026).
    Accepted,
}

/// The timers of RFC 3261 table 4 and RFC 6026, plus the automatic 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Timer {
    A,
    B,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    M,
    /// Send 100 Trying for an INVITE the TU has not answered.
    Trying,
}

// ---------------------------------------------------------------------------
// Matching keys

/// §17.1.3: a response matches the client transaction whose request had the
/// same top Via branch and CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientMatch {
    branch: String,
    method: String,
}

/// §17.2.3: what identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerMatch {
    /// Magic-cookie branch, sent-by (host lower-cased) and method (INVITE
    /// for an ACK).
    Rfc3261 {
        branch: String,
        host: String,
        port: Option<u16>,
        method: String,
    },
    /// RFC 2543 fallback. The To tag is that of the request which created
    /// the transaction; an ACK is matched against it and then checked
    /// against the To tag of the response the transaction sent.
    Rfc2543 {
        uri: String,
        to_tag: Option<String>,
        from_tag: Option<String>,
        call_id: String,
        seq: u32,
        method: String,
        /// The top Via, re-serialized so that spacing does not matter.
        via: String,
    },
}

/// Method name of INVITE, as matching keys store it.
const INVITE: &str = "INVITE";

/// The top Via and the CSeq of a message, which every transaction needs.
fn transaction_ids(headers: &Headers) -> Result<(Via, CSeq), TransactionError> {
    let via = grammar::top_via(headers).map_err(|source| TransactionError::BadHeader {
        header: "Via",
        source,
    })?;
    let cseq = headers
        .get("CSeq")
        .ok_or(GrammarError::Absent)
        .and_then(grammar::parse_cseq)
        .map_err(|source| TransactionError::BadHeader {
            header: "CSeq",
            source,
        })?;
    Ok((via, cseq))
}

/// The `tag` of a From or To field; none when absent or unreadable.
fn header_tag(headers: &Headers, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    grammar::parse_name_addr(value)
        .ok()
        .and_then(|addr| addr.tag().map(str::to_owned))
}

/// The server matching key of `request`, with `method` in place of the
/// request's own (INVITE for ACK and for CANCEL lookups) and `to_tag` as
/// the To tag to match with.
fn server_match(
    request: &Request,
    via: &Via,
    cseq: &CSeq,
    method: &str,
    to_tag: Option<String>,
) -> ServerMatch {
    match via.branch() {
        Some(branch) if is_rfc3261_branch(branch) => ServerMatch::Rfc3261 {
            branch: branch.to_owned(),
            host: via.host.to_string().to_ascii_lowercase(),
            port: via.port,
            method: method.to_owned(),
        },
        _ => ServerMatch::Rfc2543 {
            uri: request.uri.clone(),
            to_tag,
            from_tag: header_tag(&request.headers, "From"),
            call_id: request.headers.get("Call-ID").unwrap_or("").to_owned(),
            seq: cseq.seq,
            method: method.to_owned(),
            via: via.to_string(),
        },
    }
}

/// The client matching key of a response; `None` when it cannot match any
/// transaction this layer creates.
fn response_match(response: &Response) -> Option<ClientMatch> {
    if !(100..=699).contains(&response.status) {
        return None;
    }
    let (via, cseq) = transaction_ids(&response.headers).ok()?;
    let branch = via.branch().filter(|b| is_rfc3261_branch(b))?;
    Some(ClientMatch {
        branch: branch.to_owned(),
        method: cseq.method.as_str().into_owned(),
    })
}

/// The first Via value of a message, as written.
fn top_via_text(headers: &Headers) -> Option<&str> {
    let value = headers.get("Via")?;
    grammar::split_list(value).ok()?.first().copied()
}

/// The ACK for a non-2xx final response to `invite` (§17.1.1.3): same
/// Request-URI, Call-ID, From and CSeq number; To from the response; only
/// the top Via of the INVITE; its Route fields; no body.
fn ack_for(invite: &Request, seq: u32, response: &Response) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = top_via_text(&invite.headers) {
        headers.push("Via", via);
    }
    if let Some(max_forwards) = invite.headers.get("Max-Forwards") {
        headers.push("Max-Forwards", max_forwards);
    }
    for route in invite.headers.get_all("Route") {
        headers.push("Route", route);
    }
    if let Some(from) = invite.headers.get("From") {
        headers.push("From", from);
    }
    if let Some(to) = response
        .headers
        .get("To")
        .or_else(|| invite.headers.get("To"))
    {
        headers.push("To", to);
    }
    if let Some(call_id) = invite.headers.get("Call-ID") {
        headers.push("Call-ID", call_id);
    }
    headers.push("CSeq", format!("{seq} ACK"));
    Request {
        method: Method::Known(rsip::Method::Ack),
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// The 100 Trying a server INVITE transaction sends on its own (§8.2.6.1:
/// Timestamp copied, no To tag).
fn trying_for(request: &Request) -> Response {
    let mut trying = Response::for_request(request, 100, None);
    if let Some(timestamp) = request.headers.get("Timestamp") {
        trying.headers.push("Timestamp", timestamp);
    }
    trying
}

// ---------------------------------------------------------------------------
// Shared output of the state machines

/// Armed timers of every transaction, ordered by deadline. Each transaction
/// also lists its own armed timers, so that disarming finds the entry.
#[derive(Debug, Default)]
struct Deadlines {
    set: BTreeSet<(Instant, TransactionKey, Timer)>,
}

impl Deadlines {
    /// Arms (or re-arms) `timer` at `at`; `None` (a deadline beyond what
    /// `Instant` can hold) leaves it disarmed.
    fn arm(
        &mut self,
        armed: &mut Vec<(Timer, Instant)>,
        key: TransactionKey,
        timer: Timer,
        at: Option<Instant>,
    ) {
        self.disarm(armed, key, timer);
        if let Some(at) = at {
            self.set.insert((at, key, timer));
            armed.push((timer, at));
        }
    }

    fn disarm(&mut self, armed: &mut Vec<(Timer, Instant)>, key: TransactionKey, timer: Timer) {
        if let Some(at) = armed.iter().position(|(t, _)| *t == timer) {
            let (_, deadline) = armed.swap_remove(at);
            self.set.remove(&(deadline, key, timer));
        }
    }

    fn disarm_all(&mut self, armed: &mut Vec<(Timer, Instant)>, key: TransactionKey) {
        for (timer, deadline) in armed.drain(..) {
            self.set.remove(&(deadline, key, timer));
        }
    }
}

/// Everything the state machines produce.
#[derive(Debug)]
struct Output<D> {
    transmits: VecDeque<Transmit<D>>,
    events: VecDeque<TransactionEvent<D>>,
    deadlines: Deadlines,
}

/// Whether a transaction lives on after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Stay,
    Terminate,
}

/// `now + after`, or `None` past the end of `Instant`'s range.
fn deadline(now: Instant, after: Duration) -> Option<Instant> {
    now.checked_add(after)
}

// ---------------------------------------------------------------------------
// Client transactions (§17.1)

/// An INVITE (§17.1.1) or non-INVITE (§17.1.2) client transaction.
#[derive(Debug)]
struct ClientTransaction<D> {
    key: ClientKey,
    invite: bool,
    state: ClientState,
    destination: D,
    reliable: bool,
    /// The request, kept for retransmission and for building the ACK.
    request: Request,
    /// The CSeq number, for the ACK.
    seq: u32,
    /// The ACK of a non-2xx final response, re-sent for every
    /// retransmission of that response.
    ack: Option<Request>,
    /// Current interval of timer A or E.
    interval: Duration,
    matcher: ClientMatch,
    armed: Vec<(Timer, Instant)>,
}

impl<D: Clone> ClientTransaction<D> {
    fn tkey(&self) -> TransactionKey {
        self.key.into()
    }

    fn send(&self, out: &mut Output<D>, message: Message) {
        out.transmits.push_back(Transmit {
            destination: self.destination.clone(),
            message,
            transaction: self.tkey(),
        });
    }

    fn arm(&mut self, out: &mut Output<D>, timer: Timer, at: Option<Instant>) {
        let key = self.tkey();
        out.deadlines.arm(&mut self.armed, key, timer, at);
    }

    fn disarm(&mut self, out: &mut Output<D>, timer: Timer) {
        let key = self.tkey();
        out.deadlines.disarm(&mut self.armed, key, timer);
    }

    /// Waits `after` before terminating; zero (reliable transports)
    /// terminates now.
    fn linger(&mut self, out: &mut Output<D>, now: Instant, timer: Timer, after: Duration) -> Next {
        if after.is_zero() {
            Next::Terminate
        } else {
            self.arm(out, timer, deadline(now, after));
            Next::Stay
        }
    }

    /// Sends the request and arms the initial timers.
    fn start(&mut self, now: Instant, timers: &Timers, out: &mut Output<D>) {
        self.send(out, Message::Request(self.request.clone()));
        let (retransmit, timeout) = if self.invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !self.reliable {
            self.arm(out, retransmit, deadline(now, self.interval));
        }
        self.arm(out, timeout, deadline(now, timers.transaction_timeout()));
    }

    fn deliver(&self, out: &mut Output<D>, response: Response) {
        out.events
            .push_back(TransactionEvent::Response(self.key, response));
    }

    fn on_response(
        &mut self,
        now: Instant,
        response: Response,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Next {
        let status = response.status;
        match (self.invite, self.state) {
            (true, ClientState::Calling | ClientState::Proceeding) => {
                self.disarm(out, Timer::A);
                self.disarm(out, Timer::B);
                match status {
                    100..=199 => {
                        self.state = ClientState::Proceeding;
                        self.deliver(out, response);
                        Next::Stay
                    }
                    200..=299 => {
                        self.state = ClientState::Accepted;
                        self.deliver(out, response);
                        self.arm(out, Timer::M, deadline(now, timers.transaction_timeout()));
                        Next::Stay
                    }
                    _ => {
                        self.state = ClientState::Completed;
                        let ack = ack_for(&self.request, self.seq, &response);
                        self.send(out, Message::Request(ack.clone()));
                        self.ack = Some(ack);
                        self.deliver(out, response);
                        let after = timers.timer_d(self.reliable);
                        self.linger(out, now, Timer::D, after)
                    }
                }
            }
            (true, ClientState::Completed) => {
                // A retransmission of the final response: the ACK was lost.
                if status >= 300
                    && let Some(ack) = &self.ack
                {
                    self.send(out, Message::Request(ack.clone()));
                }
                Next::Stay
            }
            (true, ClientState::Accepted) => {
                // RFC 6026 §8.4: 2xx responses (retransmitted or from other
                // forks) go up so the TU acknowledges them; others are
                // absorbed.
                if (200..=299).contains(&status) {
                    self.deliver(out, response);
                }
                Next::Stay
            }
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if status < 200 {
                    self.state = ClientState::Proceeding;
                    self.deliver(out, response);
                    Next::Stay
                } else {
                    self.disarm(out, Timer::E);
                    self.disarm(out, Timer::F);
                    self.state = ClientState::Completed;
                    self.deliver(out, response);
                    let after = timers.t4_or_zero(self.reliable);
                    self.linger(out, now, Timer::K, after)
                }
            }
            // Non-INVITE Completed absorbs retransmissions; the remaining
            // pairs are states the other kind never enters.
            _ => Next::Stay,
        }
    }

    fn on_timer(
        &mut self,
        now: Instant,
        timer: Timer,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Next {
        match (timer, self.state) {
            (Timer::A, ClientState::Calling) => {
                self.send(out, Message::Request(self.request.clone()));
                // Timer A doubles without a cap until timer B ends it.
                self.interval = self.interval.saturating_mul(2);
                self.arm(out, Timer::A, deadline(now, self.interval));
                Next::Stay
            }
            (Timer::E, ClientState::Trying | ClientState::Proceeding) => {
                self.send(out, Message::Request(self.request.clone()));
                self.interval = if self.state == ClientState::Trying {
                    self.interval.saturating_mul(2).min(timers.cap())
                } else {
                    timers.cap()
                };
                self.arm(out, Timer::E, deadline(now, self.interval));
                Next::Stay
            }
            (Timer::B, ClientState::Calling)
            | (Timer::F, ClientState::Trying | ClientState::Proceeding) => {
                out.events.push_back(TransactionEvent::Timeout(self.tkey()));
                Next::Terminate
            }
            (Timer::D | Timer::K, ClientState::Completed) | (Timer::M, ClientState::Accepted) => {
                Next::Terminate
            }
            // Timers are disarmed on every state change; nothing else can
            // fire.
            _ => Next::Stay,
        }
    }
}

// ---------------------------------------------------------------------------
// Server transactions (§17.2)

/// An INVITE (§17.2.1) or non-INVITE (§17.2.2) server transaction.
#[derive(Debug)]
struct ServerTransaction<D> {
    key: ServerKey,
    invite: bool,
    state: ServerState,
    source: D,
    reliable: bool,
    matcher: ServerMatch,
    /// The To tag of the final response, against which an RFC 2543 ACK is
    /// matched.
    response_to_tag: Option<String>,
    /// The last response sent, re-sent on request retransmissions and by
    /// timer G.
    last_response: Option<Response>,
    /// The automatic 100 Trying, until it is sent or the TU answers.
    trying: Option<Response>,
    /// Current interval of timer G.
    interval: Duration,
    armed: Vec<(Timer, Instant)>,
}

/// What an ACK did to a server INVITE transaction.
enum AckOutcome {
    /// It acknowledged the non-2xx final response.
    Absorbed(Next),
    /// It is not for this transaction's state machine; the TU gets it.
    PassUp,
}

impl<D: Clone> ServerTransaction<D> {
    fn tkey(&self) -> TransactionKey {
        self.key.into()
    }

    fn send(&self, out: &mut Output<D>, response: Response) {
        out.transmits.push_back(Transmit {
            destination: self.source.clone(),
            message: Message::Response(response),
            transaction: self.tkey(),
        });
    }

    fn arm(&mut self, out: &mut Output<D>, timer: Timer, at: Option<Instant>) {
        let key = self.tkey();
        out.deadlines.arm(&mut self.armed, key, timer, at);
    }

    fn disarm(&mut self, out: &mut Output<D>, timer: Timer) {
        let key = self.tkey();
        out.deadlines.disarm(&mut self.armed, key, timer);
    }

    fn linger(&mut self, out: &mut Output<D>, now: Instant, timer: Timer, after: Duration) -> Next {
        if after.is_zero() {
            Next::Terminate
        } else {
            self.arm(out, timer, deadline(now, after));
            Next::Stay
        }
    }

    /// The request arrived again: re-send the last provisional or final
    /// response, if any (§17.2.1, §17.2.2).
    fn on_retransmission(&self, out: &mut Output<D>) {
        if matches!(self.state, ServerState::Proceeding | ServerState::Completed)
            && let Some(response) = &self.last_response
        {
            self.send(out, response.clone());
        }
    }

    fn on_ack(&mut self, now: Instant, timers: &Timers, out: &mut Output<D>) -> AckOutcome {
        match self.state {
            ServerState::Completed => {
                self.disarm(out, Timer::G);
                self.disarm(out, Timer::H);
                self.state = ServerState::Confirmed;
                let after = timers.t4_or_zero(self.reliable);
                AckOutcome::Absorbed(self.linger(out, now, Timer::I, after))
            }
            ServerState::Confirmed => AckOutcome::Absorbed(Next::Stay),
            // In Accepted the ACK is the 2xx's, which the TU handles (RFC
            // 6026 §7.1); in Proceeding it acknowledges nothing.
            _ => AckOutcome::PassUp,
        }
    }

    fn on_respond(
        &mut self,
        now: Instant,
        response: Response,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Result<Next, TransactionError> {
        let status = response.status;
        let key = self.key;
        let refuse = |state| TransactionError::ResponseNotAllowed { key, status, state };
        match (self.invite, self.state) {
            (true, ServerState::Proceeding) => {
                self.trying = None;
                self.disarm(out, Timer::Trying);
                self.send(out, response.clone());
                match status {
                    100..=199 => {
                        self.last_response = Some(response);
                        Ok(Next::Stay)
                    }
                    200..=299 => {
                        self.state = ServerState::Accepted;
                        self.last_response = None;
                        self.arm(out, Timer::L, deadline(now, timers.transaction_timeout()));
                        Ok(Next::Stay)
                    }
                    _ => {
                        self.state = ServerState::Completed;
                        self.response_to_tag = header_tag(&response.headers, "To");
                        self.last_response = Some(response);
                        if !self.reliable {
                            self.interval = timers.first_interval();
                            self.arm(out, Timer::G, deadline(now, self.interval));
                        }
                        self.arm(out, Timer::H, deadline(now, timers.transaction_timeout()));
                        Ok(Next::Stay)
                    }
                }
            }
            (true, ServerState::Accepted) if (200..=299).contains(&status) => {
                // The TU retransmits its 2xx (§13.3.1.4) or sends another.
                self.send(out, response);
                Ok(Next::Stay)
            }
            (false, ServerState::Trying | ServerState::Proceeding) => {
                self.send(out, response.clone());
                if status < 200 {
                    self.state = ServerState::Proceeding;
                    self.last_response = Some(response);
                    Ok(Next::Stay)
                } else {
                    self.state = ServerState::Completed;
                    self.last_response = Some(response);
                    let after = timers.timer_j(self.reliable);
                    Ok(self.linger(out, now, Timer::J, after))
                }
            }
            (_, state) => Err(refuse(state)),
        }
    }

    fn on_timer(
        &mut self,
        now: Instant,
        timer: Timer,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Next {
        match (timer, self.state) {
            (Timer::Trying, ServerState::Proceeding) => {
                if self.last_response.is_none()
                    && let Some(trying) = self.trying.take()
                {
                    self.send(out, trying.clone());
                    self.last_response = Some(trying);
                }
                Next::Stay
            }
            (Timer::G, ServerState::Completed) => {
                if let Some(response) = &self.last_response {
                    self.send(out, response.clone());
                }
                self.interval = self.interval.saturating_mul(2).min(timers.cap());
                self.arm(out, Timer::G, deadline(now, self.interval));
                Next::Stay
            }
            (Timer::H, ServerState::Completed) => {
                out.events.push_back(TransactionEvent::Timeout(self.tkey()));
                Next::Terminate
            }
            (Timer::I, ServerState::Confirmed)
            | (Timer::J, ServerState::Completed)
            | (Timer::L, ServerState::Accepted) => Next::Terminate,
            // Timers are disarmed on every state change; nothing else can
            // fire.
            _ => Next::Stay,
        }
    }
}

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
            armed: Vec::new(),
        };
        if invite && let Some(delay) = self.config.auto_trying {
            txn.trying = Some(trying_for(&request));
            txn.arm(&mut self.out, Timer::Trying, deadline(now, delay));
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
            armed: Vec::new(),
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
                    txn.armed.retain(|(t, _)| *t != timer);
                    if txn.on_timer(now, timer, &timers, &mut self.out) == Next::Terminate {
                        self.end_client(k);
                    }
                }
                TransactionKey::Server(k) => {
                    let Some(txn) = self.servers.get_mut(&k) else {
                        continue;
                    };
                    txn.armed.retain(|(t, _)| *t != timer);
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
            self.out.deadlines.disarm_all(&mut txn.armed, key.into());
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
            self.out.deadlines.disarm_all(&mut txn.armed, key.into());
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
    fn timer_values() {
        let t = Timers::default();
        assert_eq!(t.transaction_timeout(), Duration::from_secs(32));
        assert_eq!(t.timer_d(false), Duration::from_secs(32));
        assert_eq!(t.timer_d(true), Duration::ZERO);
        assert_eq!(t.t4_or_zero(false), Duration::from_secs(5));
        assert_eq!(t.t4_or_zero(true), Duration::ZERO);
        assert_eq!(t.timer_j(false), Duration::from_secs(32));
        assert_eq!(t.timer_j(true), Duration::ZERO);
        let slow = Timers {
            t1: Duration::from_secs(1),
            ..t
        };
        assert_eq!(slow.timer_d(false), Duration::from_secs(64));
        let zero = Timers {
            t1: Duration::ZERO,
            t2: Duration::ZERO,
            t4: Duration::ZERO,
        };
        assert_eq!(zero.first_interval(), MIN_RETRANSMIT_INTERVAL);
        assert_eq!(zero.cap(), MIN_RETRANSMIT_INTERVAL);
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
