//! The registrar (RFC 3261 §10.3): authenticates a REGISTER with digest
//! (RFC 7616/8760), checks that the authenticated user owns the address
//! of record, and applies the Contact changes to the [`Location`] service.
//!
//! An unknown user, an unknown tenant and a wrong password all get the same
//! 401 challenge (only nonce, opaque and tag differ), so responses never
//! reveal which users exist.

pub mod bindings;
pub mod view;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgepbx_sip::auth::{DigestAuthenticator, DigestRequest, DigestResponse, Verdict};
use edgepbx_sip::{Request, Response};

pub use bindings::{Aor, Binding, Change, Location, RegisterError, Registration, RemovalReason};

use crate::directory::Directory;
use crate::transport::Peer;

/// What the registrar decided about one REGISTER.
#[derive(Debug)]
pub struct Outcome {
    /// The response to send.
    pub response: Response,
    /// Binding changes to write behind and announce.
    pub changes: Vec<Change>,
    /// The request carried credentials that did not verify (counts towards
    /// throttling of its source).
    pub auth_failed: bool,
}

/// Everything the registrar reads besides the request.
pub struct Registrar<'a> {
    /// Tenants and credentials.
    pub directory: &'a Directory,
    /// Nonce issuing and checking.
    pub auth: &'a mut DigestAuthenticator,
    /// The bindings.
    pub location: &'a mut Location,
}

/// Fresh randomness for one request: nonce material and a To tag.
#[derive(Debug, Clone, Copy)]
pub struct Entropy {
    /// Random bytes for the nonce.
    pub nonce: [u8; 16],
    /// Random value for the To tag.
    pub tag: u64,
}

impl Registrar<'_> {
    /// Handles one REGISTER that arrived from `source`.
    pub fn handle(
        &mut self,
        now: Instant,
        wall: SystemTime,
        entropy: Entropy,
        request: &Request,
        source: &Peer,
    ) -> Outcome {
        let tag = format!("{:016x}", entropy.tag);
        let respond = |status: u16| Response::for_request(request, status, Some(&tag));
        let plain = |status: u16| Outcome {
            response: respond(status),
            changes: Vec::new(),
            auth_failed: false,
        };
        let Ok((user, host)) = view::aor(request) else {
            return plain(400);
        };
        let addressed = self.directory.address(&user, &host);
        let realm = addressed
            .as_ref()
            .map(|a| a.tenant.domain.clone())
            .unwrap_or_else(|| host.to_ascii_lowercase());
        let unix = wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let tenant = addressed.as_ref().map(|a| a.tenant.clone());
        let verdict = match DigestResponse::select(request.headers.get_all("Authorization"), &realm)
        {
            Err(verdict) => verdict,
            Ok(digest) => {
                // Only the tenant the address names is searched, so a user
                // of one tenant never authenticates into another.
                let credentials = tenant
                    .as_ref()
                    .and_then(|t| t.credentials.get(digest.username()))
                    .map(|(_, creds)| creds);
                let target = DigestRequest {
                    realm: &realm,
                    method: "REGISTER",
                    // The registrar is the target, however a client spells it.
                    request_uri: None,
                };
                self.auth.verify(unix, &target, &digest, credentials)
            }
        };
        let challenge = |this: &mut Self, stale: bool, failed: bool| {
            let mut response = respond(401);
            for value in this.auth.challenge(unix, entropy.nonce, &realm, stale) {
                response.headers.push("WWW-Authenticate", value);
            }
            Outcome {
                response,
                changes: Vec::new(),
                auth_failed: failed,
            }
        };
        let username = match verdict {
            Verdict::Authenticated { username, .. } => username,
            Verdict::NoCredentials => return challenge(self, false, false),
            Verdict::Stale => return challenge(self, true, false),
            Verdict::Rejected(_) => return challenge(self, false, true),
        };
        // Authenticated: the user must own the address it registers.
        let (Some(addressed), Some(tenant)) = (addressed, tenant) else {
            return plain(403);
        };
        let owner = tenant.credentials.get(&username).map(|(number, _)| number);
        let target = tenant.resolve(&addressed.user).map(|e| &e.number);
        let extension = match (owner, target) {
            (Some(owner), Some(target)) if owner == target => owner.clone(),
            _ => return plain(403),
        };
        let (contacts, expires) = match (view::contacts(request), view::expires(request)) {
            (Ok(c), Ok(e)) => (c, e),
            _ => return plain(400),
        };
        let registration = Registration {
            aor: Aor {
                tenant: tenant.code.clone(),
                extension,
            },
            call_id: request
                .headers
                .get("Call-ID")
                .unwrap_or_default()
                .to_owned(),
            cseq: view::cseq(request),
            expires,
            contacts,
            source: source.clone(),
            user_agent: request
                .headers
                .get("User-Agent")
                .map(|ua| ua.chars().take(128).collect()),
            max_bindings: tenant.max_bindings,
        };
        match self.location.register(now, wall, &registration) {
            Ok(changes) => {
                let mut response = respond(200);
                for b in self.location.bindings(&registration.aor) {
                    response
                        .headers
                        .push("Contact", view::contact_value(b, now));
                }
                response.headers.push("Date", view::http_date(wall));
                Outcome {
                    response,
                    changes,
                    auth_failed: false,
                }
            }
            Err(error) => {
                let mut response = match error {
                    RegisterError::IntervalTooBrief { min } => {
                        let mut r = respond(423);
                        r.headers.push("Min-Expires", min.to_string());
                        r
                    }
                    RegisterError::InvalidStar => respond(400),
                    RegisterError::OutOfOrder { .. } => respond(500),
                    RegisterError::TooManyBindings { .. } => respond(403),
                };
                if let RegisterError::TooManyBindings { .. } = error {
                    response.reason = "Too Many Registered Contacts".into();
                }
                Outcome {
                    response,
                    changes: Vec::new(),
                    auth_failed: false,
                }
            }
        }
    }
}
