//! Bindings survive a restart: they are written behind to the embedded
//! database and restored when `serve` starts on the same data directory.

use std::time::{Duration, Instant};

use edgepbx_e2e::pbx::{Deployment, NO_KEEPALIVE};
use edgepbx_e2e::relay::Md5ChallengeRelay;
use edgepbx_e2e::sip::{RegisterParams, SipClient, contact_param, contact_uri};
use edgepbx_e2e::sipp::Sipp;

#[test]
fn bindings_survive_a_graceful_restart() {
    let deployment = Deployment::with_config("restart", NO_KEEPALIVE);
    let ext = deployment.acme_with([100, 101]).remove(0);
    let key = deployment.api_key("ACME", true);

    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let ok = ua.register(&RegisterParams::bind("<sip:desk@127.0.0.1:9>", 3600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let mut tcp_ua = ext.agent(SipClient::tcp(pbx.tcp()));
    let ok = tcp_ua.register(&RegisterParams::bind(
        "<sip:mobile@127.0.0.1:9;transport=tcp>",
        3600,
    ));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    assert_eq!(ok.contacts().len(), 2, "{}", ok.text());
    drop(tcp_ua);

    // The data directory is the server user's alone, and so is the
    // control socket in it.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_default()
        };
        let data = deployment.data_dir();
        assert_eq!(mode(&data), 0o700, "{}", data.display());
        assert_eq!(mode(&data.join("edgepbx.ctl")), 0o600);
    }

    // An open console tab (its event stream) does not hold the stop up:
    // the stream ends, and the server exits.
    let mut events = pbx.api().with_token(&key).events("/api/v1/events");
    assert!(
        events
            .next_before(Instant::now() + Duration::from_secs(10))
            .is_some(),
        "the stream is open"
    );
    let status = pbx.stop();
    assert!(
        status.success(),
        "SIGTERM must end the server with exit code 0, got {status}"
    );
    drop(events);

    // The administration CLI sees the stored bindings while it is stopped.
    let list = deployment.extension_list(&ext.tenant);
    let row = list
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["number"] == ext.number.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "extension {} missing from `ext list --json`:\n{list:#}",
                ext.number
            )
        });
    let stored: Vec<&str> = row["bindings"]
        .as_array()
        .map(|b| b.iter().filter_map(|b| b["contact"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(stored.len(), 2, "bindings stored at shutdown:\n{list:#}");

    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    let contacts = query.contacts();
    let uris: Vec<String> = contacts.iter().map(|c| contact_uri(c)).collect();
    assert_eq!(uris.len(), 2, "after the restart:\n{}", query.text());
    assert!(
        uris.iter().any(|u| u.starts_with("sip:desk@127.0.0.1:9")),
        "{uris:?}"
    );
    assert!(
        uris.iter().any(|u| u.starts_with("sip:mobile@127.0.0.1:9")),
        "{uris:?}"
    );
    for contact in &contacts {
        let expires: u32 = contact_param(contact, "expires")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no expires in {contact}"));
        assert!(
            expires > 0 && expires <= 3600,
            "the remaining time must carry over, got {expires} in {contact}"
        );
    }

    // SIPp's query REGISTER (MD5, through the relay) sees them too.
    let relay = Md5ChallengeRelay::start(pbx.udp());
    let outcome = Sipp::new("register_query", relay.addr())
        .account(&ext.domain, &ext.number, &ext.password)
        .run(deployment.work().path(), "sipp-query");
    outcome.assert_all_succeeded(1);
    let listed = outcome.last_response(200).expect("a 200");
    assert_eq!(listed.contacts().len(), 2, "{}", listed.text());
}

#[test]
fn bindings_written_behind_survive_a_kill() {
    let deployment = Deployment::with_config("restart-kill", NO_KEEPALIVE);
    let ext = deployment.acme_with([100]).remove(0);

    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let ok = ua.register(&RegisterParams::bind("<sip:desk@127.0.0.1:9>", 3600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    // Write-behind flushes within write_delay_ms (50 ms by default); give a
    // loaded machine far more than that, then kill without warning.
    std::thread::sleep(Duration::from_secs(2));
    drop(pbx);

    let pbx = deployment.start();
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let query = ua.register(&RegisterParams::query());
    assert_eq!(query.status(), Some(200), "{}", query.text());
    let uris: Vec<String> = query.contacts().iter().map(|c| contact_uri(c)).collect();
    assert_eq!(
        uris.len(),
        1,
        "after SIGKILL and restart:\n{}",
        query.text()
    );
    assert!(uris[0].starts_with("sip:desk@127.0.0.1:9"), "{uris:?}");
}
