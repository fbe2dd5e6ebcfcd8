//! Which policy decides for which tenant, swapped while decisions run.
//!
//! Each tenant has at most one active module. A decision takes a reference
//! to the tenant's module when it starts and keeps it to the end, so a
//! module activated meanwhile serves the next decision and no decision
//! mixes versions. A decision whose module faults is answered by the
//! built-in policy; a module that faults `fault_limit` times within
//! `fault_window` is deactivated and the reason reported to the caller,
//! which records it for the tenant's administrator.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::bindings::{Call, Decision};
use crate::engine::{CompiledPolicy, Fault, PolicyEngine};
use crate::host::{Directory, KeyValue};

/// A tenant's active module.
#[derive(Debug)]
pub struct ActivePolicy {
    /// The version number the store gave it.
    pub version: u32,
    /// The compiled module.
    pub policy: Arc<CompiledPolicy>,
    faults: Mutex<VecDeque<Instant>>,
}

/// Who answered a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    /// The tenant's module.
    Tenant {
        /// Its version.
        version: u32,
        /// Its hash.
        hash: String,
    },
    /// The built-in policy: the tenant has no module of its own.
    Builtin,
    /// The built-in policy, because the tenant's module faulted.
    Fallback {
        /// The faulty module's version.
        version: u32,
        /// Its hash.
        hash: String,
        /// What went wrong.
        fault: Fault,
    },
    /// Nothing could decide (even the built-in policy failed): the call is
    /// refused with 500.
    LastResort {
        /// What the built-in policy's failure was.
        fault: Fault,
    },
}

/// A module taken out of service for repeated faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivated {
    /// The module's version.
    pub version: u32,
    /// Its hash.
    pub hash: String,
    /// Why, for the administrator.
    pub reason: String,
}

/// The result of one decision.
#[derive(Debug, Clone)]
pub struct Decided {
    /// What to do.
    pub decision: Decision,
    /// Who decided.
    pub by: DecidedBy,
    /// Set when this decision's fault took the tenant's module out of
    /// service; the caller records it.
    pub deactivated: Option<Deactivated>,
}

/// The tenants' active policies.
#[derive(Debug)]
pub struct Policies {
    engine: Arc<PolicyEngine>,
    active: RwLock<HashMap<String, Arc<ActivePolicy>>>,
    /// Deactivations after faults not yet stored, by tenant, each with
    /// whether a writer is storing it: until it is stored, the version
    /// must not be activated again from a record that still says it is
    /// active.
    unrecorded: Mutex<HashMap<String, (Deactivated, bool)>>,
}

impl Policies {
    /// No tenant has a module yet: everyone gets the built-in policy.
    pub fn new(engine: Arc<PolicyEngine>) -> Policies {
        Policies {
            engine,
            active: RwLock::new(HashMap::new()),
            unrecorded: Mutex::new(HashMap::new()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<PolicyEngine> {
        &self.engine
    }

    /// Makes `policy` (version `version`) decide for `tenant` from the next
    /// decision on.
    pub fn activate(&self, tenant: &str, version: u32, policy: Arc<CompiledPolicy>) {
        let active = Arc::new(ActivePolicy {
            version,
            policy,
            faults: Mutex::new(VecDeque::new()),
        });
        self.write().insert(tenant.to_owned(), active);
    }

    /// Returns `tenant` to the built-in policy.
    pub fn deactivate(&self, tenant: &str) {
        self.write().remove(tenant);
    }

    /// The tenant's active module, if any.
    pub fn active(&self, tenant: &str) -> Option<Arc<ActivePolicy>> {
        self.read().get(tenant).cloned()
    }

    /// The tenant's last deactivation after faults until it is
    /// [stored](Policies::deactivation_stored): a stored configuration read
    /// before then still names that version as active.
    pub fn unrecorded_deactivation(&self, tenant: &str) -> Option<Deactivated> {
        self.unrecorded_map().get(tenant).map(|(d, _)| d.clone())
    }

    /// Takes the tenant's unrecorded deactivation of `version` to store it;
    /// `None` when another writer has it (or it concerns another version),
    /// so one writer at a time stores each deactivation. The writer then
    /// says [`deactivation_stored`](Policies::deactivation_stored) or
    /// [`deactivation_not_stored`](Policies::deactivation_not_stored).
    pub fn take_unrecorded_deactivation(&self, tenant: &str, version: u32) -> Option<Deactivated> {
        let mut unrecorded = self.unrecorded_map();
        let (deactivated, storing) = unrecorded.get_mut(tenant)?;
        if deactivated.version != version || *storing {
            return None;
        }
        *storing = true;
        Some(deactivated.clone())
    }

    /// The tenant's deactivation of `version` is stored: forgotten here.
    pub fn deactivation_stored(&self, tenant: &str, version: u32) {
        let mut unrecorded = self.unrecorded_map();
        if unrecorded
            .get(tenant)
            .is_some_and(|(d, _)| d.version == version)
        {
            unrecorded.remove(tenant);
        }
    }

    /// Storing the tenant's deactivation of `version` failed: the next
    /// writer may take it again.
    pub fn deactivation_not_stored(&self, tenant: &str, version: u32) {
        if let Some((d, storing)) = self.unrecorded_map().get_mut(tenant)
            && d.version == version
        {
            *storing = false;
        }
    }

    /// Decides the next step of `call` for `tenant`; never fails.
    pub fn decide(
        &self,
        now: Instant,
        tenant: &str,
        call: &Call,
        directory: Arc<dyn Directory>,
        kv: Arc<dyn KeyValue>,
    ) -> Decided {
        let active = self.active(tenant);
        let Some(active) = active else {
            return self.decide_builtin(tenant, call, directory, kv);
        };
        let policy = &active.policy;
        match self
            .engine
            .run(policy, tenant, call, directory.clone(), kv.clone())
        {
            Ok(decision) => Decided {
                decision,
                by: DecidedBy::Tenant {
                    version: active.version,
                    hash: policy.hash().to_owned(),
                },
                deactivated: None,
            },
            Err(fault) => {
                tracing::warn!(
                    tenant,
                    module = policy.short_hash(),
                    version = active.version,
                    %fault,
                    "policy fault; the built-in policy decides this call"
                );
                let deactivated = self.count_fault(now, tenant, &active, &fault);
                let by = DecidedBy::Fallback {
                    version: active.version,
                    hash: policy.hash().to_owned(),
                    fault,
                };
                Decided {
                    deactivated,
                    ..self.builtin(tenant, call, directory, kv, by)
                }
            }
        }
    }

    /// Decides with the built-in policy, whatever `tenant` has active: for
    /// a caller that found no module active ([`Policies::active`]) and
    /// decides at once, so that a module activated meanwhile does not run
    /// in its place.
    pub fn decide_builtin(
        &self,
        tenant: &str,
        call: &Call,
        directory: Arc<dyn Directory>,
        kv: Arc<dyn KeyValue>,
    ) -> Decided {
        self.builtin(tenant, call, directory, kv, DecidedBy::Builtin)
    }

    fn builtin(
        &self,
        tenant: &str,
        call: &Call,
        directory: Arc<dyn Directory>,
        kv: Arc<dyn KeyValue>,
        by: DecidedBy,
    ) -> Decided {
        match self
            .engine
            .run(self.engine.builtin(), tenant, call, directory, kv)
        {
            Ok(decision) => Decided {
                decision,
                by,
                deactivated: None,
            },
            Err(fault) => {
                tracing::error!(tenant, %fault, "the built-in policy failed; refusing the call");
                Decided {
                    decision: Decision {
                        action: crate::bindings::Action::Reject(crate::bindings::Reject {
                            status: 500,
                            reason: None,
                        }),
                        presentation: None,
                    },
                    by: DecidedBy::LastResort { fault },
                    deactivated: None,
                }
            }
        }
    }

    /// Records a fault; deactivates the module when it has faulted too
    /// often (unless another module was activated meanwhile).
    fn count_fault(
        &self,
        now: Instant,
        tenant: &str,
        active: &Arc<ActivePolicy>,
        fault: &Fault,
    ) -> Option<Deactivated> {
        let limits = self.engine.limits();
        let count = {
            let mut faults = active.faults.lock().unwrap_or_else(|e| e.into_inner());
            faults.push_back(now);
            while faults
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > limits.fault_window)
            {
                faults.pop_front();
            }
            faults.len()
        };
        if count < usize::try_from(limits.fault_limit).unwrap_or(usize::MAX) {
            return None;
        }
        let mut map = self.write();
        let still_active = map
            .get(tenant)
            .is_some_and(|current| Arc::ptr_eq(current, active));
        if !still_active {
            return None;
        }
        map.remove(tenant);
        let reason = format!(
            "{count} faults within {} s, the last: {fault}",
            limits.fault_window.as_secs()
        );
        tracing::error!(
            tenant,
            module = active.policy.short_hash(),
            version = active.version,
            %reason,
            "policy deactivated; the built-in policy decides for this tenant"
        );
        let deactivated = Deactivated {
            version: active.version,
            hash: active.policy.hash().to_owned(),
            reason,
        };
        self.unrecorded_map()
            .insert(tenant.to_owned(), (deactivated.clone(), false));
        Some(deactivated)
    }

    fn unrecorded_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Deactivated, bool)>> {
        // Every change is a single insert or remove: never half done.
        self.unrecorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<ActivePolicy>>> {
        // Every write is a single insert or remove: never half done.
        self.active.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<ActivePolicy>>> {
        self.active.write().unwrap_or_else(|e| e.into_inner())
    }
}
