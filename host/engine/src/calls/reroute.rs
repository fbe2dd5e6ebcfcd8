//! A call edgepbx answered itself (voicemail) connected somewhere else: the
//! caller pressed `*` for the operator, or a mailbox owner chose to call a
//! caller back ([`Calls::handle_service_transfer`]).
//!
//! The caller stays answered. The voicemail endpoint stops, the number is
//! routed like a forward (the policy decides, with a fresh history), and
//! the devices are offered the caller's codec only, since the caller has
//! agreed on one already. When one answers, the caller is re-INVITEd onto
//! the new relay's port (an offer with that codec) and the two talk;
//! when the policy sends the call to a voicemail again, the caller is
//! re-INVITEd onto that one. A step that ends otherwise ends the call.

use std::time::Instant;

use edgepbx_media::sdp::SessionDescription;
use edgepbx_sip::{Method, Response};
use tracing::{info, warn};

use super::anchoring::announce;
use super::{Call, Calls, Cx, EndCause, Role, side_index};
use crate::events::{LegRole, LegState};
use crate::routing::{Attempt, Outcome};
use edgepbx_media::relay::Side;

impl Calls {
    /// The voicemail session of call `id` asks to connect its caller to
    /// `number`.
    pub fn handle_service_transfer(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        id: u64,
        number: String,
    ) {
        let Some(mut call) = self.take(id) else {
            return;
        };
        if call.served.is_some() && call.a.is_some() {
            self.reroute(now, cx, &mut call, number);
        }
        self.put_back(call);
    }

    fn reroute(&mut self, now: Instant, cx: &mut Cx<'_>, call: &mut Call, number: String) {
        let reachable = call.tenant.is_internal(&number)
            || (call.tenant.outbound_trunk().is_some() && edgepbx_model::is_dialable(&number));
        // Calling out is on the mailbox's extension: its allowed
        // destinations apply.
        let forbidden = !call.tenant.is_internal(&number)
            && call
                .tenant
                .resolve(&call.dialled)
                .is_some_and(|e| !e.settings.allowed_destinations.permits(&number));
        if !reachable || forbidden {
            info!(call = call.id, %number, "voicemail cannot connect the caller there");
            return self.end(now, cx, call, EndCause::Rejected(403));
        }
        info!(call = call.id, from = %call.dialled, to = %number, "voicemail connects the caller");
        self.release_media(cx, call);
        call.served = None;
        call.rerouting = true;
        cx.sig.touch(&crate::registrar::Aor {
            tenant: call.tenant.code.clone(),
            extension: std::mem::replace(&mut call.dialled, number),
        });
        call.history.clear();
        self.next_step(now, cx, call);
    }

    /// A device answered for the waiting caller: the step ends answered.
    pub(super) fn connected_again(&mut self, cx: &mut Cx<'_>, call: &mut Call) {
        if let Some(step) = call.step.take() {
            call.history.push(Attempt {
                action: step.action,
                outcome: Outcome::Answered,
            });
        }
        call.silent = [false, false];
        info!(call = call.id, "caller connected");
        let callee = call.parties.callee.as_ref().map(|a| a.extension.clone());
        self.leg_event(cx, call, LegRole::Callee, callee, LegState::Answered, None);
    }

    /// Offers the answered caller `description` (a relay's or voicemail's
    /// port) in a re-INVITE; its answer is [`Calls::reoffer_answered`].
    pub(super) fn reoffer_caller(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        description: Vec<u8>,
    ) {
        let Some(a) = call.a.as_mut() else {
            return;
        };
        let mut invite = a
            .dialog
            .request(Method::from_token("INVITE"), Some(&a.contact));
        invite.headers.push("Content-Type", "application/sdp");
        invite.headers.push("Allow", super::ALLOW);
        invite.body = description;
        let peer = a.peer.clone();
        match cx.sig.send_request(now, &mut invite, &peer) {
            Some(key) => {
                call.reinviting[side_index(Side::A)] = true;
                self.by_client.insert(key, (call.id, Role::Reoffer));
            }
            None => self.end(now, cx, call, EndCause::Failure),
        }
    }

    /// The caller's answer to a re-INVITE of [`Calls::reoffer_caller`]:
    /// acknowledged, its address told to the media; a refusal ends the
    /// call.
    pub(super) fn reoffer_answered(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        response: &Response,
    ) {
        if response.status < 200 {
            return;
        }
        call.reinviting[side_index(Side::A)] = false;
        if response.status >= 300 {
            warn!(
                call = call.id,
                status = response.status,
                "the caller refused its new media"
            );
            return self.end(now, cx, call, EndCause::Failure);
        }
        let Some(a) = call.a.as_ref() else {
            return;
        };
        let seq = a.dialog.local_seq.unwrap_or(1);
        let (ack, peer) = (a.dialog.ack(seq), a.peer.clone());
        cx.sig.send_ack(ack, &peer);
        let party = SessionDescription::parse(&response.body)
            .ok()
            .and_then(|d| edgepbx_media::answer::negotiate(&d).ok())
            .and_then(|n| n.party);
        if let Some(address) = party {
            announce(cx, call, Side::A, address, call.a_peer.addr().ip());
        }
    }
}
