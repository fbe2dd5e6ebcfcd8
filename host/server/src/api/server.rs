//! The HTTP/1.1 server loop under the API, the console, provisioning and
//! SIP WebSockets: a bounded number of connections, and a deadline for
//! each request's header, so that slow or idle clients cannot hold the
//! listener's resources (axum's own `serve` sets neither).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;
use tracing::debug;

use super::ClientAddr;

/// How the server treats its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A request's header must arrive within this; an idle keep-alive
    /// connection is closed after it too.
    pub header_read_timeout: Duration,
}

/// How long in-flight requests may finish once the server stops.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown`, then lets requests in
/// flight finish (for at most [`DRAIN`]).
pub async fn run<L>(
    mut listener: L,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    L: Listener<Addr = SocketAddr>,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let app = app.clone();
        let mut stopping = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = app.map_request(move |mut request: axum::http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo(ClientAddr(remote)));
                request.map(Body::new)
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection = builder
                .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = served {
                debug!(%remote, %error, "HTTP connection ended");
            }
        });
    }
    // Every slot back: every connection has finished.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A server answering `ok` to every request, and its address.
    async fn start(limits: Limits) -> (SocketAddr, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a listener");
        let addr = listener.local_addr().expect("an address");
        let app = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopping) = watch::channel(false);
        tokio::spawn(run(listener, app, limits, stopping));
        (addr, stop)
    }

    /// What the server sends before closing or `within` passing.
    async fn read_for(client: &mut TcpStream, within: Duration) -> (String, bool) {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, client.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => return (String::from_utf8_lossy(&got).into(), false),
            }
        }
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: pbx\r\nConnection: close\r\n\r\n";

    #[tokio::test]
    async fn a_client_that_never_finishes_its_header_is_dropped() {
        let (addr, _stop) = start(Limits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(300),
        })
        .await;
        let mut slow = TcpStream::connect(addr).await.expect("connected");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: pbx\r\n")
            .await
            .expect("sent");
        let (_, closed) = read_for(&mut slow, Duration::from_secs(3)).await;
        assert!(closed, "the slow client still holds its connection");
        // A client that sends its request in time is served.
        let mut quick = TcpStream::connect(addr).await.expect("connected");
        quick.write_all(REQUEST).await.expect("sent");
        let (answer, _) = read_for(&mut quick, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_free_one() {
        let (addr, _stop) = start(Limits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(30),
        })
        .await;
        let holder = TcpStream::connect(addr).await.expect("connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut waiting = TcpStream::connect(addr).await.expect("connected (backlog)");
        waiting.write_all(REQUEST).await.expect("sent");
        let (answer, _) = read_for(&mut waiting, Duration::from_millis(500)).await;
        assert!(answer.is_empty(), "served beyond the limit: {answer}");
        drop(holder);
        let (answer, _) = read_for(&mut waiting, Duration::from_secs(3)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}
