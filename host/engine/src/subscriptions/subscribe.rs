//! SUBSCRIBE: the checks a request passes (package, dialog, expiry,
//! credentials, what may be watched, limits), new subscriptions,
//! refreshes (RFC 6665 §4.2.1), and the feature key presses a refresh
//! carries.

use std::time::{Duration, Instant, SystemTime};

use edgepbx_model::{FeatureKey, ForwardTarget};
use edgepbx_sip::dialog::{Dialog, DialogId};
use edgepbx_sip::grammar::{Uri, parse_name_addr};
use edgepbx_sip::transaction::ServerKey;
use edgepbx_sip::{Request, Response};
use tracing::{debug, info};

use super::packages::{ALLOW_EVENTS, Package, feature_request};
use super::{SubId, Subscription, Subscriptions, Sx};
use crate::digest::authenticate;
use crate::peer::Peer;
use crate::registrar::Aor;
use crate::tenants::{Extension, Tenant, TenantTable};

/// Longest subscription the engine grants, whatever it is configured
/// with: a day.
const MAX_EXPIRES: u32 = 86_400;

/// A new subscription, as its SUBSCRIBE asked and the checks allowed.
struct NewSubscription {
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

/// A refresh, as its SUBSCRIBE asked and the checks allowed.
struct Refresh<'a> {
    id: SubId,
    request: &'a Request,
    peer: &'a Peer,
    subscriber: Aor,
    expires: u32,
    change: Option<FeatureKey>,
}

impl Subscriptions {
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
            if status == 489 {
                r.headers.push("Allow-Events", ALLOW_EVENTS);
            }
            sx.sig.respond(now, key, r)
        };
        let event = request.headers.get("Event").unwrap_or("").trim().to_owned();
        let Some(package) = Package::parse(&event) else {
            return refuse(sx, 489, None);
        };
        let existing = match DialogId::of_received(request) {
            Some(id) => {
                let key = self.dialog_key((&id.call_id, &id.local_tag, &id.remote_tag));
                match self.by_dialog.get(&key) {
                    Some(sub) if self.subs.get(sub).is_some_and(|s| s.dialog.is(&id)) => Some(*sub),
                    _ => return refuse(sx, 481, None),
                }
            }
            None => None,
        };
        // A refresh renews the subscription it names: same package, same
        // `id` (RFC 6665 §4.1.2.2).
        if let Some(sub) = existing.and_then(|id| self.subs.get(&id))
            && (sub.package != package || event_id(&sub.event) != event_id(&event))
        {
            return refuse(sx, 489, None);
        }
        let Some(expires) = requested_expires(request, self.config.default_expires) else {
            return refuse(sx, 400, Some("Bad Expires"));
        };
        if expires != 0 && expires < self.config.min_expires {
            let mut r = Response::for_request(request, 423, Some(&request.stateless_tag()));
            r.headers
                .push("Min-Expires", self.config.min_expires.to_string());
            return sx.sig.respond(now, key, r);
        }
        let expires = expires.min(self.config.max_expires).min(MAX_EXPIRES);
        let Some((tenant, extension)) = authenticate(
            now, sx.wall, sx.sig, sx.gate, sx.tenants, key, request, peer,
        ) else {
            return;
        };
        let subscriber = Aor {
            tenant: tenant.code.clone(),
            extension: extension.number.clone(),
        };
        let change = match key_pressed(package, request, &tenant, &extension) {
            Ok(change) => change,
            Err((status, reason)) => return refuse(sx, status, Some(reason)),
        };
        if let Some(id) = existing {
            let refresh = Refresh {
                id,
                request,
                peer,
                subscriber,
                expires,
                change,
            };
            return self.refresh(now, sx, key, refresh);
        }
        let Some(number) = watched_number(sx.tenants, &tenant, &request.uri) else {
            return refuse(sx, 404, None);
        };
        if package.own_only() && number != subscriber.extension {
            return refuse(sx, 403, None);
        }
        if let Some(reason) = self.over_limit(&subscriber, &device_of(request)) {
            info!(tenant = %tenant.code, extension = %subscriber.extension, reason,
                "subscription refused");
            return refuse(sx, 403, Some(reason));
        }
        let new = NewSubscription {
            package,
            event,
            domain: tenant.domain.clone(),
            subscriber,
            number,
            expires,
            change,
        };
        self.create(now, sx, key, request, peer, new);
    }

    /// Refuses a subscription past a limit: the reason, if it is.
    fn over_limit(&self, subscriber: &Aor, device: &str) -> Option<&'static str> {
        let per_device = self
            .per_device
            .get(&(subscriber.clone(), device.to_owned()))
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
        new: NewSubscription,
    ) {
        let NewSubscription {
            package,
            event,
            domain,
            subscriber,
            number,
            expires,
            change,
        } = new;
        let tag = sx.sig.tag();
        let dialog = match Dialog::as_uas(request, &tag, false) {
            Ok(dialog) => dialog.store(),
            Err(error) => {
                debug!(%error, "SUBSCRIBE without a usable dialog");
                let r = Response::for_request(request, 400, Some(&tag));
                return sx.sig.respond(now, key, r);
            }
        };
        let dialog_key = self.dialog_key(dialog.id_parts());
        if self.by_dialog.contains_key(&dialog_key) {
            // Two dialogs whose keyed 64-bit hashes collide: as likely as
            // guessing the key. The phone tries again with a new tag.
            let r = Response::for_request(request, 500, Some(&tag));
            return sx.sig.respond(now, key, r);
        }
        let contact = sx.sig.our_contact(peer);
        let mut ok = Response::for_request(request, 200, Some(&tag));
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Contact", contact.as_str());
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
            event: event.into_boxed_str(),
            resource: resource.clone(),
            subscriber: subscriber.clone(),
            device: device.as_str().into(),
            domain: domain.into_boxed_str(),
            dialog,
            peer: peer.clone(),
            contact: contact.into_boxed_str(),
            expires_at: now,
            expires_wall: sx.wall,
            version: 0,
            shown: None,
            in_flight: None,
            queued: None,
            ending: None,
        };
        self.by_dialog.insert(dialog_key, id);
        self.watchers.entry(resource).or_default().push(id);
        *self
            .per_device
            .entry((subscriber.clone(), device))
            .or_default() += 1;
        *self.per_extension.entry(subscriber.clone()).or_default() += 1;
        *self.per_tenant.entry(subscriber.tenant).or_default() += 1;
        self.subs.insert(id, Box::new(sub));
        self.renew(now, sx.wall, id, expires);
        self.notify_current(now, sx, id, expires == 0, change);
    }

    /// A SUBSCRIBE inside a subscription's dialog: a target refresh (the
    /// device may have moved: its Contact and flow are taken again) that
    /// renews or ends it.
    fn refresh(&mut self, now: Instant, sx: &mut Sx<'_>, key: ServerKey, refresh: Refresh<'_>) {
        let Refresh {
            id,
            request,
            peer,
            subscriber,
            expires,
            change,
        } = refresh;
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.subscriber != subscriber {
            let r = Response::for_request(request, 403, None);
            return sx.sig.respond(now, key, r);
        }
        let mut dialog = match sub.dialog.load() {
            Ok(dialog) => dialog,
            Err(error) => {
                debug!(%error, "subscription dialog unreadable");
                let r = Response::for_request(request, 500, None);
                return sx.sig.respond(now, key, r);
            }
        };
        if let Err(error) = dialog.receive(request) {
            debug!(%error, "SUBSCRIBE out of order");
            let r = Response::for_request(request, 500, None);
            return sx.sig.respond(now, key, r);
        }
        let moved = dialog.refresh_target(&request.headers).is_ok();
        sub.dialog = dialog.store();
        if moved {
            sub.peer = peer.clone();
            let device = device_of(request);
            if *device != *sub.device {
                let old = (
                    sub.subscriber.clone(),
                    std::mem::replace(&mut sub.device, device.into_boxed_str()).into_string(),
                );
                *self
                    .per_device
                    .entry((sub.subscriber.clone(), sub.device.to_string()))
                    .or_default() += 1;
                super::decrement(&mut self.per_device, &old);
            }
        }
        let mut ok = Response::for_request(request, 200, None);
        ok.headers.push("Expires", expires.to_string());
        ok.headers.push("Contact", &*sub.contact);
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
        sub.expires_at = now.checked_add(length).unwrap_or(now);
        sub.expires_wall = wall.checked_add(length).unwrap_or(wall);
        if expires > 0 {
            self.expiry.insert((sub.expires_at, id));
        }
    }
}

/// The feature key a SUBSCRIBE's body presses, if it carries one: 400
/// for a body that is no request edgepbx reads, 403 for forwarding to a
/// number the extension may not call (a forward is a call it pays for).
fn key_pressed(
    package: Package,
    request: &Request,
    tenant: &Tenant,
    extension: &Extension,
) -> Result<Option<FeatureKey>, (u16, &'static str)> {
    if package != Package::FeatureEvent || request.body.is_empty() {
        return Ok(None);
    }
    let key = feature_request(&String::from_utf8_lossy(&request.body))
        .ok_or((400, "Unknown Feature Request"))?;
    if let FeatureKey::Forward(_, Some(ForwardTarget::Number(number))) = &key
        && !tenant.is_internal(number)
        && !extension.settings.allowed_destinations.permits(number)
    {
        return Err((403, "Destination Not Allowed"));
    }
    Ok(Some(key))
}

/// The `id` parameter of an `Event` header.
fn event_id(event: &str) -> Option<&str> {
    event.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("id")
            .then_some(value.trim())
    })
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
        .and_then(|c| parse_name_addr(c).ok())
        .map(|c| c.uri.to_string())
        .unwrap_or_default()
}
