//! Registration with carriers: each trunk that is configured to register
//! keeps a binding at its carrier (RFC 3261 §10.2), answering the carrier's
//! digest challenge, refreshing before it expires and retrying after a
//! failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgepbx_sip::auth::authorized;
use edgepbx_sip::transaction::ClientKey;
use edgepbx_sip::{Method, Request, Response};
use tracing::{info, warn};

use crate::peer::Peer;
use crate::signalling::Signalling;
use crate::tenants::{TenantTable, TrunkLink};

/// Registration interval asked of carriers, seconds.
const EXPIRES_SECS: u64 = 300;
/// Longest registration a carrier's answer is taken for, seconds.
const MAX_GRANTED_SECS: u64 = 86_400;
/// Wait before trying again after a failure.
const RETRY: Duration = Duration::from_secs(30);

/// (tenant code, trunk name).
type TrunkId = (String, String);

/// The registration of one trunk.
#[derive(Debug)]
struct Registration {
    link: Arc<TrunkLink>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// When the next REGISTER is due (while none is in flight).
    next_at: Instant,
    /// The REGISTER in flight.
    in_flight: Option<(ClientKey, Request)>,
    /// The REGISTER in flight already answers a challenge.
    answered_challenge: bool,
    registered: bool,
}

/// Every registering trunk's state.
#[derive(Debug, Default)]
pub(crate) struct TrunkRegistrations {
    by_trunk: HashMap<TrunkId, Registration>,
    by_key: HashMap<ClientKey, TrunkId>,
}

impl TrunkRegistrations {
    /// Starts registrations that are due, and forgets trunks that are
    /// gone from the configuration.
    pub fn housekeeping(&mut self, now: Instant, sig: &mut Signalling, tenants: &TenantTable) {
        let wanted: Vec<(TrunkId, Arc<TrunkLink>)> = tenants
            .tenants()
            .flat_map(|t| t.trunks.iter().map(move |l| (t, l)))
            .filter(|(_, l)| l.trunk.register && l.addr.is_some())
            .map(|(t, l)| ((t.code.clone(), l.trunk.name.clone()), l.clone()))
            .collect();
        self.by_trunk
            .retain(|id, _| wanted.iter().any(|(w, _)| w == id));
        let mut due = Vec::new();
        for (id, link) in wanted {
            if !self.by_trunk.contains_key(&id) {
                let fresh = Registration {
                    link: link.clone(),
                    call_id: sig.call_id(),
                    from_tag: sig.tag(),
                    cseq: 0,
                    next_at: now,
                    in_flight: None,
                    answered_challenge: false,
                    registered: false,
                };
                self.by_trunk.insert(id.clone(), fresh);
            }
            let Some(reg) = self.by_trunk.get_mut(&id) else {
                continue;
            };
            // A changed trunk, or a carrier that moved, registers again
            // with the new settings or at the new address.
            if !Arc::ptr_eq(&reg.link, &link)
                && (reg.link.trunk != link.trunk || reg.link.addr != link.addr)
            {
                reg.link = link;
                reg.next_at = now;
            }
            if reg.in_flight.is_none() && now >= reg.next_at {
                due.push(id);
            }
        }
        for id in due {
            self.send_register(now, sig, &id);
        }
    }

    fn send_register(&mut self, now: Instant, sig: &mut Signalling, id: &TrunkId) {
        let Some(reg) = self.by_trunk.get(id) else {
            return;
        };
        let Some(addr) = reg.link.addr else { return };
        let peer = Peer::Udp(addr);
        let link = reg.link.clone();
        let (call_id, from_tag, cseq) = (reg.call_id.clone(), reg.from_tag.clone(), reg.cseq + 1);
        let user = link.trunk.username.clone().unwrap_or_default();
        let host = link.host_name().to_owned();
        let contact = sig.sent_by(&peer);
        let mut request = Request {
            method: Method::from_token("REGISTER"),
            uri: format!("sip:{}", link.trunk.host),
            headers: Default::default(),
            body: Vec::new(),
        };
        let h = &mut request.headers;
        h.push("Max-Forwards", "70");
        h.push("From", format!("<sip:{user}@{host}>;tag={from_tag}"));
        h.push("To", format!("<sip:{user}@{host}>"));
        h.push("Call-ID", call_id);
        h.push("CSeq", format!("{cseq} REGISTER"));
        h.push("Contact", format!("<sip:{user}@{contact}>"));
        h.push("Expires", EXPIRES_SECS.to_string());
        h.push("User-Agent", concat!("edgepbx/", env!("CARGO_PKG_VERSION")));
        self.start_register(now, sig, id, request, false);
    }

    /// Sends `request` (without Via) as the trunk's REGISTER in flight.
    fn start_register(
        &mut self,
        now: Instant,
        sig: &mut Signalling,
        id: &TrunkId,
        request: Request,
        answer: bool,
    ) {
        let Some(addr) = self.by_trunk.get(id).and_then(|r| r.link.addr) else {
            return;
        };
        let peer = Peer::Udp(addr);
        let plain = request.clone();
        let cseq = edgepbx_sip::grammar::parse_cseq(request.headers.get("CSeq").unwrap_or(""))
            .map_or(0, |c| c.seq);
        let mut request = request;
        let started = sig.send_request(now, &mut request, &peer);
        let Some(reg) = self.by_trunk.get_mut(id) else {
            return;
        };
        reg.cseq = cseq;
        reg.answered_challenge = answer;
        match started {
            Some(key) => {
                reg.in_flight = Some((key, plain));
                self.by_key.insert(key, id.clone());
            }
            None => {
                warn!(tenant = %id.0, trunk = %id.1, "REGISTER not sent");
                reg.next_at = now + RETRY;
            }
        }
    }

    /// Whether `key` is a trunk's REGISTER.
    pub fn owns(&self, key: ClientKey) -> bool {
        self.by_key.contains_key(&key)
    }

    /// A final response (or `None`: a timeout or transport error) to a
    /// trunk's REGISTER.
    pub fn handle_response(
        &mut self,
        now: Instant,
        sig: &mut Signalling,
        key: ClientKey,
        response: Option<Response>,
    ) {
        let Some(id) = self.by_key.remove(&key) else {
            return;
        };
        let Some(reg) = self.by_trunk.get_mut(&id) else {
            return;
        };
        let Some((_, sent)) = reg.in_flight.take() else {
            return;
        };
        let status = response.as_ref().map_or(408, |r| r.status);
        match (status, &response) {
            (200..=299, Some(ok)) => {
                // A carrier's answer is bounded: refreshing at least daily,
                // at most every 22 s.
                let granted = granted_expiry(ok)
                    .unwrap_or(EXPIRES_SECS)
                    .clamp(30, MAX_GRANTED_SECS);
                reg.next_at = now + Duration::from_secs(granted * 3 / 4);
                if !reg.registered {
                    info!(tenant = %id.0, trunk = %id.1, expires = granted, "trunk registered");
                }
                reg.registered = true;
            }
            (401 | 407, Some(challenge)) if !reg.answered_challenge => {
                let link = reg.link.clone();
                let (Some(user), Some(password)) = (&link.trunk.username, &link.trunk.password)
                else {
                    warn!(tenant = %id.0, trunk = %id.1, "the carrier asks for credentials the trunk has not");
                    reg.next_at = now + RETRY;
                    return;
                };
                let cnonce = sig.tag();
                match authorized(&sent, challenge, user, password, &cnonce) {
                    Some(next) => self.start_register(now, sig, &id, next, true),
                    None => {
                        warn!(tenant = %id.0, trunk = %id.1, "the carrier's challenge cannot be answered");
                        reg.next_at = now + RETRY;
                    }
                }
            }
            _ => {
                warn!(tenant = %id.0, trunk = %id.1, status, "trunk registration failed; retrying");
                reg.registered = false;
                reg.next_at = now + RETRY;
            }
        }
    }
}

/// The expiry the carrier granted: the Expires header or our Contact's
/// `expires` parameter.
fn granted_expiry(ok: &Response) -> Option<u64> {
    if let Some(v) = ok.headers.get("Expires") {
        return v.trim().parse().ok();
    }
    ok.headers.get_all("Contact").find_map(|c| {
        c.split(';')
            .find_map(|p| p.trim().strip_prefix("expires="))
            .and_then(|v| v.trim().parse().ok())
    })
}
