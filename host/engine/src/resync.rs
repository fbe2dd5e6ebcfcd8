//! Telling a provisioned desk phone to fetch its configuration again: an
//! out-of-dialog NOTIFY with the `Event` its vendor reads (`check-sync`,
//! which Yealink, Grandstream and others act on), sent to the bindings of
//! its extension that are that phone.

use edgepbx_model::Mac;
use edgepbx_sip::{Method, Request};

use crate::registrar::Binding;
use crate::signalling::Signalling;

/// Whether `binding` is the phone with address `mac`: phones name their
/// MAC in their User-Agent (Yealink: `Yealink SIP-T46U 108.86.0.20
/// 80:5e:c0:12:34:56`) or in their RFC 5626 instance id (Grandstream:
/// `urn:uuid:00000000-0000-1000-8000-000b82123456`), in any case and
/// grouping.
pub(crate) fn is_phone(binding: &Binding, mac: &Mac) -> bool {
    [&binding.user_agent, &binding.instance]
        .into_iter()
        .flatten()
        .any(|text| mac.is_named_in(text))
}

/// The NOTIFY telling the phone at `contact` to resync, `event` as its
/// vendor reads it; without Via (the sender adds it).
pub(crate) fn check_sync_request(
    sig: &mut Signalling,
    contact: &str,
    domain: &str,
    event: &str,
) -> Request {
    let mut request = sig.request_to(Method::from_token("NOTIFY"), contact, domain);
    request.headers.push("Event", event);
    request.headers.push("Subscription-State", "terminated");
    request
}

#[cfg(test)]
mod tests {
    use std::time::{Instant, SystemTime};

    use super::*;
    use crate::peer::Peer;

    fn binding(user_agent: Option<&str>, instance: Option<&str>) -> Binding {
        Binding {
            contact: "sip:100@192.0.2.7:5060".into(),
            q: None,
            instance: instance.map(str::to_owned),
            reg_id: None,
            call_id: "c".into(),
            cseq: 1,
            expires_at: SystemTime::UNIX_EPOCH,
            stored_expires_at: SystemTime::UNIX_EPOCH,
            deadline: Instant::now(),
            source: Peer::Udp(([192, 0, 2, 7], 5060).into()),
            user_agent: user_agent.map(str::to_owned),
        }
    }

    #[test]
    fn a_phone_is_known_by_the_mac_it_names() {
        let mac: Mac = "805ec0123456".parse().expect("a MAC");
        let yealink = binding(Some("Yealink SIP-T46U 108.86.0.20 80:5E:C0:12:34:56"), None);
        let grandstream = binding(
            Some("Grandstream GXP2170 1.0.11.6"),
            Some("<urn:uuid:00000000-0000-1000-8000-805ec0123456>"),
        );
        let softphone = binding(Some("baresip v1.0.0 (x86_64/linux)"), None);
        let other = binding(Some("Yealink SIP-T46U 108.86.0.20 80:5e:c0:12:34:57"), None);
        assert!(is_phone(&yealink, &mac));
        assert!(is_phone(&grandstream, &mac));
        assert!(!is_phone(&softphone, &mac));
        assert!(!is_phone(&other, &mac));
    }
}
