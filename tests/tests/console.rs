//! The console in real headless Chromium (Debian's chromium driven by
//! playwright-core, `tests/browser/console.mjs`) against the built binary:
//! log in, create an extension and find it, watch its dot turn green when a
//! SIPp device registers (no reload), import a CSV with a bad row (shown by
//! the dry run, commit refused), fix and import it, export and compare with
//! the API. The screenshots are kept in `tests/artifacts/console/`.

use std::process::Command;
use std::time::Duration;

use edgepbx_e2e::browser::Steps;
use edgepbx_e2e::manifest_dir;
use edgepbx_e2e::pbx::{Deployment, Extension};
use edgepbx_e2e::phones::{Behaviour, CALL_CONFIG, Device, wait_for_bindings};
use serde_json::json;

/// Fifty rows; `bad` puts a malformed forwarding target on row 8 (the
/// header is row 1).
fn csv(bad: bool) -> String {
    let mut text = String::from("number,name,forward_busy,voicemail\n");
    for i in 0..50 {
        let busy = if bad && i == 6 { "not a number" } else { "500" };
        text.push_str(&format!("{},Imported {i},{busy},yes\n", 3000 + i));
    }
    text
}

#[test]
fn the_console_manages_extensions_live_in_a_browser() {
    let deployment = Deployment::with_config("console", CALL_CONFIG);
    deployment.add_tenant("ACME", "acme.test");
    deployment.add_console_user("admin@acme.test", Some("ACME"), "console password 1");
    deployment.admin(&[
        "user",
        "add",
        "reader@acme.test",
        "--password",
        "console password 2",
        "--role",
        "read-only",
        "--tenant",
        "ACME",
    ]);
    let key = deployment.api_key("ACME", true);
    let writer_key = deployment.api_key("ACME", false);
    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);
    let dir = deployment.work().path();
    let artifacts = manifest_dir().join("artifacts/console");
    std::fs::create_dir_all(&artifacts).expect("the artifacts directory");
    deployment.add_extension("ACME", "acme.test", "501", "pw-501-Secret");
    let bad = deployment.work().write("bad.csv", &csv(true));
    let good = deployment.work().write("good.csv", &csv(false));
    // A greeting of a second of a 440 Hz tone, 16 kHz stereo: converted
    // to 8 kHz mono on upload.
    let greeting = dir.join("greeting.wav");
    let made = Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "2", "-b", "16"])
        .arg(&greeting)
        .args(["synth", "1", "sine", "440"])
        .status()
        .expect("sox runs");
    assert!(made.success(), "sox made no greeting");

    let url = format!("http://{}/", pbx.http());
    let mut browser = Steps::start(
        "console.mjs",
        &[
            ("EDGEPBX_URL", url.as_ref()),
            ("EDGEPBX_EMAIL", "admin@acme.test".as_ref()),
            ("EDGEPBX_PASSWORD", "console password 1".as_ref()),
            ("EDGEPBX_READER_EMAIL", "reader@acme.test".as_ref()),
            ("EDGEPBX_READER_PASSWORD", "console password 2".as_ref()),
            ("ARTIFACTS", artifacts.as_os_str()),
            ("BAD_CSV", bad.as_os_str()),
            ("GOOD_CSV", good.as_os_str()),
            ("GREETING_WAV", greeting.as_os_str()),
        ],
    );
    browser.next("logged-in");
    let password = browser.next("created");
    let created = api.get("/api/v1/extensions/500").json();
    assert_eq!(created["name"], "Browser Test");
    browser.next("found");
    assert_eq!(browser.next("awaiting-device"), "offline");

    let ext = Extension {
        tenant: "ACME".into(),
        domain: "acme.test".into(),
        number: "500".into(),
        password,
    };
    let phone = Device::start(
        dir,
        &pbx,
        &ext,
        "browser-phone",
        Behaviour::Answer,
        Duration::from_secs(60),
    );
    wait_for_bindings(&pbx, &ext, 1);
    browser.say("registered");
    let waited_ms: u64 = browser.next("online").parse().unwrap_or(u64::MAX);
    assert!(waited_ms < 10_000);
    browser.next("dashboard");

    let dry_run = browser.next("dry-run");
    assert!(
        dry_run.contains("8 forward_busy"),
        "the dry run names row 8 and its column: {dry_run}"
    );
    browser.next("commit-refused");
    assert_eq!(
        api.get("/api/v1/extensions").json()["total"],
        2,
        "a refused import changes nothing"
    );
    let imported = browser.next("imported");
    assert!(imported.starts_with("50/50 50 created"), "{imported}");
    assert_eq!(api.get("/api/v1/extensions").json()["total"], 52);
    assert_eq!(
        api.get("/api/v1/extensions/3006").json()["forwarding"],
        json!({"unconditional": null, "busy": "500", "no_answer": null, "offline": null})
    );

    let exported =
        std::fs::read_to_string(browser.next("exported")).expect("the download was saved");
    assert_eq!(exported, api.get("/api/v1/extensions/export.csv").text());
    browser.next("awaiting-change");
    let r = api.with_token(&writer_key).json(
        "PATCH",
        "/api/v1/extensions/500",
        &json!({"name": "Renamed Elsewhere"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    browser.say("changed");
    browser.next("stale-refused");
    let kept = api.get("/api/v1/extensions/500").json();
    assert_eq!(kept["name"], "Renamed Elsewhere", "{kept}");
    assert!(kept["forwarding"]["busy"].is_null(), "{kept}");
    browser.next("forwarding-saved");
    assert_eq!(
        api.get("/api/v1/extensions/500").json()["forwarding"]["busy"],
        "voicemail"
    );
    browser.next("tabs");
    browser.next("greeting");
    let mailbox = api.get("/api/v1/extensions/500/voicemail").json();
    assert_eq!(mailbox["greetings"], json!(["name"]), "{mailbox}");
    let played = api.get("/api/v1/extensions/500/voicemail/greetings/name");
    assert_eq!(played.status, 200);
    assert_eq!(played.header("content-type"), Some("audio/wav"));
    browser.next("group");
    let group = api.get("/api/v1/groups/600").json();
    assert_eq!(group["members"], json!(["500", "501"]));
    browser.next("group-awaiting-change");
    let mut elsewhere = group.clone();
    elsewhere["name"] = json!("Sales Elsewhere");
    elsewhere["members"] = json!(["500"]);
    let r = api
        .with_token(&writer_key)
        .json("PUT", "/api/v1/groups/600", &elsewhere);
    assert_eq!(r.status, 200, "{}", r.text());
    browser.say("changed");
    browser.next("group-stale-refused");
    let kept = api.get("/api/v1/groups/600").json();
    assert_eq!(
        (&kept["name"], &kept["members"]),
        (&json!("Sales Elsewhere"), &json!(["500"])),
        "{kept}"
    );
    browser.next("contact");
    assert_eq!(
        api.get("/api/v1/contacts?q=plumbing").json()[0]["number"],
        "+15550199"
    );
    let decision = browser.next("policy-try");
    assert!(decision.contains("\"policy\": \"builtin\""), "{decision}");
    let new_key = browser.next("api-key");
    assert_eq!(
        api.with_token(&new_key).get("/api/v1/extensions").status,
        200,
        "the key made in the console works"
    );
    let offered = browser.next("read-only");
    assert_eq!(offered, "offered nothing that writes", "{offered}");
    browser.finish();
    for shot in [
        "07-forwarding",
        "08-reliability",
        "09-policy-try",
        "10-api-key",
        "11-read-only-extensions",
        "12-read-only-api-keys",
        "01-login",
        "02-search",
        "03-online",
        "04-dashboard",
        "05-import-refused",
        "06-imported",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "screenshot {shot}"
        );
    }
    drop(phone);
}
