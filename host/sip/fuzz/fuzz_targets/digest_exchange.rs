//! A whole Digest exchange with names, passwords and times from the
//! input: the server's challenge parses on the client, the client's
//! answer parses on the server and verifies with the right password, and
//! not with a wrong one, nor twice, nor after the nonce expired.
#![no_main]

use edgepbx_sip::auth::{
    Credentials, DEFAULT_NONCE_TTL_SECS, DigestAuthenticator, DigestChallenge, DigestRequest,
    DigestResponse, RejectReason, Verdict,
};
use libfuzzer_sys::fuzz_target;

/// Longest name the input may choose, in bytes: four of them and a nonce
/// stay well within `MAX_HEADER_LEN`.
const MAX_NAME: usize = 256;

/// What the input chooses.
type Exchange = (
    String,   // realm
    String,   // username
    String,   // password
    String,   // Request-URI
    String,   // client nonce
    u64,      // when the challenge is issued
    u16,      // seconds until the answer arrives
    [u8; 16], // the challenge's random bytes
    Vec<u8>,  // the client's address
    bool,     // stale
);

fuzz_target!(|input: Exchange| {
    let (realm, username, password, uri, cnonce, now, delay, random, client, stale) = input;
    if [&realm, &username, &password, &uri, &cnonce]
        .iter()
        .any(|s| s.len() > MAX_NAME)
    {
        return;
    }
    // A header field cannot carry control characters; quoting drops them.
    let [realm, username, uri, cnonce] = [realm, username, uri, cnonce].map(|s| {
        s.chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect::<String>()
    });

    let mut server = DigestAuthenticator::new([7; 32], DEFAULT_NONCE_TTL_SECS, 8);
    let values = server.challenge(now, random, &realm, &client, stale);
    for value in &values {
        let parsed = DigestChallenge::parse(value);
        let Ok(Some(challenge)) = parsed else {
            panic!("challenge {value:?} does not parse: {parsed:?}");
        };
        assert_eq!(
            (challenge.realm.as_str(), challenge.stale),
            (realm.as_str(), stale)
        );
        assert!(challenge.qop_auth);
    }
    let challenge = DigestChallenge::pick(values.iter().map(String::as_str))
        .expect("a challenge of edgepbx is answerable");
    let value = challenge.authorization("INVITE", &uri, &username, &password, &cnonce, 1);
    let parsed = DigestResponse::parse(&value);
    let Ok(Some(response)) = parsed else {
        panic!("answer {value:?} does not parse: {parsed:?}");
    };
    assert_eq!(
        (response.realm(), response.username(), response.uri()),
        (realm.as_str(), username.as_str(), uri.as_str())
    );

    let request = DigestRequest {
        realm: &realm,
        method: "INVITE",
        request_uri: Some(&uri),
        client: &client,
    };
    let later = now.saturating_add(u64::from(delay));
    let expired = later - now > DEFAULT_NONCE_TTL_SECS;
    let wrong = Credentials::from_password(&username, &realm, &format!("{password}!"));
    let expected_wrong = if expired {
        RejectReason::ExpiredNonce
    } else {
        RejectReason::BadCredentials
    };
    assert_eq!(
        server.verify(later, &request, &response, Some(&wrong)),
        Verdict::Rejected(expected_wrong)
    );
    let right = Credentials::from_password(&username, &realm, &password);
    let verdict = server.verify(later, &request, &response, Some(&right));
    if expired {
        assert_eq!(verdict, Verdict::Stale);
        return;
    }
    assert_eq!(
        verdict,
        Verdict::Authenticated {
            username: username.clone(),
            algorithm: challenge.algorithm,
        }
    );
    assert_eq!(
        server.verify(later, &request, &response, Some(&right)),
        Verdict::Rejected(RejectReason::ReplayedNonceCount)
    );
});
