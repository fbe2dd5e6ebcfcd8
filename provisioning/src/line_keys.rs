//! How many programmable keys each model has, so that a file never
//! configures keys the phone lacks and the server learns which keys did
//! not fit.
//!
//! Yealink counts are the `linekey.X` ranges of the admin guides (X from 1
//! to 29 on a T48S, including the keys reached by paging). Grandstream
//! counts are the virtual multi-purpose keys (VPKs, the line keys) that the
//! P1363 family configures. See the crate README for which rows are
//! confirmed by a vendor document and which are inferred from the model's
//! predecessor.

use edgepbx_model::Vendor;

/// Keys of a model not in the tables: two, the fewest of any desk phone
/// the tables cover, so that nothing is written for keys a phone lacks.
pub const DEFAULT_LINE_KEYS: usize = 2;

/// Yealink models and their `linekey.X` count.
const YEALINK: &[(&str, usize)] = &[
    ("T21PE2", 2),
    ("T23G", 3),
    ("T23P", 3),
    ("T27G", 21),
    ("T27P", 21),
    ("T29G", 27),
    ("T31", 2),
    ("T31G", 2),
    ("T31P", 2),
    ("T33G", 4),
    ("T33P", 4),
    ("T40G", 3),
    ("T40P", 3),
    ("T41P", 15),
    ("T41S", 15),
    ("T42G", 15),
    ("T42S", 15),
    ("T43U", 21),
    ("T46G", 27),
    ("T46S", 27),
    ("T46U", 27),
    ("T48G", 29),
    ("T48S", 29),
    ("T48U", 29),
    ("T52S", 21),
    ("T53", 21),
    ("T53W", 21),
    ("T54S", 27),
    ("T54W", 27),
    ("T57W", 29),
];

/// Grandstream models and their VPK count.
const GRANDSTREAM: &[(&str, usize)] = &[
    ("GRP2612", 16),
    ("GRP2613", 24),
    ("GRP2614", 16),
    ("GRP2615", 40),
    ("GRP2616", 16),
    ("GXP2130", 3),
    ("GXP2135", 8),
    ("GXP2140", 4),
    ("GXP2160", 6),
    ("GXP2170", 12),
];

/// The model's programmable keys, the account's own line key included;
/// [`DEFAULT_LINE_KEYS`] for a model not in the tables or none at all.
pub fn line_key_count(vendor: Vendor, model: Option<&str>) -> usize {
    model
        .and_then(|model| known_count(vendor, model))
        .unwrap_or(DEFAULT_LINE_KEYS)
}

/// Whether the tables know `model`.
pub fn is_known_model(vendor: Vendor, model: &str) -> bool {
    known_count(vendor, model).is_some()
}

fn known_count(vendor: Vendor, model: &str) -> Option<usize> {
    let table = match vendor {
        Vendor::Yealink => YEALINK,
        Vendor::Grandstream => GRANDSTREAM,
    };
    let name = normalise(model);
    table
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, count)| count)
}

/// Letters and digits in upper case, without Yealink's `SIP-` prefix, so
/// that `SIP-T46S` and `t46s` meet, and so do `SIP-T21P_E2` and
/// `T21(P) E2`.
fn normalise(model: &str) -> String {
    let upper: String = model
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match upper.strip_prefix("SIP") {
        Some(rest) if rest.starts_with('T') => rest.to_owned(),
        _ => upper,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_found_in_any_spelling() {
        for spelling in ["T46S", "SIP-T46S", "t46s", "sip-t46s", " T46S "] {
            assert_eq!(
                line_key_count(Vendor::Yealink, Some(spelling)),
                27,
                "{spelling}"
            );
        }
        assert_eq!(line_key_count(Vendor::Yealink, Some("T48U")), 29);
        assert_eq!(line_key_count(Vendor::Yealink, Some("T31P")), 2);
        assert_eq!(line_key_count(Vendor::Grandstream, Some("GXP2170")), 12);
        assert_eq!(line_key_count(Vendor::Grandstream, Some("gxp-2170")), 12);
    }

    #[test]
    fn unknown_or_absent_models_get_the_default() {
        assert_eq!(line_key_count(Vendor::Yealink, None), DEFAULT_LINE_KEYS);
        assert_eq!(
            line_key_count(Vendor::Yealink, Some("T99X")),
            DEFAULT_LINE_KEYS
        );
        // A model of the other vendor is unknown too.
        assert_eq!(
            line_key_count(Vendor::Grandstream, Some("T46S")),
            DEFAULT_LINE_KEYS
        );
        assert!(!is_known_model(Vendor::Yealink, "GXP2170"));
        assert!(is_known_model(Vendor::Grandstream, "GXP2170"));
    }

    #[test]
    fn every_table_row_has_room_for_the_account_and_a_key() {
        for (model, count) in YEALINK.iter().chain(GRANDSTREAM) {
            assert!(*count >= DEFAULT_LINE_KEYS, "{model}");
            assert_eq!(normalise(model), *model);
        }
    }
}
