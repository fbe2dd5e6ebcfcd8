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
//!
//! Optionally the relay logs how long the server took to answer each
//! request (first send to final response, in microseconds), which SIPp
//! 3.6 cannot measure below a millisecond: `bench/register/run.sh` uses
//! it. One line per transaction: `<method> <status> <micros>`.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
        Md5ChallengeRelay::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), server, None)
            .unwrap_or_else(|e| panic!("cannot start the relay: {e}"))
    }

    /// Listens on `listen` and relays to `server`; with `latency_log`,
    /// appends one line per answered request to that file.
    pub fn start_on(
        listen: SocketAddr,
        server: SocketAddr,
        latency_log: Option<&Path>,
    ) -> std::io::Result<Md5ChallengeRelay> {
        let front = Arc::new(UdpSocket::bind(listen)?);
        front.set_read_timeout(Some(POLL))?;
        let addr = front.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let timing = match latency_log {
            Some(path) => {
                let file = std::fs::File::create(path)?;
                let (tx, rx) = mpsc::channel::<String>();
                let stop = stop.clone();
                let writer = std::thread::spawn(move || write_latencies(file, rx, stop));
                lock(&threads).push(writer);
                Some(Timing {
                    pending: Arc::new(Mutex::new(HashMap::new())),
                    log: tx,
                })
            }
            None => None,
        };
        let handle = {
            let (stop, threads) = (stop.clone(), threads.clone());
            std::thread::spawn(move || run_front(front, server, stop, threads, timing))
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

/// Request send times, for the latency log.
#[derive(Debug, Clone)]
struct Timing {
    /// `(Call-ID, CSeq)` of requests in flight → when first relayed.
    pending: Arc<Mutex<HashMap<(String, String), Instant>>>,
    /// Lines for the writer thread.
    log: Sender<String>,
}

/// Call-ID and CSeq values of a message, if it has both.
fn transaction_key(datagram: &[u8]) -> Option<(String, String)> {
    let end = datagram.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&datagram[..end]).ok()?;
    let (mut call_id, mut cseq) = (None, None);
    for line in head.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("call-id") || name == "i" {
            call_id = Some(value.trim().to_owned());
        } else if name.eq_ignore_ascii_case("cseq") {
            cseq = Some(value.trim().to_owned());
        }
    }
    Some((call_id?, cseq?))
}

/// Writes latency lines, flushing whenever the queue runs dry.
fn write_latencies(file: std::fs::File, lines: mpsc::Receiver<String>, stop: Arc<AtomicBool>) {
    let mut out = BufWriter::new(file);
    loop {
        match lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = out.flush();
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

/// Client → server direction; spawns one upstream socket per client.
fn run_front(
    front: Arc<UdpSocket>,
    server: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    timing: Option<Timing>,
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
                let (front, back, stop, timing) =
                    (front.clone(), socket.clone(), stop.clone(), timing.clone());
                let handle =
                    std::thread::spawn(move || run_back(back, front, client, server, stop, timing));
                lock(&threads).push(handle);
                socket
            }
        };
        if let Some(timing) = &timing
            && !buf.starts_with(b"SIP/")
            && let Some(key) = transaction_key(&buf[..n])
        {
            // Retransmissions keep the first send time.
            lock(&timing.pending)
                .entry(key)
                .or_insert_with(Instant::now);
        }
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
    timing: Option<Timing>,
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = back.recv_from(&mut buf) else {
            continue;
        };
        if from != server {
            continue;
        }
        if let Some(timing) = &timing {
            record_latency(timing, &buf[..n]);
        }
        let out = strip_non_md5_challenges(&buf[..n]);
        let _ = front.send_to(&out, client);
    }
}

/// Logs the time since the request of a final response was relayed.
fn record_latency(timing: &Timing, datagram: &[u8]) {
    let Some(status) = datagram
        .strip_prefix(b"SIP/2.0 ")
        .and_then(|rest| std::str::from_utf8(rest.get(..3)?).ok())
        .and_then(|code| code.parse::<u16>().ok())
    else {
        return;
    };
    if status < 200 {
        return;
    }
    let Some(key) = transaction_key(datagram) else {
        return;
    };
    let Some(sent) = lock(&timing.pending).remove(&key) else {
        return;
    };
    let method = key.1.split_whitespace().nth(1).unwrap_or("?").to_owned();
    let _ = timing
        .log
        .send(format!("{method} {status} {}", sent.elapsed().as_micros()));
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
