//! Reachability of bindings (RFC 3261 §11): an OPTIONS to every binding
//! each `keepalive_interval_secs`; a binding that does not answer, or
//! whose connection closed, goes offline. Also when each device was last
//! heard, for people.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use edgepbx_sip::transaction::ClientKey;

use crate::peer::Peer;
use crate::registrar::{Aor, Location};

/// A binding: its address of record and contact.
type BindingKey = (Aor, String);

/// A keepalive OPTIONS in flight: the binding it checks.
#[derive(Debug)]
pub(crate) struct Ping {
    pub aor: Aor,
    pub contact: String,
}

/// Pings in flight, and when each binding was last pinged and heard.
#[derive(Debug)]
pub(crate) struct Keepalive {
    /// `None`: pings are off.
    interval: Option<Duration>,
    pings: HashMap<ClientKey, Ping>,
    /// When each binding was last pinged (or registered).
    last_ping: HashMap<BindingKey, Instant>,
    /// When each binding was last heard from (REGISTER or OPTIONS answer).
    last_seen: HashMap<BindingKey, SystemTime>,
}

impl Keepalive {
    pub fn new(interval_secs: u64) -> Keepalive {
        Keepalive {
            interval: (interval_secs > 0).then(|| Duration::from_secs(interval_secs)),
            pings: HashMap::new(),
            last_ping: HashMap::new(),
            last_seen: HashMap::new(),
        }
    }

    /// The binding registered (or refreshed) now.
    pub fn registered(&mut self, aor: &Aor, contact: &str, now: Instant, wall: SystemTime) {
        let key = (aor.clone(), contact.to_owned());
        self.last_ping.insert(key.clone(), now);
        self.last_seen.insert(key, wall);
    }

    /// The binding is gone.
    pub fn forget(&mut self, aor: &Aor, contact: &str) {
        let key = (aor.clone(), contact.to_owned());
        self.last_ping.remove(&key);
        self.last_seen.remove(&key);
    }

    /// When the binding was last heard from.
    pub fn last_seen(&self, aor: &Aor, contact: &str) -> Option<SystemTime> {
        self.last_seen
            .get(&(aor.clone(), contact.to_owned()))
            .copied()
    }

    /// The bindings whose ping is due, marked as pinged now.
    pub fn due(&mut self, now: Instant, location: &Location) -> Vec<(Aor, String, Peer)> {
        let Some(interval) = self.interval else {
            return Vec::new();
        };
        let due: Vec<(Aor, String, Peer)> = location
            .iter()
            .flat_map(|(aor, list)| list.iter().map(move |b| (aor, b)))
            .filter(|(aor, b)| {
                self.last_ping
                    .get(&((*aor).clone(), b.contact.clone()))
                    .is_none_or(|t| now.duration_since(*t) >= interval)
            })
            .map(|(aor, b)| (aor.clone(), b.contact.clone(), b.source.clone()))
            .collect();
        for (aor, contact, _) in &due {
            self.last_ping.insert((aor.clone(), contact.clone()), now);
        }
        due
    }

    /// A ping left as client transaction `key`.
    pub fn sent(&mut self, key: ClientKey, ping: Ping) {
        self.pings.insert(key, ping);
    }

    /// A ping got a final answer: the device is there.
    pub fn answered(&mut self, key: ClientKey, wall: SystemTime) {
        if let Some(ping) = self.pings.remove(&key) {
            self.last_seen.insert((ping.aor, ping.contact), wall);
        }
    }

    /// A ping timed out or could not be sent: the binding it checked.
    pub fn failed(&mut self, key: ClientKey) -> Option<Ping> {
        self.pings.remove(&key)
    }

    /// A ping's transaction is gone.
    pub fn terminated(&mut self, key: ClientKey) {
        self.pings.remove(&key);
    }
}
