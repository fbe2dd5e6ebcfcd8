//! SIP over WebSocket (RFC 7118) on the HTTP listener: the transport of
//! browsers (JsSIP, SIP.js and the console's web phone). One SIP message
//! per frame, each parsed like a datagram; the connection is a flow like a
//! TCP connection, so the core reaches the client over it and takes its
//! bindings offline when it closes.
//!
//! A hostile page must not drive a logged-in browser's socket: an upgrade
//! whose `Origin` is not allowed is refused. Clients that are not browsers
//! send no `Origin` and are let in; they authenticate with digest like any
//! other device.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgepbx_engine::{Peer, StreamKind};
use edgepbx_sip::parse::{Limits, parse_datagram};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::debug;

use super::{ConnectionCount, Inbound, NEXT_CONN, ToConn};

/// The subprotocol of RFC 7118.
const SUBPROTOCOL: &str = "sip";

/// How often the server pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(30);

/// A client that has sent nothing (not even a pong) for this long is gone:
/// two pings unanswered.
const SILENT_FOR: Duration = Duration::from_secs(75);

/// A client that does not take a frame within this time is not reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the WebSocket transport.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Framing limits (one frame is one message).
    pub limits: Limits,
    /// Origins allowed to open a socket (`https://pbx.example.com`); empty:
    /// only pages of the host the socket is opened on.
    pub origins: Vec<String>,
    /// Messages a client may send per second, on average; a burst of ten
    /// times that is allowed.
    pub messages_per_sec: u32,
    /// Whether the listener is HTTPS (`wss`).
    pub secure: bool,
}

/// The WebSocket side of the SIP transports: hands connections to the SIP
/// core.
#[derive(Debug)]
pub struct WsTransport {
    core: mpsc::Sender<Inbound>,
    settings: WsSettings,
    counts: Arc<ConnectionCount>,
}

impl WsTransport {
    /// Feeds connections' messages to `core`, counting them with the
    /// other SIP stream transports' in `counts`. A connection ends when
    /// the core lets it go (after a shutdown, once its calls have had
    /// their BYEs), not at the shutdown signal.
    pub fn new(
        core: mpsc::Sender<Inbound>,
        settings: WsSettings,
        counts: Arc<ConnectionCount>,
    ) -> Self {
        WsTransport {
            core,
            settings,
            counts,
        }
    }

    /// Answers an upgrade request from `addr`: refused (403) from an origin
    /// not allowed, (400) without the `sip` subprotocol, (429) past the
    /// per-address connection limit; otherwise switched to a SIP flow.
    pub fn upgrade(&self, addr: SocketAddr, headers: &HeaderMap, ws: WebSocketUpgrade) -> Response {
        if !self.origin_allowed(headers) {
            debug!(%addr, origin = ?headers.get(header::ORIGIN), "WebSocket origin refused");
            return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
        }
        let ws = ws.protocols([SUBPROTOCOL]);
        if ws.selected_protocol().is_none() {
            return (StatusCode::BAD_REQUEST, "the sip subprotocol is required").into_response();
        }
        if !self.counts.try_add(addr.ip()) {
            return (StatusCode::TOO_MANY_REQUESTS, "too many connections").into_response();
        }
        let max = self.settings.limits.max_message_bytes;
        let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
        let kind = if self.settings.secure {
            StreamKind::Wss
        } else {
            StreamKind::Ws
        };
        let peer = Peer::Stream { conn, addr, kind };
        let (core, settings, counts) = (
            self.core.clone(),
            self.settings.clone(),
            self.counts.clone(),
        );
        let release = counts.clone();
        ws.max_message_size(max)
            .max_frame_size(max)
            .on_failed_upgrade(move |_| release.remove(addr.ip()))
            .on_upgrade(move |socket| async move {
                serve(socket, peer, &settings, &core).await;
                counts.remove(addr.ip());
            })
    }

    /// Whether the page that opens the socket may: no `Origin` (not a
    /// browser), an origin on the list, or (no list) an origin of the host
    /// the request is addressed to.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if !self.settings.origins.is_empty() {
            return self
                .settings
                .origins
                .iter()
                .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin));
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
    }
}

/// A token bucket: `rate` messages a second, bursts of ten times that.
struct Bucket {
    tokens: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Bucket {
            tokens: rate * 10.0,
            rate,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * 10.0);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Why a connection ends.
enum End {
    /// The client closed it, went silent or broke the protocol.
    Client,
    /// The client sent faster than allowed.
    Flood,
    /// The server is stopping or the core is gone.
    Server,
}

async fn serve(
    mut socket: WebSocket,
    peer: Peer,
    settings: &WsSettings,
    core: &mpsc::Sender<Inbound>,
) {
    let Some(conn) = peer.conn() else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<ToConn>(256);
    if core
        .send(Inbound::Connected { conn, sender: tx })
        .await
        .is_err()
    {
        return;
    }
    let mut bucket = Bucket::new(settings.messages_per_sec);
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    let end = loop {
        tokio::select! {
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { break End::Client };
                heard = Instant::now();
                let bytes = match frame {
                    Frame::Text(text) => text.as_str().as_bytes().to_vec(),
                    Frame::Binary(bytes) => bytes.to_vec(),
                    Frame::Ping(_) | Frame::Pong(_) => continue,
                    Frame::Close(_) => break End::Client,
                };
                if bytes.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t')) {
                    continue; // a keepalive
                }
                if !bucket.take(heard) {
                    break End::Flood;
                }
                let inbound = match parse_datagram(&bytes, &settings.limits) {
                    Ok(message) => Inbound::Message { peer: peer.clone(), message },
                    Err(error) => Inbound::Malformed { peer: peer.clone(), bytes, error },
                };
                if core.send(inbound).await.is_err() {
                    break End::Server;
                }
            }
            out = rx.recv() => {
                // The core dropped its sender: it has stopped. A browser's
                // liveness is its pongs, not its registration.
                let bytes = match out {
                    Some(ToConn::Bytes(bytes)) => bytes,
                    Some(ToConn::KeepUntil(_)) => continue,
                    None => break End::Server,
                };
                let frame = match String::from_utf8(bytes) {
                    Ok(text) => Frame::text(text),
                    Err(e) => Frame::binary(e.into_bytes()),
                };
                match tokio::time::timeout(SEND_TIMEOUT, socket.send(frame)).await {
                    Ok(Ok(())) => {}
                    _ => break End::Client,
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() >= SILENT_FOR {
                    break End::Client;
                }
                let sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(Frame::Ping(Default::default())));
                if !matches!(sent.await, Ok(Ok(()))) {
                    break End::Client;
                }
            }
        }
    };
    let code = match end {
        End::Client => None,
        End::Flood => Some(axum::extract::ws::close_code::POLICY),
        End::Server => Some(axum::extract::ws::close_code::AWAY),
    };
    if let Some(code) = code {
        debug!(addr = %peer.addr(), code, "closing SIP WebSocket");
        let close = Frame::Close(Some(axum::extract::ws::CloseFrame {
            code,
            reason: Default::default(),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(close)).await;
    }
    let _ = core.send(Inbound::Closed { conn }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(origins: &[&str]) -> WsTransport {
        let (core, _) = mpsc::channel(1);
        WsTransport::new(
            core,
            WsSettings {
                limits: Limits::default(),
                origins: origins.iter().map(|o| (*o).to_owned()).collect(),
                messages_per_sec: 20,
                secure: true,
            },
            Arc::new(ConnectionCount::new(4, 8)),
        )
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().expect("a header value"));
        if let Some(origin) = origin {
            h.insert(header::ORIGIN, origin.parse().expect("a header value"));
        }
        h
    }

    #[test]
    fn pages_of_the_same_host_or_the_list_may_open_a_socket() {
        let same = transport(&[]);
        assert!(same.origin_allowed(&headers("pbx:8443", Some("https://pbx:8443"))));
        assert!(same.origin_allowed(&headers("pbx:8443", None)));
        assert!(!same.origin_allowed(&headers("pbx:8443", Some("https://evil.example"))));
        assert!(!same.origin_allowed(&headers("pbx:8443", Some("https://pbx:8443.evil"))));
        assert!(!same.origin_allowed(&headers("pbx:8443", Some("null"))));
        let listed = transport(&["https://app.example.com/"]);
        assert!(listed.origin_allowed(&headers("pbx:8443", Some("https://app.example.com"))));
        assert!(!listed.origin_allowed(&headers("pbx:8443", Some("https://pbx:8443"))));
    }

    #[tokio::test]
    async fn a_burst_is_allowed_then_the_rate() {
        let mut bucket = Bucket::new(2);
        let now = Instant::now();
        assert_eq!((0..25).filter(|_| bucket.take(now)).count(), 20);
        assert!(bucket.take(now + Duration::from_millis(500)));
        assert!(!bucket.take(now + Duration::from_millis(500)));
    }
}
