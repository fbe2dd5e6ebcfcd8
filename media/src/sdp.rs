//! Session descriptions (SDP, RFC 8866): parsing, the views media
//! anchoring needs, and serialization.
//!
//! A B2BUA that anchors media rewrites each side's offer and answer: the
//! connection address and ports become its own, the rest passes through.
//! So the model keeps every line it does not interpret, in order, and
//! interprets only what anchoring and codec negotiation read: origin,
//! connection, media lines, `rtpmap` and the direction attributes.

use std::fmt;

/// Largest description accepted, in bytes, counted as
/// [`SessionDescription::to_bytes`] writes it (CRLF after every line).
pub const MAX_SDP_BYTES: usize = 16 * 1024;
/// Most lines accepted, empty lines aside.
pub const MAX_SDP_LINES: usize = 256;

/// Why a description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Larger than [`MAX_SDP_BYTES`] or with more lines than [`MAX_SDP_LINES`].
    #[error("the session description is too large")]
    TooLarge,
    /// Not UTF-8.
    #[error("the session description is not UTF-8")]
    NotText,
    /// A line is not `<letter>=<value>`.
    #[error("line {line} is not of the form x=value")]
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A line SDP requires is missing (`v=`, `o=`, `s=`, `t=`).
    #[error("the session description has no {0}= line")]
    Missing(char),
    /// A line's value does not have its fields.
    #[error("line {line} ({kind}=) is malformed")]
    Field {
        /// 1-based line number.
        line: usize,
        /// Its type letter.
        kind: char,
    },
}

/// `c=`: where media is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// The address (for multicast, with its TTL/count suffix, as written).
    pub address: String,
}

/// `o=`: who made the description, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name (`-` when none).
    pub username: String,
    /// Session id.
    pub session_id: String,
    /// Version, raised by every change an offerer makes.
    pub session_version: u64,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// The originator's address.
    pub address: String,
}

/// Which way media flows (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// Only from the describer.
    SendOnly,
    /// Only to the describer.
    RecvOnly,
    /// Neither (hold).
    Inactive,
}

impl Direction {
    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// An `a=rtpmap:` mapping of a payload type to a codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type.
    pub payload_type: u8,
    /// Encoding name, e.g. `PCMU`.
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
}

/// One line that is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// An `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, ...
    pub kind: String,
    /// The port (0: the stream is rejected or disabled).
    pub port: u16,
    /// The transport, e.g. `RTP/AVP`.
    pub proto: String,
    /// Formats (payload types for RTP), in preference order.
    pub formats: Vec<String>,
    /// `c=` of this section, if it has one.
    pub connection: Option<Connection>,
    /// Every other line of the section, in order (`i=`, `b=`, `k=`, `a=`).
    pub lines: Vec<Line>,
}

impl Media {
    /// The codec of a payload type: from `rtpmap`, or the static
    /// assignment of RFC 3551 for the G.711 and telephone types.
    pub fn rtpmap(&self, payload_type: u8) -> Option<RtpMap> {
        let declared = self.attributes("rtpmap").find_map(|value| {
            let (pt, rest) = value.split_once(' ')?;
            if pt.trim().parse::<u8>().ok()? != payload_type {
                return None;
            }
            let mut parts = rest.trim().split('/');
            let encoding = parts.next()?.to_owned();
            let clock_rate = parts.next()?.parse().ok()?;
            Some(RtpMap {
                payload_type,
                encoding,
                clock_rate,
            })
        });
        declared.or_else(|| {
            let encoding = match payload_type {
                0 => "PCMU",
                8 => "PCMA",
                _ => return None,
            };
            Some(RtpMap {
                payload_type,
                encoding: encoding.to_owned(),
                clock_rate: 8000,
            })
        })
    }

    /// The formats of this offered stream that an answerer supporting
    /// `supported` (encoding name, clock rate) accepts, in the offerer's
    /// order of preference (RFC 3264 §6.1). Empty: reject the stream.
    pub fn accepted_formats(&self, supported: &[(&str, u32)]) -> Vec<String> {
        self.formats
            .iter()
            .filter(|format| {
                format
                    .parse::<u8>()
                    .ok()
                    .and_then(|pt| self.rtpmap(pt))
                    .is_some_and(|map| {
                        supported.iter().any(|(name, rate)| {
                            map.encoding.eq_ignore_ascii_case(name) && map.clock_rate == *rate
                        })
                    })
            })
            .cloned()
            .collect()
    }

    /// The values of every `a=<name>:<value>` (or `a=<name>`, as "").
    pub fn attributes<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(|l| l.kind == 'a')
            .filter_map(move |l| {
                let (key, value) = l.value.split_once(':').unwrap_or((&l.value, ""));
                key.eq_ignore_ascii_case(name).then_some(value)
            })
    }

    /// The stream's direction (`sendrecv` when unstated).
    pub fn direction(&self) -> Direction {
        self.lines
            .iter()
            .filter(|l| l.kind == 'a')
            .find_map(|l| match l.value.as_str() {
                "sendrecv" => Some(Direction::SendRecv),
                "sendonly" => Some(Direction::SendOnly),
                "recvonly" => Some(Direction::RecvOnly),
                "inactive" => Some(Direction::Inactive),
                _ => None,
            })
            .unwrap_or(Direction::SendRecv)
    }

    /// Sets the direction, replacing any direction attribute.
    pub fn set_direction(&mut self, direction: Direction) {
        self.lines.retain(|l| {
            !(l.kind == 'a'
                && matches!(
                    l.value.as_str(),
                    "sendrecv" | "sendonly" | "recvonly" | "inactive"
                ))
        });
        self.lines.push(Line {
            kind: 'a',
            value: direction.attribute().to_owned(),
        });
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Other session-level lines, in order (`i= u= e= p= b= t= r= z= k= a=`).
    pub lines: Vec<Line>,
    /// The media sections.
    pub media: Vec<Media>,
}

impl SessionDescription {
    /// Parses a description, within [`MAX_SDP_BYTES`] and [`MAX_SDP_LINES`].
    ///
    /// The limits are checked on the description as [`Self::to_bytes`]
    /// writes it, which is never longer, so that what is accepted can be
    /// written and read again.
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        if bytes.len() > MAX_SDP_BYTES {
            return Err(SdpError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotText)?;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut lines = Vec::new();
        let mut media: Vec<Media> = Vec::new();
        let mut seen_version = false;
        let mut seen_timing = false;
        let (mut kept_lines, mut kept_bytes) = (0, 0);
        for (index, raw) in text.split('\n').enumerate() {
            let number = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            kept_lines += 1;
            kept_bytes += raw.len() + 2;
            if kept_lines > MAX_SDP_LINES || kept_bytes > MAX_SDP_BYTES {
                return Err(SdpError::TooLarge);
            }
            let mut chars = raw.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(SdpError::Syntax { line: number });
            };
            if !kind.is_ascii_lowercase() {
                return Err(SdpError::Syntax { line: number });
            }
            let value = chars.as_str().to_owned();
            let field = || SdpError::Field { line: number, kind };
            match (kind, media.last_mut()) {
                ('v', None) => {
                    if value != "0" {
                        return Err(field());
                    }
                    seen_version = true;
                }
                ('o', None) => origin = Some(parse_origin(&value).ok_or_else(field)?),
                ('s', None) => session_name = Some(value),
                ('c', None) => connection = Some(parse_connection(&value).ok_or_else(field)?),
                ('m', _) => media.push(parse_media(&value).ok_or_else(field)?),
                ('c', Some(section)) => {
                    section.connection = Some(parse_connection(&value).ok_or_else(field)?);
                }
                (_, Some(section)) => section.lines.push(Line { kind, value }),
                (_, None) => {
                    seen_timing |= kind == 't';
                    lines.push(Line { kind, value });
                }
            }
        }
        if !seen_version {
            return Err(SdpError::Missing('v'));
        }
        if !seen_timing {
            return Err(SdpError::Missing('t'));
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Missing('o'))?,
            session_name: session_name.ok_or(SdpError::Missing('s'))?,
            connection,
            lines,
            media,
        })
    }

    /// The serialized description (CRLF line ends, RFC 8866 order).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, version, "IN", addr_type, address] = fields.as_slice() else {
        return None;
    };
    Some(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        session_version: version.parse().ok()?,
        addr_type: (*addr_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_connection(value: &str) -> Option<Connection> {
    let fields: Vec<&str> = value.split_ascii_whitespace().collect();
    let ["IN", addr_type, address] = fields.as_slice() else {
        return None;
    };
    Some(Connection {
        addr_type: (*addr_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_media(value: &str) -> Option<Media> {
    let mut fields = value.split_ascii_whitespace();
    let kind = fields.next()?.to_owned();
    // `port/count` is for layered multicast; a count is refused here.
    let port = fields.next()?.parse().ok()?;
    let proto = fields.next()?.to_owned();
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return None;
    }
    Some(Media {
        kind,
        port,
        proto,
        formats,
        connection: None,
        lines: Vec::new(),
    })
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c=IN {} {}\r\n", self.addr_type, self.address)
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.addr_type, o.address, self.session_name
        )?;
        // RFC 8866 §5 order: i u e p, then c, then b t r z k a.
        for line in self.lines.iter().filter(|l| "iuep".contains(l.kind)) {
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        if let Some(connection) = &self.connection {
            write!(f, "{connection}")?;
        }
        for line in self.lines.iter().filter(|l| !"iuep".contains(l.kind)) {
            write!(f, "{}={}\r\n", line.kind, line.value)?;
        }
        for m in &self.media {
            write!(
                f,
                "m={} {} {} {}\r\n",
                m.kind,
                m.port,
                m.proto,
                m.formats.join(" ")
            )?;
            for line in m.lines.iter().filter(|l| l.kind == 'i') {
                write!(f, "i={}\r\n", line.value)?;
            }
            if let Some(connection) = &m.connection {
                write!(f, "{connection}")?;
            }
            for line in m.lines.iter().filter(|l| l.kind != 'i') {
                write!(f, "{}={}\r\n", line.kind, line.value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r
o=- 3345 3345 IN IP4 192.0.2.7\r
s=call\r
c=IN IP4 192.0.2.7\r
t=0 0\r
m=audio 40000 RTP/AVP 0 8 101\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-16\r
a=ptime:20\r
a=sendrecv\r
m=video 0 RTP/AVP 96\r
a=rtpmap:96 H264/90000\r
";

    #[test]
    fn an_offer_round_trips_and_reads_as_it_should() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).expect("valid");
        assert_eq!(String::from_utf8_lossy(&sdp.to_bytes()), OFFER);
        assert_eq!(sdp.origin.session_version, 3345);
        assert_eq!(
            sdp.connection.as_ref().map(|c| c.address.as_str()),
            Some("192.0.2.7")
        );
        let audio = &sdp.media[0];
        assert_eq!((audio.port, audio.formats.len()), (40_000, 3));
        assert_eq!(audio.rtpmap(0).map(|m| m.encoding), Some("PCMU".into()));
        assert_eq!(audio.rtpmap(8).map(|m| m.encoding), Some("PCMA".into()));
        assert_eq!(
            audio.rtpmap(101),
            Some(RtpMap {
                payload_type: 101,
                encoding: "telephone-event".into(),
                clock_rate: 8000
            })
        );
        assert_eq!(audio.rtpmap(97), None);
        assert_eq!(audio.direction(), Direction::SendRecv);
        assert_eq!(sdp.media[1].port, 0);
    }

    #[test]
    fn the_answer_keeps_what_both_sides_speak_in_the_offerers_order() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).expect("valid");
        let audio = &sdp.media[0];
        let ours = [("PCMA", 8000), ("telephone-event", 8000), ("PCMU", 8000)];
        assert_eq!(audio.accepted_formats(&ours), ["0", "8", "101"]);
        assert_eq!(audio.accepted_formats(&[("PCMA", 8000)]), ["8"]);
        assert!(audio.accepted_formats(&[("opus", 48_000)]).is_empty());
        assert!(sdp.media[1].accepted_formats(&ours).is_empty());
    }

    #[test]
    fn anchoring_rewrites_address_port_direction_and_version() {
        let mut sdp = SessionDescription::parse(OFFER.as_bytes()).expect("valid");
        sdp.connection = Some(Connection {
            addr_type: "IP4".into(),
            address: "203.0.113.1".into(),
        });
        sdp.origin.session_version += 1;
        sdp.media[0].port = 30_000;
        sdp.media[0].set_direction(Direction::SendOnly);
        let text = sdp.to_string();
        assert!(text.contains("c=IN IP4 203.0.113.1\r\n"), "{text}");
        assert!(
            text.contains("o=- 3345 3346 IN IP4 192.0.2.7\r\n"),
            "{text}"
        );
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(
            text.contains("a=sendonly\r\n") && !text.contains("a=sendrecv"),
            "{text}"
        );
        let again = SessionDescription::parse(text.as_bytes()).expect("valid");
        assert_eq!(again.media[0].direction(), Direction::SendOnly);
    }

    /// Broke the `sdp` fuzz target's round trip (an input made for it;
    /// libFuzzer did not get there in 10 minutes): a description of the
    /// most lines without a final line end was accepted, but not once
    /// written with one; and bare line feeds, written as CRLF, could take
    /// it past the bytes.
    #[test]
    fn what_is_accepted_is_written_within_the_limits() {
        let head = "v=0\no=- 1 1 IN IP4 a\ns=x\nt=0 0\n";
        let most = format!("{head}{}a=x", "a=x\n".repeat(MAX_SDP_LINES - 5));
        let sdp = SessionDescription::parse(most.as_bytes()).expect("the most lines");
        assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
        let too_many = format!("{most}\na=x");
        assert_eq!(
            SessionDescription::parse(too_many.as_bytes()),
            Err(SdpError::TooLarge)
        );

        // `head` and an attribute line take 39 bytes with CRLF.
        let line = |len: usize| format!("{head}a={}\n", "x".repeat(len));
        let longest = line(MAX_SDP_BYTES - 39);
        let sdp = SessionDescription::parse(longest.as_bytes()).expect("the longest");
        assert_eq!(sdp.to_bytes().len(), MAX_SDP_BYTES);
        assert_eq!(SessionDescription::parse(&sdp.to_bytes()), Ok(sdp));
        let too_long = line(MAX_SDP_BYTES - 38);
        assert!(too_long.len() < MAX_SDP_BYTES);
        assert_eq!(
            SessionDescription::parse(too_long.as_bytes()),
            Err(SdpError::TooLarge)
        );
    }

    #[test]
    fn bad_descriptions_are_refused() {
        let cases: [(&str, SdpError); 6] = [
            (
                "o=- 1 1 IN IP4 a\r\ns=x\r\nt=0 0\r\n",
                SdpError::Missing('v'),
            ),
            ("v=0\r\ns=x\r\nt=0 0\r\n", SdpError::Missing('o')),
            ("v=0\r\no=- 1 1 IN IP4 a\r\ns=x\r\n", SdpError::Missing('t')),
            ("v=1\r\n", SdpError::Field { line: 1, kind: 'v' }),
            ("v=0\r\nnonsense\r\n", SdpError::Syntax { line: 2 }),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\ns=x\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
                SdpError::Field { line: 5, kind: 'm' },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                SessionDescription::parse(text.as_bytes()),
                Err(expected),
                "{text:?}"
            );
        }
        assert_eq!(
            SessionDescription::parse(&[0xff, 0xfe]),
            Err(SdpError::NotText)
        );
        let huge = "a=x\r\n".repeat(MAX_SDP_LINES + 1);
        assert_eq!(
            SessionDescription::parse(format!("v=0\r\n{huge}").as_bytes()),
            Err(SdpError::TooLarge)
        );
    }
}
