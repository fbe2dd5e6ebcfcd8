//! A phone watching lines: SUBSCRIBE through the digest challenge, its
//! NOTIFYs answered.

use edgepbx_sip::{Method, Request, Response};

use super::{DOMAIN, Sim, Ua};

/// A phone watching lines: its subscription dialog is read from what it
/// sent and received.
pub struct Watcher {
    pub ua: Ua,
    pub call_id: String,
    pub cseq: u32,
    /// The To tag the engine gave the subscription.
    pub tag: Option<String>,
    /// Our From tag.
    pub from_tag: String,
}

impl Watcher {
    pub fn new(number: &str, port: u16) -> Watcher {
        Watcher {
            ua: Ua::new(number, port),
            call_id: format!("sub-{port}@sim"),
            cseq: 0,
            tag: None,
            from_tag: format!("w-{port}"),
        }
    }

    /// A SUBSCRIBE for `event` of `target` asking `expires` seconds.
    pub fn subscribe_request(&mut self, target: &str, event: &str, expires: u32) -> Request {
        self.cseq += 1;
        let mut r = Request {
            method: Method::from_token("SUBSCRIBE"),
            uri: format!("sip:{target}@{DOMAIN}"),
            headers: Default::default(),
            body: Vec::new(),
        };
        let via = self.ua.via();
        let number = self.ua.number.clone();
        let h = &mut r.headers;
        h.push("Via", via);
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!("<sip:{number}@{DOMAIN}>;tag={}", self.from_tag),
        );
        match &self.tag {
            Some(tag) => h.push("To", format!("<sip:{target}@{DOMAIN}>;tag={tag}")),
            None => h.push("To", format!("<sip:{target}@{DOMAIN}>")),
        }
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{} SUBSCRIBE", self.cseq));
        h.push("Contact", format!("<sip:{number}@{}>", self.ua.addr));
        h.push("Event", event);
        h.push("Expires", expires.to_string());
        r
    }

    /// Subscribes (or refreshes) through the digest challenge; returns
    /// the engine's final answer.
    pub fn subscribe(
        &mut self,
        sim: &mut Sim,
        target: &str,
        event: &str,
        expires: u32,
    ) -> Response {
        let request = self.subscribe_request(target, event, expires);
        self.authenticated(sim, request)
    }

    /// Sends `request` through the digest challenge; returns the engine's
    /// final answer.
    pub fn authenticated(&mut self, sim: &mut Sim, request: Request) -> Response {
        sim.send(self.ua.addr, request.clone());
        let challenge = sim.response(self.ua.addr, 407);
        self.cseq += 1;
        let mut again = self.ua.with_credentials(&request, &challenge);
        again
            .headers
            .set("CSeq", format!("{} SUBSCRIBE", self.cseq));
        sim.send(self.ua.addr, again);
        let answer = sim
            .responses(self.ua.addr)
            .into_iter()
            .find(|r| r.status >= 200)
            .expect("a final answer");
        if answer.status == 200 && self.tag.is_none() {
            self.tag = to_tag(&answer);
        }
        answer
    }

    /// The NOTIFYs received so far, each answered with `status`.
    pub fn notifies(&mut self, sim: &mut Sim, status: u16) -> Vec<Request> {
        let notifies = sim.requests(self.ua.addr, "NOTIFY");
        for n in &notifies {
            sim.send(self.ua.addr, Response::for_request(n, status, None));
        }
        notifies
    }

    /// The one NOTIFY received since the last look, answered 200.
    pub fn notify(&mut self, sim: &mut Sim) -> Request {
        let mut n = self.notifies(sim, 200);
        assert_eq!(n.len(), 1, "one NOTIFY: {n:?}");
        n.remove(0)
    }
}

pub fn to_tag(r: &Response) -> Option<String> {
    let to = r.headers.get("To")?;
    Some(to.split(";tag=").nth(1)?.split(';').next()?.to_owned())
}
