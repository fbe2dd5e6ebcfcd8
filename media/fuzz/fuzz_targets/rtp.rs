//! Any datagram, and any stream of them on a call's two legs: RTP and
//! RTCP parsing never panics, an accepted RTP packet written back parses
//! to the same view, splicing key presses only renumbers packets, and the
//! relay forwards nothing but RTP and RTCP, unchanged.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use edgepbx_media::dtmf::{DtmfReceiver, Splicer, TelephoneEvent};
use edgepbx_media::relay::{Relay, Side};
use edgepbx_media::rtp::{Kind, RtpError, RtpPacket, classify, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    packet(data);
    stream(data);
});

/// The whole input as one datagram.
fn packet(data: &[u8]) {
    let kind = classify(data);
    let rtp = match RtpPacket::parse(data) {
        Ok(rtp) => rtp,
        Err(RtpError::Version(version)) => {
            assert_ne!(version, 2);
            assert_eq!(kind, Err(RtpError::Version(version)));
            return;
        }
        Err(_) => return,
    };
    assert!(kind.is_ok(), "RTP that is neither RTP nor RTCP");
    let inside = data.as_ptr_range();
    let payload = rtp.payload.as_ptr_range();
    assert!(inside.start <= payload.start && payload.end <= inside.end);
    let mut out = Vec::new();
    write(
        &mut out,
        rtp.marker,
        rtp.payload_type,
        rtp.sequence,
        rtp.timestamp,
        rtp.ssrc,
        rtp.payload,
    );
    assert_eq!(RtpPacket::parse(&out), Ok(rtp));
    let _ = TelephoneEvent::parse(rtp.payload);
}

/// The input as datagrams, each `[flags, length, bytes...]`: flags bit 0
/// is the leg, bits 1–2 the sender among four addresses, bit 3 a key
/// press spliced in after the packet.
fn stream(mut data: &[u8]) {
    let start = Instant::now();
    let senders: [SocketAddr; 4] = [1, 2, 3, 4].map(|n| (Ipv4Addr::new(192, 0, 2, n), 4000).into());
    let mut relay = Relay::new(
        start,
        Some(senders[0]),
        Some(senders[1]),
        Duration::from_secs(30),
    );
    let mut splicer = Splicer::new();
    let mut keys = DtmfReceiver::new();
    let mut now = start;
    while let [flags, len, rest @ ..] = data {
        let (bytes, tail) = rest.split_at(usize::from(*len).min(rest.len()));
        data = tail;
        now += Duration::from_millis(20);
        let side = if flags & 1 == 0 { Side::A } else { Side::B };
        let source = senders[usize::from(flags >> 1 & 3)];
        if let Some(transmit) = relay.handle_packet(now, side, source, bytes) {
            assert_eq!(transmit.bytes, bytes);
            assert_eq!(transmit.from, side.other());
            assert_eq!(classify(bytes), Ok(transmit.kind));
        }
        let out = splicer.forward(bytes);
        assert_eq!(out.len(), bytes.len());
        if let (Ok(before), Ok(after)) = (RtpPacket::parse(bytes), RtpPacket::parse(&out)) {
            assert_eq!(
                RtpPacket {
                    sequence: before.sequence,
                    ..after
                },
                before
            );
            if classify(bytes) == Ok(Kind::Rtp) {
                let _ = keys.handle(before.timestamp, before.payload);
            }
        } else {
            assert_eq!(&out[..], bytes, "a packet that is not RTP was changed");
        }
        if flags & 8 != 0 {
            for pressed in splicer.press(101, '5', u32::from(*len) * 10) {
                let event = RtpPacket::parse(&pressed).expect("a spliced packet is RTP");
                assert!(TelephoneEvent::parse(event.payload).is_some());
            }
        }
        relay.handle_timeout(now);
        while relay.poll_event().is_some() {}
    }
}
