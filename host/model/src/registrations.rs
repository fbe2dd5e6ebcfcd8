//! The bounds of what a registration keeps of the REGISTER that made it.
//! The registrar refuses a REGISTER beyond them with 400, so that every
//! binding it accepts is one the store can keep; the store checks them
//! again on every write.

/// Longest contact URI, and longest `+sip.instance`, in bytes: room for
/// push-notification parameters (RFC 8599), none for a device to bloat the
/// location table, the device lists of the console and every routing
/// policy's view of its extension.
pub const MAX_CONTACT_BYTES: usize = 1024;

/// Longest Call-ID of a REGISTER, in bytes (phones use a few dozen).
pub const MAX_CALL_ID_BYTES: usize = 256;

/// Longest User-Agent kept, in characters; a longer one is cut.
pub const MAX_USER_AGENT_CHARS: usize = 128;

/// Whether `text` is a `qvalue` (RFC 3261 §25.1): `0` to `1` with at most
/// three decimals.
pub fn is_qvalue(text: &str) -> bool {
    let (whole, decimals) = text.split_once('.').unwrap_or((text, ""));
    let digits = decimals.len() <= 3 && decimals.bytes().all(|b| b.is_ascii_digit());
    match whole {
        "0" => digits,
        "1" => digits && decimals.bytes().all(|b| b == b'0'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_qvalue;

    #[test]
    fn qvalues_are_zero_to_one_with_three_decimals_at_most() {
        for good in ["0", "1", "0.5", "0.125", "1.000", "0.", "1."] {
            assert!(is_qvalue(good), "{good}");
        }
        for bad in [
            "", "2", "1.5", "0.1234", "-0", ".5", "0,5", "01", "0.5x", "1e0",
        ] {
            assert!(!is_qvalue(bad), "{bad}");
        }
    }
}
