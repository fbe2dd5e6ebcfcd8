//! The bounds a policy runs within.

use std::time::Duration;

/// Bounds on policy modules and on each decision. The defaults suit the
/// built-in policy with room to spare: it decides in microseconds in a few
/// hundred KiB.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest module accepted on upload, in bytes.
    pub max_module_bytes: usize,
    /// Wall-clock budget of one decision. Enforced with epoch interruption:
    /// the engine's epoch advances every `epoch_tick`, so a decision is
    /// stopped between `deadline - epoch_tick` and `deadline`. The
    /// built-in policy gets twenty times as long: it is trusted, and the
    /// last resort of every call.
    pub deadline: Duration,
    /// How often the epoch advances.
    pub epoch_tick: Duration,
    /// Linear memory a decision may use, in bytes.
    pub max_memory_bytes: usize,
    /// Instructions-ish a decision may execute (wasmtime fuel), when set.
    /// Off by default: fuel metering slows every decision, the deadline
    /// already bounds time.
    pub fuel: Option<u64>,
    /// Decisions running at the same time; more wait for a free slot (a
    /// decision takes microseconds). The default is one per core: the
    /// deadline is wall-clock time, and a decision preempted by another
    /// would see it pass without having run.
    pub max_concurrent_decisions: u32,
    /// Log lines one decision may write; further lines are dropped.
    pub max_log_lines: u32,
    /// Faults within `fault_window` after which a tenant's module is
    /// deactivated.
    pub fault_limit: u32,
    /// See `fault_limit`.
    pub fault_window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_module_bytes: 4 << 20,
            deadline: Duration::from_millis(5),
            epoch_tick: Duration::from_millis(1),
            max_memory_bytes: 4 << 20,
            fuel: None,
            max_concurrent_decisions: std::thread::available_parallelism()
                .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
            max_log_lines: 32,
            fault_limit: 5,
            fault_window: Duration::from_secs(600),
        }
    }
}

impl Limits {
    /// The epoch deadline in ticks (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_micros().max(1);
        u64::try_from(self.deadline.as_micros().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .max(1)
    }
}
