//! A real SurrealDB server on loopback (`edgepbx-surreal-server`, which is
//! SurrealDB's own `surreal start`), for the tests of a remote store.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pbx::edgepbx_bin;
use crate::sipp::free_port;
use crate::wait_for;

/// The server binary: `EDGEPBX_SURREAL_BIN`, else `edgepbx-surreal-server`
/// beside the binary under test (the workspace builds both).
pub fn surreal_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("EDGEPBX_SURREAL_BIN") {
        return PathBuf::from(path);
    }
    let bin = edgepbx_bin().with_file_name("edgepbx-surreal-server");
    assert!(
        bin.is_file(),
        "{} is missing: build the workspace (`cargo build --workspace`), or set EDGEPBX_SURREAL_BIN",
        bin.display()
    );
    bin
}

/// A running SurrealDB server with a root user, storing in a directory.
/// Killed when dropped.
#[derive(Debug)]
pub struct SurrealServer {
    child: Child,
    addr: SocketAddr,
    tls: bool,
}

impl SurrealServer {
    /// Starts a server storing under `dir` (SurrealKV) with root user
    /// `user`/`password`, over TLS with `cert` and `key` when given; its
    /// log goes to `log`.
    pub fn start(
        dir: &Path,
        user: &str,
        password: &str,
        tls: Option<(&Path, &Path)>,
        log: &Path,
    ) -> SurrealServer {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port(true)));
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let mut cmd = Command::new(surreal_bin());
        cmd.arg("start")
            .args(["--bind", &addr.to_string()])
            .args(["--user", user, "--pass", password])
            .args(["--log", "info", "--no-banner"]);
        if let Some((cert, key)) = tls {
            cmd.arg("--web-crt").arg(cert).arg("--web-key").arg(key);
        }
        let child = cmd
            .arg(format!("surrealkv://{}", dir.display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("a log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", surreal_bin().display()));
        let server = SurrealServer {
            child,
            addr,
            tls: tls.is_some(),
        };
        let up = wait_for(Duration::from_secs(30), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        assert!(
            up.is_some(),
            "SurrealDB did not listen on {addr}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        server
    }

    /// The address edgepbx's `db` names: `ws://` or `wss://`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for SurrealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
