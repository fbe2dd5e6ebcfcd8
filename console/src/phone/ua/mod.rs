//! The web phone's SIP user agent, sans-IO: the page feeds it what the
//! WebSocket receives, the user's actions and the time, and drains the
//! messages to send ([`Phone::poll_transmit`]) and what happened
//! ([`Phone::poll_event`]). It registers one extension, keeps the
//! registration fresh, and has one call at a time, either way, with hold
//! (re-INVITE) and keys as SIP INFO when the media path has none.
//!
//! The transport is a WebSocket, reliable: nothing is retransmitted
//! (RFC 3261 §17.1.1.2), and a request without an answer in 32 s (timer B
//! and F) fails.

use std::collections::VecDeque;

mod call;

use call::{Call, Stage};

use super::digest::Challenge;
use super::message::{Message, param, uri_of, write};

/// Transaction timeout, 64 × T1.
const TIMEOUT_MS: f64 = 32_000.0;
/// Registration lifetime asked for, seconds.
const EXPIRES: u32 = 600;
/// Wait before registering again after a failure.
const RETRY_MS: f64 = 30_000.0;
/// What the phone says it is.
const USER_AGENT: &str = "edgepbx web phone";
/// Methods it answers.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, OPTIONS";

/// Whose extension the phone is and how to reach the registrar.
#[derive(Clone, Debug)]
pub struct Account {
    /// The extension's number (the user part of its address).
    pub extension: String,
    /// The tenant's SIP domain.
    pub domain: String,
    /// Digest username.
    pub username: String,
    /// SIP password.
    pub password: String,
    /// Over `wss://` (else `ws://`).
    pub secure: bool,
}

/// What happened, for the page.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The registrar accepted the registration.
    Registered,
    /// It refused it (the reason).
    RegistrationFailed(String),
    /// A call comes in: who, and their SDP offer.
    Incoming {
        /// Display name and number.
        caller: String,
        /// The offer to answer with [`Phone::answer`].
        offer: String,
    },
    /// The called party is ringing.
    Ringing,
    /// The remote description to apply: the answer to our offer (from a
    /// 183 or the 200).
    RemoteAnswer(String),
    /// The call is up.
    Connected,
    /// The other side offers new media (re-INVITE): answer it with
    /// [`Phone::answer_reoffer`].
    Reoffer(String),
    /// Our re-INVITE was refused; the media stay as they were.
    ReofferRefused,
    /// The call ended (why).
    Ended(String),
}

#[derive(Clone, Debug, Default)]
struct Registration {
    call_id: String,
    tag: String,
    cseq: u32,
    /// The REGISTER waiting for its answer (sent at).
    pending: Option<f64>,
    challenge: Option<Challenge>,
    nc: u32,
    /// When to register again.
    due: Option<f64>,
    registered: bool,
    /// Asked to end: the next REGISTER has Expires 0.
    leaving: bool,
    /// Challenges in a row (a second one after answering is a failure).
    challenged: u32,
}

/// The user agent.
pub struct Phone {
    account: Account,
    rng: u64,
    /// The `.invalid` host of our Via and Contact.
    host: String,
    /// Our Contact's user part.
    contact_user: String,
    instance: String,
    connected: bool,
    registration: Registration,
    call: Option<Call>,
    out: VecDeque<String>,
    events: VecDeque<Event>,
}

impl Phone {
    /// A phone for `account`, its randomness from `seed`.
    pub fn new(account: Account, seed: u64) -> Phone {
        let mut phone = Phone {
            account,
            rng: seed | 1,
            host: String::new(),
            contact_user: String::new(),
            instance: String::new(),
            connected: false,
            registration: Registration::default(),
            call: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        phone.host = format!("{}.invalid", phone.token(12));
        phone.contact_user = phone.token(8);
        phone.instance = format!(
            "{}-{}-4{}-a{}-{}",
            phone.hex(8),
            phone.hex(4),
            phone.hex(3),
            phone.hex(3),
            phone.hex(12)
        );
        phone.registration.call_id = phone.token(20);
        phone.registration.tag = phone.token(10);
        phone
    }

    fn next(&mut self) -> u64 {
        // xorshift64*: tags, branches and nonces, seeded with the
        // browser's cryptographic randomness.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from_digit((self.next() % 16) as u32, 16).unwrap_or('0'))
            .collect()
    }

    fn aor(&self) -> String {
        format!("sip:{}@{}", self.account.extension, self.account.domain)
    }

    fn via(&mut self) -> String {
        let transport = if self.account.secure { "WSS" } else { "WS" };
        let branch = self.token(16);
        format!("SIP/2.0/{transport} {};branch=z9hG4bK{branch}", self.host)
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{};transport=ws>", self.contact_user, self.host)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.out.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether a call is under way (offered, calling or up).
    pub fn in_call(&self) -> bool {
        self.call.is_some()
    }

    /// The socket is open: registers.
    pub fn connected(&mut self, now: f64) {
        self.connected = true;
        self.registration.challenge = None;
        self.register(now);
    }

    /// The socket closed: the registration and any call are gone.
    pub fn closed(&mut self) {
        self.connected = false;
        self.registration.pending = None;
        self.registration.due = None;
        self.registration.registered = false;
        self.out.clear();
        if self.call.take().is_some() {
            self.events
                .push_back(Event::Ended("the connection to the server was lost".into()));
        }
    }

    /// Ends the registration (Expires 0) and any call.
    pub fn leave(&mut self, now: f64) {
        self.hang_up(now);
        self.registration.leaving = true;
        if self.connected {
            self.register(now);
        }
    }

    fn register(&mut self, now: f64) {
        let r = &mut self.registration;
        r.cseq += 1;
        r.pending = Some(now);
        r.due = None;
        let expires = if r.leaving { 0 } else { EXPIRES };
        let uri = format!("sip:{}", self.account.domain);
        let mut headers = vec![
            ("Via", self.via()),
            ("Max-Forwards", "70".into()),
            ("To", format!("<{}>", self.aor())),
            (
                "From",
                format!("<{}>;tag={}", self.aor(), self.registration.tag),
            ),
            ("Call-ID", self.registration.call_id.clone()),
            ("CSeq", format!("{} REGISTER", self.registration.cseq)),
            (
                "Contact",
                format!(
                    "{};+sip.instance=\"<urn:uuid:{}>\";reg-id=1;expires={expires}",
                    self.contact(),
                    self.instance
                ),
            ),
            ("Expires", expires.to_string()),
            ("Supported", "outbound".into()),
            ("Allow", ALLOW.into()),
            ("User-Agent", USER_AGENT.into()),
        ];
        if let Some(challenge) = self.registration.challenge.clone() {
            self.registration.nc += 1;
            let cnonce = self.token(16);
            headers.push((
                "Authorization",
                challenge.answer(
                    &self.account.username,
                    &self.account.password,
                    "REGISTER",
                    &uri,
                    &cnonce,
                    self.registration.nc,
                ),
            ));
        }
        self.out
            .push_back(write(&format!("REGISTER {uri} SIP/2.0"), &headers, ""));
    }

    /// Time passes: registration refreshes, retries and timeouts.
    pub fn tick(&mut self, now: f64) {
        if !self.connected {
            return;
        }
        if self
            .registration
            .pending
            .is_some_and(|sent| now - sent >= TIMEOUT_MS)
        {
            self.registration.pending = None;
            self.registration.registered = false;
            self.registration.due = Some(now + RETRY_MS);
            self.events.push_back(Event::RegistrationFailed(
                "the server did not answer".into(),
            ));
        }
        if self.registration.due.is_some_and(|due| now >= due) && !self.registration.leaving {
            self.register(now);
        }
        if let Some(call) = &self.call
            && let Stage::Calling {
                deadline: Some(deadline),
            } = call.stage
            && now >= deadline
        {
            self.call = None;
            self.events
                .push_back(Event::Ended("the server did not answer".into()));
        }
    }

    /// A frame from the WebSocket.
    pub fn receive(&mut self, text: &str, now: f64) {
        let Some(message) = Message::parse(text) else {
            return;
        };
        if message.request.is_some() {
            self.request(message, now);
        } else if message.method() == "REGISTER" {
            self.registered(&message, now);
        } else {
            self.response(message);
        }
    }

    fn registered(&mut self, response: &Message, now: f64) {
        let (cseq, _) = response.cseq();
        if cseq != self.registration.cseq || response.status < 200 {
            return;
        }
        self.registration.pending = None;
        match response.status {
            200..=299 => {
                self.registration.challenged = 0;
                if self.registration.leaving {
                    self.registration.registered = false;
                    return;
                }
                // The lifetime granted to our contact, else the Expires
                // header, else what we asked.
                let granted = response
                    .header_values("Contact")
                    .iter()
                    .find(|c| uri_of(c).contains(&self.contact_user))
                    .and_then(|c| param(c, "expires"))
                    .or_else(|| response.header("Expires").map(str::to_owned))
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .unwrap_or(EXPIRES)
                    .max(30);
                self.registration.due = Some(now + f64::from(granted) * 500.0);
                if !self.registration.registered {
                    self.registration.registered = true;
                    self.events.push_back(Event::Registered);
                }
            }
            401 | 407 if self.registration.challenged == 0 => {
                let name = if response.status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                match Challenge::pick(response.values_of(name)) {
                    Some(challenge) => {
                        self.registration.challenged += 1;
                        self.registration.challenge = Some(challenge);
                        self.registration.nc = 0;
                        self.register(now);
                    }
                    None => self.registration_failed(now, "no digest challenge to answer"),
                }
            }
            423 => {
                // Interval too brief: we ask the server's minimum next time.
                self.registration_failed(now, "the server wants a longer registration");
            }
            status => {
                let reason = if matches!(status, 401 | 403 | 407) {
                    "wrong username or password".to_owned()
                } else {
                    format!("{status} {}", response.reason)
                };
                self.registration_failed(now, &reason);
            }
        }
    }

    fn registration_failed(&mut self, now: f64, reason: &str) {
        self.registration.registered = false;
        self.registration.challenged = 0;
        self.registration.challenge = None;
        self.registration.due = Some(now + RETRY_MS);
        self.events
            .push_back(Event::RegistrationFailed(reason.to_owned()));
    }
}
