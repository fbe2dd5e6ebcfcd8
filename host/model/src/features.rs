//! How a tenant's phones use the PBX's features: the feature code of
//! directed call pickup, whether BLF keys show who is calling, and the
//! operator voicemail callers reach with `*`.

use crate::InvalidField;

/// The default prefix of directed pickup: `**101` picks up 101's call.
pub const DEFAULT_PICKUP_CODE: &str = "**";

/// A tenant's feature settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFeatures {
    /// Dialled before an extension's number, picks up the call ringing it.
    pub pickup_code: String,
    /// Dialog NOTIFYs show other extensions the caller's number and name
    /// (off: `anonymous`; the watched extension's own phones still see it).
    pub blf_shows_caller: bool,
    /// The number a caller leaving a voicemail message reaches with `*`
    /// or `0` (an extension or group); none: the keys do nothing.
    pub operator: Option<String>,
}

impl Default for TenantFeatures {
    fn default() -> Self {
        TenantFeatures {
            pickup_code: DEFAULT_PICKUP_CODE.to_owned(),
            blf_shows_caller: true,
            operator: None,
        }
    }
}

impl TenantFeatures {
    /// Checks the pickup code: 1 to 4 characters from `*#0-9`, starting
    /// with `*` or `#` so that no extension number begins with it.
    pub fn validate(&self) -> Result<(), InvalidField> {
        let code = &self.pickup_code;
        let valid = (1..=4).contains(&code.len())
            && code.starts_with(['*', '#'])
            && code
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
        if !valid {
            return Err(InvalidField::new(
                "pickup_code",
                "must be 1 to 4 of * # 0-9, starting with * or #",
            ));
        }
        if let Some(operator) = &self.operator
            && !((1..=15).contains(&operator.len()) && operator.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(InvalidField::new("operator", "must be 1 to 15 digits"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_codes_start_with_a_star_or_a_hash() {
        for (code, ok) in [
            ("**", true),
            ("*9", true),
            ("#7", true),
            ("9", false),
            ("", false),
            ("*****", false),
            ("*a", false),
        ] {
            let features = TenantFeatures {
                pickup_code: code.into(),
                ..TenantFeatures::default()
            };
            assert_eq!(features.validate().is_ok(), ok, "{code}");
        }
    }

    #[test]
    fn the_operator_is_a_number() {
        for (operator, ok) in [
            ("100", true),
            ("+100", false),
            ("", false),
            ("1234567890123456", false),
        ] {
            let features = TenantFeatures {
                operator: Some(operator.into()),
                ..TenantFeatures::default()
            };
            assert_eq!(features.validate().is_ok(), ok, "{operator}");
        }
    }
}
