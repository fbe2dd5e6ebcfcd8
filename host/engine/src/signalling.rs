//! What every part of the engine sends through: the transaction layer, the
//! queue of outputs, the seeded randomness, and how the engine names
//! itself to a peer (Via, Contact, the address in descriptions).

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use edgepbx_sip::message::Header;
use edgepbx_sip::transaction::{ClientKey, ServerKey, TransactionLayer, new_branch};
use edgepbx_sip::{Message, Method, Request, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, warn};

use crate::config::ListeningPorts;
use crate::events::Event;
use crate::output::{Output, Transmit};
use crate::peer::{Peer, StreamKind};
use crate::registrar::Aor;

/// The one question the engine asks its host while it works: which local
/// address the system would use to reach a remote one (a routing-table
/// lookup). The engine writes it into Via, Contact and session
/// descriptions; simulations answer with a fixed address.
pub trait LocalRoutes: Send {
    /// The local address that routes to `remote`.
    fn local_ip_for(&mut self, remote: SocketAddr) -> IpAddr;
}

/// The engine's side of the wire.
pub(crate) struct Signalling {
    /// Client and server transactions (RFC 3261 §17).
    pub transactions: TransactionLayer<Peer>,
    /// What the driver has not taken yet.
    out: VecDeque<Output>,
    /// Tags, branches, Call-IDs, nonces: seeded by the driver, so a
    /// simulation replays exactly.
    rng: StdRng,
    routes: Box<dyn LocalRoutes>,
    ports: ListeningPorts,
    /// The address written into descriptions, when configured.
    advertise: Option<IpAddr>,
    /// Stream connections open now.
    connections: HashSet<u64>,
    /// Numbers whose calls, devices or settings changed since watchers
    /// were last told.
    touched: HashSet<Aor>,
}

impl Signalling {
    pub fn new(
        transactions: TransactionLayer<Peer>,
        seed: [u8; 32],
        routes: Box<dyn LocalRoutes>,
        ports: ListeningPorts,
        advertise: Option<IpAddr>,
    ) -> Signalling {
        Signalling {
            transactions,
            out: VecDeque::new(),
            rng: StdRng::from_seed(seed),
            routes,
            ports,
            advertise,
            connections: HashSet::new(),
            touched: HashSet::new(),
        }
    }

    /// Notes that what `aor` (an extension or group number) shows may have
    /// changed, for its watchers.
    pub fn touch(&mut self, aor: &Aor) {
        if !self.touched.contains(aor) {
            self.touched.insert(aor.clone());
        }
    }

    /// The numbers touched since the last call.
    pub fn take_touched(&mut self) -> HashSet<Aor> {
        std::mem::take(&mut self.touched)
    }

    /// Queues an output after everything the transactions sent before it.
    pub fn push(&mut self, output: Output) {
        self.flush_transmits();
        self.out.push_back(output);
    }

    /// Queues an event, when there is one.
    pub fn publish(&mut self, event: Option<Event>) {
        if let Some(event) = event {
            self.push(Output::Event(event));
        }
    }

    /// Moves what the transaction layer wants sent into the output queue.
    pub fn flush_transmits(&mut self) {
        while let Some(t) = self.transactions.poll_transmit() {
            self.out.push_back(Output::Transmit(Transmit {
                to: t.destination,
                message: t.message,
                transaction: Some(t.transaction),
            }));
        }
    }

    /// The next output.
    pub fn poll(&mut self) -> Option<Output> {
        self.flush_transmits();
        self.out.pop_front()
    }

    /// Sends a message outside any transaction.
    pub fn send(&mut self, to: &Peer, message: Message) {
        self.push(Output::Transmit(Transmit {
            to: to.clone(),
            message,
            transaction: None,
        }));
    }

    /// Answers a server transaction.
    pub fn respond(&mut self, now: Instant, key: ServerKey, response: Response) {
        if let Err(error) = self.transactions.respond(now, key, response) {
            debug!(%error, "response not sent");
        }
    }

    /// Starts a client transaction for `request` as it is (CANCEL, or a
    /// request that has its Via).
    pub fn start_client(
        &mut self,
        now: Instant,
        request: Request,
        peer: &Peer,
    ) -> Option<ClientKey> {
        match self
            .transactions
            .start_client(now, request, peer.clone(), peer.reliable())
        {
            Ok(key) => Some(key),
            Err(error) => {
                warn!(%error, "request not sent");
                None
            }
        }
    }

    /// Starts a client transaction for `request`, adding our Via to it
    /// (so that a CANCEL can copy it later).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: &mut Request,
        peer: &Peer,
    ) -> Option<ClientKey> {
        self.add_via(request, peer);
        self.start_client(now, request.clone(), peer)
    }

    /// Sends an ACK (no transaction) with our Via; returns it as sent.
    pub fn send_ack(&mut self, mut ack: Request, peer: &Peer) -> Request {
        self.add_via(&mut ack, peer);
        self.send(peer, Message::Request(ack.clone()));
        ack
    }

    fn add_via(&mut self, request: &mut Request, peer: &Peer) {
        let via = self.via_for(peer);
        request.headers.0.insert(
            0,
            Header {
                name: "Via".into(),
                value: via,
            },
        );
    }

    /// A top Via for a request we originate towards `peer`, with a fresh
    /// branch.
    pub fn via_for(&mut self, peer: &Peer) -> String {
        let branch = new_branch(self.rng.random());
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            peer.transport(),
            self.sent_by(peer),
        )
    }

    /// Our address and listening port for messages to `peer`.
    pub fn sent_by(&mut self, peer: &Peer) -> SocketAddr {
        let local = self.routes.local_ip_for(peer.addr());
        let port = match peer {
            Peer::Udp(_) => self.ports.udp,
            Peer::Stream {
                kind: StreamKind::Tcp,
                ..
            } => self.ports.tcp,
            // A connection came in on the TLS port, so there is one.
            Peer::Stream {
                kind: StreamKind::Tls,
                ..
            } => self.ports.tls.unwrap_or(self.ports.tcp),
            // WebSockets come in on the HTTP listener.
            Peer::Stream {
                kind: StreamKind::Ws | StreamKind::Wss,
                ..
            } => self.ports.http,
        };
        SocketAddr::new(local, port)
    }

    /// Our Contact for dialogs with `peer`.
    pub fn our_contact(&mut self, peer: &Peer) -> String {
        let sent_by = self.sent_by(peer);
        match peer {
            Peer::Udp(_) => format!("<sip:{sent_by}>"),
            Peer::Stream { .. } => {
                format!("<sip:{sent_by};transport={}>", peer.transport_name())
            }
        }
    }

    /// The local address that routes to `remote`.
    pub fn local_ip_for(&mut self, remote: SocketAddr) -> IpAddr {
        self.routes.local_ip_for(remote)
    }

    /// The address written into descriptions sent to `peer`.
    pub fn media_ip(&mut self, peer: &Peer) -> IpAddr {
        match self.advertise {
            Some(ip) => ip,
            None => self.routes.local_ip_for(peer.addr()),
        }
    }

    /// A stream connection opened.
    pub fn connected(&mut self, conn: u64) {
        self.connections.insert(conn);
    }

    /// A stream connection closed.
    pub fn closed(&mut self, conn: u64) {
        self.connections.remove(&conn);
    }

    /// Whether a flow can still be used: UDP always, a connection while it
    /// is open.
    pub fn is_open(&self, peer: &Peer) -> bool {
        match peer {
            Peer::Udp(_) => true,
            Peer::Stream { conn, .. } => self.connections.contains(conn),
        }
    }

    /// 64 random bits.
    pub fn random(&mut self) -> u64 {
        self.rng.random()
    }

    /// 16 random bytes (nonce material).
    pub fn random_bytes(&mut self) -> [u8; 16] {
        self.rng.random()
    }

    /// A fresh tag (From or To).
    pub fn tag(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    /// A fresh Call-ID.
    pub fn call_id(&mut self) -> String {
        format!("{:032x}", self.rng.random::<u128>())
    }

    /// A request of the PBX's own to a registered `contact`, outside any
    /// dialog (a keepalive OPTIONS, a check-sync NOTIFY), with a fresh
    /// Call-ID and tag, from the tenant's `domain`; without Via (the
    /// sender adds it).
    pub fn request_to(&mut self, method: Method, contact: &str, domain: &str) -> Request {
        let (tag, call_id) = (self.tag(), self.call_id());
        let cseq = format!("1 {}", method.as_str());
        let mut request = Request {
            method,
            uri: contact.to_owned(),
            headers: Default::default(),
            body: Vec::new(),
        };
        let h = &mut request.headers;
        h.push("Max-Forwards", "70");
        h.push("From", format!("<sip:edgepbx@{domain}>;tag={tag}"));
        h.push("To", format!("<{contact}>"));
        h.push("Call-ID", call_id);
        h.push("CSeq", cseq);
        request
    }
}
