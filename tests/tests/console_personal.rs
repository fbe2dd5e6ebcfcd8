//! The person behind an extension in the console, in real headless
//! Chromium (`tests/browser/personal.mjs`) against the built binary: an
//! administrator makes them a console user on the extension's page; they
//! log in, see only their own extension and the settings that are theirs,
//! change one, and use the console's own web phone with a baresip desk
//! phone both ways: heard (the page's statistics and baresip's received
//! audio), a key, hold. Screenshots in `tests/artifacts/personal/`.

use std::time::Duration;

use edgepbx_e2e::baresip::{desk_hears, desk_phone};
use edgepbx_e2e::browser::Steps;
use edgepbx_e2e::manifest_dir;
use edgepbx_e2e::pbx::Deployment;

const USER: (&str, &str) = ("dana@acme.test", "dana's password 1");

#[test]
fn an_extension_user_manages_their_extension_and_calls_from_the_web_phone() {
    // baresip 1.0 answers MD5 challenges only.
    let deployment = Deployment::with_config(
        "console-personal",
        "[security]\ndigest_algorithms = [\"MD5\"]\n",
    );
    let exts = deployment.acme_with([100, 101, 102]);
    deployment.add_console_user("admin@acme.test", Some("ACME"), "console password 1");
    let key = deployment.api_key("ACME", false);
    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);
    let mut desk = desk_phone(&deployment, &pbx, &exts[0], true, None);
    let artifacts = manifest_dir().join("artifacts/personal");
    std::fs::create_dir_all(&artifacts).expect("the artifacts directory");
    let url = format!("http://{}/", pbx.http());
    let mut browser = Steps::start(
        "personal.mjs",
        &[
            ("EDGEPBX_URL", url.as_ref()),
            ("EDGEPBX_EMAIL", "admin@acme.test".as_ref()),
            ("EDGEPBX_PASSWORD", "console password 1".as_ref()),
            ("USER_EMAIL", USER.0.as_ref()),
            ("USER_PASSWORD", USER.1.as_ref()),
            ("ARTIFACTS", artifacts.as_os_str()),
        ],
    );

    browser.next("user-added");
    let users = api.get("/api/v1/users").json();
    assert!(
        users
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["email"] == USER.0
                && u["role"] == "extension-user"
                && u["extension"] == "101")),
        "{users}"
    );
    let page = browser.next("own-page");
    assert!(page.contains("nav=My extension|Phone "), "{page}");
    assert!(
        page.contains("tabs=General|Devices|Forwarding|Find-me/Follow-me|Voicemail|Reliability "),
        "{page}"
    );
    assert!(page.ends_with("admin-fields=none"), "{page}");
    browser.next("away-saved");
    assert_eq!(api.get("/api/v1/extensions/101").json()["away"], true);
    assert_eq!(api.get("/api/v1/extensions/100").json()["away"], false);
    let title = browser.next("kept-to-own");
    assert!(title.starts_with("101"), "{title}");

    // The web phone is a device of 101 like any other.
    browser.next("phone-registered");
    let devices = api.get("/api/v1/extensions/101/devices").json();
    assert!(
        devices.as_array().is_some_and(|d| d.len() == 1
            && d[0]["user_agent"] == "edgepbx web phone"
            && d[0]["transport"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("ws"))),
        "{devices}"
    );
    // Registered, and away as its user said.
    assert_eq!(api.get("/api/v1/extensions/101").json()["status"], "away");

    // It calls the desk phone: heard both ways.
    let heard = browser.next("heard");
    assert!(
        desk.wait_for_line("Call established", Duration::from_secs(20))
            .is_some(),
        "{}",
        desk.log()
    );
    desk_hears(&desk);
    browser.say("checked");
    browser.next("key-sent");
    assert!(
        desk.wait_for_line("received event: '5'", Duration::from_secs(10))
            .is_some(),
        "the desk phone heard no key:\n{}",
        desk.log()
    );
    browser.say("checked");
    browser.next("held-and-resumed");
    let ended = browser.next("hung-up");
    assert!(ended.contains("hung up"), "{ended}");
    assert!(
        desk.wait_for_line("session closed", Duration::from_secs(10))
            .is_some(),
        "{}",
        desk.log()
    );

    // 102 calls 101: it rings in the page, which answers.
    let mut caller = desk_phone(&deployment, &pbx, &exts[2], false, Some("101"));
    browser.say("calling");
    let ringing = browser.next("ringing");
    assert!(
        ringing.contains("102") && ringing.contains("is calling"),
        "{ringing}"
    );
    let answered = browser.next("answered");
    assert!(
        caller
            .wait_for_line("Call established", Duration::from_secs(20))
            .is_some(),
        "{}",
        caller.log()
    );
    desk_hears(&caller);
    browser.say("checked");
    browser.finish();
    println!("web phone heard {heard}; answering, {answered}");
    assert!(desk.stop(Duration::from_secs(30)));
    assert!(caller.stop(Duration::from_secs(30)));
    for shot in [
        "01-administrator-adds-an-extension-user",
        "02-extension-user-sets-away",
        "03-web-phone-in-call",
        "04-web-phone-ringing",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "screenshot {shot}"
        );
    }
}
