//! What the extensions API reads and writes: the editable settings, the
//! views it answers with, and the bodies and parameters of its requests.

use edgepbx_engine::LineState;
use edgepbx_engine::time::rfc3339;
use edgepbx_store::{CallSettings, Extension, ForwardTarget};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::super::Problem;
use super::super::versions;

/// Where calls go under each condition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Forwarding {
    /// Every call: a number or `voicemail`.
    pub unconditional: Option<String>,
    /// When busy.
    pub busy: Option<String>,
    /// When unanswered within the ring timeout (also after follow-me).
    pub no_answer: Option<String>,
    /// When no device is registered.
    pub offline: Option<String>,
}

/// One find-me/follow-me destination.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FollowMeStep {
    /// Number to ring.
    pub number: String,
    /// Seconds it rings.
    pub timeout_secs: u32,
}

/// Find-me/follow-me.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FollowMeView {
    /// `simultaneous` or `sequential`.
    pub mode: String,
    /// In order.
    pub destinations: Vec<FollowMeStep>,
}

/// Voicemail, as written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Voicemail {
    /// Unanswered calls go to voicemail when no rule applies.
    pub enabled: bool,
    /// Where notifications go.
    pub email: Option<String>,
    /// The e-mail of a new message carries its audio (default true).
    pub attach_audio: bool,
    /// A message is deleted from the mailbox once e-mailed.
    pub delete_after_email: bool,
    /// Calling the mailbox from the extension's own phone asks no PIN.
    pub skip_pin_on_own_phone: bool,
    /// A new PIN (4 to 12 digits); write-only, `null` removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

impl Default for Voicemail {
    fn default() -> Self {
        Voicemail {
            enabled: false,
            email: None,
            attach_audio: true,
            delete_after_email: false,
            skip_pin_on_own_phone: false,
            pin: None,
        }
    }
}

/// Voicemail, as read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VoicemailView {
    /// Unanswered calls go to voicemail when no rule applies.
    pub enabled: bool,
    /// Where notifications go.
    pub email: Option<String>,
    /// The e-mail of a new message carries its audio.
    pub attach_audio: bool,
    /// A message is deleted from the mailbox once e-mailed.
    pub delete_after_email: bool,
    /// Calling the mailbox from the extension's own phone asks no PIN.
    pub skip_pin_on_own_phone: bool,
    /// A PIN is set.
    pub pin_set: bool,
}

/// Caller ID.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallerId {
    /// Number shown on external calls (null: the tenant's).
    pub outbound: Option<String>,
    /// Put before callers' names on calls to this extension.
    pub inbound_prefix: Option<String>,
}

/// Company directory entry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryEntry {
    /// Listed in the directory.
    pub listed: bool,
    /// E-mail shown.
    pub email: Option<String>,
    /// Department shown.
    pub department: Option<String>,
}

impl Default for DirectoryEntry {
    fn default() -> Self {
        DirectoryEntry {
            listed: true,
            email: None,
            department: None,
        }
    }
}

fn all() -> String {
    "all".into()
}

/// The top-level fields of [`Editable`]; others are refused by
/// [`reject_unknown`] (not by serde, so that the creation body's schema can
/// extend this one).
const EDITABLE_FIELDS: &[&str] = &[
    "name",
    "aliases",
    "ring_timeout_secs",
    "dnd",
    "away",
    "forwarding",
    "follow_me",
    "voicemail",
    "caller_id",
    "directory",
    "allowed_destinations",
];

/// Refuses a body with a top-level field that is not editable, naming it.
/// What an extension user may change of their own extension: how calls
/// reach them, not who they are or what they may dial.
const PERSONAL_FIELDS: &[&str] = &[
    "ring_timeout_secs",
    "dnd",
    "away",
    "forwarding",
    "follow_me",
    "voicemail",
];

/// Refuses an extension user's change of an administrator's field (403,
/// naming the field).
pub(super) fn reject_impersonal(body: &serde_json::Map<String, Value>) -> Result<(), Problem> {
    match body.keys().find(|k| !PERSONAL_FIELDS.contains(&k.as_str())) {
        Some(field) => Err(Problem::forbidden_field(
            field.clone(),
            "only an administrator changes this; an extension user changes dnd, away, \
             forwarding, follow_me, voicemail and ring_timeout_secs",
        )),
        None => Ok(()),
    }
}

pub(super) fn reject_unknown(body: &serde_json::Map<String, Value>) -> Result<(), Problem> {
    match body.keys().find(|k| !EDITABLE_FIELDS.contains(&k.as_str())) {
        Some(unknown) => Err(Problem::field(unknown.clone(), "unknown field")),
        None => Ok(()),
    }
}

/// Every field an administrator may change: the target of a JSON merge
/// patch (RFC 7396), and with `number` the body of a creation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Editable {
    /// Display name.
    pub name: String,
    /// Other names that reach it.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Seconds its devices ring (null: the server default).
    #[serde(default)]
    pub ring_timeout_secs: Option<u32>,
    /// Do not disturb.
    #[serde(default)]
    pub dnd: bool,
    /// Away: buddy lists show it; calls ring as usual.
    #[serde(default)]
    pub away: bool,
    /// Forwarding rules.
    #[serde(default)]
    pub forwarding: Forwarding,
    /// Find-me/follow-me.
    #[serde(default)]
    pub follow_me: Option<FollowMeView>,
    /// Voicemail.
    #[serde(default)]
    pub voicemail: Voicemail,
    /// Caller ID.
    #[serde(default)]
    pub caller_id: CallerId,
    /// Directory entry.
    #[serde(default)]
    pub directory: DirectoryEntry,
    /// External numbers it may call: `all`, `none` or patterns.
    #[serde(default = "all")]
    pub allowed_destinations: String,
}

/// An extension as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExtensionView {
    /// Its number.
    pub number: String,
    /// Display name.
    pub name: String,
    /// Digest username that works on any address.
    pub username: String,
    /// Other names that reach it.
    pub aliases: Vec<String>,
    /// `online`, `ringing`, `in_use`, `offline`, `dnd` or `away`.
    pub status: &'static str,
    /// Registered devices.
    pub devices: usize,
    /// Seconds its devices ring (null: the server default).
    pub ring_timeout_secs: Option<u32>,
    /// Do not disturb.
    pub dnd: bool,
    /// Away.
    pub away: bool,
    /// Forwarding rules.
    pub forwarding: Forwarding,
    /// Find-me/follow-me.
    pub follow_me: Option<FollowMeView>,
    /// Voicemail.
    pub voicemail: VoicemailView,
    /// Caller ID.
    pub caller_id: CallerId,
    /// Directory entry.
    pub directory: DirectoryEntry,
    /// External numbers it may call.
    pub allowed_destinations: String,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// Its version, as the `ETag` header gives it: send it back in
    /// `If-Match` so that a change made meanwhile by someone else is not
    /// overwritten (412). Live fields (`status`, `devices`) are not part
    /// of it.
    pub etag: String,
    /// The SIP password: only in the answer to a creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// What an extension's user said of being reached, as status words
/// show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Availability {
    /// Do not disturb.
    pub dnd: bool,
    /// Away.
    pub away: bool,
}

impl From<&CallSettings> for Availability {
    fn from(s: &CallSettings) -> Self {
        Availability {
            dnd: s.dnd,
            away: s.away,
        }
    }
}

/// A BLF status word for a line.
pub fn status(line: Option<&LineState>, set: Availability) -> &'static str {
    line.map_or("offline", |l| {
        status_of(l.devices.len(), l.ringing > 0, l.talking > 0, set)
    })
}

/// A BLF status word: `in_use`, `ringing`, `offline`, `dnd`, `away` or
/// `online`, the first that holds.
pub fn status_of(devices: usize, ringing: bool, talking: bool, set: Availability) -> &'static str {
    if talking {
        "in_use"
    } else if ringing {
        "ringing"
    } else if devices == 0 {
        "offline"
    } else if set.dnd {
        "dnd"
    } else if set.away {
        "away"
    } else {
        "online"
    }
}

/// What an administrator may change of a stored extension.
pub fn editable(e: &Extension) -> Editable {
    let s = &e.settings;
    let text = |t: &Option<ForwardTarget>| t.as_ref().map(ToString::to_string);
    Editable {
        name: e.name.clone(),
        aliases: e.aliases.clone(),
        ring_timeout_secs: s.ring_timeout_secs,
        dnd: s.dnd,
        away: s.away,
        forwarding: Forwarding {
            unconditional: text(&s.forward_unconditional),
            busy: text(&s.forward_busy),
            no_answer: text(&s.forward_no_answer),
            offline: text(&s.forward_offline),
        },
        follow_me: s.follow_me.as_ref().map(|f| FollowMeView {
            mode: f.mode.as_str().to_owned(),
            destinations: f
                .destinations
                .iter()
                .map(|d| FollowMeStep {
                    number: d.number.clone(),
                    timeout_secs: d.timeout_secs,
                })
                .collect(),
        }),
        voicemail: Voicemail {
            enabled: s.voicemail,
            email: e.profile.voicemail_email.clone(),
            attach_audio: e.profile.voicemail_attach,
            delete_after_email: e.profile.voicemail_delete_after_email,
            skip_pin_on_own_phone: e.profile.voicemail_skip_pin,
            pin: None,
        },
        caller_id: CallerId {
            outbound: s.outbound_caller_id.clone(),
            inbound_prefix: s.inbound_prefix.clone(),
        },
        directory: DirectoryEntry {
            listed: e.profile.listed,
            email: e.profile.email.clone(),
            department: e.profile.department.clone(),
        },
        allowed_destinations: s.allowed_destinations.to_string(),
    }
}

/// The view of a stored extension with its live line.
pub fn view(e: &Extension, line: Option<&LineState>) -> ExtensionView {
    let ed = editable(e);
    ExtensionView {
        number: e.number.clone(),
        username: format!("{}-{}", e.number, e.tenant),
        status: status(line, (&e.settings).into()),
        devices: line.map_or(0, |l| l.devices.len()),
        name: ed.name,
        aliases: ed.aliases,
        ring_timeout_secs: ed.ring_timeout_secs,
        dnd: ed.dnd,
        away: ed.away,
        forwarding: ed.forwarding,
        follow_me: ed.follow_me,
        voicemail: VoicemailView {
            enabled: ed.voicemail.enabled,
            email: ed.voicemail.email,
            attach_audio: ed.voicemail.attach_audio,
            delete_after_email: ed.voicemail.delete_after_email,
            skip_pin_on_own_phone: ed.voicemail.skip_pin_on_own_phone,
            pin_set: e.profile.voicemail_pin_hash.is_some(),
        },
        caller_id: ed.caller_id,
        directory: ed.directory,
        allowed_destinations: ed.allowed_destinations,
        created_at: rfc3339(e.created_at),
        updated_at: rfc3339(e.updated_at),
        etag: versions::etag(e),
        password: None,
    }
}

/// Listing options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Tenant (system admins).
    pub(super) tenant: Option<String>,
    /// Matches number, name, username or alias (case-insensitive).
    pub(super) q: Option<String>,
    /// `number`, `name`, `username`, `status`, `devices` or `voicemail`.
    pub(super) sort: Option<String>,
    /// `asc` or `desc`.
    pub(super) order: Option<String>,
    /// From 1.
    pub(super) page: Option<usize>,
    /// 1 to 1000 (default 50).
    pub(super) per_page: Option<usize>,
}

/// One page of extensions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionPage {
    /// The extensions of this page.
    pub(super) items: Vec<ExtensionView>,
    /// How many match.
    pub(super) total: usize,
    /// This page, from 1.
    pub(super) page: usize,
    /// Page size.
    pub(super) per_page: usize,
}

/// A new extension: `number`, optional `password`, and any field of
/// [`Editable`].
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewExtensionBody {
    /// 1 to 15 digits.
    pub number: String,
    /// SIP password (8 to 128 characters); generated when omitted.
    pub password: Option<String>,
    /// Display name, and the other editable fields.
    #[serde(flatten)]
    pub fields: Editable,
}

/// A SIP password.
#[derive(Debug, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Password {
    /// The password; on a reset, omit it to have one generated.
    pub(super) password: Option<String>,
}

/// What a web phone registers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebPhone {
    /// The extension's number.
    pub extension: String,
    /// Its display name.
    pub name: String,
    /// Digest username (`<number>-<TENANT>`).
    pub username: String,
    /// SIP password.
    pub password: String,
    /// The tenant's SIP domain: the registrar's URI is `sip:<domain>`.
    pub domain: String,
    /// Path of the SIP WebSocket on this listener.
    pub path: String,
}

/// A registered device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    /// Its contact URI.
    pub(super) contact: String,
    /// Its User-Agent.
    pub(super) user_agent: Option<String>,
    /// Where it registered from.
    pub(super) source: String,
    /// `udp` or `tcp`.
    pub(super) transport: &'static str,
    /// When the registration expires.
    pub(super) expires_at: String,
    /// When it was last heard: its last REGISTER or keepalive answer.
    pub(super) last_seen: Option<String>,
    /// What it subscribed to.
    pub(super) subscriptions: Vec<SubscriptionView>,
}

/// A device's subscription (a BLF key, a buddy, its mailbox).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    /// `dialog`, `presence`, `message-summary` or `as-feature-event`.
    pub(super) package: &'static str,
    /// The extension or group number watched.
    pub(super) target: String,
    /// When it expires unless the device refreshes it.
    pub(super) expires_at: String,
}

/// How far back.
#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    /// Tenant (system admins).
    pub(super) tenant: Option<String>,
    /// Hours back, 1 to 168 (default 24).
    pub(super) hours: Option<u64>,
}

/// An online or offline transition of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct Transition {
    /// When.
    pub(super) at: String,
    /// Came online (true) or went offline.
    pub(super) online: bool,
    /// The device's contact.
    pub(super) contact: String,
    /// Why.
    pub(super) reason: String,
    /// Where it registered from.
    pub(super) source: String,
    /// Its User-Agent.
    pub(super) user_agent: Option<String>,
}

/// A bulk action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bulk {
    /// The extensions.
    pub(super) numbers: Vec<String>,
    /// `delete`, `voicemail_on` or `voicemail_off`.
    pub(super) action: String,
}

/// How many extensions an action changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Affected {
    /// Count.
    pub(super) affected: usize,
}
