//! Media anchoring: each party's description is rewritten to a media slot
//! whose ports the driver relays (G.711 and telephone events only, so both
//! legs agree), and the relay is told where each party receives. Slots are
//! bound by the driver before they are offered and kept ready a few at a
//! time, so no offer waits for a socket.

use std::collections::VecDeque;
use std::time::Instant;

use edgepbx_media::anchor::{AnchorError, RELAYED_CODECS, anchor, receives_at};
use edgepbx_media::relay::{Event as RelayEvent, Side};
use edgepbx_media::sdp::{Direction, SessionDescription};
use edgepbx_media::webrtc;
use tracing::{debug, info};

use super::webrtc::{BrowserOffer, is_browser};
use super::{Call, Calls, Cx, EndCause, side_index};
use crate::output::{MediaCommand, MediaSlot, Output};
use crate::peer::Peer;
use crate::signalling::Signalling;

/// Slots kept bound and ready. One call takes one, and the driver binds the
/// next before it hands the engine another input.
const READY_SLOTS: usize = 8;

/// Media slots the driver has bound for calls to come.
#[derive(Debug, Default)]
pub(crate) struct MediaSlots {
    ready: VecDeque<MediaSlot>,
    /// Asked of the driver and not yet handed over.
    requested: usize,
}

impl MediaSlots {
    /// Asks the driver for slots up to [`READY_SLOTS`].
    pub fn replenish(&mut self, sig: &mut Signalling) {
        let have = self.ready.len() + self.requested;
        if have < READY_SLOTS {
            let count = READY_SLOTS - have;
            self.requested += count;
            sig.push(Output::Media(MediaCommand::Reserve { count }));
        }
    }

    /// The driver bound a slot (`None`: it could not).
    pub fn reserved(&mut self, slot: Option<MediaSlot>) {
        self.requested = self.requested.saturating_sub(1);
        if let Some(slot) = slot {
            self.ready.push_back(slot);
        }
    }

    /// A ready slot, asking for the next.
    pub(super) fn take(&mut self, sig: &mut Signalling) -> Option<MediaSlot> {
        let slot = self.ready.pop_front();
        self.replenish(sig);
        slot
    }
}

impl Calls {
    /// The description a branch is offered: the caller's own (direct
    /// media), or anchored on the call's B-side port; a browser's branch is
    /// offered a WebRTC leg on that port.
    pub(super) fn offer_for_branch(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        peer: &Peer,
        direct: bool,
    ) -> Result<(Option<Vec<u8>>, Option<BrowserOffer>), String> {
        let browser = is_browser(peer);
        if direct && !browser && call.browser_offer.is_none() {
            return Ok((call.offer.as_ref().map(SessionDescription::to_bytes), None));
        }
        self.media_slot(cx, call)
            .ok_or_else(|| "no media ports are free".to_owned())?;
        let (Some(offer), Some(media)) = (&call.offer, call.media) else {
            if browser {
                return Err("a browser is called with an offer only".into());
            }
            // Offerless INVITE: the callee offers in its 2xx.
            return Ok((None, None));
        };
        let ip = cx.sig.media_ip(peer);
        // A caller answered by edgepbx already agreed on one codec.
        let agreed;
        let codecs = match call.caller_codec {
            Some(codec) => {
                agreed = [(codec.name(), 8000), ("telephone-event", 8000)];
                &agreed[..]
            }
            None => RELAYED_CODECS,
        };
        let anchored = anchor(offer, ip, media.b_port, codecs).map_err(|e| e.to_string())?;
        if let Some(party) = anchored.party {
            announce(cx, call, Side::A, party, call.a_peer.addr().ip());
        }
        if browser {
            let (body, offer) = self.browser_offer(now, cx, call, peer, &anchored.description)?;
            return Ok((Some(body), Some(offer)));
        }
        Ok((Some(anchored.description.to_bytes()), None))
    }

    /// The call's media slot, its relay started on first use; `None` when
    /// no slot is free.
    pub(super) fn media_slot(&mut self, cx: &mut Cx<'_>, call: &mut Call) -> Option<MediaSlot> {
        if call.media.is_none() {
            let slot = self.media.take(cx.sig)?;
            cx.sig.push(Output::Media(MediaCommand::Start {
                call: call.id,
                slot,
            }));
            call.media = Some(slot);
        }
        call.media
    }

    /// The description sent to A for a callee's description `body` (a
    /// browser's is read as plain RTP).
    pub(super) fn answer_for_a(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        direct: bool,
        from: &Peer,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        if body.is_empty() {
            return None;
        }
        let mut description = SessionDescription::parse(body).ok()?;
        if webrtc::is_webrtc(&description) {
            description = webrtc::plain(&description);
        }
        call.telephone_event = webrtc::formats_of(&description).telephone_event;
        // The relay sends the callee the caller's media from the start,
        // before the callee sends any (a browser's leg included).
        if let (Some(_), Some(party)) = (call.media, receives_at(&description)) {
            announce(cx, call, Side::B, party, from.addr().ip());
        }
        if call.browser_offer.is_some() {
            return self.answer_browser_caller(now, cx, call, &description);
        }
        if direct {
            return Some(body.to_vec());
        }
        let media = call.media?;
        let a_ip = cx.sig.media_ip(&call.a_peer);
        let anchored = anchor(&description, a_ip, media.a_port, RELAYED_CODECS).ok()?;
        Some(anchored.description.to_bytes())
    }

    /// Rewrites a description from the party opposite `to` for `to`: an
    /// `offer` (a re-INVITE, an UPDATE) or an answer. A browser's is read
    /// as plain RTP; a browser is described its own leg again.
    pub(super) fn anchor_for(
        &mut self,
        cx: &mut Cx<'_>,
        call: &mut Call,
        to: Side,
        body: &[u8],
        offer: bool,
    ) -> Result<Vec<u8>, u16> {
        let Some(media) = call.media else {
            // Direct media: descriptions pass unchanged.
            return Ok(body.to_vec());
        };
        let mut description = SessionDescription::parse(body).map_err(|_| 400u16)?;
        if webrtc::is_webrtc(&description) {
            description = webrtc::plain(&description);
        }
        let (peer, port) = match to {
            Side::A => (call.a_peer.clone(), media.a_port),
            Side::B => (
                call.b
                    .as_ref()
                    .map_or(call.a_peer.clone(), |b| b.peer.clone()),
                media.b_port,
            ),
        };
        let ip = cx.sig.media_ip(&peer);
        let anchored = anchor(&description, ip, port, RELAYED_CODECS).map_err(|e| match e {
            AnchorError::Address => 400u16,
            _ => 488,
        })?;
        if let Some(party) = anchored.party {
            // In the dialog both parties are known; their signalling
            // addresses came with the dialog.
            let signalling = match to.other() {
                Side::A => Some(call.a_peer.addr().ip()),
                Side::B => call.b.as_ref().map(|b| b.peer.addr().ip()),
            };
            announce(
                cx,
                call,
                to.other(),
                party,
                signalling.unwrap_or(party.ip()),
            );
        }
        call.held = description
            .media
            .iter()
            .find(|m| m.kind == "audio")
            .is_some_and(|m| m.direction() != Direction::SendRecv);
        if call.browser_sdp[side_index(to)].is_some() {
            return Calls::describe_to_browser(call, to, &description, offer).ok_or(488);
        }
        Ok(anchored.description.to_bytes())
    }

    /// The call no longer needs its relay: its ports go back to the driver,
    /// which binds them again when slots are short (after exhaustion).
    pub(super) fn release_media(&mut self, cx: &mut Cx<'_>, call: &mut Call) {
        if call.media.take().is_some() {
            cx.sig.push(Output::Media(MediaCommand::Stop {
                call: call.id,
                uid: call.uid.clone(),
            }));
            self.media.replenish(cx.sig);
        }
    }

    /// What a call's relay reported.
    pub fn handle_media_event(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: u64,
        event: RelayEvent,
    ) {
        let Some(mut call) = self.take(call) else {
            return;
        };
        match event {
            RelayEvent::Latched(side, address) => {
                debug!(call = call.id, ?side, %address, "media latched");
            }
            RelayEvent::Gone(side) => {
                info!(call = call.id, ?side, "a browser left the call");
                self.end(now, cx, &mut call, EndCause::MediaTimeout);
            }
            RelayEvent::Silent(side) => {
                call.silent[side_index(side)] = true;
                let limit = self.config.media_timeout_secs;
                // A served call has one party; a held call is silent on
                // purpose.
                let gone = call.silent == [true, true] || call.served.is_some();
                if limit > 0 && call.answered.is_some() && gone && !call.held {
                    info!(
                        call = call.id,
                        "no media from either party; ending the call"
                    );
                    self.end(now, cx, &mut call, EndCause::MediaTimeout);
                }
            }
        }
        self.put_back(call);
    }
}

/// Tells the relay where `side` of `call` receives, as described in a
/// message from `signalling`.
pub(super) fn announce(
    cx: &mut Cx<'_>,
    call: &Call,
    side: Side,
    address: std::net::SocketAddr,
    signalling: std::net::IpAddr,
) {
    cx.sig.push(Output::Media(MediaCommand::Announce {
        call: call.id,
        side,
        address,
        signalling,
    }));
}
