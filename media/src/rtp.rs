//! RTP and RTCP packets (RFC 3550) as a relay sees them: a borrowed view of
//! the fixed header, enough to latch onto a source, count, and tell RTP
//! from RTCP on a shared port (RFC 5761 §4). Payloads are never copied.

/// Why bytes are not an RTP or RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than its headers say.
    #[error("the packet is truncated")]
    Truncated,
    /// Not RTP version 2.
    #[error("RTP version {0}, not 2")]
    Version(u8),
    /// Padding longer than the payload.
    #[error("the padding is longer than the packet")]
    Padding,
}

/// What a packet on an RTP port is (RFC 5761 §4: RTCP packet types 200–204
/// sit where RTP payload types 72–76 with the marker bit would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RTP.
    Rtp,
    /// RTCP.
    Rtcp,
}

/// Tells RTP from RTCP by the second byte.
pub fn classify(packet: &[u8]) -> Result<Kind, RtpError> {
    let (&first, &second) = packet
        .first()
        .zip(packet.get(1))
        .ok_or(RtpError::Truncated)?;
    let version = first >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    Ok(if (200..=204).contains(&second) {
        Kind::Rtcp
    } else {
        Kind::Rtp
    })
}

/// A view of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit.
    pub marker: bool,
    /// Payload type, 0–127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp, in the clock of the payload type.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without header, CSRCs, extension and padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses the headers of `packet`.
    pub fn parse(packet: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if packet.len() < 12 {
            return Err(RtpError::Truncated);
        }
        let version = packet[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let padding = packet[0] & 0x20 != 0;
        let extension = packet[0] & 0x10 != 0;
        let csrc_count = usize::from(packet[0] & 0x0f);
        let mut offset = 12 + 4 * csrc_count;
        if extension {
            let length = packet
                .get(offset + 2..offset + 4)
                .ok_or(RtpError::Truncated)?;
            let words = usize::from(u16::from_be_bytes([length[0], length[1]]));
            offset += 4 + 4 * words;
        }
        let mut end = packet.len();
        if padding {
            let pad = usize::from(*packet.last().ok_or(RtpError::Truncated)?);
            if pad == 0 || pad > end.saturating_sub(offset) {
                return Err(RtpError::Padding);
            }
            end -= pad;
        }
        let payload = packet.get(offset..end).ok_or(RtpError::Truncated)?;
        Ok(RtpPacket {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7f,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            payload,
        })
    }
}

/// Writes a minimal RTP packet (no CSRCs, extension or padding) into `out`:
/// what a media source of edgepbx (voicemail prompts, tones) sends.
pub fn write(
    out: &mut Vec<u8>,
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    payload: &[u8],
) {
    out.clear();
    out.reserve(12 + payload.len());
    out.push(0x80);
    out.push(if marker { 0x80 } else { 0 } | (payload_type & 0x7f));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_packet_parses_back() {
        let mut packet = Vec::new();
        write(&mut packet, true, 0, 65_535, 160, 0xdead_beef, &[0xff; 160]);
        let rtp = RtpPacket::parse(&packet).expect("valid");
        assert_eq!(
            (
                rtp.marker,
                rtp.payload_type,
                rtp.sequence,
                rtp.timestamp,
                rtp.ssrc
            ),
            (true, 0, 65_535, 160, 0xdead_beef)
        );
        assert_eq!(rtp.payload.len(), 160);
        assert_eq!(classify(&packet), Ok(Kind::Rtp));
    }

    #[test]
    fn csrcs_extension_and_padding_are_skipped() {
        let mut packet = vec![0xb1, 8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        packet.extend_from_slice(&[0, 0, 0, 9]); // one CSRC
        packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, one word
        packet.extend_from_slice(b"voice");
        packet.extend_from_slice(&[0, 0, 3]); // padding of 3
        let rtp = RtpPacket::parse(&packet).expect("valid");
        assert_eq!(rtp.payload, b"voice");
        assert_eq!(rtp.payload_type, 8);
    }

    #[test]
    fn rtcp_is_told_apart_and_garbage_refused() {
        // A receiver report: version 2, packet type 201.
        assert_eq!(classify(&[0x80, 201, 0, 1]), Ok(Kind::Rtcp));
        assert_eq!(classify(&[0x40, 0]), Err(RtpError::Version(1)));
        assert_eq!(classify(&[0x80]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x80; 11]), Err(RtpError::Truncated));
        let mut padded = vec![0xa0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 200];
        assert_eq!(RtpPacket::parse(&padded), Err(RtpError::Padding));
        padded[0] = 0x8f; // 15 CSRCs in a 14-byte packet
        assert_eq!(RtpPacket::parse(&padded), Err(RtpError::Truncated));
        for len in 0..40 {
            // Never a panic on any prefix of a valid packet.
            let mut packet = Vec::new();
            write(&mut packet, false, 0, 1, 2, 3, &[0; 20]);
            let _ = RtpPacket::parse(&packet[..len.min(packet.len())]);
        }
    }
}
