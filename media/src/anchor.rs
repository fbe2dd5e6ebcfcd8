//! Media anchoring of one description: what a B2BUA sends the other party
//! when media flows through its own ports.
//!
//! The first audio stream is anchored: its address and port become
//! edgepbx's, its formats are cut to the codecs the relay carries (so both
//! legs agree on something the relay can pass without transcoding), and
//! attributes that only make sense between the original parties (`rtcp`,
//! `rtcp-mux`, ICE) are removed. Every other stream is disabled (port 0,
//! RFC 3264 §8.2), since nothing would relay it.

use std::net::{IpAddr, SocketAddr};

use crate::sdp::{Connection, Line, Media, SessionDescription};

/// The codecs a relayed call may use: G.711 μ-law and A-law, and DTMF
/// events (RFC 4733), which ride along with either.
pub const RELAYED_CODECS: &[(&str, u32)] =
    &[("PCMU", 8000), ("PCMA", 8000), ("telephone-event", 8000)];

/// Attributes dropped from an anchored stream: they describe the original
/// party's transport, which the other party never sees.
const TRANSPORT_ATTRIBUTES: &[&str] = &[
    "rtcp",
    "rtcp-mux",
    "candidate",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "remote-candidates",
];

/// Why a description cannot be anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// No active audio stream over RTP/AVP.
    #[error("the description has no active RTP/AVP audio stream")]
    NoAudio,
    /// The audio stream offers no codec the relay carries.
    #[error("no codec in common (edgepbx relays PCMU and PCMA)")]
    NoCommonCodec,
    /// The stream's connection address is not an IP address.
    #[error("the audio stream's connection address is not an IP address")]
    Address,
}

/// An anchored description and what the relay needs from the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// The description to send to the other party.
    pub description: SessionDescription,
    /// Where the describing party receives RTP; `None` when it announced
    /// no address yet (`0.0.0.0`, RFC 2543 hold).
    pub party: Option<SocketAddr>,
}

/// Anchors `party`'s description on `local`:`rtp_port` (RTCP on the next
/// port), keeping only `codecs` (encoding name, clock rate).
pub fn anchor(
    party: &SessionDescription,
    local: IpAddr,
    rtp_port: u16,
    codecs: &[(&str, u32)],
) -> Result<Anchored, AnchorError> {
    let (index, announced) = audio_stream(party)?;
    let audio = &party.media[index];
    let formats = audio.accepted_formats(codecs);
    let has_codec = formats.iter().any(|f| {
        f.parse::<u8>()
            .ok()
            .and_then(|pt| audio.rtpmap(pt))
            .is_some_and(|map| !map.encoding.eq_ignore_ascii_case("telephone-event"))
    });
    if !has_codec {
        return Err(AnchorError::NoCommonCodec);
    }
    let ours = Connection {
        addr_type: if local.is_ipv4() { "IP4" } else { "IP6" }.to_owned(),
        address: local.to_string(),
    };
    let mut description = party.clone();
    description.origin.addr_type = ours.addr_type.clone();
    description.origin.address = ours.address.clone();
    description.connection = Some(ours);
    for (i, media) in description.media.iter_mut().enumerate() {
        if i == index {
            anchor_stream(media, rtp_port, formats.clone());
        } else {
            media.port = 0;
            media.connection = None;
        }
    }
    Ok(Anchored {
        description,
        party: announced,
    })
}

/// Where the describing party receives RTP: its first active RTP/AVP audio
/// stream's address; `None` without one, or for `0.0.0.0` (RFC 2543 hold).
pub fn receives_at(party: &SessionDescription) -> Option<SocketAddr> {
    audio_stream(party).ok().and_then(|(_, address)| address)
}

/// The first active RTP/AVP audio stream of a description, and where its
/// party receives (`None` for `0.0.0.0`, RFC 2543 hold).
pub(crate) fn audio_stream(
    party: &SessionDescription,
) -> Result<(usize, Option<SocketAddr>), AnchorError> {
    let index = party
        .media
        .iter()
        .position(|m| m.kind == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/AVP"))
        .ok_or(AnchorError::NoAudio)?;
    let audio = &party.media[index];
    let connection = audio
        .connection
        .as_ref()
        .or(party.connection.as_ref())
        .ok_or(AnchorError::Address)?;
    let ip: IpAddr = connection
        .address
        .parse()
        .map_err(|_| AnchorError::Address)?;
    Ok((
        index,
        (!ip.is_unspecified()).then(|| SocketAddr::new(ip, audio.port)),
    ))
}

/// Points one stream at our port with only `formats`.
fn anchor_stream(media: &mut Media, rtp_port: u16, formats: Vec<String>) {
    media.port = rtp_port;
    media.connection = None;
    media.lines.retain(|line| keep_line(line, &formats));
    media.formats = formats;
}

fn keep_line(line: &Line, formats: &[String]) -> bool {
    if line.kind != 'a' {
        return true;
    }
    let (name, value) = line.value.split_once(':').unwrap_or((&line.value, ""));
    if TRANSPORT_ATTRIBUTES
        .iter()
        .any(|a| a.eq_ignore_ascii_case(name))
    {
        return false;
    }
    if name.eq_ignore_ascii_case("rtpmap") || name.eq_ignore_ascii_case("fmtp") {
        let format = value.split_whitespace().next().unwrap_or("");
        return formats.iter().any(|f| f == format);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 9 0 8 101\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=rtcp:49171\r\n\
a=rtcp-mux\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
m=video 51372 RTP/AVP 99\r\n\
a=rtpmap:99 H264/90000\r\n";

    fn offer() -> SessionDescription {
        SessionDescription::parse(OFFER.as_bytes()).expect("valid SDP")
    }

    #[test]
    fn audio_is_anchored_on_our_port_with_relayable_codecs() {
        let local: IpAddr = "192.0.2.1".parse().expect("literal");
        let anchored = anchor(&offer(), local, 30_000, RELAYED_CODECS).expect("anchored");
        assert_eq!(
            anchored.party,
            Some("198.51.100.7:49170".parse().expect("literal"))
        );
        let text = anchored.description.to_string();
        assert!(text.contains("c=IN IP4 192.0.2.1\r\n"), "{text}");
        assert!(
            text.contains("o=alice 2890844526 2890844526 IN IP4 192.0.2.1\r\n"),
            "{text}"
        );
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(text.contains("a=fmtp:101 0-16\r\n"), "{text}");
        assert!(text.contains("a=ptime:20\r\n"), "{text}");
        assert!(text.contains("m=video 0 RTP/AVP 99\r\n"), "{text}");
        for gone in ["G722", "a=rtcp", "198.51.100.7"] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
    }

    #[test]
    fn nothing_relayable_is_refused() {
        let local: IpAddr = "192.0.2.1".parse().expect("literal");
        let only_g722 = OFFER.replace("RTP/AVP 9 0 8 101", "RTP/AVP 9 101");
        let sdp = SessionDescription::parse(only_g722.as_bytes()).expect("valid SDP");
        assert_eq!(
            anchor(&sdp, local, 30_000, RELAYED_CODECS),
            Err(AnchorError::NoCommonCodec)
        );
        let no_audio = OFFER.replace("m=audio 49170", "m=audio 0");
        let sdp = SessionDescription::parse(no_audio.as_bytes()).expect("valid SDP");
        assert_eq!(
            anchor(&sdp, local, 30_000, RELAYED_CODECS),
            Err(AnchorError::NoAudio)
        );
    }

    #[test]
    fn hold_with_a_null_address_announces_nothing() {
        let local: IpAddr = "192.0.2.1".parse().expect("literal");
        let held = OFFER.replace("c=IN IP4 198.51.100.7", "c=IN IP4 0.0.0.0");
        let sdp = SessionDescription::parse(held.as_bytes()).expect("valid SDP");
        let anchored = anchor(&sdp, local, 30_000, RELAYED_CODECS).expect("anchored");
        assert_eq!(anchored.party, None);
    }
}
