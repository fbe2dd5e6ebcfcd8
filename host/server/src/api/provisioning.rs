//! Desk phones fetching their configuration: `GET /prov/<TENANT>/<file>`,
//! rendered by `edgepbx-provisioning` from the store.
//!
//! Every file needs the tenant's provisioning credential (HTTP Basic: the
//! tenant code and its provisioning password; Yealink and Grandstream
//! phones send it when challenged), so nobody fetches a phone's SIP
//! password by guessing MAC addresses. A request without it, with a wrong
//! one, or for a tenant that does not exist or has no credential gets the
//! same 401, before any MAC address is looked at. Wrong credentials and
//! unknown MAC addresses count against the source address (an IPv6 /64;
//! the first, unauthenticated request of a file, which every phone makes,
//! does not):
//! from half of `provisioning.max_failures` on, each refusal is answered
//! late (throttled), and past it the address is refused (403) for the
//! rest of the window; both are logged. Over plain HTTP nothing is
//! served unless `provisioning.allow_http`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, Path, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use edgepbx_provisioning::{
    DirectoryEntry, File, LineKey, PhoneIdentity, PhoneProfile, PhonebookLink, RequestedFile,
    SipAccount, SipServer, SiteSettings, Transport, Vendor, common_file, device_file, phonebook,
};
use edgepbx_store::{Device, Fetch, Mac};
use tracing::{info, warn};

use super::auth::{LoginThrottle, source_key};
use super::{ClientAddr, State};
use crate::config::ProvisioningConfig;
use crate::secrets::{constant_time_eq, sha256_hex};

/// The realm phones are challenged with.
const REALM: &str = "edgepbx provisioning";

/// How often phones re-register, as written into their configuration.
const REGISTRATION_SECS: u32 = 3_600;

/// NAT keep-alive interval written for UDP accounts.
const KEEP_ALIVE_SECS: u32 = 30;

/// How late a refusal is answered once a source has half the failures
/// that block it.
const THROTTLE_DELAY: Duration = Duration::from_millis(500);

/// Longest User-Agent looked at.
const MAX_USER_AGENT: usize = 256;

/// What serving provisioning needs besides the store.
pub struct Provisioning {
    /// `[provisioning]`.
    pub config: ProvisioningConfig,
    /// Failed fetches per source address.
    pub throttle: LoginThrottle,
    /// The SIP UDP port phones register to without TLS.
    pub sip_udp_port: u16,
    /// The SIP TLS port, when SIP over TLS is on: phones are then set up
    /// for TLS.
    pub sip_tls_port: Option<u16>,
}

impl Provisioning {
    /// Serving with `config` for SIP on these ports.
    pub fn new(config: ProvisioningConfig, sip_udp_port: u16, sip_tls_port: Option<u16>) -> Self {
        let throttle = LoginThrottle::new(
            config.max_failures,
            Duration::from_secs(config.failure_window_secs),
        );
        Provisioning {
            config,
            throttle,
            sip_udp_port,
            sip_tls_port,
        }
    }
}

/// `GET /prov/{tenant}/{file}`.
pub async fn fetch(
    AxumState(api): AxumState<State>,
    ConnectInfo(ClientAddr(client)): ConnectInfo<ClientAddr>,
    Path((tenant, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let prov = &api.provisioning;
    if !api.secure_cookies && !prov.config.allow_http {
        return plain(
            StatusCode::FORBIDDEN,
            "provisioning is served over HTTPS only",
        );
    }
    let source = source_key(client.ip());
    if prov.throttle.blocked(&source) {
        return plain(StatusCode::FORBIDDEN, "too many failed requests");
    }
    let Some(requested) = RequestedFile::parse(&file) else {
        return refused(
            prov,
            &source,
            client.ip(),
            &tenant,
            "no such file",
            not_found(),
        )
        .await;
    };
    let code = tenant.to_ascii_uppercase();
    match credential(&api, &code, &headers).await {
        Credential::Right => {}
        // The first request of every file comes without: the challenge
        // asks for it, and counts for nothing (phones behind one address
        // would otherwise block each other as they boot).
        Credential::Missing => return challenge(),
        Credential::Wrong => {
            return refused(
                prov,
                &source,
                client.ip(),
                &tenant,
                "wrong credentials",
                challenge(),
            )
            .await;
        }
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());
    let site = SiteSettings {
        ntp_server: prov.config.ntp_server.clone(),
        time_zone: prov.config.time_zone.clone(),
    };
    let result = match requested {
        RequestedFile::YealinkCommon => common_file(Vendor::Yealink, &site).map_err(Into::into),
        RequestedFile::Phonebook => {
            let vendor = user_agent
                .as_deref()
                .and_then(PhoneIdentity::from_user_agent)
                .map_or(Vendor::Yealink, |p| p.vendor);
            directory(&api, &code, vendor).await.map(Some)
        }
        RequestedFile::YealinkDevice(mac) | RequestedFile::GrandstreamDevice(mac)
            if named_mac(user_agent.as_deref()).is_some_and(|named| named != mac) =>
        {
            // A phone asks for its own file: one naming another MAC in
            // its User-Agent is guessing.
            return refused(
                prov,
                &source,
                client.ip(),
                &tenant,
                "file of another MAC than the User-Agent's",
                not_found(),
            )
            .await;
        }
        RequestedFile::YealinkDevice(mac) | RequestedFile::GrandstreamDevice(mac) => {
            let base = base_url(&api, &headers, &code);
            match phone_file(&api, &code, &mac, requested, site, &headers, base).await {
                Ok(Some(file)) => {
                    let fetch = Fetch {
                        file: file.name.clone(),
                        address: client.ip().to_string(),
                        user_agent: user_agent.clone(),
                        at: SystemTime::now(),
                    };
                    if let Err(error) = api
                        .admin
                        .store
                        .devices()
                        .record_fetch(&code, &mac, fetch)
                        .await
                    {
                        warn!(%error, tenant = %code, %mac, "could not record a fetch");
                    }
                    info!(tenant = %code, %mac, file = %file.name, address = %client.ip(),
                        "phone fetched its configuration");
                    Ok(Some(file))
                }
                Ok(None) => {
                    return refused(
                        prov,
                        &source,
                        client.ip(),
                        &tenant,
                        "unknown MAC address",
                        not_found(),
                    )
                    .await;
                }
                Err(error) => Err(error),
            }
        }
        RequestedFile::Unserved(_) => Ok(None),
    };
    match result {
        Ok(Some(file)) => served(file),
        Ok(None) => not_found(),
        Err(error) => {
            warn!(tenant = %code, file = %file, %error, "provisioning file not rendered");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the file could not be made",
            )
        }
    }
}

/// The MAC address a User-Agent names, when it names one.
fn named_mac(user_agent: Option<&str>) -> Option<Mac> {
    PhoneIdentity::from_user_agent(user_agent?)?.mac
}

/// Why a file could not be made.
#[derive(Debug, thiserror::Error)]
enum Unmade {
    #[error(transparent)]
    Store(#[from] edgepbx_store::StoreError),
    #[error(transparent)]
    Render(#[from] edgepbx_provisioning::RenderError),
    #[error("extension {0} keeps no password to give its phone: set a new one")]
    NoPassword(String),
}

/// What a request presents of the tenant's provisioning credential.
enum Credential {
    /// No Basic `Authorization`: the phone has not been challenged yet.
    Missing,
    /// A credential that is not the tenant's (or the tenant has none, or
    /// does not exist: the same answer).
    Wrong,
    /// The tenant's.
    Right,
}

/// What the request carries of the tenant's provisioning credential.
async fn credential(api: &State, code: &str, headers: &HeaderMap) -> Credential {
    let Some((user, password)) = basic_credentials(headers) else {
        return Credential::Missing;
    };
    if !user.eq_ignore_ascii_case(code) {
        return Credential::Wrong;
    }
    let Ok(Some(stored)) = api.admin.store.tenants().provisioning_secret(code).await else {
        return Credential::Wrong;
    };
    if constant_time_eq(sha256_hex(&password).as_bytes(), stored.as_bytes()) {
        Credential::Right
    } else {
        Credential::Wrong
    }
}

/// `Authorization: Basic` user and password.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 512 {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The phone `mac`'s own file, if the tenant has that phone and it is of
/// the vendor whose file was asked for.
async fn phone_file(
    api: &State,
    code: &str,
    mac: &Mac,
    requested: RequestedFile,
    site: SiteSettings,
    headers: &HeaderMap,
    base: Option<String>,
) -> Result<Option<File>, Unmade> {
    let store = &api.admin.store;
    let Some(device) = store.devices().get(code, mac).await? else {
        return Ok(None);
    };
    if requested.vendor() != Some(device.vendor) {
        return Ok(None);
    }
    let Some(extension) = store.extensions().get(code, &device.extension).await? else {
        return Ok(None);
    };
    let password = extension
        .credentials
        .sealed
        .as_deref()
        .and_then(|sealed| api.admin.store.sealer().open(sealed))
        .ok_or_else(|| Unmade::NoPassword(extension.number.clone()))?;
    let server = sip_server(api, headers);
    let profile = PhoneProfile {
        vendor: device.vendor,
        model: device.model.clone(),
        mac: device.mac,
        account: SipAccount {
            display_name: extension.name.clone(),
            user_name: format!("{}-{code}", extension.number),
            auth_name: format!("{}-{code}", extension.number),
            password,
            keep_alive_secs: (server.transport == Transport::Udp).then_some(KEEP_ALIVE_SECS),
            server,
            registration_expiry_secs: REGISTRATION_SECS,
        },
        keys: keys_of(&device),
        site,
        phonebook: base.as_ref().map(|base| PhonebookLink {
            url: format!("{base}phonebook.xml"),
            name: "Company".into(),
        }),
        provisioning_url: base,
        feature_key_sync: true,
    };
    let rendered = device_file(&profile)?;
    if rendered.dropped_keys > 0 {
        warn!(tenant = %code, %mac, dropped = rendered.dropped_keys,
            "the phone has fewer line keys than BLF keys configured");
    }
    Ok(Some(rendered.file))
}

/// The device's BLF keys as line keys.
fn keys_of(device: &Device) -> Vec<LineKey> {
    device.blf_keys.iter().cloned().map(LineKey::Blf).collect()
}

/// The tenant's phonebook: its listed extensions, then its directory
/// contacts, by name.
async fn directory(api: &State, code: &str, vendor: Vendor) -> Result<File, Unmade> {
    let store = &api.admin.store;
    let mut entries: Vec<DirectoryEntry> = store
        .extensions()
        .list(code)
        .await?
        .into_iter()
        .filter(|e| e.profile.listed)
        .map(|e| DirectoryEntry {
            name: e.name,
            number: e.number,
        })
        .collect();
    entries.extend(
        store
            .contacts()
            .list(code)
            .await?
            .into_iter()
            .map(|c| DirectoryEntry {
                name: c.name,
                number: c.number,
            }),
    );
    entries.sort_by_key(|e| e.name.to_lowercase());
    entries.truncate(edgepbx_provisioning::MAX_DIRECTORY_ENTRIES);
    Ok(phonebook(vendor, &entries)?)
}

/// Where phones register: `[provisioning] sip_host`, else the host they
/// fetched from; over TLS when the server has SIP over TLS.
fn sip_server(api: &State, headers: &HeaderMap) -> SipServer {
    let prov = &api.provisioning;
    let host = prov
        .config
        .sip_host
        .clone()
        .or_else(|| request_host(headers))
        .unwrap_or_else(|| "localhost".into());
    match prov.sip_tls_port {
        Some(port) => SipServer {
            host,
            port,
            transport: Transport::Tls,
        },
        None => SipServer {
            host,
            port: prov.sip_udp_port,
            transport: Transport::Udp,
        },
    }
}

/// The URL of the tenant's provisioning directory as the phone reached it
/// (`https://pbx.example.com/prov/ACME/`), for resyncs and the phonebook.
fn base_url(api: &State, headers: &HeaderMap, code: &str) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    if host.is_empty() || host.len() > 255 || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let scheme = if api.secure_cookies { "https" } else { "http" };
    Some(format!("{scheme}://{host}/prov/{code}/"))
}

/// The host part of the `Host` header (without its port).
fn request_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.0,
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    (!name.is_empty() && name.len() <= 253 && name.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| name.to_owned())
}

/// Counts a failure of `source` and answers `response`; logs when the
/// source becomes blocked.
async fn refused(
    prov: &Provisioning,
    source: &str,
    ip: IpAddr,
    tenant: &str,
    why: &str,
    response: Response,
) -> Response {
    prov.throttle.failed(source);
    let failures = prov.throttle.failures(source);
    if prov.throttle.blocked(source) {
        warn!(%ip, tenant = %tenant.chars().take(16).collect::<String>(), why,
            "provisioning source blocked after repeated failures");
    } else if failures >= prov.config.max_failures.div_ceil(2) {
        // Past half the limit, each failure is answered late: guessing
        // slows down before it is cut off.
        info!(%ip, why, failures, "provisioning source throttled");
        tokio::time::sleep(THROTTLE_DELAY).await;
    } else {
        info!(%ip, why, "provisioning request refused");
    }
    response
}

fn served(file: File) -> Response {
    let mut response = (StatusCode::OK, file.body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn challenge() -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, "credentials needed");
    if let Ok(value) = HeaderValue::from_str(&format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""))
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "no such file")
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("a header value"));
        h
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(
            request_host(&with(header::HOST, "pbx.example.com:8443")).as_deref(),
            Some("pbx.example.com")
        );
        assert_eq!(
            request_host(&with(header::HOST, "[::1]:8443")).as_deref(),
            Some("::1")
        );
        assert_eq!(
            request_host(&with(header::HOST, "10.0.0.5")).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(request_host(&HeaderMap::new()), None);
    }

    #[test]
    fn basic_credentials_are_read() {
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ACME:s3cret:x")
        );
        assert_eq!(
            basic_credentials(&with(header::AUTHORIZATION, &value)),
            Some(("ACME".into(), "s3cret:x".into()))
        );
        assert_eq!(
            basic_credentials(&with(header::AUTHORIZATION, "Bearer x")),
            None
        );
        assert_eq!(
            basic_credentials(&with(header::AUTHORIZATION, "Basic !!")),
            None
        );
    }

    #[test]
    fn the_realm_is_the_challenges() {
        let response = challenge();
        let value = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or("");
        assert!(value.contains(REALM), "{value}");
    }
}
