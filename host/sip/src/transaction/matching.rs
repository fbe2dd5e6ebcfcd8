//! Matching (RFC 3261 §17.1.3, §17.2.3) and the messages the layer
//! builds itself: the ACK of a non-2xx final response and the automatic
//! 100 Trying.

use crate::grammar::{self, CSeq, GrammarError, Via};
use crate::message::{Headers, Method, Request, Response};

use super::{TransactionError, is_rfc3261_branch};

// ---------------------------------------------------------------------------
// Matching keys

/// §17.1.3: a response matches the client transaction whose request had the
/// same top Via branch and CSeq method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ClientMatch {
    pub(super) branch: String,
    pub(super) method: String,
}

/// §17.2.3: what identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ServerMatch {
    /// Magic-cookie branch, sent-by (host lower-cased) and method (INVITE
    /// for an ACK).
    Rfc3261 {
        branch: String,
        host: String,
        port: Option<u16>,
        method: String,
    },
    /// RFC 2543 fallback. The To tag is that of the request which created
    /// the transaction; an ACK is matched against it and then checked
    /// against the To tag of the response the transaction sent.
    Rfc2543 {
        uri: String,
        to_tag: Option<String>,
        from_tag: Option<String>,
        call_id: String,
        seq: u32,
        method: String,
        /// The top Via, re-serialized so that spacing does not matter.
        via: String,
    },
}

/// Method name of INVITE, as matching keys store it.
pub(super) const INVITE: &str = "INVITE";

/// The top Via and the CSeq of a message, which every transaction needs.
pub(super) fn transaction_ids(headers: &Headers) -> Result<(Via, CSeq), TransactionError> {
    let via = grammar::top_via(headers).map_err(|source| TransactionError::BadHeader {
        header: "Via",
        source,
    })?;
    let cseq = headers
        .get("CSeq")
        .ok_or(GrammarError::Absent)
        .and_then(grammar::parse_cseq)
        .map_err(|source| TransactionError::BadHeader {
            header: "CSeq",
            source,
        })?;
    Ok((via, cseq))
}

/// The `tag` of a From or To field; none when absent or unreadable.
pub(super) fn header_tag(headers: &Headers, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    grammar::parse_name_addr(value)
        .ok()
        .and_then(|addr| addr.tag().map(str::to_owned))
}

/// The server matching key of `request`, with `method` in place of the
/// request's own (INVITE for ACK and for CANCEL lookups) and `to_tag` as
/// the To tag to match with.
pub(super) fn server_match(
    request: &Request,
    via: &Via,
    cseq: &CSeq,
    method: &str,
    to_tag: Option<String>,
) -> ServerMatch {
    match via.branch() {
        Some(branch) if is_rfc3261_branch(branch) => ServerMatch::Rfc3261 {
            branch: branch.to_owned(),
            host: via.host.to_string().to_ascii_lowercase(),
            port: via.port,
            method: method.to_owned(),
        },
        _ => ServerMatch::Rfc2543 {
            uri: request.uri.clone(),
            to_tag,
            from_tag: header_tag(&request.headers, "From"),
            call_id: request.headers.get("Call-ID").unwrap_or("").to_owned(),
            seq: cseq.seq,
            method: method.to_owned(),
            via: via.to_string(),
        },
    }
}

/// The client matching key of a response; `None` when it cannot match any
/// transaction this layer creates.
pub(super) fn response_match(response: &Response) -> Option<ClientMatch> {
    if !(100..=699).contains(&response.status) {
        return None;
    }
    let (via, cseq) = transaction_ids(&response.headers).ok()?;
    let branch = via.branch().filter(|b| is_rfc3261_branch(b))?;
    Some(ClientMatch {
        branch: branch.to_owned(),
        method: cseq.method.as_str().into_owned(),
    })
}

/// The first Via value of a message, as written.
pub(super) fn top_via_text(headers: &Headers) -> Option<&str> {
    let value = headers.get("Via")?;
    grammar::split_list(value).ok()?.first().copied()
}

/// The ACK for a non-2xx final response to `invite` (§17.1.1.3): same
/// Request-URI, Call-ID, From and CSeq number; To from the response; only
/// the top Via of the INVITE; its Route fields; no body.
pub(super) fn ack_for(invite: &Request, seq: u32, response: &Response) -> Request {
    let mut headers = Headers::default();
    if let Some(via) = top_via_text(&invite.headers) {
        headers.push("Via", via);
    }
    if let Some(max_forwards) = invite.headers.get("Max-Forwards") {
        headers.push("Max-Forwards", max_forwards);
    }
    for route in invite.headers.get_all("Route") {
        headers.push("Route", route);
    }
    if let Some(from) = invite.headers.get("From") {
        headers.push("From", from);
    }
    if let Some(to) = response
        .headers
        .get("To")
        .or_else(|| invite.headers.get("To"))
    {
        headers.push("To", to);
    }
    if let Some(call_id) = invite.headers.get("Call-ID") {
        headers.push("Call-ID", call_id);
    }
    headers.push("CSeq", format!("{seq} ACK"));
    Request {
        method: Method::Known(rsip::Method::Ack),
        uri: invite.uri.clone(),
        headers,
        body: Vec::new(),
    }
}

/// The 100 Trying a server INVITE transaction sends on its own (§8.2.6.1:
/// Timestamp copied, no To tag).
pub(super) fn trying_for(request: &Request) -> Response {
    let mut trying = Response::for_request(request, 100, None);
    if let Some(timestamp) = request.headers.get("Timestamp") {
        trying.headers.push("Timestamp", timestamp);
    }
    trying
}
