//! The wasmtime engine shared by every tenant: compiling and validating
//! modules, and running one decision in a fresh, bounded store.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, ComponentExportIndex, HasSelf, InstancePre, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::{Call, Decision, Policy, PolicyPre};
use crate::cache::ArtifactCache;
use crate::decision::{InvalidDecision, validate};
use crate::host::{Directory, HostState, KeyValue};
use crate::limits::Limits;

/// The built-in policy's component, built from `guest-policies/default` by
/// this crate's build script.
pub const BUILTIN_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/builtin-policy.wasm"));

/// The interfaces a policy may import: the contract's, nothing else.
const ALLOWED_IMPORTS: &[&str] = &[
    "edgepbx:policy/types@0.1.0",
    "edgepbx:policy/directory@0.1.0",
    "edgepbx:policy/kv@0.1.0",
    "edgepbx:policy/log@0.1.0",
];

/// Bytes of each memory and table slot kept resident between decisions.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// How many times a tenant's deadline the built-in policy gets.
const BUILTIN_DEADLINE_FACTOR: u64 = 20;

/// Largest number of table elements a decision may grow its tables to.
const MAX_TABLE_ELEMENTS: usize = 10_000;

/// What one policy component may contain, checked when it is compiled.
/// The pool is sized from these, so no decision, however its module is
/// built, can take a slot another tenant's decision needs. A component
/// from the SDK has one memory, three core instances (the policy and the
/// two small modules the component model adds for imports that pass
/// strings) and two tables.
const MAX_MEMORIES_PER_POLICY: u32 = 1;
/// See [`MAX_MEMORIES_PER_POLICY`].
const MAX_CORE_INSTANCES_PER_POLICY: u32 = 4;
/// See [`MAX_MEMORIES_PER_POLICY`].
const MAX_TABLES_PER_POLICY: u32 = 4;

/// Why a module was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Larger than [`Limits::max_module_bytes`].
    #[error("the module has {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    NotAComponent(String),
    /// Imports something outside the contract.
    #[error("the component imports `{0}`, which the policy contract does not offer")]
    ForbiddenImport(String),
    /// Does not export the policy world's `decide`, or with another type.
    #[error("the component does not implement the edgepbx:policy world: {0}")]
    WrongWorld(String),
    /// The engine could not be set up (configuration or platform).
    #[error("the policy engine cannot start: {0}")]
    Engine(String),
}

/// A policy's failure in one decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// It ran past its deadline.
    #[error("ran out of time")]
    Timeout,
    /// It ran out of fuel.
    #[error("ran out of fuel")]
    OutOfFuel,
    /// It tried to grow its memory beyond the limit.
    #[error("ran out of memory")]
    OutOfMemory,
    /// It trapped (a panic, an unreachable, a bad memory access, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// Its answer broke the contract's bounds.
    #[error("invalid decision: {0}")]
    Invalid(#[from] InvalidDecision),
}

/// A validated module, compiled and pre-instantiated: instantiating it for
/// a decision only allocates and initialises.
pub struct CompiledPolicy {
    hash: String,
    size: usize,
    from_cache: bool,
    pre: InstancePre<HostState>,
    /// The `decide` export, whose type [`PolicyPre::new`] checked.
    decide: ComponentExportIndex,
}

impl CompiledPolicy {
    /// Whether it was loaded from the artifact cache rather than compiled.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// SHA-256 of the module, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Size of the module in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The first 12 hex digits of the hash: how logs name the module.
    pub fn short_hash(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }
}

impl std::fmt::Debug for CompiledPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPolicy")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A policy as a developer builds it: a component, or a core module that
/// wit-bindgen generated for the policy world (with its component-type
/// section), which is wrapped into a component here. Anything else is
/// returned unchanged for [`PolicyEngine::compile`] to refuse.
pub fn to_component(wasm: Vec<u8>, limits: &Limits) -> Result<Vec<u8>, PolicyError> {
    if wasm.len() > limits.max_module_bytes {
        return Err(PolicyError::TooLarge {
            size: wasm.len(),
            max: limits.max_module_bytes,
        });
    }
    const CORE_MODULE: [u8; 8] = *b"\0asm\x01\0\0\0";
    if !wasm.starts_with(&CORE_MODULE) {
        return Ok(wasm);
    }
    wit_component::ComponentEncoder::default()
        .module(&wasm)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            PolicyError::NotAComponent(format!(
                "a core module that cannot be wrapped into a policy component \
                 (was it built with the edgepbx policy SDK?): {e:#}"
            ))
        })
}

/// SHA-256 of `wasm`, hex: a module's identity.
pub fn module_hash(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

/// The shared engine: one per process.
pub struct PolicyEngine {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    cache: Option<ArtifactCache>,
    builtin: Arc<CompiledPolicy>,
    slots: Slots,
    /// Advances the epoch while decisions run.
    ticker: EpochTicker,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("limits", &self.limits)
            .field("builtin", &self.builtin)
            .finish_non_exhaustive()
    }
}

impl PolicyEngine {
    /// An engine with these limits. Compiled modules are cached under
    /// `cache_dir` when given, so a restart does not compile them again.
    /// Starts a thread that advances the epoch every `limits.epoch_tick`.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<PolicyEngine, PolicyError> {
        let engine_error = |e: wasmtime::Error| PolicyError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        // One slot more than the concurrent decisions: a decision's
        // fallback runs after its own store is gone, but a slot is cheap.
        let slots = limits.max_concurrent_decisions.max(1);
        let instances = slots.saturating_add(1);
        pool.total_component_instances(instances)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_POLICY)
            .max_memories_per_component(MAX_MEMORIES_PER_POLICY)
            .max_tables_per_component(MAX_TABLES_PER_POLICY)
            .total_core_instances(instances.saturating_mul(MAX_CORE_INSTANCES_PER_POLICY))
            .total_memories(instances.saturating_mul(MAX_MEMORIES_PER_POLICY))
            .total_tables(instances.saturating_mul(MAX_TABLES_PER_POLICY))
            .max_memory_size(limits.max_memory_bytes)
            // Reset what a decision touched with memset rather than
            // madvise: no page faults when the slot is used again.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            // Where the kernel can say which pages a decision dirtied
            // (Linux 6.7+), only those are reset.
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            // Memories are small and capped: reserve just the cap, with no
            // guard pages, and check bounds in code rather than with
            // signals. A pool slot then never changes page protections
            // between decisions (each change is an mprotect with TLB
            // shootdowns across cores, the largest cost of a decision).
            .memory_reservation(u64::try_from(limits.max_memory_bytes).unwrap_or(u64::MAX))
            .memory_guard_size(0)
            .memory_reservation_for_growth(0)
            .signals_based_traps(false)
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(limits.fuel.is_some())
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        Policy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(engine_error)?;
        let cache = match cache_dir {
            Some(dir) => {
                Some(ArtifactCache::open(dir).map_err(|e| PolicyError::Engine(e.to_string()))?)
            }
            None => None,
        };
        let builtin = compile(&engine, &linker, cache.as_ref(), &limits, BUILTIN_POLICY)?;
        let ticker = EpochTicker::start(engine.clone(), limits.epoch_tick)
            .map_err(|e| PolicyError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(PolicyEngine {
            engine,
            linker,
            cache,
            builtin,
            slots: Slots::new(slots),
            ticker,
            limits,
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The built-in policy.
    pub fn builtin(&self) -> &Arc<CompiledPolicy> {
        &self.builtin
    }

    /// Validates and compiles a module: within the size cap, a component,
    /// importing only the contract's interfaces, exporting the policy
    /// world. Uses the artifact cache when there is one.
    pub fn compile(&self, wasm: &[u8]) -> Result<Arc<CompiledPolicy>, PolicyError> {
        compile(
            &self.engine,
            &self.linker,
            self.cache.as_ref(),
            &self.limits,
            wasm,
        )
    }

    /// Runs one decision of `policy` for `tenant` in a fresh store, within
    /// the limits, and checks the answer.
    pub fn run(
        &self,
        policy: &CompiledPolicy,
        tenant: &str,
        call: &Call,
        directory: Arc<dyn Directory>,
        kv: Arc<dyn KeyValue>,
    ) -> Result<Decision, Fault> {
        let _slot = self.slots.acquire();
        let _ticking = self.ticker.running();
        let state = HostState {
            tenant: tenant.to_owned(),
            module: policy.short_hash().to_owned(),
            directory,
            kv,
            limiter: MemoryCap::new(self.limits.max_memory_bytes),
            log_lines_left: self.limits.max_log_lines,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // The built-in policy is ours and the last resort of every call: a
        // decision of it cut short because a loaded machine preempted its
        // thread would refuse the call. It gets a longer deadline, which
        // still bounds a bug.
        let ticks = self.limits.deadline_ticks();
        store.set_epoch_deadline(if policy.hash == self.builtin.hash {
            ticks.saturating_mul(BUILTIN_DEADLINE_FACTOR)
        } else {
            ticks
        });
        if let Some(fuel) = self.limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| Fault::Trap(format!("{e:#}")))?;
        }
        let outcome = policy
            .pre
            .instantiate(&mut store)
            .and_then(|instance| decide(&mut store, &instance, &policy.decide, call));
        let decision = outcome.map_err(|e| classify(&e, store.data().limiter.exceeded))?;
        validate(&decision)?;
        Ok(decision)
    }
}

fn compile(
    engine: &Engine,
    linker: &Linker<HostState>,
    cache: Option<&ArtifactCache>,
    limits: &Limits,
    wasm: &[u8],
) -> Result<Arc<CompiledPolicy>, PolicyError> {
    if wasm.len() > limits.max_module_bytes {
        return Err(PolicyError::TooLarge {
            size: wasm.len(),
            max: limits.max_module_bytes,
        });
    }
    let hash = module_hash(wasm);
    let (component, from_cache) = match cache {
        Some(cache) => cache.load_or_compile(engine, &hash, wasm),
        None => Component::new(engine, wasm).map(|component| (component, false)),
    }
    .map_err(|e| PolicyError::NotAComponent(format!("{e:#}")))?;
    for (name, _) in component.component_type().imports(engine) {
        if !ALLOWED_IMPORTS.contains(&name) {
            return Err(PolicyError::ForbiddenImport(name.to_owned()));
        }
    }
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| PolicyError::ForbiddenImport(format!("{e:#}")))?;
    // Checks, once, that the component exports the world's `decide` with
    // its type; see `decide`.
    PolicyPre::new(pre.clone()).map_err(|e| PolicyError::WrongWorld(format!("{e:#}")))?;
    let decide = component
        .get_export_index(None, "decide")
        .ok_or_else(|| PolicyError::WrongWorld("no `decide` export".into()))?;
    Ok(Arc::new(CompiledPolicy {
        hash,
        size: wasm.len(),
        from_cache,
        pre,
        decide,
    }))
}

/// Calls the policy's `decide` in a fresh instance of it.
///
/// The generated bindings would check the export's type again on every
/// instantiation, a tenth of a decision's cost; `compile` checked it once,
/// for the component this instance was made from.
fn decide(
    store: &mut Store<HostState>,
    instance: &wasmtime::component::Instance,
    export: &ComponentExportIndex,
    call: &Call,
) -> wasmtime::Result<Decision> {
    let func = instance
        .get_func(&mut *store, export)
        .ok_or_else(|| wasmtime::format_err!("the policy has no `decide` export"))?;
    // SAFETY: `compile` accepted this component only after
    // `PolicyPre::new` type-checked its `decide` export against the
    // policy world's `func(call: call) -> decision`, and `instance` is an
    // instance of that same component.
    #[allow(unsafe_code)]
    let decide =
        unsafe { wasmtime::component::TypedFunc::<(&Call,), (Decision,)>::new_unchecked(func) };
    let (decision,) = decide.call(&mut *store, (call,))?;
    Ok(decision)
}

/// What a failed call into a guest means.
fn classify(error: &wasmtime::Error, memory_exceeded: bool) -> Fault {
    if memory_exceeded {
        return Fault::OutOfMemory;
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => Fault::Timeout,
        Some(wasmtime::Trap::OutOfFuel) => Fault::OutOfFuel,
        _ => Fault::Trap(crate::host::printable(&format!("{error:#}"), 512)),
    }
}

/// Refuses memory growth past a cap and remembers that it did, so that the
/// trap that follows (a guest usually aborts when `memory.grow` fails) is
/// reported as running out of memory.
pub(crate) struct MemoryCap {
    max_bytes: usize,
    exceeded: bool,
}

impl MemoryCap {
    fn new(max_bytes: usize) -> MemoryCap {
        MemoryCap {
            max_bytes,
            exceeded: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.exceeded |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Bounds the decisions in flight to the pool's size: past it, callers
/// wait for a slot instead of failing to instantiate.
struct Slots {
    counts: Mutex<SlotCounts>,
    returned: Condvar,
}

struct SlotCounts {
    free: u32,
    /// Callers waiting for a free slot.
    waiting: u32,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(count: u32) -> Slots {
        Slots {
            counts: Mutex::new(SlotCounts {
                free: count,
                waiting: 0,
            }),
            returned: Condvar::new(),
        }
    }

    fn acquire(&self) -> Slot<'_> {
        // The counters are consistent whenever the lock is released, so a
        // poisoned lock is still usable.
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        while counts.free == 0 {
            counts.waiting += 1;
            counts = self
                .returned
                .wait(counts)
                .unwrap_or_else(|e| e.into_inner());
            counts.waiting -= 1;
        }
        counts.free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut counts = self.0.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.free += 1;
        // Waking is a system call: only when somebody waits.
        if counts.waiting > 0 {
            self.0.returned.notify_one();
        }
    }
}

/// The thread that advances the engine's epoch; stopped on drop. It parks
/// after [`IDLE_TICKS`] ticks without a decision, so an idle server does not
/// wake up a thousand times a second, and a decision wakes it before it
/// runs: its deadline then counts from its own start.
struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

/// Ticks without a decision after which the ticker parks.
const IDLE_TICKS: u32 = 100;

struct TickerShared {
    stop: AtomicBool,
    /// Decisions running.
    running: AtomicU32,
    /// Whether the ticker parked, or is about to.
    parked: AtomicBool,
}

/// A running decision, for the ticker; see [`EpochTicker::running`].
struct Running<'a>(&'a EpochTicker);

impl EpochTicker {
    fn start(engine: Engine, tick: std::time::Duration) -> std::io::Result<EpochTicker> {
        let shared = Arc::new(TickerShared {
            stop: AtomicBool::new(false),
            running: AtomicU32::new(0),
            parked: AtomicBool::new(false),
        });
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                let mut idle = 0;
                while !state.stop.load(Ordering::SeqCst) {
                    if idle >= IDLE_TICKS {
                        // Announce the park before looking at `running`
                        // one last time; a decision starting now either is
                        // seen here or sees `parked` and unparks us.
                        state.parked.store(true, Ordering::SeqCst);
                        if state.running.load(Ordering::SeqCst) == 0
                            && !state.stop.load(Ordering::SeqCst)
                        {
                            std::thread::park();
                        }
                        state.parked.store(false, Ordering::SeqCst);
                        idle = 0;
                        continue;
                    }
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                    if state.running.load(Ordering::SeqCst) == 0 {
                        idle += 1;
                    } else {
                        idle = 0;
                    }
                }
            })?;
        Ok(EpochTicker {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a decision as running until the guard drops, waking the
    /// ticker first if it parked.
    fn running(&self) -> Running<'_> {
        self.shared.running.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst) {
            self.wake();
        }
        Running(self)
    }

    fn wake(&self) {
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.shared.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
