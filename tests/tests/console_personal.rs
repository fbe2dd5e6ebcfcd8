//! The person behind an extension in the console, in real headless
//! Chromium (`tests/browser/personal.mjs`) against the built binary: an
//! administrator makes them a console user on the extension's page; they
//! log in, see only their own extension and the settings that are theirs,
//! and change one. Screenshots in `tests/artifacts/personal/`.

use edgepbx_e2e::browser::Steps;
use edgepbx_e2e::manifest_dir;
use edgepbx_e2e::pbx::Deployment;

const USER: (&str, &str) = ("dana@acme.test", "dana's password 1");

#[test]
fn an_extension_user_sees_and_changes_only_their_own_extension() {
    let deployment = Deployment::new("console-personal");
    deployment.acme_with([100, 101]);
    deployment.add_console_user("admin@acme.test", Some("ACME"), "console password 1");
    let key = deployment.api_key("ACME", false);
    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);
    let artifacts = manifest_dir().join("artifacts/personal");
    std::fs::create_dir_all(&artifacts).expect("the artifacts directory");
    let url = format!("http://{}/", pbx.http());
    let browser = Steps::start(
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
    assert!(page.contains("nav=My extension "), "{page}");
    assert!(
        page.contains("tabs=General|Devices|Forwarding|Find-me/Follow-me|Voicemail|Reliability "),
        "{page}"
    );
    assert!(page.ends_with("admin-fields=none"), "{page}");
    browser.next("dnd-saved");
    assert_eq!(api.get("/api/v1/extensions/101").json()["dnd"], true);
    assert_eq!(api.get("/api/v1/extensions/100").json()["dnd"], false);
    let title = browser.next("kept-to-own");
    assert!(title.starts_with("101"), "{title}");
    browser.finish();
    for shot in [
        "01-administrator-adds-an-extension-user",
        "02-extension-user-sets-dnd",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "screenshot {shot}"
        );
    }
}
