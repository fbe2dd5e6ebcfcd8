//! The JSON shapes of the API contract.
//!
//! Every field the console does not strictly need has a default, so that a
//! server a little ahead of or behind the console still decodes.

use serde::{Deserialize, Serialize};

/// RFC 9457 problem details.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Problem {
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: Option<String>,
    /// Validation errors, one per field.
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// Reads a non-2xx answer: problem details when the body is one, else a
    /// problem made of the status line (and the body, when it is short text).
    pub fn from_answer(status: u16, status_text: &str, body: &str) -> Problem {
        if let Ok(mut p) = serde_json::from_str::<Problem>(body) {
            if p.status == 0 {
                p.status = status;
            }
            return p;
        }
        let body = body.trim();
        let detail = (!body.is_empty() && body.len() <= 300 && !body.starts_with('<'))
            .then(|| body.to_string());
        Problem {
            title: format!("{status} {status_text}").trim().to_string(),
            status,
            detail,
            errors: Vec::new(),
        }
    }

    /// What to show a person: the detail, else the title.
    pub fn summary(&self) -> String {
        match &self.detail {
            Some(d) if !d.is_empty() => d.clone(),
            _ if !self.title.is_empty() => self.title.clone(),
            _ => format!("Request failed ({})", self.status),
        }
    }
}

/// One validation error of a problem.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FieldError {
    /// The field it is about, e.g. `name` or `forwarding.busy`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The logged-in user (`GET /session`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Session {
    /// Login email.
    pub email: String,
    /// `system-admin`, `tenant-admin`, `read-only` or `extension-user`.
    pub role: String,
    /// The user's tenant; `None` for a system admin.
    #[serde(default)]
    pub tenant: Option<String>,
    /// An extension user's extension.
    #[serde(default)]
    pub extension: Option<String>,
}

impl Session {
    /// Whether the user administers every tenant.
    pub fn is_system_admin(&self) -> bool {
        self.role == "system-admin"
    }
}

/// What the web phone registers with (`GET /extensions/{n}/webphone`);
/// kept in memory for the page's life only.
#[derive(Clone, Deserialize)]
pub struct WebPhone {
    /// The extension's number.
    pub extension: String,
    /// Its display name.
    pub name: String,
    /// Digest username.
    pub username: String,
    /// SIP password.
    pub password: String,
    /// The tenant's SIP domain.
    pub domain: String,
    /// Path of the SIP WebSocket.
    pub path: String,
}

/// A console user (`GET /users`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ConsoleUser {
    /// Login email.
    pub email: String,
    /// Their role.
    pub role: String,
    /// An extension user's extension.
    #[serde(default)]
    pub extension: Option<String>,
}

/// A tenant (`GET /tenants`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Tenant {
    /// Tenant code, e.g. `ACME`.
    pub code: String,
    /// The tenant's SIP domain.
    #[serde(default)]
    pub sip_domain: String,
}

/// The live state of an extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// At least one device registered and idle.
    Online,
    /// A call is ringing it.
    Ringing,
    /// In a call.
    InUse,
    /// No device registered.
    #[default]
    Offline,
    /// Do not disturb.
    Dnd,
    /// Away (registered, but its user said so).
    Away,
    /// A status this console does not know yet.
    #[serde(other)]
    Unknown,
}

impl Status {
    /// The API's name of the status (also the `data-status` attribute).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Ringing => "ringing",
            Status::InUse => "in_use",
            Status::Offline => "offline",
            Status::Dnd => "dnd",
            Status::Away => "away",
            Status::Unknown => "unknown",
        }
    }

    /// What a person reads.
    pub fn label(self) -> &'static str {
        match self {
            Status::Online => "Online",
            Status::Ringing => "Ringing",
            Status::InUse => "In use",
            Status::Offline => "Offline",
            Status::Dnd => "Do not disturb",
            Status::Away => "Away",
            Status::Unknown => "Unknown",
        }
    }
}

/// Call forwarding targets (a number or `voicemail`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Forwarding {
    /// Always forward.
    pub unconditional: Option<String>,
    /// Forward when busy.
    pub busy: Option<String>,
    /// Forward when not answered within the ring timeout.
    pub no_answer: Option<String>,
    /// Forward when no device is registered.
    pub offline: Option<String>,
}

/// One find-me/follow-me destination.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct FollowMeDestination {
    /// Number to ring.
    pub number: String,
    /// How long it rings.
    pub timeout_secs: u32,
}

/// Find-me/follow-me settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct FollowMe {
    /// `simultaneous` or `sequential`.
    pub mode: String,
    /// Where to ring, in order.
    pub destinations: Vec<FollowMeDestination>,
}

/// Voicemail settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Voicemail {
    /// Whether unanswered calls may leave a message.
    pub enabled: bool,
    /// Where messages are mailed.
    pub email: Option<String>,
    /// The email carries the audio.
    pub attach_audio: bool,
    /// Messages are deleted once emailed.
    pub delete_after_email: bool,
    /// Calling the mailbox from the extension's own phone asks no PIN.
    pub skip_pin_on_own_phone: bool,
    /// Whether a PIN is set (the PIN itself is write-only).
    pub pin_set: bool,
}

/// Caller ID settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CallerId {
    /// Number shown on external calls.
    pub outbound: Option<String>,
    /// Text put before the caller's name on incoming calls.
    pub inbound_prefix: Option<String>,
}

/// Company directory entry of an extension.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Directory {
    /// Whether the extension appears in the directory.
    pub listed: bool,
    /// Email shown in the directory.
    pub email: Option<String>,
    /// Department shown in the directory.
    pub department: Option<String>,
}

/// An extension.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Extension {
    /// Extension number.
    pub number: String,
    /// Its version: sent back in `If-Match` when it is changed, so that
    /// a change made meanwhile elsewhere is not overwritten.
    pub etag: String,
    /// Display name.
    pub name: String,
    /// SIP username (`<number>-<TENANT>`).
    pub username: String,
    /// Other numbers that reach it.
    pub aliases: Vec<String>,
    /// Live status.
    pub status: Status,
    /// Registered devices.
    pub devices: u32,
    /// Ring time before "no answer"; `None`: the server's default.
    pub ring_timeout_secs: Option<u32>,
    /// Do not disturb.
    pub dnd: bool,
    /// Away.
    pub away: bool,
    /// Forwarding.
    pub forwarding: Forwarding,
    /// Find-me/follow-me, `None` when off.
    pub follow_me: Option<FollowMe>,
    /// Voicemail.
    pub voicemail: Voicemail,
    /// Caller ID.
    pub caller_id: CallerId,
    /// Directory entry.
    pub directory: Directory,
    /// `all`, `none` or patterns.
    pub allowed_destinations: String,
    /// The password, only in the answer that created the extension.
    pub password: Option<String>,
}

/// A page of extensions.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ExtensionPage {
    /// The extensions of this page.
    pub items: Vec<Extension>,
    /// How many match in all.
    pub total: u32,
    /// This page's number, from 1.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
}

/// A SIP password (`GET`/`POST /extensions/{n}/password`).
#[derive(Clone, Debug, Deserialize)]
pub struct Password {
    /// The password in clear.
    pub password: String,
}

/// A registered device of an extension.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Device {
    /// Contact URI.
    pub contact: String,
    /// The device's User-Agent.
    pub user_agent: Option<String>,
    /// Source address.
    pub source: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// When the binding expires.
    pub expires_at: String,
    /// When it was last heard (REGISTER or keepalive answer).
    pub last_seen: Option<String>,
    /// What it subscribed to (BLF keys, buddies, its mailbox).
    pub subscriptions: Vec<Subscription>,
}

/// A device's subscription.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Subscription {
    /// `dialog`, `presence`, `message-summary` or `as-feature-event`.
    pub package: String,
    /// The number watched.
    pub target: String,
    /// When it expires unless refreshed.
    pub expires_at: String,
}

/// One registration transition (`GET /extensions/{n}/history`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HistoryEvent {
    /// When.
    pub at: String,
    /// Online after this event.
    pub online: bool,
    /// The device's contact.
    pub contact: Option<String>,
    /// Why (registered, expired, unreachable...).
    pub reason: Option<String>,
    /// Source address.
    pub source: Option<String>,
    /// The device's User-Agent.
    pub user_agent: Option<String>,
}

/// The answer of a bulk action.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct BulkResult {
    /// How many extensions it changed.
    pub affected: u32,
}

/// One entry of `GET /presence` and of the `presence` events.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Presence {
    /// Extension number.
    pub extension: String,
    /// Live status.
    pub status: Status,
    /// Registered devices.
    pub devices: u32,
}

/// A ring group or virtual extension.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Group {
    /// Its number (shares the namespace of extensions).
    pub number: String,
    /// Display name.
    pub name: String,
    /// `ring_group` or `virtual`.
    pub kind: String,
    /// `ring-all`, `hunt`, `round-robin`, `random` or `least-recent`.
    pub strategy: String,
    /// Member extensions.
    pub members: Vec<String>,
    /// How long it rings.
    pub ring_timeout_secs: Option<u32>,
    /// Where unanswered calls go.
    pub no_answer: Option<String>,
    /// Its version: sent back in `If-Match` when it is changed or deleted,
    /// so that a change made meanwhile by someone else is not lost.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

/// A company directory contact.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Contact {
    /// Server-assigned id (empty when creating).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Name.
    pub name: String,
    /// Phone number.
    pub number: String,
    /// Email.
    pub email: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Linked extension.
    pub extension: Option<String>,
    /// Its version: sent back in `If-Match` when it is changed or deleted,
    /// so that a change made meanwhile by someone else is not lost.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

/// A BLF key of a desk phone.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct BlfKey {
    /// The number it watches (an extension or group).
    pub number: String,
    /// Its label; empty shows the number.
    pub label: String,
}

/// The last configuration file a desk phone fetched.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProvisioningFetch {
    /// The file.
    pub file: String,
    /// From this address.
    pub address: String,
    /// With this User-Agent.
    pub user_agent: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// Where a desk phone is registered from (`registered` of a phone).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PhoneRegistration {
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The address it registered from.
    pub address: String,
}

/// A desk phone provisioned by its MAC address (`/devices`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Phone {
    /// MAC address: 12 lower-case hex digits in answers, any usual form
    /// in requests.
    pub mac: String,
    /// `yealink` or `grandstream`; `None` asks the server to tell it from
    /// the MAC address's maker.
    pub vendor: Option<String>,
    /// Model (`T46U`, `GXP2170`): how many line keys it has.
    pub model: Option<String>,
    /// The extension it registers as.
    pub extension: String,
    /// Its account (line) for that extension, from 1; `None`: the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u8>,
    /// BLF keys, in key order.
    pub blf_keys: Vec<BlfKey>,
    /// What the console shows for it.
    pub label: Option<String>,
    /// The last file it fetched; the server refuses it in requests.
    #[serde(skip_serializing)]
    pub last_provisioned: Option<ProvisioningFetch>,
    /// Its registration now, if any; the server refuses it in requests.
    #[serde(skip_serializing)]
    pub registered: Option<PhoneRegistration>,
    /// Its version: sent back in `If-Match` when it is changed or deleted,
    /// so that a change made meanwhile by someone else is not lost.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etag: String,
}

/// The answer of a resync (`POST /devices/resync`, `.../{mac}/resync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Resynced {
    /// Phones asked.
    pub devices: u32,
    /// Registrations told to fetch their files (a phone that is not
    /// registered is told nothing).
    pub notified: u32,
}

/// The tenant's provisioning credential (`GET /provisioning`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Provisioning {
    /// Where the tenant's phones fetch their files, below the server's
    /// address (`/prov/ACME/`).
    pub path: String,
    /// The HTTP user name phones send.
    pub username: String,
    /// Whether a password is set (phones fetch nothing until one is).
    pub configured: bool,
    /// The password, only in the answer that set it.
    pub password: Option<String>,
}

/// A stored routing policy version.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Version number, from 1.
    pub version: u32,
    /// Content hash.
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Who uploaded it.
    pub uploader: String,
    /// When.
    pub uploaded_at: String,
    /// Whether it decides the tenant's calls.
    pub active: bool,
    /// Why it was deactivated.
    pub deactivated_reason: Option<String>,
}

/// An import job (`POST /imports`, `GET /imports/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Import {
    /// Job id.
    pub id: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Whether nothing is written.
    pub dry_run: bool,
    /// Rows processed so far.
    pub processed: u32,
    /// Rows in all.
    pub total: u32,
    /// Errors per row.
    pub errors: Vec<ImportError>,
    /// Extensions created.
    pub created: u32,
    /// Extensions updated.
    pub updated: u32,
    /// Whether the import was written.
    pub committed: bool,
    /// Generated passwords of created extensions.
    pub passwords: Vec<ImportPassword>,
    /// Generated passwords of created console users.
    pub user_passwords: Vec<ImportUserPassword>,
}

/// One error of an import.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImportError {
    /// CSV row (the header is row 1).
    pub row: u32,
    /// Column.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What a phone import found and did (`POST /devices/import.csv`): the
/// answer of a check (a dry run) and of a commit alike.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PhoneImportReport {
    /// Rows read (the header not counted).
    pub rows: u32,
    /// Phones it adds (or added).
    pub created: u32,
    /// Phones it replaces (or replaced).
    pub updated: u32,
    /// Whether it wrote them: false for a check or when any row is wrong.
    pub committed: bool,
    /// Every row's errors; nothing is written while there are any.
    pub errors: Vec<ImportError>,
}

/// A password generated by an import.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImportPassword {
    /// Extension number.
    pub number: String,
    /// Its new password.
    pub password: String,
}

/// A console user's password generated by an import.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ImportUserPassword {
    /// Login e-mail.
    pub email: String,
    /// Their extension.
    pub extension: String,
    /// Their password.
    pub password: String,
}

/// An API key (the key itself only in the answer that created it).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// Whether it may only read.
    pub read_only: bool,
    /// When it was created.
    pub created_at: String,
    /// When it was last used.
    pub last_used_at: Option<String>,
    /// The secret key, shown once.
    pub key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_details_and_plain_errors_are_read() {
        let p = Problem::from_answer(
            422,
            "Unprocessable",
            r#"{"title":"Invalid","status":422,"detail":"bad","errors":[{"field":"name","message":"must not be empty"}]}"#,
        );
        assert_eq!(p.summary(), "bad");
        assert_eq!(p.errors[0].field, "name");
        let p = Problem::from_answer(502, "Bad Gateway", "<html>oops</html>");
        assert_eq!(p.summary(), "502 Bad Gateway");
    }

    #[test]
    fn a_phone_is_sent_without_what_the_server_refuses() {
        let answer = r#"{"mac":"805ec0123456","vendor":"yealink","model":null,"extension":"100","line":1,
            "blf_keys":[{"number":"101","label":"Bob"}],"label":null,
            "last_provisioned":{"file":"805ec0123456.cfg","address":"192.0.2.7","user_agent":null,"at":"2025-01-01T00:00:00Z"},
            "etag":"\"1\""}"#;
        let phone: Phone = serde_json::from_str(answer).expect("valid JSON");
        assert_eq!(phone.line, Some(1));
        let sent = serde_json::to_value(Phone {
            etag: String::new(),
            line: None,
            ..phone
        })
        .expect("serializable");
        let fields: Vec<&str> = sent
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["blf_keys", "extension", "label", "mac", "model", "vendor"]
        );
    }

    #[test]
    fn a_phone_import_report_is_read() {
        let answer = r#"{"rows":2,"created":1,"updated":0,"committed":false,
            "errors":[{"row":3,"field":"extension","message":"no extension 999"}]}"#;
        let report: PhoneImportReport = serde_json::from_str(answer).expect("valid JSON");
        assert_eq!(
            report,
            PhoneImportReport {
                rows: 2,
                created: 1,
                updated: 0,
                committed: false,
                errors: vec![ImportError {
                    row: 3,
                    field: "extension".into(),
                    message: "no extension 999".into(),
                }],
            }
        );
        let clean: PhoneImportReport =
            serde_json::from_str(r#"{"rows":1,"created":1,"committed":true,"errors":[]}"#)
                .expect("valid JSON");
        assert!(clean.committed && clean.errors.is_empty() && clean.updated == 0);
    }

    #[test]
    fn unknown_status_is_tolerated() {
        let p: Presence =
            serde_json::from_str(r#"{"extension":"100","status":"on_fire","devices":1}"#)
                .expect("valid JSON");
        assert_eq!(p.status, Status::Unknown);
    }
}

/// A voice message, as the API lists it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VoiceMessage {
    /// Its id.
    pub id: String,
    /// The caller's number.
    pub caller: String,
    /// The caller's name, when known.
    pub caller_name: Option<String>,
    /// When it was left (RFC 3339).
    pub received_at: String,
    /// Its length in milliseconds.
    pub duration_ms: u64,
    /// Heard (no longer new).
    pub saved: bool,
    /// The API path of its audio.
    pub audio: String,
    /// Its transcript, once made.
    pub transcript: Option<String>,
    /// `off`, `pending`, `done` or `failed`.
    pub transcription: String,
    /// Its email: `off`, `pending`, `done` or `failed`.
    pub email: String,
    /// Why its email failed last.
    pub email_error: Option<String>,
}

/// An extension's mailbox: counts, greetings, messages.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Mailbox {
    /// Messages not yet heard.
    pub new: usize,
    /// Messages heard and kept.
    pub saved: usize,
    /// Greetings recorded (`unavailable`, `busy`, `name`).
    pub greetings: Vec<String>,
    /// Oldest first.
    pub messages: Vec<VoiceMessage>,
}
