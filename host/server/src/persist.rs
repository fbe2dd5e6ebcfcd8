//! Write-behind of registration state and call records: the SIP plane never
//! waits on the database. Binding changes, registration events and call
//! detail records are queued, gathered
//! into batches (by size or after a short delay) and written in one store
//! transaction each, so a restart restores bindings and history without a
//! disk write in the path of every REGISTER.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgepbx_policy::Policies;
use edgepbx_store::{
    BindingChange, CallRecord, EventKind, RegistrationEvent, Store, StoreError, StoredBinding,
    Transport,
};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tracing::{error, warn};

use edgepbx_engine::registrar::{Aor, Binding, Change};
use edgepbx_engine::{Peer, StreamKind};

use crate::config::StoreTuning;

/// Most changes queued before new ones are dropped (and logged); a
/// policy deactivation waits for room instead.
const QUEUE: usize = 65_536;

/// One queued write. Binding changes are by far the most frequent and are
/// kept inline (no allocation per REGISTER); the rare ones are small.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Item {
    Binding(SystemTime, Change),
    Call(Box<CallRecord>),
    /// A policy changed its tenant's key-value store (`None`: removed).
    Kv {
        tenant: String,
        key: String,
        value: Option<String>,
    },
    /// The runtime took a tenant's policy version out of service; the
    /// reason is in its unrecorded deactivation.
    PolicyDeactivated {
        tenant: String,
        version: u32,
    },
}

/// The SIP plane's handle on the write-behind task.
pub struct Persist {
    queue: mpsc::Sender<Item>,
    task: JoinHandle<()>,
}

impl Persist {
    /// Starts the writer. It takes the policy deactivations it stores
    /// from `policies`, where they wait with their reasons.
    pub fn spawn(store: Store, tuning: &StoreTuning, policies: Arc<Policies>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_loop(
            store,
            policies,
            rx,
            tuning.write_batch,
            Duration::from_millis(tuning.write_delay_ms),
        ));
        Persist { queue, task }
    }

    /// Queues one change; never waits.
    pub fn record(&self, at: SystemTime, change: Change) {
        if self.queue.try_send(Item::Binding(at, change)).is_err() {
            warn!("store write-behind queue full; a binding change was not persisted");
        }
    }

    /// Queues the record of an ended call; never waits.
    pub fn record_call(&self, record: CallRecord) {
        if self.queue.try_send(Item::Call(Box::new(record))).is_err() {
            warn!("store write-behind queue full; a call record was not persisted");
        }
    }

    /// Queues the storing of a faulty policy version's deactivation (the
    /// runtime keeps it, with the reason its administrator will read, until
    /// it is taken to be stored); never waits.
    pub fn record_policy_deactivation(&self, tenant: &str, version: u32) {
        let item = Item::PolicyDeactivated {
            tenant: tenant.to_owned(),
            version,
        };
        match self.queue.try_send(item) {
            Ok(()) => {}
            // Rare, and it must not be lost: wait for room on a task of
            // its own.
            Err(TrySendError::Full(item)) => {
                let queue = self.queue.clone();
                tokio::spawn(async move { queue.send(item).await });
            }
            Err(TrySendError::Closed(_)) => {
                warn!(
                    tenant,
                    version,
                    "the store writer has stopped; a policy deactivation was not persisted"
                );
            }
        }
    }

    /// A handle for the policies' key-value store to queue its changes.
    /// Every handle must be dropped before [`Persist::close`] can finish.
    pub fn kv_writer(&self) -> KvWriter {
        KvWriter {
            queue: self.queue.clone(),
        }
    }

    /// Flushes everything queued and stops the writer.
    pub async fn close(self) {
        drop(self.queue);
        let _ = self.task.await;
    }
}

/// Queues key-value changes of routing policies.
#[derive(Debug, Clone)]
pub struct KvWriter {
    queue: mpsc::Sender<Item>,
}

impl KvWriter {
    /// Queues one change; never waits.
    pub fn write(&self, tenant: &str, key: &str, value: Option<String>) {
        let item = Item::Kv {
            tenant: tenant.to_owned(),
            key: key.to_owned(),
            value,
        };
        if self.queue.try_send(item).is_err() {
            warn!(
                tenant,
                key, "store write-behind queue full; a policy key-value change was not persisted"
            );
        }
    }
}

async fn write_loop(
    store: Store,
    policies: Arc<Policies>,
    mut rx: mpsc::Receiver<Item>,
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
        let (mut calls, mut deactivations) = (Vec::new(), Vec::new());
        let mut kv: HashMap<String, Vec<(String, Option<String>)>> = HashMap::new();
        let bindings = pending.drain(..).filter_map(|item| match item {
            Item::Binding(at, change) => Some((at, change)),
            Item::Call(record) => {
                calls.push(*record);
                None
            }
            Item::Kv { tenant, key, value } => {
                kv.entry(tenant).or_default().push((key, value));
                None
            }
            Item::PolicyDeactivated { tenant, version } => {
                deactivations.push((tenant, version));
                None
            }
        });
        let (changes, events) = to_records(bindings);
        let (bindings, records, history) = (store.bindings(), store.calls(), store.events());
        write_all("binding changes", changes, |batch| bindings.apply(batch)).await;
        write_all("call records", calls, |batch| records.append(batch)).await;
        for (tenant, changes) in kv {
            // Later changes of a key replace earlier ones of the batch.
            let mut last: Vec<(String, Option<String>)> = Vec::new();
            for (key, value) in changes {
                last.retain(|(k, _)| *k != key);
                last.push((key, value));
            }
            let policies = store.policies();
            write_all("policy key-value changes", last, |batch| {
                policies.write_kv(&tenant, batch)
            })
            .await;
        }
        for (tenant, version) in deactivations {
            // A reload of the tenant may be storing it, or have stored it.
            let Some(gone) = policies.take_unrecorded_deactivation(&tenant, version) else {
                continue;
            };
            match store
                .policies()
                .deactivate(&tenant, version, Some(&gone.reason))
                .await
            {
                Ok(()) => policies.deactivation_stored(&tenant, version),
                Err(e) => {
                    policies.deactivation_not_stored(&tenant, version);
                    error!(error = %e, %tenant, version, "recording a policy deactivation failed");
                }
            }
        }
        write_all("registration events", events, |batch| history.append(batch)).await;
    }
}

/// Waits before each new try of a batch the database refused for a reason
/// other than its contents (down, busy, full).
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// Writes `items` with `write`, `what` naming them in the log; returns
/// how many could not be written. A batch refused for what one of its
/// items holds is written again item by item, so that only the bad ones
/// are lost (each logged); one refused for another reason is tried again
/// after each of [`RETRY_DELAYS`], then logged as lost, with its size.
async fn write_all<T, F, Fut>(what: &str, items: Vec<T>, mut write: F) -> usize
where
    T: Clone,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    if items.is_empty() {
        return 0;
    }
    let mut delays = RETRY_DELAYS.iter();
    loop {
        match write(items.clone()).await {
            Ok(()) => return 0,
            Err(e) if refused_for_contents(&e) => {
                let mut lost = 0;
                for item in items {
                    if let Err(e) = write(vec![item]).await {
                        lost += 1;
                        error!(error = %e, what, "one item could not be written; the others were");
                    }
                }
                return lost;
            }
            Err(e) => match delays.next() {
                Some(delay) => {
                    warn!(error = %e, what, retry_in = ?delay, "writing failed; trying again");
                    tokio::time::sleep(*delay).await;
                }
                None => {
                    error!(error = %e, what, lost = items.len(), "writing failed; given up");
                    return items.len();
                }
            },
        }
    }
}

/// Whether the store refused a write for what it holds (a malformed
/// value, a tenant or extension gone meanwhile): trying the same again
/// cannot help.
fn refused_for_contents(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::InvalidField { .. }
            | StoreError::InvalidRecord { .. }
            | StoreError::NotFound { .. }
            | StoreError::Conflict { .. }
            | StoreError::LimitReached { .. }
    )
}

/// Turns a batch of changes into store records. Binding changes are
/// coalesced per binding, the last one winning: a phone that refreshed ten
/// times within a batch is written once. Events are kept, in order.
fn to_records(
    items: impl Iterator<Item = (SystemTime, Change)>,
) -> (Vec<BindingChange>, Vec<RegistrationEvent>) {
    let mut changes: Vec<BindingChange> = Vec::new();
    let mut position: HashMap<(String, String, String), usize> = HashMap::new();
    let mut events = Vec::new();
    for (at, change) in items {
        let (key, record) = match change {
            Change::Added(aor, b) => {
                events.push(event(at, &aor, &b, EventKind::Online, "registered"));
                (key(&aor, &b), BindingChange::Upsert(stored(&aor, &b)))
            }
            Change::Refreshed {
                aor, binding: b, ..
            } => (key(&aor, &b), BindingChange::Upsert(stored(&aor, &b))),
            Change::Removed(aor, b, reason) => {
                events.push(event(at, &aor, &b, EventKind::Offline, reason.as_str()));
                let key = key(&aor, &b);
                let record = BindingChange::Remove {
                    tenant: aor.tenant,
                    extension: aor.extension,
                    contact: b.contact,
                };
                (key, record)
            }
        };
        match position.get(&key) {
            Some(&index) => changes[index] = record,
            None => {
                position.insert(key, changes.len());
                changes.push(record);
            }
        }
    }
    (changes, events)
}

/// What identifies a stored binding.
fn key(aor: &Aor, b: &Binding) -> (String, String, String) {
    (aor.tenant.clone(), aor.extension.clone(), b.contact.clone())
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
            Peer::Stream {
                kind: StreamKind::Tcp,
                ..
            } => Transport::Tcp,
            Peer::Stream {
                kind: StreamKind::Tls,
                ..
            } => Transport::Tls,
            Peer::Stream {
                kind: StreamKind::Ws,
                ..
            } => Transport::Ws,
            Peer::Stream {
                kind: StreamKind::Wss,
                ..
            } => Transport::Wss,
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use edgepbx_engine::registrar::RemovalReason;

    /// A binding of `contact` as the REGISTER with CSeq `cseq` made it.
    fn binding(contact: &str, cseq: u32) -> Binding {
        Binding {
            contact: contact.to_owned(),
            q: None,
            instance: None,
            reg_id: None,
            call_id: "c".to_owned(),
            cseq,
            expires_at: SystemTime::UNIX_EPOCH,
            stored_expires_at: SystemTime::UNIX_EPOCH,
            deadline: Instant::now(),
            source: Peer::Udp(([127, 0, 0, 1], 5062).into()),
            user_agent: None,
        }
    }

    fn aor(extension: &str) -> Aor {
        Aor {
            tenant: "ACME".to_owned(),
            extension: extension.to_owned(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_bad_change_does_not_lose_its_batch() {
        let dir = std::env::temp_dir().join(format!(
            "edgepbx-write-behind-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        let store = Store::open(edgepbx_store::StoreConfig::new(
            edgepbx_store::DbSpec::embedded(&dir),
        ))
        .await
        .expect("the store opens");
        store
            .tenants()
            .add("ACME", "acme.test")
            .await
            .expect("ACME");
        for number in ["100", "101"] {
            let new = edgepbx_store::NewExtension {
                number: number.into(),
                name: format!("Ext {number}"),
                aliases: Vec::new(),
                credentials: edgepbx_store::SipCredentials::default(),
            };
            store
                .extensions()
                .add("ACME", new)
                .await
                .expect("an extension");
        }
        let mut good_binding = binding("sip:100@192.0.2.1", 1);
        good_binding.expires_at = SystemTime::now() + Duration::from_secs(3_600);
        let good = (SystemTime::now(), Change::Added(aor("100"), good_binding));
        let mut bad_binding = binding("sip:101@192.0.2.2", 1);
        bad_binding.call_id = String::new();
        let bad = (SystemTime::now(), Change::Added(aor("101"), bad_binding));
        let (changes, _) = to_records([good, bad].into_iter());
        let bindings = store.bindings();
        let lost = write_all("binding changes", changes, |batch| bindings.apply(batch)).await;
        assert_eq!(lost, 1);
        let kept = store.bindings().load_all().await.expect("bindings load");
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].extension, "100");
        // A failure that is not the contents' is tried again.
        let mut tries = 0;
        let lost = write_all("tries", vec![1], |_| {
            tries += 1;
            let outcome = if tries < 3 {
                Err(StoreError::Io {
                    path: dir.clone(),
                    source: std::io::Error::other("disk busy"),
                })
            } else {
                Ok(())
            };
            async move { outcome }
        })
        .await;
        assert_eq!((lost, tries), (0, 3));
        let _ = store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn refreshed(aor: Aor, binding: Binding) -> Change {
        Change::Refreshed {
            aor,
            binding,
            write: true,
        }
    }

    #[test]
    fn a_batch_writes_each_binding_once_with_its_last_change() {
        let at = SystemTime::UNIX_EPOCH;
        let batch = vec![
            (at, Change::Added(aor("100"), binding("sip:a", 1))),
            (at, refreshed(aor("100"), binding("sip:a", 2))),
            (at, Change::Added(aor("101"), binding("sip:b", 1))),
            (at, refreshed(aor("100"), binding("sip:a", 3))),
            (
                at,
                Change::Removed(aor("101"), binding("sip:b", 1), RemovalReason::Unregistered),
            ),
        ];
        let (changes, events) = to_records(batch.into_iter());
        assert_eq!(changes.len(), 2);
        match &changes[0] {
            BindingChange::Upsert(b) => assert_eq!((b.extension.as_str(), b.cseq), ("100", 3)),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&changes[1], BindingChange::Remove { extension, .. } if extension == "101")
        );
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::Online, EventKind::Online, EventKind::Offline]
        );
    }
}
