//! The sales team takes turns.

use edgepbx_policy_example_sales_round_robin::SalesRoundRobin;
use edgepbx_policy_sdk::testing::{CallBuilder, TestHost, extension, virtual_extension};
use edgepbx_policy_sdk::{Action, Decision, Extension, Outcome, Policy, Presence, Ring, Target};

fn team() -> TestHost {
    TestHost::default()
        .with_extension(extension("101"))
        .with_extension(Extension {
            presence: Presence::Busy,
            ..extension("102")
        })
        .with_extension(extension("103"))
        .with_extension(Extension {
            dnd: true,
            ..extension("104")
        })
}

fn sales_call() -> CallBuilder {
    CallBuilder::to_virtual(virtual_extension("600", &["101", "102", "103", "104"]))
}

fn first(decision: &Decision) -> String {
    let Action::Ring(ring) = &decision.action else {
        panic!("not a ring: {decision:?}");
    };
    match &ring.targets[0].target {
        Target::Extension(number) => number.clone(),
        other => panic!("not an extension: {other:?}"),
    }
}

#[test]
fn calls_rotate_among_available_salespeople() {
    let host = team();
    let call = sales_call().build();
    let first_call = SalesRoundRobin::decide(&call, &host);
    assert_eq!(
        first_call,
        Decision::ring(Ring::sequential().extension("101", 15).extension("103", 15))
            .with_name_prefix("Sales: ")
    );
    let starts: Vec<String> = (0..3)
        .map(|_| first(&SalesRoundRobin::decide(&call, &host)))
        .collect();
    assert_eq!(starts, ["103", "101", "103"]);
    assert_eq!(host.kv().get("sales:turn").map(String::as_str), Some("4"));
}

#[test]
fn the_sales_alias_rotates_too_and_unanswered_calls_reach_voicemail() {
    let host = team();
    let via_alias = sales_call().via_alias("sales").build();
    assert_eq!(first(&SalesRoundRobin::decide(&via_alias, &host)), "101");
    let unanswered = sales_call()
        .after(
            Action::Ring(Ring::sequential().extension("101", 15)),
            Outcome::NoAnswer,
        )
        .build();
    assert_eq!(
        SalesRoundRobin::decide(&unanswered, &host),
        Decision::voicemail("600")
    );
}

#[test]
fn nobody_available_means_voicemail_and_other_numbers_route_as_usual() {
    let host = TestHost::default();
    assert_eq!(
        SalesRoundRobin::decide(&sales_call().build(), &host),
        Decision::voicemail("600")
    );
    let other = CallBuilder::to_extension(extension("101")).build();
    assert_eq!(
        SalesRoundRobin::decide(&other, &team()),
        Decision::ring(Ring::simultaneous().extension("101", 20))
    );
}
