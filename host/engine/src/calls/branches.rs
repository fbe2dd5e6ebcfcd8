//! Forking: every registered device of a target gets its own INVITE (a
//! branch), an external number one INVITE through the tenant's trunk.
//! Branches that lose, ring out or are abandoned are cancelled; when the
//! last branch of a step ends without an answer, the step's outcome goes
//! back to the policy.

use std::time::{Duration, Instant};

use edgepbx_model::is_dialable;
use edgepbx_sip::auth::authorized;
use edgepbx_sip::{Method, Request, Response};
use tracing::{info, warn};

use super::{Branch, BranchState, Call, Calls, Cx, EndCause, Role, Timer, ringing, step_outcome};
use crate::events::{LegRole, LegState};
use crate::lines::device_id;
use crate::peer::Peer;
use crate::registrar::Aor;
use crate::routing::{CallerKind, Outcome, RingTarget, Target};

impl Calls {
    /// Sends INVITEs to every device of one target; returns how many.
    pub(super) fn ring_target(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        target: &RingTarget,
    ) -> usize {
        let timeout = Duration::from_secs(u64::from(target.timeout_secs.clamp(1, 600)));
        let (extension, device) = match &target.target {
            Target::Extension(number) => (number.clone(), None),
            Target::Device { extension, device } => (extension.clone(), Some(device.clone())),
            Target::External(number) => {
                return self.ring_external(now, cx, call, number, timeout);
            }
        };
        let Some(ext) = call.tenant.resolve(&extension).cloned() else {
            call.unreachable.push(Outcome::Failed);
            return 0;
        };
        let aor = Aor {
            tenant: call.tenant.code.clone(),
            extension: ext.number.clone(),
        };
        let bindings: Vec<_> = cx
            .location
            .bindings(&aor)
            .iter()
            .filter(|b| device.as_ref().is_none_or(|d| *d == device_id(b)))
            .cloned()
            .collect();
        if bindings.is_empty() {
            call.unreachable.push(Outcome::Offline);
            return 0;
        }
        let mut sent = 0;
        for binding in bindings {
            let direct =
                self.direct_same_network && binding.source.addr().ip() == call.a_peer.addr().ip();
            let (body, browser) =
                match self.offer_for_branch(now, cx, call, &binding.source, direct) {
                    Ok(offered) => offered,
                    Err(error) => {
                        warn!(call = call.id, %error, "no media for the call");
                        call.unreachable.push(Outcome::Failed);
                        continue;
                    }
                };
            let mut invite = branch_invite(
                cx,
                call,
                &binding.contact,
                &binding.source,
                &ext.number,
                body,
            );
            let Some(key) = cx.sig.send_request(now, &mut invite, &binding.source) else {
                call.unreachable.push(Outcome::Failed);
                continue;
            };
            let id = call.next_branch;
            call.next_branch += 1;
            self.by_client.insert(key, (call.id, Role::Branch(id)));
            self.arm(now, timeout, call.id, Timer::Branch(id));
            self.adjust_line(cx.sig, &aor, 1, 0);
            self.leg_event(
                cx,
                call,
                LegRole::Callee,
                Some(aor.extension.clone()),
                LegState::Ringing,
                None,
            );
            call.branches.push(Branch {
                id,
                key,
                invite,
                peer: binding.source.clone(),
                aor: Some(aor.clone()),
                trunk: None,
                direct: direct && browser.is_none() && call.browser_offer.is_none(),
                browser,
                state: BranchState::Calling,
                ack: None,
            });
            sent += 1;
        }
        sent
    }

    /// Sends the INVITE of an external number through the tenant's trunk;
    /// returns 1 when it left, 0 when there is no way out.
    fn ring_external(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        number: &str,
        timeout: Duration,
    ) -> usize {
        let link = call.tenant.outbound_trunk().cloned();
        let (Some(link), true) = (link, is_dialable(number)) else {
            info!(call = call.id, %number, "external number skipped: no usable trunk");
            call.unreachable.push(Outcome::Failed);
            return 0;
        };
        let Some(addr) = link.addr else {
            call.unreachable.push(Outcome::Failed);
            return 0;
        };
        let peer = Peer::Udp(addr);
        let body = match self.offer_for_branch(now, cx, call, &peer, false) {
            Ok((body, _)) => body,
            Err(error) => {
                warn!(call = call.id, %error, "no media for the call");
                call.unreachable.push(Outcome::Failed);
                return 0;
            }
        };
        let host = link.host_name().to_owned();
        let uri = format!("sip:{number}@{}", link.trunk.host);
        // Shown to the called party: the caller's own outbound number, else
        // the tenant's; a caller from outside keeps its number.
        let shown = match call.caller.kind {
            CallerKind::External => call.caller.number.clone(),
            CallerKind::Internal => call
                .tenant
                .resolve(&call.caller.number)
                .and_then(|e| e.settings.outbound_caller_id.clone())
                .or_else(|| link.trunk.caller_id.clone())
                .unwrap_or_else(|| call.caller.number.clone()),
        };
        let mut invite = branch_invite(cx, call, &uri, &peer, number, body);
        invite.headers.set("To", format!("<sip:{number}@{host}>"));
        let from = invite.headers.get("From").unwrap_or_default().to_owned();
        let tag = from.rsplit_once(";tag=").map_or("", |(_, t)| t).to_owned();
        invite
            .headers
            .set("From", format!("<sip:{shown}@{host}>;tag={tag}"));
        let Some(key) = cx.sig.send_request(now, &mut invite, &peer) else {
            call.unreachable.push(Outcome::Failed);
            return 0;
        };
        let id = call.next_branch;
        call.next_branch += 1;
        self.by_client.insert(key, (call.id, Role::Branch(id)));
        self.arm(now, timeout, call.id, Timer::Branch(id));
        self.leg_event(cx, call, LegRole::Callee, None, LegState::Ringing, None);
        info!(call = call.id, trunk = %link.trunk.name, %number, "calling out");
        call.branches.push(Branch {
            id,
            key,
            invite,
            peer,
            aor: None,
            trunk: Some((link, false)),
            direct: false,
            browser: None,
            state: BranchState::Calling,
            ack: None,
        });
        1
    }

    /// Answers a carrier's digest challenge to a branch's INVITE with a new
    /// INVITE; `true` when one left.
    pub(super) fn retry_with_credentials(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        index: usize,
        response: &Response,
    ) -> bool {
        let branch = &call.branches[index];
        let Some((link, false)) = &branch.trunk else {
            return false;
        };
        let (Some(user), Some(password)) = (&link.trunk.username, &link.trunk.password) else {
            return false;
        };
        let cnonce = cx.sig.tag();
        let Some(mut invite) = authorized(&branch.invite, response, user, password, &cnonce) else {
            return false;
        };
        let (peer, id) = (branch.peer.clone(), branch.id);
        let Some(key) = cx.sig.send_request(now, &mut invite, &peer) else {
            return false;
        };
        self.by_client.insert(key, (call.id, Role::Branch(id)));
        let branch = &mut call.branches[index];
        branch.invite = invite;
        branch.key = key;
        if let Some((_, answered)) = &mut branch.trunk {
            *answered = true;
        }
        true
    }

    /// Cancels a branch that has not answered (RFC 3261 §9.1).
    pub(super) fn cancel_branch(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        index: usize,
        timed_out: bool,
        reason: Option<&str>,
    ) {
        let branch = &mut call.branches[index];
        match branch.state {
            BranchState::Calling | BranchState::Ringing => {}
            _ => return,
        }
        branch.state = BranchState::Cancelling { timed_out };
        let (cancel, peer, id) = (branch.invite.cancel(reason), branch.peer.clone(), branch.id);
        self.disarm(call.id, Timer::Branch(id));
        if let Some(cancel) = cancel
            && let Some(key) = cx.sig.start_client(now, cancel, &peer)
        {
            self.by_client.insert(key, (call.id, Role::Fire));
        }
        let t1 = cx.sig.transactions.config().timers.t1;
        self.arm(now, t1.saturating_mul(64), call.id, Timer::Cancelled(id));
    }

    /// A cancelled branch never answered its INVITE: its transaction is
    /// given up and the branch ends.
    pub(super) fn cancel_timed_out(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        id: u32,
    ) {
        let Some(index) = call.branches.iter().position(|b| b.id == id) else {
            return;
        };
        let BranchState::Cancelling { timed_out } = call.branches[index].state else {
            return;
        };
        let key = call.branches[index].key;
        cx.sig
            .transactions
            .abandon(edgepbx_sip::transaction::TransactionKey::Client(key));
        self.by_client.remove(&key);
        let outcome = if timed_out {
            Outcome::NoAnswer
        } else {
            Outcome::Failed
        };
        self.branch_done(now, cx, call, index, outcome);
    }

    /// A branch ended without connecting.
    pub(super) fn branch_done(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        index: usize,
        outcome: Outcome,
    ) {
        let branch = &mut call.branches[index];
        let was_ringing = !matches!(branch.state, BranchState::Done(_));
        branch.state = BranchState::Done(outcome);
        let (id, aor) = (branch.id, branch.aor.clone());
        if was_ringing && let Some(aor) = &aor {
            self.adjust_line(cx.sig, aor, -1, 0);
            let cause = if call.b.is_some() {
                "answered elsewhere"
            } else if call.server.is_none() && !call.rerouting {
                "caller gave up"
            } else {
                outcome.as_str()
            };
            self.leg_event(
                cx,
                call,
                LegRole::Callee,
                Some(aor.extension.clone()),
                LegState::Ended,
                Some(cause),
            );
        }
        self.disarm(call.id, Timer::Branch(id));
        self.disarm(call.id, Timer::Cancelled(id));
        if call.b.is_some() || (call.server.is_none() && !call.rerouting) || call.step.is_none() {
            return;
        }
        if ringing(call) {
            return;
        }
        // Sequential: on to the next target.
        if call.step.as_ref().is_some_and(|s| !s.pending.is_empty()) {
            self.ring_next_sequential(now, cx, call);
            if ringing(call) {
                return;
            }
        }
        let outcome = step_outcome(call);
        self.finish_step(call, outcome);
        self.next_step(now, cx, call);
    }

    /// CANCEL from the caller (the CANCEL itself is answered already).
    pub fn cancel_call(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        invite: edgepbx_sip::transaction::ServerKey,
        reason: Option<&str>,
    ) {
        let Some(id) = self.by_server.get(&invite).copied() else {
            return;
        };
        let Some(mut call) = self.take(id) else {
            return;
        };
        for i in 0..call.branches.len() {
            self.cancel_branch(now, cx, &mut call, i, false, reason);
        }
        self.end(now, cx, &mut call, EndCause::CallerCancelled);
        self.put_back(call);
    }
}

/// The INVITE of one branch.
fn branch_invite(
    cx: &mut Cx<'_>,
    call: &Call,
    contact: &str,
    peer: &Peer,
    extension: &str,
    body: Option<Vec<u8>>,
) -> Request {
    let domain = &call.tenant.domain;
    let (mut number, mut name) = (call.caller.number.clone(), call.caller.name.clone());
    if let Some(p) = &call.presentation {
        if let Some(prefix) = &p.number_prefix {
            number = format!("{prefix}{number}");
        }
        if let Some(prefix) = &p.name_prefix {
            name = Some(format!("{prefix}{}", name.unwrap_or_default()));
        }
    }
    // The callee's phone may show which of its lines rings.
    if let Some(prefix) = call
        .tenant
        .resolve(extension)
        .and_then(|e| e.settings.inbound_prefix.as_ref())
    {
        name = Some(format!(
            "{prefix}{}",
            name.unwrap_or_else(|| number.clone())
        ));
    }
    let display = name
        .map(|n| format!("\"{}\" ", n.replace(['"', '\\', '\r', '\n'], "")))
        .unwrap_or_default();
    let max_forwards = call
        .invite
        .headers
        .get("Max-Forwards")
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(70)
        .saturating_sub(1);
    let mut request = Request {
        method: Method::from_token("INVITE"),
        uri: contact.to_owned(),
        headers: Default::default(),
        body: Vec::new(),
    };
    let tag = cx.sig.tag();
    let call_id = cx.sig.call_id();
    let our_contact = cx.sig.our_contact(peer);
    let h = &mut request.headers;
    h.push("Max-Forwards", max_forwards.to_string());
    h.push(
        "From",
        format!("{display}<sip:{number}@{domain}>;tag={tag}"),
    );
    h.push("To", format!("<sip:{extension}@{domain}>"));
    h.push("Call-ID", call_id);
    h.push("CSeq", "1 INVITE");
    h.push("Contact", our_contact);
    h.push("Allow", super::ALLOW);
    h.push("User-Agent", concat!("edgepbx/", env!("CARGO_PKG_VERSION")));
    if let Some(body) = body {
        h.push("Content-Type", "application/sdp");
        request.body = body;
    }
    request
}
