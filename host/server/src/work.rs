//! Admission of expensive work any tenant can start (password hashing,
//! policy compilation, policy tries): a global limit sized to the machine,
//! a smaller one for each payer, and a bounded queue for each payer beyond
//! which work is refused. A tenant that starts a thousand jobs waits
//! behind itself, not in front of the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// Why gated work was not done.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// The payer's queue is full.
    #[error("too much of this work is waiting for this tenant; try again shortly")]
    Busy,
    /// The work panicked.
    #[error("the work ended unexpectedly")]
    Panicked,
}

/// Whose share of a gate pays for a piece of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer<'a> {
    /// A tenant's (its admins, users, callers).
    Tenant(&'a str),
    /// The operators' (system admins, the command line).
    Operators,
    /// Nobody known yet: logins of names no account has, so that a flood
    /// of made-up names slows neither a tenant nor the operators.
    Unknown,
}

impl<'a> Payer<'a> {
    /// A tenant's, or the operators' for `None`.
    pub fn of(tenant: Option<&'a str>) -> Payer<'a> {
        tenant.map_or(Payer::Operators, Payer::Tenant)
    }

    /// The lane's key: tenant codes are upper-case letters and digits, so
    /// neither other key can be one.
    fn key(self) -> &'a str {
        match self {
            Payer::Tenant(code) => code,
            Payer::Operators => "operators",
            Payer::Unknown => "unknown",
        }
    }
}

/// Runs blocking work for payers within limits.
pub struct Gate {
    running: Arc<Semaphore>,
    per_payer: usize,
    max_queued: usize,
    /// One lane per payer that ever ran work: as many as there are tenants.
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
}

struct Lane {
    running: Arc<Semaphore>,
    queued: AtomicUsize,
}

/// Counts a piece of work in its lane until it ends or is given up.
struct Queued(Arc<Lane>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// At most `parallel` jobs at once, `per_payer` of them for one payer,
    /// and `max_queued` running or waiting for one payer.
    pub fn new(parallel: usize, per_payer: usize, max_queued: usize) -> Gate {
        Gate {
            running: Arc::new(Semaphore::new(parallel.max(1))),
            per_payer: per_payer.clamp(1, parallel.max(1)),
            max_queued: max_queued.max(1),
            lanes: Mutex::new(HashMap::new()),
        }
    }

    fn lane(&self, payer: Payer<'_>) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes
            .entry(payer.key().to_owned())
            .or_insert_with(|| {
                Arc::new(Lane {
                    running: Arc::new(Semaphore::new(self.per_payer)),
                    queued: AtomicUsize::new(0),
                })
            })
            .clone()
    }

    /// Runs `work` on a blocking thread once both the payer's lane and the
    /// gate admit it. The permits go with the work: a caller that gives up
    /// does not free them before the CPU is.
    pub async fn run<T: Send + 'static>(
        &self,
        payer: Payer<'_>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, WorkError> {
        let lane = self.lane(payer);
        let _queued = Queued(lane.clone());
        if lane.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            return Err(WorkError::Busy);
        }
        // The semaphores are never closed.
        let own = (lane.running.clone().acquire_owned().await).map_err(|_| WorkError::Busy)?;
        let all = (self.running.clone().acquire_owned().await).map_err(|_| WorkError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permits = (own, all);
            work()
        })
        .await
        .map_err(|_| WorkError::Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    const QUEUE: usize = 16;

    /// One payer's backlog neither delays another payer's work nor grows
    /// without bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_tenant_waits_behind_itself() {
        let gate = Arc::new(Gate::new(2, 1, QUEUE));
        let (release, held) = mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let mut busy = Vec::new();
        for _ in 0..QUEUE {
            let gate = gate.clone();
            let held = held.clone();
            busy.push(tokio::spawn(async move {
                gate.run(Payer::Tenant("NOISY"), move || {
                    let _ = held.lock().map(|rx| rx.recv());
                })
                .await
            }));
        }
        // Let the noisy payer's work reach the gate and block in it.
        while gate
            .lane(Payer::Tenant("NOISY"))
            .queued
            .load(Ordering::SeqCst)
            < QUEUE
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            matches!(
                gate.run(Payer::Tenant("NOISY"), || ()).await,
                Err(WorkError::Busy)
            ),
            "the noisy payer's queue is full"
        );
        let quiet = tokio::time::timeout(
            Duration::from_secs(5),
            gate.run(Payer::Tenant("QUIET"), || 7),
        );
        assert_eq!(quiet.await.expect("not starved").expect("admitted"), 7);
        for _ in 0..QUEUE {
            release.send(()).expect("a noisy job waits");
        }
        for job in busy {
            job.await.expect("joins").expect("admitted in turn");
        }
        assert_eq!(
            gate.lane(Payer::Tenant("NOISY"))
                .queued
                .load(Ordering::SeqCst),
            0
        );
    }

    #[tokio::test]
    async fn a_panic_is_an_error() {
        let gate = Gate::new(1, 1, 1);
        let outcome = gate
            .run(Payer::Operators, || -> u8 { panic!("a bad module") })
            .await;
        assert!(matches!(outcome, Err(WorkError::Panicked)));
        assert_eq!(
            gate.run(Payer::Operators, || 1)
                .await
                .expect("the lane is free again"),
            1
        );
    }
}
