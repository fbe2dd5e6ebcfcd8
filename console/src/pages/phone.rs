//! The web phone page: the logged-in user's extension (an extension user)
//! or one they pick (an administrator) registers over the SIP WebSocket,
//! dials, answers, holds, mutes and sends keys, with the audio in an
//! `RTCPeerConnection`. The credentials come from the API for this page
//! and stay in its memory; leaving the page unregisters.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::model::{ExtensionPage, WebPhone};
use crate::pages::phone_media::{Media, Stats};
use crate::phone::ua::{Account, Event, Phone};
use crate::state::AppState;

/// Where the call is, as the page shows it.
#[derive(Clone, Debug, PartialEq)]
enum CallState {
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
struct View {
    registration: RwSignal<String>,
    registered: RwSignal<bool>,
    call: RwSignal<CallState>,
    held: RwSignal<bool>,
    muted: RwSignal<bool>,
    now: RwSignal<f64>,
    stats: RwSignal<Option<Stats>>,
}

/// The phone and its media, shared by the socket's and the page's
/// handlers.
struct Line {
    phone: Phone,
    media: Option<Media>,
    socket: Option<web_sys::WebSocket>,
    /// The offer of a call ringing here.
    offer: Option<String>,
    /// Leaving the page: no reconnection.
    gone: bool,
    /// The socket's handlers, alive as long as it is.
    handlers: Vec<Box<dyn std::any::Any>>,
}

type Shared = Rc<RefCell<Line>>;

fn now() -> f64 {
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

/// The page.
#[component]
pub fn PhonePage() -> impl IntoView {
    let state = AppState::get();
    let own = state.own_extension();
    let choices = RwSignal::new(Vec::<(String, String)>::new());
    let chosen = RwSignal::new(own.clone());
    if own.is_none() {
        spawn_local(async move {
            match api::get::<ExtensionPage>("/extensions?per_page=1000&sort=number").await {
                Ok(page) => {
                    let list: Vec<(String, String)> =
                        page.items.into_iter().map(|e| (e.number, e.name)).collect();
                    if chosen.get_untracked().is_none() {
                        chosen.set(list.first().map(|(n, _)| n.clone()));
                    }
                    choices.set(list);
                }
                Err(e) => state.fail(&e),
            }
        });
    }
    let picker = move || {
        own.is_none().then(|| {
            view! {
                <label>
                    "Extension "
                    <select
                        data-testid="phone-extension"
                        on:change=move |ev| chosen.set(crate::ui::opt(&event_target_value(&ev)))
                    >
                        <For
                            each=move || choices.get()
                            key=|(n, _)| n.clone()
                            children=move |(number, name)| {
                                let selected = {
                                    let number = number.clone();
                                    move || chosen.with(|c| c.as_deref() == Some(number.as_str()))
                                };
                                view! {
                                    <option value=number.clone() prop:selected=selected>
                                        {format!("{number} · {name}")}
                                    </option>
                                }
                            }
                        />
                    </select>
                </label>
            }
        })
    };
    view! {
        <section class="page">
            <div class="toolbar">
                <h1>"Phone"</h1>
                {picker}
            </div>
            {move || chosen.get().map(|number| view! { <Handset number/> })}
        </section>
    }
}

/// One extension's phone: registered while shown.
#[component]
fn Handset(number: String) -> impl IntoView {
    let state = AppState::get();
    let view = View {
        registration: RwSignal::new("Connecting…".into()),
        registered: RwSignal::new(false),
        call: RwSignal::new(CallState::Idle(None)),
        held: RwSignal::new(false),
        muted: RwSignal::new(false),
        now: RwSignal::new(now()),
        stats: RwSignal::new(None),
    };
    let line: Rc<RefCell<Option<Shared>>> = Rc::default();
    let remote_audio = NodeRef::<leptos::html::Audio>::new();
    {
        let line = line.clone();
        let number = number.clone();
        spawn_local(async move {
            let path = format!("/extensions/{}/webphone", api::encode(&number));
            match api::get::<WebPhone>(&path).await {
                Ok(credentials) => {
                    let shared = start(credentials, view, remote_audio);
                    *line.borrow_mut() = Some(shared);
                }
                Err(e) => {
                    view.registration.set(format!("Not registered: {e}"));
                    state.fail(&e);
                }
            }
        });
    }
    // Every second: timers of the user agent, the call's clock and stats.
    let ticker = {
        let line = line.clone();
        set_interval_with_handle(
            move || {
                view.now.set(now());
                if let Some(shared) = line.borrow().clone() {
                    shared.borrow_mut().phone.tick(now());
                    flush(&shared, view, remote_audio);
                    refresh_stats(&shared, view);
                }
            },
            std::time::Duration::from_secs(1),
        )
        .ok()
    };
    {
        // Kept in the reactive arena: on_cleanup wants a Send closure, and
        // these never leave the browser's one thread.
        let line = StoredValue::new_local(line.clone());
        let ticker = StoredValue::new_local(ticker);
        on_cleanup(move || {
            let (Some(line), Some(ticker)) = (line.try_get_value(), ticker.try_get_value()) else {
                return;
            };
            if let Some(t) = ticker {
                t.clear();
            }
            if let Some(shared) = line.borrow_mut().take() {
                let mut l = shared.borrow_mut();
                l.gone = true;
                l.phone.leave(now());
                drop(l);
                flush(&shared, view, remote_audio);
                let mut l = shared.borrow_mut();
                if let Some(media) = l.media.take() {
                    media.close();
                }
                if let Some(socket) = l.socket.take() {
                    let _ = socket.close();
                }
                l.handlers.clear();
            }
        });
    }
    let target = RwSignal::new(String::new());
    let with_line = {
        let line = line.clone();
        move |act: &dyn Fn(&Shared)| {
            if let Some(shared) = line.borrow().clone() {
                act(&shared);
            }
        }
    };
    let dial = {
        let with_line = with_line.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let to = target.get_untracked().trim().to_owned();
            if to.is_empty() || !view.registered.get_untracked() {
                return;
            }
            with_line(&|shared| place_call(shared.clone(), to.clone(), view, remote_audio));
        }
    };
    let answer = {
        let with_line = with_line.clone();
        move |_| with_line(&|shared| answer_call(shared.clone(), view, remote_audio))
    };
    let hang_up = {
        let with_line = with_line.clone();
        move |_| {
            with_line(&|shared| {
                shared.borrow_mut().phone.hang_up(now());
                flush(shared, view, remote_audio);
            })
        }
    };
    let hold = {
        let with_line = with_line.clone();
        move |_| {
            let on = !view.held.get_untracked();
            with_line(&|shared| hold_call(shared.clone(), on, view));
        }
    };
    let mute = {
        let with_line = with_line.clone();
        move |_| {
            let on = !view.muted.get_untracked();
            with_line(&|shared| {
                if let Some(media) = &shared.borrow().media {
                    media.mute(on);
                }
            });
            view.muted.set(on);
        }
    };
    let keys = "123456789*0#".chars().map(|key| {
        let with_line = with_line.clone();
        let press = move |_| {
            with_line(&|shared| {
                let sent = shared.borrow().media.as_ref().is_some_and(|m| m.press(key));
                if !sent {
                    shared.borrow_mut().phone.press(key);
                    flush(shared, view, remote_audio);
                }
            })
        };
        view! {
            <button type="button" class="key" data-testid=format!("phone-key-{key}") on:click=press>
                {key.to_string()}
            </button>
        }
    });
    let keys = keys.collect_view();
    let in_call = move || !matches!(view.call.get(), CallState::Idle(_));
    let up = move || matches!(view.call.get(), CallState::Up { .. });
    let ringing_here = move || matches!(view.call.get(), CallState::Incoming(_));
    view! {
        <div class="card phone" data-testid="phone">
            <p data-testid="phone-registration" data-registered=move || view.registered.get().to_string()>
                {move || view.registration.get()}
            </p>
            <form class="inline-form" on:submit=dial>
                <input
                    data-testid="phone-target"
                    placeholder="Number"
                    bind:value=target
                    disabled=in_call
                />
                <button
                    type="submit"
                    class="primary"
                    data-testid="phone-call"
                    disabled=move || in_call() || !view.registered.get()
                >
                    "Call"
                </button>
            </form>
            <p class="call-state" data-testid="phone-state" data-state=move || state_name(&view.call.get())>
                {move || describe(&view.call.get(), view.now.get(), view.held.get())}
            </p>
            <div class="row">
                <button type="button" class="primary" data-testid="phone-answer" on:click=answer
                    style:display=move || if ringing_here() { "" } else { "none" }>
                    "Answer"
                </button>
                <button type="button" class="danger" data-testid="phone-hangup" on:click=hang_up disabled=move || !in_call()>
                    {move || if ringing_here() { "Decline" } else { "Hang up" }}
                </button>
                <button type="button" data-testid="phone-hold" on:click=hold disabled=move || !up()>
                    {move || if view.held.get() { "Resume" } else { "Hold" }}
                </button>
                <button type="button" data-testid="phone-mute" on:click=mute disabled=move || !up()>
                    {move || if view.muted.get() { "Unmute" } else { "Mute" }}
                </button>
            </div>
            <div class="keypad">{keys}</div>
            <p class="hint" data-testid="phone-stats"
                data-packets=move || view.stats.with(|s| s.as_ref().map(|s| s.packets)).unwrap_or(0)
                data-energy=move || view.stats.with(|s| s.as_ref().map(|s| s.energy)).unwrap_or(0.0)>
                {move || view.stats.with(|s| s.as_ref().map(ToString::to_string))}
            </p>
            <audio node_ref=remote_audio autoplay></audio>
        </div>
    }
}

/// Opens the socket and starts the user agent.
fn start(credentials: WebPhone, view: View, audio: NodeRef<leptos::html::Audio>) -> Shared {
    let location = window().location();
    let secure = location.protocol().is_ok_and(|p| p == "https:");
    let account = Account {
        extension: credentials.extension.clone(),
        domain: credentials.domain.clone(),
        username: credentials.username,
        password: credentials.password,
        secure,
    };
    let shared = Rc::new(RefCell::new(Line {
        phone: Phone::new(account, seed()),
        media: None,
        socket: None,
        offer: None,
        gone: false,
        handlers: Vec::new(),
    }));
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
    connect(&shared, url, view, audio);
    shared
}

/// Opens the WebSocket and wires it to the user agent; reconnects after a
/// loss, five seconds later.
fn connect(shared: &Shared, url: String, view: View, audio: NodeRef<leptos::html::Audio>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Ok(socket) = web_sys::WebSocket::new_with_str(&url, "sip") else {
        view.registration
            .set("Not registered: this browser cannot open the connection".into());
        return;
    };
    let on_open = {
        let shared = shared.clone();
        Closure::<dyn FnMut()>::new(move || {
            shared.borrow_mut().phone.connected(now());
            flush(&shared, view, audio);
        })
    };
    let on_message = {
        let shared = shared.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
            if let Some(text) = ev.data().as_string() {
                shared.borrow_mut().phone.receive(&text, now());
                flush(&shared, view, audio);
            }
        })
    };
    let on_close = {
        let shared = shared.clone();
        let url = url.clone();
        Closure::<dyn FnMut()>::new(move || {
            let gone = {
                let mut l = shared.borrow_mut();
                l.phone.closed();
                l.socket = None;
                l.gone
            };
            flush(&shared, view, audio);
            view.registered.set(false);
            if gone {
                return;
            }
            view.registration
                .set("Connection lost; connecting again…".into());
            let (shared, url) = (shared.clone(), url.clone());
            set_timeout(
                move || {
                    if !shared.borrow().gone {
                        connect(&shared, url, view, audio);
                    }
                },
                std::time::Duration::from_secs(5),
            );
        })
    };
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let mut l = shared.borrow_mut();
    l.socket = Some(socket);
    l.handlers = vec![Box::new(on_open), Box::new(on_message), Box::new(on_close)];
}

/// Sends what the user agent has to send and acts on what happened.
fn flush(shared: &Shared, view: View, audio: NodeRef<leptos::html::Audio>) {
    loop {
        let (out, event) = {
            let mut l = shared.borrow_mut();
            (l.phone.poll_transmit(), l.phone.poll_event())
        };
        if out.is_none() && event.is_none() {
            return;
        }
        if let Some(text) = out
            && let Some(socket) = &shared.borrow().socket
        {
            let _ = socket.send_with_str(&text);
        }
        if let Some(event) = event {
            handle(shared, event, view, audio);
        }
    }
}

fn handle(shared: &Shared, event: Event, view: View, audio: NodeRef<leptos::html::Audio>) {
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
            shared.borrow_mut().offer = Some(offer);
            view.call.set(CallState::Incoming(caller));
        }
        Event::Ringing => view.call.update(|c| {
            if let CallState::Calling(peer) = c {
                *c = CallState::Ringing(peer.clone());
            }
        }),
        Event::RemoteAnswer(sdp) => {
            let media = shared.borrow().media.clone();
            let shared = shared.clone();
            if let Some(media) = media {
                spawn_local(async move {
                    if let Err(why) = media.accept_answer(&sdp).await {
                        shared.borrow_mut().phone.hang_up(now());
                        flush(&shared, view, audio);
                        view.call.set(CallState::Idle(Some(format!(
                            "the other side's media could not be used ({why})"
                        ))));
                    }
                });
            }
        }
        Event::Connected => view.call.update(|c| {
            let peer = match c {
                CallState::Calling(p) | CallState::Ringing(p) | CallState::Incoming(p) => p.clone(),
                CallState::Up { peer, .. } => peer.clone(),
                CallState::Idle(_) => String::new(),
            };
            *c = CallState::Up { peer, since: now() };
        }),
        Event::Reoffer(sdp) => {
            let media = shared.borrow().media.clone();
            let shared = shared.clone();
            if let Some(media) = media {
                spawn_local(async move {
                    if let Some(answer) = media.answer(&sdp).await {
                        shared.borrow_mut().phone.answer_reoffer(answer);
                        flush(&shared, view, audio);
                    }
                });
            }
        }
        Event::ReofferRefused => view.held.update(|h| *h = !*h),
        Event::Ended(why) => {
            if let Some(media) = shared.borrow_mut().media.take() {
                media.close();
            }
            shared.borrow_mut().offer = None;
            view.held.set(false);
            view.muted.set(false);
            view.stats.set(None);
            view.call.set(CallState::Idle(Some(why)));
        }
    }
}

fn place_call(shared: Shared, to: String, view: View, audio: NodeRef<leptos::html::Audio>) {
    view.call.set(CallState::Calling(to.clone()));
    spawn_local(async move {
        match Media::open(audio).await {
            Ok((media, offer)) => {
                shared.borrow_mut().media = Some(media);
                shared.borrow_mut().phone.dial(&to, offer, now());
                flush(&shared, view, audio);
            }
            Err(why) => view.call.set(CallState::Idle(Some(why))),
        }
    });
}

fn answer_call(shared: Shared, view: View, audio: NodeRef<leptos::html::Audio>) {
    let Some(offer) = shared.borrow_mut().offer.take() else {
        return;
    };
    spawn_local(async move {
        match Media::answering(audio, &offer).await {
            Ok((media, answer)) => {
                let still_ringing = shared.borrow().phone.in_call();
                if !still_ringing {
                    media.close();
                    return;
                }
                shared.borrow_mut().media = Some(media);
                shared.borrow_mut().phone.answer(answer);
                flush(&shared, view, audio);
            }
            Err(why) => {
                shared.borrow_mut().phone.hang_up(now());
                flush(&shared, view, audio);
                view.call.set(CallState::Idle(Some(why)));
            }
        }
    });
}

fn hold_call(shared: Shared, on: bool, view: View) {
    let Some(media) = shared.borrow().media.clone() else {
        return;
    };
    view.held.set(on);
    spawn_local(async move {
        if let Some(offer) = media.reoffer(on).await {
            shared.borrow_mut().phone.reoffer(offer);
            // The answer comes back as a remote answer, like the first.
            let audio = media.audio();
            flush(&shared, view, audio);
        }
    });
}

fn refresh_stats(shared: &Shared, view: View) {
    let Some(media) = shared.borrow().media.clone() else {
        return;
    };
    spawn_local(async move {
        view.stats.set(media.stats().await);
    });
}

fn state_name(call: &CallState) -> &'static str {
    match call {
        CallState::Idle(_) => "idle",
        CallState::Calling(_) => "calling",
        CallState::Ringing(_) => "ringing",
        CallState::Incoming(_) => "incoming",
        CallState::Up { .. } => "up",
    }
}

fn describe(call: &CallState, now: f64, held: bool) -> String {
    match call {
        CallState::Idle(None) => "No call.".into(),
        CallState::Idle(Some(why)) => format!("Call ended: {why}."),
        CallState::Calling(peer) => format!("Calling {peer}…"),
        CallState::Ringing(peer) => format!("{peer} is ringing…"),
        CallState::Incoming(caller) => format!("{caller} is calling"),
        CallState::Up { peer, since } => {
            let secs = ((now - since) / 1000.0).max(0.0) as u64;
            format!(
                "{}{peer} · {}:{:02}",
                if held { "On hold: " } else { "In call with " },
                secs / 60,
                secs % 60
            )
        }
    }
}
