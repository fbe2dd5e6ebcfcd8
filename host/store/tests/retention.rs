//! Retention against a real embedded SurrealDB: history older than the
//! cutoff goes, in batches, and nothing newer with it.

use std::time::{Duration, SystemTime};

use edgepbx_store::{
    AuditEntry, CallRecord, DbSpec, EventKind, History, RegistrationEvent, Store, StoreConfig,
};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const DAY: Duration = Duration::from_secs(86_400);

fn event(at: SystemTime) -> RegistrationEvent {
    RegistrationEvent {
        tenant: "ACME".into(),
        extension: "100".into(),
        at,
        kind: EventKind::Refreshed,
        contact: "sip:100@192.0.2.10".into(),
        reason: "registered".into(),
        source: "192.0.2.10:5060".parse().expect("literal address"),
        user_agent: None,
    }
}

fn record(id: &str, ended_at: SystemTime) -> CallRecord {
    CallRecord {
        tenant: "ACME".into(),
        id: id.into(),
        caller: "100".into(),
        dialled: "101".into(),
        answered_by: None,
        started_at: ended_at - Duration::from_secs(30),
        answered_at: None,
        ended_at,
        duration_secs: 0,
        outcome: "no-answer".into(),
        cause: "timeout".into(),
        policy: "builtin".into(),
    }
}

fn audit(at: SystemTime, target: &str) -> AuditEntry {
    AuditEntry {
        tenant: "ACME".into(),
        at,
        actor: "admin@acme.test".into(),
        action: "reveal-password".into(),
        target: target.into(),
    }
}

#[tokio::test]
async fn history_older_than_the_cutoff_is_pruned_in_batches() -> TestResult {
    let dir = TempDir::new("retention");
    let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0))).await?;
    store.tenants().add("ACME", "acme.test").await?;
    let now = SystemTime::now();
    let old = now - 40 * DAY;
    let cutoff = now - 30 * DAY;

    // More old events than one batch deletes.
    let mut events: Vec<_> = (0..2_500u64)
        .map(|i| event(old + Duration::from_millis(i)))
        .collect();
    events.push(event(now));
    store.events().append(events).await?;
    store
        .calls()
        .append(vec![record("old", old), record("new", now)])
        .await?;
    let access = store.access();
    access.audit(audit(old, "100")).await?;
    access.audit(audit(now, "101")).await?;

    let retention = store.retention();
    assert_eq!(
        retention.prune(History::RegistrationEvents, cutoff).await?,
        2_500
    );
    assert_eq!(retention.prune(History::CallRecords, cutoff).await?, 1);
    assert_eq!(retention.prune(History::Audit, cutoff).await?, 1);
    // A second pass finds nothing more.
    assert_eq!(
        retention.prune(History::RegistrationEvents, cutoff).await?,
        0
    );

    let kept = store
        .events()
        .list("ACME", "100", now - 365 * DAY, 10_000)
        .await?;
    assert_eq!(kept.len(), 1);
    let calls = store.calls().recent("ACME", 10).await?;
    assert_eq!(
        calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
    let trail = access.audit_trail("ACME", 10).await?;
    assert_eq!(
        trail.iter().map(|a| a.target.as_str()).collect::<Vec<_>>(),
        ["101"]
    );
    Ok(())
}
