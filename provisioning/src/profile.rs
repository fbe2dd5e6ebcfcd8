//! What rendering needs to know about one phone: its account, its keys,
//! the site's time settings and where the phone fetches the rest.

use std::fmt;

use edgepbx_model::{BlfKey, Mac, Vendor, is_dialable};

use crate::RenderError;
use crate::text;

/// Shortest registration interval a profile may ask for, in seconds.
pub const MIN_REGISTRATION_SECS: u32 = 60;
/// Longest registration interval a profile may ask for, in seconds.
pub const MAX_REGISTRATION_SECS: u32 = 86_400;
/// Shortest NAT keep-alive interval, in seconds.
pub const MIN_KEEP_ALIVE_SECS: u32 = 10;
/// Longest NAT keep-alive interval, in seconds.
pub const MAX_KEEP_ALIVE_SECS: u32 = 3_600;
/// Longest name, label or user name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest model name.
const MAX_MODEL_LEN: usize = 32;

/// Everything rendering needs for one phone. The caller (the HTTP server)
/// assembles it from the device record, its extension's credentials, the
/// tenant's settings and its own address; [`PhoneProfile::validate`]
/// checks it, and every rendering function calls that first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneProfile {
    /// Which vendor's files to render.
    pub vendor: Vendor,
    /// The model (`T46S`, `SIP-T46S`, `GXP2170`), which sets how many line
    /// keys are written; `None` when unknown.
    pub model: Option<String>,
    /// The phone's MAC address: names its file, and Grandstream phones
    /// check it against their own.
    pub mac: Mac,
    /// The SIP account the phone registers.
    pub account: SipAccount,
    /// The programmable keys, in order, after the account's own line key.
    /// Keys beyond the model's count are not written (see
    /// [`Rendered::dropped_keys`](crate::Rendered::dropped_keys)).
    pub keys: Vec<LineKey>,
    /// Time settings shared by the tenant's phones.
    pub site: SiteSettings,
    /// The remote phonebook the phone loads, if any.
    pub phonebook: Option<PhonebookLink>,
    /// The URL the phone fetches its files from on later resyncs; `None`
    /// leaves the phone's setting alone (DHCP option 66 or a redirection
    /// service may have set it).
    pub provisioning_url: Option<String>,
    /// Keep do-not-disturb and forwarding on the phone's keys in step with
    /// the server (BroadSoft feature key synchronisation, which the server
    /// speaks through the `as-feature-event` package).
    pub feature_key_sync: bool,
}

/// The account a phone registers: its credentials and the server.
#[derive(Clone, PartialEq, Eq)]
pub struct SipAccount {
    /// Shown on the phone and sent in From headers; may be empty.
    pub display_name: String,
    /// The SIP user name (`100-DEMO`).
    pub user_name: String,
    /// The digest authentication user name, usually the user name.
    pub auth_name: String,
    /// The digest password (never shown, never in errors).
    pub password: String,
    /// Where the phone registers.
    pub server: SipServer,
    /// How long a registration lasts, in seconds.
    pub registration_expiry_secs: u32,
    /// Interval of the phone's NAT keep-alive packets, in seconds; `None`
    /// sends none.
    pub keep_alive_secs: Option<u32>,
}

// The password stays out of logs.
impl fmt::Debug for SipAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SipAccount")
            .field("display_name", &self.display_name)
            .field("user_name", &self.user_name)
            .field("auth_name", &self.auth_name)
            .field("password", &"<redacted>")
            .field("server", &self.server)
            .field("registration_expiry_secs", &self.registration_expiry_secs)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .finish()
    }
}

/// The registrar and proxy the account uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipServer {
    /// Host name or IP address (IPv6 in brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub transport: Transport,
}

/// The SIP transport an account uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// The number both vendors use for it: 0 UDP, 1 TCP, 2 TLS (Yealink
    /// `account.1.sip_server.1.transport_type`, Grandstream P130).
    pub fn code(self) -> u8 {
        match self {
            Transport::Udp => 0,
            Transport::Tcp => 1,
            Transport::Tls => 2,
        }
    }
}

/// Settings the same for every phone of a site (a tenant): what may go in
/// Yealink's common file, which every phone fetches without saying who it
/// is. Nothing here is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSettings {
    /// NTP server (host name or address); `None` leaves the phone's own.
    pub ntp_server: Option<String>,
    /// IANA time zone (`Europe/Berlin`), mapped to each vendor's form by
    /// [`PhoneTimeZone`](crate::PhoneTimeZone); unknown zones fall back to
    /// UTC.
    pub time_zone: String,
}

/// A remote phonebook for the phone's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhonebookLink {
    /// `http://` or `https://` URL of the file [`phonebook`](crate::phonebook)
    /// renders.
    pub url: String,
    /// Its name in the phone's directory menu (Yealink only).
    pub name: String,
}

/// What a programmable key does. Both kinds take the same validated
/// number and label as a BLF key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKey {
    /// Watches the number's state (the dialog event package), dials it or
    /// picks up its ringing call.
    Blf(BlfKey),
    /// Dials the number.
    SpeedDial(BlfKey),
}

impl LineKey {
    /// The number and label.
    pub fn key(&self) -> &BlfKey {
        match self {
            LineKey::Blf(key) | LineKey::SpeedDial(key) => key,
        }
    }
}

/// One entry of a phonebook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The name shown.
    pub name: String,
    /// The number dialled: 1 to 32 of digits, `+`, `*`, `#`.
    pub number: String,
}

impl PhoneProfile {
    /// Checks every value against what the phones can take and what could
    /// break a file's structure (see [`RenderError`]).
    pub fn validate(&self) -> Result<(), RenderError> {
        if let Some(model) = &self.model {
            let valid = (1..=MAX_MODEL_LEN).contains(&model.len())
                && model
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b" -_()".contains(&b));
            if !valid {
                return Err(RenderError::InvalidModel {
                    value: model.chars().take(MAX_MODEL_LEN).collect(),
                });
            }
        }
        self.account.validate()?;
        self.site.validate()?;
        if let Some(phonebook) = &self.phonebook {
            text::url("phonebook.url", &phonebook.url)?;
            text::required("phonebook.name", &phonebook.name, MAX_NAME_CHARS)?;
        }
        if let Some(url) = &self.provisioning_url {
            text::url("provisioning_url", url)?;
        }
        // Keys are BlfKeys, valid by construction.
        Ok(())
    }
}

impl SipAccount {
    fn validate(&self) -> Result<(), RenderError> {
        text::text("account.display_name", &self.display_name, MAX_NAME_CHARS)?;
        text::credential("account.user_name", &self.user_name, MAX_NAME_CHARS)?;
        text::credential("account.auth_name", &self.auth_name, MAX_NAME_CHARS)?;
        text::credential("account.password", &self.password, MAX_PASSWORD_CHARS)?;
        text::host("account.server.host", &self.server.host)?;
        text::range(
            "account.server.port",
            u32::from(self.server.port),
            1,
            u32::from(u16::MAX),
        )?;
        text::range(
            "account.registration_expiry_secs",
            self.registration_expiry_secs,
            MIN_REGISTRATION_SECS,
            MAX_REGISTRATION_SECS,
        )?;
        if let Some(secs) = self.keep_alive_secs {
            text::range(
                "account.keep_alive_secs",
                secs,
                MIN_KEEP_ALIVE_SECS,
                MAX_KEEP_ALIVE_SECS,
            )?;
        }
        Ok(())
    }

    /// What the phone shows for the account: the display name, or the
    /// user name when there is none.
    pub(crate) fn label(&self) -> &str {
        if self.display_name.is_empty() {
            &self.user_name
        } else {
            &self.display_name
        }
    }
}

impl SiteSettings {
    /// Checks the NTP server and the time zone's text (an unknown zone is
    /// not an error: it falls back to UTC).
    pub fn validate(&self) -> Result<(), RenderError> {
        if let Some(ntp) = &self.ntp_server {
            text::host("site.ntp_server", ntp)?;
        }
        text::text("site.time_zone", &self.time_zone, MAX_NAME_CHARS)
    }
}

impl DirectoryEntry {
    /// Checks the name (1 to 64 characters, no control characters) and the
    /// number (dialable).
    pub fn validate(&self) -> Result<(), RenderError> {
        text::required("directory.name", &self.name, MAX_NAME_CHARS)?;
        if !is_dialable(&self.number) {
            return Err(RenderError::NotDialable {
                field: "directory.number",
                value: self.number.chars().take(40).collect(),
            });
        }
        Ok(())
    }
}
