//! Voice messages against a real embedded SurrealDB: listing oldest first,
//! per-tenant and per-mailbox isolation, the mailbox limit, heard/new
//! counts, usage, and input checks that write nothing.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use edgepbx_store::{
    CallSettings, DbSpec, Delivery, ExtensionWrite, MailboxCounts, Profile, SipCredentials, Store,
    StoreConfig, StoreError, Usage, VoiceMessage, Work, WriteMode, is_message_id,
};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Large enough never to be the reason an add fails.
const NO_LIMIT: usize = 100;

async fn open(dir: &Path) -> Result<Store, StoreError> {
    let store = Store::open(StoreConfig::new(DbSpec::embedded(dir))).await?;
    for (code, domain) in [("ACME", "acme.test"), ("BETA", "beta.test")] {
        store.tenants().add(code, domain).await?;
        let extensions = ["100", "101"]
            .into_iter()
            .map(|number| ExtensionWrite {
                mode: WriteMode::Create,
                number: number.into(),
                name: format!("Ext {number}"),
                aliases: Vec::new(),
                credentials: Some(SipCredentials::default()),
                settings: CallSettings::default(),
                profile: Profile::default(),
                if_version: None,
                users: None,
            })
            .collect();
        store.extensions().put(code, extensions).await?;
    }
    Ok(store)
}

/// A new message left `secs` (and some nanoseconds) after a fixed instant.
fn message(id: &str, mailbox: &str, secs: u64, bytes: u64) -> VoiceMessage {
    VoiceMessage {
        id: id.to_owned(),
        mailbox: mailbox.to_owned(),
        caller: "+15551234567".to_owned(),
        caller_name: Some("Alice Example".to_owned()),
        received_at: UNIX_EPOCH + Duration::new(1_700_000_000 + secs, 123_456_789),
        duration_ms: 4_250,
        bytes,
        saved: false,
        call_id: format!("call-{id}@acme.test"),
        transcript: None,
        transcription: Work::Off,
        email: Delivery::default(),
    }
}

fn ids(messages: &[VoiceMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.id.as_str()).collect()
}

/// `counts()`, sorted so that comparisons do not depend on the database's
/// grouping order.
async fn sorted_counts(store: &Store) -> Result<Vec<MailboxCounts>, StoreError> {
    let mut counts = store.voicemail().counts().await?;
    counts.sort_by(|a, b| (&a.tenant, &a.mailbox).cmp(&(&b.tenant, &b.mailbox)));
    Ok(counts)
}

fn counts(tenant: &str, mailbox: &str, new: u32, saved: u32) -> MailboxCounts {
    MailboxCounts {
        tenant: tenant.to_owned(),
        mailbox: mailbox.to_owned(),
        new,
        saved,
    }
}

#[tokio::test]
async fn add_then_list_oldest_first_and_get() -> TestResult {
    let dir = TempDir::new("vm-list");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    assert!(vm.list("ACME", "100").await?.is_empty());

    // Added out of order; listed by received_at.
    let mut anonymous = message("m-3", "100", 30, 3_000);
    anonymous.caller = "anonymous".to_owned();
    anonymous.caller_name = None;
    let first = message("m_1", "100", 10, 1_000);
    let second = message("M2", "100", 20, 2_000);
    vm.add("ACME", &second, NO_LIMIT).await?;
    vm.add("ACME", &anonymous, NO_LIMIT).await?;
    vm.add("ACME", &first, NO_LIMIT).await?;

    let listed = vm.list("ACME", "100").await?;
    assert_eq!(ids(&listed), ["m_1", "M2", "m-3"]);
    // Every field round-trips, received_at to the nanosecond.
    assert_eq!(listed, [first.clone(), second.clone(), anonymous.clone()]);

    assert_eq!(vm.get("ACME", "100", "m_1").await?, Some(first));
    assert_eq!(vm.get("ACME", "100", "m-3").await?, Some(anonymous));
    // Tenant codes are case-insensitive, as elsewhere in the store.
    assert_eq!(vm.get("acme", "100", "M2").await?, Some(second));
    assert_eq!(vm.get("ACME", "100", "nope").await?, None);
    // Not a message id at all: nothing, not an error.
    assert_eq!(vm.get("ACME", "100", "../m_1").await?, None);

    // The other mailbox is untouched.
    assert!(vm.list("ACME", "101").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn ids_are_unique_per_tenant_and_a_duplicate_changes_nothing() -> TestResult {
    let dir = TempDir::new("vm-dup");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    let original = message("same", "100", 1, 10);
    vm.add("ACME", &original, NO_LIMIT).await?;

    // The same id again, even for another mailbox of the tenant, is refused
    // and leaves the first message as it was.
    let again = message("same", "101", 2, 20);
    assert!(vm.add("ACME", &again, NO_LIMIT).await.is_err());
    assert_eq!(vm.get("ACME", "100", "same").await?, Some(original.clone()));
    assert!(vm.list("ACME", "101").await?.is_empty());

    // Another tenant may use the same id.
    vm.add("BETA", &again, NO_LIMIT).await?;
    assert_eq!(vm.get("BETA", "101", "same").await?, Some(again));
    assert_eq!(vm.get("ACME", "100", "same").await?, Some(original));
    Ok(())
}

#[tokio::test]
async fn other_mailboxes_and_tenants_see_nothing() -> TestResult {
    let dir = TempDir::new("vm-isolation");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    let acme = message("a1", "100", 1, 100);
    vm.add("ACME", &acme, NO_LIMIT).await?;

    // Another mailbox of the same tenant.
    assert_eq!(vm.get("ACME", "101", "a1").await?, None);
    assert!(!vm.set_saved("ACME", "101", "a1", true).await?);
    assert!(!vm.remove("ACME", "101", "a1").await?);
    // Another tenant, same mailbox number.
    assert_eq!(vm.get("BETA", "100", "a1").await?, None);
    assert!(!vm.set_saved("BETA", "100", "a1", true).await?);
    assert!(!vm.remove("BETA", "100", "a1").await?);
    assert!(vm.list("BETA", "100").await?.is_empty());
    assert_eq!(vm.usage("BETA").await?, Usage::default());
    // None of those changed or removed it.
    assert_eq!(vm.get("ACME", "100", "a1").await?, Some(acme.clone()));

    // The other way round: BETA's message is invisible to ACME.
    let beta = message("b1", "100", 2, 200);
    vm.add("BETA", &beta, NO_LIMIT).await?;
    assert_eq!(vm.get("ACME", "100", "b1").await?, None);
    assert!(!vm.set_saved("ACME", "100", "b1", true).await?);
    assert!(!vm.remove("ACME", "100", "b1").await?);
    assert_eq!(ids(&vm.list("ACME", "100").await?), ["a1"]);
    assert_eq!(ids(&vm.list("BETA", "100").await?), ["b1"]);
    assert_eq!(vm.get("BETA", "100", "b1").await?, Some(beta));
    assert_eq!(
        vm.usage("ACME").await?,
        Usage {
            messages: 1,
            bytes: 100
        }
    );
    assert_eq!(
        vm.usage("BETA").await?,
        Usage {
            messages: 1,
            bytes: 200
        }
    );
    assert_eq!(
        sorted_counts(&store).await?,
        [counts("ACME", "100", 1, 0), counts("BETA", "100", 1, 0)]
    );
    Ok(())
}

#[tokio::test]
async fn a_full_mailbox_refuses_and_writes_nothing() -> TestResult {
    let dir = TempDir::new("vm-limit");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    vm.add("ACME", &message("l1", "100", 1, 10), 2).await?;
    vm.add("ACME", &message("l2", "100", 2, 10), 2).await?;

    let refused = vm.add("ACME", &message("l3", "100", 3, 10), 2).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached { limit: 2, .. })),
        "{refused:?}"
    );
    assert_eq!(ids(&vm.list("ACME", "100").await?), ["l1", "l2"]);
    assert_eq!(vm.get("ACME", "100", "l3").await?, None);
    assert_eq!(
        vm.usage("ACME").await?,
        Usage {
            messages: 2,
            bytes: 20
        }
    );

    // The limit is per mailbox and per tenant.
    vm.add("ACME", &message("l3", "101", 3, 10), 2).await?;
    vm.add("BETA", &message("l4", "100", 4, 10), 2).await?;
    // A limit of zero refuses even the first message.
    assert!(matches!(
        vm.add("BETA", &message("l5", "101", 5, 10), 0).await,
        Err(StoreError::LimitReached { limit: 0, .. })
    ));
    assert!(vm.list("BETA", "101").await?.is_empty());

    // Room again once one is removed.
    assert!(vm.remove("ACME", "100", "l1").await?);
    vm.add("ACME", &message("l6", "100", 6, 10), 2).await?;
    assert_eq!(ids(&vm.list("ACME", "100").await?), ["l2", "l6"]);
    Ok(())
}

#[tokio::test]
async fn set_saved_flips_and_counts_every_mailbox() -> TestResult {
    let dir = TempDir::new("vm-counts");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    assert!(vm.counts().await?.is_empty());

    for (id, mailbox, secs) in [("c1", "100", 1), ("c2", "100", 2), ("c3", "100", 3)] {
        vm.add("ACME", &message(id, mailbox, secs, 1), NO_LIMIT)
            .await?;
    }
    vm.add("ACME", &message("c4", "101", 4, 1), NO_LIMIT)
        .await?;
    let mut kept = message("c5", "100", 5, 1);
    kept.saved = true;
    vm.add("BETA", &kept, NO_LIMIT).await?;

    assert_eq!(
        sorted_counts(&store).await?,
        [
            counts("ACME", "100", 3, 0),
            counts("ACME", "101", 1, 0),
            counts("BETA", "100", 0, 1),
        ]
    );

    assert!(vm.set_saved("ACME", "100", "c2", true).await?);
    assert!(vm.get("ACME", "100", "c2").await?.is_some_and(|m| m.saved));
    // Setting it again still finds the message.
    assert!(vm.set_saved("ACME", "100", "c2", true).await?);
    assert!(vm.set_saved("ACME", "100", "c3", true).await?);
    assert!(vm.set_saved("BETA", "100", "c5", false).await?);
    assert!(vm.get("BETA", "100", "c5").await?.is_some_and(|m| !m.saved));
    assert!(!vm.set_saved("ACME", "100", "missing", true).await?);
    assert!(!vm.set_saved("ACME", "100", "bad/id", true).await?);
    assert_eq!(
        sorted_counts(&store).await?,
        [
            counts("ACME", "100", 1, 2),
            counts("ACME", "101", 1, 0),
            counts("BETA", "100", 1, 0),
        ]
    );

    // Back to new.
    assert!(vm.set_saved("ACME", "100", "c3", false).await?);
    let listed = vm.list("ACME", "100").await?;
    let saved: Vec<bool> = listed.iter().map(|m| m.saved).collect();
    assert_eq!(saved, [false, true, false]);
    // Only the flag changed.
    let mut expected = message("c2", "100", 2, 1);
    expected.saved = true;
    assert_eq!(listed[1], expected);

    // An emptied mailbox drops out of the counts.
    assert!(vm.remove("ACME", "101", "c4").await?);
    assert_eq!(
        sorted_counts(&store).await?,
        [counts("ACME", "100", 2, 1), counts("BETA", "100", 1, 0)]
    );
    Ok(())
}

#[tokio::test]
async fn remove_is_true_once_then_false() -> TestResult {
    let dir = TempDir::new("vm-remove");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    vm.add("ACME", &message("r1", "100", 1, 10), NO_LIMIT)
        .await?;
    vm.add("ACME", &message("r2", "100", 2, 10), NO_LIMIT)
        .await?;

    assert!(vm.remove("ACME", "100", "r1").await?);
    assert!(!vm.remove("ACME", "100", "r1").await?);
    assert_eq!(vm.get("ACME", "100", "r1").await?, None);
    assert_eq!(ids(&vm.list("ACME", "100").await?), ["r2"]);
    assert!(!vm.remove("ACME", "100", "never").await?);
    assert!(!vm.remove("ACME", "100", "").await?);
    // The id can be used again once removed.
    vm.add("ACME", &message("r1", "101", 3, 10), NO_LIMIT)
        .await?;
    assert!(vm.get("ACME", "101", "r1").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn usage_sums_one_tenant() -> TestResult {
    let dir = TempDir::new("vm-usage");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    assert_eq!(vm.usage("ACME").await?, Usage::default());

    vm.add("ACME", &message("u1", "100", 1, 1_000), NO_LIMIT)
        .await?;
    vm.add("ACME", &message("u2", "101", 2, 2_500), NO_LIMIT)
        .await?;
    vm.add("ACME", &message("u3", "100", 3, 0), NO_LIMIT)
        .await?;
    vm.add("BETA", &message("u4", "100", 4, 70_000), NO_LIMIT)
        .await?;

    assert_eq!(
        vm.usage("ACME").await?,
        Usage {
            messages: 3,
            bytes: 3_500
        }
    );
    assert_eq!(
        vm.usage("beta").await?,
        Usage {
            messages: 1,
            bytes: 70_000
        }
    );
    // A tenant that exists but has no messages, and one with none at all.
    store.tenants().add("GAMMA", "gamma.test").await?;
    assert_eq!(vm.usage("GAMMA").await?, Usage::default());
    assert_eq!(vm.usage("ZZ").await?, Usage::default());

    assert!(vm.remove("ACME", "101", "u2").await?);
    assert_eq!(
        vm.usage("ACME").await?,
        Usage {
            messages: 2,
            bytes: 1_000
        }
    );
    // A malformed tenant code is an error, not zero.
    assert!(matches!(
        vm.usage("a").await,
        Err(StoreError::InvalidField {
            field: "tenant code",
            ..
        })
    ));
    Ok(())
}

#[tokio::test]
async fn invalid_input_is_refused_naming_the_field() -> TestResult {
    let dir = TempDir::new("vm-invalid");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();

    let mut slash = message("ok", "100", 1, 10);
    slash.id = "a/b".to_owned();
    let mut long = message("ok", "100", 1, 10);
    long.id = "x".repeat(65);
    let mut empty = message("ok", "100", 1, 10);
    empty.id = String::new();
    let mut mailbox = message("ok", "100", 1, 10);
    mailbox.mailbox = "abc".to_owned();
    let mut no_mailbox = message("ok", "100", 1, 10);
    no_mailbox.mailbox = String::new();
    let mut long_mailbox = message("ok", "100", 1, 10);
    long_mailbox.mailbox = "1".repeat(16);
    let mut caller = message("ok", "100", 1, 10);
    caller.caller = "100\u{7}".to_owned();
    let mut caller_newline = message("ok", "100", 1, 10);
    caller_newline.caller = "100\r\nX-Injected: 1".to_owned();
    let mut caller_name = message("ok", "100", 1, 10);
    caller_name.caller_name = Some("Eve\u{0}".to_owned());
    let mut call_id = message("ok", "100", 1, 10);
    call_id.call_id = "abc\n".to_owned();

    for (bad, field) in [
        (&slash, "id"),
        (&long, "id"),
        (&empty, "id"),
        (&mailbox, "mailbox"),
        (&no_mailbox, "mailbox"),
        (&long_mailbox, "mailbox"),
        (&caller, "caller"),
        (&caller_newline, "caller"),
        (&caller_name, "caller_name"),
        (&call_id, "call_id"),
    ] {
        assert!(
            matches!(bad.validate(), Err(StoreError::InvalidField { field: f, .. }) if f == field),
            "{field}: {bad:?}"
        );
        let result = vm.add("ACME", bad, NO_LIMIT).await;
        assert!(
            matches!(result, Err(StoreError::InvalidField { field: f, .. }) if f == field),
            "{field}: {result:?}"
        );
    }
    // A bad tenant code is refused too.
    assert!(matches!(
        vm.add("A-B", &message("ok", "100", 1, 10), NO_LIMIT).await,
        Err(StoreError::InvalidField {
            field: "tenant code",
            ..
        })
    ));

    // Nothing was written anywhere.
    assert!(vm.counts().await?.is_empty());
    assert_eq!(vm.usage("ACME").await?, Usage::default());
    assert!(vm.list("ACME", "100").await?.is_empty());

    // The boundaries themselves are accepted.
    let mut longest = message("ok", "100", 1, 10);
    longest.id = "y".repeat(64);
    longest.mailbox = "9".repeat(15);
    longest.validate()?;
    vm.add("ACME", &longest, NO_LIMIT).await?;
    assert_eq!(
        vm.get("ACME", &longest.mailbox, &longest.id).await?,
        Some(longest)
    );
    Ok(())
}

#[test]
fn message_id_edge_cases() {
    for good in [
        "a",
        "Z",
        "0",
        "-",
        "_",
        "a-b_C9",
        "0123456789abcdef-0123456789ABCDEF",
        &"x".repeat(64),
    ] {
        assert!(is_message_id(good), "{good:?} should be accepted");
    }
    for bad in [
        "",
        &"x".repeat(65),
        "a/b",
        "/",
        "..",
        ".",
        "a.wav",
        "a b",
        " a",
        "a\n",
        "a\0",
        "a\\b",
        "a:b",
        "é",
        "ａ",
        "a%2F",
    ] {
        assert!(!is_message_id(bad), "{bad:?} should be refused");
    }
    // Length is counted in bytes: 32 two-byte characters are not 32 allowed
    // characters.
    assert!(!is_message_id(&"é".repeat(32)));
}

#[tokio::test]
async fn work_is_due_in_order_and_its_outcome_recorded() -> TestResult {
    let dir = TempDir::new("voicemail-work");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut both = message("m-both", "100", 1, 10);
    both.transcription = Work::Pending;
    both.email.state = Work::Pending;
    vm.add("ACME", &both, 10).await?;
    vm.add("ACME", &message("m-none", "100", 2, 10), 10).await?;
    let mut other = message("m-beta", "100", 3, 10);
    other.email.state = Work::Pending;
    vm.add("BETA", &other, 10).await?;
    let due = vm.due(now, 10).await?;
    let named: Vec<(&str, &str)> = due
        .iter()
        .map(|(t, m)| (t.as_str(), m.id.as_str()))
        .collect();
    assert_eq!(named, [("ACME", "m-both"), ("BETA", "m-beta")]);
    assert_eq!(vm.due(now, 1).await?.len(), 1, "the limit holds");

    vm.set_transcript("ACME", "m-both", Work::Done, Some("call me back"))
        .await?;
    let got = vm
        .get("ACME", "100", "m-both")
        .await?
        .ok_or("the message")?;
    assert_eq!(
        (got.transcription, got.transcript.as_deref()),
        (Work::Done, Some("call me back"))
    );
    // Its e-mail is due now, and after a failed attempt only once its
    // pause is over.
    assert!(vm.due(now, 10).await?.iter().any(|(_, m)| m.id == "m-both"));
    let retry = Delivery {
        state: Work::Pending,
        attempts: 1,
        next_at: Some(now + Duration::from_secs(60)),
        error: Some("connection refused\r\n".into()),
    };
    vm.set_email("ACME", "m-both", &retry).await?;
    assert!(!vm.due(now, 10).await?.iter().any(|(_, m)| m.id == "m-both"));
    let later = vm.due(now + Duration::from_secs(61), 10).await?;
    let again = later
        .iter()
        .find(|(_, m)| m.id == "m-both")
        .ok_or("due again")?;
    assert_eq!(again.1.email.attempts, 1);
    assert_eq!(
        again.1.email.error.as_deref(),
        Some("connection refused"),
        "control characters dropped"
    );
    vm.set_email(
        "ACME",
        "m-both",
        &Delivery {
            state: Work::Done,
            attempts: 2,
            ..Delivery::default()
        },
    )
    .await?;
    assert!(
        !vm.due(now + Duration::from_secs(3_600), 10)
            .await?
            .iter()
            .any(|(_, m)| m.id == "m-both")
    );
    // A pending transcription holds the e-mail back.
    let mut waiting = message("m-wait", "101", 4, 10);
    waiting.transcription = Work::Pending;
    waiting.email.state = Work::Pending;
    vm.add("ACME", &waiting, 10).await?;
    vm.set_transcript("ACME", "m-wait", Work::Failed, None)
        .await?;
    let got = vm
        .get("ACME", "101", "m-wait")
        .await?
        .ok_or("the message")?;
    assert_eq!(
        (got.transcription, got.email.state),
        (Work::Failed, Work::Pending)
    );
    Ok(())
}

#[tokio::test]
async fn wrong_pins_lock_a_mailbox_until_a_time_and_a_right_one_clears_them() -> TestResult {
    let dir = TempDir::new("voicemail-pins");
    let store = open(&dir.0).await?;
    let vm = store.voicemail();
    let until = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    assert_eq!(vm.locked_until("ACME", "101").await?, None);
    assert!(!vm.pin_failed("ACME", "101", 3, until).await?);
    assert!(!vm.pin_failed("ACME", "101", 3, until).await?);
    // A right PIN forgets the two wrong ones.
    vm.pin_accepted("ACME", "101").await?;
    assert!(!vm.pin_failed("ACME", "101", 3, until).await?);
    assert!(!vm.pin_failed("ACME", "101", 3, until).await?);
    assert!(
        vm.pin_failed("ACME", "101", 3, until).await?,
        "the third locks"
    );
    assert_eq!(vm.locked_until("ACME", "101").await?, Some(until));
    // Per mailbox and per tenant.
    assert_eq!(vm.locked_until("ACME", "100").await?, None);
    assert_eq!(vm.locked_until("BETA", "101").await?, None);
    // A reopened store still knows.
    store.close().await?;
    let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0))).await?;
    assert_eq!(
        store.voicemail().locked_until("ACME", "101").await?,
        Some(until)
    );
    assert!(
        store
            .voicemail()
            .pin_failed("ACME", "abc", 3, until)
            .await
            .is_err()
    );
    Ok(())
}
