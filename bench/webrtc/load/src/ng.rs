//! rtpengine's ng control protocol: a cookie and a bencoded dictionary
//! per UDP datagram, the reply under the same cookie. The offer turns the
//! browser's WebRTC description into plain RTP for the echo; the answer
//! turns the echo's plain description back into WebRTC.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;

/// A bencoded value.
pub enum Value {
    Str(String),
    List(Vec<Value>),
    Dict(Vec<(String, Value)>),
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Str(s) => {
                out.extend_from_slice(format!("{}:", s.len()).as_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|i| i.encode(out));
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    Value::Str(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

fn list(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

/// The string values of a reply's top-level dictionary (nested values
/// skipped).
fn decode_strings(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    fn string(b: &[u8], at: &mut usize) -> Option<String> {
        let colon = *at + b[*at..].iter().position(|&c| c == b':')?;
        let len: usize = std::str::from_utf8(&b[*at..colon]).ok()?.parse().ok()?;
        let text = b.get(colon + 1..colon + 1 + len)?;
        *at = colon + 1 + len;
        Some(String::from_utf8_lossy(text).into_owned())
    }
    fn skip(b: &[u8], at: &mut usize) -> Option<()> {
        match *b.get(*at)? {
            b'i' => *at += b[*at..].iter().position(|&c| c == b'e')? + 1,
            b'l' | b'd' => {
                *at += 1;
                while *b.get(*at)? != b'e' {
                    skip(b, at)?;
                }
                *at += 1;
            }
            _ => {
                string(b, at)?;
            }
        }
        Some(())
    }
    let mut at = 1;
    if bytes.first() != Some(&b'd') {
        return None;
    }
    let mut out = Vec::new();
    while *bytes.get(at)? != b'e' {
        let key = string(bytes, &mut at)?;
        if bytes.get(at)?.is_ascii_digit() {
            out.push((key, string(bytes, &mut at)?));
        } else {
            skip(bytes, &mut at)?;
        }
    }
    Some(out)
}

/// A control connection to rtpengine.
pub struct Ng {
    socket: UdpSocket,
    server: SocketAddr,
}

/// rtpengine answers a cookie it has seen with the reply it gave then:
/// cookies are unique in the process.
static NEXT_COOKIE: AtomicU64 = AtomicU64::new(0);

impl Ng {
    pub async fn new(server: SocketAddr) -> std::io::Result<Ng> {
        let socket = UdpSocket::bind((server.ip(), 0)).await?;
        Ok(Ng { socket, server })
    }

    /// Sends `command` and returns the reply's string values, retrying a
    /// lost datagram.
    async fn call(
        &mut self,
        command: Vec<(String, Value)>,
    ) -> Result<Vec<(String, String)>, String> {
        let next = NEXT_COOKIE.fetch_add(1, Ordering::Relaxed);
        let cookie = format!("{}_{next}", std::process::id());
        let mut datagram = format!("{cookie} ").into_bytes();
        Value::Dict(command).encode(&mut datagram);
        let mut buf = vec![0u8; 65536];
        for _ in 0..5 {
            self.socket
                .send_to(&datagram, self.server)
                .await
                .map_err(|e| e.to_string())?;
            let reply =
                tokio::time::timeout(Duration::from_secs(2), self.socket.recv(&mut buf)).await;
            let Ok(Ok(n)) = reply else { continue };
            let Some(body) = buf[..n].strip_prefix(format!("{cookie} ").as_bytes()) else {
                continue;
            };
            let values = decode_strings(body).ok_or("a reply that is not bencode")?;
            let result = values
                .iter()
                .find(|(k, _)| k == "result")
                .map(|(_, v)| v.as_str());
            if result != Some("ok") {
                let reason = values
                    .iter()
                    .find(|(k, _)| k == "error-reason")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                return Err(format!("rtpengine: {result:?} {reason}"));
            }
            return Ok(values);
        }
        Err("rtpengine does not answer".into())
    }

    fn sdp_of(values: Vec<(String, String)>) -> Result<String, String> {
        values
            .into_iter()
            .find(|(k, _)| k == "sdp")
            .map(|(_, v)| v)
            .ok_or_else(|| "no sdp in the reply".into())
    }

    /// The browser's WebRTC offer, as plain RTP for the callee.
    pub async fn offer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        sdp: &str,
    ) -> Result<String, String> {
        let reply = self
            .call(vec![
                ("command".into(), s("offer")),
                ("call-id".into(), s(call_id)),
                ("from-tag".into(), s(from_tag)),
                ("sdp".into(), s(sdp)),
                ("transport-protocol".into(), s("RTP/AVP")),
                ("ICE".into(), s("remove")),
                ("rtcp-mux".into(), list(&["demux"])),
                ("replace".into(), list(&["origin", "session-connection"])),
            ])
            .await?;
        Ng::sdp_of(reply)
    }

    /// The callee's plain answer, as WebRTC for the browser.
    pub async fn answer(
        &mut self,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        sdp: &str,
    ) -> Result<String, String> {
        let reply = self
            .call(vec![
                ("command".into(), s("answer")),
                ("call-id".into(), s(call_id)),
                ("from-tag".into(), s(from_tag)),
                ("to-tag".into(), s(to_tag)),
                ("sdp".into(), s(sdp)),
                ("transport-protocol".into(), s("UDP/TLS/RTP/SAVPF")),
                ("ICE".into(), s("force")),
                ("DTLS".into(), s("passive")),
                ("SDES".into(), list(&["off"])),
                ("rtcp-mux".into(), list(&["require"])),
                ("replace".into(), list(&["origin", "session-connection"])),
            ])
            .await?;
        Ng::sdp_of(reply)
    }

    /// Ends the call.
    pub async fn delete(&mut self, call_id: &str, from_tag: &str) -> Result<(), String> {
        self.call(vec![
            ("command".into(), s("delete")),
            ("call-id".into(), s(call_id)),
            ("from-tag".into(), s(from_tag)),
        ])
        .await
        .map(drop)
    }
}

/// The plain answer of the echo on `echo` to an offer of PCMU.
pub fn echo_answer(echo: SocketAddr) -> String {
    let mut sdp = String::new();
    let _ = write!(
        sdp,
        "v=0\r\no=echo 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = echo.ip(),
        port = echo.port()
    );
    sdp
}
