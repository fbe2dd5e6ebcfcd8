//! Sans-IO SIP core for edgepbx.
//!
//! Nothing in this crate opens a socket, spawns a task or reads a clock:
//! bytes and the current time go in, messages, transmits, events and the
//! next timeout come out. The tokio drivers live in the `edgepbx` server.
//!
//! Module map, by RFC layer:
//! - [`message`]: requests, responses and header fields (RFC 3261 §7).
//! - [`parse`]: framing (§18.3: one message per datagram, Content-Length on
//!   streams), the tolerant start-line and header parser, limits, and the
//!   validation that decides between accepting a message, a 4xx/5xx, or a
//!   silent drop.
//! - [`grammar`]: typed views of header values: Via, CSeq, name-addr
//!   (From, To, Contact), SIP URIs with %-unescaping, parameters.
//! - [`uas`]: the generic UAS checks of RFC 3261 §8.2 (method, URI scheme,
//!   Require, Content-Type, Accept) that run before a request reaches its
//!   handler.
//! - [`transaction`]: client and server transactions, INVITE and
//!   non-INVITE (RFC 3261 §17), timers A–K and RFC 6026's L and M,
//!   matching (§17.1.3, §17.2.3).
//! - [`dialog`]: dialogs (RFC 3261 §12): creation at the UAS and the UAC,
//!   requests inside them with loose and strict routing, ordering checks.
//! - [`auth`]: digest authentication (RFC 7616, RFC 8760): the server side,
//!   and the client side for trunks.

pub mod auth;
pub mod dialog;
pub mod grammar;
pub mod message;
pub mod parse;
pub mod transaction;
pub mod uas;

pub use message::{Header, Headers, Message, Method, Request, Response};
