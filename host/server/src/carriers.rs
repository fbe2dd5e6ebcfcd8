//! Where trunks' carriers are: their names looked up when a tenant is
//! loaded, and again every minute while the server runs, so that a carrier
//! that moves, or did not resolve when its tenant was loaded, is followed
//! without a change to the tenant.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use edgepbx_engine::TenantTable;

use crate::admin::Admin;

/// How often the carriers' names are looked up again.
const REFRESH: Duration = Duration::from_secs(60);

/// How long one lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Lookups in a row that must miss the address in use before a carrier
/// counts as moved: a name whose answers vary (a large pool, geographic
/// DNS) must not reload its tenant every minute.
const MISSES_TO_MOVE: u32 = 3;

/// The address a carrier given as `host[:port]` is reached at (port 5060
/// by default): the first of [`addresses`].
pub async fn address(host: &str) -> Option<SocketAddr> {
    addresses(host).await.into_iter().next()
}

/// Every address a carrier given as `host[:port]` resolves to; none when
/// it does not resolve within [`LOOKUP_TIMEOUT`].
async fn addresses(host: &str) -> Vec<SocketAddr> {
    if let Ok(addr) = host.parse() {
        return vec![addr];
    }
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return vec![(ip, 5060).into()];
    }
    let with_port = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5060")
    };
    match tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host(with_port)).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(_)) | Err(_) => Vec::new(),
    }
}

/// Every [`REFRESH`], looks every carrier up again and reloads the tenants
/// whose carrier moved (see [`Watch::moved`]); ends at shutdown, even in
/// the middle of a round.
pub async fn follow(admin: Admin, mut shutdown: watch::Receiver<bool>) {
    let mut watch = Watch::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            _ = shutdown.changed() => return,
        }
        let tenants = admin.tenants.lock().await.clone();
        let round = async {
            for code in watch.moved(&tenants, addresses).await {
                info!(tenant = %code, "a carrier's address changed; reloading the tenant");
                if let Err(error) = admin.reload_tenant(&code).await {
                    warn!(tenant = %code, error = %format!("{error:#}"), "reloading the tenant failed");
                }
            }
        };
        tokio::select! {
            () = round => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// What the rounds of lookups remember: how many in a row missed the
/// address in use, per tenant and carrier.
#[derive(Debug, Default)]
struct Watch {
    misses: HashMap<(String, String), u32>,
}

impl Watch {
    /// Looks every carrier of `tenants` up once (with `resolve`) and
    /// returns the tenants, by code, with a carrier that moved: one that
    /// resolves now but did not, or that missed the address in use
    /// [`MISSES_TO_MOVE`] times in a row. A failed lookup is no news: a
    /// carrier that resolved keeps its address.
    async fn moved(
        &mut self,
        tenants: &TenantTable,
        resolve: impl AsyncFn(&str) -> Vec<SocketAddr>,
    ) -> Vec<String> {
        let mut answers: HashMap<&str, Vec<SocketAddr>> = HashMap::new();
        let mut moved = BTreeSet::new();
        let mut seen = HashSet::new();
        for tenant in tenants.tenants() {
            for link in &tenant.trunks {
                let host = link.trunk.host.as_str();
                if !answers.contains_key(host) {
                    answers.insert(host, resolve(host).await);
                }
                let now = answers.get(host).map(Vec::as_slice).unwrap_or_default();
                let key = (tenant.code.clone(), host.to_owned());
                seen.insert(key.clone());
                let missed = !now.is_empty() && link.addr.is_none_or(|addr| !now.contains(&addr));
                if !missed {
                    self.misses.remove(&key);
                    continue;
                }
                let count = self.misses.entry(key.clone()).or_insert(0);
                *count += 1;
                if link.addr.is_none() || *count >= MISSES_TO_MOVE {
                    self.misses.remove(&key);
                    moved.insert(tenant.code.clone());
                }
            }
        }
        self.misses.retain(|key, _| seen.contains(key));
        moved.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use edgepbx_store::Trunk;

    use super::*;
    use edgepbx_engine::tenants::{Tenant, TrunkLink};

    fn tenant(code: &str, host: &str, addr: Option<&str>) -> Tenant {
        let mut tenant = Tenant::new(code.into(), format!("{code}.example").to_lowercase());
        tenant.add_trunk(TrunkLink {
            trunk: Trunk {
                tenant: code.into(),
                name: "carrier".into(),
                host: host.into(),
                username: None,
                password: None,
                register: false,
                caller_id: None,
                dids: Vec::new(),
            },
            addr: addr.map(|a| a.parse().expect("literal address")),
        });
        tenant
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| a.parse().expect("literal address"))
            .collect()
    }

    /// A carrier that resolves now but did not moved at once; one whose
    /// answers no longer hold the address in use moved after three rounds
    /// in a row (not when they hold it again in between); a failed lookup
    /// changes nothing; each name is looked up once per round.
    #[tokio::test]
    async fn carriers_that_moved_are_found() {
        let tenants = TenantTable::new([
            tenant("SAME", "same.example", Some("127.0.0.2:5060")),
            tenant("MOVED", "moved.example", Some("127.0.0.3:5060")),
            tenant("FLAKY", "flaky.example", Some("127.0.0.7:5060")),
            tenant("FOUND", "found.example", None),
            tenant("LOST", "lost.example", Some("127.0.0.5:5060")),
            tenant("NEVER", "never.example", None),
            tenant("ALSO", "moved.example", Some("127.0.0.4:5060")),
        ]);
        let lookups = std::cell::Cell::new(0);
        let round = std::cell::Cell::new(0);
        let resolve = async |host: &str| -> Vec<SocketAddr> {
            lookups.set(lookups.get() + 1);
            match host {
                "same.example" => addrs(&["127.0.0.9:5060", "127.0.0.2:5060"]),
                "moved.example" => addrs(&["127.0.0.4:5060"]),
                "found.example" => addrs(&["127.0.0.6:5060"]),
                // Holds the address in use every second round only.
                "flaky.example" if round.get() % 2 == 1 => addrs(&["127.0.0.7:5060"]),
                "flaky.example" => addrs(&["127.0.0.8:5060"]),
                _ => Vec::new(),
            }
        };
        let mut watch = Watch::default();
        let mut results = Vec::new();
        for r in 0..4 {
            round.set(r);
            results.push(watch.moved(&tenants, &resolve).await);
        }
        assert_eq!(
            lookups.get(),
            4 * 6,
            "six names, each looked up once a round"
        );
        assert_eq!(
            results,
            [
                vec!["FOUND"],
                vec!["FOUND"],
                vec!["FOUND", "MOVED"],
                vec!["FOUND"]
            ]
        );
    }
}
