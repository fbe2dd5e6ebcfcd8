//! Subscriptions (RFC 6665): phones and softphones watch the lines of
//! their tenant (BLF keys, buddy lists) and their own mailbox, and are
//! told of every change by NOTIFY.
//!
//! A SUBSCRIBE is authenticated like an INVITE (407, the same answers
//! for unknown users) and may name any extension, group or virtual
//! extension of the subscriber's own tenant; anything else is 404,
//! whether it exists in another tenant or not. The subscription is a
//! dialog kept in memory until it expires, is ended by its subscriber
//! (Expires: 0), or its subscriber stops answering NOTIFYs (481, timeout,
//! a connection gone): after a restart, phones subscribe again.
//!
//! What a subscription shows ([`packages::Shown`]) is computed from the
//! engine's own state (calls, lines, settings) for every number the
//! engine marked as touched, and a NOTIFY goes out only when it differs
//! from the last one sent; one NOTIFY per subscription is in flight at a
//! time, the newest state waiting behind it.

mod packages;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use edgepbx_model::{CallSettings, FeatureKey};
use edgepbx_sip::dialog::{Dialog, DialogId};
use edgepbx_sip::grammar::Uri;
use edgepbx_sip::transaction::{ClientKey, ServerKey};
use edgepbx_sip::{Method, Request, Response};
use serde::Deserialize;
use tracing::{debug, info};

use crate::calls::{Calls, DialogView};
use crate::digest::{DigestGate, authenticate};
use crate::lines::{Lines, Presence};
use crate::output::Output;
use crate::peer::Peer;
use crate::registrar::Aor;
use crate::signalling::Signalling;
use crate::tenants::{Tenant, TenantTable};
pub use packages::Package;
use packages::{ALLOW_EVENTS, Entity, FeaturesView, PresenceView, Shown, feature_request};

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
    /// The wall-clock time of the input being handled.
    pub wall: SystemTime,
}

type SubId = u64;

/// A new subscription, as its SUBSCRIBE asked and the checks allowed.
struct Watched {
    package: Package,
    /// The `Event` header as sent.
    event: String,
    /// The tenant's SIP domain.
    domain: String,
    subscriber: Aor,
    /// The number watched.
    number: String,
    /// Its length, granted.
    expires: u32,
    /// The setting its body changes (a feature key).
    change: Option<FeatureKey>,
}

#[derive(Debug)]
struct Subscription {
    package: Package,
    /// The `Event` header to echo (with its `id` parameter).
    event: String,
    /// The number watched (an extension's own number, or a group's).
    resource: Aor,
    /// Who subscribed.
    subscriber: Aor,
    /// The subscribing device's Contact.
    device: String,
    /// The tenant's SIP domain, for the URIs in bodies.
    domain: String,
    dialog: Dialog,
    /// The flow it came in on: NOTIFYs go back over it.
    peer: Peer,
    /// Our Contact in the dialog.
    contact: String,
    expires_at: Instant,
    expires_wall: SystemTime,
    /// The dialog-info document version of the next NOTIFY.
    version: u32,
    /// What the last NOTIFY showed.
    shown: Option<Shown>,
    /// The NOTIFY awaiting its answer.
    in_flight: Option<ClientKey>,
    /// A newer state to send once it is answered (and whether it goes
    /// even if unchanged: it answers a SUBSCRIBE).
    queued: Option<(Shown, bool)>,
    /// Ended, with this reason: the queued state goes out as the final
    /// NOTIFY once the one in flight is answered.
    ending: Option<&'static str>,
}

/// Every subscription, and how requests, answers and changes find theirs.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    config: SubscriptionsConfig,
    subs: HashMap<SubId, Subscription>,
    next_id: SubId,
    by_dialog: HashMap<DialogId, SubId>,
    by_client: HashMap<ClientKey, SubId>,
    watchers: HashMap<Aor, Vec<SubId>>,
    expiry: BTreeSet<(Instant, SubId)>,
    per_device: HashMap<(Aor, String), usize>,
    per_extension: HashMap<Aor, usize>,
    per_tenant: HashMap<String, usize>,
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
            .filter(|s| &s.subscriber == aor)
            .map(|s| SubscriptionInfo {
                package: s.package.name(),
                target: s.resource.extension.clone(),
                device: s.device.clone(),
                expires_at: s.expires_wall,
            })
            .collect();
        list.sort_by(|a, b| {
            (&a.device, &a.target, a.package).cmp(&(&b.device, &b.target, b.package))
        });
        list
    }

    /// How many subscriptions there are.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// A SUBSCRIBE: a new subscription, or a refresh or end of one.
    pub fn handle_subscribe(
        &mut self,
        now: Instant,
        sx: &mut Sx<'_>,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
    ) {
        let refuse = |sx: &mut Sx<'_>, status: u16, reason: Option<&str>| {
            let mut r = Response::for_request(request, status, Some(&request.stateless_tag()));
            if let Some(reason) = reason {
                r.reason = reason.to_owned();
            }
            sx.sig.respond(now, key, r)
        };
        let event = request.headers.get("Event").unwrap_or("").trim().to_owned();
        let Some(package) = Package::parse(&event) else {
            let mut r = Response::for_request(request, 489, Some(&request.stateless_tag()));
            r.headers.push("Allow-Events", ALLOW_EVENTS);
            return sx.sig.respond(now, key, r);
        };
        let existing = match DialogId::of_received(request) {
            Some(id) => match self.by_dialog.get(&id) {
                Some(sub) => Some(*sub),
                None => return refuse(sx, 481, None),
            },
            None => None,
        };
        let Some(expires) = requested_expires(request, self.config.default_expires) else {
            return refuse(sx, 400, Some("Bad Expires"));
        };
        if expires != 0 && expires < self.config.min_expires {
            let mut r = Response::for_request(request, 423, Some(&request.stateless_tag()));
            r.headers
                .push("Min-Expires", self.config.min_expires.to_string());
            return sx.sig.respond(now, key, r);
        }
        let expires = expires.min(self.config.max_expires);
        let Some((tenant, extension)) = authenticate(
            now, sx.wall, sx.sig, sx.gate, sx.tenants, key, request, peer,
        ) else {
            return;
        };
        let subscriber = Aor {
            tenant: tenant.code.clone(),
            extension: extension.number.clone(),
        };
        // A phone's feature key pressed: a change of its own settings.
        let change = match (package, request.body.is_empty()) {
            (Package::FeatureEvent, false) => {
                match feature_request(&String::from_utf8_lossy(&request.body)) {
                    Some(change) => Some(change),
                    None => return refuse(sx, 400, Some("Unknown Feature Request")),
                }
            }
            _ => None,
        };
        match existing {
            Some(id) => self.refresh(now, sx, key, request, id, &subscriber, expires, change),
            None => {
                let Some(number) = watched_number(sx.tenants, &tenant, &request.uri) else {
                    return refuse(sx, 404, None);
                };
                if package.own_only() && number != subscriber.extension {
                    return refuse(sx, 403, None);
                }
                if let Some(reason) = self.over_limit(&subscriber, request) {
                    info!(tenant = %tenant.code, extension = %subscriber.extension, reason,
                        "subscription refused");
                    return refuse(sx, 403, Some(reason));
                }
                let watched = Watched {
                    package,
                    event,
                    domain: tenant.domain.clone(),
                    subscriber,
                    number,
                    expires,
                    change,
                };
                self.create(now, sx, key, request, peer, watched);
            }
        }
    }

    /// Refuses a subscription past a limit: the reason, if it is.
    fn over_limit(&self, subscriber: &Aor, request: &Request) -> Option<&'static str> {
        let device = device_of(request);
        let per_device = self
            .per_device
            .get(&(subscriber.clone(), device))
            .copied()
            .unwrap_or(0);
        let per_extension = self.per_extension.get(subscriber).copied().unwrap_or(0);
        let per_tenant = self
            .per_tenant
            .get(&subscriber.tenant)
            .copied()
            .unwrap_or(0);
        if per_device >= self.config.max_per_device {
            Some("Too Many Subscriptions For This Device")
        } else if per_extension >= self.config.max_per_extension {
            Some("Too Many Subscriptions For This Extension")
        } else if per_tenant >= self.config.max_per_tenant {
            Some("Too Many Subscriptions For This Tenant")
        } else {
            None
        }
    }

    fn create(
        &mut self,
        now: Instant,
        sx: &mut Sx<'_>,
        key: ServerKey,
        request: &Request,
        peer: &Peer,
        watched: Watched,
    ) {
        let Watched {
            package,
            event,
            domain,
            subscriber,
            number,
            expires,
            change,
        } = watched;
        let tag = sx.sig.tag();
        let dialog = match Dialog::as_uas(request, &tag, false) {
            Ok(dialog) => dialog,
            Err(error) => {
                debug!(%error, "SUBSCRIBE without a usable dialog");
                let r = Response::for_request(request, 400, Some(&tag));
                return sx.sig.respond(now, key, r);
            }
        };
        let contact = sx.sig.our_contact(peer);
        let mut ok = Response::for_request(request, 200, Some(&tag));
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Contact", contact.clone());
        sx.sig.respond(now, key, ok);
        let resource = Aor {
            tenant: subscriber.tenant.clone(),
            extension: number,
        };
        self.next_id += 1;
        let id = self.next_id;
        let device = device_of(request);
        info!(tenant = %subscriber.tenant, subscriber = %subscriber.extension,
            target = %resource.extension, package = package.name(), expires, "subscribed");
        let sub = Subscription {
            package,
            event,
            resource: resource.clone(),
            subscriber: subscriber.clone(),
            device: device.clone(),
            domain,
            dialog,
            peer: peer.clone(),
            contact,
            expires_at: now,
            expires_wall: sx.wall,
            version: 0,
            shown: None,
            in_flight: None,
            queued: None,
            ending: None,
        };
        self.by_dialog.insert(sub.dialog.id.clone(), id);
        self.watchers.entry(resource).or_default().push(id);
        *self
            .per_device
            .entry((subscriber.clone(), device))
            .or_default() += 1;
        *self.per_extension.entry(subscriber.clone()).or_default() += 1;
        *self.per_tenant.entry(subscriber.tenant).or_default() += 1;
        self.subs.insert(id, sub);
        self.renew(now, sx.wall, id, expires);
        self.notify_current(now, sx, id, expires == 0, change);
    }

    #[allow(clippy::too_many_arguments)]
    fn refresh(
        &mut self,
        now: Instant,
        sx: &mut Sx<'_>,
        key: ServerKey,
        request: &Request,
        id: SubId,
        subscriber: &Aor,
        expires: u32,
        change: Option<FeatureKey>,
    ) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if &sub.subscriber != subscriber {
            let r = Response::for_request(request, 403, None);
            return sx.sig.respond(now, key, r);
        }
        if let Err(error) = sub.dialog.receive(request) {
            debug!(%error, "SUBSCRIBE out of order");
            let r = Response::for_request(request, 500, None);
            return sx.sig.respond(now, key, r);
        }
        let mut ok = Response::for_request(request, 200, None);
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Contact", sub.contact.clone());
        sx.sig.respond(now, key, ok);
        self.renew(now, sx.wall, id, expires);
        self.notify_current(now, sx, id, expires == 0, change);
    }

    /// Sets when subscription `id` expires.
    fn renew(&mut self, now: Instant, wall: SystemTime, id: SubId, expires: u32) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        self.expiry.remove(&(sub.expires_at, id));
        let length = Duration::from_secs(u64::from(expires));
        sub.expires_at = now + length;
        sub.expires_wall = wall + length;
        if expires > 0 {
            self.expiry.insert((sub.expires_at, id));
        }
    }

    /// Sends subscription `id` its resource's state now (after a
    /// SUBSCRIBE, RFC 6665 §4.2.1.4), as the final NOTIFY if `ending`.
    /// A feature key's `change` goes to the store, and the NOTIFY shows it
    /// made: the tenant's reload after the write confirms it, or shows the
    /// phone the settings as they stayed.
    fn notify_current(
        &mut self,
        now: Instant,
        sx: &mut Sx<'_>,
        id: SubId,
        ending: bool,
        change: Option<FeatureKey>,
    ) {
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        let mut shown = private(sx.tenants, sub, shown(sx, sub.package, &sub.resource));
        if let Some(key) = change {
            info!(tenant = %sub.subscriber.tenant, extension = %sub.subscriber.extension,
                ?key, "feature key pressed");
            if let Some(extension) = sx
                .tenants
                .tenant(&sub.resource.tenant)
                .and_then(|t| t.extensions.get(&sub.resource.extension))
            {
                shown = Shown::Features(features_of(&extension.settings.with(&key)));
            }
            sx.sig.push(Output::Settings {
                tenant: sub.subscriber.tenant.clone(),
                extension: sub.subscriber.extension.clone(),
                key,
            });
        }
        if ending {
            self.end(now, sx.sig, id, Some((shown, "timeout")));
        } else {
            self.send(now, sx.sig, id, shown, true);
        }
    }

    /// What changed since watchers were last told: every touched number's
    /// watchers whose view changed get a NOTIFY.
    pub fn handle_touched(&mut self, now: Instant, sx: &mut Sx<'_>, touched: HashSet<Aor>) {
        for aor in touched {
            let Some(ids) = self.watchers.get(&aor).cloned() else {
                continue;
            };
            let mut views: HashMap<Package, Shown> = HashMap::new();
            for id in ids {
                let Some(sub) = self.subs.get(&id) else {
                    continue;
                };
                let package = sub.package;
                let view = views
                    .entry(package)
                    .or_insert_with(|| shown(sx, package, &aor))
                    .clone();
                let view = private(sx.tenants, sub, view);
                self.send(now, sx.sig, id, view, false);
            }
        }
    }

    /// The configuration of the `changed` tenants changed: their
    /// subscriptions to numbers that are gone end (`noresource`), those
    /// of extensions that are gone too (`rejected`), each with a final
    /// NOTIFY; every other one is checked for changes (settings such as
    /// DND show in presence).
    pub fn handle_tenants(&mut self, now: Instant, sx: &mut Sx<'_>, changed: &HashSet<String>) {
        let affected: Vec<(SubId, Option<&'static str>)> = self
            .subs
            .iter()
            .filter(|(_, s)| changed.contains(&s.resource.tenant))
            .map(|(id, s)| {
                let tenant = sx.tenants.tenant(&s.resource.tenant);
                let ending = match tenant {
                    Some(t) if !exists(t, &s.resource.extension) => Some("noresource"),
                    Some(t) if !t.extensions.contains_key(&s.subscriber.extension) => {
                        Some("rejected")
                    }
                    Some(_) => None,
                    None => Some("noresource"),
                };
                (*id, ending)
            })
            .collect();
        let mut touched = HashSet::new();
        for (id, ending) in affected {
            let Some(sub) = self.subs.get(&id) else {
                continue;
            };
            match ending {
                None => {
                    touched.insert(sub.resource.clone());
                }
                Some(reason) => {
                    let last = shown(sx, sub.package, &sub.resource);
                    self.end(now, sx.sig, id, Some((last, reason)));
                }
            }
        }
        self.handle_touched(now, sx, touched);
    }

    /// The answer to a NOTIFY; a failure ends the subscription (RFC 6665
    /// §4.2.2: 481 and every other error mean the subscriber is gone).
    pub fn handle_response(
        &mut self,
        now: Instant,
        sig: &mut Signalling,
        key: ClientKey,
        status: u16,
    ) {
        if status < 200 {
            return;
        }
        let Some(id) = self.by_client.remove(&key) else {
            return;
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        sub.in_flight = None;
        if status >= 300 {
            info!(tenant = %sub.subscriber.tenant, subscriber = %sub.subscriber.extension,
                status, "subscriber refused a NOTIFY: subscription ended");
            return self.remove(id);
        }
        let queued = sub.queued.take();
        match (sub.ending, queued) {
            (Some(reason), Some((last, _))) => self.end(now, sig, id, Some((last, reason))),
            (Some(_), None) => self.remove(id),
            (None, Some((queued, always))) => self.send(now, sig, id, queued, always),
            (None, None) => {}
        }
    }

    /// A NOTIFY got no answer at all (timeout, connection gone): the
    /// subscription ends.
    pub fn handle_failure(&mut self, key: ClientKey) {
        if let Some(id) = self.by_client.remove(&key) {
            if let Some(sub) = self.subs.get(&id) {
                info!(tenant = %sub.subscriber.tenant, subscriber = %sub.subscriber.extension,
                    "subscriber stopped answering: subscription ended");
            }
            self.remove(id);
        }
    }

    /// A connection closed: its subscriptions cannot be told anything more.
    pub fn handle_closed(&mut self, conn: u64) {
        let ids: Vec<SubId> = self
            .subs
            .iter()
            .filter(|(_, s)| matches!(s.peer, Peer::Tcp { conn: c, .. } if c == conn))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.remove(id);
        }
    }

    /// Ends subscriptions that expired by `now`, with a final NOTIFY.
    pub fn handle_timeout(&mut self, now: Instant, sx: &mut Sx<'_>) {
        while let Some(&(at, id)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            self.notify_current(now, sx, id, true, None);
        }
    }

    /// Sends `shown` to subscription `id` if it differs from what it was
    /// last sent (or `always`, after a SUBSCRIBE), or queues it behind the
    /// NOTIFY in flight.
    fn send(&mut self, now: Instant, sig: &mut Signalling, id: SubId, shown: Shown, always: bool) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.in_flight.is_some() {
            let always = always || sub.queued.as_ref().is_some_and(|(_, a)| *a);
            sub.queued = Some((shown, always));
            return;
        }
        if !always && sub.shown.as_ref() == Some(&shown) {
            return;
        }
        let remaining = sub.expires_at.saturating_duration_since(now).as_secs();
        let state = format!("active;expires={remaining}");
        if let Some(key) = notify(now, sig, sub, &shown, &state) {
            sub.in_flight = Some(key);
            self.by_client.insert(key, id);
        }
        sub.shown = Some(shown);
    }

    /// Ends subscription `id`: a final NOTIFY showing `last` with its
    /// reason when given, then forgotten. With a NOTIFY in flight, the
    /// final one waits for its answer (NOTIFYs reach a subscriber in
    /// order), and the subscription hears of no change meanwhile.
    fn end(
        &mut self,
        now: Instant,
        sig: &mut Signalling,
        id: SubId,
        last: Option<(Shown, &'static str)>,
    ) {
        let Some((shown, reason)) = last else {
            return self.remove(id);
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.in_flight.is_some() {
            sub.ending = Some(reason);
            sub.queued = Some((shown, true));
            return self.detach(id);
        }
        let state = format!("terminated;reason={reason}");
        if let Some(key) = notify(now, sig, sub, &shown, &state) {
            self.by_client.insert(key, id);
        }
        self.remove(id);
    }

    /// Takes subscription `id` out of what finds it for changes,
    /// refreshes and expiry.
    fn detach(&mut self, id: SubId) {
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        self.by_dialog.remove(&sub.dialog.id);
        self.expiry.remove(&(sub.expires_at, id));
        if let Some(ids) = self.watchers.get_mut(&sub.resource) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.watchers.remove(&sub.resource);
            }
        }
    }

    fn remove(&mut self, id: SubId) {
        self.detach(id);
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        let device = (sub.subscriber.clone(), sub.device);
        decrement(&mut self.per_device, &device);
        decrement(&mut self.per_extension, &sub.subscriber);
        decrement(&mut self.per_tenant, &sub.subscriber.tenant);
    }
}

/// Sends one NOTIFY of `sub` showing `shown`.
fn notify(
    now: Instant,
    sig: &mut Signalling,
    sub: &mut Subscription,
    shown: &Shown,
    state: &str,
) -> Option<ClientKey> {
    let entity = Entity {
        number: &sub.resource.extension,
        domain: &sub.domain,
    };
    let body = packages::body(&entity, shown, sub.shown.as_ref(), sub.version);
    sub.version = sub.version.wrapping_add(1);
    let mut request = sub
        .dialog
        .request(Method::from_token("NOTIFY"), Some(&sub.contact));
    request.headers.push("Event", sub.event.clone());
    request.headers.push("Subscription-State", state);
    request
        .headers
        .push("Content-Type", sub.package.content_type());
    request.body = body.into_bytes();
    let peer = sub.peer.clone();
    sig.send_request(now, &mut request, &peer)
}

/// What subscribers of `package` to `resource` see now.
fn shown(sx: &Sx<'_>, package: Package, resource: &Aor) -> Shown {
    let Some(tenant) = sx.tenants.tenant(&resource.tenant) else {
        return Shown::Dialogs(Vec::new());
    };
    match package {
        Package::Dialog => Shown::Dialogs(sx.calls.dialogs_of(tenant, &resource.extension)),
        Package::Presence => Shown::Presence(match tenant.extensions.get(&resource.extension) {
            Some(extension) => {
                let (presence, devices) = sx.lines.status(resource);
                PresenceView {
                    online: devices > 0,
                    on_the_phone: presence == Presence::Busy,
                    ringing: presence == Presence::Ringing,
                    dnd: extension.settings.dnd,
                }
            }
            None => {
                let dialogs = sx.calls.dialogs_of(tenant, &resource.extension);
                PresenceView {
                    online: true,
                    on_the_phone: dialogs.iter().any(|d| d.confirmed),
                    ringing: dialogs.iter().any(|d| !d.confirmed),
                    dnd: false,
                }
            }
        }),
        // Mailboxes arrive with voicemail: until then, none has messages.
        Package::MessageSummary => Shown::Messages { new: 0, old: 0 },
        Package::FeatureEvent => match tenant.extensions.get(&resource.extension) {
            Some(extension) => Shown::Features(features_of(&extension.settings)),
            None => Shown::Features(features_of(&CallSettings::default())),
        },
    }
}

/// `shown` as `sub` may see it: when the tenant keeps callers private,
/// only the watched extension's own phones see who calls.
fn private(tenants: &TenantTable, sub: &Subscription, shown: Shown) -> Shown {
    let hidden = tenants
        .tenant(&sub.resource.tenant)
        .is_some_and(|t| !t.features.blf_shows_caller);
    match shown {
        Shown::Dialogs(dialogs) if hidden && sub.subscriber != sub.resource => Shown::Dialogs(
            dialogs
                .into_iter()
                .map(|d| DialogView {
                    remote: "anonymous".to_owned(),
                    remote_name: None,
                    ..d
                })
                .collect(),
        ),
        other => other,
    }
}

/// What feature keys show of `settings`.
fn features_of(settings: &CallSettings) -> FeaturesView {
    let text = |t: &Option<edgepbx_model::ForwardTarget>| t.as_ref().map(ToString::to_string);
    FeaturesView {
        dnd: settings.dnd,
        always: text(&settings.forward_unconditional),
        busy: text(&settings.forward_busy),
        no_answer: text(&settings.forward_no_answer),
    }
}

/// The number a SUBSCRIBE's Request-URI names in the subscriber's tenant:
/// an extension (by number or alias) or a group. A URI that names another
/// tenant (by domain or `-CODE` suffix) names nothing here.
fn watched_number(tenants: &TenantTable, tenant: &Tenant, uri: &str) -> Option<String> {
    let uri: Uri = uri.parse().ok()?;
    let sip = uri.as_sip()?;
    let user = sip.user()?;
    let user = match tenants.address(user, &sip.host().to_string()) {
        Some(addressed) if addressed.tenant.code != tenant.code => return None,
        Some(addressed) => addressed.user,
        None => user.to_owned(),
    };
    if let Some(extension) = tenant.resolve(&user) {
        return Some(extension.number.clone());
    }
    tenant.groups.contains_key(&user).then_some(user)
}

/// Whether `number` is still an extension or group of `tenant`.
fn exists(tenant: &Tenant, number: &str) -> bool {
    tenant.extensions.contains_key(number) || tenant.groups.contains_key(number)
}

/// The subscription length a SUBSCRIBE asks for; `None` when its Expires
/// is not a number.
fn requested_expires(request: &Request, default: u32) -> Option<u32> {
    match request.headers.get("Expires") {
        None => Some(default),
        Some(value) => {
            let value = value.trim();
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // A huge number is just "as long as you allow".
            Some(value.parse().unwrap_or(u32::MAX))
        }
    }
}

/// The subscribing device: the SUBSCRIBE's Contact URI.
fn device_of(request: &Request) -> String {
    request
        .headers
        .get("Contact")
        .and_then(|c| edgepbx_sip::grammar::parse_name_addr(c).ok())
        .map(|c| c.uri.to_string())
        .unwrap_or_default()
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}
