//! RFC 9457 problem details: every error of the API has this shape, and a
//! validation error names the field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgepbx_store::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::error;
use utoipa::ToSchema;

/// An error answer (`application/problem+json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time, for a person.
    pub detail: String,
    /// The fields at fault, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field at fault.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as a path into the request (`forwarding.busy`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Problem {
    /// A problem with a status and a detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Problem {
            kind: format!("https://edgepbx.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// A validation error of one field (422).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Problem {
        let (field, message) = (field.into(), message.into());
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {message}"),
        );
        p.kind = "https://edgepbx.dev/problems/validation".into();
        p.title = "Invalid request".into();
        p.errors.push(FieldError { field, message });
        p
    }

    /// A field this caller may not set (403).
    pub fn forbidden_field(field: impl Into<String>, message: impl Into<String>) -> Problem {
        let (field, message) = (field.into(), message.into());
        let mut p = Problem::new(StatusCode::FORBIDDEN, format!("{field}: {message}"));
        p.errors.push(FieldError { field, message });
        p
    }

    /// 412: an `If-Match` that no longer holds.
    pub fn precondition_failed(what: impl std::fmt::Display) -> Problem {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "{what}: read it again (If-Match names the ETag it had when read) and reapply the change"
            ),
        )
    }

    /// 404 for `what`.
    pub fn not_found(what: impl std::fmt::Display) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// 403 with a reason.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, detail)
    }

    /// 500, logged; the client learns nothing of the cause.
    pub fn internal(error: &dyn std::fmt::Display) -> Problem {
        error!(%error, "API request failed");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server could not complete the request; see its log",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let unauthorized = status == StatusCode::UNAUTHORIZED;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"edgepbx\""),
            );
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::InvalidField { field, reason } => {
                Problem::field(field.replace(' ', "_"), reason)
            }
            StoreError::Conflict { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::NotFound { .. } => Problem::new(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::Changed { .. } => Problem::precondition_failed(&e),
            StoreError::Contended => Problem::new(StatusCode::CONFLICT, e.to_string()),
            StoreError::LimitReached { .. } => Problem::new(StatusCode::CONFLICT, e.to_string()),
            other => Problem::internal(&other),
        }
    }
}

impl From<crate::work::WorkError> for Problem {
    fn from(e: crate::work::WorkError) -> Problem {
        match e {
            crate::work::WorkError::Busy => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            crate::work::WorkError::Panicked => Problem::internal(&e),
        }
    }
}

impl From<edgepbx_store::InvalidField> for Problem {
    fn from(e: edgepbx_store::InvalidField) -> Problem {
        StoreError::from(e).into()
    }
}

impl From<anyhow::Error> for Problem {
    fn from(e: anyhow::Error) -> Problem {
        match e.downcast::<StoreError>() {
            Ok(store) => store.into(),
            Err(other) => match other.downcast::<crate::work::WorkError>() {
                Ok(work) => work.into(),
                Err(other) => Problem::internal(&format!("{other:#}")),
            },
        }
    }
}

/// A JSON request body whose errors name the field at fault. It must say
/// it is JSON (`application/json`, or `application/<something>+json`
/// such as a merge patch): a form a hostile page can post across sites
/// without asking is refused (415) before it is read.
pub struct Body<T>(pub T);

/// Whether a `Content-Type` value names JSON.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json);
        if !json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent as Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::new(e.status(), e.body_text()))?;
        parse_json(&bytes).map(Body)
    }
}

/// Deserializes JSON; an error names the path of the field at fault.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(field_problem)
}

/// Deserializes a JSON value, naming the field at fault.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(field_problem)
}

/// The problem of a deserialization error, naming the field at its path
/// (`body` when the error is about the whole document).
fn field_problem(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = e.path().to_string();
    let field = if path == "." || path == "?" {
        "body".to_owned()
    } else {
        path
    };
    Problem::field(field, e.into_inner().to_string())
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_bodies_are_recognised_by_their_type() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "json",
            "",
        ] {
            assert!(!is_json(no), "{no}");
        }
    }
}
