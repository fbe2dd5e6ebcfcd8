//! Any `Authorization` or `WWW-Authenticate` value: the Digest parsers
//! never panic, an error points into the value, and a challenge that
//! parses is answered with credentials that parse back to it.
#![no_main]

use edgepbx_sip::auth::{AuthError, DigestChallenge, DigestResponse, MAX_HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = DigestResponse::parse(value) {
        check_error(value, &error);
    }
    let _ = DigestResponse::select([value, "Digest realm=x", value], "x");
    match DigestChallenge::parse(value) {
        Ok(Some(challenge)) => answer(&challenge),
        Ok(None) => {}
        Err(error) => check_error(value, &error),
    }
});

/// An error names a limit the value broke or a place inside the value.
fn check_error(value: &str, error: &AuthError) {
    match *error {
        AuthError::TooLong { len, max } => assert!(len == value.len() && len > max),
        AuthError::Unexpected { at } => assert!(at <= value.len(), "{error} past the end"),
        _ => {}
    }
}

/// The answer to a parsed challenge carries its realm and algorithm and
/// the caller's username and URI, unchanged.
fn answer(challenge: &DigestChallenge) {
    let uri = "sip:bob@example.com";
    let value = challenge.authorization("INVITE", uri, "alice", "secret", "0a4f113b", 1);
    let response = match DigestResponse::parse(&value) {
        Ok(Some(response)) => response,
        Err(AuthError::TooLong { .. }) if value.len() > MAX_HEADER_LEN => return,
        other => panic!("the answer to {challenge:?} does not parse: {other:?}"),
    };
    assert_eq!(response.realm(), challenge.realm, "{value}");
    assert_eq!(response.username(), "alice");
    assert_eq!(response.uri(), uri);
    assert_eq!(response.algorithm(), Some(challenge.algorithm.as_str()));
}
