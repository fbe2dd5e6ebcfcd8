//! The server against SIPVicious (Debian's `sipvicious` 0.3.x), the
//! scanner kit of drive-by attacks on SIP servers, judged by what the
//! tools themselves report:
//! - `svmap` finds the server, and no product name to look up exploits
//!   for;
//! - `svwar` enumerates no extension with any method it has (REGISTER,
//!   OPTIONS, INVITE) over a range holding real ones: the server answers a
//!   real extension exactly as it answers the random user `svwar` first
//!   sends to learn what "unknown" looks like;
//! - `svcrack` against a real extension with a 1,000-word dictionary is
//!   blocked by the failure throttle (default `[security]` settings)
//!   before it reaches the password at word 900, over REGISTER (401) and
//!   INVITE (407); a control run with the throttle relaxed shows that it
//!   would have found it.
//!
//! Everything is UDP on 127.0.0.1 (SIPVicious OSS speaks nothing else).

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use edgepbx_e2e::pbx::{ACME, Deployment, NO_KEEPALIVE, RunningPbx, password_for};
use edgepbx_e2e::sipvicious::{Scan, ScanOutcome};

/// The extensions of tenant ACME that `svwar` must not find.
const EXTENSIONS: RangeInclusive<u32> = 100..=110;

/// What `svwar` tries: the real extensions and twenty numbers around them.
const CANDIDATES: &str = "90-130";
/// The last candidate, to see that a scan went through the whole range.
const LAST_CANDIDATE: u32 = 130;

/// Words in `svcrack`'s dictionary.
const DICTIONARY_WORDS: usize = 1_000;
/// Where the real password stands in it (1-based).
const PASSWORD_POSITION: usize = 900;

/// The server's log line when the throttle blocks a source.
const BLOCKED: &str = "source blocked after repeated authentication failures";

/// `svcrack`'s failures under the default `[security]` settings: throttled
/// after 5 and blocked after 10 within a minute. Keepalives off so nothing
/// pings the binding the control run makes.
const DEFAULT_SECURITY: &str = NO_KEEPALIVE;

/// No throttle to speak of, for the control run.
const UNLIMITED_FAILURES: &str = "[registrar]\nkeepalive_interval_secs = 0\n\
     [security]\nthrottle_after_failures = 5000\nblock_after_failures = 5000\n";

#[test]
fn svmap_finds_the_server_and_no_product_name() {
    let deployment = Deployment::with_config("scan-svmap", NO_KEEPALIVE);
    deployment.acme_with([100]);
    let pbx = deployment.start();

    let outcome = Scan::svmap(pbx.udp())
        .timeout(Duration::from_secs(60))
        .run(deployment.work().path(), "svmap");
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.report());
    // svmap names what it found by the Server or User-Agent header of the
    // answer to its OPTIONS; edgepbx sends neither, so it is "unknown".
    assert_eq!(
        outcome.results(),
        vec![vec![pbx.udp().to_string(), "unknown".to_owned()]],
        "svmap should list the server, without a product name\n{}",
        outcome.report()
    );
}

#[test]
fn svwar_enumerates_no_extension_with_any_method() {
    let deployment = Deployment::with_config("scan-svwar", NO_KEEPALIVE);
    deployment.acme_with(EXTENSIONS);
    let pbx = deployment.start();
    let (_, domain) = ACME;

    // REGISTER and INVITE: svwar's first request, for a random user, is
    // challenged (401, 407) as a real extension would be, so svwar
    // refuses to go on: it cannot tell users apart.
    for method in ["REGISTER", "INVITE"] {
        let outcome = svwar(&pbx, method, &["-e", CANDIDATES])
            .run(deployment.work().path(), &format!("svwar-{method}"));
        assert_enumerated_nothing(&outcome);
        assert!(
            outcome.says("replied with an authentication request for an unknown extension"),
            "svwar {method} should have found unknown users challenged\n{}",
            outcome.report()
        );
    }

    // OPTIONS: answered 200 for anyone, so svwar scans the whole range and
    // finds every answer the same as the random user's.
    let outcome =
        svwar(&pbx, "OPTIONS", &["-e", CANDIDATES]).run(deployment.work().path(), "svwar-OPTIONS");
    assert_enumerated_nothing(&outcome);
    for number in EXTENSIONS.chain([LAST_CANDIDATE]) {
        let sent = format!("sending request for {number}");
        assert!(
            outcome
                .lines_with(&sent)
                .any(|l| l.trim_end().ends_with(&sent)),
            "svwar OPTIONS did not try {number}\n{}",
            outcome.report()
        );
    }

    // Forced past that check, svwar compares each real extension's answer
    // with the random user's: the status lines are the same, which svwar
    // takes for "nothing to learn here" (an unknown response) and stops.
    // One extension a run, since it stops at the first answer.
    for (method, challenge) in [
        ("REGISTER", "SIP/2.0 401 Unauthorized"),
        ("INVITE", "SIP/2.0 407 Proxy Authentication Required"),
    ] {
        for number in [*EXTENSIONS.start(), *EXTENSIONS.end()] {
            let candidate = number.to_string();
            let outcome = svwar(&pbx, method, &["--force", "-e", &candidate]).run(
                deployment.work().path(),
                &format!("svwar-{method}-{number}"),
            );
            assert_enumerated_nothing(&outcome);
            assert!(
                outcome.says(&format!("Bad user = {challenge}")),
                "svwar {method} should have learnt the answer for an unknown user\n{}",
                outcome.report()
            );
            let same_as_unknown = outcome
                .lines_with("Response: '")
                .any(|l| l.contains(challenge) && l.contains(&format!("<sip:{number}@{domain}>")));
            assert!(
                same_as_unknown,
                "svwar {method} should have got the unknown user's answer for {number}\n{}",
                outcome.report()
            );
        }
    }
}

#[test]
fn svcrack_over_register_is_blocked_before_the_password() {
    assert_crack_blocked("REGISTER", "scan-svcrack-register");
}

/// svcrack never ACKs the 407s, so the server retransmits them for 32 s
/// (RFC 3261 Timer G until Timer H); svcrack answers each copy with the
/// next password. Those guesses come after the block and are dropped
/// unread: svcrack tries about a hundred words, the server checks ten.
#[test]
fn svcrack_over_invite_is_blocked_before_the_password() {
    assert_crack_blocked("INVITE", "scan-svcrack-invite");
}

/// The control for the two tests above: with failures unlimited, the same
/// run finds the password, so "found nothing" there is the throttle's
/// doing and not a run that never worked.
#[test]
fn svcrack_finds_the_password_when_failures_are_not_limited() {
    let deployment = Deployment::with_config("scan-svcrack-control", UNLIMITED_FAILURES);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();

    let outcome = svcrack(&pbx, &deployment, &ext.number, "REGISTER")
        .run(deployment.work().path(), "svcrack-control");
    assert_eq!(
        outcome.results(),
        vec![vec![ext.number.clone(), ext.password.clone()]],
        "svcrack should find the password when nothing stops it\n{}",
        outcome.report()
    );
    assert_eq!(
        outcome.passwords_tried().len(),
        PASSWORD_POSITION,
        "{}",
        outcome.report()
    );
}

/// `svwar -m <method> --domain acme.test <args>`: the attacker knows the
/// tenant's domain, the strongest position (on the bare address every
/// user is unknown anyway).
fn svwar(pbx: &RunningPbx, method: &str, args: &[&str]) -> Scan {
    let (_, domain) = ACME;
    let mut scan = Scan::svwar(pbx.udp())
        .arg("-m")
        .arg(method)
        .arg("--domain")
        .arg(domain)
        .timeout(Duration::from_secs(60));
    for arg in args {
        scan = scan.arg(arg);
    }
    scan
}

/// No extension in svwar's results, nor any line claiming one exists.
fn assert_enumerated_nothing(outcome: &ScanOutcome) {
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.report());
    let found: Vec<String> = outcome.results().into_iter().flatten().collect();
    let real: Vec<String> = EXTENSIONS
        .map(|n| n.to_string())
        .filter(|n| found.contains(n))
        .collect();
    assert!(
        found.is_empty() && real.is_empty(),
        "svwar enumerated {found:?} (real extensions among them: {real:?})\n{}",
        outcome.report()
    );
    assert!(
        outcome.found_nothing() && !outcome.says(" exists"),
        "svwar should report nothing\n{}",
        outcome.report()
    );
}

/// `svcrack -u <user> --domain acme.test -d <dictionary> -m <method>`,
/// stopping 5 s after the server's last answer (the tool's own limit) and
/// killed after two minutes (the harness's).
fn svcrack(pbx: &RunningPbx, deployment: &Deployment, user: &str, method: &str) -> Scan {
    let (_, domain) = ACME;
    let words = dictionary(deployment, &password_for(user));
    Scan::svcrack(pbx.udp(), user)
        .arg("--domain")
        .arg(domain)
        .arg("-d")
        .arg(&words.to_string_lossy())
        .arg("-m")
        .arg(method)
        .arg("--maximumtime")
        .arg("5")
        .timeout(Duration::from_secs(120))
}

/// A dictionary of [`DICTIONARY_WORDS`] wrong passwords with `password`
/// at [`PASSWORD_POSITION`].
fn dictionary(deployment: &Deployment, password: &str) -> PathBuf {
    let words: Vec<String> = (1..=DICTIONARY_WORDS)
        .map(|i| {
            if i == PASSWORD_POSITION {
                password.to_owned()
            } else {
                format!("Guess-{i:04}!")
            }
        })
        .collect();
    deployment
        .work()
        .write("dictionary.txt", &(words.join("\n") + "\n"))
}

/// svcrack against extension 100 with the default security settings:
/// blocked, the password never tried, and the server says why.
fn assert_crack_blocked(method: &str, name: &str) {
    let deployment = Deployment::with_config(name, DEFAULT_SECURITY);
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();

    let outcome = svcrack(&pbx, &deployment, &ext.number, method)
        .run(deployment.work().path(), &format!("svcrack-{method}"));
    assert!(
        !outcome.killed && outcome.exit_code == Some(0),
        "{}",
        outcome.report()
    );
    assert!(
        outcome.results().is_empty() && outcome.found_nothing(),
        "svcrack {method} found a password\n{}",
        outcome.report()
    );
    let tried = outcome.passwords_tried();
    assert!(
        !tried.is_empty(),
        "svcrack {method} was never challenged\n{}",
        outcome.report()
    );
    assert!(
        !tried.contains(&ext.password.as_str()),
        "svcrack {method} got as far as the password (word {PASSWORD_POSITION}) after {} words\n{}",
        tried.len(),
        outcome.report()
    );
    // svcrack gave up because the server went silent ...
    assert!(
        outcome.says("since we last received a response - stopping"),
        "svcrack {method} should have stopped on the server's silence\n{}",
        outcome.report()
    );
    // ... because the server blocked it.
    let log = pbx.log();
    assert!(
        log.lines()
            .any(|l| l.contains(BLOCKED) && l.contains("ip=127.0.0.1")),
        "the server should have blocked 127.0.0.1\n{}",
        outcome.report()
    );
    eprintln!(
        "svcrack {method}: {} of {DICTIONARY_WORDS} words tried in {:.1}s, blocked",
        tried.len(),
        outcome.elapsed.as_secs_f64()
    );
}
