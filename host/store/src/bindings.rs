//! Registration bindings, written behind by the registrar and read back at
//! start.
//!
//! The registrar owns the live location service in memory; the store only
//! keeps a copy so that a restart does not forget who is registered. A
//! binding is identified by (tenant, extension, contact URI as registered):
//! a later upsert for the same contact replaces the earlier one, and a
//! contact that replaces another (same `+sip.instance`, new URI) arrives as
//! a remove of the old one plus an upsert of the new one.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use edgepbx_model::registrations::{
    MAX_CALL_ID_BYTES, MAX_CONTACT_BYTES, MAX_USER_AGENT_CHARS, is_qvalue,
};

use crate::StoreError;
use crate::db::{from_datetime, run, to_datetime};
use crate::extensions::extension_number;
use crate::tenants::{code_of, tenant_code, tenant_id};

/// Longest User-Agent kept, in bytes (its characters are bounded).
const MAX_USER_AGENT_BYTES: usize = MAX_USER_AGENT_CHARS * 4;

/// The transport a binding's REGISTER came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118).
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl Transport {
    /// The lower-case token it is stored as (`udp`, `tcp`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = StoreError;

    /// Parses a transport token, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            "ws" => Ok(Transport::Ws),
            "wss" => Ok(Transport::Wss),
            _ => Err(StoreError::invalid(
                "transport",
                "must be udp, tcp, tls, ws or wss",
            )),
        }
    }
}

/// One registered contact of an extension, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    /// Tenant code.
    pub tenant: String,
    /// Extension number (the address-of-record's user part).
    pub extension: String,
    /// The Contact URI as registered, parameters preserved; its identity.
    pub contact: String,
    /// Wall-clock expiry.
    pub expires_at: SystemTime,
    /// The `q` parameter, verbatim.
    pub q: Option<String>,
    /// Call-ID of the REGISTER that created or refreshed it.
    pub call_id: String,
    /// CSeq number of that REGISTER.
    pub cseq: u32,
    /// `+sip.instance` (RFC 5626), if given.
    pub instance_id: Option<String>,
    /// `reg-id` (RFC 5626), if given.
    pub reg_id: Option<u32>,
    /// User-Agent of the device.
    pub user_agent: Option<String>,
    /// Where the REGISTER came from.
    pub source: SocketAddr,
    /// What it came over.
    pub transport: Transport,
}

/// One write-behind operation; see [`Bindings::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingChange {
    /// Insert or replace the binding with the same tenant, extension and contact.
    Upsert(StoredBinding),
    /// Delete a binding (absent is fine).
    Remove {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        extension: String,
        /// The contact URI it was stored under.
        contact: String,
    },
}

/// Binding repository; get one from [`Store::bindings`](crate::Store::bindings).
#[derive(Debug, Clone, Copy)]
pub struct Bindings<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct BindingRow {
    tenant: RecordId,
    extension: String,
    contact: String,
    expires_at: Datetime,
    q: Option<String>,
    call_id: String,
    cseq: u32,
    instance_id: Option<String>,
    reg_id: Option<u32>,
    user_agent: Option<String>,
    source: String,
    transport: String,
}

/// A change as the apply transaction reads it: `row` is set for an upsert.
#[derive(SurrealValue)]
struct ChangeRow {
    code: String,
    extension: String,
    contact: String,
    row: Option<BindingRow>,
}

impl BindingRow {
    fn into_binding(self) -> Result<StoredBinding, StoreError> {
        let invalid = |reason: String| StoreError::InvalidRecord {
            table: "binding",
            reason,
        };
        Ok(StoredBinding {
            tenant: code_of("binding", self.tenant)?,
            source: self
                .source
                .parse()
                .map_err(|_| invalid(format!("source {:?} is not ip:port", self.source)))?,
            transport: self
                .transport
                .parse()
                .map_err(|_| invalid(format!("transport {:?} is unknown", self.transport)))?,
            extension: self.extension,
            contact: self.contact,
            expires_at: from_datetime(&self.expires_at),
            q: self.q,
            call_id: self.call_id,
            cseq: self.cseq,
            instance_id: self.instance_id,
            reg_id: self.reg_id,
            user_agent: self.user_agent,
        })
    }
}

impl Bindings<'_> {
    /// Every stored binding of every tenant, expired ones included (the
    /// registrar drops those): what the server restores at start.
    pub async fn load_all(&self) -> Result<Vec<StoredBinding>, StoreError> {
        let mut res = run(self.db.query("SELECT * FROM binding")).await?;
        let rows: Vec<BindingRow> = res.take(0)?;
        rows.into_iter().map(BindingRow::into_binding).collect()
    }

    /// The stored bindings of one tenant.
    pub async fn list(&self, tenant: &str) -> Result<Vec<StoredBinding>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM binding WHERE tenant = $tenant")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let rows: Vec<BindingRow> = res.take(0)?;
        rows.into_iter().map(BindingRow::into_binding).collect()
    }

    /// Applies a batch of changes, in order, in one transaction.
    ///
    /// An upsert for an extension that no longer exists is skipped (the
    /// extension was removed while the change was queued), so write-behind
    /// cannot resurrect a deleted extension's bindings. Invalid input fails
    /// the whole batch before anything is written.
    pub async fn apply(&self, batch: Vec<BindingChange>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let changes = batch
            .into_iter()
            .map(change_row)
            .collect::<Result<Vec<_>, _>>()?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                FOR $c IN $changes {
                    LET $id = type::record('binding', [$c.code, $c.extension, $c.contact]);
                    IF $c.row = NONE {
                        DELETE $id;
                    } ELSE IF record::exists(type::record('extension', [$c.code, $c.extension])) {
                        LET $row = $c.row;
                        UPSERT $id CONTENT $row;
                    };
                };
                COMMIT TRANSACTION;",
            )
            .bind(("changes", changes)))
        .await?;
        Ok(())
    }
}

/// Checks one change and puts it in the shape the transaction reads.
fn change_row(change: BindingChange) -> Result<ChangeRow, StoreError> {
    match change {
        BindingChange::Remove {
            tenant,
            extension,
            contact,
        } => Ok(ChangeRow {
            code: tenant_code(&tenant)?,
            extension: extension_number(&extension)?,
            contact: bounded("contact", contact, MAX_CONTACT_BYTES)?,
            row: None,
        }),
        BindingChange::Upsert(b) => {
            let code = tenant_code(&b.tenant)?;
            let extension = extension_number(&b.extension)?;
            let contact = bounded("contact", b.contact, MAX_CONTACT_BYTES)?;
            let row = BindingRow {
                tenant: tenant_id(&code),
                extension: extension.clone(),
                contact: contact.clone(),
                expires_at: to_datetime("expires_at", b.expires_at)?,
                q: b.q
                    .map(|q| {
                        if is_qvalue(&q) {
                            Ok(q)
                        } else {
                            Err(StoreError::invalid(
                                "q",
                                "must be 0 to 1, three decimals at most",
                            ))
                        }
                    })
                    .transpose()?,
                call_id: bounded("call_id", b.call_id, MAX_CALL_ID_BYTES)?,
                cseq: b.cseq,
                instance_id: b
                    .instance_id
                    .map(|i| bounded("instance_id", i, MAX_CONTACT_BYTES))
                    .transpose()?,
                reg_id: b.reg_id,
                user_agent: b
                    .user_agent
                    .map(|u| bounded("user_agent", u, MAX_USER_AGENT_BYTES))
                    .transpose()?,
                source: b.source.to_string(),
                transport: b.transport.as_str().to_owned(),
            };
            Ok(ChangeRow {
                code,
                extension,
                contact,
                row: Some(row),
            })
        }
    }
}

/// `value` if it is non-empty and at most `max` bytes.
pub(crate) fn bounded(
    field: &'static str,
    value: String,
    max: usize,
) -> Result<String, StoreError> {
    if value.is_empty() || value.len() > max {
        return Err(StoreError::invalid(
            field,
            format!("must be 1 to {max} bytes"),
        ));
    }
    Ok(value)
}
