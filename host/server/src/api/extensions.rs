//! Extensions: list (search, sort, paging), create, read, JSON merge patch,
//! delete, bulk actions, SIP password reset and audited reveal, devices and
//! registration history.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use edgepbx_store::{
    AllowedDestinations, AuditEntry, CallSettings, EventKind, Extension, ExtensionWrite, FollowMe,
    FollowMeDestination, ForwardTarget, Profile, RingMode, StoreError, WriteMode, number_order,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Scope, TenantParam, WriteScope, rfc3339};
use super::problem::{Body, from_value};
use super::versions;
use super::{Api, Problem, State};
use crate::accounts::hash_off_thread;
use crate::admin::{check_password, credentials_for, generate_password};
use crate::lines::LineState;

/// Most extensions one page lists.
const MAX_PER_PAGE: usize = 1_000;
/// Most numbers one bulk action names.
const MAX_BULK: usize = 1_000;
/// Longest registration history asked for, hours.
const MAX_HISTORY_HOURS: u64 = 24 * 7;

/// Where calls go under each condition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Forwarding {
    /// Every call: a number or `voicemail`.
    pub unconditional: Option<String>,
    /// When busy.
    pub busy: Option<String>,
    /// When unanswered within the ring timeout (also after follow-me).
    pub no_answer: Option<String>,
    /// When no device is registered.
    pub offline: Option<String>,
}

/// One find-me/follow-me destination.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FollowMeStep {
    /// Number to ring.
    pub number: String,
    /// Seconds it rings.
    pub timeout_secs: u32,
}

/// Find-me/follow-me.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FollowMeView {
    /// `simultaneous` or `sequential`.
    pub mode: String,
    /// In order.
    pub destinations: Vec<FollowMeStep>,
}

/// Voicemail, as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Voicemail {
    /// Unanswered calls go to voicemail when no rule applies.
    pub enabled: bool,
    /// Where notifications go.
    pub email: Option<String>,
    /// A new PIN (4 to 12 digits); write-only, `null` removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// Voicemail, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoicemailView {
    /// Unanswered calls go to voicemail when no rule applies.
    pub enabled: bool,
    /// Where notifications go.
    pub email: Option<String>,
    /// A PIN is set.
    pub pin_set: bool,
}

/// Caller ID.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallerId {
    /// Number shown on external calls (null: the tenant's).
    pub outbound: Option<String>,
    /// Put before callers' names on calls to this extension.
    pub inbound_prefix: Option<String>,
}

/// Company directory entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryEntry {
    /// Listed in the directory.
    pub listed: bool,
    /// E-mail shown.
    pub email: Option<String>,
    /// Department shown.
    pub department: Option<String>,
}

impl Default for DirectoryEntry {
    fn default() -> Self {
        DirectoryEntry {
            listed: true,
            email: None,
            department: None,
        }
    }
}

fn all() -> String {
    "all".into()
}

/// The top-level fields of [`Editable`]; others are refused by
/// [`reject_unknown`] (not by serde, so that the creation body's schema can
/// extend this one).
const EDITABLE_FIELDS: &[&str] = &[
    "name",
    "aliases",
    "ring_timeout_secs",
    "dnd",
    "forwarding",
    "follow_me",
    "voicemail",
    "caller_id",
    "directory",
    "allowed_destinations",
];

/// Refuses a body with a top-level field that is not editable, naming it.
fn reject_unknown(body: &serde_json::Map<String, Value>) -> Result<(), Problem> {
    match body.keys().find(|k| !EDITABLE_FIELDS.contains(&k.as_str())) {
        Some(unknown) => Err(Problem::field(unknown.clone(), "unknown field")),
        None => Ok(()),
    }
}

/// Every field an administrator may change: the target of a JSON merge
/// patch (RFC 7396), and with `number` the body of a creation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Editable {
    /// Display name.
    pub name: String,
    /// Other names that reach it.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Seconds its devices ring (null: the server default).
    #[serde(default)]
    pub ring_timeout_secs: Option<u32>,
    /// Do not disturb.
    #[serde(default)]
    pub dnd: bool,
    /// Forwarding rules.
    #[serde(default)]
    pub forwarding: Forwarding,
    /// Find-me/follow-me.
    #[serde(default)]
    pub follow_me: Option<FollowMeView>,
    /// Voicemail.
    #[serde(default)]
    pub voicemail: Voicemail,
    /// Caller ID.
    #[serde(default)]
    pub caller_id: CallerId,
    /// Directory entry.
    #[serde(default)]
    pub directory: DirectoryEntry,
    /// External numbers it may call: `all`, `none` or patterns.
    #[serde(default = "all")]
    pub allowed_destinations: String,
}

/// An extension as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExtensionView {
    /// Its number.
    pub number: String,
    /// Display name.
    pub name: String,
    /// Digest username that works on any address.
    pub username: String,
    /// Other names that reach it.
    pub aliases: Vec<String>,
    /// `online`, `ringing`, `in_use`, `offline` or `dnd`.
    pub status: &'static str,
    /// Registered devices.
    pub devices: usize,
    /// Seconds its devices ring (null: the server default).
    pub ring_timeout_secs: Option<u32>,
    /// Do not disturb.
    pub dnd: bool,
    /// Forwarding rules.
    pub forwarding: Forwarding,
    /// Find-me/follow-me.
    pub follow_me: Option<FollowMeView>,
    /// Voicemail.
    pub voicemail: VoicemailView,
    /// Caller ID.
    pub caller_id: CallerId,
    /// Directory entry.
    pub directory: DirectoryEntry,
    /// External numbers it may call.
    pub allowed_destinations: String,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Its version, as the `ETag` header gives it: send it back in
    /// `If-Match` so that a change made meanwhile by someone else is not
    /// overwritten (412). Live fields (`status`, `devices`) are not part
    /// of it.
    pub etag: String,
    /// The SIP password: only in the answer to a creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A BLF status word for a line.
pub fn status(line: Option<&LineState>, dnd: bool) -> &'static str {
    line.map_or("offline", |l| {
        status_of(l.devices.len(), l.ringing > 0, l.talking > 0, dnd)
    })
}

/// A BLF status word: `in_use`, `ringing`, `dnd`, `online` or `offline`.
pub fn status_of(devices: usize, ringing: bool, talking: bool, dnd: bool) -> &'static str {
    if talking {
        "in_use"
    } else if ringing {
        "ringing"
    } else if devices == 0 {
        "offline"
    } else if dnd {
        "dnd"
    } else {
        "online"
    }
}

/// What an administrator may change of a stored extension.
pub fn editable(e: &Extension) -> Editable {
    let s = &e.settings;
    let text = |t: &Option<ForwardTarget>| t.as_ref().map(ToString::to_string);
    Editable {
        name: e.name.clone(),
        aliases: e.aliases.clone(),
        ring_timeout_secs: s.ring_timeout_secs,
        dnd: s.dnd,
        forwarding: Forwarding {
            unconditional: text(&s.forward_unconditional),
            busy: text(&s.forward_busy),
            no_answer: text(&s.forward_no_answer),
            offline: text(&s.forward_offline),
        },
        follow_me: s.follow_me.as_ref().map(|f| FollowMeView {
            mode: f.mode.as_str().to_owned(),
            destinations: f
                .destinations
                .iter()
                .map(|d| FollowMeStep {
                    number: d.number.clone(),
                    timeout_secs: d.timeout_secs,
                })
                .collect(),
        }),
        voicemail: Voicemail {
            enabled: s.voicemail,
            email: e.profile.voicemail_email.clone(),
            pin: None,
        },
        caller_id: CallerId {
            outbound: s.outbound_caller_id.clone(),
            inbound_prefix: s.inbound_prefix.clone(),
        },
        directory: DirectoryEntry {
            listed: e.profile.listed,
            email: e.profile.email.clone(),
            department: e.profile.department.clone(),
        },
        allowed_destinations: s.allowed_destinations.to_string(),
    }
}

/// The view of a stored extension with its live line.
pub fn view(e: &Extension, line: Option<&LineState>) -> ExtensionView {
    let ed = editable(e);
    ExtensionView {
        number: e.number.clone(),
        username: format!("{}-{}", e.number, e.tenant),
        status: status(line, e.settings.dnd),
        devices: line.map_or(0, |l| l.devices.len()),
        name: ed.name,
        aliases: ed.aliases,
        ring_timeout_secs: ed.ring_timeout_secs,
        dnd: ed.dnd,
        forwarding: ed.forwarding,
        follow_me: ed.follow_me,
        voicemail: VoicemailView {
            enabled: ed.voicemail.enabled,
            email: ed.voicemail.email,
            pin_set: e.profile.voicemail_pin_hash.is_some(),
        },
        caller_id: ed.caller_id,
        directory: ed.directory,
        allowed_destinations: ed.allowed_destinations,
        created_at: rfc3339(e.created_at),
        updated_at: rfc3339(e.updated_at),
        etag: versions::etag(e),
        password: None,
    }
}

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
pub fn api_error(e: StoreError) -> Problem {
    match e {
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
        listed: ed.directory.listed,
        email: ed.directory.email.clone(),
        department: ed.directory.department.clone(),
    };
    profile.validate().map_err(api_error)?;
    Ok((settings, profile))
}

/// Hashes a new voicemail PIN after checking it.
pub async fn pin_hash(pin: &str) -> Result<String, Problem> {
    if !(4..=12).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::field("voicemail.pin", "must be 4 to 12 digits"));
    }
    Ok(hash_off_thread(pin.to_owned()).await?)
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
        &api.sealer,
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
    api.control
        .store
        .tenants()
        .get(code)
        .await?
        .ok_or_else(|| Problem::not_found(format!("tenant {code}")))
}

async fn extension_of(api: &Api, tenant: &str, number: &str) -> Result<Extension, Problem> {
    let not_found = || Problem::not_found(format!("extension {number}"));
    match api.control.store.extensions().get(tenant, number).await {
        Ok(Some(e)) => Ok(e),
        // A path that cannot be a number names no extension.
        Ok(None) | Err(StoreError::InvalidField { .. }) => Err(not_found()),
        Err(e) => Err(api_error(e)),
    }
}

/// Applies a change to `tenant` (or its addition or removal) to the
/// running server.
pub async fn reload(api: &Api, tenant: &str) -> Result<(), Problem> {
    crate::control::reload_tenant(&api.control, tenant).await?;
    Ok(())
}

/// Listing options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Matches number, name, username or alias (case-insensitive).
    q: Option<String>,
    /// `number`, `name`, `username`, `status`, `devices` or `voicemail`.
    sort: Option<String>,
    /// `asc` or `desc`.
    order: Option<String>,
    /// From 1.
    page: Option<usize>,
    /// 1 to 1000 (default 50).
    per_page: Option<usize>,
}

/// One page of extensions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionPage {
    /// The extensions of this page.
    items: Vec<ExtensionView>,
    /// How many match.
    total: usize,
    /// This page, from 1.
    page: usize,
    /// Page size.
    per_page: usize,
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
    let extensions = api.control.store.extensions().list(&scope.tenant).await?;
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

/// A new extension: `number`, optional `password`, and any field of
/// [`Editable`].
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewExtensionBody {
    /// 1 to 15 digits.
    pub number: String,
    /// SIP password (8 to 128 characters); generated when omitted.
    pub password: Option<String>,
    /// Display name, and the other editable fields.
    #[serde(flatten)]
    pub fields: Editable,
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
        Some(pin) => Some(pin_hash(pin).await?),
        None => None,
    };
    let (settings, profile) = settings_of(&fields, pin)?;
    let (credentials, password) = new_credentials(&api, &tenant, &number, password)?;
    api.control
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
    scope: Scope,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
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

/// Changes an extension with a JSON merge patch (RFC 7396) of its
/// editable fields; with `If-Match`, only if nobody changed it since.
#[utoipa::path(patch, path = "/api/v1/extensions/{number}", tag = "extensions",
    params(TenantParam, ("number" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the extension must still have one (`etag` of a read), or `*`; else 412")),
    request_body(content = Editable, content_type = "application/merge-patch+json",
        description = "Any subset of the editable fields; null removes a value"),
    responses((status = 200, body = ExtensionView, headers(("ETag" = String, description = "Its new version"))), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(number): Path<String>,
    headers: HeaderMap,
    Body(patch): Body<Value>,
) -> Result<Response, Problem> {
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
    let current = extension_of(&api, &scope.tenant, &number).await?;
    let if_version = versions::if_match(&headers, &current)?;
    let mut document =
        serde_json::to_value(editable(&current)).map_err(|e| Problem::internal(&e))?;
    merge_patch(&mut document, &patch);
    let fields: Editable = from_value(document)?;
    let pin = match patch.get("voicemail").and_then(|v| v.get("pin")) {
        None => current.profile.voicemail_pin_hash.clone(),
        Some(Value::Null) => None,
        Some(Value::String(pin)) => Some(pin_hash(pin).await?),
        Some(_) => {
            return Err(Problem::field(
                "voicemail.pin",
                "must be a string of digits",
            ));
        }
    };
    let (settings, profile) = settings_of(&fields, pin)?;
    api.control
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
                if_version,
            }],
        )
        .await
        .map_err(api_error)?;
    reload(&api, &scope.tenant).await?;
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
    api.control
        .store
        .extensions()
        .remove(&scope.tenant, &number, if_version)
        .await
        .map_err(api_error)?;
    reload(&api, &scope.tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A SIP password.
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Password {
    /// The password; on a reset, omit it to have one generated.
    password: Option<String>,
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
    api.control
        .store
        .extensions()
        .set_credentials(&tenant.code, &e.number, credentials)
        .await
        .map_err(api_error)?;
    reload(&api, &scope.tenant).await?;
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
    let password = e
        .credentials
        .sealed
        .as_deref()
        .and_then(|s| api.sealer.open(s))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "this extension's password was not kept; reset it",
            )
        })?;
    api.control
        .store
        .access()
        .audit(AuditEntry {
            tenant: scope.tenant.clone(),
            at: SystemTime::now(),
            actor: scope.principal.actor.clone(),
            action: "reveal-password".into(),
            target: format!("extension {}", e.number),
        })
        .await?;
    tracing::info!(tenant = %scope.tenant, extension = %e.number,
        actor = %scope.principal.actor, "SIP password revealed");
    Ok(Json(Password {
        password: Some(password),
    }))
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// Its contact URI.
    contact: String,
    /// Its User-Agent.
    user_agent: Option<String>,
    /// Where it registered from.
    source: String,
    /// `udp` or `tcp`.
    transport: &'static str,
    /// When the registration expires.
    expires_at: String,
    /// When it was last heard: its last REGISTER or keepalive answer.
    last_seen: Option<String>,
}

/// The devices registered for an extension now (from the running
/// registrar).
#[utoipa::path(get, path = "/api/v1/extensions/{number}/devices", tag = "extensions",
    params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = Vec<DeviceView>), (status = 404, body = Problem)))]
async fn devices(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Path(number): Path<String>,
) -> Result<Json<Vec<DeviceView>>, Problem> {
    let e = extension_of(&api, &scope.tenant, &number).await?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    api.control
        .core
        .send(crate::core::Control::Devices {
            tenant: scope.tenant,
            extension: e.number,
            reply,
        })
        .await
        .map_err(|e| Problem::internal(&e))?;
    let devices = answer.await.map_err(|e| Problem::internal(&e))?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| DeviceView {
                contact: d.contact,
                user_agent: d.user_agent,
                source: d.source.to_string(),
                transport: d.transport,
                expires_at: rfc3339(d.expires_at),
                last_seen: d.last_seen.map(rfc3339),
            })
            .collect(),
    ))
}

/// How far back.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Hours back, 1 to 168 (default 24).
    hours: Option<u64>,
}

/// An online or offline transition of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transition {
    /// When.
    at: String,
    /// Came online (true) or went offline.
    online: bool,
    /// The device's contact.
    contact: String,
    /// Why.
    reason: String,
    /// Where it registered from.
    source: String,
    /// Its User-Agent.
    user_agent: Option<String>,
}

/// Registration history: the online/offline transitions of the
/// extension's devices, oldest first.
#[utoipa::path(get, path = "/api/v1/extensions/{number}/history", tag = "extensions",
    params(HistoryParams, ("number" = String, Path)),
    responses((status = 200, body = Vec<Transition>), (status = 404, body = Problem)))]
async fn history(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Path(number): Path<String>,
    Query(p): Query<HistoryParams>,
) -> Result<Json<Vec<Transition>>, Problem> {
    let _ = p.tenant;
    let hours = p.hours.unwrap_or(24);
    if !(1..=MAX_HISTORY_HOURS).contains(&hours) {
        return Err(Problem::field("hours", "must be 1 to 168"));
    }
    let e = extension_of(&api, &scope.tenant, &number).await?;
    let since = SystemTime::now() - Duration::from_secs(hours * 3_600);
    let events = api
        .control
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

/// A bulk action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bulk {
    /// The extensions.
    numbers: Vec<String>,
    /// `delete`, `voicemail_on` or `voicemail_off`.
    action: String,
}

/// How many extensions an action changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Affected {
    /// Count.
    affected: usize,
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
    let store = api.control.store.extensions();
    let mut extensions = Vec::with_capacity(numbers.len());
    for n in &numbers {
        extensions.push(extension_of(&api, &scope.tenant, n).await?);
    }
    match body.action.as_str() {
        "delete" => {
            // One by one: whatever was removed reaches the SIP core even if
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
                        if_version: None,
                    }
                })
                .collect();
            store.put(&scope.tenant, writes).await.map_err(api_error)?;
            reload(&api, &scope.tenant).await?;
        }
        _ => {
            return Err(Problem::field(
                "action",
                "must be delete, voicemail_on or voicemail_off",
            ));
        }
    }
    Ok(Json(Affected {
        affected: extensions.len(),
    }))
}

/// The extension routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(bulk))
        .routes(routes!(read, patch, remove))
        .routes(routes!(reset_password, reveal_password))
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
        assert_eq!(status(None, false), "offline");
        assert_eq!(status(Some(&line), true), "offline");
        line.devices.push(crate::lines::Device {
            id: "a".into(),
            user_agent: None,
        });
        assert_eq!(status(Some(&line), false), "online");
        assert_eq!(status(Some(&line), true), "dnd");
        line.ringing = 1;
        assert_eq!(status(Some(&line), true), "ringing");
        line.talking = 1;
        assert_eq!(status(Some(&line), false), "in_use");
    }
}
