//! The engine: one state machine for everything signalling does.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edgepbx_media::relay::Event as RelayEvent;
use edgepbx_sip::dialog::DialogId;
use edgepbx_sip::parse::{ParseError, error_response};
use edgepbx_sip::transaction::{
    Incoming, ServerKey, TransactionEvent, TransactionKey, TransactionLayer,
};
use edgepbx_sip::uas::{UasPolicy, inspect};
use edgepbx_sip::{Message, Method, Request, Response};
use tracing::{debug, info, info_span};

use crate::calls::{ActiveCall, Calls, Cx};
use crate::config::EngineConfig;
use crate::digest::DigestGate;
use crate::events::Event;
use crate::keepalive::{Keepalive, Ping};
use crate::lines::Lines;
use crate::output::{MediaSlot, Output};
use crate::peer::{Peer, StreamKind};
use crate::registrar::{self, Aor, Change, Entropy, Location, RemovalReason};
use crate::resync::{check_sync_request, is_phone};
use crate::routing::Decided;
use crate::signalling::{LocalRoutes, Signalling};
use crate::subscriptions::{SubscriptionInfo, Subscriptions, Sx};
use crate::tenants::TenantTable;
use crate::trunks::TrunkRegistrations;
use edgepbx_model::Mac;

/// How often bindings expire, keepalives go out and trunks re-register.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Methods this server handles itself.
fn allowed_methods() -> Vec<Method> {
    vec![
        rsip::Method::Register.into(),
        rsip::Method::Options.into(),
        rsip::Method::Invite.into(),
        rsip::Method::Ack.into(),
        rsip::Method::Cancel.into(),
        rsip::Method::Bye.into(),
        rsip::Method::Update.into(),
        rsip::Method::Info.into(),
        rsip::Method::Subscribe.into(),
    ]
}

/// Body types accepted in requests: session descriptions, what phones put
/// in the INFO requests a B2BUA passes between parties (DTMF digits, video
/// picture requests), and feature key requests.
const ACCEPTED_BODIES: &[&str] = &[
    "application/sdp",
    "application/dtmf-relay",
    "application/dtmf",
    "application/media_control+xml",
    // What a phone's feature key sends in its SUBSCRIBE.
    "application/x-as-feature-event+xml",
];

/// A registered device as the registrar knows it now.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Its contact URI.
    pub contact: String,
    /// Its User-Agent.
    pub user_agent: Option<String>,
    /// Its RFC 5626 instance id.
    pub instance: Option<String>,
    /// Where it registered from, over which transport.
    pub source: Peer,
    /// When its registration expires.
    pub expires_at: SystemTime,
    /// When it was last heard: its last REGISTER, or its last answer to a
    /// keepalive OPTIONS.
    pub last_seen: Option<SystemTime>,
    /// What it subscribed to (BLF keys, buddies, its mailbox).
    pub subscriptions: Vec<SubscriptionInfo>,
}

/// The PBX's signalling as a state machine: the registrar, the digest
/// gate, the call engine (a B2BUA), trunk registrations and keepalives,
/// over the transaction layer of `edgepbx-sip`.
///
/// It does no I/O, starts no thread and reads no clock. The driver feeds
/// it with `handle_*` calls, each given the current `now` (and the wall
/// time where records and answers need it), and then drains it:
///
/// 1. call [`Engine::poll_output`] until it returns `None`, carrying out
///    each [`Output`] (sending, asking the policy, media, store, events);
///    an output's answer (a decision, a media slot, a send error) is fed
///    back with its `handle_*` call, in the same drain or later;
/// 2. sleep until [`Engine::poll_timeout`] (or the next input), then call
///    [`Engine::handle_timeout`].
pub struct Engine {
    sig: Signalling,
    uas: UasPolicy,
    tenants: Arc<TenantTable>,
    location: Location,
    gate: DigestGate,
    lines: Arc<Lines>,
    calls: Calls,
    subs: Subscriptions,
    /// New and old voice messages per mailbox (none: empty).
    mailboxes: HashMap<Aor, (u32, u32)>,
    trunks: TrunkRegistrations,
    keepalive: Keepalive,
    /// WebSockets that bindings were registered over: closing one takes
    /// its bindings offline (a browser is reachable over its socket only;
    /// a TCP device may still be reached over UDP at its address).
    registered_flows: HashSet<u64>,
    /// When bindings expire and keepalives go out next.
    next_housekeeping: Instant,
}

impl Engine {
    /// An engine at `now` with `tenants` and the bindings restored in
    /// `location`; `seed` seeds every random choice (tags, branches,
    /// Call-IDs, nonces), `routes` answers which local address reaches a
    /// peer, `lines` is the live line state it keeps for readers, and
    /// `identity` the DTLS certificate of browsers' media legs.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        config: EngineConfig,
        seed: [u8; 32],
        routes: Box<dyn LocalRoutes>,
        tenants: Arc<TenantTable>,
        location: Location,
        lines: Arc<Lines>,
        identity: edgepbx_media::webrtc::Identity,
    ) -> Engine {
        let mut sig = Signalling::new(
            TransactionLayer::new(config.transactions),
            seed,
            routes,
            config.ports,
            config.media.advertise,
        );
        // Restored bindings are the lines' devices from the start.
        for (aor, bindings) in location.iter() {
            sig.publish(lines.set_devices(aor, bindings));
        }
        let calls = Calls::new(
            config.calls.clone(),
            config.media.direct_same_network,
            lines.clone(),
            identity,
            &mut sig,
        );
        let mut engine = Engine {
            uas: UasPolicy {
                allowed_methods: allowed_methods(),
                accepted_content_types: ACCEPTED_BODIES.iter().map(|t| (*t).to_owned()).collect(),
                // An INVITE picking a call up may require Replaces.
                supported_extensions: vec!["replaces".to_owned()],
                ..UasPolicy::default()
            },
            // Nonces are good for this run only (see `boot_key`).
            gate: DigestGate::new(
                edgepbx_sip::auth::boot_key(&config.server_key, &seed),
                &config.security,
            ),
            keepalive: Keepalive::new(config.registrar.keepalive_interval_secs),
            registered_flows: HashSet::new(),
            sig,
            tenants,
            location,
            lines,
            calls,
            subs: Subscriptions::new(config.subscriptions),
            mailboxes: HashMap::new(),
            trunks: TrunkRegistrations::default(),
            next_housekeeping: now + HOUSEKEEPING,
        };
        engine
            .trunks
            .housekeeping(now, &mut engine.sig, &engine.tenants);
        engine
    }

    // ----- inputs -----------------------------------------------------

    /// A message from `peer`. A blocked source is ignored, but for
    /// responses (the transaction layer takes only those that answer
    /// edgepbx's own requests) and for a configured carrier, whose address
    /// anyone may spoof.
    pub fn handle_message(&mut self, now: Instant, wall: SystemTime, peer: Peer, message: Message) {
        let ip = peer.addr().ip();
        // The exemptions are looked up only for a blocked source: nothing
        // is added to the path of every other message.
        let refused = !self.gate.admits(now, ip)
            && !matches!(message, Message::Response(_))
            && !self.tenants.is_carrier(ip);
        if refused {
            return;
        }
        match message {
            Message::Request(request) => self.handle_request(now, wall, request, peer),
            Message::Response(response) => {
                self.sig.transactions.handle_response(now, response, peer)
            }
        }
        self.settle(now, wall);
    }

    /// Bytes from `peer` that did not parse: answered with a 400 when they
    /// look like a request, else dropped.
    pub fn handle_malformed(&mut self, now: Instant, peer: Peer, bytes: &[u8], error: &ParseError) {
        if !self.gate.admits(now, peer.addr().ip()) {
            return;
        }
        debug!(%error, addr = %peer.addr(), "malformed message");
        if let Some(response) = error_response(bytes, error) {
            self.sig.send(&peer, Message::Response(response));
        }
    }

    /// A stream connection opened.
    pub fn handle_connected(&mut self, conn: u64) {
        self.sig.connected(conn);
    }

    /// A stream connection closed: its subscriptions end, and if it is a
    /// WebSocket, its bindings go offline at once (nothing else reaches a
    /// browser until it connects again).
    pub fn handle_closed(&mut self, now: Instant, wall: SystemTime, conn: u64) {
        self.sig.closed(conn);
        self.subs.handle_closed(conn);
        if self.registered_flows.remove(&conn) {
            let gone = self.location.disconnected(conn);
            self.apply_changes(now, wall, gone);
            self.settle(now, wall);
        }
    }

    /// What was sent by `transaction` could not be (connection gone, queue
    /// full).
    pub fn handle_send_error(
        &mut self,
        now: Instant,
        wall: SystemTime,
        transaction: TransactionKey,
    ) {
        self.sig.transactions.handle_transport_error(transaction);
        self.settle(now, wall);
    }

    /// Time passed: timers due by `now` fire.
    pub fn handle_timeout(&mut self, now: Instant, wall: SystemTime) {
        self.sig.transactions.handle_timeout(now);
        self.settle(now, wall);
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        self.calls.handle_timeout(now, &mut cx);
        let (subs, mut sx) = self.watching(wall);
        subs.handle_timeout(now, &mut sx);
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING;
            self.housekeeping(now, wall);
        }
        self.settle(now, wall);
    }

    /// A routing decision asked with [`Output::Decide`] came back.
    pub fn handle_decision(&mut self, now: Instant, wall: SystemTime, decided: Decided) {
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        self.calls.handle_decision(now, &mut cx, decided);
        self.settle(now, wall);
    }

    /// A media slot asked with [`MediaCommand::Reserve`](crate::MediaCommand::Reserve)
    /// is bound (`None`: it could not be).
    pub fn handle_media_slot(&mut self, slot: Option<MediaSlot>) {
        self.calls.media_slots().reserved(slot);
    }

    /// A call's relay reported something.
    pub fn handle_media_event(
        &mut self,
        now: Instant,
        wall: SystemTime,
        call: u64,
        event: RelayEvent,
    ) {
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        self.calls.handle_media_event(now, &mut cx, call, event);
        self.settle(now, wall);
    }

    /// The service of a call edgepbx answered itself
    /// ([`MediaCommand::Serve`](crate::MediaCommand::Serve)) is over: the
    /// caller is hung up.
    pub fn handle_service_done(&mut self, now: Instant, wall: SystemTime, call: u64) {
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        self.calls.handle_service_done(now, &mut cx, call);
        self.settle(now, wall);
    }

    /// The voicemail session of call `call` asks to connect its caller to
    /// `number` (the operator, a call back): routed like a forward.
    pub fn handle_service_transfer(
        &mut self,
        now: Instant,
        wall: SystemTime,
        call: u64,
        number: String,
    ) {
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        self.calls
            .handle_service_transfer(now, &mut cx, call, number);
        self.settle(now, wall);
    }

    /// Mailbox `aor` holds `new` unheard and `old` kept voice messages:
    /// its message-summary watchers (the phones' message lamps) are told.
    pub fn handle_mailbox(&mut self, now: Instant, wall: SystemTime, aor: Aor, new: u32, old: u32) {
        if (new, old) == (0, 0) {
            self.mailboxes.remove(&aor);
        } else {
            self.mailboxes.insert(aor.clone(), (new, old));
        }
        self.sig.touch(&aor);
        self.settle(now, wall);
    }

    /// The configuration changed: new requests see `tenants` (calls under
    /// way keep the tenant they started with).
    pub fn handle_tenants(&mut self, now: Instant, wall: SystemTime, tenants: Arc<TenantTable>) {
        info!(
            tenants = tenants.tenants().count(),
            "configuration reloaded"
        );
        // A reload swaps one tenant's entry: the others are the same
        // allocations, and their watchers have nothing new to see.
        let changed: HashSet<String> = tenants
            .tenants()
            .filter(|t| {
                self.tenants
                    .tenant(&t.code)
                    .is_none_or(|old| !Arc::ptr_eq(old, t))
            })
            .chain(
                self.tenants
                    .tenants()
                    .filter(|t| tenants.tenant(&t.code).is_none()),
            )
            .map(|t| t.code.clone())
            .collect();
        self.tenants = tenants;
        self.trunks.housekeeping(now, &mut self.sig, &self.tenants);
        let (subs, mut sx) = self.watching(wall);
        subs.handle_tenants(now, &mut sx, &changed);
        self.settle(now, wall);
    }

    // ----- outputs ----------------------------------------------------

    /// The next thing to do; `None` when there is nothing until the next
    /// input or [`Engine::poll_timeout`].
    pub fn poll_output(&mut self) -> Option<Output> {
        self.sig.poll()
    }

    /// When [`Engine::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.sig.transactions.poll_timeout(),
            self.calls.poll_timeout(),
            self.subs.poll_timeout(),
            Some(self.next_housekeeping),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- queries ----------------------------------------------------

    /// The calls in progress of `tenant`.
    pub fn active_calls(&self, tenant: &str, wall: SystemTime) -> Vec<ActiveCall> {
        self.calls.active(tenant, wall)
    }

    /// The devices registered for an extension, with their subscriptions.
    pub fn devices(&self, aor: &Aor) -> Vec<DeviceInfo> {
        let subscriptions = self.subs.of_extension(aor);
        self.location
            .bindings(aor)
            .iter()
            .map(|b| DeviceInfo {
                contact: b.contact.clone(),
                user_agent: b.user_agent.clone(),
                instance: b.instance.clone(),
                source: b.source.clone(),
                expires_at: b.expires_at,
                last_seen: self.keepalive.last_seen(aor, &b.contact),
                subscriptions: subscriptions
                    .iter()
                    .filter(|s| s.device == b.contact)
                    .cloned()
                    .collect(),
            })
            .collect()
    }

    /// The subscriptions made by the devices of an extension, registered
    /// or not.
    pub fn subscriptions(&self, aor: &Aor) -> Vec<SubscriptionInfo> {
        self.subs.of_extension(aor)
    }

    /// Tells desk phone `mac` of extension `aor` to fetch its
    /// configuration again: a NOTIFY with `event` (`check-sync` and its
    /// parameters, as the phone's vendor reads it) to each binding of
    /// `aor` that is that phone ([`Binding`](crate::registrar::Binding)'s
    /// User-Agent or instance id names the MAC). Returns how many went out.
    pub fn handle_resync(&mut self, now: Instant, aor: &Aor, mac: &Mac, event: &str) -> usize {
        let Some(domain) = self.tenants.tenant(&aor.tenant).map(|t| t.domain.clone()) else {
            return 0;
        };
        let phones: Vec<(String, Peer)> = self
            .location
            .bindings(aor)
            .iter()
            .filter(|b| is_phone(b, mac))
            .map(|b| (b.contact.clone(), b.source.clone()))
            .collect();
        let mut sent = 0;
        for (contact, source) in phones {
            if !self.sig.is_open(&source) {
                continue;
            }
            let mut request = check_sync_request(&mut self.sig, &contact, &domain, event);
            if self.sig.send_request(now, &mut request, &source).is_some() {
                sent += 1;
            }
        }
        sent
    }

    /// The server is stopping: every call ends now, with its BYEs (or
    /// CANCELs, or a 503 to a caller still waiting) and its record. The
    /// driver keeps feeding responses and timers for a short grace so
    /// that lost BYEs are retransmitted.
    pub fn handle_shutdown(&mut self, now: Instant, wall: SystemTime) {
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        self.calls.end_all(now, &mut cx);
        self.settle(now, wall);
    }

    /// Whether a stopping server may go: no call left, and no request of
    /// its own (a BYE, a CANCEL) still waiting for its final response.
    pub fn is_settled(&self) -> bool {
        self.calls.len() == 0 && self.sig.transactions.awaiting_final() == 0
    }

    /// Bindings, calls and subscriptions, for the log at shutdown.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.location.len(), self.calls.len(), self.subs.len())
    }

    /// The live line state the engine keeps.
    pub fn lines(&self) -> &Arc<Lines> {
        &self.lines
    }

    /// The subscriptions, and what they read and send through.
    fn watching(&mut self, wall: SystemTime) -> (&mut Subscriptions, Sx<'_>) {
        let sx = Sx {
            sig: &mut self.sig,
            gate: &mut self.gate,
            tenants: &self.tenants,
            calls: &self.calls,
            lines: &self.lines,
            mailboxes: &self.mailboxes,
            wall,
        };
        (&mut self.subs, sx)
    }

    // ----- dispatch ---------------------------------------------------

    fn handle_request(&mut self, now: Instant, wall: SystemTime, mut request: Request, peer: Peer) {
        stamp_via(&mut request, &peer);
        let reliable = peer.reliable();
        match self
            .sig
            .transactions
            .handle_request(now, request, peer.clone(), reliable)
        {
            Incoming::New(key, request) => {
                let span = info_span!(
                    "transaction",
                    method = %request.method,
                    call_id = request.headers.get("Call-ID").unwrap_or_default(),
                    source = %peer.addr(),
                );
                span.in_scope(|| self.dispatch(now, wall, key, &request, &peer));
            }
            Incoming::Rejected { request, error } => {
                // Unusable Via/CSeq or over the transaction limit: answer
                // statelessly (never an ACK).
                debug!(%error, "request refused by the transaction layer");
                if let (Some(status), false) = (error.status_code(), request.method.is_ack()) {
                    let response = Response::for_request(&request, status, None);
                    self.sig.send(&peer, Message::Response(response));
                }
            }
            // The ACK of a 2xx belongs to a call's dialog.
            Incoming::Ack(request) => {
                let mut cx = Cx {
                    sig: &mut self.sig,
                    location: &self.location,
                    wall,
                };
                self.calls.handle_ack(now, &mut cx, &request);
            }
            Incoming::Absorbed => {}
        }
    }

    fn dispatch(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
    ) {
        if let Err(response) = inspect(request, &self.uas) {
            return self.sig.respond(now, key, response);
        }
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        // Only these two mean something else inside a dialog; the others
        // (REGISTER above all) skip parsing From and To for it.
        let in_dialog = || DialogId::of_received(request).is_some();
        let response = match &request.method {
            Method::Known(rsip::Method::Invite | rsip::Method::Options) if in_dialog() => {
                return self.calls.handle_in_dialog(now, &mut cx, key, request);
            }
            Method::Known(rsip::Method::Bye | rsip::Method::Update | rsip::Method::Info) => {
                return self.calls.handle_in_dialog(now, &mut cx, key, request);
            }
            Method::Known(rsip::Method::Invite) => {
                return self.calls.handle_invite(
                    now,
                    &mut cx,
                    &mut self.gate,
                    &self.tenants,
                    key,
                    request,
                    peer,
                );
            }
            Method::Known(rsip::Method::Register) => {
                return self.register(now, wall, key, request, peer);
            }
            Method::Known(rsip::Method::Subscribe) => {
                let (subs, mut sx) = self.watching(wall);
                return subs.handle_subscribe(now, &mut sx, key, request, peer);
            }
            Method::Known(rsip::Method::Options) => {
                let tag = cx.sig.tag();
                let mut r = Response::for_request(request, 200, Some(&tag));
                let allow: Vec<String> = self
                    .uas
                    .allowed_methods
                    .iter()
                    .map(|m| m.to_string())
                    .collect();
                r.headers.push("Allow", allow.join(", "));
                r.headers.push("Accept", "application/sdp");
                r
            }
            // RFC 3261 §9.2: a CANCEL is answered at once; the INVITE it
            // matched then gets its 487.
            Method::Known(rsip::Method::Cancel) => {
                match cx.sig.transactions.cancel_target(request) {
                    Some(invite) => {
                        cx.sig
                            .respond(now, key, Response::for_request(request, 200, None));
                        self.calls
                            .cancel_call(now, &mut cx, invite, request.headers.get("Reason"));
                        return;
                    }
                    None => Response::for_request(request, 481, None),
                }
            }
            _ => Response::for_request(request, 405, None),
        };
        self.sig.respond(now, key, response);
    }

    fn register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
    ) {
        let entropy = Entropy {
            nonce: self.sig.random_bytes(),
            tag: self.sig.random(),
        };
        let outcome = registrar::register(
            now,
            wall,
            entropy,
            &self.tenants,
            &mut self.gate,
            &mut self.location,
            request,
            peer,
        );
        match outcome {
            registrar::Outcome::Answer(response, changes) => {
                self.apply_changes(now, wall, changes);
                self.sig.respond(now, key, response);
            }
            registrar::Outcome::Silence => {
                self.sig.transactions.abandon(TransactionKey::Server(key));
            }
        }
    }

    /// Keeps the lines and keepalives in step with binding changes, and
    /// hands the changes to the store.
    fn apply_changes(&mut self, now: Instant, wall: SystemTime, changes: Vec<Change>) {
        for change in changes {
            match &change {
                Change::Added(aor, b)
                | Change::Refreshed {
                    aor, binding: b, ..
                } => {
                    self.keepalive.registered(aor, &b.contact, now, wall);
                    if let Peer::Stream {
                        conn,
                        kind: StreamKind::Ws | StreamKind::Wss,
                        ..
                    } = b.source
                    {
                        self.registered_flows.insert(conn);
                    }
                    if let Change::Added(..) = change {
                        self.devices_changed(aor);
                        self.sig.push(Output::Event(Event::Device {
                            tenant: aor.tenant.clone(),
                            extension: aor.extension.clone(),
                            contact: b.contact.clone(),
                            online: true,
                            reason: None,
                        }));
                        info!(tenant = %aor.tenant, extension = %aor.extension,
                            source = %b.source.addr(), "binding online");
                    }
                }
                Change::Removed(aor, b, reason) => {
                    self.keepalive.forget(aor, &b.contact);
                    self.devices_changed(aor);
                    self.sig.push(Output::Event(Event::Device {
                        tenant: aor.tenant.clone(),
                        extension: aor.extension.clone(),
                        contact: b.contact.clone(),
                        online: false,
                        reason: Some(reason.as_str().to_owned()),
                    }));
                    info!(tenant = %aor.tenant, extension = %aor.extension,
                        reason = reason.as_str(), "binding offline");
                }
            }
            if !matches!(change, Change::Refreshed { write: false, .. }) {
                self.sig.push(Output::Binding { at: wall, change });
            }
        }
    }

    fn devices_changed(&mut self, aor: &Aor) {
        self.sig.touch(aor);
        let event = self.lines.set_devices(aor, self.location.bindings(aor));
        self.sig.publish(event);
    }

    fn housekeeping(&mut self, now: Instant, wall: SystemTime) {
        self.trunks.housekeeping(now, &mut self.sig, &self.tenants);
        let expired = self.location.expire(now);
        self.apply_changes(now, wall, expired);
        self.gate.evict(now);
        for (aor, contact, source) in self.keepalive.due(now, &self.location) {
            if !self.sig.is_open(&source) {
                let change = self
                    .location
                    .remove(&aor, &contact, RemovalReason::Unreachable);
                self.apply_changes(now, wall, change.into_iter().collect());
                continue;
            }
            let domain = match self.tenants.tenant(&aor.tenant) {
                Some(t) => t.domain.clone(),
                None => self.sig.local_ip_for(source.addr()).to_string(),
            };
            let mut request = self
                .sig
                .request_to(rsip::Method::Options.into(), &contact, &domain);
            if let Some(key) = self.sig.send_request(now, &mut request, &source) {
                self.keepalive.sent(key, Ping { aor, contact });
            }
        }
    }

    /// Handles what the transaction layer reports until it has nothing
    /// more: handling one event (a call answered) often causes more (the
    /// CANCELs of the other branches).
    fn settle(&mut self, now: Instant, wall: SystemTime) {
        while let Some(event) = self.sig.transactions.poll_event() {
            self.transaction_event(now, wall, event);
        }
        let touched = self.sig.take_touched();
        if !touched.is_empty() {
            let (subs, mut sx) = self.watching(wall);
            subs.handle_touched(now, &mut sx, touched);
            // NOTIFYs are non-INVITE transactions: nothing they start is
            // reported before their answers come in.
        }
    }

    fn transaction_event(&mut self, now: Instant, wall: SystemTime, event: TransactionEvent<Peer>) {
        let mut cx = Cx {
            sig: &mut self.sig,
            location: &self.location,
            wall,
        };
        match event {
            TransactionEvent::Response(key, response) if self.subs.owns(key) => {
                self.subs.handle_response(now, cx.sig, key, response.status);
            }
            TransactionEvent::Timeout(TransactionKey::Client(key))
            | TransactionEvent::TransportError(TransactionKey::Client(key))
                if self.subs.owns(key) =>
            {
                self.subs.handle_failure(key);
            }
            TransactionEvent::Response(key, response) if self.calls.owns(key) => {
                self.calls.handle_response(now, &mut cx, key, response);
            }
            TransactionEvent::Response(key, response)
                if self.trunks.owns(key) && response.status >= 200 =>
            {
                self.trunks
                    .handle_response(now, cx.sig, key, Some(response));
            }
            TransactionEvent::Timeout(TransactionKey::Client(key))
            | TransactionEvent::TransportError(TransactionKey::Client(key))
                if self.trunks.owns(key) =>
            {
                self.trunks.handle_response(now, cx.sig, key, None);
            }
            // Any final answer proves the device is there.
            TransactionEvent::Response(key, response) if response.status >= 200 => {
                self.keepalive.answered(key, wall);
            }
            TransactionEvent::Timeout(TransactionKey::Client(key))
            | TransactionEvent::TransportError(TransactionKey::Client(key))
                if self.calls.owns(key) =>
            {
                self.calls.handle_client_failure(now, &mut cx, key);
            }
            TransactionEvent::Terminated(TransactionKey::Client(key)) => {
                self.calls.handle_client_terminated(key);
                self.keepalive.terminated(key);
            }
            TransactionEvent::Timeout(TransactionKey::Client(key))
            | TransactionEvent::TransportError(TransactionKey::Client(key)) => {
                if let Some(ping) = self.keepalive.failed(key) {
                    let change =
                        self.location
                            .remove(&ping.aor, &ping.contact, RemovalReason::Unreachable);
                    self.apply_changes(now, wall, change.into_iter().collect());
                }
            }
            _ => {}
        }
    }
}

/// RFC 3581: record where a request really came from in its top Via, so
/// that responses go back through the same NAT binding.
fn stamp_via(request: &mut Request, peer: &Peer) {
    let Some(first) = request
        .headers
        .0
        .iter_mut()
        .find(|h| h.name.eq_ignore_ascii_case("Via"))
    else {
        return;
    };
    if let Some(stamped) = edgepbx_sip::grammar::stamp_received(&first.value, peer.addr()) {
        first.value = stamped;
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (bindings, calls, subscriptions) = self.counts();
        f.debug_struct("Engine")
            .field("bindings", &bindings)
            .field("calls", &calls)
            .field("subscriptions", &subscriptions)
            .finish_non_exhaustive()
    }
}
