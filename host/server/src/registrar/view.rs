//! The registrar's reading of a REGISTER: the address of record, the
//! Contact values, Expires and CSeq, through the typed views of
//! `edgepbx_sip::grammar`; and the Contact values of the 200.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edgepbx_sip::Request;
use edgepbx_sip::grammar::{self, ContactValue, GrammarError, NameAddr};

use super::bindings::{Binding, ContactSpec, Contacts};

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
}

/// Longest contact URI, and longest `+sip.instance`, a binding may have,
/// in bytes: room for push-notification parameters (RFC 8599), none for a
/// device to bloat the location table, the device lists of the console
/// and every routing policy's view of its extension.
pub const MAX_CONTACT_BYTES: usize = 1024;

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

/// An RFC 1123 date in GMT, as the Date header field wants it.
pub fn http_date(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31), after Howard
/// Hinnant's public-domain date algorithms.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(http_date(t), "Wed, 18 Nov 2026 11:06:40 GMT");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(http_date(leap), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
