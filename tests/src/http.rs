//! A small HTTP/1.1 client for the API tests: one request per connection
//! (`Connection: close`), bodies framed by Content-Length or chunked
//! transfer coding, and a reader for Server-Sent Events.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
}

/// A client of one server with an optional bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    /// The server.
    pub addr: SocketAddr,
    /// `Authorization: Bearer` value.
    pub token: Option<String>,
    /// A `Cookie` header value.
    pub cookie: Option<String>,
}

impl Client {
    /// A client without credentials.
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            token: None,
            cookie: None,
        }
    }

    /// The same client with a bearer token.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            token: Some(token.to_owned()),
            ..self.clone()
        }
    }

    /// Logs in as a console user; the same client carrying the session
    /// cookie (whose attributes it checks).
    pub fn logged_in(&self, email: &str, password: &str) -> Client {
        let r = self.json(
            "POST",
            "/api/v1/session",
            &serde_json::json!({"email": email, "password": password}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let cookie = r.header("set-cookie").expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        Client {
            cookie: Some(cookie.split(';').next().unwrap_or_default().to_owned()),
            ..self.clone()
        }
    }

    /// Polls extensions import `id` until it is no longer running; its
    /// report.
    pub fn import_finished(&self, id: &str) -> serde_json::Value {
        crate::wait_for(Duration::from_secs(60), || {
            let status = self.get(&format!("/api/v1/imports/{id}")).json();
            (status["state"] != "running").then_some(status)
        })
        .expect("the import finishes")
    }

    /// Imports extensions from `csv` (only checks it on a `dry_run`);
    /// the finished job's report.
    pub fn import_extensions(&self, csv: &str, dry_run: bool) -> serde_json::Value {
        let r = self.request(
            "POST",
            &format!("/api/v1/imports?dry_run={dry_run}"),
            Some(("text/csv", csv.as_bytes())),
            &[],
        );
        assert_eq!(r.status, 202, "{}", r.text());
        self.import_finished(r.json()["id"].as_str().unwrap_or_default())
    }

    /// GET.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, &[])
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None, &[])
    }

    /// A request with a JSON body.
    pub fn json(&self, method: &str, path: &str, body: &serde_json::Value) -> Response {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.request(method, path, Some(("application/json", &bytes)), &[])
    }

    /// Any request.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        extra: &[(&str, &str)],
    ) -> Response {
        let mut stream = self.connect();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or(("", &[]));
        if !body.0.is_empty() {
            head.push_str(&format!("Content-Type: {}\r\n", body.0));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.1.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.1);
        stream
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("sending {method} {path}: {e}"));
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        let body = read_body(&mut reader, &headers);
        Response {
            status,
            headers,
            body,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect_timeout(&self.addr, TIMEOUT)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.addr));
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        stream
    }

    /// Opens an event stream (GET with `Accept: text/event-stream`).
    pub fn events(&self, path: &str) -> EventStream {
        let mut stream = self.connect();
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
            self.addr
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        assert_eq!(status, 200, "event stream {path}");
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        EventStream {
            reader,
            chunked,
            left_in_chunk: 0,
            pending: String::new(),
            ended: false,
        }
    }
}

fn read_head(reader: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("reading the status line: {e}"));
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap_or(0);
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (status, headers)
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap_or(0);
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            if reader.read_exact(&mut chunk).is_err() {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        let _ = reader.read_to_end(&mut body);
    }
    body
}

/// A Server-Sent Events stream being read.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    chunked: bool,
    left_in_chunk: usize,
    pending: String,
    ended: bool,
}

/// One event.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    /// Its `event:` name.
    pub name: String,
    /// Its `data:` lines joined.
    pub data: String,
}

impl EventStream {
    /// The next event, or `None` when none comes before `deadline`.
    pub fn next_before(&mut self, deadline: Instant) -> Option<ServerEvent> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let mut event = ServerEvent {
                    name: "message".into(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event.name = name.trim().to_owned();
                    } else if let Some(data) = line.strip_prefix("data:") {
                        if !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event.data.push_str(data.trim_start());
                    }
                }
                if event.data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(event);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            if !self.read_some() {
                return None;
            }
        }
    }

    /// Whether the server ended the stream before `deadline` (events
    /// still arriving are read and dropped).
    pub fn ends_before(&mut self, deadline: Instant) -> bool {
        while !self.ended && self.next_before(deadline).is_some() {}
        self.ended
    }

    /// Reads more of the body into `pending`; false on timeout or end.
    fn read_some(&mut self) -> bool {
        if self.chunked && self.left_in_chunk == 0 {
            let mut size = String::new();
            loop {
                size.clear();
                match self.reader.read_line(&mut size) {
                    Ok(0) => {
                        self.ended = true;
                        return false;
                    }
                    Err(_) => return false,
                    Ok(_) if size.trim().is_empty() => continue,
                    Ok(_) => break,
                }
            }
            self.left_in_chunk = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if self.left_in_chunk == 0 {
                self.ended = true;
                return false;
            }
        }
        let want = if self.chunked {
            self.left_in_chunk
        } else {
            4096
        };
        let mut buf = vec![0; want.min(4096)];
        match self.reader.read(&mut buf) {
            Ok(0) => {
                self.ended = true;
                false
            }
            Err(_) => false,
            Ok(n) => {
                if self.chunked {
                    self.left_in_chunk -= n;
                }
                self.pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
        }
    }
}
