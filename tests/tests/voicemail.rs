//! Voicemail end to end: a SIPp caller reaches the mailbox of an extension
//! that has no device, hears the greeting, speaks (speech synthesised by
//! espeak-ng, sent as RTP from a pcap) and hangs up; the message edgepbx
//! stored holds what was said, the owner's message lamp (a SIPp
//! `message-summary` subscriber) lights, and the API lists and plays it.
//! Keys as RFC 4733 events (a pcap too) log into the mailbox with the PIN,
//! play and delete the message; three wrong PINs lock the mailbox.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use edgepbx_e2e::pbx::{Deployment, Extension, RunningPbx};
use edgepbx_e2e::pcap;
use edgepbx_e2e::phones::{CALL_CONFIG, caller, subscriber, wait_for_subscriptions};
use edgepbx_e2e::sipp::SippOutcome;
use edgepbx_e2e::wait_for;

/// The default greeting of 101 with its beep lasts about 12 s.
const GREETING_MS: u64 = 14_000;

/// After the speech, the caller stays this long before hanging up.
const AFTER_MS: u64 = 2_500;

/// The PIN of 101's mailbox.
const PIN: &str = "2468";

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

/// Speech synthesised into `dir`: the 8 kHz WAV and its μ-law bytes.
fn speech(dir: &Path, text: &str) -> (PathBuf, Vec<u8>) {
    let (wav, wav8k, ulaw) = (
        dir.join("speech.wav"),
        dir.join("speech8k.wav"),
        dir.join("speech.ulaw"),
    );
    let s = |p: &Path| p.to_string_lossy().into_owned();
    run("espeak-ng", &["-v", "en-us", "-w", &s(&wav), text]);
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
fn scenario(dir: &Path, name: &str, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(edgepbx_e2e::sipp_dir().join(format!("{name}.xml")))
        .expect("the scenario");
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, text).expect("writing the scenario");
    dir.join(name).to_string_lossy().into_owned()
}

/// A deployment where 101 has voicemail (PIN [`PIN`]) and no device.
fn mailbox_of_101(name: &str) -> (Deployment, Extension, Extension) {
    let deployment = Deployment::with_config(name, CALL_CONFIG);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    deployment.admin(&["ext", "set", "ACME", "101", "--voicemail", "on"]);
    (deployment, alice, bob)
}

/// `alice` leaves the synthesised message in `bob`'s mailbox; returns
/// the WAV of what she said.
fn leave_message(
    deployment: &Deployment,
    pbx: &RunningPbx,
    alice: &Extension,
    bob: &Extension,
) -> PathBuf {
    let dir = deployment.work().path();
    let (spoken, ulaw) = speech(
        dir,
        "hello, this is a test message. please call me back tomorrow morning.",
    );
    let frames: Vec<&[u8]> = ulaw.chunks(160).collect();
    let pcap_file = dir.join("speech.pcap");
    pcap::write(&pcap_file, &pcap::audio(&frames, 0));
    let speech_ms = frames.len() as u64 * 20;
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
    spoken
}

/// The messages' audio files in `number`'s mailbox.
fn message_files(deployment: &Deployment, number: &str) -> Vec<PathBuf> {
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
fn press_keys(
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

fn keys_of(text: &str, from_ms: u64, step_ms: u64) -> Vec<(u64, char)> {
    text.chars()
        .enumerate()
        .map(|(i, c)| (from_ms + i as u64 * step_ms, c))
        .collect()
}

#[test]
fn a_message_is_kept_lights_the_lamp_and_is_served_by_the_api() {
    let (deployment, alice, bob) = mailbox_of_101("voicemail-deposit");
    let pbx = deployment.start();
    let dir = deployment.work().path();

    // 101's phone watches its own mailbox while the message is left.
    let (lamp, spoken) = std::thread::scope(|scope| {
        let lamp = scope.spawn(|| {
            subscriber("subscribe_mwi", &pbx, &bob, "101")
                .timeout(Duration::from_secs(90))
                .run(dir, "lamp")
        });
        wait_for_subscriptions(&pbx, 1);
        let spoken = leave_message(&deployment, &pbx, &alice, &bob);
        (lamp.join().expect("the MWI subscriber"), spoken)
    });
    lamp.assert_all_succeeded(1);
    let notifies: Vec<String> = lamp
        .received()
        .filter(|m| m.method() == Some("NOTIFY"))
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert!(notifies[0].contains("Messages-Waiting: no"), "{notifies:?}");
    assert!(
        notifies
            .iter()
            .any(|n| n.contains("Messages-Waiting: yes") && n.contains("Voice-Message: 1/0")),
        "{notifies:?}"
    );

    // One message, 8 kHz 16-bit, holding the speech.
    let message = wait_for(Duration::from_secs(10), || {
        let files = message_files(&deployment, "101");
        (files.len() == 1).then(|| files[0].clone())
    })
    .expect("one message in 101's mailbox");
    let info = run("soxi", &[&message.to_string_lossy()]);
    assert!(info.contains("8000") && info.contains("16-bit"), "{info}");
    let sent = sound_secs(dir, &spoken, "sent");
    let stored = sound_secs(dir, &message, "stored");
    assert!(
        (sent - stored).abs() <= 0.5,
        "sent {sent:.2} s of sound, stored {stored:.2} s"
    );
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["outcome"], "voicemail", "{record}");

    // The API lists it, plays it (and a range of it), marks it heard.
    let api = pbx.api().with_token(&deployment.api_key("ACME", false));
    let mailbox = api.get("/api/v1/extensions/101/voicemail").json();
    assert_eq!(
        (mailbox["new"].as_u64(), mailbox["saved"].as_u64()),
        (Some(1), Some(0))
    );
    let listed = &mailbox["messages"][0];
    assert_eq!(listed["caller"], "100", "{listed}");
    let duration_ms = listed["duration_ms"].as_u64().unwrap_or(0);
    assert!(duration_ms >= (sent * 1000.0) as u64, "{listed}");
    let audio_path = listed["audio"].as_str().unwrap_or_default().to_owned();
    let whole = api.get(&audio_path);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("audio/wav"));
    assert_eq!(
        whole.body,
        std::fs::read(&message).expect("the message file")
    );
    let part = api.request("GET", &audio_path, None, &[("Range", "bytes=0-43")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[..44]);
    let len = whole.body.len();
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-43/{len}").as_str())
    );
    let beyond = api.request(
        "GET",
        &audio_path,
        None,
        &[("Range", &format!("bytes={len}-"))],
    );
    assert_eq!(beyond.status, 416);
    let id = listed["id"].as_str().unwrap_or_default();
    let heard = api.json(
        "PATCH",
        &format!("/api/v1/extensions/101/voicemail/messages/{id}"),
        &serde_json::json!({ "saved": true }),
    );
    assert_eq!(heard.status, 200, "{}", heard.text());
    assert_eq!(heard.json()["saved"], true);
    // Another tenant's key sees no such mailbox; a read-only key cannot
    // delete.
    deployment.add_tenant("BETA", "beta.example");
    let beta = pbx.api().with_token(&deployment.api_key("BETA", false));
    assert_eq!(beta.get("/api/v1/extensions/101/voicemail").status, 404);
    assert_eq!(beta.get(&audio_path).status, 404);
    let reader = pbx.api().with_token(&deployment.api_key("ACME", true));
    assert_eq!(
        reader
            .delete(&format!("/api/v1/extensions/101/voicemail/messages/{id}"))
            .status,
        403
    );
    assert_eq!(
        api.delete(&format!("/api/v1/extensions/101/voicemail/messages/{id}"))
            .status,
        204
    );
    assert!(message_files(&deployment, "101").is_empty());
}

#[test]
fn keys_log_in_play_and_delete_and_wrong_pins_lock_the_mailbox() {
    let (deployment, alice, bob) = mailbox_of_101("voicemail-keys");
    let pbx = deployment.start();
    let api = pbx.api().with_token(&deployment.api_key("ACME", false));
    let set_pin = api.json(
        "PATCH",
        "/api/v1/extensions/101",
        &serde_json::json!({ "voicemail": { "pin": PIN } }),
    );
    assert_eq!(set_pin.status, 200, "{}", set_pin.text());
    leave_message(&deployment, &pbx, &alice, &bob);
    assert_eq!(message_files(&deployment, "101").len(), 1);

    // *98 from Alice's phone: mailbox 101, the PIN, 1 plays the new
    // message, 3 deletes it, * leaves; voicemail says goodbye and hangs up.
    let mut presses = keys_of("101#", 1_000, 300);
    presses.extend(keys_of(&format!("{PIN}#"), 3_000, 300));
    presses.extend([(7_000, '1'), (10_000, '3'), (14_000, '*')]);
    let listened = press_keys(
        &deployment,
        &pbx,
        &alice,
        "*98",
        &presses,
        Duration::from_secs(25),
        "listen",
    );
    listened.assert_all_succeeded(1);
    assert!(
        message_files(&deployment, "101").is_empty(),
        "the message was deleted from the phone"
    );
    let mailbox = api.get("/api/v1/extensions/101/voicemail").json();
    assert_eq!(mailbox["messages"].as_array().map(Vec::len), Some(0));

    // Three wrong PINs: voicemail hangs up after the third...
    let mut wrong = keys_of("101#", 1_000, 300);
    for (i, start) in [3_000u64, 9_000, 15_000].into_iter().enumerate() {
        wrong.extend(keys_of(&format!("{}#", 1111 * (i + 1)), start, 300));
    }
    press_keys(
        &deployment,
        &pbx,
        &alice,
        "*98",
        &wrong,
        Duration::from_secs(30),
        "wrong",
    )
    .assert_all_succeeded(1);
    // ...and the right PIN no longer gets in: voicemail says the mailbox
    // is locked and hangs up at once, where a caller let in would hear the
    // main menu and be asked for a choice (and hung up only after its
    // repeats, a minute later).
    let started = Instant::now();
    let mut right = keys_of("101#", 1_000, 300);
    right.extend(keys_of(&format!("{PIN}#"), 3_000, 300));
    press_keys(
        &deployment,
        &pbx,
        &alice,
        "*98",
        &right,
        Duration::from_secs(20),
        "locked",
    )
    .assert_all_succeeded(1);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        pbx.log()
            .contains("mailbox locked after repeated wrong PINs"),
        "no lock logged"
    );
}
