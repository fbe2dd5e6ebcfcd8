//! Trunks to a carrier played by SIPp: the trunk registers with digest
//! credentials, a sequential find-me/follow-me step reaches an external
//! number through it after the extension rang out with the tenant's caller
//! ID, unconditional forwarding reaches another one with the caller's own
//! outbound number, and a call from the carrier to a DID rings its
//! extension.

use std::time::Duration;

use edgepbx_e2e::pbx::Deployment;
use edgepbx_e2e::phones::{
    Behaviour, CALL_CONFIG, Device, caller, final_status, received_requests, wait_for_bindings,
};
use edgepbx_e2e::sipp::{Sipp, free_port};
use edgepbx_e2e::wait_for;

/// The carrier's address: a loopback address of its own, since edgepbx
/// knows a carrier's calls by their source address.
const CARRIER: &str = "127.0.0.2";

#[test]
fn follow_me_reaches_an_external_number_through_a_registered_trunk() {
    let deployment = Deployment::with_config("trunk", CALL_CONFIG);
    let exts = deployment.acme_with([100, 101, 102, 103, 104]);
    let carrier_port = free_port(false);
    deployment.admin(&[
        "trunk",
        "add",
        "ACME",
        "carrier",
        "--host",
        &format!("{CARRIER}:{carrier_port}"),
        "--username",
        "acme-trunk",
        "--password",
        "carrier-s3cret",
        "--register",
        "--caller-id",
        "0140000000",
        "--did",
        "0140000102=102",
    ]);
    deployment.admin(&[
        "ext",
        "set",
        "ACME",
        "101",
        "--ring-timeout",
        "2",
        "--follow-me",
        "sequential:0612345678/10",
    ]);
    // 103 forwards every call to a mobile; 104 has its own outbound number.
    deployment.admin(&[
        "ext",
        "set",
        "ACME",
        "103",
        "--forward-unconditional",
        "0687654321",
    ]);
    deployment.admin(&[
        "ext",
        "set",
        "ACME",
        "104",
        "--outbound-caller-id",
        "0140000104",
    ]);
    // 102 may call internal numbers only.
    deployment.admin(&[
        "ext",
        "set",
        "ACME",
        "102",
        "--allowed-destinations",
        "none",
    ]);
    let listed = deployment.admin(&["trunk", "list", "ACME", "--json"]);
    assert!(!listed.contains("carrier-s3cret"), "{listed}");

    // The carrier handles three calls: the trunk's registration, the
    // follow-me call and the forwarded call.
    let pbx = deployment.start();
    let dir = deployment.work().path().to_owned();
    let carrier = {
        let sipp = Sipp::new("carrier", pbx.udp())
            .local_ip(CARRIER)
            .local_port(carrier_port)
            .calls(3)
            .timeout(Duration::from_secs(60));
        let dir = dir.clone();
        std::thread::spawn(move || sipp.run(&dir, "carrier"))
    };
    let registered = wait_for(Duration::from_secs(20), || {
        pbx.log().contains("trunk registered").then_some(())
    });
    assert!(
        registered.is_some(),
        "the trunk never registered:\n{}",
        pbx.log()
    );

    let hold = Duration::from_secs(20);
    let bob = Device::start(&dir, &pbx, &exts[1], "bob", Behaviour::Ring, hold);
    let carol = Device::start(&dir, &pbx, &exts[2], "carol", Behaviour::Answer, hold);
    wait_for_bindings(&pbx, &exts[1], 1);
    wait_for_bindings(&pbx, &exts[2], 1);

    // Alice calls Bob: his phone rings out, then his mobile answers.
    caller("call", &pbx, &exts[0], "101")
        .arg("-d")
        .arg("1000")
        .run(&dir, "alice")
        .assert_all_succeeded(1);
    // 104 calls 103, whose forwarding sends the call out to a mobile with
    // 104's own number shown.
    caller("call", &pbx, &exts[4], "103")
        .arg("-d")
        .arg("500")
        .run(&dir, "forwarded")
        .assert_all_succeeded(1);
    // A customer calls the DID of 102 from the carrier; the company
    // directory knows the number, so Carol's phone shows the contact's name.
    let key = deployment.api_key("ACME", false);
    let added = pbx.api().with_token(&key).json(
        "POST",
        "/api/v1/contacts",
        &serde_json::json!({"name": "Acme Plumbing", "number": "0699999999"}),
    );
    assert_eq!(added.status, 201, "{}", added.text());
    Sipp::new("carrier_call", pbx.udp())
        .local_ip(CARRIER)
        .key("caller", "0699999999")
        .arg("-s")
        .arg("0140000102")
        .arg("-d")
        .arg("1000")
        .run(&dir, "customer")
        .assert_all_succeeded(1);
    // 102 may not call out; an unknown DID gets 404.
    let refused = caller("call_refused", &pbx, &exts[2], "0612345678").run(&dir, "carol-out");
    assert_eq!(final_status(&refused), Some(403), "{}", refused.report());
    let unknown = Sipp::new("carrier_call", pbx.udp())
        .local_ip(CARRIER)
        .key("caller", "0699999999")
        .arg("-s")
        .arg("0140000999")
        .run(&dir, "customer-unknown");
    assert!(unknown.last_response(404).is_some(), "{}", unknown.report());
    let carrier = carrier.join().expect("the carrier thread");
    carrier.assert_all_succeeded(3);
    let registers = received_requests(&carrier, "REGISTER");
    assert_eq!(registers.len(), 2, "{}", carrier.report());
    assert!(
        registers[1].header("Authorization").is_some(),
        "{}",
        registers[1].text()
    );
    let invites = received_requests(&carrier, "INVITE");
    assert_eq!(invites.len(), 2, "{}", carrier.report());
    assert!(
        invites[0]
            .start_line
            .starts_with(&format!("INVITE sip:0612345678@{CARRIER}")),
        "{}",
        invites[0].text()
    );
    let from = invites[0].header("From").unwrap_or_default();
    assert!(
        from.contains("sip:0140000000@"),
        "the tenant's caller ID: {from}"
    );
    assert!(
        invites[1]
            .start_line
            .starts_with(&format!("INVITE sip:0687654321@{CARRIER}")),
        "{}",
        invites[1].text()
    );
    let from = invites[1].header("From").unwrap_or_default();
    assert!(
        from.contains("sip:0140000104@"),
        "the extension's own caller ID: {from}"
    );
    assert_eq!(received_requests(&carrier, "BYE").len(), 2);
    let bob = bob.finish();
    assert_eq!(
        received_requests(&bob, "CANCEL").len(),
        1,
        "{}",
        bob.report()
    );

    let carol = carol.finish();
    let invites = received_requests(&carol, "INVITE");
    assert_eq!(invites.len(), 1, "{}", carol.report());
    let from = invites[0].header("From").unwrap_or_default();
    assert!(
        from.contains("\"Acme Plumbing\"") && from.contains("sip:0699999999@"),
        "{from}"
    );
}
