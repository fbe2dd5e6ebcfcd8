//! SIP messages as the web phone reads and writes them: over a WebSocket
//! one frame is one whole message (RFC 7118), so there is no framing to
//! do, and the peer is always edgepbx. Reading is tolerant (compact header
//! names, any case, folded whitespace trimmed); writing is exact.

/// A request or a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The request's method and URI, or `None` for a response.
    pub request: Option<(String, String)>,
    /// The response's status code (0 for a request).
    pub status: u16,
    /// The response's reason phrase.
    pub reason: String,
    /// Headers in order, names as written.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

/// Long names of the compact forms (RFC 3261 §7.3.3).
fn long_name(name: &str) -> &str {
    match name {
        "v" | "V" => "Via",
        "f" | "F" => "From",
        "t" | "T" => "To",
        "i" | "I" => "Call-ID",
        "m" | "M" => "Contact",
        "l" | "L" => "Content-Length",
        "c" | "C" => "Content-Type",
        "k" | "K" => "Supported",
        other => other,
    }
}

impl Message {
    /// Reads a message; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Message> {
        let (head, body) = match text.split_once("\r\n\r\n") {
            Some((h, b)) => (h, b),
            None => (text.trim_end(), ""),
        };
        let mut lines = head.split("\r\n");
        let first = lines.next()?;
        let (request, status, reason) = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            (None, code.parse().ok()?, reason.to_owned())
        } else {
            let mut parts = first.split(' ');
            let (method, uri, version) = (parts.next()?, parts.next()?, parts.next()?);
            if version != "SIP/2.0" || method.is_empty() {
                return None;
            }
            (Some((method.to_owned(), uri.to_owned())), 0, String::new())
        };
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let (_, value) = headers.last_mut()?;
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((long_name(name.trim()).to_owned(), value.trim().to_owned()));
        }
        Some(Message {
            request,
            status,
            reason,
            headers,
            body: body.to_owned(),
        })
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, comma-separated lists split (but not
    /// inside quotes or angle brackets).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| split_list(v))
            .collect()
    }

    /// Every value of header `name` as written, lists not split (digest
    /// challenges hold commas).
    pub fn values_of(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The method of a request, or of the request a response answers
    /// (from CSeq).
    pub fn method(&self) -> &str {
        match &self.request {
            Some((method, _)) => method,
            None => self.cseq().1,
        }
    }

    /// CSeq's number and method.
    pub fn cseq(&self) -> (u32, &str) {
        let value = self.header("CSeq").unwrap_or_default();
        let (number, method) = value.split_once(' ').unwrap_or((value, ""));
        (number.trim().parse().unwrap_or(0), method.trim())
    }

    /// The `tag` parameter of the From or To header.
    pub fn tag(&self, header: &str) -> Option<String> {
        param(self.header(header)?, "tag")
    }
}

/// Splits a header value at commas outside quotes and angle brackets.
fn split_list(value: &str) -> Vec<String> {
    let (mut out, mut current) = (Vec::new(), String::new());
    let (mut quoted, mut angled) = (false, false);
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            ',' if !quoted && !angled => {
                out.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// Parameter `name` of a header value (after its URI, outside `<>`).
pub fn param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (key, v) = p.split_once('=').unwrap_or((p, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The URI of a name-addr (`"Ann" <sip:100@x>;tag=1`) or addr-spec.
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// What a caller is shown as: the display name, else the URI's user.
pub fn caller_of(value: &str) -> String {
    let name = value
        .split('<')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches('"')
        .trim();
    let uri = uri_of(value);
    let user = uri
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .split(['@', ';'])
        .next()
        .unwrap_or(uri);
    if name.is_empty() || name == user {
        user.to_owned()
    } else {
        format!("{name} ({user})")
    }
}

/// Writes a message: start line, headers, Content-Length, body.
pub fn write(start: &str, headers: &[(&str, String)], body: &str) -> String {
    let mut text = String::with_capacity(512 + body.len());
    text.push_str(start);
    text.push_str("\r\n");
    for (name, value) in headers {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    text.push_str(body);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_and_requests_are_read_with_compact_and_folded_headers() {
        let text = "SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/WSS x.invalid;branch=z9hG4bK1\r\n\
            f: <sip:100@acme.test>;tag=a\r\nTo: <sip:100@acme.test>;tag=b\r\nCSeq: 2 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"acme.test\", nonce=\"n1\", algorithm=SHA-256,\r\n qop=\"auth\"\r\n\
            WWW-Authenticate: Digest realm=\"acme.test\", nonce=\"n2\", algorithm=MD5\r\nl: 0\r\n\r\n";
        let m = Message::parse(text).expect("a response");
        assert_eq!((m.status, m.reason.as_str()), (401, "Unauthorized"));
        assert_eq!(m.cseq(), (2, "REGISTER"));
        assert_eq!(m.method(), "REGISTER");
        assert_eq!(m.tag("To").as_deref(), Some("b"));
        assert_eq!(m.tag("From").as_deref(), Some("a"));
        let challenges: Vec<&str> = m
            .headers
            .iter()
            .filter(|(n, _)| n == "WWW-Authenticate")
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(challenges[0].ends_with("algorithm=SHA-256, qop=\"auth\""));
        let invite = Message::parse(
            "INVITE sip:101@x.invalid;transport=ws SIP/2.0\r\nFrom: \"Ann Smith\" <sip:100@acme.test>;tag=9\r\n\r\nv=0\r\n",
        )
        .expect("a request");
        assert_eq!(invite.method(), "INVITE");
        assert_eq!(invite.body, "v=0\r\n");
        assert_eq!(
            caller_of(invite.header("From").unwrap_or_default()),
            "Ann Smith (100)"
        );
        assert_eq!(caller_of("<sip:100@acme.test>"), "100");
        assert!(Message::parse("hello").is_none());
        assert!(Message::parse("SIP/2.0 abc OK\r\n\r\n").is_none());
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("<sip:a@x;p=1,2>;q=1, \"B, C\" <sip:b@x>"),
            ["<sip:a@x;p=1,2>;q=1", "\"B, C\" <sip:b@x>"]
        );
        assert_eq!(
            param("<sip:a@x;tag=no>;tag=yes", "tag").as_deref(),
            Some("yes")
        );
        assert_eq!(
            param("sip:a@x;expires=60", "expires").as_deref(),
            Some("60")
        );
        assert_eq!(uri_of("\"A\" <sip:a@x>;tag=1"), "sip:a@x");
    }

    #[test]
    fn written_messages_carry_their_length() {
        let text = write("BYE sip:a@x SIP/2.0", &[("CSeq", "3 BYE".into())], "ab");
        assert_eq!(
            text,
            "BYE sip:a@x SIP/2.0\r\nCSeq: 3 BYE\r\nContent-Length: 2\r\n\r\nab"
        );
    }
}
