//! The media relay of one call: two legs, each a pair of edgepbx ports
//! facing one party, and the rules for what crosses between them.
//!
//! Sans-IO in the style of the SIP core: the driver hands every packet that
//! arrived on a leg's port to [`Relay::handle_packet`] with the time, sends
//! the [`Transmit`] that comes back, and calls [`Relay::poll_timeout`] /
//! [`Relay::handle_timeout`] to learn when a party has gone silent.
//!
//! Symmetric RTP (RFC 4961) with latching: a party behind NAT sends from an
//! address its SDP does not show (a private address in the description, the
//! NAT's public address and port on the wire). Until a leg has heard from
//! its party, packets go to the address the SDP gave; the first valid RTP
//! packet that arrives on the leg's port latches the leg to its exact
//! source (IP and port), and from then on only that source is relayed, so
//! nobody else can inject media into the call. The window for a stranger
//! to latch first is the time between the answer and the party's first
//! packet, on a port it would have to guess; this is the usual trade of
//! media relays for NAT traversal (rtpengine and Asterisk's `comedia` make
//! it too).
//!
//! RTCP runs on the port after RTP (RFC 3550 §11; anchoring removes
//! `rtcp-mux` from the descriptions it forwards) and latches on its own:
//! behind NAT its source port is unrelated to the RTP one. Until a party's
//! RTCP has been heard, its RTCP goes to its RTP port plus one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rtp::{self, Kind};

/// One of the two legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The caller's leg.
    A,
    /// The callee's leg.
    B,
}

impl Side {
    /// The other leg.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// A packet to send from one of edgepbx's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// The leg whose port sends it.
    pub from: Side,
    /// RTP or RTCP (which port of the leg, when they are separate).
    pub kind: Kind,
    /// Where to.
    pub to: SocketAddr,
    /// The packet, unchanged.
    pub bytes: &'a [u8],
}

/// What the relay has to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A leg latched onto its party's real address.
    Latched(Side, SocketAddr),
    /// A leg's party sent nothing for the silence timeout (the call may be
    /// dead: the engine decides).
    Silent(Side),
    /// A browser's party withdrew its consent (RFC 7675: no ICE checks for
    /// 15 s): it is gone.
    Gone(Side),
}

/// Counters of one leg, for call records and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets received from the party and relayed.
    pub rtp_relayed: u64,
    /// RTCP packets received from the party and relayed.
    pub rtcp_relayed: u64,
    /// Packets dropped: from a stranger, or not RTP/RTCP.
    pub dropped: u64,
}

#[derive(Debug, Clone)]
struct Leg {
    /// Where the party's SDP says it receives RTP.
    announced: Option<SocketAddr>,
    /// Where it really sends RTP from, once heard.
    latched: Option<SocketAddr>,
    /// Where it really sends RTCP from, once heard.
    latched_rtcp: Option<SocketAddr>,
    /// When it was last heard.
    last_heard: Instant,
    /// `Silent` already reported for the current silence.
    silence_reported: bool,
    stats: LegStats,
}

/// The relay of one call.
#[derive(Debug, Clone)]
pub struct Relay {
    legs: [Leg; 2],
    silence: Duration,
    events: VecDeque<Event>,
}

impl Relay {
    /// A relay whose parties' SDPs announced `a` and `b` (unknown until an
    /// answer arrives: `None`), reporting a leg silent after `silence`.
    pub fn new(
        now: Instant,
        a: Option<SocketAddr>,
        b: Option<SocketAddr>,
        silence: Duration,
    ) -> Relay {
        let leg = |announced| Leg {
            announced,
            latched: None,
            latched_rtcp: None,
            last_heard: now,
            silence_reported: false,
            stats: LegStats::default(),
        };
        Relay {
            legs: [leg(a), leg(b)],
            silence,
            events: VecDeque::new(),
        }
    }

    /// Where packets for `side`'s party go: its latched source, else the
    /// address its description announced.
    pub fn destination(&self, side: Side) -> Option<SocketAddr> {
        let leg = &self.legs[side.index()];
        leg.latched.or(leg.announced)
    }

    /// A new SDP of `side` announced another address (re-INVITE, answer):
    /// the leg forgets its latch and latches again.
    pub fn handle_announcement(&mut self, side: Side, address: SocketAddr) {
        let leg = &mut self.legs[side.index()];
        leg.announced = Some(address);
        leg.latched = None;
        leg.latched_rtcp = None;
    }

    /// A packet arrived on `side`'s port from `source`. Returns what to send
    /// (on the other leg's port, to its party), if anything.
    pub fn handle_packet<'a>(
        &mut self,
        now: Instant,
        side: Side,
        source: SocketAddr,
        bytes: &'a [u8],
    ) -> Option<Transmit<'a>> {
        let kind = rtp::classify(bytes).ok();
        let leg = &mut self.legs[side.index()];
        let from_party = match kind {
            // Not latched yet: whoever sends first is the party.
            Some(Kind::Rtp) => leg.latched.is_none_or(|latched| latched == source),
            // RTCP comes from the party's address once RTP has latched.
            Some(Kind::Rtcp) => match (leg.latched_rtcp, leg.latched) {
                (Some(latched), _) => latched == source,
                (None, Some(rtp)) => rtp.ip() == source.ip(),
                (None, None) => leg.announced.is_some_and(|a| a.ip() == source.ip()),
            },
            None => false,
        };
        let (true, Some(kind)) = (from_party, kind) else {
            leg.stats.dropped += 1;
            return None;
        };
        match kind {
            Kind::Rtp => {
                if leg.latched.is_none() {
                    leg.latched = Some(source);
                    self.events.push_back(Event::Latched(side, source));
                }
                leg.stats.rtp_relayed += 1;
            }
            Kind::Rtcp => {
                leg.latched_rtcp.get_or_insert(source);
                leg.stats.rtcp_relayed += 1;
            }
        }
        leg.last_heard = now;
        leg.silence_reported = false;
        let other = &self.legs[side.other().index()];
        let rtp_to = other.latched.or(other.announced)?;
        let to = match kind {
            Kind::Rtp => rtp_to,
            Kind::Rtcp => other
                .latched_rtcp
                .unwrap_or_else(|| SocketAddr::new(rtp_to.ip(), rtp_to.port().wrapping_add(1))),
        };
        Some(Transmit {
            from: side.other(),
            kind,
            to,
            bytes,
        })
    }

    /// When [`Relay::handle_timeout`] should next be called; `None` while
    /// both legs' silences are already reported (the next packet restarts
    /// the clock).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.legs
            .iter()
            .filter(|leg| !leg.silence_reported)
            .map(|leg| leg.last_heard + self.silence)
            .min()
    }

    /// Reports legs that have been silent for the silence timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        for side in [Side::A, Side::B] {
            let leg = &mut self.legs[side.index()];
            if !leg.silence_reported && now >= leg.last_heard + self.silence {
                leg.silence_reported = true;
                self.events.push_back(Event::Silent(side));
            }
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A leg's counters.
    pub fn stats(&self, side: Side) -> LegStats {
        self.legs[side.index()].stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a literal address")
    }

    /// Alice (A) announced 198.51.100.7:4000, Bob (B) 203.0.113.9:5000.
    fn alice_and_bob(now: Instant, silence: Duration) -> Relay {
        Relay::new(
            now,
            Some(addr("198.51.100.7:4000")),
            Some(addr("203.0.113.9:5000")),
            silence,
        )
    }

    fn packet(sequence: u16) -> Vec<u8> {
        let mut out = Vec::new();
        rtp::write(
            &mut out,
            false,
            0,
            sequence,
            u32::from(sequence) * 160,
            7,
            &[0xff; 160],
        );
        out
    }

    #[test]
    fn media_flows_both_ways_after_latching_behind_nat() {
        let t0 = Instant::now();
        // Alice announces her private port; her NAT maps it to 61000.
        let mut relay = alice_and_bob(t0, Duration::from_secs(30));
        let alice_nat = addr("198.51.100.7:61000");
        let first = packet(1);
        let sent = relay
            .handle_packet(t0, Side::A, alice_nat, &first)
            .expect("relayed");
        assert_eq!((sent.from, sent.to), (Side::B, addr("203.0.113.9:5000")));
        assert_eq!(relay.poll_event(), Some(Event::Latched(Side::A, alice_nat)));

        // Bob's media goes to where Alice really is, not where she said.
        let reply = packet(1);
        let back = relay
            .handle_packet(t0, Side::B, addr("203.0.113.9:5000"), &reply)
            .expect("relayed");
        assert_eq!((back.from, back.to), (Side::A, alice_nat));

        // RTCP is told apart, latches on its own port and goes to Bob's
        // RTP port plus one.
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 7];
        let alice_rtcp_nat = addr("198.51.100.7:61001");
        let sent = relay
            .handle_packet(t0, Side::A, alice_rtcp_nat, &rtcp)
            .expect("relayed");
        assert_eq!((sent.kind, sent.to), (Kind::Rtcp, addr("203.0.113.9:5001")));
        let back = relay
            .handle_packet(t0, Side::B, addr("203.0.113.9:5001"), &rtcp)
            .expect("relayed");
        assert_eq!(back.to, alice_rtcp_nat);
        assert_eq!(
            relay.stats(Side::A),
            LegStats {
                rtp_relayed: 1,
                rtcp_relayed: 1,
                dropped: 0
            }
        );
        // RTP never latches on the RTCP port.
        assert!(
            relay
                .handle_packet(t0, Side::A, alice_rtcp_nat, &packet(2))
                .is_none()
        );
    }

    #[test]
    fn strangers_and_garbage_are_dropped() {
        let t0 = Instant::now();
        let mut relay = alice_and_bob(t0, Duration::from_secs(30));
        let media = packet(1);
        assert!(
            relay
                .handle_packet(t0, Side::A, addr("198.51.100.7:4000"), b"not rtp")
                .is_none()
        );
        // RTCP alone does not latch a stranger.
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 7];
        assert!(
            relay
                .handle_packet(t0, Side::A, addr("192.0.2.66:4001"), &rtcp)
                .is_none()
        );
        // The first RTP latches (behind NAT it comes from elsewhere than
        // the description said); then another port, or another address,
        // is a stranger.
        assert!(
            relay
                .handle_packet(t0, Side::A, addr("203.0.113.50:61000"), &media)
                .is_some()
        );
        for stranger in ["203.0.113.50:61001", "198.51.100.7:4000"] {
            assert!(
                relay
                    .handle_packet(t0, Side::A, addr(stranger), &media)
                    .is_none(),
                "{stranger}"
            );
        }
        assert_eq!(relay.stats(Side::A).dropped, 4);
        // A re-INVITE moves Alice: the latch starts again.
        relay.handle_announcement(Side::A, addr("198.51.100.8:4100"));
        assert!(
            relay
                .handle_packet(t0, Side::A, addr("198.51.100.8:4200"), &media)
                .is_some()
        );
    }

    #[test]
    fn a_silent_party_is_reported_once_per_silence() {
        let t0 = Instant::now();
        let silence = Duration::from_secs(30);
        let mut relay = alice_and_bob(t0, silence);
        assert_eq!(relay.poll_timeout(), Some(t0 + silence));
        let t1 = t0 + Duration::from_secs(20);
        let media = packet(1);
        relay.handle_packet(t1, Side::A, addr("198.51.100.7:4000"), &media);
        let _ = relay.poll_event(); // latched
        relay.handle_timeout(t0 + silence);
        assert_eq!(relay.poll_event(), Some(Event::Silent(Side::B)));
        assert_eq!(relay.poll_event(), None);
        assert_eq!(relay.poll_timeout(), Some(t1 + silence));
        relay.handle_timeout(t1 + silence);
        relay.handle_timeout(t1 + silence + Duration::from_secs(5));
        assert_eq!(relay.poll_event(), Some(Event::Silent(Side::A)));
        assert_eq!(relay.poll_event(), None);
        assert_eq!(relay.poll_timeout(), None);
    }
}
