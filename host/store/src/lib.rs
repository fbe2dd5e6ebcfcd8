//! SurrealDB schema, migrations and tenant-scoped repositories for edgepbx.
//!
//! [`Store::open`] connects to an embedded SurrealKV database in a local
//! directory or to a remote SurrealDB over WebSocket — the same code path,
//! the SurrealDB `any` engine, with only the endpoint differing — brings the
//! schema up to date and loads the server secret. The repositories hang off
//! the store and every one of their methods about a tenant's data names the
//! tenant it works on; no method reads or writes another tenant's rows (the
//! tenant code is part of every record id and every filter). The exceptions
//! are explicit: whole-database reads for start-up ([`Extensions::all`],
//! [`Groups::all`], [`Trunks::all`], [`PolicyModules::all_active`],
//! [`Bindings::load_all`]), and console users, API keys and sessions, found
//! by email, id or token ([`Access`]), which carry their tenant.
//!
//! Signalling never waits on this crate: the server loads configuration into
//! memory at start and writes registration state behind in batches
//! ([`Bindings::apply`], [`RegistrationEvents::append`]), each batch one
//! transaction.
//!
//! # Module map
//! - `config`: [`DbSpec`] and [`StoreConfig`], what to open.
//! - `lock`: one process per embedded data directory ([`StoreError::Locked`]).
//! - `schema`: the versioned [`MIGRATIONS`] and how they are applied.
//! - `db`: running SurrealQL, mapping its errors, timestamps.
//! - `tenants`: [`Tenants`], [`Tenant`], [`TenantLimits`].
//! - `extensions`: [`Extensions`], numbers, aliases, [`SipCredentials`].
//! - `settings`: the stored form of an extension's [`CallSettings`]
//!   (forwarding, DND, find-me/follow-me, caller ID, allowed
//!   destinations).
//! - `groups`: [`Groups`], ring groups and virtual extensions.
//! - `calls`: [`CallRecords`], call detail records.
//! - `trunks`: [`Trunks`], connections to carriers with their DIDs.
//! - `contacts`: [`Contacts`], the company directory.
//! - `access`: [`Access`]: console users, API keys, sessions, the audit
//!   trail.
//!
//! The values themselves ([`CallSettings`], [`Group`], [`Trunk`],
//! [`CallRecord`] and their parts) are defined with their checks in
//! `edgepbx-model` and re-exported here; this crate stores them.
//! - `bindings`: [`Bindings`], the registrar's write-behind copy.
//! - `events`: [`RegistrationEvents`], registration history.
//! - `policies`: [`PolicyModules`], tenants' routing policy modules and the
//!   policies' key-value store.
//! - `error`: [`StoreError`].
//!
//! # Engine and durability
//! Embedded data lives in SurrealKV (pure Rust, so no C++ toolchain and a
//! fast build) opened with `sync=every`: every commit is written to the
//! write-ahead log and fsynced before the commit returns (concurrent commits
//! share one fsync), so an acknowledged write survives a crash or power cut.
//! The registrar batches its writes, so the cost is one fsync per batch, not
//! per REGISTER. A remote database's durability is the server's setting.

mod access;
mod bindings;
mod calls;
mod config;
mod contacts;
mod db;
mod devices;
mod error;
mod events;
mod extensions;
mod groups;
mod lock;
mod policies;
mod remote;
mod retention;
mod schema;
mod sealing;
mod settings;
mod tenants;
mod trunks;
mod voicemail;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use surrealdb::Surreal;
use surrealdb::engine::any::{self, Any};
use surrealdb::opt::auth::{Database, Root};
use tracing::info;

pub use access::{Access, ApiKey, AuditEntry, ConsoleUser, MAX_API_KEYS, PersonalUser, Role};
pub use bindings::{BindingChange, Bindings, StoredBinding, Transport};
pub use calls::{CallRecords, MAX_LISTED_CALLS};
pub use config::{DEFAULT_DATABASE, DEFAULT_NAMESPACE, DbSpec, StoreConfig};
pub use contacts::{Contact, Contacts, MAX_CONTACTS};
pub use devices::{Device, Devices, Fetch, KEPT_FETCHES, MAX_BLF_KEYS, MAX_DEVICES, MAX_LINE};
pub use edgepbx_model::{
    AllowedDestinations, BlfKey, CallRecord, CallSettings, Did, FeatureKey, FollowMe,
    FollowMeDestination, ForwardTarget, ForwardWhen, Group, GroupKind, GroupStrategy, InvalidField,
    MAX_DIDS, MAX_FOLLOW_ME, MAX_MEMBERS, MAX_TRUNKS, Mac, RingMode, TenantFeatures, Trunk, Vendor,
};
pub use error::StoreError;
pub use events::{EventKind, RegistrationEvent, RegistrationEvents};
pub use extensions::{
    CredentialEntry, Extension, ExtensionWrite, Extensions, NewExtension, Profile, SipCredentials,
    WriteMode, email, number_order,
};
pub use groups::Groups;
pub use policies::{MAX_POLICY_VERSIONS, PolicyModule, PolicyModuleInfo, PolicyModules};
pub use retention::{History, Retention};
pub use schema::{MIGRATIONS, Migration, SCHEMA_VERSION};
pub use sealing::{KEY_FILE, Sealer};
pub use tenants::{Tenant, TenantLimits, Tenants};
pub use trunks::Trunks;
pub use voicemail::{Delivery, MailboxCounts, Usage, VoiceMessage, Voicemail, Work, is_message_id};

use crate::db::run;
use crate::lock::DataDirLock;

/// An open database. Cheap to clone: clones share one connection.
///
/// Drop every clone, or call [`Store::close`] on the last one, to close it.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The connection; declared first so it is dropped before the lock.
    db: Surreal<Any>,
    /// Random key of this installation, for the SIP layer's nonce HMACs.
    server_key: [u8; 32],
    /// Seals the secrets the server reads back.
    sealer: Sealer,
    /// The embedded data directory, to wait for its release on close.
    data_dir: Option<PathBuf>,
    /// Keeps other edgepbx processes out of the data directory.
    dir_lock: Option<DataDirLock>,
}

// Hand-written so that the server key never reaches a log line.
impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .field("server_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database, applies pending migrations
    /// and loads or creates the server secret.
    ///
    /// For an embedded directory already opened by another process this
    /// fails with [`StoreError::Locked`]; for a database migrated by a newer
    /// edgepbx, with [`StoreError::SchemaTooNew`].
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let key_file = config.key_file.ok_or_else(|| {
            StoreError::invalid("key_file", "a remote store needs a sealing key file")
        })?;
        let (db, data_dir, lock) = match config.spec {
            DbSpec::Embedded { path } => {
                let dir = prepare_dir(&path)?;
                let lock = DataDirLock::acquire(&dir)?;
                lock::wait_for_engine_release(&dir).await?;
                let endpoint = embedded_endpoint(&dir)?;
                let db = any::connect(endpoint).await?;
                // No credentials are configured, so the embedded engine runs
                // without authentication and may create these.
                db.use_ns(DEFAULT_NAMESPACE)
                    .use_db(DEFAULT_DATABASE)
                    .await?;
                info!(path = %dir.display(), "opened embedded store (surrealkv, sync=every)");
                (db, Some(dir), Some(lock))
            }
            DbSpec::Remote {
                url,
                namespace,
                database,
                username,
                password,
                database_user,
                ca_file,
            } => {
                let db = remote::connect(&url, ca_file.as_deref()).await?;
                match (username, password) {
                    (Some(username), Some(password)) if database_user => {
                        db.signin(Database {
                            namespace: namespace.clone(),
                            database: database.clone(),
                            username,
                            password,
                        })
                        .await?;
                    }
                    (Some(username), Some(password)) => {
                        db.signin(Root { username, password }).await?;
                    }
                    (None, None) => {}
                    _ => {
                        return Err(StoreError::invalid(
                            "username",
                            "username and password go together",
                        ));
                    }
                }
                db.use_ns(namespace.as_str())
                    .use_db(database.as_str())
                    .await?;
                info!(%url, %namespace, %database, "connected to remote store");
                (db, None, None)
            }
        };
        let found = schema::migrate(&db).await?;
        info!(found, current = SCHEMA_VERSION, "schema up to date");
        let server_key = load_or_create_server_key(&db).await?;
        let sealer = sealing::adopt(&db, &server_key, &key_file).await?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                server_key,
                sealer,
                data_dir,
                dir_lock: lock,
            }),
        })
    }

    /// Console users, API keys, sessions and the audit trail.
    pub fn access(&self) -> Access<'_> {
        Access { db: &self.inner.db }
    }

    /// Contacts (the company directory).
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts { db: &self.inner.db }
    }

    /// Desk phones to provision and what they fetched.
    pub fn devices(&self) -> Devices<'_> {
        Devices { db: &self.inner.db }
    }

    /// Voice messages.
    pub fn voicemail(&self) -> Voicemail<'_> {
        Voicemail { db: &self.inner.db }
    }

    /// The tenant repository.
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants { db: &self.inner.db }
    }

    /// The extension repository.
    pub fn extensions(&self) -> Extensions<'_> {
        Extensions { db: &self.inner.db }
    }

    /// The binding repository.
    pub fn bindings(&self) -> Bindings<'_> {
        Bindings { db: &self.inner.db }
    }

    /// The SIP trunk repository (carriers' passwords sealed at rest).
    pub fn trunks(&self) -> Trunks<'_> {
        Trunks {
            db: &self.inner.db,
            sealer: &self.inner.sealer,
        }
    }

    /// The call detail record repository.
    pub fn calls(&self) -> CallRecords<'_> {
        CallRecords { db: &self.inner.db }
    }

    /// The ring group and virtual extension repository.
    pub fn groups(&self) -> Groups<'_> {
        Groups { db: &self.inner.db }
    }

    /// The policy module repository (with the policies' key-value store).
    pub fn policies(&self) -> PolicyModules<'_> {
        PolicyModules { db: &self.inner.db }
    }

    /// The registration history repository.
    pub fn events(&self) -> RegistrationEvents<'_> {
        RegistrationEvents { db: &self.inner.db }
    }

    /// Deleting history older than its retention.
    pub fn retention(&self) -> Retention<'_> {
        Retention { db: &self.inner.db }
    }

    /// The installation's random 32-byte key, created on first open and the
    /// same on every node sharing the database: the SIP layer keys its nonce
    /// HMACs with it. Never log it.
    pub fn server_key(&self) -> [u8; 32] {
        self.inner.server_key
    }

    /// Seals and opens the SIP passwords the server stores with
    /// extensions' credentials.
    pub fn sealer(&self) -> &Sealer {
        &self.inner.sealer
    }

    /// Closes this handle. If it is the last one of an embedded store, waits
    /// until the database engine has shut down and released the data
    /// directory, so that the directory can be opened again right away.
    pub async fn close(self) -> Result<(), StoreError> {
        let Ok(inner) = Arc::try_unwrap(self.inner) else {
            return Ok(()); // other clones keep it open
        };
        let Inner {
            db,
            data_dir,
            dir_lock,
            ..
        } = inner;
        // The engine shuts down on a background task once the last handle
        // is gone; keep our own lock until it has let go.
        drop(db);
        if let Some(dir) = data_dir {
            lock::wait_for_engine_release(&dir).await?;
        }
        drop(dir_lock);
        Ok(())
    }
}

/// Creates the data directory if needed (readable by the server's user
/// alone: it holds the database, voice messages and the control socket)
/// and makes its path absolute.
fn prepare_dir(path: &Path) -> Result<PathBuf, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(io)?;
    std::path::absolute(path).map_err(io)
}

/// The `any` engine endpoint of an embedded SurrealKV directory.
fn embedded_endpoint(dir: &Path) -> Result<String, StoreError> {
    let text = dir
        .to_str()
        .filter(|t| !t.contains('?'))
        .ok_or_else(|| StoreError::invalid("path", "must be valid UTF-8 without '?'"))?;
    // sync=every: fsync the WAL before a commit returns (see the crate docs).
    Ok(format!("surrealkv://{text}?sync=every"))
}

/// Reads the server key, creating it first if this database has none.
async fn load_or_create_server_key(db: &Surreal<Any>) -> Result<[u8; 32], StoreError> {
    let mut candidate = [0u8; 32];
    rand::rng().fill_bytes(&mut candidate);
    // Created only if absent, so concurrent first opens agree on one key.
    run(db
        .query(
            "BEGIN TRANSACTION;
            IF !record::exists(server_secret:main) { CREATE server_secret:main SET key = $key; };
            COMMIT TRANSACTION;",
        )
        .bind(("key", hex::encode(candidate))))
    .await?;
    let mut res = run(db.query("SELECT VALUE key FROM server_secret:main")).await?;
    let stored: Option<String> = res.take(0)?;
    let invalid = |reason: &str| StoreError::InvalidRecord {
        table: "server_secret",
        reason: reason.to_owned(),
    };
    let stored = stored.ok_or_else(|| invalid("missing after creation"))?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(&stored, &mut key).map_err(|_| invalid("key is not 64 hex digits"))?;
    Ok(key)
}
