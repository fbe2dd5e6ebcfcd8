//! The configuration that signalling reads: every tenant with its
//! extensions, SIP credentials, groups and trunks. The driver loads it from
//! the store and hands the engine a new [`TenantTable`] when a tenant
//! changes, so that no request waits on the database.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use edgepbx_model::{CallSettings, Group, TenantFeatures, Trunk};
use edgepbx_sip::auth::Credentials;

/// One extension as signalling sees it.
#[derive(Debug, Clone)]
pub struct Extension {
    /// Extension number.
    pub number: String,
    /// Display name (caller ID of its calls).
    pub name: String,
    /// Other numbers that reach it.
    pub aliases: Vec<String>,
    /// How its calls are handled.
    pub settings: CallSettings,
}

/// A trunk with the carrier's address resolved.
#[derive(Debug, Clone)]
pub struct TrunkLink {
    /// The trunk as configured.
    pub trunk: Trunk,
    /// Where the carrier is; `None` when its name did not resolve (the
    /// trunk is then unusable until the driver resolves it and hands the
    /// engine a table with its address).
    pub addr: Option<SocketAddr>,
}

impl TrunkLink {
    /// The carrier's host name without the port, for URIs.
    pub fn host_name(&self) -> &str {
        let host = &self.trunk.host;
        match host.rsplit_once(':') {
            Some((name, port))
                if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') =>
            {
                name
            }
            _ => host,
        }
    }

    /// The tenant number an inbound call to `did` rings.
    pub fn route(&self, did: &str) -> Option<&str> {
        self.trunk
            .dids
            .iter()
            .find(|d| d.number == did)
            .map(|d| d.destination.as_str())
    }
}

/// One tenant with everything signalling needs about it.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant code (upper case).
    pub code: String,
    /// SIP domain, also the digest realm.
    pub domain: String,
    /// Extensions by number.
    pub extensions: HashMap<String, Arc<Extension>>,
    /// Alias → extension number.
    pub aliases: HashMap<String, String>,
    /// Ring groups and virtual extensions by number.
    pub groups: HashMap<String, Arc<Group>>,
    /// Trunks to carriers, in name order.
    pub trunks: Vec<Arc<TrunkLink>>,
    /// Most simultaneous calls, when the tenant has its own limit.
    pub max_calls: Option<usize>,
    /// Most devices registered per extension, when the tenant has its own
    /// limit (below the server's `registrar.max_bindings_per_extension`).
    pub max_bindings: Option<usize>,
    /// The company directory's names by number: an external caller whose
    /// number is a contact's is shown with the contact's name.
    pub contact_names: HashMap<String, String>,
    /// Digest username (`100` or `100-ACME`) → (extension number, HA1s).
    pub credentials: HashMap<String, (String, Credentials)>,
    /// Its pickup code and BLF privacy.
    pub features: TenantFeatures,
}

impl Tenant {
    /// A tenant without extensions.
    pub fn new(code: String, domain: String) -> Self {
        Tenant {
            code,
            domain: domain.to_ascii_lowercase(),
            extensions: HashMap::new(),
            aliases: HashMap::new(),
            groups: HashMap::new(),
            trunks: Vec::new(),
            max_calls: None,
            max_bindings: None,
            contact_names: HashMap::new(),
            credentials: HashMap::new(),
            features: TenantFeatures::default(),
        }
    }

    /// Adds an extension with its HA1 values per digest username.
    pub fn add_extension(
        &mut self,
        extension: Extension,
        credentials: impl IntoIterator<Item = (String, Credentials)>,
    ) {
        for alias in &extension.aliases {
            self.aliases.insert(alias.clone(), extension.number.clone());
        }
        for (username, creds) in credentials {
            self.credentials
                .insert(username, (extension.number.clone(), creds));
        }
        self.extensions
            .insert(extension.number.clone(), Arc::new(extension));
    }

    /// Adds a ring group or virtual extension.
    pub fn add_group(&mut self, group: Group) {
        self.groups.insert(group.number.clone(), Arc::new(group));
    }

    /// Adds a trunk.
    pub fn add_trunk(&mut self, link: TrunkLink) {
        self.trunks.push(Arc::new(link));
    }

    /// The trunk calls to external numbers go out through: the first one
    /// whose carrier resolved.
    pub fn outbound_trunk(&self) -> Option<&Arc<TrunkLink>> {
        self.trunks.iter().find(|t| t.addr.is_some())
    }

    /// Whether `number` is one of the tenant's own (extension, alias,
    /// group).
    pub fn is_internal(&self, number: &str) -> bool {
        self.resolve(number).is_some() || self.groups.contains_key(number)
    }

    /// The extension a number or alias reaches.
    pub fn resolve(&self, number: &str) -> Option<&Arc<Extension>> {
        self.extensions.get(number).or_else(|| {
            self.aliases
                .get(number)
                .and_then(|n| self.extensions.get(n))
        })
    }
}

/// Every tenant, by code, by SIP domain and by carrier address.
#[derive(Debug, Default, Clone)]
pub struct TenantTable {
    tenants: HashMap<String, Arc<Tenant>>,
    by_domain: HashMap<String, String>,
    /// Carrier address → every (tenant code, trunk index) there, in
    /// tenant code order: tenants may share a carrier.
    by_trunk_ip: HashMap<IpAddr, Vec<(String, usize)>>,
}

/// The tenant a SIP user part and host name address, and the user part
/// within it.
#[derive(Debug, Clone)]
pub struct Addressed {
    /// The tenant.
    pub tenant: Arc<Tenant>,
    /// The user part with any `-CODE` suffix removed.
    pub user: String,
}

impl TenantTable {
    /// Builds the table from loaded tenants.
    pub fn new(tenants: impl IntoIterator<Item = Tenant>) -> Self {
        TenantTable::of(tenants.into_iter().map(Arc::new).collect())
    }

    /// This table with tenant `code` replaced by `tenant`: added when
    /// it is new, removed when `None`. The other tenants are shared.
    pub fn with_tenant(&self, code: &str, tenant: Option<Tenant>) -> TenantTable {
        let others = self.tenants.values().filter(|t| t.code != code).cloned();
        TenantTable::of(others.chain(tenant.map(Arc::new)).collect())
    }

    fn of(mut tenants: Vec<Arc<Tenant>>) -> Self {
        // In code order, so that the trunks at an address are always
        // tried in the same order.
        tenants.sort_by(|a, b| a.code.cmp(&b.code));
        let mut dir = TenantTable::default();
        for tenant in tenants {
            dir.by_domain
                .insert(tenant.domain.clone(), tenant.code.clone());
            for (i, link) in tenant.trunks.iter().enumerate() {
                if let Some(addr) = link.addr {
                    dir.by_trunk_ip
                        .entry(addr.ip())
                        .or_default()
                        .push((tenant.code.clone(), i));
                }
            }
            dir.tenants.insert(tenant.code.clone(), tenant);
        }
        dir
    }

    /// A tenant by code.
    pub fn tenant(&self, code: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(code)
    }

    /// Whether a configured carrier is at `ip`.
    pub fn is_carrier(&self, ip: IpAddr) -> bool {
        self.by_trunk_ip.contains_key(&ip)
    }

    /// The trunks whose carrier is at `ip`, with their tenants, in tenant
    /// code order.
    pub fn trunks_at(&self, ip: IpAddr) -> Vec<(Arc<Tenant>, Arc<TrunkLink>)> {
        self.by_trunk_ip
            .get(&ip)
            .into_iter()
            .flatten()
            .filter_map(|(code, index)| {
                let tenant = self.tenants.get(code)?;
                Some((tenant.clone(), tenant.trunks.get(*index)?.clone()))
            })
            .collect()
    }

    /// Every tenant.
    pub fn tenants(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.tenants.values()
    }

    /// Finds the tenant a SIP address belongs to: the tenant whose domain is
    /// `host`, else the tenant named by a `<user>-<CODE>` user part.
    pub fn address(&self, user: &str, host: &str) -> Option<Addressed> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Some(tenant) = self.by_domain.get(&host).and_then(|c| self.tenants.get(c)) {
            let user = match user.rsplit_once('-') {
                Some((u, code)) if code.eq_ignore_ascii_case(&tenant.code) => u,
                _ => user,
            };
            return Some(Addressed {
                tenant: tenant.clone(),
                user: user.to_owned(),
            });
        }
        let (user, code) = user.rsplit_once('-')?;
        let tenant = self.tenants.get(&code.to_ascii_uppercase())?;
        Some(Addressed {
            tenant: tenant.clone(),
            user: user.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TenantTable {
        let mut acme = Tenant::new("ACME".into(), "acme.example".into());
        acme.add_extension(
            Extension {
                number: "100".into(),
                name: "Reception".into(),
                aliases: vec!["5100".into()],
                settings: CallSettings::default(),
            },
            [],
        );
        let globex = Tenant::new("GLOBEX".into(), "globex.example".into());
        TenantTable::new([acme, globex])
    }

    #[test]
    fn domain_and_code_forms() {
        let dir = table();
        let by_domain = dir.address("100", "ACME.example");
        assert_eq!(
            by_domain.map(|a| (a.tenant.code.clone(), a.user)),
            Some(("ACME".into(), "100".into()))
        );
        let by_code = dir.address("100-acme", "127.0.0.1");
        assert_eq!(
            by_code.map(|a| (a.tenant.code.clone(), a.user)),
            Some(("ACME".into(), "100".into()))
        );
        assert!(dir.address("100", "127.0.0.1").is_none());
        assert!(dir.address("100-NOPE", "127.0.0.1").is_none());
    }

    #[test]
    fn a_code_never_crosses_into_another_domain() {
        let dir = table();
        // On GLOBEX's domain, "-ACME" is just part of the user name.
        let a = dir.address("100-ACME", "globex.example");
        assert_eq!(
            a.map(|a| (a.tenant.code.clone(), a.user)),
            Some(("GLOBEX".into(), "100-ACME".into()))
        );
    }

    /// Replacing one tenant changes it alone: its domain moves with it, the
    /// others are the same shared values, and a removed tenant is not found
    /// by code or domain.
    #[test]
    fn one_tenant_is_replaced_added_or_removed() {
        let dir = table();
        let globex = dir.tenant("GLOBEX").cloned();
        let moved = Tenant::new("ACME".into(), "pbx.acme.example".into());
        let dir = dir.with_tenant("ACME", Some(moved));
        assert!(dir.address("100", "acme.example").is_none());
        let acme = dir.address("100", "pbx.acme.example").map(|a| a.tenant);
        assert_eq!(acme.map(|t| t.extensions.len()), Some(0));
        assert!(
            dir.tenant("GLOBEX")
                .zip(globex.as_ref())
                .is_some_and(|(now, before)| Arc::ptr_eq(now, before)),
            "GLOBEX is shared, not reloaded"
        );

        let initech = Tenant::new("INITECH".into(), "initech.example".into());
        let dir = dir.with_tenant("INITECH", Some(initech));
        assert_eq!(dir.tenants().count(), 3);
        let dir = dir.with_tenant("ACME", None);
        assert!(dir.tenant("ACME").is_none());
        assert!(dir.address("100", "pbx.acme.example").is_none());
        assert!(dir.address("100-ACME", "127.0.0.1").is_none());
        let mut codes: Vec<&str> = dir.tenants().map(|t| t.code.as_str()).collect();
        codes.sort_unstable();
        assert_eq!(codes, ["GLOBEX", "INITECH"]);
    }

    #[test]
    fn aliases_resolve() {
        let dir = table();
        let acme = dir.tenant("ACME");
        assert_eq!(
            acme.and_then(|t| t.resolve("5100"))
                .map(|e| e.number.clone()),
            Some("100".into())
        );
    }
}
