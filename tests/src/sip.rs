//! Raw SIP for byte-level checks: a client socket over UDP or TCP
//! ([`SipClient`]), a tolerant message reader ([`SipMessage`]), digest
//! authentication per RFC 7616/8760 ([`Challenge`]) and a user agent that
//! registers ([`UserAgent`], RFC 3261 §10.2).
//!
//! This is deliberately independent of the server's own SIP crate: the tests
//! must not share the server's parser and its mistakes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::Md5;
use sha2::{Digest, Sha256};

/// How long a transaction waits for its final response. Generous: UDP
/// retransmits every 500 ms inside it.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// RFC 3261 T1, for UDP request retransmission.
const T1: Duration = Duration::from_millis(500);

/// A unique token per call: process id, time and a counter.
pub fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(format!("{}:{nanos}:{n}", std::process::id()));
    hex(&hasher.finalize())[..16].to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A SIP message as the tests see it: the start line, the header fields in
/// order (folded lines joined) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    /// Request-Line or Status-Line.
    pub start_line: String,
    /// `(name, value)` in wire order, names as sent.
    pub headers: Vec<(String, String)>,
    /// Bytes after the empty line.
    pub body: Vec<u8>,
    /// The whole message as received.
    pub raw: Vec<u8>,
}

/// Full names of the RFC 3261 §7.3.3 compact header forms.
fn full_header_name(name: &str) -> &str {
    match name.to_ascii_lowercase().as_str() {
        "i" => "call-id",
        "m" => "contact",
        "f" => "from",
        "t" => "to",
        "v" => "via",
        "l" => "content-length",
        "c" => "content-type",
        "e" => "content-encoding",
        "k" => "supported",
        "s" => "subject",
        _ => name,
    }
}

impl SipMessage {
    /// Parses one message; `None` when there is no complete header section.
    pub fn parse(raw: &[u8]) -> Option<SipMessage> {
        let (head_len, sep_len) = find_header_end(raw)?;
        let head = String::from_utf8_lossy(&raw[..head_len]).into_owned();
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start_line = lines.next()?.to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let body = raw[head_len + sep_len..].to_vec();
        Some(SipMessage {
            start_line,
            headers,
            body,
            raw: raw.to_vec(),
        })
    }

    /// The status code of a response; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The reason phrase of a response; `None` for a request.
    pub fn reason(&self) -> Option<&str> {
        let rest = self.start_line.strip_prefix("SIP/2.0 ")?;
        rest.get(4..)
    }

    /// The method of a request; `None` for a response.
    pub fn method(&self) -> Option<&str> {
        if self.start_line.starts_with("SIP/") {
            return None;
        }
        self.start_line.split(' ').next()
    }

    /// Every value of a header field (compact forms included), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let wanted = full_header_name(name).to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| full_header_name(n).eq_ignore_ascii_case(&wanted))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of a header field.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// Every Contact value, comma-separated lists split.
    pub fn contacts(&self) -> Vec<String> {
        self.header_values("contact")
            .into_iter()
            .flat_map(split_list)
            .collect()
    }

    /// The digest challenges of a 401/407, in order.
    pub fn challenges(&self) -> Vec<Challenge> {
        self.header_values("www-authenticate")
            .into_iter()
            .chain(self.header_values("proxy-authenticate"))
            .filter_map(Challenge::parse)
            .collect()
    }

    /// The CSeq number.
    pub fn cseq(&self) -> Option<u32> {
        self.header("cseq")?.split_whitespace().next()?.parse().ok()
    }

    /// The message as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Where the header section ends: (its length, length of the empty line).
fn find_header_end(raw: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i + 2, 2));
    }
    raw.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i + 1, 1))
}

/// Splits a header value at commas outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == '<' {
            angle = true;
        } else if !quoted && c == '>' {
            angle = false;
        } else if !quoted && !angle && c == ',' {
            parts.push(current.trim().to_owned());
            current.clear();
            continue;
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_owned());
    }
    parts
}

/// The `;name=value` parameter of a Contact (after the URI).
pub fn contact_param(contact: &str, name: &str) -> Option<String> {
    let after_uri = match contact.rfind('>') {
        Some(i) => &contact[i + 1..],
        None => contact.split_once(';').map(|(_, p)| p).unwrap_or(""),
    };
    after_uri.split(';').find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The URI of a Contact value (inside `<>` when present).
pub fn contact_uri(contact: &str) -> String {
    match (contact.find('<'), contact.find('>')) {
        (Some(a), Some(b)) if a < b => contact[a + 1..b].to_owned(),
        _ => contact
            .split(';')
            .next()
            .unwrap_or(contact)
            .trim()
            .to_owned(),
    }
}

/// Digest hash algorithms (RFC 7616 §3.3, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5, the RFC 3261 default.
    Md5,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of the hash of `text`.
    pub fn hash(self, text: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(text.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(text.as_bytes())),
        }
    }
}

/// One `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back when present.
    pub opaque: Option<String>,
    /// `algorithm`; `None` when absent (MD5) or unknown.
    pub algorithm: Option<Algorithm>,
    /// The algorithm as written (`None` when absent).
    pub algorithm_name: Option<String>,
    /// `qop` options, e.g. `["auth"]`.
    pub qop: Vec<String>,
    /// `stale=true`.
    pub stale: bool,
}

impl Challenge {
    /// Parses a Digest challenge; `None` for other schemes.
    pub fn parse(value: &str) -> Option<Challenge> {
        let (scheme, rest) = value.trim().split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let params = auth_params(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm_name = get("algorithm");
        let algorithm = match algorithm_name.as_deref() {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        };
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            algorithm_name,
            qop: get("qop")
                .map(|q| q.split(',').map(|s| s.trim().to_owned()).collect())
                .unwrap_or_default(),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The Authorization header value answering this challenge.
    pub fn authorization(&self, credentials: &DigestCredentials<'_>) -> String {
        let algorithm = self.algorithm.unwrap_or(Algorithm::Md5);
        let ha1 = algorithm.hash(&format!(
            "{}:{}:{}",
            credentials.username, self.realm, credentials.password
        ));
        let ha2 = algorithm.hash(&format!("{}:{}", credentials.method, credentials.uri));
        let nc = format!("{:08x}", credentials.nonce_count);
        let cnonce = unique_token();
        let use_qop = self.qop.iter().any(|q| q.eq_ignore_ascii_case("auth"));
        let response = if use_qop {
            algorithm.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            algorithm.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm={}",
            credentials.username,
            self.realm,
            self.nonce,
            credentials.uri,
            algorithm.name()
        );
        if use_qop {
            value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{opaque}\""));
        }
        value
    }
}

/// What a digest response is computed from, besides the challenge.
#[derive(Debug, Clone)]
pub struct DigestCredentials<'a> {
    /// Digest username.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
    /// Request method.
    pub method: &'a str,
    /// `digest-uri`, the Request-URI.
    pub uri: &'a str,
    /// `nc`.
    pub nonce_count: u32,
}

/// `name=value` pairs of an auth header, values unquoted.
fn auth_params(text: &str) -> Vec<(String, String)> {
    split_list(text)
        .into_iter()
        .filter_map(|p| {
            let (n, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            Some((n.trim().to_owned(), v.replace("\\\"", "\"")))
        })
        .collect()
}

/// The transport a [`SipClient`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram per message.
    Udp,
    /// A stream framed by Content-Length.
    Tcp,
}

impl Transport {
    /// `UDP` or `TCP`, as in Via.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

#[derive(Debug)]
enum Socket {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, buffer: Vec<u8> },
}

/// A client socket talking to one server address.
#[derive(Debug)]
pub struct SipClient {
    socket: Socket,
    server: SocketAddr,
    local: SocketAddr,
}

impl SipClient {
    /// A UDP socket on 127.0.0.1 port 0.
    pub fn udp(server: SocketAddr) -> SipClient {
        let socket =
            UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("cannot bind UDP: {e}"));
        let local = socket
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        SipClient {
            socket: Socket::Udp(socket),
            server,
            local,
        }
    }

    /// A TCP connection to the server.
    pub fn tcp(server: SocketAddr) -> SipClient {
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("cannot connect to {server}: {e}"));
        let local = stream
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        SipClient {
            socket: Socket::Tcp {
                stream,
                buffer: Vec::new(),
            },
            server,
            local,
        }
    }

    /// A client of either transport.
    pub fn connect(transport: Transport, server: SocketAddr) -> SipClient {
        match transport {
            Transport::Udp => SipClient::udp(server),
            Transport::Tcp => SipClient::tcp(server),
        }
    }

    /// This end's address (for Via and Contact).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server address.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        match self.socket {
            Socket::Udp(_) => Transport::Udp,
            Socket::Tcp { .. } => Transport::Tcp,
        }
    }

    /// Sends raw bytes (one datagram over UDP). Errors are returned, not
    /// panicked on: the server may legitimately close a TCP connection.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.socket {
            Socket::Udp(socket) => socket.send_to(bytes, self.server).map(|_| ()),
            Socket::Tcp { stream, .. } => stream.write_all(bytes),
        }
    }

    /// Receives the next message, `None` on timeout or a closed connection.
    pub fn recv(&mut self, timeout: Duration) -> Option<SipMessage> {
        let deadline = Instant::now() + timeout;
        match &mut self.socket {
            Socket::Udp(socket) => {
                let mut buf = vec![0u8; 65_536];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    socket.set_read_timeout(Some(left)).ok()?;
                    match socket.recv_from(&mut buf) {
                        Ok((n, from)) if from == self.server => {
                            return SipMessage::parse(&buf[..n]);
                        }
                        Ok(_) => continue,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            return None;
                        }
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                        Err(_) => return None,
                    }
                }
            }
            Socket::Tcp { stream, buffer } => loop {
                if let Some(len) = framed_len(buffer) {
                    let message: Vec<u8> = buffer.drain(..len).collect();
                    return SipMessage::parse(&message);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                stream.set_read_timeout(Some(left)).ok()?;
                let mut chunk = [0u8; 16_384];
                match stream.read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        return None;
                    }
                    Err(_) => return None,
                }
            },
        }
    }

    /// Whether the server closed the TCP connection (always false for UDP).
    /// Waits up to `timeout` for the close; data received meanwhile is kept.
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        let Socket::Tcp { stream, buffer } = &mut self.socket else {
            return false;
        };
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            if stream.set_read_timeout(Some(left)).is_err() {
                return true;
            }
            let mut chunk = [0u8; 16_384];
            match stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    /// The text of a fresh OPTIONS request to `sip:<domain>` from this socket.
    pub fn options_request(&self, domain: &str) -> String {
        let token = unique_token();
        format!(
            "OPTIONS sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK{token};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{domain}>;tag={token}\r\n\
             To: <sip:{domain}>\r\n\
             Call-ID: {token}@e2e\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            transport = self.transport().via_name(),
            local = self.local,
        )
    }

    /// Sends a request and waits for its final response (matched by
    /// Call-ID and CSeq), retransmitting over UDP every T1. Provisional
    /// responses and requests from the server are skipped.
    pub fn transact(&mut self, request: &str, timeout: Duration) -> Option<SipMessage> {
        let sent = SipMessage::parse(request.as_bytes())?;
        let call_id = sent.header("call-id")?.to_owned();
        let cseq = sent.cseq()?;
        let deadline = Instant::now() + timeout;
        self.send(request.as_bytes()).ok()?;
        let mut next_retransmit = Instant::now() + T1;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let wait = if self.transport() == Transport::Udp {
                next_retransmit
                    .saturating_duration_since(now)
                    .min(deadline - now)
            } else {
                deadline - now
            };
            match self.recv(wait) {
                Some(msg)
                    if msg.status().is_some_and(|s| s >= 200)
                        && msg.header("call-id") == Some(call_id.as_str())
                        && msg.cseq() == Some(cseq) =>
                {
                    return Some(msg);
                }
                Some(_) => {}
                None if self.transport() == Transport::Udp => {
                    if Instant::now() >= next_retransmit {
                        self.send(request.as_bytes()).ok()?;
                        next_retransmit = Instant::now() + T1;
                    }
                }
                None => return None,
            }
        }
    }
}

/// Length of the first complete message in a stream buffer, framed by
/// Content-Length (absent = 0). Leading CRLF keepalives count as part of it.
fn framed_len(buffer: &[u8]) -> Option<usize> {
    let (head_len, sep_len) = find_header_end(buffer)?;
    let head = String::from_utf8_lossy(&buffer[..head_len]);
    let content_length = head
        .split('\n')
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| full_header_name(n.trim()).eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let total = head_len + sep_len + content_length;
    (buffer.len() >= total).then_some(total)
}

/// What a REGISTER carries besides the identity (RFC 3261 §10.2).
#[derive(Debug, Clone, Default)]
pub struct RegisterParams {
    /// Contact values (`<sip:...>;params` or `*`); empty = a query.
    pub contacts: Vec<String>,
    /// The Expires header, when sent.
    pub expires: Option<u32>,
    /// More header lines, e.g. `User-Agent: x`.
    pub extra_headers: Vec<String>,
}

impl RegisterParams {
    /// Binds one contact for `expires` seconds.
    pub fn bind(contact: &str, expires: u32) -> RegisterParams {
        RegisterParams {
            contacts: vec![contact.to_owned()],
            expires: Some(expires),
            extra_headers: Vec::new(),
        }
    }

    /// Asks for the current bindings (no Contact).
    pub fn query() -> RegisterParams {
        RegisterParams::default()
    }

    /// `Contact: *` with `Expires: 0`: removes every binding.
    pub fn remove_all() -> RegisterParams {
        RegisterParams {
            contacts: vec!["*".to_owned()],
            expires: Some(0),
            extra_headers: Vec::new(),
        }
    }
}

/// A registering user agent: one AOR, one Call-ID, increasing CSeq (a
/// device's registration dialog in RFC 3261 §10.2 terms).
#[derive(Debug)]
pub struct UserAgent {
    client: SipClient,
    /// User part of the AOR and the digest username.
    user: String,
    /// Host part of the AOR and the Request-URI.
    domain: String,
    password: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The digest algorithm to answer with when offered.
    preferred: Algorithm,
}

impl UserAgent {
    /// A user agent for `sip:<user>@<domain>` over `client`.
    pub fn new(client: SipClient, user: &str, domain: &str, password: &str) -> UserAgent {
        UserAgent {
            client,
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: password.to_owned(),
            call_id: format!("{}@e2e", unique_token()),
            from_tag: unique_token(),
            cseq: 0,
            preferred: Algorithm::Sha256,
        }
    }

    /// Answers challenges with `algorithm` when the server offers it.
    pub fn prefer(mut self, algorithm: Algorithm) -> UserAgent {
        self.preferred = algorithm;
        self
    }

    /// The Call-ID of this agent's registrations.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The socket.
    pub fn client(&mut self) -> &mut SipClient {
        &mut self.client
    }

    /// Gives the socket back.
    pub fn into_client(self) -> SipClient {
        self.client
    }

    /// A Contact URI pointing at this agent's own socket.
    pub fn own_contact(&self) -> String {
        let transport = match self.client.transport() {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        format!(
            "<sip:{}@{}{transport}>",
            self.user,
            self.client.local_addr()
        )
    }

    /// The text of the next REGISTER.
    pub fn register_request(
        &mut self,
        params: &RegisterParams,
        authorization: Option<&str>,
    ) -> String {
        self.cseq += 1;
        let local = self.client.local_addr();
        let mut text = format!(
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             User-Agent: edgepbx-e2e\r\n",
            domain = self.domain,
            transport = self.client.transport().via_name(),
            branch = unique_token(),
            user = self.user,
            tag = self.from_tag,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        for contact in &params.contacts {
            text.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(expires) = params.expires {
            text.push_str(&format!("Expires: {expires}\r\n"));
        }
        if let Some(authorization) = authorization {
            text.push_str(&format!("Authorization: {authorization}\r\n"));
        }
        for line in &params.extra_headers {
            text.push_str(line);
            text.push_str("\r\n");
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }

    /// Sends one REGISTER and waits for its final response.
    pub fn send_register(
        &mut self,
        params: &RegisterParams,
        authorization: Option<&str>,
    ) -> Option<SipMessage> {
        let request = self.register_request(params, authorization);
        self.client.transact(&request, RESPONSE_TIMEOUT)
    }

    /// The Authorization value answering the best offered challenge of `response`.
    pub fn answer(&self, response: &SipMessage) -> Option<String> {
        let challenges = response.challenges();
        let chosen = challenges
            .iter()
            .find(|c| c.algorithm == Some(self.preferred))
            .or_else(|| challenges.iter().find(|c| c.algorithm.is_some()))?;
        let uri = format!("sip:{}", self.domain);
        Some(chosen.authorization(&DigestCredentials {
            username: &self.user,
            password: &self.password,
            method: "REGISTER",
            uri: &uri,
            nonce_count: 1,
        }))
    }

    /// REGISTER, answering a 401 once; returns the final response (the 401
    /// itself when the credentials are refused). Panics when the server
    /// does not answer at all.
    pub fn register(&mut self, params: &RegisterParams) -> SipMessage {
        self.try_register(params)
            .unwrap_or_else(|| panic!("no response to REGISTER from {}", self.client.server()))
    }

    /// Like [`UserAgent::register`], `None` when a response is missing.
    pub fn try_register(&mut self, params: &RegisterParams) -> Option<SipMessage> {
        let first = self.send_register(params, None)?;
        if first.status() != Some(401) {
            return Some(first);
        }
        let authorization = self.answer(&first)?;
        self.send_register(params, Some(&authorization))
    }
}

/// Replaces the values that are meant to differ between two answers
/// (nonce, opaque, tags, branch, Call-ID, the username itself) so that
/// anything left over is a difference an attacker could observe.
pub fn normalise(response: &SipMessage, user: &str, call_id: &str) -> String {
    let mut lines = Vec::new();
    for (name, value) in &response.headers {
        let mut value = value.replace(call_id, "<call-id>");
        for param in ["nonce", "opaque", "tag", "branch", "cnonce"] {
            value = replace_param(&value, param);
        }
        // The AOR echoed in To/From is the request's own.
        value = value.replace(&format!("sip:{user}@"), "sip:<user>@");
        if name.eq_ignore_ascii_case("date") {
            value = "<date>".into();
        }
        lines.push(format!("{}: {value}", name.to_ascii_lowercase()));
    }
    format!("{}\n{}", response.start_line, lines.join("\n"))
}

fn replace_param(value: &str, name: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let needle = format!("{name}=");
    while let Some(i) = rest.find(&needle) {
        let boundary_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b';' | b',' | b' ' | b'\t');
        out.push_str(&rest[..i + needle.len()]);
        rest = &rest[i + needle.len()..];
        if !boundary_ok {
            continue;
        }
        let end = if let Some(stripped) = rest.strip_prefix('"') {
            stripped.find('"').map(|j| j + 2).unwrap_or(rest.len())
        } else {
            rest.find([';', ',', ' ', '>']).unwrap_or(rest.len())
        };
        out.push_str("<x>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_rfc_2617_example() {
        // RFC 2617 §3.5, with its (HTTP) values.
        let challenge = Challenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: None,
            algorithm: Some(Algorithm::Md5),
            algorithm_name: None,
            qop: vec![],
            stale: false,
        };
        let ha1 = Algorithm::Md5.hash("Mufasa:testrealm@host.com:Circle Of Life");
        assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
        let value = challenge.authorization(&DigestCredentials {
            username: "Mufasa",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce_count: 1,
        });
        let expected = Algorithm::Md5.hash(&format!(
            "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{}",
            Algorithm::Md5.hash("GET:/dir/index.html")
        ));
        assert!(
            value.contains(&format!("response=\"{expected}\"")),
            "{value}"
        );
    }

    #[test]
    fn two_challenges_are_parsed_in_order() {
        let raw = b"SIP/2.0 401 Unauthorized\r\n\
            WWW-Authenticate: Digest realm=\"acme.test\", nonce=\"n1\", opaque=\"o\", algorithm=SHA-256, qop=\"auth\"\r\n\
            WWW-Authenticate: Digest realm=\"acme.test\", nonce=\"n2\", algorithm=MD5, qop=\"auth\", stale=true\r\n\
            Content-Length: 0\r\n\r\n";
        let msg = SipMessage::parse(raw).expect("complete message");
        let c = msg.challenges();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].algorithm, Some(Algorithm::Sha256));
        assert_eq!(c[0].opaque.as_deref(), Some("o"));
        assert_eq!(c[1].algorithm, Some(Algorithm::Md5));
        assert!(c[1].stale);
    }

    #[test]
    fn contact_lists_are_split() {
        let raw = b"SIP/2.0 200 OK\r\nContact: \"a, b\" <sip:a@h;x=1>;expires=60, <sip:b@h>;expires=30\r\n\
            m: <sip:c@h>\r\nContent-Length: 0\r\n\r\n";
        let msg = SipMessage::parse(raw).expect("complete message");
        let contacts = msg.contacts();
        assert_eq!(contacts.len(), 3, "{contacts:?}");
        assert_eq!(
            contact_param(&contacts[0], "expires").as_deref(),
            Some("60")
        );
        assert_eq!(contact_uri(&contacts[0]), "sip:a@h;x=1");
        assert_eq!(contact_uri(&contacts[2]), "sip:c@h");
    }

    #[test]
    fn stream_framing_uses_content_length() {
        let two = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 3\r\n\r\nabcSIP/2.0 200 OK\r\n";
        assert_eq!(framed_len(two), Some(47));
        assert_eq!(framed_len(b"OPTIONS sip:a SIP/2.0\r\nl: 5\r\n\r\nab"), None);
    }
}
