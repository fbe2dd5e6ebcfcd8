//! One call answered by voicemail.
//!
//! Leaving a message: the mailbox is loaded, its greeting plays (the
//! owner's recording, else "the person at extension 101 is not available"
//! with the recorded name when there is one, and how to leave a message),
//! then a beep, then the recording until `#`, silence, the maximum length
//! or the caller hanging up (each keeps the message). `#` during the
//! greeting skips to the beep; `*` or `0` (greeting or recording) goes to
//! the tenant's operator when it has one, without leaving a message.
//!
//! Listening: the mailbox is asked for (`*98`) or known (`*97`), the PIN is
//! asked unless the caller is on the extension's own device and the
//! mailbox allows that; then the counts and the main menu: 1 new messages,
//! 2 saved ones, 3 greetings, 4 the PIN, `*` leave. While a message plays
//! or after it: 1 again, 2 save, 3 delete, 5 call the caller back, 6 next,
//! `*` the main menu. A key stops the prompt it interrupts. A question or menu
//! left unanswered is repeated, then the call ends.

use std::collections::VecDeque;
use std::time::Instant;

use crate::collect::{Collected, Collector};
use crate::{
    Clip, Config, Greeting, Keep, Mailbox, Message, Output, PinCheck, Reply, Service, is_valid_pin,
};

/// A question whose answer is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ask {
    Mailbox,
    Pin,
    NewPin,
    RepeatPin(String),
}

impl Ask {
    fn prompt(&self) -> &'static str {
        match self {
            Ask::Mailbox => "enter-mailbox",
            Ask::Pin => "enter-pin",
            Ask::NewPin => "new-pin",
            Ask::RepeatPin(_) => "reenter-pin",
        }
    }
}

/// A menu answered with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Menu {
    Main,
    Message,
    Greetings,
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for [`Reply::Mailbox`].
    Loading,
    /// Playing the greeting, then the beep.
    Greeting,
    /// Recording, kept as this.
    Recording(Keep),
    /// Playing a question, then waiting for its answer.
    Asking(Ask),
    /// Waiting for [`Reply::Pin`].
    CheckingPin,
    /// Waiting for [`Reply::Messages`].
    Listing,
    /// Playing a menu (or a message and its menu), then waiting for a key.
    Menu(Menu),
    /// Playing something, then doing this.
    Then(Box<Output>),
    /// Playing the greetings menu's beep before recording this greeting.
    BeforeRecording(Greeting),
    /// Over.
    Done,
}

/// One call answered by voicemail. See the [module](self) documentation.
#[derive(Debug)]
pub struct Session {
    config: Config,
    service: Service,
    state: State,
    outputs: VecDeque<Output>,
    /// The mailbox, once loaded (and, listening, logged in).
    mailbox: Option<Mailbox>,
    /// The number typed for `*98`.
    number: Option<String>,
    collector: Collector,
    /// Audio is playing (a key interrupts it).
    playing: bool,
    /// When an unanswered question or menu is repeated.
    deadline: Option<Instant>,
    repeats: u32,
    wrong_pins: u32,
    /// The PIN was accepted (or not needed).
    logged_in: bool,
    /// Played before the counts once the messages are listed.
    pending_intro: Vec<Clip>,
    /// The messages being listened to, and which.
    messages: Vec<Message>,
    current: usize,
}

impl Session {
    /// A session for `service`; it starts at once (drain its outputs).
    pub fn new(config: Config, service: Service) -> Session {
        let mut session = Session {
            config,
            service: service.clone(),
            state: State::Loading,
            outputs: VecDeque::new(),
            mailbox: None,
            number: None,
            collector: Collector::new(),
            playing: false,
            deadline: None,
            repeats: 0,
            wrong_pins: 0,
            logged_in: false,
            pending_intro: Vec::new(),
            messages: Vec::new(),
            current: 0,
        };
        match service {
            Service::Deposit { mailbox, .. } => session.push(Output::LoadMailbox(mailbox)),
            Service::Retrieve { own: Some(number) } => {
                session.number = Some(number.clone());
                session.push(Output::LoadMailbox(number));
            }
            Service::Retrieve { own: None } => session.ask(Ask::Mailbox, Vec::new()),
        }
        session
    }

    /// Whether the session has ended (it hung up or transferred).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The mailbox the session is in, once loaded.
    pub fn mailbox(&self) -> Option<String> {
        self.mailbox_number()
    }

    /// The next thing for the driver to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Session::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.deadline, self.collector.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Everything queued has played.
    pub fn handle_play_done(&mut self, now: Instant) {
        self.playing = false;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Greeting => self.record(Keep::Message),
            State::BeforeRecording(greeting) => self.record(Keep::Greeting(greeting)),
            State::Then(output) => self.push(*output),
            state @ (State::Asking(_) | State::Menu(_)) => {
                if state == State::Menu(Menu::Message) {
                    self.mark_heard();
                }
                self.state = state;
                if !self.collector.started() {
                    self.deadline = Some(now + self.config.first_key);
                }
            }
            state => self.state = state,
        }
    }

    /// The recording ended by itself (maximum length or silence): it is
    /// kept, as if `#` had been pressed.
    pub fn handle_recording_ended(&mut self, now: Instant) {
        if matches!(self.state, State::Recording(_)) {
            self.handle_key(now, '#');
        }
    }

    /// The caller hung up: a message being recorded is kept.
    pub fn handle_hangup(&mut self) {
        if let State::Recording(keep) = &self.state {
            let output = match keep {
                Keep::Message => self.keep(Keep::Message),
                Keep::Greeting(_) => Output::DiscardRecording,
            };
            self.push(output);
        }
        self.state = State::Done;
        self.deadline = None;
    }

    /// Time passed: a typed number is complete, or a question went
    /// unanswered.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(number) = self.collector.timeout(now) {
            return self.answered(number);
        }
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.repeats += 1;
            if self.repeats >= self.config.repeats {
                return self.goodbye(Vec::new());
            }
            match self.state.clone() {
                State::Asking(ask) => self.ask(ask, Vec::new()),
                State::Menu(menu) => self.menu(menu, Vec::new()),
                _ => {}
            }
        }
    }

    /// The party pressed `key`.
    pub fn handle_key(&mut self, now: Instant, key: char) {
        match self.state.clone() {
            State::Greeting if key == '#' => {
                self.stop_playing();
                self.play(vec![Clip::Beep]);
            }
            State::Greeting if matches!(key, '*' | '0') => self.call_operator(),
            State::Recording(Keep::Message)
                if matches!(key, '*' | '0') && self.operator().is_some() =>
            {
                self.push(Output::DiscardRecording);
                self.call_operator();
            }
            State::Recording(keep) if key == '#' => {
                let output = self.keep(keep.clone());
                self.push(output);
                match keep {
                    Keep::Message => {
                        self.play(vec![Clip::Prompt("message-recorded")]);
                        self.state = State::Then(Box::new(Output::HangUp));
                    }
                    Keep::Greeting(_) => {
                        self.menu(Menu::Greetings, vec![Clip::Prompt("greeting-saved")]);
                    }
                }
            }
            State::Asking(_) => {
                self.stop_playing();
                self.deadline = None;
                if let Collected::Done(number) =
                    self.collector.key(now, key, self.config.inter_digit)
                {
                    self.answered(number);
                }
            }
            State::Menu(menu) => {
                self.stop_playing();
                self.deadline = None;
                self.repeats = 0;
                self.choose(menu, key);
            }
            _ => {}
        }
    }

    /// The answer to something the session asked.
    pub fn handle_reply(&mut self, reply: Reply) {
        match (self.state.clone(), reply) {
            (State::Loading, Reply::Mailbox(mailbox)) => self.loaded(mailbox),
            (State::CheckingPin, Reply::Pin(check)) => self.pin_checked(check),
            (State::Listing, Reply::Messages(messages)) => {
                self.messages = messages;
                self.summary();
            }
            _ => {}
        }
    }

    fn loaded(&mut self, mailbox: Option<Mailbox>) {
        match (&self.service, mailbox) {
            (Service::Deposit { busy, .. }, Some(mailbox)) => {
                if mailbox.full {
                    self.play(vec![Clip::Prompt("mailbox-full")]);
                    self.state = State::Then(Box::new(Output::HangUp));
                    return;
                }
                let mut clips = greeting(&mailbox, *busy);
                clips.push(Clip::Beep);
                self.mailbox = Some(mailbox);
                self.play(clips);
                self.state = State::Greeting;
            }
            (Service::Deposit { .. }, None) => {
                self.goodbye(vec![Clip::Prompt("no-such-mailbox")]);
            }
            // Logged in (after the PIN, or on the extension's own device).
            (Service::Retrieve { .. }, Some(mailbox)) if self.logged_in => {
                self.mailbox = Some(mailbox);
                self.list();
            }
            (Service::Retrieve { own: Some(_) }, Some(mailbox))
                if mailbox.skip_pin_from_own_device =>
            {
                self.logged_in = true;
                self.mailbox = Some(mailbox);
                self.list();
            }
            (Service::Retrieve { .. }, _) => self.ask(Ask::Pin, Vec::new()),
        }
    }

    fn pin_checked(&mut self, check: PinCheck) {
        let number = self.number.clone().unwrap_or_default();
        match check {
            PinCheck::Accepted => {
                self.logged_in = true;
                self.state = State::Loading;
                self.push(Output::LoadMailbox(number));
            }
            PinCheck::Locked => self.goodbye(vec![Clip::Prompt("mailbox-locked")]),
            PinCheck::Refused => {
                self.wrong_pins += 1;
                let wrong = vec![Clip::Prompt("pin-incorrect")];
                if self.wrong_pins >= self.config.pin_attempts {
                    self.goodbye(wrong);
                } else {
                    self.ask(Ask::Pin, wrong);
                }
            }
        }
    }

    /// A typed number is complete.
    fn answered(&mut self, typed: String) {
        let State::Asking(ask) = self.state.clone() else {
            return;
        };
        if typed.is_empty() && !matches!(ask, Ask::NewPin | Ask::RepeatPin(_)) {
            return self.ask(ask, Vec::new());
        }
        match ask {
            Ask::Mailbox => {
                self.number = Some(typed);
                self.ask(Ask::Pin, Vec::new());
            }
            Ask::Pin => {
                self.state = State::CheckingPin;
                let mailbox = self.number.clone().unwrap_or_default();
                self.push(Output::CheckPin {
                    mailbox,
                    pin: typed,
                });
            }
            Ask::NewPin if is_valid_pin(&typed) => self.ask(Ask::RepeatPin(typed), Vec::new()),
            Ask::NewPin => self.menu(Menu::Main, vec![Clip::Prompt("pin-not-changed")]),
            Ask::RepeatPin(first) if first == typed => {
                if let Some(mailbox) = self.mailbox_number() {
                    self.push(Output::ChangePin {
                        mailbox,
                        pin: typed,
                    });
                }
                self.menu(Menu::Main, vec![Clip::Prompt("pin-changed")]);
            }
            Ask::RepeatPin(_) => self.menu(Menu::Main, vec![Clip::Prompt("pin-not-changed")]),
        }
    }

    /// A key in a menu.
    fn choose(&mut self, menu: Menu, key: char) {
        match (menu, key) {
            (Menu::Main, '1') => self.open_folder(false),
            (Menu::Main, '2') => self.open_folder(true),
            (Menu::Main, '3') => self.menu(Menu::Greetings, Vec::new()),
            (Menu::Main, '4') => self.ask(Ask::NewPin, Vec::new()),
            (Menu::Main, '*') => self.goodbye(Vec::new()),
            (Menu::Greetings, '*') => self.menu(Menu::Main, Vec::new()),
            (Menu::Greetings, '1' | '2' | '3') => {
                let greeting = match key {
                    '1' => Greeting::Unavailable,
                    '2' => Greeting::Busy,
                    _ => Greeting::Name,
                };
                self.play(vec![Clip::Prompt("record-after-tone"), Clip::Beep]);
                self.state = State::BeforeRecording(greeting);
            }
            (Menu::Message, _) => self.message_key(key),
            _ => self.menu(menu, vec![Clip::Prompt("invalid-choice")]),
        }
    }

    fn message_key(&mut self, key: char) {
        let Some(message) = self.messages.get(self.current).cloned() else {
            return self.menu(Menu::Main, Vec::new());
        };
        let mailbox = self.mailbox_number().unwrap_or_default();
        match key {
            '1' => self.play_current(Vec::new()),
            '2' => {
                self.mark_heard();
                self.next_message(vec![Clip::Prompt("message-saved")]);
            }
            '3' => {
                self.push(Output::Delete {
                    mailbox,
                    id: message.id,
                });
                self.messages.remove(self.current);
                // The next message is now at the same place.
                self.current = self.current.wrapping_sub(1);
                self.next_message(vec![Clip::Prompt("message-deleted")]);
            }
            '5' => match message
                .caller
                .filter(|c| c.chars().any(|c| c.is_ascii_digit()))
            {
                Some(caller) => {
                    self.mark_heard();
                    self.then(vec![Clip::Prompt("connecting")], Output::Transfer(caller));
                }
                None => self.menu(Menu::Message, vec![Clip::Prompt("invalid-choice")]),
            },
            '6' => {
                self.mark_heard();
                self.next_message(Vec::new());
            }
            '*' => {
                self.mark_heard();
                self.menu(Menu::Main, Vec::new());
            }
            _ => self.menu(Menu::Message, vec![Clip::Prompt("invalid-choice")]),
        }
    }

    /// Plays the first message of one folder (new, or saved).
    fn open_folder(&mut self, saved: bool) {
        // The folder's messages stay in the list; the others are dropped
        // from it until the next listing.
        self.messages.retain(|m| m.saved == saved);
        self.current = 0;
        if self.messages.is_empty() {
            return self.menu(Menu::Main, vec![Clip::Prompt("no-more-messages")]);
        }
        self.play_current(Vec::new());
    }

    fn next_message(&mut self, before: Vec<Clip>) {
        self.current = self.current.wrapping_add(1);
        if self.current >= self.messages.len() {
            let mut clips = before;
            clips.push(Clip::Prompt("no-more-messages"));
            // Back to the main menu with fresh counts.
            self.list_after(clips);
            return;
        }
        self.play_current(before);
    }

    fn play_current(&mut self, mut clips: Vec<Clip>) {
        let Some(message) = self.messages.get(self.current) else {
            return;
        };
        clips.push(Clip::Prompt("message"));
        clips.extend(number(self.current + 1));
        clips.push(Clip::Prompt("from"));
        match message
            .caller
            .as_deref()
            .filter(|c| c.chars().any(|c| c.is_ascii_digit()))
        {
            Some(caller) => clips.extend(digits(caller)),
            None => clips.push(Clip::Prompt("unknown-caller")),
        }
        clips.push(Clip::Message(message.id.clone()));
        self.menu(Menu::Message, clips);
    }

    /// The current message has been heard: it is no longer new.
    fn mark_heard(&mut self) {
        let Some(mailbox) = self.mailbox_number() else {
            return;
        };
        if let Some(message) = self.messages.get_mut(self.current)
            && !message.saved
        {
            message.saved = true;
            let id = message.id.clone();
            self.push(Output::MarkSaved { mailbox, id });
        }
    }

    fn list(&mut self) {
        self.list_after(Vec::new());
    }

    /// Lists the messages again, then the counts and the main menu play
    /// after `before`.
    fn list_after(&mut self, before: Vec<Clip>) {
        if let Some(mailbox) = self.mailbox_number() {
            self.pending_intro = before;
            self.state = State::Listing;
            self.push(Output::ListMessages(mailbox));
        }
    }

    /// "You have 2 new messages and 1 saved message", then the main menu.
    fn summary(&mut self) {
        let new = self.messages.iter().filter(|m| !m.saved).count();
        let saved = self.messages.len() - new;
        let mut clips = std::mem::take(&mut self.pending_intro);
        clips.push(Clip::Prompt("you-have"));
        clips.extend(count(new, "new"));
        clips.push(Clip::Prompt("and"));
        clips.extend(count(saved, "saved"));
        self.menu(Menu::Main, clips);
    }

    fn menu(&mut self, menu: Menu, mut clips: Vec<Clip>) {
        clips.push(Clip::Prompt(match menu {
            Menu::Main => "main-menu",
            Menu::Message => "message-menu",
            Menu::Greetings => "greetings-menu",
        }));
        self.play(clips);
        self.state = State::Menu(menu);
    }

    fn ask(&mut self, ask: Ask, mut clips: Vec<Clip>) {
        clips.push(Clip::Prompt(ask.prompt()));
        self.collector = Collector::new();
        self.play(clips);
        self.state = State::Asking(ask);
    }

    fn record(&mut self, keep: Keep) {
        let max = match keep {
            Keep::Message => self.config.max_message,
            Keep::Greeting(_) => self.config.max_greeting,
        };
        self.push(Output::Record {
            max,
            silence: self.config.silence,
        });
        self.state = State::Recording(keep);
    }

    fn keep(&self, keep: Keep) -> Output {
        match self.mailbox_number() {
            Some(mailbox) => Output::KeepRecording { mailbox, keep },
            None => Output::DiscardRecording,
        }
    }

    fn call_operator(&mut self) {
        if let Some(operator) = self.operator() {
            self.stop_playing();
            self.then(vec![Clip::Prompt("connecting")], Output::Transfer(operator));
        }
    }

    fn operator(&self) -> Option<String> {
        self.mailbox.as_ref().and_then(|m| m.operator.clone())
    }

    fn goodbye(&mut self, mut clips: Vec<Clip>) {
        clips.push(Clip::Prompt("goodbye"));
        self.then(clips, Output::HangUp);
    }

    /// Plays `clips`, then does `output`.
    fn then(&mut self, clips: Vec<Clip>, output: Output) {
        self.stop_playing();
        self.play(clips);
        self.state = State::Then(Box::new(output));
    }

    fn play(&mut self, clips: Vec<Clip>) {
        self.deadline = None;
        self.playing = true;
        self.push(Output::Play(clips));
    }

    fn stop_playing(&mut self) {
        if self.playing {
            self.playing = false;
            self.push(Output::StopPlaying);
        }
    }

    fn mailbox_number(&self) -> Option<String> {
        self.mailbox.as_ref().map(|m| m.number.clone())
    }

    fn push(&mut self, output: Output) {
        if matches!(output, Output::HangUp | Output::Transfer(_)) {
            self.state = State::Done;
            self.deadline = None;
        }
        self.outputs.push_back(output);
    }
}

/// What a caller hears before the beep.
fn greeting(mailbox: &Mailbox, busy: bool) -> Vec<Clip> {
    let own = if busy {
        Greeting::Busy
    } else {
        Greeting::Unavailable
    };
    if mailbox.greetings.contains(&own) {
        return vec![Clip::Greeting(own)];
    }
    let mut clips = if mailbox.greetings.contains(&Greeting::Name) {
        vec![Clip::Greeting(Greeting::Name)]
    } else {
        let mut c = vec![Clip::Prompt("person-at-extension")];
        c.extend(digits(&mailbox.number));
        c
    };
    clips.push(Clip::Prompt(if busy {
        "is-busy"
    } else {
        "is-unavailable"
    }));
    clips.push(Clip::Prompt("leave-message"));
    clips
}

/// The digit prompts of a number's digits (other characters are skipped).
fn digits(text: &str) -> Vec<Clip> {
    text.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| Clip::Prompt(DIGITS[d as usize]))
        .collect()
}

/// A count, digit by digit.
fn number(n: usize) -> Vec<Clip> {
    digits(&n.to_string())
}

/// "no new messages", "1 new message", "3 new messages".
fn count(n: usize, what: &'static str) -> Vec<Clip> {
    let mut clips = if n == 0 {
        vec![Clip::Prompt("no")]
    } else {
        number(n)
    };
    clips.push(Clip::Prompt(what));
    clips.push(Clip::Prompt(if n == 1 { "message" } else { "messages" }));
    clips
}

const DIGITS: [&str; 10] = [
    "digit-0", "digit-1", "digit-2", "digit-3", "digit-4", "digit-5", "digit-6", "digit-7",
    "digit-8", "digit-9",
];
