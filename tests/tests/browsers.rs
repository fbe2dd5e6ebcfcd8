//! Browsers as extensions: JsSIP (npm) in headless Chromium registers and
//! calls over SIP over WebSocket (RFC 7118) on the HTTP listener, its media
//! (ICE, DTLS-SRTP) terminated by edgepbx and bridged to baresip desk
//! phones' plain RTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgepbx_e2e::baresip::{desk_hears, desk_phone};
use edgepbx_e2e::browser::{Browsers, ws_url};
use edgepbx_e2e::pbx::{Deployment, RunningPbx};
use edgepbx_e2e::voicemail::{GREETING_MS, mailbox_of_101, message_files};
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

/// Waits until the browser phone `name` has received audio: RTP packets
/// counted by its peer connection and a level above silence.
fn browser_hears(browsers: &mut Browsers, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browsers.command(name, "stats", json!({}));
        let stats = browsers.wait(Some(name), "stats", Duration::from_secs(10));
        let s = &stats["stats"];
        if s["packetsReceived"].as_u64().unwrap_or(0) > 50
            && s["totalAudioEnergy"].as_f64().unwrap_or(0.0) > 0.0
        {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "the browser heard nothing: {stats}\n{}",
            browsers.history()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_browser_and_a_desk_phone_talk_both_ways() {
    // baresip 1.0 answers MD5 challenges only.
    let deployment =
        Deployment::with_config("ws-call", "[security]\ndigest_algorithms = [\"MD5\"]\n");
    let mut exts = deployment.acme_with([100, 101]);
    let (web, desk) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let mut phone = desk_phone(&deployment, &pbx, &desk, true, None);
    let mut browsers = Browsers::start();
    browsers.register("web", &pbx, &web);

    // The browser calls the desk phone, which answers: audio both ways.
    browsers.command(
        "web",
        "call",
        json!({"target": format!("sip:101@{}", web.domain)}),
    );
    browsers.wait(Some("web"), "confirmed", Duration::from_secs(30));
    assert!(
        phone
            .wait_for_line("Call established", Duration::from_secs(20))
            .is_some(),
        "{}",
        phone.log()
    );
    browser_hears(&mut browsers, "web");
    desk_hears(&phone);

    // JsSIP's session timer sends a bodyless UPDATE (every 45 s; sent
    // here at once through the method its timer calls): edgepbx answers
    // 200 itself, and the media goes on.
    browsers.command(
        "web",
        "eval",
        json!({"js": "new Promise((resolve) => window.phone.session._sendUpdate({eventHandlers: {\
            succeeded: (r) => resolve(r.status_code), failed: (e) => resolve(String(e.cause))}}))"}),
    );
    let refreshed = browsers.wait(Some("web"), "eval", Duration::from_secs(10));
    assert_eq!(refreshed["value"], 200, "{refreshed}");

    // A key pressed in the browser goes as SIP INFO (JsSIP's default) and
    // reaches the desk phone, which negotiated telephone events, as RFC
    // 4733 events in its RTP.
    browsers.command("web", "dtmf", json!({"tones": "5", "transport": "INFO"}));
    assert!(
        phone
            .wait_for_line("received event: '5'", Duration::from_secs(10))
            .is_some(),
        "the desk phone heard no key:\n{}",
        phone.log()
    );

    // Hold and resume from the browser: re-INVITEs answered with the
    // browser's own leg described again.
    browsers.command("web", "hold", json!({}));
    browsers.wait(Some("web"), "hold", Duration::from_secs(10));
    browsers.command("web", "unhold", json!({}));
    browsers.wait(Some("web"), "unhold", Duration::from_secs(10));
    let before = browser_hears(&mut browsers, "web")["stats"]["packetsReceived"]
        .as_u64()
        .unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));
    let after = browser_hears(&mut browsers, "web")["stats"]["packetsReceived"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        after > before + 20,
        "no media after the hold: {before} then {after}"
    );

    // The browser hangs up; the desk phone gets the BYE.
    browsers.command("web", "hangup", json!({}));
    browsers.wait(Some("web"), "ended", Duration::from_secs(10));
    let record = wait_for(Duration::from_secs(10), || {
        let r = deployment.last_call_record("ACME");
        (r["answered_by"] == "101").then_some(r)
    });
    assert!(record.is_some(), "no record of the answered call");
    assert!(phone.stop(Duration::from_secs(30)));
}

#[test]
fn a_desk_phone_calls_an_extension_ringing_on_a_desk_phone_and_a_browser() {
    let deployment =
        Deployment::with_config("ws-fork", "[security]\ndigest_algorithms = [\"MD5\"]\n");
    let mut exts = deployment.acme_with([101, 102]);
    let (callee, caller) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    // 101 on a desk phone that only rings, and in a browser.
    let mut desk = desk_phone(&deployment, &pbx, &callee, false, None);
    let mut browsers = Browsers::start();
    browsers.register("web", &pbx, &callee);

    // 102 calls 101: both ring, the browser answers.
    let mut phone = desk_phone(&deployment, &pbx, &caller, false, Some("101"));
    let ringing = browsers.wait(Some("web"), "session", Duration::from_secs(30));
    assert_eq!(ringing["originator"], "remote");
    assert!(
        desk.wait_for_line("Incoming call", Duration::from_secs(10))
            .is_some(),
        "the desk phone did not ring:\n{}",
        desk.log()
    );
    browsers.command("web", "answer", json!({}));
    browsers.wait(Some("web"), "confirmed", Duration::from_secs(20));
    assert!(
        phone
            .wait_for_line("Call established", Duration::from_secs(20))
            .is_some(),
        "{}",
        phone.log()
    );
    // Audio both ways between the calling desk phone and the browser.
    browser_hears(&mut browsers, "web");
    desk_hears(&phone);
    // The ringing desk phone was cancelled (baresip reports a CANCEL as a
    // closed session), never connected.
    assert!(
        desk.wait_for_line("session closed", Duration::from_secs(10))
            .is_some(),
        "{}",
        desk.log()
    );
    assert!(!desk.log().contains("Call established"), "{}", desk.log());

    // The caller hangs up: the browser sees the BYE.
    assert!(phone.stop(Duration::from_secs(30)));
    let ended = browsers.wait(Some("web"), "ended", Duration::from_secs(15));
    assert_eq!(ended["originator"], "remote", "{ended}");
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["answered_by"], "101", "{record}");
    assert!(desk.stop(Duration::from_secs(30)));
}

#[test]
fn two_browsers_call_each_other() {
    let deployment = Deployment::new("ws-browsers");
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let mut browsers = Browsers::start();
    browsers.register("alice", &pbx, &alice);
    browsers.register("bob", &pbx, &bob);
    browsers.command(
        "alice",
        "call",
        json!({"target": format!("sip:101@{}", bob.domain)}),
    );
    let ringing = browsers.wait(Some("bob"), "session", Duration::from_secs(20));
    assert_eq!(ringing["originator"], "remote");
    browsers.command("bob", "answer", json!({}));
    browsers.wait(Some("alice"), "confirmed", Duration::from_secs(20));
    // Each hears the other's (fake) microphone through two WebRTC legs.
    browser_hears(&mut browsers, "alice");
    browser_hears(&mut browsers, "bob");
    // Alice's browser vanishes without a BYE: once her ICE consent has
    // lapsed (15 s), edgepbx ends the call and Bob gets the BYE.
    browsers.command("alice", "close", json!({}));
    let ended = browsers.wait(Some("bob"), "ended", Duration::from_secs(40));
    assert_eq!(ended["originator"], "remote", "{ended}");
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["answered_by"], "101", "{record}");
}

#[test]
fn a_browser_leaves_a_voice_message() {
    // The call tests' config offers MD5 first (for SIPp), which JsSIP,
    // answering the last challenge, would not take: a browser gets MD5
    // last.
    let (deployment, web, bob) = mailbox_of_101("ws-voicemail", "");
    let pbx = deployment.start();
    let mut browsers = Browsers::start();
    browsers.register("web", &pbx, &web);
    // 101 has no device: voicemail answers the browser through a WebRTC
    // leg in front of its media endpoint.
    browsers.command(
        "web",
        "call",
        json!({"target": format!("sip:{}@{}", bob.number, bob.domain)}),
    );
    browsers.wait(Some("web"), "confirmed", Duration::from_secs(20));
    // The greeting is heard; the browser's (fake) microphone is recorded.
    browser_hears(&mut browsers, "web");
    std::thread::sleep(Duration::from_millis(GREETING_MS + 4_000));
    browsers.command("web", "hangup", json!({}));
    browsers.wait(Some("web"), "ended", Duration::from_secs(10));
    let kept = wait_for(Duration::from_secs(15), || {
        let files = message_files(&deployment, &bob.number);
        (!files.is_empty()).then_some(files)
    });
    assert!(kept.is_some(), "no message was kept:\n{}", pbx.log());
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["outcome"], "voicemail", "{record}");
}

#[test]
fn a_browser_registers_over_wss_on_the_https_listener() {
    let certs = edgepbx_e2e::workdir::Workdir::new("wss-certs");
    let (cert, key) = edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1"]);
    let deployment = Deployment::with_config(
        "wss-register",
        &format!(
            "[http]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ),
    );
    let ext = deployment.acme_with([100]).remove(0);
    let key = deployment.api_key("ACME", true);
    let pbx = deployment.start();
    let mut browsers = Browsers::start();
    let http = pbx.http();
    let registered = browsers.register_at(
        "web",
        &format!("https://{http}"),
        &format!("wss://{http}/ws"),
        &ext,
    );
    assert!(
        registered["contact"]
            .as_str()
            .is_some_and(|c| c.contains("+sip.instance")),
        "{registered}"
    );
    let devices = wait_for(Duration::from_secs(10), || {
        let d = https_devices(http, &key);
        (d.as_array().map(Vec::len) == Some(1)).then_some(d)
    })
    .expect("the browser listed as a device");
    assert_eq!(devices[0]["transport"], "wss");
}

/// The devices of extension 100, read over HTTPS with `curl` (the test's
/// certificate is self-signed).
fn https_devices(http: std::net::SocketAddr, key: &str) -> Value {
    let out = std::process::Command::new("curl")
        .args(["-sk", "-H", &format!("Authorization: Bearer {key}")])
        .arg(format!("https://{http}/api/v1/extensions/100/devices"))
        .output()
        .expect("curl runs");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// A WebSocket frame from a client (masked, RFC 6455 §5.3).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x2e];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads server frames until a Close: its status code (`None` when the
/// connection ends without one).
fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut reader = std::io::BufReader::new(stream);
    loop {
        let mut head = [0u8; 2];
        reader.read_exact(&mut head).ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                reader.read_exact(&mut l).ok()?;
                u64::from(u16::from_be_bytes(l))
            }
            127 => {
                let mut l = [0u8; 8];
                reader.read_exact(&mut l).ok()?;
                u64::from_be_bytes(l)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; usize::try_from(len).ok()?];
        reader.read_exact(&mut payload).ok()?;
        if head[0] & 0x0f == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

/// An open SIP WebSocket to `pbx` (the upgrade's answer read).
fn sip_socket(pbx: &RunningPbx) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(pbx.http()).expect("the HTTP listener");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: sip\r\n\r\n",
        pbx.http()
    );
    stream.write_all(request.as_bytes()).expect("the request");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    // The answer's head, byte by byte so that no frame is read with it.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).is_ok() {
        head.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    (stream, status)
}

#[test]
fn sip_websockets_are_limited_per_address_in_size_and_in_rate() {
    let deployment = Deployment::with_config("ws-limits", "[sip]\nmax_connections_per_ip = 2\n");
    deployment.acme_with([100]);
    let pbx = deployment.start();
    // Two sockets from one address, not three.
    let (mut first, status) = sip_socket(&pbx);
    assert!(status.contains(" 101 "), "{status}");
    let (second, status) = sip_socket(&pbx);
    assert!(status.contains(" 101 "), "{status}");
    let (_, status) = sip_socket(&pbx);
    assert!(status.contains(" 429 "), "{status}");
    drop(second);

    // A frame larger than a SIP message may be ends the connection.
    let big = vec![b'x'; 70_000];
    first.write_all(&client_frame(0x1, &big)).expect("a frame");
    let sent = Instant::now();
    close_code(&mut first);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "the oversized frame was not refused"
    );

    // A flood of messages is cut off with 1008 (policy violation) once
    // the burst allowance (10 s of the rate) is spent.
    let (mut flood, _) = wait_for(Duration::from_secs(5), || {
        let (s, status) = sip_socket(&pbx);
        status.contains(" 101 ").then_some((s, status))
    })
    .expect("a socket once the others closed");
    for n in 0..300 {
        let options = format!(
            "OPTIONS sip:acme.test SIP/2.0\r\nVia: SIP/2.0/WS f.invalid;branch=z9hG4bK-{n}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:x@acme.test>;tag=f\r\nTo: <sip:acme.test>\r\n\
             Call-ID: flood-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        if flood
            .write_all(&client_frame(0x1, options.as_bytes()))
            .is_err()
        {
            break;
        }
    }
    assert_eq!(close_code(&mut flood), Some(1008));
    // The server goes on serving others.
    let (_, status) = sip_socket(&pbx);
    assert!(status.contains(" 101 "), "{status}");
}
