//! Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): the server
//! side, and the client side that answers a carrier's challenge
//! ([`DigestChallenge`], [`authorized`]).
//!
//! A registrar or UAS challenges a request with `401` and `WWW-Authenticate`,
//! a proxy with `407` and `Proxy-Authenticate`; the client answers with
//! `Authorization` or `Proxy-Authorization` (RFC 3261 §22.2, §22.3). The two
//! pairs use the same syntax, so this module serves both; the caller picks
//! the header names and the status code.
//!
//! Like the rest of the crate the module is sans-IO: it reads no clock and
//! owns no random number generator. The caller passes the current time (unix
//! seconds) and 16 random bytes per challenge.
//!
//! # Flow
//!
//! 1. [`DigestResponse::select`] finds and parses the Digest credentials for
//!    the realm among the request's `Authorization` values. It returns the
//!    final [`Verdict`] at once when there is nothing to check.
//! 2. The caller looks up the stored [`Credentials`] (HA1 values, never
//!    passwords) by [`DigestResponse::username`]; the lookup may be async.
//! 3. [`DigestAuthenticator::verify`] checks the response and returns the
//!    [`Verdict`]. Anything but [`Verdict::Authenticated`] is answered with a
//!    fresh [`DigestAuthenticator::challenge`] (`stale=true` after
//!    [`Verdict::Stale`]), or with `403` if the caller so decides.
//!
//! # Decisions
//!
//! - **Algorithms.** `SHA-256` and `MD5` are offered, SHA-256 first (RFC 8760
//!   §2.4); both challenges share one nonce. The `-sess` variants,
//!   `SHA-512-256` and anything else are rejected as unsupported; a response
//!   without `algorithm` means MD5 (RFC 7616 §3.3).
//! - **qop.** Only `qop=auth` is accepted. The RFC 2069 form without qop has
//!   no nonce count, so it cannot be protected against replay, and
//!   `auth-int` is not offered.
//! - **Nonces** are stateless and integrity-protected:
//!   `base64url(timestamp ‖ random ‖ HMAC-SHA256(key, timestamp ‖ random ‖
//!   realm)[..16])`. A nonce therefore only works for the realm it was issued
//!   for and for as long as the TTL; an expired nonce with a correct response
//!   yields [`Verdict::Stale`] (RFC 7616 §3.3), so the client retries without
//!   asking its user.
//! - **Replay.** The highest nonce count accepted per nonce is kept in a
//!   bounded map; a repeated or lower count is rejected. Entries leave the
//!   map when their nonce expires or, when the map is full, oldest first; a
//!   nonce that has left the map early is treated as stale, so eviction
//!   never reopens a replay window. Counts are recorded only after a correct
//!   response, so a forged request cannot burn a client's counts.
//! - **User enumeration.** An unknown user and a wrong password give the
//!   same [`RejectReason::BadCredentials`], after the same hashing: an
//!   unknown user is checked against a secret dummy HA1.
//! - **Request-URI.** The `uri` parameter must equal the Request-URI
//!   exactly, as text (RFC 7616 §3.4.6, RFC 3261 §22.4).
//! - **Usernames.** `username*` (RFC 7616 §3.4.4) with charset UTF-8 is
//!   decoded; `userhash=true` is rejected because it is never offered.
//! - **Limits.** Values longer than [`MAX_HEADER_LEN`] bytes or with more
//!   than [`MAX_PARAMS`] parameters are rejected. Nothing here panics on
//!   input, and errors name what was wrong without echoing the input.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::grammar::parse_cseq;
use crate::{Request, Response};

/// The nonce lifetime the server uses unless configured otherwise.
pub const DEFAULT_NONCE_TTL_SECS: u64 = 300;

/// The longest `Authorization` value accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 4096;

/// The most auth-params accepted in one `Authorization` value.
pub const MAX_PARAMS: usize = 32;

/// Random bytes per nonce, supplied by the caller.
const RANDOM_LEN: usize = 16;
/// Bytes of the HMAC kept in the nonce (128 bits).
const TAG_LEN: usize = 16;
/// Timestamp (8, big-endian) + random + truncated HMAC.
const NONCE_LEN: usize = 8 + RANDOM_LEN + TAG_LEN;
/// Length of the nonce once base64url-encoded without padding.
const NONCE_TEXT_LEN: usize = (NONCE_LEN * 4).div_ceil(3);

/// A decoded nonce. Its first 8 bytes are the big-endian issue time, so the
/// byte order of nonces is their age order.
type NonceBytes = [u8; NONCE_LEN];

/// Domain separation for the server key's three uses.
const NONCE_DOMAIN: &[u8] = b"edgepbx digest nonce v1\0";
const OPAQUE_DOMAIN: &[u8] = b"edgepbx digest opaque v1\0";
const DUMMY_DOMAIN: &[u8] = b"edgepbx digest dummy ha1 v1\0";
const BOOT_DOMAIN: &[u8] = b"edgepbx digest boot v1\0";

/// The key one run of a server seals its nonces with: the server's key
/// bound to a value of this run (`boot`, random at each start). Nonce
/// counts live in memory, so a nonce of an earlier run must not open: its
/// counts are gone and its answers could be replayed.
pub fn boot_key(server_key: &[u8; 32], boot: &[u8]) -> [u8; 32] {
    mac(server_key, BOOT_DOMAIN, &[boot])
}

// ---------------------------------------------------------------------------
// Algorithms and HA1

/// A digest algorithm (RFC 7616 §3.3, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`: the RFC 3261 default, still the only one many phones know.
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The algorithms offered in challenges, preferred first (RFC 8760
    /// §2.4).
    pub const OFFERED: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm` value, case-insensitively. The `-sess`
    /// variants and other algorithms give `None`.
    pub fn from_token(token: &str) -> Option<Self> {
        Self::OFFERED
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether `text` has the form of an HA1 of this algorithm: as many
    /// hex digits as the digest has.
    fn is_ha1(self, text: &str) -> bool {
        let len = match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        };
        text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
    }

    /// `H(data)` in lower-case hex.
    fn hex_digest(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `H(username ":" realm ":" password)` in lower-case hex: the HA1 that a
/// credential store keeps instead of the password (RFC 7616 §3.4.2).
pub fn ha1(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm.hex_digest(format!("{username}:{realm}:{password}").as_bytes())
}

/// The stored secret of one user in one realm: an HA1 per algorithm.
///
/// `Debug` does not show the values: an HA1 is as good as the password for
/// that realm.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// HA1 for MD5, lower-case hex.
    pub md5: String,
    /// HA1 for SHA-256, lower-case hex.
    pub sha256: String,
}

impl Credentials {
    /// Derives both HA1 values from a password.
    pub fn from_password(username: &str, realm: &str, password: &str) -> Self {
        Credentials {
            md5: ha1(Algorithm::Md5, username, realm, password),
            sha256: ha1(Algorithm::Sha256, username, realm, password),
        }
    }

    /// The HA1 for `algorithm`.
    pub fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("md5", &"<redacted>")
            .field("sha256", &"<redacted>")
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Errors and outcomes

/// Why an `Authorization` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The value is longer than [`MAX_HEADER_LEN`].
    #[error("authorization value of {len} bytes exceeds {max}")]
    TooLong {
        /// Length of the value in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_PARAMS`] parameters.
    #[error("more than {max} auth-params")]
    TooManyParams {
        /// The limit.
        max: usize,
    },
    /// A quoted string has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuote,
    /// A character the grammar does not allow at this point.
    #[error("unexpected character at offset {at}")]
    Unexpected {
        /// Byte offset in the value.
        at: usize,
    },
    /// A required parameter is absent.
    #[error("missing parameter {name}")]
    MissingParam {
        /// The parameter's name.
        name: &'static str,
    },
    /// A parameter occurs twice.
    #[error("duplicate parameter {name}")]
    DuplicateParam {
        /// The parameter's name.
        name: &'static str,
    },
    /// Both `username` and `username*` are present (RFC 7616 §3.4.4).
    #[error("both username and username* present")]
    AmbiguousUsername,
    /// `username*` is not `UTF-8'[language]'value` with valid %-escapes
    /// and valid UTF-8.
    #[error("malformed username*")]
    BadExtendedUsername,
    /// `nc` is not 1 to 8 hex digits or is zero.
    #[error("malformed nonce count")]
    BadNonceCount,
}

/// Why a response was not accepted. Every reason is answered with a fresh
/// challenge (or, at the caller's choice, `403`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The `Authorization` value could not be parsed.
    #[error("malformed credentials: {0}")]
    Malformed(#[from] AuthError),
    /// The response is for another realm.
    #[error("realm does not match")]
    RealmMismatch,
    /// The algorithm is not one that was offered.
    #[error("algorithm not offered")]
    UnsupportedAlgorithm,
    /// qop is absent (RFC 2069 form) or not `auth`.
    #[error("qop must be auth")]
    UnsupportedQop,
    /// The `uri` parameter is not the Request-URI.
    #[error("digest uri does not match the Request-URI")]
    UriMismatch,
    /// `opaque` is not the value the challenge carried.
    #[error("opaque does not match")]
    OpaqueMismatch,
    /// `userhash=true`, which is never offered.
    #[error("userhash not supported")]
    UserhashUnsupported,
    /// The nonce was not issued by this server for this realm (tampered,
    /// truncated, or made with another key).
    #[error("invalid nonce")]
    InvalidNonce,
    /// The nonce count was already used with this nonce.
    #[error("nonce count replayed")]
    ReplayedNonceCount,
    /// Unknown user or wrong password with an expired nonce: challenged
    /// again like any failure (never `stale`, which would tell the client
    /// its password was right), but proving nothing about the sender.
    #[error("expired nonce")]
    ExpiredNonce,
    /// Unknown user or wrong password, with a valid and unexpired nonce
    /// issued to this client; the two are deliberately the same.
    #[error("bad credentials")]
    BadCredentials,
}

/// The outcome of authenticating one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The response is correct, fresh and not replayed.
    Authenticated {
        /// The username from the header (decoded if sent as `username*`).
        username: String,
        /// The algorithm the client used.
        algorithm: Algorithm,
    },
    /// The response is correct but its nonce has expired: challenge again
    /// with `stale=true` (RFC 7616 §3.3).
    Stale,
    /// The response is not accepted. An unknown user and a wrong password
    /// both give [`RejectReason::BadCredentials`].
    Rejected(RejectReason),
    /// No Digest credentials: no header, or only other schemes such as
    /// `NoOp` (RFC 4475 §3.3.7, regaut01). Challenge.
    NoCredentials,
}

// ---------------------------------------------------------------------------
// The client's response

/// The Digest credentials of one `Authorization` or `Proxy-Authorization`
/// value (RFC 7616 §3.4, RFC 3261 §25.1 `digest-response`), unquoted.
///
/// `Debug` does not show the `response` hash.
#[derive(Clone, PartialEq, Eq)]
pub struct DigestResponse {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Option<String>,
    cnonce: Option<String>,
    /// As sent (it is hashed as sent) and as a number.
    nc: Option<(String, u32)>,
    qop: Option<String>,
    opaque: Option<String>,
    userhash: bool,
}

impl DigestResponse {
    /// Parses one header value. `Ok(None)` means another scheme (`Basic`,
    /// `NoOp`, ...), which the caller treats as no credentials.
    ///
    /// Parameter names are case-insensitive and may come in any order;
    /// values may be quoted strings (with `\` escapes) or bare tokens;
    /// empty list elements and unknown parameters are ignored.
    pub fn parse(value: &str) -> Result<Option<Self>, AuthError> {
        match digest_params(value)? {
            Some(params) => Self::from_params(params),
            None => Ok(None),
        }
    }

    /// Picks the credentials for `realm` among all `Authorization` (or all
    /// `Proxy-Authorization`) values of a request, so that the caller can
    /// look up the user's [`Credentials`] before
    /// [`DigestAuthenticator::verify`].
    ///
    /// Preference: a Digest value for `realm`; else the first parse error
    /// (as `Rejected(Malformed)`); else a Digest value for another realm
    /// (which `verify` rejects as [`RejectReason::RealmMismatch`]); else
    /// [`Verdict::NoCredentials`].
    pub fn select<'v>(
        values: impl IntoIterator<Item = &'v str>,
        realm: &str,
    ) -> Result<Self, Verdict> {
        let mut other_realm = None;
        let mut error = None;
        for value in values {
            match Self::parse(value) {
                Ok(Some(response)) if response.realm == realm => return Ok(response),
                Ok(Some(response)) => {
                    other_realm.get_or_insert(response);
                }
                Ok(None) => {}
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        match (error, other_realm) {
            (Some(e), _) => Err(Verdict::Rejected(RejectReason::Malformed(e))),
            (None, Some(response)) => Ok(response),
            (None, None) => Err(Verdict::NoCredentials),
        }
    }

    /// The username to look the credentials up by.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The realm the client answered.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The `uri` parameter.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The `algorithm` parameter as sent, if any (absent means MD5).
    pub fn algorithm(&self) -> Option<&str> {
        self.algorithm.as_deref()
    }

    fn from_params(params: Vec<(&str, String)>) -> Result<Option<Self>, AuthError> {
        const NAMES: [&str; 12] = [
            "username",
            "username*",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "cnonce",
            "nc",
            "qop",
            "opaque",
            "userhash",
        ];
        let mut found: [Option<String>; 12] = Default::default();
        for (name, value) in params {
            let slot = NAMES
                .iter()
                .zip(found.iter_mut())
                .find(|(known, _)| known.eq_ignore_ascii_case(name));
            if let Some((known, slot)) = slot {
                if slot.is_some() {
                    return Err(AuthError::DuplicateParam { name: known });
                }
                *slot = Some(value);
            }
        }
        let [
            username,
            username_ext,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            nc,
            qop,
            opaque,
            userhash,
        ] = found;
        let username = match (username, username_ext) {
            (Some(_), Some(_)) => return Err(AuthError::AmbiguousUsername),
            (Some(plain), None) => plain,
            (None, Some(extended)) => decode_ext_value(&extended)?,
            (None, None) => return Err(AuthError::MissingParam { name: "username" }),
        };
        let required = |value: Option<String>, name| value.ok_or(AuthError::MissingParam { name });
        let nc = match nc {
            Some(text) => {
                let count = parse_nonce_count(&text).ok_or(AuthError::BadNonceCount)?;
                Some((text, count))
            }
            None => None,
        };
        Ok(Some(DigestResponse {
            username,
            realm: required(realm, "realm")?,
            nonce: required(nonce, "nonce")?,
            uri: required(uri, "uri")?,
            response: required(response, "response")?,
            algorithm,
            cnonce,
            nc,
            qop,
            opaque,
            userhash: userhash.is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }))
    }
}

impl fmt::Debug for DigestResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestResponse")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("uri", &self.uri)
            .field("algorithm", &self.algorithm)
            .field("qop", &self.qop)
            .field("nc", &self.nc.as_ref().map(|(_, n)| n))
            .field("response", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `token` characters (RFC 3261 §25.1), plus `*` for `username*`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn skip_while(bytes: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while bytes.get(i).is_some_and(|b| keep(*b)) {
        i += 1;
    }
    i
}

fn skip_ws(bytes: &[u8], i: usize) -> usize {
    skip_while(bytes, i, is_ws)
}

/// Parses `#auth-param` from `start` to the end of `value`: comma-separated
/// `name = (token / quoted-string)` with LWS around `=` and `,`; empty list
/// elements are skipped (RFC 7230 §7).
/// The auth-params of a `Digest` credentials or challenge value; `None`
/// for another scheme.
fn digest_params(value: &str) -> Result<Option<Vec<(&str, String)>>, AuthError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(AuthError::TooLong {
            len: value.len(),
            max: MAX_HEADER_LEN,
        });
    }
    let bytes = value.as_bytes();
    let start = skip_ws(bytes, 0);
    let scheme_end = skip_while(bytes, start, is_token_byte);
    let scheme = value.get(start..scheme_end).unwrap_or("");
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Ok(None);
    }
    if bytes.get(scheme_end).is_some_and(|b| !is_ws(*b)) {
        return Err(AuthError::Unexpected { at: scheme_end });
    }
    parse_params(value, scheme_end).map(Some)
}

fn parse_params(value: &str, start: usize) -> Result<Vec<(&str, String)>, AuthError> {
    let bytes = value.as_bytes();
    let mut params = Vec::new();
    let mut i = start;
    loop {
        i = skip_while(bytes, i, |b| is_ws(b) || b == b',');
        if i >= bytes.len() {
            return Ok(params);
        }
        let name_end = skip_while(bytes, i, is_token_byte);
        // Token bytes are ASCII, so both ends are char boundaries.
        let name = value
            .get(i..name_end)
            .filter(|n| !n.is_empty())
            .ok_or(AuthError::Unexpected { at: i })?;
        i = skip_ws(bytes, name_end);
        if bytes.get(i) != Some(&b'=') {
            return Err(AuthError::Unexpected { at: i });
        }
        i = skip_ws(bytes, i + 1);
        let param_value = if bytes.get(i) == Some(&b'"') {
            let (content, next) = quoted_string(value, i)?;
            i = next;
            content
        } else {
            // Tolerant: anything up to LWS or a comma, as long as it is not
            // a control character or a quote.
            let end = skip_while(bytes, i, |b| {
                !is_ws(b) && b != b',' && b != b'"' && b >= 0x20 && b != 0x7f
            });
            let token = value
                .get(i..end)
                .filter(|t| !t.is_empty())
                .ok_or(AuthError::Unexpected { at: i })?;
            // The C1 controls (U+0080 to U+009F) too, as in a quoted
            // string: an answer could not carry them back.
            if let Some((offset, _)) = token.char_indices().find(|(_, c)| c.is_control()) {
                return Err(AuthError::Unexpected { at: i + offset });
            }
            i = end;
            token.to_owned()
        };
        if params.len() == MAX_PARAMS {
            return Err(AuthError::TooManyParams { max: MAX_PARAMS });
        }
        params.push((name, param_value));
        i = skip_ws(bytes, i);
        match bytes.get(i) {
            None => return Ok(params),
            Some(b',') => i += 1,
            Some(_) => return Err(AuthError::Unexpected { at: i }),
        }
    }
}

/// Parses the quoted string whose opening quote is at `open`; returns its
/// content with quoted-pairs resolved and the offset after the closing
/// quote. Control characters other than HTAB are refused, escaped or not.
fn quoted_string(value: &str, open: usize) -> Result<(String, usize), AuthError> {
    let body_start = open + 1;
    let body = value
        .get(body_start..)
        .ok_or(AuthError::UnterminatedQuote)?;
    let mut content = String::new();
    let mut chars = body.char_indices();
    while let Some((offset, c)) = chars.next() {
        let (at, c) = match c {
            '"' => return Ok((content, body_start + offset + 1)),
            '\\' => match chars.next() {
                Some((escaped_at, escaped)) => (escaped_at, escaped),
                None => break,
            },
            c => (offset, c),
        };
        if c.is_control() && c != '\t' {
            return Err(AuthError::Unexpected {
                at: body_start + at,
            });
        }
        content.push(c);
    }
    Err(AuthError::UnterminatedQuote)
}

/// Decodes an RFC 8187 `ext-value` in charset UTF-8 (`username*`).
fn decode_ext_value(text: &str) -> Result<String, AuthError> {
    let mut parts = text.splitn(3, '\'');
    let (Some(charset), Some(_language), Some(encoded)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::BadExtendedUsername);
    };
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return Err(AuthError::BadExtendedUsername);
    }
    let octets = crate::grammar::unescape(encoded).map_err(|_| AuthError::BadExtendedUsername)?;
    String::from_utf8(octets).map_err(|_| AuthError::BadExtendedUsername)
}

/// `nc-value = 8LHEX` (RFC 7616 §3.4), tolerating fewer digits and upper
/// case; zero is not a valid count.
fn parse_nonce_count(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok().filter(|n| *n > 0)
}

/// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))` (RFC 7616 §3.4.1, §3.4.3).
/// Returns `None` when nc, cnonce or qop is missing.
fn expected_response(
    algorithm: Algorithm,
    ha1: &str,
    response: &DigestResponse,
    method: &str,
) -> Option<String> {
    let (nc, _) = response.nc.as_ref()?;
    let cnonce = response.cnonce.as_deref()?;
    let qop = response.qop.as_deref()?;
    let ha2 = algorithm.hex_digest(format!("{method}:{}", response.uri).as_bytes());
    let kd = format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", response.nonce);
    Some(algorithm.hex_digest(kd.as_bytes()))
}

/// Compares in time that depends only on the lengths, which are public.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Writes `text` as a quoted string. Control characters cannot appear in a
/// header field and are dropped.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars().filter(|c| !c.is_control() || *c == '\t') {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// The client side

/// A digest challenge received from a server (`WWW-Authenticate` or
/// `Proxy-Authenticate`), for when edgepbx is the client: a trunk
/// registering to a carrier, a call sent through one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// The realm, to hash with the password.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// Returned unchanged, when present.
    pub opaque: Option<String>,
    /// The algorithm to answer with.
    pub algorithm: Algorithm,
    /// Whether the server offers `qop=auth` (else the RFC 2069 form).
    pub qop_auth: bool,
    /// The previous answer used an expired nonce: answering this one with
    /// the same password is expected to succeed.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses one challenge. `Ok(None)` for another scheme, an algorithm
    /// this crate does not implement, or a `qop` without `auth`.
    pub fn parse(value: &str) -> Result<Option<Self>, AuthError> {
        let Some(params) = digest_params(value)? else {
            return Ok(None);
        };
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(token) => match Algorithm::from_token(&token) {
                Some(algorithm) => algorithm,
                None => return Ok(None),
            },
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(qops) => {
                if !qops
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
                {
                    return Ok(None);
                }
                true
            }
        };
        Ok(Some(DigestChallenge {
            realm: get("realm").ok_or(AuthError::MissingParam { name: "realm" })?,
            nonce: get("nonce").ok_or(AuthError::MissingParam { name: "nonce" })?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }))
    }

    /// The strongest challenge this crate can answer among a response's
    /// values (SHA-256 before MD5, RFC 8760 §2.4); unparsable ones skipped.
    pub fn pick<'v>(values: impl IntoIterator<Item = &'v str>) -> Option<Self> {
        let mut best: Option<DigestChallenge> = None;
        for challenge in values
            .into_iter()
            .filter_map(|v| Self::parse(v).ok().flatten())
        {
            let better = best.as_ref().is_none_or(|b| {
                b.algorithm == Algorithm::Md5 && challenge.algorithm == Algorithm::Sha256
            });
            if better {
                best = Some(challenge);
            }
        }
        best
    }

    /// The `Authorization` (or `Proxy-Authorization`) value answering this
    /// challenge for `method` on `uri`, with a client nonce and the nonce
    /// count (1 for the first use of this nonce).
    pub fn authorization(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let a = self.algorithm;
        let ha1 = ha1(a, username, &self.realm, password);
        let ha2 = a.hex_digest(format!("{method}:{uri}").as_bytes());
        let nc = format!("{nc:08x}");
        let response = if self.qop_auth {
            a.hex_digest(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce).as_bytes())
        } else {
            a.hex_digest(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes())
        };
        let mut value = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            a.as_str()
        );
        if self.qop_auth {
            value.push_str(&format!(", qop=auth, nc={nc}, cnonce={}", quote(cnonce)));
        }
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque={}", quote(opaque)));
        }
        value
    }
}

/// `request` again with credentials answering `challenge` (a 401 or 407
/// to it), as a client does (RFC 3261 §22.2): the next CSeq, the answer in
/// Authorization or Proxy-Authorization, no Via (the transaction that
/// sends it adds one). `cnonce` is the client's fresh nonce. `None` when
/// the challenge cannot be answered.
pub fn authorized(
    request: &Request,
    challenge: &Response,
    user: &str,
    password: &str,
    cnonce: &str,
) -> Option<Request> {
    let (offered, answer) = if challenge.status == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    };
    let digest = DigestChallenge::pick(challenge.headers.get_all(offered))?;
    let cseq = parse_cseq(request.headers.get("CSeq")?).ok()?;
    let method = request.method.as_str();
    let value = digest.authorization(&method, &request.uri, user, password, cnonce, 1);
    let mut next = request.clone();
    next.headers.remove("Via");
    next.headers.remove(answer);
    next.headers
        .set("CSeq", format!("{} {method}", cseq.seq.saturating_add(1)));
    next.headers.push(answer, value);
    Some(next)
}

// ---------------------------------------------------------------------------
// The authenticator

/// What a response must cover: the realm the server protects and the
/// request it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRequest<'a> {
    /// The realm the server challenged with (one per tenant).
    pub realm: &'a str,
    /// The request method as on the start line (`REGISTER`, `INVITE`, ...).
    pub method: &'a str,
    /// The Request-URI the `uri` parameter must equal (RFC 7616 §3.4.6), or
    /// `None` where the request target is the server itself and binding it
    /// adds nothing: a REGISTER's Request-URI names the registrar, which
    /// clients spell differently (SIPp uses the registrar's IP and port),
    /// and qop=auth does not cover the To and Contact a REGISTER changes.
    /// Requests aimed at someone else (INVITE) must pass `Some`.
    pub request_uri: Option<&'a str>,
    /// Who sent it, as [`DigestAuthenticator::challenge`] was given it: a
    /// nonce issued to another client is invalid here.
    pub client: &'a [u8],
}

/// Issues challenges and verifies responses for any number of realms.
///
/// Holds the server key, the nonce lifetime and the nonce-count state; it
/// reads no clock and draws no randomness. One instance serves a whole
/// server (or a cluster sharing the key; the nonce-count state is then per
/// instance).
pub struct DigestAuthenticator {
    /// Authenticates nonces, derives `opaque` and the dummy HA1.
    key: [u8; 32],
    /// How long a nonce is accepted after it was issued.
    ttl: u64,
    /// Checked for unknown users, so that they cost the same hashing as
    /// known ones.
    dummy: Credentials,
    /// Highest nonce count accepted per nonce.
    counts: NonceCounts,
    /// The algorithms challenged with, preferred first; only these verify.
    offered: Vec<Algorithm>,
}

impl fmt::Debug for DigestAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestAuthenticator")
            .field("ttl", &self.ttl)
            .field("tracked_nonces", &self.counts.highest.len())
            .finish_non_exhaustive()
    }
}

impl DigestAuthenticator {
    /// Creates an authenticator. `key` must be secret and random;
    /// [`DEFAULT_NONCE_TTL_SECS`] is a good lifetime; `max_tracked_nonces`
    /// bounds the memory of the replay protection (a nonce pushed out early
    /// is answered as stale, so 0 makes every nonce single-use).
    pub fn new(key: [u8; 32], nonce_ttl_secs: u64, max_tracked_nonces: usize) -> Self {
        let dummy_md5 = mac(&key, DUMMY_DOMAIN, &[b"MD5"]);
        let dummy_sha256 = mac(&key, DUMMY_DOMAIN, &[b"SHA-256"]);
        DigestAuthenticator {
            key,
            ttl: nonce_ttl_secs,
            dummy: Credentials {
                md5: hex::encode(dummy_md5.get(..16).unwrap_or_default()),
                sha256: hex::encode(dummy_sha256),
            },
            counts: NonceCounts {
                highest: BTreeMap::new(),
                forgotten_up_to: None,
                capacity: max_tracked_nonces,
            },
            offered: Algorithm::OFFERED.to_vec(),
        }
    }

    /// Sets the algorithms offered, preferred first (default
    /// [`Algorithm::OFFERED`]). Some clients read only the first challenge
    /// (SIPp 3.6 needs MD5 there); an empty list keeps the default.
    pub fn with_algorithms(mut self, offered: &[Algorithm]) -> Self {
        if !offered.is_empty() {
            self.offered = offered.to_vec();
        }
        self
    }

    /// The `WWW-Authenticate` / `Proxy-Authenticate` values for a new
    /// challenge: one per offered algorithm, preferred first, sharing one
    /// nonce made from `now` and `random` and bound to `client` (say its
    /// address): only a response from the same client may use it, so a
    /// failure with a valid nonce proves that its sender received the
    /// challenge. Set `stale` after [`Verdict::Stale`].
    pub fn challenge(
        &self,
        now: u64,
        random: [u8; RANDOM_LEN],
        realm: &str,
        client: &[u8],
        stale: bool,
    ) -> Vec<String> {
        let nonce = self.issue_nonce(now, random, realm, client);
        let opaque = self.opaque(realm);
        let realm = quote(realm);
        self.offered
            .iter()
            .map(|algorithm| {
                let mut value = format!(
                    "Digest realm={realm}, qop=\"auth\", nonce=\"{nonce}\", \
                     opaque=\"{opaque}\", algorithm={algorithm}"
                );
                if stale {
                    value.push_str(", stale=true");
                }
                value
            })
            .collect()
    }

    /// Verifies `response` (from [`DigestResponse::select`]) for `request`.
    ///
    /// `credentials` are the stored ones of [`DigestResponse::username`] in
    /// the realm, or `None` if there is no such user: the outcome and the
    /// hashing done are then the same as for a wrong password. (The
    /// caller's lookup should take similar time for both, too.) An HA1
    /// that is not hex of the algorithm's length counts as no credentials.
    ///
    /// Checks in order: realm, algorithm, qop/nc/cnonce, userhash, uri,
    /// opaque, nonce integrity (this key, this realm, this client); then
    /// the response (wrong: [`RejectReason::BadCredentials`], or
    /// [`RejectReason::ExpiredNonce`] when the nonce is too old too); then
    /// nonce age (stale) and nonce count (replay). The nonce count is recorded only when the
    /// verdict is [`Verdict::Authenticated`].
    pub fn verify(
        &mut self,
        now: u64,
        request: &DigestRequest<'_>,
        response: &DigestResponse,
        credentials: Option<&Credentials>,
    ) -> Verdict {
        match self.check(now, request, response, credentials) {
            Ok(verdict) => verdict,
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    fn check(
        &mut self,
        now: u64,
        request: &DigestRequest<'_>,
        response: &DigestResponse,
        credentials: Option<&Credentials>,
    ) -> Result<Verdict, RejectReason> {
        // Checks that do not depend on the user come first.
        if response.realm != request.realm {
            return Err(RejectReason::RealmMismatch);
        }
        let algorithm = match response.algorithm.as_deref() {
            None => Algorithm::Md5,
            Some(token) => {
                Algorithm::from_token(token).ok_or(RejectReason::UnsupportedAlgorithm)?
            }
        };
        if !self.offered.contains(&algorithm) {
            return Err(RejectReason::UnsupportedAlgorithm);
        }
        if !response
            .qop
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
        {
            return Err(RejectReason::UnsupportedQop);
        }
        let Some((_, nc)) = response.nc else {
            return Err(AuthError::MissingParam { name: "nc" }.into());
        };
        if response.cnonce.is_none() {
            return Err(AuthError::MissingParam { name: "cnonce" }.into());
        }
        if response.userhash {
            return Err(RejectReason::UserhashUnsupported);
        }
        if request
            .request_uri
            .is_some_and(|request_uri| response.uri != request_uri)
        {
            return Err(RejectReason::UriMismatch);
        }
        if response
            .opaque
            .as_deref()
            .is_some_and(|o| o != self.opaque(request.realm))
        {
            return Err(RejectReason::OpaqueMismatch);
        }
        let nonce = self
            .open_nonce(&response.nonce, request.realm, request.client)
            .ok_or(RejectReason::InvalidNonce)?;

        // The same work for unknown users as for known ones. A stored HA1
        // that is not a digest of this algorithm (say an empty SHA-256 HA1
        // of a user migrated from an MD5-only store) must not let anyone
        // in who hashes with it, so it counts as no credentials.
        let (ha1, known) = match credentials.map(|c| c.ha1(algorithm)) {
            Some(ha1) if algorithm.is_ha1(ha1) => (ha1.to_ascii_lowercase(), true),
            _ => (self.dummy.ha1(algorithm).to_owned(), false),
        };
        let expected = expected_response(algorithm, &ha1, response, request.method)
            .ok_or(RejectReason::BadCredentials)?;
        let received = response.response.to_ascii_lowercase();
        self.counts.forget_expired(now, self.ttl);
        let issued = nonce_issued_at(&nonce);
        let expired = now.saturating_sub(issued) > self.ttl || self.counts.is_forgotten(&nonce);
        // `&`, not `&&`: no early exit. A known dummy HA1 must never log in.
        if !(constant_time_eq(expected.as_bytes(), received.as_bytes()) & known) {
            return Err(if expired {
                RejectReason::ExpiredNonce
            } else {
                RejectReason::BadCredentials
            });
        }
        if expired {
            return Ok(Verdict::Stale);
        }
        if self.counts.highest.get(&nonce).is_some_and(|h| nc <= *h) {
            return Err(RejectReason::ReplayedNonceCount);
        }
        self.counts.record(nonce, nc);
        Ok(Verdict::Authenticated {
            username: response.username.clone(),
            algorithm,
        })
    }

    fn issue_nonce(
        &self,
        now: u64,
        random: [u8; RANDOM_LEN],
        realm: &str,
        client: &[u8],
    ) -> String {
        let mut nonce: NonceBytes = [0; NONCE_LEN];
        // The split points and the copied lengths are constants that fit
        // the fixed-size array, so neither split nor copy can panic.
        let (body, tag) = nonce.split_at_mut(8 + RANDOM_LEN);
        let (time, rand) = body.split_at_mut(8);
        time.copy_from_slice(&now.to_be_bytes());
        rand.copy_from_slice(&random);
        let full = mac(&self.key, NONCE_DOMAIN, &[body, realm.as_bytes(), client]);
        for (t, m) in tag.iter_mut().zip(full) {
            *t = m;
        }
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// Decodes `text` and checks that this key issued it for `realm` and
    /// `client`.
    fn open_nonce(&self, text: &str, realm: &str, client: &[u8]) -> Option<NonceBytes> {
        if text.len() != NONCE_TEXT_LEN {
            return None;
        }
        let nonce: NonceBytes = URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()?;
        let (body, tag) = nonce.split_first_chunk::<{ 8 + RANDOM_LEN }>()?;
        let full = mac(&self.key, NONCE_DOMAIN, &[body, realm.as_bytes(), client]);
        constant_time_eq(full.get(..TAG_LEN)?, tag).then_some(nonce)
    }

    /// The `opaque` value of `realm`'s challenges: stable, so that a client
    /// may answer any challenge with it.
    fn opaque(&self, realm: &str) -> String {
        let full = mac(&self.key, OPAQUE_DOMAIN, &[realm.as_bytes()]);
        hex::encode(full.get(..16).unwrap_or_default())
    }
}

fn nonce_issued_at(nonce: &NonceBytes) -> u64 {
    nonce
        .first_chunk::<8>()
        .map_or(0, |t| u64::from_be_bytes(*t))
}

/// HMAC-SHA256(key, domain ‖ parts...).
fn mac(key: &[u8; 32], domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail here.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(domain);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The highest nonce count accepted per nonce, bounded in size.
///
/// Keys are decoded nonces, which sort by issue time, so the oldest entries
/// are the first ones. Every entry that leaves the map moves
/// `forgotten_up_to` forward; a nonce at or below it that is not in the map
/// may have been used already and is answered as stale.
#[derive(Debug)]
struct NonceCounts {
    highest: BTreeMap<NonceBytes, u32>,
    /// The largest key removed so far.
    forgotten_up_to: Option<NonceBytes>,
    /// Most entries kept.
    capacity: usize,
}

impl NonceCounts {
    fn forget_expired(&mut self, now: u64, ttl: u64) {
        while let Some(entry) = self.highest.first_entry() {
            if now.saturating_sub(nonce_issued_at(entry.key())) <= ttl {
                break;
            }
            let (key, _) = entry.remove_entry();
            self.forgotten_up_to = Some(key);
        }
    }

    fn is_forgotten(&self, nonce: &NonceBytes) -> bool {
        self.forgotten_up_to.is_some_and(|mark| *nonce <= mark)
    }

    fn record(&mut self, nonce: NonceBytes, nc: u32) {
        self.highest.insert(nonce, nc);
        while self.highest.len() > self.capacity {
            match self.highest.pop_first() {
                Some((key, _)) => self.forgotten_up_to = Some(key),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SHA256: &str = "Digest username=\"Mufasa\",
        realm=\"http-auth@example.org\",
        uri=\"/dir/index.html\",
        algorithm=SHA-256,
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",
        nc=00000001,
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",
        qop=auth,
        response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    fn parse(value: &str) -> DigestResponse {
        match DigestResponse::parse(value) {
            Ok(Some(response)) => response,
            other => panic!("not a digest response: {other:?}"),
        }
    }

    #[test]
    fn rfc7616_expected_responses() {
        let response = parse(RFC_SHA256);
        let creds = Credentials::from_password("Mufasa", "http-auth@example.org", "Circle of Life");
        assert_eq!(
            expected_response(Algorithm::Sha256, &creds.sha256, &response, "GET").as_deref(),
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        // The MD5 example differs only in algorithm and response.
        assert_eq!(
            expected_response(Algorithm::Md5, &creds.md5, &response, "GET").as_deref(),
            Some("8ca523f5e9506fed4657c9700eebdbec")
        );
    }

    #[test]
    fn quoted_strings() {
        assert_eq!(
            quoted_string(r#""a\"b\\c" rest"#, 0),
            Ok(("a\"b\\c".to_owned(), 9))
        );
        assert_eq!(quoted_string("\"abc", 0), Err(AuthError::UnterminatedQuote));
        assert_eq!(
            quoted_string("\"ab\\", 0),
            Err(AuthError::UnterminatedQuote)
        );
        assert_eq!(
            quoted_string("\"a\u{0}b\"", 0),
            Err(AuthError::Unexpected { at: 2 })
        );
        assert_eq!(quoted_string("\"é\"", 0), Ok(("é".to_owned(), 4)));
        assert_eq!(quote("a\"b\\c\r\n"), r#""a\"b\\c""#);
    }

    /// Found by fuzzing (`digest_header`): a bare value took C1 control
    /// characters, which the answer's quoted realm then dropped, so the
    /// answer named another realm than the challenge.
    #[test]
    fn bare_values_refuse_control_characters_as_quoted_ones_do() {
        assert_eq!(
            DigestChallenge::parse("Digest realm=2044444\u{99}\u{99}1, nonce=x"),
            Err(AuthError::Unexpected { at: 20 })
        );
        assert_eq!(
            DigestResponse::parse("Digest username=a\u{85}b, realm=r"),
            Err(AuthError::Unexpected { at: 17 })
        );
        assert_eq!(
            DigestChallenge::parse("Digest realm=\"a\u{85}b\", nonce=x"),
            Err(AuthError::Unexpected { at: 15 })
        );
        let challenge = DigestChallenge::parse("Digest realm=é-1, nonce=x")
            .ok()
            .flatten()
            .expect("a bare non-ASCII realm parses");
        let answer = challenge.authorization("INVITE", "sip:b@x", "a", "p", "c", 1);
        assert_eq!(parse(&answer).realm(), "é-1");
    }

    #[test]
    fn nonce_counts() {
        assert_eq!(parse_nonce_count("00000001"), Some(1));
        assert_eq!(parse_nonce_count("0000000A"), Some(10));
        assert_eq!(parse_nonce_count("ff"), Some(255));
        assert_eq!(parse_nonce_count("00000000"), None);
        assert_eq!(parse_nonce_count("+1"), None);
        assert_eq!(parse_nonce_count("123456789"), None);
        assert_eq!(parse_nonce_count(""), None);
    }

    #[test]
    fn ext_value_username() {
        assert_eq!(
            decode_ext_value("UTF-8''J%C3%A4s%C3%B8n%20Doe"),
            Ok("Jäsøn Doe".to_owned())
        );
        assert_eq!(decode_ext_value("utf-8'en'x"), Ok("x".to_owned()));
        for bad in ["ISO-8859-1''x", "UTF-8'x", "UTF-8''%C3", "UTF-8''%zz"] {
            assert_eq!(decode_ext_value(bad), Err(AuthError::BadExtendedUsername));
        }
    }

    #[test]
    fn nonce_layout() {
        let auth = DigestAuthenticator::new([7; 32], 300, 16);
        let text = auth.issue_nonce(1_700_000_000, [9; 16], "r", b"c");
        assert_eq!(text.len(), NONCE_TEXT_LEN);
        let nonce = auth.open_nonce(&text, "r", b"c").expect("own nonce opens");
        assert_eq!(nonce_issued_at(&nonce), 1_700_000_000);
        assert!(auth.open_nonce(&text, "other", b"c").is_none());
        assert!(auth.open_nonce(&text, "r", b"another client").is_none());
        assert!(
            DigestAuthenticator::new([8; 32], 300, 16)
                .open_nonce(&text, "r", b"c")
                .is_none()
        );
    }

    #[test]
    fn eviction_forgets_oldest_and_marks_it() {
        let mut counts = NonceCounts {
            highest: BTreeMap::new(),
            forgotten_up_to: None,
            capacity: 2,
        };
        let key = |ts: u64| {
            let mut k = [0u8; NONCE_LEN];
            k[..8].copy_from_slice(&ts.to_be_bytes());
            k
        };
        counts.record(key(20), 1);
        counts.record(key(10), 1);
        counts.record(key(30), 1);
        assert_eq!(counts.highest.len(), 2);
        assert!(counts.is_forgotten(&key(10)));
        assert!(!counts.is_forgotten(&key(20)));
        counts.forget_expired(325, 300);
        assert!(counts.is_forgotten(&key(20)));
        assert!(!counts.is_forgotten(&key(30)));
        assert_eq!(counts.highest.len(), 1);
    }

    #[test]
    fn the_dummy_ha1_never_logs_in() {
        let mut auth = DigestAuthenticator::new([7; 32], 300, 16);
        let challenges = auth.challenge(100, [1; 16], "r", b"c", false);
        let nonce = challenges
            .first()
            .and_then(|c| c.split("nonce=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .expect("challenge has a nonce")
            .to_owned();
        let mut response = parse(&format!(
            "Digest username=\"ghost\", realm=\"r\", nonce=\"{nonce}\", uri=\"sip:r\", \
             response=\"\", algorithm=MD5, qop=auth, nc=1, cnonce=\"c\""
        ));
        // Someone who knew the dummy HA1 would answer like this.
        response.response =
            expected_response(Algorithm::Md5, &auth.dummy.md5, &response, "REGISTER")
                .expect("all parameters present");
        let request = DigestRequest {
            realm: "r",
            method: "REGISTER",
            request_uri: Some("sip:r"),
            client: b"c",
        };
        assert_eq!(
            auth.verify(100, &request, &response, None),
            Verdict::Rejected(RejectReason::BadCredentials)
        );
        // With the dummy as the stored HA1 the same response is correct.
        let dummy = auth.dummy.clone();
        assert!(matches!(
            auth.verify(100, &request, &response, Some(&dummy)),
            Verdict::Authenticated { .. }
        ));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let creds = Credentials::from_password("u", "r", "p");
        assert!(!format!("{creds:?}").contains(&creds.md5));
        let response = parse(RFC_SHA256);
        assert!(!format!("{response:?}").contains("753927fa"));
    }
}
