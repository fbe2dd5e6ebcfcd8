//! The digest gate: how every request that must say who sent it is
//! authenticated (RFC 3261 §22, RFC 7616, RFC 8760). REGISTER, INVITE and
//! SUBSCRIBE go through it.
//!
//! The gate finds the tenant the request names, challenges it or checks
//! its credentials against that tenant alone, and counts failures per
//! source address ([`Throttle`]). An unknown user, an unknown tenant and a
//! wrong password all get the same challenge (only nonce, opaque and tag
//! differ), so answers never reveal which users exist.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgepbx_sip::auth::{
    DigestAuthenticator, DigestRequest, DigestResponse, RejectReason, Verdict,
};
use edgepbx_sip::grammar::parse_name_addr;
use edgepbx_sip::transaction::{ServerKey, TransactionKey};
use edgepbx_sip::{Request, Response};
use tracing::warn;

use crate::config::SecurityConfig;
use crate::peer::Peer;
use crate::signalling::Signalling;
use crate::tenants::{Extension, Tenant, TenantTable};
use crate::throttle::{Admission, FailureReply, Throttle, source_of};

/// Digest nonces tracked for nonce-count replay protection.
const TRACKED_NONCES: usize = 100_000;

/// Which kind of challenge a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// 401 with WWW-Authenticate, answered in Authorization: the request
    /// is for us (REGISTER).
    Www,
    /// 407 with Proxy-Authenticate, answered in Proxy-Authorization: the
    /// request goes on to someone else (INVITE).
    Proxy,
}

impl Challenge {
    fn status(self) -> u16 {
        match self {
            Challenge::Www => 401,
            Challenge::Proxy => 407,
        }
    }

    fn offer_header(self) -> &'static str {
        match self {
            Challenge::Www => "WWW-Authenticate",
            Challenge::Proxy => "Proxy-Authenticate",
        }
    }

    fn answer_header(self) -> &'static str {
        match self {
            Challenge::Www => "Authorization",
            Challenge::Proxy => "Proxy-Authorization",
        }
    }
}

/// A request to authenticate, with what the caller has already read of it.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The request.
    pub request: &'a Request,
    /// The user part and host of the address the request speaks for (the
    /// To of a REGISTER, the From of an INVITE).
    pub user: &'a str,
    /// See `user`.
    pub host: &'a str,
    /// The kind of challenge it gets.
    pub challenge: Challenge,
    /// The Request-URI the credentials must name; `None` when the request
    /// is for us, however a client spells it (REGISTER).
    pub request_uri: Option<&'a str>,
    /// The To tag of the answer.
    pub tag: &'a str,
    /// Where the request came from, for throttling.
    pub source: IpAddr,
    /// It came over a WebSocket: from a browser's SIP stack (JsSIP,
    /// SIP.js), which speaks MD5 only and answers the last challenge, so
    /// MD5 comes last in its challenges whatever the configured order.
    pub websocket: bool,
}

/// What the gate decided.
#[derive(Debug)]
pub enum GateOutcome {
    /// The credentials verified: `username` of `tenant`, whose extension
    /// number is `number`; `user` is the claimed user part without any
    /// `-CODE` suffix.
    Passed {
        /// The tenant the request addressed.
        tenant: Arc<Tenant>,
        /// The digest username that verified.
        username: String,
        /// The extension that username belongs to.
        number: String,
        /// The claimed user part, as the tenant reads it.
        user: String,
    },
    /// Answer with this (a challenge).
    Answer(Response),
    /// Answer nothing: the source failed too often, too fast.
    Silence,
}

/// Nonces and failure counts.
#[derive(Debug)]
pub struct DigestGate {
    auth: DigestAuthenticator,
    throttle: Throttle,
    block_secs: u64,
}

impl DigestGate {
    /// A gate sealing nonces with `key`.
    pub fn new(key: [u8; 32], config: &SecurityConfig) -> DigestGate {
        DigestGate {
            auth: DigestAuthenticator::new(key, config.nonce_ttl_secs, TRACKED_NONCES)
                .with_algorithms(&config.digest_algorithms_parsed()),
            throttle: Throttle::new(config),
            block_secs: config.block_secs,
        }
    }

    /// Whether anything from `ip` is looked at (blocked sources are
    /// ignored).
    pub fn admits(&mut self, now: Instant, ip: IpAddr) -> bool {
        self.throttle.admit(now, ip) == Admission::Allow
    }

    /// Forgets sources whose failures are old.
    pub fn evict(&mut self, now: Instant) {
        self.throttle.evict(now);
    }

    /// Authenticates `claim`; `nonce` is fresh randomness for a challenge.
    pub fn check(
        &mut self,
        now: Instant,
        wall: SystemTime,
        nonce: [u8; 16],
        tenants: &TenantTable,
        claim: Claim<'_>,
    ) -> GateOutcome {
        let addressed = tenants.address(claim.user, claim.host);
        let realm = addressed
            .as_ref()
            .map(|a| a.tenant.domain.clone())
            .unwrap_or_else(|| claim.host.to_ascii_lowercase());
        let unix = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let client = client_key(claim.source);
        let answers = claim
            .request
            .headers
            .get_all(claim.challenge.answer_header());
        let verdict = match DigestResponse::select(answers, &realm) {
            Err(verdict) => verdict,
            Ok(digest) => {
                // Only the tenant the address names is searched, so a user
                // of one tenant never authenticates into another.
                let credentials = addressed
                    .as_ref()
                    .and_then(|a| a.tenant.credentials.get(digest.username()))
                    .map(|(_, creds)| creds);
                let method = claim.request.method.as_str();
                let target = DigestRequest {
                    realm: &realm,
                    method: &method,
                    request_uri: claim.request_uri,
                    client: &client,
                };
                self.auth.verify(unix, &target, &digest, credentials)
            }
        };
        let (stale, failed) = match verdict {
            Verdict::Authenticated { username, .. } => {
                // Credentials come from the addressed tenant alone.
                if let Some(addressed) = addressed
                    && let Some((number, _)) = addressed.tenant.credentials.get(&username)
                {
                    return GateOutcome::Passed {
                        number: number.clone(),
                        tenant: addressed.tenant.clone(),
                        username,
                        user: addressed.user,
                    };
                }
                (false, true)
            }
            Verdict::NoCredentials => (false, false),
            Verdict::Stale => (true, false),
            // Only a wrong password with a fresh nonce issued to this very
            // address counts: its sender received our challenge there, so
            // nobody can spoof an address into being blocked. Malformed
            // answers, foreign or expired nonces and replays are challenged
            // again and counted for nobody.
            Verdict::Rejected(reason) => (false, reason == RejectReason::BadCredentials),
        };
        if failed {
            let (reply, blocked) = self.throttle.record_failure(now, claim.source);
            if blocked {
                warn!(ip = %claim.source, secs = self.block_secs,
                    "source blocked after repeated authentication failures");
            }
            if reply == FailureReply::Suppress {
                return GateOutcome::Silence;
            }
        }
        let status = claim.challenge.status();
        let mut response = Response::for_request(claim.request, status, Some(claim.tag));
        let mut values = self.auth.challenge(unix, nonce, &realm, &client, stale);
        if claim.websocket {
            // A stable sort: the others keep their order.
            values.sort_by_key(|v| v.ends_with("algorithm=MD5") || v.contains("algorithm=MD5,"));
        }
        for value in values {
            response.headers.push(claim.challenge.offer_header(), value);
        }
        GateOutcome::Answer(response)
    }
}

/// What a nonce is bound to: the source failures count against (an
/// address, an IPv6 /64).
fn client_key(ip: IpAddr) -> Vec<u8> {
    match source_of(ip) {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// Whether `peer` is a WebSocket flow.
pub(crate) fn is_websocket(peer: &Peer) -> bool {
    matches!(
        peer,
        Peer::Stream {
            kind: crate::peer::StreamKind::Ws | crate::peer::StreamKind::Wss,
            ..
        }
    )
}

/// Authenticates a request that speaks for its From (INVITE, SUBSCRIBE)
/// with a 407 challenge: returns the tenant and the extension whose
/// credentials verified, or answers the request itself (a challenge, 403
/// for credentials of an extension that is gone, or nothing to a
/// throttled source).
#[allow(clippy::too_many_arguments)]
pub(crate) fn authenticate(
    now: Instant,
    wall: SystemTime,
    sig: &mut Signalling,
    gate: &mut DigestGate,
    tenants: &TenantTable,
    key: ServerKey,
    request: &Request,
    peer: &Peer,
) -> Option<(Arc<Tenant>, Arc<Extension>)> {
    let from = request
        .headers
        .get("From")
        .and_then(|v| parse_name_addr(v).ok());
    let (user, host) = from
        .as_ref()
        .and_then(|f| f.uri.as_sip())
        .map(|u| (u.user().unwrap_or("").to_owned(), u.host().to_string()))
        .unwrap_or_default();
    let tag = request.stateless_tag();
    let claim = Claim {
        request,
        user: &user,
        host: &host,
        challenge: Challenge::Proxy,
        request_uri: Some(&request.uri),
        tag: &tag,
        source: peer.addr().ip(),
        websocket: is_websocket(peer),
    };
    let nonce = sig.random_bytes();
    match gate.check(now, wall, nonce, tenants, claim) {
        GateOutcome::Passed { tenant, number, .. } => {
            let Some(extension) = tenant.extensions.get(&number).cloned() else {
                let response = Response::for_request(request, 403, Some(&tag));
                sig.respond(now, key, response);
                return None;
            };
            Some((tenant, extension))
        }
        GateOutcome::Answer(response) => {
            sig.respond(now, key, response);
            None
        }
        GateOutcome::Silence => {
            sig.transactions.abandon(TransactionKey::Server(key));
            None
        }
    }
}
