//! Which file a phone asks for, from the last component of the request
//! path, so that the HTTP server can find the device (by MAC address) and
//! the kind of file before it renders anything.
//!
//! What the phones fetch, in the order they fetch it:
//! - Yealink (firmware 81 and later): a boot file (`<mac>.boot`, then
//!   `y000000000000.boot`); when there is none, the common file
//!   `y000000000000.cfg` (older firmware names it after the model,
//!   `y0000000000XX.cfg`) and then its own `<mac>.cfg`. Later it also asks
//!   for `<mac>-local.cfg` (a backup of settings changed on the phone) and
//!   `<mac>-contact.xml` (its local contacts), and loads the remote
//!   phonebook from the URL its configuration gives.
//! - Grandstream: `cfg<mac>.xml`, and the legacy binary `cfg<mac>`; when
//!   neither exists, `cfg<model>.xml` and then `cfg.xml`.
//!
//! edgepbx serves no boot files (so Yealink phones use the common file and
//! their own), no binary or generic Grandstream files, and keeps no copy of
//! what the phones back up: those requests are [`RequestedFile::Unserved`],
//! to be answered 404, which every phone takes as "no such file" and
//! carries on.

use edgepbx_model::{Mac, Vendor};

use crate::PHONEBOOK_FILE;
use crate::yealink::COMMON_FILE as YEALINK_COMMON_FILE;

/// Longest file name recognised; anything longer is nothing a phone asks.
const MAX_NAME_LEN: usize = 64;

/// A file a phone asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedFile {
    /// `y000000000000.cfg` (or a model's `y0000000000XX.cfg`): Yealink's
    /// common file, the same for every phone and free of secrets.
    YealinkCommon,
    /// `<mac>.cfg`: a Yealink phone's own file, with its credentials.
    YealinkDevice(Mac),
    /// `cfg<mac>.xml`: a Grandstream phone's own file, with its
    /// credentials.
    GrandstreamDevice(Mac),
    /// `phonebook.xml`: the remote phonebook. Its format depends on the
    /// vendor, which the server knows from the device or the User-Agent.
    Phonebook,
    /// A file phones ask for that edgepbx does not serve: answer 404.
    Unserved(UnservedFile),
}

/// Files phones ask for that edgepbx answers with 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnservedFile {
    /// `<mac>.boot` or `y000000000000.boot`: without one, the phone falls
    /// back to the common file and its own `.cfg`.
    YealinkBoot,
    /// `<mac>-local.cfg`: the phone's backup of settings made on it.
    YealinkLocal(Mac),
    /// `<mac>-contact.xml`: the phone's backup of its local contacts.
    YealinkContacts(Mac),
    /// `cfg<mac>`: Grandstream's legacy binary format.
    GrandstreamBinary(Mac),
    /// `cfg<model>.xml` or `cfg.xml`: asked for when the phone's own file
    /// is missing.
    GrandstreamFallback,
}

impl RequestedFile {
    /// Recognises the last component of a request path (anything up to
    /// the last `/` is ignored); `None` when it is no file a phone of
    /// either vendor asks for. MAC addresses in names are accepted in
    /// either case.
    pub fn parse(path: &str) -> Option<RequestedFile> {
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.len() > MAX_NAME_LEN || !name.is_ascii() {
            return None;
        }
        let name = name.to_ascii_lowercase();
        if name == PHONEBOOK_FILE {
            return Some(RequestedFile::Phonebook);
        }
        if name == YEALINK_COMMON_FILE || is_yealink_model_common(&name) {
            return Some(RequestedFile::YealinkCommon);
        }
        if let Some(stem) = name.strip_suffix(".boot") {
            let known = stem == "y000000000000" || mac(stem).is_some();
            return known.then_some(RequestedFile::Unserved(UnservedFile::YealinkBoot));
        }
        if let Some(rest) = name.strip_prefix("cfg") {
            return grandstream(rest);
        }
        if let Some(stem) = name.strip_suffix("-local.cfg") {
            return mac(stem).map(|mac| RequestedFile::Unserved(UnservedFile::YealinkLocal(mac)));
        }
        if let Some(stem) = name.strip_suffix("-contact.xml") {
            return mac(stem)
                .map(|mac| RequestedFile::Unserved(UnservedFile::YealinkContacts(mac)));
        }
        let stem = name.strip_suffix(".cfg")?;
        mac(stem).map(RequestedFile::YealinkDevice)
    }

    /// The phone the file belongs to, for the files named after one.
    pub fn mac(&self) -> Option<Mac> {
        match *self {
            RequestedFile::YealinkDevice(mac)
            | RequestedFile::GrandstreamDevice(mac)
            | RequestedFile::Unserved(
                UnservedFile::YealinkLocal(mac)
                | UnservedFile::YealinkContacts(mac)
                | UnservedFile::GrandstreamBinary(mac),
            ) => Some(mac),
            RequestedFile::YealinkCommon
            | RequestedFile::Phonebook
            | RequestedFile::Unserved(
                UnservedFile::YealinkBoot | UnservedFile::GrandstreamFallback,
            ) => None,
        }
    }

    /// The vendor whose phones ask for this name; `None` for the
    /// phonebook, which both fetch.
    pub fn vendor(&self) -> Option<Vendor> {
        match self {
            RequestedFile::YealinkCommon
            | RequestedFile::YealinkDevice(_)
            | RequestedFile::Unserved(
                UnservedFile::YealinkBoot
                | UnservedFile::YealinkLocal(_)
                | UnservedFile::YealinkContacts(_),
            ) => Some(Vendor::Yealink),
            RequestedFile::GrandstreamDevice(_)
            | RequestedFile::Unserved(
                UnservedFile::GrandstreamBinary(_) | UnservedFile::GrandstreamFallback,
            ) => Some(Vendor::Grandstream),
            RequestedFile::Phonebook => None,
        }
    }

    /// Whether the file carries credentials, so that the server serves it
    /// only to a device it has authenticated (and never caches or logs
    /// it).
    pub fn is_secret(&self) -> bool {
        matches!(
            self,
            RequestedFile::YealinkDevice(_) | RequestedFile::GrandstreamDevice(_)
        )
    }
}

/// `y0000000000XX.cfg` with XX two hex digits: the per-model common file
/// of Yealink firmware before version 81.
fn is_yealink_model_common(name: &str) -> bool {
    name.strip_suffix(".cfg")
        .and_then(|stem| stem.strip_prefix("y0000000000"))
        .is_some_and(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What follows `cfg` in a Grandstream name: `<mac>.xml`, `<mac>`,
/// `<model>.xml` or `.xml`.
fn grandstream(rest: &str) -> Option<RequestedFile> {
    match rest.strip_suffix(".xml") {
        Some(stem) => Some(match mac(stem) {
            Some(mac) => RequestedFile::GrandstreamDevice(mac),
            None if stem.is_empty() || is_model(stem) => {
                RequestedFile::Unserved(UnservedFile::GrandstreamFallback)
            }
            None => return None,
        }),
        None => mac(rest).map(|mac| RequestedFile::Unserved(UnservedFile::GrandstreamBinary(mac))),
    }
}

/// 12 hex digits that make a [`Mac`].
fn mac(stem: &str) -> Option<Mac> {
    (stem.len() == 12).then(|| Mac::parse(stem).ok()).flatten()
}

/// A model name such as `gxp2170`: letters then digits and letters.
fn is_model(stem: &str) -> bool {
    (2..=16).contains(&stem.len())
        && stem.starts_with(|c: char| c.is_ascii_alphabetic())
        && stem.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(text: &str) -> Mac {
        Mac::parse(text).expect("valid MAC")
    }

    #[test]
    fn phones_requests_are_recognised() {
        let yealink = mac("805ec0123456");
        let grandstream = mac("000b82123456");
        for (path, expected) in [
            ("y000000000000.cfg", RequestedFile::YealinkCommon),
            ("/prov/y000000000028.cfg", RequestedFile::YealinkCommon),
            ("805ec0123456.cfg", RequestedFile::YealinkDevice(yealink)),
            (
                "/p/T/805EC0123456.cfg",
                RequestedFile::YealinkDevice(yealink),
            ),
            (
                "cfg000b82123456.xml",
                RequestedFile::GrandstreamDevice(grandstream),
            ),
            (
                "CFG000B82123456.XML",
                RequestedFile::GrandstreamDevice(grandstream),
            ),
            ("phonebook.xml", RequestedFile::Phonebook),
            (
                "805ec0123456-local.cfg",
                RequestedFile::Unserved(UnservedFile::YealinkLocal(yealink)),
            ),
            (
                "805ec0123456-contact.xml",
                RequestedFile::Unserved(UnservedFile::YealinkContacts(yealink)),
            ),
            (
                "805ec0123456.boot",
                RequestedFile::Unserved(UnservedFile::YealinkBoot),
            ),
            (
                "y000000000000.boot",
                RequestedFile::Unserved(UnservedFile::YealinkBoot),
            ),
            (
                "cfg000b82123456",
                RequestedFile::Unserved(UnservedFile::GrandstreamBinary(grandstream)),
            ),
            (
                "cfggxp2170.xml",
                RequestedFile::Unserved(UnservedFile::GrandstreamFallback),
            ),
            (
                "cfg.xml",
                RequestedFile::Unserved(UnservedFile::GrandstreamFallback),
            ),
        ] {
            assert_eq!(RequestedFile::parse(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn other_names_are_not_phone_files() {
        for path in [
            "",
            "/",
            "index.html",
            "000000000000.cfg",
            "ffffffffffff.cfg",
            "805ec012345.cfg",
            "805ec0123456.txt",
            "805ec0123456-local.xml",
            "cfg000b8212345z.xml",
            "cfg-../../etc.xml",
            "y00000000000g.cfg",
            "x.boot",
            "805ec0123456.cfg\0",
            "ünïcode.cfg",
            &"a".repeat(100),
        ] {
            assert_eq!(RequestedFile::parse(path), None, "{path:?}");
        }
    }

    #[test]
    fn requests_say_their_device_vendor_and_secrecy() {
        let device = RequestedFile::parse("805ec0123456.cfg").expect("known");
        assert_eq!(device.mac(), Some(mac("805ec0123456")));
        assert_eq!(device.vendor(), Some(Vendor::Yealink));
        assert!(device.is_secret());
        let device = RequestedFile::parse("cfg000b82123456.xml").expect("known");
        assert_eq!(device.vendor(), Some(Vendor::Grandstream));
        assert!(device.is_secret());
        assert!(!RequestedFile::YealinkCommon.is_secret());
        assert_eq!(RequestedFile::YealinkCommon.mac(), None);
        assert!(!RequestedFile::Phonebook.is_secret());
        assert_eq!(RequestedFile::Phonebook.vendor(), None);
    }
}
