//! Voicemail from a caller's side: speech synthesised and sent as RTP
//! from a pcap, keys sent as RFC 4733 events, the mailbox's files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::pbx::{Deployment, Extension, RunningPbx};
use crate::pcap;
use crate::phones::{CALL_CONFIG, caller};
use crate::sipp::SippOutcome;
use crate::wait_for;

/// The default greeting of 101 with its beep lasts about 12 s.
pub const GREETING_MS: u64 = 14_000;

/// After the speech, the caller stays this long before hanging up.
const AFTER_MS: u64 = 2_500;

/// The PIN of 101's mailbox.
pub const PIN: &str = "2468";

/// Runs `program` with `args`, which must succeed; its stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Seconds of sound in a WAV file, its silence at both ends trimmed.
pub fn sound_secs(dir: &Path, wav: &Path, label: &str) -> f64 {
    let trimmed = dir.join(format!("{label}-trimmed.wav"));
    let (wav, trimmed_s) = (wav.to_string_lossy(), trimmed.to_string_lossy());
    run(
        "sox",
        &[
            &wav, &trimmed_s, "silence", "1", "0.05", "2%", "reverse", "silence", "1", "0.05",
            "2%", "reverse",
        ],
    );
    run("soxi", &["-D", &trimmed_s])
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("soxi of {trimmed_s}: {e}"))
}

/// A speech synthesiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// espeak-ng's en-us voice.
    Espeak,
    /// flite's `rms` voice (which pocketsphinx recognises well).
    Flite,
}

/// `text` spoken by `voice` into `dir`: the 8 kHz WAV and its μ-law bytes.
pub fn speech(dir: &Path, voice: Voice, text: &str) -> (PathBuf, Vec<u8>) {
    let (wav, wav8k, ulaw) = (
        dir.join("speech.wav"),
        dir.join("speech8k.wav"),
        dir.join("speech.ulaw"),
    );
    let s = |p: &Path| p.to_string_lossy().into_owned();
    match voice {
        Voice::Espeak => run("espeak-ng", &["-v", "en-us", "-w", &s(&wav), text]),
        Voice::Flite => run("flite", &["-voice", "rms", "-t", text, "-o", &s(&wav)]),
    };
    run(
        "sox",
        &[&s(&wav), "-r", "8000", "-c", "1", "-b", "16", &s(&wav8k)],
    );
    run("sox", &[&s(&wav8k), "-e", "u-law", "-t", "raw", &s(&ulaw)]);
    let bytes = std::fs::read(&ulaw).expect("the μ-law audio");
    (wav8k, bytes)
}

/// A copy of scenario `name` in `dir` with `replacements` made; its name
/// for [`caller`].
pub fn scenario(dir: &Path, name: &str, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(crate::sipp_dir().join(format!("{name}.xml")))
        .expect("the scenario");
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, text).expect("writing the scenario");
    dir.join(name).to_string_lossy().into_owned()
}

/// A deployment (with `config` after the call tests' own) where 101 has
/// voicemail and no device.
pub fn mailbox_of_101(name: &str, config: &str) -> (Deployment, Extension, Extension) {
    let deployment = Deployment::with_config(name, &format!("{CALL_CONFIG}{config}"));
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    deployment.admin(&["ext", "set", "ACME", "101", "--voicemail", "on"]);
    (deployment, alice, bob)
}

/// What the callers of the tests say.
pub const SCRIPT: &str = "hello, this is a test message. please call me back tomorrow morning.";

/// `alice` leaves [`SCRIPT`], spoken by `voice`, in `bob`'s mailbox;
/// returns the WAV of what she said once the message is kept (edgepbx
/// writes it after the caller's BYE is answered).
pub fn leave_message(
    deployment: &Deployment,
    pbx: &RunningPbx,
    alice: &Extension,
    bob: &Extension,
    voice: Voice,
) -> PathBuf {
    let dir = deployment.work().path();
    let (spoken, ulaw) = speech(dir, voice, SCRIPT);
    let frames: Vec<&[u8]> = ulaw.chunks(160).collect();
    let pcap_file = dir.join("speech.pcap");
    pcap::write(&pcap_file, &pcap::audio(&frames, 0));
    let speech_ms = frames.len() as u64 * 20;
    let kept_before = message_files(deployment, &bob.number).len();
    let name = scenario(
        dir,
        "voicemail_deposit",
        &[
            ("AUDIO_PCAP", pcap_file.to_string_lossy().into_owned()),
            ("WAIT_MS", GREETING_MS.to_string()),
            ("SPEAK_MS", (speech_ms + AFTER_MS).to_string()),
        ],
    );
    caller(&name, pbx, alice, &bob.number)
        .timeout(Duration::from_secs(60))
        .run(dir, "deposit")
        .assert_all_succeeded(1);
    wait_for(Duration::from_secs(10), || {
        (message_files(deployment, &bob.number).len() > kept_before).then_some(())
    })
    .expect("the message is kept");
    spoken
}

/// The messages' audio files in `number`'s mailbox.
pub fn message_files(deployment: &Deployment, number: &str) -> Vec<PathBuf> {
    let mailbox = deployment.data_dir().join("voicemail/ACME").join(number);
    let Ok(entries) = std::fs::read_dir(&mailbox) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "wav")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("greeting-"))
        })
        .collect()
}

/// Calls `code` as `who` and presses `presses` (ms after the answer, key);
/// voicemail must hang up within `hangup` of the answer.
pub fn press_keys(
    deployment: &Deployment,
    pbx: &RunningPbx,
    who: &Extension,
    code: &str,
    presses: &[(u64, char)],
    hangup: Duration,
    label: &str,
) -> SippOutcome {
    let dir = deployment.work().path();
    let pcap_file = dir.join(format!("{label}.pcap"));
    pcap::write(&pcap_file, &pcap::keys(presses));
    let name = scenario(
        dir,
        "voicemail_keys",
        &[
            ("KEYS_PCAP", pcap_file.to_string_lossy().into_owned()),
            ("HANGUP_MS", hangup.as_millis().to_string()),
        ],
    );
    caller(&name, pbx, who, code)
        .timeout(hangup + Duration::from_secs(20))
        .run(dir, label)
}

/// The keys of `text` pressed from `from_ms`, one every `step_ms`.
pub fn keys_of(text: &str, from_ms: u64, step_ms: u64) -> Vec<(u64, char)> {
    text.chars()
        .enumerate()
        .map(|(i, c)| (from_ms + i as u64 * step_ms, c))
        .collect()
}
