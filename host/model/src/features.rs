//! How a tenant's phones use the PBX's features: the feature code of
//! directed call pickup, and whether BLF keys show who is calling.

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
}

impl Default for TenantFeatures {
    fn default() -> Self {
        TenantFeatures {
            pickup_code: DEFAULT_PICKUP_CODE.to_owned(),
            blf_shows_caller: true,
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
                blf_shows_caller: true,
            };
            assert_eq!(features.validate().is_ok(), ok, "{code}");
        }
    }
}
