//! SIP over TLS: a provisioned phone is set up for it; the certificate presented is the one for the name the
//! client asks for (SNI, seen by openssl); baresip registers and calls
//! over a TLS connection to edgepbx's TLS listener (verifying its
//! certificate), a softphone on UDP
//! answers, and both hear each other; the binding shows as TLS and its
//! requests reach it over the connection it registered on.

use std::time::Duration;

use edgepbx_e2e::baresip::{Baresip, Calling, SoftphoneAccount, write_tone};
use edgepbx_e2e::pbx::{Deployment, Extension};
use edgepbx_e2e::wait_for;

/// The subjectAltName of the certificate a TLS server at `addr` presents
/// to a client asking for `name` (openssl s_client).
fn presented_names(addr: std::net::SocketAddr, name: &str) -> String {
    let openssl = edgepbx_e2e::require_program("openssl");
    let hello = std::process::Command::new(&openssl)
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            name,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let mut show = std::process::Command::new(&openssl)
        .args(["x509", "-noout", "-ext", "subjectAltName"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl runs");
    if let Some(mut input) = show.stdin.take() {
        use std::io::Write as _;
        let _ = input.write_all(&hello.stdout);
    }
    let out = show.wait_with_output().expect("openssl x509 ends");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_softphone_registers_and_calls_over_tls() {
    let certs = edgepbx_e2e::workdir::Workdir::new("sip-tls-certs");
    let (cert, key) =
        edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1", "DNS:acme.test"]);
    // Another tenant's domain has a certificate of its own (SNI).
    let beta_certs = edgepbx_e2e::workdir::Workdir::new("sip-tls-beta-certs");
    let (beta_cert, beta_key) =
        edgepbx_e2e::certs::self_signed(beta_certs.path(), &["DNS:pbx.beta.test"]);
    // baresip 1.0 answers MD5 challenges only.
    let deployment = Deployment::with_config(
        "sip-tls",
        &format!(
            "[security]\ndigest_algorithms = [\"MD5\"]\n\
             [sip]\ntls = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n\
             [[sip.certificates]]\nnames = [\"pbx.beta.test\"]\ncert = {:?}\nkey = {:?}\n\
             [provisioning]\nallow_http = true\n",
            cert.display().to_string(),
            key.display().to_string(),
            beta_cert.display().to_string(),
            beta_key.display().to_string()
        ),
    );
    let mut exts = deployment.acme_with([100, 101]);
    let (alice, bob) = (exts.remove(0), exts.remove(0));
    let password = deployment
        .admin(&["tenant", "provisioning", "ACME"])
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    deployment.admin(&[
        "device",
        "add",
        "ACME",
        "80:5e:c0:12:34:56",
        "--extension",
        "100",
    ]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    // A provisioned phone is set up for TLS, on the TLS port.
    let fetched = std::process::Command::new(edgepbx_e2e::require_program("curl"))
        .args(["-sS", "--max-time", "10", "-u", &format!("ACME:{password}")])
        .arg(format!(
            "http://127.0.0.1:{}/prov/ACME/805ec0123456.cfg",
            pbx.http().port()
        ))
        .output()
        .expect("curl runs");
    let file = String::from_utf8_lossy(&fetched.stdout);
    assert!(
        file.contains("account.1.sip_server.1.transport_type = 2"),
        "{file}"
    );
    assert!(
        file.contains(&format!(
            "account.1.sip_server.1.port = {}",
            pbx.tls().port()
        )),
        "{file}"
    );
    // The certificate a client gets is the one for the name it asks for.
    for (name, expected) in [
        ("pbx.beta.test", "pbx.beta.test"),
        ("acme.test", "acme.test"),
    ] {
        let presented = presented_names(pbx.tls(), name);
        assert!(presented.contains(expected), "{name}: {presented}");
    }
    let tone = dir.join("tone.wav");
    write_tone(&tone, 10);
    let account = |ext: &Extension, outbound| SoftphoneAccount {
        user: ext.number.clone(),
        domain: ext.domain.clone(),
        password: ext.password.clone(),
        outbound,
        regint: 600,
    };

    // Bob answers on UDP.
    let mut bob_phone = Baresip::start_calling(
        dir,
        "bob",
        &account(&bob, pbx.udp()),
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

    // Alice registers over TLS and calls Bob as she starts.
    let mut alice_phone = Baresip::start_calling_over_tls(
        dir,
        "alice",
        &account(&alice, pbx.tls()),
        &Calling {
            microphone: tone,
            auto_answer: false,
            dial: Some(bob.number.clone()),
        },
        &cert,
    );
    let registered = alice_phone
        .wait_for_line("200 OK", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("alice never registered:\n{}", alice_phone.log()));
    assert!(registered.contains("TLS"), "{registered}");
    let api = pbx.api().with_token(&deployment.api_key("ACME", true));
    let devices = wait_for(Duration::from_secs(10), || {
        let d = api.get("/api/v1/extensions/100/devices").json();
        (d.as_array().map(Vec::len) == Some(1)).then_some(d)
    })
    .expect("alice's phone listed");
    assert_eq!(devices[0]["transport"], "tls", "{devices}");

    for (name, phone) in [("alice", &alice_phone), ("bob", &bob_phone)] {
        assert!(
            phone
                .wait_for_line("Call established", Duration::from_secs(30))
                .is_some(),
            "{name}'s call was never established:\n{}",
            phone.log()
        );
        let heard = wait_for(Duration::from_secs(15), || {
            (phone.audio_received_bits() >= 48_000).then_some(())
        });
        assert!(
            heard.is_some(),
            "{name} received no audio:\n{}",
            phone.log()
        );
    }
    assert!(alice_phone.stop(Duration::from_secs(30)));
    assert!(bob_phone.stop(Duration::from_secs(30)));
    let record = deployment.last_call_record("ACME");
    assert_eq!(record["answered_by"], "101", "{record}");
    assert_eq!(record["outcome"], "answered", "{record}");
}
