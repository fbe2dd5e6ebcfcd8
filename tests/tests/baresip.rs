//! baresip, a real softphone, registers to an extension: the server's 200
//! is what baresip reports, the binding shows in a query REGISTER while
//! baresip runs, and baresip's unregistration on exit removes it. Two
//! baresips call each other through edgepbx and hear each other, while a
//! stranger spraying the media ports hears nothing.
//!
//! baresip 1.0.0 (Debian 12) gives up on any 401 that offers a non-MD5
//! challenge, so it talks to the server through [`Md5ChallengeRelay`]
//! (see `relay.rs`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use edgepbx_e2e::baresip::{Baresip, Calling, SoftphoneAccount, write_tone};
use edgepbx_e2e::pbx::{Deployment, Extension};
use edgepbx_e2e::relay::Md5ChallengeRelay;
use edgepbx_e2e::sip::{RegisterParams, SipClient, contact_param, contact_uri};
use edgepbx_e2e::wait_for;

/// Starts baresip as `ext`, sending to `outbound`, and waits for the line
/// in which it reports its registration, e.g.
/// "100@acme.test: {0/UDP/v4} 200 OK (...) [1 binding]".
fn registered_phone(
    deployment: &Deployment,
    ext: &Extension,
    outbound: SocketAddr,
) -> (Baresip, String) {
    let phone = Baresip::start(
        deployment.work().path(),
        &SoftphoneAccount {
            user: ext.number.clone(),
            domain: ext.domain.clone(),
            password: ext.password.clone(),
            outbound,
            regint: 600,
        },
    );
    let line = phone
        .wait_for_line("200 OK", Duration::from_secs(60))
        .unwrap_or_else(|| {
            panic!(
                "baresip never reported a successful registration:\n{}",
                phone.log()
            )
        });
    (phone, line)
}

#[test]
fn baresip_registers_and_unregisters() {
    // Default keepalive: baresip answers the server's OPTIONS itself.
    let deployment = Deployment::new("baresip");
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let relay = Md5ChallengeRelay::start(pbx.udp());

    let (mut phone, line) = registered_phone(&deployment, &ext, relay.addr());
    assert!(
        line.contains(&format!("{}@{}", ext.number, ext.domain)),
        "{line}"
    );
    assert!(
        line.contains("[1 binding]"),
        "baresip should see its one binding: {line}"
    );

    let query = || {
        let mut ua = ext.agent(SipClient::udp(pbx.udp()));
        let response = ua.register(&RegisterParams::query());
        assert_eq!(response.status(), Some(200), "{}", response.text());
        response
    };
    let listed = query();
    let contacts = listed.contacts();
    assert_eq!(contacts.len(), 1, "baresip's binding:\n{}", listed.text());
    let uri = contact_uri(&contacts[0]);
    assert!(
        uri.starts_with(&format!("sip:{}-", ext.number)),
        "baresip's contact user is <user>-<id>: {uri}"
    );
    assert!(uri.contains("@127.0.0.1:"), "{uri}");
    let expires: u32 = contact_param(&contacts[0], "expires")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no expires in {}", contacts[0]));
    assert!(expires > 0 && expires <= 600, "{expires}");

    // SIGTERM: baresip unregisters (Expires 0) before it exits.
    assert!(
        phone.stop(Duration::from_secs(30)),
        "baresip did not exit:\n{}",
        phone.log()
    );
    let gone = wait_for(Duration::from_secs(10), || {
        query().contacts().is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "baresip's binding is still listed after it unregistered:\n{}",
        query().text()
    );
}

#[test]
fn baresip_registers_directly_when_only_md5_is_offered() {
    let deployment = Deployment::with_config(
        "baresip-md5-only",
        "[security]\ndigest_algorithms = [\"MD5\"]\n",
    );
    let ext = deployment.acme_with([100]).remove(0);
    let pbx = deployment.start();
    let (mut phone, line) = registered_phone(&deployment, &ext, pbx.udp());
    assert!(line.contains("[1 binding]"), "{line}");
    let mut ua = ext.agent(SipClient::udp(pbx.udp()));
    let listed = ua.register(&RegisterParams::query());
    assert_eq!(listed.contacts().len(), 1, "{}", listed.text());
    assert!(
        phone.stop(Duration::from_secs(30)),
        "baresip did not exit:\n{}",
        phone.log()
    );
}

/// The first of `count` consecutive free UDP ports on 127.0.0.1 (even).
fn free_port_range(count: u16) -> u16 {
    let seed = (std::process::id() % 10_000) as u16;
    (0..200u16)
        .map(|i| 30_000 + (seed.wrapping_mul(7).wrapping_add(i * 64) % 30_000) / 2 * 2)
        .find(|&first| (first..first + count).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()))
        .expect("free media ports")
}

/// A stranger on 127.0.0.2 sending RTP to every port of `first..=last`
/// every few milliseconds, counting what it receives, until dropped.
struct Sprayer {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sprayer {
    fn start(first: u16, last: u16) -> Sprayer {
        let socket = UdpSocket::bind("127.0.0.2:0").expect("a socket on 127.0.0.2");
        socket.set_nonblocking(true).expect("non-blocking");
        let (stop, received) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (stopping, counting) = (stop.clone(), received.clone());
        let thread = std::thread::spawn(move || {
            let mut packet = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
            packet.extend_from_slice(&[0xff; 160]);
            let mut buf = [0u8; 2048];
            let mut seq = 0u16;
            while !stopping.load(Ordering::Relaxed) {
                seq = seq.wrapping_add(1);
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                for port in first..=last {
                    let _ = socket.send_to(&packet, ("127.0.0.1", port));
                }
                while socket.recv_from(&mut buf).is_ok() {
                    counting.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Sprayer {
            stop,
            received,
            thread: Some(thread),
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Sprayer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn two_softphones_talk_through_the_media_relay() {
    // A small media range, sprayed with RTP from another address from
    // before the call to its end: the relay must neither relay the
    // stranger nor latch onto it and send it someone's audio.
    let first = free_port_range(16);
    let last = first + 15;
    // baresip 1.0 answers MD5 challenges only.
    let deployment = Deployment::with_config(
        "baresip-call",
        &format!(
            "[security]\ndigest_algorithms = [\"MD5\"]\n[media]\nport_min = {first}\nport_max = {last}\n"
        ),
    );
    let sprayer = Sprayer::start(first, last);
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let tone = dir.join("tone.wav");
    write_tone(&tone, 10);
    let account = |ext: &Extension| SoftphoneAccount {
        user: ext.number.clone(),
        domain: ext.domain.clone(),
        password: ext.password.clone(),
        outbound: pbx.udp(),
        regint: 600,
    };
    let mut bob_phone = Baresip::start_calling(
        dir,
        "bob",
        &account(&bob),
        &Calling {
            microphone: tone.clone(),
            auto_answer: true,
            dial: None,
        },
    );
    assert!(
        bob_phone
            .wait_for_line("200 OK", Duration::from_secs(30))
            .is_some(),
        "bob never registered:\n{}",
        bob_phone.log()
    );
    let mut alice_phone = Baresip::start_calling(
        dir,
        "alice",
        &account(&alice),
        &Calling {
            microphone: tone,
            auto_answer: false,
            dial: Some(bob.number.clone()),
        },
    );
    for (name, phone) in [("alice", &alice_phone), ("bob", &bob_phone)] {
        assert!(
            phone
                .wait_for_line("Call established", Duration::from_secs(30))
                .is_some(),
            "{name}'s call was never established:\n{}",
            phone.log()
        );
        // Each side hears the other: RTP arrives through edgepbx's relay
        // at G.711's 64 kbit/s.
        let heard = wait_for(Duration::from_secs(15), || {
            (phone.audio_received_bits() >= 48_000).then_some(())
        });
        assert!(
            heard.is_some(),
            "{name} received no audio:\n{}",
            phone.log()
        );
        assert!(
            phone.log().contains("incoming rtp for 'audio' established"),
            "{}",
            phone.log()
        );
    }
    assert!(alice_phone.stop(Duration::from_secs(30)));
    assert!(bob_phone.stop(Duration::from_secs(30)));
    assert_eq!(sprayer.received(), 0, "the stranger heard the call");
    drop(sprayer);

    // The call's record: answered by Bob.
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["answered_by"], "101", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
}
