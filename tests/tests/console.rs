//! The console in real headless Chromium (Debian's chromium driven by
//! playwright-core, `tests/browser/console.mjs`) against the built binary:
//! log in, create an extension and find it, watch its dot turn green when a
//! SIPp device registers (no reload), import a CSV with a bad row (shown by
//! the dry run, commit refused), fix and import it, export and compare with
//! the API. The screenshots are kept in `tests/artifacts/console/`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use edgepbx_e2e::pbx::{Deployment, Extension};
use edgepbx_e2e::phones::{Behaviour, CALL_CONFIG, Device, wait_for_bindings};
use edgepbx_e2e::{manifest_dir, require_program};
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
    require_program("node");
    require_program("chromium");
    let browser_dir = manifest_dir().join("browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run ./scripts/test.sh (it runs `npm ci` in tests/browser)"
    );
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

    let mut node = Command::new("node")
        .arg(browser_dir.join("console.mjs"))
        .current_dir(&browser_dir)
        .env("EDGEPBX_URL", format!("http://{}/", pbx.http()))
        .env("EDGEPBX_EMAIL", "admin@acme.test")
        .env("EDGEPBX_PASSWORD", "console password 1")
        .env("EDGEPBX_READER_EMAIL", "reader@acme.test")
        .env("EDGEPBX_READER_PASSWORD", "console password 2")
        .env("ARTIFACTS", &artifacts)
        .env("BAD_CSV", &bad)
        .env("GOOD_CSV", &good)
        .env("GREETING_WAV", &greeting)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let mut stdin = node.stdin.take().expect("piped stdin");
    let stdout = node.stdout.take().expect("piped stdout");
    let (tx, steps) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("browser: {line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |name: &str| -> String {
        loop {
            let line = steps
                .recv_timeout(Duration::from_secs(90))
                .unwrap_or_else(|_| panic!("the browser never reached `{name}`"));
            assert!(!line.starts_with("FAIL"), "browser: {line}");
            if let Some(rest) = line.strip_prefix(&format!("STEP {name}")) {
                return rest.trim().to_owned();
            }
        }
    };

    next("logged-in");
    let password = next("created");
    let created = api.get("/api/v1/extensions/500").json();
    assert_eq!(created["name"], "Browser Test");
    next("found");
    assert_eq!(next("awaiting-device"), "offline");

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
    writeln!(stdin, "registered").expect("the browser reads stdin");
    let waited_ms: u64 = next("online").parse().unwrap_or(u64::MAX);
    assert!(waited_ms < 10_000);
    next("dashboard");

    let dry_run = next("dry-run");
    assert!(
        dry_run.contains("8 forward_busy"),
        "the dry run names row 8 and its column: {dry_run}"
    );
    next("commit-refused");
    assert_eq!(
        api.get("/api/v1/extensions").json()["total"],
        2,
        "a refused import changes nothing"
    );
    let imported = next("imported");
    assert!(imported.starts_with("50/50 50 created"), "{imported}");
    assert_eq!(api.get("/api/v1/extensions").json()["total"], 52);
    assert_eq!(
        api.get("/api/v1/extensions/3006").json()["forwarding"],
        json!({"unconditional": null, "busy": "500", "no_answer": null, "offline": null})
    );

    let exported = std::fs::read_to_string(next("exported")).expect("the download was saved");
    assert_eq!(exported, api.get("/api/v1/extensions/export.csv").text());
    next("awaiting-change");
    let r = api.with_token(&writer_key).json(
        "PATCH",
        "/api/v1/extensions/500",
        &json!({"name": "Renamed Elsewhere"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    writeln!(stdin, "changed").expect("the browser reads stdin");
    next("stale-refused");
    let kept = api.get("/api/v1/extensions/500").json();
    assert_eq!(kept["name"], "Renamed Elsewhere", "{kept}");
    assert!(kept["forwarding"]["busy"].is_null(), "{kept}");
    next("forwarding-saved");
    assert_eq!(
        api.get("/api/v1/extensions/500").json()["forwarding"]["busy"],
        "voicemail"
    );
    next("tabs");
    next("greeting");
    let mailbox = api.get("/api/v1/extensions/500/voicemail").json();
    assert_eq!(mailbox["greetings"], json!(["name"]), "{mailbox}");
    let played = api.get("/api/v1/extensions/500/voicemail/greetings/name");
    assert_eq!(played.status, 200);
    assert_eq!(played.header("content-type"), Some("audio/wav"));
    next("group");
    let group = api.get("/api/v1/groups/600").json();
    assert_eq!(group["members"], json!(["500", "501"]));
    next("group-awaiting-change");
    let mut elsewhere = group.clone();
    elsewhere["name"] = json!("Sales Elsewhere");
    elsewhere["members"] = json!(["500"]);
    let r = api
        .with_token(&writer_key)
        .json("PUT", "/api/v1/groups/600", &elsewhere);
    assert_eq!(r.status, 200, "{}", r.text());
    writeln!(stdin, "changed").expect("the browser reads stdin");
    next("group-stale-refused");
    let kept = api.get("/api/v1/groups/600").json();
    assert_eq!(
        (&kept["name"], &kept["members"]),
        (&json!("Sales Elsewhere"), &json!(["500"])),
        "{kept}"
    );
    next("contact");
    assert_eq!(
        api.get("/api/v1/contacts?q=plumbing").json()[0]["number"],
        "+15550199"
    );
    let decision = next("policy-try");
    assert!(decision.contains("\"policy\": \"builtin\""), "{decision}");
    let new_key = next("api-key");
    assert_eq!(
        api.with_token(&new_key).get("/api/v1/extensions").status,
        200,
        "the key made in the console works"
    );
    let offered = next("read-only");
    assert_eq!(offered, "offered nothing that writes", "{offered}");
    next("done");
    let status = node.wait().expect("node exits");
    assert!(status.success(), "the browser script failed: {status}");
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
