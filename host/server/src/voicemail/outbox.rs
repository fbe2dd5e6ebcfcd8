//! The work a new message leaves behind, done off the call: its
//! transcription, then its e-mail to the mailbox's owner (caller, time,
//! length, transcript, and the audio as a WAV attachment unless the
//! extension says otherwise).
//!
//! The work is kept in the store with the message (`transcription` and
//! `email` states), so nothing is lost when the mail server or the
//! speech-to-text service is down or edgepbx restarts: a failed e-mail is
//! tried again with growing pauses ([`retry_after`]) for about a day, then
//! marked failed with its last error (the console and API show it). A
//! failed transcription leaves the message as it is, marked failed, and
//! its e-mail goes without a transcript.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgepbx_store::{Delivery, VoiceMessage, Work};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use tokio::sync::watch;
use tracing::{info, warn};

use super::Voicemail;
use super::transcribe::transcribe;

/// Messages worked on per round.
const BATCH: usize = 20;

/// How often the store is looked at when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(5);

/// Attempts at an e-mail before it is marked failed (about a day).
const MAX_ATTEMPTS: u32 = 30;

/// How the connection to the mail server is secured.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (port 587), required.
    #[default]
    Starttls,
    /// TLS from the start (port 465).
    Tls,
    /// No encryption (a relay on the same machine or a lab only).
    None,
}

/// `[voicemail.email]`: the mail server new messages are sent through.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The mail server's host name.
    pub server: String,
    /// Its port (default: 587 for STARTTLS, 465 for TLS, 25 for none).
    pub port: Option<u16>,
    /// `starttls`, `tls` or `none`.
    #[serde(default)]
    pub security: Security,
    /// The user name, when the server wants one.
    pub username: Option<String>,
    /// A file holding the password.
    pub password_file: Option<PathBuf>,
    /// The sender (`Voicemail <voicemail@example.com>`).
    pub from: String,
    /// How long one delivery may take, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The pause after the first failed attempt, seconds; it doubles with
    /// every failure, to an hour at most.
    #[serde(default = "default_first_retry")]
    pub first_retry_secs: u64,
}

fn default_timeout() -> u64 {
    60
}

fn default_first_retry() -> u64 {
    30
}

/// How long to wait before attempt `attempts + 1` of an e-mail, after
/// `attempts` failed: `first` seconds, doubling to an hour; `None` past
/// [`MAX_ATTEMPTS`].
pub fn retry_after(attempts: u32, first: u64) -> Option<Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let secs = first.saturating_mul(1 << attempts.saturating_sub(1).min(12));
    Some(Duration::from_secs(secs.clamp(1, 3_600)))
}

/// Runs the work until `shutdown`; woken early by `vm.work`.
pub async fn run(vm: Arc<Voicemail>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match vm.store().due(SystemTime::now(), BATCH).await {
            Ok(due) => {
                for (tenant, message) in due {
                    work_on(&vm, &tenant, message).await;
                }
            }
            Err(error) => warn!(%error, "cannot read the voicemail work"),
        }
        tokio::select! {
            () = vm.work.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn work_on(vm: &Voicemail, tenant: &str, message: VoiceMessage) {
    let path = vm.message_path(tenant, &message.mailbox, &message.id);
    if message.transcription == Work::Pending {
        let outcome = match (&vm.config.transcription, tokio::fs::read(&path).await) {
            (Some(config), Ok(wav)) => transcribe(config, &wav).await,
            (None, _) => Err("transcription is not configured".into()),
            (_, Err(e)) => Err(format!("the message's audio: {e}")),
        };
        let (state, text) = match &outcome {
            Ok(text) => (Work::Done, Some(text.as_str())),
            Err(error) => {
                warn!(tenant, id = %message.id, %error, "a voice message could not be transcribed");
                (Work::Failed, None)
            }
        };
        if let Err(error) = vm
            .store()
            .set_transcript(tenant, &message.id, state, text)
            .await
        {
            warn!(%error, "cannot record a transcript");
        }
        return;
    }
    if message.email.state == Work::Pending {
        email(vm, tenant, message, path).await;
    }
}

async fn email(vm: &Voicemail, tenant: &str, message: VoiceMessage, path: PathBuf) {
    let extension = vm.store.extensions().get(tenant, &message.mailbox).await;
    let profile = match extension {
        Ok(Some(e)) => e.profile,
        Ok(None) => {
            return finish(
                vm,
                tenant,
                &message,
                Work::Failed,
                Some("no such extension"),
            )
            .await;
        }
        Err(error) => return warn!(%error, "cannot read a mailbox's owner"),
    };
    let (Some(config), Some(to)) = (&vm.config.email, profile.voicemail_email.as_deref()) else {
        return finish(vm, tenant, &message, Work::Off, None).await;
    };
    let audio = if profile.voicemail_attach {
        match tokio::fs::read(&path).await {
            Ok(wav) => Some(wav),
            Err(error) => {
                warn!(%error, path = %path.display(), "a voice message's audio is missing");
                None
            }
        }
    } else {
        None
    };
    let sent = match compose(config, to, &message, audio) {
        Ok(email) => send(config, email).await,
        Err(error) => Err(error),
    };
    match sent {
        Ok(()) => {
            info!(tenant, id = %message.id, "voice message e-mailed");
            finish(vm, tenant, &message, Work::Done, None).await;
            if profile.voicemail_delete_after_email {
                vm.delete(tenant, &message.mailbox, &message.id).await;
            }
        }
        Err(error) => {
            let attempts = message.email.attempts + 1;
            warn!(tenant, id = %message.id, attempts, %error, "a voice message could not be e-mailed");
            let delivery = match retry_after(attempts, config.first_retry_secs) {
                Some(pause) => Delivery {
                    state: Work::Pending,
                    attempts,
                    next_at: Some(SystemTime::now() + pause),
                    error: Some(error),
                },
                None => Delivery {
                    state: Work::Failed,
                    attempts,
                    next_at: None,
                    error: Some(error),
                },
            };
            if let Err(error) = vm.store().set_email(tenant, &message.id, &delivery).await {
                warn!(%error, "cannot record an e-mail attempt");
            }
        }
    }
}

async fn finish(
    vm: &Voicemail,
    tenant: &str,
    message: &VoiceMessage,
    state: Work,
    error: Option<&str>,
) {
    let delivery = Delivery {
        state,
        attempts: message.email.attempts + u32::from(state == Work::Done),
        next_at: None,
        error: error.map(str::to_owned),
    };
    if let Err(error) = vm.store().set_email(tenant, &message.id, &delivery).await {
        warn!(%error, "cannot record an e-mail");
    }
}

/// The e-mail of a message.
fn compose(
    config: &EmailConfig,
    to: &str,
    message: &VoiceMessage,
    audio: Option<Vec<u8>>,
) -> Result<Message, String> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| format!("[voicemail.email] from: {e}"))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| format!("the mailbox's e-mail: {e}"))?;
    let caller = match &message.caller_name {
        Some(name) => format!("{name} <{}>", message.caller),
        None => message.caller.clone(),
    };
    let secs = message.duration_ms.div_ceil(1000);
    let length = format!("{}:{:02}", secs / 60, secs % 60);
    let received = edgepbx_engine::time::rfc3339(message.received_at);
    let transcript = match (message.transcription, &message.transcript) {
        (Work::Done, Some(text)) if !text.is_empty() => text.clone(),
        (Work::Done, _) => "(no words recognised)".to_owned(),
        (Work::Failed, _) => "(the transcription failed)".to_owned(),
        _ => "(not transcribed)".to_owned(),
    };
    let text = format!(
        "New voice message in mailbox {}.\n\nFrom: {caller}\nReceived: {received}\nLength: {length}\n\nTranscript:\n{transcript}\n",
        message.mailbox
    );
    let body = SinglePart::plain(text);
    let multipart = match audio {
        Some(wav) => {
            let content_type =
                ContentType::parse("audio/wav").map_err(|e| format!("audio/wav: {e}"))?;
            MultiPart::mixed().singlepart(body).singlepart(
                Attachment::new(format!("voicemail-{}.wav", message.id)).body(wav, content_type),
            )
        }
        None => MultiPart::mixed().singlepart(body),
    };
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!("Voice message from {caller} ({length})"))
        .multipart(multipart)
        .map_err(|e| format!("building the e-mail: {e}"))
}

async fn send(config: &EmailConfig, email: Message) -> Result<(), String> {
    let host = config.server.as_str();
    let builder = match config.security {
        Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| format!("{host}: {e}"))?;
    let port = config.port.unwrap_or(match config.security {
        Security::Starttls => 587,
        Security::Tls => 465,
        Security::None => 25,
    });
    let mut builder = builder
        .port(port)
        .timeout(Some(Duration::from_secs(config.timeout_secs)));
    if let Some(user) = &config.username {
        let password = match &config.password_file {
            Some(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("the password file {}: {e}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    builder
        .build()
        .send(email)
        .await
        .map(drop)
        .map_err(|e| format!("{host}:{port}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour_and_stop_after_a_day() {
        let pauses: Vec<u64> = (1..=9)
            .map(|a| retry_after(a, 30).map_or(0, |d| d.as_secs()))
            .collect();
        assert_eq!(pauses, [30, 60, 120, 240, 480, 960, 1_920, 3_600, 3_600]);
        let total: u64 = (1..MAX_ATTEMPTS)
            .filter_map(|a| retry_after(a, 30))
            .map(|d| d.as_secs())
            .sum();
        assert!((72_000..=100_000).contains(&total), "{total}");
        assert_eq!(retry_after(MAX_ATTEMPTS, 30), None);
        assert_eq!(retry_after(1, 0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_email_names_the_caller_and_carries_the_transcript_and_audio() {
        let config = EmailConfig {
            server: "localhost".into(),
            port: None,
            security: Security::None,
            username: None,
            password_file: None,
            from: "Voicemail <vm@acme.example>".into(),
            timeout_secs: 5,
            first_retry_secs: 30,
        };
        let message = VoiceMessage {
            id: "m1".into(),
            mailbox: "101".into(),
            caller: "100".into(),
            caller_name: Some("Alice".into()),
            received_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            duration_ms: 65_200,
            bytes: 4,
            saved: false,
            call_id: "c".into(),
            transcript: Some("please call me back".into()),
            transcription: Work::Done,
            email: Delivery::default(),
        };
        let email = compose(
            &config,
            "bob@acme.example",
            &message,
            Some(b"RIFF".to_vec()),
        )
        .expect("an e-mail");
        let text = String::from_utf8_lossy(&email.formatted()).into_owned();
        assert!(
            text.contains("Subject: Voice message from Alice <100> (1:06)"),
            "{text}"
        );
        assert!(text.contains("please call me back"), "{text}");
        assert!(text.contains("filename=\"voicemail-m1.wav\""), "{text}");
        assert!(compose(&config, "not an address", &message, None).is_err());
    }
}
