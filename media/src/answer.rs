//! edgepbx as the far end of the media in offer/answer (RFC 3264): what
//! it sends a caller whose call it takes itself (voicemail). Its answer
//! keeps one G.711 codec, the offerer's first, and telephone events when
//! offered, and rejects every other stream with port 0; to a caller that
//! offered nothing it offers PCMU, PCMA and telephone events, and
//! [`negotiate`] reads the caller's answer.

use std::net::{IpAddr, SocketAddr};

use crate::anchor::{AnchorError, audio_stream};
use crate::endpoint::{Codec, Law};
use crate::sdp::{Connection, Direction, Line, Media, Origin, SessionDescription};

/// What the endpoint needs to speak with a party, from its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The audio codec both sides use: the party's first G.711.
    pub codec: Codec,
    /// The payload type of telephone events, when the party lists them.
    pub telephone_event: Option<u8>,
    /// Where the party receives RTP; `None` when it gave no address yet.
    pub party: Option<SocketAddr>,
}

/// An answer and what the endpoint needs to speak it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The description to send to the party.
    pub description: SessionDescription,
    /// The codec, events and address of the party.
    pub negotiated: Negotiated,
}

/// The codec, events and address of a party's description (an offer, or
/// the answer to [`offer`]).
pub fn negotiate(description: &SessionDescription) -> Result<Negotiated, AnchorError> {
    negotiate_stream(description).map(|(_, n)| n)
}

fn negotiate_stream(description: &SessionDescription) -> Result<(usize, Negotiated), AnchorError> {
    let (index, party) = audio_stream(description)?;
    let audio = &description.media[index];
    let mut codec = None;
    let mut telephone_event = None;
    for pt in audio.formats.iter().filter_map(|f| f.parse::<u8>().ok()) {
        let Some(map) = audio.rtpmap(pt).filter(|m| m.clock_rate == 8000) else {
            continue;
        };
        let law = if map.encoding.eq_ignore_ascii_case("PCMU") {
            Some(Law::Mu)
        } else if map.encoding.eq_ignore_ascii_case("PCMA") {
            Some(Law::A)
        } else {
            None
        };
        match law {
            Some(law) if codec.is_none() => {
                codec = Some(Codec {
                    payload_type: pt,
                    law,
                });
            }
            None if telephone_event.is_none()
                && map.encoding.eq_ignore_ascii_case("telephone-event") =>
            {
                telephone_event = Some(pt);
            }
            _ => {}
        }
    }
    let codec = codec.ok_or(AnchorError::NoCommonCodec)?;
    Ok((
        index,
        Negotiated {
            codec,
            telephone_event,
            party,
        },
    ))
}

/// Answers `offer` with edgepbx's address `local`:`port`; `session_id`
/// names the description (its origin's id and version).
pub fn answer(
    offer: &SessionDescription,
    local: IpAddr,
    port: u16,
    session_id: u64,
) -> Result<Answer, AnchorError> {
    let (index, negotiated) = negotiate_stream(offer)?;
    let audio = &offer.media[index];
    let Negotiated {
        codec,
        telephone_event,
        ..
    } = negotiated;
    let mut ours = audio_media(port, &audio.proto, &[codec], telephone_event);
    ours.set_direction(match audio.direction() {
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        other => other,
    });
    let media = offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                ours.clone()
            } else {
                Media {
                    kind: m.kind.clone(),
                    port: 0,
                    proto: m.proto.clone(),
                    formats: m.formats.clone(),
                    connection: None,
                    lines: Vec::new(),
                }
            }
        })
        .collect();
    Ok(Answer {
        description: description(local, session_id, media),
        negotiated,
    })
}

/// The payload type edgepbx offers telephone events on.
const OFFERED_TELEPHONE_EVENT: u8 = 101;

/// edgepbx's offer to a party that offered nothing: PCMU, PCMA and
/// telephone events on `local`:`port`.
pub fn offer(local: IpAddr, port: u16, session_id: u64) -> SessionDescription {
    let codecs = [
        Codec {
            payload_type: 0,
            law: Law::Mu,
        },
        Codec {
            payload_type: 8,
            law: Law::A,
        },
    ];
    let mut audio = audio_media(port, "RTP/AVP", &codecs, Some(OFFERED_TELEPHONE_EVENT));
    audio.set_direction(Direction::SendRecv);
    description(local, session_id, vec![audio])
}

/// An audio stream on `port` with `codecs` and telephone events.
fn audio_media(port: u16, proto: &str, codecs: &[Codec], telephone_event: Option<u8>) -> Media {
    let mut formats = Vec::new();
    let mut lines = Vec::new();
    for codec in codecs {
        formats.push(codec.payload_type.to_string());
        lines.push(Line {
            kind: 'a',
            value: format!("rtpmap:{} {}/8000", codec.payload_type, codec.name()),
        });
    }
    if let Some(te) = telephone_event {
        formats.push(te.to_string());
        lines.push(Line {
            kind: 'a',
            value: format!("rtpmap:{te} telephone-event/8000"),
        });
        lines.push(Line {
            kind: 'a',
            value: format!("fmtp:{te} 0-15"),
        });
    }
    lines.push(Line {
        kind: 'a',
        value: "ptime:20".to_owned(),
    });
    Media {
        kind: "audio".to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        connection: None,
        lines,
    }
}

/// A description from edgepbx at `local` with `media`.
fn description(local: IpAddr, session_id: u64, media: Vec<Media>) -> SessionDescription {
    let addr_type = if local.is_ipv4() { "IP4" } else { "IP6" };
    SessionDescription {
        origin: Origin {
            username: "edgepbx".to_owned(),
            session_id: session_id.to_string(),
            session_version: session_id,
            addr_type: addr_type.to_owned(),
            address: local.to_string(),
        },
        session_name: "edgepbx".to_owned(),
        connection: Some(Connection {
            addr_type: addr_type.to_owned(),
            address: local.to_string(),
        }),
        lines: vec![Line {
            kind: 't',
            value: "0 0".to_owned(),
        }],
        media,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(text: &str) -> SessionDescription {
        SessionDescription::parse(text.replace('\n', "\r\n").as_bytes()).expect("valid offer")
    }

    #[test]
    fn answers_the_first_g711_with_telephone_events() {
        let o = sdp(
            "v=0\no=- 1 1 IN IP4 192.0.2.7\ns=-\nc=IN IP4 192.0.2.7\nt=0 0\n\
             m=video 50000 RTP/AVP 96\na=rtpmap:96 VP8/90000\n\
             m=audio 40000 RTP/AVP 9 8 0 96\na=rtpmap:9 G722/8000\n\
             a=rtpmap:96 telephone-event/8000\na=sendonly\n",
        );
        let a = answer(&o, IpAddr::from([127, 0, 0, 1]), 20_000, 42).expect("answer");
        assert_eq!(
            a.negotiated.codec,
            Codec {
                payload_type: 8,
                law: Law::A
            }
        );
        assert_eq!(a.negotiated.telephone_event, Some(96));
        assert_eq!(
            a.negotiated.party,
            Some(SocketAddr::from(([192, 0, 2, 7], 40_000)))
        );
        let text = a.description.to_string();
        assert!(text.contains("m=video 0 RTP/AVP 96\r\n"), "{text}");
        assert!(text.contains("m=audio 20000 RTP/AVP 8 96\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:8 PCMA/8000\r\n"), "{text}");
        assert!(text.contains("a=recvonly\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 127.0.0.1\r\n"), "{text}");
        // What we send parses back.
        assert!(SessionDescription::parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn our_offer_is_read_back_and_an_answer_to_it_negotiated() {
        let ours = super::offer(IpAddr::from([127, 0, 0, 1]), 30_000, 7);
        let text = ours.to_string();
        assert!(text.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{text}");
        let parsed = SessionDescription::parse(text.as_bytes()).expect("valid");
        assert_eq!(negotiate(&parsed).map(|n| n.codec.law), Ok(Law::Mu));
        let their_answer = sdp(
            "v=0\no=- 2 2 IN IP4 192.0.2.9\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\n\
             m=audio 5004 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000\n",
        );
        let n = negotiate(&their_answer).expect("negotiated");
        assert_eq!(n.codec.law, Law::A);
        assert_eq!(n.telephone_event, Some(101));
        assert_eq!(n.party, Some(SocketAddr::from(([192, 0, 2, 9], 5_004))));
    }

    #[test]
    fn refuses_what_it_cannot_speak() {
        let o = sdp(
            "v=0\no=- 1 1 IN IP4 192.0.2.7\ns=-\nc=IN IP4 192.0.2.7\nt=0 0\n\
             m=audio 40000 RTP/AVP 9\na=rtpmap:9 G722/8000\n",
        );
        let ip = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(answer(&o, ip, 1, 1), Err(AnchorError::NoCommonCodec));
        let o = sdp("v=0\no=- 1 1 IN IP4 192.0.2.7\ns=-\nt=0 0\nm=audio 4 RTP/AVP 0\n");
        assert_eq!(answer(&o, ip, 1, 1), Err(AnchorError::Address));
    }
}
