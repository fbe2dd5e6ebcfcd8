//! The store against a real embedded SurrealDB (SurrealKV) in a temporary
//! directory.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use edgepbx_store::{
    BindingChange, Contact, CredentialEntry, DbSpec, EventKind, Group, GroupKind, GroupStrategy,
    NewExtension, RegistrationEvent, SipCredentials, Store, StoreConfig, StoreError, StoredBinding,
    TenantLimits, Transport,
};

mod common;

use common::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn open(dir: &Path) -> Result<Store, StoreError> {
    Store::open(StoreConfig::new(DbSpec::embedded(dir))).await
}

fn credentials(tenant: &str, number: &str) -> SipCredentials {
    let entry = |username: String| CredentialEntry {
        username,
        md5_ha1: "0".repeat(32),
        sha256_ha1: "1".repeat(64),
    };
    SipCredentials {
        entries: vec![
            entry(number.to_owned()),
            entry(format!("{number}-{tenant}")),
        ],
        sealed: None,
    }
}

fn extension(tenant: &str, number: &str, aliases: &[&str]) -> NewExtension {
    NewExtension {
        number: number.to_owned(),
        name: format!("Ext {number}"),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        credentials: credentials(tenant, number),
    }
}

fn binding(tenant: &str, number: &str, contact: &str, cseq: u32) -> StoredBinding {
    StoredBinding {
        tenant: tenant.to_owned(),
        extension: number.to_owned(),
        contact: contact.to_owned(),
        expires_at: UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        q: Some("0.5".to_owned()),
        call_id: format!("call-{cseq}@host"),
        cseq,
        instance_id: Some("<urn:uuid:00000000-0000-0000-0000-000000000001>".to_owned()),
        reg_id: Some(1),
        user_agent: Some("Yealink SIP-T46U".to_owned()),
        source: "192.0.2.10:5060".parse().expect("literal address"),
        transport: Transport::Udp,
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_data_directory_is_the_server_users_alone() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("private");
    let data = dir.0.join("data");
    let store = open(&data).await?;
    store.close().await?;
    assert_eq!(
        std::fs::metadata(&data)?.permissions().mode() & 0o777,
        0o700
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_reopen_keeps_data_and_key() -> TestResult {
    let dir = TempDir::new("reopen");
    let store = open(&dir.0).await?;
    let key = store.server_key();
    assert_ne!(key, [0u8; 32]);
    store.tenants().add("acme", "pbx.acme.example").await?;
    store.close().await?;

    // Reopening must not run migration 1 again (its DEFINEs would fail).
    let store = open(&dir.0).await?;
    assert_eq!(store.server_key(), key, "server key is created once");
    let tenant = store
        .tenants()
        .get("ACME")
        .await?
        .ok_or("tenant survives reopen")?;
    assert_eq!(tenant.sip_domain, "pbx.acme.example");
    store.close().await?;

    let store = open(&dir.0).await?;
    assert_eq!(store.tenants().list().await?.len(), 1);
    store.close().await?;
    Ok(())
}

/// A database from before groups and contacts had versions (schema 7,
/// with a group and a contact): migration 8 gives them one, and
/// conditional writes work on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_and_contacts_stored_before_versions_get_one() -> TestResult {
    let dir = TempDir::new("group-migration");
    let store = open(&dir.0).await?;
    store.tenants().add("acme", "pbx.acme.example").await?;
    store
        .extensions()
        .add("ACME", extension("ACME", "100", &[]))
        .await?;
    let group = Group {
        tenant: "ACME".into(),
        number: "600".into(),
        name: "Sales".into(),
        kind: GroupKind::Ring,
        strategy: GroupStrategy::Hunt,
        members: vec!["100".into()],
        ring_timeout_secs: 20,
        no_answer: None,
        updated_at: UNIX_EPOCH,
    };
    store.groups().add("ACME", group.clone()).await?;
    let contact = Contact {
        id: "plumber".into(),
        name: "Plumber".into(),
        number: "+15550199".into(),
        email: None,
        company: None,
        extension: None,
        updated_at: UNIX_EPOCH,
    };
    store.contacts().add("ACME", contact.clone()).await?;
    store.close().await?;

    // Back to schema 7: no version fields, no versions.
    {
        let endpoint = format!("surrealkv://{}", dir.0.display());
        let db = surrealdb::engine::any::connect(endpoint).await?;
        db.use_ns("edgepbx").use_db("main").await?;
        db.query(
            "REMOVE FIELD updated_at ON ring_group;
            UPDATE ring_group UNSET updated_at;
            REMOVE FIELD updated_at ON contact;
            UPDATE contact UNSET updated_at;
            DELETE migration:8;
            REMOVE FIELD features.pickup_code ON tenant;
            REMOVE FIELD features.blf_shows_caller ON tenant;
            REMOVE FIELD features ON tenant;
            UPDATE tenant UNSET features;
            DELETE migration:9;
            REMOVE FIELD settings.away ON extension;
            DELETE migration:10;
            REMOVE TABLE device;
            REMOVE TABLE provisioning_fetch;
            REMOVE FIELD provisioning_secret ON tenant;
            DELETE migration:11;
            REMOVE TABLE voicemail_message;
            DELETE migration:12;
            REMOVE FIELD profile.voicemail_attach ON extension;
            REMOVE FIELD profile.voicemail_delete_after_email ON extension;
            REMOVE FIELD profile.voicemail_skip_pin ON extension;
            REMOVE TABLE mailbox_lock;
            REMOVE FIELD features.operator ON tenant;
            DELETE migration:13;
            REMOVE INDEX console_user_extension ON console_user;
            REMOVE FIELD extension ON console_user;
            DELETE migration:14;
            UPDATE server_secret UNSET sealing_key_id;
            REMOVE FIELD sealing_key_id ON server_secret;
            DELETE migration:15;
            REMOVE INDEX registration_event_age ON registration_event;
            REMOVE INDEX call_record_age ON call_record;
            REMOVE INDEX audit_age ON audit;
            UPDATE audit UNSET at_ns;
            REMOVE FIELD at_ns ON audit;
            DELETE migration:16;",
        )
        .await?
        .check()?;
    }

    let store = open(&dir.0).await?;
    let migrated = store
        .groups()
        .get("ACME", "600")
        .await?
        .ok_or("the group")?;
    assert!(migrated.updated_at > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let replaced = store
        .groups()
        .replace(
            "ACME",
            Group {
                name: "Sales team".into(),
                ..group
            },
            Some(migrated.updated_at),
        )
        .await?;
    assert_eq!(replaced.name, "Sales team");
    let migrated = store
        .contacts()
        .get("ACME", "plumber")
        .await?
        .ok_or("the contact")?;
    assert!(migrated.updated_at > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    store
        .contacts()
        .remove("ACME", "plumber", Some(migrated.updated_at))
        .await?;
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_a_newer_edgepbx_is_refused() -> TestResult {
    let dir = TempDir::new("newer");
    open(&dir.0).await?.close().await?;

    // What a future edgepbx would leave behind: a migration we do not know.
    {
        let endpoint = format!("surrealkv://{}", dir.0.display());
        let db = surrealdb::engine::any::connect(endpoint).await?;
        db.use_ns("edgepbx").use_db("main").await?;
        db.query("CREATE migration:99 SET version = 99, name = 'from the future'")
            .await?
            .check()?;
    }

    // `open` waits for the dropped connection's engine to let go of the directory.
    match open(&dir.0).await {
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported,
        }) => {
            assert_eq!(supported, edgepbx_store::SCHEMA_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_directory_is_locked() -> TestResult {
    let dir = TempDir::new("locked");
    let first = open(&dir.0).await?;
    match open(&dir.0).await {
        Err(StoreError::Locked { path, pid }) => {
            assert!(path.ends_with(dir.0.file_name().ok_or("named dir")?));
            assert_eq!(pid, Some(std::process::id()));
            let message = StoreError::Locked { path, pid }.to_string();
            assert!(
                message.contains("in use by another edgepbx process"),
                "{message}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    // The first store is unharmed, and the directory opens again once it is closed.
    first.tenants().add("ACME", "acme.example").await?;
    first.close().await?;
    let again = open(&dir.0).await?;
    assert!(again.tenants().get("ACME").await?.is_some());
    again.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_add_get_by_domain_and_conflicts() -> TestResult {
    let dir = TempDir::new("tenants");
    let store = open(&dir.0).await?;
    let tenants = store.tenants();

    let acme = tenants.add("acme", "PBX.Acme.Example").await?;
    assert_eq!(acme.code, "ACME");
    assert_eq!(acme.sip_domain, "pbx.acme.example");
    assert_eq!(acme.limits, TenantLimits::default());
    tenants.add("BETA2", "beta.example").await?;

    assert_eq!(
        tenants.get("acme").await?.map(|t| t.code),
        Some("ACME".to_owned())
    );
    assert!(tenants.get("NOPE").await?.is_none());
    assert_eq!(
        tenants.by_domain("pbx.ACME.example").await?.map(|t| t.code),
        Some("ACME".to_owned())
    );
    assert!(tenants.by_domain("other.example").await?.is_none());
    let codes: Vec<_> = tenants.list().await?.into_iter().map(|t| t.code).collect();
    assert_eq!(codes, ["ACME", "BETA2"]);

    assert!(matches!(
        tenants.add("ACME", "x.example").await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        tenants.add("GAMMA", "beta.example").await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        tenants.add("A", "a.example").await,
        Err(StoreError::InvalidField {
            field: "tenant code",
            ..
        })
    ));
    assert!(matches!(
        tenants.add("GAMMA", "bad domain").await,
        Err(StoreError::InvalidField {
            field: "sip_domain",
            ..
        })
    ));

    tenants.remove("BETA2").await?;
    assert!(tenants.get("BETA2").await?.is_none());
    assert!(matches!(
        tenants.remove("BETA2").await,
        Err(StoreError::NotFound { .. })
    ));
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extensions_add_list_resolve_and_reject_bad_input() -> TestResult {
    let dir = TempDir::new("extensions");
    let store = open(&dir.0).await?;
    store.tenants().add("ACME", "acme.example").await?;
    let ext = store.extensions();

    let added = ext
        .add("acme", extension("ACME", "100", &["Sales", "+4930100"]))
        .await?;
    assert_eq!(added.tenant, "ACME");
    assert_eq!(added.aliases, ["sales", "+4930100"]);
    assert_eq!(added.credentials, credentials("ACME", "100"));
    ext.add("ACME", extension("ACME", "20", &[])).await?;
    ext.add("ACME", extension("ACME", "101", &["support"]))
        .await?;

    let numbers: Vec<_> = ext
        .list("ACME")
        .await?
        .into_iter()
        .map(|e| e.number)
        .collect();
    assert_eq!(numbers, ["20", "100", "101"]);

    assert_eq!(
        ext.resolve("ACME", "sales").await?.map(|e| e.number),
        Some("100".to_owned())
    );
    assert_eq!(
        ext.resolve("ACME", "SUPPORT").await?.map(|e| e.number),
        Some("101".to_owned())
    );
    assert_eq!(
        ext.resolve("ACME", "101").await?.map(|e| e.number),
        Some("101".to_owned())
    );
    assert!(ext.resolve("ACME", "nobody").await?.is_none());
    assert!(ext.resolve("ACME", "not a name!").await?.is_none());

    // Numbers and aliases share one namespace per tenant.
    for clash in [
        extension("ACME", "100", &[]),
        extension("ACME", "102", &["sales"]),
        extension("ACME", "102", &["101"]),
        extension("ACME", "sales", &[]),
    ] {
        let result = ext.add("ACME", clash.clone()).await;
        match (clash.number.as_str(), result) {
            (
                "sales",
                Err(StoreError::InvalidField {
                    field: "number", ..
                }),
            ) => {}
            (_, Err(StoreError::Conflict { what })) => assert!(what.contains("ACME"), "{what}"),
            (_, other) => panic!("{clash:?}: expected a conflict, got {other:?}"),
        }
    }
    // A failed add leaves nothing behind.
    assert!(ext.get("ACME", "102").await?.is_none());
    assert!(ext.resolve("ACME", "102").await?.is_none());

    let invalid = |field: &'static str, result: Result<_, StoreError>| match result {
        Err(StoreError::InvalidField { field: f, .. }) if f == field => {}
        other => panic!("expected invalid {field}, got {other:?}"),
    };
    invalid(
        "number",
        ext.add("ACME", extension("ACME", "1234567890123456", &[]))
            .await,
    );
    let mut long_name = extension("ACME", "103", &[]);
    long_name.name = "x".repeat(101);
    invalid("name", ext.add("ACME", long_name).await);
    invalid(
        "aliases",
        ext.add("ACME", extension("ACME", "103", &["two words"]))
            .await,
    );
    invalid(
        "aliases",
        ext.add("ACME", extension("ACME", "103", &["x", "X"])).await,
    );
    let mut foreign = extension("ACME", "103", &[]);
    foreign.credentials = credentials("ACME", "999");
    invalid("credentials", ext.add("ACME", foreign).await);
    assert!(matches!(
        ext.add("NOPE", extension("NOPE", "100", &[])).await,
        Err(StoreError::NotFound { .. })
    ));

    // Credentials change; a removed extension frees its number and aliases.
    let mut creds = credentials("ACME", "100");
    creds.entries[0].md5_ha1 = "f".repeat(32);
    ext.set_credentials("ACME", "100", creds.clone()).await?;
    assert_eq!(
        ext.get("ACME", "100").await?.map(|e| e.credentials),
        Some(creds)
    );
    ext.remove("ACME", "100", None).await?;
    assert!(ext.resolve("ACME", "sales").await?.is_none());
    ext.add("ACME", extension("ACME", "102", &["sales"]))
        .await?;
    assert!(matches!(
        ext.remove("ACME", "100", None).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        ext.set_credentials("ACME", "100", credentials("ACME", "100"))
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let all = ext.all().await?;
    assert_eq!(all.len(), 1);
    let (tenant, list) = &all[0];
    assert_eq!(tenant.code, "ACME");
    let numbers: Vec<_> = list.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, ["20", "101", "102"]);
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_extensions_is_enforced() -> TestResult {
    let dir = TempDir::new("limits");
    let store = open(&dir.0).await?;
    store.tenants().add("ACME", "acme.example").await?;
    let limits = TenantLimits {
        max_extensions: Some(1),
        max_bindings_per_extension: Some(4),
        max_calls: Some(2),
    };
    store.tenants().set_limits("ACME", limits).await?;
    assert_eq!(
        store.tenants().get("ACME").await?.map(|t| t.limits),
        Some(limits)
    );
    store
        .extensions()
        .add("ACME", extension("ACME", "100", &[]))
        .await?;
    assert!(matches!(
        store
            .extensions()
            .add("ACME", extension("ACME", "101", &[]))
            .await,
        Err(StoreError::LimitReached {
            what: "extensions",
            limit: 1
        })
    ));
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() -> TestResult {
    let dir = TempDir::new("isolation");
    let store = open(&dir.0).await?;
    store.tenants().add("AAA", "a.example").await?;
    store.tenants().add("BBB", "b.example").await?;
    let ext = store.extensions();

    // The same number and alias in two tenants is fine.
    let mut a100 = extension("AAA", "100", &["reception"]);
    a100.name = "Alice".to_owned();
    ext.add("AAA", a100).await?;
    ext.add("BBB", extension("BBB", "100", &["reception"]))
        .await?;
    ext.add("AAA", extension("AAA", "200", &["boss"])).await?;

    assert_eq!(
        ext.get("BBB", "100").await?.map(|e| e.name),
        Some("Ext 100".to_owned())
    );
    assert!(
        ext.get("BBB", "200").await?.is_none(),
        "B cannot see A's 200"
    );
    assert!(
        ext.resolve("BBB", "boss").await?.is_none(),
        "B cannot resolve A's alias"
    );
    assert!(ext.list("BBB").await?.iter().all(|e| e.tenant == "BBB"));
    assert!(matches!(
        ext.remove("BBB", "200", None).await,
        Err(StoreError::NotFound { .. })
    ));

    // Removing B's 100 leaves A's 100, its alias and its bindings alone.
    store
        .bindings()
        .apply(vec![
            BindingChange::Upsert(binding("AAA", "100", "sip:100@192.0.2.10:5060", 1)),
            BindingChange::Upsert(binding("BBB", "100", "sip:100@192.0.2.10:5060", 1)),
        ])
        .await?;
    ext.remove("BBB", "100", None).await?;
    assert_eq!(
        ext.get("AAA", "100").await?.map(|e| e.name),
        Some("Alice".to_owned())
    );
    assert_eq!(
        ext.resolve("AAA", "reception").await?.map(|e| e.tenant),
        Some("AAA".to_owned())
    );
    let left = store.bindings().load_all().await?;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].tenant, "AAA");
    assert!(store.bindings().list("BBB").await?.is_empty());

    // Removing a tenant takes everything it owns, and only that.
    store.tenants().remove("AAA").await?;
    assert!(store.bindings().load_all().await?.is_empty());
    let all = ext.all().await?;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0.code, "BBB");
    assert!(all[0].1.is_empty());
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_are_applied_in_order_and_survive_reopen() -> TestResult {
    let dir = TempDir::new("bindings");
    let store = open(&dir.0).await?;
    store.tenants().add("ACME", "acme.example").await?;
    store
        .extensions()
        .add("ACME", extension("ACME", "100", &[]))
        .await?;
    store
        .extensions()
        .add("ACME", extension("ACME", "101", &[]))
        .await?;

    let desk = "sip:100@192.0.2.10:5060;transport=udp;line=abc";
    let soft = "sip:100@198.51.100.7:40000;ob";
    let mut soft_binding = binding("ACME", "100", soft, 7);
    soft_binding.q = None;
    soft_binding.instance_id = None;
    soft_binding.reg_id = None;
    soft_binding.user_agent = None;
    soft_binding.source = "[2001:db8::7]:40000".parse::<SocketAddr>()?;
    soft_binding.transport = Transport::Wss;
    store
        .bindings()
        .apply(vec![
            BindingChange::Upsert(binding("ACME", "100", desk, 1)),
            BindingChange::Upsert(binding("ACME", "101", "sip:101@192.0.2.11", 1)),
            // Replaced in the same batch: the later write wins.
            BindingChange::Upsert(binding("ACME", "100", desk, 2)),
            BindingChange::Upsert(soft_binding.clone()),
            // Removed in the same batch.
            BindingChange::Remove {
                tenant: "ACME".to_owned(),
                extension: "101".to_owned(),
                contact: "sip:101@192.0.2.11".to_owned(),
            },
            // An extension removed while this was queued: skipped.
            BindingChange::Upsert(binding("ACME", "555", "sip:555@192.0.2.12", 1)),
        ])
        .await?;
    store.close().await?;

    let store = open(&dir.0).await?;
    let mut loaded = store.bindings().load_all().await?;
    loaded.sort_by(|a, b| a.contact.cmp(&b.contact));
    assert_eq!(loaded, vec![binding("ACME", "100", desk, 2), soft_binding]);

    // Removing the extension removes its bindings.
    store.extensions().remove("ACME", "100", None).await?;
    assert!(store.bindings().load_all().await?.is_empty());

    // A malformed change fails the whole batch before anything is written.
    let mut bad = binding("ACME", "101", "sip:101@192.0.2.11", 3);
    bad.call_id = String::new();
    let result = store
        .bindings()
        .apply(vec![
            BindingChange::Upsert(binding("ACME", "101", "sip:101@h", 1)),
            BindingChange::Upsert(bad),
        ])
        .await;
    assert!(matches!(
        result,
        Err(StoreError::InvalidField {
            field: "call_id",
            ..
        })
    ));
    let mut bad_q = binding("ACME", "101", "sip:101@192.0.2.11", 3);
    bad_q.q = Some("2".into());
    assert!(matches!(
        store
            .bindings()
            .apply(vec![BindingChange::Upsert(bad_q)])
            .await,
        Err(StoreError::InvalidField { field: "q", .. })
    ));
    assert!(store.bindings().load_all().await?.is_empty());
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_by_time_window() -> TestResult {
    let dir = TempDir::new("events");
    let store = open(&dir.0).await?;
    store.tenants().add("ACME", "acme.example").await?;
    store.tenants().add("BETA", "beta.example").await?;
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let event = |tenant: &str, extension: &str, secs: u64, kind: EventKind, reason: &str| {
        RegistrationEvent {
            tenant: tenant.to_owned(),
            extension: extension.to_owned(),
            at: t0 + Duration::from_secs(secs) + Duration::from_millis(250),
            kind,
            contact: "sip:100@192.0.2.10".to_owned(),
            reason: reason.to_owned(),
            source: "192.0.2.10:5060".parse().expect("literal address"),
            user_agent: Some("Yealink".to_owned()),
        }
    };
    store
        .events()
        .append(vec![
            event("ACME", "100", 0, EventKind::Online, "registered"),
            event("ACME", "100", 60, EventKind::Offline, "expired"),
            event("ACME", "100", 120, EventKind::Online, "registered"),
            event("ACME", "101", 90, EventKind::Online, "registered"),
            event("BETA", "100", 90, EventKind::Online, "registered"),
        ])
        .await?;
    store
        .events()
        .append(vec![event(
            "ACME",
            "100",
            180,
            EventKind::Offline,
            "unreachable",
        )])
        .await?;

    let all = store.events().list("ACME", "100", t0, 100).await?;
    let seen: Vec<_> = all.iter().map(|e| (e.kind, e.reason.as_str())).collect();
    assert_eq!(
        seen,
        [
            (EventKind::Online, "registered"),
            (EventKind::Offline, "expired"),
            (EventKind::Online, "registered"),
            (EventKind::Offline, "unreachable"),
        ]
    );
    assert_eq!(
        all[0],
        event("ACME", "100", 0, EventKind::Online, "registered")
    );

    let recent = store
        .events()
        .list("acme", "100", t0 + Duration::from_secs(100), 100)
        .await?;
    assert_eq!(recent.len(), 2);
    assert!(recent.iter().all(|e| e.at >= t0 + Duration::from_secs(100)));
    assert_eq!(store.events().list("ACME", "100", t0, 1).await?.len(), 1);
    assert_eq!(store.events().list("BETA", "100", t0, 100).await?.len(), 1);

    let mut bad = event("ACME", "100", 200, EventKind::Online, "Registered!");
    assert!(matches!(
        store.events().append(vec![bad.clone()]).await,
        Err(StoreError::InvalidField {
            field: "reason",
            ..
        })
    ));
    bad.reason = "registered".to_owned();
    bad.extension = "abc".to_owned();
    assert!(matches!(
        store.events().append(vec![bad]).await,
        Err(StoreError::InvalidField {
            field: "number",
            ..
        })
    ));
    store.close().await?;
    Ok(())
}

/// Set in the child process of the crash test: the directory to write to.
const CRASH_DIR_ENV: &str = "EDGEPBX_STORE_CRASH_DIR";

/// Writes, then dies without closing anything (run as a child of
/// [`acknowledged_writes_survive_a_crash`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() -> TestResult {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return Ok(()); // only meaningful as the crash test's child
    };
    let store = open(Path::new(&dir)).await?;
    store.tenants().add("ACME", "acme.example").await?;
    store
        .extensions()
        .add("ACME", extension("ACME", "100", &[]))
        .await?;
    store
        .bindings()
        .apply(vec![BindingChange::Upsert(binding(
            "ACME",
            "100",
            "sip:100@192.0.2.10",
            9,
        ))])
        .await?;
    // Acknowledged: now crash, with no shutdown, flush or destructor.
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_crash() -> TestResult {
    let dir = TempDir::new("crash");
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CRASH_DIR_ENV, &dir.0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    assert!(!status.success(), "the child must have aborted");

    let store = open(&dir.0).await?;
    assert!(store.extensions().get("ACME", "100").await?.is_some());
    let bindings = store.bindings().load_all().await?;
    assert_eq!(
        bindings,
        vec![binding("ACME", "100", "sip:100@192.0.2.10", 9)]
    );
    store.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_debug_output() -> TestResult {
    let dir = TempDir::new("debug");
    let store = open(&dir.0).await?;
    let key = store.server_key();
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let debug = format!("{store:?}");
    assert!(
        !debug.contains(&key_hex) && !debug.contains(&format!("{key:?}")),
        "{debug}"
    );
    store.close().await?;

    let mut spec = DbSpec::remote("ws://db.example:8000");
    if let DbSpec::Remote {
        username, password, ..
    } = &mut spec
    {
        *username = Some("root".to_owned());
        *password = Some("hunter2".to_owned());
    }
    assert!(!format!("{spec:?}").contains("hunter2"));
    Ok(())
}
