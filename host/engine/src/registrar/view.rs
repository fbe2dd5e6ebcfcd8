//! The registrar's reading of a REGISTER: the address of record, the
//! Contact values, Expires and CSeq, through the typed views of
//! `edgepbx_sip::grammar`; and the Contact values of the 200.

use std::time::Instant;

use edgepbx_model::registrations::{
    MAX_CALL_ID_BYTES, MAX_CONTACT_BYTES, MAX_USER_AGENT_CHARS, is_qvalue,
};
use edgepbx_sip::Request;
use edgepbx_sip::grammar::{self, ContactValue, GrammarError, NameAddr};

use super::location::{Binding, ContactSpec, Contacts};

/// Why a REGISTER cannot be read (answered with 400).
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A header field did not parse.
    #[error("{field}: {source}")]
    Grammar {
        /// The header field.
        field: &'static str,
        /// What was wrong.
        source: GrammarError,
    },
    /// The To URI is not a SIP or SIPS address with a user part (RFC 3261
    /// §10.3 step 3; RFC 4475 §3.3.4).
    #[error("To must be a sip: or sips: address of record with a user part")]
    NotAnAor,
    /// `*` mixed with other Contact values.
    #[error("Contact: * must be the only contact")]
    MixedStar,
    /// A contact URI or instance id longer than [`MAX_CONTACT_BYTES`].
    #[error("Contact: a URI or +sip.instance longer than {MAX_CONTACT_BYTES} bytes")]
    ContactTooLong,
    /// A `q` that is not a qvalue (0 to 1, three decimals at most).
    #[error("Contact: q must be 0 to 1 with three decimals at most")]
    BadQ,
    /// No Call-ID, or one longer than [`MAX_CALL_ID_BYTES`].
    #[error("Call-ID must be 1 to {MAX_CALL_ID_BYTES} bytes")]
    BadCallId,
}

fn grammar(field: &'static str) -> impl FnOnce(GrammarError) -> ViewError {
    move |source| ViewError::Grammar { field, source }
}

/// The user part (unescaped) and host of the To header field.
pub fn aor(request: &Request) -> Result<(String, String), ViewError> {
    let to = request.headers.get("To").ok_or(ViewError::Grammar {
        field: "To",
        source: GrammarError::Absent,
    })?;
    let to = grammar::parse_name_addr(to).map_err(grammar("To"))?;
    let sip = to.uri.as_sip().ok_or(ViewError::NotAnAor)?;
    let user = sip.user_unescaped().ok_or(ViewError::NotAnAor)?;
    let user = String::from_utf8(user.to_vec()).map_err(|_| ViewError::NotAnAor)?;
    Ok((user, sip.host().to_string()))
}

/// The Contact header fields of a REGISTER.
pub fn contacts(request: &Request) -> Result<Contacts, ViewError> {
    let mut star = false;
    let mut list = Vec::new();
    for value in request.headers.get_all("Contact") {
        match grammar::parse_contact(value).map_err(grammar("Contact"))? {
            ContactValue::Star => star = true,
            ContactValue::List(values) => {
                for value in values.iter().map(spec) {
                    let too_long = |text: &str| text.len() > MAX_CONTACT_BYTES;
                    if too_long(&value.uri) || value.instance.as_deref().is_some_and(too_long) {
                        return Err(ViewError::ContactTooLong);
                    }
                    if value.q.as_deref().is_some_and(|q| !is_qvalue(q)) {
                        return Err(ViewError::BadQ);
                    }
                    list.push(value);
                }
            }
        }
    }
    match (star, list.is_empty()) {
        (true, true) => Ok(Contacts::Star),
        (true, false) => Err(ViewError::MixedStar),
        (false, true) => Ok(Contacts::Query),
        (false, false) => Ok(Contacts::List(list)),
    }
}

fn spec(value: &NameAddr) -> ContactSpec {
    ContactSpec {
        uri: value.uri.to_string(),
        expires: value.expires(),
        q: value.param("q").and_then(|p| p.value.clone()),
        instance: value
            .param("+sip.instance")
            .and_then(|p| p.unquoted_value()),
        reg_id: value
            .param("reg-id")
            .and_then(|p| p.value.as_deref())
            .and_then(|v| v.parse().ok()),
    }
}

/// The Call-ID, which a binding keeps.
pub fn call_id(request: &Request) -> Result<&str, ViewError> {
    match request.headers.get("Call-ID") {
        Some(id) if !id.is_empty() && id.len() <= MAX_CALL_ID_BYTES => Ok(id),
        _ => Err(ViewError::BadCallId),
    }
}

/// The User-Agent, cut to [`MAX_USER_AGENT_CHARS`].
pub fn user_agent(request: &Request) -> Option<String> {
    request
        .headers
        .get("User-Agent")
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect())
}

/// The Expires header field; values beyond `u32` saturate (the registrar
/// clamps them to its maximum, RFC 4475 §3.1.2.4).
pub fn expires(request: &Request) -> Result<Option<u32>, ViewError> {
    let Some(value) = request.headers.get("Expires") else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ViewError::Grammar {
            field: "Expires",
            source: GrammarError::NotANumber,
        });
    }
    Ok(Some(value.parse().unwrap_or(u32::MAX)))
}

/// The CSeq number (the parser has validated the header).
pub fn cseq(request: &Request) -> u32 {
    request
        .headers
        .get("CSeq")
        .and_then(|v| grammar::parse_cseq(v).ok())
        .map_or(0, |c| c.seq)
}

/// A Contact value of the 200: the URI as registered with the time left.
pub fn contact_value(binding: &Binding, now: Instant) -> String {
    let mut value = format!("<{}>;expires={}", binding.contact, binding.remaining(now));
    if let Some(q) = &binding.q {
        value.push_str(&format!(";q={q}"));
    }
    if let Some(instance) = &binding.instance {
        let escaped = instance.replace('\\', "\\\\").replace('"', "\\\"");
        value.push_str(&format!(";+sip.instance=\"{escaped}\""));
    }
    if let Some(reg_id) = binding.reg_id {
        value.push_str(&format!(";reg-id={reg_id}"));
    }
    value
}
