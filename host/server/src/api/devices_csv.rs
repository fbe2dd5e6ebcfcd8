//! Desk phones as CSV: an export that imports back unchanged, and an
//! import that checks every row first (a dry run unless asked) and then
//! writes all of them in one transaction or, when any row is wrong,
//! nothing. Cells a spreadsheet would run as formulas are exported with an
//! apostrophe in front, which import takes off, as for extensions.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Query, State as AxumState};
use axum::response::Response;
use edgepbx_model::sheet::Sheet;
use edgepbx_store::{BlfKey, Device, MAX_DEVICES, Mac};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Scope, WriteScope};
use super::devices::{parse_mac, vendor_of};
use super::imports::{RowError, csv_download, sheet_problem};
use super::{Problem, State};

/// The columns, in export order.
pub const COLUMNS: &[&str] = &[
    "mac",
    "vendor",
    "model",
    "extension",
    "line",
    "blf_keys",
    "label",
];

/// Import options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceImportParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Check only (default true): nothing is written.
    dry_run: Option<bool>,
}

/// What an import found and did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceImportReport {
    /// Rows read.
    rows: usize,
    /// Phones it adds (or added).
    created: usize,
    /// Phones it replaces (or replaced).
    updated: usize,
    /// Whether it wrote them: false for a dry run or any error.
    committed: bool,
    /// Every row's errors; none were written when there are any.
    errors: Vec<RowError>,
}

/// A phone as a CSV record, in [`COLUMNS`] order.
fn record(d: &Device) -> Vec<String> {
    let keys: Vec<String> = d
        .blf_keys
        .iter()
        .map(|k| match k.label() {
            "" => k.number().to_owned(),
            label => format!("{}={label}", k.number()),
        })
        .collect();
    vec![
        d.mac.to_string(),
        d.vendor.as_str().to_owned(),
        d.model.clone().unwrap_or_default(),
        d.extension.clone(),
        d.line.to_string(),
        keys.join(";"),
        d.label.clone().unwrap_or_default(),
    ]
}

/// Exports the tenant's phones as CSV.
#[utoipa::path(get, path = "/api/v1/devices/export.csv", tag = "import-export",
    params(super::auth::TenantParam),
    responses((status = 200, content_type = "text/csv", body = String)))]
pub(super) async fn export_devices(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Response, Problem> {
    let devices = api.admin.store.devices().list(&scope.tenant, None).await?;
    csv_download(
        COLUMNS,
        devices.iter().map(record),
        "attachment; filename=\"devices.csv\"",
    )
}

/// Imports phones from CSV: every row checked, then (unless a dry run)
/// all written in one transaction, or none when any row is wrong.
#[utoipa::path(post, path = "/api/v1/devices/import.csv", tag = "import-export",
    params(DeviceImportParams),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = DeviceImportReport), (status = 422, body = Problem)))]
pub(super) async fn import_devices(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Query(p): Query<DeviceImportParams>,
    body: String,
) -> Result<Json<DeviceImportReport>, Problem> {
    let _ = p.tenant;
    let dry_run = p.dry_run.unwrap_or(true);
    let sheet =
        Sheet::read(&body, COLUMNS, &["mac", "extension"], MAX_DEVICES).map_err(sheet_problem)?;
    let store = &api.admin.store;
    let extensions: HashSet<String> = store
        .extensions()
        .list(&scope.tenant)
        .await?
        .into_iter()
        .map(|e| e.number)
        .collect();
    let existing: HashSet<Mac> = store
        .devices()
        .list(&scope.tenant, None)
        .await?
        .into_iter()
        .map(|d| d.mac)
        .collect();
    let mut devices = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for entry in sheet.rows() {
        let row = entry.number();
        match row_device(&|column| entry.cell(column), &extensions) {
            Ok(device) if !seen.insert(device.mac) => {
                errors.push(RowError::new(row, "mac", "given in an earlier row"));
            }
            Ok(device) => devices.push(device),
            Err((field, message)) => errors.push(RowError::new(row, field, message)),
        }
    }
    let created = devices
        .iter()
        .filter(|d| !existing.contains(&d.mac))
        .count();
    let updated = devices.len() - created;
    let commit = !dry_run && errors.is_empty();
    if commit {
        store.devices().put_all(&scope.tenant, &devices).await?;
    }
    Ok(Json(DeviceImportReport {
        rows: devices.len() + errors.len(),
        created,
        updated,
        committed: commit,
        errors,
    }))
}

/// The phone a row describes, or the column that is wrong and why.
fn row_device<'a>(
    cell: &dyn Fn(&str) -> Option<&'a str>,
    extensions: &HashSet<String>,
) -> Result<Device, (String, String)> {
    let mac = cell("mac").ok_or(("mac".to_owned(), "is required".to_owned()))?;
    let extension = cell("extension").ok_or(("extension".to_owned(), "is required".to_owned()))?;
    if !extensions.contains(extension) {
        return Err(("extension".into(), format!("no extension {extension}")));
    }
    let line = match cell("line") {
        None => 1,
        Some(v) => v
            .parse()
            .map_err(|_| ("line".to_owned(), "must be a number".to_owned()))?,
    };
    let keys = cell("blf_keys")
        .unwrap_or("")
        .split(';')
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            let (number, label) = k.split_once('=').unwrap_or((k, ""));
            BlfKey::new(number.trim(), label.trim())
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("blf_keys".to_owned(), e.reason))?;
    let field_of = |p: Problem| match p.errors.first() {
        Some(f) => (f.field.clone(), f.message.clone()),
        None => ("row".to_owned(), p.detail.clone()),
    };
    let mac = parse_mac(mac).map_err(field_of)?;
    let device = Device {
        vendor: vendor_of(&mac, cell("vendor")).map_err(field_of)?,
        mac,
        model: cell("model").map(str::to_owned),
        extension: extension.to_owned(),
        line,
        blf_keys: keys,
        label: cell("label").map(str::to_owned),
        updated_at: std::time::SystemTime::UNIX_EPOCH,
    };
    device.validate().map_err(|e| match e {
        edgepbx_store::StoreError::InvalidField { field, reason } => (field.to_owned(), reason),
        other => ("row".to_owned(), other.to_string()),
    })?;
    Ok(device)
}
