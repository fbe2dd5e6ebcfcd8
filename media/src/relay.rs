//! The media relay of one call: two legs, each a pair of edgepbx ports
//! facing one party, and the rules for what crosses between them.
//!
//! Sans-IO in the style of the SIP core: the driver hands every packet that
//! arrived on a leg's port to [`Relay::handle_packet`] with the time, sends
//! the [`Transmit`] that comes back, and calls [`Relay::poll_timeout`] /
//! [`Relay::handle_timeout`] to learn when a party has gone silent.
//!
//! Each leg latches onto its party's real source ([`crate::latch`]): until
//! then packets go to the address the party's description gave; once
//! latched, only that source is relayed, so nobody else can inject media
//! into the call or take its audio.
//!
//! RTCP runs on the port after RTP (RFC 3550 §11; anchoring removes
//! `rtcp-mux` from the descriptions it forwards) and latches on its own:
//! behind NAT its source port is unrelated to the RTP one. Until a party's
//! RTCP has been heard, its RTCP goes to its RTP port plus one.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::latch::{Heard, Latch};
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
    /// Where the party receives and sends RTP.
    latch: Latch,
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
            latch: Latch::new(announced),
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
        self.legs[side.index()].latch.destination()
    }

    /// A description of `side` (offer, answer, re-INVITE) announced
    /// `address`, in a message from `signalling`. Another address than
    /// before makes the leg forget its latch and latch again.
    pub fn handle_announcement(
        &mut self,
        side: Side,
        address: SocketAddr,
        signalling: Option<IpAddr>,
    ) {
        let leg = &mut self.legs[side.index()];
        if leg.latch.announce(address, signalling) {
            leg.latched_rtcp = None;
        }
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
            Some(Kind::Rtp) => match leg.latch.hear(source, bytes) {
                Heard::Party => true,
                Heard::Latched => {
                    self.events.push_back(Event::Latched(side, source));
                    true
                }
                Heard::Stranger => false,
            },
            // RTCP comes from the party's address once RTP has latched.
            Some(Kind::Rtcp) => match (leg.latched_rtcp, leg.latch.latched()) {
                (Some(latched), _) => latched == source,
                (None, Some(rtp)) => rtp.ip() == source.ip(),
                (None, None) => {
                    leg.latch.destination().is_some() && leg.latch.may_be_party(source.ip())
                }
            },
            None => false,
        };
        let (true, Some(kind)) = (from_party, kind) else {
            leg.stats.dropped += 1;
            return None;
        };
        match kind {
            Kind::Rtp => leg.stats.rtp_relayed += 1,
            Kind::Rtcp => {
                leg.latched_rtcp.get_or_insert(source);
                leg.stats.rtcp_relayed += 1;
            }
        }
        leg.last_heard = now;
        leg.silence_reported = false;
        let other = &self.legs[side.other().index()];
        let rtp_to = other.latch.destination()?;
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
    use crate::latch::LATCH_AFTER;

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

    /// Alice's first `count` packets from `from`, sequence numbers from
    /// `first`; what the last one sent.
    fn send_from(
        relay: &mut Relay,
        now: Instant,
        from: &str,
        first: u16,
        count: u16,
    ) -> Option<(Side, SocketAddr)> {
        let mut sent = None;
        for sequence in first..first + count {
            sent = relay
                .handle_packet(now, Side::A, addr(from), &packet(sequence))
                .map(|t| (t.from, t.to));
        }
        sent
    }

    #[test]
    fn media_flows_both_ways_after_latching_behind_nat() {
        let t0 = Instant::now();
        let mut relay = alice_and_bob(t0, Duration::from_secs(30));
        // Alice's description names her private address; her REGISTER and
        // INVITE come from her NAT, which maps her RTP port to 61000.
        relay.handle_announcement(
            Side::A,
            addr("192.168.1.20:4000"),
            Some("198.51.100.7".parse().expect("an address")),
        );
        let alice_nat = addr("198.51.100.7:61000");
        let first = send_from(&mut relay, t0, "198.51.100.7:61000", 1, 1);
        assert_eq!(first, Some((Side::B, addr("203.0.113.9:5000"))));
        // Not latched after one packet: Bob's media still goes where
        // Alice's description said.
        let reply = packet(1);
        let back = relay
            .handle_packet(t0, Side::B, addr("203.0.113.9:5000"), &reply)
            .expect("relayed");
        assert_eq!(back.to, addr("192.168.1.20:4000"));
        // Bob's one packet does not latch him either.
        assert_eq!(relay.poll_event(), None);
        send_from(
            &mut relay,
            t0,
            "198.51.100.7:61000",
            2,
            u16::from(LATCH_AFTER) - 1,
        );
        assert_eq!(relay.poll_event(), Some(Event::Latched(Side::A, alice_nat)));

        // Bob's media goes to where Alice really is, not where she said.
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
                rtp_relayed: u64::from(LATCH_AFTER),
                rtcp_relayed: 1,
                dropped: 0
            }
        );
        // RTP never latches on the RTCP port.
        assert!(
            relay
                .handle_packet(t0, Side::A, alice_rtcp_nat, &packet(9))
                .is_none()
        );
    }

    #[test]
    fn a_stranger_spraying_the_ports_never_latches_nor_hears() {
        let t0 = Instant::now();
        let mut relay = alice_and_bob(t0, Duration::from_secs(30));
        let alice_ip = Some("198.51.100.7".parse().expect("an address"));
        relay.handle_announcement(Side::A, addr("198.51.100.7:4000"), alice_ip);
        assert!(
            relay
                .handle_packet(t0, Side::A, addr("198.51.100.7:4000"), b"not rtp")
                .is_none()
        );
        // The stranger gets in first, with many packets and with RTCP:
        // nothing is relayed, nothing latches.
        let stranger = "203.0.113.50:61000";
        assert_eq!(send_from(&mut relay, t0, stranger, 1, 10), None);
        let rtcp = [0x80, 200, 0, 6, 0, 0, 0, 7];
        assert!(
            relay
                .handle_packet(t0, Side::A, addr("203.0.113.50:61001"), &rtcp)
                .is_none()
        );
        assert_eq!(relay.poll_event(), None);
        // Bob's audio goes to Alice's announced address, never to the
        // stranger.
        let bob = packet(1);
        let back = relay
            .handle_packet(t0, Side::B, addr("203.0.113.9:5000"), &bob)
            .expect("relayed");
        assert_eq!(back.to, addr("198.51.100.7:4000"));
        // Alice latches; then another port of hers, or the stranger, is
        // dropped.
        send_from(
            &mut relay,
            t0,
            "198.51.100.7:4000",
            20,
            u16::from(LATCH_AFTER),
        );
        assert_eq!(
            relay.poll_event(),
            Some(Event::Latched(Side::A, addr("198.51.100.7:4000")))
        );
        for other in ["198.51.100.7:4002", stranger] {
            assert_eq!(send_from(&mut relay, t0, other, 30, 1), None, "{other}");
        }
        assert_eq!(relay.stats(Side::A).dropped, 1 + 10 + 1 + 2);
    }

    #[test]
    fn a_latch_needs_packets_in_a_row_from_one_source() {
        let t0 = Instant::now();
        let mut relay = alice_and_bob(t0, Duration::from_secs(30));
        // Behind NAT: two ports of the NAT's address take turns (an
        // attacker behind the same NAT, or a confused phone): neither
        // latches.
        relay.handle_announcement(
            Side::A,
            addr("10.0.0.5:4000"),
            Some("198.51.100.7".parse().expect("an address")),
        );
        for round in 0..5 {
            send_from(&mut relay, t0, "198.51.100.7:61000", round * 2, 1);
            send_from(&mut relay, t0, "198.51.100.7:62000", round * 2 + 1, 1);
        }
        assert_eq!(relay.poll_event(), None);
        assert_eq!(relay.destination(Side::A), Some(addr("10.0.0.5:4000")));
        send_from(
            &mut relay,
            t0,
            "198.51.100.7:62000",
            50,
            u16::from(LATCH_AFTER),
        );
        assert_eq!(
            relay.poll_event(),
            Some(Event::Latched(Side::A, addr("198.51.100.7:62000")))
        );
    }

    #[test]
    fn a_reinvite_keeps_the_latch_unless_the_party_moves() {
        let t0 = Instant::now();
        let mut relay = alice_and_bob(t0, Duration::from_secs(30));
        let alice_ip = Some("198.51.100.7".parse().expect("an address"));
        relay.handle_announcement(Side::A, addr("198.51.100.7:4000"), alice_ip);
        send_from(
            &mut relay,
            t0,
            "198.51.100.7:4000",
            1,
            u16::from(LATCH_AFTER),
        );
        assert!(relay.poll_event().is_some());
        // Hold and resume describe the same address: still latched, so a
        // stranger on Alice's address but another port stays out.
        relay.handle_announcement(Side::A, addr("198.51.100.7:4000"), alice_ip);
        assert_eq!(send_from(&mut relay, t0, "198.51.100.7:5555", 10, 1), None);
        assert_eq!(relay.destination(Side::A), Some(addr("198.51.100.7:4000")));
        // Alice moves: the latch starts again at her new address.
        relay.handle_announcement(Side::A, addr("198.51.100.8:4100"), alice_ip);
        assert_eq!(relay.destination(Side::A), Some(addr("198.51.100.8:4100")));
        send_from(
            &mut relay,
            t0,
            "198.51.100.8:4100",
            20,
            u16::from(LATCH_AFTER),
        );
        assert_eq!(
            relay.poll_event(),
            Some(Event::Latched(Side::A, addr("198.51.100.8:4100")))
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
