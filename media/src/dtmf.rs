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
