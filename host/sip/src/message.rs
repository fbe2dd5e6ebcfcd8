//! SIP messages as they travel on the wire (RFC 3261 §7).
//!
//! A [`Message`] keeps every header field in order with its value as
//! received (after line unfolding), so that a message is forwarded or
//! answered without losing what the peer sent. Typed views of the fields
//! the core needs (Via, CSeq, name-addr headers) are parsed on demand by
//! [`crate::grammar`]; vocabulary types (methods, status codes, transports)
//! come from `rsip`.

use std::fmt;

/// A request method: one of the methods `rsip` knows, or any other token
/// (RFC 3261 §7.1 allows extension methods, which a UAS answers with 501).
/// Not `Hash` because `rsip::Method` is not; key maps by [`Method::as_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// A method defined by RFC 3261 or one of its extensions that `rsip` names.
    Known(rsip::Method),
    /// Any other method token, kept verbatim (methods are case-sensitive).
    Extension(String),
}

/// Every method rsip names.
const KNOWN_METHODS: [rsip::Method; 14] = [
    rsip::Method::Ack,
    rsip::Method::Bye,
    rsip::Method::Cancel,
    rsip::Method::Info,
    rsip::Method::Invite,
    rsip::Method::Message,
    rsip::Method::Notify,
    rsip::Method::Options,
    rsip::Method::PRack,
    rsip::Method::Publish,
    rsip::Method::Refer,
    rsip::Method::Register,
    rsip::Method::Subscribe,
    rsip::Method::Update,
];

/// The wire spelling of one of rsip's methods (RFC 3261 §7.1 and the
/// extensions rsip knows). rsip's own Display upper-cases the variant name,
/// allocating each time, and the SIP core spells a method for every
/// request.
fn known_name(method: rsip::Method) -> &'static str {
    match method {
        rsip::Method::Ack => "ACK",
        rsip::Method::Bye => "BYE",
        rsip::Method::Cancel => "CANCEL",
        rsip::Method::Info => "INFO",
        rsip::Method::Invite => "INVITE",
        rsip::Method::Message => "MESSAGE",
        rsip::Method::Notify => "NOTIFY",
        rsip::Method::Options => "OPTIONS",
        rsip::Method::PRack => "PRACK",
        rsip::Method::Publish => "PUBLISH",
        rsip::Method::Refer => "REFER",
        rsip::Method::Register => "REGISTER",
        rsip::Method::Subscribe => "SUBSCRIBE",
        rsip::Method::Update => "UPDATE",
    }
}

impl Method {
    /// Interprets a method token; the caller has checked it is a `token`.
    /// Methods are case-sensitive (RFC 3261 §7.1): only the canonical
    /// upper-case spelling is a known method.
    pub fn from_token(token: &str) -> Self {
        KNOWN_METHODS
            .into_iter()
            .find(|m| known_name(*m) == token)
            .map_or_else(|| Method::Extension(token.to_owned()), Method::Known)
    }

    /// True for INVITE, whose transactions follow RFC 3261 §17.1.1/§17.2.1.
    pub fn is_invite(&self) -> bool {
        matches!(self, Method::Known(rsip::Method::Invite))
    }

    /// True for ACK, which never gets a response.
    pub fn is_ack(&self) -> bool {
        matches!(self, Method::Known(rsip::Method::Ack))
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Method::Known(m) => std::borrow::Cow::Borrowed(known_name(*m)),
            Method::Extension(token) => std::borrow::Cow::Borrowed(token),
        }
    }
}

impl From<rsip::Method> for Method {
    fn from(method: rsip::Method) -> Self {
        Method::Known(method)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// One header field. The name is stored in its canonical long form
/// (compact forms such as `v` are expanded, RFC 3261 §7.3.3) and compared
/// case-insensitively; the value is the unfolded text with surrounding
/// whitespace trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Canonical field name, e.g. `Via`, `Call-ID`, or the received spelling
    /// for extension headers.
    pub name: String,
    /// The field value, unfolded and trimmed.
    pub value: String,
}

/// The header fields of a message, in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The first field named `name` (case-insensitive, long form).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every field named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Appends a field.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Removes every field named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    /// Replaces every field named `name` by one field with `value`, at the
    /// position of the first one (or at the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self
            .0
            .iter()
            .position(|h| h.name.eq_ignore_ascii_case(name))
        {
            Some(at) => {
                self.0[at].value = value;
                let mut seen = 0usize;
                self.0.retain(|h| {
                    if h.name.eq_ignore_ascii_case(name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name.to_owned(), value),
        }
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no header fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A SIP request (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method of the start line.
    pub method: Method,
    /// The Request-URI as received (validated to be an absolute URI).
    pub uri: String,
    /// Header fields.
    pub headers: Headers,
    /// The body, framed by Content-Length.
    pub body: Vec<u8>,
}

/// A SIP response (RFC 3261 §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100 to 699.
    pub status: u16,
    /// Reason phrase (may be empty, may be any UTF-8).
    pub reason: String,
    /// Header fields.
    pub headers: Headers,
    /// The body, framed by Content-Length.
    pub body: Vec<u8>,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The header fields of either kind of message.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// Writes header fields and the body, fixing Content-Length to the body.
fn write_tail(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.0.iter() {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// A To tag derived from the request's From, Call-ID, CSeq and Via, for
    /// responses sent without keeping state (malformed requests, generic
    /// UAS refusals): a retransmission gets the same tag (RFC 3261
    /// §8.2.6.2 only asks that the tag be unique to this response's
    /// dialog, which these fields identify).
    pub fn stateless_tag(&self) -> String {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        for name in ["From", "Call-ID", "CSeq", "Via"] {
            self.headers.get(name).hash(&mut hasher);
        }
        format!("{:016x}", hasher.finish())
    }

    /// The CANCEL of this INVITE (RFC 3261 §9.1): the same Request-URI,
    /// Call-ID, From, To, Route and top Via, the same CSeq number with
    /// method CANCEL, no body; with a `Reason` (RFC 3326) when given, e.g.
    /// `SIP;cause=200;text="Call completed elsewhere"`. `None` for a request
    /// that is not an INVITE or lacks a header field the CANCEL copies.
    pub fn cancel(&self, reason: Option<&str>) -> Option<Request> {
        if !self.method.is_invite() {
            return None;
        }
        let seq = crate::grammar::parse_cseq(self.headers.get("CSeq")?)
            .ok()?
            .seq;
        let mut headers = Headers::default();
        headers.push("Via", self.headers.get("Via")?);
        for route in self.headers.get_all("Route") {
            headers.push("Route", route);
        }
        headers.push("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            headers.push(name, self.headers.get(name)?);
        }
        headers.push("CSeq", format!("{seq} CANCEL"));
        if let Some(reason) = reason {
            headers.push("Reason", reason);
        }
        Some(Request {
            method: Method::from_token("CANCEL"),
            uri: self.uri.clone(),
            headers,
            body: Vec::new(),
        })
    }

    /// Serializes the request; Content-Length always matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_tail(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// Serializes the response; Content-Length always matches the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_tail(&mut out, &self.headers, &self.body);
        out
    }

    /// The reason phrase the RFCs give a status code (RFC 3261 §21 and the
    /// extensions registered with IANA), or a generic one for its class.
    pub fn default_reason(status: u16) -> &'static str {
        match status {
            100 => "Trying",
            180 => "Ringing",
            181 => "Call Is Being Forwarded",
            182 => "Queued",
            183 => "Session Progress",
            199 => "Early Dialog Terminated",
            200 => "OK",
            202 => "Accepted",
            204 => "No Notification",
            300 => "Multiple Choices",
            301 => "Moved Permanently",
            302 => "Moved Temporarily",
            305 => "Use Proxy",
            380 => "Alternative Service",
            400 => "Bad Request",
            401 => "Unauthorized",
            402 => "Payment Required",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            406 => "Not Acceptable",
            407 => "Proxy Authentication Required",
            408 => "Request Timeout",
            410 => "Gone",
            412 => "Conditional Request Failed",
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            421 => "Extension Required",
            423 => "Interval Too Brief",
            428 => "Use Identity Header",
            429 => "Provide Referrer Identity",
            433 => "Anonymity Disallowed",
            439 => "First Hop Lacks Outbound Support",
            480 => "Temporarily Unavailable",
            481 => "Call/Transaction Does Not Exist",
            482 => "Loop Detected",
            483 => "Too Many Hops",
            484 => "Address Incomplete",
            485 => "Ambiguous",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            489 => "Bad Event",
            491 => "Request Pending",
            493 => "Undecipherable",
            494 => "Security Agreement Required",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            555 => "Push Notification Service Not Supported",
            580 => "Precondition Failure",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            607 => "Unwanted",
            608 => "Rejected",
            _ => match status / 100 {
                1 => "Trying",
                2 => "OK",
                3 => "Redirect",
                4 => "Client Error",
                5 => "Server Error",
                _ => "Global Failure",
            },
        }
    }

    /// Builds a response to `request` per RFC 3261 §8.2.6: Via, From, To,
    /// Call-ID and CSeq copied; a To tag added when `to_tag` is given and the
    /// request's To has none.
    pub fn for_request(request: &Request, status: u16, to_tag: Option<&str>) -> Response {
        let mut headers = Headers::default();
        for h in request.headers.0.iter() {
            let copy = ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|n| h.name.eq_ignore_ascii_case(n));
            if copy {
                headers.push(h.name.clone(), h.value.clone());
            } else if h.name.eq_ignore_ascii_case("To") {
                let value = match to_tag {
                    Some(tag) if !crate::grammar::has_tag(&h.value) => {
                        format!("{};tag={}", h.value, tag)
                    }
                    _ => h.value.clone(),
                };
                headers.push("To", value);
            }
        }
        Response {
            status,
            reason: Response::default_reason(status).to_owned(),
            headers,
            body: Vec::new(),
        }
    }
}

impl From<Request> for Message {
    fn from(request: Request) -> Message {
        Message::Request(request)
    }
}

impl From<Response> for Message {
    fn from(response: Response) -> Message {
        Message::Response(response)
    }
}

impl Message {
    /// Serializes either kind of message.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rsip_method_is_known_by_its_wire_name_and_only_by_it() {
        let all = rsip::Method::all();
        assert_eq!(all.len(), KNOWN_METHODS.len());
        for method in all {
            let wire = method.to_string();
            assert_eq!(known_name(method), wire);
            assert_eq!(Method::from_token(&wire), Method::Known(method));
            assert_eq!(Method::from_token(&wire).as_str(), wire);
            let lower = wire.to_lowercase();
            assert_eq!(Method::from_token(&lower), Method::Extension(lower));
        }
    }
}
