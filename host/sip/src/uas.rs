//! The generic UAS checks of RFC 3261 §8.2, run on a parsed and validated
//! request before it reaches its handler.
//!
//! In the order of §8.2: method (§8.2.1: 501 for methods nobody here
//! implements, 405 for known methods this element does not allow),
//! Request-URI scheme (§8.2.2.1: 416), Require (§8.2.2.3: 420), body
//! (§8.2.3: 415 for an unsupported Content-Type or Content-Encoding), and
//! for INVITE an Accept that rules out the SDP answer (§21.4.7: 406).
//!
//! Max-Forwards is not checked here: a UAS processes a request with
//! Max-Forwards 0 normally (RFC 4475 §3.3.11); the value is available from
//! [`crate::grammar::max_forwards`] for the element that forwards.
//!
//! [`check`] says what is wrong as a [`Refusal`]; [`Refusal::response`]
//! builds the answer with the header the status calls for (Allow,
//! Unsupported, Accept, Accept-Encoding); [`inspect`] does both.

use crate::grammar;
use crate::message::{Method, Request, Response};

/// The media type a UAS answers an INVITE with.
const ANSWER_TYPE: &str = "application/sdp";

/// What this element implements, for the §8.2 checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UasPolicy {
    /// Methods this element handles; others get 405 (known methods) or 501
    /// (extension methods). Listed in Allow.
    pub allowed_methods: Vec<Method>,
    /// Option tags this element supports (RFC 3261 §19.2); a Require with
    /// any other gets 420.
    pub supported_extensions: Vec<String>,
    /// Media types accepted in request bodies (compared case-insensitively);
    /// others get 415.
    pub accepted_content_types: Vec<String>,
    /// Request-URI schemes served (case-insensitive); others get 416.
    pub uri_schemes: Vec<String>,
}

impl Default for UasPolicy {
    /// A basic user agent: INVITE, ACK, BYE, CANCEL, OPTIONS; no
    /// extensions; SDP bodies; `sip` and `sips` URIs.
    fn default() -> Self {
        use rsip::Method::*;
        UasPolicy {
            allowed_methods: [Invite, Ack, Bye, Cancel, Options]
                .into_iter()
                .map(Method::from)
                .collect(),
            supported_extensions: Vec::new(),
            accepted_content_types: vec![ANSWER_TYPE.to_owned()],
            uri_schemes: vec!["sip".to_owned(), "sips".to_owned()],
        }
    }
}

/// Why a request is refused by the §8.2 checks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// 501: a method nobody here implements (RFC 3261 §8.2.1).
    #[error("method not implemented")]
    NotImplemented {
        /// The methods this element allows.
        allow: Vec<Method>,
    },
    /// 405: a known method this element does not allow (§8.2.1).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The methods this element allows.
        allow: Vec<Method>,
    },
    /// 416: a Request-URI scheme this element does not serve (§8.2.2.1).
    #[error("unsupported URI scheme {scheme}")]
    UnsupportedUriScheme {
        /// The scheme of the Request-URI.
        scheme: String,
    },
    /// 420: Require lists option tags this element does not support
    /// (§8.2.2.3).
    #[error("unsupported extensions required")]
    BadExtension {
        /// The unsupported option tags, for the Unsupported header.
        unsupported: Vec<String>,
    },
    /// 415: a body of a media type this element does not accept (§8.2.3).
    #[error("unsupported media type")]
    UnsupportedMediaType {
        /// The accepted media types, for the Accept header.
        accept: Vec<String>,
    },
    /// 415: a body with a content coding other than `identity` (§8.2.3).
    #[error("unsupported content encoding")]
    UnsupportedContentEncoding,
    /// 406: an INVITE whose Accept rules out the SDP answer (§21.4.7,
    /// RFC 4475 §3.3.15).
    #[error("answer type not acceptable")]
    NotAcceptable,
}

impl Refusal {
    /// The response status code.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotImplemented { .. } => 501,
            Refusal::MethodNotAllowed { .. } => 405,
            Refusal::UnsupportedUriScheme { .. } => 416,
            Refusal::BadExtension { .. } => 420,
            Refusal::UnsupportedMediaType { .. } | Refusal::UnsupportedContentEncoding => 415,
            Refusal::NotAcceptable => 406,
        }
    }

    /// The response to `request` (RFC 3261 §8.2.6), with the header the
    /// status requires.
    pub fn response(&self, request: &Request, to_tag: Option<&str>) -> Response {
        let mut response = Response::for_request(request, self.status(), to_tag);
        let join = |items: Vec<String>| items.join(", ");
        match self {
            Refusal::NotImplemented { allow } | Refusal::MethodNotAllowed { allow } => {
                let methods = allow.iter().map(|m| m.to_string()).collect();
                response.headers.push("Allow", join(methods));
            }
            Refusal::BadExtension { unsupported } => {
                response
                    .headers
                    .push("Unsupported", join(unsupported.clone()));
            }
            Refusal::UnsupportedMediaType { accept } => {
                response.headers.push("Accept", join(accept.clone()));
            }
            Refusal::UnsupportedContentEncoding => {
                response.headers.push("Accept-Encoding", "identity");
            }
            Refusal::UnsupportedUriScheme { .. } | Refusal::NotAcceptable => {}
        }
        response
    }
}

/// Runs the §8.2 checks. ACK is never refused (it gets no response).
pub fn check(request: &Request, policy: &UasPolicy) -> Result<(), Refusal> {
    if request.method.is_ack() {
        return Ok(());
    }
    if !policy.allowed_methods.contains(&request.method) {
        let allow = policy.allowed_methods.clone();
        return Err(match request.method {
            Method::Extension(_) => Refusal::NotImplemented { allow },
            Method::Known(_) => Refusal::MethodNotAllowed { allow },
        });
    }

    let scheme = request.uri.split(':').next().unwrap_or_default();
    if !policy
        .uri_schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(Refusal::UnsupportedUriScheme {
            scheme: scheme.to_owned(),
        });
    }

    // §8.2.2.3: Require is not applied to CANCEL (nor ACK, handled above).
    if request.method != Method::Known(rsip::Method::Cancel) {
        let unsupported: Vec<String> = list_items(request, "Require")
            .filter(|tag| {
                !policy
                    .supported_extensions
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(tag))
            })
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() {
            return Err(Refusal::BadExtension { unsupported });
        }
    }

    if !request.body.is_empty() {
        let accepted = request
            .headers
            .get("Content-Type")
            .map(media_type)
            .is_some_and(|t| {
                policy
                    .accepted_content_types
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&t))
            });
        if !accepted {
            return Err(Refusal::UnsupportedMediaType {
                accept: policy.accepted_content_types.clone(),
            });
        }
        if list_items(request, "Content-Encoding").any(|c| !c.eq_ignore_ascii_case("identity")) {
            return Err(Refusal::UnsupportedContentEncoding);
        }
    }

    if request.method.is_invite() && request.headers.get("Accept").is_some() {
        // An empty Accept means nothing is acceptable (RFC 3261 §20.1).
        let (kind, _) = ANSWER_TYPE.split_once('/').unwrap_or((ANSWER_TYPE, ""));
        let acceptable = list_items(request, "Accept")
            .map(media_type)
            .any(|range| range == ANSWER_TYPE || range == "*/*" || range == format!("{kind}/*"));
        if !acceptable {
            return Err(Refusal::NotAcceptable);
        }
    }
    Ok(())
}

/// Runs [`check`] and turns a refusal into its response, with a To tag
/// derived from the request ([`Request::stateless_tag`]) so that a
/// retransmission is answered identically.
pub fn inspect(request: &Request, policy: &UasPolicy) -> Result<(), Response> {
    check(request, policy).map_err(|refusal| {
        let tag = request.stateless_tag();
        refusal.response(request, Some(&tag))
    })
}

/// The comma-separated items of every `name` field, trimmed, empty ones
/// skipped.
fn list_items<'a>(request: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    request
        .headers
        .get_all(name)
        .flat_map(|v| grammar::split_list(v).unwrap_or_default())
        .filter(|item| !item.is_empty())
}

/// `type/subtype` of a media type or range, lower-cased, parameters and
/// whitespace removed.
fn media_type(value: &str) -> String {
    let essence = value.split(';').next().unwrap_or_default();
    essence
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;

    fn request(method: &str, uri: &str, extra: &[(&str, &str)], body: &[u8]) -> Request {
        let mut headers = Headers::default();
        headers.push("Via", "SIP/2.0/UDP h;branch=z9hG4bK1");
        headers.push("To", "<sip:b@example.com>");
        headers.push("From", "<sip:a@example.com>;tag=1");
        headers.push("Call-ID", "c1");
        headers.push("CSeq", format!("1 {method}"));
        for (name, value) in extra {
            headers.push(*name, *value);
        }
        Request {
            method: Method::from_token(method),
            uri: uri.to_owned(),
            headers,
            body: body.to_vec(),
        }
    }

    #[test]
    fn method_checks() {
        let policy = UasPolicy::default();
        let r = request("FOO", "sip:b@example.com", &[], b"");
        let response = inspect(&r, &policy).expect_err("501");
        assert_eq!(response.status, 501);
        assert_eq!(
            response.headers.get("Allow"),
            Some("INVITE, ACK, BYE, CANCEL, OPTIONS")
        );
        assert!(grammar::has_tag(
            response.headers.get("To").unwrap_or_default()
        ));
        let r = request("REGISTER", "sip:example.com", &[], b"");
        assert_eq!(check(&r, &policy).map_err(|e| e.status()), Err(405));
        let r = request("OPTIONS", "sip:b@example.com", &[], b"");
        assert_eq!(check(&r, &policy), Ok(()));
    }

    #[test]
    fn scheme_require_and_body_checks() {
        let policy = UasPolicy::default();
        let r = request("OPTIONS", "tel:+15551234", &[], b"");
        assert_eq!(check(&r, &policy).map_err(|e| e.status()), Err(416));

        let r = request(
            "OPTIONS",
            "sip:b@example.com",
            &[("Require", "foo, 100rel")],
            b"",
        );
        let response = inspect(&r, &policy).expect_err("420");
        assert_eq!(response.headers.get("Unsupported"), Some("foo, 100rel"));
        let r = request("CANCEL", "sip:b@example.com", &[("Require", "foo")], b"");
        assert_eq!(check(&r, &policy), Ok(()));

        let r = request(
            "INVITE",
            "sip:b@example.com",
            &[("Content-Type", "text/plain")],
            b"x",
        );
        let response = inspect(&r, &policy).expect_err("415");
        assert_eq!(response.headers.get("Accept"), Some("application/sdp"));
        let r = request("INVITE", "sip:b@example.com", &[], b"x");
        assert_eq!(check(&r, &policy).map_err(|e| e.status()), Err(415));
        let r = request(
            "INVITE",
            "sip:b@example.com",
            &[
                ("Content-Type", "Application/SDP ; x=1"),
                ("Content-Encoding", "gzip"),
            ],
            b"x",
        );
        assert_eq!(check(&r, &policy), Err(Refusal::UnsupportedContentEncoding));
    }

    #[test]
    fn accept_checks() {
        let policy = UasPolicy::default();
        let sdp = ("Content-Type", "application/sdp");
        let r = request(
            "INVITE",
            "sip:b@example.com",
            &[sdp, ("Accept", "text/nobodyKnowsThis")],
            b"v=0",
        );
        assert_eq!(check(&r, &policy), Err(Refusal::NotAcceptable));
        for accept in [
            "application/sdp;level=1, text/plain",
            "*/*",
            "application/*",
        ] {
            let r = request(
                "INVITE",
                "sip:b@example.com",
                &[sdp, ("Accept", accept)],
                b"v=0",
            );
            assert_eq!(check(&r, &policy), Ok(()), "{accept}");
        }
        let r = request("OPTIONS", "sip:b@example.com", &[("Accept", "text/x")], b"");
        assert_eq!(check(&r, &policy), Ok(()));
    }
}
