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
//!
//! Rooms: this module (errors, the lexical rules, parameters), `uri`
//! (hosts and URIs, §19.1, §25.1), `headers` (name-addr and Contact, Via,
//! CSeq, Max-Forwards, §20).

mod headers;
mod uri;

pub(crate) use headers::via_sent_by_readable;
pub use headers::{
    CSeq, ContactValue, MAX_CSEQ, NameAddr, Rport, Via, ViaTransport, has_tag, max_forwards,
    parse_contact, parse_cseq, parse_max_forwards, parse_name_addr, parse_name_addr_list,
    parse_via, stamp_received, top_via,
};
pub use uri::{Host, SipUri, Uri, parse_uri};

use std::fmt;

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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

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
