//! The SIP transaction layer (RFC 3261 §17), sans-IO.
//!
//! One [`TransactionLayer`] holds every client and server transaction of an
//! endpoint. It opens no socket and reads no clock: the driver hands it
//! requests, responses and the current [`Instant`](std::time::Instant),
//! and drains what it produces — messages to send ([`TransactionLayer::poll_transmit`]), events
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

//!
//! Rooms: `timers` (T1, T2, T4, the timers of table 4, the deadlines),
//! `matching` (§17.1.3, §17.2.3, and the ACK and 100 the layer builds
//! itself), `client` (§17.1), `server` (§17.2), `layer` (the
//! [`TransactionLayer`] holding them all).

mod client;
mod layer;
mod matching;
mod server;
mod timers;

pub use layer::TransactionLayer;
pub use timers::{Timers, TransactionConfig};

use std::collections::VecDeque;

use crate::grammar::GrammarError;
use crate::message::{Message, Method, Request, Response};

use self::timers::Deadlines;

/// The branch prefix that marks an RFC 3261 transaction id (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

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
