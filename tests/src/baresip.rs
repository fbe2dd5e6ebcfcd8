//! baresip as a real softphone: a throwaway config directory (`-f`) with one
//! SIP account and only the modules it needs: the account loader for
//! registration; for calls also G.711, a WAV file as microphone, a WAV file
//! as loudspeaker and the command menu (for `/dial`). No audio device.

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

/// How a softphone takes part in calls.
#[derive(Debug, Clone, Default)]
pub struct Calling {
    /// Plays this WAV file (8 kHz, mono, 16 bit) as its microphone.
    pub microphone: PathBuf,
    /// Answers incoming calls at once.
    pub auto_answer: bool,
    /// Dials this number when it starts.
    pub dial: Option<String>,
}

/// Writes `seconds` of a 440 Hz tone as an 8 kHz mono 16-bit WAV file.
pub fn write_tone(path: &Path, seconds: u32) {
    let samples = 8_000 * seconds;
    let mut wav = Vec::with_capacity(44 + 2 * samples as usize);
    let data_len = 2 * samples;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8_000u32.to_le_bytes());
    wav.extend_from_slice(&16_000u32.to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 8_000.0;
        // Within i16 by construction.
        let sample = (8_000.0 * phase.sin()) as i16;
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, wav).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// A running baresip; killed when dropped.
#[derive(Debug)]
pub struct Baresip {
    child: Child,
    log: PathBuf,
}

impl Baresip {
    /// Writes `dir/baresip/{config,accounts}` and starts baresip on them,
    /// for registration only.
    pub fn start(dir: &Path, account: &SoftphoneAccount) -> Baresip {
        Baresip::start_in(&dir.join("baresip"), account, None)
    }

    /// A softphone that makes or takes calls, its files in `dir/<name>`.
    pub fn start_calling(
        dir: &Path,
        name: &str,
        account: &SoftphoneAccount,
        calling: &Calling,
    ) -> Baresip {
        Baresip::start_in(&dir.join(name), account, Some(calling))
    }

    fn start_in(conf: &Path, account: &SoftphoneAccount, calling: Option<&Calling>) -> Baresip {
        let baresip = require_program("baresip");
        let conf = conf.to_owned();
        std::fs::create_dir_all(&conf)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", conf.display()));
        let module_path = ["/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules"]
            .into_iter()
            .find(|p| Path::new(p).join("account.so").is_file())
            .unwrap_or("/usr/lib/baresip/modules");
        // Loopback only, UDP, and the one module registration needs (the
        // account loader): no codec, no audio driver, no console UI.
        let mut config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:0\n\
             sip_trans_def\t\tudp\n\
             module_path\t\t{module_path}\n\
             module_app\t\taccount.so\n"
        );
        if let Some(calling) = calling {
            let speaker = conf.join("speaker.wav");
            config.push_str(&format!(
                "module\t\tg711.so\n\
                 module\t\taufile.so\n\
                 module_app\t\tmenu.so\n\
                 audio_source\t\taufile,{mic}\n\
                 audio_player\t\taufile,{speaker}\n\
                 audio_alert\t\taufile,{speaker}\n",
                mic = calling.microphone.display(),
                speaker = speaker.display(),
            ));
        }
        std::fs::write(conf.join("config"), config)
            .unwrap_or_else(|e| panic!("cannot write config: {e}"));
        let accounts = format!(
            "<sip:{user}@{domain}>;auth_pass={password};outbound=\"sip:{outbound}\";regint={regint};answermode={answermode}\n",
            user = account.user,
            domain = account.domain,
            password = account.password,
            outbound = account.outbound,
            regint = account.regint,
            answermode = if calling.is_some_and(|c| c.auto_answer) {
                "auto"
            } else {
                "manual"
            },
        );
        std::fs::write(conf.join("accounts"), accounts)
            .unwrap_or_else(|e| panic!("cannot write accounts: {e}"));
        let log = conf.join("baresip.log");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let mut command = Command::new(&baresip);
        command.arg("-f").arg(&conf);
        if let Some(number) = calling.and_then(|c| c.dial.as_ref()) {
            command.arg("-e").arg(format!("/dial {number}"));
        }
        let child = command
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

    /// The highest receive bitrate baresip reported for the call's audio
    /// (its status line shows `audio=<sent>/<received> (bit/s)`).
    pub fn audio_received_bits(&self) -> u64 {
        self.log()
            .split("audio=")
            .skip(1)
            .filter_map(|s| s.split_once(" (bit/s)"))
            .filter_map(|(rates, _)| rates.split_once('/'))
            .filter_map(|(_, rx)| rx.parse().ok())
            .max()
            .unwrap_or(0)
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
