//! Voice messages: the record of each message left in an extension's
//! mailbox (its audio is a file in the data directory, named by the
//! message's id), whether it has been heard, and the counts that light the
//! phones' message lamps; and the mailbox's PIN failures, which lock it.
//!
//! Everything is per tenant and per mailbox (extension number); removing
//! an extension does not remove its messages' records until the mailbox is
//! emptied, so that the files and records stay in step.

use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::StoreError;
use crate::db::{from_datetime, run, to_datetime};
use crate::extensions::extension_number;
use crate::tenants::{code_of, tenant_code, tenant_id};

/// Longest transcript kept, in characters.
const MAX_TRANSCRIPT: usize = 20_000;

/// Longest caller number, caller name or call id kept, in characters.
const MAX_TEXT: usize = 256;

/// A message's id: 1 to 64 of letters, digits, `-` and `_` (it names the
/// audio file).
pub fn is_message_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A voice message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceMessage {
    /// Its id (names its audio file).
    pub id: String,
    /// The mailbox (extension number).
    pub mailbox: String,
    /// Who called: a number, or `anonymous`.
    pub caller: String,
    /// The caller's name, when known.
    pub caller_name: Option<String>,
    /// When it was left.
    pub received_at: SystemTime,
    /// Its length in milliseconds.
    pub duration_ms: u64,
    /// Its audio's size in bytes.
    pub bytes: u64,
    /// Heard or saved (not new).
    pub saved: bool,
    /// The call it was left in.
    pub call_id: String,
    /// Its transcript, once made.
    pub transcript: Option<String>,
    /// Whether it is to be transcribed, and how that went.
    pub transcription: Work,
    /// Whether it is to be e-mailed, and how that goes.
    pub email: Delivery,
}

/// Where a message's transcription or e-mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Work {
    /// Not asked for.
    #[default]
    Off,
    /// To be done.
    Pending,
    /// Done.
    Done,
    /// Given up.
    Failed,
}

impl Work {
    /// Its name in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Work::Off => "off",
            Work::Pending => "pending",
            Work::Done => "done",
            Work::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Work {
        match text {
            "pending" => Work::Pending,
            "done" => Work::Done,
            "failed" => Work::Failed,
            _ => Work::Off,
        }
    }
}

/// A message's e-mail: its state, the attempts made, when the next is
/// due and why the last failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Where it stands.
    pub state: Work,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (none: at once).
    pub next_at: Option<SystemTime>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

impl VoiceMessage {
    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !is_message_id(&self.id) {
            return Err(StoreError::invalid(
                "id",
                "must be 1 to 64 letters, digits, - or _",
            ));
        }
        extension_number(&self.mailbox)
            .map_err(|_| StoreError::invalid("mailbox", "must be 1 to 15 digits"))?;
        for (field, value) in [
            ("caller", Some(&self.caller)),
            ("caller_name", self.caller_name.as_ref()),
            ("call_id", Some(&self.call_id)),
        ] {
            if let Some(v) = value
                && (v.chars().count() > MAX_TEXT || v.chars().any(char::is_control))
            {
                return Err(StoreError::invalid(
                    field,
                    "too long or has control characters",
                ));
            }
        }
        Ok(())
    }
}

#[derive(SurrealValue)]
struct MessageRow {
    tenant: RecordId,
    id_text: String,
    mailbox: String,
    caller: String,
    caller_name: Option<String>,
    received_at: Datetime,
    duration_ms: i64,
    bytes: i64,
    saved: bool,
    call_id: String,
    transcript: Option<String>,
    transcript_state: Option<String>,
    email_state: Option<String>,
    email_attempts: Option<i64>,
    email_next_at: Option<Datetime>,
    email_error: Option<String>,
}

impl MessageRow {
    fn into_message(self) -> VoiceMessage {
        VoiceMessage {
            id: self.id_text,
            mailbox: self.mailbox,
            caller: self.caller,
            caller_name: self.caller_name,
            received_at: from_datetime(&self.received_at),
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
            bytes: u64::try_from(self.bytes).unwrap_or(0),
            saved: self.saved,
            call_id: self.call_id,
            transcript: self.transcript,
            transcription: Work::parse(self.transcript_state.as_deref().unwrap_or("")),
            email: Delivery {
                state: Work::parse(self.email_state.as_deref().unwrap_or("")),
                attempts: self
                    .email_attempts
                    .and_then(|a| u32::try_from(a).ok())
                    .unwrap_or(0),
                next_at: self.email_next_at.as_ref().map(from_datetime),
                error: self.email_error,
            },
        }
    }
}

/// How full a tenant's mailboxes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Messages.
    pub messages: u64,
    /// Bytes of audio.
    pub bytes: u64,
}

/// New and saved messages of one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCounts {
    /// The tenant's code.
    pub tenant: String,
    /// The mailbox.
    pub mailbox: String,
    /// Not yet heard.
    pub new: u32,
    /// Heard and kept.
    pub saved: u32,
}

/// Voicemail repository; get one from [`Store::voicemail`](crate::Store::voicemail).
#[derive(Debug, Clone, Copy)]
pub struct Voicemail<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

impl Voicemail<'_> {
    /// Records a new message, unless its mailbox already holds
    /// `max_per_mailbox` messages ([`StoreError::LimitReached`], nothing
    /// written).
    pub async fn add(
        &self,
        tenant: &str,
        message: &VoiceMessage,
        max_per_mailbox: usize,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        message.validate()?;
        let row = MessageRow {
            tenant: tenant_id(&code),
            id_text: message.id.clone(),
            mailbox: message.mailbox.clone(),
            caller: message.caller.clone(),
            caller_name: message.caller_name.clone(),
            received_at: to_datetime("received_at", message.received_at)?,
            duration_ms: i64::try_from(message.duration_ms).unwrap_or(i64::MAX),
            bytes: i64::try_from(message.bytes).unwrap_or(i64::MAX),
            saved: message.saved,
            call_id: message.call_id.clone(),
            transcript: message.transcript.clone(),
            transcript_state: Some(message.transcription.as_str().to_owned()),
            email_state: Some(message.email.state.as_str().to_owned()),
            email_attempts: Some(i64::from(message.email.attempts)),
            email_next_at: message
                .email
                .next_at
                .map(|t| to_datetime("email.next_at", t))
                .transpose()?,
            email_error: message.email.error.clone(),
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF array::len((SELECT VALUE id FROM voicemail_message
                        WHERE tenant = $tenant AND mailbox = $row.mailbox)) >= $max {
                    THROW 'edgepbx:limit:max_messages:' + <string> $max;
                };
                CREATE type::record('voicemail_message', [$code, $row.id_text]) CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("max", i64::try_from(max_per_mailbox).unwrap_or(i64::MAX)))
            .bind(("row", row)))
        .await?;
        Ok(())
    }

    /// A mailbox's messages, oldest first.
    pub async fn list(&self, tenant: &str, mailbox: &str) -> Result<Vec<VoiceMessage>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query(
                "SELECT * FROM voicemail_message WHERE tenant = $tenant AND mailbox = $mailbox
                 ORDER BY received_at",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("mailbox", mailbox.to_owned())))
        .await?;
        let rows: Vec<MessageRow> = res.take(0)?;
        Ok(rows.into_iter().map(MessageRow::into_message).collect())
    }

    /// One message of a mailbox.
    pub async fn get(
        &self,
        tenant: &str,
        mailbox: &str,
        id: &str,
    ) -> Result<Option<VoiceMessage>, StoreError> {
        let code = tenant_code(tenant)?;
        if !is_message_id(id) {
            return Ok(None);
        }
        let mut res = run(self
            .db
            .query("SELECT * FROM type::record('voicemail_message', [$code, $id]) WHERE mailbox = $mailbox")
            .bind(("code", code))
            .bind(("id", id.to_owned()))
            .bind(("mailbox", mailbox.to_owned())))
        .await?;
        let row: Option<MessageRow> = res.take(0)?;
        Ok(row.map(MessageRow::into_message))
    }

    /// Marks a message heard (or new again); false when there is no such
    /// message.
    pub async fn set_saved(
        &self,
        tenant: &str,
        mailbox: &str,
        id: &str,
        saved: bool,
    ) -> Result<bool, StoreError> {
        let code = tenant_code(tenant)?;
        if !is_message_id(id) {
            return Ok(false);
        }
        let mut res = run(self
            .db
            .query(
                "UPDATE type::record('voicemail_message', [$code, $id]) SET saved = $saved
                 WHERE mailbox = $mailbox RETURN VALUE id",
            )
            .bind(("code", code))
            .bind(("id", id.to_owned()))
            .bind(("mailbox", mailbox.to_owned()))
            .bind(("saved", saved)))
        .await?;
        let ids: Vec<RecordId> = res.take(0)?;
        Ok(!ids.is_empty())
    }

    /// Removes a message's record; false when there was none.
    pub async fn remove(&self, tenant: &str, mailbox: &str, id: &str) -> Result<bool, StoreError> {
        let code = tenant_code(tenant)?;
        if !is_message_id(id) {
            return Ok(false);
        }
        let mut res = run(self
            .db
            .query(
                "DELETE type::record('voicemail_message', [$code, $id]) WHERE mailbox = $mailbox
                 RETURN BEFORE",
            )
            .bind(("code", code))
            .bind(("id", id.to_owned()))
            .bind(("mailbox", mailbox.to_owned())))
        .await?;
        let rows: Vec<MessageRow> = res.take(0)?;
        Ok(!rows.is_empty())
    }

    /// Messages with work due by `now`, oldest first, at most `limit`:
    /// a transcription pending, or an e-mail pending whose next attempt
    /// is due and whose transcription is not (the e-mail carries it).
    pub async fn due(
        &self,
        now: SystemTime,
        limit: usize,
    ) -> Result<Vec<(String, VoiceMessage)>, StoreError> {
        let mut res = run(self
            .db
            .query(
                "SELECT * FROM voicemail_message
                 WHERE transcript_state = 'pending'
                    OR (email_state = 'pending' AND transcript_state != 'pending'
                        AND (email_next_at = NONE OR email_next_at <= $now))
                 ORDER BY received_at LIMIT $limit",
            )
            .bind(("now", to_datetime("now", now)?))
            .bind(("limit", i64::try_from(limit).unwrap_or(i64::MAX))))
        .await?;
        let rows: Vec<MessageRow> = res.take(0)?;
        rows.into_iter()
            .map(|r| {
                let tenant = code_of("voicemail_message", r.tenant.clone())?;
                Ok((tenant, r.into_message()))
            })
            .collect()
    }

    /// Records how a message's transcription went.
    pub async fn set_transcript(
        &self,
        tenant: &str,
        id: &str,
        transcription: Work,
        transcript: Option<&str>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let transcript = transcript.map(|t| t.chars().take(MAX_TRANSCRIPT).collect::<String>());
        run(self
            .db
            .query(
                "UPDATE type::record('voicemail_message', [$code, $id])
                 SET transcript_state = $state, transcript = $transcript",
            )
            .bind(("code", code))
            .bind(("id", id.to_owned()))
            .bind(("state", transcription.as_str()))
            .bind(("transcript", transcript)))
        .await?;
        Ok(())
    }

    /// Records how a message's e-mail goes.
    pub async fn set_email(
        &self,
        tenant: &str,
        id: &str,
        email: &Delivery,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let next_at = email
            .next_at
            .map(|t| to_datetime("email.next_at", t))
            .transpose()?;
        let error = email.error.as_ref().map(|e| {
            e.chars()
                .filter(|c| !c.is_control())
                .take(500)
                .collect::<String>()
        });
        run(self
            .db
            .query(
                "UPDATE type::record('voicemail_message', [$code, $id])
                 SET email_state = $state, email_attempts = $attempts,
                     email_next_at = $next_at, email_error = $error",
            )
            .bind(("code", code))
            .bind(("id", id.to_owned()))
            .bind(("state", email.state.as_str()))
            .bind(("attempts", i64::from(email.attempts)))
            .bind(("next_at", next_at))
            .bind(("error", error)))
        .await?;
        Ok(())
    }

    /// Until when a mailbox is locked by wrong PINs (`None`: it is not).
    pub async fn locked_until(
        &self,
        tenant: &str,
        mailbox: &str,
    ) -> Result<Option<SystemTime>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT VALUE locked_until FROM type::record('mailbox_lock', [$code, $mailbox])")
            .bind(("code", code))
            .bind(("mailbox", mailbox.to_owned())))
        .await?;
        let until: Vec<Option<Datetime>> = res.take(0)?;
        Ok(until
            .into_iter()
            .flatten()
            .next()
            .map(|d| from_datetime(&d)))
    }

    /// Counts a wrong PIN for a mailbox: the `max`th in a row locks it
    /// until `lock_until` (and starts the count again). Returns whether
    /// this one locked it.
    pub async fn pin_failed(
        &self,
        tenant: &str,
        mailbox: &str,
        max: u32,
        lock_until: SystemTime,
    ) -> Result<bool, StoreError> {
        let code = tenant_code(tenant)?;
        extension_number(mailbox)?;
        // One statement, so concurrent failures count one by one; the
        // lock is set before the count starts again, and a count back at
        // zero says that this failure locked it.
        let mut res = run(self
            .db
            .query(
                "UPSERT type::record('mailbox_lock', [$code, $mailbox]) SET tenant = $tenant,
                    locked_until = IF (failures ?? 0) + 1 >= $max { $until } ELSE { locked_until },
                    failures = IF (failures ?? 0) + 1 >= $max { 0 } ELSE { (failures ?? 0) + 1 }
                 RETURN VALUE failures",
            )
            .bind(("code", code.clone()))
            .bind(("tenant", tenant_id(&code)))
            .bind(("mailbox", mailbox.to_owned()))
            .bind(("max", i64::from(max.max(1))))
            .bind(("until", to_datetime("lock_until", lock_until)?)))
        .await?;
        let failures: Vec<i64> = res.take(0)?;
        Ok(failures.first() == Some(&0))
    }

    /// A right PIN: the count of wrong ones (and any lock) is forgotten.
    pub async fn pin_accepted(&self, tenant: &str, mailbox: &str) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        run(self
            .db
            .query("DELETE type::record('mailbox_lock', [$code, $mailbox])")
            .bind(("code", code))
            .bind(("mailbox", mailbox.to_owned())))
        .await?;
        Ok(())
    }

    /// How much of the tenant's voicemail space its messages use.
    pub async fn usage(&self, tenant: &str) -> Result<Usage, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query(
                "SELECT count() AS messages, math::sum(bytes) AS bytes FROM voicemail_message
                 WHERE tenant = $tenant GROUP ALL",
            )
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let row: Option<UsageRow> = res.take(0)?;
        Ok(row.map_or_else(Usage::default, |r| Usage {
            messages: u64::try_from(r.messages).unwrap_or(0),
            bytes: u64::try_from(r.bytes).unwrap_or(0),
        }))
    }

    /// New and saved counts of every mailbox that has messages, in every
    /// tenant (the message lamps at start).
    pub async fn counts(&self) -> Result<Vec<MailboxCounts>, StoreError> {
        let mut res = run(self.db.query(
            "SELECT tenant, mailbox, count(saved = false) AS new, count(saved = true) AS saved
             FROM voicemail_message GROUP BY tenant, mailbox",
        ))
        .await?;
        let rows: Vec<CountsRow> = res.take(0)?;
        rows.into_iter()
            .map(|r| {
                Ok(MailboxCounts {
                    tenant: code_of("voicemail_message", r.tenant)?,
                    mailbox: r.mailbox,
                    new: u32::try_from(r.new).unwrap_or(u32::MAX),
                    saved: u32::try_from(r.saved).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }
}

#[derive(SurrealValue)]
struct UsageRow {
    messages: i64,
    bytes: i64,
}

#[derive(SurrealValue)]
struct CountsRow {
    tenant: RecordId,
    mailbox: String,
    new: i64,
    saved: i64,
}
