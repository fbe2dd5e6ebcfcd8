//! Transport drivers: a reader of the UDP socket that the SIP driver
//! calls, one task per TCP or TLS connection, and one per WebSocket
//! ([`ws`]). They frame bytes into messages
//! (with the sans-IO framing of `edgepbx_sip::parse`) and hand them to the
//! SIP driver, which hands back bytes to send to a [`Peer`]. Nothing here
//! interprets SIP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use edgepbx_engine::{Peer, StreamKind};
use edgepbx_sip::Message;
use edgepbx_sip::parse::{Framed, Limits, ParseError, StreamFramer, parse_datagram};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

pub mod ws;

/// What the drivers tell the core.
#[derive(Debug)]
pub enum Inbound {
    /// A well-framed message.
    Message {
        /// Who sent it.
        peer: Peer,
        /// The message.
        message: Message,
    },
    /// Bytes that could not be parsed; the core answers or drops them.
    Malformed {
        /// Who sent them.
        peer: Peer,
        /// The offending bytes (bounded by the message size limit).
        bytes: Vec<u8>,
        /// What was wrong.
        error: ParseError,
    },
    /// A stream connection opened; the core sends to it through `sender`.
    Connected {
        /// Connection id.
        conn: u64,
        /// What to write, and how long to keep it open.
        sender: mpsc::Sender<ToConn>,
    },
    /// A stream connection closed.
    Closed {
        /// Connection id.
        conn: u64,
    },
}

/// What the core tells a stream connection.
#[derive(Debug)]
pub enum ToConn {
    /// Bytes to write.
    Bytes(Vec<u8>),
    /// A device's registration rides on the connection until then: it may
    /// stay open while idle until then, plus a margin.
    KeepUntil(Instant),
}

/// The core's handle for sending bytes.
#[derive(Debug)]
pub struct Outbound {
    udp: Arc<UdpSocket>,
    tcp: HashMap<u64, mpsc::Sender<ToConn>>,
}

/// Sending failed: the peer's connection is gone or its queue is full.
#[derive(Debug, thiserror::Error)]
#[error("cannot send to {peer:?}")]
pub struct SendError {
    /// The peer that could not be reached.
    pub peer: Peer,
}

impl Outbound {
    /// Wraps the UDP socket; TCP connections are added as they open.
    pub fn new(udp: Arc<UdpSocket>) -> Self {
        Outbound {
            udp,
            tcp: HashMap::new(),
        }
    }

    /// Records a new TCP connection.
    pub fn connected(&mut self, conn: u64, sender: mpsc::Sender<ToConn>) {
        self.tcp.insert(conn, sender);
    }

    /// Forgets a closed TCP connection.
    pub fn closed(&mut self, conn: u64) {
        self.tcp.remove(&conn);
    }

    /// Sends bytes without waiting: UDP datagrams best effort, TCP through
    /// the connection's bounded queue.
    pub fn send(&self, peer: &Peer, bytes: Vec<u8>) -> Result<(), SendError> {
        let failed = || SendError { peer: peer.clone() };
        match peer {
            Peer::Udp(addr) => match self.udp.try_send_to(&bytes, *addr) {
                Ok(_) => Ok(()),
                // A full socket buffer loses the datagram, as the network
                // might; transactions retransmit.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
                Err(_) => Err(failed()),
            },
            Peer::Stream { conn, .. } => {
                let sender = self.tcp.get(conn).ok_or_else(failed)?;
                sender.try_send(ToConn::Bytes(bytes)).map_err(|_| failed())
            }
        }
    }

    /// Keeps connection `conn` open while a registration rides on it
    /// (until `until`); nothing for a connection that is gone.
    pub fn keep_open(&self, conn: u64, until: Instant) {
        if let Some(sender) = self.tcp.get(&conn) {
            let _ = sender.try_send(ToConn::KeepUntil(until));
        }
    }
}

/// Reads the SIP UDP socket for the SIP driver, which calls it when the socket
/// is readable: no task and no channel between the socket and the core, so
/// a datagram is handled by the thread that woke up for it.
#[derive(Debug)]
pub struct UdpReceiver {
    socket: Arc<UdpSocket>,
    limits: Limits,
    /// One byte more than the limit tells an oversized datagram apart.
    buf: Vec<u8>,
}

/// Receive errors and keepalives skipped in a row before
/// [`UdpReceiver::try_next`] gives up until the next readiness.
const SKIPPED_IN_A_ROW: usize = 64;

impl UdpReceiver {
    /// Reads `socket`, framing within `limits`.
    pub fn new(socket: Arc<UdpSocket>, limits: Limits) -> Self {
        let buf = vec![0u8; limits.max_message_bytes + 1];
        UdpReceiver {
            socket,
            limits,
            buf,
        }
    }

    /// Waits until datagrams are waiting.
    pub async fn readable(&self) -> std::io::Result<()> {
        self.socket.readable().await
    }

    /// The next waiting datagram, framed; `None` when none is waiting.
    /// Keepalives are skipped, and so are receive errors (ICMP errors
    /// surface here on some systems).
    pub fn try_next(&mut self) -> Option<Inbound> {
        for _ in 0..SKIPPED_IN_A_ROW {
            let (len, from) = match self.socket.try_recv_from(&mut self.buf) {
                Ok(received) => received,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) => {
                    debug!(error = %e, "udp receive error");
                    continue;
                }
            };
            let bytes = &self.buf[..len];
            if bytes
                .iter()
                .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
            {
                continue; // keepalive datagrams (RFC 5626 §4.4.1 and common NAT pings)
            }
            let peer = Peer::Udp(from);
            return Some(match parse_datagram(bytes, &self.limits) {
                Ok(message) => Inbound::Message { peer, message },
                Err(error) => Inbound::Malformed {
                    peer,
                    bytes: bytes.to_vec(),
                    error,
                },
            });
        }
        None
    }
}

/// Counts the stream connections of every SIP transport (TCP, TLS and
/// WebSocket), per remote IP address and in all, against their limits.
#[derive(Debug)]
pub struct ConnectionCount {
    per_ip: usize,
    total: usize,
    open: std::sync::Mutex<(HashMap<IpAddr, usize>, usize)>,
}

impl ConnectionCount {
    /// At most `per_ip` connections from one address, `total` in all.
    pub fn new(per_ip: usize, total: usize) -> ConnectionCount {
        ConnectionCount {
            per_ip,
            total,
            open: std::sync::Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Counts a connection from `ip`; false (and nothing counted) when a
    /// limit is reached.
    fn try_add(&self, ip: IpAddr) -> bool {
        let Ok(mut open) = self.open.lock() else {
            return false;
        };
        let (map, all) = &mut *open;
        if *all >= self.total {
            return false;
        }
        let n = map.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return false;
        }
        *n += 1;
        *all += 1;
        true
    }

    fn remove(&self, ip: IpAddr) {
        if let Ok(mut open) = self.open.lock() {
            let (map, all) = &mut *open;
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                *all = all.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// Settings of the TCP driver.
#[derive(Debug, Clone)]
pub struct TcpSettings {
    /// Framing limits.
    pub limits: Limits,
    /// A connection silent for this long is closed, unless a registration
    /// rides on it ([`ToConn::KeepUntil`]).
    pub idle_timeout: Duration,
    /// How long past its registration's expiry a silent connection stays.
    pub keep_margin: Duration,
    /// A peer that takes no bytes for this long is gone: its connection
    /// ends.
    pub write_timeout: Duration,
}

impl TcpSettings {
    /// The defaults with `limits`: 120 s for a connection no registration
    /// rides on (as Kamailio's connection lifetime), a 60 s margin past a
    /// registration's expiry, 10 s to take a write.
    pub fn new(limits: Limits) -> TcpSettings {
        TcpSettings {
            limits,
            idle_timeout: Duration::from_secs(120),
            keep_margin: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// Connection ids, unique for the life of the process across TCP, TLS and
/// WebSocket.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accepts connections until shutdown: plain TCP, or TLS with `tls` (the
/// handshake in the connection's own task, bounded in time, so a slow
/// client never holds up the others).
pub async fn run_stream(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    settings: TcpSettings,
    counts: Arc<ConnectionCount>,
    core: mpsc::Sender<Inbound>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        if !counts.try_add(addr.ip()) {
            warn!(%addr, "too many connections (from this address or in all); refused");
            continue;
        }
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let (core, settings, counts, tls) =
            (core.clone(), settings.clone(), counts.clone(), tls.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let peer = Peer::Stream {
                        conn,
                        addr,
                        kind: StreamKind::Tcp,
                    };
                    serve_connection(stream, peer, &settings, &core).await;
                }
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        crate::api::tls::HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    );
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            let peer = Peer::Stream {
                                conn,
                                addr,
                                kind: StreamKind::Tls,
                            };
                            serve_connection(stream, peer, &settings, &core).await;
                        }
                        Ok(Err(error)) => debug!(%addr, %error, "SIP TLS handshake failed"),
                        Err(_) => debug!(%addr, "SIP TLS handshake timed out"),
                    }
                }
            }
            counts.remove(addr.ip());
        });
    }
}

/// Serves one connection until its peer closes it, goes idle, stops
/// reading, or the core goes away. Not at shutdown: the core ends its
/// calls over the connection first (BYEs), then drops it.
async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    settings: &TcpSettings,
    core: &mpsc::Sender<Inbound>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (Some(conn), addr) = (peer.conn(), peer.addr()) else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<ToConn>(256);
    if core
        .send(Inbound::Connected {
            conn,
            sender: tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    // The writer tells the reader how long a registration keeps the
    // connection, and that it is gone (its end drops `gone`).
    let (keep_tx, mut keep) = watch::channel(None::<Instant>);
    let (gone, mut writer_gone) = tokio::sync::oneshot::channel::<()>();
    let write_timeout = settings.write_timeout;
    let mut write_task = tokio::spawn(async move {
        let _gone = gone;
        while let Some(item) = rx.recv().await {
            match item {
                ToConn::Bytes(bytes) => {
                    let written = tokio::time::timeout(write_timeout, writer.write_all(&bytes));
                    if !matches!(written.await, Ok(Ok(()))) {
                        break;
                    }
                }
                ToConn::KeepUntil(until) => {
                    let _ = keep_tx.send(Some(until));
                }
            }
        }
        let _ = tokio::time::timeout(write_timeout, writer.shutdown()).await;
    });
    let mut framer = StreamFramer::new(settings.limits.clone());
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_read = Instant::now();
    'read: loop {
        let idle_until = (last_read + settings.idle_timeout).max(
            keep.borrow()
                .map_or(last_read, |until| until + settings.keep_margin),
        );
        let read = tokio::select! {
            r = reader.read(&mut buf) => r,
            () = tokio::time::sleep_until(idle_until.into()) => {
                debug!(%addr, "idle connection closed");
                break;
            }
            Ok(()) = keep.changed() => continue,
            _ = &mut writer_gone => {
                debug!(%addr, "the peer takes no bytes; closing the connection");
                break;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        last_read = Instant::now();
        framer.handle_bytes(&buf[..n]);
        while let Some(framed) = framer.poll_message() {
            let inbound = match framed {
                Ok(Framed::Message(message)) => Inbound::Message {
                    peer: peer.clone(),
                    message,
                },
                Ok(Framed::Ping) => {
                    // RFC 5626 §4.4.1: answer a double-CRLF ping with CRLF.
                    let _ = tx.try_send(ToConn::Bytes(b"\r\n".to_vec()));
                    continue;
                }
                Err(error) => Inbound::Malformed {
                    peer: peer.clone(),
                    bytes: framer.rejected_bytes().to_vec(),
                    error,
                },
            };
            if core.send(inbound).await.is_err() {
                break 'read;
            }
        }
        if framer.is_broken() {
            debug!(%addr, "framing error; closing connection");
            break;
        }
    }
    // The core drops its sender on Closed; the writer then drains and ends.
    let _ = core.send(Inbound::Closed { conn }).await;
    drop(tx);
    // Let queued responses (such as a 400 for a framing error) go out, but
    // never wait on a peer that does not read: the socket closes with this
    // task.
    if tokio::time::timeout(Duration::from_secs(2), &mut write_task)
        .await
        .is_err()
    {
        write_task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    fn settings() -> TcpSettings {
        TcpSettings {
            limits: Limits::default(),
            idle_timeout: Duration::from_millis(300),
            keep_margin: Duration::from_millis(200),
            write_timeout: Duration::from_millis(200),
        }
    }

    /// A connection served on loopback: the client's end, what the core
    /// hears, and the core's sender to the connection.
    struct Served {
        client: TcpStream,
        core: mpsc::Receiver<Inbound>,
        sender: mpsc::Sender<ToConn>,
    }

    async fn served(settings: TcpSettings) -> Served {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a listener");
        let at = listener.local_addr().expect("an address");
        let client = TcpStream::connect(at).await.expect("connected");
        let (stream, addr) = listener.accept().await.expect("accepted");
        let (core_tx, mut core) = mpsc::channel(16);
        let peer = Peer::Stream {
            conn: 1,
            addr,
            kind: StreamKind::Tcp,
        };
        tokio::spawn(async move {
            serve_connection(stream, peer, &settings, &core_tx).await;
        });
        let Some(Inbound::Connected { sender, .. }) = core.recv().await else {
            panic!("no Connected");
        };
        Served {
            client,
            core,
            sender,
        }
    }

    /// Whether the connection reported itself closed within `within`.
    async fn closed_within(core: &mut mpsc::Receiver<Inbound>, within: Duration) -> bool {
        let closed = async {
            while let Some(item) = core.recv().await {
                if matches!(item, Inbound::Closed { .. }) {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(within, closed).await.unwrap_or(false)
    }

    #[tokio::test]
    async fn a_peer_that_stops_reading_loses_its_connection() {
        let mut served = served(TcpSettings {
            idle_timeout: Duration::from_secs(60),
            ..settings()
        })
        .await;
        // The client sends now and then but never reads: the socket's
        // buffers fill, and a write waits longer than allowed.
        for _ in 0..64 {
            if served
                .sender
                .try_send(ToConn::Bytes(vec![b'x'; 1 << 20]))
                .is_err()
            {
                break;
            }
        }
        let _ = served.client.write_all(b"\r\n\r\n").await;
        assert!(closed_within(&mut served.core, Duration::from_secs(10)).await);
    }

    #[tokio::test]
    async fn an_idle_connection_stays_only_while_a_registration_rides_on_it() {
        let mut bare = served(settings()).await;
        let mut registered = served(settings()).await;
        let until = Instant::now() + Duration::from_millis(2_000);
        registered
            .sender
            .try_send(ToConn::KeepUntil(until))
            .expect("queued");
        assert!(closed_within(&mut bare.core, Duration::from_millis(900)).await);
        assert!(
            !closed_within(&mut registered.core, Duration::from_millis(900)).await,
            "closed before its registration expired"
        );
        // Closed once its registration and the margin (0.2 s) are over.
        assert!(closed_within(&mut registered.core, Duration::from_millis(2_000)).await);
        drop((bare.client, registered.client));
    }

    #[test]
    fn connections_are_limited_per_address_and_in_all() {
        let counts = ConnectionCount::new(2, 3);
        let (a, b): (IpAddr, IpAddr) = (
            "192.0.2.1".parse().expect("an address"),
            "192.0.2.2".parse().expect("an address"),
        );
        assert!(counts.try_add(a));
        assert!(counts.try_add(a));
        assert!(!counts.try_add(a), "a third from one address");
        assert!(counts.try_add(b));
        assert!(!counts.try_add(b), "a fourth in all");
        counts.remove(a);
        assert!(counts.try_add(b));
        counts.remove(b);
        counts.remove(b);
        counts.remove(b); // more than were counted: nothing underflows
        assert!(counts.try_add(b));
    }
}
