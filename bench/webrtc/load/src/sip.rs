//! A browser's SIP over WebSocket (RFC 7118), as JsSIP does it: one call
//! per connection, digest authentication, ACK and BYE. Only what the
//! benchmark needs; requests the server sends in the dialog get a 200.

use std::fmt::Write as _;

use futures_util::{SinkExt, StreamExt};
use md5::{Digest as _, Md5};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Who calls whom.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub password: String,
    pub domain: String,
    pub callee: String,
}

/// One call over one WebSocket.
pub struct Call {
    ws: Socket,
    account: Account,
    call_id: String,
    from_tag: String,
    to: String,
    cseq: u32,
    /// The Contact of the answer: where ACK and BYE go.
    target: String,
    host: String,
    /// The branch of the last request (an ACK of a failure reuses it).
    branch: String,
}

/// A SIP message as text, with its lines split off.
struct Message<'a> {
    start: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a str,
}

impl<'a> Message<'a> {
    fn parse(text: &'a str) -> Option<Message<'a>> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
            .collect();
        Some(Message {
            start,
            headers,
            body,
        })
    }

    fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// Every value of header `name` (or its compact form).
    fn all(&self, name: &str, compact: &str) -> Vec<&'a str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
            .map(|(_, v)| *v)
            .collect()
    }

    fn one(&self, name: &str, compact: &str) -> Option<&'a str> {
        self.all(name, compact).first().copied()
    }
}

fn random_token() -> String {
    let bytes: [u8; 8] = std::array::from_fn(|_| rand_byte());
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A byte from the process's hasher seeds: unique enough for tags.
fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::Instant::now()) & 0xff) as u8
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `name="value"` or `name=value` from a challenge.
fn param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    challenge.split(',').find_map(|part| {
        let (n, v) = part.trim().trim_start_matches("Digest ").split_once('=')?;
        (n.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

impl Call {
    /// Opens the WebSocket (subprotocol `sip`).
    pub async fn connect(url: &str, account: Account) -> Result<Call, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "sip".parse().expect("a header value"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| format!("WebSocket: {e}"))?;
        let host = format!("{}.invalid", random_token());
        let to = format!("<sip:{}@{}>", account.callee, account.domain);
        Ok(Call {
            ws,
            account,
            call_id: random_token(),
            from_tag: random_token(),
            to,
            cseq: 0,
            target: String::new(),
            host,
            branch: String::new(),
        })
    }

    fn request(&mut self, method: &str, uri: &str, auth: Option<&str>, body: &str) -> String {
        if method != "ACK" {
            self.cseq += 1;
        }
        if !(method == "ACK" && self.target.is_empty()) {
            self.branch = random_token();
        }
        let mut m = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/WS {};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
             From: <sip:{}@{}>;tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {method}\r\n\
             Contact: <sip:{}@{};transport=ws>\r\nUser-Agent: edgepbx-bench-webrtc\r\n",
            self.host,
            self.branch,
            self.account.user,
            self.account.domain,
            self.from_tag,
            self.to,
            self.call_id,
            self.cseq,
            self.account.user,
            self.host,
        );
        if let Some(auth) = auth {
            m.push_str(auth);
        }
        if body.is_empty() {
            m.push_str("Content-Length: 0\r\n\r\n");
        } else {
            let _ = write!(
                m,
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        m
    }

    /// The Authorization (or Proxy-Authorization) header answering the
    /// MD5 challenge of `response`.
    fn authorize(&self, response: &Message<'_>, method: &str, uri: &str) -> Option<String> {
        let (header, reply) = if response.status() == Some(407) {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let challenge = response
            .all(header, header)
            .into_iter()
            .find(|c| param(c, "algorithm").is_none_or(|a| a.eq_ignore_ascii_case("MD5")))?;
        let realm = param(challenge, "realm")?;
        let nonce = param(challenge, "nonce")?;
        let a = &self.account;
        let ha1 = md5_hex(&format!("{}:{realm}:{}", a.user, a.password));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5",
            a.user
        );
        let digest =
            if param(challenge, "qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")) {
                let cnonce = random_token();
                let _ = write!(value, ", qop=auth, nc=00000001, cnonce=\"{cnonce}\"");
                md5_hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"))
            } else {
                md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
            };
        let _ = write!(value, ", response=\"{digest}\"");
        if let Some(opaque) = param(challenge, "opaque") {
            let _ = write!(value, ", opaque=\"{opaque}\"");
        }
        Some(format!("{reply}: {value}\r\n"))
    }

    async fn send(&mut self, text: String) -> Result<(), String> {
        self.ws
            .send(Frame::text(text))
            .await
            .map_err(|e| format!("WebSocket send: {e}"))
    }

    /// The next final response to `method`, answering requests meanwhile.
    async fn final_response(&mut self, method: &str) -> Result<String, String> {
        loop {
            let text = self.next_text().await?;
            let Some(message) = Message::parse(&text) else {
                continue;
            };
            match message.status() {
                Some(code) if code >= 200 => {
                    let cseq = message.one("CSeq", "CSeq").unwrap_or_default();
                    if cseq.ends_with(method) {
                        return Ok(text);
                    }
                }
                Some(_) => {}
                None => self.answer_request(&text).await?,
            }
        }
    }

    async fn next_text(&mut self) -> Result<String, String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Frame::Text(text))) => return Ok(text.to_string()),
                Some(Ok(Frame::Close(_))) | None => return Err("the server closed".into()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("WebSocket: {e}")),
            }
        }
    }

    /// A 200 to a request of the server (none to ACK).
    async fn answer_request(&mut self, text: &str) -> Result<(), String> {
        let Some(request) = Message::parse(text) else {
            return Ok(());
        };
        if request.start.starts_with("ACK ") {
            return Ok(());
        }
        let mut reply = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            let compact = &name[..1];
            for value in request.all(name, compact) {
                let _ = write!(reply, "{name}: {value}\r\n");
            }
        }
        reply.push_str("Content-Length: 0\r\n\r\n");
        self.send(reply).await
    }

    /// Sends the INVITE with `offer` (authenticating when challenged) and
    /// ACKs the answer; the answer's SDP.
    pub async fn invite(&mut self, offer: &str) -> Result<String, String> {
        let uri = format!("sip:{}@{}", self.account.callee, self.account.domain);
        let invite = self.request("INVITE", &uri, None, offer);
        self.send(invite).await?;
        let mut text = self.final_response("INVITE").await?;
        let mut response = Message::parse(&text).ok_or("a bad response")?;
        if matches!(response.status(), Some(401 | 407)) {
            self.ack(&response, &uri).await?;
            let auth = self
                .authorize(&response, "INVITE", &uri)
                .ok_or("no MD5 challenge")?;
            let invite = self.request("INVITE", &uri, Some(&auth), offer);
            self.send(invite).await?;
            text = self.final_response("INVITE").await?;
            response = Message::parse(&text).ok_or("a bad response")?;
        }
        let status = response.status().unwrap_or(0);
        if status != 200 {
            let _ = self.ack(&response, &uri).await;
            return Err(format!("INVITE answered {}", response.start));
        }
        let to = response.one("To", "t").ok_or("no To")?.to_string();
        let contact = response.one("Contact", "m").ok_or("no Contact")?;
        self.target = contact
            .trim_start_matches('<')
            .split(['>', ';'])
            .next()
            .unwrap_or_default()
            .to_string();
        let body = response.body.to_string();
        self.to = to;
        let target = self.target.clone();
        let ack = self.request("ACK", &target, None, "");
        self.send(ack).await?;
        Ok(body)
    }

    /// ACK of a failed INVITE (the To tag of the response).
    async fn ack(&mut self, response: &Message<'_>, uri: &str) -> Result<(), String> {
        let saved = std::mem::replace(
            &mut self.to,
            response.one("To", "t").unwrap_or_default().to_string(),
        );
        let ack = self.request("ACK", uri, None, "");
        self.to = saved;
        self.send(ack).await
    }

    /// Answers the server's requests and pings until the connection ends.
    pub async fn serve(&mut self) {
        while let Ok(text) = self.next_text().await {
            if !text.starts_with("SIP/2.0 ") && self.answer_request(&text).await.is_err() {
                return;
            }
        }
    }

    /// Hangs up; whether the BYE got its 200.
    pub async fn bye(&mut self) -> Result<(), String> {
        let target = self.target.clone();
        let bye = self.request("BYE", &target, None, "");
        self.send(bye).await?;
        let text = self.final_response("BYE").await?;
        let response = Message::parse(&text).ok_or("a bad response")?;
        if matches!(response.status(), Some(401 | 407)) {
            let auth = self
                .authorize(&response, "BYE", &target)
                .ok_or("no MD5 challenge")?;
            let bye = self.request("BYE", &target, Some(&auth), "");
            self.send(bye).await?;
            let text = self.final_response("BYE").await?;
            let response = Message::parse(&text).ok_or("a bad response")?;
            return match response.status() {
                Some(200) => Ok(()),
                _ => Err(format!("BYE answered {}", response.start)),
            };
        }
        match response.status() {
            Some(200) => Ok(()),
            _ => Err(format!("BYE answered {}", response.start)),
        }
    }
}
