//! Framing, parsing and validation of SIP messages (RFC 3261 §7, §18.3).
//!
//! Two entry points, one per kind of transport:
//!
//! - [`parse_datagram`]: one message per UDP datagram. Octets after the
//!   body declared by Content-Length are ignored (§18.3); without
//!   Content-Length the body is the rest of the datagram (RFC 2543
//!   compatibility, RFC 4475 §3.4.1).
//! - [`StreamFramer`]: TCP/TLS byte streams, where Content-Length frames
//!   the body (absent means 0). The driver feeds bytes with
//!   [`StreamFramer::handle_bytes`] and drains
//!   [`StreamFramer::poll_message`] until it returns `None`.
//!
//! The parser is our own and deliberately tolerant where RFC 4475 asks for
//! it: any method token, line folding, LWS around separators, compact
//! header names, bare-LF line ends. It is strict where the message would be
//! ambiguous or unsafe to act on, and then reports a [`ParseError`] whose
//! [`ParseError::rejection`] tells the driver whether to answer (and with
//! which status) or drop silently; [`error_response`] builds the answer
//! from whatever headers can be salvaged.
//!
//! Validation (§8.1.1, §8.2): a request needs Via, From, To, Call-ID and
//! CSeq (Max-Forwards and Content-Length are optional for RFC 2543 peers);
//! single-valued fields may not repeat; Via, From, To, Contact, Route,
//! Record-Route and CSeq must parse; the CSeq method must match the request
//! method. Nothing here panics on input, and no parsed number is used as an
//! index before it is checked against the bytes at hand.

use crate::grammar::{self, GrammarError};
use crate::message::{Header, Headers, Message, Method, Request, Response};

/// Resource limits for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (start line, headers and body) accepted, in bytes.
    pub max_message_bytes: usize,
    /// Largest number of header fields (after unfolding) accepted.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 65_535,
            max_headers: 128,
        }
    }
}

/// What to do with a message that failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Answer the request with this status (see [`error_response`]).
    Respond {
        /// 400, 501, 505 or 513.
        status: u16,
    },
    /// Discard silently: responses, ACKs, and bytes that are not
    /// recognisably a SIP request.
    Drop,
}

/// Why a start line is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartLineError {
    /// The start line is not UTF-8 or holds control characters.
    #[error("start line is not text")]
    NotText,
    /// Neither `Method SP ...` nor `SIP/2.0 SP ...`.
    #[error("start line is neither a request line nor a status line")]
    Unrecognised,
    /// A status code that is not three digits from 100 to 699.
    #[error("status code out of range")]
    BadStatus,
    /// No complete start line within the size limit.
    #[error("start line too long")]
    TooLong,
}

/// Why a Content-Length value cannot frame the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentLengthError {
    /// A negative value (RFC 4475 §3.1.2.3).
    #[error("negative")]
    Negative,
    /// Not a decimal number.
    #[error("not a number")]
    NotANumber,
    /// Several Content-Length fields with different values (RFC 4475 §3.3.9).
    #[error("conflicting values")]
    Conflicting,
    /// Larger than any message this parser accepts.
    #[error("too large")]
    TooLarge,
}

/// What is wrong with a message whose start line was understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// The message exceeds [`Limits::max_message_bytes`].
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size of the message (or of what it declares).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More header fields than [`Limits::max_headers`].
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The request line is not `Method SP Request-URI SP SIP/2.0`
    /// (extra or trailing spaces, RFC 4475 §3.1.2.8–10).
    #[error("malformed request line")]
    RequestLine,
    /// The Request-URI is not a valid absolute URI.
    #[error("malformed Request-URI: {0}")]
    RequestUri(GrammarError),
    /// A SIP Request-URI with a headers part (RFC 3261 §19.1.1 table,
    /// RFC 4475 §3.1.2.11).
    #[error("Request-URI carries headers")]
    HeadersInRequestUri,
    /// A header line without a colon, with a name that is not a token, or
    /// a continuation line with nothing to continue.
    #[error("malformed header line {line}")]
    HeaderLine {
        /// 1-based line number in the message (the start line is 1).
        line: usize,
    },
    /// A header line that is not UTF-8.
    #[error("header line {line} is not UTF-8")]
    NotUtf8 {
        /// 1-based line number in the message.
        line: usize,
    },
    /// Content-Length cannot frame the body.
    #[error("invalid Content-Length: {0}")]
    ContentLength(ContentLengthError),
    /// Content-Length is larger than the datagram (RFC 4475 §3.1.2.2).
    #[error("body truncated: Content-Length {declared}, {available} bytes present")]
    Truncated {
        /// The declared length.
        declared: usize,
        /// The bytes present after the header section.
        available: usize,
    },
    /// A mandatory header field is absent (RFC 3261 §8.1.1).
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A single-valued header field appears more than once (RFC 4475 §3.3.8).
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    /// A header field the core relies on does not parse.
    #[error("malformed {name} header: {error}")]
    Header {
        /// Canonical header name.
        name: &'static str,
        /// What is wrong with it.
        error: GrammarError,
    },
    /// The CSeq method differs from the request method (RFC 4475 §3.1.2.17).
    #[error("CSeq method {cseq} differs from the request method")]
    CSeqMismatch {
        /// The method named in CSeq.
        cseq: Method,
    },
}

impl Fault {
    /// The status to answer a request with this fault.
    fn status(&self, method: &Method) -> u16 {
        match self {
            Fault::TooLarge { .. } => 513,
            // RFC 4475 §3.1.2.18: an unknown method with a mismatched CSeq
            // is better answered 501 than 400.
            Fault::CSeqMismatch { .. } if matches!(method, Method::Extension(_)) => 501,
            _ => 400,
        }
    }
}

/// A message that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but line breaks and whitespace.
    #[error("no message")]
    Empty,
    /// The start line is not understood; not even the kind of message is
    /// known.
    #[error("{0}")]
    StartLine(StartLineError),
    /// A SIP version other than 2.0 (RFC 4475 §3.1.2.16).
    #[error("unsupported SIP version")]
    UnsupportedVersion {
        /// The request method, or `None` for a response.
        method: Option<Method>,
    },
    /// A request that fails framing or validation.
    #[error("invalid {method} request: {fault}")]
    Request {
        /// The method of the request line.
        method: Method,
        /// What is wrong.
        fault: Fault,
    },
    /// A response that fails framing or validation; always dropped
    /// (RFC 4475 §3.1.2.5, §3.1.2.19).
    #[error("invalid {status} response: {fault}")]
    Response {
        /// The status code of the status line.
        status: u16,
        /// What is wrong.
        fault: Fault,
    },
}

impl ParseError {
    /// Whether to answer or drop. ACKs and responses are never answered.
    pub fn rejection(&self) -> Rejection {
        match self {
            ParseError::UnsupportedVersion { method: Some(m) } if !m.is_ack() => {
                Rejection::Respond { status: 505 }
            }
            ParseError::Request { method, fault } if !method.is_ack() => Rejection::Respond {
                status: fault.status(method),
            },
            _ => Rejection::Drop,
        }
    }

    /// The request method, when the message was recognisably a request.
    pub fn method(&self) -> Option<&Method> {
        match self {
            ParseError::UnsupportedVersion { method } => method.as_ref(),
            ParseError::Request { method, .. } => Some(method),
            _ => None,
        }
    }

    /// The fault, when the start line was understood.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            ParseError::Request { fault, .. } | ParseError::Response { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

/// Builds the response to a request that failed to parse, from the bytes
/// that were received: Via, From, To, Call-ID and CSeq are copied as far as
/// they can be found, a To tag derived from them is added
/// ([`Request::stateless_tag`]), and a 400's reason phrase says what was
/// wrong (RFC 3261 §21.4.1). `None` when the error calls for a silent drop
/// or when no Via with a readable sent-by can be found (there is nowhere to
/// send the answer, RFC 3261 §18.2.2).
pub fn error_response(bytes: &[u8], error: &ParseError) -> Option<Response> {
    let Rejection::Respond { status } = error.rejection() else {
        return None;
    };
    let method = error.method()?.clone();
    let headers = salvage(bytes);
    if !grammar::via_sent_by_readable(headers.get("Via")?) {
        return None;
    }
    let request = Request {
        method,
        uri: String::new(),
        headers,
        body: Vec::new(),
    };
    let tag = request.stateless_tag();
    let mut response = Response::for_request(&request, status, Some(&tag));
    if let (400, Some(fault)) = (status, error.fault()) {
        // Fault texts name fields and numbers, never received text.
        response.reason = format!("Bad Request ({fault})");
    }
    Some(response)
}

/// Headers of a possibly malformed message, read leniently: every Via, and
/// the first From, To, Call-ID and CSeq. Lines that are not UTF-8 or hold
/// a CR are skipped so that nothing unsafe is echoed.
fn salvage(bytes: &[u8]) -> Headers {
    let data = skip_leading_newlines(bytes);
    let head = match find_head_end(data, 0) {
        Some((end, _)) => data.get(..end).unwrap_or(data),
        None => data,
    };
    let mut fields: Vec<Header> = Vec::new();
    let mut continuable = false;
    for line in head_lines(head).skip(1) {
        let text = match std::str::from_utf8(line) {
            Ok(text) if !line.contains(&b'\r') => text,
            _ => {
                continuable = false;
                continue;
            }
        };
        if text.starts_with([' ', '\t']) {
            if let (true, Some(last)) = (continuable, fields.last_mut()) {
                append_continuation(&mut last.value, text);
            }
            continue;
        }
        continuable = false;
        if let Some((name, value)) = text.split_once(':') {
            let name = name.trim_end_matches([' ', '\t']);
            if grammar::is_token(name) {
                fields.push(Header {
                    name: canonical_name(name),
                    value: trim(value).to_owned(),
                });
                continuable = true;
            }
        }
    }
    let mut out = Headers::default();
    for h in fields.iter().filter(|h| h.name == "Via") {
        out.push("Via", h.value.clone());
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(h) = fields.iter().find(|h| h.name == name) {
            out.push(name, h.value.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Header names

/// Compact forms (RFC 3261 §7.3.3 and the extensions that define one).
const COMPACT: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("f", "From"),
    ("i", "Call-ID"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("s", "Subject"),
    ("t", "To"),
    ("u", "Allow-Events"),
    ("v", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// Well-known names in their canonical spelling.
const WELL_KNOWN: &[&str] = &[
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Transfer-Encoding",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
];

/// The canonical spelling of a header name: compact forms expanded
/// (`v` → `Via`), well-known names normalised (`call-id` → `Call-ID`),
/// other names kept as received.
pub fn canonical_name(name: &str) -> String {
    if name.len() == 1
        && let Some((_, long)) = COMPACT
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(name))
    {
        return (*long).to_owned();
    }
    // Every header of every message comes here: a binary search in the
    // list, which is sorted ignoring case.
    WELL_KNOWN
        .binary_search_by(|known| ignoring_case(known).cmp(ignoring_case(name)))
        .map_or_else(|_| name.to_owned(), |i| WELL_KNOWN[i].to_owned())
}

/// The bytes of `s` folded to lower case, for ordering names.
fn ignoring_case(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().map(|b| b.to_ascii_lowercase())
}

// ---------------------------------------------------------------------------
// Lines and the header section

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn append_continuation(value: &mut String, line: &str) {
    let more = trim(line);
    if !more.is_empty() {
        if !value.is_empty() {
            value.push(' ');
        }
        value.push_str(more);
    }
}

/// Skips the CRLFs (or bare LFs) allowed before a start line (§7.5).
fn skip_leading_newlines(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Finds the empty line that ends the header section, searching from
/// `from`. Returns the length of the header section (including the last
/// header line's terminator) and the offset of the body. Lines may end in
/// CRLF or a bare LF.
fn find_head_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    loop {
        let nl = at + buf.get(at..)?.iter().position(|b| *b == b'\n')?;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some((nl + 1, nl + 2)),
            (Some(b'\r'), Some(b'\n')) => return Some((nl + 1, nl + 3)),
            _ => at = nl + 1,
        }
    }
}

/// The lines of a header section, without their CRLF/LF terminators.
fn head_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    head.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

// ---------------------------------------------------------------------------
// Start line

/// A start line that was understood.
#[derive(Debug, Clone)]
enum Start {
    Request { method: Method, uri: String },
    Response { status: u16, reason: String },
}

impl Start {
    /// Attaches a fault to the kind of message.
    fn fault(&self, fault: Fault) -> ParseError {
        match self {
            Start::Request { method, .. } => ParseError::Request {
                method: method.clone(),
                fault,
            },
            Start::Response { status, .. } => ParseError::Response {
                status: *status,
                fault,
            },
        }
    }

    fn into_message(self, headers: Headers, body: Vec<u8>) -> Message {
        match self {
            Start::Request { method, uri } => Message::Request(Request {
                method,
                uri,
                headers,
                body,
            }),
            Start::Response { status, reason } => Message::Response(Response {
                status,
                reason,
                headers,
                body,
            }),
        }
    }
}

fn is_sip_2_0(version: &[u8]) -> bool {
    version.eq_ignore_ascii_case(b"SIP/2.0")
}

/// `"SIP" "/" 1*DIGIT "." 1*DIGIT`.
fn is_sip_version(version: &[u8]) -> bool {
    let Some(number) = version
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case(b"SIP/"))
        .and(version.get(4..))
    else {
        return false;
    };
    let mut parts = number.split(|b| *b == b'.');
    let digits =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

fn split_once_byte(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == sep)?;
    Some((bytes.get(..at)?, bytes.get(at + 1..)?))
}

fn rsplit_once_byte(bytes: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().rposition(|b| *b == sep)?;
    Some((bytes.get(..at)?, bytes.get(at + 1..)?))
}

fn parse_start(line: &[u8]) -> Result<Start, ParseError> {
    if line
        .iter()
        .any(|b| (*b < b' ' && *b != b'\t') || *b == 0x7f)
    {
        return Err(ParseError::StartLine(StartLineError::NotText));
    }
    let is_response = line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"));
    if is_response {
        parse_status_line(line)
    } else {
        parse_request_line(line)
    }
}

/// `SIP-Version SP Status-Code SP Reason-Phrase`; the reason may be empty
/// (RFC 4475 §3.1.1.13) or any UTF-8 (§3.1.1.12).
fn parse_status_line(line: &[u8]) -> Result<Start, ParseError> {
    let unrecognised = ParseError::StartLine(StartLineError::Unrecognised);
    let (version, rest) = split_once_byte(line, b' ').ok_or(unrecognised.clone())?;
    if !is_sip_2_0(version) {
        return Err(if is_sip_version(version) {
            ParseError::UnsupportedVersion { method: None }
        } else {
            unrecognised
        });
    }
    let (code, reason) = split_once_byte(rest, b' ').unwrap_or((rest, &[]));
    let bad_status = ParseError::StartLine(StartLineError::BadStatus);
    if code.len() != 3 {
        return Err(bad_status);
    }
    let status = std::str::from_utf8(code)
        .ok()
        .and_then(|c| grammar::parse_decimal(c, 699).ok())
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| *s >= 100)
        .ok_or(bad_status)?;
    let reason =
        std::str::from_utf8(reason).map_err(|_| ParseError::StartLine(StartLineError::NotText))?;
    Ok(Start::Response {
        status,
        reason: reason.to_owned(),
    })
}

/// `Method SP Request-URI SP SIP-Version`, with exactly one SP between the
/// elements (RFC 4475 §3.1.2.9 and §3.1.2.10 are rejected).
fn parse_request_line(line: &[u8]) -> Result<Start, ParseError> {
    let (method, rest) =
        split_once_byte(line, b' ').ok_or(ParseError::StartLine(StartLineError::Unrecognised))?;
    let method = std::str::from_utf8(method)
        .ok()
        .filter(|m| grammar::is_token(m))
        .map(Method::from_token)
        .ok_or(ParseError::StartLine(StartLineError::Unrecognised))?;
    let fault = |fault: Fault| ParseError::Request {
        method: method.clone(),
        fault,
    };
    let (uri, version) = rsplit_once_byte(rest, b' ').ok_or_else(|| fault(Fault::RequestLine))?;
    if !is_sip_2_0(version) {
        return Err(if is_sip_version(version) {
            ParseError::UnsupportedVersion {
                method: Some(method.clone()),
            }
        } else {
            fault(Fault::RequestLine)
        });
    }
    let uri = std::str::from_utf8(uri)
        .ok()
        .filter(|u| !u.is_empty() && !u.contains([' ', '\t']))
        .ok_or_else(|| fault(Fault::RequestLine))?;
    match grammar::parse_uri(uri) {
        Ok(grammar::Uri::Sip(sip)) if sip.headers().is_some() => {
            Err(fault(Fault::HeadersInRequestUri))
        }
        Ok(_) => Ok(Start::Request {
            method: method.clone(),
            uri: uri.to_owned(),
        }),
        Err(error) => Err(fault(Fault::RequestUri(error))),
    }
}

// ---------------------------------------------------------------------------
// Header fields, framing and validation

/// A parsed header section.
#[derive(Debug, Clone)]
struct Head {
    start: Start,
    headers: Headers,
}

/// Parses the start line and header fields of a header section.
/// `message_len` is checked against the size limit once the kind of message
/// is known.
fn parse_head(head: &[u8], limits: &Limits, message_len: usize) -> Result<Head, ParseError> {
    let mut lines = head_lines(head);
    let start = parse_start(lines.next().ok_or(ParseError::Empty)?)?;
    if message_len > limits.max_message_bytes {
        return Err(start.fault(Fault::TooLarge {
            size: message_len,
            limit: limits.max_message_bytes,
        }));
    }
    let headers = parse_fields(lines, limits).map_err(|fault| start.fault(fault))?;
    Ok(Head { start, headers })
}

fn parse_fields<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    limits: &Limits,
) -> Result<Headers, Fault> {
    let mut headers = Headers::default();
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        if line.contains(&b'\r') {
            return Err(Fault::HeaderLine { line: number });
        }
        let text = std::str::from_utf8(line).map_err(|_| Fault::NotUtf8 { line: number })?;
        if text.starts_with([' ', '\t']) {
            // Folded line (§7.3.1): continues the previous field.
            let last = headers
                .0
                .last_mut()
                .ok_or(Fault::HeaderLine { line: number })?;
            append_continuation(&mut last.value, text);
            continue;
        }
        let (name, value) = text
            .split_once(':')
            .ok_or(Fault::HeaderLine { line: number })?;
        let name = name.trim_end_matches([' ', '\t']);
        if !grammar::is_token(name) {
            return Err(Fault::HeaderLine { line: number });
        }
        if headers.len() >= limits.max_headers {
            return Err(Fault::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        headers.push(canonical_name(name), trim(value));
    }
    Ok(headers)
}

/// The body length declared by Content-Length, if any. Repeated fields
/// must agree; a negative or non-numeric value is a framing error.
fn content_length(headers: &Headers) -> Result<Option<usize>, Fault> {
    let mut declared = None;
    for value in headers.get_all("Content-Length") {
        let value = trim(value);
        let n = if value.starts_with('-') {
            Err(ContentLengthError::Negative)
        } else {
            match grammar::parse_decimal(value, u64::MAX) {
                Ok(n) => usize::try_from(n).map_err(|_| ContentLengthError::TooLarge),
                Err(GrammarError::TooLarge { .. }) => Err(ContentLengthError::TooLarge),
                Err(_) => Err(ContentLengthError::NotANumber),
            }
        }
        .map_err(Fault::ContentLength)?;
        if declared.is_some_and(|d| d != n) {
            return Err(Fault::ContentLength(ContentLengthError::Conflicting));
        }
        declared = Some(n);
    }
    Ok(declared)
}

/// Header fields that may appear at most once (RFC 3261 §7.3.1, §20).
const SINGLE_VALUED: [&str; 6] = [
    "Call-ID",
    "To",
    "From",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
];

/// Header fields every request and response carries (RFC 3261 §8.1.1).
const MANDATORY: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];

fn check<T>(name: &'static str, result: Result<T, GrammarError>) -> Result<T, Fault> {
    result.map_err(|error| Fault::Header { name, error })
}

/// The header checks that decide between accepting a framed message and
/// rejecting it.
fn validate(start: &Start, headers: &Headers) -> Result<(), Fault> {
    if let Some(name) = SINGLE_VALUED
        .into_iter()
        .find(|n| headers.get_all(n).nth(1).is_some())
    {
        return Err(Fault::Duplicate(name));
    }
    if let Some(name) = MANDATORY.into_iter().find(|n| headers.get(n).is_none()) {
        return Err(Fault::Missing(name));
    }
    for value in headers.get_all("Via") {
        check("Via", grammar::parse_via(value))?;
    }
    for name in ["From", "To"] {
        for value in headers.get_all(name) {
            check(name, grammar::parse_name_addr(value))?;
        }
    }
    for value in headers.get_all("Call-ID") {
        if let Some(at) = value.find([' ', '\t']) {
            return Err(Fault::Header {
                name: "Call-ID",
                error: GrammarError::Unexpected { at },
            });
        }
        if value.is_empty() {
            return Err(Fault::Header {
                name: "Call-ID",
                error: GrammarError::Empty,
            });
        }
    }
    for value in headers.get_all("Contact") {
        check("Contact", grammar::parse_contact(value))?;
    }
    for name in ["Route", "Record-Route"] {
        for value in headers.get_all(name) {
            check(name, grammar::parse_name_addr_list(value))?;
        }
    }
    for value in headers.get_all("Max-Forwards") {
        match grammar::parse_max_forwards(value) {
            // RFC 4475 §3.1.2.4: an overlarge Max-Forwards alone may be
            // treated as absent; `grammar::max_forwards` does that.
            Ok(_) | Err(GrammarError::TooLarge { .. }) => {}
            Err(error) => {
                return Err(Fault::Header {
                    name: "Max-Forwards",
                    error,
                });
            }
        }
    }
    let mut cseq = None;
    for value in headers.get_all("CSeq") {
        cseq = Some(check("CSeq", grammar::parse_cseq(value))?);
    }
    if let (Start::Request { method, .. }, Some(cseq)) = (start, cseq)
        && cseq.method != *method
    {
        return Err(Fault::CSeqMismatch { cseq: cseq.method });
    }
    Ok(())
}

/// Parses one SIP message carried in one UDP datagram (RFC 3261 §18.3).
///
/// CRLFs before the start line are skipped. Octets after the declared body
/// are ignored; without Content-Length the body is the rest of the
/// datagram. A datagram whose header section is not closed by an empty
/// line is read as headers only.
pub fn parse_datagram(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    let data = skip_leading_newlines(bytes);
    if data.iter().all(|b| b" \t\r\n\0".contains(b)) {
        return Err(ParseError::Empty);
    }
    let (head, rest) = match find_head_end(data, 0) {
        Some((head_end, body_start)) => (
            data.get(..head_end).unwrap_or(data),
            data.get(body_start..).unwrap_or_default(),
        ),
        None => (data, &[][..]),
    };
    let Head { start, headers } = parse_head(head, limits, bytes.len())?;
    let declared = content_length(&headers).map_err(|fault| start.fault(fault))?;
    let body = match declared {
        Some(n) => rest.get(..n).ok_or_else(|| {
            start.fault(Fault::Truncated {
                declared: n,
                available: rest.len(),
            })
        })?,
        None => rest,
    };
    validate(&start, &headers).map_err(|fault| start.fault(fault))?;
    Ok(start.into_message(headers, body.to_vec()))
}

// ---------------------------------------------------------------------------
// Streams

/// What a [`StreamFramer`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A complete, valid message.
    Message(Message),
    /// A double-CRLF keepalive ping (RFC 5626 §3.5.1): the driver answers
    /// with a single CRLF ("pong") on the same connection.
    Ping,
}

/// Frames SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3).
///
/// Sans-IO: the driver passes received bytes to
/// [`handle_bytes`](Self::handle_bytes) and then calls
/// [`poll_message`](Self::poll_message) until it returns `None` (the drain
/// rule: the framer buffers at most one incomplete message plus what was
/// handed in since the last drain).
///
/// - `Some(Ok(Framed::Message(_)))`: a message.
/// - `Some(Ok(Framed::Ping))`: answer `"\r\n"`.
/// - `Some(Err(error))`: a message was rejected. Its bytes are in
///   [`rejected_bytes`](Self::rejected_bytes), for [`error_response`]. If
///   [`is_broken`](Self::is_broken) is then true the error was a framing
///   error (bad or missing end of the header section, bad Content-Length,
///   over the size limit): message boundaries are lost, the framer stops,
///   and the driver closes the connection after sending any answer.
///   Otherwise the stream continues with the next message.
///
/// Content-Length is required on streams; a message without one has an
/// empty body. Single CRLFs between messages are skipped (§7.5).
#[derive(Debug)]
pub struct StreamFramer {
    limits: Limits,
    /// Received bytes not yet framed.
    buf: Vec<u8>,
    /// How far `buf` has been searched for the end of the header section,
    /// so that byte-by-byte input is not rescanned from the start.
    scanned: usize,
    /// The parsed header section of a message whose body is still arriving,
    /// with the body's offset and the message's total length.
    pending: Option<(Head, usize, usize)>,
    /// Set by a framing error: the stream cannot be resynchronised.
    broken: bool,
    /// Bytes of the last rejected message, for building the error response.
    rejected: Vec<u8>,
}

impl StreamFramer {
    /// A framer for one connection.
    pub fn new(limits: Limits) -> Self {
        StreamFramer {
            limits,
            buf: Vec::new(),
            scanned: 0,
            pending: None,
            broken: false,
            rejected: Vec::new(),
        }
    }

    /// Appends received bytes. Ignored once the framer is broken.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// True after a framing error: the driver must close the connection.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The bytes of the message behind the last `Some(Err(_))` (for a
    /// framing error: the complete lines received, bounded by the size
    /// limit). Pass them to [`error_response`].
    pub fn rejected_bytes(&self) -> &[u8] {
        &self.rejected
    }

    /// Produces the next message, ping or error; `None` when more bytes are
    /// needed (or the framer is broken). See the type docs for the drain
    /// rule.
    pub fn poll_message(&mut self) -> Option<Result<Framed, ParseError>> {
        if self.broken {
            return None;
        }
        if self.pending.is_none() {
            if let Some(ping) = self.skip_keepalives() {
                return Some(ping);
            }
            if self.buf.is_empty() || b"\r\n\r\n".starts_with(&self.buf) {
                return None;
            }
            // Only the first `max_message_bytes + 1` bytes are searched,
            // so the outcome does not depend on how the stream was chunked.
            let window_len = self
                .buf
                .len()
                .min(self.limits.max_message_bytes.saturating_add(1));
            let window = self.buf.get(..window_len).unwrap_or_default();
            let Some((head_end, body_start)) = find_head_end(window, self.scanned) else {
                if self.buf.len() > self.limits.max_message_bytes {
                    let error = self.unframed_error(window);
                    let complete = window
                        .iter()
                        .rposition(|b| *b == b'\n')
                        .map_or(0, |nl| nl + 1);
                    return Some(Err(self.fail(error, complete)));
                }
                self.scanned = self.buf.len().saturating_sub(3);
                return None;
            };
            let head_bytes = self.buf.get(..head_end).unwrap_or_default();
            let head = match parse_head(head_bytes, &self.limits, head_end) {
                Ok(head) => head,
                Err(error) => return Some(Err(self.fail(error, head_end))),
            };
            let declared = match content_length(&head.headers) {
                Ok(declared) => declared.unwrap_or(0),
                Err(fault) => return Some(Err(self.fail(head.start.fault(fault), head_end))),
            };
            let total = body_start.saturating_add(declared);
            if total > self.limits.max_message_bytes {
                let fault = Fault::TooLarge {
                    size: total,
                    limit: self.limits.max_message_bytes,
                };
                return Some(Err(self.fail(head.start.fault(fault), head_end)));
            }
            self.pending = Some((head, body_start, total));
        }
        let total = self.pending.as_ref().map_or(0, |(_, _, total)| *total);
        if self.buf.len() < total {
            return None;
        }
        let (Head { start, headers }, body_start, total) = self.pending.take()?;
        let body = self.buf.get(body_start..total).unwrap_or_default().to_vec();
        let result = match validate(&start, &headers) {
            Ok(()) => Ok(Framed::Message(start.into_message(headers, body))),
            Err(fault) => {
                self.rejected = self.buf.get(..total).unwrap_or_default().to_vec();
                Err(start.fault(fault))
            }
        };
        self.consume(total);
        Some(result)
    }

    /// Skips CRLFs between messages and reports a double-CRLF ping.
    fn skip_keepalives(&mut self) -> Option<Result<Framed, ParseError>> {
        loop {
            if self.buf.starts_with(b"\r\n\r\n") {
                self.consume(4);
                return Some(Ok(Framed::Ping));
            }
            // A CRLF is skipped once the next byte shows it does not start
            // a ping.
            let after = self.buf.get(2).copied();
            if self.buf.starts_with(b"\r\n")
                && after.is_some_and(|b| b != b'\r' || self.buf.len() >= 4)
            {
                self.consume(2);
            } else if self.buf.starts_with(b"\n") {
                self.consume(1);
            } else {
                // Possibly the start of a ping that is still arriving, or a
                // message.
                return None;
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
        self.scanned = 0;
    }

    /// The error for a header section that does not end within the limit
    /// (`window` holds the first `max_message_bytes + 1` bytes).
    fn unframed_error(&self, window: &[u8]) -> ParseError {
        let first_line = window
            .iter()
            .position(|b| *b == b'\n')
            .and_then(|nl| window.get(..nl));
        match first_line.map(|line| parse_start(line.strip_suffix(b"\r").unwrap_or(line))) {
            Some(Ok(start)) => start.fault(Fault::TooLarge {
                size: window.len(),
                limit: self.limits.max_message_bytes,
            }),
            Some(Err(error)) => error,
            None => ParseError::StartLine(StartLineError::TooLong),
        }
    }

    /// Marks the stream broken and keeps the first `keep` bytes (complete
    /// lines of the offending message) for the error response.
    fn fail(&mut self, error: ParseError, keep: usize) -> ParseError {
        self.broken = true;
        self.buf.truncate(keep);
        self.rejected = std::mem::take(&mut self.buf);
        self.pending = None;
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:user@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n\
        To: sip:user@example.com\r\n\
        From: sip:caller@example.net;tag=1\r\n\
        Call-ID: abc@example.net\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    fn request(bytes: &[u8]) -> Request {
        match parse_datagram(bytes, &Limits::default()) {
            Ok(Message::Request(request)) => request,
            other => panic!("{other:?}"),
        }
    }

    fn err(bytes: &[u8]) -> ParseError {
        match parse_datagram(bytes, &Limits::default()) {
            Err(error) => error,
            Ok(message) => panic!("accepted {message:?}"),
        }
    }

    fn replace(from: &str, to: &str) -> Vec<u8> {
        edit(OPTIONS, from, to)
    }

    fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        String::from_utf8_lossy(bytes)
            .replace(from, to)
            .into_bytes()
    }

    #[test]
    fn parses_a_plain_request() {
        let r = request(OPTIONS);
        assert_eq!(r.method, Method::Known(rsip::Method::Options));
        assert_eq!(r.uri, "sip:user@example.com");
        assert_eq!(r.headers.len(), 6);
        assert!(r.body.is_empty());
    }

    #[test]
    fn expands_compact_names_and_unfolds() {
        let bytes = replace(
            "To: sip:user@example.com\r\n",
            "t :\r\n sip:user@example.com\r\n\tX\r\n",
        )
        .into_iter()
        .collect::<Vec<u8>>();
        let bytes = String::from_utf8_lossy(&bytes)
            .replace("X\r\n", ";tag=9\r\nv: SIP/2.0/TCP b\r\ncall-info: x\r\n");
        let r = request(bytes.as_bytes());
        assert_eq!(r.headers.get("To"), Some("sip:user@example.com ;tag=9"));
        assert_eq!(r.headers.get_all("Via").count(), 2);
        assert!(r.headers.0.iter().any(|h| h.name == "Call-Info"));
        assert_eq!(canonical_name("WWW-authenticate"), "WWW-Authenticate");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
        assert_eq!(canonical_name("x"), "Session-Expires");
        assert_eq!(canonical_name("cseq"), "CSeq");
        assert!(
            WELL_KNOWN.is_sorted_by(|a, b| ignoring_case(a).lt(ignoring_case(b))),
            "WELL_KNOWN must stay sorted ignoring case, for the binary search"
        );
        for known in WELL_KNOWN {
            assert_eq!(canonical_name(&known.to_uppercase()), *known);
        }
    }

    #[test]
    fn accepts_bare_lf_and_leading_crlf() {
        let lf = String::from_utf8_lossy(OPTIONS).replace("\r\n", "\n");
        request(lf.as_bytes());
        let mut leading = b"\r\n\r\n".to_vec();
        leading.extend_from_slice(OPTIONS);
        request(&leading);
        assert_eq!(err(b"\r\n\r\n"), ParseError::Empty);
    }

    #[test]
    fn datagram_body_framing() {
        let with_body = replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 4\r\n\r\nbodytrailing",
        );
        assert_eq!(request(&with_body).body, b"body");
        let no_length = replace("Content-Length: 0\r\n\r\n", "\r\nrest of datagram");
        assert_eq!(request(&no_length).body, b"rest of datagram");
        let truncated = replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 99\r\n\r\nshort",
        );
        assert_eq!(
            err(&truncated).rejection(),
            Rejection::Respond { status: 400 }
        );
        let negative = replace("Content-Length: 0", "Content-Length: -1");
        assert!(matches!(
            err(&negative).fault(),
            Some(Fault::ContentLength(ContentLengthError::Negative))
        ));
        let conflicting = replace("Content-Length: 0", "Content-Length: 0\r\nl: 1");
        assert!(matches!(
            err(&conflicting).fault(),
            Some(Fault::ContentLength(ContentLengthError::Conflicting))
        ));
        let huge = replace(
            "Content-Length: 0",
            "Content-Length: 99999999999999999999999",
        );
        assert!(matches!(
            err(&huge).fault(),
            Some(Fault::ContentLength(ContentLengthError::TooLarge))
        ));
    }

    #[test]
    fn start_line_errors() {
        let e = err(&replace(
            "OPTIONS sip:user@example.com SIP/2.0",
            "OPTIONS sip:user@example.com SIP/3.0",
        ));
        assert_eq!(e.rejection(), Rejection::Respond { status: 505 });
        let e = err(&replace(
            "OPTIONS sip:user@example.com SIP/2.0",
            "OPTIONS sip:user@example.com HTTP/1.1",
        ));
        assert_eq!(e.fault(), Some(&Fault::RequestLine));
        let e = err(b"SIP/2.0 700 Too Big\r\n\r\n");
        assert_eq!(e, ParseError::StartLine(StartLineError::BadStatus));
        assert_eq!(e.rejection(), Rejection::Drop);
        let e = err(b"\x01\x02\x03");
        assert_eq!(e.rejection(), Rejection::Drop);
        let ack = edit(&replace("OPTIONS sip", "ACK sip"), "1 OPTIONS", "1 ACK");
        let e = err(&edit(
            &ack,
            "sip:user@example.com SIP",
            "sip:user@example.com?a=b SIP",
        ));
        assert_eq!(e.fault(), Some(&Fault::HeadersInRequestUri));
        assert_eq!(e.rejection(), Rejection::Drop, "never answer an ACK");
    }

    #[test]
    fn validation_errors_and_responses() {
        let e = err(&replace("Call-ID: abc@example.net\r\n", ""));
        assert_eq!(e.fault(), Some(&Fault::Missing("Call-ID")));
        let response =
            error_response(&replace("Call-ID: abc@example.net\r\n", ""), &e).expect("a 400");
        assert_eq!(response.status, 400);
        assert_eq!(response.reason, "Bad Request (missing Call-ID header)");
        assert_eq!(
            response.headers.get("Via"),
            Some("SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw")
        );
        assert!(grammar::has_tag(response.headers.get("To").expect("To")));

        let e = err(&replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"));
        assert_eq!(e.rejection(), Rejection::Respond { status: 400 });
        let e = err(&edit(
            &replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
            "OPTIONS sip",
            "FOO sip",
        ));
        assert_eq!(e.rejection(), Rejection::Respond { status: 501 });

        let no_via = replace(
            "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n",
            "",
        );
        let e = err(&no_via);
        assert_eq!(e.fault(), Some(&Fault::Missing("Via")));
        assert_eq!(error_response(&no_via, &e), None);

        let response_bytes = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCSeq: 1 INVITE\r\n\r\n";
        let e = err(response_bytes);
        assert_eq!(e.rejection(), Rejection::Drop);
        assert_eq!(error_response(response_bytes, &e), None);
    }

    #[test]
    fn limits() {
        let small = Limits {
            max_message_bytes: 100,
            max_headers: 128,
        };
        let e = parse_datagram(OPTIONS, &small).expect_err("too large");
        assert_eq!(e.rejection(), Rejection::Respond { status: 513 });
        let few = Limits {
            max_message_bytes: 65_535,
            max_headers: 3,
        };
        let e = parse_datagram(OPTIONS, &few).expect_err("too many headers");
        assert_eq!(e.fault(), Some(&Fault::TooManyHeaders { limit: 3 }));
    }

    #[test]
    fn stream_frames_pipelined_messages_and_pings() {
        let mut framer = StreamFramer::new(Limits::default());
        let mut input = b"\r\n\r\n".to_vec();
        input.extend_from_slice(OPTIONS);
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&replace(
            "Content-Length: 0\r\n\r\n",
            "Content-Length: 3\r\n\r\nabc",
        ));
        let mut seen = Vec::new();
        for byte in &input {
            framer.handle_bytes(std::slice::from_ref(byte));
            while let Some(out) = framer.poll_message() {
                match out {
                    Ok(Framed::Ping) => seen.push("ping".to_owned()),
                    Ok(Framed::Message(Message::Request(r))) => {
                        seen.push(String::from_utf8_lossy(&r.body).into_owned())
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(seen, ["ping", "", "abc"]);
        assert_eq!(framer.buffered(), 0);
        assert!(!framer.is_broken());
    }

    #[test]
    fn stream_ping_then_message() {
        let mut framer = StreamFramer::new(Limits::default());
        framer.handle_bytes(b"\r\n");
        assert_eq!(framer.poll_message(), None);
        framer.handle_bytes(b"\r\n");
        assert_eq!(framer.poll_message(), Some(Ok(Framed::Ping)));
        framer.handle_bytes(b"\r\n");
        framer.handle_bytes(OPTIONS);
        assert!(matches!(
            framer.poll_message(),
            Some(Ok(Framed::Message(_)))
        ));
        assert_eq!(framer.poll_message(), None);
    }

    #[test]
    fn stream_errors() {
        // A validation error keeps the stream usable.
        let mut framer = StreamFramer::new(Limits::default());
        framer.handle_bytes(&replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"));
        framer.handle_bytes(OPTIONS);
        let e = framer
            .poll_message()
            .expect("output")
            .expect_err("mismatch");
        assert!(error_response(framer.rejected_bytes(), &e).is_some());
        assert!(!framer.is_broken());
        assert!(matches!(
            framer.poll_message(),
            Some(Ok(Framed::Message(_)))
        ));

        // A framing error breaks it.
        let mut framer = StreamFramer::new(Limits::default());
        framer.handle_bytes(&replace("Content-Length: 0", "Content-Length: -999"));
        let e = framer
            .poll_message()
            .expect("output")
            .expect_err("negative");
        assert!(framer.is_broken());
        assert_eq!(
            error_response(framer.rejected_bytes(), &e).map(|r| r.status),
            Some(400)
        );
        assert_eq!(framer.poll_message(), None);

        // So does a header section that never ends.
        let limits = Limits {
            max_message_bytes: 200,
            max_headers: 128,
        };
        let mut framer = StreamFramer::new(limits.clone());
        framer.handle_bytes(b"OPTIONS sip:a@b SIP/2.0\r\n");
        for _ in 0..20 {
            framer.handle_bytes(b"X-Filler: yyyyyyyyyyyy\r\n");
        }
        let e = framer
            .poll_message()
            .expect("output")
            .expect_err("too large");
        assert_eq!(e.rejection(), Rejection::Respond { status: 513 });
        assert!(framer.is_broken());

        // And a body larger than the limit is refused before it arrives.
        let mut framer = StreamFramer::new(limits);
        framer.handle_bytes(&replace("Content-Length: 0", "Content-Length: 100000"));
        assert!(framer.poll_message().expect("output").is_err());
        assert!(framer.is_broken());
    }
}
