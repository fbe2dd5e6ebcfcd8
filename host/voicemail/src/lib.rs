//! Sans-IO voicemail for edgepbx: what a caller hears and may do when a
//! call reaches a mailbox, as a state machine.
//!
//! A [`Session`] runs one call answered by voicemail: leaving a message
//! ([`Service::Deposit`]) or listening to one's messages
//! ([`Service::Retrieve`], the `*97` and `*98` codes). It knows nothing of
//! sockets, files or the database: it is fed the party's keys, the media
//! endpoint's events ([`Session::handle_play_done`],
//! [`Session::handle_recording_ended`]), the answers to what it asked
//! ([`Session::handle_reply`]) and time, and drained with
//! [`Session::poll_output`]: audio to play, recordings to start and keep,
//! data to load or change, the call to hang up or connect elsewhere. The driver
//! (`host/server`) owns the media endpoint and the store.
//!
//! Module map:
//! - [`session`]: the state machine and its menus.
//! - [`collect`]: keys gathered into a number or a PIN.

pub mod collect;
pub mod session;

use std::time::Duration;

pub use session::Session;

/// Shortest PIN, in digits.
pub const MIN_PIN_DIGITS: usize = 4;
/// Longest PIN, in digits.
pub const MAX_PIN_DIGITS: usize = 12;

/// Whether `pin` is 4 to 12 digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&pin.len())
        && pin.bytes().all(|b| b.is_ascii_digit())
}

/// Every prompt a session may play, by name: a prompt set must have each.
pub const PROMPTS: &[&str] = &[
    "and",
    "connecting",
    "digit-0",
    "digit-1",
    "digit-2",
    "digit-3",
    "digit-4",
    "digit-5",
    "digit-6",
    "digit-7",
    "digit-8",
    "digit-9",
    "enter-mailbox",
    "enter-pin",
    "from",
    "goodbye",
    "greeting-saved",
    "greetings-menu",
    "invalid-choice",
    "is-busy",
    "is-unavailable",
    "leave-message",
    "mailbox-full",
    "mailbox-locked",
    "main-menu",
    "message",
    "message-deleted",
    "message-menu",
    "message-recorded",
    "message-saved",
    "messages",
    "new",
    "new-pin",
    "no",
    "no-more-messages",
    "no-such-mailbox",
    "person-at-extension",
    "pin-changed",
    "pin-incorrect",
    "pin-not-changed",
    "record-after-tone",
    "reenter-pin",
    "saved",
    "unknown-caller",
    "you-have",
];

/// What the call came for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// Leave a message in `mailbox` (an extension number); `busy` when the
    /// extension was busy (its busy greeting plays).
    Deposit {
        /// The extension whose mailbox it is.
        mailbox: String,
        /// The extension was busy rather than unavailable.
        busy: bool,
    },
    /// Listen to messages.
    Retrieve {
        /// The caller's own mailbox (`*97`); `None` asks which (`*98`).
        own: Option<String>,
    },
}

/// Timers and limits of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The longest message.
    pub max_message: Duration,
    /// The longest greeting.
    pub max_greeting: Duration,
    /// Silence that ends a recording.
    pub silence: Duration,
    /// How long to wait for the first key after a prompt.
    pub first_key: Duration,
    /// How long to wait for the next key of a number.
    pub inter_digit: Duration,
    /// Wrong PINs before the call is ended.
    pub pin_attempts: u32,
    /// A menu or question is repeated this many times without an answer,
    /// then the call ends.
    pub repeats: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message: Duration::from_secs(180),
            max_greeting: Duration::from_secs(60),
            silence: Duration::from_secs(5),
            first_key: Duration::from_secs(8),
            inter_digit: Duration::from_secs(4),
            pin_attempts: 3,
            repeats: 3,
        }
    }
}

/// A mailbox's recorded greetings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Greeting {
    /// Played when the extension does not answer (or is offline).
    Unavailable,
    /// Played when it is busy.
    Busy,
    /// The owner's name, in the default greetings.
    Name,
}

impl Greeting {
    /// Every greeting.
    pub const ALL: [Greeting; 3] = [Greeting::Unavailable, Greeting::Busy, Greeting::Name];

    /// Its name in files and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Greeting::Unavailable => "unavailable",
            Greeting::Busy => "busy",
            Greeting::Name => "name",
        }
    }

    /// The greeting of a name.
    pub fn parse(text: &str) -> Option<Greeting> {
        Greeting::ALL.into_iter().find(|g| g.as_str() == text)
    }
}

/// A mailbox as a session needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Its extension number.
    pub number: String,
    /// Which greetings are recorded.
    pub greetings: Vec<Greeting>,
    /// No message fits (its quota or its tenant's is used up).
    pub full: bool,
    /// Calling from the extension's own device logs in without a PIN.
    pub skip_pin_from_own_device: bool,
    /// Where `*` or `0` takes a caller leaving a message (the tenant's
    /// operator), if anywhere.
    pub operator: Option<String>,
}

/// One stored message, as the menus list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its id in the store.
    pub id: String,
    /// The caller's number, when known.
    pub caller: Option<String>,
    /// Heard or saved (not new).
    pub saved: bool,
}

/// The result of a PIN check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    /// Right: the caller is in.
    Accepted,
    /// Wrong (or no such mailbox: the caller cannot tell).
    Refused,
    /// Too many wrong PINs lately: nobody gets in for a while.
    Locked,
}

/// The answer to a request of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To [`Output::LoadMailbox`]: the mailbox, `None` when there is none
    /// (no such extension, or its voicemail is off).
    Mailbox(Option<Mailbox>),
    /// To [`Output::CheckPin`].
    Pin(PinCheck),
    /// To [`Output::ListMessages`]: oldest first.
    Messages(Vec<Message>),
}

/// Something to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clip {
    /// A prompt of the prompt set, by name (`digit-5`, `goodbye`).
    Prompt(&'static str),
    /// One of the mailbox's own greetings.
    Greeting(Greeting),
    /// A message's audio.
    Message(String),
    /// The tone before a recording.
    Beep,
}

/// What a recording is kept as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// A new message in the mailbox.
    Message,
    /// One of the mailbox's greetings.
    Greeting(Greeting),
}

/// What the driver does for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Queue these clips; [`Session::handle_play_done`] when all played.
    Play(Vec<Clip>),
    /// Stop playing and drop what is queued (no play-done follows).
    StopPlaying,
    /// Record the party, for at most `max`, ending after `silence`;
    /// [`Session::handle_recording_ended`] if it ends by itself.
    Record {
        /// The longest recording.
        max: Duration,
        /// Silence that ends it.
        silence: Duration,
    },
    /// Stop recording and keep it, in `mailbox`.
    KeepRecording {
        /// The mailbox.
        mailbox: String,
        /// As what.
        keep: Keep,
    },
    /// Stop recording and throw it away.
    DiscardRecording,
    /// Load a mailbox; answer with [`Reply::Mailbox`].
    LoadMailbox(String),
    /// Check a PIN (and count a failure); answer with [`Reply::Pin`].
    CheckPin {
        /// The mailbox.
        mailbox: String,
        /// The digits.
        pin: String,
    },
    /// List a mailbox's messages; answer with [`Reply::Messages`].
    ListMessages(String),
    /// A message was heard or saved: it is no longer new.
    MarkSaved {
        /// The mailbox.
        mailbox: String,
        /// The message.
        id: String,
    },
    /// Delete a message.
    Delete {
        /// The mailbox.
        mailbox: String,
        /// The message.
        id: String,
    },
    /// Set a new PIN (4–12 digits, checked).
    ChangePin {
        /// The mailbox.
        mailbox: String,
        /// The digits.
        pin: String,
    },
    /// Connect the caller to this number (the operator, or calling a
    /// caller back); the session is over.
    Transfer(String),
    /// End the call.
    HangUp,
}
