//! Calls edgepbx answers itself: voicemail, reached by the policy's
//! `voicemail` step or by the mailbox codes (`*97` one's own mailbox,
//! `*98` any mailbox of the tenant).
//!
//! The caller's offer is answered with one G.711 codec on the A side of a
//! media slot (a caller that offered nothing is offered G.711 in the 2xx
//! and answers in its ACK); the driver runs the media endpoint and the
//! voicemail session there ([`MediaCommand::Serve`]). Inside the dialog, INFO key presses go
//! to the session ([`MediaCommand::Key`]), a re-INVITE or UPDATE is
//! answered with the same media (an UPDATE without a description, a
//! session timer's refresh, just with 200), BYE ends the call and the
//! driver stops the session with the relay's `Stop`. When the session is
//! over, the driver says so and the caller gets a BYE.

use std::time::Instant;

use edgepbx_media::answer::{Negotiated, answer, negotiate, offer};
use edgepbx_media::dtmf::digit_of_info;
use edgepbx_media::relay::Side;
use edgepbx_media::sdp::SessionDescription;
use edgepbx_sip::transaction::ServerKey;
use edgepbx_sip::{Request, Response};
use tracing::{debug, info};

use super::setup::is_sdp;
use super::{ALLOW, Call, Calls, Cx, EndCause, cseq_of};
use crate::output::{MediaCommand, Output, Served, Service};
use crate::routing::Outcome;

/// The code that calls one's own mailbox.
pub(super) const OWN_MAILBOX: &str = "*97";
/// The code that calls any mailbox of the tenant.
pub(super) const ANY_MAILBOX: &str = "*98";

impl Calls {
    /// The policy chose the voicemail of `mailbox` for the call.
    pub(super) fn send_to_voicemail(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        mailbox: String,
    ) {
        let busy = call
            .history
            .last()
            .is_some_and(|a| a.outcome == Outcome::Busy);
        info!(call = call.id, %mailbox, busy, "to voicemail");
        self.serve(now, cx, call, Service::Deposit { mailbox, busy });
    }

    /// Answers the call with edgepbx's own media, for `service`. A caller
    /// that offered nothing gets edgepbx's offer in the 2xx, and the
    /// service starts when its ACK brings the answer.
    pub(super) fn serve(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        service: Service,
    ) {
        let negotiated = match call.offer.as_ref().map(negotiate) {
            Some(Ok(negotiated)) => Some(negotiated),
            Some(Err(_)) => return self.end(now, cx, call, EndCause::Rejected(488)),
            None => None,
        };
        // A caller answered already (connected elsewhere meanwhile) leaves
        // the relay it was on.
        self.release_media(cx, call);
        let Some(slot) = self.media.take(cx.sig) else {
            info!(call = call.id, "no media ports are free for voicemail");
            return self.end(now, cx, call, EndCause::Rejected(503));
        };
        call.media = Some(slot);
        let ip = cx.sig.media_ip(&call.a_peer);
        let session_id = cx.sig.random() & 0x7fff_ffff;
        // A browser is answered by a WebRTC leg in front of the endpoint,
        // once: it has no way to take a new leg in the same call.
        if call.browser_offer.is_some() {
            let Some(negotiated) = negotiated.filter(|_| call.a.is_none()) else {
                return self.end(now, cx, call, EndCause::Rejected(488));
            };
            let Some((answer, leg)) = self.answer_browser_for_service(now, cx, call, &negotiated)
            else {
                return self.end(now, cx, call, EndCause::Rejected(488));
            };
            self.start_service(cx, call, negotiated, service);
            cx.sig.push(Output::Media(MediaCommand::WebRtc {
                call: call.id,
                side: Side::A,
                leg,
            }));
            call.served = SessionDescription::parse(&answer).ok();
            return self.answer_caller(now, cx, call, Some(answer), None);
        }
        let description = match (call.offer.clone(), negotiated) {
            (Some(their_offer), Some(negotiated)) => {
                self.start_service(cx, call, negotiated, service);
                match answer(&their_offer, ip, slot.a_port, session_id) {
                    Ok(answered) => answered.description,
                    Err(_) => return self.end(now, cx, call, EndCause::Rejected(488)),
                }
            }
            _ => {
                call.awaiting_answer = Some(service);
                offer(ip, slot.a_port, session_id)
            }
        };
        call.served = Some(description.clone());
        if call.a.is_some() {
            call.rerouting = false;
            self.reoffer_caller(now, cx, call, description.to_bytes());
        } else {
            self.answer_caller(now, cx, call, Some(description.to_bytes()), None);
        }
    }

    /// Hands the call to the driver's voicemail on its slot.
    fn start_service(
        &mut self,
        cx: &mut Cx<'_>,
        call: &mut Call,
        negotiated: Negotiated,
        service: Service,
    ) {
        let Some(slot) = call.media else {
            return;
        };
        call.caller_codec = Some(negotiated.codec);
        cx.sig
            .push(Output::Media(MediaCommand::Serve(Box::new(Served {
                call: call.id,
                uid: call.uid.clone(),
                tenant: call.tenant.code.clone(),
                caller: call.caller.number.clone(),
                caller_name: call.caller.name.clone(),
                slot,
                codec: negotiated.codec,
                telephone_event: negotiated.telephone_event,
                party: negotiated.party,
                signalling: call.a_peer.addr().ip(),
                service,
            }))));
    }

    /// The ACK of a served call's 2xx: for a caller that offered nothing,
    /// it carries the answer to edgepbx's offer, and the service starts.
    pub(super) fn served_ack(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        body: &[u8],
    ) {
        let Some(service) = call.awaiting_answer.take() else {
            return;
        };
        let answered = SessionDescription::parse(body).ok();
        match answered.as_ref().map(negotiate) {
            Some(Ok(negotiated)) => {
                // The caller's side as an offer would show it, should the
                // call be connected elsewhere later.
                call.offer = answered;
                self.start_service(cx, call, negotiated, service);
            }
            _ => {
                info!(
                    call = call.id,
                    "the caller's ACK brought no answer voicemail can speak"
                );
                self.end(now, cx, call, EndCause::Failure);
            }
        }
    }

    /// A re-INVITE, UPDATE or INFO from the caller of a served call.
    pub(super) fn served_request(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        key: ServerKey,
        request: &Request,
    ) {
        let method = request.method.as_str().to_ascii_uppercase();
        if method == "INFO" {
            let content_type = request.headers.get("Content-Type").unwrap_or("");
            // Other INFO bodies (a video picture request) change nothing.
            if let Some(key) = digit_of_info(content_type, &request.body) {
                debug!(call = call.id, %key, "key pressed (INFO)");
                cx.sig
                    .push(Output::Media(MediaCommand::Key { call: call.id, key }));
            }
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 200, None));
        }
        let description = if request.body.is_empty() {
            // A refresh without an offer: the same media, offered again
            // (re-INVITE) or nothing to say (UPDATE).
            (method == "INVITE").then(|| bump(call)).flatten()
        } else if is_sdp(request) {
            match self.reanswer(cx, call, &request.body) {
                Some(description) => Some(description),
                None => {
                    return cx
                        .sig
                        .respond(now, key, Response::for_request(request, 488, None));
                }
            }
        } else {
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 415, None));
        };
        let mut ok = Response::for_request(request, 200, None);
        ok.headers.push("Contact", call.a_contact.clone());
        ok.headers.push("Allow", ALLOW);
        if let Some(description) = description {
            ok.headers.push("Content-Type", "application/sdp");
            ok.body = description.to_bytes();
        }
        if method == "INVITE" {
            let seq = cseq_of(request);
            self.send_ok(now, cx, call, key, Side::A, ok, seq, None);
        } else {
            cx.sig.respond(now, key, ok);
        }
    }

    /// Answers a new offer of the caller on the same port: its address
    /// may have moved, its direction changed (hold).
    fn reanswer(
        &mut self,
        cx: &mut Cx<'_>,
        call: &mut Call,
        body: &[u8],
    ) -> Option<SessionDescription> {
        let offer = SessionDescription::parse(body).ok()?;
        let slot = call.media?;
        let current = call.served.as_ref()?;
        let ip = cx.sig.media_ip(&call.a_peer);
        let session_id = current.origin.session_id.parse().unwrap_or(1);
        let mut answered = answer(&offer, ip, slot.a_port, session_id).ok()?;
        answered.description.origin.session_version = current.origin.session_version + 1;
        if let Some(address) = answered.negotiated.party {
            cx.sig.push(Output::Media(MediaCommand::Announce {
                call: call.id,
                side: Side::A,
                address,
                signalling: call.a_peer.addr().ip(),
            }));
        }
        call.held = offer
            .media
            .iter()
            .find(|m| m.kind == "audio")
            .is_some_and(|m| m.direction() != edgepbx_media::sdp::Direction::SendRecv);
        call.served = Some(answered.description.clone());
        Some(answered.description)
    }

    /// The service of a served call is over: the caller is hung up.
    pub fn handle_service_done(&mut self, now: Instant, cx: &mut Cx<'_>, call: u64) {
        let Some(mut call) = self.take(call) else {
            return;
        };
        if call.served.is_some() {
            self.end(now, cx, &mut call, EndCause::HangUp(Side::B));
        }
        self.put_back(call);
    }
}

/// Our description again, with a new version (RFC 3264 §8).
fn bump(call: &mut Call) -> Option<SessionDescription> {
    let description = call.served.as_mut()?;
    description.origin.session_version += 1;
    Some(description.clone())
}
