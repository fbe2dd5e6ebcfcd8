//! Subscriptions (RFC 6665): a BLF key follows a call to the line it
//! watches through every state (RFC 4235 dialog-info), the caller's own
//! line shows the call as its initiator, and an unsubscription ends with a
//! final NOTIFY; a refresh is told the current state; SUBSCRIBE is
//! authenticated like INVITE and refused for what the subscriber may not
//! watch, without telling another tenant's numbers from missing ones;
//! numbers are watched by number, alias or group; a subscription left
//! alone expires with a final NOTIFY, one whose subscriber stops answering
//! is dropped, and one NOTIFY per subscription is in flight at a time; the
//! mailbox summary (RFC 3842) is one's own; baresip's buddy list shows a
//! colleague online and busy (PIDF with RPID).
//!
//! SIPp checks the NOTIFYs of a call as they come (`subscribe_*.xml`);
//! [`Watcher`], a SUBSCRIBE sender written by hand, checks refusals,
//! bodies and timing byte by byte.

use std::collections::VecDeque;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use edgepbx_e2e::baresip::{Baresip, SoftphoneAccount};
use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, caller, received_requests, subscriber, wait_for_bindings,
    wait_for_subscriptions,
};
use edgepbx_e2e::sip::{
    DigestCredentials, RESPONSE_TIMEOUT, RegisterParams, SipClient, SipMessage, normalise,
    unique_token,
};
use edgepbx_e2e::sipp::{SippOutcome, free_port};
use edgepbx_e2e::wait_for;

/// How long a SIPp device stays on line.
const HOLD: Duration = Duration::from_secs(12);

fn body(message: &SipMessage) -> String {
    String::from_utf8_lossy(&message.body).into_owned()
}

/// The value of attribute `name` in an XML start tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].to_owned())
}

/// One `<dialog>` element of a dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DialogElement {
    id: String,
    direction: Option<String>,
    state: String,
    /// The element's whole text.
    text: String,
}

/// A dialog-info document: its version, its state attribute, its dialogs.
#[derive(Debug, Clone)]
struct DialogInfo {
    version: u32,
    state: String,
    entity: String,
    dialogs: Vec<DialogElement>,
}

fn dialog_info(message: &SipMessage) -> DialogInfo {
    let text = body(message);
    let root = text
        .find("<dialog-info")
        .map(|i| &text[i..])
        .and_then(|t| t.split_once('>'))
        .map(|(tag, _)| tag)
        .unwrap_or_else(|| panic!("no dialog-info document in\n{}", message.text()));
    let dialogs = text
        .split("<dialog ")
        .skip(1)
        .map(|part| {
            let element = part.split("</dialog>").next().unwrap_or(part);
            let start = element.split_once('>').map_or(element, |(t, _)| t);
            let start = format!(" {start}");
            let state = element
                .split_once("<state")
                .and_then(|(_, s)| s.split_once('>'))
                .and_then(|(_, s)| s.split_once("</state>"))
                .map(|(s, _)| s.to_owned())
                .unwrap_or_default();
            DialogElement {
                id: attribute(&start, "id").unwrap_or_default(),
                direction: attribute(&start, "direction"),
                state,
                text: element.to_owned(),
            }
        })
        .collect();
    DialogInfo {
        version: attribute(root, "version")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no version in {root}")),
        state: attribute(root, "state").unwrap_or_default(),
        entity: attribute(root, "entity").unwrap_or_default(),
        dialogs,
    }
}

/// The NOTIFYs a SIPp subscriber received, in order, without the
/// retransmissions.
fn notifies(outcome: &SippOutcome) -> Vec<&SipMessage> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for notify in received_requests(outcome, "NOTIFY") {
        let cseq = notify.cseq();
        if !seen.contains(&cseq) {
            seen.push(cseq);
            out.push(notify);
        }
    }
    out
}

/// Checks the dialog-info NOTIFYs a watcher of `number` received through
/// one call, `direction` as it sees that call: idle, early, confirmed, the
/// call terminated, and the final NOTIFY of the unsubscription showing the
/// line idle; versions from 0 up by one. Returns the documents.
fn assert_watched_call(
    outcome: &SippOutcome,
    number: &str,
    direction: &str,
    remote: &str,
) -> Vec<DialogInfo> {
    let received = notifies(outcome);
    let documents: Vec<DialogInfo> = received.iter().map(|n| dialog_info(n)).collect();
    let summary: Vec<String> = documents
        .iter()
        .map(|d| {
            let states: Vec<String> = d
                .dialogs
                .iter()
                .map(|e| format!("{}:{}", e.id, e.state))
                .collect();
            format!("v{} [{}]", d.version, states.join(", "))
        })
        .collect();
    assert_eq!(
        documents.len(),
        5,
        "idle, early, confirmed, ended and final NOTIFYs expected, got {summary:?}\n{}",
        outcome.report()
    );
    for (notify, document) in received.iter().zip(&documents) {
        assert_eq!(notify.header("Event"), Some("dialog"), "{}", notify.text());
        assert_eq!(
            notify.header("Content-Type"),
            Some("application/dialog-info+xml"),
            "{}",
            notify.text()
        );
        assert_eq!(document.state, "full", "{}", notify.text());
        assert_eq!(
            document.entity,
            format!("sip:{number}@acme.test"),
            "{}",
            notify.text()
        );
    }
    let versions: Vec<u32> = documents.iter().map(|d| d.version).collect();
    assert_eq!(versions, [0, 1, 2, 3, 4], "{summary:?}");
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions must increase: {versions:?}"
    );

    // Idle: one terminated dialog named after the number.
    let idle = &documents[0].dialogs;
    assert_eq!(idle.len(), 1, "{summary:?}");
    assert_eq!(
        (idle[0].id.as_str(), idle[0].state.as_str()),
        (number, "terminated"),
        "{}",
        received[0].text()
    );
    // The call: the same dialog id through early, confirmed, terminated.
    let call: Vec<&DialogElement> = documents[1..4]
        .iter()
        .map(|d| {
            assert_eq!(d.dialogs.len(), 1, "{summary:?}");
            &d.dialogs[0]
        })
        .collect();
    let states: Vec<&str> = call.iter().map(|e| e.state.as_str()).collect();
    assert_eq!(states, ["early", "confirmed", "terminated"], "{summary:?}");
    let id = &call[0].id;
    assert!(
        !id.is_empty() && id != number,
        "the call's dialog needs its own id: {summary:?}"
    );
    for element in &call {
        assert_eq!(&element.id, id, "{summary:?}");
        assert_eq!(
            element.direction.as_deref(),
            Some(direction),
            "{}",
            element.text
        );
    }
    // The other party, by name and address.
    let identity =
        format!("<remote><identity display=\"Test {remote}\">sip:{remote}@acme.test</identity>");
    assert!(call[0].text.contains(&identity), "{}", call[0].text);
    for (i, notify) in received.iter().enumerate().take(4) {
        let state = notify.header("Subscription-State").unwrap_or_default();
        assert!(
            state.starts_with("active;expires="),
            "NOTIFY {i}: {}",
            notify.text()
        );
    }
    // The unsubscription's final NOTIFY: terminated, the line idle.
    let last = received[4];
    assert_eq!(
        last.header("Subscription-State"),
        Some("terminated;reason=timeout"),
        "{}",
        last.text()
    );
    let after = &documents[4].dialogs;
    assert_eq!(after.len(), 1, "{summary:?}");
    assert_eq!(
        (after[0].id.as_str(), after[0].state.as_str()),
        (number, "terminated"),
        "{summary:?}"
    );
    documents
}

#[test]
fn a_blf_key_follows_a_call_from_ringing_to_hang_up() {
    let deployment = Deployment::with_config("blf", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101, 102]);
    let (alice, bob, carol) = (exts.remove(0), exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let desk = Device::start(dir, &pbx, &bob, "desk", Behaviour::Answer, HOLD);
    wait_for_bindings(&pbx, &bob, 1);

    // Carol's phone has BLF keys for Bob (the callee) and Alice (the caller).
    let (blf, own) = std::thread::scope(|scope| {
        let blf =
            scope.spawn(|| subscriber("subscribe_blf", &pbx, &carol, "101").run(dir, "blf-101"));
        let own =
            scope.spawn(|| subscriber("subscribe_watch", &pbx, &carol, "100").run(dir, "blf-100"));
        wait_for_subscriptions(&pbx, 2);
        caller("call", &pbx, &alice, "101")
            .arg("-d")
            .arg("1000")
            .run(dir, "alice")
            .assert_all_succeeded(1);
        (
            blf.join().expect("the BLF subscriber of 101"),
            own.join().expect("the BLF subscriber of 100"),
        )
    });
    desk.finish();

    // SIPp checked every NOTIFY as it came (ereg): each reached the end.
    blf.assert_all_succeeded(1);
    own.assert_all_succeeded(1);
    let bob_seen = assert_watched_call(&blf, "101", "recipient", "100");
    let alice_seen = assert_watched_call(&own, "100", "initiator", "101");
    // One call, one id, whoever watches it.
    assert_eq!(bob_seen[1].dialogs[0].id, alice_seen[1].dialogs[0].id);
    // The subscription's 200 says how long it lasts and where to send
    // in-dialog requests.
    let ok = blf
        .responses()
        .find(|m| m.status() == Some(200))
        .unwrap_or_else(|| panic!("no 200 for the SUBSCRIBE\n{}", blf.report()));
    assert_eq!(ok.header("Expires"), Some("120"), "{}", ok.text());
    assert!(ok.header("Contact").is_some(), "{}", ok.text());
}

/// A SUBSCRIBE sender written by hand, for byte-level checks of refusals,
/// bodies and timing: one socket; a new dialog per [`Watcher::subscribe`],
/// refreshed in that dialog by [`Watcher::refresh`].
struct Watcher {
    client: SipClient,
    ext: Extension,
    call_id: String,
    tag: String,
    /// The server's tag, once a SUBSCRIBE was accepted.
    remote_tag: Option<String>,
    cseq: u32,
    /// Requests of the server that arrived while a response was awaited.
    stashed: VecDeque<SipMessage>,
}

/// What a [`Watcher`] asks for.
struct Ask<'a> {
    /// The Request-URI (and To).
    uri: &'a str,
    event: &'a str,
    expires: Option<u32>,
}

impl Watcher {
    fn new(pbx: &RunningPbx, ext: &Extension) -> Watcher {
        Watcher {
            client: SipClient::udp(pbx.udp()),
            ext: ext.clone(),
            call_id: String::new(),
            tag: String::new(),
            remote_tag: None,
            cseq: 0,
            stashed: VecDeque::new(),
        }
    }

    fn request(&mut self, ask: &Ask<'_>, authorization: Option<&str>) -> String {
        self.cseq += 1;
        let local = self.client.local_addr();
        let to_tag = self
            .remote_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let mut text = format!(
            "SUBSCRIBE {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <{uri}>{to_tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} SUBSCRIBE\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Event: {event}\r\n",
            uri = ask.uri,
            branch = unique_token(),
            user = self.ext.number,
            domain = self.ext.domain,
            tag = self.tag,
            call_id = self.call_id,
            cseq = self.cseq,
            event = ask.event,
        );
        if let Some(expires) = ask.expires {
            text.push_str(&format!("Expires: {expires}\r\n"));
        }
        if let Some(authorization) = authorization {
            text.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        text
    }

    fn new_dialog(&mut self) {
        self.call_id = format!("{}@e2e", unique_token());
        self.tag = unique_token();
        self.remote_tag = None;
        self.cseq = 0;
    }

    /// Sends `request` and waits for its final response, retransmitting
    /// every 500 ms; requests of the server meanwhile are kept for
    /// [`Watcher::next_notify`].
    fn transact(&mut self, request: &str) -> SipMessage {
        let sent = SipMessage::parse(request.as_bytes()).expect("a request of ours parses");
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        let mut retransmit = Instant::now();
        loop {
            let now = Instant::now();
            assert!(now < deadline, "no answer to\n{request}");
            if now >= retransmit {
                self.client
                    .send(request.as_bytes())
                    .unwrap_or_else(|e| panic!("cannot send: {e}"));
                retransmit = now + Duration::from_millis(500);
            }
            let Some(message) = self.client.recv(retransmit.saturating_duration_since(now)) else {
                continue;
            };
            if message.method().is_some() {
                self.stashed.push_back(message);
            } else if message.status().is_some_and(|s| s >= 200)
                && message.header("Call-ID") == sent.header("Call-ID")
                && message.cseq() == sent.cseq()
            {
                return message;
            }
        }
    }

    /// Sends a SUBSCRIBE without credentials in a new dialog; returns its
    /// final answer.
    fn first(&mut self, ask: &Ask<'_>) -> SipMessage {
        self.new_dialog();
        let request = self.request(ask, None);
        self.transact(&request)
    }

    /// Sends a SUBSCRIBE in the current dialog, answering a 407 once;
    /// returns the final answer.
    fn send(&mut self, ask: &Ask<'_>) -> SipMessage {
        let request = self.request(ask, None);
        let mut answer = self.transact(&request);
        if answer.status() == Some(407) {
            let challenge = answer
                .challenges()
                .into_iter()
                .find(|c| c.algorithm.is_some())
                .unwrap_or_else(|| panic!("no usable challenge in\n{}", answer.text()));
            let authorization = challenge.authorization(&DigestCredentials {
                username: &self.ext.number,
                password: &self.ext.password,
                method: "SUBSCRIBE",
                uri: ask.uri,
                nonce_count: 1,
            });
            let request = self.request(ask, Some(&authorization));
            answer = self.transact(&request);
        }
        if self.remote_tag.is_none() && answer.status().is_some_and(|s| s < 300) {
            self.remote_tag = answer
                .header("To")
                .and_then(|to| to.split(";tag=").nth(1))
                .map(|t| t.split(';').next().unwrap_or(t).to_owned());
        }
        answer
    }

    /// Sends a SUBSCRIBE in a new dialog, answering a 407 once; returns
    /// the final answer.
    fn subscribe(&mut self, ask: &Ask<'_>) -> SipMessage {
        self.new_dialog();
        self.send(ask)
    }

    /// Refreshes (or with `Expires: 0` ends) the current subscription.
    fn refresh(&mut self, ask: &Ask<'_>) -> SipMessage {
        assert!(self.remote_tag.is_some(), "no subscription to refresh");
        self.send(ask)
    }

    /// The next NOTIFY of the current dialog, not answered (NOTIFYs of
    /// other dialogs are answered and skipped).
    fn next_notify(&mut self, timeout: Duration) -> Option<SipMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let message = match self.stashed.pop_front() {
                Some(message) => message,
                None => self.client.recv(left)?,
            };
            if message.method() != Some("NOTIFY") {
                continue;
            }
            if message.header("Call-ID") == Some(self.call_id.as_str()) {
                return Some(message);
            }
            self.reply(&message);
        }
    }

    /// Answers a NOTIFY with 200.
    fn reply(&mut self, notify: &SipMessage) {
        let ok = ok_to(notify);
        self.client
            .send(ok.as_bytes())
            .unwrap_or_else(|e| panic!("cannot answer a NOTIFY: {e}"));
    }

    /// The next NOTIFY of the current dialog, answered with 200.
    fn notify(&mut self, timeout: Duration) -> Option<SipMessage> {
        let message = self.next_notify(timeout)?;
        self.reply(&message);
        Some(message)
    }
}

/// A 200 to a request the server sent, echoing what it must.
fn ok_to(request: &SipMessage) -> String {
    let mut text = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for value in request.header_values(name) {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

#[test]
fn subscriptions_are_authenticated_and_refused_for_what_may_not_be_watched() {
    let deployment = Deployment::with_config("subscribe-refusals", CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102]);
    deployment.add_tenant("GLOBEX", "globex.test");
    deployment.add_extension("GLOBEX", "globex.test", "101", "pw-globex-101-Secret");
    let pbx = deployment.start();
    let carol = &exts[2];
    let mut watcher = Watcher::new(&pbx, carol);
    let dialog = |uri| Ask {
        uri,
        event: "dialog",
        expires: Some(600),
    };

    // No credentials: challenged like an INVITE, with a 407.
    let challenge = watcher.first(&dialog("sip:101@acme.test"));
    assert_eq!(challenge.status(), Some(407), "{}", challenge.text());
    let offered = challenge.challenges();
    assert!(
        !offered.is_empty() && challenge.header("Proxy-Authenticate").is_some(),
        "{}",
        challenge.text()
    );
    assert!(
        offered.iter().all(|c| c.realm == "acme.test"),
        "{}",
        challenge.text()
    );

    // Another tenant's extension, by its domain or its code, and a number
    // nobody has: the same 404, so nothing tells them apart.
    let mut refusals = Vec::new();
    for uri in [
        "sip:101@globex.test",
        "sip:101-GLOBEX@acme.test",
        "sip:555@acme.test",
    ] {
        let refusal = watcher.subscribe(&dialog(uri));
        assert_eq!(refusal.status(), Some(404), "{uri}:\n{}", refusal.text());
        let call_id = refusal.header("Call-ID").unwrap_or_default().to_owned();
        refusals.push(normalise(&refusal, &carol.number, &call_id).replace(uri, "<target>"));
    }
    assert_eq!(
        refusals[0], refusals[2],
        "another tenant's extension is told apart from a missing number"
    );
    assert_eq!(refusals[1], refusals[2]);

    // An event package edgepbx does not serve.
    let unknown = watcher.subscribe(&Ask {
        uri: "sip:101@acme.test",
        event: "reg",
        expires: Some(600),
    });
    assert_eq!(unknown.status(), Some(489), "{}", unknown.text());
    let allowed = unknown.header("Allow-Events").unwrap_or_default();
    for package in ["dialog", "presence", "message-summary"] {
        assert!(allowed.contains(package), "{}", unknown.text());
    }

    // Too short: 423 with the shortest allowed.
    let brief = watcher.subscribe(&Ask {
        uri: "sip:101@acme.test",
        event: "dialog",
        expires: Some(30),
    });
    assert_eq!(brief.status(), Some(423), "{}", brief.text());
    assert_eq!(brief.header("Min-Expires"), Some("60"), "{}", brief.text());

    // Too long: shortened to the longest allowed.
    let long = watcher.subscribe(&Ask {
        uri: "sip:101@acme.test",
        event: "dialog",
        expires: Some(7_200),
    });
    assert_eq!(long.status(), Some(200), "{}", long.text());
    assert_eq!(long.header("Expires"), Some("3600"), "{}", long.text());
    assert!(long.header("Contact").is_some(), "{}", long.text());
    let first = watcher
        .notify(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY after the 200"));
    let state = first.header("Subscription-State").unwrap_or_default();
    let granted: u32 = state
        .strip_prefix("active;expires=")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", first.text()));
    assert!((3_590..=3_600).contains(&granted), "{}", first.text());
}

#[test]
fn a_subscription_left_alone_expires_with_a_final_notify() {
    let deployment = Deployment::with_config(
        "subscribe-expiry",
        &format!("{CALL_CONFIG}[subscriptions]\nmin_expires = 1\n"),
    );
    let exts = deployment.acme_with([101, 102]);
    let pbx = deployment.start();
    let dir = deployment.work().path();

    let started = Instant::now();
    let run = subscriber("subscribe_expiry", &pbx, &exts[1], "101")
        .key("expires", "2")
        .run(dir, "expiry");
    let took = started.elapsed();
    run.assert_all_succeeded(1);
    let ok = run.last_response(200).expect("the 200 of the SUBSCRIBE");
    assert_eq!(ok.header("Expires"), Some("2"), "{}", ok.text());
    let received = notifies(&run);
    assert_eq!(received.len(), 2, "{}", run.report());
    let active = received[0].header("Subscription-State").unwrap_or_default();
    assert!(
        active == "active;expires=2" || active == "active;expires=1",
        "{}",
        received[0].text()
    );
    assert_eq!(
        received[1].header("Subscription-State"),
        Some("terminated;reason=timeout"),
        "{}",
        received[1].text()
    );
    // It ran out by itself: no refresh, no unsubscription, not early.
    let sent = run
        .messages
        .iter()
        .filter(|m| !m.received && m.message.method() == Some("SUBSCRIBE"))
        .count();
    assert_eq!(sent, 2, "the challenged SUBSCRIBE and its answer only");
    assert!(took >= Duration::from_secs(2), "expired after {took:?}");
}

#[test]
fn a_subscriber_that_stops_answering_is_dropped() {
    // T1 of 50 ms: an unanswered NOTIFY times out after 64 * T1 = 3.2 s.
    let deployment = Deployment::with_config(
        "subscribe-gone",
        &format!("{CALL_CONFIG}[sip]\nt1_ms = 50\n"),
    );
    let exts = deployment.acme_with([101, 102]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let bob = &exts[0];

    // Carol's phone watches Bob's presence, takes the first NOTIFY and is
    // switched off.
    let port = free_port(false);
    let run = subscriber("subscribe_once", &pbx, &exts[1], "101")
        .key("event", "presence")
        .key("accept", "application/pidf+xml")
        .key("expires", "600")
        .local_port(port)
        .run(dir, "switched-off");
    run.assert_all_succeeded(1);
    let first = notifies(&run);
    assert_eq!(first.len(), 1, "{}", run.report());
    assert!(
        body(first[0]).contains("<basic>closed</basic>"),
        "Bob has no device yet:\n{}",
        first[0].text()
    );

    // Bob's phone comes on line: his presence changes, nobody answers the
    // NOTIFY, and the subscription is dropped.
    let mut ua = bob.agent(SipClient::udp(pbx.udp()));
    let contact = ua.own_contact();
    let registered = ua.register(&RegisterParams::bind(&contact, 600));
    assert_eq!(registered.status(), Some(200), "{}", registered.text());
    let dropped = wait_for(Duration::from_secs(15), || {
        pbx.log()
            .contains("subscriber stopped answering")
            .then_some(())
    });
    assert!(
        dropped.is_some(),
        "the unanswered subscription was not dropped"
    );

    // Once dropped, nothing more is sent there: a phone now on that port
    // hears nothing when Bob goes off line again.
    let listener = UdpSocket::bind(("127.0.0.1", port)).expect("the subscriber's port is free");
    listener
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("a read timeout");
    let unregistered = ua.register(&RegisterParams::bind(&contact, 0));
    assert_eq!(unregistered.status(), Some(200), "{}", unregistered.text());
    let mut buf = [0u8; 4_096];
    if let Ok((n, from)) = listener.recv_from(&mut buf) {
        panic!(
            "a dropped subscription still got a message from {from}:\n{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
}

#[test]
fn the_message_summary_is_ones_own() {
    let deployment = Deployment::with_config("subscribe-mwi", CALL_CONFIG);
    let exts = deployment.acme_with([101, 102]);
    let pbx = deployment.start();
    let carol = &exts[1];
    let mut watcher = Watcher::new(&pbx, carol);
    let summary = |uri| Ask {
        uri,
        event: "message-summary",
        expires: Some(600),
    };

    let ok = watcher.subscribe(&summary("sip:102@acme.test"));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let notify = watcher
        .notify(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY of the mailbox"));
    assert_eq!(
        notify.header("Event"),
        Some("message-summary"),
        "{}",
        notify.text()
    );
    assert_eq!(
        notify.header("Content-Type"),
        Some("application/simple-message-summary"),
        "{}",
        notify.text()
    );
    assert!(
        notify
            .header("Subscription-State")
            .is_some_and(|s| s.starts_with("active;expires=")),
        "{}",
        notify.text()
    );
    assert_eq!(
        body(&notify),
        "Messages-Waiting: no\r\n\
         Message-Account: sip:102@acme.test\r\n\
         Voice-Message: 0/0 (0/0)\r\n",
        "{}",
        notify.text()
    );

    // Someone else's mailbox is private.
    let refused = watcher.subscribe(&summary("sip:101@acme.test"));
    assert_eq!(refused.status(), Some(403), "{}", refused.text());
}

/// What a presence NOTIFY shows: `open` or `closed`, and `+activity`
/// for an RPID activity.
fn pidf_state(notify: &SipMessage) -> String {
    let text = body(notify);
    let basic = ["open", "closed"]
        .into_iter()
        .find(|b| text.contains(&format!("<basic>{b}</basic>")))
        .unwrap_or_else(|| panic!("no basic status in\n{}", notify.text()));
    match ["on-the-phone", "busy", "away"]
        .into_iter()
        .find(|a| text.contains(&format!("<rpid:{a}/>")))
    {
        Some(activity) => format!("{basic}+{activity}"),
        None => basic.to_owned(),
    }
}

#[test]
fn a_softphones_buddy_list_shows_a_colleague_online_and_busy() {
    // baresip 1.0 answers MD5 challenges only; SIPp devices answer no
    // keepalive OPTIONS.
    let deployment = Deployment::with_config(
        "subscribe-presence",
        "[security]\ndigest_algorithms = [\"MD5\"]\n\
         [registrar]\nkeepalive_interval_secs = 0\n",
    );
    let mut exts = deployment.acme_with([100, 101, 102]);
    let (alice, bob, carol) = (exts.remove(0), exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let bob_uri = "sip:101@acme.test";

    // Carol's desk phone watches Bob's presence too; it records every
    // NOTIFY, for the exact documents.
    let mut desk_phone = Watcher::new(&pbx, &carol);
    let ok = desk_phone.subscribe(&Ask {
        uri: bob_uri,
        event: "presence",
        expires: Some(600),
    });
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let stop = AtomicBool::new(false);

    // Carol's softphone has Bob in its buddy list.
    let mut phone = Baresip::start_watching(
        dir,
        "carol",
        &SoftphoneAccount {
            user: carol.number.clone(),
            domain: carol.domain.clone(),
            password: carol.password.clone(),
            outbound: pbx.udp(),
            regint: 600,
        },
        &[&format!("\"Bob\" <{bob_uri}>;presence=p2p")],
    );
    let recorded = std::thread::scope(|scope| {
        let recorder = scope.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                seen.extend(desk_phone.notify(Duration::from_millis(200)));
            }
            seen
        });
        let shows = |state: &str| {
            assert!(
                phone.wait_for_presence(bob_uri, state, Duration::from_secs(15)),
                "baresip never showed Bob {state}; it shows:\n{}\n---- baresip log ----\n{}",
                phone.contacts(),
                phone.log()
            );
        };
        // No device of Bob's is registered: off line.
        shows("Offline");

        // Bob's desk phone comes on line.
        let desk = Device::start(dir, &pbx, &bob, "desk", Behaviour::Answer, HOLD);
        wait_for_bindings(&pbx, &bob, 1);
        shows("Online");

        // On the phone: busy while the call lasts, available after it.
        let call = scope.spawn(|| {
            caller("call", &pbx, &alice, "101")
                .arg("-d")
                .arg("4000")
                .run(dir, "alice")
        });
        shows("Busy");
        call.join()
            .expect("the caller's thread")
            .assert_all_succeeded(1);
        shows("Online");

        // Do not disturb: busy, until it is turned off.
        deployment.admin(&["ext", "set", "ACME", "101", "--dnd", "on"]);
        shows("Busy");
        deployment.admin(&["ext", "set", "ACME", "101", "--dnd", "off"]);
        shows("Online");

        // Away: the document says away; baresip 1.0 reads `<rpid:away/>`
        // as closed and shows it off line.
        deployment.admin(&["ext", "set", "ACME", "101", "--away", "on"]);
        shows("Offline");
        deployment.admin(&["ext", "set", "ACME", "101", "--away", "off"]);
        shows("Online");

        stop.store(true, Ordering::Relaxed);
        desk.finish();
        recorder.join().expect("the desk phone's recorder")
    });

    // baresip unsubscribes (Expires: 0) on its way out.
    assert!(
        phone.stop(Duration::from_secs(30)),
        "baresip did not exit:\n{}",
        phone.log()
    );

    // The documents behind what baresip showed: off line, available, on
    // the phone (ringing shows available), available, busy for do not
    // disturb, available, away, available.
    for notify in &recorded {
        assert_eq!(
            notify.header("Event"),
            Some("presence"),
            "{}",
            notify.text()
        );
        assert_eq!(
            notify.header("Content-Type"),
            Some("application/pidf+xml"),
            "{}",
            notify.text()
        );
        assert!(
            body(notify).contains(&format!("entity=\"{bob_uri}\"")),
            "{}",
            notify.text()
        );
    }
    let mut states: Vec<String> = recorded.iter().map(pidf_state).collect();
    states.dedup();
    assert_eq!(
        states,
        [
            "closed",
            "open",
            "open+on-the-phone",
            "open",
            "open+busy",
            "open",
            "open+away",
            "open"
        ],
        "presence documents in order"
    );
}

/// The Subscription-State of a NOTIFY.
fn subscription_state(notify: &SipMessage) -> &str {
    notify.header("Subscription-State").unwrap_or_default()
}

/// The seconds left in an `active;expires=N` Subscription-State.
fn active_for(notify: &SipMessage) -> u32 {
    subscription_state(notify)
        .strip_prefix("active;expires=")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an active subscription:\n{}", notify.text()))
}

#[test]
fn a_refresh_is_told_the_current_state_and_an_unsubscription_the_last() {
    let deployment = Deployment::with_config("subscribe-refresh", CALL_CONFIG);
    let exts = deployment.acme_with([101, 102]);
    let pbx = deployment.start();
    let mut watcher = Watcher::new(&pbx, &exts[1]);
    let ask = |expires| Ask {
        uri: "sip:101@acme.test",
        event: "dialog",
        expires: Some(expires),
    };

    let ok = watcher.subscribe(&ask(600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let first = watcher
        .notify(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY after the SUBSCRIBE"));
    assert_eq!(dialog_info(&first).version, 0, "{}", first.text());
    assert!(
        (595..=600).contains(&active_for(&first)),
        "{}",
        first.text()
    );

    // A refresh (RFC 6665 §4.2.1.2): 200, then at once a NOTIFY with the
    // state as it is and the new length, even though nothing changed.
    let refreshed = watcher.refresh(&ask(300));
    assert_eq!(refreshed.status(), Some(200), "{}", refreshed.text());
    assert_eq!(
        refreshed.header("Expires"),
        Some("300"),
        "{}",
        refreshed.text()
    );
    let again = watcher
        .notify(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no NOTIFY after the refresh (RFC 6665 §4.2.1.2)"));
    assert!(
        (295..=300).contains(&active_for(&again)),
        "{}",
        again.text()
    );
    assert_eq!(dialog_info(&again).version, 1, "{}", again.text());

    // Expires: 0 ends it with a final NOTIFY.
    let ended = watcher.refresh(&ask(0));
    assert_eq!(ended.status(), Some(200), "{}", ended.text());
    let last = watcher
        .notify(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final NOTIFY after the unsubscription"));
    assert_eq!(
        subscription_state(&last),
        "terminated;reason=timeout",
        "{}",
        last.text()
    );
    assert_eq!(dialog_info(&last).version, 2, "{}", last.text());
}

#[test]
fn one_notify_is_in_flight_at_a_time() {
    let deployment = Deployment::with_config("subscribe-in-flight", CALL_CONFIG);
    let exts = deployment.acme_with([101, 102]);
    let pbx = deployment.start();
    let mut watcher = Watcher::new(&pbx, &exts[1]);
    let ask = |expires| Ask {
        uri: "sip:101@acme.test",
        event: "presence",
        expires: Some(expires),
    };
    let ok = watcher.subscribe(&ask(600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    // The first NOTIFY (Bob off line) is left unanswered for a while.
    let first = watcher
        .next_notify(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY after the SUBSCRIBE"));
    assert!(
        body(&first).contains("<basic>closed</basic>"),
        "{}",
        first.text()
    );

    // Bob comes on line meanwhile: the change waits behind the NOTIFY in
    // flight (only retransmissions of that one arrive).
    let mut ua = exts[0].agent(SipClient::udp(pbx.udp()));
    let contact = ua.own_contact();
    let registered = ua.register(&RegisterParams::bind(&contact, 600));
    assert_eq!(registered.status(), Some(200), "{}", registered.text());
    let waited = Instant::now() + Duration::from_millis(1_500);
    while let Some(notify) = watcher.next_notify(waited.saturating_duration_since(Instant::now())) {
        assert_eq!(
            notify.cseq(),
            first.cseq(),
            "a second NOTIFY while the first is unanswered:\n{}",
            notify.text()
        );
    }
    // Answered: the newest state follows.
    watcher.reply(&first);
    let next = loop {
        let notify = watcher
            .notify(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("the queued state was never sent"));
        if notify.cseq() != first.cseq() {
            break notify;
        }
    };
    assert!(
        body(&next).contains("<basic>open</basic>"),
        "{}",
        next.text()
    );
}

#[test]
fn the_final_notify_waits_for_the_one_in_flight() {
    let deployment = Deployment::with_config("subscribe-final-in-flight", CALL_CONFIG);
    let exts = deployment.acme_with([101, 102]);
    let pbx = deployment.start();
    let mut watcher = Watcher::new(&pbx, &exts[1]);
    let ask = |expires| Ask {
        uri: "sip:101@acme.test",
        event: "presence",
        expires: Some(expires),
    };
    let ok = watcher.subscribe(&ask(600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let first = watcher
        .next_notify(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY after the SUBSCRIBE"));

    // Unsubscribed while the first NOTIFY is unanswered: the final one
    // waits for its answer like any other.
    let ended = watcher.refresh(&ask(0));
    assert_eq!(ended.status(), Some(200), "{}", ended.text());
    let waited = Instant::now() + Duration::from_millis(1_500);
    while let Some(notify) = watcher.next_notify(waited.saturating_duration_since(Instant::now())) {
        assert_eq!(
            notify.cseq(),
            first.cseq(),
            "the final NOTIFY was sent while NOTIFY {:?} was unanswered:\n{}",
            first.cseq(),
            notify.text()
        );
    }
    watcher.reply(&first);
    let last = loop {
        let notify = watcher
            .notify(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no final NOTIFY once the first was answered"));
        if notify.cseq() != first.cseq() {
            break notify;
        }
    };
    assert_eq!(
        subscription_state(&last),
        "terminated;reason=timeout",
        "{}",
        last.text()
    );
}

#[test]
fn numbers_are_watched_by_number_alias_or_group_under_a_qualified_name() {
    let deployment = Deployment::with_config("subscribe-numbers", CALL_CONFIG);
    deployment.add_tenant("ACME", "acme.test");
    deployment.admin(&[
        "ext",
        "add",
        "ACME",
        "101",
        "--name",
        "Bob",
        "--password",
        "pw-101-Secret",
        "--alias",
        "2101",
    ]);
    let carol = deployment.add_extension("ACME", "acme.test", "102", "pw-102-Secret");
    deployment.admin(&[
        "group",
        "add",
        "ACME",
        "600",
        "--name",
        "Sales",
        "--members",
        "101",
    ]);
    let pbx = deployment.start();
    // Carol's phone knows the server by its address only: `102-ACME`.
    let host = pbx.udp().ip().to_string();
    let qualified = Extension {
        number: carol.qualified_user(),
        domain: host.clone(),
        ..carol.clone()
    };
    let mut watcher = Watcher::new(&pbx, &qualified);
    for (uri, entity, idle) in [
        (format!("sip:101@{host}"), "sip:101@acme.test", "101"),
        ("sip:2101@acme.test".to_owned(), "sip:101@acme.test", "101"),
        ("sip:600@acme.test".to_owned(), "sip:600@acme.test", "600"),
    ] {
        let ok = watcher.subscribe(&Ask {
            uri: &uri,
            event: "dialog",
            expires: Some(600),
        });
        assert_eq!(ok.status(), Some(200), "{uri}:\n{}", ok.text());
        let notify = watcher
            .notify(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no NOTIFY for {uri}"));
        let document = dialog_info(&notify);
        assert_eq!(document.entity, entity, "{uri}:\n{}", notify.text());
        assert_eq!(document.dialogs.len(), 1, "{}", notify.text());
        assert_eq!(
            (
                document.dialogs[0].id.as_str(),
                document.dialogs[0].state.as_str()
            ),
            (idle, "terminated"),
            "{}",
            notify.text()
        );
    }
}
