//! A WebRTC leg: edgepbx's end of a browser's peer connection, terminated
//! with str0m (ICE-lite, DTLS-SRTP, rtcp-mux, BUNDLE) and carrying plain
//! RTP payloads to and from the other leg of the call.
//!
//! Sans-IO like the relay: the driver hands every datagram that arrived on
//! the leg's port to [`WebRtcLeg::handle_datagram`], plain RTP of the other
//! party to [`WebRtcLeg::send_rtp`], the time to
//! [`WebRtcLeg::handle_timeout`], and sends what
//! [`WebRtcLeg::poll_datagram`] returns from the leg's port; RTP from the
//! browser comes out of [`WebRtcLeg::poll_rtp`] as a plain packet.
//!
//! The leg carries G.711 (PCMU, PCMA) and telephone events only, with the
//! payload type numbers of the other party, so payloads cross without
//! transcoding and without renumbering. Towards the browser, sequence
//! numbers and timestamps are rewritten into one continuous stream: the
//! other party may change its source (a re-INVITE, a new device after a
//! transfer) and a browser would take the jump for loss.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::config::DtlsCert;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Direction, Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::rtp::{self, Kind};
use crate::sdp::{Connection, Direction as Flow, Line, SessionDescription};

/// The DTLS certificate every leg of a server presents (its fingerprint
/// goes into each description). Generated once: a certificate per call
/// would cost key generation on the signalling path for no gain, since
/// the fingerprint binds the certificate to the signalling, not to a call.
#[derive(Clone)]
pub struct Identity {
    cert: DtlsCert,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identity(DTLS certificate)")
    }
}

impl Identity {
    /// A new self-signed certificate (P-256).
    pub fn generate() -> Result<Identity, WebRtcError> {
        let provider = str0m::crypto::from_feature_flags();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(WebRtcError::Certificate)?;
        Ok(Identity { cert })
    }
}

/// A G.711 codec a leg may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711 {
    /// μ-law.
    Pcmu,
    /// A-law.
    Pcma,
}

/// What a leg carries: the G.711 codecs (static payload types 0 and 8),
/// and telephone events with the number the other party uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formats {
    /// The codecs, in order of preference.
    pub codecs: Vec<G711>,
    /// The payload type of telephone events (RFC 4733), when carried.
    pub telephone_event: Option<u8>,
}

/// Why a WebRTC leg cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebRtcError {
    /// No DTLS certificate could be made.
    #[error("no DTLS certificate could be generated")]
    Certificate,
    /// The browser's description is not one str0m can use.
    #[error("the WebRTC description is not usable: {0}")]
    Description(String),
    /// The leg's address cannot be a candidate.
    #[error("the media address cannot be an ICE candidate: {0}")]
    Candidate(String),
    /// The description has no audio stream in common.
    #[error("the WebRTC description has no G.711 audio in common")]
    NoAudio,
}

/// A datagram to send from the leg's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Where to.
    pub to: SocketAddr,
    /// The bytes (STUN, DTLS or SRTP).
    pub bytes: Vec<u8>,
}

/// The browser's side of a call.
pub struct WebRtcLeg {
    rtc: Rtc,
    local: SocketAddr,
    mid: Option<Mid>,
    pending: Option<SdpPendingOffer>,
    datagrams: VecDeque<Datagram>,
    received: VecDeque<Vec<u8>>,
    timeout: Instant,
    connected: bool,
    lost_since: Option<Instant>,
    rewrite: Rewriter,
}

impl std::fmt::Debug for WebRtcLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcLeg")
            .field("local", &self.local)
            .field("mid", &self.mid)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

/// Attributes of a WebRTC description that mean nothing in a plain RTP
/// one (the transport, the bundle, the browser's streams).
const WEBRTC_ATTRIBUTES: &[&str] = &[
    "fingerprint",
    "setup",
    "mid",
    "group",
    "msid",
    "msid-semantic",
    "extmap",
    "extmap-allow-mixed",
    "rtcp-fb",
    "rtcp-rsize",
    "ssrc",
    "ssrc-group",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "candidate",
    "end-of-candidates",
    "rtcp-mux",
    "rtcp",
];

/// The plain RTP description (RTP/AVP) of a browser's, for the other
/// party: the WebRTC attributes go, and the address is `0.0.0.0`, since a
/// browser is reached through its leg only, never at its candidates.
pub fn plain(description: &SessionDescription) -> SessionDescription {
    let keep = |line: &Line| {
        line.kind != 'a' || {
            let name = line.value.split(':').next().unwrap_or("");
            !WEBRTC_ATTRIBUTES
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
        }
    };
    let none = Connection {
        addr_type: "IP4".into(),
        address: "0.0.0.0".into(),
    };
    let mut plain = description.clone();
    plain.lines.retain(keep);
    plain.connection = Some(none.clone());
    for media in &mut plain.media {
        media.lines.retain(keep);
        if media.proto.to_ascii_uppercase().contains("RTP/") {
            media.proto = "RTP/AVP".into();
        }
        media.connection = Some(none.clone());
    }
    plain
}

/// A browser's leg described again (a re-INVITE's offer or answer):
/// edgepbx's last description to it, with the other party's `direction`,
/// the DTLS role an offer (`actpass`) or an answer (`passive`, the browser
/// being the DTLS client) states, and the next version.
pub fn redescribe(ours: &str, direction: Flow, offer: bool) -> Option<String> {
    let mut description = SessionDescription::parse(ours.as_bytes()).ok()?;
    description.origin.session_version += 1;
    let setup = if offer {
        "setup:actpass"
    } else {
        "setup:passive"
    };
    for media in &mut description.media {
        if media.kind != "audio" || media.port == 0 {
            continue;
        }
        media.set_direction(direction);
        for line in &mut media.lines {
            if line.kind == 'a' && line.value.starts_with("setup:") {
                line.value = setup.to_owned();
            }
        }
    }
    String::from_utf8(description.to_bytes()).ok()
}

/// What a plain description carries that a WebRTC leg can: its G.711
/// codecs in its order, and its telephone events.
pub fn formats_of(description: &SessionDescription) -> Formats {
    let mut formats = Formats {
        codecs: Vec::new(),
        telephone_event: None,
    };
    let Some(audio) = description
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
    else {
        return formats;
    };
    for format in &audio.formats {
        let Some(map) = format.parse().ok().and_then(|pt| audio.rtpmap(pt)) else {
            continue;
        };
        if map.clock_rate != 8000 {
            continue;
        }
        match map.encoding.to_ascii_uppercase().as_str() {
            "PCMU" if !formats.codecs.contains(&G711::Pcmu) => formats.codecs.push(G711::Pcmu),
            "PCMA" if !formats.codecs.contains(&G711::Pcma) => formats.codecs.push(G711::Pcma),
            "TELEPHONE-EVENT" => {
                formats.telephone_event.get_or_insert(map.payload_type);
            }
            _ => {}
        }
    }
    formats
}

/// Whether a description describes a WebRTC endpoint (DTLS-SRTP), which
/// needs a [`WebRtcLeg`] rather than the plain relay.
pub fn is_webrtc(description: &SessionDescription) -> bool {
    description.media.iter().any(|m| {
        m.kind == "audio" && m.port != 0 && m.proto.to_ascii_uppercase().contains("TLS/RTP")
    })
}

impl WebRtcLeg {
    fn config(identity: &Identity, formats: &Formats) -> RtcConfig {
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_dtls_cert(identity.cert.clone())
            .clear_codecs()
            // Only the stream's identification: the bandwidth estimation
            // extensions (transport-wide sequence numbers, absolute send
            // time) make each side work on every packet and send feedback,
            // for a constant 64 kbit/s stream that no estimate changes.
            .clear_extension_map()
            .set_extension(4, Extension::RtpMid)
            .set_stats_interval(None);
        // G.711 has its static payload types (RFC 3551) everywhere.
        for codec in &formats.codecs {
            config = match codec {
                G711::Pcmu => config.enable_pcmu(true, false),
                G711::Pcma => config.enable_pcma(true, false),
            };
        }
        if let Some(pt) = formats.telephone_event {
            config.codec_config().add_config(
                Pt::from(pt),
                None,
                Codec::Tele,
                Frequency::EIGHT_KHZ,
                None,
                FormatParams::default(),
            );
        }
        config
    }

    fn new(
        now: Instant,
        identity: &Identity,
        local: SocketAddr,
        formats: &Formats,
    ) -> Result<WebRtcLeg, WebRtcError> {
        let mut rtc = WebRtcLeg::config(identity, formats).build(now);
        let candidate =
            Candidate::host(local, "udp").map_err(|e| WebRtcError::Candidate(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        Ok(WebRtcLeg {
            rtc,
            local,
            mid: None,
            pending: None,
            datagrams: VecDeque::new(),
            received: VecDeque::new(),
            timeout: now,
            connected: false,
            lost_since: None,
            rewrite: Rewriter::default(),
        })
    }

    /// Answers a browser's `offer` on `local` (edgepbx's address and port
    /// as the browser reaches them), carrying `formats`; returns the leg
    /// and the answer to send.
    pub fn answer(
        now: Instant,
        identity: &Identity,
        local: SocketAddr,
        offer: &str,
        formats: &Formats,
    ) -> Result<(WebRtcLeg, String), WebRtcError> {
        let mut leg = WebRtcLeg::new(now, identity, local, formats)?;
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| WebRtcError::Description(e.to_string()))?;
        let answer = leg
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| WebRtcError::Description(e.to_string()))?;
        leg.drain(now);
        let sdp = answer.to_sdp_string();
        // The stream is announced by an event only once DTLS is up; the
        // answer names it (one audio stream, the rest refused).
        let audio = sdp
            .split("m=audio ")
            .nth(1)
            .filter(|section| {
                !section.starts_with("0 ")
                    && (section.contains(" PCMU/8000") || section.contains(" PCMA/8000"))
            })
            .ok_or(WebRtcError::NoAudio)?;
        let mid = audio
            .lines()
            .find_map(|line| line.strip_prefix("a=mid:"))
            .ok_or(WebRtcError::NoAudio)?;
        leg.mid = Some(Mid::from(mid.trim()));
        Ok((leg, sdp))
    }

    /// An offer to a browser on `local`, carrying `formats`; the leg waits
    /// for [`WebRtcLeg::accept_answer`].
    pub fn offer(
        now: Instant,
        identity: &Identity,
        local: SocketAddr,
        formats: &Formats,
    ) -> Result<(WebRtcLeg, String), WebRtcError> {
        let mut leg = WebRtcLeg::new(now, identity, local, formats)?;
        let mut api = leg.rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().ok_or(WebRtcError::NoAudio)?;
        leg.mid = Some(mid);
        leg.pending = Some(pending);
        leg.drain(now);
        Ok((leg, offer.to_sdp_string()))
    }

    /// The browser's answer to [`WebRtcLeg::offer`].
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<(), WebRtcError> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| WebRtcError::Description("no offer is pending".into()))?;
        let answer = SdpAnswer::from_sdp_string(answer)
            .map_err(|e| WebRtcError::Description(e.to_string()))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| WebRtcError::Description(e.to_string()))?;
        self.drain(now);
        Ok(())
    }

    /// A datagram arrived on the leg's port from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(receive) = Receive::new(Protocol::Udp, from, self.local, bytes) else {
            return; // not STUN, DTLS or (S)RTP
        };
        let input = Input::Receive(now, receive);
        if !self.rtc.accepts(&input) {
            return; // a stranger
        }
        if self.rtc.handle_input(input).is_ok() {
            self.drain(now);
        }
    }

    /// Sends a plain RTP `packet` of the other party to the browser
    /// (dropped until the connection is up; RTCP is not forwarded, the leg
    /// makes its own).
    pub fn send_rtp(&mut self, now: Instant, packet: &[u8]) {
        if !self.connected || rtp::classify(packet) != Ok(Kind::Rtp) {
            return;
        }
        let (Some(mid), Ok(rtp)) = (self.mid, rtp::RtpPacket::parse(packet)) else {
            return;
        };
        let (seq, time) = self.rewrite.map(now, rtp.ssrc, rtp.sequence, rtp.timestamp);
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        let write = RtpWrite::new(
            Pt::from(rtp.payload_type),
            seq.into(),
            time,
            now,
            rtp.payload.to_vec(),
        )
        .marker(rtp.marker);
        stream.write_rtp(write);
        self.drain(now);
    }

    /// Sends a press of `key` lasting `millis` to the browser as RFC 4733
    /// events of payload type `payload_type`, spliced into the stream it
    /// receives (nothing before media flows).
    pub fn press(&mut self, now: Instant, payload_type: u8, key: char, millis: u32) {
        let (true, Some(mid), Some((last_ts, _))) = (self.connected, self.mid, self.rewrite.last)
        else {
            return;
        };
        let Some(payloads) = crate::dtmf::press_payloads(key, millis) else {
            return;
        };
        let start = last_ts.wrapping_add(crate::dtmf::FRAME);
        let first = self.rewrite.seq + 1;
        self.rewrite.seq += payloads.len() as u64;
        self.rewrite.last = Some((start, now));
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        for (i, payload) in payloads.into_iter().enumerate() {
            let write = RtpWrite::new(
                Pt::from(payload_type),
                (first + i as u64).into(),
                start,
                now,
                payload.to_vec(),
            )
            .marker(i == 0);
            stream.write_rtp(write);
        }
        self.drain(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.timeout && self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain(now);
        }
    }

    /// When [`WebRtcLeg::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Instant {
        self.timeout
    }

    /// The next datagram to send from the leg's port.
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.datagrams.pop_front()
    }

    /// The next RTP packet from the browser, as plain RTP.
    pub fn poll_rtp(&mut self) -> Option<Vec<u8>> {
        self.received.pop_front()
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Since when the browser has withdrawn its consent (RFC 7675: no
    /// ICE checks for 15 s); `None` while it is there.
    pub fn lost_since(&self) -> Option<Instant> {
        self.lost_since
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.timeout = at;
                    return;
                }
                Ok(Output::Transmit(t)) => self.datagrams.push_back(Datagram {
                    to: t.destination,
                    bytes: t.contents.to_vec(),
                }),
                Ok(Output::Event(event)) => self.handle_event(now, event),
                Err(_) => {
                    // A broken session sends nothing more; try again later.
                    self.timeout = now + Duration::from_millis(100);
                    return;
                }
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(state) => {
                self.lost_since = match state {
                    IceConnectionState::Disconnected => self.lost_since.or(Some(now)),
                    _ => None,
                };
            }
            Event::MediaAdded(added) if added.kind == MediaKind::Audio => {
                self.mid.get_or_insert(added.mid);
            }
            Event::RtpPacket(packet) => {
                let h = &packet.header;
                let mut plain = Vec::new();
                rtp::write(
                    &mut plain,
                    h.marker,
                    *h.payload_type,
                    h.sequence_number,
                    h.timestamp,
                    *h.ssrc,
                    &packet.payload,
                );
                self.received.push_back(plain);
            }
            _ => {}
        }
    }
}

/// Keeps the stream sent to a browser continuous across the other party's
/// changes of source: sequence numbers go on from the last one sent,
/// timestamps from the last one plus the time that passed.
#[derive(Debug, Default)]
struct Rewriter {
    /// The current source and the last sequence number seen from it.
    source: Option<(u32, u16)>,
    /// Extended sequence number of the newest packet sent.
    seq: u64,
    /// Added to the source's timestamps.
    offset: u32,
    /// The newest timestamp sent and when.
    last: Option<(u32, Instant)>,
}

impl Rewriter {
    /// The extended sequence number and timestamp for a packet of `ssrc`.
    fn map(&mut self, now: Instant, ssrc: u32, seq: u16, ts: u32) -> (u64, u32) {
        match self.source {
            Some((current, last_seq)) if current == ssrc => {
                let delta = seq.wrapping_sub(last_seq) as i16;
                let out_seq = if delta > 0 {
                    self.seq += delta as u64;
                    self.source = Some((ssrc, seq));
                    self.seq
                } else {
                    self.seq.saturating_sub(u64::from(delta.unsigned_abs()))
                };
                let out_ts = ts.wrapping_add(self.offset);
                if delta > 0 {
                    self.last = Some((out_ts, now));
                }
                (out_seq, out_ts)
            }
            _ => {
                match self.last {
                    None => {
                        self.seq = u64::from(seq);
                        self.offset = 0;
                    }
                    Some((last_ts, at)) => {
                        self.seq += 1;
                        let samples = now.saturating_duration_since(at).as_millis() as u32 * 8;
                        self.offset = last_ts.wrapping_add(samples.max(160)).wrapping_sub(ts);
                    }
                }
                self.source = Some((ssrc, seq));
                let out_ts = ts.wrapping_add(self.offset);
                self.last = Some((out_ts, now));
                (self.seq, out_ts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "127.0.0.1:5000";
    const EDGE: &str = "127.0.0.1:6000";

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    fn formats() -> Formats {
        Formats {
            codecs: vec![G711::Pcmu, G711::Pcma],
            telephone_event: Some(101),
        }
    }

    /// A browser: str0m as a full ICE agent offering PCMU and events.
    fn browser(now: Instant) -> Rtc {
        let mut config = Rtc::builder().clear_codecs().enable_pcmu(true, false);
        config.codec_config().add_config(
            Pt::from(101),
            None,
            Codec::Tele,
            Frequency::EIGHT_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = config.build(now);
        let candidate = Candidate::host(addr(BROWSER), "udp").expect("a candidate");
        rtc.add_local_candidate(candidate);
        rtc
    }

    /// Moves datagrams between the browser and the leg for `duration` of
    /// virtual time; returns the RTP packets the browser received.
    fn run(
        now: &mut Instant,
        duration: Duration,
        browser: &mut Rtc,
        leg: &mut WebRtcLeg,
    ) -> Vec<str0m::media::MediaData> {
        let end = *now + duration;
        let mut heard = Vec::new();
        while *now < end {
            let browser_timeout;
            loop {
                match browser.poll_output().expect("browser output") {
                    Output::Timeout(at) => {
                        browser_timeout = at;
                        break;
                    }
                    Output::Transmit(t) => {
                        assert_eq!(t.destination, addr(EDGE));
                        leg.handle_datagram(*now, t.source, &t.contents);
                    }
                    Output::Event(Event::MediaData(data)) => heard.push(data),
                    Output::Event(_) => {}
                }
            }
            while let Some(d) = leg.poll_datagram() {
                assert_eq!(d.to, addr(BROWSER));
                let receive = Receive::new(Protocol::Udp, addr(EDGE), addr(BROWSER), &d.bytes)
                    .expect("a datagram");
                browser
                    .handle_input(Input::Receive(*now, receive))
                    .expect("browser input");
            }
            let next = browser_timeout
                .min(leg.poll_timeout())
                .max(*now + Duration::from_millis(1))
                .min(end);
            *now = next;
            browser.handle_input(Input::Timeout(*now)).expect("timeout");
            leg.handle_timeout(*now);
        }
        heard
    }

    #[test]
    fn a_browser_connects_and_media_flows_both_ways() {
        let mut now = Instant::now();
        let identity = Identity::generate().expect("a certificate");
        let mut browser = browser(now);
        let mut api = browser.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        let (mut leg, answer) = WebRtcLeg::answer(
            now,
            &identity,
            addr(EDGE),
            &offer.to_sdp_string(),
            &formats(),
        )
        .expect("an answer");
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(answer.contains("a=fingerprint:sha-256"), "{answer}");
        assert!(
            answer.contains("a=candidate:") && answer.contains("127.0.0.1 6000"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:0 PCMU/8000"), "{answer}");
        assert!(
            !answer.contains("PCMA"),
            "the browser did not offer it: {answer}"
        );
        browser
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).expect("sdp"))
            .expect("accepted");
        run(&mut now, Duration::from_secs(2), &mut browser, &mut leg);
        assert!(leg.is_connected());

        // The other party's RTP reaches the browser, decrypted there.
        let mut packet = Vec::new();
        for i in 0..5u16 {
            rtp::write(
                &mut packet,
                i == 0,
                0,
                1000 + i,
                160 * u32::from(i),
                77,
                &[0xff; 160],
            );
            leg.send_rtp(now, &packet);
            now += Duration::from_millis(20);
        }
        // (The test's browser holds audio in its reordering buffer a while.)
        let heard = run(&mut now, Duration::from_secs(2), &mut browser, &mut leg);
        assert_eq!(heard.len(), 5);
        assert_eq!(*heard[0].pt, 0);
        assert_eq!(heard[0].data.len(), 160);

        // The browser's RTP comes out as plain RTP.
        let time = str0m::media::MediaTime::new(800, Frequency::EIGHT_KHZ);
        let writer = browser.writer(mid).expect("a writer");
        writer
            .write(Pt::from(0), now, time, vec![0x55; 160])
            .expect("written");
        run(&mut now, Duration::from_millis(100), &mut browser, &mut leg);
        let plain = leg.poll_rtp().expect("a packet from the browser");
        let parsed = rtp::RtpPacket::parse(&plain).expect("plain RTP");
        assert_eq!((parsed.payload_type, parsed.timestamp), (0, 800));
        assert_eq!(parsed.payload, &[0x55; 160][..]);

        // The browser goes away: consent is lost after 15 s.
        let gone_at = now;
        let mut later = now;
        while leg.lost_since().is_none() && later < gone_at + Duration::from_secs(30) {
            later += Duration::from_secs(1);
            leg.handle_timeout(later);
            while leg.poll_datagram().is_some() {}
        }
        let lost = leg.lost_since().expect("consent lost");
        assert!(
            lost - gone_at <= Duration::from_secs(20),
            "{:?}",
            lost - gone_at
        );
    }

    /// An audio offer as Chromium makes it (abridged).
    const CHROMIUM_OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS stream\r\n\
m=audio 50970 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n\
c=IN IP4 192.0.2.2\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 192.0.2.2 50970 typ host\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendrecv\r\n\
a=msid:stream track\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:1 cname:x\r\n";

    #[test]
    fn a_browser_offer_is_seen_as_plain_rtp_at_no_address() {
        let offer = SessionDescription::parse(CHROMIUM_OFFER.as_bytes()).expect("SDP");
        assert!(is_webrtc(&offer));
        let plain = plain(&offer);
        assert!(!is_webrtc(&plain));
        let text = String::from_utf8(plain.to_bytes()).expect("text");
        assert!(
            text.contains("m=audio 50970 RTP/AVP 111 0 8 126\r\n"),
            "{text}"
        );
        assert!(text.contains("c=IN IP4 0.0.0.0"), "{text}");
        for gone in [
            "fingerprint",
            "ice-",
            "candidate",
            "mid:",
            "BUNDLE",
            "ssrc",
            "extmap",
            "192.0.2.2",
        ] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
        let formats = formats_of(&plain);
        assert_eq!(formats.codecs, [G711::Pcmu, G711::Pcma]);
        assert_eq!(formats.telephone_event, Some(126));
    }

    #[test]
    fn a_leg_is_described_again_with_a_new_direction_and_version() {
        let again = redescribe(CHROMIUM_OFFER, Flow::SendOnly, false).expect("SDP");
        assert!(
            again.contains("a=sendonly\r\n") && !again.contains("a=sendrecv"),
            "{again}"
        );
        assert!(again.contains("a=setup:passive\r\n"), "{again}");
        assert!(again.contains(" 3 IN IP4 127.0.0.1"), "{again}");
        assert!(again.contains("a=fingerprint:sha-256 00:11"), "{again}");
        let offer = redescribe(&again, Flow::SendRecv, true).expect("SDP");
        assert!(
            offer.contains("a=setup:actpass\r\n") && offer.contains("a=sendrecv"),
            "{offer}"
        );
    }

    #[test]
    fn a_new_source_continues_the_stream() {
        let t0 = Instant::now();
        let mut r = Rewriter::default();
        assert_eq!(r.map(t0, 1, 100, 8000), (100, 8000));
        assert_eq!(r.map(t0, 1, 101, 8160), (101, 8160));
        // Lost packet: the gap stays.
        assert_eq!(r.map(t0, 1, 103, 8480), (103, 8480));
        // Late packet: its own place.
        assert_eq!(r.map(t0, 1, 102, 8320), (102, 8320));
        // Wrap-around of the 16-bit number.
        let mut w = Rewriter::default();
        w.map(t0, 1, 65535, 0);
        assert_eq!(w.map(t0, 1, 0, 160).0, 65536);
        // Another source 100 ms later: next number, time moved on.
        let later = t0 + Duration::from_millis(100);
        assert_eq!(r.map(later, 2, 7, 1_000_000), (104, 8480 + 800));
        assert_eq!(r.map(later, 2, 8, 1_000_160), (105, 8480 + 960));
    }
}
