//! The company directory's contacts, with `ETag` and `If-Match`.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use edgepbx_store::Contact;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Scope, TenantParam, WriteScope};
use super::extensions::reload;
use super::problem::Body;
use super::versions;
use super::{Problem, State};

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
    let contacts = api.admin.store.contacts().list(&scope.tenant).await?;
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
        .admin
        .store
        .contacts()
        .add(&scope.tenant, contact_of(id, body))
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok((StatusCode::CREATED, tagged_contact(stored)))
}

async fn find_contact(api: &State, tenant: &str, id: &str) -> Result<Contact, Problem> {
    api.admin
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
        .admin
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
    api.admin
        .store
        .contacts()
        .remove(&scope.tenant, &id, if_version)
        .await?;
    reload(&api, &scope.tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The contacts' routes.
pub fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts, create_contact))
        .routes(routes!(read_contact, replace_contact, remove_contact))
}
