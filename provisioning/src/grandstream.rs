//! Grandstream GXP21xx/GRP26xx configuration files: each phone's
//! `cfg<mac>.xml`.
//!
//! The file is Grandstream's XML provisioning format, version 1: a
//! `gs_provision` element holding the phone's MAC address (the phone
//! refuses a file whose `mac` is not its own) and a `config` element of
//! P-values, one element per setting, named after the setting's number in
//! the vendor's configuration template (`<P47>pbx.example.com</P47>` is the
//! SIP server). Every value is XML-escaped, and has passed
//! [`PhoneProfile::validate`], so it holds no control character.
//!
//! The P-values follow the GXP21xx configuration templates for firmware
//! 1.0.x. Line keys are the virtual multi-purpose keys (VPKs) of that
//! generation, four P-values each: key mode P1363, account P1364,
//! description P1465 and value P1466 for the first key, each number two
//! higher for every further key. The older multi-purpose key family
//! (P323/P301–P303 and up) configured the side keys of earlier models and
//! is not written. See the crate README for sources.

use std::fmt::{Display, Write};

use edgepbx_model::Vendor;

use crate::line_keys::line_key_count;
use crate::text::{url, xml_escape};
use crate::{DeviceFile, File, LineKey, PhoneProfile, PhoneTimeZone};

/// Content type of Grandstream XML.
const CONTENT_TYPE: &str = "text/xml; charset=utf-8";
/// VPK mode of a line (the account's own key).
const KEY_LINE: u8 = 0;
/// VPK mode of a speed dial.
const KEY_SPEED_DIAL: u8 = 10;
/// VPK mode of a BLF key.
const KEY_BLF: u8 = 11;
/// P-value of the first VPK's mode; its account is the next number.
const VPK_MODE: u32 = 1363;
/// P-value of the first VPK's description; its value is the next number.
const VPK_DESCRIPTION: u32 = 1465;
/// How often the phone reloads the phonebook, in minutes (P332).
const PHONEBOOK_REFRESH_MINUTES: u32 = 60;

/// The `config` element being written.
struct PValues {
    /// The text so far.
    body: String,
}

impl PValues {
    /// An XML comment line (the text is ours, never contains `--`).
    fn comment(&mut self, text: &str) {
        debug_assert!(!text.contains("--"));
        // Writing to a String cannot fail.
        let _ = writeln!(self.body, "    <!-- {text} -->");
    }

    /// `<P{number}>value</P{number}>`, the value escaped.
    fn set(&mut self, number: u32, value: impl Display) {
        let value = value.to_string();
        // Writing to a String cannot fail.
        let _ = writeln!(
            self.body,
            "    <P{number}>{}</P{number}>",
            xml_escape(&value)
        );
    }
}

/// A phone's own file. The profile has been validated.
pub(crate) fn device_file(profile: &PhoneProfile) -> DeviceFile {
    let account = &profile.account;
    let mac = profile.mac;
    let model = profile.model.as_deref();
    let mut p = PValues {
        body: String::new(),
    };

    p.comment("Account 1");
    p.set(271, 1); // active
    p.set(270, account.label()); // account name
    p.set(
        47,
        format_args!("{}:{}", account.server.host, account.server.port),
    ); // SIP server
    p.set(35, &account.user_name); // SIP user ID
    p.set(36, &account.auth_name); // authenticate ID
    p.set(34, &account.password); // authenticate password
    p.set(3, &account.display_name); // display name
    p.set(130, account.server.transport.code()); // SIP transport
    p.set(32, account.registration_expiry_secs.div_ceil(60)); // register expiration, minutes
    match account.keep_alive_secs {
        Some(secs) => {
            p.set(52, 2); // NAT traversal: keep-alive
            p.set(84, secs); // keep-alive interval
        }
        None => p.set(52, 0), // NAT traversal: no
    }
    p.set(2325, u8::from(profile.feature_key_sync)); // feature key synchronisation

    let (zone, known_time_zone) = PhoneTimeZone::resolve(&profile.site.time_zone);
    p.comment(&format!("Time: {}", zone.iana));
    if let Some(ntp) = &profile.site.ntp_server {
        p.set(30, ntp); // NTP server
    }
    p.set(64, zone.posix); // time zone

    p.comment("Phonebook");
    match &profile.phonebook {
        Some(phonebook) => {
            // Validated with the profile; a URL that fails here is written
            // as no phonebook rather than half of one.
            match url("phonebook.url", &phonebook.url) {
                Ok(link) => {
                    p.set(330, if link.secure { 3 } else { 1 }); // download via HTTPS / HTTP
                    p.set(331, link.without_scheme); // server path
                    p.set(332, PHONEBOOK_REFRESH_MINUTES); // download interval
                }
                Err(_) => p.set(330, 0),
            }
        }
        None => p.set(330, 0), // no phonebook download
    }

    if let Some(provisioning_url) = &profile.provisioning_url
        && let Ok(link) = url("provisioning_url", provisioning_url)
    {
        p.comment("Provisioning");
        p.set(212, if link.secure { 2 } else { 1 }); // config upgrade via HTTPS / HTTP
        p.set(237, link.without_scheme); // config server path
    }

    let capacity = line_key_count(Vendor::Grandstream, model);
    p.comment(&format!(
        "Line keys (VPK): {capacity} on this model, key 1 is the account's line"
    ));
    let room = capacity.saturating_sub(1);
    let assigned = profile.keys.iter().take(room);
    // Key 1, then the assigned keys, then lines for keys no longer
    // assigned, so that an administrator's removal takes effect.
    let slots = std::iter::once(None)
        .chain(assigned.map(Some))
        .chain(std::iter::repeat(None))
        .take(capacity);
    for (index, key) in (0u32..).zip(slots) {
        let (mode, description, value) = match key {
            Some(LineKey::Blf(key)) => (KEY_BLF, key.label(), key.number()),
            Some(LineKey::SpeedDial(key)) => (KEY_SPEED_DIAL, key.label(), key.number()),
            None => (KEY_LINE, "", ""),
        };
        p.set(VPK_MODE + 2 * index, mode);
        p.set(VPK_MODE + 2 * index + 1, 0); // account 1
        p.set(VPK_DESCRIPTION + 2 * index, description);
        p.set(VPK_DESCRIPTION + 2 * index + 1, value);
    }

    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- edgepbx: configuration of the phone {mac} ({model}). Rendered by edgepbx; changes made here are overwritten. -->\n\
         <gs_provision version=\"1\">\n  <mac>{mac}</mac>\n  <config version=\"1\">\n{config}  </config>\n</gs_provision>\n",
        model = xml_escape(model.unwrap_or("model unknown")).replace("--", "- -"),
        config = p.body,
    );
    DeviceFile {
        file: File {
            name: format!("cfg{mac}.xml"),
            content_type: CONTENT_TYPE,
            body,
            secret: true,
        },
        dropped_keys: profile.keys.len().saturating_sub(room),
        unknown_time_zone: !known_time_zone,
    }
}
