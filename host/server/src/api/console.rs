//! The console's files, embedded at build time (see `build.rs`), served at
//! `/`: gzip-compressed when the browser accepts it, revalidated by entity
//! tag. Any path outside the API that names no file gets the single-page
//! app's index, which routes on the client.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::Problem;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    etag: &'static str,
    bytes: &'static [u8],
    gzip: &'static [u8],
}

/// `(path, content type, entity tag, bytes, gzip bytes)`, from `build.rs`.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [u8],
    &'static [u8],
);

const FILES: &[Row] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

fn find(path: &str) -> Option<Asset> {
    FILES
        .iter()
        .find(|row| row.0 == path)
        .map(|&(path, content_type, etag, bytes, gzip)| Asset {
            path,
            content_type,
            etag,
            bytes,
            gzip,
        })
}

/// Serves a console file, the index for client-side routes, or 404 for
/// unknown API paths.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        return Problem::new(StatusCode::NOT_FOUND, format!("no API resource at {path}"))
            .into_response();
    }
    let Some(asset) = find(path).or_else(|| find("/index.html")) else {
        return Problem::new(StatusCode::NOT_FOUND, "the console has no index").into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        let mut response = if gzip {
            let mut r = asset.gzip.into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            asset.bytes.into_response()
        };
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        response
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    // File names carry no hash: browsers revalidate (cheap, by tag).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if asset.path == "/index.html" {
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                 img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
            ),
        );
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}
