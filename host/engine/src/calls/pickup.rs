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
use edgepbx_media::sdp::SessionDescription;
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
            let call_id = replaces.split(';').next().unwrap_or("").trim();
            return Some(Pickup::Dialog(call_id.to_owned()));
        }
        if number == GROUP_PICKUP {
            return Some(Pickup::Group);
        }
        let target = number.strip_prefix(tenant.features.pickup_code.as_str())?;
        let extension = tenant.resolve(target)?;
        Some(Pickup::Extension(extension.number.clone()))
    }
}

/// Who picks up, and with what.
pub(crate) struct Picker<'a> {
    /// The picker's INVITE and its server transaction.
    pub request: &'a Request,
    pub key: ServerKey,
    pub peer: &'a Peer,
    /// The picker's extension.
    pub aor: Aor,
}

impl Calls {
    /// Connects the call `pickup` names to `picker`, or answers the
    /// picker's INVITE with why not: 481 for a Replaces that names no
    /// ringing call, 480 when nothing rings, 488 when the two parties'
    /// descriptions share no codec.
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
            let status = if matches!(pickup, Pickup::Dialog(_)) {
                481
            } else {
                480
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
        let to_picker = anchor(
            &picker_offer,
            cx.sig.media_ip(picker.peer),
            media.b_port,
            &codecs,
        )
        .map_err(|_| 488u16)?;
        let to_caller = anchor(
            &caller_offer,
            cx.sig.media_ip(&call.a_peer),
            media.a_port,
            &codecs,
        )
        .map_err(|_| 488u16)?;
        let tag = cx.sig.tag();
        let dialog = Dialog::as_uas(picker.request, &tag, false).map_err(|_| 400u16)?;
        if let Some(party) = to_picker.party {
            announce(cx, call, Side::B, party);
        }
        if let Some(party) = to_caller.party {
            announce(cx, call, Side::A, party);
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

/// The codec both offers have, first in the caller's order, with
/// telephone events when both offer them; `None` when they share none.
fn shared_codecs(
    caller: &SessionDescription,
    picker: &SessionDescription,
) -> Option<Vec<(&'static str, u32)>> {
    let audio = |d: &SessionDescription| {
        d.media
            .iter()
            .find(|m| m.kind == "audio" && m.port != 0)
            .cloned()
    };
    let (a, p) = (audio(caller)?, audio(picker)?);
    let names = |m: &edgepbx_media::sdp::Media| -> Vec<String> {
        m.accepted_formats(RELAYED_CODECS)
            .iter()
            .filter_map(|f| f.parse::<u8>().ok().and_then(|pt| m.rtpmap(pt)))
            .map(|map| map.encoding.to_ascii_lowercase())
            .collect()
    };
    let (a_names, p_names) = (names(&a), names(&p));
    let codec = a_names
        .iter()
        .find(|n| *n != "telephone-event" && p_names.contains(n))?;
    let mut codecs: Vec<(&'static str, u32)> = RELAYED_CODECS
        .iter()
        .copied()
        .filter(|(name, _)| name.eq_ignore_ascii_case(codec))
        .collect();
    let events = "telephone-event".to_owned();
    if a_names.contains(&events) && p_names.contains(&events) {
        codecs.push(("telephone-event", 8000));
    }
    Some(codecs)
}
