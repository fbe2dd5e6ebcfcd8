//! Shared plumbing for the repositories: running SurrealQL, turning its
//! errors into [`StoreError`]s, and converting timestamps.
//!
//! Transactions are written as one SurrealQL text (`BEGIN; ...; COMMIT;`),
//! which behaves the same on the embedded and the remote engine. Domain
//! checks inside a transaction (does the tenant exist, is the alias taken)
//! end it with `THROW` and a marker of the form `edgepbx:<kind>:<detail>`;
//! [`run`] maps the marker back to a typed error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use surrealdb::IndexedResults;
use surrealdb::engine::any::Any;
use surrealdb::method::Query;
use surrealdb::types::{Datetime, QueryError};

use crate::StoreError;

/// Prefix of the markers thrown by our own transaction checks.
const MARKER: &str = "edgepbx:";

/// Runs a query and fails with the first statement error, if any.
///
/// When a statement inside a transaction fails, SurrealDB reports every
/// other statement of it as "not executed"; the error returned is the one
/// that caused that, not the first "not executed".
pub(crate) async fn run(query: Query<'_, Any>) -> Result<IndexedResults, StoreError> {
    let mut results = query.await.map_err(classify)?;
    let mut errors: Vec<_> = results.take_errors().into_iter().collect();
    if errors.is_empty() {
        return Ok(results);
    }
    errors.sort_by_key(|(index, _)| *index);
    let cause = errors
        .iter()
        .position(|(_, e)| !is_consequence(e))
        .unwrap_or(0);
    Err(classify(errors.swap_remove(cause).1))
}

/// Whether a write adds a record or replaces one, and then on which
/// condition.
pub(crate) enum Write {
    /// A new record; one with the same id is a conflict.
    Add,
    /// An existing record; with `if_version`, only if its `updated_at` is
    /// still that.
    Replace { if_version: Option<SystemTime> },
}

impl Write {
    /// Whether it replaces, and the version it requires as SurrealDB's
    /// datetime.
    pub(crate) fn parts(self) -> Result<(bool, Option<Datetime>), StoreError> {
        match self {
            Write::Add => Ok((false, None)),
            Write::Replace { if_version } => Ok((true, version_required(if_version)?)),
        }
    }
}

/// Whether `e` only says that a statement was skipped because another failed.
fn is_consequence(e: &surrealdb::Error) -> bool {
    matches!(
        e.query_details(),
        Some(QueryError::NotExecuted | QueryError::Cancelled)
    )
}

/// Maps our `THROW` markers and unique-index violations to domain errors.
fn classify(e: surrealdb::Error) -> StoreError {
    // Optimistic concurrency: two transactions wrote the same keys.
    if e.query_details() == Some(&QueryError::TransactionConflict)
        || e.message().contains("can be retried")
    {
        return StoreError::Contended;
    }
    if e.is_thrown()
        && let Some(at) = e.message().find(MARKER)
    {
        let marker = &e.message()[at + MARKER.len()..];
        let (kind, detail) = marker.split_once(':').unwrap_or((marker, ""));
        match kind {
            "conflict" => {
                return StoreError::Conflict {
                    what: detail.to_owned(),
                };
            }
            "not_found" => {
                return StoreError::NotFound {
                    what: detail.to_owned(),
                };
            }
            "changed" => {
                return StoreError::Changed {
                    what: detail.to_owned(),
                };
            }
            "limit" => {
                let limited = match detail.split_once(':') {
                    Some(("max_extensions", limit)) => Some(("extensions", limit)),
                    Some(("max_policy_versions", limit)) => Some(("policy versions", limit)),
                    Some(("max_api_keys", limit)) => Some(("API keys", limit)),
                    Some(("max_contacts", limit)) => Some(("contacts", limit)),
                    Some(("max_messages", limit)) => Some(("messages in this mailbox", limit)),
                    _ => None,
                };
                if let Some((what, limit)) = limited
                    && let Ok(limit) = limit.trim().parse()
                {
                    return StoreError::LimitReached { what, limit };
                }
            }
            _ => {}
        }
    }
    // The explicit checks run first, so this is a race with another writer
    // that the unique index caught (SurrealDB reports it as an internal
    // error with this wording).
    if e.message().contains("Database index") && e.message().contains("already contains") {
        return StoreError::Conflict {
            what: e.message().to_owned(),
        };
    }
    StoreError::from(e)
}

/// The version a conditional write requires (`if_version` of the
/// repositories), as SurrealDB's datetime.
pub(crate) fn version_required(
    if_version: Option<SystemTime>,
) -> Result<Option<Datetime>, StoreError> {
    if_version.map(|t| to_datetime("if_version", t)).transpose()
}

/// A `SystemTime` as a SurrealDB datetime.
pub(crate) fn to_datetime(field: &'static str, t: SystemTime) -> Result<Datetime, StoreError> {
    let out_of_range = || StoreError::invalid(field, "time is out of the representable range");
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).map_err(|_| out_of_range())?,
            d.subsec_nanos(),
        ),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).map_err(|_| out_of_range())?;
            // Whole seconds before the epoch, then a non-negative fraction.
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    Datetime::from_timestamp(secs, nanos).ok_or_else(out_of_range)
}

/// A SurrealDB datetime as a `SystemTime`.
pub(crate) fn from_datetime(d: &Datetime) -> SystemTime {
    let secs = d.timestamp();
    let nanos = d.timestamp_subsec_nanos();
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(10, 250_000_000),
        ] {
            let d = to_datetime("at", t).expect("in range");
            assert_eq!(from_datetime(&d), t);
        }
    }
}
