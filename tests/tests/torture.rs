//! The RFC 4475 / RFC 5118 torture corpus sent to the running server over
//! UDP and TCP. The server must not crash; requests the corpus calls
//! invalid must get a 4xx/5xx or nothing, never a 2xx; responses must never
//! be answered; and afterwards the server still answers normal requests.
//!
//! Which file is which comes from `EXPECTED.tsv` next to the corpus. The
//! RFC 5118 messages are sent from `rfc5118/wire/` (CRLF, recomputed
//! Content-Length), looked up as `rfc5118/<name>`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use edgepbx_e2e::pbx::{ACME, Deployment, RunningPbx, password_for};
use edgepbx_e2e::sip::{RegisterParams, SipClient, SipMessage, Transport, UserAgent};
use edgepbx_e2e::torture_dir;

/// How long to wait for an answer to one torture message. Most get one at
/// once; the wait is spent in full only on those that get none.
const ANSWER_WAIT: Duration = Duration::from_millis(1500);

/// A generous failure budget: this test is about the parser, and some
/// torture messages carry credentials (regaut01) that count as failures.
const CONFIG: &str = "[registrar]\nkeepalive_interval_secs = 0\n\
                      [security]\nthrottle_after_failures = 1000\nblock_after_failures = 1000\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid,
}

#[derive(Debug)]
struct Case {
    /// Path relative to the corpus directory.
    name: String,
    bytes: Vec<u8>,
    verdict: Verdict,
}

impl Case {
    fn is_response(&self) -> bool {
        self.bytes.starts_with(b"SIP/")
    }
}

fn corpus() -> Vec<Case> {
    let dir = torture_dir();
    let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv"))
        .unwrap_or_else(|e| panic!("cannot read {}/EXPECTED.tsv: {e}", dir.display()));
    let verdicts: HashMap<String, Verdict> = expected
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.to_owned();
            let verdict = match fields.next()? {
                "valid" => Verdict::Valid,
                "invalid" => Verdict::Invalid,
                _ => return None,
            };
            Some((name, verdict))
        })
        .collect();
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["", "extras", "rfc5118/wire"] {
        let path = dir.join(sub);
        let entries = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()));
        for entry in entries.flatten() {
            let p = entry.path();
            let is_message =
                p.is_file() && (!sub.is_empty() || p.extension().is_some_and(|e| e == "dat"));
            if is_message {
                files.push(p);
            }
        }
    }
    files.sort();
    let cases: Vec<Case> = files
        .into_iter()
        .map(|path| {
            let name = relative(&dir, &path);
            let verdict = lookup_verdict(&verdicts, &name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            Case {
                name,
                bytes,
                verdict,
            }
        })
        .collect();
    assert!(
        cases.len() >= 60,
        "the corpus looks incomplete: {} files",
        cases.len()
    );
    cases
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// EXPECTED.tsv names `rfc5118/<name>` for the wire variants; the extras
/// are a CRLF-fixed copy of an invalid message (baddn) and an undescribed
/// archive member without a SIP version in its request line (invalid).
fn lookup_verdict(verdicts: &HashMap<String, Verdict>, name: &str) -> Verdict {
    let key = match name {
        "extras/baddn.crlf-terminated.dat" => "baddn.dat".to_owned(),
        "extras/test.dat" => return Verdict::Invalid,
        n => n.replace("rfc5118/wire/", "rfc5118/"),
    };
    *verdicts
        .get(&key)
        .unwrap_or_else(|| panic!("{name} is not described in EXPECTED.tsv"))
}

/// What the server sent back to one message: everything up to the first
/// final response, or within the wait when none comes.
fn answers(client: &mut SipClient) -> Vec<SipMessage> {
    let mut out = Vec::new();
    while let Some(message) = client.recv(ANSWER_WAIT) {
        let is_final = message.status().is_some_and(|s| s >= 200);
        out.push(message);
        if is_final {
            break;
        }
    }
    out
}

/// Problems with the answers to one case; empty when acceptable.
fn judge(case: &Case, answers: &[SipMessage]) -> Vec<String> {
    let mut problems = Vec::new();
    for answer in answers {
        let Some(status) = answer.status() else {
            continue;
        };
        if case.is_response() {
            problems.push(format!(
                "{}: a response was answered with {status}",
                case.name
            ));
        } else if case.verdict == Verdict::Invalid && (200..300).contains(&status) {
            problems.push(format!(
                "{}: invalid request accepted with {}",
                case.name, answer.start_line
            ));
        }
    }
    problems
}

/// The server still works: alive, answers OPTIONS and accepts a REGISTER.
fn assert_healthy(pbx: &mut RunningPbx, transport: Transport) {
    assert!(pbx.is_running(), "the server died\n{}", pbx.log());
    let server = match transport {
        Transport::Udp => pbx.udp(),
        Transport::Tcp => pbx.tcp(),
    };
    let mut client = SipClient::connect(transport, server);
    let (_, domain) = ACME;
    let options = client.options_request(domain);
    let answer = client
        .transact(&options, Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "OPTIONS over {transport:?} unanswered after the torture run\n{}",
                pbx.log()
            )
        });
    assert!(answer.status().is_some(), "{}", answer.text());
    let mut ua = UserAgent::new(client, "100", domain, &password_for("100"));
    let ok = ua.register(&RegisterParams::bind("<sip:after@127.0.0.1:9>", 600));
    assert_eq!(
        ok.status(),
        Some(200),
        "REGISTER after the torture run:\n{}",
        ok.text()
    );
}

fn deploy(name: &str) -> Deployment {
    let deployment = Deployment::with_config(name, CONFIG);
    deployment.acme_with([100]);
    deployment
}

/// Sends every corpus message on a socket of its own and judges the
/// answers; the server must live through all of them and answer normally
/// afterwards.
fn torture_one_socket_each(name: &str, transport: Transport) {
    let deployment = deploy(name);
    let mut pbx = deployment.start();
    let mut problems = Vec::new();
    for case in corpus() {
        // A fresh socket per message keeps late answers apart.
        let mut client = match transport {
            Transport::Udp => SipClient::udp(pbx.udp()),
            Transport::Tcp => SipClient::tcp(pbx.tcp()),
        };
        if client.send(&case.bytes).is_err() {
            // Over TCP the server may close on a framing error before
            // reading it all; a datagram always goes out.
            if transport == Transport::Udp {
                problems.push(format!(
                    "{}: could not send ({} bytes)",
                    case.name,
                    case.bytes.len()
                ));
            }
            continue;
        }
        problems.extend(judge(&case, &answers(&mut client)));
        assert!(
            pbx.is_running(),
            "the server died on {}\n{}",
            case.name,
            pbx.log()
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_healthy(&mut pbx, transport);
}

#[test]
fn torture_over_udp() {
    torture_one_socket_each("torture-udp", Transport::Udp);
}

#[test]
fn torture_over_tcp_one_connection_each() {
    torture_one_socket_each("torture-tcp-each", Transport::Tcp);
}

#[test]
fn torture_over_tcp_all_on_one_connection() {
    let deployment = deploy("torture-tcp-one");
    let mut pbx = deployment.start();
    let cases = corpus();
    let mut client = SipClient::tcp(pbx.tcp());
    let mut sent = 0;
    for case in &cases {
        if client.send(&case.bytes).is_err() {
            // Closed after a framing error (ncl, mcl01, ...): allowed.
            break;
        }
        sent += 1;
    }
    let received = answers(&mut client);
    assert!(
        pbx.is_running(),
        "the server died after {sent} messages on one connection\n{}",
        pbx.log()
    );

    // Answers cannot be attributed by order on one stream; attribute them
    // by Call-ID where a Call-ID belongs to invalid requests only.
    let mut call_ids: HashMap<String, Vec<&Case>> = HashMap::new();
    for case in &cases {
        if let Some(call_id) =
            SipMessage::parse(&case.bytes).and_then(|m| m.header("call-id").map(str::to_owned))
        {
            call_ids.entry(call_id).or_default().push(case);
        }
    }
    let mut problems = Vec::new();
    for answer in &received {
        let Some(status) = answer.status() else {
            continue;
        };
        let Some(owners) = answer.header("call-id").and_then(|c| call_ids.get(c)) else {
            continue;
        };
        if owners
            .iter()
            .all(|c| c.verdict == Verdict::Invalid && !c.is_response())
            && (200..300).contains(&status)
        {
            let names: Vec<&str> = owners.iter().map(|c| c.name.as_str()).collect();
            problems.push(format!(
                "{names:?}: invalid request accepted with {}",
                answer.start_line
            ));
        }
        if owners.iter().all(|c| c.is_response()) {
            let names: Vec<&str> = owners.iter().map(|c| c.name.as_str()).collect();
            problems.push(format!("{names:?}: a response was answered with {status}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_healthy(&mut pbx, Transport::Tcp);
    assert_healthy(&mut pbx, Transport::Udp);
}
