//! Provisioning for desk phones: the configuration files and phonebooks
//! Yealink and Grandstream phones fetch over HTTP(S) to set themselves up,
//! rendered from edgepbx's data.
//!
//! # Design
//!
//! Data in, files out. This crate opens no socket, reads no file and no
//! clock, and keeps no state: the HTTP server (in `host/server`) gathers a
//! [`PhoneProfile`] from the store, calls a function here, and sends the
//! [`File`] it gets back. Everything that varies between deployments (the
//! server's address, the provisioning and phonebook URLs, the time zone)
//! is an input, so the same profile always renders the same bytes, which
//! is what the golden-file tests hold the templates to.
//!
//! Nothing is written until every value is checked
//! ([`PhoneProfile::validate`], [`DirectoryEntry::validate`]): a value that
//! could break a file's structure (any control character, so no line break
//! that would start a new Yealink setting) or that a phone cannot take is
//! a typed [`RenderError`] naming the field, never a half-written file.
//! XML values are escaped on top of that. Files that hold credentials say
//! so ([`File::secret`]) so that the server hands them only to a device it
//! has authenticated.
//!
//! What does not fit is reported rather than failed: BLF keys beyond the
//! model's line keys are left out and counted
//! ([`Rendered::dropped_keys`]), an unknown time zone renders as UTC and
//! is flagged ([`Rendered::unknown_time_zone`]), so that the server can
//! warn the administrator while the phone still works.
//!
//! # Map
//!
//! - The input: [`PhoneProfile`] with its [`SipAccount`], [`LineKey`]s,
//!   [`SiteSettings`] and [`PhonebookLink`]; [`DirectoryEntry`] for
//!   phonebooks. MAC addresses, vendors and BLF keys are the model's
//!   ([`Mac`], [`Vendor`], [`BlfKey`]).
//! - The output: [`render`] (every file of one phone), or one at a time
//!   [`common_file`], [`device_file`], [`phonebook`].
//! - Requests: [`RequestedFile::parse`] tells from a request path which
//!   file, and for which MAC address, a phone wants.
//! - Tables: [`PhoneTimeZone`] (IANA zones in each vendor's form) and
//!   [`line_key_count`] (line keys per model).
//! - The vendors: Yealink's `.cfg` files and Grandstream's P-value XML are
//!   private modules, documented in the crate README with the sources of
//!   every key.
//!
//! # Serving a request
//!
//! ```
//! use edgepbx_provisioning::{RequestedFile, device_file, common_file, Vendor};
//! # use edgepbx_provisioning::*;
//! # fn profile_of(mac: Mac) -> Option<PhoneProfile> { None }
//! # let site = SiteSettings { ntp_server: None, time_zone: "Europe/Berlin".into() };
//! // The server has authenticated the request and routed it here.
//! let response = match RequestedFile::parse("/prov/805ec0123456.cfg") {
//!     Some(RequestedFile::YealinkCommon) => common_file(Vendor::Yealink, &site)?,
//!     Some(request @ (RequestedFile::YealinkDevice(mac) | RequestedFile::GrandstreamDevice(mac))) => {
//!         // Only a device of the vendor whose file this is.
//!         match profile_of(mac).filter(|p| Some(p.vendor) == request.vendor()) {
//!             Some(profile) => Some(device_file(&profile)?.file),
//!             None => None,
//!         }
//!     }
//!     Some(RequestedFile::Phonebook) => None, // phonebook(vendor, &entries)
//!     Some(RequestedFile::Unserved(_)) | None => None, // 404
//! };
//! assert!(response.is_none());
//! # Ok::<(), RenderError>(())
//! ```

mod error;
mod grandstream;
mod line_keys;
mod phonebook;
mod profile;
mod request;
mod text;
mod time_zone;
mod yealink;

pub use edgepbx_model::{BlfKey, Mac, PhoneIdentity, Vendor};
pub use error::RenderError;
pub use line_keys::{DEFAULT_LINE_KEYS, is_known_model, line_key_count};
pub use profile::{
    DirectoryEntry, LineKey, MAX_KEEP_ALIVE_SECS, MAX_NAME_CHARS, MAX_PASSWORD_CHARS,
    MAX_REGISTRATION_SECS, MIN_KEEP_ALIVE_SECS, MIN_REGISTRATION_SECS, PhoneProfile, PhonebookLink,
    SipAccount, SipServer, SiteSettings, Transport,
};
pub use request::{RequestedFile, UnservedFile};
pub use time_zone::PhoneTimeZone;

/// The `Event` of the SIP NOTIFY that makes a registered phone of
/// `vendor` fetch its configuration again without rebooting (Yealink
/// reads `reboot=false`; Grandstream firmware 1.0.x acts on `check-sync`
/// as it is, rebooting only when its files ask it to).
pub fn check_sync_event(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Yealink => "check-sync;reboot=false",
        Vendor::Grandstream => "check-sync",
    }
}

/// The name under which phones fetch the phonebook.
pub const PHONEBOOK_FILE: &str = "phonebook.xml";
/// Most entries in one phonebook.
pub const MAX_DIRECTORY_ENTRIES: usize = 5_000;
/// Content type of the XML phonebooks.
const XML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// One rendered file.
#[derive(Clone, PartialEq, Eq)]
pub struct File {
    /// The name the phone asks for (`805ec0123456.cfg`).
    pub name: String,
    /// The HTTP `Content-Type` to send it with.
    pub content_type: &'static str,
    /// The text.
    pub body: String,
    /// Whether it holds credentials: serve it only to an authenticated
    /// device, and never cache or log it.
    pub secret: bool,
}

// A secret body stays out of logs.
impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body: &dyn std::fmt::Debug = if self.secret {
            &"<redacted>"
        } else {
            &self.body
        };
        f.debug_struct("File")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("body", body)
            .field("secret", &self.secret)
            .finish()
    }
}

/// A phone's own file and what did not fit in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFile {
    /// `<mac>.cfg` or `cfg<mac>.xml`.
    pub file: File,
    /// Programmable keys left out because the model has no room for them.
    pub dropped_keys: usize,
    /// The site's time zone was not in the table and UTC was written.
    pub unknown_time_zone: bool,
}

/// Every file of one phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Yealink: the common file, then the phone's own; Grandstream: the
    /// phone's own.
    pub files: Vec<File>,
    /// Programmable keys left out because the model has no room for them.
    pub dropped_keys: usize,
    /// The site's time zone was not in the table and UTC was written.
    pub unknown_time_zone: bool,
}

impl Rendered {
    /// The file named `name`, if rendered.
    pub fn file(&self, name: &str) -> Option<&File> {
        self.files.iter().find(|file| file.name == name)
    }
}

/// Every file of the phone `profile` describes.
pub fn render(profile: &PhoneProfile) -> Result<Rendered, RenderError> {
    let device = device_file(profile)?;
    let mut files = Vec::with_capacity(2);
    if let Some(common) = common_file(profile.vendor, &profile.site)? {
        files.push(common);
    }
    files.push(device.file);
    Ok(Rendered {
        files,
        dropped_keys: device.dropped_keys,
        unknown_time_zone: device.unknown_time_zone,
    })
}

/// The vendor's common file, the same for every phone of a site and free
/// of secrets: Yealink's `y000000000000.cfg`; Grandstream has none.
pub fn common_file(vendor: Vendor, site: &SiteSettings) -> Result<Option<File>, RenderError> {
    site.validate()?;
    Ok(match vendor {
        Vendor::Yealink => Some(yealink::common_file(site).0),
        Vendor::Grandstream => None,
    })
}

/// The phone's own file: `<mac>.cfg` (Yealink) or `cfg<mac>.xml`
/// (Grandstream), with its credentials.
pub fn device_file(profile: &PhoneProfile) -> Result<DeviceFile, RenderError> {
    profile.validate()?;
    Ok(match profile.vendor {
        Vendor::Yealink => yealink::device_file(profile),
        Vendor::Grandstream => grandstream::device_file(profile),
    })
}

/// The phonebook `phonebook.xml` in the vendor's format, entries in the
/// order given.
pub fn phonebook(vendor: Vendor, entries: &[DirectoryEntry]) -> Result<File, RenderError> {
    if entries.len() > MAX_DIRECTORY_ENTRIES {
        return Err(RenderError::TooManyEntries {
            count: entries.len(),
            max: MAX_DIRECTORY_ENTRIES,
        });
    }
    for (index, entry) in entries.iter().enumerate() {
        entry
            .validate()
            .map_err(|problem| RenderError::DirectoryEntry {
                index,
                problem: Box::new(problem),
            })?;
    }
    let body = match vendor {
        Vendor::Yealink => phonebook::yealink(entries),
        Vendor::Grandstream => phonebook::grandstream(entries),
    };
    Ok(File {
        name: PHONEBOOK_FILE.to_owned(),
        content_type: XML_CONTENT_TYPE,
        body,
        secret: false,
    })
}
