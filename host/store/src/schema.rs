//! The schema, as an ordered list of versioned migrations.
//!
//! Each [`Migration`] is applied once, in its own transaction together with
//! the `migration:<version>` record that says it was applied, so a crash or
//! a second node racing on the same remote database leaves either all of a
//! migration or none of it. Opening a database whose highest applied
//! version is above [`SCHEMA_VERSION`] fails with
//! [`StoreError::SchemaTooNew`]: an older binary must not write to a schema
//! it does not know.
//!
//! Never edit a migration that has shipped; add a new one.

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use tracing::info;

use crate::StoreError;
use crate::db::run;

/// One step of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Position in the sequence, from 1, without gaps.
    pub version: u32,
    /// What it does, recorded next to the version.
    pub name: &'static str,
    /// The SurrealQL it runs (inside a transaction).
    pub surql: &'static str,
}

/// The schema version this build brings a database to.
pub const SCHEMA_VERSION: u32 = 16;

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants, extensions, bindings, registration events, server secret",
        surql: V1_INITIAL,
    },
    Migration {
        version: 2,
        name: "policy modules and the policies' key-value store",
        surql: V2_POLICIES,
    },
    Migration {
        version: 3,
        name: "extension call settings, ring groups and virtual extensions",
        surql: V3_CALL_ROUTING,
    },
    Migration {
        version: 4,
        name: "call detail records",
        surql: V4_CALL_RECORDS,
    },
    Migration {
        version: 5,
        name: "SIP trunks",
        surql: V5_TRUNKS,
    },
    Migration {
        version: 6,
        name: "a tenant's limit on simultaneous calls",
        surql: V6_CALL_LIMIT,
    },
    Migration {
        version: 7,
        name: "console users, API keys, sessions, audit trail, contacts, extension profiles",
        surql: V7_ADMINISTRATION,
    },
    Migration {
        version: 8,
        name: "ring groups and contacts record when they last changed",
        surql: V8_VERSIONS,
    },
    Migration {
        version: 9,
        name: "a tenant's pickup code and BLF privacy",
        surql: V9_FEATURES,
    },
    Migration {
        version: 10,
        name: "an extension's away status",
        surql: V10_AWAY,
    },
    Migration {
        version: 11,
        name: "desk phones for provisioning, their fetches, a tenant's provisioning credential",
        surql: V11_DEVICES,
    },
    Migration {
        version: 12,
        name: "voice messages",
        surql: V12_VOICEMAIL,
    },
    Migration {
        version: 13,
        name: "voice messages' transcripts and e-mails, mailbox options and PIN locks",
        surql: V13_VOICEMAIL_DELIVERY,
    },
    Migration {
        version: 14,
        name: "extension users: console users linked to one extension",
        surql: V14_EXTENSION_USERS,
    },
    Migration {
        version: 15,
        name: "the id of the key that seals stored secrets",
        surql: V15_SEALING_KEY,
    },
    Migration {
        version: 16,
        name: "indexes by age for retention",
        surql: V16_RETENTION,
    },
];

/// The bookkeeping table itself; safe to run on every open.
const BOOTSTRAP: &str = "
DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS version ON migration TYPE int;
DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE datetime DEFAULT time::now() READONLY;
";

const V1_INITIAL: &str = r#"
DEFINE TABLE tenant SCHEMAFULL;
DEFINE FIELD code ON tenant TYPE string READONLY
    ASSERT string::matches($value, '^[A-Z0-9]{2,16}$');
DEFINE FIELD sip_domain ON tenant TYPE string
    ASSERT $value = string::lowercase($value) AND string::len($value) >= 1 AND string::len($value) <= 253;
DEFINE FIELD created_at ON tenant TYPE datetime DEFAULT time::now() READONLY;
DEFINE FIELD limits ON tenant TYPE object DEFAULT {};
DEFINE FIELD limits.max_extensions ON tenant TYPE option<int>
    ASSERT $value = NONE OR $value >= 0;
DEFINE FIELD limits.max_bindings_per_extension ON tenant TYPE option<int>
    ASSERT $value = NONE OR $value >= 0;
DEFINE INDEX tenant_code ON tenant FIELDS code UNIQUE;
DEFINE INDEX tenant_sip_domain ON tenant FIELDS sip_domain UNIQUE;

-- Record id: extension:[<TENANT CODE>, <number>].
DEFINE TABLE extension SCHEMAFULL;
DEFINE FIELD tenant ON extension TYPE record<tenant> READONLY;
DEFINE FIELD number ON extension TYPE string READONLY
    ASSERT string::matches($value, '^[0-9]{1,15}$');
DEFINE FIELD name ON extension TYPE string ASSERT string::len($value) <= 100;
DEFINE FIELD aliases ON extension TYPE array<string>;
DEFINE FIELD credentials ON extension TYPE array<object>;
DEFINE FIELD credentials[*].username ON extension TYPE string;
DEFINE FIELD credentials[*].md5_ha1 ON extension TYPE string
    ASSERT string::matches($value, '^[0-9a-f]{32}$');
DEFINE FIELD credentials[*].sha256_ha1 ON extension TYPE string
    ASSERT string::matches($value, '^[0-9a-f]{64}$');
DEFINE FIELD created_at ON extension TYPE datetime DEFAULT time::now() READONLY;
DEFINE FIELD updated_at ON extension TYPE datetime VALUE time::now();
DEFINE INDEX extension_number ON extension FIELDS tenant, number UNIQUE;

-- Every name a caller can dial in a tenant: extension numbers and aliases
-- share one namespace, which the unique index (and the record id
-- dial_name:[<TENANT CODE>, <name>]) enforces.
DEFINE TABLE dial_name SCHEMAFULL;
DEFINE FIELD tenant ON dial_name TYPE record<tenant>;
DEFINE FIELD name ON dial_name TYPE string;
DEFINE FIELD extension ON dial_name TYPE record<extension>;
DEFINE INDEX dial_name_name ON dial_name FIELDS tenant, name UNIQUE;
DEFINE INDEX dial_name_extension ON dial_name FIELDS extension;

-- Record id: binding:[<TENANT CODE>, <extension number>, <contact URI>], so a
-- later write for the same contact replaces the earlier one.
DEFINE TABLE binding SCHEMAFULL;
DEFINE FIELD tenant ON binding TYPE record<tenant>;
DEFINE FIELD extension ON binding TYPE string;
DEFINE FIELD contact ON binding TYPE string;
DEFINE FIELD expires_at ON binding TYPE datetime;
DEFINE FIELD q ON binding TYPE option<string>;
DEFINE FIELD call_id ON binding TYPE string;
DEFINE FIELD cseq ON binding TYPE int;
DEFINE FIELD instance_id ON binding TYPE option<string>;
DEFINE FIELD reg_id ON binding TYPE option<int>;
DEFINE FIELD user_agent ON binding TYPE option<string>;
DEFINE FIELD source ON binding TYPE string;
DEFINE FIELD transport ON binding TYPE string
    ASSERT $value IN ['udp', 'tcp', 'tls', 'ws', 'wss'];
DEFINE FIELD updated_at ON binding TYPE datetime VALUE time::now();
DEFINE INDEX binding_extension ON binding FIELDS tenant, extension;

DEFINE TABLE registration_event SCHEMAFULL;
DEFINE FIELD tenant ON registration_event TYPE record<tenant>;
DEFINE FIELD extension ON registration_event TYPE string;
DEFINE FIELD at ON registration_event TYPE datetime;
DEFINE FIELD kind ON registration_event TYPE string
    ASSERT $value IN ['online', 'offline', 'refreshed'];
DEFINE FIELD contact ON registration_event TYPE string;
DEFINE FIELD reason ON registration_event TYPE string
    ASSERT string::matches($value, '^[a-z][a-z_]{0,31}$');
DEFINE FIELD source ON registration_event TYPE string;
DEFINE FIELD user_agent ON registration_event TYPE option<string>;
-- `at` as Unix nanoseconds, computed by the database. The time-window index
-- is on this integer rather than on `at`: in SurrealDB 3.3.5 an index range
-- bound on a datetime with zero nanoseconds skips rows later in the same
-- second (the datetime key encoding misorders them), integers are exact.
DEFINE FIELD at_ns ON registration_event TYPE int VALUE time::nano(at);
DEFINE INDEX registration_event_at ON registration_event FIELDS tenant, extension, at_ns;

-- One row, server_secret:main.
DEFINE TABLE server_secret SCHEMAFULL;
DEFINE FIELD key ON server_secret TYPE string READONLY
    ASSERT string::matches($value, '^[0-9a-f]{64}$');
DEFINE FIELD created_at ON server_secret TYPE datetime DEFAULT time::now() READONLY;
"#;

const V2_POLICIES: &str = r#"
-- Record id: policy_module:[<TENANT CODE>, <version>]. Versions count up
-- from 1 per tenant; at most one module of a tenant is active.
DEFINE TABLE policy_module SCHEMAFULL;
DEFINE FIELD tenant ON policy_module TYPE record<tenant> READONLY;
DEFINE FIELD version ON policy_module TYPE int READONLY ASSERT $value >= 1;
DEFINE FIELD hash ON policy_module TYPE string READONLY
    ASSERT string::matches($value, '^[0-9a-f]{64}$');
DEFINE FIELD size ON policy_module TYPE int READONLY;
DEFINE FIELD wasm ON policy_module TYPE bytes READONLY;
DEFINE FIELD uploader ON policy_module TYPE string READONLY
    ASSERT string::len($value) >= 1 AND string::len($value) <= 100;
DEFINE FIELD uploaded_at ON policy_module TYPE datetime DEFAULT time::now() READONLY;
DEFINE FIELD active ON policy_module TYPE bool DEFAULT false;
DEFINE FIELD deactivated_reason ON policy_module TYPE option<string>;
DEFINE FIELD deactivated_at ON policy_module TYPE option<datetime>;
DEFINE INDEX policy_module_version ON policy_module FIELDS tenant, version UNIQUE;
DEFINE INDEX policy_module_hash ON policy_module FIELDS tenant, hash UNIQUE;
DEFINE INDEX policy_module_active ON policy_module FIELDS active;

-- Record id: policy_kv:[<TENANT CODE>, <key>].
DEFINE TABLE policy_kv SCHEMAFULL;
DEFINE FIELD tenant ON policy_kv TYPE record<tenant>;
DEFINE FIELD key ON policy_kv TYPE string ASSERT string::len($value) <= 128;
DEFINE FIELD value ON policy_kv TYPE string ASSERT string::len($value) <= 1024;
DEFINE INDEX policy_kv_tenant ON policy_kv FIELDS tenant;
"#;

const V3_CALL_ROUTING: &str = r#"
-- Call settings; every field optional so that older rows read as defaults.
DEFINE FIELD settings ON extension TYPE object DEFAULT {};
DEFINE FIELD settings.ring_timeout_secs ON extension TYPE option<int>
    ASSERT $value = NONE OR ($value >= 1 AND $value <= 600);
DEFINE FIELD settings.dnd ON extension TYPE option<bool>;
DEFINE FIELD settings.forward_unconditional ON extension TYPE option<string>;
DEFINE FIELD settings.forward_busy ON extension TYPE option<string>;
DEFINE FIELD settings.forward_no_answer ON extension TYPE option<string>;
DEFINE FIELD settings.forward_offline ON extension TYPE option<string>;
DEFINE FIELD settings.follow_me_mode ON extension TYPE option<string>
    ASSERT $value = NONE OR $value IN ['simultaneous', 'sequential'];
DEFINE FIELD settings.follow_me ON extension TYPE option<array<object>>;
DEFINE FIELD settings.follow_me[*].number ON extension TYPE string;
DEFINE FIELD settings.follow_me[*].timeout_secs ON extension TYPE int;
DEFINE FIELD settings.voicemail ON extension TYPE option<bool>;
DEFINE FIELD settings.outbound_caller_id ON extension TYPE option<string>;
DEFINE FIELD settings.inbound_prefix ON extension TYPE option<string>;
DEFINE FIELD settings.allowed_destinations ON extension TYPE option<string>;
UPDATE extension SET settings = {} WHERE settings = NONE;

-- Record id: ring_group:[<TENANT CODE>, <number>].
DEFINE TABLE ring_group SCHEMAFULL;
DEFINE FIELD tenant ON ring_group TYPE record<tenant> READONLY;
DEFINE FIELD number ON ring_group TYPE string READONLY
    ASSERT string::matches($value, '^[0-9]{1,15}$');
DEFINE FIELD name ON ring_group TYPE string ASSERT string::len($value) <= 100;
DEFINE FIELD kind ON ring_group TYPE string ASSERT $value IN ['ring', 'virtual'];
DEFINE FIELD strategy ON ring_group TYPE string
    ASSERT $value IN ['ring-all', 'hunt', 'round-robin', 'random', 'least-recent'];
DEFINE FIELD members ON ring_group TYPE array<string>;
DEFINE FIELD ring_timeout_secs ON ring_group TYPE int ASSERT $value >= 1 AND $value <= 600;
DEFINE FIELD no_answer ON ring_group TYPE option<string>;
DEFINE INDEX ring_group_tenant ON ring_group FIELDS tenant;

-- A dialled name reaches an extension or a group.
DEFINE FIELD OVERWRITE extension ON dial_name TYPE option<record<extension>>;
DEFINE FIELD group ON dial_name TYPE option<record<ring_group>>;
DEFINE INDEX dial_name_group ON dial_name FIELDS group;
"#;

const V4_CALL_RECORDS: &str = r#"
DEFINE TABLE call_record SCHEMAFULL;
DEFINE FIELD tenant ON call_record TYPE record<tenant>;
DEFINE FIELD call_id ON call_record TYPE string;
DEFINE FIELD caller ON call_record TYPE string;
DEFINE FIELD dialled ON call_record TYPE string;
DEFINE FIELD answered_by ON call_record TYPE option<string>;
DEFINE FIELD started_at ON call_record TYPE datetime;
DEFINE FIELD answered_at ON call_record TYPE option<datetime>;
DEFINE FIELD ended_at ON call_record TYPE datetime;
DEFINE FIELD duration_secs ON call_record TYPE int;
DEFINE FIELD outcome ON call_record TYPE string;
DEFINE FIELD cause ON call_record TYPE string;
DEFINE FIELD policy ON call_record TYPE string;
-- Unix nanoseconds of the end, for ordering (see registration_event.at_ns).
DEFINE FIELD ended_ns ON call_record TYPE int VALUE time::nano(ended_at);
DEFINE INDEX call_record_tenant_ended ON call_record FIELDS tenant, ended_ns;
"#;

const V5_TRUNKS: &str = r#"
-- Record id: trunk:[<TENANT CODE>, <name>].
DEFINE TABLE trunk SCHEMAFULL;
DEFINE FIELD tenant ON trunk TYPE record<tenant>;
DEFINE FIELD name ON trunk TYPE string ASSERT string::matches($value, '^[a-z0-9-]{1,32}$');
DEFINE FIELD host ON trunk TYPE string ASSERT string::len($value) >= 1 AND string::len($value) <= 255;
DEFINE FIELD username ON trunk TYPE option<string>;
DEFINE FIELD password ON trunk TYPE option<string>;
DEFINE FIELD register ON trunk TYPE bool;
DEFINE FIELD caller_id ON trunk TYPE option<string>;
DEFINE FIELD dids ON trunk TYPE array<object>;
DEFINE FIELD dids[*].number ON trunk TYPE string;
DEFINE FIELD dids[*].destination ON trunk TYPE string;
DEFINE INDEX trunk_tenant ON trunk FIELDS tenant;
"#;

const V6_CALL_LIMIT: &str = r#"
DEFINE FIELD limits.max_calls ON tenant TYPE option<int>
    ASSERT $value = NONE OR $value >= 0;
"#;

const V7_ADMINISTRATION: &str = r#"
-- The SIP password sealed with the server key (for an audited reveal).
DEFINE FIELD sealed_password ON extension TYPE option<string>;
DEFINE FIELD profile ON extension TYPE option<object>;
DEFINE FIELD profile.voicemail_email ON extension TYPE option<string>;
DEFINE FIELD profile.voicemail_pin_hash ON extension TYPE option<string>;
DEFINE FIELD profile.listed ON extension TYPE option<bool>;
DEFINE FIELD profile.email ON extension TYPE option<string>;
DEFINE FIELD profile.department ON extension TYPE option<string>;

-- Record id: console_user:<lower-case e-mail>.
DEFINE TABLE console_user SCHEMAFULL;
DEFINE FIELD email ON console_user TYPE string READONLY;
DEFINE FIELD password_hash ON console_user TYPE string ASSERT string::starts_with($value, '$');
DEFINE FIELD role ON console_user TYPE string
    ASSERT $value IN ['system-admin', 'tenant-admin', 'read-only'];
DEFINE FIELD tenant ON console_user TYPE option<record<tenant>>;
DEFINE FIELD created_at ON console_user TYPE datetime DEFAULT time::now() READONLY;
DEFINE INDEX console_user_tenant ON console_user FIELDS tenant;

-- Record id: api_key:<public id>.
DEFINE TABLE api_key SCHEMAFULL;
DEFINE FIELD key_id ON api_key TYPE string READONLY;
DEFINE FIELD tenant ON api_key TYPE record<tenant> READONLY;
DEFINE FIELD name ON api_key TYPE string;
DEFINE FIELD key_hash ON api_key TYPE string ASSERT string::matches($value, '^[0-9a-f]{64}$');
DEFINE FIELD read_only ON api_key TYPE bool;
DEFINE FIELD created_at ON api_key TYPE datetime DEFAULT time::now() READONLY;
DEFINE FIELD last_used_at ON api_key TYPE option<datetime>;
DEFINE INDEX api_key_tenant ON api_key FIELDS tenant;

-- Record id: session:<SHA-256 of the token>.
DEFINE TABLE session SCHEMAFULL;
DEFINE FIELD user ON session TYPE record<console_user>;
DEFINE FIELD expires_at ON session TYPE datetime;
DEFINE INDEX session_user ON session FIELDS user;

DEFINE TABLE audit SCHEMAFULL;
DEFINE FIELD tenant ON audit TYPE record<tenant>;
DEFINE FIELD at ON audit TYPE datetime;
DEFINE FIELD actor ON audit TYPE string;
DEFINE FIELD action ON audit TYPE string;
DEFINE FIELD target ON audit TYPE string;
DEFINE INDEX audit_tenant_at ON audit FIELDS tenant, at;

-- Record id: contact:[<TENANT CODE>, <id>].
DEFINE TABLE contact SCHEMAFULL;
DEFINE FIELD contact_id ON contact TYPE string;
DEFINE FIELD tenant ON contact TYPE record<tenant>;
DEFINE FIELD name ON contact TYPE string;
DEFINE FIELD number ON contact TYPE string;
DEFINE FIELD email ON contact TYPE option<string>;
DEFINE FIELD company ON contact TYPE option<string>;
DEFINE FIELD extension ON contact TYPE option<string>;
DEFINE INDEX contact_tenant ON contact FIELDS tenant;
"#;

/// History is pruned by age: each table's age gets an index of its own
/// (as Unix nanoseconds; see registration_event.at_ns for why).
const V16_RETENTION: &str = "
DEFINE INDEX registration_event_age ON registration_event FIELDS at_ns;
DEFINE INDEX call_record_age ON call_record FIELDS ended_ns;
DEFINE FIELD at_ns ON audit TYPE int VALUE time::nano(at);
UPDATE audit;
DEFINE INDEX audit_age ON audit FIELDS at_ns;
";

/// Which key the stored secrets are sealed under (see `sealing`); none
/// until the first start with a key file has sealed them again.
const V15_SEALING_KEY: &str = "
DEFINE FIELD sealing_key_id ON server_secret TYPE option<string>;
";

const V14_EXTENSION_USERS: &str = r#"
DEFINE FIELD OVERWRITE role ON console_user TYPE string
    ASSERT $value IN ['system-admin', 'tenant-admin', 'read-only', 'extension-user'];
-- The number of an extension user's extension (same tenant); they go
-- with it.
DEFINE FIELD extension ON console_user TYPE option<string>;
DEFINE INDEX console_user_extension ON console_user FIELDS tenant, extension;
"#;

const V13_VOICEMAIL_DELIVERY: &str = r#"
DEFINE FIELD transcript ON voicemail_message TYPE option<string>;
DEFINE FIELD transcript_state ON voicemail_message TYPE string DEFAULT 'off'
    ASSERT $value IN ['off', 'pending', 'done', 'failed'];
DEFINE FIELD email_state ON voicemail_message TYPE string DEFAULT 'off'
    ASSERT $value IN ['off', 'pending', 'done', 'failed'];
DEFINE FIELD email_attempts ON voicemail_message TYPE int DEFAULT 0;
DEFINE FIELD email_next_at ON voicemail_message TYPE option<datetime>;
DEFINE FIELD email_error ON voicemail_message TYPE option<string>;
DEFINE INDEX voicemail_message_work ON voicemail_message FIELDS transcript_state, email_state;
UPDATE voicemail_message SET transcript_state = 'off', email_state = 'off', email_attempts = 0
    WHERE transcript_state = NONE;
-- Attach the audio to the e-mail (default yes); delete the message once
-- e-mailed (default no).
DEFINE FIELD profile.voicemail_attach ON extension TYPE option<bool>;
DEFINE FIELD profile.voicemail_delete_after_email ON extension TYPE option<bool>;
-- Calling one's own mailbox from one's own phone asks no PIN (default no).
DEFINE FIELD profile.voicemail_skip_pin ON extension TYPE option<bool>;
-- The number voicemail callers reach with * (none: nowhere).
DEFINE FIELD features.operator ON tenant TYPE option<string>;
-- Wrong PINs in a row, and the lock they set. Record id:
-- mailbox_lock:[<TENANT CODE>, <mailbox>]; none when all is well.
DEFINE TABLE mailbox_lock SCHEMAFULL;
DEFINE FIELD tenant ON mailbox_lock TYPE record<tenant>;
DEFINE FIELD failures ON mailbox_lock TYPE int DEFAULT 0;
DEFINE FIELD locked_until ON mailbox_lock TYPE option<datetime>;
"#;

const V12_VOICEMAIL: &str = r#"
-- Record id: voicemail_message:[<TENANT CODE>, <message id>]; the audio is
-- <data>/voicemail/<TENANT>/<mailbox>/<message id>.wav.
DEFINE TABLE voicemail_message SCHEMAFULL;
DEFINE FIELD tenant ON voicemail_message TYPE record<tenant> READONLY;
DEFINE FIELD id_text ON voicemail_message TYPE string READONLY;
DEFINE FIELD mailbox ON voicemail_message TYPE string READONLY;
DEFINE FIELD caller ON voicemail_message TYPE string;
DEFINE FIELD caller_name ON voicemail_message TYPE option<string>;
DEFINE FIELD received_at ON voicemail_message TYPE datetime;
DEFINE FIELD duration_ms ON voicemail_message TYPE int ASSERT $value >= 0;
DEFINE FIELD bytes ON voicemail_message TYPE int ASSERT $value >= 0;
DEFINE FIELD saved ON voicemail_message TYPE bool DEFAULT false;
DEFINE FIELD call_id ON voicemail_message TYPE string;
DEFINE INDEX voicemail_message_mailbox ON voicemail_message FIELDS tenant, mailbox;
"#;

const V11_DEVICES: &str = r#"
-- Record id: device:[<TENANT CODE>, <mac>].
DEFINE TABLE device SCHEMAFULL;
DEFINE FIELD tenant ON device TYPE record<tenant> READONLY;
DEFINE FIELD mac ON device TYPE string READONLY
    ASSERT string::matches($value, '^[0-9a-f]{12}$');
DEFINE FIELD vendor ON device TYPE string ASSERT $value IN ['yealink', 'grandstream'];
DEFINE FIELD model ON device TYPE option<string>;
DEFINE FIELD extension ON device TYPE string;
DEFINE FIELD line ON device TYPE int ASSERT $value >= 1 AND $value <= 16;
DEFINE FIELD blf_keys ON device TYPE array<object> DEFAULT [];
DEFINE FIELD blf_keys[*].number ON device TYPE string;
DEFINE FIELD blf_keys[*].label ON device TYPE string;
DEFINE FIELD label ON device TYPE option<string>;
DEFINE FIELD updated_at ON device TYPE datetime VALUE time::now();
DEFINE INDEX device_tenant ON device FIELDS tenant;
DEFINE INDEX device_extension ON device FIELDS tenant, extension;

DEFINE TABLE provisioning_fetch SCHEMAFULL;
DEFINE FIELD tenant ON provisioning_fetch TYPE record<tenant>;
DEFINE FIELD mac ON provisioning_fetch TYPE string;
DEFINE FIELD file ON provisioning_fetch TYPE string;
DEFINE FIELD address ON provisioning_fetch TYPE string;
DEFINE FIELD user_agent ON provisioning_fetch TYPE option<string>;
DEFINE FIELD at ON provisioning_fetch TYPE datetime;
DEFINE INDEX provisioning_fetch_device ON provisioning_fetch FIELDS tenant, mac;

-- SHA-256 of the tenant's provisioning password (a random token).
DEFINE FIELD provisioning_secret ON tenant TYPE option<string>;
"#;

const V10_AWAY: &str = r#"
DEFINE FIELD settings.away ON extension TYPE option<bool>;
"#;

const V9_FEATURES: &str = r#"
DEFINE FIELD features ON tenant TYPE object DEFAULT {};
DEFINE FIELD features.pickup_code ON tenant TYPE option<string>;
DEFINE FIELD features.blf_shows_caller ON tenant TYPE option<bool>;
UPDATE tenant SET features = {} WHERE features = NONE;
"#;

const V8_VERSIONS: &str = r#"
-- Versions of groups and contacts, for conditional writes (If-Match);
-- those stored before this migration get the time it ran.
DEFINE FIELD updated_at ON ring_group TYPE datetime VALUE time::now();
UPDATE ring_group SET updated_at = time::now();
DEFINE FIELD updated_at ON contact TYPE datetime VALUE time::now();
UPDATE contact SET updated_at = time::now();
"#;

/// Brings the database to [`SCHEMA_VERSION`]; returns the version it found.
pub(crate) async fn migrate(db: &Surreal<Any>) -> Result<u32, StoreError> {
    run(db.query(BOOTSTRAP)).await?;
    let found = applied_version(db).await?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > found) {
        let text = format!(
            "BEGIN TRANSACTION;\n{}\nCREATE type::record('migration', $version) SET version = $version, name = $name;\nCOMMIT TRANSACTION;",
            m.surql
        );
        let outcome = run(db
            .query(text)
            .bind(("version", i64::from(m.version)))
            .bind(("name", m.name)))
        .await;
        match outcome {
            Ok(_) => info!(
                version = m.version,
                name = m.name,
                "schema migration applied"
            ),
            // Another node may have applied it in the meantime.
            Err(e) if applied_version(db).await? >= m.version => {
                info!(version = m.version, error = %e, "schema migration applied by another node");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// The highest migration recorded in the database (0 for a new one).
async fn applied_version(db: &Surreal<Any>) -> Result<u32, StoreError> {
    let mut res = run(db.query("SELECT VALUE version FROM migration")).await?;
    let versions: Vec<i64> = res.take(0)?;
    let max = versions.into_iter().max().unwrap_or(0);
    u32::try_from(max).map_err(|_| StoreError::InvalidRecord {
        table: "migration",
        reason: format!("version {max} is out of range"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "migration {}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }
}
