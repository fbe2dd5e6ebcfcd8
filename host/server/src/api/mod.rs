//! The HTTP side of edgepbx: the REST API under `/api/v1` (bearer API keys
//! and console sessions, RFC 9457 problem details, an OpenAPI 3 document
//! generated from the handlers), the tenant's live events as Server-Sent
//! Events, and the console's files at `/`.
//!
//! Every handler acts on the tenant of its credential (a system admin names
//! one with `?tenant=CODE`), through the same store and reload path as the
//! control socket, so a change made here reaches the SIP plane at once.

pub mod auth;
mod console;
mod contacts;
mod devices;
mod devices_csv;
mod extensions;
mod groups;
mod import_users;
pub mod imports;
mod live;
mod policies;
mod problem;
pub mod provisioning;
mod server;
mod tenants;
pub mod tls;
mod versions;
mod voicemail;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::sync::watch;
use tracing::{info, warn};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::admin::Admin;
use crate::config::HttpConfig;
use edgepbx_engine::Lines;

pub use problem::Problem;

use auth::SecuritySchemes;

/// What every handler works with.
pub struct Api {
    /// Store, SIP plane, policies and event bus, as the control socket has
    /// them.
    pub admin: Admin,
    /// Live line state, for presence.
    pub lines: Arc<Lines>,
    /// HTTP settings.
    pub config: HttpConfig,
    /// Ring timeout of extensions whose settings name none (for tried
    /// decisions).
    pub ring_timeout_secs: u32,
    /// Running and finished CSV imports.
    pub imports: imports::Jobs,
    /// Open event streams per tenant.
    pub streams: live::Streams,
    /// Failed logins and bad credentials.
    pub throttle: auth::LoginThrottle,
    /// Whether cookies are marked `Secure` (HTTPS).
    pub secure_cookies: bool,
    /// Desk phones fetching their configuration.
    pub provisioning: provisioning::Provisioning,
    /// Mailboxes: messages, greetings, message lamps.
    pub voicemail: Arc<crate::voicemail::Voicemail>,
    /// SIP over WebSocket, on this listener.
    pub sip_ws: crate::transport::ws::WsTransport,
    /// The data directory's free space: API writes wait for room.
    pub disk: crate::disk::DiskGuard,
    /// Turns true when the server stops: open event streams end, so that
    /// the listener's graceful stop does not wait for them.
    pub stopping: watch::Receiver<bool>,
}

/// Shared state of the handlers.
pub type State = Arc<Api>;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "edgepbx REST API",
        description = "Administer a tenant of edgepbx: extensions, groups, contacts, policies, calls, keys. \
            Authenticate with `Authorization: Bearer <API key>` or a console session. \
            A system admin names the tenant with `?tenant=CODE`. Errors are RFC 9457 problem details."
    ),
    modifiers(&SecuritySchemes),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The whole HTTP application.
pub fn router(state: State) -> Router {
    let limit = state.config.max_body_bytes;
    let (api, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::routes())
        .merge(extensions::routes())
        .merge(imports::routes())
        .merge(tenants::routes())
        .merge(groups::routes())
        .merge(contacts::routes())
        .merge(devices::routes())
        .merge(voicemail::routes())
        .merge(policies::routes())
        .merge(live::routes())
        .split_for_parts();
    let document = Arc::new(document);
    api.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json((*document).clone()) }
        }),
    )
    .route(
        "/prov/{tenant}/{file}",
        axum::routing::get(provisioning::fetch),
    )
    .route(&state.config.sip_ws_path, axum::routing::get(sip_ws))
    .fallback(console::serve)
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        refuse_writes_when_full,
    ))
    .layer(DefaultBodyLimit::max(limit))
    .with_state(state)
}

/// Refuses requests that write (POST, PUT, PATCH) while the data
/// directory's disk is short of its reserve: 503, to be tried again once
/// space is freed. Deletions free space and go through, and so do logins
/// and logouts, so that an operator can get in to clean up.
async fn refuse_writes_when_full(
    axum::extract::State(state): axum::extract::State<State>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    use axum::response::IntoResponse;
    let writes = [Method::POST, Method::PUT, Method::PATCH];
    let session = request.uri().path() == "/api/v1/session";
    if writes.contains(request.method()) && !session && state.disk.is_low() {
        let mut response = Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the server's disk is nearly full: changes are refused until space is freed",
        )
        .into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        return response;
    }
    next.run(request).await
}

/// Upgrades to a SIP WebSocket (RFC 7118).
async fn sip_ws(
    axum::extract::State(state): axum::extract::State<State>,
    axum::extract::ConnectInfo(ClientAddr(addr)): axum::extract::ConnectInfo<ClientAddr>,
    headers: axum::http::HeaderMap,
    ws: axum::extract::WebSocketUpgrade,
) -> axum::response::Response {
    state.sip_ws.upgrade(addr, &headers, ws)
}

/// Serves HTTP (or HTTPS when a certificate is configured) on `listener`
/// until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: State,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let app = router(state.clone());
    let limits = server::Limits {
        max_connections: state.config.max_connections,
        header_read_timeout: Duration::from_secs(state.config.header_read_timeout_secs),
    };
    match (&state.config.cert, &state.config.key) {
        (Some(cert), Some(key)) => {
            let acceptor = tls::acceptor(cert, key, &[b"http/1.1"])?;
            info!("HTTPS listening");
            server::run(
                tls::TlsListener::new(listener, acceptor),
                app,
                limits,
                shutdown,
            )
            .await;
        }
        _ => server::run(listener, app, limits, shutdown).await,
    }
    Ok(())
}

/// The client's address, as handlers see it (`ConnectInfo<ClientAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Binds the HTTP listener (a taken port fails the start).
pub fn bind(config: &HttpConfig) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("binding HTTP on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    if config.cert.is_none() && !config.listen.ip().is_loopback() {
        warn!(addr = %config.listen, "the console and API are served over plain HTTP; set http.cert and http.key");
    }
    Ok(tokio::net::TcpListener::from_std(listener)?)
}
