//! What the engine is told: the sections of the server's configuration
//! that signalling reads (`[registrar]`, `[security]`, `[calls]`,
//! `[media]`), typed, with their defaults, plus the values the driver
//! learns at start-up (listening ports, the installation's key). The
//! server reads them from TOML; unknown keys are an error there.

use std::net::IpAddr;
use std::time::Duration;

use edgepbx_sip::auth::Algorithm;
use edgepbx_sip::transaction::TransactionConfig;
use serde::Deserialize;

/// Largest `registrar.max_bindings_per_extension`: every call to an
/// extension forks to each binding, and every routing decision about it
/// lists them.
pub const MAX_BINDINGS_PER_EXTENSION: usize = 100;

/// Everything the engine runs with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// RFC 3261 timers and the transaction limit.
    pub transactions: TransactionConfig,
    /// REGISTER handling.
    pub registrar: RegistrarConfig,
    /// Digest nonces and brute-force throttling.
    pub security: SecurityConfig,
    /// Call handling.
    pub calls: CallsConfig,
    /// Media anchoring.
    pub media: MediaConfig,
    /// SUBSCRIBE lengths and limits.
    pub subscriptions: crate::subscriptions::SubscriptionsConfig,
    /// Our listening ports, for the Via and Contact of what we send.
    pub ports: ListeningPorts,
    /// The installation's secret: digest nonces are sealed with it.
    pub server_key: [u8; 32],
}

/// The ports the driver listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListeningPorts {
    /// SIP over UDP.
    pub udp: u16,
    /// SIP over TCP.
    pub tcp: u16,
    /// SIP over TLS, when the driver has a certificate.
    pub tls: Option<u16>,
    /// The HTTP listener, which takes SIP over WebSocket.
    pub http: u16,
}

/// REGISTER limits and reachability checks (RFC 3261 §10.3).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrarConfig {
    /// Shortest registration accepted; shorter gets 423 with Min-Expires.
    pub min_expires: u32,
    /// Longest registration granted; longer requests are shortened.
    pub max_expires: u32,
    /// Registration length when the request names none.
    pub default_expires: u32,
    /// Most contacts bound to one extension at once (at most
    /// [`MAX_BINDINGS_PER_EXTENSION`]).
    pub max_bindings_per_extension: usize,
    /// Interval between OPTIONS pings to each binding; 0 disables them.
    pub keepalive_interval_secs: u64,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 3_600,
            default_expires: 3_600,
            max_bindings_per_extension: 10,
            keepalive_interval_secs: 30,
        }
    }
}

/// Digest nonces and brute-force throttling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Lifetime of a digest nonce before `stale=true`.
    pub nonce_ttl_secs: u64,
    /// Window over which authentication failures of one source are counted.
    pub failure_window_secs: u64,
    /// Failures after which a source's failing requests are answered at most
    /// once a second.
    pub throttle_after_failures: u32,
    /// Failures after which everything from the source is ignored.
    pub block_after_failures: u32,
    /// How long a blocked source stays blocked.
    pub block_secs: u64,
    /// Digest algorithms offered, preferred first (RFC 8760 §2.4): `SHA-256`
    /// and/or `MD5`. Put MD5 first only for clients that read the first
    /// challenge alone (SIPp 3.6).
    pub digest_algorithms: Vec<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            nonce_ttl_secs: 300,
            failure_window_secs: 60,
            throttle_after_failures: 5,
            block_after_failures: 10,
            block_secs: 600,
            digest_algorithms: vec!["SHA-256".into(), "MD5".into()],
        }
    }
}

impl SecurityConfig {
    /// The configured digest algorithms that this build knows.
    pub fn digest_algorithms_parsed(&self) -> Vec<Algorithm> {
        self.digest_algorithms
            .iter()
            .filter_map(|a| Algorithm::from_token(a))
            .collect()
    }
}

/// Call handling defaults and limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// How long an extension rings when its settings name no time.
    pub ring_timeout_secs: u32,
    /// Longest a call may last; a call whose parties vanished without a BYE
    /// ends then.
    pub max_duration_secs: u64,
    /// How long both parties of an answered call (not on hold) may send no
    /// media before the call is ended; 0 never ends a call for silence.
    pub media_timeout_secs: u64,
    /// Most simultaneous calls of one tenant; past it new calls get 503.
    pub max_calls_per_tenant: usize,
    /// Most policy decisions (steps) in one call before it is refused.
    pub max_steps: usize,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            ring_timeout_secs: 25,
            max_duration_secs: 4 * 3_600,
            media_timeout_secs: 120,
            max_calls_per_tenant: 200,
            max_steps: 8,
        }
    }
}

impl CallsConfig {
    /// How long both parties may be silent before the relay reports it.
    pub fn silence(&self) -> Duration {
        match self.media_timeout_secs {
            0 => Duration::from_secs(u64::from(u32::MAX)),
            secs => Duration::from_secs(secs),
        }
    }
}

/// Where and how media is relayed.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// First UDP port of the media range.
    pub port_min: u16,
    /// Last UDP port of the media range.
    pub port_max: u16,
    /// Address media sockets bind to.
    pub bind: IpAddr,
    /// Address written into descriptions; by default the local address
    /// that routes to each party.
    pub advertise: Option<IpAddr>,
    /// Lets two parties whose signalling comes from the same IP address
    /// (the same site behind one NAT, or the same LAN) send media to each
    /// other directly instead of through edgepbx.
    pub direct_same_network: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            port_min: 20_000,
            port_max: 29_999,
            bind: IpAddr::from([0, 0, 0, 0]),
            advertise: None,
            direct_same_network: false,
        }
    }
}
