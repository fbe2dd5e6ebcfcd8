//! Who is calling: API keys and console sessions, the tenant a request acts
//! on, login with brute-force throttling, and the users and keys
//! resources.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgepbx_store::{ApiKey, ConsoleUser, Role};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::Body;
use super::{ClientAddr, Problem, State};
use crate::admin::accounts::{self, SESSION_PREFIX};
use crate::passwords::{self, decoy_hash};
use crate::secrets::{constant_time_eq, random_token, sha256_hex};
use crate::work::Payer;
use edgepbx_engine::time::rfc3339;

/// The session cookie's name.
const COOKIE: &str = "edgepbx_session";
/// How often an API key's last-used time is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Declares the bearer scheme in the OpenAPI document.
pub struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Who, for the audit trail: an e-mail or `key:<id>`.
    pub actor: String,
    /// What they may do.
    pub role: Role,
    /// Their tenant (`None` for a system admin).
    pub tenant: Option<String>,
    /// A read-only API key.
    pub read_only: bool,
    /// The one extension an extension user may reach.
    pub extension: Option<String>,
}

impl Principal {
    fn from_user(user: ConsoleUser) -> Principal {
        Principal {
            actor: user.email,
            read_only: user.role == Role::ReadOnly,
            role: user.role,
            tenant: user.tenant,
            extension: user.extension,
        }
    }

    fn from_key(key: ApiKey) -> Principal {
        Principal {
            actor: format!("key:{}", key.id),
            role: if key.read_only {
                Role::ReadOnly
            } else {
                Role::TenantAdmin
            },
            tenant: Some(key.tenant),
            read_only: key.read_only,
            extension: None,
        }
    }

    /// Whether it may change things.
    pub fn may_write(&self) -> bool {
        !self.read_only && self.role != Role::ReadOnly
    }

    /// Refuses anyone but a system admin.
    pub fn require_system_admin(&self) -> Result<(), Problem> {
        if self.role == Role::SystemAdmin {
            Ok(())
        } else {
            Err(Problem::forbidden("only a system admin may do this"))
        }
    }
}

/// The client's address (from the connection).
fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<ClientAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.0.ip())
}

/// The throttling key of an address: IPv6 addresses by their /64 (one
/// host usually has a whole /64).
pub(crate) fn source_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Whether a proxy in front says the browser came over HTTPS
/// (`X-Forwarded-Proto: https`, or `Forwarded: proto=https`). Believing a
/// client that lies costs only that client its session (a `Secure` cookie
/// is never sent back over plain HTTP).
fn forwarded_https(headers: &HeaderMap) -> bool {
    let says = |name: &str, check: &dyn Fn(&str) -> bool| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(check)
    };
    says("x-forwarded-proto", &|v| {
        v.split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }) || says("forwarded", &|v| {
        v.split([';', ','])
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(k, p)| {
                k.eq_ignore_ascii_case("proto") && p.trim_matches('"').eq_ignore_ascii_case("https")
            })
    })
}

/// The token presented: `Authorization: Bearer`, else the session cookie.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<State> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Problem> {
        // Valid credentials always work; an address that keeps presenting
        // invalid ones gets 429 for them (keys and session tokens carry 256
        // random bits: this bounds the load, guessing is hopeless anyway).
        let source = format!("ip:{}", source_key(peer(parts)));
        let unauthorized = || {
            if state.throttle.blocked(&source) {
                return too_many();
            }
            state.throttle.failed(&source);
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "missing or invalid credentials: log in or send Authorization: Bearer <API key>",
            )
        };
        let Some(token) = presented_token(&parts.headers) else {
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "log in or send Authorization: Bearer <API key>",
            ));
        };
        match authenticate(state, &token).await? {
            Some(principal) => {
                parts.extensions.insert(Presented(token));
                Ok(principal)
            }
            None => Err(unauthorized()),
        }
    }
}

/// The credential a request was authenticated with (kept in the request's
/// extensions, for streams that must check it again later).
#[derive(Clone)]
pub struct Presented(String);

impl Presented {
    /// Whether the credential still holds (not revoked, not logged out,
    /// the user not removed).
    pub async fn still_valid(&self, state: &State) -> bool {
        matches!(authenticate(state, &self.0).await, Ok(Some(_)))
    }
}

/// The principal a key or session token stands for, if it is valid.
async fn authenticate(state: &State, token: &str) -> Result<Option<Principal>, Problem> {
    if token.len() > 256 {
        return Ok(None);
    }
    let access = state.admin.store.access();
    if let Some(id) = accounts::api_key_id(token) {
        let Some(key) = access.key(id).await? else {
            return Ok(None);
        };
        if !constant_time_eq(sha256_hex(token).as_bytes(), key.key_hash.as_bytes()) {
            return Ok(None);
        }
        if state.throttle.should_touch(&key.id) {
            access.touch_key(&key.id, SystemTime::now()).await?;
        }
        return Ok(Some(Principal::from_key(key)));
    }
    if token.starts_with(SESSION_PREFIX)
        && let Some(user) = access.session_user(&sha256_hex(token)).await?
    {
        return Ok(Some(Principal::from_user(user)));
    }
    Ok(None)
}

/// `?tenant=CODE`
#[derive(Debug, Deserialize, IntoParams)]
pub struct TenantParam {
    /// The tenant to act on (system admins only; others act on their own).
    pub tenant: Option<String>,
}

/// An authenticated request and the tenant it acts on.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The caller.
    pub principal: Principal,
    /// The tenant code.
    pub tenant: String,
}

impl FromRequestParts<State> for Scope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Problem> {
        let scope = scope_of(parts, state).await?;
        if scope.principal.extension.is_some() {
            return Err(Problem::forbidden(
                "an extension user reaches only their own extension",
            ));
        }
        Ok(scope)
    }
}

/// The caller and the tenant they act on, whoever they are.
async fn scope_of(parts: &mut Parts, state: &State) -> Result<Scope, Problem> {
    let principal = Principal::from_request_parts(parts, state).await?;
    let Query(param) = Query::<TenantParam>::from_request_parts(parts, state)
        .await
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let asked = param.tenant.map(|t| t.to_ascii_uppercase());
    let tenant = match (&principal.tenant, asked) {
        (Some(own), None) => own.clone(),
        (Some(own), Some(asked)) if *own == asked => asked,
        (Some(_), Some(_)) => {
            return Err(Problem::forbidden(
                "this credential acts on its own tenant only",
            ));
        }
        (None, Some(asked)) => {
            if state
                .admin
                .store
                .tenants()
                .get(&asked)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                return Err(Problem::not_found(format!("tenant {asked}")));
            }
            asked
        }
        (None, None) => {
            return Err(Problem::field(
                "tenant",
                "a system admin names the tenant with ?tenant=CODE",
            ));
        }
    };
    Ok(Scope { principal, tenant })
}

/// A [`Scope`] that an extension user holds too, for the resources of one
/// extension: they reach their own extension and no other.
#[derive(Debug, Clone)]
pub struct Personal(pub Scope);

impl Personal {
    /// Refuses an extension user any extension but their own, as if it
    /// did not exist.
    pub fn reach(&self, number: &str) -> Result<(), Problem> {
        match &self.0.principal.extension {
            Some(own) if own != number => Err(Problem::not_found(format!("extension {number}"))),
            _ => Ok(()),
        }
    }

    /// Like [`Personal::reach`], and the caller may change things.
    pub fn change(&self, number: &str) -> Result<(), Problem> {
        self.reach(number)?;
        if !self.0.principal.may_write() {
            return Err(Problem::forbidden("read-only access"));
        }
        Ok(())
    }
}

impl FromRequestParts<State> for Personal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Problem> {
        Ok(Personal(scope_of(parts, state).await?))
    }
}

/// A [`Scope`] whose caller may change things.
#[derive(Debug, Clone)]
pub struct WriteScope(pub Scope);

impl FromRequestParts<State> for WriteScope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Problem> {
        let scope = Scope::from_request_parts(parts, state).await?;
        if !scope.principal.may_write() {
            return Err(Problem::forbidden("read-only access"));
        }
        Ok(WriteScope(scope))
    }
}

fn too_many() -> Problem {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed attempts; try again later",
    )
}

/// Counts failures per key (an address or a login name) over a window.
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (Instant, u32)>>,
    touched: Mutex<HashMap<String, Instant>>,
    limit: u32,
    window: Duration,
}

/// Most keys tracked; the oldest windows go first past it.
const MAX_TRACKED: usize = 65_536;

impl LoginThrottle {
    /// `limit` failures per `window`.
    pub fn new(limit: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            failures: Mutex::default(),
            touched: Mutex::default(),
            limit,
            window,
        }
    }

    /// Whether `key` is over its limit.
    pub fn blocked(&self, key: &str) -> bool {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .is_some_and(|(start, n)| now.duration_since(*start) < self.window && *n >= self.limit)
    }

    /// The failures of `key` in its current window.
    pub fn failures(&self, key: &str) -> u32 {
        let now = Instant::now();
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(start, _)| now.duration_since(*start) < self.window)
            .map_or(0, |(_, n)| *n)
    }

    /// Counts a failure of `key`.
    pub fn failed(&self, key: &str) {
        self.count(key);
    }

    /// Counts an attempt of `key` and tells whether it is within the limit,
    /// in one step, so that parallel attempts cannot all pass the check
    /// before any is counted.
    pub fn attempt(&self, key: &str) -> bool {
        self.count(key) <= self.limit
    }

    /// [`LoginThrottle::attempt`] with a limit of its own.
    pub fn attempt_up_to(&self, key: &str, limit: u32) -> bool {
        self.count(key) <= limit
    }

    /// Takes back one attempt of `key` (it succeeded).
    pub fn refund(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = map.get_mut(key) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    fn count(&self, key: &str) -> u32 {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(key) {
            map.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            // Still full of live windows: the oldest goes.
            let oldest = (map.len() >= MAX_TRACKED)
                .then(|| map.iter().min_by_key(|(_, (start, _))| *start))
                .flatten()
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1
    }

    /// Forgets the failures of `key` (after a success).
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Whether the key's last-used time is due for a write.
    fn should_touch(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut map = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED {
            map.clear();
        }
        match map.get(id) {
            Some(last) if now.duration_since(*last) < TOUCH_EVERY => false,
            _ => {
                map.insert(id.to_owned(), now);
                true
            }
        }
    }
}

/// How many times the per-address limit a user's failures from all
/// addresses may reach before that user is throttled everywhere: someone
/// guessing from many addresses is slowed down, someone failing from one
/// address locks out only themselves there.
const USER_RAMP: u32 = 10;

/// The throttling keys of one login attempt: its address, the user at
/// that address, and the user anywhere. The user is known by a hash of
/// the e-mail, so that the keys are small whatever was typed.
struct LoginKeys {
    address: String,
    user_there: String,
    user: String,
}

impl LoginKeys {
    /// Counts an attempt of `email` from `ip` on every key (before it is
    /// verified, so that parallel guesses cannot pass the limit); `None`
    /// when one is over its limit.
    fn attempt(throttle: &LoginThrottle, ip: IpAddr, email: &str) -> Option<LoginKeys> {
        let source = source_key(ip);
        let user = sha256_hex(email);
        let keys = LoginKeys {
            address: format!("login-ip:{source}"),
            user_there: format!("login:{source}:{user}"),
            user: format!("login:{user}"),
        };
        let within = [
            throttle.attempt(&keys.address),
            throttle.attempt(&keys.user_there),
            throttle.attempt_up_to(&keys.user, throttle.limit.saturating_mul(USER_RAMP)),
        ];
        within.iter().all(|ok| *ok).then_some(keys)
    }

    /// The attempt succeeded: the user's failures are forgotten, the
    /// address's attempt taken back.
    fn succeeded(&self, throttle: &LoginThrottle) {
        throttle.succeeded(&self.user_there);
        throttle.succeeded(&self.user);
        throttle.refund(&self.address);
    }
}

/// The logged-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Login e-mail (or `key:<id>` for an API key).
    email: String,
    /// `system-admin`, `tenant-admin`, `read-only` or `extension-user`.
    role: String,
    /// Their tenant; null for a system admin.
    tenant: Option<String>,
    /// An extension user's extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<String>,
}

/// Credentials of a login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    /// Login e-mail.
    email: String,
    /// Password.
    password: String,
}

/// Logs in: sets the session cookie and returns the user.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", security(()),
    request_body = Login,
    responses((status = 200, body = SessionView), (status = 401, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn login(
    axum::extract::State(state): axum::extract::State<State>,
    ConnectInfo(ClientAddr(addr)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Body(login): Body<Login>,
) -> Result<Response, Problem> {
    let email = login.email.trim().to_ascii_lowercase();
    let Some(keys) = LoginKeys::attempt(&state.throttle, addr.ip(), &email) else {
        return Err(too_many());
    };
    if email.len() > 254 || login.password.len() > 256 {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "wrong e-mail or password",
        ));
    }
    let user = state.admin.store.access().user(&email).await?;
    // An unknown user costs a verification too: no user enumeration by time.
    let hash = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    // An unknown name's attempt has a share of its own: a flood of
    // made-up names slows neither a tenant's logins nor the operators'.
    let payer = match &user {
        Some(u) => Payer::of(u.tenant.as_deref()),
        None => Payer::Unknown,
    };
    let ok = passwords::verify(payer, hash, login.password).await?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "wrong e-mail or password",
        ));
    };
    keys.succeeded(&state.throttle);
    let token = format!("{SESSION_PREFIX}{}", random_token(32));
    let lifetime = Duration::from_secs(state.config.session_hours * 3_600);
    state
        .admin
        .store
        .access()
        .open_session(
            &sha256_hex(&token),
            &user.email,
            SystemTime::now() + lifetime,
        )
        .await?;
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        lifetime.as_secs(),
        if state.secure_cookies || forwarded_https(&headers) {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = axum::Json(view(&Principal::from_user(user))).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

fn view(p: &Principal) -> SessionView {
    SessionView {
        email: p.actor.clone(),
        role: p.role.as_str().to_owned(),
        tenant: p.tenant.clone(),
        extension: p.extension.clone(),
    }
}

/// Who is logged in.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionView), (status = 401, body = Problem)))]
async fn whoami(principal: Principal) -> axum::Json<SessionView> {
    axum::Json(view(&principal))
}

/// Logs out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204)))]
async fn logout(
    axum::extract::State(state): axum::extract::State<State>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    if let Some(token) = presented_token(&headers).filter(|t| t.starts_with(SESSION_PREFIX)) {
        state
            .admin
            .store
            .access()
            .close_session(&sha256_hex(&token))
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("edgepbx_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

/// An API key (never the key itself, except once on creation).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Public id.
    id: String,
    /// What it is for.
    name: String,
    /// It may only read.
    read_only: bool,
    /// When it was created (RFC 3339).
    created_at: String,
    /// When it was last used.
    last_used_at: Option<String>,
    /// The key: only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

fn key_view(k: ApiKey, key: Option<String>) -> KeyView {
    KeyView {
        id: k.id,
        name: k.name,
        read_only: k.read_only,
        created_at: rfc3339(k.created_at),
        last_used_at: k.last_used_at.map(rfc3339),
        key,
    }
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What it is for.
    name: String,
    /// It may only read.
    #[serde(default)]
    read_only: bool,
}

/// The tenant's API keys.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "access", params(TenantParam),
    responses((status = 200, body = Vec<KeyView>)))]
async fn list_keys(
    axum::extract::State(state): axum::extract::State<State>,
    scope: Scope,
) -> Result<axum::Json<Vec<KeyView>>, Problem> {
    let keys = state.admin.store.access().keys(&scope.tenant).await?;
    Ok(axum::Json(
        keys.into_iter().map(|k| key_view(k, None)).collect(),
    ))
}

/// Creates an API key; the answer holds the key, shown only this once.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "access", params(TenantParam),
    request_body = NewKey,
    responses((status = 201, body = KeyView), (status = 422, body = Problem)))]
async fn create_key(
    axum::extract::State(state): axum::extract::State<State>,
    WriteScope(scope): WriteScope,
    Body(new): Body<NewKey>,
) -> Result<(StatusCode, axum::Json<KeyView>), Problem> {
    let (stored, key) =
        accounts::create_api_key(&state.admin.store, &scope.tenant, &new.name, new.read_only)
            .await?;
    Ok((StatusCode::CREATED, axum::Json(key_view(stored, Some(key)))))
}

/// Revokes an API key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "access", params(TenantParam, ("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_key(
    axum::extract::State(state): axum::extract::State<State>,
    WriteScope(scope): WriteScope,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state
        .admin
        .store
        .access()
        .revoke_key(&scope.tenant, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A console user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Login e-mail.
    email: String,
    /// Role.
    role: String,
    /// Tenant (null for a system admin).
    tenant: Option<String>,
    /// An extension user's extension.
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<String>,
    /// When added.
    created_at: String,
}

/// A new console user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login e-mail.
    email: String,
    /// Password (10 characters or more).
    password: String,
    /// `system-admin`, `tenant-admin`, `read-only` or `extension-user`.
    role: String,
    /// The extension of an extension user (of the tenant).
    #[serde(default)]
    extension: Option<String>,
}

fn user_view(u: ConsoleUser) -> UserView {
    UserView {
        email: u.email,
        role: u.role.as_str().to_owned(),
        tenant: u.tenant,
        extension: u.extension,
        created_at: rfc3339(u.created_at),
    }
}

/// Console users of the tenant.
#[utoipa::path(get, path = "/api/v1/users", tag = "access", params(TenantParam),
    responses((status = 200, body = Vec<UserView>)))]
async fn list_users(
    axum::extract::State(state): axum::extract::State<State>,
    scope: Scope,
) -> Result<axum::Json<Vec<UserView>>, Problem> {
    let users = state
        .admin
        .store
        .access()
        .users(Some(&scope.tenant))
        .await?;
    Ok(axum::Json(users.into_iter().map(user_view).collect()))
}

/// Adds a console user to the tenant (a system admin may add system admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "access", params(TenantParam),
    request_body = NewUser,
    responses((status = 201, body = UserView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    axum::extract::State(state): axum::extract::State<State>,
    WriteScope(scope): WriteScope,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, axum::Json<UserView>), Problem> {
    let role = Role::parse(&new.role)?;
    let tenant = match role {
        Role::SystemAdmin => {
            scope.principal.require_system_admin()?;
            None
        }
        _ => Some(scope.tenant.as_str()),
    };
    let user = accounts::create_user(
        &state.admin.store,
        &new.email,
        role,
        tenant,
        new.extension.as_deref(),
        &new.password,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(user_view(user))))
}

/// Removes a console user of the tenant.
#[utoipa::path(delete, path = "/api/v1/users/{email}", tag = "access", params(TenantParam, ("email" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove_user(
    axum::extract::State(state): axum::extract::State<State>,
    WriteScope(scope): WriteScope,
    Path(email): Path<String>,
) -> Result<StatusCode, Problem> {
    let access = state.admin.store.access();
    match access.user(&email).await? {
        Some(u) if u.tenant.as_deref() == Some(scope.tenant.as_str()) => {}
        _ => return Err(Problem::not_found(format!("user {email}"))),
    }
    access.remove_user(&email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// When.
    at: String,
    /// Who: a user's e-mail or `key:<id>`.
    actor: String,
    /// What (`reveal-password`).
    action: String,
    /// On what.
    target: String,
}

/// How many entries.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Tenant (system admins).
    tenant: Option<String>,
    /// 1 to 1000 (default 100), newest first.
    limit: Option<u32>,
}

/// The tenant's audit trail (sensitive reads such as password reveals),
/// newest first; for administrators.
#[utoipa::path(get, path = "/api/v1/audit", tag = "access", params(AuditParams),
    responses((status = 200, body = Vec<AuditView>), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn audit(
    axum::extract::State(state): axum::extract::State<State>,
    WriteScope(scope): WriteScope,
    Query(p): Query<AuditParams>,
) -> Result<axum::Json<Vec<AuditView>>, Problem> {
    let _ = p.tenant;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(Problem::field("limit", "must be 1 to 1000"));
    }
    let entries = state
        .admin
        .store
        .access()
        .audit_trail(&scope.tenant, limit)
        .await?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                at: rfc3339(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
            })
            .collect(),
    ))
}

/// Largest body a login may have: an e-mail and a password fit in far
/// less, and nobody unauthenticated makes the server read more.
const LOGIN_BODY_BYTES: usize = 4_096;

/// Session, users, keys and the audit trail.
pub fn routes() -> OpenApiRouter<State> {
    let session = OpenApiRouter::new()
        .routes(routes!(login, whoami, logout))
        .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_BYTES));
    OpenApiRouter::new()
        .merge(session)
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(list_users, create_user))
        .routes(routes!(remove_user))
        .routes(routes!(audit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn failures_from_one_address_lock_the_user_out_there_only() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(300));
        let (mallory, alice) = (ip("198.51.100.9"), ip("203.0.113.5"));
        for _ in 0..3 {
            assert!(LoginKeys::attempt(&throttle, mallory, "alice@acme.test").is_some());
        }
        assert!(LoginKeys::attempt(&throttle, mallory, "alice@acme.test").is_none());
        // Alice, elsewhere, logs in; her success forgets her own failures.
        let keys = LoginKeys::attempt(&throttle, alice, "alice@acme.test").expect("let in");
        keys.succeeded(&throttle);
        assert!(LoginKeys::attempt(&throttle, mallory, "alice@acme.test").is_none());
    }

    #[test]
    fn failures_from_many_addresses_slow_the_user_down_everywhere() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(300));
        // 3 × USER_RAMP failures, three per address (each address stays
        // within its own limit for this user).
        for n in 0..USER_RAMP {
            for _ in 0..3 {
                let from = ip(&format!("198.51.100.{n}"));
                assert!(LoginKeys::attempt(&throttle, from, "bob@acme.test").is_some());
            }
        }
        assert!(LoginKeys::attempt(&throttle, ip("203.0.113.5"), "bob@acme.test").is_none());
        assert!(LoginKeys::attempt(&throttle, ip("203.0.113.5"), "carol@acme.test").is_some());
    }

    #[test]
    fn a_proxy_saying_https_makes_the_cookie_secure() {
        let with = |name: &'static str, value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static(value));
            forwarded_https(&headers)
        };
        assert!(with("x-forwarded-proto", "https"));
        assert!(with("x-forwarded-proto", "HTTPS, http"));
        assert!(with(
            "forwarded",
            "for=192.0.2.1;proto=https;by=203.0.113.4"
        ));
        assert!(with("forwarded", "proto=\"https\""));
        assert!(!with("x-forwarded-proto", "http"));
        assert!(!with("forwarded", "for=192.0.2.1"));
        assert!(!forwarded_https(&HeaderMap::new()));
    }

    #[test]
    fn the_keys_are_small_whatever_was_typed() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(300));
        let typed = "x".repeat(100_000);
        let keys = LoginKeys::attempt(&throttle, ip("2001:db8::1"), &typed).expect("counted");
        assert!(
            keys.user.len() < 80 && keys.user_there.len() < 120,
            "{}",
            keys.user_there
        );
    }
}
