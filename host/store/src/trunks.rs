//! SIP trunks: a tenant's connection to a carrier, for calls to and from
//! numbers outside the tenant.
//!
//! A trunk either registers with digest credentials or is authenticated by
//! its address (the carrier's calls come from `host`). Inbound calls are
//! routed by the number they were made to (DID) to a number of the tenant.
//! The carrier password is needed in clear to answer the carrier's
//! challenges: it is sealed at rest (see [`Sealer`]) and never listed or
//! logged.

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{RecordId, SurrealValue};

use crate::StoreError;
use crate::db::run;
use crate::sealing::Sealer;
use crate::tenants::{code_of, tenant_code, tenant_id};
use edgepbx_model::{Did, MAX_DIDS, MAX_TRUNKS, Trunk, dialable};

/// Trunk repository; get one from [`Store::trunks`](crate::Store::trunks).
#[derive(Debug, Clone, Copy)]
pub struct Trunks<'a> {
    pub(crate) db: &'a Surreal<Any>,
    pub(crate) sealer: &'a Sealer,
}

#[derive(SurrealValue)]
struct DidRow {
    number: String,
    destination: String,
}

#[derive(SurrealValue)]
struct TrunkRow {
    tenant: RecordId,
    name: String,
    host: String,
    username: Option<String>,
    password: Option<String>,
    register: bool,
    caller_id: Option<String>,
    dids: Vec<DidRow>,
}

impl TrunkRow {
    /// The trunk, its password opened.
    fn into_trunk(self, sealer: &Sealer) -> Result<Trunk, StoreError> {
        let password = match self.password {
            None => None,
            Some(sealed) => {
                Some(
                    sealer
                        .open(&sealed)
                        .ok_or_else(|| StoreError::InvalidRecord {
                            table: "trunk",
                            reason: format!(
                                "the password of trunk {} does not open under the sealing key",
                                self.name
                            ),
                        })?,
                )
            }
        };
        Ok(Trunk {
            tenant: code_of("trunk", self.tenant)?,
            name: self.name,
            host: self.host,
            username: self.username,
            password,
            register: self.register,
            caller_id: self.caller_id,
            dids: self
                .dids
                .into_iter()
                .map(|d| Did {
                    number: d.number,
                    destination: d.destination,
                })
                .collect(),
        })
    }
}

impl Trunks<'_> {
    /// Adds a trunk (or replaces the tenant's trunk of the same name).
    /// Every DID must be free on every trunk of the tenant.
    pub async fn put(&self, tenant: &str, trunk: Trunk) -> Result<Trunk, StoreError> {
        let code = tenant_code(tenant)?;
        validate(&trunk)?;
        let others = self.list(&code).await?;
        if others.len() >= MAX_TRUNKS && !others.iter().any(|t| t.name == trunk.name) {
            return Err(StoreError::LimitReached {
                what: "trunks",
                limit: MAX_TRUNKS as u32,
            });
        }
        for other in others.iter().filter(|t| t.name != trunk.name) {
            if let Some(d) = trunk
                .dids
                .iter()
                .find(|d| other.dids.iter().any(|o| o.number == d.number))
            {
                return Err(StoreError::Conflict {
                    what: format!("DID {} is on trunk {}", d.number, other.name),
                });
            }
        }
        let row = TrunkRow {
            tenant: tenant_id(&code),
            name: trunk.name.clone(),
            host: trunk.host.clone(),
            username: trunk.username.clone(),
            password: trunk.password.as_deref().map(|p| self.sealer.seal(p)),
            register: trunk.register,
            caller_id: trunk.caller_id.clone(),
            dids: trunk
                .dids
                .iter()
                .map(|d| DidRow {
                    number: d.number.clone(),
                    destination: d.destination.clone(),
                })
                .collect(),
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                UPSERT type::record('trunk', [$code, $name]) CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("name", trunk.name.clone()))
            .bind(("row", row)))
        .await?;
        Ok(Trunk {
            tenant: code,
            ..trunk
        })
    }

    /// The tenant's trunks, by name.
    pub async fn list(&self, tenant: &str) -> Result<Vec<Trunk>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM trunk WHERE tenant = $tenant ORDER BY name")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let rows: Vec<TrunkRow> = res.take(0)?;
        rows.into_iter()
            .map(|row| row.into_trunk(self.sealer))
            .collect()
    }

    /// Every trunk of every tenant: what the server loads at start.
    pub async fn all(&self) -> Result<Vec<Trunk>, StoreError> {
        let mut res = run(self.db.query("SELECT * FROM trunk ORDER BY name")).await?;
        let rows: Vec<TrunkRow> = res.take(0)?;
        rows.into_iter()
            .map(|row| row.into_trunk(self.sealer))
            .collect()
    }

    /// Removes a trunk.
    pub async fn remove(&self, tenant: &str, name: &str) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                LET $trunk = type::record('trunk', [$code, $name]);
                IF !record::exists($trunk) {
                    THROW 'edgepbx:not_found:trunk ' + $name + ' in tenant ' + $code;
                };
                DELETE $trunk;
                COMMIT TRANSACTION;",
            )
            .bind(("code", code))
            .bind(("name", name.to_owned())))
        .await?;
        Ok(())
    }
}

fn validate(trunk: &Trunk) -> Result<(), StoreError> {
    let name_ok = (1..=32).contains(&trunk.name.len())
        && trunk
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(StoreError::invalid(
            "name",
            "must be 1 to 32 characters of a-z, 0-9 and '-'",
        ));
    }
    let host_ok = (1..=255).contains(&trunk.host.len())
        && trunk
            .host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !host_ok {
        return Err(StoreError::invalid(
            "host",
            "must be a host name or IP address, with an optional :port",
        ));
    }
    for (field, value) in [("username", &trunk.username), ("password", &trunk.password)] {
        if let Some(v) = value
            && (v.is_empty() || v.len() > 128 || v.chars().any(char::is_control))
        {
            return Err(StoreError::invalid(
                field,
                "must be 1 to 128 characters without control characters",
            ));
        }
    }
    if trunk.register && (trunk.username.is_none() || trunk.password.is_none()) {
        return Err(StoreError::invalid(
            "register",
            "registering needs a username and a password",
        ));
    }
    if let Some(id) = &trunk.caller_id {
        dialable("caller_id", id)?;
    }
    if trunk.dids.len() > MAX_DIDS {
        return Err(StoreError::invalid(
            "dids",
            format!("at most {MAX_DIDS} per trunk"),
        ));
    }
    for (i, did) in trunk.dids.iter().enumerate() {
        dialable("dids", &did.number)?;
        dialable("dids", &did.destination)?;
        if trunk.dids[..i].iter().any(|d| d.number == did.number) {
            return Err(StoreError::invalid(
                "dids",
                format!("{} is listed twice", did.number),
            ));
        }
    }
    Ok(())
}
