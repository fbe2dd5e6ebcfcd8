//! Writing a pcap file of RTP packets (what SIPp's `play_pcap_audio`
//! sends, at the pace of the packets' capture times): Ethernet, IPv4 and
//! UDP headers around each packet.

use std::path::Path;

/// The payload type of telephone events in the test scenarios' offers.
pub const TELEPHONE_EVENT: u8 = 101;

/// One RTP packet and when it is sent.
#[derive(Debug, Clone)]
pub struct Packet {
    /// Milliseconds from the start.
    pub at_ms: u64,
    /// Payload type.
    pub payload_type: u8,
    /// RTP timestamp.
    pub timestamp: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

/// PCMU frames (160 bytes, 20 ms each) from `start_ms`.
pub fn audio(frames: &[&[u8]], start_ms: u64) -> Vec<Packet> {
    frames
        .iter()
        .enumerate()
        .map(|(i, frame)| Packet {
            at_ms: start_ms + i as u64 * 20,
            payload_type: 0,
            timestamp: u32::try_from(i * 160).unwrap_or(0),
            payload: frame.to_vec(),
        })
        .collect()
}

/// Key presses as RFC 4733 events: `(at_ms, key)`, each lasting 100 ms
/// (packets every 20 ms, the end sent three times).
pub fn keys(presses: &[(u64, char)]) -> Vec<Packet> {
    let mut packets = Vec::new();
    for &(at_ms, key) in presses {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            '*' => 10,
            '#' => 11,
            _ => continue,
        };
        let timestamp = u32::try_from(at_ms * 8).unwrap_or(0);
        for step in 1..=8u16 {
            let end = step >= 6;
            let duration = step.min(5) * 160;
            let d = duration.to_be_bytes();
            packets.push(Packet {
                at_ms: at_ms + u64::from(step) * 20,
                payload_type: TELEPHONE_EVENT,
                timestamp,
                payload: vec![event, if end { 0x8a } else { 0x0a }, d[0], d[1]],
            });
        }
    }
    packets
}

/// Writes `packets` (in time order) to a pcap file at `path`.
pub fn write(path: &Path, packets: &[Packet]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, accuracy, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, packet) in packets.iter().enumerate() {
        let mut rtp = vec![0x80, packet.payload_type & 0x7f];
        rtp.extend_from_slice(&u16::try_from(i % 65_536).unwrap_or(0).to_be_bytes());
        rtp.extend_from_slice(&packet.timestamp.to_be_bytes());
        rtp.extend_from_slice(&0x5eed_u32.to_be_bytes());
        rtp.extend_from_slice(&packet.payload);
        let udp_len = u16::try_from(8 + rtp.len()).unwrap_or(u16::MAX);
        let ip_len = udp_len + 20;
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0; 12]); // MAC addresses
        frame.extend_from_slice(&[0x08, 0x00]); // IPv4
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&ip_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
        frame.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&4_000u16.to_be_bytes());
        frame.extend_from_slice(&4_000u16.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&rtp);
        let micros = packet.at_ms * 1_000;
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&u32::try_from(micros / 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&u32::try_from(micros % 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
