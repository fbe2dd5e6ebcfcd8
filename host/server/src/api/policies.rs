//! A tenant's routing policies: upload a WebAssembly module (validated as
//! `edgepbx policy check` does), list versions, activate one (also how to
//! roll back), return to the built-in policy, and try a decision.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use edgepbx_policy::{PolicyError, playground};
use edgepbx_store::PolicyModuleInfo;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Scope, TenantParam, WriteScope};
use super::extensions::reload;
use super::problem::Body;
use super::{Problem, State};
use edgepbx_engine::time::rfc3339;

/// A stored policy version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// Version, from 1.
    version: u32,
    /// SHA-256 of the component.
    hash: String,
    /// Bytes.
    size: u64,
    /// Who uploaded it.
    uploader: String,
    /// When.
    uploaded_at: String,
    /// It decides the tenant's calls.
    active: bool,
    /// Why it was deactivated after faults, if it was.
    deactivated_reason: Option<String>,
}

fn view(v: PolicyModuleInfo) -> PolicyView {
    PolicyView {
        version: v.version,
        hash: v.hash,
        size: v.size,
        uploader: v.uploader,
        uploaded_at: rfc3339(v.uploaded_at),
        active: v.active,
        deactivated_reason: v.deactivated_reason,
    }
}

/// The tenant's policy versions.
#[utoipa::path(get, path = "/api/v1/policies", tag = "policies", params(TenantParam),
    responses((status = 200, body = Vec<PolicyView>)))]
async fn list(
    AxumState(api): AxumState<State>,
    scope: Scope,
) -> Result<Json<Vec<PolicyView>>, Problem> {
    let versions = api.admin.store.policies().list(&scope.tenant).await?;
    Ok(Json(versions.into_iter().map(view).collect()))
}

/// Upload options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// Activate the new version at once.
    activate: Option<bool>,
}

/// Checks a module before it is stored or activated; errors name the body.
async fn validate(tenant: &str, wasm: Vec<u8>) -> Result<(Vec<u8>, String), Problem> {
    crate::admin::policies::check_module(Some(tenant), wasm)
        .await?
        .map_err(|e| match e {
            PolicyError::Engine(_) => Problem::internal(&e),
            refused => Problem::field("body", refused.to_string()),
        })
}

/// Stores a policy module (a WebAssembly component) as the tenant's next
/// version.
#[utoipa::path(post, path = "/api/v1/policies", tag = "policies", params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The WebAssembly component (any content type is accepted, e.g. application/wasm)"),
    responses((status = 201, body = PolicyView), (status = 422, body = Problem), (status = 503, description = "Too many of the tenant's validations are waiting", body = Problem)))]
async fn upload(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Query(p): Query<UploadParams>,
    body: Bytes,
) -> Result<(StatusCode, Json<PolicyView>), Problem> {
    let _ = p.tenant;
    let (wasm, hash) = validate(&scope.tenant, body.to_vec()).await?;
    let store = api.admin.store.policies();
    let mut info = store
        .upload(&scope.tenant, wasm, &hash, &scope.principal.actor)
        .await?;
    if p.activate.unwrap_or(false) {
        store.activate(&scope.tenant, info.version).await?;
        reload(&api, &scope.tenant).await?;
        info.active = true;
    }
    Ok((StatusCode::CREATED, Json(view(info))))
}

/// Makes a version the tenant's policy (also how to roll back).
#[utoipa::path(post, path = "/api/v1/policies/{version}/activate", tag = "policies",
    params(TenantParam, ("version" = u32, Path)),
    responses((status = 200, body = PolicyView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn activate(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Path(version): Path<u32>,
) -> Result<Json<PolicyView>, Problem> {
    let store = api.admin.store.policies();
    let module = store
        .get(&scope.tenant, version)
        .await?
        .ok_or_else(|| Problem::not_found(format!("policy version {version}")))?;
    validate(&scope.tenant, module.wasm).await?;
    store.activate(&scope.tenant, version).await?;
    reload(&api, &scope.tenant).await?;
    let info = store
        .info(&scope.tenant, version)
        .await?
        .ok_or_else(|| Problem::not_found(format!("policy version {version}")))?;
    Ok(Json(view(info)))
}

/// Returns the tenant to the built-in policy.
#[utoipa::path(post, path = "/api/v1/policies/deactivate", tag = "policies", params(TenantParam),
    responses((status = 204)))]
async fn deactivate(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
) -> Result<StatusCode, Problem> {
    let store = api.admin.store.policies();
    if let Some(active) = store
        .list(&scope.tenant)
        .await?
        .into_iter()
        .find(|v| v.active)
    {
        store
            .deactivate(&scope.tenant, active.version, None)
            .await?;
        reload(&api, &scope.tenant).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A sample call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleCall {
    /// The calling extension, or an external number.
    caller: String,
    /// The number dialled.
    dialled: String,
}

/// A decision to try.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TryRequest {
    /// A stored version; null for the tenant's active policy (the built-in
    /// one when none is active).
    #[serde(default)]
    version: Option<u32>,
    /// The call.
    call: SampleCall,
}

/// What a policy decides for a sample call now: against the tenant's live
/// directory (settings, presence, groups) and key-value store. Nothing is
/// stored and no phone rings.
#[utoipa::path(post, path = "/api/v1/policies/try", tag = "policies", params(TenantParam),
    request_body = TryRequest,
    responses((status = 200, description = "The decision and the key-value store after it", body = Object),
        (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 503, description = "Too many of the tenant's tries are waiting", body = Problem)))]
async fn try_decision(
    AxumState(api): AxumState<State>,
    WriteScope(scope): WriteScope,
    Body(request): Body<TryRequest>,
) -> Result<Json<serde_json::Value>, Problem> {
    let store = &api.admin.store;
    let version = match request.version {
        Some(v) => Some(v),
        None => store
            .policies()
            .list(&scope.tenant)
            .await?
            .into_iter()
            .find(|v| v.active)
            .map(|v| v.version),
    };
    let wasm = match version {
        None => None,
        Some(version) => Some(
            store
                .policies()
                .get(&scope.tenant, version)
                .await?
                .ok_or_else(|| Problem::not_found(format!("policy version {version}")))?
                .wasm,
        ),
    };
    let SampleCall { caller, dialled } = request.call;
    for (field, value) in [("call.caller", &caller), ("call.dialled", &dialled)] {
        if value.is_empty()
            || value.len() > 64
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+*#._-".contains(&b))
        {
            return Err(Problem::field(field, "must be a number or an alias"));
        }
    }
    // The tenant as the running server has it.
    let tenant = api
        .admin
        .tenants
        .lock()
        .await
        .tenant(&scope.tenant)
        .cloned()
        .ok_or_else(|| Problem::not_found(format!("tenant {}", scope.tenant)))?;
    let context = crate::routing::sample_context(
        tenant,
        api.lines.clone(),
        api.ring_timeout_secs,
        &caller,
        &dialled,
        store.policies().kv(&scope.tenant).await?,
    );
    let outcome = crate::admin::policies::gated(Some(&scope.tenant), move || {
        let engine = crate::admin::policies::engine().map_err(|e| Problem::internal(&e))?;
        let policy = match wasm {
            None => engine.builtin().clone(),
            Some(wasm) => {
                crate::admin::policies::compile_module(wasm)
                    .map_err(|e| Problem::field("version", e.to_string()))?
                    .1
            }
        };
        let outcome = playground::run(engine, &policy, context)
            .map_err(|e| Problem::field("call", e.to_string()))?;
        let mut json = serde_json::to_value(outcome).map_err(|e| Problem::internal(&e))?;
        if let Some(object) = json.as_object_mut() {
            object.insert(
                "policy".into(),
                version.map_or_else(|| "builtin".into(), |v| format!("version {v}").into()),
            );
        }
        Ok::<_, Problem>(json)
    })
    .await??;
    Ok(Json(outcome))
}

/// The policy routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(try_decision))
}
