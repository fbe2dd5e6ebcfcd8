//! The call engine: a back-to-back user agent.
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
//! [media slot](crate::output::MediaSlot) the driver relays, unless both
//! parties signal from the same address and `media.direct_same_network`
//! is on.
//!
//! Rooms:
//! - [`setup`]: a new INVITE: trunk or digest, limits, the offer.
//! - [`steps`]: asking the policy and carrying out its decisions.
//! - [`branches`]: forking to devices and carriers, cancellation.
//! - [`answers`]: what branches answer: ringing, early media, the 2xx
//!   that wins, failures.
//! - [`dialogs`]: requests inside established dialogs, relayed between
//!   the parties; 2xx retransmission and ACKs.
//! - [`anchoring`]: rewriting descriptions onto media slots.
//! - [`teardown`]: ending a call, its record and events, its timers.
//! - [`pickup`]: a phone answering a call that rings another extension.
//! - [`served`]: calls edgepbx answers itself (voicemail).
//! - [`reroute`]: a served call's caller connected elsewhere (the
//!   operator, a call back).
//! - [`watched`]: the calls of one number as its watchers see them
//!   (dialog state for BLF).
//!
//! A call is taken out of the table while it is worked on, so the engine
//! borrows the transaction layer and the call at the same time.

mod anchoring;
mod answers;
mod branches;
mod dialogs;
mod pickup;
mod reroute;
mod served;
mod setup;
mod steps;
mod teardown;
mod watched;
mod webrtc;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edgepbx_media::relay::Side;
use edgepbx_media::sdp::SessionDescription;
use edgepbx_sip::dialog::{Dialog, DialogId};
use edgepbx_sip::grammar::parse_cseq;
use edgepbx_sip::transaction::{ClientKey, ServerKey};
use edgepbx_sip::{Request, Response};

use crate::config::CallsConfig;
use crate::lines::Lines;
use crate::peer::Peer;
use crate::registrar::{Aor, Location};
use crate::routing::{Action, Attempt, Caller, Outcome, Presentation, RingTarget};
use crate::signalling::Signalling;
use crate::tenants::{Tenant, TrunkLink};

pub(crate) use anchoring::MediaSlots;
pub(crate) use watched::{DialogView, Direction};

/// The Reason of CANCELs sent to the branches that lost (RFC 3326).
const COMPLETED_ELSEWHERE: &str = "SIP;cause=200;text=\"Call completed elsewhere\"";

/// How long a decision may take to come back before the call is refused
/// with 500: far beyond any policy's deadline, for a decision lost on the
/// way (a thread that died).
const DECISION_TIMEOUT: Duration = Duration::from_secs(10);

/// The methods a call's parties may use, as our Allow header lists them.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, OPTIONS";

/// The engine's id of a call.
pub(crate) type CallId = u64;

/// What the call engine works with besides itself.
pub(crate) struct Cx<'a> {
    /// Transactions and outputs.
    pub sig: &'a mut Signalling,
    /// Bindings, for ringing extensions.
    pub location: &'a Location,
    /// The wall-clock time of the input being handled.
    pub wall: SystemTime,
}

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
    /// A re-INVITE moving the answered caller to new media (a served
    /// call connected elsewhere).
    Reoffer,
}

/// Timers of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Timer {
    /// A branch rang for its target's timeout.
    Branch(u32),
    /// Retransmit the 2xx awaiting `Side`'s ACK (RFC 3261 §13.3.1.4).
    Retransmit(Side),
    /// The call reached its maximum duration.
    MaxDuration,
    /// A cancelled branch's INVITE got no final answer within 64·T1 of its
    /// CANCEL: its transaction is given up (RFC 3261 §9.1).
    Cancelled(u32),
    /// The routing policy has not answered the call's pending decision.
    Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BranchState {
    Calling,
    Ringing,
    /// CANCEL sent; `timed_out` when the target rang out.
    Cancelling {
        timed_out: bool,
    },
    Done(Outcome),
}

/// One INVITE towards one device.
#[derive(Debug)]
struct Branch {
    id: u32,
    /// Its INVITE's client transaction.
    key: ClientKey,
    invite: Request,
    peer: Peer,
    aor: Option<Aor>,
    /// The trunk of a branch to an external number, and whether its
    /// INVITE already answered the carrier's challenge.
    trunk: Option<(Arc<TrunkLink>, bool)>,
    /// Media goes directly between the parties.
    direct: bool,
    /// A browser's branch: the WebRTC leg offered to it.
    browser: Option<webrtc::BrowserOffer>,
    state: BranchState,
    /// The 2xx's ACK, re-sent when the 2xx is retransmitted.
    ack: Option<Request>,
}

/// A ring step under way.
#[derive(Debug)]
struct Step {
    action: Action,
    /// Targets not yet rung (sequential mode).
    pending: VecDeque<RingTarget>,
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
    caller: Caller,
    /// The number being routed (changes on forward).
    dialled: String,
    /// The caller's INVITE.
    invite: Request,
    /// Its server transaction while unanswered.
    server: Option<ServerKey>,
    a_peer: Peer,
    a_tag: String,
    a_contact: String,
    /// The caller's offer (None: offerless INVITE), as the other party
    /// sees it: a browser's is made plain RTP.
    offer: Option<SessionDescription>,
    /// A browser's offer as it sent it, until edgepbx answers it.
    browser_offer: Option<String>,
    /// Each browser party's description as edgepbx last sent it (its
    /// leg's ICE and DTLS parameters, for later offers and answers).
    browser_sdp: [Option<String>; 2],
    /// The telephone-event payload type both parties agreed, when they
    /// did.
    telephone_event: Option<u8>,
    presentation: Option<Presentation>,
    history: Vec<Attempt>,
    /// Decisions asked so far; `usize::MAX` once the call has ended.
    decisions: usize,
    step: Option<Step>,
    branches: Vec<Branch>,
    /// Outcomes of the step's targets that could not be rung at all.
    unreachable: Vec<Outcome>,
    next_branch: u32,
    /// Provisional response with a description already sent to A.
    early_media_sent: bool,
    a: Option<LegDialog>,
    b: Option<LegDialog>,
    /// The ports its media is relayed on.
    media: Option<crate::output::MediaSlot>,
    /// edgepbx answered the call itself (voicemail), with this
    /// description.
    served: Option<SessionDescription>,
    /// The service waiting for the answer to edgepbx's offer (the caller
    /// offered nothing): it starts with the ACK.
    awaiting_answer: Option<crate::output::Service>,
    /// The caller, answered by edgepbx, waits while another number is
    /// routed for it (a served call connected elsewhere).
    rerouting: bool,
    /// The codec the caller agreed with edgepbx's own media: offers to
    /// devices are limited to it once the caller is answered.
    caller_codec: Option<edgepbx_media::endpoint::Codec>,
    pending_ok: [Option<PendingOk>; 2],
    /// A re-INVITE relayed to that side awaits its final answer: an INVITE
    /// from that side meanwhile is glare, answered 491 (RFC 3261 §14.2).
    reinviting: [bool; 2],
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
    /// The server is stopping.
    Shutdown,
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
            EndCause::Shutdown => "server shutting down".into(),
        }
    }
}

/// Every call, and how transactions, dialogs and timers find theirs.
pub(crate) struct Calls {
    config: CallsConfig,
    /// The DTLS certificate of browsers' legs.
    identity: edgepbx_media::webrtc::Identity,
    /// `media.direct_same_network`.
    direct_same_network: bool,
    lines: Arc<Lines>,
    media: MediaSlots,
    calls: HashMap<CallId, Call>,
    next_id: CallId,
    by_server: HashMap<ServerKey, CallId>,
    by_client: HashMap<ClientKey, (CallId, Role)>,
    by_dialog: HashMap<DialogId, (CallId, Side)>,
    /// Armed timers by deadline (and a sequence number, for equal ones)...
    timers: BTreeMap<(Instant, u64), (CallId, Timer)>,
    /// ...and the same by call and timer, so that disarming one does not
    /// look through every call's.
    armed: HashMap<(CallId, Timer), (Instant, u64)>,
    timer_seq: u64,
    per_tenant: HashMap<String, usize>,
}

impl Calls {
    /// No calls; media slots are asked of the driver through `sig`.
    pub fn new(
        config: CallsConfig,
        direct_same_network: bool,
        lines: Arc<Lines>,
        identity: edgepbx_media::webrtc::Identity,
        sig: &mut Signalling,
    ) -> Calls {
        let mut media = MediaSlots::default();
        media.replenish(sig);
        Calls {
            config,
            identity,
            direct_same_network,
            lines,
            media,
            calls: HashMap::new(),
            next_id: 0,
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            by_dialog: HashMap::new(),
            timers: BTreeMap::new(),
            armed: HashMap::new(),
            timer_seq: 0,
            per_tenant: HashMap::new(),
        }
    }

    /// Calls in progress (ended calls still cancelling branches aside).
    pub fn len(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.decisions != usize::MAX)
            .count()
    }

    /// The earliest call timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// The client transaction `key` belongs to a call.
    pub fn owns(&self, key: ClientKey) -> bool {
        self.by_client.contains_key(&key)
    }

    /// The slots of media ports ready for calls.
    pub fn media_slots(&mut self) -> &mut MediaSlots {
        &mut self.media
    }

    /// The calls in progress of `tenant`.
    pub fn active(&self, tenant: &str, wall: SystemTime) -> Vec<ActiveCall> {
        let mut list: Vec<ActiveCall> = self
            .calls
            .values()
            .filter(|c| c.tenant.code == tenant && c.decisions != usize::MAX)
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
                secs: wall.duration_since(c.started).map_or(0, |d| d.as_secs()),
                policy: c.decided_by.clone(),
            })
            .collect();
        list.sort_by_key(|c| std::cmp::Reverse(c.secs));
        list
    }

    /// Arms `timer` of `call` to fire `after` from `now`; a time beyond
    /// what `Instant` holds (a configured duration of centuries) never
    /// fires.
    fn arm(&mut self, now: Instant, after: Duration, call: CallId, timer: Timer) {
        self.disarm(call, timer);
        let Some(at) = now.checked_add(after) else {
            return;
        };
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), (call, timer));
        self.armed.insert((call, timer), (at, self.timer_seq));
    }

    fn disarm(&mut self, call: CallId, timer: Timer) {
        if let Some(key) = self.armed.remove(&(call, timer)) {
            self.timers.remove(&key);
        }
    }

    /// The earliest timer due by `now`, taken.
    fn due(&mut self, now: Instant) -> Option<(CallId, Timer)> {
        let entry = self.timers.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let (call, timer) = entry.remove();
        self.armed.remove(&(call, timer));
        Some((call, timer))
    }

    /// Ends every call: the server is stopping. Unanswered callers get
    /// 503, ringing devices CANCEL, answered parties BYE, and every call
    /// its record.
    pub(crate) fn end_all(&mut self, now: Instant, cx: &mut Cx<'_>) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            if let Some(mut call) = self.take(id) {
                self.end(now, cx, &mut call, EndCause::Shutdown);
                self.put_back(call);
            }
        }
    }

    /// Takes call `id` out of the table to work on it.
    fn take(&mut self, id: CallId) -> Option<Call> {
        self.calls.remove(&id)
    }

    /// Returns a call to the table, unless it has ended and nothing of it
    /// is left to finish: an ended call stays until every branch it
    /// cancelled has its final answer (a 2xx that crossed the CANCEL is
    /// acknowledged and hung up, the device's line stops ringing).
    fn put_back(&mut self, call: Call) {
        let ended = call.decisions == usize::MAX;
        if ended && !ringing(&call) {
            // end() disarmed the call's own timers; its branches' are
            // disarmed as they end, but a branch may not have ended.
            for branch in &call.branches {
                self.disarm(call.id, Timer::Branch(branch.id));
                self.disarm(call.id, Timer::Cancelled(branch.id));
            }
            self.by_client.retain(|_, (id, _)| *id != call.id);
            return;
        }
        self.calls.insert(call.id, call);
    }

    /// Changes a line's call counters, publishing what it shows.
    fn adjust_line(&self, sig: &mut Signalling, aor: &Aor, ringing: i32, talking: i32) {
        sig.touch(aor);
        sig.publish(self.lines.adjust(aor, ringing, talking));
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
fn step_outcome(call: &Call) -> Outcome {
    let outcomes: Vec<Outcome> = call
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
fn combined_outcome(outcomes: &[Outcome]) -> Outcome {
    for wanted in [
        Outcome::NoAnswer,
        Outcome::Busy,
        Outcome::Declined,
        Outcome::Failed,
    ] {
        if outcomes.contains(&wanted) {
            return wanted;
        }
    }
    Outcome::Offline
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn someone_who_let_it_ring_outweighs_a_busy_device() {
        use Outcome::*;
        assert_eq!(combined_outcome(&[Busy, NoAnswer]), NoAnswer);
        assert_eq!(combined_outcome(&[Busy, Failed]), Busy);
        assert_eq!(combined_outcome(&[Declined, Offline]), Declined);
        assert_eq!(combined_outcome(&[Offline]), Offline);
        assert_eq!(combined_outcome(&[]), Offline);
    }
}
