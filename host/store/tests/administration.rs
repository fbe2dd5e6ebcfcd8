//! Console users, API keys, sessions, the audit trail, contacts and
//! all-or-nothing extension writes against a real embedded SurrealDB.

use std::path::Path;
use std::time::{Duration, SystemTime};

use edgepbx_store::{
    AuditEntry, CallSettings, Contact, DbSpec, ExtensionWrite, Profile, Role, SipCredentials,
    Store, StoreConfig, StoreError, TenantFeatures, TenantLimits, WriteMode,
};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

async fn open(dir: &Path) -> Result<Store, StoreError> {
    let store = Store::open(StoreConfig::new(DbSpec::embedded(dir))).await?;
    store.tenants().add("ACME", "acme.test").await?;
    store.tenants().add("BETA", "beta.test").await?;
    Ok(store)
}

fn write(number: &str, aliases: &[&str], mode: WriteMode) -> ExtensionWrite {
    ExtensionWrite {
        mode,
        number: number.into(),
        name: format!("Ext {number}"),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        credentials: Some(SipCredentials::default()),
        settings: CallSettings::default(),
        profile: Profile::default(),
        if_version: None,
        users: None,
    }
}

#[tokio::test]
async fn users_keys_sessions_and_audit() -> TestResult {
    let dir = TempDir::new("access");
    let store = open(&dir.0).await?;
    let access = store.access();
    access
        .add_user("Root@Example.test", HASH, Role::SystemAdmin, None, None)
        .await?;
    let admin = access
        .add_user(
            "admin@acme.test",
            HASH,
            Role::TenantAdmin,
            Some("acme"),
            None,
        )
        .await?;
    assert_eq!(admin.tenant.as_deref(), Some("ACME"));
    assert!(matches!(
        access
            .add_user("admin@acme.test", HASH, Role::ReadOnly, Some("ACME"), None)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        access
            .add_user("x@acme.test", HASH, Role::TenantAdmin, None, None)
            .await,
        Err(StoreError::InvalidField {
            field: "tenant",
            ..
        })
    ));
    assert!(matches!(
        access
            .add_user("x@acme.test", "plain", Role::ReadOnly, Some("ACME"), None)
            .await,
        Err(StoreError::InvalidField {
            field: "password_hash",
            ..
        })
    ));
    assert_eq!(
        access.user("root@example.test").await?.map(|u| u.role),
        Some(Role::SystemAdmin)
    );
    assert_eq!(access.users(Some("ACME")).await?.len(), 1);
    assert_eq!(access.users(None).await?.len(), 2);

    // Sessions: found while unexpired, ended by a password change.
    let token = "a".repeat(64);
    access
        .open_session(
            &token,
            "admin@acme.test",
            SystemTime::now() + Duration::from_secs(60),
        )
        .await?;
    assert_eq!(
        access.session_user(&token).await?.map(|u| u.email),
        Some("admin@acme.test".to_owned())
    );
    let old = "b".repeat(64);
    access
        .open_session(
            &old,
            "admin@acme.test",
            SystemTime::now() - Duration::from_secs(1),
        )
        .await?;
    assert!(access.session_user(&old).await?.is_none());
    assert!(access.session_user("not hex").await?.is_none());
    access.set_user_password("admin@acme.test", HASH).await?;
    assert!(access.session_user(&token).await?.is_none());

    // Keys are per tenant; revoking another tenant's is "not found".
    let key = access
        .add_key("ACME", "abc123", "deploy", &"c".repeat(64), true)
        .await?;
    assert!(key.read_only && key.last_used_at.is_none());
    access.touch_key("abc123", SystemTime::now()).await?;
    assert!(
        access
            .key("abc123")
            .await?
            .and_then(|k| k.last_used_at)
            .is_some()
    );
    assert!(access.keys("BETA").await?.is_empty());
    assert!(matches!(
        access.revoke_key("BETA", "abc123").await,
        Err(StoreError::NotFound { .. })
    ));
    access.revoke_key("ACME", "abc123").await?;
    assert!(access.key("abc123").await?.is_none());

    access
        .audit(AuditEntry {
            tenant: "ACME".into(),
            at: SystemTime::now(),
            actor: "admin@acme.test".into(),
            action: "reveal-password".into(),
            target: "extension 100".into(),
        })
        .await?;
    assert_eq!(access.audit_trail("ACME", 10).await?.len(), 1);
    assert!(access.audit_trail("BETA", 10).await?.is_empty());

    // Removing a tenant removes its users and keys.
    access
        .add_key("BETA", "beta1", "k", &"d".repeat(64), false)
        .await?;
    access
        .add_user("b@beta.test", HASH, Role::ReadOnly, Some("BETA"), None)
        .await?;
    store.tenants().remove("BETA").await?;
    assert!(access.key("beta1").await?.is_none());
    assert!(access.user("b@beta.test").await?.is_none());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn extension_writes_are_all_or_nothing() -> TestResult {
    let dir = TempDir::new("put");
    let store = open(&dir.0).await?;
    let ext = store.extensions();
    ext.put(
        "ACME",
        vec![
            write("100", &["boss"], WriteMode::Create),
            write("101", &[], WriteMode::Upsert),
        ],
    )
    .await?;
    assert_eq!(ext.list("ACME").await?.len(), 2);
    // A batch with one conflict writes nothing, not even its valid rows.
    let err = ext
        .put(
            "ACME",
            vec![
                write("102", &[], WriteMode::Create),
                write("103", &["boss"], WriteMode::Create),
            ],
        )
        .await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
    assert_eq!(ext.list("ACME").await?.len(), 2);
    assert!(matches!(
        ext.put("ACME", vec![write("100", &[], WriteMode::Create)])
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        ext.put("ACME", vec![write("199", &[], WriteMode::Update)])
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // An update frees aliases no longer listed and keeps credentials.
    let mut update = write("100", &["chief"], WriteMode::Update);
    update.credentials = None;
    update.profile.department = Some("Board".into());
    ext.put("ACME", vec![update]).await?;
    assert_eq!(
        ext.resolve("ACME", "chief").await?.map(|e| e.number),
        Some("100".into())
    );
    assert!(ext.resolve("ACME", "boss").await?.is_none());
    ext.put("ACME", vec![write("101", &["boss"], WriteMode::Update)])
        .await?;
    let e = ext.get("ACME", "100").await?.ok_or("100 exists")?;
    assert_eq!(e.profile.department.as_deref(), Some("Board"));
    // Another tenant's names are its own.
    ext.put("BETA", vec![write("100", &["boss"], WriteMode::Create)])
        .await?;
    // A group's number is taken for extensions.
    store
        .groups()
        .add(
            "ACME",
            edgepbx_store::Group {
                tenant: String::new(),
                number: "600".into(),
                name: "Sales".into(),
                kind: edgepbx_store::GroupKind::Ring,
                strategy: edgepbx_store::GroupStrategy::RingAll,
                members: vec!["100".into()],
                ring_timeout_secs: 20,
                no_answer: None,
                updated_at: SystemTime::UNIX_EPOCH,
            },
        )
        .await?;
    assert!(matches!(
        ext.put("ACME", vec![write("600", &[], WriteMode::Upsert)])
            .await,
        Err(StoreError::Conflict { .. })
    ));
    // A binding limit of 0 would lock every device out: refused.
    assert!(matches!(
        store
            .tenants()
            .set_limits(
                "ACME",
                TenantLimits {
                    max_bindings_per_extension: Some(0),
                    ..TenantLimits::default()
                },
            )
            .await,
        Err(StoreError::InvalidField {
            field: "max_bindings_per_extension",
            ..
        })
    ));
    // The extension limit counts the whole batch.
    store
        .tenants()
        .set_limits(
            "ACME",
            TenantLimits {
                max_extensions: Some(3),
                ..TenantLimits::default()
            },
        )
        .await?;
    assert!(matches!(
        ext.put(
            "ACME",
            vec![
                write("102", &[], WriteMode::Create),
                write("104", &[], WriteMode::Create)
            ]
        )
        .await,
        Err(StoreError::LimitReached { .. })
    ));
    assert_eq!(ext.list("ACME").await?.len(), 2);
    store.close().await?;
    Ok(())
}

/// A write or removal that names the version it read fails, writing
/// nothing, once somebody else changed the extension; with the current
/// version it goes through.
#[tokio::test]
async fn conditional_writes_lose_no_change() -> TestResult {
    let dir = TempDir::new("conditional");
    let store = open(&dir.0).await?;
    let ext = store.extensions();
    ext.put("ACME", vec![write("100", &[], WriteMode::Create)])
        .await?;
    let read = ext.get("ACME", "100").await?.ok_or("100 exists")?;

    // Somebody else renames it.
    let mut theirs = write("100", &[], WriteMode::Update);
    theirs.name = "Theirs".into();
    ext.put("ACME", vec![theirs]).await?;
    let now = ext.get("ACME", "100").await?.ok_or("100 exists")?;
    assert_ne!(now.updated_at, read.updated_at);

    // A change based on the old read is refused, in a batch too.
    let mut mine = write("100", &["mine"], WriteMode::Update);
    mine.name = "Mine".into();
    mine.if_version = Some(read.updated_at);
    assert!(matches!(
        ext.put("ACME", vec![write("101", &[], WriteMode::Create), mine])
            .await,
        Err(StoreError::Changed { .. })
    ));
    assert!(matches!(
        ext.remove("ACME", "100", Some(read.updated_at)).await,
        Err(StoreError::Changed { .. })
    ));
    let kept = ext.get("ACME", "100").await?.ok_or("100 is kept")?;
    assert_eq!((kept.name.as_str(), kept.aliases.len()), ("Theirs", 0));
    assert!(ext.get("ACME", "101").await?.is_none());

    // Based on the current version, both go through.
    let mut mine = write("100", &["mine"], WriteMode::Update);
    mine.if_version = Some(now.updated_at);
    ext.put("ACME", vec![mine]).await?;
    let changed = ext.get("ACME", "100").await?.ok_or("100 exists")?;
    assert_eq!(changed.aliases, vec!["mine".to_owned()]);
    ext.remove("ACME", "100", Some(changed.updated_at)).await?;
    assert!(ext.get("ACME", "100").await?.is_none());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn contacts_are_per_tenant_and_follow_their_extension() -> TestResult {
    let dir = TempDir::new("contacts");
    let store = open(&dir.0).await?;
    store
        .extensions()
        .put("ACME", vec![write("100", &[], WriteMode::Create)])
        .await?;
    let contacts = store.contacts();
    let plumber = Contact {
        id: "plumber".into(),
        name: "Plumber".into(),
        number: "+15550199".into(),
        email: None,
        company: Some("Pipes".into()),
        extension: Some("100".into()),
        updated_at: SystemTime::UNIX_EPOCH,
    };
    let added = contacts.add("ACME", plumber.clone()).await?;
    assert_ne!(added.updated_at, SystemTime::UNIX_EPOCH);
    assert_eq!(
        added,
        Contact {
            updated_at: added.updated_at,
            ..plumber.clone()
        }
    );
    assert_eq!(contacts.get("ACME", "plumber").await?, Some(added.clone()));
    assert!(matches!(
        contacts.add("ACME", plumber.clone()).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(contacts.get("BETA", "plumber").await?.is_none());
    assert!(matches!(
        contacts.remove("BETA", "plumber", None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        contacts.replace("BETA", plumber.clone(), None).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut bad = plumber.clone();
    bad.extension = Some("555".into());
    assert!(matches!(
        contacts.replace("ACME", bad, None).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut bad = plumber.clone();
    bad.number = "call me".into();
    assert!(matches!(
        contacts.replace("ACME", bad, None).await,
        Err(StoreError::InvalidField {
            field: "number",
            ..
        })
    ));
    // A replacement against the version read applies once; a second one
    // against the same version, or a removal, is refused and writes nothing.
    let renamed = contacts
        .replace(
            "ACME",
            Contact {
                name: "Plumber Pete".into(),
                ..plumber.clone()
            },
            Some(added.updated_at),
        )
        .await?;
    assert_ne!(renamed.updated_at, added.updated_at);
    assert!(matches!(
        contacts
            .replace("ACME", plumber.clone(), Some(added.updated_at))
            .await,
        Err(StoreError::Changed { .. })
    ));
    assert!(matches!(
        contacts
            .remove("ACME", "plumber", Some(added.updated_at))
            .await,
        Err(StoreError::Changed { .. })
    ));
    assert_eq!(
        contacts.get("ACME", "plumber").await?,
        Some(renamed.clone())
    );
    // Removing the extension unlinks the contact, a change of it too.
    store.extensions().remove("ACME", "100", None).await?;
    let unlinked = contacts
        .get("ACME", "plumber")
        .await?
        .ok_or("the contact")?;
    assert_eq!(unlinked.extension, None);
    assert_ne!(unlinked.updated_at, renamed.updated_at);
    contacts
        .remove("ACME", "plumber", Some(unlinked.updated_at))
        .await?;
    assert!(contacts.list("ACME").await?.is_empty());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_tenants_features_default_and_change_with_checks() -> TestResult {
    let dir = TempDir::new("tenant-features");
    let store = open(&dir.0).await?;
    let tenants = store.tenants();
    let acme = tenants.get("ACME").await?.ok_or("missing")?;
    assert_eq!(acme.features, TenantFeatures::default());
    assert_eq!(acme.features.pickup_code, "**");
    let private = TenantFeatures {
        pickup_code: "*9".into(),
        blf_shows_caller: false,
        operator: Some("100".into()),
    };
    tenants.set_features("ACME", &private).await?;
    assert_eq!(
        tenants.get("ACME").await?.ok_or("missing")?.features,
        private
    );
    // A code an extension number could begin with is refused, unchanged.
    let bad = TenantFeatures {
        pickup_code: "9".into(),
        ..private.clone()
    };
    assert!(matches!(
        tenants.set_features("ACME", &bad).await,
        Err(StoreError::InvalidField {
            field: "pickup_code",
            ..
        })
    ));
    assert_eq!(
        tenants.get("ACME").await?.ok_or("missing")?.features,
        private
    );
    // The other tenant keeps the defaults.
    let beta = tenants.get("BETA").await?.ok_or("missing")?;
    assert_eq!(beta.features, TenantFeatures::default());
    store.close().await?;
    Ok(())
}

#[tokio::test]
async fn extension_users_belong_to_an_existing_extension_and_go_with_it() -> TestResult {
    let dir = TempDir::new("extension-users");
    let store = open(&dir.0).await?;
    store
        .extensions()
        .put("ACME", vec![write("100", &[], WriteMode::Create)])
        .await?;
    let access = store.access();
    let user = access
        .add_user(
            "ann@acme.test",
            HASH,
            Role::ExtensionUser,
            Some("ACME"),
            Some("100"),
        )
        .await?;
    assert_eq!(user.extension.as_deref(), Some("100"));
    assert_eq!(
        access.user("ann@acme.test").await?.map(|u| u.role),
        Some(Role::ExtensionUser)
    );
    // No extension, another tenant's, or one given to another role.
    for (role, tenant, extension, field) in [
        (Role::ExtensionUser, Some("ACME"), None, "extension"),
        (Role::TenantAdmin, Some("ACME"), Some("100"), "extension"),
    ] {
        let refused = access
            .add_user("x@acme.test", HASH, role, tenant, extension)
            .await;
        assert!(
            matches!(refused, Err(StoreError::InvalidField { field: f, .. }) if f == field),
            "{refused:?}"
        );
    }
    assert!(matches!(
        access
            .add_user(
                "x@beta.test",
                HASH,
                Role::ExtensionUser,
                Some("BETA"),
                Some("100")
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // Removing the extension removes its user and their sessions.
    let token = "c".repeat(64);
    access
        .open_session(
            &token,
            "ann@acme.test",
            SystemTime::now() + Duration::from_secs(60),
        )
        .await?;
    store.extensions().remove("ACME", "100", None).await?;
    assert!(access.user("ann@acme.test").await?.is_none());
    assert!(access.session_user(&token).await?.is_none());
    Ok(())
}
