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
use std::time::Duration;

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
        /// Bytes to write.
        sender: mpsc::Sender<Vec<u8>>,
    },
    /// A stream connection closed.
    Closed {
        /// Connection id.
        conn: u64,
    },
}

/// The core's handle for sending bytes.
#[derive(Debug)]
pub struct Outbound {
    udp: Arc<UdpSocket>,
    tcp: HashMap<u64, mpsc::Sender<Vec<u8>>>,
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
    pub fn connected(&mut self, conn: u64, sender: mpsc::Sender<Vec<u8>>) {
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
                sender.try_send(bytes).map_err(|_| failed())
            }
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

/// Counts connections per remote IP address.
#[derive(Debug, Default)]
struct ConnectionCount(std::sync::Mutex<HashMap<IpAddr, usize>>);

impl ConnectionCount {
    fn try_add(&self, ip: IpAddr, max: usize) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    fn remove(&self, ip: IpAddr) {
        if let Ok(mut map) = self.0.lock()
            && let Some(n) = map.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Settings of the TCP driver.
#[derive(Debug, Clone)]
pub struct TcpSettings {
    /// Framing limits.
    pub limits: Limits,
    /// Most connections from one IP address.
    pub max_connections_per_ip: usize,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
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
    core: mpsc::Sender<Inbound>,
    shutdown: watch::Receiver<bool>,
) {
    let counts = Arc::new(ConnectionCount::default());
    let mut stop = shutdown.clone();
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
            _ = stop.changed() => return,
        };
        if !counts.try_add(addr.ip(), settings.max_connections_per_ip) {
            warn!(%addr, "too many connections from this address; refused");
            continue;
        }
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let (core, settings, counts, shutdown, tls) = (
            core.clone(),
            settings.clone(),
            counts.clone(),
            shutdown.clone(),
            tls.clone(),
        );
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let peer = Peer::Stream {
                        conn,
                        addr,
                        kind: StreamKind::Tcp,
                    };
                    serve_connection(stream, peer, &settings, &core, shutdown).await;
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
                            serve_connection(stream, peer, &settings, &core, shutdown).await;
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

async fn serve_connection<S>(
    stream: S,
    peer: Peer,
    settings: &TcpSettings,
    core: &mpsc::Sender<Inbound>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (Some(conn), addr) = (peer.conn(), peer.addr()) else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
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
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut framer = StreamFramer::new(settings.limits.clone());
    let mut buf = vec![0u8; 16 * 1024];
    'read: loop {
        let read = tokio::select! {
            r = tokio::time::timeout(settings.idle_timeout, reader.read(&mut buf)) => r,
            _ = shutdown.changed() => break,
        };
        let n = match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        framer.handle_bytes(&buf[..n]);
        while let Some(framed) = framer.poll_message() {
            let inbound = match framed {
                Ok(Framed::Message(message)) => Inbound::Message {
                    peer: peer.clone(),
                    message,
                },
                Ok(Framed::Ping) => {
                    // RFC 5626 §4.4.1: answer a double-CRLF ping with CRLF.
                    let _ = tx.try_send(b"\r\n".to_vec());
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
    // Let queued responses (such as a 400 for a framing error) go out.
    let _ = tokio::time::timeout(Duration::from_secs(2), write_task).await;
}
