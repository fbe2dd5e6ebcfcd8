//! A full disk: the data directory on a small tmpfs, filled to the last
//! byte. REGISTERs keep working from memory, API reads keep working, API
//! writes get a 503 problem that says why, and once space is freed writes
//! are taken again; the database opens after a restart with everything
//! acknowledged in it.
//!
//! Mounting needs root (CI runs as root) or password-less sudo.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use edgepbx_e2e::pbx::{Deployment, NO_KEEPALIVE};
use edgepbx_e2e::sip::{RegisterParams, SipClient};
use serde_json::json;

/// A tmpfs mounted for the test's life.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size_mib: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("the mount point");
        let options = format!("size={size_mib}m,mode=0700");
        let status = privileged(&["mount", "-t", "tmpfs", "-o", &options, "tmpfs"], dir);
        assert!(
            status,
            "mounting a tmpfs on {} needs root or password-less sudo",
            dir.display()
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        privileged(&["umount", "-l"], &self.0);
    }
}

/// Runs `args` followed by `path` as root: directly when the test is root,
/// else through `sudo -n`.
fn privileged(args: &[&str], path: &Path) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut command = if root {
        Command::new(args[0])
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", args[0]]);
        sudo
    };
    command
        .args(&args[1..])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes zeros into `path` until the disk refuses more.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("the filler");
    let chunk = vec![0u8; 1 << 16];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[test]
fn a_full_disk_refuses_api_writes_keeps_registering_and_recovers() {
    let deployment = Deployment::with_config("disk-full", NO_KEEPALIVE);
    let _tmpfs = Tmpfs::mount(&deployment.data_dir(), 96);
    let extensions = deployment.acme_with([100, 101]);
    let key = deployment.api_key("ACME", false);

    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);
    let mut desk = extensions[0].agent(SipClient::udp(pbx.udp()));
    let ok = desk.register(&RegisterParams::bind("<sip:desk@127.0.0.1:9>", 3600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let r = api.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "102", "name": "Before"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    let filler = deployment.data_dir().join("filler");
    fill(&filler);

    // Writes are refused, saying why; reads are served.
    let r = api.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "103", "name": "Refused"}),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("disk"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("60"));
    let listed = api.get("/api/v1/extensions");
    assert_eq!(listed.status, 200, "{}", listed.text());
    // Registering goes on from memory.
    let mut mobile = extensions[1].agent(SipClient::udp(pbx.udp()));
    let ok = mobile.register(&RegisterParams::bind("<sip:mobile@127.0.0.1:9>", 3600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let ok = desk.register(&RegisterParams::bind("<sip:desk@127.0.0.1:9>", 3600));
    assert_eq!(ok.status(), Some(200), "a refresh: {}", ok.text());

    // Space comes back, and so do writes.
    std::fs::remove_file(&filler).expect("the filler goes");
    let r = api.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "103", "name": "After"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let status = pbx.stop();
    assert!(status.success(), "{status}");

    // Nothing is corrupted: the database opens, with every acknowledged
    // write in it.
    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);
    let listed = api.get("/api/v1/extensions").json();
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let numbers: Vec<&str> = items.iter().filter_map(|e| e["number"].as_str()).collect();
    assert_eq!(numbers, ["100", "101", "102", "103"], "{listed}");
    // The registration made while the disk was full was written behind
    // once space came back.
    assert_eq!(items[1]["devices"], 1, "{listed}");
    let status = pbx.stop();
    assert!(status.success(), "{status}");
}
