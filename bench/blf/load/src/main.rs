//! The SIP load of the BLF benchmark (`bench/blf/run.sh`), over UDP:
//!
//! - `watch`: dialog subscriptions (RFC 4235), one per line of a file
//!   `user;password;watched`, each SUBSCRIBE answered 407 then sent again
//!   with MD5 credentials; every NOTIFY answered 200; prints its counts
//!   every second; runs until killed, or until a stop file appears: then
//!   it ends every subscription (Expires: 0, with credentials when
//!   challenged) and exits.
//! - `call`: calls from one extension to the numbers of a file in turn
//!   (INVITE, 407, ACK, INVITE with credentials, 180, 200, ACK, talk,
//!   BYE, 200); exits when every call has ended or failed.
//!
//! Why not SIPp: SIPp 3.6 computes every digest for one URI, `-auth_uri`
//! or the server's address, while a server that checks the digest URI
//! against the Request-URI (edgepbx does, as RFC 3261 §22.4 asks) needs
//! each request's own; a subscription or call per watched number makes
//! that one URI per request. The timing of the benchmark does not come
//! from here: it is the loopback capture's.
//!
//! Retransmissions follow RFC 3261's timers (T1 = 500 ms doubling, T2 =
//! 4 s for non-INVITE requests, 64·T1 to give up), so a lost datagram
//! costs what it would cost a phone.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use socket2::{Domain, Socket, Type};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const GIVE_UP: Duration = Duration::from_secs(32);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("watch") => Options::parse(&args[1..]).and_then(watch),
        Some("call") => Options::parse(&args[1..]).and_then(call),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("edgepbx-bench-blf: {error}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage:
  edgepbx-bench-blf watch --server ADDR --domain D --pairs FILE [--rate N] [--expires S]
      [--stop-file PATH]
      FILE: user;password;watched per line; once PATH exists, every subscription
      is ended (SUBSCRIBE with Expires: 0) at the same rate, and the program exits
  edgepbx-bench-blf call --server ADDR --domain D --user U --password P --targets FILE
      --calls N --rate CALLS_PER_SECOND [--talk-ms MS]
      FILE: one number per line, called in turn";

#[derive(Default)]
struct Options {
    server: Option<SocketAddr>,
    domain: String,
    pairs: Option<String>,
    stop_file: Option<String>,
    targets: Option<String>,
    user: String,
    password: String,
    rate: f64,
    expires: u32,
    calls: usize,
    talk: Duration,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            rate: 500.0,
            expires: 3600,
            talk: Duration::from_millis(1000),
            ..Options::default()
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let bad = |_: std::num::ParseIntError| format!("bad value for {flag}: {value}");
            let badf = |_: std::num::ParseFloatError| format!("bad value for {flag}: {value}");
            match flag.as_str() {
                "--server" => {
                    o.server = Some(value.parse().map_err(|_| format!("bad address {value}"))?)
                }
                "--domain" => o.domain = value.clone(),
                "--pairs" => o.pairs = Some(value.clone()),
                "--stop-file" => o.stop_file = Some(value.clone()),
                "--targets" => o.targets = Some(value.clone()),
                "--user" => o.user = value.clone(),
                "--password" => o.password = value.clone(),
                "--rate" => o.rate = value.parse().map_err(badf)?,
                "--expires" => o.expires = value.parse().map_err(bad)?,
                "--calls" => o.calls = value.parse().map_err(bad)?,
                "--talk-ms" => o.talk = Duration::from_millis(value.parse().map_err(bad)?),
                _ => return Err(format!("unknown option {flag}\n{USAGE}")),
            }
        }
        if o.server.is_none() || o.domain.is_empty() || o.rate <= 0.0 {
            return Err(USAGE.to_owned());
        }
        Ok(o)
    }
}

// ---- SIP messages ----------------------------------------------------------

/// A received message: its start line, headers and body.
struct Msg<'a> {
    start: &'a str,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Msg<'a> {
    fn parse(data: &'a [u8]) -> Option<Msg<'a>> {
        let text = std::str::from_utf8(data).ok()?;
        let head = text.split_once("\r\n\r\n").map_or(text, |(h, _)| h);
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
            .collect();
        Some(Msg { start, headers })
    }

    /// Every value of header `name` (or its compact form), in order.
    fn all(&self, name: &'static str) -> impl Iterator<Item = &'a str> + '_ {
        let compact = match name {
            "Via" => "v",
            "From" => "f",
            "To" => "t",
            "Call-ID" => "i",
            "Contact" => "m",
            _ => "",
        };
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
            .map(|(_, v)| *v)
    }

    fn header(&self, name: &'static str) -> Option<&'a str> {
        self.all(name).next()
    }

    /// The status of a response; `None` for a request.
    fn status(&self) -> Option<u16> {
        self.start.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    fn method(&self) -> Option<&'a str> {
        match self.status() {
            Some(_) => None,
            None => self.start.split(' ').next(),
        }
    }

    /// The CSeq number and method.
    fn cseq(&self) -> Option<(u32, &'a str)> {
        let (n, m) = self.header("CSeq")?.split_once(' ')?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// A response to this request with only the headers that match it.
    fn reply(&self, status: &str) -> String {
        let mut r = format!("SIP/2.0 {status}\r\n");
        for via in self.all("Via") {
            let _ = write!(r, "Via: {via}\r\n");
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            if let Some(v) = self.header(name) {
                let _ = write!(r, "{name}: {v}\r\n");
            }
        }
        r.push_str("Content-Length: 0\r\n\r\n");
        r
    }
}

/// The URI inside `<...>` of a name-addr, or the value up to its
/// parameters.
fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

// ---- digest ----------------------------------------------------------------

fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    let mut hex = String::with_capacity(32);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The parameters of a `Digest` challenge.
fn challenge_params(value: &str) -> Vec<(String, String)> {
    let value = value.trim();
    let value = value.strip_prefix("Digest").unwrap_or(value);
    let mut params = Vec::new();
    let mut rest = value.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let val;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            val = quoted[..end].to_owned();
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            val = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        params.push((name, val));
    }
    params
}

/// The `Proxy-Authorization` (or `Authorization`) header answering the
/// MD5 challenge of `msg` for `method` on `uri`.
fn credentials(
    msg: &Msg<'_>,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Option<String> {
    let (header, answer) = if msg.status() == Some(401) {
        ("WWW-Authenticate", "Authorization")
    } else {
        ("Proxy-Authenticate", "Proxy-Authorization")
    };
    let params = msg.all(header).map(challenge_params).find(|p| {
        p.iter()
            .find(|(n, _)| n == "algorithm")
            .is_none_or(|(_, v)| v.eq_ignore_ascii_case("MD5"))
    })?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let realm = get("realm")?;
    let nonce = get("nonce")?;
    let qop = get("qop").map(|q| q.split(',').any(|q| q.trim() == "auth"));
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let mut h = format!(
        "{answer}: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\""
    );
    if qop == Some(true) {
        let nc = "00000001";
        let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
        let _ = write!(
            h,
            ", response=\"{response}\", algorithm=MD5, cnonce=\"{cnonce}\", qop=auth, nc={nc}"
        );
    } else {
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        let _ = write!(h, ", response=\"{response}\", algorithm=MD5");
    }
    if let Some(opaque) = get("opaque") {
        let _ = write!(h, ", opaque=\"{opaque}\"");
    }
    h.push_str("\r\n");
    Some(h)
}

// ---- transport and timers ----------------------------------------------------

struct Net {
    socket: UdpSocket,
    server: SocketAddr,
    local: SocketAddr,
    pid: u32,
    branches: u64,
}

impl Net {
    fn open(server: SocketAddr) -> Result<Net, String> {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).map_err(|e| e.to_string())?;
        // As SIPp's -buff_size in the other benchmarks: a burst of NOTIFYs
        // must not overflow the kernel's default buffer.
        let _ = socket.set_recv_buffer_size(4 << 20);
        let _ = socket.set_send_buffer_size(4 << 20);
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any.into()).map_err(|e| e.to_string())?;
        let socket: UdpSocket = socket.into();
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        Ok(Net {
            socket,
            server,
            local,
            pid: std::process::id(),
            branches: 0,
        })
    }

    fn send(&self, data: &[u8]) {
        if let Err(error) = self.socket.send_to(data, self.server) {
            eprintln!("send: {error}");
        }
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK{}x{}", self.pid, self.branches)
    }

    /// Waits for a datagram until `deadline` at the latest.
    fn recv(&self, buf: &mut [u8], deadline: Option<Instant>) -> Option<usize> {
        let wait = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(50))
            .clamp(Duration::from_micros(200), Duration::from_millis(50));
        let _ = self.socket.set_read_timeout(Some(wait));
        match self.socket.recv(buf) {
            Ok(n) => Some(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => {
                eprintln!("recv: {e}");
                None
            }
        }
    }
}

/// Timers: (when, which, generation); a timer whose generation is no
/// longer its owner's is stale.
type Timers = BinaryHeap<Reverse<(Instant, usize, u32)>>;

/// The index a Call-ID of ours carries: `<prefix><index>.<pid>@blf`.
fn index_of(call_id: &str, prefix: char) -> Option<usize> {
    call_id
        .strip_prefix(prefix)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

fn read_lines(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "SEQUENTIAL")
        .map(str::to_owned)
        .collect())
}

// ---- watch -----------------------------------------------------------------

#[derive(PartialEq)]
enum SubState {
    Waiting,
    Challenged,
    Authenticating,
    Active,
    /// Expires: 0 sent...
    Ending,
    /// ...and again with credentials.
    EndingAuthenticated,
    Ended,
    Failed,
}

struct Sub {
    user: String,
    password: String,
    target: String,
    state: SubState,
    /// The request in flight, for retransmission.
    request: String,
    sent_first: Instant,
    interval: Duration,
    generation: u32,
    notified: bool,
    /// The dialog, from the 200: the notifier's To (with its tag), its
    /// Contact, the route set.
    to: String,
    remote: String,
    routes: Vec<String>,
}

/// The route set of a UAC's dialog: the Record-Route entries, last first.
fn route_set(msg: &Msg<'_>) -> Vec<String> {
    let mut routes: Vec<String> = msg
        .all("Record-Route")
        .flat_map(|v| v.split(','))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    routes.reverse();
    routes
}

fn watch(o: Options) -> Result<(), String> {
    let pairs = read_lines(o.pairs.as_deref().ok_or("--pairs is required")?)?;
    let mut net = Net::open(o.server.expect("checked"))?;
    let mut subs: Vec<Sub> = pairs
        .iter()
        .map(|line| {
            let mut f = line.split(';');
            let user = f.next().unwrap_or("").to_owned();
            let password = f.next().unwrap_or("").to_owned();
            let target = f.next().unwrap_or("").to_owned();
            Sub {
                user,
                password,
                target,
                state: SubState::Waiting,
                request: String::new(),
                sent_first: Instant::now(),
                interval: T1,
                generation: 0,
                notified: false,
                to: String::new(),
                remote: String::new(),
                routes: Vec::new(),
            }
        })
        .collect();
    let (domain, local, pid, expires) = (o.domain.clone(), net.local, net.pid, o.expires);
    let unsubscribe = |net: &mut Net, i: usize, sub: &Sub, cseq: u32, auth: &str| {
        let mut r = format!(
            "SUBSCRIBE {} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={};rport\r\n",
            sub.remote,
            net.branch()
        );
        for route in &sub.routes {
            let _ = write!(r, "Route: {route}\r\n");
        }
        let _ = write!(
            r,
            "Max-Forwards: 70\r\nFrom: <sip:{}@{domain}>;tag=w{i}t{pid}\r\nTo: {}\r\n\
             Call-ID: w{i}.{pid}@blf\r\nCSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:{}@{local};transport=udp>\r\nEvent: dialog\r\nExpires: 0\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            sub.user, sub.to, sub.user
        );
        r
    };
    let subscribe = |net: &mut Net, i: usize, sub: &Sub, cseq: u32, auth: &str| {
        let uri = format!("sip:{}@{domain}", sub.target);
        format!(
            "SUBSCRIBE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{}@{domain}>;tag=w{i}t{pid}\r\n\
             To: <{uri}>\r\n\
             Call-ID: w{i}.{pid}@blf\r\n\
             CSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:{}@{local};transport=udp>\r\n\
             Event: dialog\r\n\
             Accept: application/dialog-info+xml\r\n\
             Expires: {expires}\r\n\
             {auth}Content-Length: 0\r\n\r\n",
            net.branch(),
            sub.user,
            sub.user,
        )
    };
    let mut timers: Timers = BinaryHeap::new();
    let start = Instant::now();
    let mut next_new = 0usize;
    let (mut subscribed, mut failed, mut notifies, mut first_notifies, mut ended) =
        (0usize, 0usize, 0u64, 0usize, 0usize);
    let mut report_at = start;
    let mut buf = vec![0u8; 65536];
    let stdout = io::stdout();
    // Ending every subscription, once the stop file appears.
    let (mut stopping, mut stop_start, mut next_end, mut unsubscribed) =
        (false, start, 0usize, 0usize);
    let mut stop_checked = start;
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if !stopping
            && now >= stop_checked
            && let Some(path) = &o.stop_file
        {
            stop_checked = now + Duration::from_millis(100);
            if std::path::Path::new(path).exists() {
                stopping = true;
                stop_start = now;
            }
        }
        // Ends, paced as the subscriptions were.
        while stopping
            && next_end < subs.len()
            && stop_start + Duration::from_secs_f64(next_end as f64 / o.rate) <= now
        {
            let i = next_end;
            next_end += 1;
            if subs[i].state != SubState::Active {
                continue;
            }
            let request = unsubscribe(&mut net, i, &subs[i], 3, "");
            net.send(request.as_bytes());
            let sub = &mut subs[i];
            sub.request = request;
            sub.state = SubState::Ending;
            sub.sent_first = now;
            sub.interval = T1;
            sub.generation += 1;
            timers.push(Reverse((now + T1, i, sub.generation)));
        }
        if stopping && next_end >= subs.len() && done_at.is_none() {
            let pending = subs
                .iter()
                .any(|s| matches!(s.state, SubState::Ending | SubState::EndingAuthenticated));
            if !pending {
                // Time for the final NOTIFYs.
                done_at = Some(now + Duration::from_secs(2));
            }
        }
        if done_at.is_some_and(|at| now >= at) {
            println!(
                "{:.1} subscribed {subscribed} notified {first_notifies} notifies {notifies} failed {failed} ended {ended} unsubscribed {unsubscribed}",
                now.duration_since(start).as_secs_f64()
            );
            return Ok(());
        }
        // New subscriptions, paced.
        while next_new < subs.len()
            && start + Duration::from_secs_f64(next_new as f64 / o.rate) <= now
        {
            let i = next_new;
            next_new += 1;
            let request = subscribe(&mut net, i, &subs[i], 1, "");
            net.send(request.as_bytes());
            let sub = &mut subs[i];
            sub.request = request;
            sub.state = SubState::Challenged;
            sub.sent_first = now;
            sub.interval = T1;
            sub.generation += 1;
            timers.push(Reverse((now + T1, i, sub.generation)));
        }
        // Retransmissions.
        while let Some(&Reverse((at, i, generation))) = timers.peek() {
            if at > now {
                break;
            }
            timers.pop();
            let sub = &mut subs[i];
            if generation != sub.generation
                || !matches!(
                    sub.state,
                    SubState::Challenged
                        | SubState::Authenticating
                        | SubState::Ending
                        | SubState::EndingAuthenticated
                )
            {
                continue;
            }
            if now.duration_since(sub.sent_first) >= GIVE_UP {
                sub.state = SubState::Failed;
                failed += 1;
                continue;
            }
            net.send(sub.request.as_bytes());
            sub.interval = (sub.interval * 2).min(T2);
            timers.push(Reverse((now + sub.interval, i, generation)));
        }
        if now >= report_at {
            let mut out = stdout.lock();
            let _ = writeln!(
                out,
                "{:.1} subscribed {subscribed} notified {first_notifies} notifies {notifies} failed {failed} ended {ended} unsubscribed {unsubscribed}",
                now.duration_since(start).as_secs_f64()
            );
            let _ = out.flush();
            report_at = now + Duration::from_secs(1);
        }
        let deadline = timers
            .peek()
            .map(|Reverse((at, _, _))| *at)
            .into_iter()
            .chain(
                (next_new < subs.len())
                    .then(|| start + Duration::from_secs_f64(next_new as f64 / o.rate)),
            )
            .chain(std::iter::once(report_at))
            .chain(o.stop_file.is_some().then_some(stop_checked))
            .chain(done_at)
            .min();
        let Some(n) = net.recv(&mut buf, deadline) else {
            continue;
        };
        let Some(msg) = Msg::parse(&buf[..n]) else {
            continue;
        };
        let Some(i) = msg.header("Call-ID").and_then(|c| index_of(c, 'w')) else {
            if msg.status().is_none() && msg.method() != Some("ACK") {
                net.send(msg.reply("481 Call/Transaction Does Not Exist").as_bytes());
            }
            continue;
        };
        if i >= subs.len() {
            continue;
        }
        match (msg.method(), msg.status()) {
            (Some("NOTIFY"), _) => {
                net.send(msg.reply("200 OK").as_bytes());
                notifies += 1;
                let sub = &mut subs[i];
                if !sub.notified {
                    sub.notified = true;
                    first_notifies += 1;
                }
                if msg
                    .header("Subscription-State")
                    .is_some_and(|s| s.trim_start().starts_with("terminated"))
                {
                    ended += 1;
                }
            }
            (Some(_), _) => {
                if msg.method() != Some("ACK") {
                    net.send(msg.reply("405 Method Not Allowed").as_bytes());
                }
            }
            (None, Some(status)) if status < 200 => {}
            (None, Some(status)) => {
                let sub = &mut subs[i];
                match (&sub.state, status) {
                    (SubState::Challenged, 401 | 407) => {
                        let uri = format!("sip:{}@{}", sub.target, o.domain);
                        let cnonce = format!("{pid:x}{i:x}");
                        let Some(auth) =
                            credentials(&msg, "SUBSCRIBE", &uri, &sub.user, &sub.password, &cnonce)
                        else {
                            sub.state = SubState::Failed;
                            failed += 1;
                            continue;
                        };
                        let sub = &subs[i];
                        let request = subscribe(&mut net, i, sub, 2, &auth);
                        net.send(request.as_bytes());
                        let sub = &mut subs[i];
                        sub.request = request;
                        sub.state = SubState::Authenticating;
                        sub.sent_first = now;
                        sub.interval = T1;
                        sub.generation += 1;
                        timers.push(Reverse((now + T1, i, sub.generation)));
                    }
                    (SubState::Authenticating, 200..=299) => {
                        sub.state = SubState::Active;
                        sub.generation += 1;
                        sub.to = msg.header("To").unwrap_or("").to_owned();
                        sub.remote = msg.header("Contact").map(uri_of).unwrap_or("").to_owned();
                        sub.routes = route_set(&msg);
                        subscribed += 1;
                    }
                    (SubState::Ending, 401 | 407) => {
                        let cnonce = format!("{pid:x}{i:x}e");
                        let Some(auth) = credentials(
                            &msg,
                            "SUBSCRIBE",
                            &sub.remote,
                            &sub.user,
                            &sub.password,
                            &cnonce,
                        ) else {
                            sub.state = SubState::Failed;
                            failed += 1;
                            continue;
                        };
                        let request = unsubscribe(&mut net, i, &subs[i], 4, &auth);
                        net.send(request.as_bytes());
                        let sub = &mut subs[i];
                        sub.request = request;
                        sub.state = SubState::EndingAuthenticated;
                        sub.sent_first = now;
                        sub.interval = T1;
                        sub.generation += 1;
                        timers.push(Reverse((now + T1, i, sub.generation)));
                    }
                    (SubState::Ending | SubState::EndingAuthenticated, 200..=299) => {
                        sub.state = SubState::Ended;
                        sub.generation += 1;
                        unsubscribed += 1;
                    }
                    (
                        SubState::Challenged
                        | SubState::Authenticating
                        | SubState::Ending
                        | SubState::EndingAuthenticated,
                        _,
                    ) => {
                        eprintln!(
                            "subscription {i} ({} -> {}): {}",
                            sub.user, sub.target, msg.start
                        );
                        sub.state = SubState::Failed;
                        sub.generation += 1;
                        failed += 1;
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

// ---- call --------------------------------------------------------------------

#[derive(PartialEq, Clone, Copy)]
enum CallState {
    Waiting,
    Inviting,
    Authenticating,
    Ringing,
    Talking,
    Ending,
    Done,
    Failed,
}

struct Call {
    target: String,
    state: CallState,
    /// The request in flight (INVITE or BYE), for retransmission.
    request: String,
    /// The ACK of the 407 or of the 200, sent again if they come again.
    ack: String,
    sent_first: Instant,
    interval: Duration,
    generation: u32,
    /// The dialog: the callee's To (with its tag), its target, the route set.
    to: String,
    remote: String,
    routes: Vec<String>,
}

fn call(o: Options) -> Result<(), String> {
    let targets = read_lines(o.targets.as_deref().ok_or("--targets is required")?)?;
    if targets.is_empty() || o.calls == 0 || o.user.is_empty() {
        return Err(USAGE.to_owned());
    }
    let mut net = Net::open(o.server.expect("checked"))?;
    let (domain, local, pid, user) = (o.domain.clone(), net.local, net.pid, o.user.clone());
    let mut calls: Vec<Call> = (0..o.calls)
        .map(|k| Call {
            target: targets[k % targets.len()].clone(),
            state: CallState::Waiting,
            request: String::new(),
            ack: String::new(),
            sent_first: Instant::now(),
            interval: T1,
            generation: 0,
            to: String::new(),
            remote: String::new(),
            routes: Vec::new(),
        })
        .collect();
    let sdp = format!(
        "v=0\r\no=caller 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n",
        ip = local.ip(),
        port = 40000 + (pid % 10000) * 2,
    );
    let invite =
        |net: &mut Net, k: usize, target: &str, cseq: u32, auth: &str| -> (String, String) {
            let branch = net.branch();
            let request = format!(
                "INVITE sip:{target}@{domain} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag=c{k}t{pid}\r\n\
             To: <sip:{target}@{domain}>\r\n\
             Call-ID: c{k}.{pid}@blf\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:{user}@{local};transport=udp>\r\n\
             {auth}Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            );
            (request, branch)
        };
    let in_dialog = |net: &mut Net, k: usize, c: &Call, method: &str, cseq: u32| -> String {
        let mut r = format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={};rport\r\n",
            c.remote,
            net.branch()
        );
        for route in &c.routes {
            let _ = write!(r, "Route: {route}\r\n");
        }
        let _ = write!(
            r,
            "Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=c{k}t{pid}\r\nTo: {}\r\n\
             Call-ID: c{k}.{pid}@blf\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            c.to
        );
        r
    };
    let mut branches: Vec<String> = vec![String::new(); o.calls];
    let mut timers: Timers = BinaryHeap::new();
    let start = Instant::now();
    let mut next_new = 0usize;
    let (mut done, mut failed) = (0usize, 0usize);
    let mut buf = vec![0u8; 65536];
    let due = |k: usize| start + Duration::from_secs_f64(k as f64 / o.rate);
    while done + failed < calls.len() {
        let now = Instant::now();
        while next_new < calls.len() && due(next_new) <= now {
            let k = next_new;
            next_new += 1;
            let (request, branch) = invite(&mut net, k, &calls[k].target.clone(), 1, "");
            net.send(request.as_bytes());
            branches[k] = branch;
            let c = &mut calls[k];
            c.request = request;
            c.state = CallState::Inviting;
            c.sent_first = now;
            c.interval = T1;
            c.generation += 1;
            timers.push(Reverse((now + T1, k, c.generation)));
        }
        while let Some(&Reverse((at, k, generation))) = timers.peek() {
            if at > now {
                break;
            }
            timers.pop();
            let c = &mut calls[k];
            if generation != c.generation {
                continue;
            }
            match c.state {
                // Talked long enough: hang up.
                CallState::Talking => {
                    let bye = in_dialog(&mut net, k, c, "BYE", 3);
                    net.send(bye.as_bytes());
                    let c = &mut calls[k];
                    c.request = bye;
                    c.state = CallState::Ending;
                    c.sent_first = now;
                    c.interval = T1;
                    c.generation += 1;
                    timers.push(Reverse((now + T1, k, c.generation)));
                }
                CallState::Inviting | CallState::Authenticating | CallState::Ending => {
                    if now.duration_since(c.sent_first) >= GIVE_UP {
                        eprintln!("call {k} to {}: no answer", c.target);
                        c.state = CallState::Failed;
                        failed += 1;
                        continue;
                    }
                    net.send(c.request.as_bytes());
                    // INVITE doubles without bound (timer A), BYE up to T2.
                    c.interval = if c.state == CallState::Ending {
                        (c.interval * 2).min(T2)
                    } else {
                        c.interval * 2
                    };
                    timers.push(Reverse((now + c.interval, k, generation)));
                }
                CallState::Ringing => {
                    if now.duration_since(c.sent_first) >= Duration::from_secs(180) {
                        c.state = CallState::Failed;
                        failed += 1;
                    }
                }
                _ => {}
            }
        }
        let deadline = timers
            .peek()
            .map(|Reverse((at, _, _))| *at)
            .into_iter()
            .chain((next_new < calls.len()).then(|| due(next_new)))
            .min();
        let Some(n) = net.recv(&mut buf, deadline) else {
            continue;
        };
        let Some(msg) = Msg::parse(&buf[..n]) else {
            continue;
        };
        let Some(k) = msg.header("Call-ID").and_then(|c| index_of(c, 'c')) else {
            continue;
        };
        if k >= calls.len() {
            continue;
        }
        let Some((cseq, method)) = msg.cseq() else {
            continue;
        };
        if let Some(m) = msg.method() {
            // The server hung up, or asks something in the dialog.
            if m != "ACK" {
                net.send(msg.reply("200 OK").as_bytes());
            }
            if m == "BYE" && !matches!(calls[k].state, CallState::Done | CallState::Failed) {
                calls[k].state = CallState::Done;
                calls[k].generation += 1;
                done += 1;
            }
            continue;
        }
        let status = msg.status().unwrap_or(0);
        let c = &mut calls[k];
        match (method, cseq, status) {
            ("INVITE", _, 100..=199) => {
                if matches!(c.state, CallState::Inviting | CallState::Authenticating) {
                    // A provisional answer stops INVITE retransmissions.
                    c.generation += 1;
                    if status > 100 && c.state == CallState::Authenticating {
                        c.state = CallState::Ringing;
                    }
                }
            }
            ("INVITE", 1, 401 | 407) => {
                if c.state == CallState::Inviting {
                    let to = msg.header("To").unwrap_or("").to_owned();
                    c.ack = format!(
                        "ACK sip:{target}@{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={};rport\r\n\
                         Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=c{k}t{pid}\r\nTo: {to}\r\n\
                         Call-ID: c{k}.{pid}@blf\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                        branches[k],
                        target = c.target,
                    );
                    net.send(c.ack.as_bytes());
                    let uri = format!("sip:{}@{domain}", c.target);
                    let cnonce = format!("{pid:x}{k:x}");
                    let Some(auth) = credentials(&msg, "INVITE", &uri, &user, &o.password, &cnonce)
                    else {
                        c.state = CallState::Failed;
                        failed += 1;
                        continue;
                    };
                    let target = c.target.clone();
                    let (request, branch) = invite(&mut net, k, &target, 2, &auth);
                    net.send(request.as_bytes());
                    branches[k] = branch;
                    let c = &mut calls[k];
                    c.request = request;
                    c.state = CallState::Authenticating;
                    c.sent_first = now;
                    c.interval = T1;
                    c.generation += 1;
                    timers.push(Reverse((now + T1, k, c.generation)));
                } else {
                    net.send(c.ack.as_bytes());
                }
            }
            ("INVITE", 2, 200..=299) => {
                if matches!(c.state, CallState::Authenticating | CallState::Ringing) {
                    c.to = msg.header("To").unwrap_or("").to_owned();
                    c.remote = msg.header("Contact").map(uri_of).unwrap_or("").to_owned();
                    c.routes = route_set(&msg);
                    let ack = in_dialog(&mut net, k, &calls[k], "ACK", 2);
                    net.send(ack.as_bytes());
                    let c = &mut calls[k];
                    c.ack = ack;
                    c.state = CallState::Talking;
                    c.generation += 1;
                    timers.push(Reverse((now + o.talk, k, c.generation)));
                } else if !c.ack.is_empty() {
                    net.send(c.ack.as_bytes());
                }
            }
            ("INVITE", _, 300..) => {
                if !matches!(c.state, CallState::Done | CallState::Failed) {
                    let to = msg.header("To").unwrap_or("");
                    let ack = format!(
                        "ACK sip:{target}@{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={};rport\r\n\
                         Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=c{k}t{pid}\r\nTo: {to}\r\n\
                         Call-ID: c{k}.{pid}@blf\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
                        branches[k],
                        target = c.target,
                    );
                    net.send(ack.as_bytes());
                    eprintln!("call {k} to {}: {}", c.target, msg.start);
                    c.state = CallState::Failed;
                    c.generation += 1;
                    failed += 1;
                }
            }
            ("BYE", _, 200..) => {
                if c.state == CallState::Ending {
                    c.state = CallState::Done;
                    c.generation += 1;
                    done += 1;
                }
            }
            _ => {}
        }
    }
    println!(
        "calls {} completed {done} failed {failed} in {:.1} s",
        calls.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
