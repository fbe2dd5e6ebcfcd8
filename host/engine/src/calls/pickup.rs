//! Call pickup: a phone answers a call ringing another extension. Its
//! INVITE names the call by a feature code (the tenant's pickup code,
//! `**` by default, and an extension: directed; `*8`: calls ringing one
//! of the picker's groups or their members) or by a
//! `Replaces` header (RFC 3891) naming the ringing dialog that the BLF
//! NOTIFYs showed (its call-id is the call's id). The caller is connected
//! to the picker with the media anchored, and every branch still ringing
//! is cancelled with `Reason: SIP;cause=200`.

use std::time::Instant;

use edgepbx_media::anchor::{RELAYED_CODECS, anchor};
use edgepbx_media::relay::Side;
use edgepbx_media::sdp::{Direction, Media, SessionDescription};
use edgepbx_sip::dialog::Dialog;
use edgepbx_sip::transaction::ServerKey;
use edgepbx_sip::{Request, Response};
use tracing::info;

use super::anchoring::announce;
use super::{ALLOW, BranchState, COMPLETED_ELSEWHERE, Call, CallId, Calls, Cx, LegDialog, cseq_of};
use crate::peer::Peer;
use crate::registrar::Aor;
use crate::tenants::Tenant;

/// Group pickup: answers a call ringing one of the picker's groups.
pub(crate) const GROUP_PICKUP: &str = "*8";

/// What a picker asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pickup {
    /// The call ringing this extension.
    Extension(String),
    /// A call ringing one of the picker's groups or a fellow member.
    Group,
    /// The call with this id (a `Replaces` header's call-id).
    Dialog(String),
}

impl Pickup {
    /// The pickup an INVITE dialling `number` asks for, if any.
    pub fn of(request: &Request, number: &str, tenant: &Tenant) -> Option<Pickup> {
        if let Some(replaces) = request.headers.get("Replaces") {
            return Some(Pickup::Dialog(replaced_call(replaces)));
        }
        if number == GROUP_PICKUP {
            return Some(Pickup::Group);
        }
        let target = number.strip_prefix(tenant.features.pickup_code.as_str())?;
        let extension = tenant.resolve(target)?;
        Some(Pickup::Extension(extension.number.clone()))
    }
}

/// The call a `Replaces` header names: its call-id, when its tags are the
/// ones the dialog NOTIFYs gave that call (`<id>-l` and `<id>-r`, in
/// either order: phones differ on which is which); else nothing any call
/// is named (RFC 3891 §3: the whole dialog id must match).
fn replaced_call(replaces: &str) -> String {
    let mut parts = replaces.split(';').map(str::trim);
    let call_id = parts.next().unwrap_or("");
    let (mut to, mut from) = (None, None);
    for part in parts {
        match part.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("to-tag") => {
                to = Some(value.trim());
            }
            Some((name, value)) if name.trim().eq_ignore_ascii_case("from-tag") => {
                from = Some(value.trim());
            }
            _ => {}
        }
    }
    let (local, remote) = (format!("{call_id}-l"), format!("{call_id}-r"));
    let tags = [to.unwrap_or(""), from.unwrap_or("")];
    let ours =
        tags == [local.as_str(), remote.as_str()] || tags == [remote.as_str(), local.as_str()];
    if ours {
        call_id.to_owned()
    } else {
        String::new()
    }
}

/// Who picks up, and with what.
pub(crate) struct Picker<'a> {
    /// The picker's INVITE...
    pub request: &'a Request,
    /// ...its server transaction...
    pub key: ServerKey,
    /// ...and the flow it came on.
    pub peer: &'a Peer,
    /// The picker's extension.
    pub aor: Aor,
}

impl Calls {
    /// Connects the call `pickup` names to `picker`, or answers the
    /// picker's INVITE with why not: 486 for a Replaces that names an
    /// answered call, 481 for one that names no call, 480 when nothing
    /// rings, 488 when the two parties' descriptions share no codec.
    pub(crate) fn pick_up(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        tenant: &Tenant,
        picker: Picker<'_>,
        pickup: Pickup,
    ) {
        let refuse = |cx: &mut Cx<'_>, status: u16| {
            let r = Response::for_request(
                picker.request,
                status,
                Some(&picker.request.stateless_tag()),
            );
            cx.sig.respond(now, picker.key, r);
        };
        let Some(id) = self.ringing_call(tenant, &picker.aor, &pickup) else {
            info!(tenant = %tenant.code, picker = %picker.aor.extension, ?pickup,
                "nothing to pick up");
            let status = match &pickup {
                // A dialog already answered: someone is on it (RFC 3891
                // §3 answers an early-only Replaces of one so).
                Pickup::Dialog(id) if self.answered(tenant, id) => 486,
                Pickup::Dialog(_) => 481,
                _ => 480,
            };
            return refuse(cx, status);
        };
        let Some(mut call) = self.take(id) else {
            return refuse(cx, 480);
        };
        match self.connect_picker(now, cx, &mut call, &picker) {
            Ok(()) => {
                info!(call = call.id, picker = %picker.aor.extension, "call picked up");
            }
            Err(status) => refuse(cx, status),
        }
        self.put_back(call);
    }

    /// Whether `tenant`'s call `id` is in progress and answered.
    fn answered(&self, tenant: &Tenant, id: &str) -> bool {
        self.calls.values().any(|c| {
            c.tenant.code == tenant.code
                && c.uid == id
                && c.answered.is_some()
                && c.decisions != usize::MAX
        })
    }

    /// The oldest unanswered call of `tenant` that `pickup` names and a
    /// device still rings.
    fn ringing_call(&self, tenant: &Tenant, picker: &Aor, pickup: &Pickup) -> Option<CallId> {
        let groups: Vec<&str> = tenant
            .groups
            .values()
            .filter(|g| g.members.contains(&picker.extension))
            .map(|g| g.number.as_str())
            .collect();
        let rings = |call: &Call, number: &str| {
            call.branches.iter().any(|b| {
                b.aor.as_ref().is_some_and(|a| a.extension == number)
                    && matches!(b.state, BranchState::Calling | BranchState::Ringing)
            })
        };
        self.calls
            .values()
            .filter(|c| {
                c.tenant.code == tenant.code
                    && c.server.is_some()
                    && c.decisions != usize::MAX
                    && c.parties.caller.as_ref() != Some(picker)
                    && c.branches.iter().any(|b| {
                        matches!(b.state, BranchState::Calling | BranchState::Ringing)
                            && b.aor.is_some()
                    })
            })
            .filter(|c| match pickup {
                Pickup::Extension(number) => rings(c, number),
                Pickup::Dialog(id) => c.uid == *id,
                Pickup::Group => {
                    groups.contains(&c.dialled.as_str())
                        || groups.iter().any(|g| {
                            tenant.groups.get(*g).is_some_and(|group| {
                                group
                                    .members
                                    .iter()
                                    .any(|m| *m != picker.extension && rings(c, m))
                            })
                        })
                }
            })
            .min_by_key(|c| (c.started, c.id))
            .map(|c| c.id)
    }

    /// Answers the caller and the picker, each with the other's offer cut
    /// to one codec both have, anchored on the call's media slot.
    fn connect_picker(
        &mut self,
        now: Instant,
        cx: &mut Cx<'_>,
        call: &mut Call,
        picker: &Picker<'_>,
    ) -> Result<(), u16> {
        let caller_offer = call.offer.clone().ok_or(488u16)?;
        let picker_offer = SessionDescription::parse(&picker.request.body).map_err(|_| 488u16)?;
        let codecs = shared_codecs(&caller_offer, &picker_offer).ok_or(488u16)?;
        let media = self.media_slot(cx, call).ok_or(503u16)?;
        let mut to_picker = anchor(
            &picker_offer,
            cx.sig.media_ip(picker.peer),
            media.b_port,
            &codecs,
        )
        .map_err(|_| 488u16)?;
        let mut to_caller = anchor(
            &caller_offer,
            cx.sig.media_ip(&call.a_peer),
            media.a_port,
            &codecs,
        )
        .map_err(|_| 488u16)?;
        // Each answers an offer as if the other party had written it: its
        // origin (so the descriptions relayed later from that party keep
        // one origin, RFC 3264 §8) and the direction that answers the
        // offer's.
        as_answer(&mut to_picker.description, &caller_offer);
        as_answer(&mut to_caller.description, &picker_offer);
        let tag = cx.sig.tag();
        let dialog = Dialog::as_uas(picker.request, &tag, false).map_err(|_| 400u16)?;
        if let Some(party) = to_picker.party {
            announce(cx, call, Side::B, party, picker.peer.addr().ip());
        }
        if let Some(party) = to_caller.party {
            announce(cx, call, Side::A, party, call.a_peer.addr().ip());
        }
        // The picker is the callee now; everyone else stops ringing.
        let contact = cx.sig.our_contact(picker.peer);
        self.by_dialog.insert(dialog.id.clone(), (call.id, Side::B));
        call.b = Some(LegDialog {
            dialog,
            peer: picker.peer.clone(),
            contact: contact.clone(),
        });
        self.adjust_line(cx.sig, &picker.aor, 0, 1);
        call.parties.callee = Some(picker.aor.clone());
        for i in 0..call.branches.len() {
            self.cancel_branch(now, cx, call, i, false, Some(COMPLETED_ELSEWHERE));
        }
        let mut ok = Response::for_request(picker.request, 200, Some(&tag));
        ok.headers.push("Contact", contact);
        ok.headers.push("Allow", ALLOW);
        ok.headers.push("Content-Type", "application/sdp");
        ok.body = to_picker.description.to_bytes();
        let seq = cseq_of(picker.request);
        self.send_ok(now, cx, call, picker.key, Side::B, ok, seq, None);
        self.answer_caller(now, cx, call, Some(to_caller.description.to_bytes()), None);
        Ok(())
    }
}

/// The stream `anchor` anchors: the first active RTP/AVP audio stream.
fn audio_of(description: &SessionDescription) -> Option<&Media> {
    description
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0 && m.proto.eq_ignore_ascii_case("RTP/AVP"))
}

/// The codec both offers have, first in the caller's order, with
/// telephone events when both offer them under the same payload type
/// (the relay passes payload types as they are); `None` when they share
/// no codec.
fn shared_codecs(
    caller: &SessionDescription,
    picker: &SessionDescription,
) -> Option<Vec<(&'static str, u32)>> {
    let (a, p) = (audio_of(caller)?, audio_of(picker)?);
    let codecs = |m: &Media| -> Vec<(String, u8)> {
        m.accepted_formats(RELAYED_CODECS)
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().and_then(|pt| m.rtpmap(pt)))
            .map(|map| (map.encoding.to_ascii_lowercase(), map.payload_type))
            .collect()
    };
    let (a_codecs, p_codecs) = (codecs(a), codecs(p));
    let has = |list: &[(String, u8)], name: &str| list.iter().any(|(n, _)| n == name);
    let codec = a_codecs
        .iter()
        .map(|(n, _)| n.as_str())
        .find(|n| *n != "telephone-event" && has(&p_codecs, n))?;
    let mut shared: Vec<(&'static str, u32)> = RELAYED_CODECS
        .iter()
        .copied()
        .filter(|(name, _)| name.eq_ignore_ascii_case(codec))
        .collect();
    let events = |list: &[(String, u8)]| {
        list.iter()
            .find(|(n, _)| n == "telephone-event")
            .map(|(_, pt)| *pt)
    };
    if events(&a_codecs).is_some() && events(&a_codecs) == events(&p_codecs) {
        shared.push(("telephone-event", 8000));
    }
    Some(shared)
}

/// Makes `answer` (an offer anchored back to its offerer) read as written
/// by the other party: `other`'s origin, and the direction that answers
/// the offer's.
fn as_answer(answer: &mut SessionDescription, other: &SessionDescription) {
    answer.origin.username = other.origin.username.clone();
    answer.origin.session_id = other.origin.session_id.clone();
    answer.origin.session_version = other.origin.session_version;
    if let Some(stream) = answer
        .media
        .iter_mut()
        .find(|m| m.kind == "audio" && m.port != 0)
    {
        let direction = match stream.direction() {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        };
        stream.set_direction(direction);
    }
}
