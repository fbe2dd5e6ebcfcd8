//! The sandboxed runtime for tenant routing policies.
//!
//! Every routing decision of edgepbx is made by a WebAssembly component
//! implementing the `edgepbx:policy` world (`guest-policies/wit`): the
//! built-in policy, embedded in this crate, or a module a tenant uploaded.
//!
//! Module map:
//! - [`bindings`]: the one `bindgen!` over the contract; its types are the
//!   vocabulary of the crate ([`Call`], [`Decision`], ...).
//! - [`engine`]: one wasmtime engine with the pooling allocator and epoch
//!   interruption; [`PolicyEngine::compile`] validates a module (size cap,
//!   component, only the contract's imports, the world's export) and
//!   pre-instantiates it; [`PolicyEngine::run`] runs one decision in a fresh
//!   store bounded in time, memory and optionally fuel.
//! - [`policies`]: per-tenant activation with hot swap, fallback to the
//!   built-in policy on a fault, deactivation after repeated faults.
//! - [`host`]: the capabilities a guest may import, behind the
//!   [`Directory`] and [`KeyValue`] traits the embedder implements.
//! - [`decision`]: the bounds an answer must respect.
//! - [`playground`]: one decision from a JSON context, for
//!   `edgepbx policy try`.
//!
//! The crate reads no configuration and opens no sockets; it starts one
//! thread, which advances the engine's epoch.

pub mod bindings;
mod cache;
pub mod decision;
pub mod engine;
pub mod host;
pub mod limits;
pub mod playground;
pub mod policies;

pub use bindings::{Action, Call, Decision};
pub use engine::{
    BUILTIN_POLICY, CompiledPolicy, Fault, PolicyEngine, PolicyError, module_hash, to_component,
};
pub use host::{Directory, KeyValue, MemoryKv, StaticDirectory};
pub use limits::Limits;
pub use policies::{ActivePolicy, Deactivated, Decided, DecidedBy, Policies};
