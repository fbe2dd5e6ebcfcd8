//! Browsers in calls: a party whose description is WebRTC (DTLS-SRTP,
//! ICE) gets a WebRTC leg on its side of the call's media slot, made here
//! and handed to the relay; the other party sees plain RTP, as with any
//! anchored call. A browser caller is answered by its leg once the callee
//! answers (with the codec the callee chose); a browser callee is offered
//! a leg carrying what the caller offered, and its answer completes it.

use std::net::SocketAddr;
use std::time::Instant;

use edgepbx_media::answer::Negotiated;
use edgepbx_media::relay::Side;
use edgepbx_media::sdp::{Direction, SessionDescription};
use edgepbx_media::webrtc::{self, WebRtcLeg};
use tracing::warn;

use super::{Call, Calls, Cx, side_index};
use crate::output::{MediaCommand, Output};
use crate::peer::Peer;

/// The WebRTC leg offered on a browser's branch, and the offer it made.
#[derive(Debug)]
pub(super) struct BrowserOffer {
    leg: Box<WebRtcLeg>,
    sdp: String,
}

/// Whether a device is a browser: it registered over a WebSocket, so it
/// speaks WebRTC media (RFC 7118 clients do).
pub(super) fn is_browser(peer: &Peer) -> bool {
    crate::digest::is_websocket(peer)
}

impl Calls {
    /// The offer for a browser's branch: a WebRTC leg on the call's B port
    /// carrying the codecs of `caller` (the caller's anchored offer).
    pub(super) fn browser_offer(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &Call,
        peer: &Peer,
        caller: &SessionDescription,
    ) -> Result<(Vec<u8>, BrowserOffer), String> {
        let media = call.media.ok_or("no media ports are free")?;
        let local = SocketAddr::new(cx.sig.media_ip(peer), media.b_port);
        let formats = webrtc::formats_of(caller);
        if formats.codecs.is_empty() {
            return Err("the caller offered no G.711 for the browser".into());
        }
        let (leg, sdp) =
            WebRtcLeg::offer(now, &self.identity, local, &formats).map_err(|e| e.to_string())?;
        Ok((
            sdp.clone().into_bytes(),
            BrowserOffer {
                leg: Box::new(leg),
                sdp,
            },
        ))
    }

    /// The browser of branch `index` answered with `body`: its leg goes to
    /// the relay as side B. Returns whether it could.
    pub(super) fn browser_answered(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        index: usize,
        body: &[u8],
    ) -> bool {
        let Some(mut offer) = call.branches[index].browser.take() else {
            return false;
        };
        let answer = String::from_utf8_lossy(body);
        if let Err(error) = offer.leg.accept_answer(now, &answer) {
            warn!(call = call.id, %error, "the browser's answer is not usable");
            return false;
        }
        call.browser_sdp[side_index(Side::B)] = Some(offer.sdp);
        cx.sig.push(Output::Media(MediaCommand::WebRtc {
            call: call.id,
            side: Side::B,
            leg: offer.leg,
        }));
        true
    }

    /// The answer to a browser caller, made when the other party's
    /// (plain) description `callee` arrives: its leg goes to the relay as
    /// side A. Later descriptions repeat the first answer (early media,
    /// then the 2xx).
    pub(super) fn answer_browser_caller(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        callee: &SessionDescription,
    ) -> Option<Vec<u8>> {
        if let Some(sent) = &call.browser_sdp[side_index(Side::A)] {
            return Some(sent.clone().into_bytes());
        }
        let offer = call.browser_offer.as_deref()?;
        let media = call.media?;
        let local = SocketAddr::new(cx.sig.media_ip(&call.a_peer), media.a_port);
        let formats = webrtc::formats_of(callee);
        let (leg, answer) = match WebRtcLeg::answer(now, &self.identity, local, offer, &formats) {
            Ok(made) => made,
            Err(error) => {
                warn!(call = call.id, %error, "cannot answer the browser");
                return None;
            }
        };
        cx.sig.push(Output::Media(MediaCommand::WebRtc {
            call: call.id,
            side: Side::A,
            leg: Box::new(leg),
        }));
        call.browser_sdp[side_index(Side::A)] = Some(answer.clone());
        Some(answer.into_bytes())
    }

    /// The answer to a browser caller that edgepbx serves itself
    /// (voicemail) with `negotiated`'s codec, and the leg to put in front
    /// of the endpoint (the driver gets it after the `Serve`).
    pub(super) fn answer_browser_for_service(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        negotiated: &Negotiated,
    ) -> Option<(Vec<u8>, Box<WebRtcLeg>)> {
        let offer = call.browser_offer.as_deref()?;
        let media = call.media?;
        let local = SocketAddr::new(cx.sig.media_ip(&call.a_peer), media.a_port);
        let codec = if negotiated.codec.name().eq_ignore_ascii_case("PCMA") {
            webrtc::G711::Pcma
        } else {
            webrtc::G711::Pcmu
        };
        let formats = webrtc::Formats {
            codecs: vec![codec],
            telephone_event: negotiated.telephone_event,
        };
        match WebRtcLeg::answer(now, &self.identity, local, offer, &formats) {
            Ok((leg, answer)) => {
                call.browser_sdp[side_index(Side::A)] = Some(answer.clone());
                Some((answer.into_bytes(), Box::new(leg)))
            }
            Err(error) => {
                warn!(call = call.id, %error, "cannot answer the browser for voicemail");
                None
            }
        }
    }

    /// A description for browser party `to` carrying the other party's
    /// `description` (a re-INVITE's offer, or the answer to the
    /// browser's): the browser's leg stays as it is, only the direction
    /// changes.
    pub(super) fn describe_to_browser(
        call: &mut Call,
        to: Side,
        description: &SessionDescription,
        offer: bool,
    ) -> Option<Vec<u8>> {
        let ours = call.browser_sdp[side_index(to)].as_deref()?;
        let direction = description
            .media
            .iter()
            .find(|m| m.kind == "audio")
            .map_or(Direction::SendRecv, |m| m.direction());
        let again = webrtc::redescribe(ours, direction, offer)?;
        call.browser_sdp[side_index(to)] = Some(again.clone());
        Some(again.into_bytes())
    }
}
