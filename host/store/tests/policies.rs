//! Policy modules and the policies' key-value store against a real
//! embedded SurrealDB.

use edgepbx_store::{DbSpec, MAX_POLICY_VERSIONS, Store, StoreConfig, StoreError};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn hash(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_activation_and_deactivation() -> TestResult {
    let dir = TempDir::new("versions");
    let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0))).await?;
    store.tenants().add("ACME", "acme.example").await?;
    store.tenants().add("GLOBEX", "globex.example").await?;
    let policies = store.policies();

    let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let v1 = policies
        .upload("acme", vec![0, 97, 115, 109], &hash(1), "alice")
        .await?;
    assert_eq!((v1.version, v1.size, v1.active), (1, 4, false));
    assert_eq!(
        (v1.uploader.as_str(), v1.hash.as_str()),
        ("alice", hash(1).as_str())
    );
    // When it was uploaded, by the database's clock (this machine's).
    let after = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    assert!(
        (before..after).contains(&v1.uploaded_at),
        "{:?}",
        v1.uploaded_at
    );
    let v2 = policies
        .upload("ACME", vec![1; 10], &hash(2), "bob")
        .await?;
    assert_eq!(v2.version, 2);
    // Another tenant counts its own versions, even for the same bytes.
    let other = policies
        .upload("GLOBEX", vec![1; 10], &hash(2), "carol")
        .await?;
    assert_eq!(other.version, 1);

    // The same module twice is refused and names the version.
    match policies.upload("ACME", vec![1; 10], &hash(2), "bob").await {
        Err(StoreError::Conflict { what }) => assert!(what.contains("version 2"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        policies.upload("NOPE", vec![1], &hash(3), "x").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        policies.upload("ACME", vec![1], "xyz", "x").await,
        Err(StoreError::InvalidField { .. })
    ));

    policies.activate("ACME", 1).await?;
    policies.activate("ACME", 2).await?;
    let listed = policies.list("ACME").await?;
    assert_eq!(
        listed
            .iter()
            .map(|m| (m.version, m.active))
            .collect::<Vec<_>>(),
        [(1, false), (2, true)]
    );
    let module = policies.get("ACME", 1).await?.ok_or("version 1")?;
    assert_eq!(module.wasm, vec![0, 97, 115, 109]);
    assert!(matches!(
        policies.activate("ACME", 9).await,
        Err(StoreError::NotFound { .. })
    ));

    // The runtime takes version 2 out of service; the reason is kept, and
    // restoring version 1 is activating it.
    policies
        .deactivate("ACME", 2, Some("5 faults within 600 s"))
        .await?;
    let v2 = policies.info("ACME", 2).await?.ok_or("version 2")?;
    assert!(!v2.active);
    assert_eq!(
        v2.deactivated_reason.as_deref(),
        Some("5 faults within 600 s")
    );
    assert!(store.policies().all_active().await?.is_empty());
    policies.activate("ACME", 1).await?;
    policies.activate("GLOBEX", 1).await?;
    let mut active: Vec<_> = policies
        .all_active()
        .await?
        .into_iter()
        .map(|m| (m.info.tenant, m.info.version))
        .collect();
    active.sort();
    assert_eq!(active, [("ACME".to_owned(), 1), ("GLOBEX".to_owned(), 1)]);
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_limited() -> TestResult {
    let dir = TempDir::new("limit");
    let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0))).await?;
    store.tenants().add("ACME", "acme.example").await?;
    for n in 0..MAX_POLICY_VERSIONS {
        let n = u8::try_from(n)?;
        store
            .policies()
            .upload("ACME", vec![n], &hash(n), "ci")
            .await?;
    }
    assert!(matches!(
        store
            .policies()
            .upload("ACME", vec![255], &hash(255), "ci")
            .await,
        Err(StoreError::LimitReached {
            what: "policy versions",
            ..
        })
    ));
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_entries_are_per_tenant_and_survive_a_reopen() -> TestResult {
    let dir = TempDir::new("kv");
    let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0))).await?;
    store.tenants().add("ACME", "acme.example").await?;
    store.tenants().add("GLOBEX", "globex.example").await?;
    let policies = store.policies();
    policies
        .write_kv(
            "ACME",
            vec![
                ("turn".into(), Some("3".into())),
                ("gone".into(), Some("x".into())),
            ],
        )
        .await?;
    policies
        .write_kv("GLOBEX", vec![("turn".into(), Some("9".into()))])
        .await?;
    policies
        .write_kv(
            "ACME",
            vec![("gone".into(), None), ("turn".into(), Some("4".into()))],
        )
        .await?;
    store.close().await?;

    let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0))).await?;
    let acme = store.policies().kv("ACME").await?;
    assert_eq!(
        acme.into_iter().collect::<Vec<_>>(),
        [("turn".to_owned(), "4".to_owned())]
    );
    let globex = store.policies().kv("GLOBEX").await?;
    assert_eq!(globex.get("turn").map(String::as_str), Some("9"));
    store.close().await?;
    Ok(())
}
