//! One decision from a JSON description of a call: what
//! `edgepbx policy try` runs, so a policy developer can see what a module
//! decides without a server.
//!
//! The JSON has the call (the contract's `call` record, field names in
//! snake_case, variants by name), and optionally a directory and the
//! key-value store's content:
//!
//! ```json
//! { "call": { ... }, "directory": { "extensions": [], "groups": [] }, "kv": { "key": "value" } }
//! ```
//!
//! `guest-policies/examples/contexts/` has complete examples.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bindings::{Call, Decision};
use crate::engine::{CompiledPolicy, Fault, PolicyEngine};
use crate::host::{MemoryKv, StaticDirectory};

/// Keys the playground's key-value store admits.
const PLAYGROUND_KV_KEYS: usize = 1000;

/// A call with the world around it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// The call to decide.
    pub call: Call,
    /// The tenant's directory.
    #[serde(default)]
    pub directory: StaticDirectory,
    /// The key-value store's content before the decision.
    #[serde(default)]
    pub kv: BTreeMap<String, String>,
}

/// What a module decided, and the key-value store after.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The decision.
    pub decision: Decision,
    /// The key-value store's content after the decision.
    pub kv: BTreeMap<String, String>,
}

/// Why a context could not be decided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlaygroundError {
    /// The JSON does not describe a context.
    #[error("the context is not valid: {0}")]
    Context(#[from] serde_json::Error),
    /// The module faulted.
    #[error("the policy faulted: {0}")]
    Fault(#[from] Fault),
}

/// Parses a context.
pub fn parse_context(json: &str) -> Result<Context, PlaygroundError> {
    Ok(serde_json::from_str(json)?)
}

/// Runs `policy` once on `context`.
pub fn run(
    engine: &PolicyEngine,
    policy: &CompiledPolicy,
    context: Context,
) -> Result<Outcome, PlaygroundError> {
    let tenant = context.call.tenant.clone();
    let kv = Arc::new(MemoryKv::new(PLAYGROUND_KV_KEYS));
    kv.load(&tenant, context.kv);
    let decision = engine.run(
        policy,
        &tenant,
        &context.call,
        Arc::new(context.directory),
        kv.clone(),
    )?;
    Ok(Outcome {
        decision,
        kv: kv.entries(&tenant),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_needs_a_call() {
        assert!(matches!(
            parse_context("{}"),
            Err(PlaygroundError::Context(_))
        ));
    }
}
