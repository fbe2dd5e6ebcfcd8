//! Yealink T3x/T4x/T5x configuration files: the common
//! `y000000000000.cfg` and each phone's `<mac>.cfg`.
//!
//! The format is one `key = value` setting per line after the mandatory
//! first line `#!version:1.0.0.1`; lines starting with `#` are comments.
//! There is no quoting and no escaping: a value runs to the end of its
//! line, so the only defence against a value that starts another setting
//! is that no value contains a line break (every value passed the checks
//! of [`PhoneProfile::validate`]). An empty value means "leave the phone's
//! setting as it is"; `%NULL%` clears it, which is how a key or phonebook
//! an administrator removed goes away on the next resync.
//!
//! Keys follow the Yealink admin and auto provisioning guides for firmware
//! 81 and later (see the crate README).

use std::fmt::{Display, Write};

use edgepbx_model::Vendor;

use crate::line_keys::line_key_count;
use crate::{DeviceFile, File, LineKey, PhoneProfile, PhoneTimeZone, SiteSettings};

/// The common file's name.
pub(crate) const COMMON_FILE: &str = "y000000000000.cfg";
/// Content type of `.cfg` files.
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// The value that clears a setting.
const CLEAR: &str = "%NULL%";
/// `linekey.X.type` of a line (the account's own key).
const KEY_LINE: u8 = 15;
/// `linekey.X.type` of a BLF key.
const KEY_BLF: u8 = 16;
/// `linekey.X.type` of a speed dial.
const KEY_SPEED_DIAL: u8 = 13;
/// `linekey.X.type` of an unused key (N/A).
const KEY_NONE: u8 = 0;

/// A `.cfg` file being written.
struct Cfg {
    /// The text so far.
    body: String,
}

impl Cfg {
    /// The version line, then `comment` as `##` lines.
    fn new(comment: &[&str]) -> Cfg {
        let mut body = String::from("#!version:1.0.0.1\n");
        for line in comment {
            body.push_str("## ");
            body.push_str(line);
            body.push('\n');
        }
        Cfg { body }
    }

    /// A blank line and a `##` heading.
    fn section(&mut self, heading: &str) {
        self.body.push_str("\n## ");
        self.body.push_str(heading);
        self.body.push('\n');
    }

    /// `key = value`. Values are numbers or checked text.
    fn set(&mut self, key: impl Display, value: impl Display) {
        let start = self.body.len();
        // Writing to a String cannot fail.
        let _ = writeln!(self.body, "{key} = {value}");
        debug_assert_eq!(
            self.body[start..].matches(['\n', '\r']).count(),
            1,
            "a value broke its line"
        );
    }

    /// `key = text`, or `%NULL%` when the text is empty.
    fn set_text(&mut self, key: impl Display, text: &str) {
        self.set(key, if text.is_empty() { CLEAR } else { text });
    }

    fn finish(self, name: String, secret: bool) -> File {
        File {
            name,
            content_type: CONTENT_TYPE,
            body: self.body,
            secret,
        }
    }
}

/// The common file: the site's time settings, nothing else. Every phone
/// fetches it without saying who it is, so it carries no account and no
/// secret. `true` when the time zone was known.
pub(crate) fn common_file(site: &SiteSettings) -> (File, bool) {
    let mut cfg = Cfg::new(&[
        "edgepbx: settings common to every Yealink phone of this site.",
        "No accounts and no credentials here: each phone's own <mac>.cfg follows.",
    ]);
    let known = time_settings(&mut cfg, site);
    (cfg.finish(COMMON_FILE.to_owned(), false), known)
}

/// A phone's own file: its account, features, time, phonebook,
/// provisioning URL and line keys. The profile has been validated.
pub(crate) fn device_file(profile: &PhoneProfile) -> DeviceFile {
    let account = &profile.account;
    let mac = profile.mac;
    let model = profile.model.as_deref();
    let heading = format!(
        "edgepbx: configuration of the phone {mac} ({}).",
        model.unwrap_or("model unknown")
    );
    let mut cfg = Cfg::new(&[
        &heading,
        "Rendered by edgepbx; changes made here are overwritten.",
    ]);

    cfg.section("Account 1");
    cfg.set("account.1.enable", 1);
    cfg.set_text("account.1.label", account.label());
    cfg.set_text("account.1.display_name", &account.display_name);
    cfg.set_text("account.1.auth_name", &account.auth_name);
    cfg.set_text("account.1.user_name", &account.user_name);
    cfg.set_text("account.1.password", &account.password);
    cfg.set_text("account.1.sip_server.1.address", &account.server.host);
    cfg.set("account.1.sip_server.1.port", account.server.port);
    cfg.set(
        "account.1.sip_server.1.transport_type",
        account.server.transport.code(),
    );
    cfg.set(
        "account.1.sip_server.1.expires",
        account.registration_expiry_secs,
    );
    match account.keep_alive_secs {
        Some(secs) => {
            cfg.set("account.1.nat.udp_update_enable", 1);
            cfg.set("account.1.nat.udp_update_time", secs);
        }
        None => cfg.set("account.1.nat.udp_update_enable", 0),
    }

    cfg.section("Features");
    cfg.set(
        "features.feature_key_sync.enable",
        u8::from(profile.feature_key_sync),
    );

    let known_time_zone = time_settings(&mut cfg, &profile.site);

    cfg.section("Remote phonebook");
    match &profile.phonebook {
        Some(phonebook) => {
            cfg.set_text("remote_phonebook.data.1.url", &phonebook.url);
            cfg.set_text("remote_phonebook.data.1.name", &phonebook.name);
        }
        None => {
            cfg.set("remote_phonebook.data.1.url", CLEAR);
            cfg.set("remote_phonebook.data.1.name", CLEAR);
        }
    }

    if let Some(url) = &profile.provisioning_url {
        cfg.section("Provisioning");
        cfg.set_text("static.auto_provision.server.url", url);
    }

    let capacity = line_key_count(Vendor::Yealink, model);
    cfg.section(&format!(
        "Line keys: {capacity} on this model, key 1 is the account's line"
    ));
    cfg.set("linekey.1.type", KEY_LINE);
    cfg.set("linekey.1.line", 1);
    cfg.set("linekey.1.value", CLEAR);
    cfg.set("linekey.1.label", CLEAR);
    let room = capacity.saturating_sub(1);
    for (index, key) in profile.keys.iter().take(room).enumerate() {
        let n = index + 2;
        let kind = match key {
            LineKey::Blf(_) => KEY_BLF,
            LineKey::SpeedDial(_) => KEY_SPEED_DIAL,
        };
        cfg.set(format_args!("linekey.{n}.type"), kind);
        cfg.set(format_args!("linekey.{n}.line"), 1);
        cfg.set_text(format_args!("linekey.{n}.value"), key.key().number());
        cfg.set_text(format_args!("linekey.{n}.label"), key.key().label());
    }
    // Keys no longer assigned are cleared, or they would keep their old
    // number after an administrator removed it.
    for n in (profile.keys.len().min(room) + 2)..=capacity {
        cfg.set(format_args!("linekey.{n}.type"), KEY_NONE);
        cfg.set(format_args!("linekey.{n}.value"), CLEAR);
        cfg.set(format_args!("linekey.{n}.label"), CLEAR);
    }

    DeviceFile {
        file: cfg.finish(format!("{mac}.cfg"), true),
        dropped_keys: profile.keys.len().saturating_sub(room),
        unknown_time_zone: !known_time_zone,
    }
}

/// NTP server and time zone; `true` when the zone was known.
fn time_settings(cfg: &mut Cfg, site: &SiteSettings) -> bool {
    let (zone, known) = PhoneTimeZone::resolve(&site.time_zone);
    cfg.section(&format!("Time: {}", zone.iana));
    if let Some(ntp) = &site.ntp_server {
        cfg.set_text("local_time.ntp_server1", ntp);
    }
    cfg.set("local_time.time_zone", zone.yealink_offset);
    cfg.set("local_time.time_zone_name", zone.yealink_name);
    // Summer time from the phone's own table for the zone name.
    cfg.set("local_time.summer_time", 2);
    known
}
