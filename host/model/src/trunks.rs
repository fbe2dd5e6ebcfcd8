//! SIP trunks: a tenant's connection to a carrier, for calls to and from
//! numbers outside the tenant. A trunk either registers with digest
//! credentials or is known by its address; inbound calls are routed by the
//! number they were made to (DID). The carrier password is needed in clear
//! to answer the carrier's challenges; it is never listed or logged.

use std::fmt;

/// Most DIDs on one trunk.
pub const MAX_DIDS: usize = 1_000;
/// Most trunks per tenant.
pub const MAX_TRUNKS: usize = 16;

/// A number of the carrier's that rings in the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Did {
    /// The number as the carrier sends it (Request-URI or To user part).
    pub number: String,
    /// The extension, group or alias of the tenant it reaches.
    pub destination: String,
}

/// A trunk as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Trunk {
    /// Code of the owning tenant.
    pub tenant: String,
    /// Its name within the tenant (`a-z 0-9 -`).
    pub name: String,
    /// The carrier: `host` or `host:port` (IP address or DNS name).
    pub host: String,
    /// Digest username; `None` for a trunk authenticated by address.
    pub username: Option<String>,
    /// Digest password (never shown).
    pub password: Option<String>,
    /// Register with the carrier (needs credentials).
    pub register: bool,
    /// The tenant's number shown on outbound calls when the extension has
    /// no outbound caller ID of its own.
    pub caller_id: Option<String>,
    /// Inbound numbers and where they ring.
    pub dids: Vec<Did>,
}

// The password stays out of logs.
impl fmt::Debug for Trunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trunk")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("register", &self.register)
            .field("caller_id", &self.caller_id)
            .field("dids", &self.dids)
            .finish()
    }
}
