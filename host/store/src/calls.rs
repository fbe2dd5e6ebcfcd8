//! Call detail records: one row per call once it has ended.

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use edgepbx_model::CallRecord;

use crate::StoreError;
use crate::db::{from_datetime, run, to_datetime};
use crate::tenants::{code_of, tenant_code, tenant_id};

/// Most records one listing returns.
pub const MAX_LISTED_CALLS: u32 = 1_000;

#[derive(SurrealValue)]
struct CallRow {
    tenant: RecordId,
    call_id: String,
    caller: String,
    dialled: String,
    answered_by: Option<String>,
    started_at: Datetime,
    answered_at: Option<Datetime>,
    ended_at: Datetime,
    duration_secs: u64,
    outcome: String,
    cause: String,
    policy: String,
}

impl CallRow {
    fn from_record(r: CallRecord) -> Result<CallRow, StoreError> {
        let code = tenant_code(&r.tenant)?;
        Ok(CallRow {
            tenant: tenant_id(&code),
            call_id: bounded("id", r.id, 64)?,
            caller: bounded("caller", r.caller, 64)?,
            dialled: bounded("dialled", r.dialled, 64)?,
            answered_by: r
                .answered_by
                .map(|a| bounded("answered_by", a, 64))
                .transpose()?,
            started_at: to_datetime("started_at", r.started_at)?,
            answered_at: r
                .answered_at
                .map(|a| to_datetime("answered_at", a))
                .transpose()?,
            ended_at: to_datetime("ended_at", r.ended_at)?,
            duration_secs: r.duration_secs,
            outcome: bounded("outcome", r.outcome, 32)?,
            cause: bounded("cause", r.cause, 128)?,
            policy: bounded("policy", r.policy, 64)?,
        })
    }

    fn into_record(self) -> Result<CallRecord, StoreError> {
        Ok(CallRecord {
            tenant: code_of("call_record", self.tenant)?,
            id: self.call_id,
            caller: self.caller,
            dialled: self.dialled,
            answered_by: self.answered_by,
            started_at: from_datetime(&self.started_at),
            answered_at: self.answered_at.as_ref().map(from_datetime),
            ended_at: from_datetime(&self.ended_at),
            duration_secs: self.duration_secs,
            outcome: self.outcome,
            cause: self.cause,
            policy: self.policy,
        })
    }
}

fn bounded(field: &'static str, value: String, max: usize) -> Result<String, StoreError> {
    if value.len() > max || value.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            field,
            format!("must be at most {max} bytes without control characters"),
        ));
    }
    Ok(value)
}

/// Call record repository; get one from [`Store::calls`](crate::Store::calls).
#[derive(Debug, Clone, Copy)]
pub struct CallRecords<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

impl CallRecords<'_> {
    /// Appends a batch of records in one transaction; an invalid record
    /// fails the batch before anything is written.
    pub async fn append(&self, batch: Vec<CallRecord>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = batch
            .into_iter()
            .map(CallRow::from_record)
            .collect::<Result<Vec<_>, _>>()?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                FOR $c IN $calls { CREATE call_record CONTENT $c; };
                COMMIT TRANSACTION;",
            )
            .bind(("calls", rows)))
        .await?;
        Ok(())
    }

    /// The tenant's latest `limit` calls, newest first.
    pub async fn recent(&self, tenant: &str, limit: u32) -> Result<Vec<CallRecord>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query(
                "SELECT * FROM call_record WHERE tenant = $tenant
                ORDER BY ended_ns DESC LIMIT $limit",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("limit", limit.min(MAX_LISTED_CALLS))))
        .await?;
        let rows: Vec<CallRow> = res.take(0)?;
        rows.into_iter().map(CallRow::into_record).collect()
    }
}
