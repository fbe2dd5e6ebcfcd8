//! The web phone's audio: the microphone, one `RTCPeerConnection` per
//! call (edgepbx terminates it: ICE-lite, DTLS-SRTP, G.711), the remote
//! audio in the page's `<audio>`, keys as RFC 4733 events and the
//! receiving statistics.

use std::fmt;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamConstraints, MediaStreamTrack, RtcBundlePolicy, RtcConfiguration,
    RtcIceGatheringState, RtcPeerConnection, RtcRtpTransceiver, RtcRtpTransceiverDirection,
    RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

/// How long to wait for the browser's candidates before sending the
/// description anyway (edgepbx needs no trickle; its address is in its
/// own description).
const GATHERING_MS: u32 = 3_000;

/// A call's media.
#[derive(Clone)]
pub struct Media {
    pc: RtcPeerConnection,
    microphone: MediaStream,
    audio: NodeRef<leptos::html::Audio>,
    _on_track: Rc<Closure<dyn FnMut(RtcTrackEvent)>>,
}

/// What the phone receives.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// The connection's state (`connecting`, `connected`, `failed`...).
    pub connection: String,
    /// RTP packets received.
    pub packets: u64,
    /// Packets lost on the way.
    pub lost: i64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Audio level of what is heard, 0 to 1.
    pub level: f64,
    /// Energy of all that was heard (0: silence throughout).
    pub energy: f64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Media {}: {} packets received, {} lost, jitter {:.1} ms, level {:.3}",
            self.connection, self.packets, self.lost, self.jitter_ms, self.level
        )
    }
}

fn reason(error: JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "the browser refused".into())
}

async fn wait(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = JsFuture::from(promise).await;
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

impl Media {
    /// The microphone and a connection, remote audio to `audio`.
    async fn new(audio: NodeRef<leptos::html::Audio>) -> Result<Media, String> {
        let devices = window()
            .navigator()
            .media_devices()
            .map_err(|_| "this browser has no microphone access".to_owned())?;
        let constraints = MediaStreamConstraints::new();
        constraints.set_audio_bool(true);
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(reason)?;
        let microphone: MediaStream = JsFuture::from(promise)
            .await
            .map_err(|e| format!("no microphone: {}", reason(e)))?
            .unchecked_into();
        let config = RtcConfiguration::new();
        config.set_bundle_policy(RtcBundlePolicy::MaxBundle);
        let pc = RtcPeerConnection::new_with_configuration(&config).map_err(reason)?;
        let on_track = Closure::<dyn FnMut(RtcTrackEvent)>::new(move |ev: RtcTrackEvent| {
            let stream = ev
                .streams()
                .get(0)
                .dyn_into::<MediaStream>()
                .ok()
                .or_else(|| {
                    let stream = MediaStream::new().ok()?;
                    stream.add_track(&ev.track());
                    Some(stream)
                });
            if let Some(element) = audio.get_untracked() {
                element.set_src_object(stream.as_ref());
                let _ = element.play();
            }
        });
        pc.set_ontrack(Some(on_track.as_ref().unchecked_ref()));
        Ok(Media {
            pc,
            microphone,
            audio,
            _on_track: Rc::new(on_track),
        })
    }

    fn add_microphone(&self) {
        for track in self.microphone.get_audio_tracks().iter() {
            if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                self.pc.add_track_0(&track, &self.microphone);
            }
        }
    }

    /// Sets our description of `kind` (made by the browser) and returns
    /// it once the candidates are in.
    async fn set_local(&self, made: js_sys::Promise, kind: RtcSdpType) -> Result<String, String> {
        let made = JsFuture::from(made).await.map_err(reason)?;
        let sdp = js_sys::Reflect::get(&made, &"sdp".into())
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        JsFuture::from(self.pc.set_local_description(&description(kind, &sdp)))
            .await
            .map_err(reason)?;
        let mut waited = 0;
        while self.pc.ice_gathering_state() != RtcIceGatheringState::Complete
            && waited < GATHERING_MS
        {
            wait(50).await;
            waited += 50;
        }
        Ok(self.pc.local_description().map(|d| d.sdp()).unwrap_or(sdp))
    }

    /// Media for a call we place: the microphone and our offer.
    pub async fn open(audio: NodeRef<leptos::html::Audio>) -> Result<(Media, String), String> {
        let media = Media::new(audio).await?;
        media.add_microphone();
        match media
            .set_local(media.pc.create_offer(), RtcSdpType::Offer)
            .await
        {
            Ok(offer) => Ok((media, offer)),
            Err(why) => {
                media.close();
                Err(why)
            }
        }
    }

    /// Media answering a call's `offer`: the microphone and our answer.
    pub async fn answering(
        audio: NodeRef<leptos::html::Audio>,
        offer: &str,
    ) -> Result<(Media, String), String> {
        let media = Media::new(audio).await?;
        let remote = description(RtcSdpType::Offer, offer);
        let answered = async {
            JsFuture::from(media.pc.set_remote_description(&remote))
                .await
                .map_err(reason)?;
            media.add_microphone();
            media
                .set_local(media.pc.create_answer(), RtcSdpType::Answer)
                .await
        };
        match answered.await {
            Ok(answer) => Ok((media, answer)),
            Err(why) => {
                media.close();
                Err(format!("the call's media could not be set up: {why}"))
            }
        }
    }

    /// Applies the answer to our offer.
    pub async fn accept_answer(&self, sdp: &str) -> Result<(), String> {
        let answer = description(RtcSdpType::Answer, sdp);
        JsFuture::from(self.pc.set_remote_description(&answer))
            .await
            .map(drop)
            .map_err(reason)
    }

    /// Answers the other side's new offer (a re-INVITE).
    pub async fn answer(&self, offer: &str) -> Option<String> {
        let remote = description(RtcSdpType::Offer, offer);
        JsFuture::from(self.pc.set_remote_description(&remote))
            .await
            .ok()?;
        self.set_local(self.pc.create_answer(), RtcSdpType::Answer)
            .await
            .ok()
    }

    /// A new offer holding the call (send only) or resuming it.
    pub async fn reoffer(&self, hold: bool) -> Option<String> {
        let direction = if hold {
            RtcRtpTransceiverDirection::Sendonly
        } else {
            RtcRtpTransceiverDirection::Sendrecv
        };
        for transceiver in self.pc.get_transceivers().iter() {
            if let Ok(t) = transceiver.dyn_into::<RtcRtpTransceiver>() {
                t.set_direction(direction);
            }
        }
        self.set_local(self.pc.create_offer(), RtcSdpType::Offer)
            .await
            .ok()
    }

    /// Stops or restarts sending the microphone.
    pub fn mute(&self, on: bool) {
        for track in self.microphone.get_audio_tracks().iter() {
            if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                track.set_enabled(!on);
            }
        }
    }

    /// Sends `key` as an RFC 4733 event; false when the call negotiated
    /// none (the caller then sends SIP INFO).
    pub fn press(&self, key: char) -> bool {
        let Some(sender) = self
            .pc
            .get_senders()
            .get(0)
            .dyn_into::<web_sys::RtcRtpSender>()
            .ok()
        else {
            return false;
        };
        let Some(dtmf) = sender.dtmf() else {
            return false;
        };
        let can = js_sys::Reflect::get(&dtmf, &"canInsertDTMF".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if can {
            dtmf.insert_dtmf_with_duration(&key.to_string(), 120);
        }
        can
    }

    /// What is being received now.
    pub async fn stats(&self) -> Option<Stats> {
        let report = JsFuture::from(self.pc.get_stats()).await.ok()?;
        let report: js_sys::Map = report.unchecked_into();
        let connection = js_sys::Reflect::get(&self.pc, &"connectionState".into())
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default();
        let mut found = Stats {
            connection,
            packets: 0,
            lost: 0,
            jitter_ms: 0.0,
            level: 0.0,
            energy: 0.0,
        };
        report.for_each(&mut |value, _| {
            let get = |name: &str| js_sys::Reflect::get(&value, &name.into()).ok();
            let is = |name: &str, wanted: &str| {
                get(name).and_then(|v| v.as_string()).as_deref() == Some(wanted)
            };
            if is("type", "inbound-rtp") && is("kind", "audio") {
                let number = |name: &str| get(name).and_then(|v| v.as_f64()).unwrap_or(0.0);
                found.packets = number("packetsReceived") as u64;
                found.lost = number("packetsLost") as i64;
                found.jitter_ms = number("jitter") * 1000.0;
                found.level = number("audioLevel");
                found.energy = number("totalAudioEnergy");
            }
        });
        Some(found)
    }

    /// Ends the media: the connection closes, the microphone stops.
    pub fn close(&self) {
        self.pc.close();
        for track in self.microphone.get_tracks().iter() {
            if let Ok(track) = track.dyn_into::<MediaStreamTrack>() {
                track.stop();
            }
        }
        if let Some(element) = self.audio.get_untracked() {
            element.set_src_object(None);
        }
    }
}

/// The ring of an incoming call: 440 and 480 Hz together, two seconds on
/// and four off (the North American ring), for a minute at most.
pub struct Ringer {
    context: web_sys::AudioContext,
}

impl Ringer {
    /// Starts ringing; `None` when the browser has no audio output.
    pub fn start() -> Option<Ringer> {
        let context = web_sys::AudioContext::new().ok()?;
        let gain = context.create_gain().ok()?;
        gain.connect_with_audio_node(&context.destination()).ok()?;
        let level = gain.gain();
        level.set_value(0.0);
        let start = context.current_time();
        for cycle in 0..10 {
            let at = start + f64::from(cycle) * 6.0;
            level.set_value_at_time(0.15, at).ok()?;
            level.set_value_at_time(0.0, at + 2.0).ok()?;
        }
        for hz in [440.0, 480.0] {
            let tone = context.create_oscillator().ok()?;
            tone.frequency().set_value(hz);
            tone.connect_with_audio_node(&gain).ok()?;
            tone.start().ok()?;
        }
        Some(Ringer { context })
    }
}

impl Drop for Ringer {
    fn drop(&mut self) {
        let _ = self.context.close();
    }
}
