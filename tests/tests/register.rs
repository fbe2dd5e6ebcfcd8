//! The registrar end to end (RFC 3261 §10, digest per RFC 7616/8760):
//! SIPp registering many extensions and several devices, refusals, the
//! brute-force block, no user enumeration, the `<ext>-<CODE>` username,
//! `Contact: *` removal, the minimum expiry, nonce replay and expiry, and
//! the `digest_algorithms` setting.
//!
//! With the default configuration SIPp reaches the server through
//! [`Md5ChallengeRelay`] (Debian's SIPp 3.6.1 cannot read a SHA-256-first
//! challenge list, see `relay.rs`); the raw [`UserAgent`] talks to the
//! server directly and answers SHA-256.

use std::collections::HashMap;
use std::time::Duration;

use edgepbx_e2e::pbx::{ACME, Deployment, NO_KEEPALIVE, password_for};
use edgepbx_e2e::relay::Md5ChallengeRelay;
use edgepbx_e2e::sip::{
    Algorithm, RegisterParams, SipClient, SipMessage, UserAgent, contact_param, contact_uri,
    normalise,
};
use edgepbx_e2e::sipp::Sipp;

/// Extensions registered by the load test.
const MANY: u32 = 50;

fn contact_uris(response: &SipMessage) -> Vec<String> {
    response.contacts().iter().map(|c| contact_uri(c)).collect()
}

/// The server turns transparent huge pages off for itself: with them,
/// memory its allocator gave back was faulted in again 2 MiB at a time on
/// the SIP thread, the registrar's p99 under load (BENCHMARKS.md).
fn assert_no_huge_pages(pid: u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read the server's status: {e}"));
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(thp, Some("0"), "THP_enabled of the server");
}

/// Nice value of each of the process's threads, by thread name.
fn thread_priorities(pid: &str) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("cannot list the server's threads: {e}"));
    tasks
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            // "tid (name) state ppid ...": the name may hold spaces, so the
            // fields are counted from its closing parenthesis; nice is the
            // 19th field, the 17th after the name.
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_owned();
            let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
            Some((name, nice))
        })
        .collect()
}

/// Signalling runs first: the SIP threads keep the priority the server
/// started with (this test's) and the main runtime's (write-behind, HTTP)
/// and the database engine's run 10 lower, the default
/// `sip.background_nice` (BENCHMARKS.md has its effect on the p99).
fn assert_signalling_first(pid: u32) {
    let own = thread_priorities("self")
        .first()
        .map(|(_, nice)| *nice)
        .expect("this test's own priority");
    let threads = thread_priorities(&pid.to_string());
    let of = |name: &str| -> Vec<i64> {
        threads
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, nice)| *nice)
            .collect()
    };
    let (sip, runtime, database) = (of("sip"), of("tokio-rt-worker"), of("surrealdb-threa"));
    assert!(
        !sip.is_empty() && !runtime.is_empty() && !database.is_empty(),
        "{threads:?}"
    );
    assert!(sip.iter().all(|&n| n == own), "{threads:?}");
    let lowered = (own + 10).min(19);
    assert!(
        runtime.iter().chain(&database).all(|&n| n == lowered),
        "{threads:?}"
    );
}

#[test]
fn sipp_registers_many_extensions_with_digest_auth() {
    let deployment = Deployment::with_config("register-many", NO_KEEPALIVE);
    let extensions = deployment.acme_with(100..100 + MANY);
    let pbx = deployment.start();
    assert_no_huge_pages(pbx.pid());
    assert_signalling_first(pbx.pid());
    let relay = Md5ChallengeRelay::start(pbx.udp());

    let mut csv = String::from("SEQUENTIAL\n");
    for e in &extensions {
        csv.push_str(&format!("{};{};{}\n", e.domain, e.number, e.password));
    }
    let users = deployment.work().write("users.csv", &csv);
    let outcome = Sipp::new("register_auth", relay.addr())
        .injection_file(&users)
        .auth_uri(ACME.1) // the tenant's domain
        .key("expires", "600")
        .calls(MANY)
        .rate(25)
        .timeout(Duration::from_secs(120))
        .run(deployment.work().path(), "sipp-many");
    outcome.assert_all_succeeded(u64::from(MANY));

    // One 200 per registration; a retransmitted 200 (UDP) counts once.
    let mut oks: HashMap<&str, &SipMessage> = HashMap::new();
    for ok in outcome.responses().filter(|m| m.status() == Some(200)) {
        oks.insert(ok.header("call-id").unwrap_or_default(), ok);
    }
    assert_eq!(oks.len(), MANY as usize, "{}", outcome.report());
    for ok in oks.values() {
        let contacts = ok.contacts();
        assert_eq!(
            contacts.len(),
            1,
            "one device per extension:\n{}",
            ok.text()
        );
        let expires: u32 = contact_param(&contacts[0], "expires")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("200 without a Contact expires parameter:\n{}", ok.text()));
        assert!(
            (1..=600).contains(&expires),
            "expires {expires} not granted as asked:\n{}",
            ok.text()
        );
    }

    // The last extension's binding is visible to a SHA-256 client too.
    let last = &extensions[extensions.len() - 1];
    let mut ua = last.agent(SipClient::udp(pbx.udp()));
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    let uris = contact_uris(&query);
    assert_eq!(uris.len(), 1, "{}", query.text());
    assert!(
        uris[0].starts_with(&format!("sip:{}@127.0.0.1:", last.number)),
        "{uris:?}"
    );
}

#[test]
fn second_device_gets_both_bindings_listed() {
    let deployment = Deployment::with_config("register-two-devices", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let relay = Md5ChallengeRelay::start(pbx.udp());

    let device = |name: &str| {
        Sipp::new("register_device", relay.addr())
            .account(&ext.domain, &ext.number, &ext.password)
            .key("device", name)
            .key("expires", "600")
            .run(deployment.work().path(), name)
    };
    let first = device("phone-a");
    first.assert_all_succeeded(1);
    let second = device("phone-b");
    second.assert_all_succeeded(1);

    let ok = second
        .last_response(200)
        .unwrap_or_else(|| panic!("no 200\n{}", second.report()));
    let uris = contact_uris(ok);
    assert_eq!(
        uris.len(),
        2,
        "the 200 must list both devices:\n{}",
        ok.text()
    );
    assert!(
        uris.iter().any(|u| u.starts_with("sip:phone-a@")),
        "{uris:?}"
    );
    assert!(
        uris.iter().any(|u| u.starts_with("sip:phone-b@")),
        "{uris:?}"
    );
    for contact in ok.contacts() {
        assert!(
            contact_param(&contact, "expires").is_some(),
            "no expires in {contact}"
        );
    }

    // A SHA-256 query from a third socket sees the same two bindings.
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    assert_eq!(contact_uris(&query).len(), 2, "{}", query.text());
}

#[test]
fn wrong_password_never_gets_200() {
    let deployment = Deployment::with_config("register-wrong-password", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let relay = Md5ChallengeRelay::start(pbx.udp());

    // MD5 via SIPp: a known user with a wrong password, an unknown user.
    let bad = deployment.work().write(
        "bad.csv",
        &format!(
            "SEQUENTIAL\n{d};{n};not-the-password\n{d};999;whatever-pw\n",
            d = ext.domain,
            n = ext.number
        ),
    );
    let outcome = Sipp::new("register_wrong_password", relay.addr())
        .injection_file(&bad)
        .auth_uri(&ext.domain)
        .calls(2)
        .rate(1)
        .run(deployment.work().path(), "sipp-wrong");
    outcome.assert_all_succeeded(2);
    assert!(
        outcome.responses().all(|m| m.status() != Some(200)),
        "a wrong password was accepted\n{}",
        outcome.report()
    );

    // SHA-256 and MD5 from the raw client.
    for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
        let mut ua = UserAgent::new(
            SipClient::udp(pbx.udp()),
            &ext.number,
            &ext.domain,
            "not-the-password",
        )
        .prefer(algorithm);
        let contact = ua.own_contact();
        let response = ua.register(&RegisterParams::bind(&contact, 600));
        assert!(
            matches!(response.status(), Some(401 | 403)),
            "{algorithm:?} with a wrong password:\n{}",
            response.text()
        );
    }

    // Nothing was bound.
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    assert!(query.contacts().is_empty(), "{}", query.text());
}

#[test]
fn repeated_failures_block_the_source() {
    let deployment = Deployment::with_config(
        "register-block",
        "[registrar]\nkeepalive_interval_secs = 0\n\
         [security]\nfailure_window_secs = 120\nthrottle_after_failures = 2\n\
         block_after_failures = 4\nblock_secs = 600\n",
    );
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();

    // Wrong passwords until the server stops answering even the challenge.
    // Throttled failures may go unanswered; that is fine.
    let mut blocked = false;
    for _ in 0..20 {
        let mut ua = UserAgent::new(
            SipClient::udp(pbx.udp()),
            &ext.number,
            &ext.domain,
            "not-the-password",
        );
        let contact = ua.own_contact();
        let params = RegisterParams::bind(&contact, 600);
        let request = ua.register_request(&params, None);
        let Some(challenge) = ua.client().transact(&request, Duration::from_secs(3)) else {
            blocked = true;
            break;
        };
        assert_eq!(challenge.status(), Some(401), "{}", challenge.text());
        let authorization = ua
            .answer(&challenge)
            .expect("the 401 carries a usable challenge");
        let request = ua.register_request(&params, Some(&authorization));
        if let Some(response) = ua.client().transact(&request, Duration::from_secs(3)) {
            assert_ne!(
                response.status(),
                Some(200),
                "wrong password accepted:\n{}",
                response.text()
            );
        }
    }
    assert!(blocked, "still answered after 20 failed authentications");

    // Now even the right password gets nothing: SIPp times out.
    let relay = Md5ChallengeRelay::start(pbx.udp());
    let outcome = Sipp::new("register_device", relay.addr())
        .account(&ext.domain, &ext.number, &password_for(&ext.number))
        .key("device", "phone")
        .key("expires", "600")
        .recv_timeout(Duration::from_secs(4))
        .arg("-max_retrans")
        .arg("3")
        .timeout(Duration::from_secs(40))
        .run(deployment.work().path(), "sipp-blocked");
    assert_eq!(outcome.successful, 0, "{}", outcome.report());
    assert_ne!(outcome.exit_code, Some(0), "{}", outcome.report());
    assert_eq!(
        outcome.received().count(),
        0,
        "a blocked source got an answer\n{}",
        outcome.report()
    );

    // And a direct OPTIONS from a new socket of the same address too.
    let mut client = SipClient::udp(pbx.udp());
    let options = client.options_request(&ext.domain);
    assert!(
        client.transact(&options, Duration::from_secs(3)).is_none(),
        "OPTIONS answered while blocked"
    );
}

#[test]
fn unknown_and_known_users_get_the_same_answers() {
    let deployment = Deployment::with_config("register-enumeration", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();

    // One socket for both, so nothing differs in the transport either.
    let mut client = Some(SipClient::udp(pbx.udp()));
    let mut exchange = |user: &str, domain: &str| {
        let socket = client
            .take()
            .expect("the socket is handed back after each use");
        let mut ua = UserAgent::new(socket, user, domain, "not-the-password");
        let contact = format!("<sip:{user}@127.0.0.1:9>");
        let params = RegisterParams::bind(&contact, 600);
        let request = ua.register_request(&params, None);
        let challenge = ua
            .client()
            .transact(&request, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no challenge for {user}@{domain}"));
        let authorization = ua
            .answer(&challenge)
            .expect("the 401 carries a usable challenge");
        let request = ua.register_request(&params, Some(&authorization));
        let refusal = ua
            .client()
            .transact(&request, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no answer to the wrong credentials of {user}@{domain}"));
        let call_id = ua.call_id().to_owned();
        client = Some(ua.into_client());
        (
            normalise(&challenge, user, &call_id),
            normalise(&refusal, user, &call_id),
        )
    };
    let known = exchange(&ext.number, &ext.domain);
    let unknown = exchange("999", &ext.domain);
    assert!(known.0.starts_with("SIP/2.0 401"), "{}", known.0);
    assert_eq!(
        known.0, unknown.0,
        "the challenge differs between a known and an unknown user"
    );
    assert_eq!(
        known.1, unknown.1,
        "the refusal differs between a known and an unknown user"
    );
}

#[test]
fn qualified_username_works_on_a_bare_ip() {
    let deployment = Deployment::with_config("register-qualified", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let user = ext.qualified_user();
    let host = pbx.udp().ip().to_string();

    // SHA-256 over UDP and TCP from the raw client.
    let mut ua = UserAgent::new(SipClient::udp(pbx.udp()), &user, &host, &ext.password);
    let first = ua
        .send_register(
            &RegisterParams::bind("<sip:100-ACME@127.0.0.1:9>", 600),
            None,
        )
        .expect("an answer to REGISTER");
    assert_eq!(first.status(), Some(401), "{}", first.text());
    let challenges = first.challenges();
    assert_eq!(
        challenges.len(),
        2,
        "SHA-256 and MD5 challenges expected:\n{}",
        first.text()
    );
    assert_eq!(
        challenges[0].algorithm,
        Some(Algorithm::Sha256),
        "{}",
        first.text()
    );
    assert_eq!(
        challenges[1].algorithm,
        Some(Algorithm::Md5),
        "{}",
        first.text()
    );
    assert!(
        challenges
            .iter()
            .all(|c| c.realm == ext.domain && c.qop.iter().any(|q| q == "auth")),
        "realm must be the tenant's domain with qop=auth:\n{}",
        first.text()
    );
    let contact = ua.own_contact();
    let ok = ua.register(&RegisterParams::bind(&contact, 600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(
        contact_uris(&ok),
        vec![contact_uri(&contact)],
        "{}",
        ok.text()
    );

    let mut tcp_ua = UserAgent::new(SipClient::tcp(pbx.tcp()), &user, &host, &ext.password);
    let tcp_contact = tcp_ua.own_contact();
    let ok = tcp_ua.register(&RegisterParams::bind(&tcp_contact, 600));
    assert_eq!(ok.status(), Some(200), "over TCP:\n{}", ok.text());
    assert_eq!(
        contact_uris(&ok).len(),
        2,
        "UDP and TCP devices:\n{}",
        ok.text()
    );

    // MD5 via SIPp.
    let relay = Md5ChallengeRelay::start(pbx.udp());
    let outcome = Sipp::new("register_device", relay.addr())
        .account(&host, &user, &ext.password)
        .key("device", "sipp-phone")
        .key("expires", "600")
        .run(deployment.work().path(), "sipp-qualified");
    outcome.assert_all_succeeded(1);
    let ok = outcome.last_response(200).expect("a 200");
    assert_eq!(contact_uris(ok).len(), 3, "{}", ok.text());
}

#[test]
fn star_contact_with_expires_zero_removes_all_bindings() {
    let deployment = Deployment::with_config("register-star", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    for device in ["a", "b", "c"] {
        let mut ua = ext.agent(SipClient::udp(pbx.udp()));
        let ok = ua.register(&RegisterParams::bind(
            &format!("<sip:{device}@127.0.0.1:9>"),
            600,
        ));
        assert_eq!(ok.status(), Some(200), "{}", ok.text());
    }

    let relay = Md5ChallengeRelay::start(pbx.udp());
    let outcome = Sipp::new("unregister_all", relay.addr())
        .account(&ext.domain, &ext.number, &ext.password)
        .run(deployment.work().path(), "sipp-star");
    outcome.assert_all_succeeded(1);

    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    assert!(
        query.contacts().is_empty(),
        "bindings left after Contact: *\n{}",
        query.text()
    );
}

#[test]
fn too_brief_expiry_gets_423_with_min_expires() {
    let deployment = Deployment::with_config(
        "register-too-brief",
        "[registrar]\nkeepalive_interval_secs = 0\nmin_expires = 120\n",
    );
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();

    let relay = Md5ChallengeRelay::start(pbx.udp());
    let outcome = Sipp::new("register_too_brief", relay.addr())
        .account(&ext.domain, &ext.number, &ext.password)
        .key("expires", "30")
        .run(deployment.work().path(), "sipp-brief");
    outcome.assert_all_succeeded(1);
    let brief = outcome.last_response(423).expect("a 423");
    assert_eq!(
        brief.header("min-expires").map(str::trim),
        Some("120"),
        "{}",
        brief.text()
    );

    // The same through the Contact expires parameter, SHA-256.
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let params = RegisterParams {
        contacts: vec!["<sip:100@127.0.0.1:9>;expires=30".into()],
        expires: None,
        extra_headers: Vec::new(),
    };
    let brief = ua.register(&params);
    assert_eq!(brief.status(), Some(423), "{}", brief.text());
    assert_eq!(
        brief.reason(),
        Some("Interval Too Brief"),
        "{}",
        brief.text()
    );
    assert_eq!(
        brief.header("min-expires").map(str::trim),
        Some("120"),
        "{}",
        brief.text()
    );

    // Nothing was bound by either.
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    assert!(query.contacts().is_empty(), "{}", query.text());
}

/// A tenant's own limit on devices per extension (below the server's) is
/// enforced: the device past it gets 403 and is not bound.
#[test]
fn a_tenant_limit_caps_devices_per_extension() {
    let deployment = Deployment::new("register-tenant-limit");
    let ext = deployment.acme_with([100]).remove(0);
    deployment.admin(&["tenant", "limits", "ACME", "--max-bindings", "1"]);
    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let mut other = ext.agent(SipClient::udp(pbx.udp()));

    let first = ua.register(&RegisterParams::bind("<sip:100@127.0.0.1:9>", 600));
    assert_eq!(first.status(), Some(200), "{}", first.text());
    let second = other.register(&RegisterParams::bind("<sip:100@127.0.0.1:10>", 600));
    assert_eq!(second.status(), Some(403), "{}", second.text());
    let query = ua.register(&RegisterParams::query());
    assert_eq!(
        contact_uris(&query),
        vec!["sip:100@127.0.0.1:9".to_owned()],
        "{}",
        query.text()
    );
}

/// A contact with push-notification parameters (RFC 8599) fits; one past
/// the registrar's cap is refused with 400 and binds nothing.
#[test]
fn an_oversized_contact_gets_400_and_binds_nothing() {
    let deployment = Deployment::new("register-oversized-contact");
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let contact = |token_len: usize| {
        format!(
            "<sip:100@127.0.0.1:9;pn-provider=fcm;pn-param=edgepbx;pn-prid={}>",
            "a".repeat(token_len)
        )
    };

    let push = ua.register(&RegisterParams::bind(&contact(900), 600));
    assert_eq!(push.status(), Some(200), "{}", push.text());
    assert_eq!(push.contacts().len(), 1, "{}", push.text());

    let oversized = ua.register(&RegisterParams::bind(&contact(1100), 600));
    assert_eq!(oversized.status(), Some(400), "{}", oversized.text());
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    let bound = contact_uris(&query);
    assert_eq!(bound.len(), 1, "{}", query.text());
    assert!(bound[0].contains(&"a".repeat(900)), "{}", query.text());
    assert!(!bound[0].contains(&"a".repeat(901)), "{}", query.text());
}

#[test]
fn replayed_credentials_are_refused() {
    let deployment = Deployment::with_config("register-replay", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let params = RegisterParams::bind("<sip:desk@127.0.0.1:9>", 600);
    let challenge = ua.send_register(&params, None).expect("a challenge");
    assert_eq!(challenge.status(), Some(401), "{}", challenge.text());
    let authorization = ua.answer(&challenge).expect("a usable challenge");
    let ok = ua
        .send_register(&params, Some(&authorization))
        .expect("an answer");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    // The same nonce, nc and cnonce again, in a new transaction.
    let replay = ua
        .send_register(&params, Some(&authorization))
        .expect("an answer to the replay");
    assert_eq!(
        replay.status(),
        Some(401),
        "a replayed Authorization was accepted:\n{}",
        replay.text()
    );
}

#[test]
fn expired_nonce_is_answered_with_stale_true() {
    let deployment = Deployment::with_config(
        "register-stale",
        "[registrar]\nkeepalive_interval_secs = 0\n[security]\nnonce_ttl_secs = 10\n",
    );
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let params = RegisterParams::bind("<sip:desk@127.0.0.1:9>", 600);
    let challenge = ua.send_register(&params, None).expect("a challenge");
    let authorization = ua.answer(&challenge).expect("a usable challenge");
    std::thread::sleep(Duration::from_secs(12));
    let stale = ua
        .send_register(&params, Some(&authorization))
        .expect("an answer");
    assert_eq!(
        stale.status(),
        Some(401),
        "an expired nonce was accepted:\n{}",
        stale.text()
    );
    assert!(
        !stale.challenges().is_empty() && stale.challenges().iter().all(|c| c.stale),
        "every new challenge must say stale=true:\n{}",
        stale.text()
    );
    // A client answering the fresh challenge gets in without a new password prompt.
    let authorization = ua.answer(&stale).expect("a usable challenge");
    let ok = ua
        .send_register(&params, Some(&authorization))
        .expect("an answer");
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
}

#[test]
fn md5_first_serves_sipp_without_the_relay() {
    let deployment = Deployment::with_config(
        "register-md5-first",
        "[registrar]\nkeepalive_interval_secs = 0\n[security]\ndigest_algorithms = [\"MD5\", \"SHA-256\"]\n",
    );
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();

    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let first = ua
        .send_register(&RegisterParams::query(), None)
        .expect("a challenge");
    let order: Vec<Option<Algorithm>> = first.challenges().iter().map(|c| c.algorithm).collect();
    assert_eq!(
        order,
        vec![Some(Algorithm::Md5), Some(Algorithm::Sha256)],
        "{}",
        first.text()
    );

    let outcome = Sipp::new("register_device", pbx.udp())
        .account(&ext.domain, &ext.number, &ext.password)
        .key("device", "sipp-direct")
        .key("expires", "600")
        .run(deployment.work().path(), "sipp-direct");
    outcome.assert_all_succeeded(1);
}
