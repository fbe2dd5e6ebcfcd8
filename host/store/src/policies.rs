//! Tenants' routing policy modules and the policies' key-value store.
//!
//! A module is stored with its bytes, hash, size, uploader and time, under a
//! version number that counts up per tenant. At most one version of a
//! tenant is active; activating one deactivates the others, so restoring a
//! previous version is activating it again. A module the runtime took out
//! of service keeps the reason for the administrator.

use std::collections::BTreeMap;
use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Bytes, Datetime, RecordId, SurrealValue};

/// The record of a version, from `$code` and `$version`.
const MODULE: &str = "type::record('policy_module', [$code, $version])";

use crate::StoreError;
use crate::db::{from_datetime, run};
use crate::tenants::{code_of, tenant_code, tenant_id};

/// Most versions a tenant may keep.
pub const MAX_POLICY_VERSIONS: u32 = 100;

/// A module's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyModuleInfo {
    /// The owning tenant's code.
    pub tenant: String,
    /// Its version within the tenant, from 1.
    pub version: u32,
    /// SHA-256 of the module, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Who uploaded it.
    pub uploader: String,
    /// When.
    pub uploaded_at: SystemTime,
    /// Whether it decides the tenant's calls.
    pub active: bool,
    /// Why the runtime took it out of service, if it did.
    pub deactivated_reason: Option<String>,
}

/// A module with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyModule {
    /// Its metadata.
    pub info: PolicyModuleInfo,
    /// The component.
    pub wasm: Vec<u8>,
}

/// Policy module repository; get one from
/// [`Store::policies`](crate::Store::policies).
#[derive(Debug, Clone, Copy)]
pub struct PolicyModules<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct InfoRow {
    tenant: RecordId,
    version: i64,
    hash: String,
    size: i64,
    uploader: String,
    uploaded_at: Datetime,
    active: bool,
    deactivated_reason: Option<String>,
}

#[derive(SurrealValue)]
struct ModuleRow {
    tenant: RecordId,
    version: i64,
    hash: String,
    size: i64,
    wasm: Bytes,
    uploader: String,
    uploaded_at: Datetime,
    active: bool,
    deactivated_reason: Option<String>,
}

const INFO_FIELDS: &str =
    "tenant, version, hash, size, uploader, uploaded_at, active, deactivated_reason";

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::InvalidRecord {
        table: "policy_module",
        reason: reason.into(),
    }
}

impl TryFrom<InfoRow> for PolicyModuleInfo {
    type Error = StoreError;

    fn try_from(row: InfoRow) -> Result<Self, StoreError> {
        Ok(PolicyModuleInfo {
            tenant: code_of("policy_module", row.tenant)?,
            version: u32::try_from(row.version).map_err(|_| invalid("version out of range"))?,
            hash: row.hash,
            size: u64::try_from(row.size).map_err(|_| invalid("size out of range"))?,
            uploader: row.uploader,
            uploaded_at: from_datetime(&row.uploaded_at),
            active: row.active,
            deactivated_reason: row.deactivated_reason,
        })
    }
}

impl TryFrom<ModuleRow> for PolicyModule {
    type Error = StoreError;

    fn try_from(row: ModuleRow) -> Result<Self, StoreError> {
        let wasm = row.wasm.to_vec();
        let info = PolicyModuleInfo::try_from(InfoRow {
            tenant: row.tenant,
            version: row.version,
            hash: row.hash,
            size: row.size,
            uploader: row.uploader,
            uploaded_at: row.uploaded_at,
            active: row.active,
            deactivated_reason: row.deactivated_reason,
        })?;
        Ok(PolicyModule { info, wasm })
    }
}

impl PolicyModules<'_> {
    /// Stores a module (already validated by the runtime) as the tenant's
    /// next version, inactive.
    ///
    /// Fails with [`StoreError::Conflict`] when the tenant already has a
    /// module with this hash, [`StoreError::LimitReached`] past
    /// [`MAX_POLICY_VERSIONS`], [`StoreError::NotFound`] for an unknown
    /// tenant.
    pub async fn upload(
        &self,
        tenant: &str,
        wasm: Vec<u8>,
        hash: &str,
        uploader: &str,
    ) -> Result<PolicyModuleInfo, StoreError> {
        let code = tenant_code(tenant)?;
        let valid_hash =
            hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid_hash {
            return Err(StoreError::invalid(
                "hash",
                "must be 64 lower-case hex digits",
            ));
        }
        if uploader.is_empty() || uploader.chars().count() > 100 {
            return Err(StoreError::invalid(
                "uploader",
                "must be 1 to 100 characters",
            ));
        }
        let size =
            i64::try_from(wasm.len()).map_err(|_| StoreError::invalid("wasm", "too large"))?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                LET $same = (SELECT VALUE version FROM policy_module WHERE tenant = $tenant AND hash = $hash);
                IF array::len($same) > 0 {
                    THROW 'edgepbx:conflict:policy module with this hash (version ' + <string> $same[0] + ')';
                };
                LET $versions = (SELECT VALUE version FROM policy_module WHERE tenant = $tenant);
                IF array::len($versions) >= $max {
                    THROW 'edgepbx:limit:max_policy_versions:' + <string> $max;
                };
                LET $version = math::max(array::concat($versions, [0])) + 1;
                CREATE type::record('policy_module', [$code, $version]) CONTENT {
                    tenant: $tenant, version: $version, hash: $hash, size: $size,
                    wasm: $wasm, uploader: $uploader
                };
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("hash", hash.to_owned()))
            .bind(("max", i64::from(MAX_POLICY_VERSIONS)))
            .bind(("size", size))
            .bind(("wasm", Bytes::from(wasm)))
            .bind(("uploader", uploader.to_owned())))
        .await?;
        // The hash is unique within the tenant: it names the new version.
        let mut res = run(self
            .db
            .query(
                "SELECT VALUE version FROM policy_module WHERE tenant = $tenant AND hash = $hash",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("hash", hash.to_owned())))
        .await?;
        let version: Option<i64> = res.take(0)?;
        let version = version
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| invalid("no version returned"))?;
        self.info(&code, version)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("policy version {version} of tenant {code}"),
            })
    }

    /// A version's metadata.
    pub async fn info(
        &self,
        tenant: &str,
        version: u32,
    ) -> Result<Option<PolicyModuleInfo>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query(format!("SELECT {INFO_FIELDS} FROM {MODULE}"))
            .bind(("code", code))
            .bind(("version", i64::from(version))))
        .await?;
        let row: Option<InfoRow> = res.take(0)?;
        row.map(PolicyModuleInfo::try_from).transpose()
    }

    /// A version with its bytes.
    pub async fn get(
        &self,
        tenant: &str,
        version: u32,
    ) -> Result<Option<PolicyModule>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query(format!("SELECT * FROM {MODULE}"))
            .bind(("code", code))
            .bind(("version", i64::from(version))))
        .await?;
        let row: Option<ModuleRow> = res.take(0)?;
        row.map(PolicyModule::try_from).transpose()
    }

    /// Every version of a tenant, oldest first, without bytes.
    pub async fn list(&self, tenant: &str) -> Result<Vec<PolicyModuleInfo>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query(format!(
                "SELECT {INFO_FIELDS} FROM policy_module WHERE tenant = $tenant ORDER BY version"
            ))
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let rows: Vec<InfoRow> = res.take(0)?;
        rows.into_iter().map(PolicyModuleInfo::try_from).collect()
    }

    /// Makes `version` the tenant's active module (and no other), clearing
    /// any earlier deactivation reason.
    pub async fn activate(&self, tenant: &str, version: u32) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        run(self
            .db
            .query(format!(
                "BEGIN TRANSACTION;
                LET $module = {MODULE};
                IF !record::exists($module) {{
                    THROW 'edgepbx:not_found:policy version ' + <string> $version + ' of tenant ' + $code;
                }};
                UPDATE policy_module SET active = false WHERE tenant = $tenant AND active = true;
                UPDATE $module SET active = true, deactivated_reason = NONE, deactivated_at = NONE;
                COMMIT TRANSACTION;"
            ))
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("version", i64::from(version))))
        .await?;
        Ok(())
    }

    /// Returns the tenant to the built-in policy. With a reason, records why
    /// (the runtime's deactivation after repeated faults).
    pub async fn deactivate(
        &self,
        tenant: &str,
        version: u32,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let reason: Option<String> = reason.map(|r| r.chars().take(500).collect());
        run(self
            .db
            .query(format!(
                "LET $module = {MODULE};
                IF record::exists($module) {{
                    UPDATE $module SET active = false, deactivated_reason = $reason,
                        deactivated_at = IF $reason = NONE {{ NONE }} ELSE {{ time::now() }};
                }};"
            ))
            .bind(("code", code))
            .bind(("version", i64::from(version)))
            .bind(("reason", reason)))
        .await?;
        Ok(())
    }

    /// Every tenant's active module, with bytes: what a starting server
    /// loads. A whole-database read by design.
    pub async fn all_active(&self) -> Result<Vec<PolicyModule>, StoreError> {
        let mut res = run(self
            .db
            .query("SELECT * FROM policy_module WHERE active = true"))
        .await?;
        let rows: Vec<ModuleRow> = res.take(0)?;
        rows.into_iter().map(PolicyModule::try_from).collect()
    }

    /// The tenant's policy key-value entries.
    pub async fn kv(&self, tenant: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT key, value FROM policy_kv WHERE tenant = $tenant")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let rows: Vec<KvRow> = res.take(0)?;
        Ok(rows.into_iter().map(|r| (r.key, r.value)).collect())
    }

    /// Writes key-value changes of one tenant in one transaction: `Some`
    /// sets, `None` removes.
    pub async fn write_kv(
        &self,
        tenant: &str,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let (set, removed): (Vec<_>, Vec<_>) = changes.into_iter().partition(|(_, v)| v.is_some());
        let set: Vec<KvRow> = set
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| KvRow { key, value }))
            .collect();
        let removed: Vec<String> = removed.into_iter().map(|(key, _)| key).collect();
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                FOR $entry IN $set {
                    UPSERT type::record('policy_kv', [$code, $entry.key])
                        CONTENT { tenant: $tenant, key: $entry.key, value: $entry.value };
                };
                FOR $key IN $removed { DELETE type::record('policy_kv', [$code, $key]); };
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("set", set))
            .bind(("removed", removed)))
        .await?;
        Ok(())
    }
}

#[derive(SurrealValue)]
struct KvRow {
    key: String,
    value: String,
}
