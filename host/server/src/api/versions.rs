//! Versions of stored things as entity tags, and conditional writes: a
//! client sends back in `If-Match` the `ETag` it read, and a change made
//! meanwhile by someone else is refused (412) rather than overwritten.

use std::time::SystemTime;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use edgepbx_store::{Contact, Device, Extension, Group};
use serde::Serialize;

use super::Problem;

/// The entity tag of the stored version of `it`: the time of its last
/// change in nanoseconds, hex, quoted.
pub fn etag(it: &impl Versioned) -> String {
    let nanos = it
        .version()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{nanos:x}\"")
}

/// Something stored with a version, which conditional writes name.
pub trait Versioned {
    /// When it last changed.
    fn version(&self) -> SystemTime;
    /// What it is, for messages ("group 600").
    fn what(&self) -> String;
}

impl Versioned for Extension {
    fn version(&self) -> SystemTime {
        self.updated_at
    }
    fn what(&self) -> String {
        format!("extension {}", self.number)
    }
}

impl Versioned for Group {
    fn version(&self) -> SystemTime {
        self.updated_at
    }
    fn what(&self) -> String {
        format!("group {}", self.number)
    }
}

impl Versioned for Device {
    fn version(&self) -> SystemTime {
        self.updated_at
    }
    fn what(&self) -> String {
        format!("device {}", self.mac)
    }
}

impl Versioned for Contact {
    fn version(&self) -> SystemTime {
        self.updated_at
    }
    fn what(&self) -> String {
        format!("contact {}", self.id)
    }
}

/// What the `If-Match` headers ask of a write to `current`, which exists:
/// `None` without any or with `*` (which asks only that it exists, RFC
/// 9110 §13.1.1), else its version when one of the tags matches it, for the
/// store to check again in the write's transaction; 412 when none does.
/// Weak tags never match (strong comparison).
pub fn if_match(
    headers: &HeaderMap,
    current: &impl Versioned,
) -> Result<Option<SystemTime>, Problem> {
    let tag = etag(current);
    let mut any = false;
    let mut matches = false;
    for given in headers
        .get_all(header::IF_MATCH)
        .iter()
        .map(|v| v.to_str().unwrap_or_default())
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        any = true;
        if given == "*" {
            return Ok(None);
        }
        matches |= given == tag;
    }
    if !any {
        Ok(None)
    } else if matches {
        Ok(Some(current.version()))
    } else {
        Err(Problem::precondition_failed(format!(
            "{} changed since the version given; its ETag is now {tag}",
            current.what()
        )))
    }
}

/// `body` as JSON with its `ETag` header.
pub fn tagged(body: impl Serialize, etag: &str) -> Response {
    // Hex digits in quotes (see `etag`): always a valid header value.
    let tag = HeaderValue::from_str(etag);
    let mut response = Json(body).into_response();
    if let Ok(tag) = tag {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}
