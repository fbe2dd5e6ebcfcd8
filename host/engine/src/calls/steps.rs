//! Routing steps: the engine asks the tenant's policy what to do next
//! ([`Output::Decide`]) whenever a call starts, is forwarded, or a step did
//! not connect; the answer comes back as a [`Decided`] (at once for the
//! built-in policy, later for a tenant's module) and is carried out here.

use std::collections::VecDeque;
use std::time::Instant;

use edgepbx_model::is_dialable;
use tracing::{debug, info, warn};

use super::{Call, Calls, Cx, DECISION_TIMEOUT, EndCause, Step, Timer, ringing, step_outcome};
use crate::output::Output;
use crate::routing::{
    Action, Attempt, Decided, DecisionId, DecisionRequest, Outcome, RingMode, RingTarget,
};

impl Calls {
    /// Asks the policy for the call's next step.
    pub(super) fn next_step(&mut self, now: Instant, cx: &mut Cx<'_>, call: &mut Call) {
        if call.decisions >= self.config.max_steps {
            warn!(call = call.id, "too many routing steps; refusing the call");
            return self.end(now, cx, call, EndCause::Rejected(480));
        }
        call.decisions += 1;
        let alias_of = call
            .tenant
            .resolve(&call.dialled)
            .filter(|e| e.number != call.dialled)
            .map(|e| e.number.clone());
        let request = DecisionRequest {
            id: DecisionId {
                call: call.id,
                step: call.decisions,
            },
            tenant: call.tenant.clone(),
            call_id: call.id.to_string(),
            caller: call.caller.clone(),
            dialled: call.dialled.clone(),
            alias_of,
            wall: cx.wall,
            entropy: cx.sig.random(),
            history: call.history.clone(),
        };
        cx.sig.push(Output::Decide(Box::new(request)));
        self.arm(now, DECISION_TIMEOUT, call.id, Timer::Decision);
    }

    /// A decision came back; the call may have ended or moved on
    /// meanwhile, and then it is ignored.
    pub fn handle_decision(&mut self, now: Instant, cx: &mut Cx<'_>, decided: Decided) {
        let Some(mut call) = self.take(decided.id.call) else {
            return;
        };
        if call.decisions == decided.id.step && (call.server.is_some() || call.rerouting) {
            self.disarm(call.id, Timer::Decision);
            self.apply_decision(now, cx, &mut call, decided);
        }
        self.put_back(call);
    }

    /// Carries out the policy's decision for the call's next step.
    fn apply_decision(&mut self, now: Instant, cx: &mut Cx<'_>, call: &mut Call, decided: Decided) {
        call.decided_by = decided.by;
        if let Some(presentation) = decided.decision.presentation {
            call.presentation = Some(presentation);
        }
        debug!(call = call.id, action = ?decided.decision.action, by = %call.decided_by, "decision");
        match decided.decision.action {
            Action::Reject(status) => self.end(now, cx, call, EndCause::Rejected(status)),
            Action::Forward(number) => {
                let reachable = call.tenant.is_internal(&number)
                    || (call.tenant.outbound_trunk().is_some() && is_dialable(&number));
                if !reachable {
                    info!(call = call.id, %number, "forward to a number no trunk reaches");
                    return self.end(now, cx, call, EndCause::Rejected(404));
                }
                // A forward out through the trunk is a call the forwarding
                // extension makes: its allowed destinations apply (a
                // phone's forward key could otherwise dial anywhere).
                let forbidden = !call.tenant.is_internal(&number)
                    && call
                        .tenant
                        .resolve(&call.dialled)
                        .is_some_and(|e| !e.settings.allowed_destinations.permits(&number));
                if forbidden {
                    info!(call = call.id, from = %call.dialled, %number,
                        "forward to a destination the extension may not call");
                    return self.end(now, cx, call, EndCause::Rejected(403));
                }
                // The call now belongs to the new number: its policy
                // decides from a fresh history.
                info!(call = call.id, from = %call.dialled, to = %number, "forwarded");
                // Watchers of the number left (a group) see the call go.
                cx.sig.touch(&crate::registrar::Aor {
                    tenant: call.tenant.code.clone(),
                    extension: std::mem::replace(&mut call.dialled, number),
                });
                call.history.clear();
                self.next_step(now, cx, call);
            }
            Action::Voicemail(mailbox) => self.send_to_voicemail(now, cx, call, mailbox),
            Action::Ring(ring) => {
                let action = Action::Ring(ring.clone());
                let targets: VecDeque<RingTarget> = ring.targets.into();
                match ring.mode {
                    RingMode::Simultaneous => {
                        call.step = Some(Step {
                            action,
                            pending: VecDeque::new(),
                        });
                        for target in targets {
                            self.ring_target(now, cx, call, &target);
                        }
                    }
                    RingMode::Sequential => {
                        call.step = Some(Step {
                            action,
                            pending: targets,
                        });
                        self.ring_next_sequential(now, cx, call);
                    }
                }
                if ringing(call) {
                    return;
                }
                // Nothing could be rung.
                let outcome = step_outcome(call);
                self.finish_step(call, outcome);
                self.next_step(now, cx, call);
            }
        }
    }

    /// Rings the next target of a sequential step that has a device.
    pub(super) fn ring_next_sequential(&mut self, now: Instant, cx: &mut Cx<'_>, call: &mut Call) {
        while let Some(target) = call.step.as_mut().and_then(|s| s.pending.pop_front()) {
            if self.ring_target(now, cx, call, &target) > 0 {
                return;
            }
        }
    }

    /// Closes the current step with `outcome`.
    pub(super) fn finish_step(&mut self, call: &mut Call, outcome: Outcome) {
        call.branches.clear();
        call.unreachable.clear();
        if let Some(step) = call.step.take() {
            call.history.push(Attempt {
                action: step.action,
                outcome,
            });
        }
    }
}
