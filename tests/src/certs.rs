//! A throwaway self-signed certificate (openssl) for the TLS listeners,
//! HTTPS and SIP over TLS, valid for the names the tests reach them by.

use std::path::{Path, PathBuf};

use crate::require_program;

/// Writes `cert.pem` and `key.pem` (P-256) into `dir`, valid two days for
/// `names` (`IP:127.0.0.1`, `DNS:acme.test`: subjectAltName entries).
/// Returns (certificate, key).
pub fn self_signed(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
    let openssl = require_program("openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-subj", "/CN=edgepbx test"])
        .arg("-addext")
        .arg(format!("subjectAltName={}", names.join(",")))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}
