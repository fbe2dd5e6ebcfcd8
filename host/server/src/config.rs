//! Server configuration: a TOML file, then `EDGEPBX_*` environment
//! variables and command-line flags on top (flags win). Unknown keys are an
//! error, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
pub use edgepbx_engine::config::{
    CallsConfig, MAX_BINDINGS_PER_EXTENSION, MediaConfig, RegistrarConfig, SecurityConfig,
};
use edgepbx_engine::config::{EngineConfig, ListeningPorts};
use edgepbx_engine::subscriptions::SubscriptionsConfig;
use edgepbx_sip::transaction::{Timers, TransactionConfig};
use serde::Deserialize;

/// Everything `edgepbx serve` can be told.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory of the embedded database.
    pub data: PathBuf,
    /// A SurrealDB server (`ws://host:port`, or `wss://` for TLS) instead
    /// of the embedded database.
    pub db: Option<String>,
    /// How to use that server.
    pub remote_store: RemoteStoreConfig,
    /// The file of the key that seals stored SIP and carrier passwords;
    /// `sealing.key` in the data directory unless given. Created (0600)
    /// when missing; every node sharing a database needs the same one.
    pub sealing_key: Option<PathBuf>,
    /// SIP transports and protocol limits.
    pub sip: SipConfig,
    /// REGISTER handling.
    pub registrar: RegistrarConfig,
    /// Authentication and abuse protection.
    pub security: SecurityConfig,
    /// Embedded database tuning.
    pub store: StoreTuning,
    /// How long history is kept.
    pub retention: RetentionConfig,
    /// Call handling.
    pub calls: CallsConfig,
    /// Media anchoring.
    pub media: MediaConfig,
    /// SUBSCRIBE lengths and limits (BLF, presence, MWI).
    pub subscriptions: SubscriptionsConfig,
    /// Routing policies.
    pub policy: PolicyConfig,
    /// The HTTP listener: REST API, events and the console.
    pub http: HttpConfig,
    /// Desk phones fetching their configuration.
    pub provisioning: ProvisioningConfig,
    /// Voicemail limits and timers.
    pub voicemail: crate::voicemail::VoicemailConfig,
}

/// Desk-phone provisioning at `/prov/<TENANT>/` on the HTTP listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// Serve it over plain HTTP as well (labs only: phones' passwords
    /// then cross the network in clear).
    pub allow_http: bool,
    /// The address phones register to; the host name they fetched their
    /// files from when not given.
    pub sip_host: Option<String>,
    /// NTP server written into the phones' configuration; none leaves
    /// theirs.
    pub ntp_server: Option<String>,
    /// The phones' IANA time zone (`Europe/Berlin`).
    pub time_zone: String,
    /// Failed fetches (wrong credentials, unknown MAC addresses) from one
    /// address (an IPv6 /64) before it is refused...
    pub max_failures: u32,
    /// ...within this window, and for the rest of it.
    pub failure_window_secs: u64,
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            allow_http: false,
            sip_host: None,
            ntp_server: None,
            time_zone: "UTC".into(),
            max_failures: 20,
            failure_window_secs: 600,
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain; with `key`, the listener speaks HTTPS.
    pub cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    pub key: Option<PathBuf>,
    /// Hours a console session lasts.
    pub session_hours: u64,
    /// Failed logins from one address (or for one user) in a window of
    /// `login_window_secs` before further attempts get 429.
    pub login_failures: u32,
    /// The login failure counting window, seconds.
    pub login_window_secs: u64,
    /// Largest request body, bytes (CSV imports and policy uploads).
    pub max_body_bytes: usize,
    /// Most rows of one CSV import.
    pub max_import_rows: usize,
    /// Most event streams (`/api/v1/events`) one tenant may hold open.
    pub max_event_streams: usize,
    /// Path of the SIP over WebSocket endpoint (`ws://` or, with a
    /// certificate, `wss://` on this listener).
    pub sip_ws_path: String,
    /// Origins whose pages may open the SIP WebSocket
    /// (`https://app.example.com`); empty: pages served by edgepbx only.
    pub sip_ws_origins: Vec<String>,
    /// SIP messages one WebSocket may send per second on average (bursts
    /// of ten times as many); a faster client is disconnected.
    pub sip_ws_messages_per_sec: u32,
    /// Most HTTP connections open at once (more wait in the backlog).
    pub max_connections: usize,
    /// Seconds a client has to send a request's header (and an idle
    /// keep-alive connection stays open).
    pub header_read_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            cert: None,
            key: None,
            session_hours: 12,
            login_failures: 10,
            login_window_secs: 300,
            max_body_bytes: 16 << 20,
            max_import_rows: 20_000,
            max_event_streams: 200,
            sip_ws_path: "/ws".into(),
            sip_ws_origins: Vec::new(),
            sip_ws_messages_per_sec: 20,
            max_connections: 4_096,
            header_read_timeout_secs: 10,
        }
    }
}

/// Routing policy runtime limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Wall-clock budget of one decision, milliseconds.
    pub deadline_ms: u64,
    /// Memory a policy instance may use, KiB.
    pub memory_kib: usize,
    /// Optional fuel (instruction) budget per decision.
    pub fuel: Option<u64>,
    /// Faults after which a tenant's module is deactivated.
    pub fault_limit: u32,
    /// Window over which faults are counted, seconds.
    pub fault_window_secs: u64,
}

/// SIP listeners, limits and RFC 3261 timer values.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP listen address.
    pub udp: SocketAddr,
    /// TCP listen address.
    pub tcp: SocketAddr,
    /// TLS listen address (5061 by convention); none: no SIP over TLS.
    pub tls: Option<SocketAddr>,
    /// Certificate chain (PEM) for SIP over TLS; `http.cert` when not
    /// given.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); `http.key` when not given.
    pub key: Option<PathBuf>,
    /// Certificates for the names clients ask for (SNI), e.g. one per
    /// tenant's domain; others get `cert`.
    pub certificates: Vec<crate::api::tls::NamedCertificate>,
    /// Largest accepted message, in bytes.
    pub max_message_bytes: usize,
    /// Most header fields accepted in one message.
    pub max_headers: usize,
    /// RFC 3261 T1 (round-trip estimate), milliseconds.
    pub t1_ms: u64,
    /// RFC 3261 T2 (maximum retransmit interval), milliseconds.
    pub t2_ms: u64,
    /// RFC 3261 T4 (maximum time a message stays in the network), milliseconds.
    pub t4_ms: u64,
    /// Most simultaneous stream connections (TCP, TLS and WebSocket) from
    /// one IP address.
    pub max_connections_per_ip: usize,
    /// Most simultaneous stream connections in all.
    pub max_connections: usize,
    /// Most live transactions. At the limit, answered non-INVITE requests
    /// stop waiting for retransmissions (oldest first); only then do new
    /// requests get 503.
    pub max_transactions: usize,
    /// Nice value (0 to 19) of the server's threads outside the SIP and
    /// media planes: the database, the write-behind, the HTTP API and the
    /// console. On a busy machine the kernel then runs signalling first, so
    /// a burst of database writes never queues SIP messages. 0 keeps every
    /// thread at the server's own priority. Linux only.
    pub background_nice: u8,
}

/// Embedded database tuning.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreTuning {
    /// Most binding changes and events written in one batch.
    pub write_batch: usize,
    /// Longest a change waits before its batch is written, milliseconds.
    pub write_delay_ms: u64,
    /// Free space (MiB) kept on the data directory's disk: below it, API
    /// writes are refused with 503 so that what cannot wait (registrations,
    /// call records, voice messages) gets the rest.
    pub min_free_mib: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./data"),
            db: None,
            remote_store: RemoteStoreConfig::default(),
            sealing_key: None,
            sip: SipConfig::default(),
            registrar: RegistrarConfig::default(),
            security: SecurityConfig::default(),
            store: StoreTuning::default(),
            retention: RetentionConfig::default(),
            calls: CallsConfig::default(),
            media: MediaConfig::default(),
            subscriptions: SubscriptionsConfig::default(),
            policy: PolicyConfig::default(),
            http: HttpConfig::default(),
            provisioning: ProvisioningConfig::default(),
            voicemail: crate::voicemail::VoicemailConfig::default(),
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        let limits = edgepbx_policy::Limits::default();
        PolicyConfig {
            deadline_ms: u64::try_from(limits.deadline.as_millis()).unwrap_or(5),
            memory_kib: limits.max_memory_bytes / 1024,
            fuel: limits.fuel,
            fault_limit: limits.fault_limit,
            fault_window_secs: limits.fault_window.as_secs(),
        }
    }
}

impl PolicyConfig {
    /// The runtime limits these settings describe.
    pub fn limits(&self) -> edgepbx_policy::Limits {
        edgepbx_policy::Limits {
            deadline: std::time::Duration::from_millis(self.deadline_ms),
            max_memory_bytes: self.memory_kib.saturating_mul(1024),
            fuel: self.fuel,
            fault_limit: self.fault_limit,
            fault_window: std::time::Duration::from_secs(self.fault_window_secs),
            ..edgepbx_policy::Limits::default()
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        let any: SocketAddr = ([0, 0, 0, 0], 5060).into();
        SipConfig {
            udp: any,
            tcp: any,
            tls: None,
            cert: None,
            key: None,
            certificates: Vec::new(),
            max_message_bytes: 65_535,
            max_headers: 128,
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            max_connections_per_ip: 64,
            max_connections: 10_000,
            max_transactions: 100_000,
            background_nice: 10,
        }
    }
}

/// The SurrealDB server named by `db`: where edgepbx's data lives in it,
/// who edgepbx signs in as, and whom it trusts for `wss://`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RemoteStoreConfig {
    /// SurrealDB namespace.
    pub namespace: String,
    /// SurrealDB database.
    pub database: String,
    /// The user to sign in as (root, or a user of the database); none:
    /// no sign-in.
    pub user: Option<String>,
    /// A file whose first line is that user's password.
    pub password_file: Option<PathBuf>,
    /// Whether `user` is a user of the database (`DEFINE USER ... ON
    /// DATABASE`) rather than a root user.
    pub database_user: bool,
    /// PEM certificates to trust for `wss://` besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl Default for RemoteStoreConfig {
    fn default() -> Self {
        RemoteStoreConfig {
            namespace: edgepbx_store::DEFAULT_NAMESPACE.to_owned(),
            database: edgepbx_store::DEFAULT_DATABASE.to_owned(),
            user: None,
            password_file: None,
            database_user: false,
            ca_file: None,
        }
    }
}

/// How long history is kept, in days; 0 keeps it for ever. Older rows are
/// deleted at start and every hour.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Registrations, refreshes and their ends.
    pub registration_events_days: u32,
    /// Call detail records.
    pub call_records_days: u32,
    /// The administration audit trail.
    pub audit_days: u32,
    /// A finished CSV import's report (with the passwords it generated),
    /// in minutes; kept in memory only.
    pub import_reports_mins: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            registration_events_days: 90,
            call_records_days: 400,
            audit_days: 400,
            import_reports_mins: 60,
        }
    }
}

impl Default for StoreTuning {
    fn default() -> Self {
        StoreTuning {
            write_batch: 512,
            write_delay_ms: 50,
            min_free_mib: 64,
        }
    }
}

impl Config {
    /// What the engine runs with, once the listeners are bound.
    pub fn engine(&self, ports: ListeningPorts, server_key: [u8; 32]) -> EngineConfig {
        let s = &self.sip;
        EngineConfig {
            transactions: TransactionConfig {
                timers: Timers {
                    t1: std::time::Duration::from_millis(s.t1_ms),
                    t2: std::time::Duration::from_millis(s.t2_ms),
                    t4: std::time::Duration::from_millis(s.t4_ms),
                },
                max_transactions: s.max_transactions,
                ..TransactionConfig::default()
            },
            registrar: self.registrar.clone(),
            security: self.security.clone(),
            calls: self.calls.clone(),
            media: self.media.clone(),
            subscriptions: self.subscriptions.clone(),
            ports,
            server_key,
        }
    }

    /// Reads a TOML file; unknown keys and bad values are errors naming the key.
    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Config::from_toml(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// The certificate and key SIP over TLS presents: its own, or the
    /// HTTPS ones.
    pub fn sip_tls_files(&self) -> Option<(&Path, &Path)> {
        match (
            &self.sip.cert,
            &self.sip.key,
            &self.http.cert,
            &self.http.key,
        ) {
            (Some(cert), Some(key), _, _) | (None, None, Some(cert), Some(key)) => {
                Some((cert, key))
            }
            _ => None,
        }
    }

    /// Checks relations between values that serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.sip.background_nice > 19 {
            bail!("sip.background_nice must be between 0 and 19");
        }
        let h = &self.http;
        if h.cert.is_some() != h.key.is_some() {
            bail!("http.cert and http.key go together");
        }
        if self.sip.cert.is_some() != self.sip.key.is_some() {
            bail!("sip.cert and sip.key go together");
        }
        if self.sip.tls.is_some() && self.sip_tls_files().is_none() {
            bail!("sip.tls needs a certificate: sip.cert and sip.key, or http.cert and http.key");
        }
        if self.retention.import_reports_mins == 0 {
            bail!("retention.import_reports_mins must be at least 1");
        }
        if h.session_hours == 0 || h.login_failures == 0 || h.max_import_rows == 0 {
            bail!(
                "http.session_hours, http.login_failures and http.max_import_rows must be at least 1"
            );
        }
        let p = &self.provisioning;
        if p.max_failures == 0 || p.failure_window_secs == 0 {
            bail!("provisioning.max_failures and failure_window_secs must be at least 1");
        }
        if h.max_body_bytes < 1_024 {
            bail!("http.max_body_bytes must be at least 1024");
        }
        let path = &h.sip_ws_path;
        if !path.starts_with('/')
            || path.len() < 2
            || path.starts_with("/api/")
            || path.starts_with("/prov/")
            || !path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
        {
            bail!(
                "http.sip_ws_path must be a path such as /ws (letters, digits, / - _ .), outside /api/ and /prov/"
            );
        }
        if let Some(origin) = h
            .sip_ws_origins
            .iter()
            .find(|o| !(o.starts_with("https://") || o.starts_with("http://")))
        {
            bail!(
                "http.sip_ws_origins: {origin:?} is not an origin such as https://app.example.com"
            );
        }
        if h.sip_ws_messages_per_sec == 0 {
            bail!("http.sip_ws_messages_per_sec must be at least 1");
        }
        if h.max_connections == 0 || h.header_read_timeout_secs == 0 {
            bail!("http.max_connections and http.header_read_timeout_secs must be at least 1");
        }
        if self.sip.max_connections == 0 || self.sip.max_connections_per_ip == 0 {
            bail!("sip.max_connections and sip.max_connections_per_ip must be at least 1");
        }
        let r = &self.registrar;
        if r.min_expires == 0 || r.min_expires > r.max_expires {
            bail!("registrar.min_expires must be between 1 and registrar.max_expires");
        }
        if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
            bail!("registrar.default_expires must lie between min_expires and max_expires");
        }
        if !(1..=MAX_BINDINGS_PER_EXTENSION).contains(&r.max_bindings_per_extension) {
            bail!(
                "registrar.max_bindings_per_extension must lie between 1 and {MAX_BINDINGS_PER_EXTENSION}"
            );
        }
        let sub = &self.subscriptions;
        if sub.min_expires == 0 || sub.min_expires > sub.max_expires {
            bail!("subscriptions.min_expires must be between 1 and subscriptions.max_expires");
        }
        if sub.default_expires < sub.min_expires || sub.default_expires > sub.max_expires {
            bail!("subscriptions.default_expires must lie between min_expires and max_expires");
        }
        if sub.max_expires > 86_400 {
            bail!("subscriptions.max_expires may be at most 86400 (a day)");
        }
        if sub.max_per_device == 0 || sub.max_per_extension == 0 || sub.max_per_tenant == 0 {
            bail!(
                "subscriptions.max_per_device, max_per_extension and max_per_tenant must be at least 1"
            );
        }
        let s = &self.sip;
        if s.t1_ms == 0 || s.t2_ms < s.t1_ms || s.t4_ms == 0 {
            bail!("sip timers need t1_ms > 0, t2_ms >= t1_ms and t4_ms > 0");
        }
        if s.t1_ms > 10_000 || s.t2_ms > 60_000 || s.t4_ms > 60_000 {
            bail!("sip timers may be at most t1_ms = 10000, t2_ms = 60000 and t4_ms = 60000");
        }
        if s.max_message_bytes < 1_024 || s.max_headers < 16 {
            bail!("sip.max_message_bytes must be >= 1024 and sip.max_headers >= 16");
        }
        let sec = &self.security;
        if sec.throttle_after_failures == 0
            || sec.block_after_failures < sec.throttle_after_failures
        {
            bail!("security.block_after_failures must be >= throttle_after_failures >= 1");
        }
        if sec.digest_algorithms.is_empty()
            || sec.digest_algorithms.len() != sec.digest_algorithms_parsed().len()
        {
            bail!("security.digest_algorithms must list \"SHA-256\" and/or \"MD5\"");
        }
        if sec.nonce_ttl_secs < 10 {
            bail!("security.nonce_ttl_secs must be at least 10");
        }
        if sec.nonce_ttl_secs > 86_400
            || sec.failure_window_secs > 86_400
            || sec.block_secs > 604_800
        {
            bail!(
                "security.nonce_ttl_secs and failure_window_secs may be at most 86400 (a day), block_secs 604800 (a week)"
            );
        }
        if self.store.write_batch == 0 {
            bail!("store.write_batch must be at least 1");
        }
        let m = &self.media;
        if edgepbx_media::ports::PortRange::new(m.port_min, m.port_max).is_err() {
            bail!("media.port_min..media.port_max must hold at least one even/odd port pair");
        }
        let c = &self.calls;
        if c.ring_timeout_secs == 0 || c.max_duration_secs == 0 || c.max_steps == 0 {
            bail!("calls.ring_timeout_secs, max_duration_secs and max_steps must be at least 1");
        }
        if c.ring_timeout_secs > 600 || c.max_duration_secs > 7 * 86_400 || c.max_steps > 100 {
            bail!(
                "calls.ring_timeout_secs may be at most 600, max_duration_secs 604800 (a week) and max_steps 100"
            );
        }
        if c.media_timeout_secs > 86_400 {
            bail!("calls.media_timeout_secs may be at most 86400 (a day)");
        }
        let p = &self.policy;
        if p.deadline_ms == 0 || p.memory_kib < 64 {
            bail!("policy.deadline_ms must be at least 1 and policy.memory_kib at least 64");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use edgepbx_sip::auth::Algorithm;

    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").ok(), Some(Config::default()));
    }

    /// The README's list of every key is what the code has: it parses,
    /// and to the defaults.
    #[test]
    fn the_readme_lists_the_defaults() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split_once("Every key with its\ndefault:\n\n```toml\n")
            .and_then(|(_, rest)| rest.split_once("```"))
            .map(|(block, _)| block)
            .expect("the README has the block");
        let parsed = Config::from_toml(block);
        assert_eq!(parsed.ok(), Some(Config::default()));
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let err = Config::from_toml("[registrar]\nmin_expire = 5\n").err();
        let text = format!("{:?}", err);
        assert!(text.contains("min_expire"), "{text}");
    }

    #[test]
    fn inconsistent_expiry_is_rejected() {
        assert!(Config::from_toml("[registrar]\nmin_expires = 4000\n").is_err());
    }

    #[test]
    fn bindings_per_extension_are_bounded() {
        let with = |n: usize| {
            Config::from_toml(&format!("[registrar]\nmax_bindings_per_extension = {n}\n"))
        };
        assert!(with(0).is_err());
        assert!(with(MAX_BINDINGS_PER_EXTENSION).is_ok());
        let error = with(MAX_BINDINGS_PER_EXTENSION + 1)
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.contains("max_bindings_per_extension")),
            "{error:?}"
        );
    }

    #[test]
    fn durations_are_bounded() {
        for text in [
            "[sip]\nt1_ms = 18446744073709551615\nt2_ms = 18446744073709551615\n",
            "[calls]\nmax_duration_secs = 18446744073709551615\n",
            "[calls]\nmedia_timeout_secs = 100000\n",
            "[calls]\nring_timeout_secs = 601\n",
            "[security]\nblock_secs = 18446744073709551615\n",
        ] {
            assert!(Config::from_toml(text).is_err(), "{text}");
        }
        assert!(Config::from_toml("[calls]\nmax_duration_secs = 86400\n").is_ok());
    }

    #[test]
    fn digest_algorithms_are_checked() {
        assert!(Config::from_toml("[security]\ndigest_algorithms = [\"SHA-512\"]\n").is_err());
        let c = Config::from_toml("[security]\ndigest_algorithms = [\"MD5\", \"SHA-256\"]\n");
        let parsed = c.map(|c| c.security.digest_algorithms_parsed()).ok();
        assert_eq!(parsed, Some(vec![Algorithm::Md5, Algorithm::Sha256]));
    }

    #[test]
    fn sections_parse() {
        let c = Config::from_toml(
            "data = \"/tmp/x\"\n[sip]\nudp = \"127.0.0.1:5070\"\n[security]\nblock_secs = 5\n",
        )
        .ok();
        let c = c.as_ref();
        assert_eq!(c.map(|c| c.sip.udp.port()), Some(5070));
        assert_eq!(c.map(|c| c.security.block_secs), Some(5));
    }
}
