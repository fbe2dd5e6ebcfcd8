//! What a guest may ask of the host: the tenant's directory, its key-value
//! store and logging. Each capability is a trait the embedder implements
//! ([`Directory`], [`KeyValue`]); this module enforces the contract's limits
//! in front of them, so that no implementation has to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::bindings::edgepbx::policy::{directory, kv, log, types};
use crate::bindings::{Extension, ExtensionStatus, Group, KvError, Level};

/// Longest key-value key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 128;
/// Longest key-value value, in bytes.
pub const MAX_KV_VALUE_BYTES: usize = 1024;
/// Longest log line kept, in bytes.
pub const MAX_LOG_BYTES: usize = 1024;
/// Longest number a guest may look up, in bytes; longer ones are unknown.
const MAX_NUMBER_BYTES: usize = 64;

/// The tenant's directory as a policy sees it: extensions with live state
/// and ring groups. Every method concerns the one tenant the decision is
/// for. The name is the contract's (`interface directory` of the WIT);
/// the server implements it with its `PolicyView`.
pub trait Directory: Send + Sync {
    /// An extension by number (or alias).
    fn extension(&self, number: &str) -> Option<Extension>;
    /// The live state of an extension by number (or alias): what
    /// [`extension`](Directory::extension) would say, without building the
    /// rest.
    fn status(&self, number: &str) -> Option<ExtensionStatus>;
    /// A ring group by number.
    fn group(&self, number: &str) -> Option<Group>;
    /// The numbers of the groups `extension` belongs to.
    fn groups_of(&self, extension: &str) -> Vec<String>;
}

/// A tenant's key-value store. Implementations make `increment` atomic;
/// keys and values arrive within the contract's limits.
pub trait KeyValue: Send + Sync {
    /// The value of `key` in `tenant`'s store.
    fn get(&self, tenant: &str, key: &str) -> Option<String>;
    /// Sets `key`.
    fn set(&self, tenant: &str, key: &str, value: &str) -> Result<(), KvError>;
    /// Removes `key`.
    fn delete(&self, tenant: &str, key: &str);
    /// Adds `delta` to the counter under `key`, returning the new value.
    fn increment(&self, tenant: &str, key: &str, delta: i64) -> Result<i64, KvError>;
}

/// A [`Directory`] given as data: for `edgepbx policy try`, and tests.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticDirectory {
    /// The extensions.
    #[serde(default)]
    pub extensions: Vec<Extension>,
    /// The ring groups.
    #[serde(default)]
    pub groups: Vec<Group>,
}

impl Directory for StaticDirectory {
    fn extension(&self, number: &str) -> Option<Extension> {
        self.extensions.iter().find(|e| e.number == number).cloned()
    }

    fn status(&self, number: &str) -> Option<ExtensionStatus> {
        self.extensions
            .iter()
            .find(|e| e.number == number)
            .map(Extension::status)
    }

    fn group(&self, number: &str) -> Option<Group> {
        self.groups.iter().find(|g| g.number == number).cloned()
    }

    fn groups_of(&self, extension: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == extension))
            .map(|g| g.number.clone())
            .collect()
    }
}

/// A [`KeyValue`] in memory, with a cap on keys per tenant.
#[derive(Debug)]
pub struct MemoryKv {
    tenants: Mutex<HashMap<String, BTreeMap<String, String>>>,
    max_keys: usize,
}

impl MemoryKv {
    /// An empty store admitting `max_keys` keys per tenant.
    pub fn new(max_keys: usize) -> MemoryKv {
        MemoryKv {
            tenants: Mutex::new(HashMap::new()),
            max_keys,
        }
    }

    /// Every entry of `tenant`.
    pub fn entries(&self, tenant: &str) -> BTreeMap<String, String> {
        self.lock().get(tenant).cloned().unwrap_or_default()
    }

    /// Replaces `tenant`'s entries (loading them from storage).
    pub fn load(&self, tenant: &str, entries: BTreeMap<String, String>) {
        self.lock().insert(tenant.to_owned(), entries);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeMap<String, String>>> {
        // A panic while holding this lock cannot leave a map half-updated
        // (every update is one insert or remove), so poisoning is ignored.
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyValue for MemoryKv {
    fn get(&self, tenant: &str, key: &str) -> Option<String> {
        self.lock().get(tenant).and_then(|m| m.get(key).cloned())
    }

    fn set(&self, tenant: &str, key: &str, value: &str) -> Result<(), KvError> {
        let mut tenants = self.lock();
        let map = tenants.entry(tenant.to_owned()).or_default();
        if !map.contains_key(key) && map.len() >= self.max_keys {
            return Err(KvError::Full);
        }
        map.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, tenant: &str, key: &str) {
        if let Some(map) = self.lock().get_mut(tenant) {
            map.remove(key);
        }
    }

    fn increment(&self, tenant: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut tenants = self.lock();
        let map = tenants.entry(tenant.to_owned()).or_default();
        let current = match map.get(key) {
            Some(value) => value.parse::<i64>().map_err(|_| KvError::NotACounter)?,
            None if map.len() >= self.max_keys => return Err(KvError::Full),
            None => 0,
        };
        let next = current.wrapping_add(delta);
        map.insert(key.to_owned(), next.to_string());
        Ok(next)
    }
}

/// The state of one decision's store: who it is for and the capabilities.
pub(crate) struct HostState {
    pub(crate) tenant: String,
    /// Short hash of the module, for log attribution.
    pub(crate) module: String,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) kv: Arc<dyn KeyValue>,
    pub(crate) limiter: crate::engine::MemoryCap,
    pub(crate) log_lines_left: u32,
}

fn bounded(number: &str) -> Option<&str> {
    (number.len() <= MAX_NUMBER_BYTES).then_some(number)
}

impl types::Host for HostState {}

impl directory::Host for HostState {
    fn get_extension(&mut self, number: String) -> Option<Extension> {
        bounded(&number).and_then(|n| self.directory.extension(n))
    }

    fn get_status(&mut self, number: String) -> Option<ExtensionStatus> {
        bounded(&number).and_then(|n| self.directory.status(n))
    }

    fn get_group(&mut self, number: String) -> Option<Group> {
        bounded(&number).and_then(|n| self.directory.group(n))
    }

    fn groups_of(&mut self, extension: String) -> Vec<String> {
        bounded(&extension)
            .map(|n| self.directory.groups_of(n))
            .unwrap_or_default()
    }
}

impl kv::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        if key.len() > MAX_KV_KEY_BYTES {
            return None;
        }
        self.kv.get(&self.tenant, &key)
    }

    fn set(&mut self, key: String, value: String) -> Result<(), KvError> {
        if key.len() > MAX_KV_KEY_BYTES || value.len() > MAX_KV_VALUE_BYTES {
            return Err(KvError::TooLarge);
        }
        self.kv.set(&self.tenant, &key, &value)
    }

    fn delete(&mut self, key: String) {
        if key.len() <= MAX_KV_KEY_BYTES {
            self.kv.delete(&self.tenant, &key);
        }
    }

    fn increment(&mut self, key: String, delta: i64) -> Result<i64, KvError> {
        if key.len() > MAX_KV_KEY_BYTES {
            return Err(KvError::TooLarge);
        }
        self.kv.increment(&self.tenant, &key, delta)
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: Level, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let line = printable(&message, MAX_LOG_BYTES);
        let (tenant, module) = (&self.tenant, &self.module);
        match level {
            Level::Debug => tracing::debug!(tenant, module, "policy: {line}"),
            Level::Info => tracing::info!(tenant, module, "policy: {line}"),
            Level::Warn => tracing::warn!(tenant, module, "policy: {line}"),
            Level::Error => tracing::error!(tenant, module, "policy: {line}"),
        }
    }
}

/// `text` cut to at most `max` bytes (on a character boundary) with
/// control characters replaced, so a guest cannot forge log lines.
pub(crate) fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}
