//! Extensions: list (search, sort, paging), create, read, JSON merge patch,
//! delete, bulk actions, SIP password reset and audited reveal, devices and
//! registration history.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use edgepbx_store::{
    AllowedDestinations, AuditEntry, CallSettings, EventKind, Extension, ExtensionWrite, FollowMe,
    FollowMeDestination, ForwardTarget, Profile, RingMode, StoreError, WriteMode, number_order,
};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Personal, Scope, TenantParam, WriteScope};
use super::problem::{Body, from_value};
use super::versions;
use super::{Api, Problem, State};
use crate::admin::credentials::{check_password, credentials_for, generate_password};
use edgepbx_engine::LineState;
use edgepbx_engine::time::rfc3339;

mod views;

pub use views::*;

/// Most extensions one page lists.
const MAX_PER_PAGE: usize = 1_000;
/// Most numbers one bulk action names.
const MAX_BULK: usize = 1_000;
/// Longest registration history asked for, hours.
const MAX_HISTORY_HOURS: u64 = 24 * 7;

/// A view of an extension with its `ETag` header.
fn tagged(view: ExtensionView) -> Response {
    let tag = view.etag.clone();
    versions::tagged(view, &tag)
}

/// The API's name of a store field.
fn api_field(field: &str) -> String {
    match field {
        "forward_unconditional" => "forwarding.unconditional".into(),
        "forward_busy" => "forwarding.busy".into(),
        "forward_no_answer" => "forwarding.no_answer".into(),
        "forward_offline" => "forwarding.offline".into(),
        "outbound_caller_id" => "caller_id.outbound".into(),
        "inbound_prefix" => "caller_id.inbound_prefix".into(),
        other => other.into(),
    }
}

/// A store error with the API's field names.
pub fn api_error(e: impl Into<StoreError>) -> Problem {
    match e.into() {
        StoreError::InvalidField { field, reason } => Problem::field(api_field(field), reason),
        other => other.into(),
    }
}

/// Settings and profile from what an administrator wrote; the PIN hash is
/// decided by the caller.
pub fn settings_of(
    ed: &Editable,
    pin_hash: Option<String>,
) -> Result<(CallSettings, Profile), Problem> {
    let target = |field: &'static str, t: &Option<String>| {
        t.as_deref()
            .map(|t| ForwardTarget::parse(field, t))
            .transpose()
            .map_err(api_error)
    };
    let follow_me = match &ed.follow_me {
        None => None,
        Some(f) => Some(FollowMe {
            mode: RingMode::parse(&f.mode).map_err(api_error)?,
            destinations: f
                .destinations
                .iter()
                .map(|d| FollowMeDestination {
                    number: d.number.clone(),
                    timeout_secs: d.timeout_secs,
                })
                .collect(),
        }),
    };
    let settings = CallSettings {
        ring_timeout_secs: ed.ring_timeout_secs,
        dnd: ed.dnd,
        away: ed.away,
        forward_unconditional: target("forwarding.unconditional", &ed.forwarding.unconditional)?,
        forward_busy: target("forwarding.busy", &ed.forwarding.busy)?,
        forward_no_answer: target("forwarding.no_answer", &ed.forwarding.no_answer)?,
        forward_offline: target("forwarding.offline", &ed.forwarding.offline)?,
        follow_me,
        voicemail: ed.voicemail.enabled,
        outbound_caller_id: ed.caller_id.outbound.clone(),
        inbound_prefix: ed.caller_id.inbound_prefix.clone(),
        allowed_destinations: AllowedDestinations::parse(&ed.allowed_destinations)
            .map_err(api_error)?,
    };
    settings.validate().map_err(api_error)?;
    let profile = Profile {
        voicemail_email: ed.voicemail.email.clone(),
        voicemail_pin_hash: pin_hash,
        voicemail_attach: ed.voicemail.attach_audio,
        voicemail_delete_after_email: ed.voicemail.delete_after_email,
        voicemail_skip_pin: ed.voicemail.skip_pin_on_own_phone,
        listed: ed.directory.listed,
        email: ed.directory.email.clone(),
        department: ed.directory.department.clone(),
    };
    profile.validate().map_err(api_error)?;
    Ok((settings, profile))
}

/// Hashes a tenant's new voicemail PIN after checking it.
pub async fn pin_hash(tenant: &str, pin: &str) -> Result<String, Problem> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::field("voicemail.pin", "must be 4 to 12 digits"));
    }
    Ok(crate::passwords::hash(crate::work::Payer::Tenant(tenant), pin.to_owned()).await?)
}

/// SIP credentials from a chosen or generated password.
pub fn new_credentials(
    api: &Api,
    tenant: &edgepbx_store::Tenant,
    number: &str,
    password: Option<String>,
) -> Result<(edgepbx_store::SipCredentials, String), Problem> {
    let password = password.unwrap_or_else(generate_password);
    check_password(&password).map_err(|e| Problem::field("password", e.to_string()))?;
    let credentials = credentials_for(
        api.admin.store.sealer(),
        &tenant.code,
        &tenant.sip_domain,
        number,
        &password,
    );
    Ok((credentials, password))
}

/// The live lines of a tenant, by extension.
pub fn lines_of(api: &Api, tenant: &str) -> HashMap<String, LineState> {
    api.lines.of_tenant(tenant).into_iter().collect()
}

async fn tenant_of(api: &Api, code: &str) -> Result<edgepbx_store::Tenant, Problem> {
    api.admin
        .store
        .tenants()
        .get(code)
        .await?
        .ok_or_else(|| Problem::not_found(format!("tenant {code}")))
}

async fn extension_of(api: &Api, tenant: &str, number: &str) -> Result<Extension, Problem> {
    let not_found = || Problem::not_found(format!("extension {number}"));
    match api.admin.store.extensions().get(tenant, number).await {
        Ok(Some(e)) => Ok(e),
        // A path that cannot be a number names no extension.
        Ok(None) | Err(StoreError::InvalidField { .. }) => Err(not_found()),
        Err(e) => Err(api_error(e)),
    }
}

/// Applies a change to `tenant` (or its addition or removal) to the
/// running server.
pub async fn reload(api: &Api, tenant: &str) -> Result<(), Problem> {
    api.admin.reload_tenant(tenant).await?;
    Ok(())
}

/// Lists extensions: search, sort and paging.
#[utoipa::path(get, path = "/api/v1/extensions", tag = "extensions", params(ListParams),
    responses((status = 200, body = ExtensionPage), (status = 422, body = Problem)))]
async fn list(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Query(p): Query<ListParams>,
) -> Result<Json<ExtensionPage>, Problem> {
    let _ = p.tenant;
    let per_page = p.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(Problem::field("per_page", "must be 1 to 1000"));
    }
    let page = p.page.unwrap_or(1);
    if page == 0 {
        return Err(Problem::field("page", "counts from 1"));
    }
    let descending = match p.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(Problem::field("order", "must be asc or desc")),
    };
    let extensions = api.admin.store.extensions().list(&scope.tenant).await?;
    let lines = lines_of(&api, &scope.tenant);
    let needle =
        p.q.as_deref()
            .map(str::to_lowercase)
            .filter(|q| !q.is_empty());
    let mut items: Vec<ExtensionView> = extensions
        .iter()
        .map(|e| view(e, lines.get(&e.number)))
        .filter(|v| {
            needle.as_deref().is_none_or(|q| {
                v.number.contains(q)
                    || v.name.to_lowercase().contains(q)
                    || v.username.to_lowercase().contains(q)
                    || v.aliases.iter().any(|a| a.contains(q))
            })
        })
        .collect();
    let sort = p.sort.as_deref().unwrap_or("number");
    match sort {
        "number" => items.sort_by(|a, b| number_order(&a.number, &b.number)),
        "name" => items.sort_by_key(|v| v.name.to_lowercase()),
        "username" => items.sort_by(|a, b| a.username.cmp(&b.username)),
        "status" => items.sort_by(|a, b| a.status.cmp(b.status)),
        "devices" => items.sort_by_key(|v| v.devices),
        "voicemail" => items.sort_by_key(|v| v.voicemail.enabled),
        _ => {
            return Err(Problem::field(
                "sort",
                "must be number, name, username, status, devices or voicemail",
            ));
        }
    }
    if descending {
        items.reverse();
    }
    let total = items.len();
    let items = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    Ok(Json(ExtensionPage {
        items,
        total,
        page,
        per_page,
    }))
}

/// Reads a creation body: number and password, then the editable fields
/// (unknown fields are refused).
pub fn split_new(mut body: Value) -> Result<NewExtensionBody, Problem> {
    let Some(object) = body.as_object_mut() else {
        return Err(Problem::field("body", "must be a JSON object"));
    };
    let number = match object.remove("number") {
        Some(Value::String(n)) => n,
        Some(_) => return Err(Problem::field("number", "must be a string of digits")),
        None => return Err(Problem::field("number", "is required")),
    };
    let password = match object.remove("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p),
        Some(_) => return Err(Problem::field("password", "must be a string")),
    };
    reject_unknown(object)?;
    Ok(NewExtensionBody {
        number,
        password,
        fields: from_value(body)?,
    })
}

/// Creates an extension; the answer carries its SIP password once.
#[utoipa::path(post, path = "/api/v1/extensions", tag = "extensions", params(TenantParam),
    request_body = NewExtensionBody,
    responses((status = 201, body = ExtensionView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<ExtensionView>), Problem> {
    let NewExtensionBody {
        number,
        password,
        fields,
    } = split_new(body)?;
    let tenant = tenant_of(&api, &scope.tenant).await?;
    let pin = match &fields.voicemail.pin {
        Some(pin) => Some(pin_hash(&scope.tenant, pin).await?),
        None => None,
    };
    let (settings, profile) = settings_of(&fields, pin)?;
    let (credentials, password) = new_credentials(&api, &tenant, &number, password)?;
    api.admin
        .store
        .extensions()
        .put(
            &tenant.code,
            vec![ExtensionWrite {
                mode: WriteMode::Create,
                number: number.clone(),
                name: fields.name,
                aliases: fields.aliases,
                credentials: Some(credentials),
                settings,
                profile,
                if_version: None,
                users: None,
            }],
        )
        .await
        .map_err(api_error)?;
    reload(&api, &scope.tenant).await?;
    let stored = extension_of(&api, &tenant.code, &number).await?;
    let mut out = view(&stored, lines_of(&api, &tenant.code).get(&number));
    out.password = Some(password);
    Ok((StatusCode::CREATED, Json(out)))
}

/// One extension.
#[utoipa::path(get, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = ExtensionView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 404, body = Problem)))]
async fn read(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let e = extension_of(&api, &scope.tenant, &number).await?;
    Ok(tagged(view(
        &e,
        lines_of(&api, &scope.tenant).get(&e.number),
    )))
}

/// RFC 7396: `patch` applied to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (key, value) in p {
                if value.is_null() {
                    t.remove(key);
                } else {
                    merge_patch(t.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, Value::Object(p)) => {
            // Merged into an empty object, so that nulls inside are dropped.
            let mut fresh = Value::Object(serde_json::Map::new());
            merge_patch(&mut fresh, &Value::Object(p.clone()));
            *target = fresh;
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// Reads and merges a PATCH without If-Match (or a bulk change) tries
/// before it gives up (412) because others keep writing the extensions.
const PATCH_ATTEMPTS: u32 = 3;

/// Changes an extension with a JSON merge patch (RFC 7396) of its
/// editable fields; with `If-Match`, only if nobody changed it since.
#[utoipa::path(patch, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(TenantParam, ("number" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the extension must still have one (`etag` of a read), or `*`; else 412")),
    request_body(content = Editable, content_type = "application/merge-patch+json",
        description = "Any subset of the editable fields; null removes a value"),
    responses((status = 200, body = ExtensionView, headers(("ETag" = String, description = "Its new version"))), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path(number): Path<String>,
    headers: HeaderMap,
    Body(patch): Body<Value>,
) -> Result<Response, Problem> {
    who.change(&number)?;
    let scope = who.0;
    let Some(fields) = patch.as_object() else {
        return Err(Problem::field("body", "must be a JSON object"));
    };
    for read_only in [
        "number",
        "username",
        "status",
        "devices",
        "created_at",
        "updated_at",
        "etag",
    ] {
        if fields.contains_key(read_only) {
            return Err(Problem::field(read_only, "cannot be changed"));
        }
    }
    reject_unknown(fields)?;
    if scope.principal.extension.is_some() {
        reject_impersonal(fields)?;
    }
    // The PIN is hashed once, whatever the attempts: `None` keeps the
    // stored one.
    let new_pin = match patch.get("voicemail").and_then(|v| v.get("pin")) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(pin)) => Some(Some(pin_hash(&scope.tenant, pin).await?)),
        Some(_) => {
            return Err(Problem::field(
                "voicemail.pin",
                "must be a string of digits",
            ));
        }
    };
    // A merge patch applies to the version it read. Without If-Match, a
    // write that lands meanwhile makes it read again and apply the patch
    // to that, so neither writer's change is lost; with If-Match, 412.
    let mut attempt = 1;
    loop {
        let current = extension_of(&api, &scope.tenant, &number).await?;
        let asked = versions::if_match(&headers, &current)?;
        let mut document =
            serde_json::to_value(editable(&current)).map_err(|e| Problem::internal(&e))?;
        merge_patch(&mut document, &patch);
        let fields: Editable = from_value(document)?;
        let pin = new_pin
            .clone()
            .unwrap_or_else(|| current.profile.voicemail_pin_hash.clone());
        let (settings, profile) = settings_of(&fields, pin)?;
        let written = api
            .admin
            .store
            .extensions()
            .put(
                &scope.tenant,
                vec![ExtensionWrite {
                    mode: WriteMode::Update,
                    number: current.number.clone(),
                    name: fields.name,
                    aliases: fields.aliases,
                    credentials: None,
                    settings,
                    profile,
                    if_version: Some(asked.unwrap_or(current.updated_at)),
                    users: None,
                }],
            )
            .await;
        // Another write committed meanwhile: read again (where If-Match
        // was given, the read then tells whether it still holds).
        match written {
            Ok(_) => break,
            Err(StoreError::Changed { .. }) if asked.is_none() && attempt < PATCH_ATTEMPTS => {
                attempt += 1;
            }
            Err(StoreError::Contended) if attempt < PATCH_ATTEMPTS => attempt += 1,
            Err(e) => return Err(api_error(e)),
        }
    }
    reload(&api, &scope.tenant).await?;
    api.admin.resync_extension(&scope.tenant, &number).await;
    let e = extension_of(&api, &scope.tenant, &number).await?;
    Ok(tagged(view(
        &e,
        lines_of(&api, &scope.tenant).get(&e.number),
    )))
}

/// Deletes an extension, its aliases and registrations; with `If-Match`,
/// only if nobody changed it since.
#[utoipa::path(delete, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(TenantParam, ("number" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the extension must still have one (`etag` of a read), or `*`; else 412")),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn remove(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let current = extension_of(&api, &scope.tenant, &number).await?;
    let if_version = versions::if_match(&headers, &current)?;
    api.admin
        .store
        .extensions()
        .remove(&scope.tenant, &number, if_version)
        .await
        .map_err(api_error)?;
    reload(&api, &scope.tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a new SIP password (generated unless given) and returns it.
#[utoipa::path(post, path = "/api/v1/extensions/{number}/password", tag = "extensions",
    params(TenantParam, ("number" = String, Path)), request_body = Password,
    responses((status = 200, body = Password), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn reset_password(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(number): Path<String>,
    Body(body): Body<Password>,
) -> Result<Json<Password>, Problem> {
    let tenant = tenant_of(&api, &scope.tenant).await?;
    let e = extension_of(&api, &tenant.code, &number).await?;
    let (credentials, password) = new_credentials(&api, &tenant, &e.number, body.password)?;
    api.admin
        .store
        .extensions()
        .set_credentials(&tenant.code, &e.number, credentials)
        .await
        .map_err(api_error)?;
    reload(&api, &scope.tenant).await?;
    api.admin.resync_extension(&tenant.code, &e.number).await;
    Ok(Json(Password {
        password: Some(password),
    }))
}

/// Reveals the SIP password; the reveal is written to the audit trail.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/password", tag = "extensions",
    params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = Password), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reveal_password(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(number): Path<String>,
) -> Result<Json<Password>, Problem> {
    let e = extension_of(&api, &scope.tenant, &number).await?;
    let password = open_password(&api, &scope, &e, "reveal-password").await?;
    Ok(Json(Password {
        password: Some(password),
    }))
}

/// The SIP password of `e`, opened for `action`, which the audit trail
/// records.
async fn open_password(
    api: &Api,
    scope: &Scope,
    e: &Extension,
    action: &str,
) -> Result<String, Problem> {
    let password = e
        .credentials
        .sealed
        .as_deref()
        .and_then(|s| api.admin.store.sealer().open(s))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "this extension's password was not kept; reset it",
            )
        })?;
    api.admin
        .store
        .access()
        .audit(AuditEntry {
            tenant: scope.tenant.clone(),
            at: SystemTime::now(),
            actor: scope.principal.actor.clone(),
            action: action.into(),
            target: format!("extension {}", e.number),
        })
        .await?;
    tracing::info!(tenant = %scope.tenant, extension = %e.number,
        actor = %scope.principal.actor, action, "SIP password opened");
    Ok(password)
}

/// What the console's web phone registers with, for the session that asks
/// (an administrator for any extension of the tenant, an extension user
/// for their own); every fetch is written to the audit trail.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/webphone", tag = "extensions",
    params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = WebPhone), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn webphone(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
    who.change(&number)?;
    let scope = who.0;
    let tenant = tenant_of(&api, &scope.tenant).await?;
    let e = extension_of(&api, &tenant.code, &number).await?;
    let password = open_password(&api, &scope, &e, "webphone").await?;
    let mut response = Json(WebPhone {
        extension: e.number.clone(),
        name: e.name.clone(),
        username: format!("{}-{}", e.number, e.tenant),
        password,
        domain: tenant.sip_domain,
        path: api.config.sip_ws_path.clone(),
    })
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The devices registered for an extension now (from the running
/// registrar).
#[utoipa::path(get, path = "/api/v1/extensions/{number}/devices", tag = "extensions",
    params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = Vec<DeviceView>), (status = 404, body = Problem)))]
async fn devices(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path(number): Path<String>,
) -> Result<Json<Vec<DeviceView>>, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let e = extension_of(&api, &scope.tenant, &number).await?;
    let devices = api
        .admin
        .registrations(&scope.tenant, &e.number)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| DeviceView {
                contact: d.contact,
                user_agent: d.user_agent,
                source: d.source.addr().to_string(),
                transport: d.source.transport_name(),
                expires_at: rfc3339(d.expires_at),
                last_seen: d.last_seen.map(rfc3339),
                subscriptions: d
                    .subscriptions
                    .into_iter()
                    .map(|s| SubscriptionView {
                        package: s.package,
                        target: s.target,
                        expires_at: rfc3339(s.expires_at),
                    })
                    .collect(),
            })
            .collect(),
    ))
}

/// Registration history: the online/offline transitions of the
/// extension's devices, oldest first.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/history", tag = "extensions",
    params(HistoryParams, ("number" = String, Path)),
    responses((status = 200, body = Vec<Transition>), (status = 404, body = Problem)))]
async fn history(
    AxumState(api): AxumState<State>,
    who: Personal,
    Path(number): Path<String>,
    Query(p): Query<HistoryParams>,
) -> Result<Json<Vec<Transition>>, Problem> {
    who.reach(&number)?;
    let scope = who.0;
    let _ = p.tenant;
    let hours = p.hours.unwrap_or(24);
    if !(1..=MAX_HISTORY_HOURS).contains(&hours) {
        return Err(Problem::field("hours", "must be 1 to 168"));
    }
    let e = extension_of(&api, &scope.tenant, &number).await?;
    let since = SystemTime::now() - Duration::from_secs(hours * 3_600);
    let events = api
        .admin
        .store
        .events()
        .list(&scope.tenant, &e.number, since, 10_000)
        .await?;
    Ok(Json(
        events
            .into_iter()
            .filter(|ev| ev.kind != EventKind::Refreshed)
            .map(|ev| Transition {
                at: rfc3339(ev.at),
                online: ev.kind == EventKind::Online,
                contact: ev.contact,
                reason: ev.reason,
                source: ev.source.to_string(),
                user_agent: ev.user_agent,
            })
            .collect(),
    ))
}

/// Deletes, or turns voicemail on or off for, several extensions.
#[utoipa::path(post, path = "/api/v1/extensions/bulk", tag = "extensions", params(TenantParam),
    request_body = Bulk,
    responses((status = 200, body = Affected), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn bulk(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Body(body): Body<Bulk>,
) -> Result<Json<Affected>, Problem> {
    if body.numbers.is_empty() || body.numbers.len() > MAX_BULK {
        return Err(Problem::field("numbers", "must name 1 to 1000 extensions"));
    }
    let mut numbers = body.numbers.clone();
    numbers.sort();
    numbers.dedup();
    let store = api.admin.store.extensions();
    let read = async || {
        let mut extensions = Vec::with_capacity(numbers.len());
        for n in &numbers {
            extensions.push(extension_of(&api, &scope.tenant, n).await?);
        }
        Ok::<_, Problem>(extensions)
    };
    let mut extensions = read().await?;
    let affected = extensions.len();
    match body.action.as_str() {
        "delete" => {
            // One by one: whatever was removed reaches the SIP plane even if
            // a later one fails.
            let mut outcome = Ok(());
            for e in &extensions {
                if let Err(error) = store.remove(&scope.tenant, &e.number, None).await {
                    outcome = Err(api_error(error));
                    break;
                }
            }
            reload(&api, &scope.tenant).await?;
            outcome?;
        }
        "voicemail_on" | "voicemail_off" => {
            let on = body.action == "voicemail_on";
            // Each extension is written against the version read, so a
            // change made meanwhile is kept: on a clash, all are read and
            // written again.
            let mut attempt = 1;
            loop {
                let writes = extensions
                    .iter()
                    .map(|e| {
                        let mut settings = e.settings.clone();
                        settings.voicemail = on;
                        ExtensionWrite {
                            mode: WriteMode::Update,
                            number: e.number.clone(),
                            name: e.name.clone(),
                            aliases: e.aliases.clone(),
                            credentials: None,
                            settings,
                            profile: e.profile.clone(),
                            if_version: Some(e.updated_at),
                            users: None,
                        }
                    })
                    .collect();
                match store.put(&scope.tenant, writes).await {
                    Ok(_) => break,
                    Err(StoreError::Changed { .. } | StoreError::Contended)
                        if attempt < PATCH_ATTEMPTS =>
                    {
                        attempt += 1;
                        extensions = read().await?;
                    }
                    Err(e) => return Err(api_error(e)),
                }
            }
            reload(&api, &scope.tenant).await?;
        }
        _ => {
            return Err(Problem::field(
                "action",
                "must be delete, voicemail_on or voicemail_off",
            ));
        }
    }
    Ok(Json(Affected { affected }))
}

/// The extension routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(bulk))
        .routes(routes!(read, patch, remove))
        .routes(routes!(reset_password, reveal_password))
        .routes(routes!(webphone))
        .routes(routes!(devices))
        .routes(routes!(history))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        merge_patch(&mut doc, &json!({"c": ["x"]}));
        assert_eq!(doc, json!({"a": "z", "c": ["x"]}));
    }

    #[test]
    fn status_words() {
        let mut line = LineState::default();
        let (none, dnd, away) = (
            Availability::default(),
            Availability {
                dnd: true,
                away: true,
            },
            Availability {
                dnd: false,
                away: true,
            },
        );
        assert_eq!(status(None, none), "offline");
        assert_eq!(status(Some(&line), dnd), "offline");
        line.devices.push(edgepbx_engine::lines::Device {
            id: "a".into(),
            user_agent: None,
        });
        assert_eq!(status(Some(&line), none), "online");
        assert_eq!(status(Some(&line), dnd), "dnd");
        assert_eq!(status(Some(&line), away), "away");
        line.ringing = 1;
        assert_eq!(status(Some(&line), dnd), "ringing");
        line.talking = 1;
        assert_eq!(status(Some(&line), none), "in_use");
    }
}
