//! The socket driver of the media relay: per anchored call, one task with
//! four UDP sockets (RTP and RTCP facing each party) around the sans-IO
//! [`Relay`]. The SIP core starts and stops sessions and tells them where
//! each party announced its media; sessions report silence back.
//!
//! Sessions run on a runtime of their own (the media runtime), so that
//! relaying thousands of packets a second never delays a SIP message on the
//! SIP plane's workers; the SIP core only binds the sockets (to know the
//! ports are free before it offers them) and hands them over.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edgepbx_media::ports::{PortError, PortRange};
use edgepbx_media::relay::{Event, Relay, Side};
use edgepbx_media::rtp::Kind;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Largest datagram relayed; RTP of G.711 is 172 bytes, anything much
/// larger is not a voice packet.
const MAX_PACKET: usize = 2_048;

/// Pairs tried before giving up when ports of the range are taken by
/// other programs.
const BIND_ATTEMPTS: usize = 64;

/// A relay event of one call, for the SIP core.
#[derive(Debug, Clone, Copy)]
pub struct MediaEvent {
    /// The call's id.
    pub call: u64,
    /// What happened.
    pub event: Event,
}

/// Packets relayed from each side, readable while the session runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// RTP and RTCP packets relayed from A.
    pub from_a: AtomicU64,
    /// RTP and RTCP packets relayed from B.
    pub from_b: AtomicU64,
}

/// A running relay session.
#[derive(Debug)]
pub struct MediaSession {
    /// RTP port facing the caller (A).
    pub a_port: u16,
    /// RTP port facing the callee (B).
    pub b_port: u16,
    /// Packets relayed.
    pub counters: Arc<Counters>,
    control: mpsc::UnboundedSender<(Side, SocketAddr)>,
}

impl MediaSession {
    /// `side` announced that it receives RTP at `address`.
    pub fn announce(&self, side: Side, address: SocketAddr) {
        let _ = self.control.send((side, address));
    }
}

/// Media ports and the settings sessions are made with.
#[derive(Debug)]
pub struct MediaPlane {
    ports: PortRange,
    bind: IpAddr,
    silence: Duration,
    events: mpsc::UnboundedSender<MediaEvent>,
    runtime: tokio::runtime::Handle,
}

impl MediaPlane {
    /// A plane handing out ports of `ports`, binding on `bind`, running
    /// sessions on `runtime` and reporting silence after `silence` to
    /// `events`.
    pub fn new(
        ports: PortRange,
        bind: IpAddr,
        silence: Duration,
        events: mpsc::UnboundedSender<MediaEvent>,
        runtime: tokio::runtime::Handle,
    ) -> MediaPlane {
        MediaPlane {
            ports: ports.starting_at(rand::random()),
            bind,
            silence,
            events,
            runtime,
        }
    }

    /// Starts the relay of call `call` on the current runtime.
    pub fn start(&mut self, call: u64) -> Result<MediaSession, PortError> {
        let a = self.bind_pair()?;
        let b = match self.bind_pair() {
            Ok(b) => b,
            Err(e) => {
                self.ports.release(a.0);
                return Err(e);
            }
        };
        let (a_port, b_port) = (a.0, b.0);
        let (control, control_rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let task = Task {
            call,
            sockets: [a.1, a.2, b.1, b.2],
            relay: Relay::new(std::time::Instant::now(), None, None, self.silence),
            control: control_rx,
            events: self.events.clone(),
            counters: counters.clone(),
        };
        self.runtime.spawn(task.run());
        Ok(MediaSession {
            a_port,
            b_port,
            counters,
            control,
        })
    }

    /// Gives a session's ports back (its task ends when the session is
    /// dropped).
    pub fn release(&mut self, session: MediaSession) {
        self.ports.release(session.a_port);
        self.ports.release(session.b_port);
    }

    /// Allocates a pair and binds both of its sockets.
    fn bind_pair(&mut self) -> Result<(u16, StdUdpSocket, StdUdpSocket), PortError> {
        for _ in 0..BIND_ATTEMPTS {
            let port = self.ports.allocate()?;
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
    control: mpsc::UnboundedReceiver<(Side, SocketAddr)>,
    events: mpsc::UnboundedSender<MediaEvent>,
    counters: Arc<Counters>,
}

impl Task {
    async fn run(self) {
        let Task {
            call,
            sockets,
            mut relay,
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
        let mut bufs = [[0u8; MAX_PACKET]; 4];
        loop {
            let deadline = relay.poll_timeout();
            let [b0, b1, b2, b3] = &mut bufs;
            let [s0, s1, s2, s3] = &sockets;
            let received = tokio::select! {
                r = s0.recv_from(b0) => r.ok().map(|(n, from)| (0, n, from)),
                r = s1.recv_from(b1) => r.ok().map(|(n, from)| (1, n, from)),
                r = s2.recv_from(b2) => r.ok().map(|(n, from)| (2, n, from)),
                r = s3.recv_from(b3) => r.ok().map(|(n, from)| (3, n, from)),
                announced = control.recv() => match announced {
                    Some((side, address)) => {
                        relay.handle_announcement(side, address);
                        None
                    }
                    // The session was dropped: the call is over.
                    None => break,
                },
                _ = sleep_until(deadline) => {
                    relay.handle_timeout(std::time::Instant::now());
                    None
                }
            };
            if let Some((index, len, from)) = received {
                let side = if index < 2 { Side::A } else { Side::B };
                let packet = &bufs[index][..len];
                if let Some(out) =
                    relay.handle_packet(std::time::Instant::now(), side, from, packet)
                {
                    let socket = match (out.from, out.kind) {
                        (Side::A, Kind::Rtp) => &sockets[0],
                        (Side::A, Kind::Rtcp) => &sockets[1],
                        (Side::B, Kind::Rtp) => &sockets[2],
                        (Side::B, Kind::Rtcp) => &sockets[3],
                    };
                    let _ = socket.try_send_to(out.bytes, out.to);
                    let counter = match side {
                        Side::A => &counters.from_a,
                        Side::B => &counters.from_b,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            while let Some(event) = relay.poll_event() {
                let _ = events.send(MediaEvent { call, event });
            }
        }
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
