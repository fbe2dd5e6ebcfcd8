//! Tenants as administration reaches them: by code, and as signalling sees
//! them (a [`TenantTable`] loaded whole at start, one tenant again after a
//! change to it).

use std::collections::HashMap;

use anyhow::bail;
use edgepbx_engine::tenants::{Extension, Tenant, TenantTable, TrunkLink};
use edgepbx_sip::auth::Credentials;
use edgepbx_store::Store;
use tracing::warn;

/// Gives tenant `code` a new random provisioning password (the old one
/// stops working) and returns it: the only time it is seen, as only its
/// digest is kept.
pub async fn new_provisioning_password(
    store: &Store,
    code: &str,
) -> Result<String, edgepbx_store::StoreError> {
    let password = crate::secrets::random_token(PROVISIONING_PASSWORD_BYTES);
    store
        .tenants()
        .set_provisioning_secret(code, Some(crate::secrets::sha256_hex(&password)))
        .await?;
    Ok(password)
}

/// Bytes of randomness in a provisioning password.
const PROVISIONING_PASSWORD_BYTES: usize = 24;

/// The tenant with this code, or an error naming it.
pub async fn find_tenant(store: &Store, code: &str) -> anyhow::Result<edgepbx_store::Tenant> {
    match store.tenants().get(&code.to_ascii_uppercase()).await? {
        Some(t) => Ok(t),
        None => bail!("no tenant with code {code}"),
    }
}

/// Reads every tenant, extension, group, contact and trunk into the
/// in-memory table: what the server starts with.
pub async fn load_tenants(store: &Store) -> anyhow::Result<TenantTable> {
    let mut groups = by_tenant(store.groups().all().await?, |g| &g.tenant);
    let mut trunks = by_tenant(store.trunks().all().await?, |t| &t.tenant);
    let mut tenants = Vec::new();
    for (t, extensions) in store.extensions().all().await? {
        let contacts = store.contacts().list(&t.code).await?;
        let (groups, trunks) = (
            groups.remove(&t.code).unwrap_or_default(),
            trunks.remove(&t.code).unwrap_or_default(),
        );
        tenants.push(assemble(t, extensions, groups, contacts, trunks, None).await);
    }
    Ok(TenantTable::new(tenants))
}

/// Tenant `code` as stored now, or `None` when there is no such tenant:
/// what a change to one tenant's configuration reloads. A carrier whose
/// name does not resolve now keeps the address it had in `previous`.
pub async fn load_tenant(
    store: &Store,
    code: &str,
    previous: Option<&Tenant>,
) -> anyhow::Result<Option<Tenant>> {
    let Some(t) = store.tenants().get(code).await? else {
        return Ok(None);
    };
    let extensions = store.extensions().list(&t.code).await?;
    let groups = store.groups().list(&t.code).await?;
    let contacts = store.contacts().list(&t.code).await?;
    let trunks = store.trunks().list(&t.code).await?;
    Ok(Some(
        assemble(t, extensions, groups, contacts, trunks, previous).await,
    ))
}

/// `items` by the code of the tenant each belongs to.
fn by_tenant<T>(items: Vec<T>, tenant: impl Fn(&T) -> &String) -> HashMap<String, Vec<T>> {
    let mut map: HashMap<String, Vec<T>> = HashMap::new();
    for item in items {
        map.entry(tenant(&item).clone()).or_default().push(item);
    }
    map
}

/// A tenant as signalling sees it, from its stored parts; resolves its
/// carriers' addresses, keeping those of `previous` that do not resolve now.
async fn assemble(
    t: edgepbx_store::Tenant,
    extensions: Vec<edgepbx_store::Extension>,
    groups: Vec<edgepbx_store::Group>,
    contacts: Vec<edgepbx_store::Contact>,
    trunks: Vec<edgepbx_store::Trunk>,
    previous: Option<&Tenant>,
) -> Tenant {
    let mut tenant = Tenant::new(t.code.clone(), t.sip_domain.clone());
    tenant.features = t.features.clone();
    tenant.max_calls = t
        .limits
        .max_calls
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    tenant.max_bindings = t
        .limits
        .max_bindings_per_extension
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    for e in extensions {
        let creds = e.credentials.entries.into_iter().map(|c| {
            (
                c.username,
                Credentials {
                    md5: c.md5_ha1,
                    sha256: c.sha256_ha1,
                },
            )
        });
        tenant.add_extension(
            Extension {
                number: e.number,
                name: e.name,
                aliases: e.aliases,
                settings: e.settings,
            },
            creds,
        );
    }
    for group in groups {
        tenant.add_group(group);
    }
    for contact in contacts {
        tenant.contact_names.insert(contact.number, contact.name);
    }
    for trunk in trunks {
        let known = previous
            .and_then(|p| p.trunks.iter().find(|l| l.trunk.host == trunk.host))
            .and_then(|l| l.addr);
        let addr = crate::carriers::address(&trunk.host).await.or(known);
        if addr.is_none() {
            warn!(tenant = %trunk.tenant, trunk = %trunk.name, host = %trunk.host,
                "the carrier's address does not resolve; the trunk is unusable");
        }
        tenant.add_trunk(TrunkLink { trunk, addr });
    }
    tenant
}
