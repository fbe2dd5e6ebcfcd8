//! Sans-IO PBX logic for edgepbx: everything signalling decides, as one
//! state machine, [`Engine`], with no sockets, no threads, no tokio and no
//! clock. Time and messages go in through `handle_*` calls; what to do
//! comes out of [`Engine::poll_output`] (send a message, ask the routing
//! policy, start, steer or stop a media relay, store a binding change or a
//! call record, publish an event) and [`Engine::poll_timeout`]. Every
//! random choice comes from a generator seeded by the driver, so a
//! simulation replays exactly; the tests in `tests/` run calls and
//! registrations in virtual time against scripted peers.
//!
//! Module map:
//! - [`engine`]: the [`Engine`] type: dispatch of requests, the drain
//!   rule, housekeeping (binding expiry, keepalives, trunk registration).
//! - `signalling`: what every part sends through: the transaction layer,
//!   the output queue, the seeded randomness, [`LocalRoutes`].
//! - [`registrar`]: REGISTER (RFC 3261 §10.3) and the location service.
//! - [`digest`]: the digest gate every authenticated request goes through,
//!   with its throttle ([`throttle`]).
//! - `calls`: the B2BUA: call set-up, routing steps, forking, answers,
//!   in-dialog relaying, media anchoring, teardown.
//! - `trunks`: registration with carriers (RFC 3261 §10.2).
//! - `keepalive`: OPTIONS to every binding (RFC 3261 §11).
//! - [`subscriptions`]: SUBSCRIBE/NOTIFY (RFC 6665): dialog state for BLF
//!   keys, presence, message summaries.
//! - [`routing`]: the engine's own types for routing decisions; the driver
//!   converts them at the policy boundary.
//! - [`tenants`]: the configuration signalling reads ([`TenantTable`]).
//! - [`lines`]: live line state, shared with readers.
//! - [`events`], [`output`]: what comes out.
//! - [`config`], [`peer`], [`time`]: settings, flows, civil time.

mod calls;
pub mod config;
pub mod digest;
pub mod engine;
pub mod events;
mod keepalive;
pub mod lines;
pub mod output;
pub mod peer;
pub mod registrar;
mod resync;
pub mod routing;
mod signalling;
pub mod subscriptions;
pub mod tenants;
pub mod throttle;
pub mod time;
mod trunks;

pub use calls::ActiveCall;
pub use config::EngineConfig;
pub use engine::{DeviceInfo, Engine};
pub use events::{Event, LegRole, LegState};
pub use lines::{LineState, Lines, Presence};
pub use output::{CallRecord, MediaCommand, MediaSlot, Output, Served, Service, Transmit};
pub use peer::{Peer, StreamKind};
pub use signalling::LocalRoutes;
pub use tenants::{Tenant, TenantTable};
