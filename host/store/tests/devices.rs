//! Desk phones and the tenant's provisioning credential against a real
//! embedded SurrealDB: per-tenant names, checks, versions, fetches kept,
//! and an extension taking its phones with it.

use std::time::{Duration, SystemTime};

use edgepbx_store::{
    BlfKey, CallSettings, DbSpec, Device, ExtensionWrite, Fetch, KEPT_FETCHES, Mac, Profile,
    SipCredentials, Store, StoreConfig, StoreError, Vendor, WriteMode,
};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &std::path::Path) -> Result<Store, StoreError> {
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

fn phone() -> Result<Device, Box<dyn std::error::Error>> {
    Ok(Device {
        mac: "80:5E:C0:12:34:56".parse::<Mac>()?,
        vendor: Vendor::Yealink,
        model: Some("T46U".into()),
        extension: "100".into(),
        line: 1,
        blf_keys: vec![BlfKey::new("101", "Bob")?, BlfKey::new("*97", "")?],
        label: Some("Reception".into()),
        updated_at: SystemTime::UNIX_EPOCH,
    })
}

#[tokio::test]
async fn phones_are_per_tenant_and_checked() -> TestResult {
    let dir = TempDir::new("devices");
    let store = open(&dir.0).await?;
    let devices = store.devices();
    let desk = phone()?;
    let added = devices.add("ACME", desk.clone()).await?;
    assert_ne!(added.updated_at, SystemTime::UNIX_EPOCH);
    assert_eq!(
        added,
        Device {
            updated_at: added.updated_at,
            ..desk.clone()
        }
    );
    assert_eq!(devices.get("ACME", &desk.mac).await?, Some(added.clone()));
    assert!(matches!(
        devices.add("ACME", desk.clone()).await,
        Err(StoreError::Conflict { .. })
    ));
    // Another tenant sees nothing of it and may not touch it.
    assert!(devices.get("BETA", &desk.mac).await?.is_none());
    assert!(devices.list("BETA", None).await?.is_empty());
    assert!(matches!(
        devices.remove("BETA", &desk.mac, None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        devices.replace("BETA", desk.clone(), None).await,
        Err(StoreError::NotFound { .. })
    ));
    // An extension that does not exist, a line out of range: refused.
    let mut bad = desk.clone();
    bad.extension = "555".into();
    assert!(matches!(
        devices.replace("ACME", bad, None).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut bad = desk.clone();
    bad.line = 0;
    assert!(matches!(
        devices.replace("ACME", bad, None).await,
        Err(StoreError::InvalidField { field: "line", .. })
    ));
    let mut bad = desk.clone();
    bad.label = Some("two\nlines".into());
    assert!(matches!(
        devices.replace("ACME", bad, None).await,
        Err(StoreError::InvalidField { field: "label", .. })
    ));
    // A replacement against the version read applies once.
    let moved = devices
        .replace(
            "ACME",
            Device {
                extension: "101".into(),
                ..desk.clone()
            },
            Some(added.updated_at),
        )
        .await?;
    assert!(matches!(
        devices
            .replace("ACME", desk.clone(), Some(added.updated_at))
            .await,
        Err(StoreError::Changed { .. })
    ));
    assert_eq!(
        devices.list("ACME", Some("101")).await?,
        vec![moved.clone()]
    );
    assert!(devices.list("ACME", Some("100")).await?.is_empty());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn fetches_are_kept_newest_first_and_leave_the_version_alone() -> TestResult {
    let dir = TempDir::new("device-fetches");
    let store = open(&dir.0).await?;
    let devices = store.devices();
    let desk = devices.add("ACME", phone()?).await?;
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    for i in 0..(KEPT_FETCHES as u64 + 5) {
        devices
            .record_fetch(
                "ACME",
                &desk.mac,
                Fetch {
                    file: format!("805ec0123456.cfg#{i}"),
                    address: "192.0.2.7".into(),
                    user_agent: Some("Yealink SIP-T46U 108.86.0.20 80:5e:c0:12:34:56".into()),
                    at: start + Duration::from_secs(i),
                },
            )
            .await?;
    }
    let fetches = devices.fetches("ACME", &desk.mac).await?;
    assert_eq!(fetches.len(), KEPT_FETCHES);
    assert_eq!(
        fetches[0].file,
        format!("805ec0123456.cfg#{}", KEPT_FETCHES + 4)
    );
    assert_eq!(
        fetches[0].at,
        start + Duration::from_secs(KEPT_FETCHES as u64 + 4)
    );
    assert!(devices.fetches("BETA", &desk.mac).await?.is_empty());
    assert_eq!(
        devices.get("ACME", &desk.mac).await?.map(|d| d.updated_at),
        Some(desk.updated_at)
    );
    // Removing the extension removes its phones and what they fetched.
    store.extensions().remove("ACME", "100", None).await?;
    assert!(devices.get("ACME", &desk.mac).await?.is_none());
    assert!(devices.fetches("ACME", &desk.mac).await?.is_empty());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn many_phones_are_written_all_or_none() -> TestResult {
    let dir = TempDir::new("device-batch");
    let store = open(&dir.0).await?;
    let devices = store.devices();
    let existing = devices.add("ACME", phone()?).await?;
    let other = Device {
        mac: "000b82abcdef".parse()?,
        vendor: Vendor::Grandstream,
        model: None,
        extension: "101".into(),
        line: 1,
        blf_keys: Vec::new(),
        label: None,
        updated_at: SystemTime::UNIX_EPOCH,
    };
    // One names an extension that does not exist: nothing is written.
    let moved = Device {
        extension: "101".into(),
        ..existing.clone()
    };
    let lost = Device {
        extension: "555".into(),
        ..other.clone()
    };
    assert!(matches!(
        devices.put_all("ACME", &[moved.clone(), lost]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(devices.list("ACME", None).await?, vec![existing.clone()]);
    // All valid: the new one added, the existing one replaced.
    devices.put_all("ACME", &[moved, other.clone()]).await?;
    let listed = devices.list("ACME", None).await?;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.extension == "101"));
    assert!(devices.list("BETA", None).await?.is_empty());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_tenants_provisioning_secret_is_its_own() -> TestResult {
    let dir = TempDir::new("provisioning-secret");
    let store = open(&dir.0).await?;
    let tenants = store.tenants();
    assert_eq!(tenants.provisioning_secret("ACME").await?, None);
    let digest = "ab".repeat(32);
    tenants
        .set_provisioning_secret("ACME", Some(digest.clone()))
        .await?;
    assert_eq!(tenants.provisioning_secret("ACME").await?, Some(digest));
    assert_eq!(tenants.provisioning_secret("BETA").await?, None);
    assert_eq!(tenants.provisioning_secret("NOPE").await?, None);
    assert!(matches!(
        tenants
            .set_provisioning_secret("ACME", Some("password".into()))
            .await,
        Err(StoreError::InvalidField { .. })
    ));
    assert!(matches!(
        tenants.set_provisioning_secret("NOPE", None).await,
        Err(StoreError::NotFound { .. })
    ));
    tenants.set_provisioning_secret("ACME", None).await?;
    assert_eq!(tenants.provisioning_secret("ACME").await?, None);
    store.close().await?;
    Ok(())
}
