//! The voicemail driver: runs a [`Session`](edgepbx_voicemail::Session)
//! and a media [`Endpoint`](edgepbx_media::endpoint::Endpoint) for each
//! call the engine answers itself, with the store and the files behind
//! them.
//!
//! Files live in the data directory: a message's audio at
//! `voicemail/<TENANT>/<mailbox>/<id>.wav`, greetings beside them as
//! `greeting-<unavailable|busy|name>.wav`, a tenant's own prompts at
//! `prompts/<TENANT>/<name>.wav`. The message's record is in the store;
//! the file is written first (to a temporary name, then renamed), so a
//! record always has its audio. Wrong PINs are counted per mailbox in the
//! store (so restarts and other nodes see them): after `pin_lock_failures`
//! in a row the mailbox is locked for `pin_lock_secs`.
//!
//! Sessions run on the main runtime, beside the store: voicemail calls
//! are few, and their database work must not wait on the media runtime.

mod call;
mod outbox;
pub mod prompts;
mod transcribe;

use std::net::UdpSocket as StdUdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use edgepbx_engine::Served;
use edgepbx_engine::registrar::Aor;
use edgepbx_media::wav::Pcm;
use edgepbx_store::{Delivery, Store, VoiceMessage, Work, WriteMode};
use edgepbx_voicemail::{Greeting, Mailbox, Message, PinCheck};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

pub use call::Input;
pub use outbox::{EmailConfig, run as run_outbox};
use prompts::Prompts;
pub use transcribe::TranscriptionConfig;

use crate::media::MediaEvent;
use crate::passwords::{self, decoy_hash};
use crate::work::Payer;

/// `[voicemail]` in the configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VoicemailConfig {
    /// Longest message, seconds.
    pub max_message_secs: u64,
    /// Longest greeting, seconds.
    pub max_greeting_secs: u64,
    /// Silence that ends a recording, seconds.
    pub silence_secs: u64,
    /// A message shorter than this, or without sound, is not kept
    /// (milliseconds).
    pub min_message_ms: u64,
    /// Messages one mailbox holds; a full one takes no more.
    pub max_messages_per_mailbox: usize,
    /// Megabytes of messages one tenant holds (8 kHz WAV: about 1 MB a
    /// minute); a tenant past it takes no more messages.
    pub max_tenant_megabytes: u64,
    /// Wrong PINs in a row that lock a mailbox...
    pub pin_lock_failures: u32,
    /// ...for this long, seconds.
    pub pin_lock_secs: u64,
    /// E-mailing new messages; none: no e-mail.
    pub email: Option<EmailConfig>,
    /// Transcribing new messages; none: no transcripts.
    pub transcription: Option<TranscriptionConfig>,
}

impl Default for VoicemailConfig {
    fn default() -> Self {
        VoicemailConfig {
            max_message_secs: 180,
            max_greeting_secs: 60,
            silence_secs: 5,
            min_message_ms: 1_000,
            max_messages_per_mailbox: 100,
            max_tenant_megabytes: 1_024,
            pin_lock_failures: 3,
            pin_lock_secs: 900,
            email: None,
            transcription: None,
        }
    }
}

/// What the sessions share.
#[derive(Debug)]
pub struct Voicemail {
    config: VoicemailConfig,
    store: Store,
    data: PathBuf,
    prompts: Prompts,
    runtime: tokio::runtime::Handle,
    /// Where mailbox counts and sessions' ends go (the SIP plane).
    events: mpsc::UnboundedSender<MediaEvent>,
    /// Wakes the outbox: a message has work (transcription, e-mail).
    work: tokio::sync::Notify,
}

impl Voicemail {
    /// The service over `store`, keeping files under `data`, running
    /// sessions on `runtime` (the store's), telling the engine through
    /// `events`.
    pub fn new(
        config: VoicemailConfig,
        store: Store,
        data: PathBuf,
        runtime: tokio::runtime::Handle,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> Arc<Voicemail> {
        Arc::new(Voicemail {
            config,
            store,
            data,
            prompts: Prompts::built_in(),
            runtime,
            events,
            work: tokio::sync::Notify::new(),
        })
    }

    /// Starts the session of a served call on `rtp` (and its RTCP port,
    /// drained); returns where its inputs go.
    pub fn start(
        self: &Arc<Self>,
        served: Served,
        rtp: StdUdpSocket,
        rtcp: StdUdpSocket,
    ) -> mpsc::UnboundedSender<Input> {
        let (tx, rx) = mpsc::unbounded_channel();
        let call = call::Call::new(self.clone(), served);
        self.runtime.spawn(call.run(rtp, rtcp, rx));
        tx
    }

    /// Tells the engine how many messages every mailbox holds (the
    /// message lamps after a start).
    pub fn announce_counts(self: &Arc<Self>) {
        let this = self.clone();
        self.runtime.spawn(async move {
            match this.store.voicemail().counts().await {
                Ok(counts) => {
                    for c in counts {
                        let aor = Aor {
                            tenant: c.tenant,
                            extension: c.mailbox,
                        };
                        let _ = this.events.send(MediaEvent::Mailbox {
                            aor,
                            new: c.new,
                            old: c.saved,
                        });
                    }
                }
                Err(error) => warn!(%error, "cannot load the mailboxes' message counts"),
            }
        });
    }

    fn mailbox_dir(&self, tenant: &str, mailbox: &str) -> PathBuf {
        self.data.join("voicemail").join(tenant).join(mailbox)
    }

    /// Where a tenant's own recording of a prompt is kept.
    pub fn prompt_path(&self, tenant: &str, name: &str) -> PathBuf {
        prompts::own_path(&self.data, tenant, name)
    }

    /// Where a greeting is kept.
    pub fn greeting_path(&self, tenant: &str, mailbox: &str, greeting: Greeting) -> PathBuf {
        self.mailbox_dir(tenant, mailbox)
            .join(format!("greeting-{}.wav", greeting.as_str()))
    }

    /// Where a message's audio is kept.
    pub fn message_path(&self, tenant: &str, mailbox: &str, id: &str) -> PathBuf {
        self.mailbox_dir(tenant, mailbox).join(format!("{id}.wav"))
    }

    /// The mailbox of an extension with voicemail on; `None` otherwise.
    async fn load(&self, tenant: &str, mailbox: &str) -> Option<Mailbox> {
        let extension = self
            .store
            .extensions()
            .get(tenant, mailbox)
            .await
            .ok()
            .flatten()?;
        if !extension.settings.voicemail {
            return None;
        }
        let mut greetings = Vec::new();
        for greeting in Greeting::ALL {
            let path = self.greeting_path(tenant, mailbox, greeting);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                greetings.push(greeting);
            }
        }
        Some(Mailbox {
            number: extension.number,
            greetings,
            full: self.is_full(tenant, mailbox).await,
            skip_pin_from_own_device: extension.profile.voicemail_skip_pin,
            operator: self
                .store
                .tenants()
                .get(tenant)
                .await
                .ok()
                .flatten()
                .and_then(|t| t.features.operator),
        })
    }

    async fn is_full(&self, tenant: &str, mailbox: &str) -> bool {
        let vm = self.store.voicemail();
        let in_box = vm.list(tenant, mailbox).await.map_or(0, |l| l.len());
        let usage = vm.usage(tenant).await.unwrap_or_default();
        in_box >= self.config.max_messages_per_mailbox
            || usage.bytes >= self.config.max_tenant_megabytes.saturating_mul(1 << 20)
    }

    /// Checks a PIN, counting failures; a missing mailbox or PIN refuses
    /// after the same work as a wrong one.
    async fn check_pin(&self, tenant: &str, mailbox: &str, pin: String) -> PinCheck {
        let vm = self.store.voicemail();
        match vm.locked_until(tenant, mailbox).await {
            Ok(Some(until)) if SystemTime::now() < until => return PinCheck::Locked,
            Ok(_) => {}
            Err(error) => {
                // Without the count, nobody gets in.
                warn!(%error, "cannot read a mailbox's PIN lock");
                return PinCheck::Locked;
            }
        }
        let hash = match self.store.extensions().get(tenant, mailbox).await {
            Ok(Some(e)) if e.settings.voicemail => e.profile.voicemail_pin_hash,
            _ => None,
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
        // A tenant's queue full of PIN checks refuses without counting.
        let Ok(matched) = passwords::verify(Payer::Tenant(tenant), hash, pin).await else {
            return PinCheck::Refused;
        };
        let right = matched && known;
        if right {
            if let Err(error) = vm.pin_accepted(tenant, mailbox).await {
                warn!(%error, "cannot clear a mailbox's wrong PINs");
            }
            return PinCheck::Accepted;
        }
        // Only real mailboxes are counted: numbers nobody has take no room.
        if known {
            let until = SystemTime::now() + Duration::from_secs(self.config.pin_lock_secs);
            match vm
                .pin_failed(tenant, mailbox, self.config.pin_lock_failures, until)
                .await
            {
                Ok(true) => info!(tenant, mailbox, "mailbox locked after repeated wrong PINs"),
                Ok(false) => {}
                Err(error) => warn!(%error, "cannot count a wrong PIN"),
            }
        }
        PinCheck::Refused
    }

    async fn change_pin(&self, tenant: &str, mailbox: &str, pin: String) {
        let result = async {
            let hash = passwords::hash(Payer::Tenant(tenant), pin).await?;
            let current = self
                .store
                .extensions()
                .get(tenant, mailbox)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no such extension"))?;
            let mut profile = current.profile.clone();
            profile.voicemail_pin_hash = Some(hash);
            let write = edgepbx_store::ExtensionWrite {
                mode: WriteMode::Update,
                number: current.number.clone(),
                name: current.name.clone(),
                aliases: current.aliases.clone(),
                credentials: None,
                settings: current.settings.clone(),
                profile,
                if_version: Some(current.updated_at),
                users: None,
            };
            self.store.extensions().put(tenant, vec![write]).await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => info!(tenant, mailbox, "voicemail PIN changed from the phone"),
            Err(error) => warn!(tenant, mailbox, %error, "cannot change the voicemail PIN"),
        }
    }

    async fn messages(&self, tenant: &str, mailbox: &str) -> Vec<Message> {
        self.store
            .voicemail()
            .list(tenant, mailbox)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| Message {
                id: m.id,
                caller: Some(m.caller).filter(|c| c != "anonymous"),
                saved: m.saved,
            })
            .collect()
    }

    /// Keeps a message left by `served`'s caller; false when it was too
    /// short or silent, or could not be stored.
    async fn keep_message(&self, served: &Served, mailbox: &str, audio: Pcm) -> bool {
        if audio.millis() < self.config.min_message_ms || !audio.has_sound(300, 300) {
            info!(call = %served.uid, mailbox, millis = audio.millis(), "message too short or silent; not kept");
            return false;
        }
        let id = format!(
            "{}-{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            served.call
        );
        let path = self.message_path(&served.tenant, mailbox, &id);
        let wav = audio.to_wav();
        if let Err(error) = write_file(&path, &wav).await {
            warn!(%error, path = %path.display(), "cannot write a voice message");
            return false;
        }
        let wants_email = self.config.email.is_some()
            && matches!(
                self.store.extensions().get(&served.tenant, mailbox).await,
                Ok(Some(e)) if e.profile.voicemail_email.is_some()
            );
        let pending = |wanted: bool| if wanted { Work::Pending } else { Work::Off };
        let message = VoiceMessage {
            id,
            mailbox: mailbox.to_owned(),
            caller: served.caller.clone(),
            caller_name: served.caller_name.clone(),
            received_at: SystemTime::now(),
            duration_ms: audio.millis(),
            bytes: wav.len() as u64,
            saved: false,
            call_id: served.uid.clone(),
            transcript: None,
            transcription: pending(self.config.transcription.is_some()),
            email: Delivery {
                state: pending(wants_email),
                ..Delivery::default()
            },
        };
        let stored = self
            .store
            .voicemail()
            .add(
                &served.tenant,
                &message,
                self.config.max_messages_per_mailbox,
            )
            .await;
        match stored {
            Ok(()) => {
                info!(tenant = %served.tenant, mailbox, id = %message.id,
                    millis = message.duration_ms, "voice message kept");
                self.work.notify_one();
                true
            }
            Err(error) => {
                warn!(%error, "cannot record a voice message; its audio is removed");
                let _ = tokio::fs::remove_file(&path).await;
                false
            }
        }
    }

    async fn keep_greeting(&self, tenant: &str, mailbox: &str, greeting: Greeting, audio: Pcm) {
        if !audio.has_sound(300, 300) {
            return;
        }
        let path = self.greeting_path(tenant, mailbox, greeting);
        if let Err(error) = write_file(&path, &audio.to_wav()).await {
            warn!(%error, path = %path.display(), "cannot write a greeting");
        }
    }

    /// Tells the engine a mailbox's new and saved counts (after a change).
    pub async fn changed(&self, tenant: &str, mailbox: &str) {
        let messages = self.messages(tenant, mailbox).await;
        let new = messages.iter().filter(|m| !m.saved).count();
        let _ = self.events.send(MediaEvent::Mailbox {
            aor: Aor {
                tenant: tenant.to_owned(),
                extension: mailbox.to_owned(),
            },
            new: u32::try_from(new).unwrap_or(u32::MAX),
            old: u32::try_from(messages.len() - new).unwrap_or(u32::MAX),
        });
    }

    /// Deletes a message, its audio, and tells the engine.
    pub async fn delete(&self, tenant: &str, mailbox: &str, id: &str) {
        match self.store.voicemail().remove(tenant, mailbox, id).await {
            Ok(true) => {
                let _ = tokio::fs::remove_file(self.message_path(tenant, mailbox, id)).await;
            }
            Ok(false) => {}
            Err(error) => warn!(%error, "cannot delete a voice message"),
        }
        self.changed(tenant, mailbox).await;
    }

    /// The repository of messages.
    pub fn store(&self) -> edgepbx_store::Voicemail<'_> {
        self.store.voicemail()
    }
}

/// Writes `bytes` to `path` through a temporary file, creating its
/// directory (0700).
pub(crate) async fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        let mut builder = tokio::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir).await?;
    }
    let tmp = path.with_extension("wav.tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
