//! Symmetric RTP latching (RFC 4961), shared by the relay's legs and the
//! media endpoint: where one party's RTP really comes from, decided so
//! that a stranger cannot take the party's place.
//!
//! A party behind NAT sends from an address its description does not show
//! (a private address in the SDP, the NAT's public address and port on the
//! wire). Until the party has been heard, packets go to the address its
//! description gave. The latch then settles on the exact source (IP and
//! port) of [`LATCH_AFTER`] consecutive valid RTP packets of one SSRC, and
//! from then on only that source is the party.
//!
//! Who may latch: a source on the IP address the description announced;
//! and, when NAT is evident (the description names a private or
//! unspecified address other than the one its signalling came from), a
//! source on the signalling address, which is the NAT's. A stranger
//! spraying the port from anywhere else is never taken for the party. A
//! new description that keeps the address (a re-INVITE for hold, a session
//! refresh) keeps the latch; one that moves the party starts it again.

use std::net::{IpAddr, SocketAddr};

/// Consecutive RTP packets of one source and SSRC that settle a latch.
pub const LATCH_AFTER: u8 = 3;

/// What [`Latch::hear`] made of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// From the party (latched, or a source that may become it).
    Party,
    /// From the party, and the latch settled on it with this packet.
    Latched,
    /// From someone else: drop it.
    Stranger,
}

/// Where one party is, announced and heard.
#[derive(Debug, Clone, Default)]
pub struct Latch {
    /// Where the party's description says it receives RTP.
    announced: Option<SocketAddr>,
    /// Where the party's signalling comes from.
    signalling: Option<IpAddr>,
    /// Where it really sends RTP from, once settled.
    latched: Option<SocketAddr>,
    /// The source and SSRC heard before settling, and how many packets in
    /// a row.
    candidate: Option<(SocketAddr, u32, u8)>,
}

impl Latch {
    /// A latch for a party that announced `announced` (`None`: not yet).
    pub fn new(announced: Option<SocketAddr>) -> Latch {
        Latch {
            announced,
            ..Latch::default()
        }
    }

    /// A description of the party announced `address`, in a message from
    /// `signalling`; true when the party moved (the latch starts again).
    pub fn announce(&mut self, address: SocketAddr, signalling: Option<IpAddr>) -> bool {
        self.signalling = signalling;
        if self.announced == Some(address) {
            return false;
        }
        self.announced = Some(address);
        self.latched = None;
        self.candidate = None;
        true
    }

    /// The source the latch settled on.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Where the party receives: the latched source, else the announced
    /// address.
    pub fn destination(&self) -> Option<SocketAddr> {
        self.latched.or(self.announced)
    }

    /// Whether a packet from `ip` may come from the party before the latch
    /// settled (RTCP goes by this too).
    pub fn may_be_party(&self, ip: IpAddr) -> bool {
        // A party that has described nothing yet (a callee before its
        // answer is handled) has no address to check a source against:
        // nobody may latch. Before, anyone could: a stranger spraying the
        // port took the leg and heard the caller's first packets.
        let Some(announced) = self.announced else {
            return false;
        };
        if announced.ip() == ip {
            return true;
        }
        let nat_evident = self.signalling.is_some_and(|s| {
            s != announced.ip() && (is_private(announced.ip()) || announced.ip().is_unspecified())
        });
        nat_evident && self.signalling == Some(ip)
    }

    /// An RTP packet (`bytes`, already checked to be RTP) from `source`.
    pub fn hear(&mut self, source: SocketAddr, bytes: &[u8]) -> Heard {
        if let Some(latched) = self.latched {
            return if latched == source {
                Heard::Party
            } else {
                Heard::Stranger
            };
        }
        if !self.may_be_party(source.ip()) {
            return Heard::Stranger;
        }
        let ssrc = match bytes.get(8..12) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => return Heard::Stranger,
        };
        let count = match self.candidate {
            Some((from, same, count)) if from == source && same == ssrc => count + 1,
            _ => 1,
        };
        self.candidate = Some((source, ssrc, count));
        if count < LATCH_AFTER {
            return Heard::Party;
        }
        self.latched = Some(source);
        Heard::Latched
    }
}

/// Addresses that only mean something behind a NAT: RFC 1918, shared
/// address space (RFC 6598, carrier-grade NAT), link-local, and IPv6
/// unique local and link-local.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("a literal address")
    }

    fn rtp(ssrc: u32) -> Vec<u8> {
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 0];
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet
    }

    #[test]
    fn private_addresses_are_told_apart() {
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(
                is_private(private.parse().expect("an address")),
                "{private}"
            );
        }
        for public in [
            "198.51.100.7",
            "100.128.0.1",
            "172.32.0.1",
            "2001:db8::1",
            "127.0.0.1",
        ] {
            assert!(!is_private(public.parse().expect("an address")), "{public}");
        }
    }

    #[test]
    fn a_change_of_ssrc_starts_the_count_again() {
        let mut latch = Latch::new(Some(addr("198.51.100.7:4000")));
        let from = addr("198.51.100.7:4000");
        assert_eq!(latch.hear(from, &rtp(1)), Heard::Party);
        assert_eq!(latch.hear(from, &rtp(1)), Heard::Party);
        assert_eq!(latch.hear(from, &rtp(2)), Heard::Party);
        assert_eq!(latch.hear(from, &rtp(2)), Heard::Party);
        assert_eq!(latch.hear(from, &rtp(2)), Heard::Latched);
        assert_eq!(
            latch.hear(from, &rtp(3)),
            Heard::Party,
            "settled: the source counts"
        );
        assert_eq!(
            latch.hear(addr("198.51.100.7:4002"), &rtp(2)),
            Heard::Stranger
        );
    }

    /// Found by the baresip test's sprayer in CI: a callee's leg, before
    /// its answer was handled, let any source latch.
    #[test]
    fn nobody_latches_before_the_party_described_an_address() {
        let mut latch = Latch::new(None);
        let stranger = addr("127.0.0.2:5004");
        for _ in 0..=LATCH_AFTER {
            assert_eq!(latch.hear(stranger, &rtp(7)), Heard::Stranger);
        }
        assert_eq!(latch.destination(), None);
        latch.announce(
            addr("127.0.0.1:4000"),
            Some("127.0.0.1".parse().expect("an address")),
        );
        assert_eq!(latch.hear(stranger, &rtp(7)), Heard::Stranger);
        assert_eq!(latch.hear(addr("127.0.0.1:4000"), &rtp(1)), Heard::Party);
    }

    #[test]
    fn a_public_address_elsewhere_is_not_nat() {
        // A carrier whose media gateway is not its signalling host: only
        // the described address may latch.
        let mut latch = Latch::new(None);
        latch.announce(
            addr("203.0.113.20:30000"),
            Some("198.51.100.1".parse().expect("an address")),
        );
        assert_eq!(
            latch.hear(addr("198.51.100.1:30000"), &rtp(1)),
            Heard::Stranger
        );
        assert_eq!(
            latch.hear(addr("203.0.113.20:30000"), &rtp(1)),
            Heard::Party
        );
    }
}
