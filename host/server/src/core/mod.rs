//! The SIP core: one task that owns the transaction layer, the registrar's
//! location service, the call engine ([`calls`]), digest nonces and the
//! brute-force throttle. Transport
//! drivers feed it [`Inbound`] items; it answers through [`Outbound`], asks
//! bindings whether they are still there with OPTIONS (RFC 3261 §11),
//! expires them, and hands every binding change to the write-behind task.
//!
//! The loop follows the sans-IO drain rule of the transaction layer: after
//! each input, drain transmits and events, then sleep until the earliest
//! timeout.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edgepbx_sip::auth::DigestAuthenticator;
use edgepbx_sip::parse::error_response;
use edgepbx_sip::transaction::{
    ClientKey, Incoming, ServerKey, Timers, TransactionConfig, TransactionEvent, TransactionKey,
    TransactionLayer,
};
use edgepbx_sip::uas::{UasPolicy, inspect};
use edgepbx_sip::{Message, Method, Request, Response};
use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

mod calls;
mod trunks;

pub use calls::{ActiveCall, CallEngine, sample_context};

use crate::config::Config;
use crate::directory::Directory;
use crate::events::{Event, EventBus};
use crate::media::MediaEvent;
use crate::persist::Persist;
use crate::registrar::{Aor, Change, Entropy, Location, Registrar, RemovalReason};
use crate::throttle::{Admission, FailureReply, Throttle};
use crate::transport::{Inbound, Outbound, Peer, UdpReceiver};

/// Methods this server handles itself today.
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
    ]
}

/// Body types accepted in requests: session descriptions, and what phones
/// put in the INFO requests a B2BUA passes between parties (DTMF digits,
/// video picture requests).
const RELAYED_BODIES: &[&str] = &[
    "application/sdp",
    "application/dtmf-relay",
    "application/dtmf",
    "application/media_control+xml",
];

/// A keepalive OPTIONS in flight.
#[derive(Debug)]
struct Ping {
    aor: Aor,
    contact: String,
}

/// What the rest of the server asks of the SIP core.
#[derive(Debug)]
pub enum Control {
    /// Configuration changed in the store: use this directory for new
    /// requests (calls under way keep the tenant they started with).
    Directory(Arc<Directory>),
    /// The calls in progress of a tenant.
    Calls {
        /// Tenant code.
        tenant: String,
        /// Where to send them.
        reply: oneshot::Sender<Vec<ActiveCall>>,
    },
    /// The devices registered for an extension.
    Devices {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        extension: String,
        /// Where to send them.
        reply: oneshot::Sender<Vec<DeviceInfo>>,
    },
}

/// A registered device as the registrar knows it now.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    /// Its contact URI.
    pub contact: String,
    /// Its User-Agent.
    pub user_agent: Option<String>,
    /// Where it registered from.
    pub source: std::net::SocketAddr,
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// When its registration expires.
    pub expires_at: SystemTime,
    /// When it was last heard: its last REGISTER, or its last answer to a
    /// keepalive OPTIONS.
    pub last_seen: Option<SystemTime>,
}

/// The channels the SIP core listens on besides the transports.
pub struct CoreInputs {
    /// Datagrams of the SIP UDP socket.
    pub udp: UdpReceiver,
    /// Messages and connection changes from the TCP transport.
    pub inbound: mpsc::Receiver<Inbound>,
    /// Relay events of calls' media.
    pub media: mpsc::UnboundedReceiver<MediaEvent>,
    /// Requests of the control socket.
    pub control: mpsc::Receiver<Control>,
    /// Becomes true on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// Messages handled in a row before timers and housekeeping get a look.
const INBOUND_BATCH: usize = 64;

/// The SIP core's state.
pub struct SipCore {
    config: Config,
    directory: Arc<Directory>,
    transactions: TransactionLayer<Peer>,
    location: Location,
    auth: DigestAuthenticator,
    throttle: Throttle,
    outbound: Outbound,
    persist: Persist,
    uas: UasPolicy,
    calls: CallEngine,
    events: EventBus,
    trunks: trunks::TrunkRegistrations,
    /// Keepalive OPTIONS transactions and the binding each one checks.
    pings: HashMap<ClientKey, Ping>,
    /// When each binding was last pinged (or registered).
    last_ping: HashMap<(Aor, String), Instant>,
    /// When each binding was last heard from (REGISTER or OPTIONS answer).
    last_seen: HashMap<(Aor, String), SystemTime>,
    /// Local address used to reach each remote IP (for Via sent-by).
    local_ips: HashMap<IpAddr, IpAddr>,
    /// Listening ports, for Via sent-by of requests we originate.
    udp_port: u16,
    tcp_port: u16,
}

impl SipCore {
    /// Builds the core with bindings restored from the store.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        directory: Arc<Directory>,
        location: Location,
        server_key: [u8; 32],
        outbound: Outbound,
        persist: Persist,
        calls: CallEngine,
        events: EventBus,
        udp_port: u16,
        tcp_port: u16,
    ) -> Self {
        let timers = Timers {
            t1: Duration::from_millis(config.sip.t1_ms),
            t2: Duration::from_millis(config.sip.t2_ms),
            t4: Duration::from_millis(config.sip.t4_ms),
        };
        let transactions = TransactionLayer::new(TransactionConfig {
            timers,
            max_transactions: config.sip.max_transactions,
            ..TransactionConfig::default()
        });
        // Restored bindings are the lines' devices from the start.
        for (aor, bindings) in location.iter() {
            calls.lines().set_devices(aor, bindings);
        }
        SipCore {
            auth: DigestAuthenticator::new(server_key, config.security.nonce_ttl_secs, 100_000)
                .with_algorithms(&config.security.digest_algorithms_parsed()),
            throttle: Throttle::new(&config.security),
            uas: UasPolicy {
                allowed_methods: allowed_methods(),
                accepted_content_types: RELAYED_BODIES.iter().map(|t| (*t).to_owned()).collect(),
                ..UasPolicy::default()
            },
            config,
            directory,
            transactions,
            location,
            outbound,
            persist,
            calls,
            events,
            trunks: Default::default(),
            pings: HashMap::new(),
            last_ping: HashMap::new(),
            last_seen: HashMap::new(),
            local_ips: HashMap::new(),
            udp_port,
            tcp_port,
        }
    }

    /// Runs until shutdown, then flushes pending writes.
    ///
    /// Timers are checked between batches of at most [`INBOUND_BATCH`]
    /// messages, so a flood cannot starve retransmissions.
    pub async fn run(mut self, inputs: CoreInputs) {
        let CoreInputs {
            mut udp,
            mut inbound,
            media: mut media_events,
            mut control,
            mut shutdown,
        } = inputs;
        let Some(mut decisions) = self.calls.take_decisions() else {
            warn!("the SIP core runs once");
            return;
        };
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = [self.transactions.poll_timeout(), self.calls.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                item = inbound.recv() => match item {
                    Some(item) => {
                        self.handle_inbound(Instant::now(), item);
                        // Under load more are waiting: take them without
                        // going round the select (and its timer) each time.
                        for _ in 0..INBOUND_BATCH {
                            let Ok(item) = inbound.try_recv() else { break };
                            self.drain(Instant::now());
                            self.handle_inbound(Instant::now(), item);
                        }
                    }
                    None => break,
                },
                ready = udp.readable() => if ready.is_ok() {
                    for _ in 0..INBOUND_BATCH {
                        let Some(item) = udp.try_next() else { break };
                        let now = Instant::now();
                        self.handle_inbound(now, item);
                        self.drain(now);
                    }
                },
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.transactions.handle_timeout(now);
                    self.drain(now);
                    self.call_timers(now);
                }
                Some(event) = media_events.recv() => self.media_event(Instant::now(), event),
                Some(request) = control.recv() => self.control(request),
                Some(done) = decisions.recv() => self.decision_done(Instant::now(), done),
                _ = housekeeping.tick() => self.housekeeping(Instant::now(), SystemTime::now()),
                _ = shutdown.changed() => break,
            }
            self.drain(Instant::now());
        }
        info!(
            bindings = self.location.len(),
            calls = self.calls.len(),
            "sip core stopped"
        );
        // The call engine holds the policies' key-value writer: it goes
        // first, so that the write-behind queue can close.
        let SipCore { persist, calls, .. } = self;
        drop(calls);
        persist.close().await;
    }

    fn control(&mut self, request: Control) {
        match request {
            Control::Directory(directory) => {
                info!(
                    tenants = directory.tenants().count(),
                    "configuration reloaded"
                );
                self.directory = directory;
                self.trunk_housekeeping(Instant::now());
            }
            Control::Calls { tenant, reply } => {
                let _ = reply.send(self.active_calls(&tenant));
            }
            Control::Devices {
                tenant,
                extension,
                reply,
            } => {
                let aor = Aor { tenant, extension };
                let devices = self
                    .location
                    .bindings(&aor)
                    .iter()
                    .map(|b| DeviceInfo {
                        contact: b.contact.clone(),
                        user_agent: b.user_agent.clone(),
                        source: b.source.addr(),
                        transport: match b.source {
                            Peer::Udp(_) => "udp",
                            Peer::Tcp { .. } => "tcp",
                        },
                        expires_at: b.expires_at,
                        last_seen: self
                            .last_seen
                            .get(&(aor.clone(), b.contact.clone()))
                            .copied(),
                    })
                    .collect();
                let _ = reply.send(devices);
            }
        }
    }

    fn handle_inbound(&mut self, now: Instant, item: Inbound) {
        match item {
            Inbound::Connected { conn, sender } => self.outbound.connected(conn, sender),
            Inbound::Closed { conn } => self.outbound.closed(conn),
            Inbound::Malformed { peer, bytes, error } => {
                if self.throttle.admit(now, peer.addr().ip()) == Admission::Blocked {
                    return;
                }
                debug!(%error, addr = %peer.addr(), "malformed message");
                if let Some(response) = error_response(&bytes, &error) {
                    let _ = self.outbound.send(&peer, response.to_bytes());
                }
            }
            Inbound::Message { peer, message } => {
                if self.throttle.admit(now, peer.addr().ip()) == Admission::Blocked {
                    return;
                }
                match message {
                    Message::Request(request) => self.handle_request(now, request, peer),
                    Message::Response(response) => {
                        self.transactions.handle_response(now, response, peer)
                    }
                }
            }
        }
    }

    fn handle_request(&mut self, now: Instant, mut request: Request, peer: Peer) {
        stamp_via(&mut request, &peer);
        let reliable = peer.reliable();
        match self
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
                span.in_scope(|| self.dispatch(now, key, &request, &peer));
            }
            Incoming::Rejected { request, error } => {
                // Unusable Via/CSeq or over the transaction limit: answer
                // statelessly (never an ACK).
                debug!(%error, "request refused by the transaction layer");
                if let (Some(status), false) = (error.status_code(), request.method.is_ack()) {
                    let response = Response::for_request(&request, status, None);
                    let _ = self.outbound.send(&peer, response.to_bytes());
                }
            }
            // The ACK of a 2xx belongs to a call's dialog.
            Incoming::Ack(request) => self.dialog_ack(&request),
            Incoming::Absorbed => {}
        }
    }

    fn dispatch(&mut self, now: Instant, key: ServerKey, request: &Request, peer: &Peer) {
        if let Err(response) = inspect(request, &self.uas) {
            self.respond(now, key, response);
            return;
        }
        // Only these two mean something else inside a dialog; the others
        // (REGISTER above all) skip parsing From and To for it.
        let in_dialog = || edgepbx_sip::dialog::DialogId::of_received(request).is_some();
        let response = match &request.method {
            Method::Known(rsip::Method::Invite | rsip::Method::Options) if in_dialog() => {
                return self.in_dialog(now, key, request);
            }
            Method::Known(rsip::Method::Bye | rsip::Method::Update | rsip::Method::Info) => {
                return self.in_dialog(now, key, request);
            }
            Method::Known(rsip::Method::Invite) => return self.new_call(now, key, request, peer),
            Method::Known(rsip::Method::Register) => {
                let wall = SystemTime::now();
                let mut rng = rand::rng();
                let entropy = Entropy {
                    nonce: rng.random(),
                    tag: rng.random(),
                };
                let outcome = Registrar {
                    directory: &self.directory,
                    auth: &mut self.auth,
                    location: &mut self.location,
                }
                .handle(now, wall, entropy, request, peer);
                if outcome.auth_failed {
                    let ip = peer.addr().ip();
                    let (reply, blocked) = self.throttle.record_failure(now, ip);
                    if blocked {
                        warn!(%ip, secs = self.config.security.block_secs,
                            "source blocked after repeated authentication failures");
                    }
                    if reply == FailureReply::Suppress {
                        self.transactions.abandon(TransactionKey::Server(key));
                        return;
                    }
                }
                self.apply_changes(now, wall, outcome.changes);
                outcome.response
            }
            Method::Known(rsip::Method::Options) => {
                let mut r = Response::for_request(
                    request,
                    200,
                    Some(&format!("{:x}", rand::rng().random::<u64>())),
                );
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
            Method::Known(rsip::Method::Cancel) => match self.transactions.cancel_target(request) {
                Some(invite) => {
                    self.respond(now, key, Response::for_request(request, 200, None));
                    self.cancel_call(now, invite, request.headers.get("Reason"));
                    return;
                }
                None => Response::for_request(request, 481, None),
            },
            _ => Response::for_request(request, 405, None),
        };
        self.respond(now, key, response);
    }

    fn respond(&mut self, now: Instant, key: ServerKey, response: Response) {
        if let Err(error) = self.transactions.respond(now, key, response) {
            debug!(%error, "response not sent");
        }
    }

    /// Records changes in memory and hands them to the write-behind task.
    fn apply_changes(&mut self, now: Instant, wall: SystemTime, changes: Vec<Change>) {
        for change in changes {
            match &change {
                Change::Added(aor, b)
                | Change::Refreshed {
                    aor, binding: b, ..
                } => {
                    self.last_ping.insert((aor.clone(), b.contact.clone()), now);
                    self.last_seen
                        .insert((aor.clone(), b.contact.clone()), wall);
                    if let Change::Added(..) = change {
                        self.calls
                            .lines()
                            .set_devices(aor, self.location.bindings(aor));
                        self.events.publish(Event::Device {
                            tenant: aor.tenant.clone(),
                            extension: aor.extension.clone(),
                            contact: b.contact.clone(),
                            online: true,
                            reason: None,
                        });
                        info!(tenant = %aor.tenant, extension = %aor.extension,
                            source = %b.source.addr(), "binding online");
                    }
                }
                Change::Removed(aor, b, reason) => {
                    self.last_ping.remove(&(aor.clone(), b.contact.clone()));
                    self.last_seen.remove(&(aor.clone(), b.contact.clone()));
                    self.calls
                        .lines()
                        .set_devices(aor, self.location.bindings(aor));
                    self.events.publish(Event::Device {
                        tenant: aor.tenant.clone(),
                        extension: aor.extension.clone(),
                        contact: b.contact.clone(),
                        online: false,
                        reason: Some(reason.as_str().to_owned()),
                    });
                    info!(tenant = %aor.tenant, extension = %aor.extension,
                        reason = reason.as_str(), "binding offline");
                }
            }
            if !matches!(change, Change::Refreshed { write: false, .. }) {
                self.persist.record(wall, change);
            }
        }
    }

    fn housekeeping(&mut self, now: Instant, wall: SystemTime) {
        self.trunk_housekeeping(now);
        let expired = self.location.expire(now);
        self.apply_changes(now, wall, expired);
        self.throttle.evict(now);
        let interval = self.config.registrar.keepalive_interval_secs;
        if interval == 0 {
            return;
        }
        let interval = Duration::from_secs(interval);
        let due: Vec<(Aor, String, Peer)> = self
            .location
            .iter()
            .flat_map(|(aor, list)| list.iter().map(move |b| (aor, b)))
            .filter(|(aor, b)| {
                self.last_ping
                    .get(&((*aor).clone(), b.contact.clone()))
                    .is_none_or(|t| now.duration_since(*t) >= interval)
            })
            .map(|(aor, b)| (aor.clone(), b.contact.clone(), b.source.clone()))
            .collect();
        for (aor, contact, source) in due {
            self.last_ping.insert((aor.clone(), contact.clone()), now);
            if !self.outbound.is_open(&source) {
                let change = self
                    .location
                    .remove(&aor, &contact, RemovalReason::Unreachable);
                self.apply_changes(now, wall, change.into_iter().collect());
                continue;
            }
            let request = self.options_request(&aor, &contact, &source);
            match self
                .transactions
                .start_client(now, request, source.clone(), source.reliable())
            {
                Ok(key) => {
                    self.pings.insert(key, Ping { aor, contact });
                }
                Err(error) => debug!(%error, "keepalive not sent"),
            }
        }
    }

    /// An OPTIONS request asking a binding whether it is still there.
    fn options_request(&mut self, aor: &Aor, contact: &str, peer: &Peer) -> Request {
        let mut rng = rand::rng();
        let local = self.local_ip_for(peer.addr());
        let domain = self
            .directory
            .tenant(&aor.tenant)
            .map(|t| t.domain.clone())
            .unwrap_or_else(|| local.to_string());
        let uri = contact.to_owned();
        let mut request = Request {
            method: rsip::Method::Options.into(),
            uri: uri.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        let via = self.via_for(peer);
        let h = &mut request.headers;
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!("<sip:edgepbx@{domain}>;tag={:x}", rng.random::<u64>()),
        );
        h.push("To", format!("<{uri}>"));
        h.push("Call-ID", format!("{:032x}", rng.random::<u128>()));
        h.push("CSeq", "1 OPTIONS");
        request
    }

    /// Our address and listening port for messages to `peer`.
    fn sent_by(&mut self, peer: &Peer) -> SocketAddr {
        let local = self.local_ip_for(peer.addr());
        let port = if peer.reliable() {
            self.tcp_port
        } else {
            self.udp_port
        };
        SocketAddr::new(local, port)
    }

    /// A top Via for a request we originate towards `peer`, with a fresh
    /// branch.
    fn via_for(&mut self, peer: &Peer) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            peer.transport(),
            self.sent_by(peer),
            edgepbx_sip::transaction::new_branch(rand::rng().random())
        )
    }

    /// Our Contact for dialogs with `peer`.
    fn our_contact(&mut self, peer: &Peer) -> String {
        let sent_by = self.sent_by(peer);
        match peer {
            Peer::Udp(_) => format!("<sip:{sent_by}>"),
            Peer::Tcp { .. } => format!("<sip:{sent_by};transport=tcp>"),
        }
    }

    /// The local address the system would use to reach `remote`.
    fn local_ip_for(&mut self, remote: SocketAddr) -> IpAddr {
        *self.local_ips.entry(remote.ip()).or_insert_with(|| {
            let bind: SocketAddr = if remote.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            // Connecting a UDP socket sends nothing; it only picks a route.
            StdUdpSocket::bind(bind)
                .and_then(|s| s.connect(remote).and_then(|_| s.local_addr()))
                .map(|a| a.ip())
                .unwrap_or(bind.ip())
        })
    }

    /// Sends what the transaction layer queued and handles its events,
    /// until both are empty: handling an event (a call answered) often
    /// queues more to send (the CANCELs of the other branches).
    fn drain(&mut self, now: Instant) {
        loop {
            self.drain_once(now);
            if !self.transactions.has_output() {
                break;
            }
        }
    }

    fn drain_once(&mut self, now: Instant) {
        while let Some(transmit) = self.transactions.poll_transmit() {
            if self
                .outbound
                .send(&transmit.destination, transmit.message.to_bytes())
                .is_err()
            {
                self.transactions
                    .handle_transport_error(transmit.transaction);
            }
        }
        while let Some(event) = self.transactions.poll_event() {
            match event {
                TransactionEvent::Response(key, response) if self.is_call_transaction(key) => {
                    self.call_response(now, key, response);
                }
                TransactionEvent::Response(key, response)
                    if self.is_trunk_transaction(key) && response.status >= 200 =>
                {
                    self.trunk_response(now, key, Some(response));
                }
                TransactionEvent::Timeout(TransactionKey::Client(key))
                | TransactionEvent::TransportError(TransactionKey::Client(key))
                    if self.is_trunk_transaction(key) =>
                {
                    self.trunk_response(now, key, None);
                }
                // Any final answer proves the device is there.
                TransactionEvent::Response(key, response) if response.status >= 200 => {
                    if let Some(ping) = self.pings.remove(&key) {
                        self.last_seen
                            .insert((ping.aor, ping.contact), SystemTime::now());
                    }
                }
                TransactionEvent::Timeout(TransactionKey::Client(key))
                | TransactionEvent::TransportError(TransactionKey::Client(key))
                    if self.is_call_transaction(key) =>
                {
                    self.call_client_failed(now, key);
                }
                TransactionEvent::Terminated(TransactionKey::Client(key)) => {
                    self.call_client_terminated(key);
                }
                TransactionEvent::Timeout(TransactionKey::Client(key))
                | TransactionEvent::TransportError(TransactionKey::Client(key)) => {
                    if let Some(ping) = self.pings.remove(&key) {
                        let change = self.location.remove(
                            &ping.aor,
                            &ping.contact,
                            RemovalReason::Unreachable,
                        );
                        self.apply_changes(now, SystemTime::now(), change.into_iter().collect());
                    }
                }
                _ => {}
            }
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

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Wraps a future in the span of the SIP core.
pub fn spawn(core: SipCore, inputs: CoreInputs) -> tokio::task::JoinHandle<()> {
    tokio::spawn(core.run(inputs).instrument(info_span!("sip")))
}
