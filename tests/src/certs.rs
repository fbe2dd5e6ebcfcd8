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

/// A private CA (`ca.pem`) and a server certificate it signed
/// (`server.pem`, `server-key.pem`, P-256) for `names`, in `dir`, as a
/// strict TLS client (rustls) wants them: the CA is not the end entity.
/// Returns (CA certificate, server certificate, server key).
pub fn ca_signed(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = require_program("openssl");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&openssl)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &curve,
        &["-days", "2", "-subj", "/CN=edgepbx test CA"],
        &["-keyout", "ca-key.pem", "-out", "ca.pem"],
    ]
    .concat());
    run(&[
        &["req"][..],
        &curve,
        &["-subj", "/CN=edgepbx test server"],
        &["-keyout", "server-key.pem", "-out", "server.csr"],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "basicConstraints=CA:FALSE\nsubjectAltName={}\n",
            names.join(",")
        ),
    )
    .expect("the extensions file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server-key.pem"),
    )
}
