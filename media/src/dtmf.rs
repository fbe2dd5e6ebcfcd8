//! DTMF as it reaches edgepbx: RFC 4733 telephone events inside the RTP
//! stream, and SIP INFO bodies (`application/dtmf-relay`, the form Cisco
//! introduced and JsSIP and most desk phones send, and `application/dtmf`).
//!
//! A key press is one RFC 4733 event sent as several packets with the same
//! RTP timestamp (its start) and a growing duration, the last three marked
//! "end"; [`DtmfReceiver`] reports each press once, as soon as its first
//! packet arrives.

/// The key of a telephone event code (RFC 4733 §3.2): `0`–`9`, `*`, `#`,
/// `A`–`D`; `None` for the other events (tones, flash).
pub fn digit_of_event(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

use std::borrow::Cow;

/// The telephone event code of a key (RFC 4733 §3.2).
pub fn event_of_digit(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        c @ '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        c @ 'A'..='D' => Some(c as u8 - b'A' + 12),
        _ => None,
    }
}

/// The duration of an `application/dtmf-relay` INFO's key press, in
/// milliseconds (`Duration=` line), when it states one.
pub fn duration_of_info(body: &[u8]) -> Option<u32> {
    std::str::from_utf8(body).ok()?.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("duration")
            .then(|| value.trim().parse().ok())?
    })
}

/// Splices key presses into a stream of RTP packets on their way to one
/// party, as RFC 4733 events in the same source: each forwarded packet
/// goes through [`Splicer::forward`], which moves its sequence number past
/// the events spliced in so far, and [`Splicer::press`] makes the packets
/// of one press, numbered after the last packet forwarded and stamped one
/// frame after it.
#[derive(Debug, Default, Clone)]
pub struct Splicer {
    /// Packets spliced in so far: forwarded packets move up by as many.
    offset: u16,
    /// The source, sequence number and timestamp of the newest packet out.
    last: Option<(u32, u16, u32)>,
}

/// Timestamp units of one 20 ms frame at 8 kHz.
pub const FRAME: u32 = 160;

impl Splicer {
    /// A splicer that has seen nothing.
    pub fn new() -> Splicer {
        Splicer::default()
    }

    /// A forwarded RTP `packet` as it goes out: unchanged (not copied)
    /// until a press has been spliced in, renumbered after.
    pub fn forward<'a>(&mut self, packet: &'a [u8]) -> Cow<'a, [u8]> {
        let Ok(rtp) = crate::rtp::RtpPacket::parse(packet) else {
            return Cow::Borrowed(packet);
        };
        let sequence = rtp.sequence.wrapping_add(self.offset);
        let newer = self.last.is_none_or(|(ssrc, seq, _)| {
            ssrc != rtp.ssrc || (sequence.wrapping_sub(seq) as i16) > 0
        });
        if newer {
            self.last = Some((rtp.ssrc, sequence, rtp.timestamp));
        }
        if self.offset == 0 {
            return Cow::Borrowed(packet);
        }
        let mut renumbered = packet.to_vec();
        renumbered[2..4].copy_from_slice(&sequence.to_be_bytes());
        Cow::Owned(renumbered)
    }

    /// The packets of a press of `key` lasting `millis`, with payload type
    /// `payload_type`: empty for a key with no event, or before any packet
    /// has been forwarded (the source is unknown).
    pub fn press(&mut self, payload_type: u8, key: char, millis: u32) -> Vec<Vec<u8>> {
        let (Some(payloads), Some((ssrc, seq, ts))) = (press_payloads(key, millis), self.last)
        else {
            return Vec::new();
        };
        let start = ts.wrapping_add(FRAME);
        let packets: Vec<Vec<u8>> = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| {
                let mut packet = Vec::new();
                let number = seq.wrapping_add(i as u16 + 1);
                crate::rtp::write(
                    &mut packet,
                    i == 0,
                    payload_type,
                    number,
                    start,
                    ssrc,
                    payload,
                );
                packet
            })
            .collect();
        let count = packets.len() as u16;
        self.offset = self.offset.wrapping_add(count);
        self.last = Some((ssrc, seq.wrapping_add(count), start));
        packets
    }
}

/// The event payloads of a press of `key` lasting `millis` (40 ms to 2 s):
/// updates every 20 ms, then three end packets (RFC 4733 §2.5.1.4), all
/// with the press's start timestamp (the first with the marker bit).
/// `None` for a key with no event.
pub fn press_payloads(key: char, millis: u32) -> Option<Vec<[u8; 4]>> {
    let event = event_of_digit(key)?;
    let total = (millis.clamp(40, 2_000) * 8) as u16;
    let mut durations: Vec<(u16, bool)> = (1..)
        .map(|n: u32| (n * FRAME) as u16)
        .take_while(|d| *d < total)
        .map(|d| (d, false))
        .collect();
    durations.extend([(total, true); 3]);
    Some(
        durations
            .into_iter()
            .map(|(duration, end)| {
                let d = duration.to_be_bytes();
                [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
            })
            .collect(),
    )
}

/// One RFC 4733 telephone-event payload (the first four bytes; a packet
/// may carry redundant older events after them, which are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0–15 for DTMF keys).
    pub event: u8,
    /// The last packets of the event have this set.
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads a payload; `None` when it is shorter than an event.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let [event, flags, d0, d1, ..] = *payload else {
            return None;
        };
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

/// Turns the packets of telephone events into key presses, one per press.
#[derive(Debug, Default, Clone)]
pub struct DtmfReceiver {
    /// The start timestamp of the last event reported, with its code.
    last: Option<(u32, u8)>,
}

impl DtmfReceiver {
    /// A receiver that has heard nothing.
    pub fn new() -> DtmfReceiver {
        DtmfReceiver::default()
    }

    /// One telephone-event packet with its RTP timestamp: the key pressed,
    /// if this packet is the first heard of its press.
    pub fn handle(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        let digit = digit_of_event(event.event)?;
        if self.last == Some((timestamp, event.event)) {
            return None;
        }
        self.last = Some((timestamp, event.event));
        Some(digit)
    }
}

/// The key an INFO request carries, from its Content-Type and body:
/// `application/dtmf-relay` (`Signal=5` and `Duration=160` lines; some
/// phones write `*` and `#` as 10 and 11) or `application/dtmf` (the key
/// alone). `None` for any other body.
pub fn digit_of_info(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let signal = match media_type.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    match signal {
        "10" => Some('*'),
        "11" => Some('#'),
        _ => {
            let mut chars = signal.chars();
            let c = chars.next()?.to_ascii_uppercase();
            let valid = c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D');
            (chars.next().is_none() && valid).then_some(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(code: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [code, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    #[test]
    fn every_key_has_its_event_code() {
        let keys: String = (0..16).filter_map(digit_of_event).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        assert_eq!(digit_of_event(16), None);
    }

    #[test]
    fn a_press_sent_as_many_packets_is_one_key() {
        let mut receiver = DtmfReceiver::new();
        let mut keys = String::new();
        // "5" then "5" again (a new press has a new timestamp), then "#";
        // each press: growing durations, three end packets.
        for (ts, code) in [(1_000u32, 5u8), (3_000, 5), (5_000, 11)] {
            for d in [160u16, 320, 480] {
                keys.extend(receiver.handle(ts, &event(code, false, d)));
            }
            for _ in 0..3 {
                keys.extend(receiver.handle(ts, &event(code, true, 640)));
            }
        }
        assert_eq!(keys, "55#");
        assert_eq!(receiver.handle(9_000, &[1, 2]), None, "truncated");
        assert_eq!(receiver.handle(9_000, &event(16, false, 1)), None, "flash");
    }

    #[test]
    fn a_press_is_spliced_into_the_stream_it_joins() {
        let mut splicer = Splicer::new();
        assert!(splicer.press(101, '5', 100).is_empty(), "no stream yet");
        let mut audio = Vec::new();
        crate::rtp::write(&mut audio, false, 0, 500, 8_000, 42, &[0xff; 160]);
        assert!(matches!(splicer.forward(&audio), Cow::Borrowed(_)));
        let press = splicer.press(101, '5', 100);
        // 100 ms: updates at 20, 40, 60, 80 ms, then three ends at 100 ms.
        assert_eq!(press.len(), 7);
        let mut receiver = DtmfReceiver::new();
        let mut keys = String::new();
        for (i, packet) in press.iter().enumerate() {
            let rtp = crate::rtp::RtpPacket::parse(packet).expect("RTP");
            assert_eq!(
                (rtp.ssrc, rtp.payload_type, rtp.timestamp),
                (42, 101, 8_160)
            );
            assert_eq!(rtp.sequence, 501 + i as u16);
            assert_eq!(rtp.marker, i == 0);
            keys.extend(receiver.handle(rtp.timestamp, rtp.payload));
        }
        assert_eq!(keys, "5");
        let last = TelephoneEvent::parse(
            crate::rtp::RtpPacket::parse(&press[6])
                .expect("RTP")
                .payload,
        );
        assert_eq!(last.map(|e| (e.end, e.duration)), Some((true, 800)));
        // The next audio packet comes after the press.
        crate::rtp::write(&mut audio, false, 0, 501, 8_160, 42, &[0xff; 160]);
        let out = splicer.forward(&audio);
        assert_eq!(
            crate::rtp::RtpPacket::parse(&out).expect("RTP").sequence,
            508
        );
        assert_eq!(event_of_digit('#'), Some(11));
        assert_eq!(event_of_digit('x'), None);
        assert_eq!(duration_of_info(b"Signal=5\r\nDuration=250"), Some(250));
    }

    #[test]
    fn info_bodies_of_both_kinds() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            digit_of_info(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(digit_of_info(relay, b"Signal= #\nDuration=100"), Some('#'));
        assert_eq!(digit_of_info(relay, b"signal=10\r\n"), Some('*'));
        assert_eq!(digit_of_info(relay, b"Signal=11"), Some('#'));
        assert_eq!(digit_of_info("Application/DTMF; x=y", b"7\r\n"), Some('7'));
        assert_eq!(digit_of_info(relay, b"Duration=160"), None);
        assert_eq!(digit_of_info(relay, b"Signal=55"), None);
        assert_eq!(digit_of_info(relay, b"Signal=x"), None);
        assert_eq!(digit_of_info("text/plain", b"5"), None);
        assert_eq!(digit_of_info(relay, &[0xff, 0xfe]), None);
    }
}
