//! Writing a pcap file of RTP packets (what SIPp's `play_pcap_audio`
//! sends): Ethernet, IPv4 and UDP headers around each packet, timestamps
//! 20 ms apart.

use std::path::Path;

/// Writes `payloads` (one 20 ms frame each) as PCMU RTP packets
/// (payload type 0) to a pcap file at `path`.
pub fn write_rtp(path: &Path, payloads: &[&[u8]]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, zone, accuracy, snaplen, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, payload) in payloads.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let mut rtp = vec![0x80, 0];
        rtp.extend_from_slice(&u16::try_from(i % 65_536).unwrap_or(0).to_be_bytes());
        rtp.extend_from_slice(&index.wrapping_mul(160).to_be_bytes());
        rtp.extend_from_slice(&0x5eed_u32.to_be_bytes());
        rtp.extend_from_slice(payload);
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
        let micros = u64::from(index) * 20_000;
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&u32::try_from(micros / 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&u32::try_from(micros % 1_000_000).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
