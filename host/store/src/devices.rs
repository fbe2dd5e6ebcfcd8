//! Desk phones an administrator added by MAC address, so that they can
//! provision themselves: which extension each one registers as, its model
//! and its BLF keys, and the record of what each one fetched.
//!
//! A phone belongs to one tenant and is named by its MAC address there; a
//! removed extension takes its phones with it. Fetches are kept per phone,
//! the newest [`KEPT_FETCHES`]; they do not change the phone's version, so
//! a phone fetching its files never makes an administrator's `If-Match`
//! fail.

use std::time::SystemTime;

use edgepbx_model::{BlfKey, Mac, Vendor};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::StoreError;
use crate::db::{Write, from_datetime, run, to_datetime, version_required};
use crate::extensions::extension_number;
use crate::tenants::{tenant_code, tenant_id};

/// Most phones per tenant.
pub const MAX_DEVICES: usize = 10_000;

/// Most BLF keys on one phone (the largest expansion-module setups).
pub const MAX_BLF_KEYS: usize = 100;

/// Fetches kept per phone.
pub const KEPT_FETCHES: usize = 20;

/// Longest model name or label.
const MAX_TEXT: usize = 64;

/// A desk phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its MAC address: its name in the tenant.
    pub mac: Mac,
    /// Its maker, which decides the files it is given.
    pub vendor: Vendor,
    /// Its model (`T46U`, `GXP2170`), when known: decides how many line
    /// keys its configuration fills.
    pub model: Option<String>,
    /// The extension it registers as.
    pub extension: String,
    /// The phone's account (line) that extension takes, from 1.
    pub line: u8,
    /// Its BLF keys, in key order.
    pub blf_keys: Vec<BlfKey>,
    /// What the console shows for it (`Reception desk`).
    pub label: Option<String>,
    /// When it last changed: its version. Set by the store; what a write
    /// passes is ignored.
    pub updated_at: SystemTime,
}

/// Most accounts (lines) a phone configuration uses.
pub const MAX_LINE: u8 = 16;

impl Device {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), StoreError> {
        extension_number(&self.extension)
            .map_err(|_| StoreError::invalid("extension", "must be 1 to 15 digits"))?;
        if !(1..=MAX_LINE).contains(&self.line) {
            return Err(StoreError::invalid(
                "line",
                format!("must be 1 to {MAX_LINE}"),
            ));
        }
        if self.blf_keys.len() > MAX_BLF_KEYS {
            return Err(StoreError::invalid(
                "blf_keys",
                format!("at most {MAX_BLF_KEYS} keys"),
            ));
        }
        for (field, value) in [("model", &self.model), ("label", &self.label)] {
            if let Some(v) = value
                && (v.trim().is_empty()
                    || v.chars().count() > MAX_TEXT
                    || v.chars().any(char::is_control))
            {
                return Err(StoreError::invalid(
                    field,
                    format!("must be 1 to {MAX_TEXT} characters without control characters"),
                ));
            }
        }
        Ok(())
    }
}

/// One configuration file a phone fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The file's name.
    pub file: String,
    /// The address it came from.
    pub address: String,
    /// Its User-Agent, as sent (cut to 200 characters).
    pub user_agent: Option<String>,
    /// When.
    pub at: SystemTime,
}

#[derive(SurrealValue)]
struct BlfKeyRow {
    number: String,
    label: String,
}

#[derive(SurrealValue)]
struct DeviceRow {
    mac: String,
    tenant: RecordId,
    vendor: String,
    model: Option<String>,
    extension: String,
    line: i64,
    blf_keys: Vec<BlfKeyRow>,
    label: Option<String>,
    /// Set by the database on every write.
    updated_at: Option<Datetime>,
}

impl DeviceRow {
    fn of(code: &str, d: &Device) -> DeviceRow {
        DeviceRow {
            mac: d.mac.to_string(),
            tenant: tenant_id(code),
            vendor: d.vendor.as_str().to_owned(),
            model: d.model.clone(),
            extension: d.extension.clone(),
            line: i64::from(d.line),
            blf_keys: d
                .blf_keys
                .iter()
                .map(|k| BlfKeyRow {
                    number: k.number().to_owned(),
                    label: k.label().to_owned(),
                })
                .collect(),
            label: d.label.clone(),
            updated_at: None,
        }
    }

    fn into_device(self) -> Result<Device, StoreError> {
        let bad = |reason: String| StoreError::InvalidRecord {
            table: "device",
            reason,
        };
        Ok(Device {
            mac: self.mac.parse().map_err(|e| bad(format!("{e}")))?,
            vendor: self.vendor.parse().map_err(|e| bad(format!("{e}")))?,
            model: self.model,
            extension: self.extension,
            line: u8::try_from(self.line).map_err(|e| bad(e.to_string()))?,
            blf_keys: self
                .blf_keys
                .into_iter()
                .map(|k| BlfKey::new(&k.number, &k.label).map_err(|e| bad(e.to_string())))
                .collect::<Result<_, _>>()?,
            label: self.label,
            updated_at: self
                .updated_at
                .as_ref()
                .map_or(SystemTime::UNIX_EPOCH, from_datetime),
        })
    }
}

#[derive(SurrealValue)]
struct FetchRow {
    tenant: RecordId,
    mac: String,
    file: String,
    address: String,
    user_agent: Option<String>,
    at: Datetime,
}

/// Phone repository; get one from [`Store::devices`](crate::Store::devices).
#[derive(Debug, Clone, Copy)]
pub struct Devices<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

impl Devices<'_> {
    /// Adds a phone and returns it as stored. Its MAC must be new in the
    /// tenant and its extension must exist; nothing is written on failure.
    pub async fn add(&self, tenant: &str, device: Device) -> Result<Device, StoreError> {
        self.write(tenant, device, Write::Add).await
    }

    /// Replaces an existing phone (same checks as [`Devices::add`]); with
    /// `if_version`, only if its version ([`Device::updated_at`]) is still
    /// that one ([`StoreError::Changed`] otherwise, and nothing written).
    pub async fn replace(
        &self,
        tenant: &str,
        device: Device,
        if_version: Option<SystemTime>,
    ) -> Result<Device, StoreError> {
        self.write(tenant, device, Write::Replace { if_version })
            .await
    }

    async fn write(&self, tenant: &str, device: Device, how: Write) -> Result<Device, StoreError> {
        let code = tenant_code(tenant)?;
        device.validate()?;
        let (replace, if_version) = how.parts()?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                IF !record::exists(type::record('extension', [$code, $row.extension])) {
                    THROW 'edgepbx:not_found:extension ' + $row.extension + ' in tenant ' + $code;
                };
                LET $device = type::record('device', [$code, $row.mac]);
                IF $replace AND !record::exists($device) {
                    THROW 'edgepbx:not_found:device ' + $row.mac;
                };
                IF !$replace AND record::exists($device) {
                    THROW 'edgepbx:conflict:device ' + $row.mac + ' already exists';
                };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $device)[0] != $if_version {
                    THROW 'edgepbx:changed:device ' + $row.mac;
                };
                IF !$replace
                    AND array::len((SELECT VALUE id FROM device WHERE tenant = $tenant)) >= $max {
                    THROW 'edgepbx:limit:max_devices:' + <string> $max;
                };
                UPSERT $device CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("max", MAX_DEVICES as i64))
            .bind(("replace", replace))
            .bind(("if_version", if_version))
            .bind(("row", DeviceRow::of(&code, &device))))
        .await?;
        self.get(&code, &device.mac)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                // Removed by someone else since this write committed.
                what: format!("device {}", device.mac),
            })
    }

    /// Adds or replaces `devices` (by MAC address) in one transaction: all
    /// of them or, when any is invalid, names an extension that does not
    /// exist or would take the tenant past [`MAX_DEVICES`], none.
    pub async fn put_all(&self, tenant: &str, devices: &[Device]) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        for device in devices {
            device.validate()?;
        }
        let rows: Vec<DeviceRow> = devices.iter().map(|d| DeviceRow::of(&code, d)).collect();
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                FOR $row IN $rows {
                    IF !record::exists(type::record('extension', [$code, $row.extension])) {
                        THROW 'edgepbx:not_found:extension ' + $row.extension + ' in tenant ' + $code;
                    };
                    UPSERT type::record('device', [$code, $row.mac]) CONTENT $row;
                };
                IF array::len((SELECT VALUE id FROM device WHERE tenant = $tenant)) > $max {
                    THROW 'edgepbx:limit:max_devices:' + <string> $max;
                };
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("max", MAX_DEVICES as i64))
            .bind(("rows", rows)))
        .await?;
        Ok(())
    }

    /// One phone.
    pub async fn get(&self, tenant: &str, mac: &Mac) -> Result<Option<Device>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM type::record('device', [$code, $mac])")
            .bind(("code", code))
            .bind(("mac", mac.to_string())))
        .await?;
        let row: Option<DeviceRow> = res.take(0)?;
        row.map(DeviceRow::into_device).transpose()
    }

    /// A tenant's phones, by MAC address; only `extension`'s when given.
    pub async fn list(
        &self,
        tenant: &str,
        extension: Option<&str>,
    ) -> Result<Vec<Device>, StoreError> {
        let mut res = run(self
            .db
            .query(
                "SELECT * FROM device WHERE tenant = $tenant
                    AND ($extension = NONE OR extension = $extension) ORDER BY mac",
            )
            .bind(("tenant", tenant_id(&tenant_code(tenant)?)))
            .bind(("extension", extension.map(str::to_owned))))
        .await?;
        let rows: Vec<DeviceRow> = res.take(0)?;
        rows.into_iter().map(DeviceRow::into_device).collect()
    }

    /// Removes a phone and its fetches; with `if_version`, only if its
    /// version ([`Device::updated_at`]) is still that one
    /// ([`StoreError::Changed`] otherwise).
    pub async fn remove(
        &self,
        tenant: &str,
        mac: &Mac,
        if_version: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let if_version = version_required(if_version)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                LET $device = type::record('device', [$code, $mac]);
                IF !record::exists($device) { THROW 'edgepbx:not_found:device ' + $mac; };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $device)[0] != $if_version {
                    THROW 'edgepbx:changed:device ' + $mac;
                };
                DELETE provisioning_fetch WHERE tenant = $tenant AND mac = $mac;
                DELETE $device;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("mac", mac.to_string()))
            .bind(("if_version", if_version)))
        .await?;
        Ok(())
    }

    /// Records that phone `mac` fetched `fetch.file`, keeping its newest
    /// [`KEPT_FETCHES`].
    pub async fn record_fetch(
        &self,
        tenant: &str,
        mac: &Mac,
        fetch: Fetch,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let row = FetchRow {
            tenant: tenant_id(&code),
            mac: mac.to_string(),
            file: fetch.file.chars().take(MAX_TEXT).collect(),
            address: fetch.address.chars().take(MAX_TEXT).collect(),
            user_agent: fetch.user_agent.map(|u| u.chars().take(200).collect()),
            at: to_datetime("at", fetch.at)?,
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                CREATE provisioning_fetch CONTENT $row;
                LET $old = (SELECT VALUE id FROM provisioning_fetch
                    WHERE tenant = $row.tenant AND mac = $row.mac ORDER BY at DESC START $kept);
                DELETE $old;
                COMMIT TRANSACTION;",
            )
            .bind(("row", row))
            .bind(("kept", KEPT_FETCHES as i64)))
        .await?;
        Ok(())
    }

    /// What phone `mac` fetched, newest first.
    pub async fn fetches(&self, tenant: &str, mac: &Mac) -> Result<Vec<Fetch>, StoreError> {
        let mut res = run(self
            .db
            .query(
                "SELECT * FROM provisioning_fetch WHERE tenant = $tenant AND mac = $mac
                    ORDER BY at DESC",
            )
            .bind(("tenant", tenant_id(&tenant_code(tenant)?)))
            .bind(("mac", mac.to_string())))
        .await?;
        let rows: Vec<FetchRow> = res.take(0)?;
        Ok(rows
            .into_iter()
            .map(|r| Fetch {
                file: r.file,
                address: r.address,
                user_agent: r.user_agent,
                at: from_datetime(&r.at),
            })
            .collect())
    }
}
