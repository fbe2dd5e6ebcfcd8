//! Digest authentication (RFC 7616, RFC 8760) seen from outside: a client
//! written here from the RFC text answers the server's challenges.

use edgepbx_sip::auth::{
    Algorithm, AuthError, Credentials, DigestAuthenticator, DigestChallenge, DigestRequest,
    DigestResponse, MAX_HEADER_LEN, MAX_PARAMS, RejectReason, Verdict, ha1,
};
use md5::Md5;
use sha2::{Digest, Sha256};

const KEY: [u8; 32] = [0x42; 32];
const REALM: &str = "demo.edgepbx.test";
const USER: &str = "100-DEMO";
const PASSWORD: &str = "s3cret";
const URI: &str = "sip:demo.edgepbx.test";
const T0: u64 = 1_700_000_000;
/// Who the challenges are given to (an address).
const CLIENT: &[u8] = &[192, 0, 2, 1];

/// `H(data)` in lower-case hex, written from the RFC independently of the
/// library.
fn h(algorithm: &str, data: &str) -> String {
    match algorithm {
        "SHA-256" => hex::encode(Sha256::digest(data.as_bytes())),
        _ => hex::encode(Md5::digest(data.as_bytes())),
    }
}

/// The client's computation (RFC 7616 §3.4.1) from the password.
#[allow(clippy::too_many_arguments)]
fn client_response(
    algorithm: &str,
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = h(algorithm, &format!("{user}:{realm}:{password}"));
    let ha2 = h(algorithm, &format!("{method}:{uri}"));
    h(
        algorithm,
        &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"),
    )
}

/// The value of `name="..."` in a challenge.
fn challenge_param(challenge: &str, name: &str) -> String {
    let start = challenge
        .find(&format!("{name}=\""))
        .map(|i| i + name.len() + 2)
        .expect("parameter present");
    let len = challenge[start..].find('"').expect("closing quote");
    challenge[start..start + len].to_owned()
}

/// A client answering challenges for one user.
struct Client {
    algorithm: &'static str,
    user: String,
    password: String,
    nonce: String,
    opaque: String,
    nc: u32,
}

impl Client {
    fn new(auth: &DigestAuthenticator, now: u64, algorithm: &'static str) -> Self {
        let challenges = auth.challenge(now, [1; 16], REALM, CLIENT, false);
        let challenge = challenges
            .iter()
            .find(|c| c.ends_with(&format!("algorithm={algorithm}")))
            .expect("algorithm offered");
        Client {
            algorithm,
            user: USER.to_owned(),
            password: PASSWORD.to_owned(),
            nonce: challenge_param(challenge, "nonce"),
            opaque: challenge_param(challenge, "opaque"),
            nc: 0,
        }
    }

    fn authorization(&mut self, method: &str, uri: &str) -> String {
        self.nc += 1;
        self.authorization_with_nc(method, uri, self.nc)
    }

    fn authorization_with_nc(&self, method: &str, uri: &str, nc: u32) -> String {
        let nc = format!("{nc:08x}");
        let cnonce = "0a4f113b";
        let response = client_response(
            self.algorithm,
            &self.user,
            REALM,
            &self.password,
            method,
            uri,
            &self.nonce,
            &nc,
            cnonce,
        );
        format!(
            "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={}, cnonce=\"{cnonce}\", qop=auth, nc={nc}, \
             opaque=\"{}\"",
            self.user, self.nonce, self.algorithm, self.opaque
        )
    }
}

fn store(username: &str) -> Option<Credentials> {
    (username == USER).then(|| Credentials::from_password(USER, REALM, PASSWORD))
}

fn register() -> DigestRequest<'static> {
    DigestRequest {
        realm: REALM,
        method: "REGISTER",
        request_uri: Some(URI),
        client: CLIENT,
    }
}

/// The whole server-side flow for one request.
fn verify(auth: &mut DigestAuthenticator, now: u64, header: Option<&str>) -> Verdict {
    verify_request(auth, now, &register(), header)
}

fn verify_request(
    auth: &mut DigestAuthenticator,
    now: u64,
    request: &DigestRequest<'_>,
    header: Option<&str>,
) -> Verdict {
    match DigestResponse::select(header, request.realm) {
        Ok(response) => {
            let credentials = store(response.username());
            auth.verify(now, request, &response, credentials.as_ref())
        }
        Err(verdict) => verdict,
    }
}

fn authenticated(algorithm: Algorithm) -> Verdict {
    Verdict::Authenticated {
        username: USER.to_owned(),
        algorithm,
    }
}

fn authenticator() -> DigestAuthenticator {
    DigestAuthenticator::new(KEY, 300, 1024)
}

// ---------------------------------------------------------------------------
// RFC 7616 §3.9.1

const RFC_REALM: &str = "http-auth@example.org";
const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

#[test]
fn rfc7616_example_vectors() {
    for (algorithm, expected) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let response = client_response(
            algorithm,
            "Mufasa",
            RFC_REALM,
            "Circle of Life",
            "GET",
            "/dir/index.html",
            RFC_NONCE,
            "00000001",
            RFC_CNONCE,
        );
        assert_eq!(response, expected, "{algorithm}");
    }
    // The library's HA1 is the client's.
    let creds = Credentials::from_password("Mufasa", RFC_REALM, "Circle of Life");
    assert_eq!(creds.md5, "3d78807defe7de2157e2b0b6573a855f");
    assert_eq!(
        creds.sha256,
        "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
    );
    assert_eq!(
        ha1(Algorithm::Md5, "Mufasa", RFC_REALM, "Circle of Life"),
        h("MD5", &format!("Mufasa:{RFC_REALM}:Circle of Life"))
    );
}

#[test]
fn rfc7616_authorization_parses_but_foreign_nonce_is_invalid() {
    let header = format!(
        "Digest username=\"Mufasa\",\r\n realm=\"{RFC_REALM}\",\r\n uri=\"/dir/index.html\",\
         \r\n algorithm=SHA-256,\r\n nonce=\"{RFC_NONCE}\",\r\n nc=00000001,\
         \r\n cnonce=\"{RFC_CNONCE}\",\r\n qop=auth,\
         \r\n response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\
         \r\n opaque=\"{RFC_OPAQUE}\""
    );
    let response = DigestResponse::parse(&header)
        .expect("parses")
        .expect("is Digest");
    assert_eq!(response.username(), "Mufasa");
    assert_eq!(response.realm(), RFC_REALM);
    assert_eq!(response.uri(), "/dir/index.html");
    assert_eq!(response.algorithm(), Some("SHA-256"));

    // Our opaque differs; without it, the nonce is not ours.
    let header = header.replace(&format!(",\r\n opaque=\"{RFC_OPAQUE}\""), "");
    let response = DigestResponse::parse(&header)
        .expect("parses")
        .expect("is Digest");
    let mut auth = authenticator();
    let creds = Credentials::from_password("Mufasa", RFC_REALM, "Circle of Life");
    let request = DigestRequest {
        realm: RFC_REALM,
        method: "GET",
        request_uri: Some("/dir/index.html"),
        client: CLIENT,
    };
    assert_eq!(
        auth.verify(T0, &request, &response, Some(&creds)),
        Verdict::Rejected(RejectReason::InvalidNonce)
    );
}

// ---------------------------------------------------------------------------
// Challenges

#[test]
fn challenge_offers_sha256_then_md5_with_one_nonce() {
    let auth = authenticator();
    let challenges = auth.challenge(T0, [3; 16], REALM, CLIENT, false);
    assert_eq!(challenges.len(), 2);
    assert!(
        challenges[0].ends_with("algorithm=SHA-256"),
        "{}",
        challenges[0]
    );
    assert!(
        challenges[1].ends_with("algorithm=MD5"),
        "{}",
        challenges[1]
    );
    for c in &challenges {
        assert!(c.starts_with("Digest realm=\"demo.edgepbx.test\", qop=\"auth\", nonce=\""));
        assert!(c.contains("opaque=\""));
        assert!(!c.contains("stale"));
    }
    assert_eq!(
        challenge_param(&challenges[0], "nonce"),
        challenge_param(&challenges[1], "nonce")
    );
    // Fresh randomness, fresh nonce.
    let other = auth.challenge(T0, [4; 16], REALM, CLIENT, false);
    assert_ne!(
        challenge_param(&challenges[0], "nonce"),
        challenge_param(&other[0], "nonce")
    );
    let stale = auth.challenge(T0, [3; 16], REALM, CLIENT, true);
    assert!(stale.iter().all(|c| c.ends_with(", stale=true")));
}

#[test]
fn challenge_quotes_the_realm() {
    let auth = authenticator();
    let challenges = auth.challenge(T0, [3; 16], "a\"b\\c\r\n", CLIENT, false);
    assert!(challenges[0].starts_with(r#"Digest realm="a\"b\\c", "#));
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_sha256_and_md5() {
    for (name, algorithm) in [("SHA-256", Algorithm::Sha256), ("MD5", Algorithm::Md5)] {
        let mut auth = authenticator();
        let mut client = Client::new(&auth, T0, name);
        let header = client.authorization("REGISTER", URI);
        assert_eq!(
            verify(&mut auth, T0 + 1, Some(&header)),
            authenticated(algorithm)
        );
    }
}

#[test]
fn absent_algorithm_means_md5() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "MD5");
    let header = client
        .authorization("REGISTER", URI)
        .replace(", algorithm=MD5", "");
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        authenticated(Algorithm::Md5)
    );
}

#[test]
fn invite_with_other_method_and_uri() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let uri = "sip:101@demo.edgepbx.test;transport=tcp";
    let request = DigestRequest {
        realm: REALM,
        method: "INVITE",
        request_uri: Some(uri),
        client: CLIENT,
    };
    let header = client.authorization("INVITE", uri);
    assert_eq!(
        verify_request(&mut auth, T0, &request, Some(&header)),
        authenticated(Algorithm::Sha256)
    );
    // A response for REGISTER does not authenticate an INVITE.
    let header = client.authorization("REGISTER", uri);
    assert_eq!(
        verify_request(&mut auth, T0, &request, Some(&header)),
        Verdict::Rejected(RejectReason::BadCredentials)
    );
}

#[test]
fn opaque_may_be_omitted_but_not_changed() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "MD5");
    let opaque = client.opaque.clone();
    let header = client.authorization("REGISTER", URI);
    let without = header.replace(&format!(", opaque=\"{opaque}\""), "");
    assert_eq!(
        verify(&mut auth, T0, Some(&without)),
        authenticated(Algorithm::Md5)
    );
    let header = client.authorization("REGISTER", URI);
    let changed = header.replace(&opaque, "00");
    assert_eq!(
        verify(&mut auth, T0, Some(&changed)),
        Verdict::Rejected(RejectReason::OpaqueMismatch)
    );
}

// ---------------------------------------------------------------------------
// Rejections

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    client.password = "guess".to_owned();
    let wrong_password = verify(&mut auth, T0, Some(&client.authorization("REGISTER", URI)));
    assert_eq!(
        wrong_password,
        Verdict::Rejected(RejectReason::BadCredentials)
    );

    let mut client = Client::new(&auth, T0, "SHA-256");
    client.user = "999-DEMO".to_owned();
    let unknown_user = verify(&mut auth, T0, Some(&client.authorization("REGISTER", URI)));
    assert_eq!(unknown_user, wrong_password);

    // The same with no store at all: no HA1 ever matches an unknown user.
    let mut client = Client::new(&auth, T0, "MD5");
    let header = client.authorization("REGISTER", URI);
    let response = DigestResponse::parse(&header)
        .expect("parses")
        .expect("is Digest");
    assert_eq!(
        auth.verify(T0, &register(), &response, None),
        Verdict::Rejected(RejectReason::BadCredentials)
    );
}

#[test]
fn malformed_stored_ha1_never_matches() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    // An attacker who knows the stored SHA-256 HA1 is empty (or any short
    // string) computes the response with it.
    for stored in ["", "0", "zz"] {
        let nc = format!("{:08x}", client.nc + 1);
        let header = client.authorization("REGISTER", URI);
        let forged_ha2 = h("SHA-256", &format!("REGISTER:{URI}"));
        let forged = h(
            "SHA-256",
            &format!("{stored}:{}:{nc}:0a4f113b:auth:{forged_ha2}", client.nonce),
        );
        let header = header.replace(&response_param(&header), &forged);
        let response = DigestResponse::parse(&header)
            .expect("parses")
            .expect("Digest");
        let creds = Credentials {
            md5: Credentials::from_password(USER, REALM, PASSWORD).md5,
            sha256: stored.to_owned(),
        };
        assert_eq!(
            auth.verify(T0, &register(), &response, Some(&creds)),
            Verdict::Rejected(RejectReason::BadCredentials),
            "{stored:?}"
        );
    }
    // Upper-case hex in the store is fine.
    let creds = Credentials::from_password(USER, REALM, PASSWORD);
    let upper = Credentials {
        md5: creds.md5.to_uppercase(),
        sha256: creds.sha256.to_uppercase(),
    };
    let header = client.authorization("REGISTER", URI);
    let response = DigestResponse::parse(&header)
        .expect("parses")
        .expect("Digest");
    assert_eq!(
        auth.verify(T0, &register(), &response, Some(&upper)),
        authenticated(Algorithm::Sha256)
    );
}

fn response_param(header: &str) -> String {
    challenge_param(header, "response")
}

#[test]
fn tampered_nonce_is_invalid() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let original = client.nonce.clone();
    for position in [0, 5, 20, original.len() - 1] {
        let mut bytes = original.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        client.nonce = String::from_utf8(bytes).expect("ASCII");
        let header = client.authorization("REGISTER", URI);
        assert_eq!(
            verify(&mut auth, T0, Some(&header)),
            Verdict::Rejected(RejectReason::InvalidNonce),
            "position {position}"
        );
    }
    for nonce in ["", "abc", &original[1..], &format!("{original}A")] {
        client.nonce = nonce.to_owned();
        let header = client.authorization("REGISTER", URI);
        assert_eq!(
            verify(&mut auth, T0, Some(&header)),
            Verdict::Rejected(RejectReason::InvalidNonce)
        );
    }
}

#[test]
fn nonce_from_another_key_or_realm_is_invalid() {
    let other = DigestAuthenticator::new([1; 32], 300, 16);
    let mut client = Client::new(&other, T0, "MD5");
    let mut auth = authenticator();
    let header = client.authorization("REGISTER", URI);
    // The opaque differs too; drop it to reach the nonce check.
    let header = header.replace(&format!(", opaque=\"{}\"", client.opaque), "");
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        Verdict::Rejected(RejectReason::InvalidNonce)
    );

    // A nonce issued for another tenant's realm.
    let foreign = auth.challenge(T0, [1; 16], "other.example", CLIENT, false);
    let mut client = Client::new(&auth, T0, "MD5");
    client.nonce = challenge_param(&foreign[0], "nonce");
    let header = client.authorization("REGISTER", URI);
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        Verdict::Rejected(RejectReason::InvalidNonce)
    );
}

#[test]
fn expired_nonce_is_stale_only_with_a_correct_response() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let header = client.authorization("REGISTER", URI);
    // Valid up to and including the TTL.
    assert_eq!(
        verify(&mut auth, T0 + 300, Some(&header)),
        authenticated(Algorithm::Sha256)
    );
    let header = client.authorization("REGISTER", URI);
    assert_eq!(verify(&mut auth, T0 + 301, Some(&header)), Verdict::Stale);

    // A wrong password with an expired nonce is refused as such: not
    // stale (that would confirm a password), and not a failure proving
    // its sender saw a recent challenge.
    client.password = "guess".to_owned();
    let header = client.authorization("REGISTER", URI);
    assert_eq!(
        verify(&mut auth, T0 + 301, Some(&header)),
        Verdict::Rejected(RejectReason::ExpiredNonce)
    );

    // The new challenge says stale=true and its nonce works.
    let challenges = auth.challenge(T0 + 301, [5; 16], REALM, CLIENT, true);
    assert!(challenges[0].contains("stale=true"));
    let mut client = Client::new(&auth, T0 + 301, "SHA-256");
    client.nonce = challenge_param(&challenges[0], "nonce");
    let header = client.authorization("REGISTER", URI);
    assert_eq!(
        verify(&mut auth, T0 + 302, Some(&header)),
        authenticated(Algorithm::Sha256)
    );
}

#[test]
fn expired_nonce_stays_stale_if_the_clock_goes_back() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "MD5");
    let first = client.authorization("REGISTER", URI);
    assert_eq!(
        verify(&mut auth, T0, Some(&first)),
        authenticated(Algorithm::Md5)
    );
    // Its state is dropped once it has expired...
    let later = Client::new(&auth, T0 + 1000, "MD5").authorization_with_nc("REGISTER", URI, 1);
    assert_eq!(
        verify(&mut auth, T0 + 1000, Some(&later)),
        authenticated(Algorithm::Md5)
    );
    // ...and a replay of it is not accepted even if time seems to go back.
    assert_eq!(verify(&mut auth, T0 + 10, Some(&first)), Verdict::Stale);
}

#[test]
fn nonce_count_replay_is_rejected() {
    let mut auth = authenticator();
    let client = Client::new(&auth, T0, "SHA-256");
    let at = |nc| client.authorization_with_nc("REGISTER", URI, nc);
    let ok = authenticated(Algorithm::Sha256);
    let replay = Verdict::Rejected(RejectReason::ReplayedNonceCount);

    assert_eq!(verify(&mut auth, T0, Some(&at(1))), ok);
    assert_eq!(verify(&mut auth, T0, Some(&at(1))), replay);
    assert_eq!(verify(&mut auth, T0, Some(&at(2))), ok);
    assert_eq!(verify(&mut auth, T0, Some(&at(1))), replay);
    // Gaps are fine (requests may be lost or reordered away).
    assert_eq!(verify(&mut auth, T0, Some(&at(7))), ok);
    assert_eq!(verify(&mut auth, T0, Some(&at(5))), replay);
    assert_eq!(verify(&mut auth, T0, Some(&at(8))), ok);
}

#[test]
fn a_nonce_given_to_one_client_is_invalid_from_another() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let header = client.authorization("REGISTER", URI);
    let elsewhere = DigestRequest {
        client: &[198, 51, 100, 7],
        ..register()
    };
    assert_eq!(
        verify_request(&mut auth, T0, &elsewhere, Some(&header)),
        Verdict::Rejected(RejectReason::InvalidNonce)
    );
    let header = client.authorization("REGISTER", URI);
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        authenticated(Algorithm::Sha256)
    );
}

#[test]
fn failed_attempt_does_not_burn_nonce_counts() {
    let mut auth = authenticator();
    let client = Client::new(&auth, T0, "MD5");
    let mut forger = Client::new(&auth, T0, "MD5");
    forger.password = "guess".to_owned();
    let forged = forger.authorization_with_nc("REGISTER", URI, 100);
    assert_eq!(
        verify(&mut auth, T0, Some(&forged)),
        Verdict::Rejected(RejectReason::BadCredentials)
    );
    let genuine = client.authorization_with_nc("REGISTER", URI, 1);
    assert_eq!(
        verify(&mut auth, T0, Some(&genuine)),
        authenticated(Algorithm::Md5)
    );
}

#[test]
fn nonce_pushed_out_of_a_full_table_is_stale_not_replayable() {
    let mut auth = DigestAuthenticator::new(KEY, 300, 2);
    let clients: Vec<Client> = (0..3).map(|i| Client::new(&auth, T0 + i, "MD5")).collect();
    for client in &clients {
        let header = client.authorization_with_nc("REGISTER", URI, 1);
        assert_eq!(
            verify(&mut auth, T0 + 3, Some(&header)),
            authenticated(Algorithm::Md5)
        );
    }
    // The oldest nonce's count was forgotten: neither a replay nor a new
    // count is accepted; the client gets a fresh nonce.
    let replay = clients[0].authorization_with_nc("REGISTER", URI, 1);
    assert_eq!(verify(&mut auth, T0 + 3, Some(&replay)), Verdict::Stale);
    let next = clients[0].authorization_with_nc("REGISTER", URI, 2);
    assert_eq!(verify(&mut auth, T0 + 3, Some(&next)), Verdict::Stale);
    // The newer ones are still tracked.
    let replay = clients[2].authorization_with_nc("REGISTER", URI, 1);
    assert_eq!(
        verify(&mut auth, T0 + 3, Some(&replay)),
        Verdict::Rejected(RejectReason::ReplayedNonceCount)
    );
}

#[test]
fn single_use_nonces_with_zero_capacity() {
    let mut auth = DigestAuthenticator::new(KEY, 300, 0);
    let client = Client::new(&auth, T0, "MD5");
    let first = client.authorization_with_nc("REGISTER", URI, 1);
    assert_eq!(
        verify(&mut auth, T0, Some(&first)),
        authenticated(Algorithm::Md5)
    );
    let second = client.authorization_with_nc("REGISTER", URI, 2);
    assert_eq!(verify(&mut auth, T0, Some(&second)), Verdict::Stale);
}

#[test]
fn wrong_uri_is_rejected() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    // Correctly computed, but for another Request-URI.
    let header = client.authorization("REGISTER", "sip:other.example");
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        Verdict::Rejected(RejectReason::UriMismatch)
    );
}

#[test]
fn unbound_uri_accepts_another_spelling_of_the_server() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    // SIPp answers with the registrar's address instead of the Request-URI.
    let header = client.authorization("REGISTER", "sip:127.0.0.1:5060");
    let request = DigestRequest {
        request_uri: None,
        ..register()
    };
    assert!(matches!(
        verify_request(&mut auth, T0, &request, Some(&header)),
        Verdict::Authenticated { .. }
    ));
}

#[test]
fn algorithms_not_offered_do_not_verify() {
    let mut auth = authenticator().with_algorithms(&[Algorithm::Sha256]);
    let challenges = auth.challenge(T0, [7; 16], REALM, CLIENT, false);
    assert_eq!(challenges.len(), 1);
    assert!(challenges[0].ends_with("algorithm=SHA-256"));
    // Same key, so the nonce is valid; only the algorithm was not offered.
    let mut client = Client::new(&authenticator(), T0, "MD5");
    let header = client.authorization("REGISTER", URI);
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        Verdict::Rejected(RejectReason::UnsupportedAlgorithm)
    );
}

#[test]
fn wrong_realm_is_rejected() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let header = client
        .authorization("REGISTER", URI)
        .replace(REALM, "other.example");
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        Verdict::Rejected(RejectReason::RealmMismatch)
    );
}

#[test]
fn algorithm_not_offered_is_rejected() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    for other in ["SHA-512-256", "MD5-sess", "SHA-256-sess", "\"\"", "x"] {
        let header = client
            .authorization("REGISTER", URI)
            .replace("algorithm=SHA-256", &format!("algorithm={other}"));
        assert_eq!(
            verify(&mut auth, T0, Some(&header)),
            Verdict::Rejected(RejectReason::UnsupportedAlgorithm),
            "{other}"
        );
    }
}

#[test]
fn qop_auth_is_required() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "MD5");
    let header = client.authorization("REGISTER", URI);
    for (from, to) in [(", qop=auth", ""), ("qop=auth", "qop=auth-int")] {
        assert_eq!(
            verify(&mut auth, T0, Some(&header.replace(from, to))),
            Verdict::Rejected(RejectReason::UnsupportedQop),
            "{to}"
        );
    }
    let no_nc = header.replace(", nc=00000001", "");
    assert_eq!(
        verify(&mut auth, T0, Some(&no_nc)),
        Verdict::Rejected(RejectReason::Malformed(AuthError::MissingParam {
            name: "nc"
        }))
    );
    let no_cnonce = header.replace(", cnonce=\"0a4f113b\"", "");
    assert_eq!(
        verify(&mut auth, T0, Some(&no_cnonce)),
        Verdict::Rejected(RejectReason::Malformed(AuthError::MissingParam {
            name: "cnonce"
        }))
    );
}

#[test]
fn userhash_is_rejected() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "MD5");
    let header = format!("{}, userhash=true", client.authorization("REGISTER", URI));
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        Verdict::Rejected(RejectReason::UserhashUnsupported)
    );
}

// ---------------------------------------------------------------------------
// Header selection and parsing

#[test]
fn no_digest_credentials() {
    let mut auth = authenticator();
    assert_eq!(verify(&mut auth, T0, None), Verdict::NoCredentials);
    // RFC 4475 §3.3.7 (regaut01).
    assert_eq!(verify(&mut auth, T0, Some("NoOp")), Verdict::NoCredentials);
    assert_eq!(
        verify(&mut auth, T0, Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")),
        Verdict::NoCredentials
    );
    assert_eq!(verify(&mut auth, T0, Some("")), Verdict::NoCredentials);
    assert_eq!(DigestResponse::parse("NoOp"), Ok(None));
}

#[test]
fn select_prefers_the_realm() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let ours = client.authorization("REGISTER", URI);
    let theirs = ours.replace(REALM, "proxy.example");
    let values = ["NoOp", "Digest garbage", theirs.as_str(), ours.as_str()];
    let response = DigestResponse::select(values, REALM).expect("ours found");
    assert_eq!(
        auth.verify(
            T0,
            &register(),
            &response,
            store(response.username()).as_ref()
        ),
        authenticated(Algorithm::Sha256)
    );
    // Without ours: the parse error wins over the other realm.
    assert_eq!(
        DigestResponse::select(["NoOp", "Digest garbage", theirs.as_str()], REALM),
        Err(Verdict::Rejected(RejectReason::Malformed(
            AuthError::Unexpected { at: 14 }
        )))
    );
    let other = DigestResponse::select([theirs.as_str()], REALM).expect("a Digest value");
    assert_eq!(other.realm(), "proxy.example");
}

#[test]
fn tolerant_parsing() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let nc = "00000001";
    let cnonce = "x y,\"z\"";
    let response = client_response(
        "SHA-256",
        USER,
        REALM,
        PASSWORD,
        "REGISTER",
        URI,
        &client.nonce,
        nc,
        cnonce,
    );
    // Odd order, odd case, tokens where quoted strings are usual and the
    // other way round, an escaped cnonce, empty list elements, folded
    // whitespace, unknown parameters.
    let header = format!(
        "dIgEsT  ,NC = {nc} ,\tQOP=\"auth\", CNonce=\"x y,\\\"z\\\"\",\r\n \
         future-param=\"a,b\", Algorithm=\"sha-256\",,Response={response}, \
         uri=\"{URI}\", nonce=\"{}\", REALM=\"{REALM}\", Username={USER}, x=y ,",
        client.nonce
    );
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        authenticated(Algorithm::Sha256)
    );
    // An upper-case copy changes the hashed values; it must still parse.
    let upper = client.authorization("REGISTER", URI).to_uppercase();
    assert!(matches!(DigestResponse::parse(&upper), Ok(Some(_))));
}

#[test]
fn quoted_username_with_escapes() {
    let username = "al\"ice\\";
    let header = r#"Digest username="al\"ice\\", realm="r", nonce="n", uri="u", response="0""#;
    let response = DigestResponse::parse(header)
        .expect("parses")
        .expect("Digest");
    assert_eq!(response.username(), username);
}

#[test]
fn extended_username() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    client.user = "Jäsøn Doe".to_owned();
    let header = client.authorization("REGISTER", URI).replace(
        "username=\"Jäsøn Doe\"",
        "username*=UTF-8''J%C3%A4s%C3%B8n%20Doe",
    );
    let response = DigestResponse::parse(&header)
        .expect("parses")
        .expect("Digest");
    assert_eq!(response.username(), "Jäsøn Doe");
    let creds = Credentials::from_password("Jäsøn Doe", REALM, PASSWORD);
    assert_eq!(
        auth.verify(T0, &register(), &response, Some(&creds)),
        Verdict::Authenticated {
            username: "Jäsøn Doe".to_owned(),
            algorithm: Algorithm::Sha256
        }
    );
    let both = format!("{header}, username=\"x\"");
    assert_eq!(
        DigestResponse::parse(&both),
        Err(AuthError::AmbiguousUsername)
    );
}

#[test]
fn malformed_values_are_typed_errors() {
    let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0\"";
    assert!(matches!(DigestResponse::parse(base), Ok(Some(_))));
    let cases: &[(&str, AuthError)] = &[
        ("Digest", AuthError::MissingParam { name: "username" }),
        (
            "Digest realm=\"r\", username=\"u\"",
            AuthError::MissingParam { name: "nonce" },
        ),
        ("Digest=", AuthError::Unexpected { at: 6 }),
        ("Digest username", AuthError::Unexpected { at: 15 }),
        ("Digest username=", AuthError::Unexpected { at: 16 }),
        ("Digest username=\"u", AuthError::UnterminatedQuote),
        ("Digest a=b c=d", AuthError::Unexpected { at: 11 }),
        ("Digest a=\"b\"c", AuthError::Unexpected { at: 12 }),
        ("Digest a=\"b\u{1}\"", AuthError::Unexpected { at: 11 }),
        ("Digest a=b\u{0}", AuthError::Unexpected { at: 10 }),
        ("Digest =b", AuthError::Unexpected { at: 7 }),
        (
            "Digest username=a, USERNAME=b",
            AuthError::DuplicateParam { name: "username" },
        ),
    ];
    for (value, error) in cases {
        assert_eq!(
            DigestResponse::parse(value).as_ref(),
            Err(error),
            "{value:?}"
        );
    }
    let bad_nc = format!("{base}, nc=0");
    assert_eq!(
        DigestResponse::parse(&bad_nc),
        Err(AuthError::BadNonceCount)
    );
}

#[test]
fn limits() {
    let long = format!("Digest username=\"{}\"", "a".repeat(MAX_HEADER_LEN));
    assert_eq!(
        DigestResponse::parse(&long),
        Err(AuthError::TooLong {
            len: long.len(),
            max: MAX_HEADER_LEN
        })
    );
    // Even for other schemes: the whole value is bounded.
    assert!(DigestResponse::parse(&format!("NoOp {}", "a".repeat(MAX_HEADER_LEN))).is_err());

    let params = |n: usize| {
        let mut value = "Digest username=u, realm=r, nonce=n, uri=u, response=0".to_owned();
        for i in 5..n {
            value.push_str(&format!(", p{i}=v"));
        }
        value
    };
    assert!(matches!(
        DigestResponse::parse(&params(MAX_PARAMS)),
        Ok(Some(_))
    ));
    assert_eq!(
        DigestResponse::parse(&params(MAX_PARAMS + 1)),
        Err(AuthError::TooManyParams { max: MAX_PARAMS })
    );
}

/// A small deterministic generator for the mutation loop.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_never_panics() {
    let mut auth = authenticator();
    let mut client = Client::new(&auth, T0, "SHA-256");
    let valid = client.authorization("REGISTER", URI);
    let extended = valid.replace("username=\"100-DEMO\"", "username*=UTF-8''100%2DDEMO");

    // Every truncation, at every char boundary.
    for seed in [&valid, &extended] {
        for (end, _) in seed.char_indices() {
            let _ = verify(&mut auth, T0, Some(&seed[..end]));
            let _ = verify(&mut auth, T0, Some(&seed[end..]));
        }
    }

    // Random byte edits drawn from the characters the grammar cares about.
    let alphabet: &[u8] = b"\"\\,= \t\r\n\0\x7fazAZ09%'*-_:;<>\xc3\xa9\xff";
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let seed = if round % 2 == 0 { &valid } else { &extended };
        let mut bytes = seed.clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            let b = alphabet[rng.below(alphabet.len())];
            match rng.below(3) {
                0 if at < bytes.len() => bytes[at] = b,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let verdict = verify(&mut auth, T0, Some(&text));
        // A mutation may leave the credentials valid (an edit in an ignored
        // spot); it must never authenticate anyone else.
        if let Verdict::Authenticated { username, .. } = verdict {
            assert_eq!(username, USER);
        }
    }

    // Repetition, nesting and odd lengths.
    for value in [
        "\"".repeat(100),
        "\\".repeat(100),
        ",".repeat(4096),
        "Digest ".to_owned() + &"a=\"\\".repeat(500),
        "Digest ".to_owned() + &"=,".repeat(500),
        "Digest username*=UTF-8''%".to_owned(),
        "Digest username*=''".to_owned(),
        "\u{feff}Digest username=u".to_owned(),
    ] {
        let _ = verify(&mut auth, T0, Some(&value));
    }
}

// ---------------------------------------------------------------------------
// The client side (edgepbx answering a carrier's challenge)

#[test]
fn the_client_side_reproduces_rfc7616() {
    for (algorithm, expected) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let header = format!(
            "Digest realm=\"{RFC_REALM}\", qop=\"auth, auth-int\", algorithm={algorithm}, \
             nonce=\"{RFC_NONCE}\", opaque=\"{RFC_OPAQUE}\""
        );
        let challenge = DigestChallenge::parse(&header)
            .expect("valid")
            .expect("a digest challenge we answer");
        assert!(challenge.qop_auth && !challenge.stale);
        let value = challenge.authorization(
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            RFC_CNONCE,
            1,
        );
        assert!(
            value.contains(&format!("response=\"{expected}\"")),
            "{value}"
        );
        assert!(value.contains("nc=00000001"), "{value}");
        assert!(
            value.contains(&format!("opaque=\"{RFC_OPAQUE}\"")),
            "{value}"
        );
    }
}

#[test]
fn the_client_side_answers_our_own_server() {
    let mut auth = authenticator();
    let challenges = auth.challenge(T0, [3; 16], REALM, CLIENT, false);
    let challenge =
        DigestChallenge::pick(challenges.iter().map(String::as_str)).expect("a challenge");
    assert_eq!(
        challenge.algorithm,
        Algorithm::Sha256,
        "the stronger one is picked"
    );
    let header = challenge.authorization("REGISTER", URI, USER, PASSWORD, "c1", 1);
    assert_eq!(
        verify(&mut auth, T0, Some(&header)),
        authenticated(Algorithm::Sha256)
    );
    let wrong = challenge.authorization("REGISTER", URI, USER, "not it", "c1", 2);
    assert!(matches!(
        verify(&mut auth, T0, Some(&wrong)),
        Verdict::Rejected(_)
    ));
}

#[test]
fn the_client_side_skips_what_it_cannot_answer() {
    assert_eq!(DigestChallenge::parse("Basic realm=\"x\""), Ok(None));
    assert_eq!(
        DigestChallenge::parse("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512-256"),
        Ok(None)
    );
    assert_eq!(
        DigestChallenge::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\""),
        Ok(None)
    );
    assert_eq!(
        DigestChallenge::parse("Digest realm=\"x\""),
        Err(AuthError::MissingParam { name: "nonce" })
    );
    // RFC 2069 form (no qop), MD5 by default, stale.
    let old = DigestChallenge::parse("Digest realm=\"x\", nonce=\"n\", stale=TRUE")
        .expect("valid")
        .expect("answerable");
    assert_eq!(
        (old.algorithm, old.qop_auth, old.stale),
        (Algorithm::Md5, false, true)
    );
    let value = old.authorization("INVITE", "sip:a@b", "u", "p", "c", 1);
    assert!(!value.contains("qop"), "{value}");
    let expected = h(
        "MD5",
        &format!("{}:n:{}", h("MD5", "u:x:p"), h("MD5", "INVITE:sip:a@b")),
    );
    assert!(value.contains(&expected), "{value}");
    assert_eq!(
        DigestChallenge::pick(["Basic realm=\"x\"", "Digest nonsense"]),
        None
    );
}

fn invite(uri: &str) -> edgepbx_sip::Request {
    let mut r = edgepbx_sip::Request {
        method: edgepbx_sip::Method::from_token("INVITE"),
        uri: uri.to_owned(),
        headers: Default::default(),
        body: Vec::new(),
    };
    r.headers
        .push("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
    r.headers.push("CSeq", "1 INVITE");
    r
}

/// A client answers a carrier's challenge with the same request, the next
/// CSeq and its credentials, and without a Via (its transaction adds one);
/// a refusal is not a challenge.
#[test]
fn a_challenge_is_answered_with_the_next_cseq() {
    let invite = invite("sip:0612345678@carrier.example");
    let mut challenge = edgepbx_sip::Response::for_request(&invite, 407, Some("t"));
    challenge.headers.push(
        "Proxy-Authenticate",
        "Digest realm=\"carrier\", nonce=\"abc\", qop=\"auth\", algorithm=MD5",
    );
    let next = edgepbx_sip::auth::authorized(&invite, &challenge, "acme", "secret", "c1")
        .expect("answered");
    assert_eq!(next.headers.get("CSeq"), Some("2 INVITE"));
    assert_eq!(next.headers.get("Via"), None);
    let answer = next.headers.get("Proxy-Authorization").unwrap_or_default();
    assert!(answer.contains("username=\"acme\""), "{answer}");
    assert!(
        answer.contains("uri=\"sip:0612345678@carrier.example\""),
        "{answer}"
    );
    let refusal = edgepbx_sip::Response::for_request(&invite, 403, Some("t"));
    assert!(edgepbx_sip::auth::authorized(&invite, &refusal, "acme", "secret", "c1").is_none());
}
