//! Harness for the black-box end-to-end tests of edgepbx.
//!
//! The unit under test is the built `edgepbx` binary (path in the
//! `EDGEPBX_BIN` environment variable, which `scripts/test.sh` sets). Each
//! test deploys its own server: a fresh data directory filled through the
//! administration CLI, then `edgepbx serve` on loopback port 0, killed when
//! the test ends. The peers are real SIP software (SIPp, baresip, the
//! SIPVicious scanners) and a small raw SIP client for byte-level checks.
//!
//! Module map:
//! - [`workdir`]: per-test temporary directories, kept when a test fails.
//! - [`pbx`]: [`pbx::Deployment`] (data directory, config, admin CLI) and
//!   [`pbx::RunningPbx`] (a `serve` process and its ready line).
//! - [`sip`]: raw SIP over UDP/TCP: framing, a tolerant response reader,
//!   digest authentication (MD5 and SHA-256) and a registering
//!   [`sip::UserAgent`].
//! - [`sipp`]: runs a SIPp scenario from `tests/sipp/` and reports its exit
//!   code, call counts and the messages it exchanged.
//! - [`relay`]: [`relay::Md5ChallengeRelay`], a UDP relay that removes
//!   non-MD5 digest challenges for peers that cannot handle them (Debian's
//!   SIPp 3.6 and baresip 1.0; see the module docs).
//! - [`phones`]: SIPp devices (answering, ringing, busy) and callers for
//!   call tests.
//! - [`baresip`]: runs baresip as a softphone with a throwaway config.
//! - [`sipvicious`]: runs the SIPVicious scanners (`svmap`, `svwar`,
//!   `svcrack`) and reads what they report.
//! - [`policies`]: the example routing policies, built for WebAssembly.
//! - [`surreal`]: a real SurrealDB server, for a remote store.
//!
//! Everything here panics with a message on failure: these are test
//! helpers, a panic is how a test fails.

pub mod baresip;
pub mod browser;
pub mod certs;
pub mod http;
pub mod pbx;
pub mod pcap;
pub mod phones;
pub mod policies;
pub mod relay;
pub mod sip;
pub mod sipp;
pub mod sipvicious;
pub mod surreal;
pub mod voicemail;
pub mod workdir;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What to run when a peer program is missing.
pub const HOW_TO_RUN: &str = "run the tests with ./scripts/test.sh from the repository root (it builds the server, \
     installs sip-tester, baresip and sipvicious when missing and sets EDGEPBX_BIN)";

/// Finds a program on `PATH`, failing the test (never skipping it) when it
/// is missing.
pub fn require_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed (not on PATH); {HOW_TO_RUN}");
}

/// This crate's directory in the checkout the tests run from: cargo sets
/// `CARGO_MANIFEST_DIR` when it runs a test, and that is preferred to the
/// path compiled in, which is stale when a target directory is shared by
/// checkouts at different paths.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The torture corpus shared by every edgepbx test suite.
pub fn torture_dir() -> PathBuf {
    manifest_dir().join("../testdata/sip-torture")
}

/// The SIPp scenarios of this crate.
pub fn sipp_dir() -> PathBuf {
    manifest_dir().join("sipp")
}

/// Polls `check` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
