//! Tenants: the owners of everything else.

use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, RecordIdKey, SurrealValue};

use edgepbx_model::TenantFeatures;

use crate::StoreError;
use crate::db::{from_datetime, run};

/// Longest SIP domain accepted (the DNS limit).
const MAX_DOMAIN_LEN: usize = 253;

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Tenant code: 2 to 16 characters `A-Z0-9`, used in `<number>-<CODE>`
    /// SIP usernames.
    pub code: String,
    /// The tenant's SIP domain, lower-case.
    pub sip_domain: String,
    /// When it was added.
    pub created_at: SystemTime,
    /// Its limits.
    pub limits: TenantLimits,
    /// Its pickup code and BLF privacy.
    pub features: TenantFeatures,
}

/// Per-tenant bounds. `None` means the tenant has no limit of its own (the
/// server's defaults apply where the server has one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// Most extensions; enforced by [`Extensions::add`](crate::Extensions::add).
    pub max_extensions: Option<u32>,
    /// Most registered contacts per extension; enforced by the registrar.
    pub max_bindings_per_extension: Option<u32>,
    /// Most simultaneous calls; enforced by the call engine (the server's
    /// `calls.max_calls_per_tenant` when `None`).
    pub max_calls: Option<u32>,
}

impl TenantLimits {
    /// Checks the limits: a binding limit of 0 would let no device of the
    /// tenant register.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.max_bindings_per_extension == Some(0) {
            return Err(StoreError::invalid(
                "max_bindings_per_extension",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Tenant repository; get one from [`Store::tenants`](crate::Store::tenants).
#[derive(Debug, Clone, Copy)]
pub struct Tenants<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct LimitsRow {
    max_extensions: Option<u32>,
    max_bindings_per_extension: Option<u32>,
    max_calls: Option<u32>,
}

#[derive(SurrealValue, Default)]
struct FeaturesRow {
    pickup_code: Option<String>,
    blf_shows_caller: Option<bool>,
    operator: Option<String>,
}

impl From<&TenantFeatures> for FeaturesRow {
    fn from(f: &TenantFeatures) -> Self {
        FeaturesRow {
            pickup_code: Some(f.pickup_code.clone()),
            blf_shows_caller: Some(f.blf_shows_caller),
            operator: f.operator.clone(),
        }
    }
}

impl FeaturesRow {
    /// The features a row holds, defaults for what it does not.
    fn features(self) -> TenantFeatures {
        let default = TenantFeatures::default();
        TenantFeatures {
            pickup_code: self.pickup_code.unwrap_or(default.pickup_code),
            blf_shows_caller: self.blf_shows_caller.unwrap_or(default.blf_shows_caller),
            operator: self.operator,
        }
    }
}

#[derive(SurrealValue)]
struct NewTenantRow {
    code: String,
    sip_domain: String,
    limits: LimitsRow,
}

#[derive(SurrealValue)]
pub(crate) struct TenantRow {
    code: String,
    sip_domain: String,
    created_at: Datetime,
    limits: LimitsRow,
    features: Option<FeaturesRow>,
}

impl From<TenantLimits> for LimitsRow {
    fn from(l: TenantLimits) -> Self {
        LimitsRow {
            max_extensions: l.max_extensions,
            max_bindings_per_extension: l.max_bindings_per_extension,
            max_calls: l.max_calls,
        }
    }
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Tenant {
            code: row.code,
            sip_domain: row.sip_domain,
            created_at: from_datetime(&row.created_at),
            limits: TenantLimits {
                max_extensions: row.limits.max_extensions,
                max_bindings_per_extension: row.limits.max_bindings_per_extension,
                max_calls: row.limits.max_calls,
            },
            features: row.features.unwrap_or_default().features(),
        }
    }
}

impl Tenants<'_> {
    /// Adds a tenant with default limits. The code is upper-cased and the
    /// domain lower-cased before they are checked and stored.
    ///
    /// Fails with [`StoreError::Conflict`] if the code or the domain is
    /// taken, [`StoreError::InvalidField`] if either is malformed.
    pub async fn add(&self, code: &str, sip_domain: &str) -> Result<Tenant, StoreError> {
        let code = tenant_code(code)?;
        let sip_domain = normalize_domain(sip_domain)?;
        let row = NewTenantRow {
            code: code.clone(),
            sip_domain: sip_domain.clone(),
            limits: TenantLimits::default().into(),
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF record::exists($tenant) { THROW 'edgepbx:conflict:tenant ' + $code; };
                IF array::len((SELECT VALUE id FROM tenant WHERE sip_domain = $domain)) > 0 {
                    THROW 'edgepbx:conflict:SIP domain ' + $domain;
                };
                CREATE $tenant CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("domain", sip_domain))
            .bind(("row", row)))
        .await?;
        self.get(&code).await?.ok_or_else(|| StoreError::NotFound {
            what: format!("tenant {code}"),
        })
    }

    /// The tenant with this code (case-insensitive), if any.
    pub async fn get(&self, code: &str) -> Result<Option<Tenant>, StoreError> {
        let code = tenant_code(code)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM $tenant")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let row: Option<TenantRow> = res.take(0)?;
        Ok(row.map(Tenant::from))
    }

    /// The tenant whose SIP domain this is (case-insensitive), if any.
    pub async fn by_domain(&self, sip_domain: &str) -> Result<Option<Tenant>, StoreError> {
        let domain = normalize_domain(sip_domain)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM tenant WHERE sip_domain = $domain")
            .bind(("domain", domain)))
        .await?;
        let row: Option<TenantRow> = res.take(0)?;
        Ok(row.map(Tenant::from))
    }

    /// Every tenant, by code.
    pub async fn list(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut res = run(self.db.query("SELECT * FROM tenant ORDER BY code")).await?;
        let rows: Vec<TenantRow> = res.take(0)?;
        Ok(rows.into_iter().map(Tenant::from).collect())
    }

    /// Replaces a tenant's limits (checked first, see
    /// [`TenantLimits::validate`]).
    pub async fn set_limits(&self, code: &str, limits: TenantLimits) -> Result<(), StoreError> {
        limits.validate()?;
        self.set(
            code,
            "UPDATE $tenant SET limits = $value",
            LimitsRow::from(limits),
        )
        .await
    }

    /// Replaces a tenant's feature settings (checked first, see
    /// [`TenantFeatures::validate`]).
    pub async fn set_features(
        &self,
        code: &str,
        features: &TenantFeatures,
    ) -> Result<(), StoreError> {
        features.validate()?;
        self.set(
            code,
            "UPDATE $tenant SET features = $value",
            FeaturesRow::from(features),
        )
        .await
    }

    /// Sets the digest (SHA-256, hex) of the tenant's provisioning
    /// password; `None` turns provisioning off for the tenant.
    pub async fn set_provisioning_secret(
        &self,
        code: &str,
        digest: Option<String>,
    ) -> Result<(), StoreError> {
        if let Some(d) = &digest
            && (d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(StoreError::invalid(
                "provisioning_secret",
                "must be a SHA-256 digest in hex",
            ));
        }
        self.set(
            code,
            "UPDATE $tenant SET provisioning_secret = $value",
            digest,
        )
        .await
    }

    /// The digest of the tenant's provisioning password, if it has one;
    /// `None` also for a tenant that does not exist.
    pub async fn provisioning_secret(&self, code: &str) -> Result<Option<String>, StoreError> {
        let code = tenant_code(code)?;
        let mut res = run(self
            .db
            .query("SELECT VALUE provisioning_secret FROM $tenant")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let digest: Option<Option<String>> = res.take(0)?;
        Ok(digest.flatten())
    }

    /// Runs `update` (which sets fields of `$tenant` from `$value`) on an
    /// existing tenant.
    async fn set<T: SurrealValue>(
        &self,
        code: &str,
        update: &'static str,
        value: T,
    ) -> Result<(), StoreError> {
        let code = tenant_code(code)?;
        run(self
            .db
            .query(format!(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) {{ THROW 'edgepbx:not_found:tenant ' + $code; }};
                {update};
                COMMIT TRANSACTION;"
            ))
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("value", value)))
        .await?;
        Ok(())
    }

    /// Removes a tenant and everything it owns (extensions, their names,
    /// bindings and registration history, groups, trunks, policies, call
    /// records, contacts, desk phones, console users, API keys, the audit
    /// trail), in one transaction.
    pub async fn remove(&self, code: &str) -> Result<(), StoreError> {
        let code = tenant_code(code)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                DELETE dial_name WHERE tenant = $tenant;
                DELETE binding WHERE tenant = $tenant;
                DELETE registration_event WHERE tenant = $tenant;
                DELETE extension WHERE tenant = $tenant;
                DELETE ring_group WHERE tenant = $tenant;
                DELETE trunk WHERE tenant = $tenant;
                DELETE policy_module WHERE tenant = $tenant;
                DELETE policy_kv WHERE tenant = $tenant;
                DELETE call_record WHERE tenant = $tenant;
                DELETE contact WHERE tenant = $tenant;
                DELETE device WHERE tenant = $tenant;
                DELETE provisioning_fetch WHERE tenant = $tenant;
                DELETE api_key WHERE tenant = $tenant;
                FOR $user IN (SELECT VALUE id FROM console_user WHERE tenant = $tenant) {
                    DELETE session WHERE user = $user;
                    DELETE $user;
                };
                DELETE audit WHERE tenant = $tenant;
                DELETE $tenant;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code)))
        .await?;
        Ok(())
    }
}

/// The canonical (upper-case) form of a tenant code, or why it is not one.
pub(crate) fn tenant_code(code: &str) -> Result<String, StoreError> {
    let code = code.to_ascii_uppercase();
    let len_ok = (2..=16).contains(&code.len());
    if !len_ok
        || !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(StoreError::invalid(
            "tenant code",
            "must be 2 to 16 characters A-Z and 0-9",
        ));
    }
    Ok(code)
}

/// The record id of a tenant (its code is the key).
pub(crate) fn tenant_id(code: &str) -> RecordId {
    RecordId::new("tenant", code.to_owned())
}

/// The tenant code a `tenant:<CODE>` link points at.
pub(crate) fn code_of(table: &'static str, id: RecordId) -> Result<String, StoreError> {
    match id.key {
        RecordIdKey::String(code) => Ok(code),
        _ => Err(StoreError::InvalidRecord {
            table,
            reason: "tenant link has a non-text key".to_owned(),
        }),
    }
}

/// The canonical (lower-case) form of a SIP domain, or why it is not one.
fn normalize_domain(domain: &str) -> Result<String, StoreError> {
    let domain = domain.to_ascii_lowercase();
    let bad = |reason: &str| Err(StoreError::invalid("sip_domain", reason));
    if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN {
        return bad("must be 1 to 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return bad("labels are letters, digits and inner hyphens");
        }
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_cased_and_checked() {
        assert_eq!(tenant_code("acme1").ok().as_deref(), Some("ACME1"));
        for bad in ["A", "ACME-1", "ÄCME", "ABCDEFGHIJKLMNOPQ", ""] {
            assert!(tenant_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn domains_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_domain("PBX.Example.com").ok().as_deref(),
            Some("pbx.example.com")
        );
        assert_eq!(
            normalize_domain("192.0.2.1").ok().as_deref(),
            Some("192.0.2.1")
        );
        for bad in ["", "a..b", "-a.com", "a_b.com", "exa mple.com", "a.com."] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
    }
}
