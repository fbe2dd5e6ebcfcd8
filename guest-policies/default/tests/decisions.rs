//! The built-in policy's decisions, one table row per behaviour.

use edgepbx_policy_default::Builtin;
use edgepbx_policy_sdk::testing::{CallBuilder, TestHost, extension, group, virtual_extension};
use edgepbx_policy_sdk::{
    Action, Call, Decision, Extension, FollowMe, FollowMeDestination, ForwardTo, GroupStrategy,
    Host, Outcome, Policy, Presence, Ring, RingMode,
};

fn ring_ext(number: &str, secs: u32) -> Action {
    Action::Ring(Ring::simultaneous().extension(number, secs))
}

fn offline(number: &str) -> Extension {
    Extension {
        presence: Presence::Offline,
        devices: Vec::new(),
        ..extension(number)
    }
}

fn no_voicemail(number: &str) -> Extension {
    Extension {
        voicemail: false,
        ..extension(number)
    }
}

fn with_forwarding(
    number: &str,
    edit: impl FnOnce(&mut edgepbx_policy_sdk::Forwarding),
) -> Extension {
    let mut ext = extension(number);
    edit(&mut ext.forwarding);
    ext
}

fn follow_me(number: &str, mode: RingMode, online: bool) -> Extension {
    let base = if online {
        extension(number)
    } else {
        offline(number)
    };
    Extension {
        follow_me: Some(FollowMe {
            mode,
            destinations: vec![
                FollowMeDestination {
                    number: "101".into(),
                    timeout_secs: 15,
                },
                FollowMeDestination {
                    number: "+4915112345678".into(),
                    timeout_secs: 25,
                },
            ],
        }),
        ..base
    }
}

/// A directory of extensions 100–105: 100–102 available, 103 on DND, 104
/// offline, 105 busy.
fn directory() -> TestHost {
    TestHost::default()
        .with_extension(extension("100"))
        .with_extension(extension("101"))
        .with_extension(extension("102"))
        .with_extension(Extension {
            dnd: true,
            ..extension("103")
        })
        .with_extension(offline("104"))
        .with_extension(Extension {
            presence: Presence::Busy,
            ..extension("105")
        })
}

fn check(rows: Vec<(&str, Call, Decision)>) {
    let mut failures = Vec::new();
    for (name, call, expected) in rows {
        let host = directory();
        let got = Builtin::decide(&call, &host);
        if got != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn extension_decisions() {
    let ring100 = ring_ext("100", 20);
    check(vec![
        (
            "rings every device for the ring timeout",
            CallBuilder::to_extension(extension("100")).build(),
            Decision::from(ring100.clone()),
        ),
        (
            "an alias rings the extension it belongs to",
            CallBuilder::to_extension(extension("100"))
                .via_alias("sales")
                .build(),
            Decision::from(ring100.clone()),
        ),
        (
            "unconditional forward to a number",
            CallBuilder::to_extension(with_forwarding("100", |f| {
                f.unconditional = Some(ForwardTo::Number("200".into()))
            }))
            .build(),
            Decision::forward("200"),
        ),
        (
            "unconditional forward to voicemail",
            CallBuilder::to_extension(with_forwarding("100", |f| {
                f.unconditional = Some(ForwardTo::Voicemail)
            }))
            .build(),
            Decision::voicemail("100"),
        ),
        (
            "unconditional wins over DND",
            CallBuilder::to_extension(Extension {
                dnd: true,
                ..with_forwarding("100", |f| {
                    f.unconditional = Some(ForwardTo::Number("300".into()))
                })
            })
            .build(),
            Decision::forward("300"),
        ),
        (
            "DND goes to the busy rule",
            CallBuilder::to_extension(Extension {
                dnd: true,
                ..with_forwarding("100", |f| f.busy = Some(ForwardTo::Number("201".into())))
            })
            .build(),
            Decision::forward("201"),
        ),
        (
            "DND without a busy rule goes to voicemail",
            CallBuilder::to_extension(Extension {
                dnd: true,
                ..extension("100")
            })
            .build(),
            Decision::voicemail("100"),
        ),
        (
            "DND presence without voicemail is busy",
            CallBuilder::to_extension(Extension {
                presence: Presence::Dnd,
                ..no_voicemail("100")
            })
            .build(),
            Decision::reject(486),
        ),
        (
            "offline goes to the offline rule",
            CallBuilder::to_extension(Extension {
                forwarding: with_forwarding("100", |f| {
                    f.offline = Some(ForwardTo::Number("+491701234".into()))
                })
                .forwarding,
                ..offline("100")
            })
            .build(),
            Decision::forward("+491701234"),
        ),
        (
            "offline without a rule goes to voicemail",
            CallBuilder::to_extension(offline("100")).build(),
            Decision::voicemail("100"),
        ),
        (
            "offline without voicemail is 480",
            CallBuilder::to_extension(Extension {
                voicemail: false,
                ..offline("100")
            })
            .build(),
            Decision::reject(480),
        ),
        (
            "busy after ringing goes to the busy rule",
            CallBuilder::to_extension(with_forwarding("100", |f| {
                f.busy = Some(ForwardTo::Number("202".into()))
            }))
            .after(ring100.clone(), Outcome::Busy)
            .build(),
            Decision::forward("202"),
        ),
        (
            "busy without rule or voicemail is 486",
            CallBuilder::to_extension(no_voicemail("100"))
                .after(ring100.clone(), Outcome::Busy)
                .build(),
            Decision::reject(486),
        ),
        (
            "declined counts as busy",
            CallBuilder::to_extension(extension("100"))
                .after(ring100.clone(), Outcome::Declined)
                .build(),
            Decision::voicemail("100"),
        ),
        (
            "no answer goes to the no-answer rule",
            CallBuilder::to_extension(with_forwarding("100", |f| {
                f.no_answer = Some(ForwardTo::Number("203".into()))
            }))
            .after(ring100.clone(), Outcome::NoAnswer)
            .build(),
            Decision::forward("203"),
        ),
        (
            "no answer without a rule goes to voicemail",
            CallBuilder::to_extension(extension("100"))
                .after(ring100.clone(), Outcome::NoAnswer)
                .build(),
            Decision::voicemail("100"),
        ),
        (
            "no answer without rule or voicemail is 480",
            CallBuilder::to_extension(no_voicemail("100"))
                .after(ring100.clone(), Outcome::NoAnswer)
                .build(),
            Decision::reject(480),
        ),
        (
            "devices gone while ringing: the offline rule",
            CallBuilder::to_extension(with_forwarding("100", |f| {
                f.offline = Some(ForwardTo::Number("204".into()))
            }))
            .after(ring100.clone(), Outcome::Offline)
            .build(),
            Decision::forward("204"),
        ),
        (
            "a voicemail box that failed ends the call",
            CallBuilder::to_extension(extension("100"))
                .after(ring100.clone(), Outcome::NoAnswer)
                .after(Action::Voicemail("100".into()), Outcome::Failed)
                .build(),
            Decision::reject(480),
        ),
        (
            "find-me/follow-me simultaneous rings devices and numbers together",
            CallBuilder::to_extension(follow_me("100", RingMode::Simultaneous, true)).build(),
            Decision::ring(
                Ring::simultaneous()
                    .extension("100", 20)
                    .extension("101", 15)
                    .external("+4915112345678", 25),
            ),
        ),
        (
            "find-me/follow-me sequential rings devices first, then each number",
            CallBuilder::to_extension(follow_me("100", RingMode::Sequential, true)).build(),
            Decision::ring(
                Ring::sequential()
                    .extension("100", 20)
                    .extension("101", 15)
                    .external("+4915112345678", 25),
            ),
        ),
        (
            "find-me/follow-me reaches an offline extension's numbers",
            CallBuilder::to_extension(follow_me("100", RingMode::Sequential, false)).build(),
            Decision::ring(
                Ring::sequential()
                    .extension("101", 15)
                    .external("+4915112345678", 25),
            ),
        ),
        (
            "find-me/follow-me unanswered: voicemail",
            CallBuilder::to_extension(follow_me("100", RingMode::Simultaneous, true))
                .after(ring100.clone(), Outcome::NoAnswer)
                .build(),
            Decision::voicemail("100"),
        ),
        (
            "a host that keeps asking gets 480",
            (0..8)
                .fold(CallBuilder::to_extension(extension("100")), |b, _| {
                    b.after(ring100.clone(), Outcome::NoAnswer)
                })
                .build(),
            Decision::reject(480),
        ),
    ]);
}

#[test]
fn group_and_virtual_decisions() {
    let members = ["100", "101", "102", "103", "104"];
    let sequential = |order: &[&str]| {
        Decision::ring(
            order
                .iter()
                .fold(Ring::sequential(), |ring, m| ring.extension(*m, 15)),
        )
    };
    check(vec![
        (
            "ring-all rings the available members together",
            CallBuilder::to_group(group("600", GroupStrategy::RingAll, &members)).build(),
            Decision::ring(
                Ring::simultaneous()
                    .extension("100", 15)
                    .extension("101", 15)
                    .extension("102", 15),
            ),
        ),
        (
            "hunt rings available members in order, skipping DND and offline",
            CallBuilder::to_group(group("600", GroupStrategy::Hunt, &members)).build(),
            sequential(&["100", "101", "102"]),
        ),
        (
            "a busy member is still offered the call (call waiting)",
            CallBuilder::to_group(group("600", GroupStrategy::Hunt, &["105", "100"])).build(),
            sequential(&["105", "100"]),
        ),
        (
            "no member available: the no-answer rule",
            CallBuilder::to_group(edgepbx_policy_sdk::Group {
                no_answer: Some(ForwardTo::Voicemail),
                ..group("600", GroupStrategy::Hunt, &["103", "104"])
            })
            .build(),
            Decision::voicemail("600"),
        ),
        (
            "unanswered group without a rule is 480",
            CallBuilder::to_group(group("600", GroupStrategy::RingAll, &members))
                .after(ring_ext("100", 15), Outcome::NoAnswer)
                .build(),
            Decision::reject(480),
        ),
        (
            "unanswered group with a rule forwards",
            CallBuilder::to_group(edgepbx_policy_sdk::Group {
                no_answer: Some(ForwardTo::Number("700".into())),
                ..group("600", GroupStrategy::RingAll, &members)
            })
            .after(ring_ext("100", 15), Outcome::NoAnswer)
            .build(),
            Decision::forward("700"),
        ),
        (
            "a virtual extension rings its available members",
            CallBuilder::to_virtual(virtual_extension("800", &["101", "104", "102"])).build(),
            Decision::ring(
                Ring::simultaneous()
                    .extension("101", 20)
                    .extension("102", 20),
            ),
        ),
        (
            "an unanswered virtual extension goes to its rule",
            CallBuilder::to_virtual(edgepbx_policy_sdk::VirtualExtension {
                no_answer: Some(ForwardTo::Number("100".into())),
                ..virtual_extension("800", &["101"])
            })
            .after(ring_ext("101", 20), Outcome::NoAnswer)
            .build(),
            Decision::forward("100"),
        ),
        (
            "an external number rings for 60 s",
            CallBuilder::to_external("+12025550100").build(),
            Decision::ring(Ring::simultaneous().external("+12025550100", 60)),
        ),
        (
            "a busy external number is 486",
            CallBuilder::to_external("+12025550100")
                .after(
                    Action::Ring(Ring::simultaneous().external("+12025550100", 60)),
                    Outcome::Busy,
                )
                .build(),
            Decision::reject(486),
        ),
        (
            "an unknown number is 404",
            CallBuilder::to_unknown("999").build(),
            Decision::reject(404),
        ),
    ]);
}

fn first_member(decision: &Decision) -> String {
    match &decision.action {
        Action::Ring(ring) => match &ring.targets[0].target {
            edgepbx_policy_sdk::Target::Extension(number) => number.clone(),
            other => panic!("not an extension: {other:?}"),
        },
        other => panic!("not a ring: {other:?}"),
    }
}

#[test]
fn round_robin_rotates_through_the_members() {
    let host = directory();
    let call = CallBuilder::to_group(group(
        "600",
        GroupStrategy::RoundRobin,
        &["100", "101", "102"],
    ))
    .build();
    let starts: Vec<String> = (0..4)
        .map(|_| first_member(&Builtin::decide(&call, &host)))
        .collect();
    assert_eq!(starts, ["100", "101", "102", "100"]);
    let decision = Builtin::decide(&call, &host);
    assert_eq!(
        decision,
        Decision::ring(
            Ring::sequential()
                .extension("101", 15)
                .extension("102", 15)
                .extension("100", 15)
        )
    );
}

#[test]
fn round_robin_survives_a_broken_counter() {
    let host = directory().with_kv("group:600:round-robin", "not a number");
    let call =
        CallBuilder::to_group(group("600", GroupStrategy::RoundRobin, &["100", "101"])).build();
    assert_eq!(first_member(&Builtin::decide(&call, &host)), "100");
    assert_eq!(host.logs().len(), 1, "{:?}", host.logs());
}

#[test]
fn least_recent_offers_first_whoever_waited_longest() {
    let host = directory();
    let call = CallBuilder::to_group(group(
        "600",
        GroupStrategy::LeastRecent,
        &["100", "101", "102"],
    ))
    .build();
    let starts: Vec<String> = (0..4)
        .map(|_| first_member(&Builtin::decide(&call, &host)))
        .collect();
    assert_eq!(starts, ["100", "101", "102", "100"]);
    // 101 was offered a call from another group route meanwhile.
    host.kv_set("group:600:offered:101", "100")
        .expect("a short key and value");
    let starts: Vec<String> = (0..2)
        .map(|_| first_member(&Builtin::decide(&call, &host)))
        .collect();
    assert_eq!(starts, ["102", "100"]);
}

#[test]
fn random_orders_are_permutations_and_vary_with_entropy() {
    let host = directory();
    let members = ["100", "101", "102"];
    let mut seen = std::collections::BTreeSet::new();
    for entropy in 0..64 {
        let call = CallBuilder::to_group(group("600", GroupStrategy::Random, &members))
            .entropy(entropy)
            .build();
        let Action::Ring(ring) = Builtin::decide(&call, &host).action else {
            panic!("not a ring");
        };
        assert_eq!(ring.mode, RingMode::Sequential);
        let mut order: Vec<String> = ring
            .targets
            .iter()
            .map(|t| format!("{:?}", t.target))
            .collect();
        seen.insert(order.clone());
        order.sort();
        assert_eq!(order.len(), 3);
        order.dedup();
        assert_eq!(order.len(), 3, "a member twice");
    }
    assert_eq!(seen.len(), 6, "all six orders occur over 64 calls");
}
