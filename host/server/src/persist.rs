//! Write-behind of registration state: the SIP core never waits on the
//! database. Binding changes and registration events are queued, gathered
//! into batches (by size or after a short delay) and written in one store
//! transaction each, so a restart restores bindings and history without a
//! disk write in the path of every REGISTER.

use std::time::{Duration, SystemTime};

use edgepbx_store::{BindingChange, EventKind, RegistrationEvent, Store, StoredBinding, Transport};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, warn};

use crate::config::StoreTuning;
use crate::registrar::{Aor, Binding, Change};
use crate::transport::Peer;

/// Most changes queued before new ones are dropped (and logged).
const QUEUE: usize = 65_536;

/// The SIP core's handle on the write-behind task.
pub struct Persist {
    queue: mpsc::Sender<(SystemTime, Change)>,
    task: JoinHandle<()>,
}

impl Persist {
    /// Starts the writer.
    pub fn spawn(store: Store, tuning: &StoreTuning) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(
            store,
            rx,
            tuning.write_batch,
            Duration::from_millis(tuning.write_delay_ms),
        ));
        Persist { queue, task }
    }

    /// Queues one change; never waits.
    pub fn record(&self, at: SystemTime, change: Change) {
        if self.queue.try_send((at, change)).is_err() {
            warn!("store write-behind queue full; a binding change was not persisted");
        }
    }

    /// Flushes everything queued and stops the writer.
    pub async fn close(self) {
        drop(self.queue);
        let _ = self.task.await;
    }
}

async fn write_loop(
    store: Store,
    mut rx: mpsc::Receiver<(SystemTime, Change)>,
    batch: usize,
    delay: Duration,
) {
    let mut pending = Vec::with_capacity(batch);
    while let Some(first) = rx.recv().await {
        pending.push(first);
        let deadline = tokio::time::Instant::now() + delay;
        while pending.len() < batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => pending.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        let (changes, events) = to_records(pending.drain(..));
        if let Err(e) = store.bindings().apply(changes).await {
            error!(error = %e, "writing bindings failed");
        }
        if !events.is_empty()
            && let Err(e) = store.events().append(events).await
        {
            error!(error = %e, "writing registration events failed");
        }
    }
}

/// Turns in-memory changes into store writes and history events.
fn to_records(
    items: impl Iterator<Item = (SystemTime, Change)>,
) -> (Vec<BindingChange>, Vec<RegistrationEvent>) {
    let mut changes = Vec::new();
    let mut events = Vec::new();
    for (at, change) in items {
        match change {
            Change::Added(aor, b) => {
                events.push(event(at, &aor, &b, EventKind::Online, "registered"));
                changes.push(BindingChange::Upsert(stored(&aor, &b)));
            }
            Change::Refreshed(aor, b) => changes.push(BindingChange::Upsert(stored(&aor, &b))),
            Change::Removed(aor, b, reason) => {
                events.push(event(at, &aor, &b, EventKind::Offline, reason.as_str()));
                changes.push(BindingChange::Remove {
                    tenant: aor.tenant,
                    extension: aor.extension,
                    contact: b.contact,
                });
            }
        }
    }
    (changes, events)
}

fn stored(aor: &Aor, b: &Binding) -> StoredBinding {
    StoredBinding {
        tenant: aor.tenant.clone(),
        extension: aor.extension.clone(),
        contact: b.contact.clone(),
        expires_at: b.expires_at,
        q: b.q.clone(),
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        instance_id: b.instance.clone(),
        reg_id: b.reg_id,
        user_agent: b.user_agent.clone(),
        source: b.source.addr(),
        transport: match b.source {
            Peer::Udp(_) => Transport::Udp,
            Peer::Tcp { .. } => Transport::Tcp,
        },
    }
}

fn event(
    at: SystemTime,
    aor: &Aor,
    b: &Binding,
    kind: EventKind,
    reason: &str,
) -> RegistrationEvent {
    RegistrationEvent {
        tenant: aor.tenant.clone(),
        extension: aor.extension.clone(),
        at,
        kind,
        contact: b.contact.clone(),
        reason: reason.to_owned(),
        source: b.source.addr(),
        user_agent: b.user_agent.clone(),
    }
}
