//! The socket driver of the media relay: per anchored call, one task with
//! four UDP sockets (RTP and RTCP facing each party) around the sans-IO
//! [`Relay`]. The engine asks for slots of ports ahead of calls
//! ([`MediaCommand::Reserve`]); they are bound here, so that an offer never
//! names a port another program holds, and kept until a call starts on
//! them. Sessions report silence back to the engine.
//!
//! Sessions run on a runtime of their own (the media runtime), so that
//! relaying thousands of packets a second never delays a SIP message on the
//! SIP plane's workers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edgepbx_engine::{MediaCommand, MediaSlot};
use edgepbx_media::dtmf::Splicer;
use edgepbx_media::ports::{PortError, PortRange};
use edgepbx_media::relay::{Event, Relay, Side};
use edgepbx_media::rtp::Kind;
use edgepbx_media::webrtc::WebRtcLeg;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::voicemail::{Input, Voicemail};

/// Largest datagram relayed; RTP of G.711 is 172 bytes, anything much
/// larger is not a voice packet.
const MAX_PACKET: usize = 2_048;

/// Pairs tried before giving up when ports of the range are taken by
/// other programs.
const BIND_ATTEMPTS: usize = 64;

/// What the media plane tells the engine.
#[derive(Debug, Clone)]
pub enum MediaEvent {
    /// A relay event of one call.
    Relay {
        /// The engine's id of the call.
        call: u64,
        /// What happened.
        event: Event,
    },
    /// The voicemail session of a served call is over.
    ServiceDone {
        /// The engine's id of the call.
        call: u64,
    },
    /// The voicemail session of a served call connects its caller to
    /// `number` (the operator, a call back).
    Transfer {
        /// The engine's id of the call.
        call: u64,
        /// Where to.
        number: String,
    },
    /// A mailbox's messages changed (or were counted at start).
    Mailbox {
        /// The mailbox.
        aor: edgepbx_engine::registrar::Aor,
        /// Unheard messages.
        new: u32,
        /// Heard and kept.
        old: u32,
    },
}

/// Packets relayed from each side, readable while the session runs.
#[derive(Debug, Default)]
struct Counters {
    /// RTP and RTCP packets relayed from A.
    from_a: AtomicU64,
    /// RTP and RTCP packets relayed from B.
    from_b: AtomicU64,
}

/// A running relay session, or a served call's voicemail.
#[derive(Debug)]
struct Session {
    slot: MediaSlot,
    counters: Arc<Counters>,
    /// Dropping it ends the session's task.
    control: Control,
}

/// Where a session's inputs go.
#[derive(Debug)]
enum Control {
    Relay(mpsc::UnboundedSender<RelayInput>),
    Served(mpsc::UnboundedSender<Input>),
}

/// What a relay session is told while it runs.
#[derive(Debug)]
enum RelayInput {
    /// A party receives RTP at this address; its signalling comes from
    /// that one.
    Announce(Side, SocketAddr, IpAddr),
    /// A party is a browser: its port carries this leg.
    WebRtc(Side, Box<WebRtcLeg>),
    /// A key for a party, as RFC 4733 events: side, key, milliseconds,
    /// payload type.
    Press(Side, char, u32, u8),
}

/// Media ports, the slots bound ahead, the sessions running.
#[derive(Debug)]
pub struct MediaPlane {
    ports: PortRange,
    bind: IpAddr,
    silence: Duration,
    events: mpsc::UnboundedSender<MediaEvent>,
    runtime: tokio::runtime::Handle,
    /// Bound sockets of reserved slots: A RTP, A RTCP, B RTP, B RTCP.
    reserved: HashMap<MediaSlot, [StdUdpSocket; 4]>,
    sessions: HashMap<u64, Session>,
    voicemail: Arc<Voicemail>,
}

impl MediaPlane {
    /// A plane handing out ports of `ports`, binding on `bind`, running
    /// sessions on `runtime` and reporting silence after `silence` to
    /// `events`; served calls go to `voicemail`.
    pub fn new(
        ports: PortRange,
        bind: IpAddr,
        silence: Duration,
        events: mpsc::UnboundedSender<MediaEvent>,
        runtime: tokio::runtime::Handle,
        voicemail: Arc<Voicemail>,
    ) -> MediaPlane {
        MediaPlane {
            ports,
            bind,
            silence,
            events,
            runtime,
            reserved: HashMap::new(),
            sessions: HashMap::new(),
            voicemail,
        }
    }

    /// Carries out one of the engine's media commands; a reservation
    /// returns the slots it asked for (`None` for each that could not be
    /// bound), for the engine.
    pub fn execute(&mut self, command: MediaCommand) -> Vec<Option<MediaSlot>> {
        match command {
            MediaCommand::Reserve { count } => (0..count).map(|_| self.reserve()).collect(),
            MediaCommand::Start { call, slot } => {
                self.start(call, slot);
                Vec::new()
            }
            MediaCommand::Announce {
                call,
                side,
                address,
                signalling,
            } => {
                match self.control(call) {
                    Some(Control::Relay(control)) => {
                        let _ = control.send(RelayInput::Announce(side, address, signalling));
                    }
                    Some(Control::Served(control)) => {
                        let _ = control.send(Input::Announce(address, signalling));
                    }
                    None => {}
                }
                Vec::new()
            }
            MediaCommand::WebRtc { call, side, leg } => {
                match self.control(call) {
                    Some(Control::Relay(control)) => {
                        let _ = control.send(RelayInput::WebRtc(side, leg));
                    }
                    // A browser calling voicemail: the leg is in front of
                    // the endpoint.
                    Some(Control::Served(control)) => {
                        let _ = control.send(Input::WebRtc(leg));
                    }
                    None => {}
                }
                Vec::new()
            }
            MediaCommand::Press {
                call,
                side,
                key,
                millis,
                payload_type,
            } => {
                if let Some(Control::Relay(control)) = self.control(call) {
                    let _ = control.send(RelayInput::Press(side, key, millis, payload_type));
                }
                Vec::new()
            }
            MediaCommand::Serve(served) => {
                self.serve(*served);
                Vec::new()
            }
            MediaCommand::Key { call, key } => {
                if let Some(Control::Served(control)) = self.control(call) {
                    let _ = control.send(Input::Key(key));
                }
                Vec::new()
            }
            MediaCommand::Stop { call, uid } => {
                if let Some(session) = self.sessions.remove(&call) {
                    info!(call = %uid,
                        packets_from_caller = session.counters.from_a.load(Ordering::Relaxed),
                        packets_from_callee = session.counters.from_b.load(Ordering::Relaxed),
                        "media relay ended");
                    self.ports.release(session.slot.a_port);
                    self.ports.release(session.slot.b_port);
                }
                Vec::new()
            }
        }
    }

    /// Where call `call`'s session takes its inputs.
    fn control(&self, call: u64) -> Option<&Control> {
        self.sessions.get(&call).map(|s| &s.control)
    }

    /// Binds a slot: two pairs.
    fn reserve(&mut self) -> Option<MediaSlot> {
        let a = self.bind_pair();
        let b = a.as_ref().ok().map(|_| self.bind_pair());
        match (a, b) {
            (Ok(a), Some(Ok(b))) => {
                let slot = MediaSlot {
                    a_port: a.0,
                    b_port: b.0,
                };
                self.reserved.insert(slot, [a.1, a.2, b.1, b.2]);
                Some(slot)
            }
            (Ok(a), _) => {
                self.ports.release(a.0);
                warn!("no free media ports for a call");
                None
            }
            (Err(_), _) => {
                warn!("no free media ports for a call");
                None
            }
        }
    }

    /// Starts the relay of call `call` on the media runtime.
    fn start(&mut self, call: u64, slot: MediaSlot) {
        let Some(sockets) = self.reserved.remove(&slot) else {
            warn!(call, "a call started on media ports that were not reserved");
            return;
        };
        let (control, control_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let task = Task {
            call,
            sockets,
            relay: Relay::new(std::time::Instant::now(), None, None, self.silence),
            control: control_rx,
            events: self.events.clone(),
            counters: counters.clone(),
        };
        self.runtime.spawn(task.run());
        self.sessions.insert(
            call,
            Session {
                slot,
                counters,
                control: Control::Relay(control),
            },
        );
    }

    /// Starts the voicemail of a served call on its slot's A side (the B
    /// side's sockets are closed at once).
    fn serve(&mut self, served: edgepbx_engine::Served) {
        let (call, slot) = (served.call, served.slot);
        let Some([rtp, rtcp, _, _]) = self.reserved.remove(&slot) else {
            warn!(call, "a served call on media ports that were not reserved");
            return;
        };
        let control = self.voicemail.start(served, rtp, rtcp);
        self.sessions.insert(
            call,
            Session {
                slot,
                counters: Arc::default(),
                control: Control::Served(control),
            },
        );
    }

    /// Allocates a pair and binds both of its sockets.
    fn bind_pair(&mut self) -> Result<(u16, StdUdpSocket, StdUdpSocket), PortError> {
        for _ in 0..BIND_ATTEMPTS {
            let port = self.ports.allocate(rand::random())?;
            match (bind(self.bind, port), bind(self.bind, port.wrapping_add(1))) {
                (Ok(rtp), Ok(rtcp)) => return Ok((port, rtp, rtcp)),
                (Err(e), _) | (_, Err(e)) => {
                    debug!(port, error = %e, "media port taken; trying the next pair");
                    // Left allocated: another program holds it.
                }
            }
        }
        Err(PortError::Exhausted)
    }
}

fn bind(ip: IpAddr, port: u16) -> std::io::Result<StdUdpSocket> {
    let socket = StdUdpSocket::bind(SocketAddr::new(ip, port))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The task of one session.
struct Task {
    call: u64,
    /// A RTP, A RTCP, B RTP, B RTCP, registered with the media runtime's
    /// reactor when the task starts.
    sockets: [StdUdpSocket; 4],
    relay: Relay,
    control: mpsc::UnboundedReceiver<RelayInput>,
    events: mpsc::UnboundedSender<MediaEvent>,
    counters: Arc<Counters>,
}

/// The relay of one call and the browsers' legs on its sides.
struct Plane<'a> {
    call: u64,
    sockets: &'a [UdpSocket; 4],
    relay: Relay,
    legs: [Option<Box<WebRtcLeg>>; 2],
    /// Keys spliced into the RTP towards each plain side.
    splicers: [Splicer; 2],
    /// `Gone` reported for each side.
    gone: [bool; 2],
    events: &'a mpsc::UnboundedSender<MediaEvent>,
    counters: &'a Counters,
}

/// Where the relay believes a browser's RTP comes from and goes to: the
/// leg stands in for the browser, so any fixed address does.
const BROWSER: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9);

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

impl Plane<'_> {
    /// A datagram arrived on socket `at` from `from`.
    fn received(&mut self, now: std::time::Instant, at: usize, from: SocketAddr, packet: &[u8]) {
        let side = if at < 2 { Side::A } else { Side::B };
        if let Some(leg) = &mut self.legs[index(side)] {
            if at.is_multiple_of(2) {
                leg.handle_datagram(now, from, packet);
                self.drain(now, side);
            }
            return;
        }
        self.relay_packet(now, side, from, packet);
    }

    /// Relays a packet of `side`'s party.
    fn relay_packet(
        &mut self,
        now: std::time::Instant,
        side: Side,
        from: SocketAddr,
        packet: &[u8],
    ) {
        let Some(out) = self.relay.handle_packet(now, side, from, packet) else {
            return;
        };
        let counter = match side {
            Side::A => &self.counters.from_a,
            Side::B => &self.counters.from_b,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (to_side, kind, to) = (out.from, out.kind, out.to);
        if let Some(leg) = &mut self.legs[index(to_side)] {
            // The browser's leg encrypts it (RTCP: it makes its own).
            if kind == Kind::Rtp {
                leg.send_rtp(now, out.bytes);
                self.drain(now, to_side);
            }
            return;
        }
        let bytes = match kind {
            Kind::Rtp => self.splicers[index(to_side)].forward(out.bytes),
            Kind::Rtcp => Cow::Borrowed(out.bytes),
        };
        let socket = match (to_side, kind) {
            (Side::A, Kind::Rtp) => &self.sockets[0],
            (Side::A, Kind::Rtcp) => &self.sockets[1],
            (Side::B, Kind::Rtp) => &self.sockets[2],
            (Side::B, Kind::Rtcp) => &self.sockets[3],
        };
        let _ = socket.try_send_to(&bytes, to);
    }

    /// Sends what `side`'s leg has to send, and relays what its browser
    /// sent.
    fn drain(&mut self, now: std::time::Instant, side: Side) {
        let mut media = Vec::new();
        if let Some(leg) = &mut self.legs[index(side)] {
            while let Some(datagram) = leg.poll_datagram() {
                let _ = self.sockets[index(side) * 2].try_send_to(&datagram.bytes, datagram.to);
            }
            while let Some(packet) = leg.poll_rtp() {
                media.push(packet);
            }
        }
        for packet in media {
            self.relay_packet(now, side, BROWSER, &packet);
        }
    }

    /// A description of `side`'s party; a browser's leg stands in for its
    /// party, whatever the description says.
    fn announce(&mut self, side: Side, address: SocketAddr, signalling: IpAddr) {
        if self.legs[index(side)].is_none() {
            self.relay
                .handle_announcement(side, address, Some(signalling));
        }
    }

    /// A party is a browser from now on.
    fn attach(&mut self, now: std::time::Instant, side: Side, leg: Box<WebRtcLeg>) {
        self.relay.handle_announcement(side, BROWSER, None);
        self.legs[index(side)] = Some(leg);
        self.drain(now, side);
    }

    /// A key for `side`'s party, as RFC 4733 events in the media it
    /// receives.
    fn press(&mut self, now: std::time::Instant, side: Side, key: char, millis: u32, pt: u8) {
        if let Some(leg) = &mut self.legs[index(side)] {
            leg.press(now, pt, key, millis);
            self.drain(now, side);
            return;
        }
        let Some(to) = self.relay.destination(side) else {
            return;
        };
        for packet in self.splicers[index(side)].press(pt, key, millis) {
            let _ = self.sockets[index(side) * 2].try_send_to(&packet, to);
        }
    }

    /// The earliest timer of the relay and the legs.
    fn deadline(&self) -> Option<std::time::Instant> {
        let legs = self.legs.iter().flatten().map(|l| l.poll_timeout());
        self.relay.poll_timeout().into_iter().chain(legs).min()
    }

    fn timeout(&mut self, now: std::time::Instant) {
        self.relay.handle_timeout(now);
        for side in [Side::A, Side::B] {
            let Some(leg) = &mut self.legs[index(side)] else {
                continue;
            };
            leg.handle_timeout(now);
            let lost = leg.lost_since().is_some();
            self.drain(now, side);
            if lost && !self.gone[index(side)] {
                self.gone[index(side)] = true;
                let event = Event::Gone(side);
                let _ = self.events.send(MediaEvent::Relay {
                    call: self.call,
                    event,
                });
            }
        }
    }

    fn report(&mut self) {
        while let Some(event) = self.relay.poll_event() {
            let _ = self.events.send(MediaEvent::Relay {
                call: self.call,
                event,
            });
        }
    }
}

impl Task {
    async fn run(self) {
        let Task {
            call,
            sockets,
            relay,
            mut control,
            events,
            counters,
        } = self;
        let registered: std::io::Result<Vec<UdpSocket>> =
            sockets.into_iter().map(UdpSocket::from_std).collect();
        let sockets: [UdpSocket; 4] = match registered.map(<[UdpSocket; 4]>::try_from) {
            Ok(Ok(sockets)) => sockets,
            _ => {
                warn!(
                    call,
                    "media sockets could not be registered; no media for this call"
                );
                return;
            }
        };
        let mut plane = Plane {
            call,
            sockets: &sockets,
            relay,
            legs: [None, None],
            splicers: [Splicer::new(), Splicer::new()],
            gone: [false, false],
            events: &events,
            counters: &counters,
        };
        let mut bufs = [[0u8; MAX_PACKET]; 4];
        // One timer for the session, moved only when the deadline moves:
        // a new timer per packet costs a timer-wheel insertion and removal
        // at every wake.
        let timer = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            let deadline = plane.deadline();
            if deadline != armed {
                if let Some(at) = deadline {
                    timer.as_mut().reset(tokio::time::Instant::from_std(at));
                }
                armed = deadline;
            }
            let [b0, b1, b2, b3] = &mut bufs;
            let [s0, s1, s2, s3] = &sockets;
            let received = tokio::select! {
                r = s0.recv_from(b0) => r.ok().map(|(n, from)| (0, n, from)),
                r = s1.recv_from(b1) => r.ok().map(|(n, from)| (1, n, from)),
                r = s2.recv_from(b2) => r.ok().map(|(n, from)| (2, n, from)),
                r = s3.recv_from(b3) => r.ok().map(|(n, from)| (3, n, from)),
                input = control.recv() => match input {
                    Some(RelayInput::Announce(side, address, signalling)) => {
                        plane.announce(side, address, signalling);
                        None
                    }
                    Some(RelayInput::WebRtc(side, leg)) => {
                        plane.attach(std::time::Instant::now(), side, leg);
                        None
                    }
                    Some(RelayInput::Press(side, key, millis, pt)) => {
                        plane.press(std::time::Instant::now(), side, key, millis, pt);
                        None
                    }
                    // The session was dropped: the call is over.
                    None => break,
                },
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    plane.timeout(std::time::Instant::now());
                    None
                }
            };
            if let Some((at, len, from)) = received {
                let now = std::time::Instant::now();
                plane.received(now, at, from, &bufs[at][..len]);
                // What else is queued on that socket, without another
                // round through the select.
                while let Ok((len, from)) = sockets[at].try_recv_from(&mut bufs[at]) {
                    plane.received(now, at, from, &bufs[at][..len]);
                }
            }
            plane.report();
        }
    }
}
