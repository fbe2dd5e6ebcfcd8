//! Routing policies as administration handles them: the engine that
//! validates and tries modules before they are stored or activated, and
//! bringing a tenant's running policy in line with the store.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use edgepbx_policy::{
    CompiledPolicy, Limits, Policies, PolicyEngine, PolicyError, module_hash, to_component,
};
use edgepbx_store::Store;
use tracing::{info, warn};

use crate::config::Config;
use crate::work::{Gate, WorkError};

/// Validations and tries one tenant may have running or waiting.
const MAX_QUEUED: usize = 4;
/// Modules the validation engine keeps compiled, newest first.
const MAX_REMEMBERED: usize = 16;

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

/// Runs validation work (a compilation, a try) for `tenant` (`None`: the
/// operators) on a blocking thread: one at a time for a tenant, at most as
/// many as there are cores in all, and [`MAX_QUEUED`] waiting per tenant.
pub async fn gated<T: Send + 'static>(
    tenant: Option<&str>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, WorkError> {
    static GATE: OnceLock<Gate> = OnceLock::new();
    let gate = GATE.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Gate::new(cores, 1, MAX_QUEUED)
    });
    gate.run(crate::work::Payer::of(tenant), work).await
}

/// Checks a module as the server will run it, before it is stored or
/// activated: a core module built with the SDK is wrapped into a
/// component, which [`engine`] compiles (through [`gated`]). Returns the
/// component with its hash.
pub async fn check_module(
    tenant: Option<&str>,
    wasm: Vec<u8>,
) -> Result<Result<(Vec<u8>, String), PolicyError>, WorkError> {
    gated(tenant, move || {
        let (component, policy) = compile_module(wasm)?;
        Ok((component, policy.hash().to_owned()))
    })
    .await
}

/// A policy as a developer builds it (a component, or a core module built
/// with the SDK, wrapped into one here) compiled by [`engine`]: the
/// component and what it compiled to. The last [`MAX_REMEMBERED`] modules
/// are kept by the hash of what was given, so a module uploaded, tried and
/// activated is compiled once.
pub fn compile_module(wasm: Vec<u8>) -> Result<(Vec<u8>, Arc<CompiledPolicy>), PolicyError> {
    static RECENT: OnceLock<Mutex<Recent>> = OnceLock::new();
    let recent = RECENT.get_or_init(Mutex::default);
    let key = module_hash(&wasm);
    if let Some(hit) = lock(recent).get(&key) {
        return Ok(hit);
    }
    let engine = engine()?;
    let component = to_component(wasm, engine.limits())?;
    let policy = engine.compile(&component)?;
    lock(recent).insert(key, (component.clone(), policy.clone()));
    Ok((component, policy))
}

fn lock(recent: &Mutex<Recent>) -> std::sync::MutexGuard<'_, Recent> {
    recent.lock().unwrap_or_else(|e| e.into_inner())
}

/// Compiled modules by the hash of what was given, the oldest dropped
/// first.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    by_hash: HashMap<String, (Vec<u8>, Arc<CompiledPolicy>)>,
}

impl Recent {
    fn get(&self, key: &str) -> Option<(Vec<u8>, Arc<CompiledPolicy>)> {
        self.by_hash.get(key).cloned()
    }

    fn insert(&mut self, key: String, compiled: (Vec<u8>, Arc<CompiledPolicy>)) {
        if self.by_hash.insert(key.clone(), compiled).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > MAX_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.by_hash.remove(&oldest);
            }
        }
    }
}
