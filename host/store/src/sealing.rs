//! Secrets the server must read back in clear (SIP passwords, for an
//! audited reveal and for provisioning phones; carriers' passwords, to
//! answer their challenges) are sealed with a key kept outside the
//! database: a file of its own, readable by the server's user alone
//! (`sealing.key` in the data directory unless configured elsewhere). The
//! database alone (a remote server's, or a copy of it made without the
//! key file) gives away none of them.
//!
//! The database records which key its secrets are sealed under (the key's
//! id, a hash of it), so a node started with the wrong file refuses to
//! start rather than failing every reveal. Databases from before the key
//! file had their secrets sealed under a key derived from the server key
//! stored in the database, and trunk passwords in clear; the first start
//! with a key file seals them all again under it (`adopt`).

use std::io::Write;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};
use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{RecordId, SurrealValue};
use tracing::{info, warn};

use crate::StoreError;
use crate::db::run;

/// The key file's name in the data directory, unless configured elsewhere.
pub const KEY_FILE: &str = "sealing.key";

/// Seals and opens secrets with the installation's sealing key.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; 32],
}

// The key stays out of logs.
impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer(id {})", self.id())
    }
}

impl Sealer {
    /// A sealer with this key.
    pub fn from_key(key: [u8; 32]) -> Sealer {
        Sealer { key }
    }

    /// The sealer of databases from before the key file: its key derived
    /// from the server key stored in the database.
    fn legacy(server_key: &[u8; 32]) -> Sealer {
        let mut h = Sha256::new();
        h.update(b"edgepbx sip-password seal v1\0");
        h.update(server_key);
        Sealer {
            key: h.finalize().into(),
        }
    }

    /// Reads the key file at `path`. A file others may read is refused:
    /// the key would not be secret.
    fn load(path: &Path) -> Result<Sealer, StoreError> {
        let bad = |reason: String| StoreError::SealingKey {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        check_private(path).map_err(bad)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key)
            .map_err(|_| bad("must hold 64 hexadecimal digits".into()))?;
        Ok(Sealer { key })
    }

    /// The key file at `path`, created (a new random key, 0600 from its
    /// first byte, its directory 0700) when there is none.
    fn load_or_create(path: &Path) -> Result<Sealer, StoreError> {
        if path.exists() {
            return Sealer::load(path);
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        match create_private(path, &format!("{}\n", hex::encode(key))) {
            Ok(()) => {
                info!(path = %path.display(), "created the sealing key; back it up, apart from the database");
                Ok(Sealer { key })
            }
            // Another process made it first: theirs is the key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Sealer::load(path),
            Err(e) => Err(StoreError::SealingKey {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// The key's id: 16 hex digits of a hash of it, which the database
    /// records and which tells keys apart without revealing them.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"edgepbx sealing key id\0");
        h.update(self.key);
        hex::encode(&h.finalize()[..8])
    }

    fn aead(&self) -> LessSafeKey {
        // A 32-byte key is what ChaCha20-Poly1305 takes; this cannot fail.
        LessSafeKey::new(
            UnboundKey::new(&aead::CHACHA20_POLY1305, &self.key)
                .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes 32-byte keys")),
        )
    }

    /// Encrypts and authenticates `secret`: URL-safe base64 of a random
    /// nonce, the ciphertext and the tag.
    pub fn seal(&self, secret: &str) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut data = secret.as_bytes().to_vec();
        // Sealing in place only fails for inputs of gigabytes.
        if self
            .aead()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .is_err()
        {
            data.clear();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The secret a [`seal`](Self::seal) holds; `None` when it was sealed
    /// under another key or altered.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < aead::NONCE_LEN + aead::CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let (nonce, rest) = bytes.split_at(aead::NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = rest.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::empty(), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "others may read it (mode {:o}); `chmod 600` it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Writes a new file that only its owner may read, from the moment it
/// exists, and whole: written and synced under a temporary name first,
/// then linked into place, so a crash never leaves a part of a key. Never
/// replaces a file (`AlreadyExists`).
fn create_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    linked
}

#[derive(SurrealValue)]
struct SealedRow {
    id: RecordId,
    value: String,
}

/// What `server_secret:main.sealing_key_id` holds while a key takes over
/// a database's secrets: the key's id after this prefix.
const PENDING: &str = "pending:";

/// The sealer of the database: the key in `key_file`, checked against the
/// key id the database records. A database that records none gets the
/// file's key (the file is created if missing): its id is claimed first,
/// so two processes never seal under two keys, then every stored secret
/// is sealed under it (for a database from before key files: SIP
/// passwords sealed under the server key, carriers' in clear), then the
/// id is recorded as done. An interrupted pass resumes on the next open
/// with the same key; each value is checked before it is sealed again.
pub(crate) async fn adopt(
    db: &Surreal<Any>,
    server_key: &[u8; 32],
    key_file: &Path,
) -> Result<Sealer, StoreError> {
    let mismatch = |recorded: &str, sealer: &Sealer| StoreError::SealingKey {
        path: key_file.to_owned(),
        reason: format!(
            "this database's secrets are sealed under key {recorded}, and this file holds key {}; \
             give this node a copy of the key file the database was first opened with",
            sealer.id()
        ),
    };
    loop {
        let mut res = run(db.query("SELECT VALUE sealing_key_id FROM server_secret:main")).await?;
        let recorded: Option<Option<String>> = res.take(0)?;
        let sealer = match recorded.flatten() {
            // A database with a key never gets a new file: a wrong path
            // is an error, not a new key.
            Some(recorded) => {
                let sealer = Sealer::load(key_file)?;
                let id = recorded.strip_prefix(PENDING).unwrap_or(&recorded);
                if id != sealer.id() {
                    return Err(mismatch(id, &sealer));
                }
                if !recorded.starts_with(PENDING) {
                    return Ok(sealer);
                }
                sealer
            }
            None => {
                let sealer = Sealer::load_or_create(key_file)?;
                let mut res = run(db
                    .query(
                        "UPDATE server_secret:main SET sealing_key_id = $pending
                        WHERE sealing_key_id = NONE RETURN VALUE sealing_key_id",
                    )
                    .bind(("pending", format!("{PENDING}{}", sealer.id()))))
                .await?;
                let claimed: Vec<Option<String>> = res.take(0)?;
                if claimed.is_empty() {
                    // Another process claimed it first: look again.
                    continue;
                }
                sealer
            }
        };
        reseal_all(db, &sealer, server_key).await?;
        run(db
            .query("UPDATE server_secret:main SET sealing_key_id = $id")
            .bind(("id", sealer.id())))
        .await?;
        return Ok(sealer);
    }
}

/// Seals every stored secret under `sealer` that is not already.
async fn reseal_all(
    db: &Surreal<Any>,
    sealer: &Sealer,
    server_key: &[u8; 32],
) -> Result<(), StoreError> {
    let legacy = Sealer::legacy(server_key);
    let extensions = reseal(
        db,
        "SELECT id, sealed_password AS value FROM extension WHERE sealed_password != NONE",
        "sealed_password",
        |value| legacy.open(value),
        sealer,
    )
    .await?;
    // Trunk passwords were stored in clear; the claim above makes sure no
    // other key sealed any of them.
    let trunks = reseal(
        db,
        "SELECT id, password AS value FROM trunk WHERE password != NONE",
        "password",
        |value| Some(value.to_owned()),
        sealer,
    )
    .await?;
    if extensions + trunks > 0 {
        info!(
            extensions,
            trunks,
            key = sealer.id(),
            "stored secrets sealed again under the sealing key file"
        );
    }
    Ok(())
}

/// Seals again, under `sealer`, each value `select` finds that it cannot
/// already open, reading it with `old`. Returns how many it sealed.
async fn reseal(
    db: &Surreal<Any>,
    select: &'static str,
    field: &'static str,
    old: impl Fn(&str) -> Option<String>,
    sealer: &Sealer,
) -> Result<usize, StoreError> {
    let mut res = run(db.query(select)).await?;
    let rows: Vec<SealedRow> = res.take(0)?;
    let mut sealed = 0;
    for row in rows {
        if sealer.open(&row.value).is_some() {
            continue;
        }
        let Some(secret) = old(&row.value) else {
            warn!(record = ?row.id, "a sealed secret opens under no known key; left as it is");
            continue;
        };
        run(db
            .query(format!("UPDATE $id SET {field} = $value"))
            .bind(("id", row.id))
            .bind(("value", sealer.seal(&secret))))
        .await?;
        sealed += 1;
    }
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_under_its_key() {
        let sealer = Sealer::from_key([7; 32]);
        let sealed = sealer.seal("s3cret pass");
        assert_eq!(sealer.open(&sealed).as_deref(), Some("s3cret pass"));
        assert_ne!(sealer.seal("s3cret pass"), sealed, "nonces are random");
        assert_eq!(Sealer::from_key([8; 32]).open(&sealed), None);
        let mut altered = sealed.into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            sealer.open(&String::from_utf8(altered).unwrap_or_default()),
            None
        );
        assert_eq!(sealer.open("short"), None);
        assert_ne!(
            Sealer::from_key([7; 32]).id(),
            Sealer::from_key([8; 32]).id()
        );
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!(
            "edgepbx-sealing-{name}-{}-{nanos}",
            std::process::id()
        ))
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
    }

    /// A database from before the key file (SIP passwords sealed under the
    /// server key, a carrier's password in clear) is sealed again under a
    /// new key file on its next start; the key file is private from its
    /// first byte; a node with another key refuses to start.
    #[cfg(unix)]
    #[tokio::test]
    async fn an_older_database_is_sealed_again_under_the_key_file() {
        use crate::{DbSpec, NewExtension, SipCredentials, Store, StoreConfig, Trunk};
        let dir = temp_dir("adopt");
        let key_file = dir.join(KEY_FILE);
        let open = || Store::open(StoreConfig::new(DbSpec::embedded(&dir)));

        let store = open().await.expect("opens");
        assert_eq!(mode(&dir), 0o700, "the data directory");
        assert_eq!(mode(&key_file), 0o600, "the key file");
        store
            .tenants()
            .add("ACME", "acme.test")
            .await
            .expect("tenant");
        let legacy = Sealer::legacy(&store.server_key());
        store
            .extensions()
            .add(
                "ACME",
                NewExtension {
                    number: "100".into(),
                    name: "Ext 100".into(),
                    aliases: Vec::new(),
                    credentials: SipCredentials {
                        entries: Vec::new(),
                        sealed: Some(legacy.seal("sip secret 100")),
                    },
                },
            )
            .await
            .expect("extension");
        let trunk = Trunk {
            tenant: String::new(),
            name: "carrier".into(),
            host: "127.0.0.1:5070".into(),
            username: Some("acme".into()),
            password: Some("carrier secret".into()),
            register: true,
            caller_id: None,
            dids: Vec::new(),
        };
        store.trunks().put("ACME", trunk).await.expect("trunk");
        // What an older edgepbx left: no key id, the carrier's password
        // in clear.
        run(store.inner.db.query(
            "UPDATE server_secret:main SET sealing_key_id = NONE;
             UPDATE trunk SET password = 'carrier secret';",
        ))
        .await
        .expect("made old");
        store.close().await.expect("closes");
        std::fs::remove_file(&key_file).expect("no key file yet");

        let store = open().await.expect("opens and seals again");
        let sealed = store
            .extensions()
            .get("ACME", "100")
            .await
            .expect("reads")
            .and_then(|e| e.credentials.sealed)
            .expect("still sealed");
        assert_eq!(
            store.sealer().open(&sealed).as_deref(),
            Some("sip secret 100")
        );
        assert_eq!(legacy.open(&sealed), None, "no longer under the old key");
        let trunks = store.trunks().list("ACME").await.expect("lists");
        assert_eq!(trunks[0].password.as_deref(), Some("carrier secret"));
        let mut res = run(store.inner.db.query("SELECT VALUE password FROM trunk"))
            .await
            .expect("raw read");
        let raw: Vec<Option<String>> = res.take(0).expect("a row");
        let raw = raw.into_iter().flatten().next().expect("a password");
        assert_ne!(raw, "carrier secret", "sealed at rest");
        assert!(!raw.contains("secret"));
        store.close().await.expect("closes");

        // Another node with another key file is refused, naming the file.
        let other = dir.join("other.key");
        let refused = Store::open(StoreConfig::new(DbSpec::embedded(&dir)).with_key_file(&other))
            .await
            .expect_err("another key");
        assert!(
            matches!(&refused, crate::StoreError::SealingKey { path, .. } if *path == other),
            "{refused}"
        );
        assert!(
            !other.exists(),
            "a database with a key never gets a new file"
        );
        // Nor does one with a key file of another key.
        std::fs::write(&other, format!("{}\n", hex::encode([9u8; 32]))).expect("a key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let refused = Store::open(StoreConfig::new(DbSpec::embedded(&dir)).with_key_file(&other))
            .await
            .expect_err("another key");
        assert!(
            refused.to_string().contains("sealed under key"),
            "{refused}"
        );
        // A key file others may read is refused.
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = open().await.expect_err("readable by others");
        assert!(refused.to_string().contains("chmod 600"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
