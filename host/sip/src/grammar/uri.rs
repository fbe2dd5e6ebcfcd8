//! Hosts and URIs (RFC 3261 §19.1, §25.1; RFC 5118).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::*;

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
pub(super) fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    if let Ok(addr) = text.parse::<Ipv6Addr>() {
        return Some(addr);
    }
    let (before, v4) = text.split_once(":::")?;
    v4.parse::<Ipv4Addr>().ok()?;
    format!("{before}::{v4}").parse().ok()
}

/// Parses `hostname / IPv4address / IPv6reference`.
pub(super) fn parse_host(text: &str) -> Result<Host, GrammarError> {
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
pub(super) fn parse_ip_param(value: &str) -> Option<IpAddr> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => parse_ipv6(bare).map(IpAddr::V6),
    }
}

pub(super) fn parse_port(digits: &str) -> Result<u16, GrammarError> {
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
