//! The registrar (RFC 3261 §10.3): authenticates a REGISTER through the
//! [digest gate](crate::digest), checks that the authenticated user owns
//! the address of record, and applies the Contact changes to the
//! [`Location`] service.

pub mod location;
pub mod view;

use std::time::{Instant, SystemTime};

use edgepbx_sip::{Request, Response};

pub use location::{
    Aor, Binding, Change, ContactSpec, Contacts, Location, RegisterError, Registration,
    RemovalReason,
};

use crate::digest::{Challenge, Claim, DigestGate, GateOutcome};
use crate::peer::Peer;
use crate::tenants::TenantTable;
use crate::time::http_date;

/// What the registrar decided about one REGISTER.
#[derive(Debug)]
pub enum Outcome {
    /// Send this response; apply these binding changes.
    Answer(Response, Vec<Change>),
    /// Send nothing: the source is throttled.
    Silence,
}

/// Fresh randomness for one REGISTER: nonce material and a To tag.
#[derive(Debug, Clone, Copy)]
pub struct Entropy {
    /// Random bytes for a challenge's nonce.
    pub nonce: [u8; 16],
    /// Random value for the To tag.
    pub tag: u64,
}

/// Handles one REGISTER that arrived from `source`.
#[allow(clippy::too_many_arguments)]
pub fn register(
    now: Instant,
    wall: SystemTime,
    entropy: Entropy,
    tenants: &TenantTable,
    gate: &mut DigestGate,
    location: &mut Location,
    request: &Request,
    source: &Peer,
) -> Outcome {
    let tag = format!("{:016x}", entropy.tag);
    let respond = |status: u16| Response::for_request(request, status, Some(&tag));
    let plain = |status: u16| Outcome::Answer(respond(status), Vec::new());
    let Ok((user, host)) = view::aor(request) else {
        return plain(400);
    };
    let claim = Claim {
        request,
        user: &user,
        host: &host,
        challenge: Challenge::Www,
        request_uri: None,
        tag: &tag,
        source: source.addr().ip(),
        websocket: crate::digest::is_websocket(source),
    };
    let (tenant, owner, addressed_user) = match gate.check(now, wall, entropy.nonce, tenants, claim)
    {
        GateOutcome::Passed {
            tenant,
            number,
            user,
            ..
        } => (tenant, number, user),
        GateOutcome::Answer(response) => return Outcome::Answer(response, Vec::new()),
        GateOutcome::Silence => return Outcome::Silence,
    };
    // Authenticated: the user must own the address it registers.
    if tenant.resolve(&addressed_user).map(|e| &e.number) != Some(&owner) {
        return plain(403);
    }
    // Whatever a binding keeps is within what the store keeps, or the
    // REGISTER is refused here rather than accepted and lost later.
    let (contacts, expires, call_id) = match (
        view::contacts(request),
        view::expires(request),
        view::call_id(request),
    ) {
        (Ok(c), Ok(e), Ok(id)) => (c, e, id.to_owned()),
        _ => return plain(400),
    };
    let registration = Registration {
        aor: Aor {
            tenant: tenant.code.clone(),
            extension: owner,
        },
        call_id,
        cseq: view::cseq(request),
        expires,
        contacts,
        source: source.clone(),
        user_agent: view::user_agent(request),
        max_bindings: tenant.max_bindings,
    };
    match location.register(now, wall, &registration) {
        Ok(changes) => {
            let mut response = respond(200);
            for b in location.bindings(&registration.aor) {
                response
                    .headers
                    .push("Contact", view::contact_value(b, now));
            }
            response.headers.push("Date", http_date(wall));
            Outcome::Answer(response, changes)
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
            Outcome::Answer(response, Vec::new())
        }
    }
}
