//! Typed views of SIP header values, parsed on demand (RFC 3261 §25.1).
//!
//! A [`crate::Message`] keeps header values as text; this module turns the
//! ones the core needs into types:
//!
//! - [`Via`] (§20.42, §18.2.1, RFC 3581 `rport`, RFC 5118 §4.5 `received`
//!   with or without IPv6 brackets), [`parse_via`], [`top_via`],
//!   [`stamp_received`];
//! - [`CSeq`] (§20.16) and Max-Forwards (§20.22);
//! - [`NameAddr`] for From, To, Contact, Route and Record-Route (§20.10,
//!   §20.20, §20.39) in both the `name-addr` and the `addr-spec` form, with
//!   [`ContactValue`] for `Contact: *`;
//! - [`Uri`]: SIP and SIPS URIs (§19.1) with %-unescaping (§19.1.2), IPv6
//!   references including the three-colon form of RFC 5118 §4.10, and any
//!   other absolute URI kept opaque.
//!
//! Views keep what they do not interpret: parameters are stored as
//! written, and a [`SipUri`] displays as the exact text it was parsed from,
//! so a Contact stored by a registrar is returned unchanged (RFC 4475
//! §3.3.14). Nothing here panics on input; every error is a
//! [`GrammarError`] that names what was wrong without echoing the input.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::message::{Headers, Method};

/// Why a header value does not match the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrammarError {
    /// The value is empty where something is required.
    #[error("empty value")]
    Empty,
    /// The header field the view needs is not in the message.
    #[error("header field absent")]
    Absent,
    /// A comma-separated list has an empty element (`a,,b`).
    #[error("empty element in a list")]
    EmptyListElement,
    /// A quoted string has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// `<` without `>` or the other way round.
    #[error("unbalanced angle brackets")]
    UnbalancedBrackets,
    /// A character that the grammar does not allow at this point.
    #[error("unexpected character at offset {at}")]
    Unexpected {
        /// Byte offset in the value.
        at: usize,
    },
    /// A parameter with no name (`;;` or a trailing `;`).
    #[error("empty parameter")]
    EmptyParam,
    /// A display name that is neither tokens nor a quoted string.
    #[error("display name is neither tokens nor a quoted string")]
    BadDisplayName,
    /// An addr-spec containing `?` or `,` outside `<>` (RFC 3261 §20.10).
    #[error("URI with headers must be enclosed in <>")]
    UnbracketedUri,
    /// The URI scheme is missing or not `ALPHA *(ALPHA / DIGIT / + / - / .)`.
    #[error("malformed URI scheme")]
    BadScheme,
    /// A malformed part of a URI.
    #[error("malformed URI {part}")]
    BadUri {
        /// Which part: "user", "password", "parameter", "headers", "body".
        part: &'static str,
    },
    /// `%` not followed by two hex digits in a URI.
    #[error("invalid %-escape")]
    BadEscape,
    /// A host that is not a domain name, IPv4 address or IPv6 reference.
    #[error("invalid host")]
    BadHost,
    /// An IPv6 address used as a SIP URI host without `[]` (RFC 5118 §4.2).
    #[error("IPv6 address not enclosed in []")]
    UnbracketedIpv6,
    /// A port that is not a number up to 65535.
    #[error("invalid port")]
    BadPort,
    /// A number larger than the field allows.
    #[error("number larger than {max}")]
    TooLarge {
        /// The largest allowed value.
        max: u64,
    },
    /// Not a decimal number.
    #[error("not a number")]
    NotANumber,
    /// A Via sent-protocol that is not `SIP / version / transport`.
    #[error("malformed Via sent-protocol")]
    BadSentProtocol,
    /// Text left over after a complete value.
    #[error("unexpected text after the value")]
    Trailing,
}

// ---------------------------------------------------------------------------
// Lexical helpers (RFC 3261 §25.1)

/// `token` characters: alphanum and `-.!%*_+`'~`.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// True when `s` is a non-empty `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// `unreserved` = alphanum / mark.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// A position in a header value. Every predicate given to
/// [`Cursor::take_while`] accepts ASCII bytes only, so the cursor only ever
/// stops on a character boundary; slicing still goes through `str::get`.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips spaces and tabs; returns how many.
    fn skip_ws(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && accept(b)) {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn unexpected(&self) -> GrammarError {
        GrammarError::Unexpected { at: self.pos }
    }

    /// Consumes a `quoted-string`; returns the raw text (with the quotes)
    /// and the content with quoted-pairs resolved.
    fn quoted(&mut self) -> Result<(&'a str, String), GrammarError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(self.unexpected());
        }
        let mut content = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += i + 1;
                    let raw = self.text.get(start..self.pos).unwrap_or("");
                    return Ok((raw, content));
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => content.push(escaped),
                    None => break,
                },
                other => content.push(other),
            }
        }
        Err(GrammarError::UnterminatedQuote)
    }
}

/// Splits a comma-separated header value (RFC 3261 §7.3.1) into trimmed
/// elements. Commas inside quoted strings and `<>` do not split.
pub fn split_list(value: &str) -> Result<Vec<&str>, GrammarError> {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if in_quote {
            match b {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_quote = true,
                b'<' if in_angle => return Err(GrammarError::UnbalancedBrackets),
                b'<' => in_angle = true,
                b'>' if !in_angle => return Err(GrammarError::UnbalancedBrackets),
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    out.push(list_element(value, start, i)?);
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if in_quote {
        return Err(GrammarError::UnterminatedQuote);
    }
    if in_angle {
        return Err(GrammarError::UnbalancedBrackets);
    }
    out.push(list_element(value, start, value.len())?);
    Ok(out)
}

fn list_element(value: &str, start: usize, end: usize) -> Result<&str, GrammarError> {
    // Both ends sit on ASCII commas or the end of the value.
    let element = trim_ws(value.get(start..end).unwrap_or(""));
    if element.is_empty() {
        Err(GrammarError::EmptyListElement)
    } else {
        Ok(element)
    }
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2) once; `%00` is kept as a NUL
/// octet and the result is not unescaped again (`%2541` gives `%41`).
pub fn unescape(text: &str) -> Result<Vec<u8>, GrammarError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|h| hex_value(*h));
            let lo = bytes.get(i + 2).and_then(|l| hex_value(*l));
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(GrammarError::BadEscape),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses `1*DIGIT` (leading zeros allowed) up to `max`.
pub(crate) fn parse_decimal(digits: &str, max: u64) -> Result<u64, GrammarError> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GrammarError::NotANumber);
    }
    let mut value: u64 = 0;
    for b in digits.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .filter(|v| *v <= max)
            .ok_or(GrammarError::TooLarge { max })?;
    }
    Ok(value)
}

// ---------------------------------------------------------------------------
// Parameters

/// A `;name[=value]` parameter as written. For header parameters the value
/// keeps its quotes if it was a quoted string; for URI parameters both name
/// and value are %-unescaped (the URI keeps the escaped text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Parameter name (case-insensitive when looked up).
    pub name: String,
    /// Value, if the parameter has one.
    pub value: Option<String>,
}

impl Param {
    /// The value without surrounding quotes and with quoted-pairs resolved.
    pub fn unquoted_value(&self) -> Option<String> {
        let value = self.value.as_deref()?;
        if value.starts_with('"') {
            Cursor::new(value).quoted().ok().map(|(_, content)| content)
        } else {
            Some(value.to_owned())
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}={}", self.name, value),
            None => f.write_str(&self.name),
        }
    }
}

fn find_param<'p>(params: &'p [Param], name: &str) -> Option<&'p Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

fn set_param(params: &mut Vec<Param>, name: &str, value: Option<String>) {
    match params
        .iter_mut()
        .find(|p| p.name.eq_ignore_ascii_case(name))
    {
        Some(param) => param.value = value,
        None => params.push(Param {
            name: name.to_owned(),
            value,
        }),
    }
}

/// Parses `*( SEMI generic-param )` (with LWS around `;` and `=`) up to the
/// end of `text`.
fn parse_header_params(text: &str) -> Result<Vec<Param>, GrammarError> {
    let mut c = Cursor::new(text);
    let mut params = Vec::new();
    loop {
        c.skip_ws();
        if c.at_end() {
            return Ok(params);
        }
        if !c.eat(b';') {
            return Err(c.unexpected());
        }
        c.skip_ws();
        let name = c.take_while(is_token_byte);
        if name.is_empty() {
            return Err(GrammarError::EmptyParam);
        }
        c.skip_ws();
        let value = if c.eat(b'=') {
            c.skip_ws();
            Some(param_value(&mut c)?)
        } else {
            None
        };
        params.push(Param {
            name: name.to_owned(),
            value,
        });
    }
}

/// `gen-value = token / host / quoted-string`; a bare IPv6 address is
/// accepted too (Via `received`, RFC 5118 §4.5).
fn param_value(c: &mut Cursor<'_>) -> Result<String, GrammarError> {
    match c.peek() {
        Some(b'"') => c.quoted().map(|(raw, _)| raw.to_owned()),
        Some(b'[') => {
            let text = c.take_while(|b| b != b']');
            if !c.eat(b']') {
                return Err(GrammarError::BadHost);
            }
            Ok(format!("{text}]"))
        }
        _ => {
            let value = c.take_while(|b| is_token_byte(b) || b == b':');
            if value.is_empty() {
                Err(c.unexpected())
            } else {
                Ok(value.to_owned())
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Hosts

/// A host: domain name, IPv4 address or IPv6 address (RFC 3261 §25.1,
/// RFC 5118).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A domain name as written (compare case-insensitively).
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written as an `[...]` reference).
    Ipv6(Ipv6Addr),
}

impl Host {
    /// The address, for IP hosts.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses an IPv6 address, also in the form RFC 3261's ABNF allowed by
/// mistake, `hexpart "::" ":" IPv4address` (RFC 5118 §4.10).
fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    if let Ok(addr) = text.parse::<Ipv6Addr>() {
        return Some(addr);
    }
    let (before, v4) = text.split_once(":::")?;
    v4.parse::<Ipv4Addr>().ok()?;
    format!("{before}::{v4}").parse().ok()
}

/// Parses `hostname / IPv4address / IPv6reference`.
fn parse_host(text: &str) -> Result<Host, GrammarError> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(GrammarError::BadHost)?;
        return parse_ipv6(inner)
            .map(Host::Ipv6)
            .ok_or(GrammarError::BadHost);
    }
    if text.is_empty() {
        return Err(GrammarError::BadHost);
    }
    if let Ok(addr) = text.parse::<Ipv4Addr>() {
        return Ok(Host::Ipv4(addr));
    }
    if text.contains(':') {
        return Err(GrammarError::UnbracketedIpv6);
    }
    // A hostname's top label starts with a letter, so all-numeric text
    // that is not an IPv4 address is no host. `_` is tolerated.
    let hostname = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    let numeric = text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if hostname && !numeric {
        Ok(Host::Domain(text.to_owned()))
    } else {
        Err(GrammarError::BadHost)
    }
}

/// Parses an IP address as written in a `received` parameter, with or
/// without IPv6 brackets (RFC 5118 §4.5).
fn parse_ip_param(value: &str) -> Option<IpAddr> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => parse_ipv6(bare).map(IpAddr::V6),
    }
}

fn parse_port(digits: &str) -> Result<u16, GrammarError> {
    let port = parse_decimal(digits, u64::from(u16::MAX)).map_err(|_| GrammarError::BadPort)?;
    u16::try_from(port).map_err(|_| GrammarError::BadPort)
}

// ---------------------------------------------------------------------------
// URIs

/// A URI as found in a Request-URI or a name-addr (RFC 3261 §19.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// A `sip:` or `sips:` URI.
    Sip(SipUri),
    /// Any other absolute URI (`tel:`, `http:`, `isbn:`...), kept opaque.
    Other {
        /// The scheme as written.
        scheme: String,
        /// Everything after the first `:`.
        rest: String,
    },
}

impl Uri {
    /// The scheme as written (`sip`, `SIPS`, `tel`...).
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(uri) => uri.scheme(),
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The SIP or SIPS URI, if it is one.
    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(uri) => Some(uri),
            Uri::Other { .. } => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(uri) => f.write_str(uri.as_str()),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

impl FromStr for Uri {
    type Err = GrammarError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_uri(text)
    }
}

/// A parsed `sip:` / `sips:` URI. It displays as the exact text it was
/// parsed from (escapes, case and parameter order kept); the accessors give
/// the parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The URI text as received.
    raw: String,
    /// Length of the scheme in `raw`.
    scheme_len: usize,
    /// `sips` rather than `sip`.
    secure: bool,
    /// The user part, escaped as written.
    user: Option<String>,
    /// The user part with %HH decoded (may hold NUL or non-UTF-8 octets).
    user_unescaped: Option<Vec<u8>>,
    /// The password, escaped as written.
    password: Option<String>,
    host: Host,
    port: Option<u16>,
    /// URI parameters, unescaped.
    params: Vec<Param>,
    /// The text after `?`, escaped as written.
    headers: Option<String>,
}

impl SipUri {
    /// The URI text exactly as received.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The scheme as written (`sip` or `sips`, any case).
    pub fn scheme(&self) -> &str {
        self.raw.get(..self.scheme_len).unwrap_or("")
    }

    /// True for `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The user part as written (escapes kept).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The user part with `%HH` decoded once. Octets, not text: `%00` and
    /// non-UTF-8 escapes are kept (RFC 4475 §3.1.1.4).
    pub fn user_unescaped(&self) -> Option<&[u8]> {
        self.user_unescaped.as_deref()
    }

    /// The password as written.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port, if the URI has one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters (names and values %-unescaped).
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The URI parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    /// The headers part (after `?`), escaped as written.
    pub fn headers(&self) -> Option<&str> {
        self.headers.as_deref()
    }

    fn parse(raw: &str, scheme_len: usize, secure: bool, rest: &str) -> Result<Self, GrammarError> {
        // The user part cannot hold a raw '@' (it must be escaped), so the
        // first '@' ends the userinfo.
        let (userinfo, hostpart) = match rest.split_once('@') {
            Some((userinfo, hostpart)) => (Some(userinfo), hostpart),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (info, None),
                };
                if user.is_empty()
                    || !user
                        .bytes()
                        .all(|b| is_unreserved(b) || b"%&=+$,;?/".contains(&b))
                {
                    return Err(GrammarError::BadUri { part: "user" });
                }
                if let Some(password) = password
                    && !password
                        .bytes()
                        .all(|b| is_unreserved(b) || b"%&=+$,".contains(&b))
                {
                    return Err(GrammarError::BadUri { part: "password" });
                }
                (Some(user), password)
            }
            None => (None, None),
        };
        let user_unescaped = user.map(unescape).transpose()?;
        if let Some(password) = password {
            unescape(password)?;
        }

        // hostport
        let (host_text, after_host) = if hostpart.starts_with('[') {
            let close = hostpart.find(']').ok_or(GrammarError::BadHost)?;
            hostpart
                .split_at_checked(close + 1)
                .ok_or(GrammarError::BadHost)?
        } else {
            let end = hostpart.find([':', ';', '?']).unwrap_or(hostpart.len());
            hostpart
                .split_at_checked(end)
                .ok_or(GrammarError::BadHost)?
        };
        let hostport = hostpart.split([';', '?']).next().unwrap_or("");
        if !host_text.starts_with('[') && hostport.matches(':').count() > 1 {
            return Err(GrammarError::UnbracketedIpv6);
        }
        let host = parse_host(host_text)?;
        let (port, after_port) = match after_host.strip_prefix(':') {
            Some(tail) => {
                let end = tail.find([';', '?']).unwrap_or(tail.len());
                let (digits, after) = tail.split_at_checked(end).ok_or(GrammarError::BadPort)?;
                (Some(parse_port(digits)?), after)
            }
            None => (None, after_host),
        };

        // uri-parameters and headers
        let (params_text, headers) = match after_port.split_once('?') {
            Some((params, headers)) => (params, Some(headers)),
            None => (after_port, None),
        };
        let mut params = Vec::new();
        if !params_text.is_empty() {
            let Some(list) = params_text.strip_prefix(';') else {
                return Err(GrammarError::BadHost);
            };
            for item in list.split(';') {
                let (name, value) = match item.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (item, None),
                };
                let paramchar = |s: &str| {
                    s.bytes()
                        .all(|b| is_unreserved(b) || b"%[]/:&+$".contains(&b))
                };
                if name.is_empty()
                    || !paramchar(name)
                    || value.is_some_and(|v| v.is_empty() || !paramchar(v))
                {
                    return Err(GrammarError::BadUri { part: "parameter" });
                }
                let decode =
                    |s: &str| unescape(s).map(|b| String::from_utf8_lossy(&b).into_owned());
                params.push(Param {
                    name: decode(name)?,
                    value: value.map(decode).transpose()?,
                });
            }
        }
        if let Some(headers) = headers {
            let hchar = |b: u8| is_unreserved(b) || b"%[]/?:+$=&".contains(&b);
            if headers.is_empty() || !headers.bytes().all(hchar) {
                return Err(GrammarError::BadUri { part: "headers" });
            }
            unescape(headers)?;
        }
        Ok(SipUri {
            raw: raw.to_owned(),
            scheme_len,
            secure,
            user: user.map(str::to_owned),
            user_unescaped,
            password: password.map(str::to_owned),
            host,
            port,
            params,
            headers: headers.map(str::to_owned),
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses an absolute URI: SIP/SIPS URIs in full, others as
/// `scheme ":" rest`. Whitespace, `<`, `>`, `"` and non-ASCII are errors
/// anywhere (RFC 4475 §3.1.2.7, §3.1.2.14).
pub fn parse_uri(text: &str) -> Result<Uri, GrammarError> {
    if let Some(at) = text
        .bytes()
        .position(|b| b <= b' ' || b >= 0x7f || b"<>\"".contains(&b))
    {
        return Err(GrammarError::Unexpected { at });
    }
    let (scheme, rest) = text.split_once(':').ok_or(GrammarError::BadScheme)?;
    let mut scheme_bytes = scheme.bytes();
    let scheme_ok = scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(GrammarError::BadScheme);
    }
    if rest.is_empty() {
        return Err(GrammarError::BadUri { part: "body" });
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let secure = scheme.len() == 4;
        SipUri::parse(text, scheme.len(), secure, rest).map(Uri::Sip)
    } else {
        Ok(Uri::Other {
            scheme: scheme.to_owned(),
            rest: rest.to_owned(),
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(text: &str) -> SipUri {
        match parse_uri(text) {
            Ok(Uri::Sip(uri)) => uri,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn splits_lists_outside_quotes_and_brackets() {
        let parts = split_list(r#""a, b" <sip:x@y;p=1,2>;q=1 , <sip:z>"#).expect("list");
        assert_eq!(parts, vec![r#""a, b" <sip:x@y;p=1,2>;q=1"#, "<sip:z>"]);
        assert_eq!(split_list("a,,b"), Err(GrammarError::EmptyListElement));
        assert_eq!(
            split_list(r#""open <sip:x>"#),
            Err(GrammarError::UnterminatedQuote)
        );
        assert_eq!(split_list("<sip:x"), Err(GrammarError::UnbalancedBrackets));
    }

    #[test]
    fn unescapes_once_and_keeps_nul() {
        assert_eq!(unescape("v%61lue%25%34%31").expect("escapes"), b"value%41");
        assert_eq!(unescape("null-%00-null").expect("nul"), b"null-\0-null");
        assert_eq!(unescape("%4"), Err(GrammarError::BadEscape));
        assert_eq!(unescape("%zz"), Err(GrammarError::BadEscape));
    }

    #[test]
    fn parses_sip_uri_parts() {
        let uri = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(uri.user(), Some("user;par=u%40example.net"));
        assert_eq!(uri.user_unescaped(), Some(&b"user;par=u@example.net"[..]));
        assert_eq!(uri.host(), &Host::Domain("example.com".into()));

        let uri = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(uri.user_unescaped(), Some(&b"caller"[..]));
        assert!(uri.param("lr").is_some());
        assert_eq!(
            uri.param("name").and_then(|p| p.value.as_deref()),
            Some("value%41")
        );
        assert_eq!(
            uri.to_string(),
            "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
        );

        let uri = sip("SIPS:alice:secret@[2001:db8::10]:5070;transport=tcp?Route=%3Csip:x%3E");
        assert!(uri.is_secure());
        assert_eq!(uri.scheme(), "SIPS");
        assert_eq!(uri.password(), Some("secret"));
        assert_eq!(uri.port(), Some(5070));
        assert_eq!(uri.headers(), Some("Route=%3Csip:x%3E"));
        assert_eq!(uri.host().ip(), Some("2001:db8::10".parse().expect("ip")));
    }

    #[test]
    fn ipv6_references() {
        // RFC 5118 §4.3: the port belongs outside the brackets.
        let uri = sip("sip:[2001:db8::10:5070]");
        assert_eq!(uri.port(), None);
        // RFC 5118 §4.10: both the 3-colon and the 2-colon form.
        let three = sip("sip:user@[2001:db8:::192.0.2.1]");
        let two = sip("sip:user@[2001:db8::192.0.2.1]");
        assert_eq!(three.host(), two.host());
        assert_eq!(three.to_string(), "sip:user@[2001:db8:::192.0.2.1]");
        // RFC 5118 §4.2.
        assert_eq!(
            parse_uri("sip:2001:db8::10"),
            Err(GrammarError::UnbracketedIpv6)
        );
        assert_eq!(
            parse_uri("sip:user@[2001:db8::10"),
            Err(GrammarError::BadHost)
        );
    }

    #[test]
    fn other_schemes_are_opaque() {
        assert_eq!(
            parse_uri("soap.beep://192.0.2.103:3002"),
            Ok(Uri::Other {
                scheme: "soap.beep".into(),
                rest: "//192.0.2.103:3002".into()
            })
        );
        assert_eq!(
            parse_uri("<sip:x@y>"),
            Err(GrammarError::Unexpected { at: 0 })
        );
        assert_eq!(
            parse_uri("sip:x@y; lr"),
            Err(GrammarError::Unexpected { at: 8 })
        );
        assert_eq!(parse_uri("1abc:x"), Err(GrammarError::BadScheme));
        assert_eq!(
            parse_uri("sip:@example.com"),
            Err(GrammarError::BadUri { part: "user" })
        );
        assert!(parse_uri("sip:example.com:99999").is_err());
        assert!(parse_uri("sip:192.0.2.300").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let a = parse_name_addr(r#""J Rosenberg \\\""  <sip:jdrosen@example.com> ; tag = 98asjd8"#)
            .expect("quoted");
        assert_eq!(a.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(a.tag(), Some("98asjd8"));
        assert_eq!(
            a.to_string(),
            r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#
        );

        let a = parse_name_addr("caller<sip:caller@example.com>;tag=323").expect("no LWS");
        assert_eq!(a.display.as_deref(), Some("caller"));

        // Unbracketed: params belong to the header (RFC 4475 §3.3.12).
        let a =
            parse_name_addr("sip:+19725552222@gw1.example.net;unknownparam").expect("addr-spec");
        assert!(a.param("unknownparam").is_some());
        assert!(a.uri.as_sip().is_some_and(|u| u.params().is_empty()));
        assert_eq!(
            a.to_string(),
            "<sip:+19725552222@gw1.example.net>;unknownparam"
        );

        let a =
            parse_name_addr("<sip:+19725552222@gw1.example.net;unknownparam>").expect("bracketed");
        assert!(a.params.is_empty());
        assert!(
            a.uri
                .as_sip()
                .is_some_and(|u| u.param("unknownparam").is_some())
        );

        assert_eq!(
            parse_name_addr("Bell, Alexander <sip:a@b>"),
            Err(GrammarError::BadDisplayName)
        );
        assert_eq!(
            parse_name_addr(r#""Mr. J. User <sip:j@b>"#),
            Err(GrammarError::UnterminatedQuote)
        );
        assert!(parse_name_addr("< sip:t.watson@example.org >").is_err());
        assert_eq!(
            parse_name_addr("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            Err(GrammarError::UnbracketedUri)
        );
        assert_eq!(
            parse_name_addr(r#""Joe" <sip:joe@example.org>;;;;"#),
            Err(GrammarError::EmptyParam)
        );
        let a = parse_name_addr("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>")
            .expect("escaped headers");
        assert_eq!(
            a.to_string(),
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"
        );
        let a = parse_name_addr("isbn:2983792873").expect("other scheme");
        assert_eq!(a.uri.scheme(), "isbn");
    }

    #[test]
    fn contact_values() {
        assert_eq!(parse_contact(" * "), Ok(ContactValue::Star));
        let ContactValue::List(list) =
            parse_contact(r#""a,b" <sip:a@b>;expires=280297596632815, sip:c@d;expires=60"#)
                .expect("list")
        else {
            panic!("not a list");
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].expires(), Some(u32::MAX));
        assert_eq!(list[1].expires(), Some(60));
        assert!(has_tag("<sip:a@b>;tag=1"));
        assert!(!has_tag("<sip:a@b;tag=1>"));
    }

    #[test]
    fn via_parsing_and_round_trip() {
        let vias = parse_via("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8  , SIP / 2.0 / UDP 192.168.255.111 ; branch= z9hG4bK30239").expect("vias");
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].transport, ViaTransport::Known(rsip::Transport::Tcp));
        assert_eq!(vias[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(
            vias[1].host,
            Host::Ipv4("192.168.255.111".parse().expect("ip"))
        );
        assert_eq!(
            vias[0].to_string(),
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"
        );

        let text =
            "SIP/2.0/UNKNOWN [2001:db8::9:1]:6050;branch=z9hG4bKx;received=[2001:db8::9:255];rport";
        let via: Via = text.parse().expect("via");
        assert_eq!(via.transport, ViaTransport::Unknown("UNKNOWN".into()));
        assert_eq!(via.port, Some(6050));
        assert_eq!(via.received(), Some("2001:db8::9:255".parse().expect("ip")));
        assert_eq!(via.rport(), Some(Rport::Requested));
        assert_eq!(via.to_string(), text);
        assert_eq!(via.to_string().parse::<Via>(), Ok(via));

        let via: Via = "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255"
            .parse()
            .expect("bare v6");
        assert_eq!(via.received(), Some("2001:db8::9:255".parse().expect("ip")));

        assert!(parse_via("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(parse_via("SIP/2.0/UDP").is_err());
        assert!(parse_via("SIP/2.0/UDP 2001:db8::1").is_err());
        assert!(via_sent_by_readable("SIP/2.0/UDP 192.0.2.15;;,;,,"));
    }

    #[test]
    fn stamps_received_and_rport() {
        let source: SocketAddr = "203.0.113.7:40000".parse().expect("addr");
        let stamped = stamp_received(
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport, SIP/2.0/UDP b",
            source,
        );
        assert_eq!(
            stamped.as_deref(),
            Some(
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport=40000;received=203.0.113.7, SIP/2.0/UDP b"
            )
        );
        // Same host, no rport: nothing to add.
        let source: SocketAddr = "10.0.0.1:5060".parse().expect("addr");
        assert_eq!(
            stamp_received("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa", source).as_deref(),
            Some("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa")
        );
        assert_eq!(stamp_received("garbage", source), None);
    }

    #[test]
    fn cseq_and_max_forwards() {
        let cseq = parse_cseq("0009\t INVITE").expect("cseq");
        assert_eq!(cseq.seq, 9);
        assert!(cseq.method.is_invite());
        assert_eq!(
            parse_cseq("36893488147419103232 REGISTER"),
            Err(GrammarError::TooLarge {
                max: u64::from(MAX_CSEQ)
            })
        );
        assert_eq!(
            parse_cseq("2147483648 INVITE"),
            Err(GrammarError::TooLarge {
                max: u64::from(MAX_CSEQ)
            })
        );
        assert!(parse_cseq("1 INVITE x").is_err());
        assert!(parse_cseq("-1 INVITE").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert_eq!(
            parse_max_forwards("300"),
            Err(GrammarError::TooLarge { max: 255 })
        );
        assert_eq!(parse_max_forwards("x"), Err(GrammarError::NotANumber));
    }
}
