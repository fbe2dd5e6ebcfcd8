//! The voicemail session in virtual time: a scripted caller presses keys,
//! the "driver" answers what the session asks, the clock moves only when
//! the test says so.

use std::time::{Duration, Instant};

use edgepbx_voicemail::{
    Clip, Config, Greeting, Keep, Mailbox, Message, Output, PROMPTS, PinCheck, Reply, Service,
    Session,
};

struct Call {
    session: Session,
    now: Instant,
    /// Everything the session asked for, in order.
    seen: Vec<Output>,
}

impl Call {
    fn new(service: Service) -> Call {
        let mut call = Call {
            session: Session::new(Config::default(), service),
            now: Instant::now(),
            seen: Vec::new(),
        };
        call.drain();
        call
    }

    fn drain(&mut self) -> Vec<Output> {
        let fresh: Vec<Output> = std::iter::from_fn(|| self.session.poll_output()).collect();
        for output in &fresh {
            if let Output::Play(clips) = output {
                for clip in clips {
                    if let Clip::Prompt(name) = clip {
                        assert!(PROMPTS.contains(name), "{name} is not in the prompt set");
                    }
                }
            }
        }
        self.seen.extend(fresh.clone());
        fresh
    }

    fn keys(&mut self, keys: &str) -> Vec<Output> {
        for key in keys.chars() {
            self.now += Duration::from_millis(300);
            self.session.handle_key(self.now, key);
        }
        self.drain()
    }

    fn played(&mut self) -> Vec<Output> {
        self.session.handle_play_done(self.now);
        self.drain()
    }

    fn reply(&mut self, reply: Reply) -> Vec<Output> {
        self.session.handle_reply(reply);
        self.drain()
    }

    fn wait(&mut self, secs: u64) -> Vec<Output> {
        self.now += Duration::from_secs(secs);
        self.session.handle_timeout(self.now);
        self.drain()
    }
}

fn mailbox(number: &str) -> Mailbox {
    Mailbox {
        number: number.into(),
        greetings: Vec::new(),
        full: false,
        skip_pin_from_own_device: false,
        operator: None,
    }
}

fn prompts(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Play(clips) => Some(clips),
            _ => None,
        })
        .flatten()
        .map(|c| match c {
            Clip::Prompt(name) => (*name).to_owned(),
            Clip::Greeting(g) => format!("greeting:{}", g.as_str()),
            Clip::Message(id) => format!("message:{id}"),
            Clip::Beep => "beep".into(),
        })
        .collect()
}

fn deposit(busy: bool) -> Call {
    Call::new(Service::Deposit {
        mailbox: "101".into(),
        busy,
    })
}

#[test]
fn a_caller_hears_the_default_greeting_and_leaves_a_message_with_pound() {
    let mut call = deposit(false);
    assert_eq!(call.seen, [Output::LoadMailbox("101".into())]);
    let greeting = call.reply(Reply::Mailbox(Some(mailbox("101"))));
    assert_eq!(
        prompts(&greeting),
        [
            "person-at-extension",
            "digit-1",
            "digit-0",
            "digit-1",
            "is-unavailable",
            "leave-message",
            "beep"
        ]
    );
    let record = call.played();
    assert_eq!(
        record,
        [Output::Record {
            max: Duration::from_secs(180),
            silence: Duration::from_secs(5)
        }]
    );
    let kept = call.keys("#");
    assert_eq!(
        kept[0],
        Output::KeepRecording {
            mailbox: "101".into(),
            keep: Keep::Message
        }
    );
    assert_eq!(prompts(&kept), ["message-recorded"]);
    assert_eq!(call.played(), [Output::HangUp]);
    assert!(call.session.is_done());
}

#[test]
fn the_owners_greetings_and_name_are_used_and_pound_skips_them() {
    let mut call = deposit(true);
    let mut with_name = mailbox("101");
    with_name.greetings = vec![Greeting::Name, Greeting::Unavailable];
    let greeting = call.reply(Reply::Mailbox(Some(with_name.clone())));
    // Busy, with no busy greeting: the name, then the default words.
    assert_eq!(
        prompts(&greeting),
        ["greeting:name", "is-busy", "leave-message", "beep"]
    );
    // `#` stops the greeting and goes to the beep.
    let skipped = call.keys("#");
    assert_eq!(skipped[0], Output::StopPlaying);
    assert_eq!(prompts(&skipped), ["beep"]);
    assert!(matches!(call.played()[..], [Output::Record { .. }]));

    let mut call = deposit(false);
    let greeting = call.reply(Reply::Mailbox(Some(with_name)));
    assert_eq!(prompts(&greeting), ["greeting:unavailable", "beep"]);
}

#[test]
fn hanging_up_or_silence_keeps_the_message() {
    let mut call = deposit(false);
    call.reply(Reply::Mailbox(Some(mailbox("101"))));
    call.played();
    call.session.handle_hangup();
    assert_eq!(
        call.drain(),
        [Output::KeepRecording {
            mailbox: "101".into(),
            keep: Keep::Message
        }]
    );

    let mut call = deposit(false);
    call.reply(Reply::Mailbox(Some(mailbox("101"))));
    call.played();
    call.session.handle_recording_ended(call.now);
    let kept = call.drain();
    assert!(matches!(kept[0], Output::KeepRecording { .. }));
    assert_eq!(call.played(), [Output::HangUp]);
}

#[test]
fn a_full_or_missing_mailbox_records_nothing() {
    let mut call = deposit(false);
    let mut full = mailbox("101");
    full.full = true;
    let said = call.reply(Reply::Mailbox(Some(full)));
    assert_eq!(prompts(&said), ["mailbox-full"]);
    assert_eq!(call.played(), [Output::HangUp]);

    let mut call = deposit(false);
    let said = call.reply(Reply::Mailbox(None));
    assert_eq!(prompts(&said), ["no-such-mailbox", "goodbye"]);
    assert_eq!(call.played(), [Output::HangUp]);
    assert!(!call.seen.iter().any(|o| matches!(o, Output::Record { .. })));
}

#[test]
fn star_reaches_the_operator_only_when_there_is_one() {
    let mut call = deposit(false);
    let mut with_operator = mailbox("101");
    with_operator.operator = Some("100".into());
    call.reply(Reply::Mailbox(Some(with_operator.clone())));
    call.played();
    let out = call.keys("*");
    assert_eq!(out[0], Output::DiscardRecording);
    assert_eq!(prompts(&out), ["connecting"]);
    assert_eq!(call.played(), [Output::Transfer("100".into())]);
    assert!(call.session.is_done());

    // During the greeting, 0 does it too.
    let mut call = deposit(false);
    call.reply(Reply::Mailbox(Some(with_operator)));
    let out = call.keys("0");
    assert_eq!(out[0], Output::StopPlaying);
    assert_eq!(call.played(), [Output::Transfer("100".into())]);

    let mut call = deposit(false);
    call.reply(Reply::Mailbox(Some(mailbox("101"))));
    call.played();
    assert_eq!(call.keys("*0"), [], "no operator: the keys do nothing");
}

fn logged_in(messages: Vec<Message>) -> Call {
    let mut call = Call::new(Service::Retrieve { own: None });
    assert_eq!(prompts(&call.seen), ["enter-mailbox"]);
    call.played();
    call.keys("101#");
    call.played();
    let check = call.keys("1234#");
    assert_eq!(
        check,
        [Output::CheckPin {
            mailbox: "101".into(),
            pin: "1234".into()
        }]
    );
    assert_eq!(
        call.reply(Reply::Pin(PinCheck::Accepted)),
        [Output::LoadMailbox("101".into())]
    );
    assert_eq!(
        call.reply(Reply::Mailbox(Some(mailbox("101")))),
        [Output::ListMessages("101".into())]
    );
    call.reply(Reply::Messages(messages));
    call
}

fn message(id: &str, caller: Option<&str>, saved: bool) -> Message {
    Message {
        id: id.into(),
        caller: caller.map(Into::into),
        saved,
    }
}

#[test]
fn listening_new_messages_saving_and_deleting() {
    let mut call = logged_in(vec![
        message("m1", Some("+33 102"), false),
        message("m2", None, false),
        message("m0", Some("103"), true),
    ]);
    let summary = prompts(&call.seen[call.seen.len() - 1..]);
    assert_eq!(
        summary,
        [
            "you-have",
            "digit-2",
            "new",
            "messages",
            "and",
            "digit-1",
            "saved",
            "message",
            "main-menu"
        ]
    );
    // 1: the new messages, the first with its caller's digits.
    let first = call.keys("1");
    assert_eq!(first[0], Output::StopPlaying);
    assert_eq!(
        prompts(&first),
        [
            "message",
            "digit-1",
            "from",
            "digit-3",
            "digit-3",
            "digit-1",
            "digit-0",
            "digit-2",
            "message:m1",
            "message-menu"
        ]
    );
    // Heard to the end: no longer new.
    assert_eq!(
        call.played(),
        [Output::MarkSaved {
            mailbox: "101".into(),
            id: "m1".into()
        }]
    );
    // 6: the next, from an unknown caller; 3 deletes it, and that was the
    // last: fresh counts and the main menu.
    let second = call.keys("6");
    assert!(prompts(&second).contains(&"unknown-caller".to_owned()));
    let deleted = call.keys("3");
    assert_eq!(
        deleted[1],
        Output::Delete {
            mailbox: "101".into(),
            id: "m2".into()
        }
    );
    assert_eq!(deleted.last(), Some(&Output::ListMessages("101".into())));
    let menu = call.reply(Reply::Messages(vec![
        message("m1", Some("102"), true),
        message("m0", Some("103"), true),
    ]));
    assert_eq!(
        prompts(&menu),
        [
            "message-deleted",
            "no-more-messages",
            "you-have",
            "no",
            "new",
            "messages",
            "and",
            "digit-2",
            "saved",
            "messages",
            "main-menu"
        ]
    );
    // 2: the saved messages; 5 calls the caller back.
    let saved = call.keys("2");
    assert!(prompts(&saved).contains(&"message:m1".to_owned()));
    let back = call.keys("5");
    assert_eq!(prompts(&back), ["connecting"]);
    assert_eq!(call.played(), [Output::Transfer("102".into())]);
}

#[test]
fn three_wrong_pins_end_the_call_and_a_locked_mailbox_lets_nobody_in() {
    let mut call = Call::new(Service::Retrieve { own: None });
    call.played();
    call.keys("101#");
    for attempt in 1..=3 {
        call.played();
        let check = call.keys("9999#");
        assert!(matches!(check[..], [Output::CheckPin { .. }]));
        let said = call.reply(Reply::Pin(PinCheck::Refused));
        if attempt < 3 {
            assert_eq!(prompts(&said), ["pin-incorrect", "enter-pin"]);
        } else {
            assert_eq!(prompts(&said), ["pin-incorrect", "goodbye"]);
        }
    }
    assert_eq!(call.played(), [Output::HangUp]);

    let mut call = Call::new(Service::Retrieve {
        own: Some("101".into()),
    });
    call.reply(Reply::Mailbox(Some(mailbox("101"))));
    call.played();
    call.keys("1234#");
    let said = call.reply(Reply::Pin(PinCheck::Locked));
    assert_eq!(prompts(&said), ["mailbox-locked", "goodbye"]);
    assert!(
        !call
            .seen
            .iter()
            .any(|o| matches!(o, Output::ListMessages(_)))
    );
}

#[test]
fn the_own_device_may_skip_the_pin() {
    let mut call = Call::new(Service::Retrieve {
        own: Some("101".into()),
    });
    let mut trusting = mailbox("101");
    trusting.skip_pin_from_own_device = true;
    assert_eq!(
        call.reply(Reply::Mailbox(Some(trusting))),
        [Output::ListMessages("101".into())]
    );
    // The same mailbox without the option asks for the PIN.
    let mut call = Call::new(Service::Retrieve {
        own: Some("101".into()),
    });
    let asked = call.reply(Reply::Mailbox(Some(mailbox("101"))));
    assert_eq!(prompts(&asked), ["enter-pin"]);
}

#[test]
fn changing_the_pin_and_recording_a_greeting() {
    let mut call = logged_in(Vec::new());
    call.keys("4");
    call.played();
    call.keys("2468#");
    call.played();
    let changed = call.keys("2468#");
    assert_eq!(
        changed[0],
        Output::ChangePin {
            mailbox: "101".into(),
            pin: "2468".into()
        }
    );
    assert_eq!(prompts(&changed), ["pin-changed", "main-menu"]);
    // A PIN too short, or two different ones, change nothing.
    call.keys("4");
    call.played();
    let short = call.keys("12#");
    assert_eq!(prompts(&short), ["pin-not-changed", "main-menu"]);
    call.keys("4");
    call.keys("11112#");
    let differ = call.keys("11113#");
    assert_eq!(prompts(&differ), ["pin-not-changed", "main-menu"]);
    // 3 then 2: the busy greeting, recorded after the tone, kept with #.
    call.keys("3");
    let tone = call.keys("2");
    assert_eq!(prompts(&tone), ["record-after-tone", "beep"]);
    assert!(
        matches!(call.played()[..], [Output::Record { max, .. }] if max == Duration::from_secs(60))
    );
    let kept = call.keys("#");
    assert_eq!(
        kept[0],
        Output::KeepRecording {
            mailbox: "101".into(),
            keep: Keep::Greeting(Greeting::Busy)
        }
    );
    assert_eq!(prompts(&kept), ["greeting-saved", "greetings-menu"]);
    // Hanging up while recording a greeting throws it away.
    call.keys("1");
    call.played();
    call.session.handle_hangup();
    assert_eq!(call.drain(), [Output::DiscardRecording]);
}

#[test]
fn unanswered_questions_repeat_then_the_call_ends() {
    let mut call = Call::new(Service::Retrieve { own: None });
    call.played();
    assert!(call.wait(7).is_empty(), "not yet");
    assert_eq!(prompts(&call.wait(1)), ["enter-mailbox"]);
    call.played();
    call.wait(8);
    call.played();
    assert_eq!(prompts(&call.wait(8)), ["goodbye"]);
    assert_eq!(call.played(), [Output::HangUp]);
}

#[test]
fn a_pause_after_the_digits_completes_the_number() {
    let mut call = Call::new(Service::Retrieve { own: None });
    call.played();
    call.keys("101");
    assert!(call.wait(3).is_empty());
    assert_eq!(prompts(&call.wait(1)), ["enter-pin"]);
    let mut invalid = logged_in(Vec::new());
    assert_eq!(prompts(&invalid.keys("9")), ["invalid-choice", "main-menu"]);
    assert_eq!(prompts(&invalid.keys("*")), ["goodbye"]);
    assert_eq!(invalid.played(), [Output::HangUp]);
}
