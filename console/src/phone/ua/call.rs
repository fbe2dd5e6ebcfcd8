//! The call half of the user agent: one call at a time, either way.

use super::{ALLOW, Event, Phone, TIMEOUT_MS, USER_AGENT};
use crate::phone::digest::Challenge;
use crate::phone::message::{Message, caller_of, param, uri_of, write};

/// Which way the call went.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Way {
    Out,
    In,
}

/// Where the call is.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stage {
    /// Our INVITE is out; without any answer by `deadline` (timer B), the
    /// call fails. A provisional answer lifts the deadline: a phone may
    /// ring as long as the server lets it.
    Calling { deadline: Option<f64> },
    /// An INVITE came in and rings here.
    Offered,
    /// Answered (2xx sent for an incoming call, waiting for its ACK; or
    /// up).
    Up,
}

#[derive(Clone, Debug)]
pub(super) struct Call {
    pub(super) way: Way,
    pub(super) stage: Stage,
    pub(super) call_id: String,
    pub(super) local_tag: String,
    pub(super) remote_tag: Option<String>,
    /// Our address and theirs, as From and To carry them.
    pub(super) local_uri: String,
    pub(super) remote_uri: String,
    /// Where in-dialog requests go.
    pub(super) target: String,
    /// Our CSeq for in-dialog requests.
    pub(super) cseq: u32,
    /// The INVITE we sent: CSeq number and branch (for ACK and CANCEL).
    pub(super) invite: (u32, String),
    /// The last INVITE (or re-INVITE) that came in, for its answers.
    pub(super) incoming: Option<Message>,
    /// Our description.
    pub(super) local_sdp: String,
    /// Whether the remote answer was handed to the page.
    pub(super) answered: bool,
    /// Our re-INVITE waiting for its answer (CSeq).
    pub(super) reoffer: Option<u32>,
    /// Times a challenge was answered (a second 401 is a failure).
    pub(super) challenged: u32,
}

impl Phone {
    /// Calls `target` (a number or name of the tenant) with our SDP offer.
    pub fn dial(&mut self, target: &str, offer: String, now: f64) {
        if self.call.is_some() || !self.connected {
            return;
        }
        let target: String = target
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '<' && *c != '>' && *c != '"')
            .collect();
        let remote = format!("sip:{target}@{}", self.account.domain);
        let call = Call {
            way: Way::Out,
            stage: Stage::Calling {
                deadline: Some(now + TIMEOUT_MS),
            },
            call_id: self.token(20),
            local_tag: self.token(10),
            remote_tag: None,
            local_uri: self.aor(),
            remote_uri: remote.clone(),
            target: remote,
            cseq: 1,
            invite: (1, String::new()),
            incoming: None,
            local_sdp: offer,
            answered: false,
            reoffer: None,
            challenged: 0,
        };
        self.call = Some(call);
        self.send_invite(None);
    }

    /// Sends (or, with credentials, sends again) the call's INVITE.
    fn send_invite(&mut self, authorization: Option<(&'static str, String)>) {
        let via = self.via();
        let contact = self.contact();
        let Some(call) = &mut self.call else {
            return;
        };
        let branch = param(&via, "branch").unwrap_or_default();
        call.invite = (call.cseq, branch);
        // No To tag yet: the dialog's headers are the INVITE's.
        let mut headers = dialog_headers(call, via, "INVITE");
        headers.extend([
            ("Contact", contact),
            ("Allow", ALLOW.into()),
            ("Supported", "outbound".into()),
            ("Content-Type", "application/sdp".into()),
        ]);
        headers.extend(authorization);
        let text = write(
            &format!("INVITE {} SIP/2.0", call.target),
            &headers,
            &call.local_sdp,
        );
        self.out.push_back(text);
    }

    /// Answers the incoming call with our SDP answer.
    pub fn answer(&mut self, answer: String) {
        let Some(call) = self.call.as_mut().filter(|c| c.stage == Stage::Offered) else {
            return;
        };
        call.stage = Stage::Up;
        // The INVITE stays until its ACK comes: that connects the call.
        self.accept(answer, false);
    }

    /// Answers the other side's re-INVITE with our new SDP answer.
    pub fn answer_reoffer(&mut self, answer: String) {
        self.accept(answer, true);
    }

    /// The 200 with our `answer` to the INVITE that came in, which is
    /// forgotten if `done`.
    fn accept(&mut self, answer: String, done: bool) {
        let contact = self.contact();
        let Some(call) = &mut self.call else {
            return;
        };
        let invite = if done {
            call.incoming.take()
        } else {
            call.incoming.clone()
        };
        if let Some(invite) = invite {
            let ok = respond(
                &invite,
                200,
                "OK",
                &call.local_tag,
                &[("Contact", contact)],
                &answer,
            );
            self.out.push_back(ok);
        }
        call.local_sdp = answer;
    }

    /// Offers new media in the call (hold, resume): a re-INVITE.
    pub fn reoffer(&mut self, offer: String) {
        let contact = self.contact();
        let via = self.via();
        let Some(call) = &mut self.call else {
            return;
        };
        if call.stage != Stage::Up || call.reoffer.is_some() {
            return;
        }
        call.cseq += 1;
        call.reoffer = Some(call.cseq);
        call.local_sdp = offer.clone();
        let headers = dialog_headers(call, via, "INVITE")
            .into_iter()
            .chain([
                ("Contact", contact),
                ("Content-Type", "application/sdp".into()),
            ])
            .collect::<Vec<_>>();
        self.out.push_back(write(
            &format!("INVITE {} SIP/2.0", call.target),
            &headers,
            &offer,
        ));
    }

    /// Sends a key press as SIP INFO (`application/dtmf-relay`), for a
    /// call whose media path carries no telephone events.
    pub fn press(&mut self, key: char) {
        let via = self.via();
        let Some(call) = &mut self.call else {
            return;
        };
        if call.stage != Stage::Up {
            return;
        }
        call.cseq += 1;
        let mut headers = dialog_headers(call, via, "INFO");
        headers.push(("Content-Type", "application/dtmf-relay".into()));
        self.out.push_back(write(
            &format!("INFO {} SIP/2.0", call.target),
            &headers,
            &format!("Signal={key}\r\nDuration=160\r\n"),
        ));
    }

    /// Hangs up: cancels a call still ringing out, declines one ringing
    /// here, says BYE to one that is up.
    pub fn hang_up(&mut self, _now: f64) {
        let Some(mut call) = self.call.take() else {
            return;
        };
        match (call.way, &call.stage) {
            (Way::Out, Stage::Calling { .. }) => {
                // A CANCEL needs the INVITE's branch; the final answer (487)
                // is acknowledged when it comes, the call being gone.
                let (cseq, branch) = call.invite.clone();
                let transport = if self.account.secure { "WSS" } else { "WS" };
                let headers = vec![
                    (
                        "Via",
                        format!("SIP/2.0/{transport} {};branch={branch}", self.host),
                    ),
                    ("Max-Forwards", "70".into()),
                    ("To", format!("<{}>", call.remote_uri)),
                    (
                        "From",
                        format!("<{}>;tag={}", call.local_uri, call.local_tag),
                    ),
                    ("Call-ID", call.call_id.clone()),
                    ("CSeq", format!("{cseq} CANCEL")),
                    ("Reason", "SIP;cause=487;text=\"hung up\"".into()),
                ];
                self.out.push_back(write(
                    &format!("CANCEL {} SIP/2.0", call.target),
                    &headers,
                    "",
                ));
            }
            (Way::In, Stage::Offered) => {
                if let Some(invite) = &call.incoming {
                    self.out
                        .push_back(respond(invite, 603, "Decline", &call.local_tag, &[], ""));
                }
            }
            _ => {
                call.cseq += 1;
                let via = self.via();
                let headers = dialog_headers(&call, via, "BYE");
                self.out
                    .push_back(write(&format!("BYE {} SIP/2.0", call.target), &headers, ""));
            }
        }
        self.events.push_back(Event::Ended("hung up".into()));
    }

    /// A response to a request of the call.
    pub(super) fn response(&mut self, response: Message) {
        let Some(call) = &mut self.call else {
            // A late final answer to a cancelled INVITE still gets its ACK.
            if response.method() == "INVITE" && response.status >= 300 {
                self.ack_failure(&response);
            }
            return;
        };
        if response.header("Call-ID") != Some(call.call_id.as_str()) {
            if response.method() == "INVITE" && response.status >= 300 {
                self.ack_failure(&response);
            }
            return;
        }
        let (cseq, method) = response.cseq();
        match method {
            "INVITE" if call.reoffer == Some(cseq) => {
                if response.status < 200 {
                    return;
                }
                call.reoffer = None;
                if response.status < 300 {
                    let body = response.body.clone();
                    self.ack(cseq);
                    self.events.push_back(Event::RemoteAnswer(body));
                } else {
                    self.ack_failure(&response);
                    self.events.push_back(Event::ReofferRefused);
                }
            }
            "INVITE" if call.invite.0 == cseq => self.invite_answered(response),
            _ => {}
        }
    }

    fn invite_answered(&mut self, response: Message) {
        let Some(call) = &mut self.call else {
            return;
        };
        let status = response.status;
        if status < 200 {
            if let Stage::Calling { deadline } = &mut call.stage {
                *deadline = None;
            }
            if status > 100 {
                if call.remote_tag.is_none() {
                    call.remote_tag = response.tag("To");
                }
                self.events.push_back(Event::Ringing);
                if !response.body.is_empty() && !call.answered {
                    call.answered = true;
                    self.events.push_back(Event::RemoteAnswer(response.body));
                }
            }
            return;
        }
        if status < 300 {
            call.remote_tag = response.tag("To");
            if let Some(contact) = response.header("Contact") {
                call.target = uri_of(contact).to_owned();
            }
            let first = call.stage != Stage::Up;
            call.stage = Stage::Up;
            let cseq = call.invite.0;
            let body = (!call.answered && !response.body.is_empty()).then(|| response.body.clone());
            call.answered = true;
            self.ack(cseq);
            if let Some(body) = body {
                self.events.push_back(Event::RemoteAnswer(body));
            }
            if first {
                self.events.push_back(Event::Connected);
            }
            return;
        }
        self.ack_failure(&response);
        let Some(call) = &mut self.call else {
            return;
        };
        if matches!(status, 401 | 407) && call.challenged == 0 {
            let name = if status == 401 {
                "WWW-Authenticate"
            } else {
                "Proxy-Authenticate"
            };
            if let Some(challenge) = Challenge::pick(response.values_of(name)) {
                call.challenged += 1;
                call.cseq += 1;
                let target = call.target.clone();
                let cnonce = self.token(16);
                let header = if status == 401 {
                    "Authorization"
                } else {
                    "Proxy-Authorization"
                };
                let value = challenge.answer(
                    &self.account.username,
                    &self.account.password,
                    "INVITE",
                    &target,
                    &cnonce,
                    1,
                );
                self.send_invite(Some((header, value)));
                return;
            }
        }
        self.call = None;
        self.events.push_back(Event::Ended(ended_by(&response)));
    }

    /// The ACK of a 2xx: a request of its own in the dialog.
    fn ack(&mut self, cseq: u32) {
        let via = self.via();
        let Some(call) = &self.call else {
            return;
        };
        let mut headers = dialog_headers(call, via, "ACK");
        if let Some((_, value)) = headers.iter_mut().find(|(n, _)| *n == "CSeq") {
            *value = format!("{cseq} ACK");
        }
        self.out
            .push_back(write(&format!("ACK {} SIP/2.0", call.target), &headers, ""));
    }

    /// The ACK of a failure: part of the INVITE's transaction (its branch,
    /// the response's To).
    fn ack_failure(&mut self, response: &Message) {
        let (cseq, _) = response.cseq();
        let target = self.call.as_ref().map_or_else(
            || format!("sip:{}", self.account.domain),
            |c| c.target.clone(),
        );
        let headers = vec![
            ("Via", response.header("Via").unwrap_or_default().to_owned()),
            ("Max-Forwards", "70".into()),
            ("To", response.header("To").unwrap_or_default().to_owned()),
            (
                "From",
                response.header("From").unwrap_or_default().to_owned(),
            ),
            (
                "Call-ID",
                response.header("Call-ID").unwrap_or_default().to_owned(),
            ),
            ("CSeq", format!("{cseq} ACK")),
        ];
        self.out
            .push_back(write(&format!("ACK {target} SIP/2.0"), &headers, ""));
    }

    /// A request from the server.
    pub(super) fn request(&mut self, request: Message, _now: f64) {
        let method = request.method().to_owned();
        let in_call = self
            .call
            .as_ref()
            .is_some_and(|c| request.header("Call-ID") == Some(c.call_id.as_str()));
        match method.as_str() {
            "INVITE" if in_call => self.reinvite(request),
            "INVITE" => self.incoming(request),
            "ACK" => {
                if in_call
                    && let Some(call) = &mut self.call
                    && call.way == Way::In
                    && call.stage == Stage::Up
                    && call.incoming.is_some()
                {
                    call.incoming = None;
                    self.events.push_back(Event::Connected);
                }
            }
            "CANCEL" => {
                let tag = self
                    .call
                    .as_ref()
                    .map(|c| c.local_tag.clone())
                    .unwrap_or_default();
                self.out
                    .push_back(respond(&request, 200, "OK", &tag, &[], ""));
                if in_call && let Some(call) = self.call.take_if(|c| c.stage == Stage::Offered) {
                    if let Some(invite) = &call.incoming {
                        self.out.push_back(respond(
                            invite,
                            487,
                            "Request Terminated",
                            &call.local_tag,
                            &[],
                            "",
                        ));
                    }
                    let reason = request
                        .header("Reason")
                        .and_then(|r| param(r, "text"))
                        .unwrap_or_else(|| "the caller hung up".into());
                    self.events.push_back(Event::Ended(reason));
                }
            }
            "BYE" if in_call => {
                let tag = self
                    .call
                    .as_ref()
                    .map(|c| c.local_tag.clone())
                    .unwrap_or_default();
                self.out
                    .push_back(respond(&request, 200, "OK", &tag, &[], ""));
                self.call = None;
                self.events
                    .push_back(Event::Ended("the other side hung up".into()));
            }
            "UPDATE" | "INFO" | "OPTIONS" if in_call || method == "OPTIONS" => {
                // Session refreshes and key events change nothing here.
                let tag = self
                    .call
                    .as_ref()
                    .map(|c| c.local_tag.clone())
                    .unwrap_or_default();
                let mut response = respond(&request, 200, "OK", &tag, &[], "");
                if method == "UPDATE" && !request.body.is_empty() {
                    response = respond(&request, 488, "Not Acceptable Here", &tag, &[], "");
                }
                self.out.push_back(response);
            }
            _ => {
                let status = if in_call || method == "BYE" { 481 } else { 405 };
                let reason = if status == 481 {
                    "Call/Transaction Does Not Exist"
                } else {
                    "Method Not Allowed"
                };
                let allow = [("Allow", ALLOW.to_owned())];
                let extra: &[(&str, String)] = if status == 405 { &allow } else { &[] };
                self.out
                    .push_back(respond(&request, status, reason, "", extra, ""));
            }
        }
    }

    fn incoming(&mut self, invite: Message) {
        let tag = self.token(10);
        if self.call.is_some() {
            self.out
                .push_back(respond(&invite, 486, "Busy Here", &tag, &[], ""));
            return;
        }
        if invite.body.is_empty() {
            // The page answers offers; it makes none in a 200.
            self.out
                .push_back(respond(&invite, 488, "Not Acceptable Here", &tag, &[], ""));
            return;
        }
        let from = invite.header("From").unwrap_or_default().to_owned();
        let call = Call {
            way: Way::In,
            stage: Stage::Offered,
            call_id: invite.header("Call-ID").unwrap_or_default().to_owned(),
            local_tag: tag.clone(),
            remote_tag: invite.tag("From"),
            local_uri: uri_of(invite.header("To").unwrap_or_default()).to_owned(),
            remote_uri: uri_of(&from).to_owned(),
            target: invite
                .header("Contact")
                .map_or_else(|| uri_of(&from).to_owned(), |c| uri_of(c).to_owned()),
            cseq: 0,
            invite: (0, String::new()),
            incoming: Some(invite.clone()),
            local_sdp: String::new(),
            answered: true,
            reoffer: None,
            challenged: 0,
        };
        self.call = Some(call);
        let contact = self.contact();
        self.out.push_back(respond(
            &invite,
            180,
            "Ringing",
            &tag,
            &[("Contact", contact)],
            "",
        ));
        self.events.push_back(Event::Incoming {
            caller: caller_of(&from),
            offer: invite.body,
        });
    }

    fn reinvite(&mut self, invite: Message) {
        let contact = self.contact();
        let Some(call) = &mut self.call else {
            return;
        };
        if call.stage != Stage::Up || call.reoffer.is_some() {
            let busy = respond(&invite, 491, "Request Pending", &call.local_tag, &[], "");
            self.out.push_back(busy);
            return;
        }
        if let Some(contact) = invite.header("Contact") {
            call.target = uri_of(contact).to_owned();
        }
        if invite.body.is_empty() {
            // A refresh without an offer: our description again.
            let text = respond(
                &invite,
                200,
                "OK",
                &call.local_tag,
                &[("Contact", contact.clone())],
                &call.local_sdp,
            );
            self.out.push_back(text);
            return;
        }
        call.incoming = Some(invite.clone());
        self.events.push_back(Event::Reoffer(invite.body));
    }
}

/// Why a call ended, from its final answer.
fn ended_by(response: &Message) -> String {
    match response.status {
        404 | 484 => "no such number".into(),
        480 => "not reachable now".into(),
        486 | 600 => "busy".into(),
        487 => "cancelled".into(),
        403 => "not allowed".into(),
        603 => "declined".into(),
        status => format!("{status} {}", response.reason),
    }
}

/// The headers of a request in the call's dialog.
fn dialog_headers(call: &Call, via: String, method: &str) -> Vec<(&'static str, String)> {
    let remote_tag = call
        .remote_tag
        .as_ref()
        .map(|t| format!(";tag={t}"))
        .unwrap_or_default();
    vec![
        ("Via", via),
        ("Max-Forwards", "70".into()),
        ("To", format!("<{}>{remote_tag}", call.remote_uri)),
        (
            "From",
            format!("<{}>;tag={}", call.local_uri, call.local_tag),
        ),
        ("Call-ID", call.call_id.clone()),
        ("CSeq", format!("{} {method}", call.cseq)),
        ("User-Agent", USER_AGENT.into()),
    ]
}

/// A response to `request`, with our To tag (unless it has one or the
/// status is 100) and `extra` headers (our Contact in a 2xx or 1xx to an
/// INVITE).
fn respond(
    request: &Message,
    status: u16,
    reason: &str,
    tag: &str,
    extra: &[(&'static str, String)],
    body: &str,
) -> String {
    let mut headers: Vec<(&str, String)> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Via"))
        .map(|(_, v)| ("Via", v.clone()))
        .collect();
    let to = request.header("To").unwrap_or_default();
    let to = if request.tag("To").is_none() && status > 100 && !tag.is_empty() {
        format!("{to};tag={tag}")
    } else {
        to.to_owned()
    };
    headers.extend([
        ("To", to),
        (
            "From",
            request.header("From").unwrap_or_default().to_owned(),
        ),
        (
            "Call-ID",
            request.header("Call-ID").unwrap_or_default().to_owned(),
        ),
        (
            "CSeq",
            request.header("CSeq").unwrap_or_default().to_owned(),
        ),
        ("User-Agent", USER_AGENT.into()),
    ]);
    headers.extend(extra.iter().cloned());
    if !body.is_empty() {
        headers.push(("Content-Type", "application/sdp".into()));
    }
    write(&format!("SIP/2.0 {status} {reason}"), &headers, body)
}
