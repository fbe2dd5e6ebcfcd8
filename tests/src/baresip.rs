//! baresip as a real softphone: a throwaway config directory (`-f`) with one
//! SIP account, only the modules registration needs, no audio device.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{require_program, wait_for};

/// What baresip needs to register one account.
#[derive(Debug, Clone)]
pub struct SoftphoneAccount {
    /// AOR user part.
    pub user: String,
    /// AOR domain (the tenant's SIP domain).
    pub domain: String,
    /// SIP password.
    pub password: String,
    /// Where to send requests (outbound proxy): the server or a relay.
    pub outbound: SocketAddr,
    /// Registration interval baresip asks for, seconds.
    pub regint: u32,
}

/// A running baresip; killed when dropped.
#[derive(Debug)]
pub struct Baresip {
    child: Child,
    log: PathBuf,
}

impl Baresip {
    /// Writes `dir/baresip/{config,accounts}` and starts baresip on them.
    pub fn start(dir: &Path, account: &SoftphoneAccount) -> Baresip {
        let baresip = require_program("baresip");
        let conf = dir.join("baresip");
        std::fs::create_dir_all(&conf)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", conf.display()));
        let module_path = ["/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules"]
            .into_iter()
            .find(|p| Path::new(p).join("account.so").is_file())
            .unwrap_or("/usr/lib/baresip/modules");
        // Loopback only, UDP, and the one module registration needs (the
        // account loader): no codec, no audio driver, no console UI.
        let config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:0\n\
             sip_trans_def\t\tudp\n\
             module_path\t\t{module_path}\n\
             module_app\t\taccount.so\n"
        );
        std::fs::write(conf.join("config"), config)
            .unwrap_or_else(|e| panic!("cannot write config: {e}"));
        let accounts = format!(
            "<sip:{user}@{domain}>;auth_pass={password};outbound=\"sip:{outbound}\";regint={regint};answermode=manual\n",
            user = account.user,
            domain = account.domain,
            password = account.password,
            outbound = account.outbound,
            regint = account.regint,
        );
        std::fs::write(conf.join("accounts"), accounts)
            .unwrap_or_else(|e| panic!("cannot write accounts: {e}"));
        let log = dir.join("baresip.log");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let child = Command::new(&baresip)
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", baresip.display()));
        Baresip { child, log }
    }

    /// Everything baresip printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until a log line contains `needle`; returns that line.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        wait_for(timeout, || {
            self.log()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned)
        })
    }

    /// Asks baresip to stop (SIGTERM: it unregisters first) and waits up to
    /// `timeout`; kills it after that. Returns whether it exited by itself.
    pub fn stop(&mut self, timeout: Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = wait_for(timeout, || self.child.try_wait().ok().flatten()).is_some();
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        exited
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- baresip log ({}) ----\n{}",
                self.log.display(),
                self.log()
            );
        }
    }
}
