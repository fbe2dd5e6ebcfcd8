//! Dialogs (RFC 3261 §12): the state two user agents share for the length
//! of a call, and the rules for requests inside it.
//!
//! A [`Dialog`] is created by the UAS from the request it answers with a
//! tag ([`Dialog::as_uas`], §12.1.1) or by the UAC from a 101–299 response
//! with a To tag ([`Dialog::as_uac`], §12.1.2). It builds the requests this
//! side sends inside it ([`Dialog::request`], [`Dialog::ack`], §12.2.1.1:
//! sequence numbers, Request-URI and Route for loose and strict routers)
//! and checks the requests the other side sends ([`Dialog::receive`],
//! §12.2.2: identity and ordering). Like the rest of the crate it does no
//! I/O: it only reads and produces messages. A dialog kept long and used
//! seldom can be kept as text instead ([`StoredDialog`]).

mod stored;

pub use stored::StoredDialog;

use crate::grammar::{
    ContactValue, NameAddr, Uri, parse_contact, parse_cseq, parse_name_addr, parse_name_addr_list,
};
use crate::message::{Headers, Method, Request, Response};

/// What identifies a dialog on this side (§12): Call-ID, our tag, theirs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (From of our requests, To of theirs).
    pub local_tag: String,
    /// Their tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a request received by this side belongs to: its To tag
    /// is ours, its From tag theirs. `None` when either tag is missing.
    pub fn of_received(request: &Request) -> Option<DialogId> {
        let call_id = request.headers.get("Call-ID")?.trim().to_owned();
        let local_tag = tag_of(&request.headers, "To")?;
        let remote_tag = tag_of(&request.headers, "From")?;
        Some(DialogId {
            call_id,
            local_tag,
            remote_tag,
        })
    }
}

/// Why a dialog could not be created or a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header field the dialog needs is missing or malformed.
    #[error("missing or malformed {0} header field")]
    Header(&'static str),
    /// From (at the UAS) or To (at the UAC) carries no tag.
    #[error("the {0} header field has no tag")]
    NoTag(&'static str),
    /// The Contact is not exactly one URI.
    #[error("a dialog needs exactly one Contact URI")]
    Contact,
    /// Only 101–299 responses with a To tag create dialogs.
    #[error("a {0} response creates no dialog")]
    NotEstablishing(u16),
    /// A request of the other side with a CSeq below the last one (§12.2.2:
    /// answer 500).
    #[error("CSeq {got} is below the dialog's {last}")]
    OutOfOrder {
        /// The request's sequence number.
        got: u32,
        /// The highest seen so far.
        last: u32,
    },
    /// The request belongs to another dialog.
    #[error("the request does not belong to this dialog")]
    Mismatch,
    /// A [`StoredDialog`]'s text is not one that [`Dialog::store`] wrote.
    #[error("a stored dialog's text is damaged")]
    Stored,
}

/// One side's view of a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID and tags.
    pub id: DialogId,
    /// Sequence number of the last request this side sent; `None` until it
    /// sends one (a UAS's dialog starts so).
    pub local_seq: Option<u32>,
    /// Sequence number of the last request the other side sent.
    pub remote_seq: Option<u32>,
    /// The From of this side's requests (with our tag).
    pub local_uri: NameAddr,
    /// The To of this side's requests (with their tag).
    pub remote_uri: NameAddr,
    /// Where this side's requests go: the other side's Contact.
    pub remote_target: Uri,
    /// The proxies this side's requests traverse, in the order they are
    /// traversed.
    pub route_set: Vec<NameAddr>,
    /// Created over SIPS.
    pub secure: bool,
    /// Created by a provisional response and not yet confirmed by a 2xx.
    pub early: bool,
}

impl Dialog {
    /// The UAS side (§12.1.1), created when answering `request` (an INVITE)
    /// with a response that carries `local_tag` in its To. `early` for a
    /// 1xx, not for a 2xx.
    pub fn as_uas(request: &Request, local_tag: &str, early: bool) -> Result<Dialog, DialogError> {
        let call_id = call_id(&request.headers)?;
        let remote_uri = name_addr(&request.headers, "From")?;
        let remote_tag = remote_uri
            .tag()
            .ok_or(DialogError::NoTag("From"))?
            .to_owned();
        let mut local_uri = name_addr(&request.headers, "To")?;
        local_uri.set_param("tag", Some(local_tag.to_owned()));
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: local_tag.to_owned(),
                remote_tag,
            },
            local_seq: None,
            remote_seq: Some(cseq(&request.headers)?),
            local_uri,
            remote_uri,
            remote_target: contact(&request.headers)?,
            route_set: record_route(&request.headers)?,
            secure: request
                .uri
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("sips:")),
            early,
        })
    }

    /// The UAC side (§12.1.2), created by `response` to `request`.
    pub fn as_uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        if !(101..=299).contains(&response.status) {
            return Err(DialogError::NotEstablishing(response.status));
        }
        let remote_uri = name_addr(&response.headers, "To")?;
        let remote_tag = remote_uri
            .tag()
            .ok_or(DialogError::NotEstablishing(response.status))?
            .to_owned();
        let local_uri = name_addr(&request.headers, "From")?;
        let local_tag = local_uri
            .tag()
            .ok_or(DialogError::NoTag("From"))?
            .to_owned();
        let mut route_set = record_route(&response.headers)?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: call_id(&request.headers)?,
                local_tag,
                remote_tag,
            },
            local_seq: Some(cseq(&request.headers)?),
            remote_seq: None,
            local_uri,
            remote_uri,
            remote_target: contact(&response.headers)?,
            route_set,
            secure: request
                .uri
                .get(..5)
                .is_some_and(|s| s.eq_ignore_ascii_case("sips:")),
            early: response.status < 200,
        })
    }

    /// A 2xx confirmed this early dialog at the UAC: it becomes confirmed,
    /// its route set is recomputed from the 2xx and its target refreshed
    /// (§13.2.2.4).
    pub fn confirm_as_uac(&mut self, response: &Response) -> Result<(), DialogError> {
        if !(200..=299).contains(&response.status) {
            return Err(DialogError::NotEstablishing(response.status));
        }
        let mut route_set = record_route(&response.headers)?;
        route_set.reverse();
        self.remote_target = contact(&response.headers)?;
        self.route_set = route_set;
        self.early = false;
        Ok(())
    }

    /// Takes the remote target from the Contact of a target refresh
    /// (re-INVITE, UPDATE, or their 2xx) once it has been accepted.
    pub fn refresh_target(&mut self, headers: &Headers) -> Result<(), DialogError> {
        self.remote_target = contact(headers)?;
        Ok(())
    }

    /// A request inside the dialog (§12.2.1.1), without Via: the caller's
    /// transaction layer adds it. Takes the next local sequence number.
    /// For ACK of a 2xx use [`Dialog::ack`]; CANCEL belongs to the INVITE
    /// transaction, not to the dialog.
    pub fn request(&mut self, method: Method, local_contact: Option<&str>) -> Request {
        let seq = self.local_seq.map_or(1, |s| s.saturating_add(1));
        self.local_seq = Some(seq);
        self.build(method, seq, local_contact)
    }

    /// The ACK of a 2xx to the INVITE with sequence number `invite_seq`.
    pub fn ack(&self, invite_seq: u32) -> Request {
        self.build(Method::from_token("ACK"), invite_seq, None)
    }

    fn build(&self, method: Method, seq: u32, local_contact: Option<&str>) -> Request {
        let mut headers = Headers::default();
        // Loose routing when the first route says `lr` (or there is none);
        // otherwise the first route becomes the Request-URI and the remote
        // target the last Route (§12.2.1.1).
        let (uri, routes): (String, Vec<String>) = match self.route_set.first() {
            None => (self.remote_target.to_string(), Vec::new()),
            Some(first) if first.uri.as_sip().is_some_and(|u| u.param("lr").is_some()) => (
                self.remote_target.to_string(),
                self.route_set.iter().map(ToString::to_string).collect(),
            ),
            Some(first) => (
                first.uri.to_string(),
                self.route_set
                    .iter()
                    .skip(1)
                    .map(ToString::to_string)
                    .chain(std::iter::once(format!("<{}>", self.remote_target)))
                    .collect(),
            ),
        };
        for route in routes {
            headers.push("Route", route);
        }
        headers.push("Max-Forwards", "70");
        headers.push("From", self.local_uri.to_string());
        headers.push("To", self.remote_uri.to_string());
        headers.push("Call-ID", self.id.call_id.clone());
        headers.push("CSeq", format!("{seq} {}", method.as_str()));
        if let Some(contact) = local_contact {
            headers.push("Contact", contact);
        }
        Request {
            method,
            uri,
            headers,
            body: Vec::new(),
        }
    }

    /// Checks a request the other side sent inside the dialog (§12.2.2):
    /// it must carry this dialog's identity, and its CSeq must not be below
    /// the last one (answer [`DialogError::OutOfOrder`] with 500). Records
    /// its sequence number.
    pub fn receive(&mut self, request: &Request) -> Result<(), DialogError> {
        if DialogId::of_received(request).as_ref() != Some(&self.id) {
            return Err(DialogError::Mismatch);
        }
        let seq = cseq(&request.headers)?;
        if let Some(last) = self.remote_seq
            && seq < last
        {
            return Err(DialogError::OutOfOrder { got: seq, last });
        }
        self.remote_seq = Some(seq);
        Ok(())
    }
}

fn call_id(headers: &Headers) -> Result<String, DialogError> {
    headers
        .get("Call-ID")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(DialogError::Header("Call-ID"))
}

fn name_addr(headers: &Headers, name: &'static str) -> Result<NameAddr, DialogError> {
    headers
        .get(name)
        .and_then(|v| parse_name_addr(v).ok())
        .ok_or(DialogError::Header(name))
}

fn tag_of(headers: &Headers, name: &'static str) -> Option<String> {
    name_addr(headers, name).ok()?.tag().map(str::to_owned)
}

fn cseq(headers: &Headers) -> Result<u32, DialogError> {
    headers
        .get("CSeq")
        .and_then(|v| parse_cseq(v).ok())
        .map(|c| c.seq)
        .ok_or(DialogError::Header("CSeq"))
}

fn contact(headers: &Headers) -> Result<Uri, DialogError> {
    let mut values = headers.get_all("Contact");
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(DialogError::Contact);
    };
    match parse_contact(value).map_err(|_| DialogError::Header("Contact"))? {
        ContactValue::List(mut list) if list.len() == 1 => Ok(list.remove(0).uri),
        _ => Err(DialogError::Contact),
    }
}

fn record_route(headers: &Headers) -> Result<Vec<NameAddr>, DialogError> {
    let mut routes = Vec::new();
    for value in headers.get_all("Record-Route") {
        routes
            .extend(parse_name_addr_list(value).map_err(|_| DialogError::Header("Record-Route"))?);
    }
    Ok(routes)
}
