//! The administration service: what the CLI, the control socket and the
//! REST API all run, so that none of them reaches into another.
//!
//! - [`tenants`]: a tenant by code; tenants loaded as signalling sees them.
//! - [`credentials`]: SIP passwords, generated or checked, and their HA1s.
//! - [`policies`]: validating modules; a tenant's running policy brought in
//!   line with the store.
//! - [`accounts`]: console users and API keys.
//! - [`Admin`]: the running server's side: reloading one tenant into the
//!   SIP plane after a change, one reload of a tenant at a time.

pub mod accounts;
pub mod credentials;
pub mod policies;
pub mod tenants;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use edgepbx_engine::TenantTable;
use edgepbx_policy::Policies;
use edgepbx_store::{Device, Store};
use tokio::sync::mpsc;

use crate::events::{Event, EventBus};
use crate::sip::{Control, FeatureKeyChange};

/// What administration works with in a running server; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    /// The server's store.
    pub store: Store,
    /// The SIP plane.
    pub core: mpsc::Sender<Control>,
    /// Routing policies, for activations.
    pub policies: Arc<Policies>,
    /// The event bus, for `edgepbx events`.
    pub events: EventBus,
    /// The tenants the SIP plane was last given. Held while a reload
    /// swaps its tenant in: swaps apply one at a time, each on the one
    /// before (overlapping ones could hand the engine an older snapshot
    /// last).
    pub tenants: Arc<tokio::sync::Mutex<Arc<TenantTable>>>,
    /// Held for the whole of a reload of its tenant.
    pub reloading: Arc<TenantLocks>,
}

/// A lock per tenant, made on first use. A tenant's reloads run one at a
/// time, in the order of the changes that caused them, so the last one
/// reads the store after the last change; other tenants' reloads run
/// alongside, so one tenant's slow carrier lookup or policy compilation
/// delays no other tenant's change.
#[derive(Debug, Default)]
pub struct TenantLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl TenantLocks {
    /// The lock of the tenant `code`.
    fn of(&self, code: &str) -> Arc<tokio::sync::Mutex<()>> {
        // Each change is one insert: never half done.
        let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(code.to_owned()).or_default().clone()
    }
}

impl Admin {
    /// Writes what phones' feature keys change (DND, forwarding) until the
    /// SIP plane stops, reloading the tenant after each write, failed or
    /// not, so the phone is shown the settings as they are.
    pub async fn apply_feature_keys(self, mut changes: mpsc::Receiver<FeatureKeyChange>) {
        while let Some(change) = changes.recv().await {
            let written = self
                .store
                .extensions()
                .set_feature_key(&change.tenant, &change.extension, &change.key)
                .await;
            match written {
                Ok(()) => tracing::info!(tenant = %change.tenant, extension = %change.extension,
                    key = ?change.key, "setting changed by a feature key"),
                Err(error) => tracing::warn!(tenant = %change.tenant,
                    extension = %change.extension, %error, "feature key change not written"),
            }
            if let Err(error) = self.reload_tenant(&change.tenant).await {
                tracing::warn!(tenant = %change.tenant, error = %format!("{error:#}"),
                    "reload after a feature key failed");
            }
        }
    }

    /// Tells desk phone `device` of `tenant` to fetch its configuration
    /// again (a `check-sync` NOTIFY to each of its registrations); returns
    /// how many were told (0: the phone is not registered).
    pub async fn resync(&self, tenant: &str, device: &Device) -> anyhow::Result<usize> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.core
            .send(Control::Resync {
                tenant: tenant.to_ascii_uppercase(),
                extension: device.extension.clone(),
                mac: device.mac,
                event: edgepbx_provisioning::check_sync_event(device.vendor),
                reply,
            })
            .await
            .context("the SIP plane has stopped")?;
        let sent = answer.await.context("the SIP plane has stopped")?;
        tracing::info!(tenant, mac = %device.mac, sent, "phone told to fetch its configuration");
        Ok(sent)
    }

    /// The devices registered for extension `number` now, from the SIP
    /// plane.
    pub async fn registrations(
        &self,
        tenant: &str,
        number: &str,
    ) -> anyhow::Result<Vec<edgepbx_engine::DeviceInfo>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.core
            .send(Control::Devices {
                tenant: tenant.to_ascii_uppercase(),
                extension: number.to_owned(),
                reply,
            })
            .await
            .context("the SIP plane has stopped")?;
        answer.await.context("the SIP plane has stopped")
    }

    /// Tells the phones of extension `number` to fetch their files again
    /// after a change to the extension (its name, its password); failures
    /// are logged, as the change itself is made.
    pub async fn resync_extension(&self, tenant: &str, number: &str) {
        let devices = match self.store.devices().list(tenant, Some(number)).await {
            Ok(devices) => devices,
            Err(error) => {
                tracing::warn!(%error, tenant, number, "phones not told of a change");
                return;
            }
        };
        for device in &devices {
            if let Err(error) = self.resync(tenant, device).await {
                tracing::warn!(%error, tenant, mac = %device.mac, "phone not told of a change");
            }
        }
    }

    /// Reads one tenant's configuration again after a change to it (or its
    /// addition or removal) and hands the SIP plane the tenants with it;
    /// brings the tenant's running policy in line with the store; tells
    /// watchers (the console) that its configuration may have changed. Only
    /// that tenant is read, so a change costs the same however many others
    /// there are.
    pub async fn reload_tenant(&self, code: &str) -> anyhow::Result<()> {
        let code = code.to_ascii_uppercase();
        let lock = self.reloading.of(&code);
        let _reloading = lock.lock().await;
        // Only this tenant's reloads change its entry, and they wait above.
        let previous = self.tenants.lock().await.tenant(&code).cloned();
        let tenant = tenants::load_tenant(&self.store, &code, previous.as_deref()).await?;
        {
            let mut current = self.tenants.lock().await;
            let tenants = Arc::new(current.with_tenant(&code, tenant));
            self.core
                .send(Control::Tenants(tenants.clone()))
                .await
                .context("the SIP plane has stopped")?;
            *current = tenants;
        }
        policies::sync_policy(&self.store, &self.policies, &code).await?;
        self.events.publish(Event::Configured { tenant: code });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use edgepbx_policy::{Limits, PolicyEngine};
    use edgepbx_store::{DbSpec, StoreConfig};

    use super::*;

    /// A directory removed when the test ends.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tenants_reload_waits_for_its_own_tenant_only() {
        let dir = TempDir(std::env::temp_dir().join(format!(
            "edgepbx-reload-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        )));
        let store = Store::open(StoreConfig::new(DbSpec::embedded(&dir.0)))
            .await
            .expect("the store opens");
        for (code, domain) in [("AAA", "a.test"), ("BBB", "b.test")] {
            store.tenants().add(code, domain).await.expect("a tenant");
        }
        let (core, mut directories) = mpsc::channel(8);
        tokio::spawn(async move { while directories.recv().await.is_some() {} });
        let engine = PolicyEngine::new(Limits::default(), None).expect("the engine starts");
        let admin = Admin {
            store,
            core,
            policies: Arc::new(Policies::new(Arc::new(engine))),
            events: EventBus::default(),
            tenants: Arc::default(),
            reloading: Arc::default(),
        };
        let has = async |code: &str| admin.tenants.lock().await.tenant(code).is_some();

        // A reload of AAA is under way (as while its carrier is looked up
        // or its policy compiled): BBB's reload does not wait for it.
        let aaa = admin.reloading.of("AAA");
        let under_way = aaa.lock().await;
        tokio::time::timeout(Duration::from_secs(60), admin.reload_tenant("bbb"))
            .await
            .expect("BBB's reload waited for AAA's")
            .expect("BBB reloads");
        assert!(has("BBB").await);

        // AAA's next reload waits for the one under way, then applies.
        let next = tokio::spawn({
            let admin = admin.clone();
            async move { admin.reload_tenant("aaa").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!next.is_finished());
        assert!(!has("AAA").await);
        drop(under_way);
        next.await.expect("the reload task").expect("AAA reloads");
        assert!(has("AAA").await && has("BBB").await);
    }
}
