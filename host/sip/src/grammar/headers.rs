//! Header values: name-addr and Contact (§20.10, §20.20, §20.39), Via (§20.42),
//! CSeq (§20.16), Max-Forwards (§20.22).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::message::{Headers, Method};

use super::uri::*;
use super::*;

// ---------------------------------------------------------------------------
// name-addr / addr-spec (From, To, Contact, Route, Record-Route)

/// A `name-addr` or `addr-spec` with its header parameters (RFC 3261
/// §20.10). In the unbracketed form every `;param` belongs to the header,
/// not to the URI (RFC 4475 §3.3.12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted (quoted-pairs resolved).
    pub display: Option<String>,
    /// The address.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`...), values as written.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// A name-addr with no display name and no parameters.
    pub fn new(uri: Uri) -> Self {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    /// The header parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// Sets (or adds) a header parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        set_param(&mut self.params, name, value);
    }

    /// The `tag` parameter (From/To, RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").and_then(|p| p.value.as_deref())
    }

    /// The Contact `expires` parameter in seconds. Values beyond `u32`
    /// saturate (RFC 4475 §3.1.2.4: the registrar clamps them anyway);
    /// a non-numeric value gives `None`.
    pub fn expires(&self) -> Option<u32> {
        let value = self.param("expires")?.value.as_deref()?;
        match parse_decimal(value, u64::from(u32::MAX)) {
            Ok(n) => u32::try_from(n).ok(),
            Err(GrammarError::TooLarge { .. }) => Some(u32::MAX),
            Err(_) => None,
        }
    }
}

impl fmt::Display for NameAddr {
    /// Always the bracketed form: `"display" <uri>;params`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            f.write_str("\"")?;
            for ch in display.chars() {
                match ch {
                    '"' | '\\' => write!(f, "\\{ch}")?,
                    // CR and LF cannot be carried in a header value.
                    '\r' | '\n' => f.write_str(" ")?,
                    other => write!(f, "{other}")?,
                }
            }
            f.write_str("\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        for param in &self.params {
            write!(f, ";{param}")?;
        }
        Ok(())
    }
}

impl FromStr for NameAddr {
    type Err = GrammarError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_name_addr(text)
    }
}

/// Parses one `name-addr` or `addr-spec` followed by header parameters.
pub fn parse_name_addr(value: &str) -> Result<NameAddr, GrammarError> {
    let value = trim_ws(value);
    if value.is_empty() {
        return Err(GrammarError::Empty);
    }
    if value.starts_with('"') {
        let mut c = Cursor::new(value);
        let (_, display) = c.quoted()?;
        c.skip_ws();
        return parse_bracketed(Some(display), c.rest());
    }
    match value.find('<') {
        Some(lt) => {
            // Unquoted display name: tokens separated by LWS. LWS before
            // '<' is optional (RFC 4475 §3.1.1.6).
            let (display, bracketed) = value
                .split_at_checked(lt)
                .ok_or(GrammarError::BadDisplayName)?;
            let words: Vec<&str> = display
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .collect();
            if !words.iter().all(|w| is_token(w)) {
                return Err(GrammarError::BadDisplayName);
            }
            let display = (!words.is_empty()).then(|| words.join(" "));
            parse_bracketed(display, bracketed)
        }
        None => {
            let (uri_text, params) = value
                .split_at_checked(value.find(';').unwrap_or(value.len()))
                .ok_or(GrammarError::Empty)?;
            let uri_text = trim_ws(uri_text);
            if uri_text.contains(['?', ',']) {
                return Err(GrammarError::UnbracketedUri);
            }
            Ok(NameAddr {
                display: None,
                uri: parse_uri(uri_text)?,
                params: parse_header_params(params)?,
            })
        }
    }
}

/// Parses `"<" addr-spec ">" *(SEMI param)`; `text` starts at `<`. Space
/// inside the brackets is an error (RFC 4475 §3.1.2.14).
fn parse_bracketed(display: Option<String>, text: &str) -> Result<NameAddr, GrammarError> {
    let inner = text
        .strip_prefix('<')
        .ok_or(GrammarError::Unexpected { at: 0 })?;
    let (uri_text, after) = inner
        .split_once('>')
        .ok_or(GrammarError::UnbalancedBrackets)?;
    Ok(NameAddr {
        display,
        uri: parse_uri(uri_text)?,
        params: parse_header_params(after)?,
    })
}

/// Parses a comma-separated list of name-addrs (Contact, Route,
/// Record-Route). Commas inside quotes and `<>` do not split.
pub fn parse_name_addr_list(value: &str) -> Result<Vec<NameAddr>, GrammarError> {
    split_list(value)?
        .into_iter()
        .map(parse_name_addr)
        .collect()
}

/// The value of a Contact header field (RFC 3261 §20.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactValue {
    /// `Contact: *`, used in a REGISTER to remove every binding.
    Star,
    /// One or more addresses.
    List(Vec<NameAddr>),
}

/// Parses a Contact header field value.
pub fn parse_contact(value: &str) -> Result<ContactValue, GrammarError> {
    if trim_ws(value) == "*" {
        Ok(ContactValue::Star)
    } else {
        parse_name_addr_list(value).map(ContactValue::List)
    }
}

/// True when a To/From value carries a `tag` parameter. A value that does
/// not parse has no tag.
pub fn has_tag(value: &str) -> bool {
    parse_name_addr(value).is_ok_and(|addr| addr.tag().is_some())
}

// ---------------------------------------------------------------------------
// Via

/// The transport of a Via sent-protocol (RFC 3261 §20.42). Unknown
/// transports are kept, not rejected (RFC 4475 §3.1.1.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViaTransport {
    /// UDP, TCP, TLS, SCTP, TLS-SCTP, WS or WSS.
    Known(rsip::Transport),
    /// Any other transport token, as written.
    Unknown(String),
}

impl ViaTransport {
    /// Interprets a transport token (case-insensitive).
    pub fn from_token(token: &str) -> Self {
        use rsip::Transport::*;
        let known = [Udp, Tcp, Tls, Sctp, TlsSctp, Ws, Wss]
            .into_iter()
            .find(|t| t.to_string().eq_ignore_ascii_case(token));
        match known {
            Some(transport) => ViaTransport::Known(transport),
            None => ViaTransport::Unknown(token.to_owned()),
        }
    }
}

impl fmt::Display for ViaTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViaTransport::Known(t) => write!(f, "{t}"),
            ViaTransport::Unknown(token) => f.write_str(token),
        }
    }
}

/// The `rport` parameter of RFC 3581.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rport {
    /// `;rport` without a value: the client asks for the source port.
    Requested,
    /// `;rport=PORT`, filled in by the server.
    Port(u16),
}

/// One Via value: `SIP/2.0/UDP host:port;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The protocol version (`2.0`).
    pub version: String,
    /// The transport.
    pub transport: ViaTransport,
    /// sent-by host.
    pub host: Host,
    /// sent-by port, if given.
    pub port: Option<u16>,
    /// Via parameters, values as written.
    pub params: Vec<Param>,
}

impl Via {
    /// The parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// Sets (or adds) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        set_param(&mut self.params, name, value);
    }

    /// The `branch` parameter (transaction id, RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }

    /// The `received` address, with or without IPv6 brackets.
    pub fn received(&self) -> Option<IpAddr> {
        self.param("received")
            .and_then(|p| p.value.as_deref())
            .and_then(parse_ip_param)
    }

    /// The `rport` parameter (RFC 3581). A value that is not a port reads
    /// as [`Rport::Requested`].
    pub fn rport(&self) -> Option<Rport> {
        let param = self.param("rport")?;
        Some(match param.value.as_deref().map(parse_port) {
            Some(Ok(port)) => Rport::Port(port),
            _ => Rport::Requested,
        })
    }

    /// Records where the request really came from (RFC 3261 §18.2.1,
    /// RFC 3581 §4): `received` when the sent-by host differs from the
    /// source address or `rport` is present, and the `rport` value when
    /// the client asked for it.
    pub fn record_source(&mut self, source: SocketAddr) {
        let ip = source.ip().to_canonical();
        let has_rport = self.param("rport").is_some();
        let same_host = self.host.ip().map(|h| h.to_canonical()) == Some(ip);
        if !same_host || has_rport {
            // RFC 3261's ABNF writes IPv6 without brackets here.
            self.set_param("received", Some(ip.to_string()));
        }
        if has_rport {
            self.set_param("rport", Some(source.port().to_string()));
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/{}/{} {}", self.version, self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for param in &self.params {
            write!(f, ";{param}")?;
        }
        Ok(())
    }
}

impl FromStr for Via {
    type Err = GrammarError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_via_element(text)
    }
}

/// Parses `sent-protocol LWS sent-by` and returns the cursor at the
/// parameters.
fn parse_sent_by<'a>(
    text: &'a str,
) -> Result<(String, ViaTransport, Host, Option<u16>, Cursor<'a>), GrammarError> {
    let mut c = Cursor::new(text);
    c.skip_ws();
    let name = c.take_while(is_token_byte);
    if !name.eq_ignore_ascii_case("SIP") {
        return Err(GrammarError::BadSentProtocol);
    }
    c.skip_ws();
    if !c.eat(b'/') {
        return Err(GrammarError::BadSentProtocol);
    }
    c.skip_ws();
    let version = c.take_while(is_token_byte);
    c.skip_ws();
    if version.is_empty() || !c.eat(b'/') {
        return Err(GrammarError::BadSentProtocol);
    }
    c.skip_ws();
    let transport = c.take_while(is_token_byte);
    if transport.is_empty() || c.skip_ws() == 0 {
        return Err(GrammarError::BadSentProtocol);
    }
    let host_text = if c.peek() == Some(b'[') {
        let text = c.take_while(|b| b != b']');
        if !c.eat(b']') {
            return Err(GrammarError::BadHost);
        }
        format!("{text}]")
    } else {
        c.take_while(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            .to_owned()
    };
    let host = parse_host(&host_text)?;
    c.skip_ws();
    let port = if c.eat(b':') {
        c.skip_ws();
        Some(parse_port(c.take_while(|b| b.is_ascii_digit()))?)
    } else {
        None
    };
    Ok((
        version.to_owned(),
        ViaTransport::from_token(transport),
        host,
        port,
        c,
    ))
}

fn parse_via_element(text: &str) -> Result<Via, GrammarError> {
    let (version, transport, host, port, c) = parse_sent_by(text)?;
    Ok(Via {
        version,
        transport,
        host,
        port,
        params: parse_header_params(c.rest())?,
    })
}

/// Parses a Via header field value, which may hold several comma-separated
/// Via values.
pub fn parse_via(value: &str) -> Result<Vec<Via>, GrammarError> {
    split_list(value)?
        .into_iter()
        .map(parse_via_element)
        .collect()
}

/// The topmost Via value of a message (first value of the first Via field).
pub fn top_via(headers: &Headers) -> Result<Via, GrammarError> {
    let value = headers.get("Via").ok_or(GrammarError::Absent)?;
    let first = split_list(value)?
        .into_iter()
        .next()
        .ok_or(GrammarError::Empty)?;
    parse_via_element(first)
}

/// True when the first Via value in `value` has a readable sent-protocol
/// and sent-by, even if its parameters are malformed: enough to answer a
/// bad request (RFC 3261 §18.2.2).
pub(crate) fn via_sent_by_readable(value: &str) -> bool {
    let first = value.split(',').next().unwrap_or("");
    parse_sent_by(first).is_ok()
}

/// Applies [`Via::record_source`] to the first Via value of a Via header
/// field value and returns the new field value (other values unchanged), or
/// `None` when the top Via does not parse.
pub fn stamp_received(value: &str, source: SocketAddr) -> Option<String> {
    let elements = split_list(value).ok()?;
    let (first, rest) = elements.split_first()?;
    let mut via = parse_via_element(first).ok()?;
    via.record_source(source);
    let mut out = via.to_string();
    for element in rest {
        out.push_str(", ");
        out.push_str(element);
    }
    Some(out)
}

// ---------------------------------------------------------------------------
// CSeq and Max-Forwards

/// The largest CSeq sequence number accepted: RFC 3261 §8.1.1.5 requires
/// it to be below 2^31.
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

/// A CSeq value (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, at most [`MAX_CSEQ`].
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Parses `1*DIGIT LWS Method`.
pub fn parse_cseq(value: &str) -> Result<CSeq, GrammarError> {
    let mut c = Cursor::new(value);
    c.skip_ws();
    let digits = c.take_while(|b| b.is_ascii_digit());
    let seq = parse_decimal(digits, u64::from(MAX_CSEQ))?;
    if c.skip_ws() == 0 {
        return Err(c.unexpected());
    }
    let method = c.take_while(is_token_byte);
    if method.is_empty() {
        return Err(c.unexpected());
    }
    c.skip_ws();
    if !c.at_end() {
        return Err(GrammarError::Trailing);
    }
    Ok(CSeq {
        // parse_decimal bounded it by MAX_CSEQ.
        seq: u32::try_from(seq).map_err(|_| GrammarError::TooLarge {
            max: u64::from(MAX_CSEQ),
        })?,
        method: Method::from_token(method),
    })
}

/// Parses a Max-Forwards value (`1*DIGIT`, leading zeros allowed, at most
/// 255).
pub fn parse_max_forwards(value: &str) -> Result<u8, GrammarError> {
    let n = parse_decimal(trim_ws(value), 255)?;
    u8::try_from(n).map_err(|_| GrammarError::TooLarge { max: 255 })
}

/// The Max-Forwards of a message: `None` when absent or too large to be
/// meaningful (RFC 4475 §3.1.2.4 allows treating an overlarge value as
/// absent). Message validation has already rejected non-numeric values.
pub fn max_forwards(headers: &Headers) -> Option<u8> {
    headers
        .get("Max-Forwards")
        .and_then(|v| parse_max_forwards(v).ok())
}
