//! When the business-hours policy takes calls and when it sends them away.

use edgepbx_policy_example_business_hours::BusinessHours;
use edgepbx_policy_sdk::testing::{CallBuilder, TestHost, extension};
use edgepbx_policy_sdk::{Decision, Policy, Ring, Weekday};

#[test]
fn external_calls_follow_the_opening_hours() {
    let host = TestHost::default().with_extension(extension("100"));
    let ring = Decision::ring(Ring::simultaneous().extension("100", 20));
    let voicemail = Decision::voicemail("100");
    let rows = [
        (
            "Wednesday morning",
            (2026, 1, 7),
            Weekday::Wednesday,
            (9, 30),
            &ring,
        ),
        (
            "Wednesday, opening minute",
            (2026, 1, 7),
            Weekday::Wednesday,
            (8, 0),
            &ring,
        ),
        (
            "Wednesday, closing minute",
            (2026, 1, 7),
            Weekday::Wednesday,
            (18, 0),
            &voicemail,
        ),
        (
            "Wednesday night",
            (2026, 1, 7),
            Weekday::Wednesday,
            (23, 15),
            &voicemail,
        ),
        (
            "Friday afternoon",
            (2026, 1, 9),
            Weekday::Friday,
            (14, 59),
            &ring,
        ),
        (
            "Friday after 15:00",
            (2026, 1, 9),
            Weekday::Friday,
            (15, 0),
            &voicemail,
        ),
        (
            "Saturday",
            (2026, 1, 10),
            Weekday::Saturday,
            (11, 0),
            &voicemail,
        ),
        (
            "Christmas on a Friday",
            (2026, 12, 25),
            Weekday::Friday,
            (10, 0),
            &voicemail,
        ),
        (
            "Easter Monday 2026",
            (2026, 4, 6),
            Weekday::Monday,
            (10, 0),
            &voicemail,
        ),
        (
            "Easter Monday 2027 is not listed",
            (2027, 4, 6),
            Weekday::Tuesday,
            (10, 0),
            &ring,
        ),
    ];
    for (name, date, weekday, time, expected) in rows {
        let call = CallBuilder::to_extension(extension("100"))
            .from_external("+4930123456", None)
            .at(date, weekday, time)
            .build();
        assert_eq!(&BusinessHours::decide(&call, &host), expected, "{name}");
    }
}

#[test]
fn colleagues_get_through_at_night() {
    let host = TestHost::default().with_extension(extension("100"));
    let call = CallBuilder::to_extension(extension("100"))
        .from_internal("101")
        .at((2026, 1, 10), Weekday::Saturday, (22, 0))
        .build();
    assert_eq!(
        BusinessHours::decide(&call, &host),
        Decision::ring(Ring::simultaneous().extension("100", 20))
    );
}
