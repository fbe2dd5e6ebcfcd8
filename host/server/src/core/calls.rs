//! The call engine: a back-to-back user agent inside the SIP core.
//!
//! A call has one dialog with the caller (leg A, where edgepbx is the UAS)
//! and, once answered, one with the callee device that answered (leg B,
//! edgepbx the UAC). Before the answer, the tenant's routing policy decides
//! each step: which targets ring, all at once or one after another, for how
//! long. Every registered device of a ringing extension gets its own INVITE
//! (a branch); the first 2xx wins and every other branch is cancelled with
//! `Reason: SIP;cause=200;text="Call completed elsewhere"`. A step that
//! does not connect ends with an outcome (busy, no answer, offline,
//! declined, failed) and the policy is asked again with the history.
//!
//! Media is anchored: each party's description is rewritten to point at a
//! pair of edgepbx ports ([`crate::media`]), unless both parties signal from
//! the same address and `media.direct_same_network` is on.
//!
//! Everything runs on the SIP core's task: state is plain data, and a call
//! is taken out of the table while it is worked on, so the engine borrows
//! the transaction layer and the call at the same time without locks. The
//! one exception is a tenant module's decision: it runs on the blocking
//! pool (the module may use its whole deadline) and comes back to the task
//! as a message; a call whose caller gave up meanwhile ignores it. The
//! built-in policy decides in microseconds and runs in place.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgepbx_media::anchor::{AnchorError, RELAYED_CODECS, anchor};
use edgepbx_media::relay::{Event as RelayEvent, Side};
use edgepbx_media::sdp::{Direction, SessionDescription};
use edgepbx_policy::bindings as policy;
use edgepbx_policy::{Decided, DecidedBy, KeyValue, Policies};
use edgepbx_sip::auth::{DigestChallenge, DigestRequest, DigestResponse, Verdict};
use edgepbx_sip::dialog::{Dialog, DialogId};
use edgepbx_sip::grammar::{parse_cseq, parse_name_addr};
use edgepbx_sip::transaction::{ClientKey, ServerKey, TransactionKey};
use edgepbx_sip::{Method, Request, Response};
use rand::Rng;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::SipCore;
use crate::config::{CallsConfig, MediaConfig};
use crate::directory::{Tenant, TrunkLink};
use crate::events::{Event, LegRole, LegState};
use crate::lines::{Lines, PolicyDirectory, device_id};
use crate::media::{MediaEvent, MediaPlane, MediaSession};
use crate::registrar::Aor;
use crate::registrar::view::civil_from_days;
use crate::throttle::FailureReply;
use crate::transport::Peer;
use edgepbx_store::CallRecord;

/// The Reason of CANCELs sent to the branches that lost (RFC 3326).
const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// Longest number (user part) the engine routes.
const MAX_NUMBER_LEN: usize = 32;

type CallId = u64;

/// What a client transaction of the engine is for.
#[derive(Debug, Clone)]
enum Role {
    /// An INVITE towards a callee device.
    Branch(u32),
    /// A request we relayed from one party to the other; its final answer
    /// goes back on `server`.
    Relayed {
        server: ServerKey,
        /// The request as the originator sent it (its responses echo it).
        request: Arc<Request>,
        /// The side the request was sent to.
        to: Side,
    },
    /// A BYE or CANCEL whose answer changes nothing.
    Fire,
}

/// A routing decision made off the SIP core's task, for call `call`.
#[derive(Debug)]
pub struct DecisionDone {
    call: CallId,
    decided: Decided,
}

/// Timers of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// A branch rang for its target's timeout.
    Branch(u32),
    /// Retransmit the 2xx awaiting `Side`'s ACK (RFC 3261 §13.3.1.4).
    Retransmit(Side),
    /// The call reached its maximum duration.
    MaxDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BranchState {
    Calling,
    Ringing,
    /// CANCEL sent; `timed_out` when the target rang out.
    Cancelling {
        timed_out: bool,
    },
    Done(policy::Outcome),
}

/// One INVITE towards one device.
#[derive(Debug)]
struct Branch {
    id: u32,
    invite: Request,
    peer: Peer,
    aor: Option<Aor>,
    /// The trunk of a branch to an external number, and whether its
    /// INVITE already answered the carrier's challenge.
    trunk: Option<(Arc<TrunkLink>, bool)>,
    /// Media goes directly between the parties.
    direct: bool,
    state: BranchState,
    /// The 2xx's ACK, re-sent when the 2xx is retransmitted.
    ack: Option<Request>,
}

/// A ring step under way.
#[derive(Debug)]
struct Step {
    action: policy::Action,
    /// Targets not yet rung (sequential mode).
    pending: VecDeque<policy::RingTarget>,
}

/// A 2xx we sent that awaits its ACK.
#[derive(Debug)]
struct PendingOk {
    server: ServerKey,
    response: Response,
    cseq: u32,
    interval: Duration,
    give_up: Instant,
    /// The ACK to forward to the other side once this ACK arrives
    /// (offerless INVITE: it carries the answer).
    forward_ack: Option<u32>,
}

/// One established dialog with a party.
#[derive(Debug)]
struct LegDialog {
    dialog: Dialog,
    peer: Peer,
    /// Our Contact towards the party.
    contact: String,
}

/// Which extension each side is, for line state.
#[derive(Debug, Default)]
struct Parties {
    caller: Option<Aor>,
    callee: Option<Aor>,
}

/// A call in progress, as `edgepbx calls` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ActiveCall {
    /// The call's id (as in its record and events).
    pub id: String,
    /// The calling extension.
    pub caller: String,
    /// The number being routed.
    pub dialled: String,
    /// `ringing` or `answered`.
    pub state: &'static str,
    /// The extension that answered.
    pub answered_by: Option<String>,
    /// Seconds since it started.
    pub secs: u64,
    /// Who decided its routing.
    pub policy: String,
}

/// A call.
#[derive(Debug)]
struct Call {
    id: CallId,
    /// Unique across restarts: records and events name the call by it.
    uid: String,
    tenant: Arc<Tenant>,
    caller: policy::Caller,
    /// The number being routed (changes on forward).
    dialled: String,
    /// The caller's INVITE.
    invite: Request,
    /// Its server transaction while unanswered.
    server: Option<ServerKey>,
    a_peer: Peer,
    a_tag: String,
    a_contact: String,
    /// The caller's offer (None: offerless INVITE).
    offer: Option<SessionDescription>,
    presentation: Option<policy::Presentation>,
    history: Vec<policy::Attempt>,
    decisions: usize,
    step: Option<Step>,
    branches: Vec<Branch>,
    /// Outcomes of the step's targets that could not be rung at all.
    unreachable: Vec<policy::Outcome>,
    next_branch: u32,
    /// Provisional response with a description already sent to A.
    early_media_sent: bool,
    a: Option<LegDialog>,
    b: Option<LegDialog>,
    media: Option<MediaSession>,
    pending_ok: [Option<PendingOk>; 2],
    /// Each party's media went silent (relay reports).
    silent: [bool; 2],
    /// A party put the call on hold: silence is expected.
    held: bool,
    started: SystemTime,
    answered: Option<SystemTime>,
    decided_by: String,
    parties: Parties,
}

/// Why a call ended, for logs and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndCause {
    CallerCancelled,
    Rejected(u16),
    HangUp(Side),
    MaxDuration,
    MediaTimeout,
    NoAck,
    Failure,
}

impl EndCause {
    fn as_str(self) -> String {
        match self {
            EndCause::CallerCancelled => "caller cancelled".into(),
            EndCause::Rejected(status) => format!("rejected with {status}"),
            EndCause::HangUp(Side::A) => "caller hung up".into(),
            EndCause::HangUp(Side::B) => "callee hung up".into(),
            EndCause::MaxDuration => "maximum duration".into(),
            EndCause::MediaTimeout => "no media".into(),
            EndCause::NoAck => "no ACK".into(),
            EndCause::Failure => "signalling failure".into(),
        }
    }
}

/// The engine's state inside the SIP core.
pub struct CallEngine {
    config: CallsConfig,
    media_config: MediaConfig,
    policies: Arc<Policies>,
    kv: Arc<dyn KeyValue>,
    lines: Arc<Lines>,
    media: MediaPlane,
    calls: HashMap<CallId, Call>,
    next_id: CallId,
    by_server: HashMap<ServerKey, CallId>,
    by_client: HashMap<ClientKey, (CallId, Role)>,
    by_dialog: HashMap<DialogId, (CallId, Side)>,
    timers: BTreeMap<(Instant, u64), (CallId, Timer)>,
    timer_seq: u64,
    per_tenant: HashMap<String, usize>,
    decided_tx: mpsc::UnboundedSender<DecisionDone>,
    decided_rx: Option<mpsc::UnboundedReceiver<DecisionDone>>,
}

impl CallEngine {
    /// An engine with no calls.
    pub fn new(
        config: CallsConfig,
        media_config: MediaConfig,
        policies: Arc<Policies>,
        kv: Arc<dyn KeyValue>,
        lines: Arc<Lines>,
        media: MediaPlane,
    ) -> CallEngine {
        let (decided_tx, decided_rx) = mpsc::unbounded_channel();
        CallEngine {
            config,
            media_config,
            policies,
            kv,
            lines,
            media,
            calls: HashMap::new(),
            next_id: 0,
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            by_dialog: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            per_tenant: HashMap::new(),
            decided_tx,
            decided_rx: Some(decided_rx),
        }
    }

    /// Where decisions come back; the SIP core takes it once.
    pub fn take_decisions(&mut self) -> Option<mpsc::UnboundedReceiver<DecisionDone>> {
        self.decided_rx.take()
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// The earliest call timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// The lines the engine keeps current.
    pub fn lines(&self) -> &Arc<Lines> {
        &self.lines
    }

    fn arm(&mut self, at: Instant, call: CallId, timer: Timer) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), (call, timer));
    }

    fn disarm(&mut self, call: CallId, timer: Timer) {
        self.timers.retain(|_, v| *v != (call, timer));
    }
}

impl SipCore {
    /// The client transaction `key` belongs to a call.
    pub(super) fn is_call_transaction(&self, key: ClientKey) -> bool {
        self.calls.by_client.contains_key(&key)
    }

    /// A new INVITE outside any dialog.
    pub(super) fn new_call(
        &mut self,
        now: Instant,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
    ) {
        let respond = |core: &mut SipCore, status: u16| {
            let r = Response::for_request(request, status, Some(&request.stateless_tag()));
            core.respond(now, key, r);
        };
        // A carrier's call comes in on a trunk (recognised by its address)
        // for one of the tenant's numbers; everyone else authenticates.
        let (tenant, caller, number) = match self.directory.trunk_at(peer.addr().ip()) {
            Some((tenant, link)) => {
                let Some(number) = inbound_did(request).and_then(|did| link.route(&did)) else {
                    return respond(self, 404);
                };
                let mut caller = external_caller(request, &link.trunk.name);
                if let Some(name) = tenant.contact_names.get(&caller.number) {
                    caller.name = Some(name.clone());
                }
                (tenant, caller, number.to_owned())
            }
            None => {
                let Some((tenant, caller)) = self.authenticate_caller(now, key, request, peer)
                else {
                    return;
                };
                let Some(number) = dialled_number(request) else {
                    return respond(self, 404);
                };
                (tenant, caller, number)
            }
        };
        // A number the tenant does not have goes to the policy as external
        // (through the trunk) or unknown (the built-in policy answers 404;
        // a tenant's policy may know better). Calling out is subject to the
        // caller's allowed destinations.
        if !tenant.is_internal(&number) && tenant.outbound_trunk().is_some() {
            let allowed = tenant
                .resolve(&caller.number)
                .is_none_or(|e| e.settings.allowed_destinations.permits(&number));
            if !allowed {
                info!(tenant = %tenant.code, caller = %caller.number, %number,
                    "destination not allowed for this extension");
                return respond(self, 403);
            }
        }
        let max_forwards = request
            .headers
            .get("Max-Forwards")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(70);
        if max_forwards == 0 {
            return respond(self, 483);
        }
        let busy = self
            .calls
            .per_tenant
            .get(&tenant.code)
            .copied()
            .unwrap_or(0);
        let limit = tenant
            .max_calls
            .unwrap_or(self.calls.config.max_calls_per_tenant);
        if busy >= limit {
            warn!(tenant = %tenant.code, "tenant at its limit of concurrent calls");
            return respond(self, 503);
        }
        let offer = match sdp_body(request) {
            Ok(offer) => offer,
            Err(status) => return respond(self, status),
        };
        if let Some(offer) = &offer
            && let Err(error) = anchor(offer, IpAddr::from([0, 0, 0, 0]), 0, RELAYED_CODECS)
        {
            debug!(%error, "offer refused");
            let mut r = Response::for_request(request, 488, Some(&request.stateless_tag()));
            r.headers
                .push("Warning", format!("304 edgepbx \"{error}\""));
            return self.respond(now, key, r);
        }
        self.calls.next_id += 1;
        let id = self.calls.next_id;
        let a_contact = self.our_contact(peer);
        let caller_aor = (caller.kind == policy::CallerKind::Internal).then(|| Aor {
            tenant: tenant.code.clone(),
            extension: caller.number.clone(),
        });
        if let Some(aor) = &caller_aor {
            self.calls.lines.adjust(aor, 0, 1);
        }
        let call = Call {
            id,
            uid: format!("{:016x}", rand::rng().random::<u64>()),
            tenant: tenant.clone(),
            caller,
            dialled: number,
            invite: request.clone(),
            server: Some(key),
            a_peer: peer.clone(),
            a_tag: format!("{:016x}", rand::rng().random::<u64>()),
            a_contact,
            offer,
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
            pending_ok: [None, None],
            silent: [false, false],
            held: false,
            started: SystemTime::now(),
            answered: None,
            decided_by: String::new(),
            parties: Parties {
                caller: caller_aor,
                callee: None,
            },
        };
        *self
            .calls
            .per_tenant
            .entry(tenant.code.clone())
            .or_default() += 1;
        self.calls.by_server.insert(key, id);
        info!(call = id, tenant = %tenant.code, caller = %call.caller.number,
            dialled = %call.dialled, "call started");
        let trying = Response::for_request(request, 100, None);
        self.respond(now, key, trying);
        let mut call = call;
        let caller_number = call.caller.number.clone();
        self.leg_event(
            &call,
            LegRole::Caller,
            Some(caller_number),
            LegState::Calling,
            None,
        );
        self.next_step(now, &mut call);
        self.put_back(call);
    }

    /// Digest authentication of a caller (RFC 3261 §22.3, 407): the same
    /// challenge for unknown users, tenants and wrong passwords. Returns
    /// the tenant and the caller, or answers the request itself.
    fn authenticate_caller(
        &mut self,
        now: Instant,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
    ) -> Option<(Arc<Tenant>, policy::Caller)> {
        let from = request
            .headers
            .get("From")
            .and_then(|v| parse_name_addr(v).ok());
        let (user, host) = from
            .as_ref()
            .and_then(|f| f.uri.as_sip())
            .map(|u| (u.user().unwrap_or("").to_owned(), u.host().to_string()))
            .unwrap_or_default();
        let addressed = self.directory.address(&user, &host);
        let realm = addressed
            .as_ref()
            .map(|a| a.tenant.domain.clone())
            .unwrap_or_else(|| host.to_ascii_lowercase());
        let wall = SystemTime::now();
        let unix = wall.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let verdict =
            match DigestResponse::select(request.headers.get_all("Proxy-Authorization"), &realm) {
                Err(verdict) => verdict,
                Ok(digest) => {
                    let credentials = addressed
                        .as_ref()
                        .and_then(|a| a.tenant.credentials.get(digest.username()))
                        .map(|(_, creds)| creds);
                    let target = DigestRequest {
                        realm: &realm,
                        method: "INVITE",
                        request_uri: Some(&request.uri),
                    };
                    self.auth.verify(unix, &target, &digest, credentials)
                }
            };
        let tag = request.stateless_tag();
        let (stale, failed) = match verdict {
            Verdict::Authenticated { username, .. } => {
                let addressed = addressed?;
                let tenant = addressed.tenant;
                let Some((number, _)) = tenant.credentials.get(&username) else {
                    self.respond(now, key, Response::for_request(request, 403, Some(&tag)));
                    return None;
                };
                let extension = tenant.extensions.get(number)?;
                let caller = policy::Caller {
                    number: extension.number.clone(),
                    name: Some(extension.name.clone()).filter(|n| !n.is_empty()),
                    kind: policy::CallerKind::Internal,
                    source: peer.addr().to_string(),
                };
                return Some((tenant, caller));
            }
            Verdict::NoCredentials => (false, false),
            Verdict::Stale => (true, false),
            Verdict::Rejected(_) => (false, true),
        };
        if failed {
            let ip = peer.addr().ip();
            let (reply, blocked) = self.throttle.record_failure(now, ip);
            if blocked {
                warn!(%ip, "source blocked after repeated authentication failures");
            }
            if reply == FailureReply::Suppress {
                self.transactions.abandon(TransactionKey::Server(key));
                return None;
            }
        }
        let mut response = Response::for_request(request, 407, Some(&tag));
        let nonce: [u8; 16] = rand::rng().random();
        for value in self.auth.challenge(unix, nonce, &realm, stale) {
            response.headers.push("Proxy-Authenticate", value);
        }
        self.respond(now, key, response);
        None
    }

    /// Asks the policy for the call's next step and carries it out: at once
    /// for the built-in policy; a tenant module's decision is made on the
    /// blocking pool and comes back through [`SipCore::decision_done`].
    fn next_step(&mut self, now: Instant, call: &mut Call) {
        if call.decisions >= self.calls.config.max_steps {
            warn!(call = call.id, "too many routing steps; refusing the call");
            return self.end(now, call, EndCause::Rejected(480));
        }
        call.decisions += 1;
        let directory = Arc::new(PolicyDirectory {
            tenant: call.tenant.clone(),
            lines: self.calls.lines.clone(),
            ring_timeout_secs: self.calls.config.ring_timeout_secs,
        });
        let context = policy_call(call, &directory);
        let policies = self.calls.policies.clone();
        let kv = self.calls.kv.clone();
        let tenant = call.tenant.code.clone();
        // The built-in policy is ours and decides in microseconds: right
        // here. A tenant's module may take its whole deadline, and
        // signalling for everyone else must not wait meanwhile: off this
        // task.
        if policies.active(&tenant).is_none() {
            let decided = policies.decide_builtin(&tenant, &context, directory, kv);
            return self.apply_decision(now, call, decided);
        }
        let reply = self.calls.decided_tx.clone();
        let id = call.id;
        tokio::task::spawn_blocking(move || {
            let decided = policies.decide(Instant::now(), &tenant, &context, directory, kv);
            let _ = reply.send(DecisionDone { call: id, decided });
        });
    }

    /// A decision came back; the call may have ended meanwhile.
    pub(super) fn decision_done(&mut self, now: Instant, done: DecisionDone) {
        let Some(mut call) = self.calls.calls.remove(&done.call) else {
            return;
        };
        self.apply_decision(now, &mut call, done.decided);
        self.put_back(call);
    }

    /// Carries out the policy's decision for the call's next step.
    fn apply_decision(&mut self, now: Instant, call: &mut Call, decided: Decided) {
        call.decided_by = describe(&decided.by);
        if let Some(gone) = decided.deactivated {
            self.persist
                .record_policy_deactivation(&call.tenant.code, gone.version);
        }
        if let Some(presentation) = decided.decision.presentation {
            call.presentation = Some(presentation);
        }
        debug!(call = call.id, action = ?decided.decision.action, by = %call.decided_by, "decision");
        match decided.decision.action {
            policy::Action::Reject(reject) => {
                self.end(now, call, EndCause::Rejected(reject.status))
            }
            policy::Action::Forward(number) => {
                let reachable = call.tenant.is_internal(&number)
                    || (call.tenant.outbound_trunk().is_some() && is_dialable(&number));
                if !reachable {
                    info!(call = call.id, %number, "forward to a number no trunk reaches");
                    return self.end(now, call, EndCause::Rejected(404));
                }
                // The call now belongs to the new number: its policy
                // decides from a fresh history.
                info!(call = call.id, from = %call.dialled, to = %number, "forwarded");
                call.dialled = number;
                call.history.clear();
                self.next_step(now, call);
            }
            // Voicemail boxes arrive with the voicemail service.
            policy::Action::Voicemail(_) => self.end(now, call, EndCause::Rejected(480)),
            policy::Action::Ring(ring) => {
                let action = policy::Action::Ring(ring.clone());
                let targets: VecDeque<policy::RingTarget> = ring.targets.into();
                match ring.mode {
                    policy::RingMode::Simultaneous => {
                        call.step = Some(Step {
                            action,
                            pending: VecDeque::new(),
                        });
                        for target in targets {
                            self.ring_target(now, call, &target);
                        }
                    }
                    policy::RingMode::Sequential => {
                        call.step = Some(Step {
                            action,
                            pending: targets,
                        });
                        self.ring_next_sequential(now, call);
                    }
                }
                if ringing(call) {
                    return;
                }
                // Nothing could be rung.
                let outcome = step_outcome(call);
                self.finish_step(call, outcome);
                self.next_step(now, call);
            }
        }
    }

    /// Rings the next target of a sequential step that has a device.
    fn ring_next_sequential(&mut self, now: Instant, call: &mut Call) {
        while let Some(target) = call.step.as_mut().and_then(|s| s.pending.pop_front()) {
            if self.ring_target(now, call, &target) > 0 {
                return;
            }
        }
    }

    /// Sends INVITEs to every device of one target; returns how many.
    fn ring_target(&mut self, now: Instant, call: &mut Call, target: &policy::RingTarget) -> usize {
        let timeout = Duration::from_secs(u64::from(target.timeout_secs.clamp(1, 600)));
        let (extension, device) = match &target.target {
            policy::Target::Extension(number) => (number.clone(), None),
            policy::Target::Device(d) => (d.extension.clone(), Some(d.device.clone())),
            policy::Target::External(number) => {
                return self.ring_external(now, call, number, timeout);
            }
        };
        let Some(ext) = call.tenant.resolve(&extension).cloned() else {
            call.unreachable.push(policy::Outcome::Failed);
            return 0;
        };
        let aor = Aor {
            tenant: call.tenant.code.clone(),
            extension: ext.number.clone(),
        };
        let bindings: Vec<_> = self
            .location
            .bindings(&aor)
            .iter()
            .filter(|b| device.as_ref().is_none_or(|d| *d == device_id(b)))
            .cloned()
            .collect();
        if bindings.is_empty() {
            call.unreachable.push(policy::Outcome::Offline);
            return 0;
        }
        let mut sent = 0;
        for binding in bindings {
            let direct = self.calls.media_config.direct_same_network
                && binding.source.addr().ip() == call.a_peer.addr().ip();
            let body = match self.offer_for_branch(call, &binding.source, direct) {
                Ok(body) => body,
                Err(error) => {
                    warn!(call = call.id, %error, "no media for the call");
                    call.unreachable.push(policy::Outcome::Failed);
                    continue;
                }
            };
            let mut invite =
                self.branch_invite(call, &binding.contact, &binding.source, &ext.number, body);
            let Some(key) = self.send_request(now, &mut invite, &binding.source) else {
                call.unreachable.push(policy::Outcome::Failed);
                continue;
            };
            let id = call.next_branch;
            call.next_branch += 1;
            self.calls
                .by_client
                .insert(key, (call.id, Role::Branch(id)));
            self.calls.arm(now + timeout, call.id, Timer::Branch(id));
            self.calls.lines.adjust(&aor, 1, 0);
            self.leg_event(
                call,
                LegRole::Callee,
                Some(aor.extension.clone()),
                LegState::Ringing,
                None,
            );
            call.branches.push(Branch {
                id,
                invite,
                peer: binding.source.clone(),
                aor: Some(aor.clone()),
                trunk: None,
                direct,
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
        call: &mut Call,
        number: &str,
        timeout: Duration,
    ) -> usize {
        let link = call.tenant.outbound_trunk().cloned();
        let (Some(link), true) = (link, is_dialable(number)) else {
            info!(call = call.id, %number, "external number skipped: no usable trunk");
            call.unreachable.push(policy::Outcome::Failed);
            return 0;
        };
        let Some(addr) = link.addr else {
            call.unreachable.push(policy::Outcome::Failed);
            return 0;
        };
        let peer = Peer::Udp(addr);
        let body = match self.offer_for_branch(call, &peer, false) {
            Ok(body) => body,
            Err(error) => {
                warn!(call = call.id, %error, "no media for the call");
                call.unreachable.push(policy::Outcome::Failed);
                return 0;
            }
        };
        let host = link.host_name().to_owned();
        let uri = format!("sip:{number}@{}", link.trunk.host);
        // Shown to the called party: the caller's own outbound number, else
        // the tenant's; a caller from outside keeps its number.
        let shown = match call.caller.kind {
            policy::CallerKind::External => call.caller.number.clone(),
            policy::CallerKind::Internal => call
                .tenant
                .resolve(&call.caller.number)
                .and_then(|e| e.settings.outbound_caller_id.clone())
                .or_else(|| link.trunk.caller_id.clone())
                .unwrap_or_else(|| call.caller.number.clone()),
        };
        let mut invite = self.branch_invite(call, &uri, &peer, number, body);
        invite.headers.set("To", format!("<sip:{number}@{host}>"));
        let from = invite.headers.get("From").unwrap_or_default().to_owned();
        let tag = from.rsplit_once(";tag=").map_or("", |(_, t)| t).to_owned();
        invite
            .headers
            .set("From", format!("<sip:{shown}@{host}>;tag={tag}"));
        let Some(key) = self.send_request(now, &mut invite, &peer) else {
            call.unreachable.push(policy::Outcome::Failed);
            return 0;
        };
        let id = call.next_branch;
        call.next_branch += 1;
        self.calls
            .by_client
            .insert(key, (call.id, Role::Branch(id)));
        self.calls.arm(now + timeout, call.id, Timer::Branch(id));
        self.leg_event(call, LegRole::Callee, None, LegState::Ringing, None);
        info!(call = call.id, trunk = %link.trunk.name, %number, "calling out");
        call.branches.push(Branch {
            id,
            invite,
            peer,
            aor: None,
            trunk: Some((link, false)),
            direct: false,
            state: BranchState::Calling,
            ack: None,
        });
        1
    }

    /// Answers a carrier's digest challenge to a branch's INVITE with a new
    /// INVITE; `true` when one left.
    fn retry_with_credentials(
        &mut self,
        now: Instant,
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
        let Some(mut invite) = authorized(&branch.invite, response, user, password) else {
            return false;
        };
        let (peer, id) = (branch.peer.clone(), branch.id);
        let Some(key) = self.send_request(now, &mut invite, &peer) else {
            return false;
        };
        self.calls
            .by_client
            .insert(key, (call.id, Role::Branch(id)));
        let branch = &mut call.branches[index];
        branch.invite = invite;
        if let Some((_, answered)) = &mut branch.trunk {
            *answered = true;
        }
        true
    }

    /// The description a branch is offered: the caller's own (direct
    /// media), or anchored on the call's B-side port.
    fn offer_for_branch(
        &mut self,
        call: &mut Call,
        peer: &Peer,
        direct: bool,
    ) -> Result<Option<Vec<u8>>, String> {
        if direct {
            return Ok(call.offer.as_ref().map(SessionDescription::to_bytes));
        }
        if call.media.is_none() {
            let session = self.calls.media.start(call.id).map_err(|e| e.to_string())?;
            call.media = Some(session);
        }
        let (Some(offer), Some(media)) = (&call.offer, &call.media) else {
            // Offerless INVITE: the callee offers in its 2xx.
            return Ok(None);
        };
        let anchored = anchor(offer, self.media_ip(peer), media.b_port, RELAYED_CODECS)
            .map_err(|e| e.to_string())?;
        if let Some(party) = anchored.party {
            media.announce(Side::A, party);
        }
        Ok(Some(anchored.description.to_bytes()))
    }

    /// The address written into descriptions sent to `peer`.
    fn media_ip(&mut self, peer: &Peer) -> IpAddr {
        match self.calls.media_config.advertise {
            Some(ip) => ip,
            None => self.local_ip_for(peer.addr()),
        }
    }

    /// The INVITE of one branch.
    fn branch_invite(
        &mut self,
        call: &Call,
        contact: &str,
        peer: &Peer,
        extension: &str,
        body: Option<Vec<u8>>,
    ) -> Request {
        let mut rng = rand::rng();
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
        let h = &mut request.headers;
        h.push("Max-Forwards", max_forwards.to_string());
        h.push(
            "From",
            format!(
                "{display}<sip:{number}@{domain}>;tag={:016x}",
                rng.random::<u64>()
            ),
        );
        h.push("To", format!("<sip:{extension}@{domain}>"));
        h.push("Call-ID", format!("{:032x}", rng.random::<u128>()));
        h.push("CSeq", "1 INVITE");
        h.push("Contact", self.our_contact(peer));
        h.push("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, OPTIONS");
        h.push("User-Agent", concat!("edgepbx/", env!("CARGO_PKG_VERSION")));
        if let Some(body) = body {
            h.push("Content-Type", "application/sdp");
            request.body = body;
        }
        request
    }

    /// Starts a client transaction for `request`, adding our Via to it
    /// (CANCEL copies it later).
    fn send_request(
        &mut self,
        now: Instant,
        request: &mut Request,
        peer: &Peer,
    ) -> Option<ClientKey> {
        let via = self.via_for(peer);
        request.headers.0.insert(
            0,
            edgepbx_sip::message::Header {
                name: "Via".into(),
                value: via,
            },
        );
        match self
            .transactions
            .start_client(now, request.clone(), peer.clone(), peer.reliable())
        {
            Ok(key) => Some(key),
            Err(error) => {
                warn!(%error, "request not sent");
                None
            }
        }
    }

    /// Sends an ACK (no transaction) with our Via.
    fn send_ack(&mut self, mut ack: Request, peer: &Peer) -> Request {
        let via = self.via_for(peer);
        ack.headers.0.insert(
            0,
            edgepbx_sip::message::Header {
                name: "Via".into(),
                value: via,
            },
        );
        let _ = self.outbound.send(peer, ack.to_bytes());
        ack
    }

    /// A response of a client transaction of the engine.
    pub(super) fn call_response(&mut self, now: Instant, key: ClientKey, response: Response) {
        let Some((id, role)) = self.calls.by_client.get(&key).cloned() else {
            return;
        };
        let Some(mut call) = self.calls.calls.remove(&id) else {
            return;
        };
        match role {
            Role::Branch(branch) => self.branch_response(now, &mut call, branch, response),
            Role::Relayed {
                server,
                request,
                to,
            } => self.relayed_response(now, &mut call, server, &request, to, response),
            Role::Fire => {}
        }
        self.put_back(call);
    }

    /// A client transaction of the engine failed (timeout, transport).
    pub(super) fn call_client_failed(&mut self, now: Instant, key: ClientKey) {
        let Some((id, role)) = self.calls.by_client.get(&key).cloned() else {
            return;
        };
        let Some(mut call) = self.calls.calls.remove(&id) else {
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
                self.branch_response(now, &mut call, branch, response);
            }
            Role::Relayed {
                server, request, ..
            } => {
                self.respond(now, server, Response::for_request(&request, 408, None));
                // A party that no longer answers inside its dialog is gone.
                if call.answered.is_some() {
                    self.end(now, &mut call, EndCause::Failure);
                }
            }
            Role::Fire => {}
        }
        self.put_back(call);
    }

    /// A client transaction of the engine is gone.
    pub(super) fn call_client_terminated(&mut self, key: ClientKey) {
        self.calls.by_client.remove(&key);
    }

    fn branch_response(&mut self, now: Instant, call: &mut Call, branch: u32, response: Response) {
        let Some(index) = call.branches.iter().position(|b| b.id == branch) else {
            return;
        };
        let status = response.status;
        match status {
            100 => {}
            101..=199 => self.branch_provisional(now, call, index, &response),
            200..=299 => self.branch_answered(now, call, index, response),
            401 | 407 if self.retry_with_credentials(now, call, index, &response) => {}
            _ => {
                let state = call.branches[index].state;
                if matches!(state, BranchState::Done(_)) {
                    return;
                }
                let outcome = match (state, status) {
                    (BranchState::Cancelling { timed_out: true }, _) => policy::Outcome::NoAnswer,
                    (_, 486 | 600) => policy::Outcome::Busy,
                    (_, 603) => policy::Outcome::Declined,
                    (_, 408 | 480) => policy::Outcome::NoAnswer,
                    _ => policy::Outcome::Failed,
                };
                self.branch_done(now, call, index, outcome);
            }
        }
    }

    fn branch_provisional(
        &mut self,
        now: Instant,
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
        if !call.early_media_sent
            && let Some(answer) = self.answer_for_a(call, direct, &response.body)
        {
            relayed.headers.push("Content-Type", "application/sdp");
            relayed.body = answer;
            call.early_media_sent = true;
        }
        if let Some(server) = call.server {
            self.respond(now, server, relayed);
        }
    }

    /// The description sent to A for a callee's description `body`.
    fn answer_for_a(&mut self, call: &mut Call, direct: bool, body: &[u8]) -> Option<Vec<u8>> {
        if body.is_empty() {
            return None;
        }
        let description = SessionDescription::parse(body).ok()?;
        if direct {
            return Some(body.to_vec());
        }
        let a_ip = self.media_ip(&call.a_peer);
        let media = call.media.as_ref()?;
        let anchored = anchor(&description, a_ip, media.a_port, RELAYED_CODECS).ok()?;
        if let Some(party) = anchored.party {
            media.announce(Side::B, party);
        }
        Some(anchored.description.to_bytes())
    }

    fn branch_answered(&mut self, now: Instant, call: &mut Call, index: usize, response: Response) {
        let branch = &call.branches[index];
        // A retransmitted 2xx: our ACK was lost.
        if let Some(ack) = branch.ack.clone() {
            let _ = self.outbound.send(&branch.peer, ack.to_bytes());
            return;
        }
        let Ok(mut dialog) = Dialog::as_uac(&branch.invite, &response) else {
            warn!(call = call.id, "a 2xx that creates no dialog; ignoring it");
            return;
        };
        dialog.early = false;
        let peer = branch.peer.clone();
        let b_seq = cseq_of(&branch.invite);
        let contact = self.our_contact(&peer);
        if call.b.is_some() || call.server.is_none() {
            // Another branch won, or the caller gave up: acknowledge and
            // hang up this one (RFC 3261 §13.2.2.4).
            let ack = self.send_ack(dialog.ack(b_seq), &peer);
            call.branches[index].ack = Some(ack);
            let mut bye = dialog.request(Method::from_token("BYE"), None);
            if let Some(key) = self.send_request(now, &mut bye, &peer) {
                self.calls.by_client.insert(key, (call.id, Role::Fire));
            }
            self.branch_done(now, call, index, policy::Outcome::Answered);
            return;
        }
        let direct = call.branches[index].direct;
        // The callee's answer, or its offer when the caller's INVITE had
        // none: either way anchored for the caller.
        let answer = self.answer_for_a(call, direct, &response.body);
        if call.offer.is_some() {
            let ack = self.send_ack(dialog.ack(b_seq), &peer);
            call.branches[index].ack = Some(ack);
        }
        if direct && let Some(media) = call.media.take() {
            self.calls.media.release(media);
        }
        self.calls
            .by_dialog
            .insert(dialog.id.clone(), (call.id, Side::B));
        call.b = Some(LegDialog {
            dialog,
            peer,
            contact,
        });
        call.branches[index].state = BranchState::Done(policy::Outcome::Answered);
        let aor = call.branches[index].aor.clone();
        if let Some(aor) = &aor {
            self.calls.lines.adjust(aor, -1, 1);
        }
        call.parties.callee = aor;
        self.calls
            .disarm(call.id, Timer::Branch(call.branches[index].id));
        // Everyone else stops ringing.
        for i in 0..call.branches.len() {
            if i != index {
                self.cancel_branch(now, call, i, false, Some(COMPLETED_ELSEWHERE));
            }
        }
        if let Some(step) = call.step.take() {
            call.history.push(policy::Attempt {
                action: step.action,
                outcome: policy::Outcome::Answered,
            });
        }
        // Answer the caller.
        let Some(server) = call.server.take() else {
            return;
        };
        self.calls.by_server.remove(&server);
        let mut ok = Response::for_request(&call.invite, 200, Some(&call.a_tag));
        ok.headers.push("Contact", call.a_contact.clone());
        ok.headers
            .push("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, OPTIONS");
        if let Some(answer) = answer {
            ok.headers.push("Content-Type", "application/sdp");
            ok.body = answer;
        }
        match Dialog::as_uas(&call.invite, &call.a_tag, false) {
            Ok(dialog) => {
                self.calls
                    .by_dialog
                    .insert(dialog.id.clone(), (call.id, Side::A));
                call.a = Some(LegDialog {
                    dialog,
                    peer: call.a_peer.clone(),
                    contact: call.a_contact.clone(),
                });
            }
            Err(error) => warn!(call = call.id, %error, "caller's INVITE makes no dialog"),
        }
        call.answered = Some(SystemTime::now());
        call.silent = [false, false];
        info!(call = call.id, "call answered");
        let callee = call.parties.callee.as_ref().map(|a| a.extension.clone());
        self.leg_event(call, LegRole::Callee, callee, LegState::Answered, None);
        let caller = call.caller.number.clone();
        self.leg_event(
            call,
            LegRole::Caller,
            Some(caller),
            LegState::Answered,
            None,
        );
        // The ACKs carry the CSeq of the INVITE they acknowledge (the
        // caller's is 2 after a 407, a carrier's 2 after its challenge).
        let forward_ack = call.offer.is_none().then_some(b_seq);
        let a_seq = cseq_of(&call.invite);
        self.send_ok(now, call, server, Side::A, ok, a_seq, forward_ack);
        let max = Duration::from_secs(self.calls.config.max_duration_secs);
        self.calls.arm(now + max, call.id, Timer::MaxDuration);
    }

    /// Sends a 2xx to an INVITE from `side` and retransmits it until the
    /// ACK arrives (RFC 3261 §13.3.1.4).
    #[allow(clippy::too_many_arguments)]
    fn send_ok(
        &mut self,
        now: Instant,
        call: &mut Call,
        server: ServerKey,
        side: Side,
        ok: Response,
        cseq: u32,
        forward_ack: Option<u32>,
    ) {
        self.respond(now, server, ok.clone());
        let t1 = self.transactions.config().timers.t1;
        call.pending_ok[side_index(side)] = Some(PendingOk {
            server,
            response: ok,
            cseq,
            interval: t1,
            give_up: now + t1 * 64,
            forward_ack,
        });
        self.calls.arm(now + t1, call.id, Timer::Retransmit(side));
    }

    fn cancel_branch(
        &mut self,
        now: Instant,
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
        self.calls.disarm(call.id, Timer::Branch(id));
        if let Some(cancel) = cancel
            && let Ok(key) =
                self.transactions
                    .start_client(now, cancel, peer.clone(), peer.reliable())
        {
            self.calls.by_client.insert(key, (call.id, Role::Fire));
        }
    }

    /// A branch ended without connecting.
    fn branch_done(
        &mut self,
        now: Instant,
        call: &mut Call,
        index: usize,
        outcome: policy::Outcome,
    ) {
        let branch = &mut call.branches[index];
        let was_ringing = !matches!(branch.state, BranchState::Done(_));
        branch.state = BranchState::Done(outcome);
        let (id, aor) = (branch.id, branch.aor.clone());
        if was_ringing && let Some(aor) = &aor {
            self.calls.lines.adjust(aor, -1, 0);
            let cause = if call.b.is_some() {
                "answered elsewhere"
            } else if call.server.is_none() {
                "caller gave up"
            } else {
                outcome_name(outcome)
            };
            self.leg_event(
                call,
                LegRole::Callee,
                Some(aor.extension.clone()),
                LegState::Ended,
                Some(cause),
            );
        }
        self.calls.disarm(call.id, Timer::Branch(id));
        if call.b.is_some() || call.server.is_none() || call.step.is_none() {
            return;
        }
        if ringing(call) {
            return;
        }
        // Sequential: on to the next target.
        if call.step.as_ref().is_some_and(|s| !s.pending.is_empty()) {
            self.ring_next_sequential(now, call);
            if ringing(call) {
                return;
            }
        }
        let outcome = step_outcome(call);
        self.finish_step(call, outcome);
        self.next_step(now, call);
    }

    /// Closes the current step with `outcome`.
    fn finish_step(&mut self, call: &mut Call, outcome: policy::Outcome) {
        call.branches.clear();
        call.unreachable.clear();
        if let Some(step) = call.step.take() {
            call.history.push(policy::Attempt {
                action: step.action,
                outcome,
            });
        }
    }

    /// CANCEL from the caller (the CANCEL itself is answered already).
    pub(super) fn cancel_call(
        &mut self,
        now: Instant,
        invite: ServerKey,
        reason: Option<&str>,
    ) -> bool {
        let Some(id) = self.calls.by_server.get(&invite).copied() else {
            return false;
        };
        let Some(mut call) = self.calls.calls.remove(&id) else {
            return false;
        };
        for i in 0..call.branches.len() {
            self.cancel_branch(now, &mut call, i, false, reason);
        }
        self.end(now, &mut call, EndCause::CallerCancelled);
        self.put_back(call);
        true
    }

    /// A request inside a dialog (To tag present).
    pub(super) fn in_dialog(&mut self, now: Instant, key: ServerKey, request: &Request) {
        let found =
            DialogId::of_received(request).and_then(|id| self.calls.by_dialog.get(&id).copied());
        let Some((id, side)) = found else {
            return self.respond(now, key, Response::for_request(request, 481, None));
        };
        let Some(mut call) = self.calls.calls.remove(&id) else {
            return self.respond(now, key, Response::for_request(request, 481, None));
        };
        self.dialog_request(now, &mut call, side, key, request);
        self.put_back(call);
    }

    fn dialog_request(
        &mut self,
        now: Instant,
        call: &mut Call,
        side: Side,
        key: ServerKey,
        request: &Request,
    ) {
        let leg = match side {
            Side::A => call.a.as_mut(),
            Side::B => call.b.as_mut(),
        };
        let Some(leg) = leg else {
            return self.respond(now, key, Response::for_request(request, 481, None));
        };
        if let Err(error) = leg.dialog.receive(request) {
            let status = match error {
                edgepbx_sip::dialog::DialogError::OutOfOrder { .. } => 500,
                _ => 481,
            };
            return self.respond(now, key, Response::for_request(request, status, None));
        }
        let method = request.method.as_str().to_ascii_uppercase();
        match method.as_str() {
            "BYE" => {
                self.respond(now, key, Response::for_request(request, 200, None));
                self.end(now, call, EndCause::HangUp(side));
            }
            "OPTIONS" => {
                let mut ok = Response::for_request(request, 200, None);
                ok.headers
                    .push("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, OPTIONS");
                self.respond(now, key, ok);
            }
            "INVITE" | "UPDATE" | "INFO" => self.relay_request(now, call, side, key, request),
            _ => self.respond(now, key, Response::for_request(request, 405, None)),
        }
    }

    /// Passes a re-INVITE, UPDATE or INFO to the other party.
    fn relay_request(
        &mut self,
        now: Instant,
        call: &mut Call,
        from: Side,
        key: ServerKey,
        request: &Request,
    ) {
        let to = from.other();
        let body = if request.body.is_empty() || !is_sdp(request) {
            Ok(request.body.clone())
        } else {
            self.anchor_for(call, to, &request.body)
        };
        let body = match body {
            Ok(body) => body,
            Err(status) => {
                return self.respond(now, key, Response::for_request(request, status, None));
            }
        };
        let target_leg = match to {
            Side::A => call.a.as_mut(),
            Side::B => call.b.as_mut(),
        };
        let Some(target_leg) = target_leg else {
            return self.respond(now, key, Response::for_request(request, 491, None));
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
        match self.send_request(now, &mut out, &peer) {
            Some(client) => {
                let role = Role::Relayed {
                    server: key,
                    request: Arc::new(request.clone()),
                    to,
                };
                self.calls.by_client.insert(client, (call.id, role));
            }
            None => self.respond(now, key, Response::for_request(request, 500, None)),
        }
    }

    /// Rewrites a description from the party opposite `to` for `to`.
    fn anchor_for(&mut self, call: &mut Call, to: Side, body: &[u8]) -> Result<Vec<u8>, u16> {
        let Some(media) = &call.media else {
            // Direct media: descriptions pass unchanged.
            return Ok(body.to_vec());
        };
        let description = SessionDescription::parse(body).map_err(|_| 400u16)?;
        let (peer, port) = match to {
            Side::A => (call.a_peer.clone(), media.a_port),
            Side::B => (
                call.b
                    .as_ref()
                    .map_or(call.a_peer.clone(), |b| b.peer.clone()),
                media.b_port,
            ),
        };
        let ip = self.media_ip(&peer);
        let media = call.media.as_ref().ok_or(500u16)?;
        let anchored = anchor(&description, ip, port, RELAYED_CODECS).map_err(|e| match e {
            AnchorError::Address => 400u16,
            _ => 488,
        })?;
        if let Some(party) = anchored.party {
            media.announce(to.other(), party);
        }
        call.held = description
            .media
            .iter()
            .find(|m| m.kind == "audio")
            .is_some_and(|m| m.direction() != Direction::SendRecv);
        Ok(anchored.description.to_bytes())
    }

    /// The answer to a request relayed to `to` goes back to the
    /// originator, its description anchored.
    fn relayed_response(
        &mut self,
        now: Instant,
        call: &mut Call,
        server: ServerKey,
        request: &Request,
        to: Side,
        response: Response,
    ) {
        if response.status < 101 {
            return;
        }
        let from = to.other();
        let body = if response.body.is_empty() {
            Vec::new()
        } else {
            self.anchor_for(call, from, &response.body)
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
            return self.respond(now, server, relayed);
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
            self.send_ack(ack, &peer);
        }
        let cseq = leg(call, from)
            .and_then(|l| l.dialog.remote_seq)
            .unwrap_or(1);
        self.send_ok(
            now,
            call,
            server,
            from,
            relayed,
            cseq,
            offerless.then_some(seq),
        );
    }

    /// An ACK outside any transaction: the ACK of a 2xx we sent.
    pub(super) fn dialog_ack(&mut self, request: &Request) {
        let Some((id, side)) =
            DialogId::of_received(request).and_then(|d| self.calls.by_dialog.get(&d).copied())
        else {
            return;
        };
        let Some(mut call) = self.calls.calls.remove(&id) else {
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
            self.calls.disarm(call.id, Timer::Retransmit(side));
            if let Some(PendingOk {
                forward_ack: Some(seq),
                ..
            }) = pending
            {
                self.forward_ack(&mut call, side.other(), seq, &request.body);
            }
        }
        self.put_back(call);
    }

    /// Sends the ACK carrying the answer of an offerless INVITE to `to`.
    fn forward_ack(&mut self, call: &mut Call, to: Side, seq: u32, body: &[u8]) {
        let body = if body.is_empty() {
            Vec::new()
        } else {
            self.anchor_for(call, to, body).unwrap_or_default()
        };
        let Some(leg) = leg(call, to) else { return };
        let mut ack = leg.dialog.ack(seq);
        if !body.is_empty() {
            ack.headers.push("Content-Type", "application/sdp");
            ack.body = body;
        }
        let peer = leg.peer.clone();
        self.send_ack(ack, &peer);
    }

    /// Fires due call timers.
    pub(super) fn call_timers(&mut self, now: Instant) {
        while let Some(entry) = self.calls.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, timer) = entry.remove();
            let Some(mut call) = self.calls.calls.remove(&id) else {
                continue;
            };
            self.call_timer(now, &mut call, timer);
            self.put_back(call);
        }
    }

    fn call_timer(&mut self, now: Instant, call: &mut Call, timer: Timer) {
        match timer {
            Timer::Branch(id) => {
                if let Some(index) = call.branches.iter().position(|b| b.id == id) {
                    debug!(call = call.id, branch = id, "target rang out");
                    self.cancel_branch(now, call, index, true, None);
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
                    return self.end(now, call, EndCause::NoAck);
                }
                let t2 = self.transactions.config().timers.t2;
                pending.interval = (pending.interval * 2).min(t2);
                let (server, response, next) = (
                    pending.server,
                    pending.response.clone(),
                    now + pending.interval,
                );
                if peer.as_ref().is_some_and(|p| !p.reliable()) {
                    self.respond(now, server, response);
                }
                self.calls.arm(next, call.id, Timer::Retransmit(side));
            }
            Timer::MaxDuration => {
                info!(call = call.id, "call reached its maximum duration");
                self.end(now, call, EndCause::MaxDuration);
            }
        }
    }

    /// A media relay event.
    pub(super) fn media_event(&mut self, now: Instant, event: MediaEvent) {
        let Some(mut call) = self.calls.calls.remove(&event.call) else {
            return;
        };
        match event.event {
            RelayEvent::Latched(side, address) => {
                debug!(call = call.id, ?side, %address, "media latched");
            }
            RelayEvent::Silent(side) => {
                call.silent[side_index(side)] = true;
                let limit = self.calls.config.media_timeout_secs;
                // A held call is silent on purpose.
                if limit > 0 && call.answered.is_some() && call.silent == [true, true] && !call.held
                {
                    info!(
                        call = call.id,
                        "no media from either party; ending the call"
                    );
                    self.end(now, &mut call, EndCause::MediaTimeout);
                }
            }
        }
        self.put_back(call);
    }

    /// Ends a call: answers or hangs up every party still there, frees its
    /// media and counts it out. The call stays in the table until its
    /// branches have finished cancelling.
    fn end(&mut self, now: Instant, call: &mut Call, cause: EndCause) {
        if let Some(server) = call.server.take() {
            self.calls.by_server.remove(&server);
            let status = match cause {
                EndCause::CallerCancelled => 487,
                EndCause::Rejected(status) if (300..700).contains(&status) => status,
                _ => 500,
            };
            let response = Response::for_request(&call.invite, status, Some(&call.a_tag));
            self.respond(now, server, response);
        }
        for i in 0..call.branches.len() {
            self.cancel_branch(now, call, i, false, None);
        }
        call.step = None;
        for side in [Side::A, Side::B] {
            let hung_up = cause == EndCause::HangUp(side);
            let leg = match side {
                Side::A => call.a.take(),
                Side::B => call.b.take(),
            };
            let Some(mut leg) = leg else { continue };
            self.calls.by_dialog.remove(&leg.dialog.id);
            if !hung_up {
                let mut bye = leg.dialog.request(Method::from_token("BYE"), None);
                if let Some(key) = self.send_request(now, &mut bye, &leg.peer) {
                    self.calls.by_client.insert(key, (call.id, Role::Fire));
                }
            }
        }
        call.pending_ok = [None, None];
        let mut relayed = (0, 0);
        if let Some(media) = call.media.take() {
            relayed = (
                media.counters.from_a.load(Ordering::Relaxed),
                media.counters.from_b.load(Ordering::Relaxed),
            );
            self.calls.media.release(media);
        }
        let answered = call.answered.is_some();
        let record = self.call_record(call, cause);
        let cause_text = cause.as_str();
        let caller = call.caller.number.clone();
        self.leg_event(
            call,
            LegRole::Caller,
            Some(caller),
            LegState::Ended,
            Some(&cause_text),
        );
        if answered {
            let callee = record.answered_by.clone();
            self.leg_event(
                call,
                LegRole::Callee,
                callee,
                LegState::Ended,
                Some(&cause_text),
            );
        }
        self.persist.record_call(record);
        if let Some(aor) = call.parties.caller.take() {
            self.calls.lines.adjust(&aor, 0, -1);
        }
        if let Some(aor) = call.parties.callee.take() {
            self.calls.lines.adjust(&aor, 0, -1);
        }
        if let Some(count) = self.calls.per_tenant.get_mut(&call.tenant.code) {
            *count = count.saturating_sub(1);
        }
        let duration = call
            .answered
            .and_then(|a| SystemTime::now().duration_since(a).ok())
            .map_or(0, |d| d.as_secs());
        let total = SystemTime::now()
            .duration_since(call.started)
            .map_or(0, |d| d.as_secs());
        info!(call = call.id, tenant = %call.tenant.code, caller = %call.caller.number,
            dialled = %call.dialled, answered, duration_secs = duration, total_secs = total,
            packets_from_caller = relayed.0, packets_from_callee = relayed.1,
            cause = %cause.as_str(), policy = %call.decided_by, "call ended");
        call.answered = None;
        call.decisions = usize::MAX;
    }

    /// The record of a call that ends now with `cause`.
    fn call_record(&self, call: &Call, cause: EndCause) -> CallRecord {
        let ended_at = SystemTime::now();
        let outcome = match cause {
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

    /// Publishes a leg's new state on the event bus.
    fn leg_event(
        &self,
        call: &Call,
        role: LegRole,
        extension: Option<String>,
        state: LegState,
        cause: Option<&str>,
    ) {
        self.events.publish(Event::Leg {
            tenant: call.tenant.code.clone(),
            call: call.uid.clone(),
            role,
            extension,
            state,
            cause: cause.map(str::to_owned),
        });
    }

    /// The calls in progress of `tenant`.
    pub(super) fn active_calls(&self, tenant: &str) -> Vec<ActiveCall> {
        let now = SystemTime::now();
        let mut list: Vec<ActiveCall> = self
            .calls
            .calls
            .values()
            .filter(|c| c.tenant.code == tenant)
            .map(|c| ActiveCall {
                id: c.uid.clone(),
                caller: c.caller.number.clone(),
                dialled: c.dialled.clone(),
                state: if c.answered.is_some() {
                    "answered"
                } else {
                    "ringing"
                },
                answered_by: c.parties.callee.as_ref().map(|a| a.extension.clone()),
                secs: now.duration_since(c.started).map_or(0, |d| d.as_secs()),
                policy: c.decided_by.clone(),
            })
            .collect();
        list.sort_by_key(|c| std::cmp::Reverse(c.secs));
        list
    }

    /// Returns a call to the table, unless it has ended and nothing of it
    /// is left to finish.
    fn put_back(&mut self, call: Call) {
        let ended = call.decisions == usize::MAX;
        if ended {
            self.calls.timers.retain(|_, (id, _)| *id != call.id);
            self.calls.by_client.retain(|_, (id, _)| *id != call.id);
            return;
        }
        self.calls.calls.insert(call.id, call);
    }
}

fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// Whether a branch of the current step is still ringing.
fn ringing(call: &Call) -> bool {
    call.branches
        .iter()
        .any(|b| !matches!(b.state, BranchState::Done(_)))
}

/// The dialog with one party, once established.
fn leg(call: &Call, side: Side) -> Option<&LegDialog> {
    match side {
        Side::A => call.a.as_ref(),
        Side::B => call.b.as_ref(),
    }
}

/// The outcome of a step from its branches' outcomes: someone who let it
/// ring beats a busy device, which beats a refusal.
fn step_outcome(call: &Call) -> policy::Outcome {
    let outcomes: Vec<policy::Outcome> = call
        .branches
        .iter()
        .filter_map(|b| match b.state {
            BranchState::Done(o) => Some(o),
            _ => None,
        })
        .chain(call.unreachable.iter().copied())
        .collect();
    combined_outcome(&outcomes)
}

/// The step's outcome from its targets' outcomes (see [`step_outcome`]).
fn combined_outcome(outcomes: &[policy::Outcome]) -> policy::Outcome {
    for wanted in [
        policy::Outcome::NoAnswer,
        policy::Outcome::Busy,
        policy::Outcome::Declined,
        policy::Outcome::Failed,
    ] {
        if outcomes.contains(&wanted) {
            return wanted;
        }
    }
    policy::Outcome::Offline
}

/// The sequence number of a request's CSeq (1 if it has none: never for a
/// request that passed the transaction layer).
fn cseq_of(request: &Request) -> u32 {
    request
        .headers
        .get("CSeq")
        .and_then(|v| parse_cseq(v).ok())
        .map_or(1, |c| c.seq)
}

/// Whether `number` can be dialled out: 1 to 32 digits, `+*#`.
fn is_dialable(number: &str) -> bool {
    (1..=MAX_NUMBER_LEN).contains(&number.len())
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+*#".contains(&b))
}

/// The number a carrier's INVITE is for: the Request-URI's user part, or
/// the To's when the Request-URI names the registration (carriers differ).
fn inbound_did(request: &Request) -> Option<String> {
    let user_of = |uri: &str| -> Option<String> {
        let uri: edgepbx_sip::grammar::Uri = uri.parse().ok()?;
        let user = uri.as_sip()?.user()?.to_owned();
        is_dialable(&user).then_some(user)
    };
    user_of(&request.uri).or_else(|| {
        let to = parse_name_addr(request.headers.get("To")?).ok()?;
        user_of(&to.uri.to_string())
    })
}

/// The caller of a carrier's INVITE, from its From.
fn external_caller(request: &Request, trunk: &str) -> policy::Caller {
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
    policy::Caller {
        number,
        name,
        kind: policy::CallerKind::External,
        source: trunk.to_owned(),
    }
}

/// `request` again with credentials answering `challenge` (a 401 or 407):
/// the next CSeq, no Via (the transaction adds one). `None` when the
/// challenge cannot be answered.
pub(super) fn authorized(
    request: &Request,
    challenge: &Response,
    user: &str,
    password: &str,
) -> Option<Request> {
    let (offered, answer) = if challenge.status == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    };
    let digest = DigestChallenge::pick(challenge.headers.get_all(offered))?;
    let cseq = parse_cseq(request.headers.get("CSeq")?).ok()?;
    let cnonce = format!("{:016x}", rand::rng().random::<u64>());
    let value = digest.authorization(
        request.method.as_str().as_ref(),
        &request.uri,
        user,
        password,
        &cnonce,
        1,
    );
    let mut next = request.clone();
    next.headers.remove("Via");
    next.headers.remove(answer);
    next.headers.set(
        "CSeq",
        format!("{} {}", cseq.seq.saturating_add(1), request.method.as_str()),
    );
    next.headers.push(answer, value);
    Some(next)
}

/// The number the caller dialled: the Request-URI's user part without a
/// `-TENANT` suffix, digits and `*#+` only.
fn dialled_number(request: &Request) -> Option<String> {
    let uri: edgepbx_sip::grammar::Uri = request.uri.parse().ok()?;
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

fn is_sdp(request: &Request) -> bool {
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

/// The context a policy decides on.
fn policy_call(call: &Call, directory: &PolicyDirectory) -> policy::Call {
    let destination = directory.destination(&call.dialled);
    let alias_of = call
        .tenant
        .resolve(&call.dialled)
        .filter(|e| e.number != call.dialled)
        .map(|e| e.number.clone());
    policy::Call {
        id: call.id.to_string(),
        tenant: call.tenant.code.clone(),
        caller: call.caller.clone(),
        dialled: policy::Dialled {
            number: call.dialled.clone(),
            alias_of,
            destination,
        },
        now: local_time(SystemTime::now()),
        entropy: rand::rng().random(),
        history: call.history.clone(),
    }
}

/// A decision context for a sample call from `caller` to `dialled` in the
/// tenant as it is now: what the console's "try a decision" runs.
pub fn sample_context(
    tenant: Arc<Tenant>,
    lines: Arc<Lines>,
    ring_timeout_secs: u32,
    caller: &str,
    dialled: &str,
    kv: BTreeMap<String, String>,
) -> edgepbx_policy::playground::Context {
    let directory = PolicyDirectory {
        tenant: tenant.clone(),
        lines,
        ring_timeout_secs,
    };
    let calling = tenant.resolve(caller);
    let caller = policy::Caller {
        number: calling.map_or_else(|| caller.to_owned(), |e| e.number.clone()),
        name: calling.map(|e| e.name.clone()).filter(|n| !n.is_empty()),
        kind: if calling.is_some() {
            policy::CallerKind::Internal
        } else {
            policy::CallerKind::External
        },
        source: "console".into(),
    };
    let mut numbers: Vec<&String> = tenant.extensions.keys().collect();
    numbers.sort();
    let mut groups: Vec<&String> = tenant.groups.keys().collect();
    groups.sort();
    edgepbx_policy::playground::Context {
        call: policy::Call {
            id: "try".into(),
            tenant: tenant.code.clone(),
            caller,
            dialled: policy::Dialled {
                number: dialled.to_owned(),
                alias_of: tenant
                    .resolve(dialled)
                    .filter(|e| e.number != dialled)
                    .map(|e| e.number.clone()),
                destination: directory.destination(dialled),
            },
            now: local_time(SystemTime::now()),
            entropy: rand::rng().random(),
            history: Vec::new(),
        },
        directory: edgepbx_policy::StaticDirectory {
            extensions: numbers
                .into_iter()
                .filter_map(|n| directory.extension(n))
                .collect(),
            groups: groups
                .into_iter()
                .filter_map(|n| edgepbx_policy::Directory::group(&directory, n))
                .collect(),
        },
        kv,
    }
}

/// The time of day a policy sees (UTC until tenants have time zones).
fn local_time(at: SystemTime) -> policy::LocalTime {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = match days % 7 {
        0 => policy::Weekday::Thursday,
        1 => policy::Weekday::Friday,
        2 => policy::Weekday::Saturday,
        3 => policy::Weekday::Sunday,
        4 => policy::Weekday::Monday,
        5 => policy::Weekday::Tuesday,
        _ => policy::Weekday::Wednesday,
    };
    policy::LocalTime {
        year: u16::try_from(year).unwrap_or(u16::MAX),
        month: u8::try_from(month).unwrap_or(1),
        day: u8::try_from(day).unwrap_or(1),
        weekday,
        hour: u8::try_from(secs % 86_400 / 3_600).unwrap_or(0),
        minute: u8::try_from(secs % 3_600 / 60).unwrap_or(0),
        time_zone: "UTC".into(),
    }
}

/// An outcome as events name it.
fn outcome_name(outcome: policy::Outcome) -> &'static str {
    match outcome {
        policy::Outcome::Answered => "answered",
        policy::Outcome::Busy => "busy",
        policy::Outcome::NoAnswer => "no answer",
        policy::Outcome::Offline => "offline",
        policy::Outcome::Declined => "declined",
        policy::Outcome::Failed => "failed",
    }
}

/// Who decided, for logs and records.
fn describe(by: &DecidedBy) -> String {
    match by {
        DecidedBy::Builtin => "builtin".into(),
        DecidedBy::Tenant { version, .. } => format!("v{version}"),
        DecidedBy::Fallback { version, .. } => format!("builtin (v{version} faulted)"),
        DecidedBy::LastResort { .. } => "none (builtin faulted)".into(),
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn a_challenge_is_answered_with_the_next_cseq() {
        let invite = request(
            "sip:0612345678@carrier.example",
            &[
                ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
                ("CSeq", "1 INVITE"),
            ],
        );
        let mut challenge = Response::for_request(&invite, 407, Some("t"));
        challenge.headers.push(
            "Proxy-Authenticate",
            "Digest realm=\"carrier\", nonce=\"abc\", qop=\"auth\", algorithm=MD5",
        );
        let next = authorized(&invite, &challenge, "acme", "secret").expect("answered");
        assert_eq!(next.headers.get("CSeq"), Some("2 INVITE"));
        assert_eq!(
            next.headers.get("Via"),
            None,
            "the transaction adds its own"
        );
        let answer = next.headers.get("Proxy-Authorization").unwrap_or_default();
        assert!(answer.contains("username=\"acme\""), "{answer}");
        assert!(
            answer.contains("uri=\"sip:0612345678@carrier.example\""),
            "{answer}"
        );
        // No challenge, no answer.
        let refusal = Response::for_request(&invite, 403, Some("t"));
        assert!(authorized(&invite, &refusal, "acme", "secret").is_none());
    }

    #[test]
    fn someone_who_let_it_ring_outweighs_a_busy_device() {
        use policy::Outcome::*;
        assert_eq!(combined_outcome(&[Busy, NoAnswer]), NoAnswer);
        assert_eq!(combined_outcome(&[Busy, Failed]), Busy);
        assert_eq!(combined_outcome(&[Declined, Offline]), Declined);
        assert_eq!(combined_outcome(&[Offline]), Offline);
        assert_eq!(combined_outcome(&[]), Offline);
    }
}
