//! A simulated world for the engine: virtual time, scripted peers on
//! made-up addresses, a scripted routing policy, and everything the engine
//! asks of its driver recorded. No socket, no thread, no sleep: a call
//! that rings for half a minute takes microseconds.

#![allow(dead_code, missing_docs)]

pub mod watcher;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edgepbx_engine::config::{
    CallsConfig, EngineConfig, ListeningPorts, MediaConfig, RegistrarConfig, SecurityConfig,
};
use edgepbx_engine::registrar::{Aor, Binding, Change, Location};
use edgepbx_engine::routing::{Decided, Decision, DecisionRequest};
use edgepbx_engine::tenants::{Extension, Tenant, TenantTable, TrunkLink};
use edgepbx_engine::{
    CallRecord, Engine, Event, Lines, LocalRoutes, MediaCommand, MediaSlot, Output, Peer, Transmit,
};
use edgepbx_model::{CallSettings, Trunk};
use edgepbx_sip::auth::{Credentials, authorized};
use edgepbx_sip::dialog::Dialog;
use edgepbx_sip::grammar::parse_cseq;
use edgepbx_sip::transaction::{Timers, TransactionConfig};
use edgepbx_sip::{Message, Method, Request, Response};

/// The engine's own address.
pub const PBX: &str = "127.0.0.1:5060";
/// The tenant's SIP domain.
pub const DOMAIN: &str = "acme.test";
/// Where the carrier of the tenant's trunk is.
pub const CARRIER: &str = "127.0.0.9:5060";

/// The password of extension `number`.
pub fn password(number: &str) -> String {
    format!("pw-{number}")
}

/// Every local route leads to the loopback address.
struct Loopback;

impl LocalRoutes for Loopback {
    fn local_ip_for(&mut self, _: SocketAddr) -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }
}

/// Tenant ACME with extensions 100 to 109; `with_trunk` adds a trunk to
/// the carrier at [`CARRIER`] (calls out; DID 0140000100 rings 100).
pub fn acme(with_trunk: bool, settings: &[(&str, CallSettings)]) -> Tenant {
    let mut tenant = Tenant::new("ACME".into(), DOMAIN.into());
    for n in 100..110 {
        let number = n.to_string();
        let credentials = [number.clone(), format!("{number}-ACME")]
            .into_iter()
            .map(|user| {
                let c = Credentials::from_password(&user, DOMAIN, &password(&number));
                (user, c)
            })
            .collect::<Vec<_>>();
        let settings = settings
            .iter()
            .find(|(s, _)| *s == number)
            .map(|(_, s)| s.clone())
            .unwrap_or_default();
        tenant.add_extension(
            Extension {
                number: number.clone(),
                name: format!("User {number}"),
                aliases: Vec::new(),
                settings,
            },
            credentials,
        );
    }
    if with_trunk {
        tenant.add_trunk(TrunkLink {
            trunk: Trunk {
                tenant: "ACME".into(),
                name: "carrier".into(),
                host: CARRIER.into(),
                username: Some("acme".into()),
                password: Some("carrier-secret".into()),
                register: false,
                caller_id: Some("0140000100".into()),
                dids: vec![edgepbx_model::Did {
                    number: "0140000100".into(),
                    destination: "100".into(),
                }],
            },
            addr: Some(CARRIER.parse().expect("literal address")),
        });
    }
    tenant
}

/// Tenant BETA with extension 200 and its own trunk to the carrier at
/// [`CARRIER`], ACME's carrier too: DID 0150000200 rings 200.
pub fn beta_sharing_the_carrier() -> Tenant {
    let mut tenant = Tenant::new("BETA".into(), "beta.test".into());
    let credentials = vec![(
        "200".to_owned(),
        Credentials::from_password("200", "beta.test", &password("200")),
    )];
    tenant.add_extension(
        Extension {
            number: "200".into(),
            name: "User 200".into(),
            aliases: Vec::new(),
            settings: CallSettings::default(),
        },
        credentials,
    );
    tenant.add_trunk(TrunkLink {
        trunk: Trunk {
            tenant: "BETA".into(),
            name: "carrier".into(),
            host: CARRIER.into(),
            username: None,
            password: None,
            register: false,
            caller_id: None,
            dids: vec![edgepbx_model::Did {
                number: "0150000200".into(),
                destination: "200".into(),
            }],
        },
        addr: Some(CARRIER.parse().expect("literal address")),
    });
    tenant
}

/// The engine's settings in the simulations: no keepalives unless a test
/// asks, MD5 challenges (what the scripted peers answer).
pub fn config() -> EngineConfig {
    EngineConfig {
        transactions: TransactionConfig {
            timers: Timers::default(),
            ..TransactionConfig::default()
        },
        registrar: RegistrarConfig {
            keepalive_interval_secs: 0,
            ..RegistrarConfig::default()
        },
        security: SecurityConfig {
            digest_algorithms: vec!["MD5".into()],
            ..SecurityConfig::default()
        },
        calls: CallsConfig::default(),
        media: MediaConfig::default(),
        subscriptions: edgepbx_engine::subscriptions::SubscriptionsConfig::default(),
        ports: ListeningPorts {
            udp: 5060,
            tcp: 5060,
            tls: None,
            http: 8080,
        },
        server_key: [7; 32],
    }
}

/// How the simulated policy answers a request: `None` keeps it pending for
/// the test to answer later (or never).
pub type Policy = Box<dyn FnMut(&DecisionRequest) -> Option<Decision>>;

/// A world with ACME, no trunk, extension 101 on one device at port 6001,
/// and a policy ringing the dialled number for 20 s and then rejecting.
pub fn one_device() -> Sim {
    Sim::new(
        config(),
        acme(false, &[]),
        &[("101", 6001)],
        ring_dialled(20),
    )
}

/// Rings the dialled number for `secs` seconds; after a step that did not
/// connect, rejects with 480.
pub fn ring_dialled(secs: u32) -> Policy {
    use edgepbx_engine::routing::{Action, Ring, RingMode, RingTarget, Target};
    Box::new(move |r: &DecisionRequest| {
        Some(Decision {
            action: if r.history.is_empty() {
                Action::Ring(Ring {
                    mode: RingMode::Simultaneous,
                    targets: vec![RingTarget {
                        target: Target::Extension(r.dialled.clone()),
                        timeout_secs: secs,
                    }],
                })
            } else {
                Action::Reject(480)
            },
            presentation: None,
        })
    })
}

/// The world.
pub struct Sim {
    pub engine: Engine,
    pub now: Instant,
    pub wall: SystemTime,
    /// What the engine sent, per destination address, in order.
    pub inbox: HashMap<SocketAddr, VecDeque<Message>>,
    /// Every decision the engine asked, in order.
    pub asked: Vec<DecisionRequest>,
    /// Decisions the policy kept pending.
    pub pending: VecDeque<DecisionRequest>,
    pub policy: Policy,
    pub media: Vec<MediaCommand>,
    pub records: Vec<CallRecord>,
    pub events: Vec<Event>,
    pub stored: Vec<Change>,
    /// The flow of the last message sent to each address.
    pub flows: HashMap<SocketAddr, Peer>,
    /// Settings changes asked by feature keys: (tenant, extension, key).
    pub settings: Vec<(String, String, edgepbx_model::FeatureKey)>,
    next_port: u16,
    /// Slots the simulated driver cannot bind any more (ports exhausted).
    pub ports_exhausted: bool,
}

impl Sim {
    /// A world with `tenants`, `devices` registered (extension, port on
    /// 127.0.0.1), the policy `policy`.
    pub fn new(
        config: EngineConfig,
        tenant: Tenant,
        devices: &[(&str, u16)],
        policy: Policy,
    ) -> Sim {
        Sim::booted(config, tenant, devices, policy, [1; 32])
    }

    /// The same world, its engine seeded with `seed` (another boot of the
    /// same server).
    pub fn booted(
        config: EngineConfig,
        tenant: Tenant,
        devices: &[(&str, u16)],
        policy: Policy,
        seed: [u8; 32],
    ) -> Sim {
        let mut location = Location::new(config.registrar.clone());
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        for (extension, port) in devices {
            let addr = SocketAddr::from(([127, 0, 0, 1], *port));
            location.restore(
                Aor {
                    tenant: "ACME".into(),
                    extension: (*extension).into(),
                },
                Binding {
                    contact: format!("sip:{extension}@{addr}"),
                    q: None,
                    instance: None,
                    reg_id: None,
                    call_id: format!("reg-{port}"),
                    cseq: 1,
                    expires_at: wall + Duration::from_secs(3600),
                    stored_expires_at: wall + Duration::from_secs(3600),
                    deadline: now + Duration::from_secs(3600),
                    source: Peer::Udp(addr),
                    user_agent: Some("sim".into()),
                },
            );
        }
        let engine = Engine::new(
            now,
            config,
            seed,
            Box::new(Loopback),
            Arc::new(TenantTable::new([tenant])),
            location,
            Arc::new(Lines::default()),
            edgepbx_media::webrtc::Identity::generate().expect("a DTLS certificate"),
        );
        let mut sim = Sim {
            engine,
            now,
            wall,
            inbox: HashMap::new(),
            asked: Vec::new(),
            pending: VecDeque::new(),
            policy,
            media: Vec::new(),
            records: Vec::new(),
            events: Vec::new(),
            stored: Vec::new(),
            settings: Vec::new(),
            flows: HashMap::new(),
            next_port: 20_000,
            ports_exhausted: false,
        };
        sim.drain();
        sim
    }

    /// The engine runs with `tenants` from now on (a reload).
    pub fn set_tenants(&mut self, tenants: Vec<Tenant>) {
        let table = Arc::new(TenantTable::new(tenants));
        self.engine.handle_tenants(self.now, self.wall, table);
        self.drain();
    }

    /// Carries out everything the engine asks, as the server's driver
    /// does.
    pub fn drain(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Transmit(Transmit { to, message, .. }) => {
                    self.inbox.entry(to.addr()).or_default().push_back(message);
                    self.flows.insert(to.addr(), to);
                }
                Output::Decide(request) => {
                    self.asked.push((*request).clone());
                    match (self.policy)(&request) {
                        Some(decision) => {
                            let decided = Decided {
                                id: request.id,
                                decision,
                                by: "sim".into(),
                            };
                            self.engine.handle_decision(self.now, self.wall, decided);
                        }
                        None => self.pending.push_back(*request),
                    }
                }
                Output::Media(command) => {
                    if let MediaCommand::Reserve { count } = command {
                        for _ in 0..count {
                            let slot = (!self.ports_exhausted).then(|| {
                                let slot = MediaSlot {
                                    a_port: self.next_port,
                                    b_port: self.next_port + 2,
                                };
                                self.next_port += 4;
                                slot
                            });
                            self.engine.handle_media_slot(slot);
                        }
                    }
                    self.media.push(command);
                }
                Output::Binding { change, .. } => self.stored.push(change),
                Output::CallRecord(record) => self.records.push(*record),
                Output::Event(event) => self.events.push(event),
                Output::FeatureKey {
                    tenant,
                    extension,
                    key,
                } => self.settings.push((tenant, extension, key)),
            }
        }
    }

    /// `peer` sends `message` now.
    pub fn send(&mut self, from: SocketAddr, message: impl Into<Message>) {
        self.engine
            .handle_message(self.now, self.wall, Peer::Udp(from), message.into());
        self.drain();
    }

    /// `peer` sends `message` now over TCP connection `conn`.
    pub fn send_tcp(&mut self, conn: u64, from: SocketAddr, message: impl Into<Message>) {
        self.send_stream(conn, from, edgepbx_engine::StreamKind::Tcp, message);
    }

    /// `peer` sends `message` now over stream connection `conn` of `kind`.
    pub fn send_stream(
        &mut self,
        conn: u64,
        from: SocketAddr,
        kind: edgepbx_engine::StreamKind,
        message: impl Into<Message>,
    ) {
        let peer = Peer::Stream {
            conn,
            addr: from,
            kind,
        };
        self.engine
            .handle_message(self.now, self.wall, peer, message.into());
        self.drain();
    }

    /// Stream connection `conn` closes now.
    pub fn close(&mut self, conn: u64) {
        self.engine.handle_closed(self.now, self.wall, conn);
        self.drain();
    }

    /// Lets `duration` pass, firing every timer on the way.
    pub fn advance(&mut self, duration: Duration) {
        let until = self.now + duration;
        while let Some(at) = self.engine.poll_timeout() {
            if at > until {
                break;
            }
            self.tick(at.max(self.now));
        }
        self.tick(until);
    }

    fn tick(&mut self, at: Instant) {
        self.wall += at.saturating_duration_since(self.now);
        self.now = at;
        self.engine.handle_timeout(self.now, self.wall);
        self.drain();
    }

    /// Answers the oldest pending decision.
    pub fn decide(&mut self, decision: Decision) {
        let request = self.pending.pop_front().expect("a pending decision");
        let decided = Decided {
            id: request.id,
            decision,
            by: "sim".into(),
        };
        self.engine.handle_decision(self.now, self.wall, decided);
        self.drain();
    }

    /// Everything `addr` received so far, taken.
    pub fn take(&mut self, addr: SocketAddr) -> Vec<Message> {
        self.inbox.remove(&addr).map(Vec::from).unwrap_or_default()
    }

    /// The requests `addr` received with `method`, taken (other messages
    /// stay).
    pub fn requests(&mut self, addr: SocketAddr, method: &str) -> Vec<Request> {
        let inbox = self.inbox.entry(addr).or_default();
        let mut found = Vec::new();
        inbox.retain(|m| match m {
            Message::Request(r) if r.method.as_str() == method => {
                found.push(r.clone());
                false
            }
            _ => true,
        });
        found
    }

    /// The one request with `method` that `addr` received (retransmissions
    /// of it aside).
    pub fn request(&mut self, addr: SocketAddr, method: &str) -> Request {
        let mut found = self.requests(addr, method);
        assert!(!found.is_empty(), "{addr} received no {method}");
        let first = found.remove(0);
        assert!(
            found
                .iter()
                .all(|r| r.headers.get("Via") == first.headers.get("Via")),
            "{addr} received more than one {method}"
        );
        first
    }

    /// The final statuses `addr` received, in order, taken.
    pub fn statuses(&mut self, addr: SocketAddr) -> Vec<u16> {
        let inbox = self.inbox.entry(addr).or_default();
        let mut found = Vec::new();
        inbox.retain(|m| match m {
            Message::Response(r) => {
                found.push(r.status);
                false
            }
            _ => true,
        });
        found
    }

    /// The responses `addr` received, in order, taken.
    pub fn responses(&mut self, addr: SocketAddr) -> Vec<Response> {
        let inbox = self.inbox.entry(addr).or_default();
        let mut found = Vec::new();
        inbox.retain(|m| match m {
            Message::Response(r) => {
                found.push(r.clone());
                false
            }
            _ => true,
        });
        found
    }

    /// The first response with `status` that `addr` received; every
    /// response is taken.
    pub fn response(&mut self, addr: SocketAddr, status: u16) -> Response {
        self.responses(addr)
            .into_iter()
            .find(|r| r.status == status)
            .unwrap_or_else(|| panic!("{addr} received no {status}"))
    }

    /// The engine's leg events of calls, as (role, extension, state, cause).
    pub fn leg_events(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Leg {
                    role,
                    extension,
                    state,
                    cause,
                    ..
                } => Some(format!(
                    "{role:?} {} {state:?}{}",
                    extension.as_deref().unwrap_or("-"),
                    cause
                        .as_deref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default()
                )),
                _ => None,
            })
            .collect()
    }
}

/// A carrier's (or device's) digest challenge to `request`: a 401 with
/// WWW-Authenticate or a 407 with Proxy-Authenticate, for MD5 and `nonce`.
pub fn challenge(request: &Request, status: u16, nonce: &str) -> Response {
    let mut r = Response::for_request(request, status, Some("c"));
    let header = if status == 407 {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    r.headers.push(
        header,
        format!("Digest realm=\"carrier\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5"),
    );
    r
}

/// A minimal G.711 offer or answer from `port`.
pub fn sdp(port: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    .into_bytes()
}

/// A user agent at `addr`: a phone that calls, or a device that is called.
pub struct Ua {
    pub addr: SocketAddr,
    pub number: String,
    branch: u64,
}

impl Ua {
    pub fn new(number: &str, port: u16) -> Ua {
        Ua::at(number, &format!("127.0.0.1:{port}"))
    }

    /// A user agent at another address.
    pub fn at(number: &str, addr: &str) -> Ua {
        let addr: SocketAddr = addr.parse().expect("a socket address");
        Ua {
            addr,
            number: number.into(),
            branch: u64::from(addr.port()) << 32,
        }
    }

    /// A fresh top Via.
    pub fn via(&mut self) -> String {
        self.branch += 1;
        format!(
            "SIP/2.0/UDP {};branch=z9hG4bK-sim-{:x};rport",
            self.addr, self.branch
        )
    }

    /// An INVITE to `number` of the tenant, with an offer.
    pub fn invite(&mut self, number: &str) -> Request {
        let mut r = Request {
            method: Method::from_token("INVITE"),
            uri: format!("sip:{number}@{DOMAIN}"),
            headers: Default::default(),
            body: sdp(4000),
        };
        let via = self.via();
        let h = &mut r.headers;
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!(
                "<sip:{}@{DOMAIN}>;tag=from-{}",
                self.number,
                self.addr.port()
            ),
        );
        h.push("To", format!("<sip:{number}@{DOMAIN}>"));
        h.push(
            "Call-ID",
            format!("call-{}-{}@sim", self.addr.port(), self.branch),
        );
        h.push("CSeq", "1 INVITE");
        h.push("Contact", format!("<sip:{}@{}>", self.number, self.addr));
        h.push("Content-Type", "application/sdp");
        r
    }

    /// `request` again with credentials answering `challenge`, a new
    /// branch.
    pub fn with_credentials(&mut self, request: &Request, challenge: &Response) -> Request {
        let mut next = authorized(
            request,
            challenge,
            &self.number,
            &password(&self.number),
            "sim-cnonce",
        )
        .expect("an answerable challenge");
        let via = self.via();
        next.headers.0.insert(
            0,
            edgepbx_sip::Header {
                name: "Via".into(),
                value: via,
            },
        );
        next
    }

    /// The ACK of a non-2xx final response to `invite` (same transaction).
    pub fn ack_failure(&self, invite: &Request, response: &Response) -> Request {
        let mut ack = Request {
            method: Method::from_token("ACK"),
            uri: invite.uri.clone(),
            headers: Default::default(),
            body: Vec::new(),
        };
        let seq = parse_cseq(invite.headers.get("CSeq").unwrap_or("1 INVITE")).map_or(1, |c| c.seq);
        for name in ["Via", "From", "Call-ID"] {
            ack.headers
                .push(name, invite.headers.get(name).unwrap_or_default());
        }
        ack.headers
            .push("To", response.headers.get("To").unwrap_or_default());
        ack.headers.push("CSeq", format!("{seq} ACK"));
        ack.headers.push("Max-Forwards", "70");
        ack
    }

    /// The CANCEL of `invite` (same top Via), with `reason` if given.
    pub fn cancel(&self, invite: &Request, reason: Option<&str>) -> Request {
        let mut cancel = invite.cancel(reason).expect("an INVITE to cancel");
        cancel
            .headers
            .set("Via", invite.headers.get("Via").unwrap_or_default());
        cancel
    }

    /// The caller's dialog after a 2xx to `invite`.
    pub fn dialog(&self, invite: &Request, ok: &Response) -> Dialog {
        let mut dialog = Dialog::as_uac(invite, ok).expect("a 2xx makes a dialog");
        dialog.early = false;
        dialog
    }

    /// `request` with our Via, ready to send.
    pub fn stamped(&mut self, mut request: Request) -> Request {
        let via = self.via();
        request.headers.0.insert(
            0,
            edgepbx_sip::Header {
                name: "Via".into(),
                value: via,
            },
        );
        request
    }

    /// A response of this device to a request it received, with its To
    /// tag, a Contact, and a description for 2xx and 183.
    pub fn answer(&self, request: &Request, status: u16) -> Response {
        let mut r =
            Response::for_request(request, status, Some(&format!("dev-{}", self.addr.port())));
        r.headers
            .push("Contact", format!("<sip:{}@{}>", self.number, self.addr));
        if matches!(status, 183 | 200) && request.method.is_invite() {
            r.headers.push("Content-Type", "application/sdp");
            r.body = sdp(self.addr.port() + 1000);
        }
        r
    }
}

/// Calls `to` from `caller` through the digest challenge: returns the
/// authenticated INVITE as the engine received it.
pub fn call(sim: &mut Sim, caller: &mut Ua, to: &str) -> Request {
    let invite = caller.invite(to);
    call_with(sim, caller, invite)
}

/// Sends `invite` from `caller` through the digest challenge: returns the
/// authenticated INVITE as the engine received it.
pub fn call_with(sim: &mut Sim, caller: &mut Ua, invite: Request) -> Request {
    sim.send(caller.addr, invite.clone());
    let challenge = sim.response(caller.addr, 407);
    sim.send(caller.addr, caller.ack_failure(&invite, &challenge));
    let invite = caller.with_credentials(&invite, &challenge);
    sim.send(caller.addr, invite.clone());
    invite
}
