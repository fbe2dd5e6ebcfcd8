//! Retention: history older than its configured age (registration events,
//! call records, the audit trail) is deleted, a bounded batch at a time so
//! that pruning a large backlog never holds one long transaction.

use std::time::{SystemTime, UNIX_EPOCH};

use surrealdb::Surreal;
use surrealdb::engine::any::Any;

use crate::StoreError;
use crate::db::run;

/// Rows deleted in one transaction.
const BATCH: i64 = 2_000;

/// History kept for a configured age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Registrations and their ends (`registration_event`).
    RegistrationEvents,
    /// Call detail records.
    CallRecords,
    /// The administration audit trail.
    Audit,
}

impl History {
    /// The table and its indexed age field (Unix nanoseconds).
    fn table_and_field(self) -> (&'static str, &'static str) {
        match self {
            History::RegistrationEvents => ("registration_event", "at_ns"),
            History::CallRecords => ("call_record", "ended_ns"),
            History::Audit => ("audit", "at_ns"),
        }
    }
}

/// The retention repository; get one from [`Store::retention`](crate::Store::retention).
#[derive(Debug, Clone, Copy)]
pub struct Retention<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

impl Retention<'_> {
    /// Deletes every row of `history` from before `cutoff`, in batches;
    /// returns how many went.
    pub async fn prune(&self, history: History, cutoff: SystemTime) -> Result<u64, StoreError> {
        let (table, field) = history.table_and_field();
        let cutoff = cutoff
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .unwrap_or(0);
        // One statement, so one transaction: the ids of a batch, deleted.
        let query = format!(
            "DELETE (SELECT VALUE id FROM {table} WHERE {field} < $cutoff LIMIT $batch) RETURN VALUE $before.id"
        );
        let mut deleted = 0;
        loop {
            let mut res = run(self
                .db
                .query(query.as_str())
                .bind(("cutoff", cutoff))
                .bind(("batch", BATCH)))
            .await?;
            let ids: Vec<surrealdb::types::RecordId> = res.take(0)?;
            let count = i64::try_from(ids.len()).unwrap_or(i64::MAX);
            deleted += u64::try_from(ids.len()).unwrap_or(u64::MAX);
            if count < BATCH {
                return Ok(deleted);
            }
        }
    }
}
