//! Requests inside a call's dialogs (RFC 3261 §12.2): BYE ends the call,
//! OPTIONS is answered, re-INVITE, UPDATE and INFO are relayed to the
//! other party with their descriptions anchored, and the answer goes back.
//! ACKs of the 2xx we sent stop their retransmission, and carry the answer
//! of an offerless INVITE on to the other side.

use std::sync::Arc;
use std::time::Instant;

use edgepbx_media::relay::Side;
use edgepbx_sip::dialog::{DialogError, DialogId};
use edgepbx_sip::grammar::parse_cseq;
use edgepbx_sip::transaction::ServerKey;
use edgepbx_sip::{Request, Response};

use super::setup::is_sdp;
use super::{ALLOW, Call, Calls, Cx, EndCause, PendingOk, Role, Timer, leg, side_index};
use crate::output::{MediaCommand, Output};

impl Calls {
    /// A request inside a dialog (To tag present).
    pub fn handle_in_dialog(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        key: ServerKey,
        request: &Request,
    ) {
        let found = DialogId::of_received(request).and_then(|id| self.by_dialog.get(&id).copied());
        let Some((id, side)) = found else {
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 481, None));
        };
        let Some(mut call) = self.take(id) else {
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 481, None));
        };
        self.dialog_request(now, cx, &mut call, side, key, request);
        self.put_back(call);
    }

    fn dialog_request(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        side: Side,
        key: ServerKey,
        request: &Request,
    ) {
        let press = if request.method.as_str().eq_ignore_ascii_case("INFO") {
            press_for_media(call, side, request)
        } else {
            None
        };
        let leg = match side {
            Side::A => call.a.as_mut(),
            Side::B => call.b.as_mut(),
        };
        let Some(leg) = leg else {
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 481, None));
        };
        if let Err(error) = leg.dialog.receive(request) {
            let status = match error {
                DialogError::OutOfOrder { .. } => 500,
                _ => 481,
            };
            return cx
                .sig
                .respond(now, key, Response::for_request(request, status, None));
        }
        let method = request.method.as_str().to_ascii_uppercase();
        match method.as_str() {
            "BYE" => {
                cx.sig
                    .respond(now, key, Response::for_request(request, 200, None));
                self.end(now, cx, call, EndCause::HangUp(side));
            }
            "OPTIONS" => {
                let mut ok = Response::for_request(request, 200, None);
                ok.headers.push("Allow", ALLOW);
                cx.sig.respond(now, key, ok);
            }
            "INVITE" | "UPDATE" | "INFO" if call.served.is_some() => {
                self.served_request(now, cx, call, key, request);
            }
            // A session refresh (RFC 4028; JsSIP sends one every 45 s) is
            // this leg's own business: answered here, media untouched.
            "UPDATE" if request.body.is_empty() => {
                let mut ok = Response::for_request(request, 200, None);
                ok.headers.push("Contact", leg.contact.clone());
                if let Some(expires) = request.headers.get("Session-Expires") {
                    ok.headers.push("Session-Expires", expires);
                    ok.headers.push("Require", "timer");
                }
                cx.sig.respond(now, key, ok);
            }
            "INFO" if press.is_some() => {
                cx.sig
                    .respond(now, key, Response::for_request(request, 200, None));
                if let Some(press) = press {
                    cx.sig.push(Output::Media(press));
                }
            }
            "INVITE" | "UPDATE" | "INFO" => self.relay_request(now, cx, call, side, key, request),
            _ => cx
                .sig
                .respond(now, key, Response::for_request(request, 405, None)),
        }
    }

    /// Passes a re-INVITE, UPDATE or INFO to the other party.
    fn relay_request(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        from: Side,
        key: ServerKey,
        request: &Request,
    ) {
        let to = from.other();
        let invite = request.method.is_invite();
        if invite && call.reinviting[side_index(from)] {
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 491, None));
        }
        let body = if request.body.is_empty() || !is_sdp(request) {
            Ok(request.body.clone())
        } else {
            self.anchor_for(cx, call, to, &request.body, true)
        };
        let body = match body {
            Ok(body) => body,
            Err(status) => {
                return cx
                    .sig
                    .respond(now, key, Response::for_request(request, status, None));
            }
        };
        let target_leg = match to {
            Side::A => call.a.as_mut(),
            Side::B => call.b.as_mut(),
        };
        let Some(target_leg) = target_leg else {
            return cx
                .sig
                .respond(now, key, Response::for_request(request, 491, None));
        };
        let mut out = target_leg
            .dialog
            .request(request.method.clone(), Some(&target_leg.contact));
        for name in ["Content-Type", "Supported", "Session-Expires", "Min-SE"] {
            if let Some(value) = request.headers.get(name) {
                out.headers.push(name, value);
            }
        }
        out.body = body;
        let peer = target_leg.peer.clone();
        match cx.sig.send_request(now, &mut out, &peer) {
            Some(client) => {
                if invite {
                    call.reinviting[side_index(to)] = true;
                }
                let role = Role::Relayed {
                    server: key,
                    request: Arc::new(request.clone()),
                    to,
                };
                self.by_client.insert(client, (call.id, role));
            }
            None => cx
                .sig
                .respond(now, key, Response::for_request(request, 500, None)),
        }
    }

    /// The answer to a request relayed to `to` goes back to the
    /// originator, its description anchored.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn relayed_response(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        server: ServerKey,
        request: &Request,
        to: Side,
        response: Response,
    ) {
        if response.status < 101 {
            return;
        }
        if response.status >= 200 && request.method.is_invite() {
            call.reinviting[side_index(to)] = false;
        }
        let from = to.other();
        let body = if response.body.is_empty() {
            Vec::new()
        } else {
            self.anchor_for(cx, call, from, &response.body, false)
                .unwrap_or_default()
        };
        let Some(contact) = leg(call, from).map(|l| l.contact.clone()) else {
            return;
        };
        let mut relayed = Response::for_request(request, response.status, None);
        relayed.reason = response.reason.clone();
        relayed.headers.push("Contact", contact);
        if !body.is_empty() {
            relayed.headers.push("Content-Type", "application/sdp");
            relayed.body = body;
        }
        if !(request.method.is_invite() && (200..300).contains(&response.status)) {
            return cx.sig.respond(now, server, relayed);
        }
        // A re-INVITE's 2xx: acknowledge the party that answered now, unless
        // its offer must be answered by the originator's ACK.
        let offerless = request.body.is_empty();
        let Some((seq, ack, peer)) = leg(call, to).map(|l| {
            let seq = l.dialog.local_seq.unwrap_or(1);
            (seq, l.dialog.ack(seq), l.peer.clone())
        }) else {
            return;
        };
        if !offerless {
            cx.sig.send_ack(ack, &peer);
        }
        let cseq = leg(call, from)
            .and_then(|l| l.dialog.remote_seq)
            .unwrap_or(1);
        self.send_ok(
            now,
            cx,
            call,
            server,
            from,
            relayed,
            cseq,
            offerless.then_some(seq),
        );
    }

    /// An ACK outside any transaction: the ACK of a 2xx we sent.
    pub fn handle_ack(&mut self, now: Instant, cx: &mut Cx<'_>, request: &Request) {
        let Some((id, side)) =
            DialogId::of_received(request).and_then(|d| self.by_dialog.get(&d).copied())
        else {
            return;
        };
        let Some(mut call) = self.take(id) else {
            return;
        };
        let cseq = request
            .headers
            .get("CSeq")
            .and_then(|v| parse_cseq(v).ok())
            .map(|c| c.seq);
        let slot = side_index(side);
        if call.pending_ok[slot]
            .as_ref()
            .is_some_and(|p| Some(p.cseq) == cseq)
        {
            let pending = call.pending_ok[slot].take();
            self.disarm(call.id, Timer::Retransmit(side));
            if let Some(PendingOk {
                forward_ack: Some(seq),
                ..
            }) = pending
            {
                self.forward_ack(cx, &mut call, side.other(), seq, &request.body);
            }
            if call.awaiting_answer.is_some() {
                self.served_ack(now, cx, &mut call, &request.body);
            }
        }
        self.put_back(call);
    }

    /// Sends the ACK carrying the answer of an offerless INVITE to `to`.
    fn forward_ack(&mut self, cx: &mut Cx<'_>, call: &mut Call, to: Side, seq: u32, body: &[u8]) {
        let body = if body.is_empty() {
            Vec::new()
        } else {
            self.anchor_for(cx, call, to, body, false)
                .unwrap_or_default()
        };
        let Some(leg) = leg(call, to) else { return };
        let mut ack = leg.dialog.ack(seq);
        if !body.is_empty() {
            ack.headers.push("Content-Type", "application/sdp");
            ack.body = body;
        }
        let peer = leg.peer.clone();
        cx.sig.send_ack(ack, &peer);
    }
}

/// A key sent as SIP INFO by `from`, for the other party's media as RFC
/// 4733 events: when a browser is in the call (browsers send INFO by
/// default and play events) and both parties agreed on telephone events.
/// Between desk phones, INFO is relayed as it came.
fn press_for_media(call: &Call, from: Side, request: &Request) -> Option<MediaCommand> {
    let payload_type = call.telephone_event?;
    call.media?;
    if call.browser_sdp.iter().all(Option::is_none) {
        return None;
    }
    let content_type = request.headers.get("Content-Type").unwrap_or_default();
    let key = edgepbx_media::dtmf::digit_of_info(content_type, &request.body)?;
    let millis = edgepbx_media::dtmf::duration_of_info(&request.body).unwrap_or(100);
    Some(MediaCommand::Press {
        call: call.id,
        side: from.other(),
        key,
        millis,
        payload_type,
    })
}
