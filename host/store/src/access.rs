//! Who may administer what: console users, API keys, console sessions, and
//! the audit trail of sensitive reads.
//!
//! Secrets never reach the store in the clear: a user's password arrives
//! as an argon2 PHC string, an API key and a session token as the
//! SHA-256 of the random token (they carry 256 bits of entropy, so a fast
//! hash is enough; the lookup is by that hash).

use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::StoreError;
use crate::db::{from_datetime, run, to_datetime};
use crate::extensions::{email, extension_number};
use crate::tenants::{code_of, tenant_code, tenant_id};

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, in every tenant.
    SystemAdmin,
    /// Everything in one tenant.
    TenantAdmin,
    /// Read one tenant.
    ReadOnly,
    /// The person behind one extension: their own call settings and web
    /// phone, nothing else.
    ExtensionUser,
}

impl Role {
    /// The role's name in the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system-admin",
            Role::TenantAdmin => "tenant-admin",
            Role::ReadOnly => "read-only",
            Role::ExtensionUser => "extension-user",
        }
    }

    /// Parses a role name.
    pub fn parse(text: &str) -> Result<Role, StoreError> {
        match text {
            "system-admin" => Ok(Role::SystemAdmin),
            "tenant-admin" => Ok(Role::TenantAdmin),
            "read-only" => Ok(Role::ReadOnly),
            "extension-user" => Ok(Role::ExtensionUser),
            _ => Err(StoreError::invalid(
                "role",
                "must be system-admin, tenant-admin, read-only or extension-user",
            )),
        }
    }
}

/// A console user.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// Login name, lower-case.
    pub email: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// The tenant of a tenant admin, read-only or extension user; `None`
    /// for a system admin.
    pub tenant: Option<String>,
    /// The extension of an extension user.
    pub extension: Option<String>,
    /// When the user was added.
    pub created_at: SystemTime,
}

// The hash stays out of logs.
impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("email", &self.email)
            .field("role", &self.role)
            .field("tenant", &self.tenant)
            .field("extension", &self.extension)
            .finish_non_exhaustive()
    }
}

/// A console user an extension write gives its extension (see
/// [`ExtensionWrite::users`](crate::ExtensionWrite::users)).
#[derive(Clone, PartialEq, Eq)]
pub struct PersonalUser {
    /// Login name.
    pub email: String,
    /// Argon2 PHC string of a user to create; `None` for a user the
    /// extension has already, kept as they are.
    pub password_hash: Option<String>,
}

// The hash stays out of logs.
impl std::fmt::Debug for PersonalUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalUser")
            .field("email", &self.email)
            .field("new", &self.password_hash.is_some())
            .finish()
    }
}

/// The users an extension write keeps and creates.
#[derive(SurrealValue)]
pub(crate) struct PersonalRows {
    /// Every user named.
    all: Vec<RecordId>,
    /// Those the extension must have already.
    kept: Vec<RecordId>,
    /// Those to create.
    create: Vec<CreatedUser>,
}

#[derive(SurrealValue)]
struct CreatedUser {
    id: RecordId,
    row: NewUserRow,
}

impl PersonalRows {
    /// Checks `users` of extension `number` of tenant `code` (both
    /// checked already).
    pub(crate) fn of(
        code: &str,
        number: &str,
        users: Vec<PersonalUser>,
    ) -> Result<PersonalRows, StoreError> {
        let mut rows = PersonalRows {
            all: Vec::new(),
            kept: Vec::new(),
            create: Vec::new(),
        };
        for user in users {
            let address = email("email", &user.email.to_ascii_lowercase())?;
            let id = RecordId::new("console_user", address.clone());
            if rows.all.contains(&id) {
                return Err(StoreError::invalid(
                    "email",
                    format!("{address} is named twice"),
                ));
            }
            rows.all.push(id.clone());
            let Some(hash) = user.password_hash else {
                rows.kept.push(id);
                continue;
            };
            phc(&hash)?;
            rows.create.push(CreatedUser {
                id,
                row: NewUserRow {
                    email: address,
                    password_hash: hash,
                    role: Role::ExtensionUser.as_str().to_owned(),
                    tenant: Some(tenant_id(code)),
                    extension: Some(number.to_owned()),
                },
            });
        }
        Ok(rows)
    }
}

/// An API key as stored (its hash, never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id, the part of the key before its secret.
    pub id: String,
    /// The tenant it acts on.
    pub tenant: String,
    /// What it is for.
    pub name: String,
    /// SHA-256 of the whole key, lower-case hex.
    pub key_hash: String,
    /// It may only read.
    pub read_only: bool,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it was last used (updated at most once a minute).
    pub last_used_at: Option<SystemTime>,
}

/// An entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The tenant concerned.
    pub tenant: String,
    /// When.
    pub at: SystemTime,
    /// Who: a user's e-mail or `key:<id>`.
    pub actor: String,
    /// What, e.g. `reveal-password`.
    pub action: String,
    /// On what, e.g. an extension number.
    pub target: String,
}

/// Longest API key name, in characters.
const MAX_KEY_NAME_CHARS: usize = 100;
/// Most API keys per tenant.
pub const MAX_API_KEYS: usize = 100;

/// Access repository; get one from [`Store::access`](crate::Store::access).
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct UserRow {
    email: String,
    password_hash: String,
    role: String,
    tenant: Option<RecordId>,
    extension: Option<String>,
    created_at: Datetime,
}

impl UserRow {
    fn into_user(self) -> Result<ConsoleUser, StoreError> {
        Ok(ConsoleUser {
            email: self.email,
            password_hash: self.password_hash,
            role: Role::parse(&self.role).map_err(|e| StoreError::InvalidRecord {
                table: "console_user",
                reason: e.to_string(),
            })?,
            tenant: self
                .tenant
                .map(|t| code_of("console_user", t))
                .transpose()?,
            extension: self.extension,
            created_at: from_datetime(&self.created_at),
        })
    }
}

#[derive(SurrealValue)]
struct NewUserRow {
    email: String,
    password_hash: String,
    role: String,
    tenant: Option<RecordId>,
    extension: Option<String>,
}

#[derive(SurrealValue)]
struct KeyRow {
    key_id: String,
    tenant: RecordId,
    name: String,
    key_hash: String,
    read_only: bool,
    created_at: Datetime,
    last_used_at: Option<Datetime>,
}

impl KeyRow {
    fn into_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: self.key_id,
            tenant: code_of("api_key", self.tenant)?,
            name: self.name,
            key_hash: self.key_hash,
            read_only: self.read_only,
            created_at: from_datetime(&self.created_at),
            last_used_at: self.last_used_at.as_ref().map(from_datetime),
        })
    }
}

#[derive(SurrealValue)]
struct NewKeyRow {
    key_id: String,
    tenant: RecordId,
    name: String,
    key_hash: String,
    read_only: bool,
}

#[derive(SurrealValue)]
struct AuditRow {
    tenant: RecordId,
    at: Datetime,
    actor: String,
    action: String,
    target: String,
}

impl Access<'_> {
    /// Adds a console user. A system admin has no tenant; the others need
    /// an existing one, and an extension user an existing extension of it
    /// (`extension` is for extension users only).
    pub async fn add_user(
        &self,
        email_address: &str,
        password_hash: &str,
        role: Role,
        tenant: Option<&str>,
        extension: Option<&str>,
    ) -> Result<ConsoleUser, StoreError> {
        let address = email("email", &email_address.to_ascii_lowercase())?;
        phc(password_hash)?;
        let tenant = match (role, tenant) {
            (Role::SystemAdmin, None) => None,
            (Role::SystemAdmin, Some(_)) => {
                return Err(StoreError::invalid(
                    "tenant",
                    "a system admin belongs to no tenant",
                ));
            }
            (_, Some(t)) => Some(tenant_code(t)?),
            (_, None) => {
                return Err(StoreError::invalid("tenant", "this role needs a tenant"));
            }
        };
        let extension = match (role, extension) {
            (Role::ExtensionUser, Some(number)) => Some(extension_number(number)?),
            (Role::ExtensionUser, None) => {
                return Err(StoreError::invalid(
                    "extension",
                    "an extension user needs an extension",
                ));
            }
            (_, Some(_)) => {
                return Err(StoreError::invalid(
                    "extension",
                    "only an extension user belongs to an extension",
                ));
            }
            (_, None) => None,
        };
        let row = NewUserRow {
            email: address.clone(),
            password_hash: password_hash.to_owned(),
            role: role.as_str().to_owned(),
            tenant: tenant.as_deref().map(tenant_id),
            extension: extension.clone(),
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF $tenant != NONE AND !record::exists($tenant) {
                    THROW 'edgepbx:not_found:tenant ' + $code;
                };
                IF $number != NONE
                    AND !record::exists(type::record('extension', [$code, $number])) {
                    THROW 'edgepbx:not_found:extension ' + $number + ' in tenant ' + $code;
                };
                IF record::exists($user) { THROW 'edgepbx:conflict:user ' + $email; };
                CREATE $user CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", row.tenant.clone()))
            .bind(("code", tenant.clone().unwrap_or_default()))
            .bind(("number", extension))
            .bind(("user", RecordId::new("console_user", address.clone())))
            .bind(("email", address.clone()))
            .bind(("row", row)))
        .await?;
        self.user(&address)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("user {address}"),
            })
    }

    /// The user with this e-mail, if any.
    pub async fn user(&self, email_address: &str) -> Result<Option<ConsoleUser>, StoreError> {
        let mut res = run(self.db.query("SELECT * FROM $user").bind((
            "user",
            RecordId::new("console_user", email_address.to_ascii_lowercase()),
        )))
        .await?;
        let row: Option<UserRow> = res.take(0)?;
        row.map(UserRow::into_user).transpose()
    }

    /// The users of a tenant, or every user with `None`.
    pub async fn users(&self, tenant: Option<&str>) -> Result<Vec<ConsoleUser>, StoreError> {
        let mut res = match tenant {
            Some(t) => {
                run(self
                    .db
                    .query("SELECT * FROM console_user WHERE tenant = $tenant ORDER BY email")
                    .bind(("tenant", tenant_id(&tenant_code(t)?))))
                .await?
            }
            None => run(self.db.query("SELECT * FROM console_user ORDER BY email")).await?,
        };
        let rows: Vec<UserRow> = res.take(0)?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    /// Replaces a user's password hash and ends their sessions.
    pub async fn set_user_password(
        &self,
        email_address: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        phc(password_hash)?;
        let address = email_address.to_ascii_lowercase();
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($user) { THROW 'edgepbx:not_found:user ' + $email; };
                UPDATE $user SET password_hash = $hash;
                DELETE session WHERE user = $user;
                COMMIT TRANSACTION;",
            )
            .bind(("user", RecordId::new("console_user", address.clone())))
            .bind(("email", address))
            .bind(("hash", password_hash.to_owned())))
        .await?;
        Ok(())
    }

    /// Removes a user and their sessions.
    pub async fn remove_user(&self, email_address: &str) -> Result<(), StoreError> {
        let address = email_address.to_ascii_lowercase();
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($user) { THROW 'edgepbx:not_found:user ' + $email; };
                DELETE session WHERE user = $user;
                DELETE $user;
                COMMIT TRANSACTION;",
            )
            .bind(("user", RecordId::new("console_user", address.clone())))
            .bind(("email", address)))
        .await?;
        Ok(())
    }

    /// Stores a new API key of a tenant (its hash) and returns it.
    pub async fn add_key(
        &self,
        tenant: &str,
        id: &str,
        name: &str,
        key_hash: &str,
        read_only: bool,
    ) -> Result<ApiKey, StoreError> {
        let code = tenant_code(tenant)?;
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::invalid(
                "id",
                "must be 1 to 32 letters and digits",
            ));
        }
        if name.trim().is_empty()
            || name.chars().count() > MAX_KEY_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(StoreError::invalid(
                "name",
                "must be 1 to 100 characters without control characters",
            ));
        }
        let row = NewKeyRow {
            key_id: id.to_owned(),
            tenant: tenant_id(&code),
            name: name.to_owned(),
            key_hash: sha256_hex("key_hash", key_hash)?,
            read_only,
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                IF array::len((SELECT VALUE id FROM api_key WHERE tenant = $tenant)) >= $max {
                    THROW 'edgepbx:limit:max_api_keys:' + <string> $max;
                };
                CREATE $key CONTENT $row;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("max", MAX_API_KEYS as i64))
            .bind(("key", RecordId::new("api_key", id.to_owned())))
            .bind(("row", row)))
        .await?;
        self.key(id).await?.ok_or_else(|| StoreError::NotFound {
            what: format!("API key {id}"),
        })
    }

    /// The key with this public id, if any.
    pub async fn key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let mut res = run(self
            .db
            .query("SELECT * FROM $key")
            .bind(("key", RecordId::new("api_key", id.to_owned()))))
        .await?;
        let row: Option<KeyRow> = res.take(0)?;
        row.map(KeyRow::into_key).transpose()
    }

    /// A tenant's keys, oldest first.
    pub async fn keys(&self, tenant: &str) -> Result<Vec<ApiKey>, StoreError> {
        let mut res = run(self
            .db
            .query("SELECT * FROM api_key WHERE tenant = $tenant ORDER BY created_at")
            .bind(("tenant", tenant_id(&tenant_code(tenant)?))))
        .await?;
        let rows: Vec<KeyRow> = res.take(0)?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    /// Revokes (deletes) a tenant's key.
    pub async fn revoke_key(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF (SELECT VALUE tenant FROM $key)[0] != $tenant {
                    THROW 'edgepbx:not_found:API key ' + $id;
                };
                DELETE $key;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("id", id.to_owned()))
            .bind(("key", RecordId::new("api_key", id.to_owned()))))
        .await?;
        Ok(())
    }

    /// Records that a key was used now.
    pub async fn touch_key(&self, id: &str, at: SystemTime) -> Result<(), StoreError> {
        run(self
            .db
            .query("UPDATE $key SET last_used_at = $at")
            .bind(("key", RecordId::new("api_key", id.to_owned())))
            .bind(("at", to_datetime("last_used_at", at)?)))
        .await?;
        Ok(())
    }

    /// Opens a session for a user until `expires_at`; `token_hash` is the
    /// SHA-256 of the session token.
    pub async fn open_session(
        &self,
        token_hash: &str,
        email_address: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let hash = sha256_hex("token_hash", token_hash)?;
        run(self
            .db
            .query(
                "DELETE session WHERE expires_at < time::now();
                CREATE $sess CONTENT { user: $user, expires_at: $expires };",
            )
            .bind(("sess", RecordId::new("session", hash)))
            .bind((
                "user",
                RecordId::new("console_user", email_address.to_ascii_lowercase()),
            ))
            .bind(("expires", to_datetime("expires_at", expires_at)?)))
        .await?;
        Ok(())
    }

    /// The user of an unexpired session, if the token hash names one.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<ConsoleUser>, StoreError> {
        let Ok(hash) = sha256_hex("token_hash", token_hash) else {
            return Ok(None);
        };
        let mut res = run(self
            .db
            .query("SELECT VALUE user.* FROM $sess WHERE expires_at > time::now()")
            .bind(("sess", RecordId::new("session", hash))))
        .await?;
        let row: Option<UserRow> = res.take(0)?;
        row.map(UserRow::into_user).transpose()
    }

    /// Ends a session.
    pub async fn close_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let Ok(hash) = sha256_hex("token_hash", token_hash) else {
            return Ok(());
        };
        run(self
            .db
            .query("DELETE $sess")
            .bind(("sess", RecordId::new("session", hash))))
        .await?;
        Ok(())
    }

    /// Appends an entry to the audit trail.
    pub async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let code = tenant_code(&entry.tenant)?;
        let row = AuditRow {
            tenant: tenant_id(&code),
            at: to_datetime("at", entry.at)?,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
        };
        run(self
            .db
            .query("CREATE audit CONTENT $row")
            .bind(("row", row)))
        .await?;
        Ok(())
    }

    /// A tenant's latest audit entries, newest first.
    pub async fn audit_trail(
        &self,
        tenant: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut res = run(self
            .db
            .query("SELECT * FROM audit WHERE tenant = $tenant ORDER BY at DESC LIMIT $limit")
            .bind(("tenant", tenant_id(&tenant_code(tenant)?)))
            .bind(("limit", i64::from(limit))))
        .await?;
        let rows: Vec<AuditRow> = res.take(0)?;
        rows.into_iter()
            .map(|r| {
                Ok(AuditEntry {
                    tenant: code_of("audit", r.tenant)?,
                    at: from_datetime(&r.at),
                    actor: r.actor,
                    action: r.action,
                    target: r.target,
                })
            })
            .collect()
    }
}

/// A PHC hash string (`$argon2id$...`), bounded.
fn phc(hash: &str) -> Result<(), StoreError> {
    if !hash.starts_with('$') || hash.len() > 256 || hash.chars().any(char::is_whitespace) {
        return Err(StoreError::invalid(
            "password_hash",
            "must be a PHC hash string",
        ));
    }
    Ok(())
}

/// 64 lower-case hex digits.
fn sha256_hex(field: &'static str, value: &str) -> Result<String, StoreError> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::invalid(field, "must be 64 hex digits"));
    }
    Ok(value.to_ascii_lowercase())
}
