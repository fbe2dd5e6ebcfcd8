//! The event packages edgepbx serves and what each shows: dialog state
//! (RFC 4235), presence (RFC 3863 with RPID, RFC 4480), message
//! summaries (RFC 3842) and feature key synchronisation (BroadSoft's
//! `as-feature-event`, ECMA-323 CSTA events), and how each is written
//! into a NOTIFY body.

use std::fmt::Write;

use edgepbx_model::{FeatureKey, ForwardTarget, ForwardWhen};

use crate::calls::{DialogView, Direction};

/// An event package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Package {
    /// `dialog`: the calls of an extension or group (BLF keys).
    Dialog,
    /// `presence`: online, on the phone, do not disturb (buddy lists).
    Presence,
    /// `message-summary`: voicemail waiting (the message lamp).
    MessageSummary,
    /// `as-feature-event`: the phone's DND and forwarding keys, kept in
    /// step with the extension's settings both ways.
    FeatureEvent,
}

/// What `Allow-Events` lists.
pub const ALLOW_EVENTS: &str = "dialog, presence, message-summary, as-feature-event";

/// The boundary of multipart feature NOTIFYs.
const BOUNDARY: &str = "edgepbx-features";

/// The namespace of CSTA feature events.
const CSTA: &str = "http://www.ecma-international.org/standards/ecma-323/csta/ed3";

impl Package {
    /// The package an `Event` header names (its parameters aside).
    pub fn parse(event: &str) -> Option<Package> {
        let name = event.split(';').next().unwrap_or("").trim();
        [
            Package::Dialog,
            Package::Presence,
            Package::MessageSummary,
            Package::FeatureEvent,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Its name, as in `Event`.
    pub fn name(self) -> &'static str {
        match self {
            Package::Dialog => "dialog",
            Package::Presence => "presence",
            Package::MessageSummary => "message-summary",
            Package::FeatureEvent => "as-feature-event",
        }
    }

    /// The type of its NOTIFY bodies.
    pub fn content_type(self) -> &'static str {
        match self {
            Package::Dialog => "application/dialog-info+xml",
            Package::Presence => "application/pidf+xml",
            Package::MessageSummary => "application/simple-message-summary",
            Package::FeatureEvent => "multipart/mixed;boundary=edgepbx-features",
        }
    }

    /// Whether a subscriber may watch only its own extension: a mailbox and
    /// the settings are private, a line's state is for the whole tenant.
    pub fn own_only(self) -> bool {
        matches!(self, Package::MessageSummary | Package::FeatureEvent)
    }
}

/// What an extension's presence shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceView {
    /// A device is registered (a group is always open).
    pub online: bool,
    /// In an answered call.
    pub on_the_phone: bool,
    /// A call rings it.
    pub ringing: bool,
    /// Do not disturb is on.
    pub dnd: bool,
    /// Its user is away.
    pub away: bool,
}

/// What a subscription shows: the state of the number it watches, for
/// its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// The calls, oldest first.
    Dialogs(Vec<DialogView>),
    /// Presence.
    Presence(PresenceView),
    /// Voice messages: new and old.
    Messages {
        /// Not yet heard.
        new: u32,
        /// Heard and kept.
        old: u32,
    },
    /// The settings a phone's feature keys show (boxed: the largest
    /// view and the rarest, and every subscription keeps a view).
    Keys(Box<KeysView>),
}

/// The settings feature keys show: DND and the three forwarding rules a
/// phone has keys for (their targets as the settings write them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysView {
    /// Do not disturb.
    pub dnd: bool,
    /// Forward every call.
    pub always: Option<String>,
    /// Forward when busy.
    pub busy: Option<String>,
    /// Forward when not answered.
    pub no_answer: Option<String>,
}

/// Where a body's URIs point.
pub struct Entity<'a> {
    /// The watched number.
    pub number: &'a str,
    /// The tenant's SIP domain.
    pub domain: &'a str,
}

impl Entity<'_> {
    fn uri(&self, number: &str) -> String {
        format!("sip:{}@{}", number, self.domain)
    }
}

/// The NOTIFY body showing `view`; `before` is what the previous NOTIFY
/// showed (dialogs gone since are shown terminated, once), `version` the
/// subscription's document version.
pub fn body(entity: &Entity<'_>, view: &View, before: Option<&View>, version: u32) -> String {
    match view {
        View::Dialogs(dialogs) => {
            let gone: Vec<&DialogView> = match before {
                Some(View::Dialogs(old)) => old
                    .iter()
                    .filter(|o| !dialogs.iter().any(|d| d.id == o.id))
                    .collect(),
                _ => Vec::new(),
            };
            dialog_info(entity, dialogs, &gone, version)
        }
        View::Presence(p) => pidf(entity, *p),
        View::Keys(k) => keys(entity, k),
        View::Messages { new, old } => format!(
            "Messages-Waiting: {}\r\nMessage-Account: {}\r\nVoice-Message: {new}/{old} (0/0)\r\n",
            if *new > 0 { "yes" } else { "no" },
            entity.uri(entity.number),
        ),
    }
}

/// An RFC 4235 document with full state. It always holds a `<dialog>`:
/// with no call, a terminated one, since some phones keep a lamp lit on
/// a document without any.
fn dialog_info(
    entity: &Entity<'_>,
    dialogs: &[DialogView],
    gone: &[&DialogView],
    version: u32,
) -> String {
    let me = entity.uri(entity.number);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" \
         state=\"full\" entity=\"{}\">\r\n",
        escape(&me)
    );
    for d in dialogs {
        let state = if d.confirmed { "confirmed" } else { "early" };
        dialog_element(&mut xml, entity, d, state);
    }
    for d in gone {
        dialog_element(&mut xml, entity, d, "terminated");
    }
    if dialogs.is_empty() && gone.is_empty() {
        let _ = write!(
            xml,
            "<dialog id=\"{}\"><state>terminated</state></dialog>\r\n",
            escape(entity.number)
        );
    }
    xml.push_str("</dialog-info>\r\n");
    xml
}

fn dialog_element(xml: &mut String, entity: &Entity<'_>, d: &DialogView, state: &str) {
    let direction = match d.direction {
        Direction::Initiator => "initiator",
        Direction::Recipient => "recipient",
    };
    let (me, them) = (entity.uri(entity.number), entity.uri(&d.remote));
    let display = d
        .remote_name
        .as_deref()
        .map(|n| format!(" display=\"{}\"", escape(n)))
        .unwrap_or_default();
    // The call's id names the dialog and stands for its Call-ID and tags:
    // a phone picking the call up puts them in Replaces, which edgepbx
    // reads back (it is the B2BUA between the parties).
    let id = escape(&d.id);
    let _ = write!(
        xml,
        "<dialog id=\"{id}\" call-id=\"{id}\" local-tag=\"{id}-l\" remote-tag=\"{id}-r\" \
         direction=\"{direction}\">\
         <state>{state}</state>\
         <local><identity>{me}</identity><target uri=\"{me}\"/></local>\
         <remote><identity{display}>{them}</identity><target uri=\"{them}\"/></remote>\
         </dialog>\r\n",
        me = escape(&me),
        them = escape(&them),
    );
}

/// A PIDF document with RPID activities.
fn pidf(entity: &Entity<'_>, p: PresenceView) -> String {
    let me = escape(&entity.uri(entity.number));
    let basic = if p.online { "open" } else { "closed" };
    let (activity, note) = if !p.online {
        (None, "Offline")
    } else if p.on_the_phone {
        (Some("on-the-phone"), "On the phone")
    } else if p.dnd {
        (Some("busy"), "Do not disturb")
    } else if p.ringing {
        (None, "Ringing")
    } else if p.away {
        (Some("away"), "Away")
    } else {
        (None, "Available")
    };
    let activities = match activity {
        Some(a) => format!("<rpid:activities><rpid:{a}/></rpid:activities>"),
        None => String::new(),
    };
    let id = escape(entity.number);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
         <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \
         xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" \
         xmlns:rpid=\"urn:ietf:params:xml:ns:pidf:rpid\" entity=\"{me}\">\r\n\
         <tuple id=\"t{id}\"><status><basic>{basic}</basic></status>\
         <contact>{me}</contact><note>{note}</note></tuple>\r\n\
         <dm:person id=\"p{id}\">{activities}<dm:note>{note}</dm:note></dm:person>\r\n\
         </presence>\r\n"
    )
}

/// One multipart body with every feature key's state (BroadSoft sends
/// them so, and phones read each part).
fn keys(entity: &Entity<'_>, f: &KeysView) -> String {
    let device = escape(entity.number);
    let mut parts = vec![format!(
        "<DoNotDisturbEvent xmlns=\"{CSTA}\"><device>{device}</device>\
         <doNotDisturbOn>{}</doNotDisturbOn></DoNotDisturbEvent>",
        f.dnd
    )];
    for (kind, target) in [
        ("forwardImmediate", &f.always),
        ("forwardBusy", &f.busy),
        ("forwardNoAns", &f.no_answer),
    ] {
        parts.push(format!(
            "<ForwardingEvent xmlns=\"{CSTA}\"><device>{device}</device>\
             <forwardingType>{kind}</forwardingType>\
             <forwardStatus>{}</forwardStatus><forwardTo>{}</forwardTo></ForwardingEvent>",
            target.is_some(),
            escape(target.as_deref().unwrap_or("")),
        ));
    }
    let mut body = String::new();
    for part in parts {
        let _ = write!(
            body,
            "--{BOUNDARY}\r\nContent-Type: application/x-as-feature-event+xml\r\n\r\n\
             <?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n{part}\r\n"
        );
    }
    let _ = write!(body, "--{BOUNDARY}--\r\n");
    body
}

/// A change a phone asks with its feature keys: the body of its
/// SUBSCRIBE (`SetDoNotDisturb`, `SetForwarding`). `None` when the body
/// is neither, or misses what the request needs.
pub fn feature_request(body: &str) -> Option<FeatureKey> {
    if element(body, "SetDoNotDisturb").is_some() {
        let on = element(body, "doNotDisturbOn")?;
        return Some(FeatureKey::Dnd(boolean(on)?));
    }
    element(body, "SetForwarding")?;
    let when = match element(body, "forwardingType")? {
        "forwardImmediate" => ForwardWhen::Always,
        "forwardBusy" => ForwardWhen::Busy,
        "forwardNoAns" => ForwardWhen::NoAnswer,
        _ => return None,
    };
    let target = if boolean(element(body, "activateForward")?)? {
        let to = element(body, "forwardDN")?;
        Some(ForwardTarget::parse("forwardDN", to).ok()?)
    } else {
        None
    };
    Some(FeatureKey::Forward(when, target))
}

fn boolean(text: &str) -> Option<bool> {
    match text {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// The trimmed text of the first element named `name` (with or without a
/// namespace prefix); an empty element's text is empty.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let local = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = local.rsplit(':').next().unwrap_or("");
        if local == name {
            if tag.ends_with('/') {
                return Some("");
            }
            let content = &rest[end + 1..];
            let close = content.find("</").unwrap_or(content.len());
            return Some(content[..close].trim());
        }
    }
    None
}

/// Escapes text for XML content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity() -> Entity<'static> {
        Entity {
            number: "101",
            domain: "acme.example",
        }
    }

    fn ringing() -> DialogView {
        DialogView {
            id: "c1".into(),
            direction: Direction::Recipient,
            confirmed: false,
            remote: "100".into(),
            remote_name: Some("Ann <&> \"Co\"".into()),
        }
    }

    #[test]
    fn an_idle_line_still_shows_a_dialog() {
        let xml = body(&entity(), &View::Dialogs(vec![]), None, 0);
        assert!(xml.contains("version=\"0\""), "{xml}");
        assert!(
            xml.contains("<dialog id=\"101\"><state>terminated</state></dialog>"),
            "{xml}"
        );
    }

    #[test]
    fn a_ringing_call_is_early_with_the_callers_identity() {
        let xml = body(&entity(), &View::Dialogs(vec![ringing()]), None, 3);
        assert!(xml.contains("direction=\"recipient\""), "{xml}");
        assert!(xml.contains("<state>early</state>"), "{xml}");
        assert!(
            xml.contains("display=\"Ann &lt;&amp;&gt; &quot;Co&quot;\">sip:100@acme.example"),
            "{xml}"
        );
        assert!(!xml.contains("terminated"), "{xml}");
    }

    #[test]
    fn a_call_that_ended_is_shown_terminated_once() {
        let before = View::Dialogs(vec![ringing()]);
        let xml = body(&entity(), &View::Dialogs(vec![]), Some(&before), 4);
        assert!(xml.contains("<dialog id=\"c1\""), "{xml}");
        assert!(xml.contains("<state>terminated</state>"), "{xml}");
        assert!(!xml.contains("<dialog id=\"101\""), "{xml}");
    }

    #[test]
    fn presence_shows_the_busiest_activity() {
        let p = PresenceView {
            online: true,
            on_the_phone: true,
            ringing: false,
            dnd: true,
            away: true,
        };
        let xml = body(&entity(), &View::Presence(p), None, 0);
        assert!(xml.contains("<basic>open</basic>"), "{xml}");
        assert!(xml.contains("<rpid:on-the-phone/>"), "{xml}");
        let off = PresenceView { online: false, ..p };
        let xml = body(&entity(), &View::Presence(off), None, 0);
        assert!(xml.contains("<basic>closed</basic>"), "{xml}");
        // Away is the quietest activity: it shows when nothing else does.
        let idle = PresenceView {
            on_the_phone: false,
            dnd: false,
            ..p
        };
        let xml = body(&entity(), &View::Presence(idle), None, 0);
        assert!(xml.contains("<basic>open</basic>"), "{xml}");
        assert!(xml.contains("<rpid:away/>"), "{xml}");
        assert!(xml.contains("<note>Away</note>"), "{xml}");
    }

    #[test]
    fn an_empty_mailbox_is_summarised() {
        let text = body(&entity(), &View::Messages { new: 0, old: 0 }, None, 0);
        assert_eq!(
            text,
            "Messages-Waiting: no\r\nMessage-Account: sip:101@acme.example\r\nVoice-Message: 0/0 (0/0)\r\n"
        );
    }

    #[test]
    fn feature_keys_are_read_and_shown() {
        let dnd = "<?xml version=\"1.0\"?><SetDoNotDisturb xmlns=\"x\">\
                   <device>101</device><doNotDisturbOn>true</doNotDisturbOn></SetDoNotDisturb>";
        assert_eq!(feature_request(dnd), Some(FeatureKey::Dnd(true)));
        let forward = "<x:SetForwarding xmlns:x=\"y\"><x:device>101</x:device>\
                       <x:activateForward>true</x:activateForward>\
                       <x:forwardingType>forwardNoAns</x:forwardingType>\
                       <x:forwardDN> 1005 </x:forwardDN><x:ringCount>4</x:ringCount></x:SetForwarding>";
        assert_eq!(
            feature_request(forward),
            Some(FeatureKey::Forward(
                ForwardWhen::NoAnswer,
                Some(ForwardTarget::Number("1005".into()))
            ))
        );
        let off = "<SetForwarding><activateForward>false</activateForward>\
                   <forwardingType>forwardBusy</forwardingType><forwardDN/></SetForwarding>";
        assert_eq!(
            feature_request(off),
            Some(FeatureKey::Forward(ForwardWhen::Busy, None))
        );
        assert_eq!(
            feature_request("<SetDoNotDisturb><doNotDisturbOn>maybe"),
            None
        );
        assert_eq!(
            feature_request(
                "<SetForwarding><activateForward>true</activateForward><forwardingType>forwardBusy</forwardingType><forwardDN>x;y</forwardDN></SetForwarding>"
            ),
            None
        );

        let view = KeysView {
            dnd: true,
            always: Some("1005".into()),
            busy: None,
            no_answer: None,
        };
        let text = body(&entity(), &View::Keys(Box::new(view)), None, 0);
        assert_eq!(text.matches("--edgepbx-features\r\n").count(), 4, "{text}");
        assert!(
            text.contains("<doNotDisturbOn>true</doNotDisturbOn>"),
            "{text}"
        );
        assert!(text.contains("<forwardingType>forwardImmediate</forwardingType><forwardStatus>true</forwardStatus><forwardTo>1005</forwardTo>"), "{text}");
        assert!(text.ends_with("--edgepbx-features--\r\n"), "{text}");
    }

    #[test]
    fn packages_are_read_from_the_event_header() {
        assert_eq!(Package::parse("Dialog;id=7"), Some(Package::Dialog));
        assert_eq!(
            Package::parse("message-summary"),
            Some(Package::MessageSummary)
        );
        assert_eq!(Package::parse("reg"), None);
    }
}
