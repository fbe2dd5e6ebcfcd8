//! HTTP digest authentication as a SIP client answers it (RFC 8760, RFC
//! 7616): SHA-256 when the server offers it, MD5 otherwise.

use md5::Md5;
use sha2::{Digest, Sha256};

/// A challenge from `WWW-Authenticate` or `Proxy-Authenticate`.
#[derive(Clone, Debug, PartialEq)]
pub struct Challenge {
    /// `SHA-256` or `MD5`.
    pub algorithm: &'static str,
    /// The realm.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Echoed back when present.
    pub opaque: Option<String>,
    /// Whether `qop=auth` is offered (else the RFC 2069 form).
    pub qop_auth: bool,
}

/// The parameters of a `Digest ...` value; `None` for another scheme.
fn params(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim();
    let (scheme, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let (mut out, mut chars) = (Vec::new(), rest.chars().peekable());
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return Some(out);
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
}

impl Challenge {
    /// The challenge to answer among `values`: the first SHA-256 one, else
    /// the first MD5 one.
    pub fn pick<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        let mut found: Vec<Challenge> = values.into_iter().filter_map(Challenge::parse).collect();
        found.sort_by_key(|c| c.algorithm != "SHA-256");
        found.into_iter().next()
    }

    fn parse(value: &str) -> Option<Challenge> {
        let params = params(value)?;
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm").as_deref() {
            None => "MD5",
            Some(a) if a.eq_ignore_ascii_case("MD5") => "MD5",
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => "SHA-256",
            Some(_) => return None,
        };
        Some(Challenge {
            algorithm,
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            qop_auth: get("qop").is_some_and(|q| q.split(',').any(|q| q.trim() == "auth")),
        })
    }

    fn hash(&self, text: &str) -> String {
        let bytes: Vec<u8> = if self.algorithm == "SHA-256" {
            Sha256::digest(text.as_bytes()).to_vec()
        } else {
            Md5::digest(text.as_bytes()).to_vec()
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The `Authorization` value answering this challenge for `method` on
    /// `uri`, with client nonce `cnonce` and count `nc`.
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let ha1 = self.hash(&format!("{username}:{}:{password}", self.realm));
        let ha2 = self.hash(&format!("{method}:{uri}"));
        let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            self.algorithm
        );
        let response = if self.qop_auth {
            let nc = format!("{nc:08x}");
            value.push_str(&format!(
                ", qop=auth, nc={nc}, cnonce=\"{}\"",
                quote(cnonce)
            ));
            self.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            self.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        value.push_str(&format!(", response=\"{response}\""));
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_preferred_and_unknown_algorithms_are_skipped() {
        let picked = Challenge::pick([
            "Digest realm=\"r\", nonce=\"a\", algorithm=MD5-sess",
            "Digest realm=\"r\", nonce=\"b\", algorithm=MD5, qop=\"auth\"",
            "Digest realm=\"r\", nonce=\"c\", algorithm=SHA-256, qop=\"auth,auth-int\", opaque=\"o\"",
        ])
        .expect("a challenge");
        assert_eq!((picked.algorithm, picked.nonce.as_str()), ("SHA-256", "c"));
        assert!(picked.qop_auth);
        assert_eq!(picked.opaque.as_deref(), Some("o"));
        assert!(Challenge::pick(["Basic realm=\"r\""]).is_none());
    }

    #[test]
    fn the_rfc_2617_example_is_answered() {
        // RFC 2617 §3.5, with the method and URI of its example.
        let challenge = Challenge {
            algorithm: "MD5",
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            qop_auth: true,
        };
        let value = challenge.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        );
        assert!(
            value.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{value}"
        );
        assert!(value.contains("nc=00000001"), "{value}");
    }

    #[test]
    fn the_rfc_7616_sha256_example_is_answered() {
        // RFC 7616 §3.9.1.
        let challenge = Challenge {
            algorithm: "SHA-256",
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            opaque: None,
            qop_auth: true,
        };
        let value = challenge.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert!(
            value.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{value}"
        );
    }
}
