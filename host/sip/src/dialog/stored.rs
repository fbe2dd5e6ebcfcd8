//! A dialog kept as text, for dialogs that live long and send seldom: a
//! subscription lasts an hour and its notifier sends a NOTIFY when a line
//! changes. A parsed [`Dialog`] is about 800 bytes and two dozen
//! allocations; its text is one allocation of a few hundred bytes, parsed
//! again whenever a request is built or checked.

use super::{Dialog, DialogError, DialogId};
use crate::grammar::{Uri, parse_name_addr};
use crate::message::{Method, Request};

/// A [`Dialog`] as text ([`Dialog::store`]).
///
/// Each part is one line of `text`. No part can hold a line break: the
/// parts come from parsed header fields, whose values have none once
/// unfolded, and from tags and URIs, whose grammars exclude them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDialog {
    /// Call-ID, local tag, remote tag, local URI, remote URI, remote
    /// target, then one line per route.
    text: Box<str>,
    /// As [`Dialog::local_seq`].
    local_seq: Option<u32>,
    /// As [`Dialog::remote_seq`].
    remote_seq: Option<u32>,
    /// As [`Dialog::secure`].
    secure: bool,
    /// As [`Dialog::early`].
    early: bool,
}

impl Dialog {
    /// This dialog as text.
    pub fn store(&self) -> StoredDialog {
        let mut text = String::new();
        let mut line = |part: &dyn std::fmt::Display| {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{part}");
        };
        line(&self.id.call_id);
        line(&self.id.local_tag);
        line(&self.id.remote_tag);
        line(&self.local_uri);
        line(&self.remote_uri);
        line(&self.remote_target);
        for route in &self.route_set {
            line(route);
        }
        StoredDialog {
            text: text.into_boxed_str(),
            local_seq: self.local_seq,
            remote_seq: self.remote_seq,
            secure: self.secure,
            early: self.early,
        }
    }
}

impl StoredDialog {
    /// The dialog, parsed back. Fails only on text that [`Dialog::store`]
    /// did not write.
    pub fn load(&self) -> Result<Dialog, DialogError> {
        let lines: Vec<&str> = self.text.lines().collect();
        let [
            call_id,
            local_tag,
            remote_tag,
            local_uri,
            remote_uri,
            target,
            routes @ ..,
        ] = lines.as_slice()
        else {
            return Err(DialogError::Stored);
        };
        let name_addr = |s: &str| parse_name_addr(s).map_err(|_| DialogError::Stored);
        Ok(Dialog {
            id: DialogId {
                call_id: (*call_id).to_owned(),
                local_tag: (*local_tag).to_owned(),
                remote_tag: (*remote_tag).to_owned(),
            },
            local_seq: self.local_seq,
            remote_seq: self.remote_seq,
            local_uri: name_addr(local_uri)?,
            remote_uri: name_addr(remote_uri)?,
            remote_target: target.parse::<Uri>().map_err(|_| DialogError::Stored)?,
            route_set: routes
                .iter()
                .map(|r| name_addr(r))
                .collect::<Result<_, _>>()?,
            secure: self.secure,
            early: self.early,
        })
    }

    /// Call-ID, local tag and remote tag: what [`DialogId`] holds.
    pub fn id_parts(&self) -> (&str, &str, &str) {
        let mut lines = self.text.lines();
        let mut next = || lines.next().unwrap_or("");
        (next(), next(), next())
    }

    /// Whether this is dialog `id`.
    pub fn is(&self, id: &DialogId) -> bool {
        self.id_parts() == (&id.call_id, &id.local_tag, &id.remote_tag)
    }

    /// A request inside the dialog, as [`Dialog::request`] builds it
    /// (taking the next local sequence number).
    pub fn request(
        &mut self,
        method: Method,
        local_contact: Option<&str>,
    ) -> Result<Request, DialogError> {
        let mut dialog = self.load()?;
        let request = dialog.request(method, local_contact);
        self.local_seq = dialog.local_seq;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe() -> Request {
        let mut r = Request {
            method: Method::from_token("SUBSCRIBE"),
            uri: "sip:201@acme.example".into(),
            headers: Default::default(),
            body: Vec::new(),
        };
        let h = &mut r.headers;
        h.push("Via", "SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK-1");
        h.push("From", "\"Desk \\\"A\\\"\" <sip:200@acme.example>;tag=w1");
        h.push("To", "<sip:201@acme.example>");
        h.push("Call-ID", "c1@10.0.0.9");
        h.push("CSeq", "7 SUBSCRIBE");
        h.push("Contact", "<sip:200@10.0.0.9:5062;transport=udp;ob>");
        h.push(
            "Record-Route",
            "<sip:p1.example;lr>, <sip:p2.example;lr;x=1>",
        );
        r
    }

    #[test]
    fn a_stored_dialog_loads_as_it_was() {
        let dialog = Dialog::as_uas(&subscribe(), "n1", false).expect("a dialog");
        let stored = dialog.store();
        assert_eq!(stored.load().expect("loads"), dialog);
        assert_eq!(stored.id_parts(), ("c1@10.0.0.9", "n1", "w1"));
        assert!(stored.is(&dialog.id));
    }

    #[test]
    fn requests_from_a_stored_dialog_number_on() {
        let mut dialog = Dialog::as_uas(&subscribe(), "n1", false).expect("a dialog");
        let mut stored = dialog.store();
        for _ in 0..3 {
            let from_stored = stored.request(Method::from_token("NOTIFY"), Some("<sip:pbx>"));
            let direct = dialog.request(Method::from_token("NOTIFY"), Some("<sip:pbx>"));
            assert_eq!(from_stored.expect("a request"), direct);
        }
        assert_eq!(stored.load().expect("loads"), dialog);
    }

    #[test]
    fn text_it_did_not_write_is_an_error() {
        let mut stored = Dialog::as_uas(&subscribe(), "n1", false)
            .expect("a dialog")
            .store();
        stored.text = "c1\nn1\n".into();
        assert_eq!(stored.load(), Err(DialogError::Stored));
        stored.text = "c1\nn1\nw1\n<sip:a@b>\n<sip:c@d>\nnot a uri\n".into();
        assert_eq!(stored.load(), Err(DialogError::Stored));
    }
}
