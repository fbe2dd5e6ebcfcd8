//! Extension call settings, ring groups, virtual extensions, call records
//! and trunks against a real embedded SurrealDB.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use edgepbx_store::{
    AllowedDestinations, CallRecord, CallSettings, DbSpec, Did, FeatureKey, FollowMe,
    FollowMeDestination, ForwardTarget, ForwardWhen, Group, GroupKind, GroupStrategy, NewExtension,
    RingMode, SipCredentials, Store, StoreConfig, StoreError, Trunk,
};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &Path) -> Result<Store, StoreError> {
    Store::open(StoreConfig::new(DbSpec::embedded(dir))).await
}

/// ACME with extensions 100–103 and GLOBEX with 100.
async fn seeded(dir: &Path) -> Result<Store, StoreError> {
    let store = open(dir).await?;
    store.tenants().add("ACME", "acme.test").await?;
    store.tenants().add("GLOBEX", "globex.test").await?;
    for (tenant, number) in [
        ("ACME", "100"),
        ("ACME", "101"),
        ("ACME", "102"),
        ("ACME", "103"),
        ("GLOBEX", "100"),
    ] {
        store
            .extensions()
            .add(
                tenant,
                NewExtension {
                    number: number.into(),
                    name: format!("Ext {number}"),
                    aliases: if number == "103" {
                        vec!["sales".into()]
                    } else {
                        Vec::new()
                    },
                    credentials: SipCredentials::default(),
                },
            )
            .await?;
    }
    Ok(store)
}

fn group(number: &str, members: &[&str]) -> Group {
    Group {
        tenant: String::new(),
        number: number.into(),
        name: format!("Group {number}"),
        kind: GroupKind::Ring,
        strategy: GroupStrategy::Hunt,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        ring_timeout_secs: 15,
        no_answer: Some(ForwardTarget::Voicemail),
        updated_at: UNIX_EPOCH,
    }
}

fn field_of(error: StoreError) -> &'static str {
    match error {
        StoreError::InvalidField { field, .. } => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[tokio::test]
async fn call_settings_are_kept_and_bad_ones_change_nothing() -> TestResult {
    let dir = TempDir::new("settings");
    let store = seeded(&dir.0).await?;
    let fresh = store.extensions().get("ACME", "101").await?;
    assert_eq!(fresh.map(|e| e.settings), Some(CallSettings::default()));

    let settings = CallSettings {
        ring_timeout_secs: Some(12),
        dnd: true,
        forward_busy: Some(ForwardTarget::Number("102".into())),
        forward_no_answer: Some(ForwardTarget::Voicemail),
        follow_me: Some(FollowMe {
            mode: RingMode::Sequential,
            destinations: vec![FollowMeDestination {
                number: "+33612345678".into(),
                timeout_secs: 20,
            }],
        }),
        voicemail: true,
        outbound_caller_id: Some("+33140000000".into()),
        inbound_prefix: Some("Sales: ".into()),
        allowed_destinations: AllowedDestinations::parse("0X.,+33X.")?,
        ..CallSettings::default()
    };
    store
        .extensions()
        .set_settings("ACME", "101", &settings)
        .await?;
    let read = store.extensions().get("ACME", "101").await?;
    assert_eq!(read.map(|e| e.settings), Some(settings.clone()));

    // A bad value names its field and leaves the stored settings alone.
    let bad = CallSettings {
        forward_busy: Some(ForwardTarget::Number("10x".into())),
        ..settings.clone()
    };
    let error = store.extensions().set_settings("ACME", "101", &bad).await;
    assert_eq!(field_of(error.err().ok_or("accepted")?), "forward_busy");
    let read = store.extensions().get("ACME", "101").await?;
    assert_eq!(read.map(|e| e.settings), Some(settings));

    // Another tenant's extension of the same number is untouched.
    let other = store.extensions().get("GLOBEX", "100").await?;
    assert_eq!(other.map(|e| e.settings), Some(CallSettings::default()));
    let missing = store
        .extensions()
        .set_settings("GLOBEX", "101", &CallSettings::default())
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_feature_key_changes_its_one_setting_in_its_tenant() -> TestResult {
    let dir = TempDir::new("feature-keys");
    let store = seeded(&dir.0).await?;
    let before = CallSettings {
        ring_timeout_secs: Some(12),
        forward_busy: Some(ForwardTarget::Voicemail),
        ..CallSettings::default()
    };
    store
        .extensions()
        .set_settings("ACME", "101", &before)
        .await?;
    let extensions = store.extensions();
    extensions
        .set_feature_key("ACME", "101", &FeatureKey::Dnd(true))
        .await?;
    let always = Some(ForwardTarget::Number("102".into()));
    extensions
        .set_feature_key(
            "ACME",
            "101",
            &FeatureKey::Forward(ForwardWhen::Always, always.clone()),
        )
        .await?;
    extensions
        .set_feature_key("ACME", "101", &FeatureKey::Forward(ForwardWhen::Busy, None))
        .await?;
    let read = extensions.get("ACME", "101").await?.ok_or("gone")?;
    let expected = CallSettings {
        dnd: true,
        forward_unconditional: always,
        forward_busy: None,
        ..before
    };
    assert_eq!(read.settings, expected);

    // A bad target changes nothing; another tenant's number is not found.
    let bad = FeatureKey::Forward(
        ForwardWhen::NoAnswer,
        Some(ForwardTarget::Number("1;x".into())),
    );
    assert!(
        extensions
            .set_feature_key("ACME", "101", &bad)
            .await
            .is_err()
    );
    let missing = extensions
        .set_feature_key("GLOBEX", "101", &FeatureKey::Dnd(true))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    let read = extensions.get("ACME", "101").await?.ok_or("gone")?;
    assert_eq!(read.settings, expected);
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn groups_share_the_dialling_namespace_and_stay_in_their_tenant() -> TestResult {
    let dir = TempDir::new("groups");
    let store = seeded(&dir.0).await?;
    let groups = store.groups();
    let added = groups.add("ACME", group("600", &["101", "102"])).await?;
    assert_eq!(added.tenant, "ACME");
    groups
        .add(
            "ACME",
            Group {
                kind: GroupKind::Virtual,
                strategy: GroupStrategy::RingAll,
                no_answer: None,
                ..group("700", &["100", "103"])
            },
        )
        .await?;

    // Numbers and aliases are taken; members must exist in this tenant.
    for taken in ["101", "sales", "600"] {
        let number = if taken == "sales" { "103" } else { taken };
        let clash = groups.add("ACME", group(number, &["100"])).await;
        assert!(
            matches!(clash, Err(StoreError::Conflict { .. })),
            "{taken}: {clash:?}"
        );
    }
    let foreign = groups.add("GLOBEX", group("600", &["101"])).await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound { .. })),
        "{foreign:?}"
    );
    let doubled = groups.add("ACME", group("601", &["101", "101"])).await;
    assert_eq!(field_of(doubled.err().ok_or("accepted")?), "members");
    let empty = groups.add("ACME", group("602", &[])).await;
    assert_eq!(field_of(empty.err().ok_or("accepted")?), "members");

    // A group number is not an extension, and GLOBEX sees none of ACME's.
    assert!(store.extensions().resolve("ACME", "600").await?.is_none());
    assert!(store.groups().list("GLOBEX").await?.is_empty());
    let listed = store.groups().list("ACME").await?;
    assert_eq!(
        listed.iter().map(|g| g.number.as_str()).collect::<Vec<_>>(),
        ["600", "700"]
    );
    assert_eq!(listed[1].kind, GroupKind::Virtual);

    // Removing an extension takes it out of its groups; removing a group
    // frees its number.
    store.extensions().remove("ACME", "101", None).await?;
    let listed = store.groups().list("ACME").await?;
    assert_eq!(listed[0].members, ["102"]);
    store.groups().remove("ACME", "600", None).await?;
    groups.add("ACME", group("600", &["102"])).await?;
    assert_eq!(store.groups().all().await?.len(), 2);
    store.close().await?;
    Ok(())
}

/// A replacement or removal made against a version that is no longer the
/// group's is refused and writes nothing; every change, a member's removal
/// included, gives the group a new version.
#[tokio::test]
async fn conditional_group_writes_lose_no_change() -> TestResult {
    let dir = TempDir::new("group-versions");
    let store = seeded(&dir.0).await?;
    let groups = store.groups();
    let first = groups.add("ACME", group("600", &["101", "102"])).await?;
    assert_ne!(first.updated_at, UNIX_EPOCH);
    assert_eq!(groups.get("ACME", "600").await?, Some(first.clone()));

    let second = groups
        .replace(
            "ACME",
            group("600", &["101", "102", "103"]),
            Some(first.updated_at),
        )
        .await?;
    assert_ne!(second.updated_at, first.updated_at);
    assert_eq!(second.members, ["101", "102", "103"]);

    // Someone still holding the first version changes nothing.
    let stale = groups
        .replace("ACME", group("600", &["100"]), Some(first.updated_at))
        .await;
    assert!(
        matches!(stale, Err(StoreError::Changed { .. })),
        "{stale:?}"
    );
    let stale = groups.remove("ACME", "600", Some(first.updated_at)).await;
    assert!(
        matches!(stale, Err(StoreError::Changed { .. })),
        "{stale:?}"
    );
    assert_eq!(groups.get("ACME", "600").await?, Some(second.clone()));

    // Taking a member out is a change of the group too, and of no other.
    let other = groups.add("ACME", group("601", &["100"])).await?;
    store.extensions().remove("ACME", "103", None).await?;
    let third = groups.get("ACME", "600").await?.ok_or("the group")?;
    assert_eq!(third.members, ["101", "102"]);
    assert_ne!(third.updated_at, second.updated_at);
    assert_eq!(groups.get("ACME", "601").await?, Some(other));

    // Another tenant neither sees nor removes it.
    assert_eq!(groups.get("GLOBEX", "600").await?, None);
    let foreign = groups.remove("GLOBEX", "600", Some(third.updated_at)).await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound { .. })),
        "{foreign:?}"
    );
    groups.remove("ACME", "600", Some(third.updated_at)).await?;
    assert_eq!(groups.get("ACME", "600").await?, None);
    store.close().await?;
    Ok(())
}

fn record(tenant: &str, id: &str, ended_secs: u64) -> CallRecord {
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    CallRecord {
        tenant: tenant.into(),
        id: id.into(),
        caller: "100".into(),
        dialled: "101".into(),
        answered_by: Some("101".into()),
        started_at: at(ended_secs - 30),
        answered_at: Some(at(ended_secs - 20)),
        ended_at: at(ended_secs),
        duration_secs: 20,
        outcome: "answered".into(),
        cause: "caller hung up".into(),
        policy: "builtin".into(),
    }
}

#[tokio::test]
async fn call_records_are_listed_newest_first_per_tenant() -> TestResult {
    let dir = TempDir::new("calls");
    let store = seeded(&dir.0).await?;
    let calls = store.calls();
    calls
        .append(vec![
            record("ACME", "a1", 1_900_000_000),
            record("ACME", "a2", 1_900_000_100),
            record("GLOBEX", "g1", 1_900_000_050),
        ])
        .await?;
    let acme = calls.recent("ACME", 10).await?;
    assert_eq!(
        acme.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["a2", "a1"]
    );
    assert_eq!(acme[1], record("ACME", "a1", 1_900_000_000));
    assert_eq!(calls.recent("GLOBEX", 10).await?.len(), 1);
    assert_eq!(calls.recent("ACME", 1).await?.len(), 1);

    // One bad record and nothing of the batch is written.
    let mut bad = record("ACME", "a3", 1_900_000_200);
    bad.cause = "x".repeat(500);
    let refused = calls
        .append(vec![record("ACME", "a4", 1_900_000_300), bad])
        .await;
    assert_eq!(field_of(refused.err().ok_or("accepted")?), "cause");
    assert_eq!(calls.recent("ACME", 10).await?.len(), 2);
    store.close().await?;
    Ok(())
}

fn trunk(name: &str, dids: &[(&str, &str)]) -> Trunk {
    Trunk {
        tenant: String::new(),
        name: name.into(),
        host: "carrier.example:5060".into(),
        username: Some("acme".into()),
        password: Some("carrier-secret".into()),
        register: true,
        caller_id: Some("+33140000000".into()),
        dids: dids
            .iter()
            .map(|(n, d)| Did {
                number: (*n).into(),
                destination: (*d).into(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn trunks_keep_their_dids_apart_and_hide_the_password() -> TestResult {
    let dir = TempDir::new("trunks");
    let store = seeded(&dir.0).await?;
    let trunks = store.trunks();
    trunks
        .put("ACME", trunk("carrier", &[("+33140000001", "101")]))
        .await?;
    // A DID belongs to one trunk of the tenant; other tenants are apart.
    let clash = trunks
        .put("ACME", trunk("backup", &[("+33140000001", "102")]))
        .await;
    assert!(
        matches!(clash, Err(StoreError::Conflict { .. })),
        "{clash:?}"
    );
    trunks
        .put("GLOBEX", trunk("carrier", &[("+33140000001", "100")]))
        .await?;
    // Registering needs credentials; bad values name their field.
    let mut anonymous = trunk("ip", &[]);
    anonymous.username = None;
    let refused = trunks.put("ACME", anonymous.clone()).await;
    assert_eq!(field_of(refused.err().ok_or("accepted")?), "register");
    anonymous.register = false;
    trunks.put("ACME", anonymous).await?;
    let bad = trunks.put("ACME", trunk("Bad Name", &[])).await;
    assert_eq!(field_of(bad.err().ok_or("accepted")?), "name");

    let listed = trunks.list("ACME").await?;
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["carrier", "ip"]
    );
    assert_eq!(listed[0].dids[0].destination, "101");
    assert!(!format!("{listed:?}").contains("carrier-secret"));
    // Put replaces by name; remove removes.
    trunks
        .put("ACME", trunk("carrier", &[("+33140000002", "102")]))
        .await?;
    assert_eq!(trunks.list("ACME").await?[0].dids[0].number, "+33140000002");
    trunks.remove("ACME", "ip").await?;
    assert_eq!(trunks.all().await?.len(), 2);
    store.close().await?;
    Ok(())
}
