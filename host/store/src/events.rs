//! Registration history: online/offline transitions per extension.

use std::net::SocketAddr;
use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::StoreError;
use crate::bindings::bounded;
use crate::db::{from_datetime, run, to_datetime};
use crate::extensions::extension_number;
use crate::tenants::{code_of, tenant_code, tenant_id};

/// What happened to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A contact became reachable (new binding).
    Online,
    /// A contact went away (unregistered, expired, replaced, unreachable, ...).
    Offline,
    /// An existing binding was refreshed (recorded only if the caller wants).
    Refreshed,
}

impl EventKind {
    /// The lower-case token it is stored as.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Online => "online",
            EventKind::Offline => "offline",
            EventKind::Refreshed => "refreshed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(EventKind::Online),
            "offline" => Some(EventKind::Offline),
            "refreshed" => Some(EventKind::Refreshed),
            _ => None,
        }
    }
}

/// One registration transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationEvent {
    /// Tenant code.
    pub tenant: String,
    /// Extension number.
    pub extension: String,
    /// When it happened.
    pub at: SystemTime,
    /// Online, offline or refreshed.
    pub kind: EventKind,
    /// The contact URI concerned.
    pub contact: String,
    /// Why, as a lower-case token: `registered`, `unregistered`, `expired`,
    /// `unreachable`, `replaced`, `removed`, ... (`[a-z][a-z_]{0,31}`).
    pub reason: String,
    /// Where the device was.
    pub source: SocketAddr,
    /// User-Agent of the device.
    pub user_agent: Option<String>,
}

/// Registration history repository; get one from
/// [`Store::events`](crate::Store::events).
#[derive(Debug, Clone, Copy)]
pub struct RegistrationEvents<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct EventRow {
    tenant: RecordId,
    extension: String,
    at: Datetime,
    kind: String,
    contact: String,
    reason: String,
    source: String,
    user_agent: Option<String>,
}

impl EventRow {
    fn from_event(e: RegistrationEvent) -> Result<Self, StoreError> {
        let reason_ok = (1..=32).contains(&e.reason.len())
            && e.reason.starts_with(|c: char| c.is_ascii_lowercase())
            && e.reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_');
        if !reason_ok {
            return Err(StoreError::invalid(
                "reason",
                "must be a lower-case token of 1 to 32 letters and '_'",
            ));
        }
        Ok(EventRow {
            tenant: tenant_id(&tenant_code(&e.tenant)?),
            extension: extension_number(&e.extension)?,
            at: to_datetime("at", e.at)?,
            kind: e.kind.as_str().to_owned(),
            contact: bounded("contact", e.contact, 4096)?,
            reason: e.reason,
            source: e.source.to_string(),
            user_agent: e
                .user_agent
                .map(|u| bounded("user_agent", u, 1024))
                .transpose()?,
        })
    }

    fn into_event(self) -> Result<RegistrationEvent, StoreError> {
        let invalid = |reason: String| StoreError::InvalidRecord {
            table: "registration_event",
            reason,
        };
        Ok(RegistrationEvent {
            tenant: code_of("registration_event", self.tenant)?,
            kind: EventKind::parse(&self.kind)
                .ok_or_else(|| invalid(format!("kind {:?} is unknown", self.kind)))?,
            source: self
                .source
                .parse()
                .map_err(|_| invalid(format!("source {:?} is not ip:port", self.source)))?,
            extension: self.extension,
            at: from_datetime(&self.at),
            contact: self.contact,
            reason: self.reason,
            user_agent: self.user_agent,
        })
    }
}

impl RegistrationEvents<'_> {
    /// Appends a batch of events in one transaction; invalid input fails the
    /// whole batch before anything is written.
    pub async fn append(&self, batch: Vec<RegistrationEvent>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = batch
            .into_iter()
            .map(EventRow::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                FOR $e IN $events { CREATE registration_event CONTENT $e; };
                COMMIT TRANSACTION;",
            )
            .bind(("events", rows)))
        .await?;
        Ok(())
    }

    /// The events of one extension at or after `since`, oldest first, at
    /// most `limit` of them.
    pub async fn list(
        &self,
        tenant: &str,
        extension: &str,
        since: SystemTime,
        limit: u32,
    ) -> Result<Vec<RegistrationEvent>, StoreError> {
        let code = tenant_code(tenant)?;
        let extension = extension_number(extension)?;
        let mut res = run(self
            .db
            .query(
                "SELECT * FROM registration_event
                WHERE tenant = $tenant AND extension = $extension AND at_ns >= time::nano($since)
                ORDER BY at_ns LIMIT $limit",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("extension", extension))
            .bind(("since", to_datetime("since", since)?))
            .bind(("limit", limit)))
        .await?;
        let rows: Vec<EventRow> = res.take(0)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }
}
