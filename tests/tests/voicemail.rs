//! Voicemail end to end: a SIPp caller reaches the mailbox of an extension
//! that has no device, hears the greeting, speaks (speech synthesised by
//! espeak-ng, sent as RTP from a pcap) and hangs up; the message edgepbx
//! stored holds what was said, the owner's message lamp (a SIPp
//! `message-summary` subscriber) lights, and the API lists and plays it.
//! Keys as RFC 4733 events (a pcap too) log into the mailbox with the PIN,
//! play and delete the message; three wrong PINs lock the mailbox. A
//! message is transcribed by a real recogniser (pocketsphinx behind an
//! OpenAI-compatible server) and e-mailed with its audio to a real mail
//! server (aiosmtpd) once that server is up.

use std::time::{Duration, Instant};

use edgepbx_e2e::phones::{subscriber, wait_for_subscriptions};
use edgepbx_e2e::voicemail::{
    PIN, Voice, keys_of, leave_message, mailbox_of_101, message_files, press_keys, run, sound_secs,
};
use edgepbx_e2e::wait_for;

#[test]
fn a_message_is_kept_lights_the_lamp_and_is_served_by_the_api() {
    let (deployment, alice, bob) = mailbox_of_101("voicemail-deposit", "");
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
        let spoken = leave_message(&deployment, &pbx, &alice, &bob, Voice::Espeak);
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

    // A tenant records its own prompt (any WAV; here the caller's speech at
    // 8 kHz); the built-in one comes back when it is removed.
    let own = std::fs::read(&spoken).expect("the speech");
    let path = "/api/v1/voicemail/prompts/leave-message";
    let built_in = api.get(path);
    assert_eq!(built_in.status, 200);
    let put = api.request("PUT", path, Some(("audio/wav", &own)), &[]);
    assert_eq!(put.status, 204, "{}", put.text());
    let listed = api.get("/api/v1/voicemail/prompts").json();
    let entry = listed
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == "leave-message"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["own"], true, "{listed}");
    assert_ne!(api.get(path).body, built_in.body);
    assert_eq!(
        beta.get(path).body,
        built_in.body,
        "another tenant keeps the built-in one"
    );
    let refused = api.request("PUT", path, Some(("audio/wav", b"not a wav file")), &[]);
    assert_eq!(refused.status, 422, "{}", refused.text());
    let wrong_type = api.request("PUT", path, Some(("text/plain", &own)), &[]);
    assert_eq!(wrong_type.status, 415);
    assert_eq!(api.get("/api/v1/voicemail/prompts/..%2Fsecret").status, 404);
    assert_eq!(api.delete(path).status, 204);
    assert_eq!(api.get(path).body, built_in.body);
}

#[test]
fn keys_log_in_play_and_delete_and_wrong_pins_lock_the_mailbox() {
    let (deployment, alice, bob) = mailbox_of_101("voicemail-keys", "");
    let pbx = deployment.start();
    let api = pbx.api().with_token(&deployment.api_key("ACME", false));
    let set_pin = api.json(
        "PATCH",
        "/api/v1/extensions/101",
        &serde_json::json!({ "voicemail": { "pin": PIN } }),
    );
    assert_eq!(set_pin.status, 200, "{}", set_pin.text());
    leave_message(&deployment, &pbx, &alice, &bob, Voice::Espeak);
    assert_eq!(message_files(&deployment, "101").len(), 1);

    // With the option on, *97 from 101's own phone goes straight to the
    // menu: `*` there says goodbye at once (asked for a PIN, `*` would
    // only start it over, and the call would end after the repeats).
    let trusting = api.json(
        "PATCH",
        "/api/v1/extensions/101",
        &serde_json::json!({ "voicemail": { "skip_pin_on_own_phone": true } }),
    );
    assert_eq!(trusting.status, 200, "{}", trusting.text());
    press_keys(
        &deployment,
        &pbx,
        &bob,
        "*97",
        &[(6_000, '*')],
        Duration::from_secs(15),
        "own-phone",
    )
    .assert_all_succeeded(1);
    assert_eq!(
        message_files(&deployment, "101").len(),
        1,
        "nothing deleted"
    );

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

/// A child process killed when the test ends, however it ends.
struct Peer(std::process::Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file in the test's directory for a peer's output.
fn log_file(dir: &std::path::Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap_or_else(|e| panic!("creating {name}: {e}"))
}

fn test_python() -> String {
    std::env::var("EDGEPBX_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("EDGEPBX_TEST_PYTHON is not set; run the tests with ./scripts/test.sh")
    })
}

/// The subject, text, attachment name and attachment's SHA-256 of an
/// e-mail, as Python's e-mail parser reads it.
fn read_email(path: &std::path::Path) -> serde_json::Value {
    let script = r#"
import email, email.policy, hashlib, json, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
text = m.get_body(preferencelist=("plain",)).get_content()
files = [(p.get_filename(), hashlib.sha256(p.get_content()).hexdigest(), p.get_content_type())
         for p in m.iter_attachments()]
print(json.dumps({"subject": m["subject"], "to": m["to"], "text": text, "files": files}))
"#;
    let out = run(&test_python(), &["-c", script, &path.to_string_lossy()]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("the e-mail parser said {out}: {e}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_message_is_transcribed_and_emailed_with_its_audio_once_the_mail_server_is_up() {
    use edgepbx_e2e::sipp::free_port;
    let python = test_python();
    let (mail_port, stt_port) = (free_port(true), free_port(true));
    let config = format!(
        "[voicemail.email]\nserver = \"127.0.0.1\"\nport = {mail_port}\nsecurity = \"none\"\n\
         from = \"Voicemail <voicemail@acme.test>\"\nfirst_retry_secs = 1\n\
         [voicemail.transcription]\nurl = \"http://127.0.0.1:{stt_port}\"\n"
    );
    let (deployment, alice, bob) = mailbox_of_101("voicemail-delivery", &config);
    let dir = deployment.work().path().to_owned();
    let transcriber = edgepbx_e2e::manifest_dir().join("python/transcriber.py");
    let ready = dir.join("transcriber-ready");
    let _stt = Peer(
        std::process::Command::new(&python)
            .arg(&transcriber)
            .args(["--listen", &format!("127.0.0.1:{stt_port}")])
            .arg("--ready-file")
            .arg(&ready)
            .stdout(std::process::Stdio::null())
            .stderr(log_file(&dir, "transcriber.log"))
            .spawn()
            .expect("the transcriber starts"),
    );
    wait_for(Duration::from_secs(30), || ready.is_file().then_some(()))
        .expect("the transcriber is ready");
    let pbx = deployment.start();
    let api = pbx.api().with_token(&deployment.api_key("ACME", false));
    let owner = api.json(
        "PATCH",
        "/api/v1/extensions/101",
        &serde_json::json!({ "voicemail": { "email": "bob@acme.test" } }),
    );
    assert_eq!(owner.status, 200, "{}", owner.text());

    leave_message(&deployment, &pbx, &alice, &bob, Voice::Flite);

    // Transcribed at once; the e-mail waits for a mail server, retried
    // with its error shown.
    let message = wait_for(Duration::from_secs(60), || {
        let m = api.get("/api/v1/extensions/101/voicemail").json()["messages"][0].clone();
        (m["transcription"] == "done" && m["email_attempts"].as_u64() >= Some(1)).then_some(m)
    })
    .expect("transcribed, and an e-mail attempt failed");
    assert_eq!(message["email"], "pending", "{message}");
    assert!(message["email_error"].as_str().is_some(), "{message}");
    let stored = message_files(&deployment, "101").remove(0);
    let transcript = message["transcript"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // What edgepbx stored is what this recogniser hears in the audio it
    // stored, and it heard several of the words said.
    let heard = run(
        &python,
        &[
            &transcriber.to_string_lossy(),
            "--transcribe",
            &stored.to_string_lossy(),
        ],
    );
    assert_eq!(transcript, heard.trim());
    let script = edgepbx_e2e::voicemail::SCRIPT.replace(['.', ','], "");
    let shared = transcript
        .split_whitespace()
        .filter(|w| script.split_whitespace().any(|s| s == *w))
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        shared.len() >= 3,
        "{transcript:?} shares {shared:?} with the script"
    );

    // The mail server comes up: the e-mail goes out with the audio.
    let maildir = dir.join("maildir");
    let _smtp = Peer(
        std::process::Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{mail_port}"),
            ])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(log_file(&dir, "smtp.log"))
            .stderr(log_file(&dir, "smtp-errors.log"))
            .spawn()
            .expect("the mail server starts"),
    );
    let received = wait_for(Duration::from_secs(60), || {
        std::fs::read_dir(maildir.join("new"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .next()
    })
    .expect("the e-mail reached the mail server");
    let email = read_email(&received);
    assert_eq!(email["to"], "bob@acme.test", "{email}");
    assert!(
        email["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Voice message from Test 100 <100> (0:")),
        "{email}"
    );
    let text = email["text"].as_str().unwrap_or_default();
    assert!(text.contains(&transcript), "{text}");
    assert!(text.contains("Length: 0:"), "{text}");
    let audio = std::fs::read(&stored).expect("the stored message");
    assert_eq!(email["files"][0][1], sha256_hex(&audio), "{email}");
    assert_eq!(email["files"][0][2], "audio/wav", "{email}");
    let sent = wait_for(Duration::from_secs(10), || {
        let m = api.get("/api/v1/extensions/101/voicemail").json()["messages"][0].clone();
        (m["email"] == "done").then_some(m)
    });
    assert!(sent.is_some(), "the API shows the e-mail sent");
}

#[test]
fn star_during_the_greeting_connects_the_caller_to_the_operator() {
    use edgepbx_e2e::phones::{Behaviour, Device, wait_for_bindings};
    let (deployment, alice, bob) = mailbox_of_101("voicemail-operator", "");
    let operator = deployment.add_extension(
        "ACME",
        "acme.test",
        "102",
        &edgepbx_e2e::pbx::password_for("102"),
    );
    deployment.admin(&["tenant", "features", "ACME", "--operator", "102"]);
    let pbx = deployment.start();
    let dir = deployment.work().path().to_owned();
    let desk = Device::start(
        &dir,
        &pbx,
        &operator,
        "operator",
        Behaviour::Answer,
        Duration::from_secs(40),
    );
    wait_for_bindings(&pbx, &operator, 1);

    // Alice reaches 101's voicemail and presses * during the greeting.
    let pcap_file = dir.join("star.pcap");
    edgepbx_e2e::pcap::write(&pcap_file, &edgepbx_e2e::pcap::keys(&[(2_000, '*')]));
    let name = edgepbx_e2e::voicemail::scenario(
        &dir,
        "voicemail_operator",
        &[("KEYS_PCAP", pcap_file.to_string_lossy().into_owned())],
    );
    let caller = edgepbx_e2e::phones::caller(&name, &pbx, &alice, &bob.number)
        .timeout(Duration::from_secs(40))
        .run(&dir, "caller");
    caller.assert_all_succeeded(1);
    let desk = desk.finish();
    // The operator's phone rang with the caller's one codec, answered,
    // and got the caller's BYE.
    let invites = edgepbx_e2e::phones::received_requests(&desk, "INVITE");
    assert_eq!(invites.len(), 1, "{}", desk.report());
    let offer = String::from_utf8_lossy(&invites[0].body).into_owned();
    let audio = offer
        .lines()
        .find(|l| l.starts_with("m=audio"))
        .unwrap_or_default()
        .to_owned();
    assert!(audio.ends_with("RTP/AVP 0 101"), "{offer}");
    assert_eq!(
        edgepbx_e2e::phones::received_requests(&desk, "BYE").len(),
        1,
        "{}",
        desk.report()
    );
    assert!(
        message_files(&deployment, "101").is_empty(),
        "no message left"
    );
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["outcome"], "answered", "{record}");
    assert_eq!(record["answered_by"], "102", "{record}");
}
