//! Tenants (system admins), ring groups and virtual extensions, and the
//! company directory's contacts.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use edgepbx_store::{
    Contact, ForwardTarget, Group, GroupKind, GroupStrategy, StoreError, TenantLimits,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Principal, Scope, TenantParam, WriteScope, rfc3339};
use super::extensions::reload;
use super::problem::Body;
use super::versions;
use super::{Problem, State};

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    /// Code (2 to 16 of A-Z, 0-9).
    code: String,
    /// SIP domain (the digest realm).
    sip_domain: String,
    /// Most extensions (null: no limit).
    max_extensions: Option<u32>,
    /// Most simultaneous calls (null: the server's default).
    max_calls: Option<u32>,
    /// Most devices registered per extension (null: the server's
    /// `registrar.max_bindings_per_extension`, which also caps this one).
    max_bindings_per_extension: Option<u32>,
    /// When it was added.
    created_at: String,
}

fn tenant_view(t: edgepbx_store::Tenant) -> TenantView {
    TenantView {
        code: t.code,
        sip_domain: t.sip_domain,
        max_extensions: t.limits.max_extensions,
        max_calls: t.limits.max_calls,
        max_bindings_per_extension: t.limits.max_bindings_per_extension,
        created_at: rfc3339(t.created_at),
    }
}

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Code.
    code: String,
    /// SIP domain.
    sip_domain: String,
    /// Most extensions.
    #[serde(default)]
    max_extensions: Option<u32>,
    /// Most simultaneous calls.
    #[serde(default)]
    max_calls: Option<u32>,
    /// Most devices registered per extension (at least 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    max_bindings_per_extension: Option<u32>,
}

/// Every tenant (system admins only).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantView>), (status = 403, body = Problem)))]
async fn list_tenants(
    AxumState(api): AxumState<State>,
    principal: Principal,
) -> Result<Json<Vec<TenantView>>, Problem> {
    principal.require_system_admin()?;
    let tenants = api.control.store.tenants().list().await?;
    Ok(Json(tenants.into_iter().map(tenant_view).collect()))
}

/// Adds a tenant (system admins only).
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses((status = 201, body = TenantView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_tenant(
    AxumState(api): AxumState<State>,
    principal: Principal,
    Body(new): Body<NewTenant>,
) -> Result<(StatusCode, Json<TenantView>), Problem> {
    principal.require_system_admin()?;
    let limits = TenantLimits {
        max_extensions: new.max_extensions,
        max_calls: new.max_calls,
        max_bindings_per_extension: new.max_bindings_per_extension,
    };
    // Checked before the tenant is added, so that a refusal adds nothing.
    limits.validate()?;
    let tenants = api.control.store.tenants();
    let t = tenants.add(&new.code, &new.sip_domain).await?;
    if limits != TenantLimits::default() {
        tenants.set_limits(&t.code, limits).await?;
    }
    reload(&api, &t.code).await?;
    let t = tenants
        .get(&t.code)
        .await?
        .ok_or_else(|| Problem::not_found(format!("tenant {}", new.code)))?;
    Ok((StatusCode::CREATED, Json(tenant_view(t))))
}

/// Removes a tenant and everything it owns (system admins only).
#[utoipa::path(delete, path = "/api/v1/tenants/{code}", tag = "tenants", params(("code" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_tenant(
    AxumState(api): AxumState<State>,
    principal: Principal,
    Path(code): Path<String>,
) -> Result<StatusCode, Problem> {
    principal.require_system_admin()?;
    api.control.store.tenants().remove(&code).await?;
    reload(&api, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A ring group or virtual extension.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupView {
    /// Its number (shares the namespace of extension numbers).
    number: String,
    /// Display name.
    name: String,
    /// `ring_group` or `virtual`.
    #[serde(default = "ring_group")]
    kind: String,
    /// `ring-all`, `hunt`, `round-robin`, `random` or `least-recent`.
    #[serde(default = "ring_all")]
    strategy: String,
    /// Member extensions, in order.
    members: Vec<String>,
    /// Seconds each member (all, for ring-all) rings (20 when null or
    /// omitted).
    #[serde(default)]
    ring_timeout_secs: Option<u32>,
    /// Where unanswered calls go: a number or `voicemail`.
    #[serde(default)]
    no_answer: Option<String>,
    /// Its version, as the `ETag` header gives it: send it back in
    /// `If-Match` so that a change made meanwhile by someone else is not
    /// overwritten (412). Read-only: ignored in requests.
    #[serde(default)]
    #[schema(read_only)]
    etag: Option<String>,
}

/// A group's ring time when none is given.
const DEFAULT_GROUP_RING_SECS: u32 = 20;

fn ring_group() -> String {
    "ring_group".into()
}
fn ring_all() -> String {
    "ring-all".into()
}

fn group_view(g: Group) -> GroupView {
    let etag = Some(versions::etag(&g));
    GroupView {
        number: g.number,
        name: g.name,
        kind: match g.kind {
            GroupKind::Ring => "ring_group",
            GroupKind::Virtual => "virtual",
        }
        .into(),
        strategy: g.strategy.as_str().into(),
        members: g.members,
        ring_timeout_secs: Some(g.ring_timeout_secs),
        no_answer: g.no_answer.map(|t| t.to_string()),
        etag,
    }
}

/// A group's view with its `ETag` header.
fn tagged_group(g: Group) -> Response {
    let tag = versions::etag(&g);
    versions::tagged(group_view(g), &tag)
}

fn group_of(tenant: &str, v: GroupView) -> Result<Group, Problem> {
    let kind = match v.kind.as_str() {
        "ring_group" => GroupKind::Ring,
        "virtual" => GroupKind::Virtual,
        _ => return Err(Problem::field("kind", "must be ring_group or virtual")),
    };
    Ok(Group {
        tenant: tenant.to_owned(),
        number: v.number,
        name: v.name,
        kind,
        strategy: GroupStrategy::parse(&v.strategy)?,
        members: v.members,
        ring_timeout_secs: v.ring_timeout_secs.unwrap_or(DEFAULT_GROUP_RING_SECS),
        no_answer: v
            .no_answer
            .map(|t| ForwardTarget::parse("no_answer", &t))
            .transpose()?,
        updated_at: SystemTime::UNIX_EPOCH,
    })
}

/// The tenant's groups and virtual extensions.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(TenantParam),
    responses((status = 200, body = Vec<GroupView>)))]
async fn list_groups(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Json<Vec<GroupView>>, Problem> {
    let groups = api.control.store.groups().list(&scope.tenant).await?;
    Ok(Json(groups.into_iter().map(group_view).collect()))
}

/// Adds a group or virtual extension.
#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", params(TenantParam), request_body = GroupView,
    responses((status = 201, body = GroupView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_group(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Body(body): Body<GroupView>,
) -> Result<(StatusCode, Response), Problem> {
    let group = group_of(&scope.tenant, body)?;
    let stored = api.control.store.groups().add(&scope.tenant, group).await?;
    reload(&api, &scope.tenant).await?;
    Ok((StatusCode::CREATED, tagged_group(stored)))
}

async fn find_group(api: &State, tenant: &str, number: &str) -> Result<Group, Problem> {
    match api.control.store.groups().get(tenant, number).await {
        Ok(Some(group)) => Ok(group),
        // A number no group can have names none.
        Ok(None) | Err(StoreError::InvalidField { .. }) => {
            Err(Problem::not_found(format!("group {number}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// One group.
#[utoipa::path(get, path = "/api/v1/groups/{number}", tag = "groups", params(TenantParam, ("number" = String, Path)),
    responses((status = 200, body = GroupView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 404, body = Problem)))]
async fn read_group(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Path(number): Path<String>,
) -> Result<Response, Problem> {
    Ok(tagged_group(
        find_group(&api, &scope.tenant, &number).await?,
    ))
}

/// Replaces a group (its number stays); with `If-Match`, only if nobody
/// changed it since.
#[utoipa::path(put, path = "/api/v1/groups/{number}", tag = "groups",
    params(TenantParam, ("number" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the group must still have one (`etag` of a read), or `*`; else 412")),
    request_body = GroupView,
    responses((status = 200, body = GroupView, headers(("ETag" = String, description = "Its new version"))), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn replace_group(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(number): Path<String>,
    headers: HeaderMap,
    Body(body): Body<GroupView>,
) -> Result<Response, Problem> {
    if body.number != number {
        return Err(Problem::field("number", "must be the number in the path"));
    }
    let group = group_of(&scope.tenant, body)?;
    let current = find_group(&api, &scope.tenant, &number).await?;
    let if_version = versions::if_match(&headers, &current)?;
    let stored = api
        .control
        .store
        .groups()
        .replace(&scope.tenant, group, if_version)
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok(tagged_group(stored))
}

/// Removes a group; with `If-Match`, only if nobody changed it since.
#[utoipa::path(delete, path = "/api/v1/groups/{number}", tag = "groups",
    params(TenantParam, ("number" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the group must still have one (`etag` of a read), or `*`; else 412")),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn remove_group(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(number): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let current = find_group(&api, &scope.tenant, &number).await?;
    let if_version = versions::if_match(&headers, &current)?;
    api.control
        .store
        .groups()
        .remove(&scope.tenant, &number, if_version)
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A directory contact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactView {
    /// Id (generated on creation when omitted).
    #[serde(default)]
    id: Option<String>,
    /// Name.
    name: String,
    /// Number to dial.
    number: String,
    /// E-mail.
    #[serde(default)]
    email: Option<String>,
    /// Company.
    #[serde(default)]
    company: Option<String>,
    /// The extension it stands for.
    #[serde(default)]
    extension: Option<String>,
    /// Its version, as the `ETag` header gives it: send it back in
    /// `If-Match` so that a change made meanwhile by someone else is not
    /// overwritten (412). Read-only: ignored in requests.
    #[serde(default)]
    #[schema(read_only)]
    etag: Option<String>,
}

fn contact_view(c: Contact) -> ContactView {
    let etag = Some(versions::etag(&c));
    ContactView {
        id: Some(c.id),
        name: c.name,
        number: c.number,
        email: c.email,
        company: c.company,
        extension: c.extension,
        etag,
    }
}

/// A contact's view with its `ETag` header.
fn tagged_contact(c: Contact) -> Response {
    let tag = versions::etag(&c);
    versions::tagged(contact_view(c), &tag)
}

fn contact_of(id: String, v: ContactView) -> Contact {
    Contact {
        id,
        name: v.name,
        number: v.number,
        email: v.email,
        company: v.company,
        extension: v.extension,
        updated_at: SystemTime::UNIX_EPOCH,
    }
}

/// Search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ContactParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Matches name, number, e-mail or company (case-insensitive).
    q: Option<String>,
}

/// The tenant's contacts, by name.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ContactParams),
    responses((status = 200, body = Vec<ContactView>)))]
async fn list_contacts(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Query(p): Query<ContactParams>,
) -> Result<Json<Vec<ContactView>>, Problem> {
    let _ = p.tenant;
    let q = p.q.unwrap_or_default().to_lowercase();
    let contacts = api.control.store.contacts().list(&scope.tenant).await?;
    Ok(Json(
        contacts
            .into_iter()
            .filter(|c| {
                q.is_empty()
                    || c.name.to_lowercase().contains(&q)
                    || c.number.contains(&q)
                    || c.email
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase().contains(&q))
                    || c.company
                        .as_deref()
                        .is_some_and(|e| e.to_lowercase().contains(&q))
            })
            .map(contact_view)
            .collect(),
    ))
}

/// Adds a contact.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", params(TenantParam), request_body = ContactView,
    responses((status = 201, body = ContactView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_contact(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Body(body): Body<ContactView>,
) -> Result<(StatusCode, Response), Problem> {
    let id = body.id.clone().unwrap_or_else(|| {
        crate::secrets::random_token(9)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect()
    });
    let stored = api
        .control
        .store
        .contacts()
        .add(&scope.tenant, contact_of(id, body))
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok((StatusCode::CREATED, tagged_contact(stored)))
}

async fn find_contact(api: &State, tenant: &str, id: &str) -> Result<Contact, Problem> {
    api.control
        .store
        .contacts()
        .get(tenant, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("contact {id}")))
}

/// One contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", params(TenantParam, ("id" = String, Path)),
    responses((status = 200, body = ContactView, headers(("ETag" = String, description = "Its version; see `etag`"))), (status = 404, body = Problem)))]
async fn read_contact(
    AxumState(api): AxumState<State>,
    scope: Scope,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(tagged_contact(
        find_contact(&api, &scope.tenant, &id).await?,
    ))
}

/// Replaces a contact; with `If-Match`, only if nobody changed it since.
#[utoipa::path(put, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(TenantParam, ("id" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the contact must still have one (`etag` of a read), or `*`; else 412")),
    request_body = ContactView,
    responses((status = 200, body = ContactView, headers(("ETag" = String, description = "Its new version"))), (status = 404, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn replace_contact(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<ContactView>,
) -> Result<Response, Problem> {
    if body.id.as_ref().is_some_and(|given| *given != id) {
        return Err(Problem::field("id", "must be the id in the path"));
    }
    let current = find_contact(&api, &scope.tenant, &id).await?;
    let if_version = versions::if_match(&headers, &current)?;
    let stored = api
        .control
        .store
        .contacts()
        .replace(&scope.tenant, contact_of(id, body), if_version)
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok(tagged_contact(stored))
}

/// Removes a contact; with `If-Match`, only if nobody changed it since.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(TenantParam, ("id" = String, Path), ("If-Match" = Option<String>, Header, description = "ETags of which the contact must still have one (`etag` of a read), or `*`; else 412")),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn remove_contact(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let current = find_contact(&api, &scope.tenant, &id).await?;
    let if_version = versions::if_match(&headers, &current)?;
    api.control
        .store
        .contacts()
        .remove(&scope.tenant, &id, if_version)
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tenants, groups and contacts.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(remove_tenant))
        .routes(routes!(list_groups, create_group))
        .routes(routes!(read_group, replace_group, remove_group))
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(read_contact, replace_contact, remove_contact))
}
