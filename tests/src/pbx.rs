//! The server under test: a data directory prepared with the administration
//! CLI ([`Deployment`]) and `edgepbx serve` running on it ([`RunningPbx`]).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::HOW_TO_RUN;
use crate::sip::{SipClient, UserAgent};
use crate::workdir::Workdir;

/// How long `serve` may take to print its ready line. Generous: a debug
/// build opening its database on a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a graceful shutdown may take before the test fails.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Environment variables of the binary that would override what a test
/// asks for; they are removed from every child's environment.
const OVERRIDING_ENV: [&str; 6] = [
    "EDGEPBX_CONFIG",
    "EDGEPBX_DATA",
    "EDGEPBX_DB",
    "EDGEPBX_SIP_UDP",
    "EDGEPBX_SIP_TCP",
    "EDGEPBX_EXT_PASSWORD",
];

/// The binary under test, from `EDGEPBX_BIN`.
pub fn edgepbx_bin() -> PathBuf {
    let Some(path) = std::env::var_os("EDGEPBX_BIN") else {
        panic!("EDGEPBX_BIN is not set (path of the edgepbx binary to test); {HOW_TO_RUN}");
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "EDGEPBX_BIN={} does not exist; {HOW_TO_RUN}",
        path.display()
    );
    path
}

/// A tenant's extension as the tests use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Tenant code, e.g. `ACME`.
    pub tenant: String,
    /// The tenant's SIP domain (the digest realm).
    pub domain: String,
    /// Extension number, e.g. `100`.
    pub number: String,
    /// SIP password.
    pub password: String,
}

impl Extension {
    /// The `<number>-<CODE>` username that works on any address.
    pub fn qualified_user(&self) -> String {
        format!("{}-{}", self.number, self.tenant)
    }

    /// A user agent registering as this extension (on its domain, with its
    /// password) over `client`.
    pub fn agent(&self, client: SipClient) -> UserAgent {
        UserAgent::new(client, &self.number, &self.domain, &self.password)
    }
}

/// The tenant most tests use: code and SIP domain.
pub const ACME: (&str, &str) = ("ACME", "acme.test");

/// Config for tests whose contacts do not answer OPTIONS: reachability
/// pings off, so no binding disappears mid-test.
pub const NO_KEEPALIVE: &str = "[registrar]\nkeepalive_interval_secs = 0\n";

/// The password the tests give extension `number`.
pub fn password_for(number: &str) -> String {
    format!("pw-{number}-Secret")
}

/// One test's server installation: a work directory with the data
/// directory and an optional config file.
#[derive(Debug)]
pub struct Deployment {
    work: Workdir,
    config: Option<PathBuf>,
}

impl Deployment {
    /// An empty installation with the default configuration.
    pub fn new(name: &str) -> Deployment {
        Deployment {
            work: Workdir::new(name),
            config: None,
        }
    }

    /// An empty installation that runs with this TOML config (listen
    /// addresses and the data directory are given as flags on top).
    pub fn with_config(name: &str, toml: &str) -> Deployment {
        let work = Workdir::new(name);
        let config = work.write("edgepbx.toml", toml);
        Deployment {
            work,
            config: Some(config),
        }
    }

    /// The work directory (logs, traces, scratch files).
    pub fn work(&self) -> &Workdir {
        &self.work
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.work.join("data")
    }

    /// Runs an administration command (`tenant ...`, `ext ...`) on the data
    /// directory, through the running server when there is one.
    pub fn admin_output(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args).arg("--data").arg(self.data_dir());
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", edgepbx_bin().display()))
    }

    /// Starts a long-running administration command (`events`) with its
    /// stdout piped.
    pub fn admin_child(&self, args: &[&str]) -> Child {
        let mut cmd = self.command();
        cmd.args(args).arg("--data").arg(self.data_dir());
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", edgepbx_bin().display()))
    }

    /// Runs an administration command that must succeed; returns its stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = self.admin_output(args);
        assert!(
            out.status.success(),
            "`edgepbx {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds a tenant.
    pub fn add_tenant(&self, code: &str, domain: &str) {
        self.admin(&["tenant", "add", code, "--domain", domain]);
    }

    /// Adds an extension with a known password.
    pub fn add_extension(
        &self,
        tenant: &str,
        domain: &str,
        number: &str,
        password: &str,
    ) -> Extension {
        let name = format!("Test {number}");
        self.admin(&[
            "ext",
            "add",
            tenant,
            number,
            "--name",
            &name,
            "--password",
            password,
        ]);
        Extension {
            tenant: tenant.to_owned(),
            domain: domain.to_owned(),
            number: number.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Adds tenant ACME with extensions `numbers` (passwords from
    /// [`password_for`]).
    pub fn acme_with(&self, numbers: impl IntoIterator<Item = u32>) -> Vec<Extension> {
        let (code, domain) = ACME;
        self.add_tenant(code, domain);
        numbers
            .into_iter()
            .map(|n| {
                let number = n.to_string();
                self.add_extension(code, domain, &number, &password_for(&number))
            })
            .collect()
    }

    /// The latest call record of `tenant` (`edgepbx calls <tenant> --recent
    /// 1 --json`), waiting up to ten seconds for it to be written.
    pub fn last_call_record(&self, tenant: &str) -> serde_json::Value {
        crate::wait_for(std::time::Duration::from_secs(10), || {
            let out = self.admin(&["calls", tenant, "--recent", "1", "--json"]);
            let records: serde_json::Value = serde_json::from_str(&out).ok()?;
            records.get(0).cloned()
        })
        .unwrap_or_else(|| panic!("no call record for {tenant}"))
    }

    /// Adds a console user with the CLI; `tenant` is `None` for a system
    /// admin.
    pub fn add_console_user(&self, email: &str, tenant: Option<&str>, password: &str) {
        let mut args = vec!["user", "add", email, "--password", password, "--role"];
        match tenant {
            Some(t) => args.extend(["tenant-admin", "--tenant", t]),
            None => args.push("system-admin"),
        }
        self.admin(&args);
    }

    /// Creates an API key of `tenant` with the CLI; returns the key.
    pub fn api_key(&self, tenant: &str, read_only: bool) -> String {
        let mut args = vec!["apikey", "add", tenant, "--name", "tests"];
        if read_only {
            args.push("--read-only");
        }
        let out = self.admin(&args);
        out.lines()
            .find(|l| l.starts_with("epk_"))
            .unwrap_or_else(|| panic!("`apikey add` printed no key:\n{out}"))
            .to_owned()
    }

    /// `edgepbx ext list <tenant> --json`, parsed.
    pub fn extension_list(&self, tenant: &str) -> serde_json::Value {
        let out = self.admin(&["ext", "list", tenant, "--json"]);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`ext list {tenant} --json` printed no JSON ({e}):\n{out}"))
    }

    /// Starts `edgepbx serve` on loopback port 0 (UDP and TCP) and waits for
    /// its ready line.
    pub fn start(&self) -> RunningPbx {
        RunningPbx::start(self)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(edgepbx_bin());
        for var in OVERRIDING_ENV {
            cmd.env_remove(var);
        }
        if std::env::var_os("EDGEPBX_LOG").is_none() {
            cmd.env("EDGEPBX_LOG", "info");
        }
        cmd.env("NO_COLOR", "1");
        cmd
    }
}

/// A running `edgepbx serve`. Killed when dropped; [`RunningPbx::stop`]
/// shuts it down gracefully instead.
#[derive(Debug)]
pub struct RunningPbx {
    child: Child,
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<SocketAddr>,
    http: SocketAddr,
    log: PathBuf,
}

impl RunningPbx {
    fn start(deployment: &Deployment) -> RunningPbx {
        let log = next_log_path(deployment.work.path());
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut cmd = deployment.command();
        cmd.arg("serve")
            .arg("--data")
            .arg(deployment.data_dir())
            .args(["--sip-udp", "127.0.0.1:0", "--sip-tcp", "127.0.0.1:0"])
            .args(["--http", "127.0.0.1:0"]);
        if let Some(config) = &deployment.config {
            cmd.arg("--config").arg(config);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", edgepbx_bin().display()));
        let Some(stdout) = child.stdout.take() else {
            unreachable!("stdout was configured as a pipe")
        };
        let lines = spawn_line_reader(stdout);
        let Ready {
            udp,
            tcp,
            tls,
            http,
        } = match wait_ready(&mut child, &lines) {
            Ok(addrs) => addrs,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "edgepbx serve did not become ready: {why}\nserver log ({}):\n{}",
                    log.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        RunningPbx {
            child,
            udp,
            tcp,
            tls,
            http,
            log,
        }
    }

    /// The SIP UDP address from the ready line.
    pub fn udp(&self) -> SocketAddr {
        self.udp
    }

    /// The SIP TCP address from the ready line.
    pub fn tcp(&self) -> SocketAddr {
        self.tcp
    }

    /// The SIP TLS address from the ready line (configured with
    /// `[sip] tls`).
    pub fn tls(&self) -> SocketAddr {
        self.tls
            .expect("SIP over TLS is configured for this deployment")
    }

    /// The HTTP (API and console) address from the ready line.
    pub fn http(&self) -> SocketAddr {
        self.http
    }

    /// An HTTP client of the API without credentials.
    pub fn api(&self) -> crate::http::Client {
        crate::http::Client::new(self.http)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status.
    pub fn stop(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run kill: {e}"));
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => panic!(
                    "edgepbx did not exit within {STOP_TIMEOUT:?} of SIGTERM\nserver log:\n{}",
                    self.log()
                ),
                Err(e) => panic!("cannot wait for edgepbx: {e}"),
            }
        }
    }
}

impl Drop for RunningPbx {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- edgepbx log ({}) ----\n{}",
                self.log.display(),
                tail(&self.log(), 200)
            );
        }
    }
}

/// `server.log`, `server-2.log`, ... so a restarted server keeps the first
/// one's log.
fn next_log_path(dir: &Path) -> PathBuf {
    (1..)
        .map(|n| {
            if n == 1 {
                dir.join("server.log")
            } else {
                dir.join(format!("server-{n}.log"))
            }
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| dir.join("server.log"))
}

/// Reads lines on a thread so waiting for one can time out.
fn spawn_line_reader(stdout: std::process::ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining so the server never
                // blocks on a full pipe.
                continue;
            }
        }
    });
    rx
}

/// The listeners' addresses from the ready line.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// SIP over UDP.
    pub udp: SocketAddr,
    /// SIP over TCP.
    pub tcp: SocketAddr,
    /// SIP over TLS, when configured.
    pub tls: Option<SocketAddr>,
    /// HTTP (or HTTPS).
    pub http: SocketAddr,
}

/// Waits for `edgepbx ready sip-udp=ADDR sip-tcp=ADDR [sip-tls=ADDR]
/// http=ADDR`.
fn wait_ready(child: &mut Child, lines: &Receiver<String>) -> Result<Ready, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no ready line within {READY_TIMEOUT:?}; stdout: {seen:?}"
            ));
        }
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                if let Some(addrs) = parse_ready_line(&line) {
                    return Ok(addrs);
                }
                seen.push(line);
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("it exited with {status}; stdout: {seen:?}"));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                return Err(format!("stdout closed ({status}); stdout: {seen:?}"));
            }
        }
    }
}

/// Parses the ready line; `None` for any other line.
pub fn parse_ready_line(line: &str) -> Option<Ready> {
    let rest = line.trim().strip_prefix("edgepbx ready ")?;
    let (mut udp, mut tcp, mut tls, mut http) = (None, None, None, None);
    for field in rest.split_whitespace() {
        let (name, addr) = field.split_once('=')?;
        let addr = addr.parse().ok();
        match name {
            "sip-udp" => udp = addr,
            "sip-tcp" => tcp = addr,
            "sip-tls" => tls = addr,
            "http" | "https" => http = addr,
            _ => {}
        }
    }
    Some(Ready {
        udp: udp?,
        tcp: tcp?,
        tls,
        http: http?,
    })
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_parsed() {
        let ready = parse_ready_line(
            "edgepbx ready sip-udp=127.0.0.1:5060 sip-tcp=127.0.0.1:5061 http=127.0.0.1:8080",
        )
        .expect("a well-formed ready line parses");
        assert_eq!(ready.udp.port(), 5060);
        assert_eq!(ready.tcp.port(), 5061);
        assert_eq!(ready.http.port(), 8080);
        assert_eq!(ready.tls, None);
        let ready = parse_ready_line(
            "edgepbx ready sip-udp=127.0.0.1:5060 sip-tcp=127.0.0.1:5060 sip-tls=127.0.0.1:5061 https=127.0.0.1:8443",
        )
        .expect("a ready line with TLS parses");
        assert_eq!(ready.tls.map(|a| a.port()), Some(5061));
        assert!(parse_ready_line("listening").is_none());
    }
}
