//! Desk phones to provision (by MAC address), with `ETag` and `If-Match`,
//! the `check-sync` that makes a registered phone fetch its files again,
//! and the tenant's provisioning credential.
//!
//! Adding or changing a phone tells it to resync at once when it is
//! registered; `POST .../resync` does so on demand, for one phone or all
//! of an extension's or the tenant's.

use std::collections::HashMap;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use edgepbx_store::{BlfKey, Device, Mac, Vendor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Scope, TenantParam, WriteScope};
use super::problem::Body;
use super::versions;
use super::{Problem, State};
use edgepbx_engine::DeviceInfo;
use edgepbx_engine::time::rfc3339;

/// A BLF key of a phone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlfKeyView {
    /// The number it watches (an extension or group).
    number: String,
    /// Its label (empty: the number).
    #[serde(default)]
    label: String,
}

/// The last configuration file a phone fetched.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FetchView {
    /// The file.
    file: String,
    /// From this address.
    address: String,
    /// With this User-Agent.
    user_agent: Option<String>,
    /// When (RFC 3339).
    at: String,
}

/// Where a phone is registered from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegisteredView {
    /// Its Contact.
    contact: String,
    /// `udp`, `tcp` or `tls`.
    transport: &'static str,
    /// The address it registered from.
    address: String,
    /// When it was last heard (RFC 3339).
    last_seen: Option<String>,
    /// When its registration expires (RFC 3339).
    expires_at: String,
}

/// The registration among `registrations` that is phone `mac`'s.
fn registered_of(mac: &Mac, registrations: &[DeviceInfo]) -> Option<RegisteredView> {
    registrations
        .iter()
        .find(|r| {
            [&r.user_agent, &r.instance]
                .into_iter()
                .flatten()
                .any(|text| mac.is_named_in(text))
        })
        .map(|r| RegisteredView {
            contact: r.contact.clone(),
            transport: r.source.transport_name(),
            address: r.source.addr().to_string(),
            last_seen: r.last_seen.map(rfc3339),
            expires_at: rfc3339(r.expires_at),
        })
}

/// A desk phone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceView {
    /// MAC address, in any usual form (given in the path for changes;
    /// shown as 12 lower-case hex digits).
    #[serde(default)]
    mac: Option<String>,
    /// `yealink` or `grandstream`; from the MAC address's maker when
    /// omitted.
    #[serde(default)]
    vendor: Option<String>,
    /// Model (`T46U`, `GXP2170`): how many line keys it has.
    #[serde(default)]
    model: Option<String>,
    /// The extension it registers as.
    extension: String,
    /// Its account (line) for that extension, from 1.
    #[serde(default = "first_line")]
    line: u8,
    /// BLF keys, in key order.
    #[serde(default)]
    blf_keys: Vec<BlfKeyView>,
    /// What the console shows for it.
    #[serde(default)]
    label: Option<String>,
    /// The last file it fetched. Read-only.
    #[serde(default, skip_deserializing)]
    #[schema(read_only)]
    last_provisioned: Option<FetchView>,
    /// Its registration now, when one of its extension's registrations
    /// names its MAC address (User-Agent or instance id). Read-only.
    #[serde(default, skip_deserializing)]
    #[schema(read_only)]
    registered: Option<RegisteredView>,
    /// Its version, as the `ETag` header gives it: send it back in
    /// `If-Match` so that a change made meanwhile by someone else is not
    /// overwritten (412). Read-only: ignored in requests.
    #[serde(default)]
    #[schema(read_only)]
    etag: Option<String>,
}

fn first_line() -> u8 {
    1
}

/// `body` as a device named `mac`, every field checked (the error names
/// it).
fn device_of(mac: Mac, body: DeviceView) -> Result<Device, Problem> {
    let vendor = vendor_of(&mac, body.vendor.as_deref())?;
    let blf_keys = body
        .blf_keys
        .iter()
        .map(|k| BlfKey::new(&k.number, &k.label))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Problem::field(e.field, e.reason))?;
    Ok(Device {
        mac,
        vendor,
        model: body.model,
        extension: body.extension,
        line: body.line,
        blf_keys,
        label: body.label,
        updated_at: SystemTime::UNIX_EPOCH,
    })
}

/// The vendor named, or else the maker of `mac`.
pub(super) fn vendor_of(mac: &Mac, named: Option<&str>) -> Result<Vendor, Problem> {
    match named {
        Some(v) => v
            .parse::<Vendor>()
            .map_err(|e| Problem::field("vendor", e.to_string())),
        None => Vendor::of_mac(mac).ok_or_else(|| {
            Problem::field(
                "vendor",
                "not known from the MAC address: give yealink or grandstream",
            )
        }),
    }
}

/// A MAC address, or the problem naming the field.
pub(super) fn parse_mac(text: &str) -> Result<Mac, Problem> {
    text.parse::<Mac>()
        .map_err(|e| Problem::field("mac", e.to_string()))
}

/// The registrations of the extensions of `devices`, by extension.
async fn registrations_of(
    api: &State,
    tenant: &str,
    devices: &[Device],
) -> Result<HashMap<String, Vec<DeviceInfo>>, Problem> {
    let mut by_extension = HashMap::new();
    for d in devices {
        if !by_extension.contains_key(&d.extension) {
            let registrations = api
                .admin
                .registrations(tenant, &d.extension)
                .await
                .map_err(|e| Problem::internal(&e))?;
            by_extension.insert(d.extension.clone(), registrations);
        }
    }
    Ok(by_extension)
}

async fn view_of(
    api: &State,
    tenant: &str,
    d: Device,
    registrations: &[DeviceInfo],
) -> Result<DeviceView, Problem> {
    let registered = registered_of(&d.mac, registrations);
    let last = api
        .admin
        .store
        .devices()
        .fetches(tenant, &d.mac)
        .await?
        .into_iter()
        .next()
        .map(|f| FetchView {
            file: f.file,
            address: f.address,
            user_agent: f.user_agent,
            at: rfc3339(f.at),
        });
    Ok(DeviceView {
        etag: Some(versions::etag(&d)),
        mac: Some(d.mac.to_string()),
        vendor: Some(d.vendor.as_str().to_owned()),
        model: d.model,
        extension: d.extension,
        line: d.line,
        blf_keys: d
            .blf_keys
            .iter()
            .map(|k| BlfKeyView {
                number: k.number().to_owned(),
                label: k.label().to_owned(),
            })
            .collect(),
        label: d.label,
        last_provisioned: last,
        registered,
    })
}

async fn tagged(api: &State, tenant: &str, d: Device) -> Result<Response, Problem> {
    let tag = versions::etag(&d);
    let registrations = registrations_of(api, tenant, std::slice::from_ref(&d)).await?;
    let theirs = registrations
        .get(&d.extension)
        .map_or(&[][..], Vec::as_slice);
    Ok(versions::tagged(
        view_of(api, tenant, d, theirs).await?,
        &tag,
    ))
}

/// Which phones.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Only this extension's.
    extension: Option<String>,
}

/// The tenant's phones, by MAC address.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceParams),
    responses((status = 200, body = Vec<DeviceView>)))]
async fn list_devices(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Query(p): Query<DeviceParams>,
) -> Result<Json<Vec<DeviceView>>, Problem> {
    let _ = p.tenant;
    let devices = api
        .admin
        .store
        .devices()
        .list(&scope.tenant, p.extension.as_deref())
        .await?;
    let registrations = registrations_of(&api, &scope.tenant, &devices).await?;
    let mut views = Vec::with_capacity(devices.len());
    for d in devices {
        let theirs = registrations
            .get(&d.extension)
            .map_or(&[][..], Vec::as_slice);
        views.push(view_of(&api, &scope.tenant, d, theirs).await?);
    }
    Ok(Json(views))
}

/// Adds a phone; tells it to resync if it is registered already.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", params(TenantParam), request_body = DeviceView,
    responses((status = 201, body = DeviceView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_device(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Body(mut body): Body<DeviceView>,
) -> Result<(StatusCode, Response), Problem> {
    let mac = parse_mac(body.mac.take().as_deref().unwrap_or(""))?;
    let device = device_of(mac, body)?;
    let stored = api.admin.store.devices().add(&scope.tenant, device).await?;
    resync_quietly(&api, &scope.tenant, &stored).await;
    Ok((
        StatusCode::CREATED,
        tagged(&api, &scope.tenant, stored).await?,
    ))
}

async fn find_device(api: &State, tenant: &str, mac: &str) -> Result<Device, Problem> {
    let mac = parse_mac(mac)?;
    api.admin
        .store
        .devices()
        .get(tenant, &mac)
        .await?
        .ok_or_else(|| Problem::not_found(format!("device {mac}")))
}

/// One phone.
#[utoipa::path(get, path = "/api/v1/devices/{mac}", tag = "devices", params(TenantParam, ("mac" = String, Path)),
    responses((status = 200, body = DeviceView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 404, body = Problem)))]
async fn read_device(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Path(mac): Path<String>,
) -> Result<Response, Problem> {
    let device = find_device(&api, &scope.tenant, &mac).await?;
    tagged(&api, &scope.tenant, device).await
}

/// Replaces a phone (and tells it to resync); with `If-Match`, only if
/// nobody changed it since.
#[utoipa::path(put, path = "/api/v1/devices/{mac}", tag = "devices",
    params(TenantParam, ("mac" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the device must still have one (`etag` of a read), or `*`; else 412")),
    request_body = DeviceView,
    responses((status = 200, body = DeviceView, headers(("ETag" = String, description = "Its new version"))), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn replace_device(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(mac): Path<String>,
    headers: HeaderMap,
    Body(mut body): Body<DeviceView>,
) -> Result<Response, Problem> {
    let current = find_device(&api, &scope.tenant, &mac).await?;
    if let Some(given) = body.mac.take()
        && parse_mac(&given)? != current.mac
    {
        return Err(Problem::field("mac", "must be the MAC address in the path"));
    }
    let if_version = versions::if_match(&headers, &current)?;
    let device = device_of(current.mac, body)?;
    let stored = api
        .admin
        .store
        .devices()
        .replace(&scope.tenant, device, if_version)
        .await?;
    resync_quietly(&api, &scope.tenant, &stored).await;
    tagged(&api, &scope.tenant, stored).await
}

/// Removes a phone; with `If-Match`, only if nobody changed it since.
#[utoipa::path(delete, path = "/api/v1/devices/{mac}", tag = "devices",
    params(TenantParam, ("mac" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the device must still have one (`etag` of a read), or `*`; else 412")),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn remove_device(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(mac): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let current = find_device(&api, &scope.tenant, &mac).await?;
    let if_version = versions::if_match(&headers, &current)?;
    api.admin
        .store
        .devices()
        .remove(&scope.tenant, &current.mac, if_version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many registrations of phones were told to resync.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resynced {
    /// Phones asked.
    devices: usize,
    /// Their registrations told (a phone that is not registered is told
    /// nothing).
    notified: usize,
}

/// Tells a phone to fetch its configuration again.
#[utoipa::path(post, path = "/api/v1/devices/{mac}/resync", tag = "devices", params(TenantParam, ("mac" = String, Path)),
    responses((status = 200, body = Resynced), (status = 404, body = Problem)))]
async fn resync_device(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(mac): Path<String>,
) -> Result<Json<Resynced>, Problem> {
    let device = find_device(&api, &scope.tenant, &mac).await?;
    let notified = resync(&api, &scope.tenant, &device).await?;
    Ok(Json(Resynced {
        devices: 1,
        notified,
    }))
}

/// Tells every phone of the tenant (or of one extension) to fetch its
/// configuration again.
#[utoipa::path(post, path = "/api/v1/devices/resync", tag = "devices", params(DeviceParams),
    responses((status = 200, body = Resynced)))]
async fn resync_devices(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Query(p): Query<DeviceParams>,
) -> Result<Json<Resynced>, Problem> {
    let devices = api
        .admin
        .store
        .devices()
        .list(&scope.tenant, p.extension.as_deref())
        .await?;
    let mut notified = 0;
    for device in &devices {
        notified += resync(&api, &scope.tenant, device).await?;
    }
    Ok(Json(Resynced {
        devices: devices.len(),
        notified,
    }))
}

async fn resync(api: &State, tenant: &str, device: &Device) -> Result<usize, Problem> {
    api.admin
        .resync(tenant, device)
        .await
        .map_err(|e| Problem::new(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")))
}

/// After a change: a registered phone fetches the change at once; one
/// that is not fetches it when it next starts.
async fn resync_quietly(api: &State, tenant: &str, device: &Device) {
    if let Err(error) = api.admin.resync(tenant, device).await {
        tracing::warn!(%error, "no resync after a device change");
    }
}

/// The tenant's provisioning credential, as phones present it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisioningView {
    /// Where the tenant's phones fetch their files: append it to the
    /// server's address (`https://pbx.example.com/prov/ACME/`).
    path: String,
    /// The HTTP user name phones send.
    username: String,
    /// Whether a password is set (provisioning works only then).
    configured: bool,
    /// The password: only in the answer that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// The tenant's provisioning credential.
#[utoipa::path(get, path = "/api/v1/provisioning", tag = "devices", params(TenantParam),
    responses((status = 200, body = ProvisioningView)))]
async fn read_provisioning(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Json<ProvisioningView>, Problem> {
    let secret = api
        .admin
        .store
        .tenants()
        .provisioning_secret(&scope.tenant)
        .await?;
    Ok(Json(provisioning_view(
        &scope.tenant,
        secret.is_some(),
        None,
    )))
}

/// Sets a new random provisioning password (the old one stops working);
/// it is shown in this answer only.
#[utoipa::path(post, path = "/api/v1/provisioning/credential", tag = "devices", params(TenantParam),
    responses((status = 200, body = ProvisioningView)))]
async fn rotate_provisioning(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
) -> Result<Json<ProvisioningView>, Problem> {
    let password =
        crate::admin::tenants::new_provisioning_password(&api.admin.store, &scope.tenant).await?;
    Ok(Json(provisioning_view(&scope.tenant, true, Some(password))))
}

/// Removes the provisioning password: phones fetch nothing until a new
/// one is set.
#[utoipa::path(delete, path = "/api/v1/provisioning/credential", tag = "devices", params(TenantParam),
    responses((status = 204)))]
async fn remove_provisioning(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
) -> Result<StatusCode, Problem> {
    api.admin
        .store
        .tenants()
        .set_provisioning_secret(&scope.tenant, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn provisioning_view(tenant: &str, configured: bool, password: Option<String>) -> ProvisioningView {
    ProvisioningView {
        path: format!("/prov/{tenant}/"),
        username: tenant.to_owned(),
        configured,
        password,
    }
}

/// The devices' routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, create_device))
        .routes(routes!(super::devices_csv::export_devices))
        .routes(routes!(super::devices_csv::import_devices))
        .routes(routes!(resync_devices))
        .routes(routes!(read_device, replace_device, remove_device))
        .routes(routes!(resync_device))
        .routes(routes!(read_provisioning))
        .routes(routes!(rotate_provisioning, remove_provisioning))
}
