//! Subscriptions (RFC 6665): phones and softphones watch the lines of
//! their tenant (BLF keys, buddy lists), their own mailbox and their own
//! feature keys (DND, forwarding), and are told of every change by NOTIFY.
//!
//! A SUBSCRIBE is authenticated like an INVITE (407, the same answers
//! for unknown users) and may name any extension, group or virtual
//! extension of the subscriber's own tenant; anything else is 404,
//! whether it exists in another tenant or not. The subscription is a
//! dialog kept in memory until it expires, is ended by its subscriber
//! (Expires: 0), or its subscriber is gone (481, no answer, a connection
//! closed): after a restart, phones subscribe again.
//!
//! What a subscription shows ([`packages::View`]) is computed from the
//! engine's own state (calls, lines, settings) for every number the
//! engine marked as touched, and a NOTIFY goes out only when it differs
//! from the last one sent; one NOTIFY per subscription is in flight at a
//! time, the newest state waiting behind it.
//!
//! Rooms: [`subscribe`] (SUBSCRIBE: checks, limits, new subscriptions,
//! refreshes, feature key presses), [`notify`] (what changed, NOTIFYs and
//! their answers, expiry, ends), [`views`] (what a package shows of the
//! engine's state), [`packages`] (the bodies).

mod notify;
mod packages;
mod subscribe;
mod views;

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::time::{Instant, SystemTime};

use edgepbx_sip::dialog::StoredDialog;
use edgepbx_sip::transaction::ClientKey;
use serde::Deserialize;

use crate::calls::Calls;
use crate::digest::DigestGate;
use crate::lines::Lines;
use crate::peer::Peer;
use crate::registrar::Aor;
use crate::signalling::Signalling;
use crate::tenants::TenantTable;
pub use packages::Package;
use packages::View;

/// Subscription lengths and limits (`[subscriptions]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionsConfig {
    /// Shortest subscription accepted; shorter gets 423 with Min-Expires.
    pub min_expires: u32,
    /// Longest subscription granted; longer requests are shortened.
    pub max_expires: u32,
    /// Subscription length when the SUBSCRIBE names none.
    pub default_expires: u32,
    /// Most subscriptions of one device (one Contact).
    pub max_per_device: usize,
    /// Most subscriptions of one extension's devices together.
    pub max_per_extension: usize,
    /// Most subscriptions in one tenant.
    pub max_per_tenant: usize,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        SubscriptionsConfig {
            min_expires: 60,
            max_expires: 3_600,
            default_expires: 3_600,
            max_per_device: 200,
            max_per_extension: 500,
            max_per_tenant: 20_000,
        }
    }
}

/// A subscription, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionInfo {
    /// Its event package.
    pub package: &'static str,
    /// The number watched.
    pub target: String,
    /// The subscribing device's Contact.
    pub device: String,
    /// When it expires unless refreshed.
    pub expires_at: SystemTime,
}

/// What subscriptions read and send through.
pub(crate) struct Sx<'a> {
    /// Transactions and outputs.
    pub sig: &'a mut Signalling,
    /// Who is subscribing.
    pub gate: &'a mut DigestGate,
    /// Tenants, extensions, groups, settings.
    pub tenants: &'a TenantTable,
    /// Calls, for dialog state.
    pub calls: &'a Calls,
    /// Lines, for presence.
    pub lines: &'a Lines,
    /// New and old messages per mailbox, for message summaries.
    pub mailboxes: &'a HashMap<Aor, (u32, u32)>,
    /// The wall-clock time of the input being handled.
    pub wall: SystemTime,
}

/// The engine's id of a subscription.
type SubId = u64;

/// One subscription: a dialog with the subscriber and what it was told.
///
/// Kept small: a PBX holds tens of thousands (every BLF key of every
/// phone), so text is boxed and the dialog kept as text.
#[derive(Debug)]
struct Subscription {
    /// What it watches.
    package: Package,
    /// The `Event` header to echo (with its `id` parameter).
    event: Box<str>,
    /// The number watched (an extension's own number, or a group's).
    resource: Aor,
    /// Who subscribed.
    subscriber: Aor,
    /// The subscribing device's Contact.
    device: Box<str>,
    /// The tenant's SIP domain, for the URIs in bodies.
    domain: Box<str>,
    /// The subscription's dialog (we are its notifier, the UAS).
    dialog: StoredDialog,
    /// The flow of its last SUBSCRIBE: NOTIFYs go back over it.
    peer: Peer,
    /// Our Contact in the dialog.
    contact: Box<str>,
    /// When it expires unless refreshed...
    expires_at: Instant,
    /// ...and the same on the wall clock, for listings.
    expires_wall: SystemTime,
    /// The dialog-info document version of the next NOTIFY.
    version: u32,
    /// What the last NOTIFY showed (`None`: nothing yet, or the phone
    /// refused the last one and must be told everything again).
    shown: Option<View>,
    /// The NOTIFY awaiting its answer.
    in_flight: Option<ClientKey>,
    /// A newer view to send once it is answered (and whether it goes
    /// even if unchanged: it answers a SUBSCRIBE). Boxed: seldom there.
    queued: Option<Box<(View, bool)>>,
    /// Ended, with this reason: the queued view goes out as the final
    /// NOTIFY once the one in flight is answered.
    ending: Option<&'static str>,
}

/// Every subscription, and how requests, answers and changes find theirs.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    config: SubscriptionsConfig,
    /// Boxed: a subscription is large, and a map's slots are sized for
    /// the value (half of them empty after it grows).
    subs: HashMap<SubId, Box<Subscription>>,
    next_id: SubId,
    /// Refreshes find their subscription by dialog (a keyed hash of its
    /// id, [`Subscriptions::dialog_key`], which a sender cannot aim)...
    by_dialog: HashMap<u64, SubId>,
    /// The key of that hash.
    dialog_hasher: RandomState,
    /// ...answers to NOTIFYs by transaction...
    by_client: HashMap<ClientKey, SubId>,
    /// ...and changes by the number watched.
    watchers: HashMap<Aor, Vec<SubId>>,
    /// Expiry times, earliest first.
    expiry: BTreeSet<(Instant, SubId)>,
    /// Counts for the limits: per (subscriber, device)...
    per_device: HashMap<(Aor, String), usize>,
    /// ...per subscribing extension...
    per_extension: HashMap<Aor, usize>,
    /// ...per tenant.
    per_tenant: HashMap<String, usize>,
    /// When each extension's phone last changed a setting with a key.
    last_key: HashMap<Aor, Instant>,
}

impl Subscriptions {
    /// No subscriptions.
    pub fn new(config: SubscriptionsConfig) -> Subscriptions {
        Subscriptions {
            config,
            ..Subscriptions::default()
        }
    }

    /// The NOTIFY transaction `key` is ours.
    pub fn owns(&self, key: ClientKey) -> bool {
        self.by_client.contains_key(&key)
    }

    /// When the next subscription expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.first().map(|(at, _)| *at)
    }

    /// Subscriptions made by the devices of `aor`.
    pub fn of_extension(&self, aor: &Aor) -> Vec<SubscriptionInfo> {
        let mut list: Vec<SubscriptionInfo> = self
            .subs
            .values()
            .filter(|s| &s.subscriber == aor && s.ending.is_none())
            .map(|s| SubscriptionInfo {
                package: s.package.name(),
                target: s.resource.extension.clone(),
                device: s.device.to_string(),
                expires_at: s.expires_wall,
            })
            .collect();
        list.sort_by(|a, b| {
            (&a.device, &a.target, a.package).cmp(&(&b.device, &b.target, b.package))
        });
        list
    }

    /// What finds the dialog of Call-ID `call_id` with tags `local` and
    /// `remote` in `by_dialog`.
    fn dialog_key(&self, (call_id, local, remote): (&str, &str, &str)) -> u64 {
        self.dialog_hasher.hash_one((call_id, local, remote))
    }

    /// How many subscriptions there are.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Takes subscription `id` out of what finds it for changes,
    /// refreshes and expiry.
    fn detach(&mut self, id: SubId) {
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        self.by_dialog
            .remove(&self.dialog_key(sub.dialog.id_parts()));
        self.expiry.remove(&(sub.expires_at, id));
        if let Some(ids) = self.watchers.get_mut(&sub.resource) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.watchers.remove(&sub.resource);
            }
        }
    }

    /// Forgets subscription `id` and what it counted for.
    fn remove(&mut self, id: SubId) {
        self.detach(id);
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        let device = (sub.subscriber.clone(), sub.device.into_string());
        decrement(&mut self.per_device, &device);
        decrement(&mut self.per_extension, &sub.subscriber);
        decrement(&mut self.per_tenant, &sub.subscriber.tenant);
    }
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}
