//! SIPp phones for call tests: devices that register for an extension and
//! answer, ring or refuse the INVITEs edgepbx sends them, and callers.
//!
//! A device is one SIPp process: `device_register.xml` registers it and
//! keeps it on line (for `sipp -d` milliseconds), and each INVITE edgepbx
//! sends it (a Call-ID SIPp has not seen) runs the out-of-call scenario
//! given with `-oocsf`. Debian's SIPp 3.6 reads only the first digest
//! challenge, so servers these phones use offer MD5 first ([`CALL_CONFIG`]).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::pbx::{Extension, RunningPbx};
use crate::sip::{RegisterParams, SipClient, SipMessage};
use crate::sipp::{Sipp, SippOutcome};
use crate::{sipp_dir, wait_for};

/// Server config for call tests: MD5 first for SIPp; no keepalive OPTIONS
/// (SIPp devices would not answer them outside their scenario).
pub const CALL_CONFIG: &str = "[security]\ndigest_algorithms = [\"MD5\", \"SHA-256\"]\n\
                               [registrar]\nkeepalive_interval_secs = 0\n";

/// What a device does with an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Rings for a second, answers, waits for the BYE.
    Answer,
    /// Rings until cancelled.
    Ring,
    /// Refuses with 486 Busy Here.
    Busy,
    /// Answers like [`Behaviour::Answer`], then accepts a re-INVITE that
    /// puts it on hold.
    Hold,
    /// Answers like [`Behaviour::Answer`], then takes an INFO.
    Info,
    /// Answers, talks for a second and hangs up itself.
    Hangup,
    /// Answers like [`Behaviour::Answer`], then accepts a codec change by
    /// UPDATE.
    Update,
    /// Sends early media (183 with a description) instead of 180, then
    /// answers.
    EarlyMedia,
}

impl Behaviour {
    fn scenario(self) -> &'static str {
        match self {
            Behaviour::Answer => "device_answer",
            Behaviour::Ring => "device_ring",
            Behaviour::Busy => "device_busy",
            Behaviour::Hold => "device_hold",
            Behaviour::Info => "device_info",
            Behaviour::Hangup => "device_hangup",
            Behaviour::Update => "device_update",
            Behaviour::EarlyMedia => "device_early_media",
        }
    }
}

/// A device on line in the background.
#[derive(Debug)]
pub struct Device {
    name: String,
    /// SIPp's message trace, written as messages come and go.
    trace: PathBuf,
    thread: JoinHandle<SippOutcome>,
}

impl Device {
    /// Registers a device of `ext` called `name` that stays on line for
    /// `hold` and treats INVITEs as `behaviour` says. Returns at once; see
    /// [`wait_for_bindings`].
    pub fn start(
        dir: &Path,
        pbx: &RunningPbx,
        ext: &Extension,
        name: &str,
        behaviour: Behaviour,
        hold: Duration,
    ) -> Device {
        let sipp = Sipp::new("device_register", pbx.udp())
            .account(&ext.domain, &ext.number, &ext.password)
            .key("device", name)
            .arg("-d")
            .arg(&hold.as_millis().to_string())
            .arg("-oocsf")
            .arg(
                &sipp_dir()
                    .join(format!("{}.xml", behaviour.scenario()))
                    .to_string_lossy(),
            )
            .timeout(hold + Duration::from_secs(20));
        let (dir, label) = (dir.to_owned(), name.to_owned());
        Device {
            name: name.to_owned(),
            trace: dir.join(name).join("messages.log"),
            thread: std::thread::spawn(move || sipp.run(&dir, &label)),
        }
    }

    /// Waits until the device's message trace (flushed by SIPp after every
    /// message) contains `needle` `times` times, e.g. `SIP/2.0 180 Ringing`
    /// once it rang that often.
    pub fn wait_for_trace(&self, needle: &str, times: usize, timeout: Duration) -> bool {
        wait_for(timeout, || {
            std::fs::read_to_string(&self.trace)
                .ok()
                .filter(|t| t.matches(needle).count() >= times)
                .map(|_| ())
        })
        .is_some()
    }

    /// Waits for the device to go off line and returns what it saw.
    pub fn finish(self) -> SippOutcome {
        self.thread
            .join()
            .unwrap_or_else(|_| panic!("the thread of SIPp device {} panicked", self.name))
    }
}

/// Waits until `ext` has `count` bindings.
pub fn wait_for_bindings(pbx: &RunningPbx, ext: &Extension, count: usize) {
    let listed = wait_for(Duration::from_secs(20), || {
        let mut ua = ext.agent(SipClient::udp(pbx.udp()));
        let response = ua.register(&RegisterParams::query());
        (response.contacts().len() == count).then_some(())
    });
    assert!(
        listed.is_some(),
        "{} never had {count} bindings",
        ext.number
    );
}

/// A SIPp caller as `caller` dialling `number` with `scenario` (`call`,
/// `call_cancel`, `call_refused`, `call_looped`, `call_hold`, `call_info`,
/// `call_update` or `call_until_bye`).
pub fn caller(scenario: &str, pbx: &RunningPbx, caller: &Extension, number: &str) -> Sipp {
    Sipp::new(scenario, pbx.udp())
        .key("domain", &caller.domain)
        .key("user", &caller.number)
        .key("password", &caller.password)
        // `[service]` is SIPp's own keyword, set with -s.
        .arg("-s")
        .arg(number)
        // The digest covers the Request-URI (SIPp prefixes `sip:`).
        .auth_uri(&format!("{number}@{}", caller.domain))
}

/// The requests a SIPp run received with this method.
pub fn received_requests<'a>(outcome: &'a SippOutcome, method: &str) -> Vec<&'a SipMessage> {
    outcome
        .received()
        .filter(|m| m.method() == Some(method))
        .collect()
}

/// The final status the caller got for its authenticated INVITE.
pub fn final_status(outcome: &SippOutcome) -> Option<u16> {
    outcome
        .responses()
        .filter(|m| {
            m.header("CSeq")
                .is_some_and(|c| c.trim().starts_with("2 INVITE"))
        })
        .filter_map(SipMessage::status)
        .find(|s| *s >= 200)
}

/// The port of the audio stream of a message's description.
pub fn audio_port(message: &SipMessage) -> u16 {
    let body = String::from_utf8_lossy(&message.body);
    body.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no audio stream in\n{}", message.text()))
}

/// A SIPp subscriber as `ext`, watching `target` with `scenario`.
pub fn subscriber(scenario: &str, pbx: &RunningPbx, ext: &Extension, target: &str) -> Sipp {
    Sipp::new(scenario, pbx.udp())
        .key("domain", &ext.domain)
        .key("user", &ext.number)
        .key("password", &ext.password)
        .key("target", target)
        // The digest covers the Request-URI (SIPp prefixes `sip:`).
        .auth_uri(&format!("{target}@{}", ext.domain))
        .timeout(Duration::from_secs(45))
}

/// Waits until the server has logged `count` new subscriptions in all.
pub fn wait_for_subscriptions(pbx: &RunningPbx, count: usize) {
    let logged = wait_for(Duration::from_secs(20), || {
        let n = pbx
            .log()
            .lines()
            .filter(|l| l.contains(" subscribed") && l.contains("target="))
            .count();
        (n >= count).then_some(())
    });
    assert!(
        logged.is_some(),
        "the server never logged {count} subscriptions"
    );
}
