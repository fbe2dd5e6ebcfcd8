//! The client of the REST API under `/api/v1`, on the browser's `fetch`.
//!
//! Every request is same-origin, carries the session cookie and, when a
//! system admin has chosen a tenant, `?tenant=CODE`. Answers that are not
//! 2xx are read as RFC 9457 problem details; anything the server sends that
//! does not parse becomes an [`ApiError`], never a panic.

use std::cell::RefCell;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestCredentials, RequestInit, Response};

use crate::model::Problem;

/// The prefix of every API path.
pub const BASE: &str = "/api/v1";

thread_local! {
    /// The tenant a system admin acts on, added to every request as
    /// `?tenant=CODE`; `None` for tenant users (the session names theirs).
    static TENANT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets the tenant every later request acts on (system admins only).
pub fn set_tenant(code: Option<String>) {
    TENANT.with(|t| *t.borrow_mut() = code);
}

/// What went wrong with a request.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ApiError {
    /// The request did not reach the server or its answer was cut off.
    Network(String),
    /// The server answered 401: the session is gone or was never there.
    Unauthorized(Problem),
    /// The server refused the request with problem details.
    Problem(Problem),
    /// The server answered 2xx with a body that is not what the contract says.
    Decode(String),
}

impl ApiError {
    /// The per-field errors of a validation problem (empty otherwise).
    pub fn field_errors(&self) -> &[crate::model::FieldError] {
        match self {
            ApiError::Problem(p) | ApiError::Unauthorized(p) => &p.errors,
            _ => &[],
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Network(e) => write!(f, "The server could not be reached: {e}"),
            ApiError::Unauthorized(p) | ApiError::Problem(p) => f.write_str(&p.summary()),
            ApiError::Decode(e) => write!(f, "The server's answer could not be read: {e}"),
        }
    }
}

/// The URL of an API path with the tenant parameter added when one is set.
/// `path` starts with `/` and may already carry a query.
pub fn url(path: &str) -> String {
    let tenant = TENANT.with(|t| t.borrow().clone());
    match tenant {
        Some(code) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{BASE}{path}{sep}tenant={}", encode(&code))
        }
        None => format!("{BASE}{path}"),
    }
}

/// Percent-encodes one query value.
pub fn encode(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

/// A request body: its content type and the value handed to `fetch`
/// (a string or a `File`).
struct Body {
    content_type: &'static str,
    value: JsValue,
}

impl Body {
    fn json<B: Serialize + ?Sized>(body: &B) -> Result<Body, ApiError> {
        let text = serde_json::to_string(body).map_err(|e| ApiError::Decode(e.to_string()))?;
        Ok(Body {
            content_type: "application/json",
            value: JsValue::from_str(&text),
        })
    }
}

fn js_error(e: JsValue) -> ApiError {
    ApiError::Network(
        e.as_string()
            .or_else(|| {
                e.dyn_ref::<js_sys::Error>()
                    .map(|e| String::from(e.message()))
            })
            .unwrap_or_else(|| "the request failed".into()),
    )
}

/// Sends a same-origin request; a non-2xx answer becomes an [`ApiError`],
/// a 2xx answer gives its body as text.
async fn send(
    method: &str,
    path: &str,
    body: Option<Body>,
    if_match: Option<&str>,
) -> Result<String, ApiError> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    let headers = Headers::new().map_err(js_error)?;
    headers
        .set("Accept", "application/json")
        .map_err(js_error)?;
    if let Some(tag) = if_match {
        headers.set("If-Match", tag).map_err(js_error)?;
    }
    if let Some(body) = body {
        headers
            .set("Content-Type", body.content_type)
            .map_err(js_error)?;
        init.set_body(&body.value);
    }
    init.set_headers(&headers);
    let request = Request::new_with_str_and_init(&url(path), &init).map_err(js_error)?;
    let window = web_sys::window().ok_or_else(|| ApiError::Network("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?
        .as_string()
        .unwrap_or_default();
    if response.ok() {
        return Ok(text);
    }
    let status = response.status();
    let problem = Problem::from_answer(status, &response.status_text(), &text);
    Err(if status == 401 {
        ApiError::Unauthorized(problem)
    } else {
        ApiError::Problem(problem)
    })
}

fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    // An empty body (a 200 with nothing to say) reads as `null`.
    let text = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(text).map_err(|e| ApiError::Decode(e.to_string()))
}

/// `GET path`, decoding the JSON answer.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    decode(&send("GET", path, None, None).await?)
}

/// `GET path`, returning the body as text (CSV exports).
pub async fn get_text(path: &str) -> Result<String, ApiError> {
    send("GET", path, None, None).await
}

/// `POST path` with a JSON body, decoding the JSON answer.
pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
    path: &str,
    body: &B,
) -> Result<T, ApiError> {
    decode(&send("POST", path, Some(Body::json(body)?), None).await?)
}

/// `POST path` with a JSON body, ignoring the answer's body.
pub async fn post_unit<B: Serialize + ?Sized>(path: &str, body: &B) -> Result<(), ApiError> {
    send("POST", path, Some(Body::json(body)?), None)
        .await
        .map(drop)
}

/// `POST path` with a raw body (a file) of the given content type.
pub async fn post_body<T: DeserializeOwned>(
    path: &str,
    content_type: &'static str,
    body: impl Into<JsValue>,
) -> Result<T, ApiError> {
    let body = Body {
        content_type,
        value: body.into(),
    };
    decode(&send("POST", path, Some(body), None).await?)
}

/// `PUT path` with a raw body (a file) of the given content type,
/// ignoring the answer's body.
pub async fn put_body(
    path: &str,
    content_type: &'static str,
    body: impl Into<JsValue>,
) -> Result<(), ApiError> {
    let body = Body {
        content_type,
        value: body.into(),
    };
    send("PUT", path, Some(body), None).await.map(drop)
}

/// `PATCH path` with a JSON merge patch (RFC 7396), decoding the answer;
/// with `if_match`, only if the resource still has that entity tag.
pub async fn patch<T: DeserializeOwned>(
    path: &str,
    patch: &serde_json::Value,
    if_match: Option<&str>,
) -> Result<T, ApiError> {
    let body = Body {
        content_type: "application/merge-patch+json",
        value: JsValue::from_str(&patch.to_string()),
    };
    decode(&send("PATCH", path, Some(body), if_match).await?)
}

/// `PUT path` with a JSON body, decoding the answer; with `if_match`,
/// only if the resource still has that entity tag.
pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
    path: &str,
    body: &B,
    if_match: Option<&str>,
) -> Result<T, ApiError> {
    decode(&send("PUT", path, Some(Body::json(body)?), if_match).await?)
}

/// `DELETE path`; with `if_match`, only if the resource still has that
/// entity tag.
pub async fn delete(path: &str, if_match: Option<&str>) -> Result<(), ApiError> {
    send("DELETE", path, None, if_match).await.map(drop)
}
