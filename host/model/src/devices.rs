//! Desk phones: a phone's MAC address, its maker, how it names itself when
//! it fetches its configuration, and the BLF keys an administrator puts on
//! it. The provisioning crate renders configuration files from these; the
//! HTTP server uses [`PhoneIdentity::from_user_agent`] to tell which phone
//! is asking.

use std::fmt;
use std::str::FromStr;

use crate::InvalidField;
use crate::settings::dialable;

/// Longest BLF key label, in characters (what fits a line key's display).
pub const MAX_BLF_LABEL_CHARS: usize = 64;
/// Longest model name [`PhoneIdentity`] accepts from a User-Agent.
const MAX_MODEL_LEN: usize = 24;
/// Longest firmware version [`PhoneIdentity`] accepts from a User-Agent.
const MAX_FIRMWARE_LEN: usize = 32;

/// A phone's Ethernet address, normalised to 12 lower-case hex digits
/// (`001565abcd01`): the form both vendors put in the names of the files a
/// phone fetches (`001565abcd01.cfg`, `cfg001565abcd01.xml`).
///
/// Parsing accepts the 12 digits alone or grouped as `00:15:65:AB:cd:01`,
/// `00-15-65-ab-cd-01` or `0015.65ab.cd01`, in either case. It refuses two
/// values that no phone has as its own address, so that a typing mistake
/// is caught when the device is added rather than when the phone never
/// finds its file:
/// - all zeros: the placeholder of blank forms, and the digits of Yealink's
///   common file `y000000000000.cfg`, which must not read as a device;
/// - multicast addresses (the low bit of the first octet set), which
///   include broadcast `ff:ff:ff:ff:ff:ff`: a network interface's own
///   address is always unicast.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac {
    /// ASCII lower-case hex digits, checked by [`Mac::parse`].
    hex: [u8; 12],
}

/// Why a text is not a [`Mac`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidMac {
    /// Neither 12 hex digits nor one of the grouped forms.
    #[error(
        "a MAC address is 12 hex digits, alone or grouped as 00:15:65:ab:cd:01, 00-15-65-ab-cd-01 or 0015.65ab.cd01"
    )]
    Shape,
    /// A character that is not a hex digit where one belongs.
    #[error("{character:?} is not a hex digit")]
    NotHex {
        /// The offending character.
        character: char,
    },
    /// `00:00:00:00:00:00`.
    #[error("00:00:00:00:00:00 is no device's address")]
    AllZero,
    /// A multicast or broadcast address.
    #[error("{mac} is a multicast or broadcast address, not a device's own")]
    Multicast {
        /// The address, normalised.
        mac: String,
    },
}

impl From<InvalidMac> for InvalidField {
    fn from(error: InvalidMac) -> InvalidField {
        InvalidField::new("mac", error.to_string())
    }
}

impl Mac {
    /// Parses a MAC address in any of the forms described on [`Mac`];
    /// surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Mac, InvalidMac> {
        let text = text.trim().as_bytes();
        // Byte positions of the digits in each accepted shape.
        let digits: Vec<u8> = match text.len() {
            12 => text.to_vec(),
            17 => {
                let separator = text[2];
                if !matches!(separator, b':' | b'-') {
                    return Err(InvalidMac::Shape);
                }
                grouped(text, 2, separator)?
            }
            14 => grouped(text, 4, b'.')?,
            _ => return Err(InvalidMac::Shape),
        };
        let mut hex = [0u8; 12];
        for (slot, &byte) in hex.iter_mut().zip(&digits) {
            if !byte.is_ascii_hexdigit() {
                return Err(InvalidMac::NotHex {
                    character: char::from(byte),
                });
            }
            *slot = byte.to_ascii_lowercase();
        }
        let mac = Mac { hex };
        let octets = mac.octets();
        if octets == [0; 6] {
            return Err(InvalidMac::AllZero);
        }
        if octets[0] & 1 == 1 {
            return Err(InvalidMac::Multicast {
                mac: mac.to_string(),
            });
        }
        Ok(mac)
    }

    /// The 12 lower-case hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored (see `parse`).
        std::str::from_utf8(&self.hex).expect("hex digits are ASCII")
    }

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        let mut octets = [0u8; 6];
        for (octet, pair) in octets.iter_mut().zip(self.hex.chunks_exact(2)) {
            *octet = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        octets
    }

    /// Whether `text` names this address in any case and grouping: how a
    /// phone's User-Agent (`Yealink SIP-T46U 108.86.0.20
    /// 80:5e:c0:12:34:56`) or RFC 5626 instance id
    /// (`urn:uuid:00000000-0000-1000-8000-000b82123456`) says which phone
    /// it is.
    pub fn is_named_in(&self, text: &str) -> bool {
        let hex: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|b| b.to_ascii_lowercase())
            .collect();
        hex.windows(self.hex.len()).any(|w| w == self.hex)
    }
}

/// The digits of `text` when it is groups of `width` digits joined by
/// `separator` (and nothing else at the separator positions).
fn grouped(text: &[u8], width: usize, separator: u8) -> Result<Vec<u8>, InvalidMac> {
    let mut digits = Vec::with_capacity(12);
    for (i, &byte) in text.iter().enumerate() {
        if (i + 1) % (width + 1) == 0 {
            if byte != separator {
                return Err(InvalidMac::Shape);
            }
        } else {
            digits.push(byte);
        }
    }
    Ok(digits)
}

/// The value of one ASCII hex digit (checked by the caller).
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => digit.to_ascii_lowercase() - b'a' + 10,
    }
}

impl FromStr for Mac {
    type Err = InvalidMac;

    fn from_str(text: &str) -> Result<Mac, InvalidMac> {
        Mac::parse(text)
    }
}

/// The 12 lower-case hex digits.
impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({})", self.as_str())
    }
}

/// A maker of desk phones whose configuration edgepbx renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Yealink T3x/T4x/T5x: `.cfg` key=value files.
    Yealink,
    /// Grandstream GXP/GRP: XML files of P-values.
    Grandstream,
}

/// The first three octets (OUI) of MAC addresses each vendor's phones
/// come with, from the IEEE registry: how [`Vendor::of_mac`] tells a
/// phone's maker when an administrator names none.
const OUIS: &[([u8; 3], Vendor)] = &[
    ([0x00, 0x15, 0x65], Vendor::Yealink),
    ([0x80, 0x5e, 0xc0], Vendor::Yealink),
    ([0x80, 0x5e, 0x0c], Vendor::Yealink),
    ([0x24, 0x9a, 0xd8], Vendor::Yealink),
    ([0x44, 0xdb, 0xd2], Vendor::Yealink),
    ([0x00, 0x0b, 0x82], Vendor::Grandstream),
    ([0xc0, 0x74, 0xad], Vendor::Grandstream),
    ([0xec, 0x74, 0xd7], Vendor::Grandstream),
];

impl Vendor {
    /// The maker of the phone with address `mac`, if its OUI is one of
    /// theirs.
    pub fn of_mac(mac: &Mac) -> Option<Vendor> {
        let octets = mac.octets();
        OUIS.iter()
            .find(|(oui, _)| octets[..3] == oui[..])
            .map(|(_, vendor)| *vendor)
    }

    /// Every vendor, for help texts.
    pub const ALL: [Vendor; 2] = [Vendor::Yealink, Vendor::Grandstream];

    /// `yealink` or `grandstream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Yealink => "yealink",
            Vendor::Grandstream => "grandstream",
        }
    }
}

/// Reads [`Vendor::as_str`]'s words in any case.
impl FromStr for Vendor {
    type Err = InvalidField;

    fn from_str(text: &str) -> Result<Vendor, InvalidField> {
        Vendor::ALL
            .into_iter()
            .find(|vendor| vendor.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| InvalidField::new("vendor", "must be yealink or grandstream"))
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a phone says about itself in the User-Agent of the HTTP requests
/// for its configuration.
///
/// The formats, as observed in provisioning servers' device detection and
/// the phones' requests:
/// - Yealink: `Yealink SIP-T46S 66.86.0.15 80:5e:c0:12:34:56`: the maker,
///   the model (with `SIP-` before it on most desk phones, without on
///   others: `Yealink W75DM …`), the firmware version, and the MAC address
///   last, with colons, or without them (`Yealink SIP-T56A 58.80.0.25
///   001565f429a4`; T5x phones do that on some requests). Sometimes two
///   spaces separate the model from the firmware; the MAC address is absent
///   when the phone's "MAC in User-Agent" setting is off.
/// - Grandstream: `Grandstream Model HW GXP2170 SW 1.0.11.6 DevId
///   000b82123456`: the model after `HW` (possibly followed by a hardware
///   revision such as `V2.2A`), the firmware after `SW` and the MAC address
///   after `DevId`, usually without separators (some Wi-Fi models send
///   colons). Old GXP2000 firmware sends `Grandstream GXP2000 (…) DevId
///   000b822726c8`.
///
/// Nothing in a User-Agent is authenticated: use it to recognise a new
/// phone or to cross-check the MAC address in the requested file name,
/// never to decide whose credentials to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneIdentity {
    /// The maker.
    pub vendor: Vendor,
    /// The model in upper case without Yealink's `SIP-` prefix (`T46S`,
    /// `GXP2170`), when the User-Agent names one.
    pub model: Option<String>,
    /// The firmware version (`66.86.0.15`), when given.
    pub firmware: Option<String>,
    /// The phone's MAC address, when given.
    pub mac: Option<Mac>,
}

impl PhoneIdentity {
    /// Recognises a Yealink or Grandstream User-Agent; `None` for any other
    /// (browsers, other makers' phones, garbage).
    pub fn from_user_agent(user_agent: &str) -> Option<PhoneIdentity> {
        let tokens: Vec<&str> = user_agent.split_whitespace().collect();
        let maker = tokens.first()?;
        if maker.eq_ignore_ascii_case("yealink") {
            Some(yealink_identity(&tokens))
        } else if maker.eq_ignore_ascii_case("grandstream") {
            Some(grandstream_identity(&tokens))
        } else {
            None
        }
    }
}

/// `Yealink <model> <firmware> [<mac>]`.
fn yealink_identity(tokens: &[&str]) -> PhoneIdentity {
    let model = tokens.get(1).and_then(|token| model_name(token));
    let firmware = tokens
        .get(2)
        .filter(|token| is_version(token))
        .map(|token| (*token).to_owned());
    // The MAC address comes last, after the model and the firmware.
    let mac = (tokens.len() >= 4)
        .then(|| tokens.last().and_then(|token| Mac::parse(token).ok()))
        .flatten();
    PhoneIdentity {
        vendor: Vendor::Yealink,
        model,
        firmware,
        mac,
    }
}

/// `Grandstream Model HW <model> [<revision>] SW <firmware> DevId <mac>`.
fn grandstream_identity(tokens: &[&str]) -> PhoneIdentity {
    let after = |label: &str| {
        tokens
            .windows(2)
            .find(|pair| pair[0].eq_ignore_ascii_case(label))
            .map(|pair| pair[1])
    };
    // Old firmware puts the model right after the maker.
    let model = after("HW")
        .or_else(|| tokens.get(1).copied().filter(|t| *t != "Model"))
        .and_then(model_name);
    PhoneIdentity {
        vendor: Vendor::Grandstream,
        model,
        firmware: after("SW")
            .filter(|token| is_version(token))
            .map(str::to_owned),
        mac: after("DevId").and_then(|token| Mac::parse(token).ok()),
    }
}

/// A model token in upper case without Yealink's `SIP-` prefix, when it
/// looks like one: letters, digits and dashes, starting with a letter.
fn model_name(token: &str) -> Option<String> {
    let upper = token.to_ascii_uppercase();
    let name = upper.strip_prefix("SIP-").unwrap_or(&upper);
    let valid = (1..=MAX_MODEL_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then(|| name.to_owned())
}

/// A firmware version: digits and dots with at least one dot.
fn is_version(token: &str) -> bool {
    (3..=MAX_FIRMWARE_LEN).contains(&token.len())
        && token.contains('.')
        && token.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// A BLF key: a number the phone watches (and dials or picks up when the
/// key is pressed) and the label shown next to the key. Only
/// [`BlfKey::new`] makes one, so every key is valid: the number is 1 to 32
/// of digits, `+`, `*`, `#`; the label at most
/// [`MAX_BLF_LABEL_CHARS`] characters, none of them control characters
/// (a line break in a label would start a new line in a configuration
/// file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlfKey {
    /// The watched number.
    number: String,
    /// The label; empty shows the number.
    label: String,
}

impl BlfKey {
    /// A key watching `number`, labelled `label`.
    pub fn new(number: &str, label: &str) -> Result<BlfKey, InvalidField> {
        let number = dialable("blf_keys.number", number)?;
        if label.chars().count() > MAX_BLF_LABEL_CHARS {
            return Err(InvalidField::new(
                "blf_keys.label",
                format!("longer than {MAX_BLF_LABEL_CHARS} characters"),
            ));
        }
        if label.chars().any(char::is_control) {
            return Err(InvalidField::new(
                "blf_keys.label",
                "contains a control character (line break, tab...)",
            ));
        }
        Ok(BlfKey {
            number,
            label: label.to_owned(),
        })
    }

    /// The watched number.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// The label (may be empty).
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_is_named_in_user_agents_and_instance_ids() {
        let mac: Mac = "805ec0123456".parse().expect("a MAC");
        assert!(mac.is_named_in("Yealink SIP-T46U 108.86.0.20 80:5E:C0:12:34:56"));
        assert!(mac.is_named_in("<urn:uuid:00000000-0000-1000-8000-805ec0123456>"));
        assert!(!mac.is_named_in("Yealink SIP-T46U 108.86.0.20 80:5e:c0:12:34:57"));
        assert!(!mac.is_named_in("baresip v1.0.0"));
    }

    #[test]
    fn a_vendor_is_known_by_its_oui() {
        let of = |text: &str| Vendor::of_mac(&text.parse().expect("a MAC"));
        assert_eq!(of("80:5E:C0:12:34:56"), Some(Vendor::Yealink));
        assert_eq!(of("000b82123456"), Some(Vendor::Grandstream));
        assert_eq!(of("52:54:00:12:34:56"), None);
    }

    #[test]
    fn macs_normalise_from_every_written_form() {
        for text in [
            "00:15:65:AB:cd:01",
            "001565abcd01",
            "001565ABCD01",
            "00-15-65-ab-cd-01",
            "0015.65ab.cd01",
            " 00:15:65:ab:cd:01\n",
        ] {
            let mac = Mac::parse(text).expect(text);
            assert_eq!(mac.as_str(), "001565abcd01", "{text}");
            assert_eq!(mac.to_string(), "001565abcd01");
            assert_eq!(mac.octets(), [0x00, 0x15, 0x65, 0xab, 0xcd, 0x01]);
        }
    }

    #[test]
    fn macs_refuse_other_shapes_and_non_device_addresses() {
        for (text, error) in [
            ("", InvalidMac::Shape),
            ("001565abcd0", InvalidMac::Shape),
            ("001565abcd012", InvalidMac::Shape),
            ("00:15:65-ab:cd:01", InvalidMac::Shape),
            ("00.15.65.ab.cd.01", InvalidMac::Shape),
            ("0015:65ab:cd01", InvalidMac::Shape),
            ("001565abcdzz", InvalidMac::NotHex { character: 'z' }),
            ("00:15:65:ab:cd:0g", InvalidMac::NotHex { character: 'g' }),
            ("00:00:00:00:00:00", InvalidMac::AllZero),
            (
                "ff:ff:ff:ff:ff:ff",
                InvalidMac::Multicast {
                    mac: "ffffffffffff".into(),
                },
            ),
            (
                "01:00:5e:00:00:01",
                InvalidMac::Multicast {
                    mac: "01005e000001".into(),
                },
            ),
            ("00:15:65:ab:cd:01:02", InvalidMac::Shape),
        ] {
            assert_eq!(Mac::parse(text), Err(error), "{text:?}");
        }
        let field: InvalidField = InvalidMac::AllZero.into();
        assert_eq!(field.field, "mac");
    }

    #[test]
    fn non_ascii_in_a_twelve_byte_text_is_not_hex() {
        // Six two-byte characters are twelve bytes.
        assert!(matches!(
            Mac::parse("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"),
            Err(InvalidMac::NotHex { .. })
        ));
    }

    #[test]
    fn vendors_parse_in_any_case() {
        assert_eq!("Yealink".parse::<Vendor>(), Ok(Vendor::Yealink));
        assert_eq!("GRANDSTREAM".parse::<Vendor>(), Ok(Vendor::Grandstream));
        assert!("snom".parse::<Vendor>().is_err());
        for vendor in Vendor::ALL {
            assert_eq!(vendor.as_str().parse::<Vendor>(), Ok(vendor));
        }
    }

    #[test]
    fn yealink_user_agents_give_model_firmware_and_mac() {
        let phone = PhoneIdentity::from_user_agent("Yealink SIP-T46S 66.86.0.15 80:5e:c0:12:34:56")
            .expect("a Yealink");
        assert_eq!(phone.vendor, Vendor::Yealink);
        assert_eq!(phone.model.as_deref(), Some("T46S"));
        assert_eq!(phone.firmware.as_deref(), Some("66.86.0.15"));
        assert_eq!(phone.mac, Mac::parse("805ec0123456").ok());

        let phone = PhoneIdentity::from_user_agent("Yealink SIP-T56A  58.80.0.25 001565f429a4")
            .expect("a Yealink");
        assert_eq!(phone.model.as_deref(), Some("T56A"));
        assert_eq!(phone.mac, Mac::parse("001565f429a4").ok());

        let phone = PhoneIdentity::from_user_agent("Yealink W75DM 108.83.0.40").expect("a Yealink");
        assert_eq!(phone.model.as_deref(), Some("W75DM"));
        assert_eq!(phone.firmware.as_deref(), Some("108.83.0.40"));
        assert_eq!(phone.mac, None);
    }

    #[test]
    fn grandstream_user_agents_give_model_firmware_and_mac() {
        let phone = PhoneIdentity::from_user_agent(
            "Grandstream Model HW GXP2170 SW 1.0.11.6 DevId 000b82123456",
        )
        .expect("a Grandstream");
        assert_eq!(phone.vendor, Vendor::Grandstream);
        assert_eq!(phone.model.as_deref(), Some("GXP2170"));
        assert_eq!(phone.firmware.as_deref(), Some("1.0.11.6"));
        assert_eq!(phone.mac, Mac::parse("000b82123456").ok());

        let phone = PhoneIdentity::from_user_agent(
            "Grandstream Model HW GXV3350  V1.3A SW 1.0.1.8 DevId c074ad150b88",
        )
        .expect("a Grandstream");
        assert_eq!(phone.model.as_deref(), Some("GXV3350"));
        assert_eq!(phone.firmware.as_deref(), Some("1.0.1.8"));

        let phone = PhoneIdentity::from_user_agent(
            "Grandstream Model HW GRP2601W SW 1.0.7.32 DevId EC:74:D7:89:1A:76",
        )
        .expect("a Grandstream");
        assert_eq!(phone.mac, Mac::parse("ec74d7891a76").ok());

        let phone = PhoneIdentity::from_user_agent(
            "Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
        )
        .expect("a Grandstream");
        assert_eq!(phone.model.as_deref(), Some("GXP2000"));
        assert_eq!(phone.firmware, None);
        assert_eq!(phone.mac, Mac::parse("000b822726c8").ok());
    }

    #[test]
    fn other_user_agents_are_not_phones() {
        for ua in [
            "",
            "Mozilla/5.0 (X11; Linux x86_64)",
            "curl/8.0",
            "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
            "Yealinkish 1.0",
        ] {
            assert_eq!(PhoneIdentity::from_user_agent(ua), None, "{ua}");
        }
        // A Yealink with a nonsense rest is still a Yealink, with nothing known.
        let phone = PhoneIdentity::from_user_agent("Yealink <script> x").expect("a Yealink");
        assert_eq!((phone.model, phone.firmware, phone.mac), (None, None, None));
    }

    #[test]
    fn blf_keys_check_number_and_label() {
        let key = BlfKey::new("*8101", "Alice").expect("valid");
        assert_eq!((key.number(), key.label()), ("*8101", "Alice"));
        assert!(BlfKey::new("+4930123", "").is_ok());
        assert!(BlfKey::new("", "x").is_err());
        assert!(BlfKey::new("10a", "x").is_err());
        assert!(BlfKey::new(&"1".repeat(33), "x").is_err());
        assert!(BlfKey::new("101", &"é".repeat(64)).is_ok());
        assert!(BlfKey::new("101", &"é".repeat(65)).is_err());
        for label in ["a\nb", "a\rb", "tab\there", "nul\0"] {
            let error = BlfKey::new("101", label).expect_err(label);
            assert_eq!(error.field, "blf_keys.label");
        }
    }
}
