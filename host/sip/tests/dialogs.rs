//! Dialogs (RFC 3261 §12) built from real message text.

use edgepbx_sip::dialog::{Dialog, DialogError, DialogId};
use edgepbx_sip::message::{Message, Method, Request, Response};
use edgepbx_sip::parse::{Limits, parse_datagram};

fn parse(text: &str) -> Message {
    let bytes = text.replace('\n', "\r\n");
    parse_datagram(bytes.as_bytes(), &Limits::default()).expect("a valid message")
}

fn request(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn response(text: &str) -> Response {
    match parse(text) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("not a response"),
    }
}

const INVITE: &str = "INVITE sip:100@pbx.example SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1
Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>
Record-Route: <sip:p3.example;lr>
Max-Forwards: 68
From: \"Alice\" <sip:200@pbx.example>;tag=alice1
To: <sip:100@pbx.example>
Call-ID: call-1@192.0.2.7
CSeq: 7 INVITE
Contact: <sip:200@192.0.2.7:5060;transport=udp>
Content-Length: 0

";

fn header(request: &Request, name: &str) -> Vec<String> {
    request.headers.get_all(name).map(str::to_owned).collect()
}

#[test]
fn the_uas_side_keeps_the_route_set_in_order() {
    let invite = request(INVITE);
    let mut dialog = Dialog::as_uas(&invite, "pbx9", true).expect("a dialog");
    assert_eq!(
        dialog.id,
        DialogId {
            call_id: "call-1@192.0.2.7".into(),
            local_tag: "pbx9".into(),
            remote_tag: "alice1".into(),
        }
    );
    assert_eq!((dialog.local_seq, dialog.remote_seq), (None, Some(7)));
    assert!(dialog.early);
    assert_eq!(
        dialog.remote_target.to_string(),
        "sip:200@192.0.2.7:5060;transport=udp"
    );

    // Our BYE: loose routing through p1, p2, p3 to Alice's contact, with
    // the tags the other way round and a fresh sequence number.
    let bye = dialog.request(Method::from_token("BYE"), None);
    assert_eq!(bye.uri, "sip:200@192.0.2.7:5060;transport=udp");
    assert_eq!(
        header(&bye, "Route"),
        [
            "<sip:p1.example;lr>",
            "<sip:p2.example;lr>",
            "<sip:p3.example;lr>"
        ]
    );
    assert!(header(&bye, "From")[0].contains("tag=pbx9"));
    assert!(header(&bye, "To")[0].contains("tag=alice1"));
    assert_eq!(header(&bye, "CSeq"), ["1 BYE"]);
    assert_eq!(
        dialog
            .request(Method::from_token("INFO"), None)
            .headers
            .get("CSeq"),
        Some("2 INFO")
    );
}

#[test]
fn the_uac_side_reverses_the_route_set_and_follows_strict_routers() {
    let invite = request(
        &INVITE.replace("Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\nRecord-Route: <sip:p3.example;lr>\n", ""),
    );
    let ringing = response(
        "SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1
Record-Route: <sip:strict.example>, <sip:loose.example;lr>
From: \"Alice\" <sip:200@pbx.example>;tag=alice1
To: <sip:100@pbx.example>;tag=bob2
Call-ID: call-1@192.0.2.7
CSeq: 7 INVITE
Contact: <sip:100@198.51.100.4:5062>
Content-Length: 0

",
    );
    let mut dialog = Dialog::as_uac(&invite, &ringing).expect("a dialog");
    assert!(dialog.early);
    assert_eq!((dialog.local_seq, dialog.remote_seq), (Some(7), None));
    assert_eq!(dialog.id.local_tag, "alice1");
    assert_eq!(dialog.id.remote_tag, "bob2");
    // Reversed: the UAC's first hop is the proxy nearest to it.
    let first = dialog.route_set[0].uri.to_string();
    assert_eq!(first, "sip:loose.example;lr");

    let ok = response(
        &String::from_utf8_lossy(&ringing.to_bytes())
            .replace("\r\n", "\n")
            .replace("180 Ringing", "200 OK")
            .replace(
                "Record-Route: <sip:strict.example>, <sip:loose.example;lr>",
                "Record-Route: <sip:loose.example;lr>, <sip:strict.example>",
            ),
    );
    dialog.confirm_as_uac(&ok).expect("confirmed");
    assert!(!dialog.early);
    // Now the first hop is a strict router: it becomes the Request-URI and
    // the remote target goes last in Route.
    let bye = dialog.request(Method::from_token("BYE"), None);
    assert_eq!(bye.uri, "sip:strict.example");
    assert_eq!(
        header(&bye, "Route"),
        ["<sip:loose.example;lr>", "<sip:100@198.51.100.4:5062>"]
    );
    assert_eq!(header(&bye, "CSeq"), ["8 BYE"]);
    // The ACK of the 2xx reuses the INVITE's number.
    assert_eq!(dialog.ack(7).headers.get("CSeq"), Some("7 ACK"));
}

#[test]
fn requests_of_the_other_side_are_checked() {
    let invite = request(INVITE);
    let mut dialog = Dialog::as_uas(&invite, "pbx9", false).expect("a dialog");
    let in_dialog = |method: &str, seq: u32, to_tag: &str| {
        request(&format!(
            "{method} sip:100@192.0.2.1 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-{seq}
Max-Forwards: 70
From: <sip:200@pbx.example>;tag=alice1
To: <sip:100@pbx.example>;tag={to_tag}
Call-ID: call-1@192.0.2.7
CSeq: {seq} {method}
Content-Length: 0

"
        ))
    };
    assert_eq!(dialog.receive(&in_dialog("ACK", 7, "pbx9")), Ok(()));
    assert_eq!(dialog.receive(&in_dialog("INFO", 8, "pbx9")), Ok(()));
    assert_eq!(
        dialog.receive(&in_dialog("INFO", 6, "pbx9")),
        Err(DialogError::OutOfOrder { got: 6, last: 8 })
    );
    assert_eq!(
        dialog.receive(&in_dialog("BYE", 9, "other")),
        Err(DialogError::Mismatch)
    );
    assert_eq!(dialog.receive(&in_dialog("BYE", 9, "pbx9")), Ok(()));
    assert_eq!(dialog.remote_seq, Some(9));
}

#[test]
fn what_creates_no_dialog() {
    let no_tag = request(&INVITE.replace(";tag=alice1", ""));
    assert_eq!(
        Dialog::as_uas(&no_tag, "t", false),
        Err(DialogError::NoTag("From"))
    );
    let no_contact =
        request(&INVITE.replace("Contact: <sip:200@192.0.2.7:5060;transport=udp>\n", ""));
    assert_eq!(
        Dialog::as_uas(&no_contact, "t", false),
        Err(DialogError::Contact)
    );
    let two_contacts = request(&INVITE.replace(
        "Contact: <sip:200@192.0.2.7:5060;transport=udp>",
        "Contact: <sip:a@192.0.2.7>, <sip:b@192.0.2.7>",
    ));
    assert_eq!(
        Dialog::as_uas(&two_contacts, "t", false),
        Err(DialogError::Contact)
    );

    let invite = request(INVITE);
    let trying = response(
        "SIP/2.0 100 Trying
Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK-1
From: <sip:200@pbx.example>;tag=alice1
To: <sip:100@pbx.example>
Call-ID: call-1@192.0.2.7
CSeq: 7 INVITE
Content-Length: 0

",
    );
    assert_eq!(
        Dialog::as_uac(&invite, &trying),
        Err(DialogError::NotEstablishing(100))
    );
}

#[test]
fn an_invite_is_cancelled_with_its_own_identity() {
    let invite = request(INVITE);
    let cancel = invite
        .cancel(Some("SIP;cause=200;text=\"Call completed elsewhere\""))
        .expect("an INVITE can be cancelled");
    assert_eq!(cancel.method.as_str(), "CANCEL");
    assert_eq!(cancel.uri, invite.uri);
    for name in ["Via", "From", "To", "Call-ID"] {
        assert_eq!(cancel.headers.get(name), invite.headers.get(name), "{name}");
    }
    assert_eq!(cancel.headers.get("CSeq"), Some("7 CANCEL"));
    assert_eq!(
        cancel.headers.get("Reason"),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    // It parses as a valid request.
    let bytes = cancel.to_bytes();
    assert!(matches!(
        parse_datagram(&bytes, &Limits::default()),
        Ok(Message::Request(_))
    ));
    let bye = request(
        &INVITE
            .replace("INVITE sip", "BYE sip")
            .replace("7 INVITE", "7 BYE"),
    );
    assert!(bye.cancel(None).is_none());
}
