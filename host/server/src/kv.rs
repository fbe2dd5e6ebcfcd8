//! The policies' key-value store as the server runs it: in memory for the
//! decisions (which must not wait on the database), loaded from the store
//! at start and written behind on every change, so round-robin counters
//! and the like survive restarts.

use std::collections::BTreeMap;

use edgepbx_policy::bindings::KvError;
use edgepbx_policy::{KeyValue, MemoryKv};

use crate::persist::KvWriter;

/// A [`MemoryKv`] whose changes are written behind.
pub struct PersistentKv {
    memory: MemoryKv,
    writer: KvWriter,
}

impl PersistentKv {
    /// An empty store admitting `max_keys` keys per tenant, writing
    /// through `writer`.
    pub fn new(max_keys: usize, writer: KvWriter) -> PersistentKv {
        PersistentKv {
            memory: MemoryKv::new(max_keys),
            writer,
        }
    }

    /// Puts back a tenant's entries read from the store.
    pub fn load(&self, tenant: &str, entries: BTreeMap<String, String>) {
        self.memory.load(tenant, entries);
    }
}

impl KeyValue for PersistentKv {
    fn get(&self, tenant: &str, key: &str) -> Option<String> {
        self.memory.get(tenant, key)
    }

    fn set(&self, tenant: &str, key: &str, value: &str) -> Result<(), KvError> {
        self.memory.set(tenant, key, value)?;
        self.writer.write(tenant, key, Some(value.to_owned()));
        Ok(())
    }

    fn delete(&self, tenant: &str, key: &str) {
        self.memory.delete(tenant, key);
        self.writer.write(tenant, key, None);
    }

    fn increment(&self, tenant: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let next = self.memory.increment(tenant, key, delta)?;
        self.writer.write(tenant, key, Some(next.to_string()));
        Ok(next)
    }
}
