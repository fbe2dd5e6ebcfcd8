//! The one error type of the crate.

use std::path::PathBuf;

/// Everything a store operation can fail with.
///
/// Domain failures (bad input, duplicates, missing records, limits, a locked
/// data directory, a schema from the future) have their own variants so that
/// callers can turn them into a CLI message or an HTTP status without looking
/// at strings. Only the database's own errors are wrapped as they come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An input value does not have the required shape.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field, as named in the API (`number`, `aliases`, `sip_domain`, ...).
        field: &'static str,
        /// What is wrong with it, for a person.
        reason: String,
    },
    /// The record, or a unique value in it, already exists.
    #[error("{what} already exists")]
    Conflict {
        /// What clashed, e.g. "number or alias 100 in tenant ACME".
        what: String,
    },
    /// The record the operation is about does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "extension 100 in tenant ACME".
        what: String,
    },
    /// The record changed since the version the caller last read (an
    /// HTTP `If-Match` that no longer holds); nothing was written.
    #[error("{what} changed since the version given")]
    Changed {
        /// What changed, e.g. "extension 100 in tenant ACME".
        what: String,
    },
    /// Another transaction on the same records committed first; nothing
    /// was written, and the operation may simply be tried again.
    #[error("a concurrent change to the same records got there first; try again")]
    Contended,
    /// A per-tenant limit would be exceeded.
    #[error("limit reached: at most {limit} {what}")]
    LimitReached {
        /// What is limited (`extensions`, `policy versions`).
        what: &'static str,
        /// The configured limit.
        limit: u32,
    },
    /// The embedded data directory is held by another process (another
    /// `edgepbx serve`, or the CLI while the server runs).
    #[error(
        "data directory {} is in use by another edgepbx process{}",
        path.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// The holder's process id, when it wrote one into the lock file.
        pid: Option<u32>,
    },
    /// The database was migrated by a newer edgepbx than this one.
    #[error(
        "database schema version {found} is newer than this edgepbx supports ({supported}); upgrade edgepbx"
    )]
    SchemaTooNew {
        /// The highest migration applied to the database.
        found: u32,
        /// The highest migration this build knows.
        supported: u32,
    },
    /// A record read back from the database breaks an invariant the schema
    /// should have enforced (someone wrote to it by hand, or a bug).
    #[error("stored {table} record is invalid: {reason}")]
    InvalidRecord {
        /// The table it was read from.
        table: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The sealing key file cannot be used: unreadable, others may read
    /// it, or it is not the key this database's secrets are sealed under.
    #[error("sealing key {}: {reason}", path.display())]
    SealingKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong, for a person.
        reason: String,
    },
    /// The embedded data directory could not be created or locked.
    #[error("data directory {}: {source}", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An error reported by SurrealDB itself (connection, query, storage).
    #[error("database error: {0}")]
    Db(#[source] Box<surrealdb::Error>),
}

impl StoreError {
    /// Shorthand for [`StoreError::InvalidField`].
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        StoreError::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

impl From<edgepbx_model::InvalidField> for StoreError {
    fn from(e: edgepbx_model::InvalidField) -> Self {
        StoreError::InvalidField {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl From<surrealdb::Error> for StoreError {
    fn from(e: surrealdb::Error) -> Self {
        StoreError::Db(Box::new(e))
    }
}
