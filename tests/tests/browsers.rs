//! Browsers as extensions: JsSIP (npm) in headless Chromium registers and
//! calls over SIP over WebSocket (RFC 7118) on the HTTP listener.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgepbx_e2e::browser::{Browsers, ws_url};
use edgepbx_e2e::pbx::{Deployment, RunningPbx};
use edgepbx_e2e::wait_for;
use serde_json::{Value, json};

/// The status line of a WebSocket upgrade of `/ws` with `headers`.
fn upgrade_status(pbx: &RunningPbx, headers: &str) -> String {
    let mut stream = TcpStream::connect(pbx.http()).expect("the HTTP listener");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n",
        pbx.http()
    );
    stream.write_all(request.as_bytes()).expect("the request");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).expect("an answer");
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn a_browser_registers_over_a_websocket_and_goes_offline_when_it_closes() {
    let deployment = Deployment::new("ws-register");
    let ext = deployment.acme_with([100]).remove(0);
    let key = deployment.api_key("ACME", true);
    let pbx = deployment.start();
    let api = pbx.api().with_token(&key);

    // The upgrade: the sip subprotocol is required, and a page of another
    // origin is refused; a client that is not a browser sends no Origin.
    let own = format!("Origin: http://{}\r\n", pbx.http());
    let sip = "Sec-WebSocket-Protocol: sip\r\n";
    assert!(upgrade_status(&pbx, &format!("{own}{sip}")).contains(" 101 "));
    assert!(upgrade_status(&pbx, sip).contains(" 101 "));
    assert!(upgrade_status(&pbx, &own).contains(" 400 "));
    let foreign = "Origin: https://evil.example\r\n";
    assert!(upgrade_status(&pbx, &format!("{foreign}{sip}")).contains(" 403 "));

    let mut browsers = Browsers::start();
    // In Chromium: the page of another origin (localhost is not the
    // address the console is served from) cannot open the socket; the
    // page served by edgepbx can.
    browsers.open(
        "foreign",
        &format!("http://localhost:{}", pbx.http().port()),
    );
    browsers.command("foreign", "socket", json!({"ws": ws_url(&pbx)}));
    let refused = browsers.wait(Some("foreign"), "socket", Duration::from_secs(10));
    assert_eq!(refused["result"], "refused");
    browsers.open("own", &format!("http://{}", pbx.http()));
    browsers.command("own", "socket", json!({"ws": ws_url(&pbx)}));
    let opened = browsers.wait(Some("own"), "socket", Duration::from_secs(10));
    assert_eq!(opened["result"], "open");

    // A wrong password gets the 401 it gets over UDP.
    browsers.start_ua("own", &pbx, &ext, "not the password");
    let failed = browsers.wait(Some("own"), "registrationFailed", Duration::from_secs(20));
    assert_eq!(failed["status"], 401, "{failed}");
    browsers.command("own", "close", json!({}));
    browsers.wait(Some("own"), "closed", Duration::from_secs(10));

    // The right one registers; the 200 lists the client's own contact
    // with its instance and reg-id (JsSIP ignores a 200 without them).
    let registered = browsers.register("alice", &pbx, &ext);
    let contact = registered["contact"].as_str().unwrap_or_default();
    assert!(
        contact.contains(".invalid;transport=ws>")
            && contact.contains("+sip.instance=\"<urn:uuid:"),
        "{registered}"
    );
    let devices = wait_for(Duration::from_secs(10), || {
        let d = api.get("/api/v1/extensions/100/devices").json();
        (d.as_array().map(Vec::len) == Some(1)).then_some(d)
    })
    .expect("the browser listed as a device");
    assert_eq!(devices[0]["transport"], "ws");
    assert!(
        devices[0]["user_agent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("JsSIP")),
        "{devices}"
    );

    // The page goes away: its binding is offline at once, and the live
    // stream says so.
    let mut events = api.events("/api/v1/events");
    let closed_at = Instant::now();
    browsers.command("alice", "close", json!({}));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut offline = None;
    while let Some(event) = events.next_before(deadline) {
        let data: Value = serde_json::from_str(&event.data).unwrap_or_default();
        if event.name == "presence" && data["devices"] == 0 {
            offline = Some(closed_at.elapsed());
            break;
        }
    }
    assert!(offline.is_some(), "no offline presence event");
    assert_eq!(api.get("/api/v1/extensions/100/devices").json(), json!([]));
    assert_eq!(
        api.get("/api/v1/extensions/100").json()["status"],
        "offline"
    );
}
