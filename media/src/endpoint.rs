//! edgepbx as the far end of a call's media: it plays audio to the party,
//! records what the party says and hears the keys it presses. Voicemail
//! (and later parking announcements and conference tones) runs on it.
//!
//! Sans-IO like the relay: the driver hands every packet that arrived on
//! the call's port to [`Endpoint::handle_packet`], sends what
//! [`Endpoint::poll_transmit`] yields, wakes it at
//! [`Endpoint::poll_timeout`] and drains [`Endpoint::poll_event`]. The
//! application above it (the voicemail menus) queues audio with
//! [`Endpoint::play`] and starts and stops recording.
//!
//! Sending: one 20 ms G.711 packet every 20 ms for the whole call, the
//! queued audio while there is some and silence otherwise, so the party's
//! jitter buffer and NAT binding stay steady. Packets go to the address
//! the party's description gave until its first RTP packet arrives, then
//! to that packet's source (symmetric RTP, as the relay does).
//!
//! Receiving: audio of the negotiated codec is decoded into the recording
//! (a lost packet becomes its 20 ms of silence, so the recording keeps the
//! real duration); telephone events become keys. Recording ends at its
//! maximum length or after a stretch of silence, and nothing heard from the
//! party for the media timeout is reported once.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dtmf::DtmfReceiver;
use crate::g711;
use crate::latch::{Heard, Latch};
use crate::rtp::{self, Kind, RtpPacket};
use crate::wav::{Pcm, RATE};

/// Samples in one 20 ms packet at 8 kHz.
pub const FRAME: usize = (RATE / 50) as usize;

/// One frame's time.
const PTIME: Duration = Duration::from_millis(20);

/// Past this many frames late (a stalled driver), sending starts afresh
/// from now instead of bursting to catch up.
const MAX_LAG_FRAMES: u32 = 10;

/// The longest gap in the party's stream filled with silence in a
/// recording; a longer one (a timestamp jump) is not a loss.
const MAX_FILLED_FRAMES: u32 = 50;

/// A 20 ms frame whose RMS level is below this is silence (about -40 dBFS).
pub const SILENCE_LEVEL: f64 = 330.0;

/// G.711's two laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// μ-law (PCMU), North America and Japan.
    Mu,
    /// A-law (PCMA), everywhere else.
    A,
}

/// The audio codec of the call, as the answer negotiated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// Its RTP payload type.
    pub payload_type: u8,
    /// Which G.711.
    pub law: Law,
}

impl Codec {
    /// Its encoding name in descriptions (`PCMU`, `PCMA`).
    pub fn name(self) -> &'static str {
        match self.law {
            Law::Mu => "PCMU",
            Law::A => "PCMA",
        }
    }

    fn encode(self, sample: i16) -> u8 {
        match self.law {
            Law::Mu => g711::ulaw_encode(sample),
            Law::A => g711::alaw_encode(sample),
        }
    }

    fn decode(self, byte: u8) -> i16 {
        match self.law {
            Law::Mu => g711::ulaw_decode(byte),
            Law::A => g711::alaw_decode(byte),
        }
    }
}

/// Why a recording ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingEnd {
    /// It reached its maximum length.
    MaxLength,
    /// The party said nothing for the silence limit.
    Silence,
}

/// What the endpoint reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The party pressed a key (RFC 4733).
    Key(char),
    /// Everything queued has been played.
    PlayDone,
    /// The recording ended by itself; take it with
    /// [`Endpoint::stop_recording`].
    RecordingEnded(RecordingEnd),
    /// Nothing has arrived from the party for the media timeout.
    Silent,
}

/// A recording in progress.
#[derive(Debug)]
struct Recording {
    samples: Vec<i16>,
    max_samples: usize,
    silence: Duration,
    /// Since when the party has been silent (since the start, until it
    /// says something).
    silent_since: Instant,
    /// Samples up to the end of the last frame with sound.
    sound_until: usize,
    /// Reported ended; keeps what it has until taken.
    ended: bool,
}

/// The far end of one party's media.
#[derive(Debug)]
pub struct Endpoint {
    codec: Codec,
    telephone_event: Option<u8>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    next_send: Instant,
    queue: VecDeque<(Arc<Pcm>, usize)>,
    /// A `PlayDone` is owed once the queue empties.
    playing: bool,
    recording: Option<Recording>,
    dtmf: DtmfReceiver,
    /// Where the party is.
    latch: Latch,
    /// The timestamp the party's next packet should have.
    expected_timestamp: Option<u32>,
    last_heard: Instant,
    media_timeout: Duration,
    silent_reported: bool,
    events: VecDeque<Event>,
    out: Vec<u8>,
}

impl Endpoint {
    /// An endpoint speaking `codec` (and telephone events on
    /// `telephone_event`), sending from `now` with `ssrc` and random
    /// starting `sequence` and `timestamp` (RFC 3550 §5.1), reporting
    /// [`Event::Silent`] after `media_timeout` without a packet.
    pub fn new(
        now: Instant,
        codec: Codec,
        telephone_event: Option<u8>,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        media_timeout: Duration,
    ) -> Endpoint {
        Endpoint {
            codec,
            telephone_event,
            ssrc,
            sequence,
            timestamp,
            next_send: now,
            queue: VecDeque::new(),
            playing: false,
            recording: None,
            dtmf: DtmfReceiver::new(),
            latch: Latch::default(),
            expected_timestamp: None,
            last_heard: now,
            media_timeout,
            silent_reported: false,
            events: VecDeque::new(),
            out: Vec::with_capacity(12 + FRAME),
        }
    }

    /// The party said (in its description, in a message from
    /// `signalling`) that it receives at `address`.
    pub fn handle_announcement(&mut self, address: SocketAddr, signalling: Option<IpAddr>) {
        self.latch.announce(address, signalling);
    }

    /// Queues `clips` to play after what is queued.
    pub fn play(&mut self, clips: impl IntoIterator<Item = Arc<Pcm>>) {
        self.queue.extend(
            clips
                .into_iter()
                .filter(|c| !c.0.is_empty())
                .map(|c| (c, 0)),
        );
        self.playing = true;
        if self.queue.is_empty() {
            self.playing = false;
            self.events.push_back(Event::PlayDone);
        }
    }

    /// Stops playing and forgets what was queued (a key pressed during a
    /// prompt); no [`Event::PlayDone`] follows.
    pub fn stop_playing(&mut self) {
        self.queue.clear();
        self.playing = false;
    }

    /// Whether audio is queued.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Starts recording what the party says, for at most `max`, ending by
    /// itself after `silence` without sound (a zero `silence`: never).
    pub fn record(&mut self, now: Instant, max: Duration, silence: Duration) {
        let max_samples = usize::try_from(max.as_millis().saturating_mul(u128::from(RATE)) / 1000)
            .unwrap_or(usize::MAX);
        self.recording = Some(Recording {
            samples: Vec::new(),
            max_samples,
            silence,
            silent_since: now,
            sound_until: 0,
            ended: false,
        });
    }

    /// Whether a recording is under way (or ended and not yet taken).
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Ends the recording and hands it over. A recording that ended in
    /// silence loses the silence, but for half a second of it.
    pub fn stop_recording(&mut self) -> Pcm {
        let Some(recording) = self.recording.take() else {
            return Pcm::default();
        };
        let mut samples = recording.samples;
        let keep = recording.sound_until + RATE as usize / 2;
        samples.truncate(keep);
        Pcm(samples)
    }

    /// A packet arrived on the call's port from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, packet: &[u8]) {
        if rtp::classify(packet) != Ok(Kind::Rtp) {
            return;
        }
        let Ok(rtp) = RtpPacket::parse(packet) else {
            return;
        };
        if self.latch.hear(from, packet) == Heard::Stranger {
            return;
        }
        self.last_heard = now;
        self.silent_reported = false;
        if Some(rtp.payload_type) == self.telephone_event {
            if let Some(key) = self.dtmf.handle(rtp.timestamp, rtp.payload) {
                self.events.push_back(Event::Key(key));
            }
            return;
        }
        if rtp.payload_type != self.codec.payload_type {
            return;
        }
        let gap = match self.expected_timestamp {
            Some(expected) => rtp.timestamp.wrapping_sub(expected),
            None => 0,
        };
        // Older than expected (reordered or duplicated): too late.
        if gap > u32::MAX / 2 {
            return;
        }
        self.expected_timestamp = Some(
            rtp.timestamp
                .wrapping_add(u32::try_from(rtp.payload.len()).unwrap_or(0)),
        );
        let codec = self.codec;
        let Some(recording) = self.recording.as_mut().filter(|r| !r.ended) else {
            return;
        };
        if gap <= MAX_FILLED_FRAMES * FRAME as u32 {
            let fill = usize::try_from(gap).unwrap_or(0);
            recording.samples.resize(recording.samples.len() + fill, 0);
        }
        let start = recording.samples.len();
        recording
            .samples
            .extend(rtp.payload.iter().map(|&b| codec.decode(b)));
        if rms(&recording.samples[start..]) >= SILENCE_LEVEL {
            recording.sound_until = recording.samples.len();
            recording.silent_since = now;
        }
        self.check_recording(now);
    }

    /// What to send now, if anything: a packet and where to.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, &[u8])> {
        if now < self.next_send {
            return None;
        }
        let to = self.latch.destination()?;
        let lag = now.saturating_duration_since(self.next_send);
        self.next_send = if lag > PTIME * MAX_LAG_FRAMES {
            now + PTIME
        } else {
            self.next_send + PTIME
        };
        let mut payload = [0u8; FRAME];
        let mut filled = 0;
        while filled < FRAME {
            let Some((clip, position)) = self.queue.front_mut() else {
                break;
            };
            let take = (FRAME - filled).min(clip.0.len().saturating_sub(*position));
            for (slot, &sample) in payload[filled..filled + take]
                .iter_mut()
                .zip(&clip.0[*position..*position + take])
            {
                *slot = self.codec.encode(sample);
            }
            filled += take;
            *position += take;
            if *position >= clip.0.len() {
                self.queue.pop_front();
            }
        }
        let silence = self.codec.encode(0);
        payload[filled..].fill(silence);
        if self.playing && self.queue.is_empty() {
            self.playing = false;
            self.events.push_back(Event::PlayDone);
        }
        let first = self.out.is_empty();
        rtp::write(
            &mut self.out,
            first,
            self.codec.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
            &payload,
        );
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME as u32);
        Some((to, &self.out))
    }

    /// When to be woken next.
    pub fn poll_timeout(&self) -> Instant {
        let mut at = self.next_send;
        if let Some(r) = self.recording.as_ref().filter(|r| !r.ended)
            && !r.silence.is_zero()
        {
            at = at.min(r.silent_since + r.silence);
        }
        if !self.silent_reported {
            at = at.min(self.last_heard + self.media_timeout);
        }
        at
    }

    /// Time passed: recording limits, the media timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_recording(now);
        if !self.silent_reported && now >= self.last_heard + self.media_timeout {
            self.silent_reported = true;
            self.events.push_back(Event::Silent);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn check_recording(&mut self, now: Instant) {
        let Some(recording) = self.recording.as_mut().filter(|r| !r.ended) else {
            return;
        };
        let end = if recording.samples.len() >= recording.max_samples {
            recording.samples.truncate(recording.max_samples);
            Some(RecordingEnd::MaxLength)
        } else if !recording.silence.is_zero() && now >= recording.silent_since + recording.silence
        {
            Some(RecordingEnd::Silence)
        } else {
            None
        };
        if let Some(end) = end {
            recording.ended = true;
            self.events.push_back(Event::RecordingEnded(end));
        }
    }
}

/// The RMS level of some samples.
fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// A sine tone: `hz` for `millis` at `amplitude`, faded in and out over
/// 5 ms so it does not click (the beep before a recording).
pub fn tone(hz: u32, millis: u32, amplitude: i16) -> Pcm {
    let count = (RATE * millis / 1000) as usize;
    let fade = (RATE / 200) as usize;
    let samples = (0..count)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            let envelope = (i.min(count - 1 - i).min(fade) as f64) / fade as f64;
            let value = (2.0 * std::f64::consts::PI * f64::from(hz) * t).sin()
                * f64::from(amplitude)
                * envelope;
            value as i16
        })
        .collect();
    Pcm(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU: Codec = Codec {
        payload_type: 0,
        law: Law::Mu,
    };

    fn party() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40_000))
    }

    fn endpoint(now: Instant) -> Endpoint {
        let mut e = Endpoint::new(now, PCMU, Some(101), 7, 0, 0, Duration::from_secs(30));
        e.handle_announcement(party(), None);
        e
    }

    fn voice_packet(sequence: u16, timestamp: u32, loud: bool) -> Vec<u8> {
        let samples = tone(400, 20, if loud { 8_000 } else { 0 });
        let payload: Vec<u8> = samples.0.iter().map(|&s| g711::ulaw_encode(s)).collect();
        let mut p = Vec::new();
        rtp::write(&mut p, false, 0, sequence, timestamp, 99, &payload);
        p
    }

    #[test]
    fn plays_queued_audio_then_silence_every_20_ms() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        e.play([Arc::new(tone(1_000, 50, 10_000))]);
        let mut sent = Vec::new();
        for i in 0..5u32 {
            let now = t0 + PTIME * i;
            let (to, bytes) = e.poll_transmit(now).expect("a packet every 20 ms");
            assert_eq!(to, party());
            sent.push(RtpPacket::parse(bytes).expect("rtp").payload.to_vec());
            assert!(e.poll_transmit(now).is_none(), "one per frame");
        }
        // 50 ms of tone: two full frames and half of the third.
        let silence = g711::ulaw_encode(0);
        assert!(sent[1].iter().any(|&b| b != silence));
        assert!(sent[2][..60].iter().any(|&b| b != silence));
        assert!(sent[2][80..].iter().all(|&b| b == silence));
        assert!(sent[3].iter().all(|&b| b == silence));
        assert_eq!(e.poll_event(), Some(Event::PlayDone));
        assert_eq!(e.poll_event(), None);
    }

    #[test]
    fn records_with_losses_filled_and_ends_after_silence() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        e.record(t0, Duration::from_secs(60), Duration::from_secs(2));
        let mut now = t0;
        // 1 s of voice with packet 10 lost, then silence.
        for i in 0..200u16 {
            now = t0 + PTIME * u32::from(i);
            if i == 10 {
                continue;
            }
            e.handle_packet(now, party(), &voice_packet(i, u32::from(i) * 160, i < 50));
            e.handle_timeout(now);
            if e.poll_event().is_some() {
                break;
            }
        }
        // 2 s of silence after the last loud frame (packet 49, at 0.98 s).
        let ended_at = now.duration_since(t0);
        assert!(ended_at >= Duration::from_millis(2_980), "{ended_at:?}");
        assert!(ended_at <= Duration::from_millis(3_040), "{ended_at:?}");
        let recorded = e.stop_recording();
        // One second of voice plus the half second of silence kept.
        assert_eq!(recorded.0.len(), 50 * FRAME + 4_000);
        assert!(!e.is_recording());
    }

    #[test]
    fn recording_stops_at_its_maximum() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        e.record(t0, Duration::from_millis(100), Duration::ZERO);
        for i in 0..20u16 {
            e.handle_packet(t0, party(), &voice_packet(i, u32::from(i) * 160, true));
        }
        assert_eq!(
            e.poll_event(),
            Some(Event::RecordingEnded(RecordingEnd::MaxLength))
        );
        assert_eq!(e.poll_event(), None, "reported once");
        assert_eq!(e.stop_recording().0.len(), 800);
    }

    #[test]
    fn keys_once_per_press_and_only_from_the_latched_party() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        let key = |seq: u16, ts: u32, code: u8, end: bool| {
            let mut p = Vec::new();
            let flags = if end { 0x80 } else { 0 };
            rtp::write(&mut p, false, 101, seq, ts, 99, &[code, flags, 0, 160]);
            p
        };
        e.handle_packet(t0, party(), &key(1, 800, 1, false));
        e.handle_packet(t0, party(), &key(2, 800, 1, true));
        e.handle_packet(t0, party(), &key(3, 800, 1, true));
        // A stranger spraying packets at the port is not heard.
        let stranger = SocketAddr::from(([127, 0, 0, 9], 5_000));
        e.handle_packet(t0, stranger, &key(1, 4_000, 2, false));
        e.handle_packet(t0, party(), &key(4, 2_400, 11, false));
        let keys: Vec<Event> = std::iter::from_fn(|| e.poll_event()).collect();
        assert_eq!(keys, [Event::Key('1'), Event::Key('#')]);
        // Replies go to the latched source.
        assert_eq!(e.poll_transmit(t0).map(|(to, _)| to), Some(party()));
    }

    #[test]
    fn silence_from_the_party_is_reported_once() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        let deadline = e.poll_timeout();
        assert_eq!(deadline, t0, "first packet due now");
        e.handle_timeout(t0 + Duration::from_secs(30));
        e.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(e.poll_event(), Some(Event::Silent));
        assert_eq!(e.poll_event(), None);
    }

    #[test]
    fn a_stalled_driver_does_not_burst() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        assert!(e.poll_transmit(t0).is_some());
        let late = t0 + Duration::from_secs(1);
        assert!(e.poll_transmit(late).is_some());
        assert!(e.poll_transmit(late).is_none(), "starts afresh from now");
    }

    #[test]
    fn garbage_is_ignored() {
        let t0 = Instant::now();
        let mut e = endpoint(t0);
        e.record(t0, Duration::from_secs(1), Duration::ZERO);
        for len in 0..40 {
            e.handle_packet(t0, party(), &[0x80; 40][..len]);
        }
        e.handle_packet(t0, party(), b"\x80\x00garbage-that-is-rtp-shaped");
        assert!(e.poll_event().is_none());
    }
}
