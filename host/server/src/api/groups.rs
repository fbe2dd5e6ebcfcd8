//! Ring groups and virtual extensions, with `ETag` and `If-Match`.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use edgepbx_store::{ForwardTarget, Group, GroupKind, GroupStrategy, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Scope, TenantParam, WriteScope};
use super::extensions::reload;
use super::problem::Body;
use super::versions;
use super::{Problem, State};

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
    let groups = api.admin.store.groups().list(&scope.tenant).await?;
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
    let stored = api.admin.store.groups().add(&scope.tenant, group).await?;
    reload(&api, &scope.tenant).await?;
    Ok((StatusCode::CREATED, tagged_group(stored)))
}

async fn find_group(api: &State, tenant: &str, number: &str) -> Result<Group, Problem> {
    match api.admin.store.groups().get(tenant, number).await {
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
        .admin
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
    api.admin
        .store
        .groups()
        .remove(&scope.tenant, &number, if_version)
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The groups' routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(read_group, replace_group, remove_group))
}
