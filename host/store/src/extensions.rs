//! Extensions, their aliases and their SIP credentials.
//!
//! Numbers and aliases share one namespace per tenant (the `dial_name`
//! table): a caller dialling `sales` or `100` must reach exactly one
//! extension, so an alias can equal neither another alias nor any number.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, RecordId, SurrealValue};

use crate::db::{from_datetime, run, version_required};
use edgepbx_model::{CallSettings, FeatureKey, ForwardTarget, ForwardWhen};

use crate::access::{PersonalRows, PersonalUser};
use crate::settings::SettingsRow;
use crate::tenants::{TenantRow, code_of, tenant_code, tenant_id};
use crate::{StoreError, Tenant};

/// Longest extension name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest alias, in bytes.
const MAX_ALIAS_LEN: usize = 64;
/// Most aliases per extension.
const MAX_ALIASES: usize = 32;

/// What [`Extensions::add`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewExtension {
    /// 1 to 15 digits, unique in the tenant among numbers and aliases.
    pub number: String,
    /// Display name, at most 100 characters, no control characters.
    pub name: String,
    /// Other names that reach this extension: 1 to 64 characters of
    /// `a-z 0-9 . _ + -` (upper case is folded to lower case).
    pub aliases: Vec<String>,
    /// Digest credentials (hashes only).
    pub credentials: SipCredentials,
}

/// The digest credentials of an extension: HA1 hashes, never passwords.
///
/// An extension registers as `<number>` on its tenant's domain or as
/// `<number>-<TENANTCODE>` on any address; each username has its own entry
/// (the username is part of HA1). No entries means the extension cannot
/// register.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipCredentials {
    /// One entry per username.
    pub entries: Vec<CredentialEntry>,
    /// The password itself, sealed (encrypted and authenticated) with the
    /// server's key, so that an administrator can reveal it on an explicit,
    /// audited request; opaque to the store. `None` when it was never kept
    /// (extensions created before it was, or by a client that hashed it).
    pub sealed: Option<String>,
}

/// HA1 values for one digest username (RFC 7616 §3.4.2:
/// `H(username ":" realm ":" password)`), lower-case hex.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialEntry {
    /// `<number>` or `<number>-<TENANTCODE>`.
    pub username: String,
    /// MD5 HA1, 32 hex digits.
    pub md5_ha1: String,
    /// SHA-256 HA1, 64 hex digits.
    pub sha256_ha1: String,
}

// An HA1 is as good as the password for digest authentication: keep it out of logs.
impl fmt::Debug for CredentialEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialEntry")
            .field("username", &self.username)
            .field("md5_ha1", &"<redacted>")
            .field("sha256_ha1", &"<redacted>")
            .finish()
    }
}

/// An extension as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Code of the owning tenant.
    pub tenant: String,
    /// Its number.
    pub number: String,
    /// Display name.
    pub name: String,
    /// Other names that reach it.
    pub aliases: Vec<String>,
    /// Digest credentials.
    pub credentials: SipCredentials,
    /// Call handling settings.
    pub settings: CallSettings,
    /// Voicemail details and the company directory entry.
    pub profile: Profile,
    /// When it was added.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
}

/// What an extension has besides routing: its voicemail box's details and
/// its entry in the company directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Where voicemail notifications go.
    pub voicemail_email: Option<String>,
    /// The voicemail PIN as a PHC hash string (never the digits).
    pub voicemail_pin_hash: Option<String>,
    /// The e-mail of a new message carries its audio.
    pub voicemail_attach: bool,
    /// A message e-mailed is deleted from the mailbox.
    pub voicemail_delete_after_email: bool,
    /// Calling the mailbox from the extension's own phone asks no PIN.
    pub voicemail_skip_pin: bool,
    /// Listed in the company directory phones and the console show.
    pub listed: bool,
    /// Contact e-mail shown in the directory.
    pub email: Option<String>,
    /// Department shown in the directory.
    pub department: Option<String>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            voicemail_email: None,
            voicemail_pin_hash: None,
            voicemail_attach: true,
            voicemail_delete_after_email: false,
            voicemail_skip_pin: false,
            listed: true,
            email: None,
            department: None,
        }
    }
}

impl Profile {
    /// Checks every value; the error names the field as the API does.
    pub fn validate(&self) -> Result<(), StoreError> {
        for (field, value) in [
            ("voicemail.email", &self.voicemail_email),
            ("directory.email", &self.email),
        ] {
            if let Some(v) = value {
                email(field, v)?;
            }
        }
        if let Some(hash) = &self.voicemail_pin_hash
            && (!hash.starts_with('$') || hash.len() > MAX_HASH_LEN)
        {
            return Err(StoreError::invalid(
                "voicemail.pin",
                "must be stored as a PHC hash",
            ));
        }
        if let Some(d) = &self.department
            && (d.is_empty()
                || d.chars().count() > MAX_NAME_CHARS
                || d.chars().any(char::is_control))
        {
            return Err(StoreError::invalid(
                "directory.department",
                "must be 1 to 100 characters without control characters",
            ));
        }
        Ok(())
    }
}

/// Longest stored hash string.
const MAX_HASH_LEN: usize = 256;

/// A plausible e-mail address (one `@`, no spaces, at most 254 bytes), or
/// an [`StoreError::InvalidField`] naming `field`.
pub fn email(field: &'static str, text: &str) -> Result<String, StoreError> {
    let ok = text.len() <= 254
        && text
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && text.matches('@').count() == 1
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(StoreError::invalid(field, "must be an e-mail address"));
    }
    Ok(text.to_owned())
}

#[derive(SurrealValue)]
struct ProfileRow {
    voicemail_email: Option<String>,
    voicemail_pin_hash: Option<String>,
    voicemail_attach: Option<bool>,
    voicemail_delete_after_email: Option<bool>,
    voicemail_skip_pin: Option<bool>,
    listed: Option<bool>,
    email: Option<String>,
    department: Option<String>,
}

impl From<ProfileRow> for Profile {
    fn from(r: ProfileRow) -> Self {
        Profile {
            voicemail_email: r.voicemail_email,
            voicemail_pin_hash: r.voicemail_pin_hash,
            voicemail_attach: r.voicemail_attach.unwrap_or(true),
            voicemail_delete_after_email: r.voicemail_delete_after_email.unwrap_or(false),
            voicemail_skip_pin: r.voicemail_skip_pin.unwrap_or(false),
            listed: r.listed.unwrap_or(true),
            email: r.email,
            department: r.department,
        }
    }
}

impl From<&Profile> for ProfileRow {
    fn from(p: &Profile) -> Self {
        ProfileRow {
            voicemail_email: p.voicemail_email.clone(),
            voicemail_pin_hash: p.voicemail_pin_hash.clone(),
            voicemail_attach: Some(p.voicemail_attach),
            voicemail_delete_after_email: Some(p.voicemail_delete_after_email),
            voicemail_skip_pin: Some(p.voicemail_skip_pin),
            listed: Some(p.listed),
            email: p.email.clone(),
            department: p.department.clone(),
        }
    }
}

#[derive(SurrealValue)]
struct SecretRow {
    credentials: Vec<CredentialRow>,
    sealed: Option<String>,
}

/// Whether a write may create, replace, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Only a new extension (a taken number is a conflict).
    Create,
    /// Only an existing one (a missing number is not found).
    Update,
    /// Either.
    Upsert,
}

impl WriteMode {
    fn as_str(self) -> &'static str {
        match self {
            WriteMode::Create => "create",
            WriteMode::Update => "update",
            WriteMode::Upsert => "upsert",
        }
    }
}

/// A whole extension to create or to replace, for [`Extensions::put`]:
/// everything but its history. Credentials are kept as they are when
/// `None` (an extension created without any cannot register).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionWrite {
    /// Create, update or either.
    pub mode: WriteMode,
    /// Its number; an existing extension with it is replaced.
    pub number: String,
    /// Display name.
    pub name: String,
    /// Other names that reach it.
    pub aliases: Vec<String>,
    /// New credentials, or `None` to keep the current ones.
    pub credentials: Option<SipCredentials>,
    /// Call handling settings.
    pub settings: CallSettings,
    /// Voicemail details and directory entry.
    pub profile: Profile,
    /// Write only if the extension exists and its version
    /// ([`Extension::updated_at`]) is still this one; otherwise
    /// [`StoreError::Changed`] and nothing of the batch is written.
    pub if_version: Option<SystemTime>,
    /// The console users of the extension (role extension user): `None`
    /// keeps those it has; otherwise it has exactly these afterwards,
    /// the others removed with their sessions, and one with a password
    /// hash created (a [`StoreError::Conflict`] if the e-mail is taken).
    pub users: Option<Vec<PersonalUser>>,
}

#[derive(SurrealValue)]
struct WriteRow {
    mode: String,
    if_version: Option<Datetime>,
    number: String,
    names: Vec<String>,
    name: String,
    aliases: Vec<String>,
    credentials: Option<SecretRow>,
    settings: SettingsRow,
    profile: ProfileRow,
    users: Option<PersonalRows>,
}

/// Extension repository; get one from [`Store::extensions`](crate::Store::extensions).
#[derive(Debug, Clone, Copy)]
pub struct Extensions<'a> {
    pub(crate) db: &'a Surreal<Any>,
}

#[derive(SurrealValue)]
struct CredentialRow {
    username: String,
    md5_ha1: String,
    sha256_ha1: String,
}

#[derive(SurrealValue)]
struct NewExtensionRow {
    tenant: RecordId,
    number: String,
    name: String,
    aliases: Vec<String>,
    credentials: Vec<CredentialRow>,
    sealed_password: Option<String>,
}

#[derive(SurrealValue)]
struct ExtensionRow {
    tenant: RecordId,
    number: String,
    name: String,
    aliases: Vec<String>,
    credentials: Vec<CredentialRow>,
    sealed_password: Option<String>,
    settings: Option<SettingsRow>,
    profile: Option<ProfileRow>,
    created_at: Datetime,
    updated_at: Datetime,
}

impl ExtensionRow {
    fn into_extension(self) -> Result<Extension, StoreError> {
        Ok(Extension {
            tenant: code_of("extension", self.tenant)?,
            number: self.number,
            name: self.name,
            aliases: self.aliases,
            credentials: SipCredentials {
                entries: self
                    .credentials
                    .into_iter()
                    .map(|c| CredentialEntry {
                        username: c.username,
                        md5_ha1: c.md5_ha1,
                        sha256_ha1: c.sha256_ha1,
                    })
                    .collect(),
                sealed: self.sealed_password,
            },
            settings: self.settings.unwrap_or_default().into_settings()?,
            profile: self.profile.map(Profile::from).unwrap_or_default(),
            created_at: from_datetime(&self.created_at),
            updated_at: from_datetime(&self.updated_at),
        })
    }
}

impl Extensions<'_> {
    /// Adds an extension to a tenant.
    ///
    /// Fails with [`StoreError::InvalidField`] naming the field for
    /// malformed input, [`StoreError::Conflict`] if the number or an alias is
    /// already a number or alias in the tenant, [`StoreError::NotFound`] if
    /// the tenant does not exist and [`StoreError::LimitReached`] if the
    /// tenant is at its `max_extensions`. Nothing is written on failure.
    pub async fn add(&self, tenant: &str, new: NewExtension) -> Result<Extension, StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(&new.number)?;
        let name = extension_name(&new.name)?;
        let aliases = aliases(&number, &new.aliases)?;
        let sealed = sealed(new.credentials.sealed.clone())?;
        let credentials = credential_rows(&code, &number, new.credentials)?;
        let names: Vec<String> = std::iter::once(number.clone())
            .chain(aliases.iter().cloned())
            .collect();
        let row = NewExtensionRow {
            tenant: tenant_id(&code),
            number: number.clone(),
            name,
            aliases,
            credentials,
            sealed_password: sealed,
        };
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                FOR $n IN $names {
                    IF record::exists(type::record('dial_name', [$code, $n])) {
                        THROW 'edgepbx:conflict:number or alias ' + $n + ' in tenant ' + $code;
                    };
                };
                LET $limit = (SELECT VALUE limits.max_extensions FROM $tenant)[0];
                IF $limit != NONE AND array::len((SELECT VALUE id FROM extension WHERE tenant = $tenant)) >= $limit {
                    THROW 'edgepbx:limit:max_extensions:' + <string> $limit;
                };
                LET $ext = type::record('extension', [$code, $number]);
                CREATE $ext CONTENT $row;
                FOR $n IN $names {
                    CREATE type::record('dial_name', [$code, $n])
                        CONTENT { tenant: $tenant, name: $n, extension: $ext };
                };
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code.clone()))
            .bind(("number", number.clone()))
            .bind(("names", names))
            .bind(("row", row)))
        .await?;
        self.get(&code, &number)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("extension {number} in tenant {code}"),
            })
    }

    /// Creates or replaces extensions of one tenant, all in one
    /// transaction: every write is checked first, and a failure (a malformed
    /// value, a number or alias taken by another extension, the tenant's
    /// extension limit) leaves the tenant as it was. Aliases an extension no
    /// longer has are freed.
    pub async fn put(&self, tenant: &str, writes: Vec<ExtensionWrite>) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let mut rows = Vec::with_capacity(writes.len());
        for w in writes {
            let number = extension_number(&w.number)?;
            let aliases = aliases(&number, &w.aliases)?;
            w.settings.validate()?;
            w.profile.validate()?;
            let credentials = w
                .credentials
                .map(|c| {
                    Ok::<_, StoreError>(SecretRow {
                        sealed: sealed(c.sealed.clone())?,
                        credentials: credential_rows(&code, &number, c)?,
                    })
                })
                .transpose()?;
            let users = w
                .users
                .map(|u| PersonalRows::of(&code, &number, u))
                .transpose()?;
            rows.push(WriteRow {
                mode: w.mode.as_str().to_owned(),
                if_version: version_required(w.if_version)?,
                names: std::iter::once(number.clone())
                    .chain(aliases.iter().cloned())
                    .collect(),
                number,
                name: extension_name(&w.name)?,
                aliases,
                credentials,
                settings: SettingsRow::from(&w.settings),
                profile: ProfileRow::from(&w.profile),
                users,
            });
        }
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                IF !record::exists($tenant) { THROW 'edgepbx:not_found:tenant ' + $code; };
                FOR $w IN $rows {
                    LET $ext = type::record('extension', [$code, $w.number]);
                    IF $w.mode = 'create' AND record::exists($ext) {
                        THROW 'edgepbx:conflict:extension ' + $w.number + ' in tenant ' + $code;
                    };
                    IF $w.mode = 'update' AND !record::exists($ext) {
                        THROW 'edgepbx:not_found:extension ' + $w.number + ' in tenant ' + $code;
                    };
                    IF $w.if_version != NONE
                        AND (SELECT VALUE updated_at FROM $ext)[0] != $w.if_version {
                        THROW 'edgepbx:changed:extension ' + $w.number + ' in tenant ' + $code;
                    };
                    FOR $n IN $w.names {
                        LET $d = type::record('dial_name', [$code, $n]);
                        IF record::exists($d) AND (SELECT VALUE extension FROM $d)[0] != $ext {
                            THROW 'edgepbx:conflict:number or alias ' + $n + ' in tenant ' + $code;
                        };
                    };
                    DELETE dial_name WHERE extension = $ext AND name NOTINSIDE $w.names;
                    FOR $n IN $w.names {
                        UPSERT type::record('dial_name', [$code, $n])
                            CONTENT { tenant: $tenant, name: $n, extension: $ext };
                    };
                    IF record::exists($ext) {
                        UPDATE $ext SET name = $w.name, aliases = $w.aliases,
                            settings = $w.settings, profile = $w.profile;
                    } ELSE {
                        CREATE $ext CONTENT {
                            tenant: $tenant, number: $w.number, name: $w.name,
                            aliases: $w.aliases, credentials: [],
                            settings: $w.settings, profile: $w.profile,
                        };
                    };
                    IF $w.credentials != NONE {
                        UPDATE $ext SET credentials = $w.credentials.credentials,
                            sealed_password = $w.credentials.sealed;
                    };
                    IF $w.users != NONE {
                        LET $mine = SELECT VALUE id FROM console_user
                            WHERE tenant = $tenant AND extension = $w.number;
                        FOR $id IN $w.users.kept {
                            IF $id NOTINSIDE $mine {
                                THROW 'edgepbx:conflict:user ' + <string> record::id($id)
                                    + ' (not a user of extension ' + $w.number + ')';
                            };
                        };
                        LET $gone = SELECT VALUE id FROM console_user
                            WHERE tenant = $tenant AND extension = $w.number
                            AND id NOTINSIDE $w.users.all;
                        DELETE session WHERE user IN $gone;
                        DELETE $gone;
                        FOR $u IN $w.users.create {
                            IF record::exists($u.id) {
                                THROW 'edgepbx:conflict:user ' + $u.row.email;
                            };
                            CREATE $u.id CONTENT $u.row;
                        };
                    };
                };
                LET $limit = (SELECT VALUE limits.max_extensions FROM $tenant)[0];
                IF $limit != NONE AND array::len((SELECT VALUE id FROM extension WHERE tenant = $tenant)) > $limit {
                    THROW 'edgepbx:limit:max_extensions:' + <string> $limit;
                };
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("rows", rows)))
        .await?;
        Ok(())
    }

    /// The extension with this number in the tenant, if any.
    pub async fn get(&self, tenant: &str, number: &str) -> Result<Option<Extension>, StoreError> {
        let row: Option<ExtensionRow> = by_number(self.db, "extension", tenant, number).await?;
        row.map(ExtensionRow::into_extension).transpose()
    }

    /// Every extension of the tenant, by number (shorter numbers first).
    pub async fn list(&self, tenant: &str) -> Result<Vec<Extension>, StoreError> {
        let code = tenant_code(tenant)?;
        let mut res = run(self
            .db
            .query("SELECT * FROM extension WHERE tenant = $tenant")
            .bind(("tenant", tenant_id(&code))))
        .await?;
        let rows: Vec<ExtensionRow> = res.take(0)?;
        let mut list = rows
            .into_iter()
            .map(ExtensionRow::into_extension)
            .collect::<Result<Vec<_>, _>>()?;
        list.sort_by(|a, b| number_order(&a.number, &b.number));
        Ok(list)
    }

    /// The extension a dialled name reaches in the tenant: its number or one
    /// of its aliases. `None` if nothing in the tenant answers to it
    /// (including names that could not be a number or an alias at all).
    pub async fn resolve(
        &self,
        tenant: &str,
        number_or_alias: &str,
    ) -> Result<Option<Extension>, StoreError> {
        let code = tenant_code(tenant)?;
        let name = number_or_alias.to_ascii_lowercase();
        if extension_number(&name).is_err() && alias(&name).is_err() {
            return Ok(None);
        }
        let mut res = run(self
            .db
            .query("SELECT VALUE extension.* FROM type::record('dial_name', [$code, $name])")
            .bind(("code", code))
            .bind(("name", name)))
        .await?;
        let row: Option<ExtensionRow> = res.take(0)?;
        row.map(ExtensionRow::into_extension).transpose()
    }

    /// Replaces an extension's credentials (a password change).
    pub async fn set_credentials(
        &self,
        tenant: &str,
        number: &str,
        credentials: SipCredentials,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(number)?;
        let sealed = sealed(credentials.sealed.clone())?;
        let credentials = credential_rows(&code, &number, credentials)?;
        self.update(
            code,
            number,
            "credentials = $value.credentials, sealed_password = $value.sealed",
            SecretRow {
                credentials,
                sealed,
            },
        )
        .await
    }

    /// Replaces an extension's call settings (checked first; nothing is
    /// written when a value is invalid).
    pub async fn set_settings(
        &self,
        tenant: &str,
        number: &str,
        settings: &CallSettings,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(number)?;
        settings.validate()?;
        self.update(
            code,
            number,
            "settings = $value",
            SettingsRow::from(settings),
        )
        .await
    }

    /// Changes the one setting a phone's feature key sets, leaving the
    /// others as they are now (a change made elsewhere meanwhile stays).
    pub async fn set_feature_key(
        &self,
        tenant: &str,
        number: &str,
        key: &FeatureKey,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(number)?;
        match key {
            FeatureKey::Dnd(on) => {
                self.update(code, number, "settings.dnd = $value", *on)
                    .await
            }
            FeatureKey::Forward(when, target) => {
                if let Some(ForwardTarget::Number(n)) = target {
                    edgepbx_model::dialable("forward", n)?;
                }
                let assignment = match when {
                    ForwardWhen::Always => "settings.forward_unconditional = $value",
                    ForwardWhen::Busy => "settings.forward_busy = $value",
                    ForwardWhen::NoAnswer => "settings.forward_no_answer = $value",
                };
                let value = target.as_ref().map(ToString::to_string);
                self.update(code, number, assignment, value).await
            }
        }
    }

    /// Sets fields of an existing extension from `$value`.
    async fn update<T: SurrealValue>(
        &self,
        code: String,
        number: String,
        assignments: &'static str,
        value: T,
    ) -> Result<(), StoreError> {
        run(self
            .db
            .query(format!(
                "BEGIN TRANSACTION;
                LET $ext = type::record('extension', [$code, $number]);
                IF !record::exists($ext) {{
                    THROW 'edgepbx:not_found:extension ' + $number + ' in tenant ' + $code;
                }};
                UPDATE $ext SET {assignments};
                COMMIT TRANSACTION;"
            ))
            .bind(("code", code))
            .bind(("number", number))
            .bind(("value", value)))
        .await?;
        Ok(())
    }

    /// Removes an extension, its aliases, its registration bindings and
    /// its desk phones (and what they fetched);
    /// with `if_version`, only if its version ([`Extension::updated_at`]) is
    /// still that one ([`StoreError::Changed`] otherwise).
    pub async fn remove(
        &self,
        tenant: &str,
        number: &str,
        if_version: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let code = tenant_code(tenant)?;
        let number = extension_number(number)?;
        let if_version = version_required(if_version)?;
        run(self
            .db
            .query(
                "BEGIN TRANSACTION;
                LET $ext = type::record('extension', [$code, $number]);
                IF !record::exists($ext) {
                    THROW 'edgepbx:not_found:extension ' + $number + ' in tenant ' + $code;
                };
                IF $if_version != NONE AND (SELECT VALUE updated_at FROM $ext)[0] != $if_version {
                    THROW 'edgepbx:changed:extension ' + $number + ' in tenant ' + $code;
                };
                DELETE dial_name WHERE extension = $ext;
                UPDATE ring_group SET members -= $number
                    WHERE tenant = $tenant AND members CONTAINS $number;
                UPDATE contact SET extension = NONE WHERE tenant = $tenant AND extension = $number;
                DELETE binding WHERE tenant = $tenant AND extension = $number;
                DELETE provisioning_fetch WHERE tenant = $tenant
                    AND mac IN (SELECT VALUE mac FROM device WHERE tenant = $tenant AND extension = $number);
                DELETE device WHERE tenant = $tenant AND extension = $number;
                LET $users = SELECT VALUE id FROM console_user
                    WHERE tenant = $tenant AND extension = $number;
                DELETE session WHERE user IN $users;
                DELETE $users;
                DELETE $ext;
                COMMIT TRANSACTION;",
            )
            .bind(("tenant", tenant_id(&code)))
            .bind(("code", code))
            .bind(("number", number))
            .bind(("if_version", if_version)))
        .await?;
        Ok(())
    }

    /// Every tenant with its extensions, by tenant code: what the server
    /// loads into memory at start.
    pub async fn all(&self) -> Result<Vec<(Tenant, Vec<Extension>)>, StoreError> {
        let mut res = run(self
            .db
            .query("SELECT * FROM tenant; SELECT * FROM extension;"))
        .await?;
        let tenants: Vec<TenantRow> = res.take(0)?;
        let extensions: Vec<ExtensionRow> = res.take(1)?;
        let mut by_code: BTreeMap<String, (Tenant, Vec<Extension>)> = tenants
            .into_iter()
            .map(|row| {
                let tenant = Tenant::from(row);
                (tenant.code.clone(), (tenant, Vec::new()))
            })
            .collect();
        for row in extensions {
            let extension = row.into_extension()?;
            match by_code.get_mut(&extension.tenant) {
                Some((_, list)) => list.push(extension),
                None => {
                    return Err(StoreError::InvalidRecord {
                        table: "extension",
                        reason: format!(
                            "extension {} belongs to missing tenant {}",
                            extension.number, extension.tenant
                        ),
                    });
                }
            }
        }
        Ok(by_code
            .into_values()
            .map(|(tenant, mut list)| {
                list.sort_by(|a, b| number_order(&a.number, &b.number));
                (tenant, list)
            })
            .collect())
    }
}

/// Numeric order for digit strings of any length (`9` before `10`): how
/// extensions and groups are listed.
pub fn number_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The record `table:[<tenant code>, <number>]` (an extension or a group),
/// if there is one; `tenant` and `number` are checked first.
pub(crate) async fn by_number<R: SurrealValue>(
    db: &Surreal<Any>,
    table: &'static str,
    tenant: &str,
    number: &str,
) -> Result<Option<R>, StoreError> {
    let code = tenant_code(tenant)?;
    let number = extension_number(number)?;
    let mut res = run(db
        .query("SELECT * FROM type::record($table, [$code, $number])")
        .bind(("table", table))
        .bind(("code", code))
        .bind(("number", number)))
    .await?;
    Ok(res.take(0)?)
}

/// A valid extension number (1 to 15 digits), or why it is not one.
pub(crate) fn extension_number(number: &str) -> Result<String, StoreError> {
    if !(1..=15).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::invalid("number", "must be 1 to 15 digits"));
    }
    Ok(number.to_owned())
}

fn extension_name(name: &str) -> Result<String, StoreError> {
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::invalid(
            "name",
            "must be at most 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// The canonical form of one alias, or why it is not one.
fn alias(alias: &str) -> Result<String, StoreError> {
    let alias = alias.to_ascii_lowercase();
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_+".contains(&b);
    if !(1..=MAX_ALIAS_LEN).contains(&alias.len()) || !alias.bytes().all(ok_char) {
        return Err(StoreError::invalid(
            "aliases",
            format!("alias {alias:?} must be 1 to 64 characters of a-z, 0-9, '.', '_', '+', '-'"),
        ));
    }
    Ok(alias)
}

/// The canonical aliases of extension `number`, checked against each other.
fn aliases(number: &str, list: &[String]) -> Result<Vec<String>, StoreError> {
    if list.len() > MAX_ALIASES {
        return Err(StoreError::invalid(
            "aliases",
            format!("at most {MAX_ALIASES} aliases"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in list {
        let a = alias(a)?;
        if a == number || out.contains(&a) {
            return Err(StoreError::invalid(
                "aliases",
                format!("alias {a} is given twice or equals the number"),
            ));
        }
        out.push(a);
    }
    Ok(out)
}

/// Checks credentials for extension `number` of tenant `code`.
fn credential_rows(
    code: &str,
    number: &str,
    creds: SipCredentials,
) -> Result<Vec<CredentialRow>, StoreError> {
    let long = format!("{number}-{code}");
    let mut rows: Vec<CredentialRow> = Vec::with_capacity(creds.entries.len());
    for e in creds.entries {
        if e.username != number && e.username != long {
            return Err(StoreError::invalid(
                "credentials",
                format!("username {:?} must be {number} or {long}", e.username),
            ));
        }
        if rows.iter().any(|r| r.username == e.username) {
            return Err(StoreError::invalid(
                "credentials",
                format!("username {} is given twice", e.username),
            ));
        }
        rows.push(CredentialRow {
            username: e.username,
            md5_ha1: hex_digest("credentials.md5_ha1", &e.md5_ha1, 32)?,
            sha256_ha1: hex_digest("credentials.sha256_ha1", &e.sha256_ha1, 64)?,
        });
    }
    Ok(rows)
}

/// Checks a sealed password: URL-safe base64 text of bounded length.
fn sealed(value: Option<String>) -> Result<Option<String>, StoreError> {
    if let Some(v) = &value
        && (v.is_empty()
            || v.len() > MAX_HASH_LEN
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(StoreError::invalid(
            "credentials.sealed",
            "must be URL-safe base64 of at most 256 characters",
        ));
    }
    Ok(value)
}

/// A lower-case hex digest of `len` digits, or why it is not one.
fn hex_digest(field: &'static str, value: &str, len: usize) -> Result<String, StoreError> {
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::invalid(
            field,
            format!("must be {len} hex digits"),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_digits_only() {
        assert!(extension_number("100").is_ok());
        assert!(extension_number("123456789012345").is_ok());
        for bad in ["", "1234567890123456", "10a", "+100", "١٠٠"] {
            assert!(extension_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn aliases_are_folded_and_must_be_distinct() {
        assert_eq!(
            aliases("100", &["Sales".into(), "+4930123".into()]).ok(),
            Some(vec!["sales".into(), "+4930123".into()])
        );
        assert!(aliases("100", &["sales".into(), "SALES".into()]).is_err());
        assert!(aliases("100", &["100".into()]).is_err());
        assert!(aliases("100", &["sa les".into()]).is_err());
    }

    #[test]
    fn credentials_name_this_extension() {
        let entry = |username: &str| CredentialEntry {
            username: username.into(),
            md5_ha1: "A".repeat(32),
            sha256_ha1: "b".repeat(64),
        };
        let rows = credential_rows(
            "ACME",
            "100",
            SipCredentials {
                entries: vec![entry("100"), entry("100-ACME")],
                sealed: None,
            },
        );
        assert_eq!(
            rows.ok().map(|r| r[0].md5_ha1.clone()),
            Some("a".repeat(32))
        );
        assert!(
            credential_rows(
                "ACME",
                "100",
                SipCredentials {
                    entries: vec![entry("101")],
                    sealed: None,
                }
            )
            .is_err()
        );
        assert!(
            credential_rows(
                "ACME",
                "100",
                SipCredentials {
                    entries: vec![entry("100"), entry("100")],
                    sealed: None,
                }
            )
            .is_err()
        );
    }

    #[test]
    fn ha1_is_redacted_in_debug() {
        let e = CredentialEntry {
            username: "100".into(),
            md5_ha1: "0123456789abcdef0123456789abcdef".into(),
            sha256_ha1: "f".repeat(64),
        };
        assert!(!format!("{e:?}").contains("0123456789abcdef"));
    }
}
