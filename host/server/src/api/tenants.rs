//! Tenants, for system admins: list, add (with their limits), remove.

use axum::Json;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use edgepbx_store::TenantLimits;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Principal;
use super::extensions::reload;
use super::problem::Body;
use super::{Problem, State};
use edgepbx_engine::time::rfc3339;

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
    /// Dialled before an extension to pick up its ringing call.
    pickup_code: String,
    /// BLF keys of other extensions show who is calling.
    blf_shows_caller: bool,
    /// The number voicemail callers reach with `*`.
    operator: Option<String>,
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
        pickup_code: t.features.pickup_code,
        blf_shows_caller: t.features.blf_shows_caller,
        operator: t.features.operator,
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
    let tenants = api.admin.store.tenants().list().await?;
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
    let tenants = api.admin.store.tenants();
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
    api.admin.store.tenants().remove(&code).await?;
    reload(&api, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenants' routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(remove_tenant))
}
