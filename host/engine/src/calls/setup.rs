//! A new INVITE outside any dialog: a carrier's call comes in on a trunk
//! (recognised by its address) for one of the tenant's numbers; everyone
//! else authenticates through the digest gate (RFC 3261 §22.3, 407). Then
//! the tenant's limits, Max-Forwards and the offer are checked, the call
//! is created and its first routing decision asked.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use edgepbx_media::anchor::{RELAYED_CODECS, anchor};
use edgepbx_media::sdp::SessionDescription;
use edgepbx_model::{MAX_NUMBER_LEN, is_dialable};
use edgepbx_sip::grammar::{Uri, parse_name_addr};
use edgepbx_sip::transaction::ServerKey;
use edgepbx_sip::{Request, Response};
use tracing::{debug, info, warn};

use super::pickup::{Picker, Pickup};
use super::served::{ANY_MAILBOX, OWN_MAILBOX};
use super::{Call, Calls, Cx, Parties};
use crate::digest::{DigestGate, authenticate};
use crate::events::{LegRole, LegState};
use crate::output::Service;
use crate::peer::Peer;
use crate::registrar::Aor;
use crate::routing::{Caller, CallerKind};
use crate::tenants::{Tenant, TenantTable};

impl Calls {
    /// A new INVITE outside any dialog.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_invite(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        gate: &mut DigestGate,
        tenants: &TenantTable,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
    ) {
        let respond = |cx: &mut Cx<'_>, status: u16| {
            let r = Response::for_request(request, status, Some(&request.stateless_tag()));
            cx.sig.respond(now, key, r);
        };
        let carriers = tenants.trunks_at(peer.addr().ip());
        // A carrier's call: the trunk (of whichever tenant) that has the
        // DID takes it.
        let (tenant, caller, number, service) = if !carriers.is_empty() {
            let found = inbound_did(request).and_then(|did| {
                carriers.iter().find_map(|(tenant, link)| {
                    link.route(&did).map(|n| (tenant, link, n.to_owned()))
                })
            });
            let Some((tenant, link, number)) = found else {
                return respond(cx, 404);
            };
            let mut caller = external_caller(request, &link.trunk.name);
            if let Some(name) = tenant.contact_names.get(&caller.number) {
                caller.name = Some(name.clone());
            }
            (tenant.clone(), caller, number, None)
        } else {
            let Some((tenant, extension)) =
                authenticate(now, cx.wall, cx.sig, gate, tenants, key, request, peer)
            else {
                return;
            };
            let caller = Caller {
                number: extension.number.clone(),
                name: Some(extension.name.clone()).filter(|n| !n.is_empty()),
                kind: CallerKind::Internal,
                source: peer.addr().to_string(),
            };
            let Some(number) = dialled_number(request) else {
                return respond(cx, 404);
            };
            if let Some(pickup) = Pickup::of(request, &number, &tenant) {
                let picker = Picker {
                    request,
                    key,
                    peer,
                    aor: Aor {
                        tenant: tenant.code.clone(),
                        extension: extension.number.clone(),
                    },
                };
                return self.pick_up(now, cx, &tenant, picker, pickup);
            }
            let service = match number.as_str() {
                OWN_MAILBOX => Some(Service::Retrieve {
                    own: Some(extension.number.clone()),
                }),
                ANY_MAILBOX => Some(Service::Retrieve { own: None }),
                _ => None,
            };
            (tenant, caller, number, service)
        };
        // A number the tenant does not have goes to the policy as external
        // (through the trunk) or unknown (the built-in policy answers 404;
        // a tenant's policy may know better). Calling out is subject to the
        // caller's allowed destinations.
        if service.is_none() && !tenant.is_internal(&number) && tenant.outbound_trunk().is_some() {
            let allowed = tenant
                .resolve(&caller.number)
                .is_none_or(|e| e.settings.allowed_destinations.permits(&number));
            if !allowed {
                info!(tenant = %tenant.code, caller = %caller.number, %number,
                    "destination not allowed for this extension");
                return respond(cx, 403);
            }
        }
        let max_forwards = request
            .headers
            .get("Max-Forwards")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(70);
        if max_forwards == 0 {
            return respond(cx, 483);
        }
        let busy = self.per_tenant.get(&tenant.code).copied().unwrap_or(0);
        let limit = tenant.max_calls.unwrap_or(self.config.max_calls_per_tenant);
        if busy >= limit {
            warn!(tenant = %tenant.code, "tenant at its limit of concurrent calls");
            return respond(cx, 503);
        }
        let offer = match sdp_body(request) {
            Ok(offer) => offer,
            Err(status) => return respond(cx, status),
        };
        // A browser's offer is checked as the plain RTP the other party
        // will see.
        let checked = offer.as_ref().map(|o| {
            if edgepbx_media::webrtc::is_webrtc(o) {
                edgepbx_media::webrtc::plain(o)
            } else {
                o.clone()
            }
        });
        if let Some(offer) = &checked
            && let Err(error) = anchor(offer, IpAddr::from([0, 0, 0, 0]), 0, RELAYED_CODECS)
        {
            debug!(%error, "offer refused");
            let mut r = Response::for_request(request, 488, Some(&request.stateless_tag()));
            r.headers
                .push("Warning", format!("304 edgepbx \"{error}\""));
            return cx.sig.respond(now, key, r);
        }
        self.start(
            now, cx, key, request, peer, tenant, caller, number, offer, service,
        );
    }

    /// Creates the call, answers 100 and asks the first decision (or, for
    /// a mailbox code, answers it with the voicemail `service`).
    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
        tenant: Arc<Tenant>,
        caller: Caller,
        number: String,
        offer: Option<SessionDescription>,
        service: Option<Service>,
    ) {
        self.next_id += 1;
        let id = self.next_id;
        let caller_aor = (caller.kind == CallerKind::Internal).then(|| Aor {
            tenant: tenant.code.clone(),
            extension: caller.number.clone(),
        });
        if let Some(aor) = &caller_aor {
            self.adjust_line(cx.sig, aor, 0, 1);
        }
        // A browser's offer: the other party is offered its plain RTP
        // version; the browser is answered by a WebRTC leg.
        let browser_offer = offer
            .as_ref()
            .filter(|o| edgepbx_media::webrtc::is_webrtc(o))
            .map(|_| String::from_utf8_lossy(&request.body).into_owned());
        let offer = match (&browser_offer, offer) {
            (Some(_), Some(o)) => Some(edgepbx_media::webrtc::plain(&o)),
            (_, offer) => offer,
        };
        let mut call = Call {
            id,
            uid: cx.sig.tag(),
            tenant: tenant.clone(),
            caller,
            dialled: number,
            invite: request.clone(),
            server: Some(key),
            a_peer: peer.clone(),
            a_tag: cx.sig.tag(),
            a_contact: cx.sig.our_contact(peer),
            offer,
            browser_offer,
            browser_sdp: [None, None],
            telephone_event: None,
            presentation: None,
            history: Vec::new(),
            decisions: 0,
            step: None,
            branches: Vec::new(),
            unreachable: Vec::new(),
            next_branch: 0,
            early_media_sent: false,
            a: None,
            b: None,
            media: None,
            served: None,
            awaiting_answer: None,
            rerouting: false,
            caller_codec: None,
            pending_ok: [None, None],
            reinviting: [false, false],
            silent: [false, false],
            held: false,
            started: cx.wall,
            answered: None,
            decided_by: String::new(),
            parties: Parties {
                caller: caller_aor,
                callee: None,
            },
        };
        *self.per_tenant.entry(tenant.code.clone()).or_default() += 1;
        self.by_server.insert(key, id);
        info!(call = id, tenant = %tenant.code, caller = %call.caller.number,
            dialled = %call.dialled, "call started");
        cx.sig
            .respond(now, key, Response::for_request(request, 100, None));
        let caller_number = call.caller.number.clone();
        self.leg_event(
            cx,
            &call,
            LegRole::Caller,
            Some(caller_number),
            LegState::Calling,
            None,
        );
        match service {
            Some(service) => {
                call.decided_by = "mailbox code".to_owned();
                self.serve(now, cx, &mut call, service);
            }
            None => self.next_step(now, cx, &mut call),
        }
        self.put_back(call);
    }
}

/// The number a carrier's INVITE is for: the Request-URI's user part, or
/// the To's when the Request-URI names the registration (carriers differ).
fn inbound_did(request: &Request) -> Option<String> {
    let user_of = |uri: &str| -> Option<String> {
        let uri: Uri = uri.parse().ok()?;
        let user = uri.as_sip()?.user()?.to_owned();
        is_dialable(&user).then_some(user)
    };
    user_of(&request.uri).or_else(|| {
        let to = parse_name_addr(request.headers.get("To")?).ok()?;
        user_of(&to.uri.to_string())
    })
}

/// The caller of a carrier's INVITE, from its From.
fn external_caller(request: &Request, trunk: &str) -> Caller {
    let from = request
        .headers
        .get("From")
        .and_then(|v| parse_name_addr(v).ok());
    let number = from
        .as_ref()
        .and_then(|f| f.uri.as_sip().and_then(|u| u.user().map(str::to_owned)))
        .filter(|n| is_dialable(n))
        .unwrap_or_else(|| "anonymous".to_owned());
    let name = from
        .and_then(|f| f.display)
        .map(|d| d.chars().filter(|c| !c.is_control()).take(64).collect());
    Caller {
        number,
        name,
        kind: CallerKind::External,
        source: trunk.to_owned(),
    }
}

/// The number the caller dialled: the Request-URI's user part without a
/// `-TENANT` suffix, digits and `*#+` only.
fn dialled_number(request: &Request) -> Option<String> {
    let uri: Uri = request.uri.parse().ok()?;
    let user = uri.as_sip()?.user()?;
    let user = user.split(';').next().unwrap_or(user);
    let number = user.rsplit_once('-').map_or(user, |(n, _)| n);
    let valid = !number.is_empty()
        && number.len() <= MAX_NUMBER_LEN
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'));
    valid.then(|| number.to_owned())
}

/// Whether a request's body is a session description.
pub(super) fn is_sdp(request: &Request) -> bool {
    request
        .headers
        .get("Content-Type")
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/sdp"))
}

/// The offer of an INVITE: none, a valid description, or the status that
/// refuses it.
fn sdp_body(request: &Request) -> Result<Option<SessionDescription>, u16> {
    if request.body.is_empty() {
        return Ok(None);
    }
    if !is_sdp(request) {
        return Err(415);
    }
    SessionDescription::parse(&request.body)
        .map(Some)
        .map_err(|_| 400)
}

#[cfg(test)]
mod tests {
    use edgepbx_sip::Method;

    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut r = Request {
            method: Method::from_token("INVITE"),
            uri: uri.to_owned(),
            headers: Default::default(),
            body: Vec::new(),
        };
        for (name, value) in headers {
            r.headers.push(*name, *value);
        }
        r
    }

    #[test]
    fn dialled_numbers_are_digits_without_the_tenant_suffix() {
        for (uri, expected) in [
            ("sip:101@acme.test", Some("101")),
            ("sip:101-ACME@192.0.2.1", Some("101")),
            (
                "sip:+33612345678@acme.test;user=phone",
                Some("+33612345678"),
            ),
            ("sip:*97@acme.test", Some("*97")),
            ("sip:alice@acme.test", None),
            ("sip:acme.test", None),
            ("tel:101", None),
        ] {
            assert_eq!(
                dialled_number(&request(uri, &[])).as_deref(),
                expected,
                "{uri}"
            );
        }
    }

    #[test]
    fn a_carriers_did_comes_from_the_request_uri_or_the_to() {
        let by_uri = request("sip:0140000102@pbx.example", &[("To", "<sip:x@y>")]);
        assert_eq!(inbound_did(&by_uri).as_deref(), Some("0140000102"));
        let by_to = request(
            "sip:acme-trunk@192.0.2.1:5060",
            &[("To", "<sip:0140000102@carrier.example>")],
        );
        assert_eq!(inbound_did(&by_to).as_deref(), Some("0140000102"));
    }
}
