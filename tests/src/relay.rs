//! A UDP relay that hides non-MD5 digest challenges from peers that cannot
//! cope with them.
//!
//! edgepbx challenges with SHA-256 first and MD5 second (RFC 8760 §2.4
//! order of preference). Two peers shipped by Debian 12 fail on that:
//! - SIPp 3.6.1 reads only the first challenge and aborts the call with
//!   "createAuthHeader: authentication must use MD5 or AKAv1-MD5"
//!   (SIPp issue #488; SHA-256 support came with SIPp 3.7.x);
//! - baresip 1.0.0 (libre 1.1.0) gives up on a 401 that contains any
//!   non-MD5 challenge, in any order ("Register: Function not implemented").
//!
//! So that these real peers can exercise the MD5 path of the server in its
//! default configuration, their traffic goes through [`Md5ChallengeRelay`]:
//! datagrams are passed through unchanged except that
//! `WWW-Authenticate`/`Proxy-Authenticate` lines naming an algorithm other
//! than MD5 are removed from responses. The SHA-256 path is tested without
//! the relay by the raw client ([`crate::sip::UserAgent`]), and the
//! server's own remedy for such clients, `[security] digest_algorithms`
//! (MD5 first, or MD5 only), is tested without the relay too.
//!
//! Each client address gets its own upstream socket, so the server sees one
//! distinct source port per client and its answers (responses and its own
//! requests, e.g. keepalive OPTIONS) find their way back.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often relay threads look at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Md5ChallengeRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Md5ChallengeRelay {
    /// Listens on 127.0.0.1 port 0 and relays to `server`.
    pub fn start(server: SocketAddr) -> Md5ChallengeRelay {
        Md5ChallengeRelay::try_start(server)
            .unwrap_or_else(|e| panic!("cannot start the relay: {e}"))
    }

    fn try_start(server: SocketAddr) -> std::io::Result<Md5ChallengeRelay> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0")?);
        front.set_read_timeout(Some(POLL))?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let handle = {
            let (stop, threads) = (stop.clone(), threads.clone());
            std::thread::spawn(move || run_front(front, server, stop, threads))
        };
        lock(&threads).push(handle);
        Ok(Md5ChallengeRelay {
            addr,
            stop,
            threads,
        })
    }

    /// Where clients send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Md5ChallengeRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let handles: Vec<_> = lock(&self.threads).drain(..).collect();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A relay thread that panicked leaves nothing half-written worth
    // refusing to read.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Client → server direction; spawns one upstream socket per client.
fn run_front(
    front: Arc<UdpSocket>,
    server: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, client)) = front.recv_from(&mut buf) else {
            continue;
        };
        let socket = match upstream.get(&client) {
            Some(s) => s.clone(),
            None => {
                let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
                    continue;
                };
                if socket.set_read_timeout(Some(POLL)).is_err() {
                    continue;
                }
                let socket = Arc::new(socket);
                upstream.insert(client, socket.clone());
                let (front, back, stop) = (front.clone(), socket.clone(), stop.clone());
                let handle =
                    std::thread::spawn(move || run_back(back, front, client, server, stop));
                lock(&threads).push(handle);
                socket
            }
        };
        let _ = socket.send_to(&buf[..n], server);
    }
}

/// Server → client direction for one client.
fn run_back(
    back: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    server: SocketAddr,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = back.recv_from(&mut buf) else {
            continue;
        };
        if from != server {
            continue;
        }
        let out = strip_non_md5_challenges(&buf[..n]);
        let _ = front.send_to(&out, client);
    }
}

/// Removes `WWW-Authenticate`/`Proxy-Authenticate` lines whose algorithm is
/// not MD5 from a response; anything else comes back unchanged.
pub fn strip_non_md5_challenges(datagram: &[u8]) -> Vec<u8> {
    if !datagram.starts_with(b"SIP/2.0 ") {
        return datagram.to_vec();
    }
    let Some(head_end) = datagram.windows(4).position(|w| w == b"\r\n\r\n") else {
        return datagram.to_vec();
    };
    let head = String::from_utf8_lossy(&datagram[..head_end]);
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !is_non_md5_challenge(line))
        .collect();
    let mut out = kept.join("\r\n").into_bytes();
    out.extend_from_slice(&datagram[head_end..]);
    out
}

fn is_non_md5_challenge(line: &str) -> bool {
    let Some((name, value)) = line.split_once(':') else {
        return false;
    };
    let name = name.trim();
    if !(name.eq_ignore_ascii_case("www-authenticate")
        || name.eq_ignore_ascii_case("proxy-authenticate"))
    {
        return false;
    }
    let value = value.to_ascii_lowercase();
    match value.find("algorithm=") {
        Some(i) => {
            let algorithm = value[i + "algorithm=".len()..]
                .trim_start_matches('"')
                .split([',', '"', ' '])
                .next()
                .unwrap_or("");
            algorithm != "md5"
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_md5_challenges_are_removed() {
        let input = b"SIP/2.0 401 Unauthorized\r\nVia: x\r\n\
            WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256, qop=\"auth\"\r\n\
            WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=MD5, qop=\"auth\"\r\n\
            Content-Length: 0\r\n\r\n";
        let out = String::from_utf8(strip_non_md5_challenges(input)).expect("ASCII in, ASCII out");
        assert!(!out.contains("SHA-256"), "{out}");
        assert!(out.contains("algorithm=MD5"), "{out}");
        assert!(out.ends_with("Content-Length: 0\r\n\r\n"), "{out}");
        let request =
            b"REGISTER sip:x SIP/2.0\r\nWWW-Authenticate: Digest algorithm=SHA-256\r\n\r\n";
        assert_eq!(strip_non_md5_challenges(request), request.to_vec());
    }
}
