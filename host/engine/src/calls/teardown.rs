//! Ending a call: every party still there is answered or hung up, its
//! media released, its lines and tenant counted out, its record written
//! and its legs' last events published. Also the call timers: ring
//! timeouts, 2xx retransmission, maximum duration.

use std::time::Instant;

use edgepbx_media::relay::Side;
use edgepbx_sip::{Method, Response};
use tracing::{debug, info, warn};

use super::{Call, Calls, Cx, EndCause, Role, Timer, leg, side_index};
use crate::events::{Event, LegRole, LegState};
use crate::output::{CallRecord, Output};
use crate::registrar::Aor;

impl Calls {
    /// Ends a call: answers or hangs up every party still there, frees its
    /// media and counts it out.
    pub(super) fn end(&mut self, now: Instant, cx: &mut Cx<'_>, call: &mut Call, cause: EndCause) {
        // A call ends once (it may stay a while for its cancelled branches).
        if call.decisions == usize::MAX {
            return;
        }
        for timer in [
            Timer::MaxDuration,
            Timer::Decision,
            Timer::Retransmit(Side::A),
            Timer::Retransmit(Side::B),
        ] {
            self.disarm(call.id, timer);
        }
        if let Some(server) = call.server.take() {
            self.by_server.remove(&server);
            let status = match cause {
                EndCause::CallerCancelled => 487,
                EndCause::Rejected(status) if (300..700).contains(&status) => status,
                EndCause::Shutdown => 503,
                _ => 500,
            };
            let response = Response::for_request(&call.invite, status, Some(&call.a_tag));
            cx.sig.respond(now, server, response);
        }
        for i in 0..call.branches.len() {
            self.cancel_branch(now, cx, call, i, false, None);
        }
        call.step = None;
        for side in [Side::A, Side::B] {
            let hung_up = cause == EndCause::HangUp(side);
            let leg = match side {
                Side::A => call.a.take(),
                Side::B => call.b.take(),
            };
            let Some(mut leg) = leg else { continue };
            self.by_dialog.remove(&leg.dialog.id);
            if !hung_up {
                let mut bye = leg.dialog.request(Method::from_token("BYE"), None);
                if let Some(key) = cx.sig.send_request(now, &mut bye, &leg.peer) {
                    self.by_client.insert(key, (call.id, Role::Fire));
                }
            }
        }
        call.pending_ok = [None, None];
        self.release_media(cx, call);
        let answered = call.answered.is_some();
        let record = call_record(call, cause, cx.wall);
        let cause_text = cause.as_str();
        let caller = call.caller.number.clone();
        self.leg_event(
            cx,
            call,
            LegRole::Caller,
            Some(caller),
            LegState::Ended,
            Some(&cause_text),
        );
        if answered {
            let callee = record.answered_by.clone();
            self.leg_event(
                cx,
                call,
                LegRole::Callee,
                callee,
                LegState::Ended,
                Some(&cause_text),
            );
        }
        let (duration, total) = (
            record.duration_secs,
            cx.wall
                .duration_since(call.started)
                .map_or(0, |d| d.as_secs()),
        );
        cx.sig.push(Output::CallRecord(Box::new(record)));
        if let Some(aor) = call.parties.caller.take() {
            self.adjust_line(cx.sig, &aor, 0, -1);
        }
        if let Some(aor) = call.parties.callee.take() {
            self.adjust_line(cx.sig, &aor, 0, -1);
        }
        if let Some(count) = self.per_tenant.get_mut(&call.tenant.code) {
            *count = count.saturating_sub(1);
        }
        info!(call = call.id, uid = %call.uid, tenant = %call.tenant.code,
            caller = %call.caller.number, dialled = %call.dialled, answered,
            duration_secs = duration, total_secs = total, cause = %cause.as_str(),
            policy = %call.decided_by, "call ended");
        call.answered = None;
        call.decisions = usize::MAX;
    }

    /// Publishes a leg's new state.
    pub(super) fn leg_event(
        &self,
        cx: &mut Cx<'_>,
        call: &Call,
        role: LegRole,
        extension: Option<String>,
        state: LegState,
        cause: Option<&str>,
    ) {
        // Watchers of the number dialled (a group) see the call too.
        cx.sig.touch(&Aor {
            tenant: call.tenant.code.clone(),
            extension: call.dialled.clone(),
        });
        if let Some(extension) = &extension {
            cx.sig.touch(&Aor {
                tenant: call.tenant.code.clone(),
                extension: extension.clone(),
            });
        }
        cx.sig.push(Output::Event(Event::Leg {
            tenant: call.tenant.code.clone(),
            call: call.uid.clone(),
            role,
            extension,
            state,
            cause: cause.map(str::to_owned),
        }));
    }

    /// Fires due call timers.
    pub fn handle_timeout(&mut self, now: Instant, cx: &mut Cx<'_>) {
        while let Some((id, timer)) = self.due(now) {
            let Some(mut call) = self.take(id) else {
                continue;
            };
            self.call_timer(now, cx, &mut call, timer);
            self.put_back(call);
        }
    }

    fn call_timer(&mut self, now: Instant, cx: &mut Cx<'_>, call: &mut Call, timer: Timer) {
        match timer {
            Timer::Branch(id) => {
                if let Some(index) = call.branches.iter().position(|b| b.id == id) {
                    debug!(call = call.id, branch = id, "target rang out");
                    self.cancel_branch(now, cx, call, index, true, None);
                }
            }
            Timer::Retransmit(side) => {
                let slot = side_index(side);
                let peer = leg(call, side).map(|l| l.peer.clone());
                let Some(pending) = call.pending_ok[slot].as_mut() else {
                    return;
                };
                if now >= pending.give_up {
                    call.pending_ok[slot] = None;
                    warn!(call = call.id, "no ACK for the 2xx; ending the call");
                    return self.end(now, cx, call, EndCause::NoAck);
                }
                let t2 = cx.sig.transactions.config().timers.t2;
                pending.interval = pending.interval.saturating_mul(2).min(t2);
                // The last wait ends at 64·T1 sharp, when the call ends.
                let wait = pending
                    .interval
                    .min(pending.give_up.saturating_duration_since(now));
                let (server, response) = (pending.server, pending.response.clone());
                if peer.as_ref().is_some_and(|p| !p.reliable()) {
                    cx.sig.respond(now, server, response);
                }
                self.arm(now, wait, call.id, Timer::Retransmit(side));
            }
            Timer::Cancelled(id) => self.cancel_timed_out(now, cx, call, id),
            Timer::Decision => {
                warn!(
                    call = call.id,
                    "the routing policy did not answer; refusing the call"
                );
                self.end(now, cx, call, EndCause::Failure);
            }
            Timer::MaxDuration => {
                info!(call = call.id, "call reached its maximum duration");
                self.end(now, cx, call, EndCause::MaxDuration);
            }
        }
    }
}

/// The record of a call that ends at `ended_at` with `cause`.
fn call_record(call: &Call, cause: EndCause, ended_at: std::time::SystemTime) -> CallRecord {
    let outcome = match cause {
        _ if call.served.is_some() => "voicemail",
        _ if call.answered.is_some() => "answered",
        EndCause::CallerCancelled => "cancelled",
        EndCause::Rejected(486 | 600) => "busy",
        EndCause::Rejected(408 | 480) => "no-answer",
        EndCause::Rejected(_) => "rejected",
        _ => "failed",
    };
    CallRecord {
        tenant: call.tenant.code.clone(),
        id: call.uid.clone(),
        caller: call.caller.number.clone(),
        dialled: call.dialled.clone(),
        answered_by: call.parties.callee.as_ref().map(|a| a.extension.clone()),
        started_at: call.started,
        answered_at: call.answered,
        ended_at,
        duration_secs: call
            .answered
            .and_then(|a| ended_at.duration_since(a).ok())
            .map_or(0, |d| d.as_secs()),
        outcome: outcome.to_owned(),
        cause: cause.as_str(),
        policy: call.decided_by.clone(),
    }
}
