//! Runs SIPp scenarios from `tests/sipp/` and reports what happened.
//!
//! Every run gets its own directory for SIPp's files (message trace, error
//! trace, statistics), a fresh local port, `-nostdin` and a global timeout,
//! and the harness kills SIPp if it outlives that. [`SippOutcome`] carries
//! the exit code, the call counts from the statistics file and every
//! message SIPp sent and received, so tests can assert on the server's
//! responses byte by byte.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sip::SipMessage;
use crate::{require_program, sipp_dir};

/// A SIPp invocation being assembled.
#[derive(Debug, Clone)]
pub struct Sipp {
    scenario: String,
    target: SocketAddr,
    tcp: bool,
    args: Vec<String>,
    calls: u32,
    timeout: Duration,
    port: Option<u16>,
    ip: &'static str,
}

impl Sipp {
    /// `sipp <target> -sf tests/sipp/<scenario>.xml -m 1`.
    pub fn new(scenario: &str, target: SocketAddr) -> Sipp {
        Sipp {
            scenario: scenario.to_owned(),
            target,
            tcp: false,
            args: Vec::new(),
            calls: 1,
            timeout: Duration::from_secs(60),
            port: None,
            ip: "127.0.0.1",
        }
    }

    /// Sends from this loopback address instead of 127.0.0.1 (a carrier is
    /// known to edgepbx by its address).
    pub fn local_ip(mut self, ip: &'static str) -> Sipp {
        self.ip = ip;
        self
    }

    /// Listens on this local port (for a SIPp server other parties must
    /// know in advance) instead of a fresh one.
    pub fn local_port(mut self, port: u16) -> Sipp {
        self.port = Some(port);
        self
    }

    /// Sets a `[name]` keyword of the scenario (`-key name value`).
    pub fn key(mut self, name: &str, value: &str) -> Sipp {
        self.args.extend(["-key".into(), name.into(), value.into()]);
        self
    }

    /// Sets the `domain`, `user`, `password` keywords and the digest URI for
    /// an extension.
    pub fn account(self, domain: &str, user: &str, password: &str) -> Sipp {
        self.key("domain", domain)
            .key("user", user)
            .key("password", password)
            .auth_uri(domain)
    }

    /// The digest `uri` SIPp answers with (`-auth_uri`); SIPp's default is
    /// the remote address, not the Request-URI.
    pub fn auth_uri(self, domain: &str) -> Sipp {
        self.arg("-auth_uri").arg(domain)
    }

    /// Injection file (`-inf`), read in the file's order.
    pub fn injection_file(self, path: &Path) -> Sipp {
        self.arg("-inf").arg(&path.to_string_lossy())
    }

    /// Number of calls (`-m`).
    pub fn calls(mut self, calls: u32) -> Sipp {
        self.calls = calls;
        self
    }

    /// Call rate per second (`-r`).
    pub fn rate(self, per_second: u32) -> Sipp {
        self.arg("-r").arg(&per_second.to_string())
    }

    /// SIP over TCP, one connection (`-t t1`).
    pub fn tcp(mut self) -> Sipp {
        self.tcp = true;
        self
    }

    /// Default wait for an expected message before the call fails
    /// (`-recv_timeout`).
    pub fn recv_timeout(self, timeout: Duration) -> Sipp {
        self.arg("-recv_timeout")
            .arg(&timeout.as_millis().to_string())
    }

    /// Upper bound for the whole run; SIPp is told and the harness enforces it.
    pub fn timeout(mut self, timeout: Duration) -> Sipp {
        self.timeout = timeout;
        self
    }

    /// Any other SIPp argument.
    pub fn arg(mut self, arg: &str) -> Sipp {
        self.args.push(arg.to_owned());
        self
    }

    /// Runs SIPp with its files under `dir/<label>/` and waits for it.
    pub fn run(self, dir: &Path, label: &str) -> SippOutcome {
        let sipp = require_program("sipp");
        let run_dir = dir.join(label);
        std::fs::create_dir_all(&run_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", run_dir.display()));
        let scenario = sipp_dir().join(format!("{}.xml", self.scenario));
        assert!(scenario.is_file(), "no scenario {}", scenario.display());
        let (messages, errors, stats, screen) = (
            run_dir.join("messages.log"),
            run_dir.join("errors.log"),
            run_dir.join("stats.csv"),
            run_dir.join("screen.log"),
        );
        let screen_file = std::fs::File::create(&screen)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", screen.display()));
        let screen_err = screen_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let mut cmd = Command::new(&sipp);
        cmd.current_dir(&run_dir)
            .arg(self.target.to_string())
            .arg("-sf")
            .arg(&scenario)
            .args(["-i", self.ip, "-p"])
            .arg(self.port.unwrap_or_else(|| free_port(self.tcp)).to_string())
            .args(["-t", if self.tcp { "t1" } else { "u1" }])
            .args(["-m", &self.calls.to_string()])
            .args(["-nostdin", "-trace_msg", "-message_file"])
            .arg(&messages)
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stats)
            .args([
                "-timeout",
                &format!("{}s", self.timeout.as_secs().max(1)),
                "-timeout_error",
            ])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(screen_file)
            .stderr(screen_err);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", sipp.display()));
        // SIPp enforces -timeout itself; this is the backstop.
        let deadline = Instant::now() + self.timeout + Duration::from_secs(30);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Err(e) => panic!("cannot wait for sipp: {e}"),
            }
        };
        let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        let stats_text = read(&stats);
        SippOutcome {
            exit_code: status.and_then(|s| s.code()),
            successful: stat_counter(&stats_text, "SuccessfulCall(C)"),
            failed: stat_counter(&stats_text, "FailedCall(C)"),
            messages: parse_trace(&read(&messages)),
            errors: read(&errors),
            screen: read(&screen),
            dir: run_dir,
        }
    }
}

/// A port that was free a moment ago. SIPp's own default is 5060, which
/// another server on the machine may hold.
pub fn free_port(tcp: bool) -> u16 {
    let port = if tcp {
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
    } else {
        UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    };
    port.unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
        .port()
}

/// One message from SIPp's `-trace_msg` file.
#[derive(Debug, Clone)]
pub struct TracedMessage {
    /// Received by SIPp (from the server) rather than sent.
    pub received: bool,
    /// The message.
    pub message: SipMessage,
}

/// What a SIPp run did.
#[derive(Debug)]
pub struct SippOutcome {
    /// SIPp's exit code: 0 all calls succeeded, 1 some failed, 97 aborted,
    /// 99 no call processed, 255 fatal; `None` when the harness killed it.
    pub exit_code: Option<i32>,
    /// Calls that reached the end of the scenario.
    pub successful: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Every message sent and received, in order.
    pub messages: Vec<TracedMessage>,
    /// SIPp's error trace.
    pub errors: String,
    /// SIPp's screen output.
    pub screen: String,
    /// Where SIPp's files are.
    pub dir: PathBuf,
}

impl SippOutcome {
    /// The messages SIPp received.
    pub fn received(&self) -> impl Iterator<Item = &SipMessage> {
        self.messages
            .iter()
            .filter(|m| m.received)
            .map(|m| &m.message)
    }

    /// The responses SIPp received.
    pub fn responses(&self) -> impl Iterator<Item = &SipMessage> {
        self.received().filter(|m| m.status().is_some())
    }

    /// The last response with this status code.
    pub fn last_response(&self, status: u16) -> Option<&SipMessage> {
        self.responses()
            .filter(|m| m.status() == Some(status))
            .last()
    }

    /// Everything useful for a failure message.
    pub fn report(&self) -> String {
        format!(
            "sipp exit code {:?}, {} successful, {} failed calls (files in {})\n--- errors ---\n{}\n--- screen (tail) ---\n{}",
            self.exit_code,
            self.successful,
            self.failed,
            self.dir.display(),
            crate::pbx::tail(&self.errors, 40),
            crate::pbx::tail(&self.screen, 40)
        )
    }

    /// Panics unless every one of `calls` calls succeeded.
    pub fn assert_all_succeeded(&self, calls: u64) {
        assert!(
            self.exit_code == Some(0) && self.successful == calls && self.failed == 0,
            "expected {calls} successful calls\n{}",
            self.report()
        );
    }
}

/// The last value of a cumulative counter column of SIPp's `-trace_stat`
/// file (`;`-separated, a header line, one line per dump).
fn stat_counter(stats: &str, column: &str) -> u64 {
    let mut lines = stats.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else { return 0 };
    let Some(index) = header.split(';').position(|c| c == column) else {
        return 0;
    };
    lines
        .next_back()
        .and_then(|l| l.split(';').nth(index))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Splits SIPp's message trace. Each entry starts with a line of dashes
/// and a timestamp, then "UDP message sent (N bytes):" or "UDP message
/// received [N] bytes :", an empty line and the message.
fn parse_trace(trace: &str) -> Vec<TracedMessage> {
    let mut out = Vec::new();
    for block in trace.split("\n----------------------------------------------- ") {
        let mut lines = block.splitn(3, '\n');
        let (_timestamp, kind, rest) = (lines.next(), lines.next(), lines.next());
        let (Some(kind), Some(rest)) = (kind, rest) else {
            continue;
        };
        let received = kind.contains("message received");
        if !received && !kind.contains("message sent") {
            continue;
        }
        // SIPp writes messages with CRLF as received; lines may also have
        // been normalised to LF. Rebuild CRLF so the parser sees a message.
        let body = rest.trim_start_matches(['\r', '\n']);
        let normalised = body.replace("\r\n", "\n").replace('\n', "\r\n");
        // The trace ends each message with blank lines: keep a body, drop
        // the padding.
        let text = match normalised.find("\r\n\r\n") {
            Some(end) if !normalised[end + 4..].trim().is_empty() => {
                format!("{}\r\n", normalised.trim_end())
            }
            Some(end) => normalised[..end + 4].to_owned(),
            None => format!("{}\r\n\r\n", normalised.trim_end()),
        };
        if let Some(message) = SipMessage::parse(text.as_bytes()) {
            out.push(TracedMessage { received, message });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_from_the_last_line() {
        let stats = "StartTime;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C)\n\
                     x;0;0;0\n\
                     y;2;5;1\n";
        assert_eq!(stat_counter(stats, "SuccessfulCall(C)"), 5);
        assert_eq!(stat_counter(stats, "FailedCall(C)"), 1);
        assert_eq!(stat_counter(stats, "Missing"), 0);
    }

    #[test]
    fn trace_is_split_into_messages() {
        let trace = "\n----------------------------------------------- 2026-01-01 00:00:00.000000\n\
            UDP message sent (10 bytes):\n\nREGISTER sip:a SIP/2.0\nCall-ID: 1\nContent-Length: 0\n\n\n\
            ----------------------------------------------- 2026-01-01 00:00:00.100000\n\
            UDP message received [20] bytes :\n\nSIP/2.0 200 OK\nContact: <sip:a@b>;expires=60\nContent-Length: 0\n\n\n";
        let messages = parse_trace(trace);
        assert_eq!(messages.len(), 2);
        assert!(!messages[0].received);
        assert!(messages[1].received);
        assert_eq!(messages[1].message.status(), Some(200));
        assert_eq!(messages[1].message.contacts().len(), 1);
    }
}
