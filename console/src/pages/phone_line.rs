//! The web phone's line: the user agent of `crate::phone` driven with a
//! WebSocket, the call's media (`pages::phone_media`) and the clock, and
//! what the page shows of them as signals.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::WebPhone;
use crate::pages::phone_media::{Media, Ringer, Stats};
use crate::phone::ua::{Account, Event, Phone};

/// Where the call is, as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum CallState {
    /// No call (the last one's ending, if any).
    Idle(Option<String>),
    /// Our call goes out.
    Calling(String),
    /// The called party rings.
    Ringing(String),
    /// A call rings here.
    Incoming(String),
    /// Talking since (ms).
    Up { peer: String, since: f64 },
}

/// What the page shows, as signals.
#[derive(Clone, Copy)]
pub struct View {
    pub registration: RwSignal<String>,
    pub registered: RwSignal<bool>,
    pub call: RwSignal<CallState>,
    pub held: RwSignal<bool>,
    pub muted: RwSignal<bool>,
    pub now: RwSignal<f64>,
    pub stats: RwSignal<Option<Stats>>,
}

/// The phone and its media, shared by the socket's and the page's
/// handlers.
struct State {
    phone: Phone,
    media: Option<Media>,
    socket: Option<web_sys::WebSocket>,
    /// The offer of a call ringing here.
    offer: Option<String>,
    /// Its ring, while it rings.
    ringer: Option<Ringer>,
    /// Leaving the page: no reconnection.
    gone: bool,
    /// The socket's handlers, alive as long as it is.
    handlers: Vec<Box<dyn std::any::Any>>,
}

/// A registered extension: its user agent, socket and call media, and
/// what the page shows of them.
#[derive(Clone)]
pub struct Line {
    state: Rc<RefCell<State>>,
    view: View,
    audio: NodeRef<leptos::html::Audio>,
}

/// The time, ms.
pub fn now() -> f64 {
    js_sys::Date::now()
}

/// Randomness for tags, branches and nonces.
fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    let filled = window()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).map(drop));
    if filled.is_err() {
        bytes = (now() as u64 ^ (js_sys::Math::random() * 1e15) as u64).to_le_bytes();
    }
    u64::from_le_bytes(bytes)
}

impl View {
    /// Nothing yet: connecting.
    pub fn new() -> View {
        View {
            registration: RwSignal::new("Connecting…".into()),
            registered: RwSignal::new(false),
            call: RwSignal::new(CallState::Idle(None)),
            held: RwSignal::new(false),
            muted: RwSignal::new(false),
            now: RwSignal::new(now()),
            stats: RwSignal::new(None),
        }
    }
}

impl Line {
    /// Opens the socket and starts the user agent.
    pub fn start(credentials: WebPhone, view: View, audio: NodeRef<leptos::html::Audio>) -> Line {
        let location = window().location();
        let secure = location.protocol().is_ok_and(|p| p == "https:");
        let account = Account {
            extension: credentials.extension.clone(),
            domain: credentials.domain.clone(),
            username: credentials.username,
            password: credentials.password,
            secure,
        };
        let line = Line {
            state: Rc::new(RefCell::new(State {
                phone: Phone::new(account, seed()),
                media: None,
                socket: None,
                offer: None,
                ringer: None,
                gone: false,
                handlers: Vec::new(),
            })),
            view,
            audio,
        };
        let url = format!(
            "{}://{}{}",
            if secure { "wss" } else { "ws" },
            location.host().unwrap_or_default(),
            credentials.path
        );
        view.registration.set(format!(
            "Registering {} ({})…",
            credentials.extension, credentials.name
        ));
        line.connect(url);
        line
    }

    /// Opens the WebSocket and wires it to the user agent; reconnects after a
    /// loss, five seconds later.
    fn connect(&self, url: String) {
        let view = self.view;
        use wasm_bindgen::JsCast;
        use wasm_bindgen::closure::Closure;
        let Ok(socket) = web_sys::WebSocket::new_with_str(&url, "sip") else {
            view.registration
                .set("Not registered: this browser cannot open the connection".into());
            return;
        };
        let on_open = {
            let line = self.clone();
            Closure::<dyn FnMut()>::new(move || {
                line.state.borrow_mut().phone.connected(now());
                line.flush();
            })
        };
        let on_message = {
            let line = self.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                if let Some(text) = ev.data().as_string() {
                    line.state.borrow_mut().phone.receive(&text, now());
                    line.flush();
                }
            })
        };
        let on_close = {
            let line = self.clone();
            let url = url.clone();
            Closure::<dyn FnMut()>::new(move || {
                let gone = {
                    let mut l = line.state.borrow_mut();
                    l.phone.closed();
                    l.socket = None;
                    l.gone
                };
                line.flush();
                view.registered.set(false);
                if gone {
                    return;
                }
                view.registration
                    .set("Connection lost; connecting again…".into());
                let (line, url) = (line.clone(), url.clone());
                set_timeout(
                    move || {
                        if !line.state.borrow().gone {
                            line.connect(url);
                        }
                    },
                    std::time::Duration::from_secs(5),
                );
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        let mut l = self.state.borrow_mut();
        l.socket = Some(socket);
        l.handlers = vec![Box::new(on_open), Box::new(on_message), Box::new(on_close)];
    }

    /// Sends what the user agent has to send and acts on what happened.
    fn flush(&self) {
        loop {
            let (out, event) = {
                let mut l = self.state.borrow_mut();
                (l.phone.poll_transmit(), l.phone.poll_event())
            };
            if out.is_none() && event.is_none() {
                return;
            }
            if let Some(text) = out
                && let Some(socket) = &self.state.borrow().socket
            {
                let _ = socket.send_with_str(&text);
            }
            if let Some(event) = event {
                self.handle(event);
            }
        }
    }

    fn handle(&self, event: Event) {
        let view = self.view;
        match event {
            Event::Registered => {
                view.registered.set(true);
                view.registration.set("Registered: calls ring here.".into());
            }
            Event::RegistrationFailed(why) => {
                view.registered.set(false);
                view.registration.set(format!("Not registered: {why}"));
            }
            Event::Incoming { caller, offer } => {
                let mut l = self.state.borrow_mut();
                l.offer = Some(offer);
                l.ringer = Ringer::start();
                drop(l);
                view.call.set(CallState::Incoming(caller));
            }
            Event::Ringing => view.call.update(|c| {
                if let CallState::Calling(peer) = c {
                    *c = CallState::Ringing(peer.clone());
                }
            }),
            Event::RemoteAnswer(sdp) => {
                let media = self.state.borrow().media.clone();
                let line = self.clone();
                if let Some(media) = media {
                    spawn_local(async move {
                        if let Err(why) = media.accept_answer(&sdp).await {
                            line.hang_up();
                            view.call.set(CallState::Idle(Some(format!(
                                "the other side's media could not be used ({why})"
                            ))));
                        }
                    });
                }
            }
            Event::Connected => {
                self.state.borrow_mut().ringer = None;
                view.call.update(|c| {
                    let peer = match c {
                        CallState::Calling(p) | CallState::Ringing(p) | CallState::Incoming(p) => {
                            p.clone()
                        }
                        CallState::Up { peer, .. } => peer.clone(),
                        CallState::Idle(_) => String::new(),
                    };
                    *c = CallState::Up { peer, since: now() };
                });
            }
            Event::Reoffer(sdp) => {
                let media = self.state.borrow().media.clone();
                let line = self.clone();
                if let Some(media) = media {
                    spawn_local(async move {
                        if let Some(answer) = media.answer(&sdp).await {
                            line.state.borrow_mut().phone.answer_reoffer(answer);
                            line.flush();
                        }
                    });
                }
            }
            Event::ReofferRefused => view.held.update(|h| *h = !*h),
            Event::Ended(why) => {
                let mut l = self.state.borrow_mut();
                if let Some(media) = l.media.take() {
                    media.close();
                }
                l.offer = None;
                l.ringer = None;
                drop(l);
                view.held.set(false);
                view.muted.set(false);
                view.stats.set(None);
                view.call.set(CallState::Idle(Some(why)));
            }
        }
    }

    /// Calls `to`.
    pub fn dial(&self, to: String) {
        let (line, view, audio) = (self.clone(), self.view, self.audio);
        view.call.set(CallState::Calling(to.clone()));
        spawn_local(async move {
            match Media::open(audio).await {
                Ok((media, offer)) => {
                    let mut l = line.state.borrow_mut();
                    l.media = Some(media);
                    l.phone.dial(&to, offer, now());
                    drop(l);
                    line.flush();
                }
                Err(why) => view.call.set(CallState::Idle(Some(why))),
            }
        });
    }

    /// Answers the call ringing here.
    pub fn answer(&self) {
        let Some(offer) = self.state.borrow_mut().offer.take() else {
            return;
        };
        self.state.borrow_mut().ringer = None;
        let (line, view, audio) = (self.clone(), self.view, self.audio);
        spawn_local(async move {
            match Media::answering(audio, &offer).await {
                Ok((media, answer)) => {
                    let still_ringing = line.state.borrow().phone.in_call();
                    if !still_ringing {
                        media.close();
                        return;
                    }
                    let mut l = line.state.borrow_mut();
                    l.media = Some(media);
                    l.phone.answer(answer);
                    drop(l);
                    line.flush();
                }
                Err(why) => {
                    line.hang_up();
                    view.call.set(CallState::Idle(Some(why)));
                }
            }
        });
    }

    /// Hangs up, declines or cancels.
    pub fn hang_up(&self) {
        self.state.borrow_mut().phone.hang_up(now());
        self.flush();
    }

    /// Holds the call (`on`) or resumes it.
    pub fn hold(&self, on: bool) {
        let Some(media) = self.state.borrow().media.clone() else {
            return;
        };
        self.view.held.set(on);
        let line = self.clone();
        spawn_local(async move {
            if let Some(offer) = media.reoffer(on).await {
                // The answer comes back as a remote answer, like the first.
                line.state.borrow_mut().phone.reoffer(offer);
                line.flush();
            }
        });
    }

    /// Stops sending the microphone (`on`) or sends it again.
    pub fn mute(&self, on: bool) {
        if let Some(media) = &self.state.borrow().media {
            media.mute(on);
        }
        self.view.muted.set(on);
    }

    /// Sends a key: an RFC 4733 event, or SIP INFO when the call has none.
    pub fn press(&self, key: char) {
        let sent = self
            .state
            .borrow()
            .media
            .as_ref()
            .is_some_and(|m| m.press(key));
        if !sent {
            self.state.borrow_mut().phone.press(key);
            self.flush();
        }
    }

    /// Every second: the user agent's timers, the call's clock and its
    /// statistics.
    pub fn tick(&self) {
        self.view.now.set(now());
        self.state.borrow_mut().phone.tick(now());
        self.flush();
        let Some(media) = self.state.borrow().media.clone() else {
            return;
        };
        let stats = self.view.stats;
        spawn_local(async move {
            stats.set(media.stats().await);
        });
    }

    /// Unregisters and lets go of the socket and the media.
    pub fn stop(&self) {
        {
            let mut l = self.state.borrow_mut();
            l.gone = true;
            l.phone.leave(now());
        }
        self.flush();
        let mut l = self.state.borrow_mut();
        if let Some(media) = l.media.take() {
            media.close();
        }
        if let Some(socket) = l.socket.take() {
            let _ = socket.close();
        }
        l.handlers.clear();
    }
}
