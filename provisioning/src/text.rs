//! The checks every value passes before it is written, and XML escaping.
//!
//! Both file formats are text a phone parses line by line or element by
//! element, so the one rule that makes injection impossible is enforced
//! here for every field: no control characters at all (no CR, LF, tab,
//! NUL...). A Yealink value then cannot end its line and start another
//! setting, and an XML value, once escaped, cannot end its element.

use std::borrow::Cow;

use crate::RenderError;

/// Longest URL a profile may carry.
const MAX_URL_LEN: usize = 1_024;
/// Longest host name (RFC 1035).
const MAX_HOST_LEN: usize = 253;

/// `value` has no control character and at most `max_chars` characters.
pub(crate) fn text(field: &'static str, value: &str, max_chars: usize) -> Result<(), RenderError> {
    if value.chars().any(char::is_control) {
        return Err(RenderError::ControlCharacter { field });
    }
    if value.chars().count() > max_chars {
        return Err(RenderError::TooLong {
            field,
            max: max_chars,
        });
    }
    Ok(())
}

/// [`text`], and not empty.
pub(crate) fn required(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<(), RenderError> {
    if value.is_empty() {
        return Err(RenderError::Empty { field });
    }
    text(field, value, max_chars)
}

/// [`required`], and no space at either end: the phones trim values, so a
/// password `" secret"` would silently become `"secret"`.
pub(crate) fn credential(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<(), RenderError> {
    required(field, value, max_chars)?;
    if value.trim() != value {
        return Err(RenderError::SurroundingSpace { field });
    }
    Ok(())
}

/// A host name, IPv4 address or bracketed IPv6 address (`[2001:db8::1]`):
/// letters, digits, `.`, `-`, and `:[]` for IPv6.
pub(crate) fn host(field: &'static str, value: &str) -> Result<(), RenderError> {
    let invalid = || RenderError::InvalidHost {
        field,
        value: value.chars().take(MAX_HOST_LEN).collect(),
    };
    if value.is_empty() || value.len() > MAX_HOST_LEN {
        return Err(invalid());
    }
    let shape_ok = if let Some(inner) = value.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|address| {
            !address.is_empty()
                && address
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        })
    } else {
        !value.starts_with(['-', '.'])
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    if !shape_ok {
        return Err(invalid());
    }
    Ok(())
}

/// An `http://` or `https://` URL, split for the Grandstream settings that
/// take the scheme and the rest separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    /// `https`.
    pub secure: bool,
    /// Everything after `://`: host, port, path and query.
    pub without_scheme: &'a str,
}

/// `value` as an [`Url`]: visible ASCII only (RFC 3986: no space, no
/// `"<>\^`{|}`), a non-empty host part, at most 1024 bytes.
pub(crate) fn url<'a>(field: &'static str, value: &'a str) -> Result<Url<'a>, RenderError> {
    let invalid = RenderError::InvalidUrl { field };
    if value.chars().any(char::is_control) {
        return Err(RenderError::ControlCharacter { field });
    }
    if value.len() > MAX_URL_LEN {
        return Err(RenderError::TooLong {
            field,
            max: MAX_URL_LEN,
        });
    }
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    let (secure, without_scheme) = if lower.starts_with("https://") {
        (true, &value[8..])
    } else if lower.starts_with("http://") {
        (false, &value[7..])
    } else {
        return Err(invalid);
    };
    let visible = without_scheme
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b));
    let has_host = !without_scheme.starts_with(['/', '?', '#']) && !without_scheme.is_empty();
    if !visible || !has_host {
        return Err(invalid);
    }
    Ok(Url {
        secure,
        without_scheme,
    })
}

/// `value` within `min..=max`.
pub(crate) fn range(
    field: &'static str,
    value: u32,
    min: u32,
    max: u32,
) -> Result<(), RenderError> {
    if !(min..=max).contains(&value) {
        return Err(RenderError::OutOfRange {
            field,
            value,
            min,
            max,
        });
    }
    Ok(())
}

/// `value` with `& < > " '` replaced by entities, fit for element text and
/// attribute values alike.
pub(crate) fn xml_escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_everywhere() {
        for value in ["a\nb", "a\rb", "\t", "\0", "a\u{85}b", "x\u{1b}[2J"] {
            assert_eq!(
                text("f", value, 64),
                Err(RenderError::ControlCharacter { field: "f" }),
                "{value:?}"
            );
        }
        assert!(text("f", "Zoë & <Bob>", 64).is_ok());
        assert_eq!(
            text("f", "abc", 2),
            Err(RenderError::TooLong { field: "f", max: 2 })
        );
        assert_eq!(required("f", "", 2), Err(RenderError::Empty { field: "f" }));
        assert_eq!(
            credential("f", " pw", 64),
            Err(RenderError::SurroundingSpace { field: "f" })
        );
    }

    #[test]
    fn hosts_are_names_or_addresses() {
        for ok in [
            "pbx.example.com",
            "192.0.2.10",
            "[2001:db8::1]",
            "localhost",
        ] {
            assert!(host("h", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "pbx example.com",
            "pbx.example.com\n",
            "-pbx",
            "[]",
            "[2001:db8::1",
            "pbx/x",
            "pbx:5060",
            "<b>",
        ] {
            assert!(host("h", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_http_without_spaces() {
        assert_eq!(
            url("u", "https://pbx.example.com/prov/"),
            Ok(Url {
                secure: true,
                without_scheme: "pbx.example.com/prov/"
            })
        );
        assert_eq!(
            url("u", "HTTP://pbx:8080/pb.xml?t=a&b=c"),
            Ok(Url {
                secure: false,
                without_scheme: "pbx:8080/pb.xml?t=a&b=c"
            })
        );
        for bad in [
            "ftp://pbx/",
            "https://",
            "https:///x",
            "https://pbx/a b",
            "https://pbx/\"x",
            "pbx.example.com",
            "https://pbx/é",
        ] {
            assert_eq!(
                url("u", bad),
                Err(RenderError::InvalidUrl { field: "u" }),
                "{bad}"
            );
        }
        assert_eq!(
            url("u", "https://pbx/\r\nx=1"),
            Err(RenderError::ControlCharacter { field: "u" })
        );
    }

    #[test]
    fn xml_escaping_covers_the_five_entities() {
        assert_eq!(xml_escape("plain"), "plain");
        assert_eq!(
            xml_escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;"
        );
    }
}
