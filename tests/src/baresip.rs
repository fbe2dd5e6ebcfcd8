//! baresip as a real softphone: a throwaway config directory (`-f`) with one
//! SIP account and only the modules it needs: the account loader for
//! registration; for calls also G.711, a WAV file as microphone, a WAV file
//! as loudspeaker and the command menu (for `/dial`); for a buddy list the
//! contact and presence modules and the socket console (`cons.so`), through
//! which the test reads the list back. No audio device.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pbx::{Deployment, Extension, RunningPbx};
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
    /// Where its console (`cons.so`) listens, when it has one.
    console: Option<SocketAddr>,
}

impl Baresip {
    /// Writes `dir/baresip/{config,accounts}` and starts baresip on them,
    /// for registration only.
    pub fn start(dir: &Path, account: &SoftphoneAccount) -> Baresip {
        Baresip::start_in(&dir.join("baresip"), account, None, &[], None)
    }

    /// A softphone with a buddy list, its files in `dir/<name>`: it
    /// subscribes to the presence of each of `contacts` (lines of
    /// baresip's `contacts` file, e.g. `"Bob" <sip:101@acme.test>;presence=p2p`)
    /// and shows it in [`Baresip::presence`].
    pub fn start_watching(
        dir: &Path,
        name: &str,
        account: &SoftphoneAccount,
        contacts: &[&str],
    ) -> Baresip {
        Baresip::start_in(&dir.join(name), account, None, contacts, None)
    }

    /// A softphone that makes or takes calls, its files in `dir/<name>`.
    pub fn start_calling(
        dir: &Path,
        name: &str,
        account: &SoftphoneAccount,
        calling: &Calling,
    ) -> Baresip {
        Baresip::start_in(&dir.join(name), account, Some(calling), &[], None)
    }

    /// A softphone that makes or takes calls over SIP over TLS: its
    /// account's outbound proxy is `account.outbound` with
    /// `transport=tls`, and it trusts the certificate `ca` (PEM).
    pub fn start_calling_over_tls(
        dir: &Path,
        name: &str,
        account: &SoftphoneAccount,
        calling: &Calling,
        ca: &Path,
    ) -> Baresip {
        Baresip::start_in(&dir.join(name), account, Some(calling), &[], Some(ca))
    }

    fn start_in(
        conf: &Path,
        account: &SoftphoneAccount,
        calling: Option<&Calling>,
        contacts: &[&str],
        tls_ca: Option<&Path>,
    ) -> Baresip {
        let baresip = require_program("baresip");
        let conf = conf.to_owned();
        std::fs::create_dir_all(&conf)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", conf.display()));
        let module_path = ["/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules"]
            .into_iter()
            .find(|p| Path::new(p).join("account.so").is_file())
            .unwrap_or("/usr/lib/baresip/modules");
        // Loopback only, UDP, and the one module registration needs (the
        // account loader): no codec, no audio driver, no console UI unless
        // a buddy list is read through it.
        let mut config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:0\n\
             net_interface\t\t127.0.0.1\n\
             dns_server\t\t127.0.0.1:53\n\
             sip_trans_def\t\t{transport}\n\
             module_path\t\t{module_path}\n\
             module_app\t\taccount.so\n",
            transport = if tls_ca.is_some() { "tls" } else { "udp" },
        );
        if let Some(ca) = tls_ca {
            config.push_str(&format!("sip_cafile\t\t{}\n", ca.display()));
        }
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
        let console = (!contacts.is_empty()).then(console_address);
        if let Some(console) = console {
            // The contact module loads before presence, which reads it.
            config.push_str(&format!(
                "module_app\t\tcontact.so\n\
                 module_app\t\tpresence.so\n\
                 module\t\tcons.so\n\
                 cons_listen\t\t{console}\n"
            ));
            let mut list = contacts.join("\n");
            list.push('\n');
            std::fs::write(conf.join("contacts"), list)
                .unwrap_or_else(|e| panic!("cannot write contacts: {e}"));
        }
        std::fs::write(conf.join("config"), config)
            .unwrap_or_else(|e| panic!("cannot write config: {e}"));
        let accounts = format!(
            "<sip:{user}@{domain}>;auth_pass={password};outbound=\"sip:{outbound}{transport}\";regint={regint};answermode={answermode}\n",
            user = account.user,
            domain = account.domain,
            password = account.password,
            outbound = account.outbound,
            transport = if tls_ca.is_some() {
                ";transport=tls"
            } else {
                ""
            },
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
        Baresip {
            child,
            log,
            console,
        }
    }

    /// What baresip's `/contacts` command prints (colours removed), asked
    /// through its console; empty when the console does not answer.
    pub fn contacts(&self) -> String {
        let Some(console) = self.console else {
            panic!("this baresip has no console (start it with start_watching)")
        };
        let Ok(socket) = UdpSocket::bind("127.0.0.1:0") else {
            return String::new();
        };
        if socket.send_to(b"/contacts\n", console).is_err() {
            return String::new();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut reply = String::new();
        let mut buf = vec![0u8; 65_536];
        while !reply.contains("--- Contacts") {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match socket.recv_from(&mut buf) {
                Ok((n, from)) if from == console => {
                    reply.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        strip_colours(&reply)
    }

    /// The presence baresip shows for contact `uri` (`Unknown`, `Online`,
    /// `Offline` or `Busy`), read with [`Baresip::contacts`].
    pub fn presence(&self, uri: &str) -> Option<String> {
        let needle = format!("<{uri}>");
        self.contacts()
            .lines()
            .filter(|l| l.contains(&needle))
            .find_map(|l| l.trim_start_matches(['>', ' ']).split_whitespace().next())
            .map(str::to_owned)
    }

    /// Waits until baresip shows `state` for contact `uri`.
    pub fn wait_for_presence(&self, uri: &str, state: &str, timeout: Duration) -> bool {
        wait_for(timeout, || {
            (self.presence(uri).as_deref() == Some(state)).then_some(())
        })
        .is_some()
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

/// A loopback port free for UDP and TCP both (the console listens on
/// both) a moment ago.
fn console_address() -> SocketAddr {
    for _ in 0..20 {
        let Ok(tcp) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else { continue };
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no loopback port is free for baresip's console");
}

/// Removes ANSI colour sequences (`ESC [ ... m`).
fn strip_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
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

/// A registered baresip desk phone for `ext` sending a tone: it answers
/// by itself if `answers`, and dials `dial` at once.
pub fn desk_phone(
    deployment: &Deployment,
    pbx: &RunningPbx,
    ext: &Extension,
    answers: bool,
    dial: Option<&str>,
) -> Baresip {
    let dir = deployment.work().path();
    let tone = dir.join(format!("tone-{}.wav", ext.number));
    write_tone(&tone, 30);
    let phone = Baresip::start_calling(
        dir,
        &format!("desk-{}", ext.number),
        &SoftphoneAccount {
            user: ext.number.clone(),
            domain: ext.domain.clone(),
            password: ext.password.clone(),
            outbound: pbx.udp(),
            regint: 600,
        },
        &Calling {
            microphone: tone,
            auto_answer: answers,
            dial: dial.map(str::to_owned),
        },
    );
    assert!(
        phone
            .wait_for_line("200 OK", Duration::from_secs(30))
            .is_some(),
        "the desk phone never registered:\n{}",
        phone.log()
    );
    phone
}

/// Waits until `phone` has received G.711 through the relay.
pub fn desk_hears(phone: &Baresip) {
    let heard = wait_for(Duration::from_secs(15), || {
        (phone.audio_received_bits() >= 48_000).then_some(())
    });
    assert!(
        heard.is_some(),
        "the desk phone heard nothing:\n{}",
        phone.log()
    );
}
