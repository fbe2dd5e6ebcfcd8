//! Voicemail end to end: a SIPp caller reaches the mailbox of an extension
//! that has no device, hears the greeting, speaks (speech synthesised by
//! espeak-ng, sent as RTP from a pcap) and hangs up; the message edgepbx
//! stored holds what was said.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgepbx_e2e::pbx::Deployment;
use edgepbx_e2e::pcap::write_rtp;
use edgepbx_e2e::phones::{CALL_CONFIG, caller};
use edgepbx_e2e::wait_for;

/// The default greeting of 101 with its beep lasts about 12 s.
const GREETING_MS: u64 = 14_000;

/// After the speech, the caller stays this long before hanging up.
const AFTER_MS: u64 = 2_500;

fn run(program: &str, args: &[&str]) -> String {
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
fn sound_secs(dir: &Path, wav: &Path, label: &str) -> f64 {
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

#[test]
fn a_caller_leaves_a_message_that_holds_what_was_said() {
    let deployment = Deployment::with_config("voicemail-deposit", CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    deployment.admin(&["ext", "set", "ACME", "101", "--voicemail", "on"]);
    let pbx = deployment.start();
    let dir = deployment.work().path();

    // What the caller says, as 8 kHz μ-law in 20 ms RTP packets.
    let speech = dir.join("speech.wav");
    run(
        "espeak-ng",
        &[
            "-v",
            "en-us",
            "-w",
            &speech.to_string_lossy(),
            "hello, this is a test message. please call me back tomorrow morning.",
        ],
    );
    let speech8k = dir.join("speech8k.wav");
    run(
        "sox",
        &[
            &speech.to_string_lossy(),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            &speech8k.to_string_lossy(),
        ],
    );
    let ulaw = dir.join("speech.ulaw");
    run(
        "sox",
        &[
            &speech8k.to_string_lossy(),
            "-e",
            "u-law",
            "-t",
            "raw",
            &ulaw.to_string_lossy(),
        ],
    );
    let bytes = std::fs::read(&ulaw).expect("the μ-law audio");
    let frames: Vec<&[u8]> = bytes.chunks(160).collect();
    let pcap = dir.join("speech.pcap");
    write_rtp(&pcap, &frames);
    let speech_ms = frames.len() as u64 * 20;

    let scenario = std::fs::read_to_string(edgepbx_e2e::sipp_dir().join("voicemail_deposit.xml"))
        .expect("the scenario")
        .replace("AUDIO_PCAP", &pcap.to_string_lossy())
        .replace("WAIT_MS", &GREETING_MS.to_string())
        .replace("SPEAK_MS", &(speech_ms + AFTER_MS).to_string());
    let scenario_path = dir.join("voicemail_deposit.xml");
    std::fs::write(&scenario_path, scenario).expect("writing the scenario");
    let scenario_name = dir.join("voicemail_deposit");
    let call = caller(&scenario_name.to_string_lossy(), &pbx, &alice, &bob.number)
        .timeout(Duration::from_secs(60))
        .run(dir, "caller");
    call.assert_all_succeeded(1);

    // One message, kept in 101's mailbox, holding the speech.
    let mailbox = deployment.data_dir().join("voicemail/ACME/101");
    let message = wait_for(Duration::from_secs(10), || {
        let files: Vec<_> = std::fs::read_dir(&mailbox)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wav"))
            .collect();
        (files.len() == 1).then(|| files[0].clone())
    })
    .unwrap_or_else(|| panic!("no message in {}", mailbox.display()));
    let info = run("soxi", &[&message.to_string_lossy()]);
    assert!(info.contains("8000") && info.contains("16-bit"), "{info}");
    let sent = sound_secs(dir, &speech8k, "sent");
    let stored = sound_secs(dir, &message, "stored");
    assert!(
        (sent - stored).abs() <= 0.5,
        "sent {sent:.2} s of sound, stored {stored:.2} s"
    );
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["outcome"], "voicemail", "{record}");
    drop(pbx);
}
