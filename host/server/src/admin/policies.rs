//! Routing policies as administration handles them: the engine that
//! validates and tries modules before they are stored or activated, and
//! bringing a tenant's running policy in line with the store.

use std::sync::{Arc, OnceLock};

use edgepbx_policy::{CompiledPolicy, Limits, Policies, PolicyEngine, PolicyError, to_component};
use edgepbx_store::Store;
use tracing::{info, warn};

use crate::config::Config;

/// Starts the policy runtime (its compiled modules cached under the data
/// directory) with every tenant's active module.
pub async fn load_policies(store: &Store, config: &Config) -> anyhow::Result<Arc<Policies>> {
    let cache = config.data.join("policy-cache");
    if let Err(error) = std::fs::create_dir_all(&cache) {
        warn!(%error, dir = %cache.display(), "no policy artifact cache");
    }
    let engine = Arc::new(PolicyEngine::new(config.policy.limits(), Some(cache))?);
    let policies = Arc::new(Policies::new(engine));
    activate_stored(store, &policies).await?;
    Ok(policies)
}

/// Activates every tenant's stored active module: what the server starts
/// with.
async fn activate_stored(store: &Store, policies: &Arc<Policies>) -> anyhow::Result<()> {
    for module in store.policies().all_active().await? {
        activate(policies, module).await?;
    }
    Ok(())
}

/// Brings the tenant's running policy in line with the store: activates
/// its active version if another (or none) runs, reading the module's bytes
/// only then, and returns it to the built-in policy when none is active.
///
/// A version the runtime took out of service after faults stays out while
/// the store, whose record of that is written behind, still says it is
/// active: the deactivation is stored here instead.
pub async fn sync_policy(
    store: &Store,
    policies: &Arc<Policies>,
    tenant: &str,
) -> anyhow::Result<()> {
    // Looked at before the store is read: a deactivation stored after
    // this has gone, but then the store says so.
    let unrecorded = policies.unrecorded_deactivation(tenant);
    let stored = store.policies().list(tenant).await?;
    let Some(info) = stored.into_iter().find(|m| m.active) else {
        back_to_builtin(policies, tenant);
        return Ok(());
    };
    if unrecorded.is_some_and(|gone| gone.version == info.version) {
        // Stored here unless the write-behind is storing it.
        if let Some(gone) = policies.take_unrecorded_deactivation(tenant, info.version) {
            let written = store
                .policies()
                .deactivate(tenant, gone.version, Some(&gone.reason))
                .await;
            match written {
                Ok(()) => policies.deactivation_stored(tenant, gone.version),
                Err(_) => policies.deactivation_not_stored(tenant, gone.version),
            }
            written?;
        }
        back_to_builtin(policies, tenant);
        return Ok(());
    }
    if policies.active(tenant).map(|a| a.version) != Some(info.version)
        && let Some(module) = store.policies().get(tenant, info.version).await?
    {
        activate(policies, module).await?;
    }
    Ok(())
}

/// Compiles a stored module (off the async workers; from the artifact
/// cache when it is there) and makes it its tenant's policy.
async fn activate(
    policies: &Arc<Policies>,
    module: edgepbx_store::PolicyModule,
) -> anyhow::Result<()> {
    let runtime = policies.clone();
    tokio::task::spawn_blocking(move || {
        let info = &module.info;
        match runtime.engine().compile(&module.wasm) {
            Ok(compiled) => {
                info!(tenant = %info.tenant, version = info.version,
                    from_cache = compiled.from_cache(), "routing policy activated");
                runtime.activate(&info.tenant, info.version, compiled);
            }
            Err(error) => warn!(tenant = %info.tenant, version = info.version, %error,
                "stored policy does not compile; the built-in policy decides"),
        }
    })
    .await?;
    Ok(())
}

fn back_to_builtin(policies: &Policies, tenant: &str) {
    if policies.active(tenant).is_some() {
        info!(tenant, "the built-in policy decides again");
        policies.deactivate(tenant);
    }
}

/// How many checks and tries the validation engine runs at once; more wait.
const VALIDATION_SLOTS: u32 = 16;

/// The engine for validating and trying modules: the server's limits, but
/// a deadline of a second, so that a debug build or a busy laptop does not
/// turn a slow run into a timeout (the server's deadline is 5 ms), and room
/// for [`VALIDATION_SLOTS`] at once, so that one tenant's tries of a slow
/// module hardly delay another's. Made once per process and shared: making
/// one compiles the built-in policy and starts a thread, which every
/// upload, activation and try would otherwise pay again.
pub fn engine() -> Result<&'static PolicyEngine, PolicyError> {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine);
    }
    let limits = Limits {
        deadline: std::time::Duration::from_secs(1),
        max_concurrent_decisions: VALIDATION_SLOTS,
        ..Limits::default()
    };
    let made = PolicyEngine::new(limits, None)?;
    // Two first callers may both make one: the second is dropped.
    Ok(ENGINE.get_or_init(|| made))
}

/// Checks a module as the server will run it, before it is stored or
/// activated: a core module built with the SDK is wrapped into a
/// component, which [`engine`] compiles, on a blocking thread (both take a
/// while). Returns the component with its hash.
pub async fn check_module(wasm: Vec<u8>) -> Result<(Vec<u8>, String), PolicyError> {
    tokio::task::spawn_blocking(move || {
        let (component, policy) = compile_module(wasm)?;
        Ok((component, policy.hash().to_owned()))
    })
    .await
    .map_err(|e| PolicyError::Engine(e.to_string()))?
}

/// A policy as a developer builds it (a component, or a core module built
/// with the SDK, wrapped into one here) compiled by [`engine`]: the
/// component and what it compiled to.
pub fn compile_module(wasm: Vec<u8>) -> Result<(Vec<u8>, Arc<CompiledPolicy>), PolicyError> {
    let engine = engine()?;
    let component = to_component(wasm, engine.limits())?;
    let policy = engine.compile(&component)?;
    Ok((component, policy))
}
