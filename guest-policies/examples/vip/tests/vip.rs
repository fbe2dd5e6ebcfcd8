//! VIPs reach the mobile; everyone else the desk.

use edgepbx_policy_example_vip::Vip;
use edgepbx_policy_sdk::testing::{CallBuilder, TestHost, extension};
use edgepbx_policy_sdk::{Action, Decision, Outcome, Policy, Ring};

fn host() -> TestHost {
    TestHost::default()
        .with_extension(extension("100"))
        .with_kv("mobile:100", "+491701234567")
}

#[test]
fn a_vip_rings_the_mobile_with_a_marked_name() {
    let call = CallBuilder::to_extension(extension("100"))
        .from_external("+4930555000", Some("Board"))
        .build();
    let host = host();
    assert_eq!(
        Vip::decide(&call, &host),
        Decision::ring(Ring::simultaneous().external("+491701234567", 30)).with_name_prefix("VIP ")
    );
    assert_eq!(host.logs().len(), 1);
}

#[test]
fn an_unanswered_mobile_falls_back_to_voicemail() {
    let mobile = Action::Ring(Ring::simultaneous().external("+491701234567", 30));
    let call = CallBuilder::to_extension(extension("100"))
        .from_external("+4930555000", None)
        .after(mobile, Outcome::NoAnswer)
        .build();
    assert_eq!(Vip::decide(&call, &host()), Decision::voicemail("100"));
}

#[test]
fn a_vip_to_someone_without_a_mobile_rings_the_desk() {
    let call = CallBuilder::to_extension(extension("101"))
        .from_external("+4930555000", None)
        .build();
    assert_eq!(
        Vip::decide(&call, &host()),
        Decision::ring(Ring::simultaneous().extension("101", 20)).with_name_prefix("VIP ")
    );
}

#[test]
fn other_callers_ring_the_desk() {
    let call = CallBuilder::to_extension(extension("100"))
        .from_external("+4930999999", None)
        .build();
    assert_eq!(
        Vip::decide(&call, &host()),
        Decision::ring(Ring::simultaneous().extension("100", 20))
    );
}
