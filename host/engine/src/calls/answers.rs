//! What the branches answer: provisional responses are relayed to the
//! caller (with early media once), the first 2xx wins the call and every
//! other branch is cancelled, a failure ends its branch with an outcome.
//! The 2xx sent to a party is retransmitted until its ACK arrives (RFC
//! 3261 §13.3.1.4).

use std::time::{Duration, Instant};

use edgepbx_media::relay::Side;
use edgepbx_sip::dialog::Dialog;
use edgepbx_sip::transaction::{ClientKey, ServerKey};
use edgepbx_sip::{Method, Response};
use tracing::{info, warn};

use super::{
    ALLOW, BranchState, COMPLETED_ELSEWHERE, Call, Calls, Cx, EndCause, LegDialog, PendingOk, Role,
    Timer, cseq_of, side_index,
};
use crate::events::{LegRole, LegState};
use crate::routing::{Attempt, Outcome};

impl Calls {
    /// A response of a client transaction of the engine.
    pub fn handle_response(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        key: ClientKey,
        response: Response,
    ) {
        let Some((id, role)) = self.by_client.get(&key).cloned() else {
            return;
        };
        let Some(mut call) = self.take(id) else {
            return;
        };
        match role {
            Role::Branch(branch) => self.branch_response(now, cx, &mut call, branch, response),
            Role::Relayed {
                server,
                request,
                to,
            } => self.relayed_response(now, cx, &mut call, server, &request, to, response),
            Role::Reoffer => self.reoffer_answered(now, cx, &mut call, &response),
            Role::Fire => {}
        }
        self.put_back(call);
    }

    /// A client transaction of the engine failed (timeout, transport).
    pub fn handle_client_failure(&mut self, now: Instant, cx: &mut Cx<'_>, key: ClientKey) {
        let Some((id, role)) = self.by_client.get(&key).cloned() else {
            return;
        };
        let Some(mut call) = self.take(id) else {
            return;
        };
        match role {
            Role::Branch(branch) => {
                let response = Response {
                    status: 408,
                    reason: "Request Timeout".into(),
                    headers: Default::default(),
                    body: Vec::new(),
                };
                self.branch_response(now, cx, &mut call, branch, response);
            }
            Role::Relayed {
                server,
                request,
                to,
            } => {
                if request.method.is_invite() {
                    call.reinviting[side_index(to)] = false;
                }
                cx.sig
                    .respond(now, server, Response::for_request(&request, 408, None));
                // A party that no longer answers inside its dialog is gone.
                if call.answered.is_some() {
                    self.end(now, cx, &mut call, EndCause::Failure);
                }
            }
            Role::Reoffer => self.end(now, cx, &mut call, EndCause::Failure),
            Role::Fire => {}
        }
        self.put_back(call);
    }

    /// A client transaction of the engine is gone.
    pub fn handle_client_terminated(&mut self, key: ClientKey) {
        self.by_client.remove(&key);
    }

    fn branch_response(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        branch: u32,
        response: Response,
    ) {
        let Some(index) = call.branches.iter().position(|b| b.id == branch) else {
            return;
        };
        let status = response.status;
        match status {
            100 => {}
            101..=199 => self.branch_provisional(now, cx, call, index, &response),
            200..=299 => self.branch_answered(now, cx, call, index, response),
            401 | 407 if self.retry_with_credentials(now, cx, call, index, &response) => {}
            _ => {
                let state = call.branches[index].state;
                if matches!(state, BranchState::Done(_)) {
                    return;
                }
                let outcome = match (state, status) {
                    (BranchState::Cancelling { timed_out: true }, _) => Outcome::NoAnswer,
                    (_, 486 | 600) => Outcome::Busy,
                    (_, 603) => Outcome::Declined,
                    (_, 408 | 480) => Outcome::NoAnswer,
                    _ => Outcome::Failed,
                };
                self.branch_done(now, cx, call, index, outcome);
            }
        }
    }

    fn branch_provisional(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        index: usize,
        response: &Response,
    ) {
        let branch = &mut call.branches[index];
        if branch.state == BranchState::Calling {
            branch.state = BranchState::Ringing;
        }
        if call.b.is_some() || call.server.is_none() {
            return;
        }
        // Relay the ringing to the caller, with early media once.
        let mut relayed = Response::for_request(&call.invite, response.status, Some(&call.a_tag));
        relayed.reason = response.reason.clone();
        relayed.headers.push("Contact", call.a_contact.clone());
        let direct = call.branches[index].direct;
        let from = call.branches[index].peer.clone();
        // A browser's early answer is not taken: its leg waits for the 2xx.
        let browser = call.branches[index].browser.is_some();
        if !call.early_media_sent
            && !browser
            && let Some(answer) = self.answer_for_a(now, cx, call, direct, &from, &response.body)
        {
            relayed.headers.push("Content-Type", "application/sdp");
            relayed.body = answer;
            call.early_media_sent = true;
        }
        if let Some(server) = call.server {
            cx.sig.respond(now, server, relayed);
        }
    }

    fn branch_answered(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        index: usize,
        response: Response,
    ) {
        let branch = &call.branches[index];
        // A retransmitted 2xx: our ACK was lost.
        if let Some(ack) = branch.ack.clone() {
            let peer = branch.peer.clone();
            cx.sig.send(&peer, edgepbx_sip::Message::Request(ack));
            return;
        }
        let Ok(mut dialog) = Dialog::as_uac(&branch.invite, &response) else {
            warn!(call = call.id, "a 2xx that creates no dialog; ignoring it");
            return;
        };
        dialog.early = false;
        let peer = branch.peer.clone();
        let b_seq = cseq_of(&branch.invite);
        let contact = cx.sig.our_contact(&peer);
        if call.b.is_some() || (call.server.is_none() && !call.rerouting) {
            // Another branch won, or the caller gave up: acknowledge and
            // hang up this one (RFC 3261 §13.2.2.4).
            let ack = cx.sig.send_ack(dialog.ack(b_seq), &peer);
            call.branches[index].ack = Some(ack);
            let mut bye = dialog.request(Method::from_token("BYE"), None);
            if let Some(key) = cx.sig.send_request(now, &mut bye, &peer) {
                self.by_client.insert(key, (call.id, Role::Fire));
            }
            self.branch_done(now, cx, call, index, Outcome::Answered);
            return;
        }
        let direct = call.branches[index].direct;
        if call.branches[index].browser.is_some() {
            self.browser_answered(now, cx, call, index, &response.body);
        }
        // The callee's answer, or its offer when the caller's INVITE had
        // none: either way anchored for the caller.
        let answer = self.answer_for_a(now, cx, call, direct, &peer, &response.body);
        if call.offer.is_some() {
            let ack = cx.sig.send_ack(dialog.ack(b_seq), &peer);
            call.branches[index].ack = Some(ack);
        }
        if direct {
            self.release_media(cx, call);
        }
        self.by_dialog.insert(dialog.id.clone(), (call.id, Side::B));
        call.b = Some(LegDialog {
            dialog,
            peer,
            contact,
        });
        call.branches[index].state = BranchState::Done(Outcome::Answered);
        let aor = call.branches[index].aor.clone();
        if let Some(aor) = &aor {
            self.adjust_line(cx.sig, aor, -1, 1);
        }
        call.parties.callee = aor;
        self.disarm(call.id, Timer::Branch(call.branches[index].id));
        // Everyone else stops ringing.
        for i in 0..call.branches.len() {
            if i != index {
                self.cancel_branch(now, cx, call, i, false, Some(COMPLETED_ELSEWHERE));
            }
        }
        // The ACKs carry the CSeq of the INVITE they acknowledge (a
        // carrier's is 2 after its challenge).
        let forward_ack = call.offer.is_none().then_some(b_seq);
        if call.rerouting {
            // The caller was answered already: it moves to the relay.
            call.rerouting = false;
            self.connected_again(cx, call);
            if let Some(answer) = answer {
                self.reoffer_caller(now, cx, call, answer);
            }
            return;
        }
        self.answer_caller(now, cx, call, answer, forward_ack);
    }

    /// The call is connected: the step ends answered, the caller gets the
    /// 2xx with `answer` (retransmitted until its ACK; `forward_ack`: the
    /// CSeq of the callee's offerless INVITE whose ACK carries the
    /// caller's answer), and the call may last its maximum duration.
    pub(super) fn answer_caller(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        answer: Option<Vec<u8>>,
        forward_ack: Option<u32>,
    ) {
        if let Some(step) = call.step.take() {
            call.history.push(Attempt {
                action: step.action,
                outcome: Outcome::Answered,
            });
        }
        let Some(server) = call.server.take() else {
            return;
        };
        self.by_server.remove(&server);
        let mut ok = Response::for_request(&call.invite, 200, Some(&call.a_tag));
        ok.headers.push("Contact", call.a_contact.clone());
        ok.headers.push("Allow", ALLOW);
        if let Some(answer) = answer {
            ok.headers.push("Content-Type", "application/sdp");
            ok.body = answer;
        }
        match Dialog::as_uas(&call.invite, &call.a_tag, false) {
            Ok(dialog) => {
                self.by_dialog.insert(dialog.id.clone(), (call.id, Side::A));
                call.a = Some(LegDialog {
                    dialog,
                    peer: call.a_peer.clone(),
                    contact: call.a_contact.clone(),
                });
            }
            Err(error) => warn!(call = call.id, %error, "caller's INVITE makes no dialog"),
        }
        call.answered = Some(cx.wall);
        call.silent = [false, false];
        info!(call = call.id, "call answered");
        let callee = call.parties.callee.as_ref().map(|a| a.extension.clone());
        self.leg_event(cx, call, LegRole::Callee, callee, LegState::Answered, None);
        let caller = call.caller.number.clone();
        self.leg_event(
            cx,
            call,
            LegRole::Caller,
            Some(caller),
            LegState::Answered,
            None,
        );
        let a_seq = cseq_of(&call.invite);
        self.send_ok(now, cx, call, server, Side::A, ok, a_seq, forward_ack);
        let max = Duration::from_secs(self.config.max_duration_secs);
        self.arm(now, max, call.id, Timer::MaxDuration);
    }

    /// Sends a 2xx to an INVITE from `side` and retransmits it until the
    /// ACK arrives (RFC 3261 §13.3.1.4).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_ok(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        server: ServerKey,
        side: Side,
        ok: Response,
        cseq: u32,
        forward_ack: Option<u32>,
    ) {
        cx.sig.respond(now, server, ok.clone());
        let t1 = cx.sig.transactions.config().timers.t1;
        call.pending_ok[side_index(side)] = Some(PendingOk {
            server,
            response: ok,
            cseq,
            interval: t1,
            give_up: now.checked_add(t1.saturating_mul(64)).unwrap_or(now),
            forward_ack,
        });
        self.arm(now, t1, call.id, Timer::Retransmit(side));
    }
}
