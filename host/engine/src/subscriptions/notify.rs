//! NOTIFY: what changed reaches the subscriptions whose view it changes,
//! one NOTIFY in flight per subscription; answers, failures, closed
//! connections, expiry and the final NOTIFY that ends a subscription.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use edgepbx_model::FeatureKey;
use edgepbx_sip::Method;
use edgepbx_sip::transaction::ClientKey;
use tracing::{info, warn};

use super::packages::{self, Entity, Package, View};
use super::views::{exists, keys_of, private, view_of};
use super::{SubId, Subscription, Subscriptions, Sx};
use crate::output::Output;
use crate::registrar::Aor;
use crate::signalling::Signalling;

/// Fastest a phone's feature keys may change its settings: a press
/// sooner after the last one is shown as not made.
const KEY_INTERVAL: Duration = Duration::from_secs(1);

impl Subscriptions {
    /// Sends subscription `id` its resource's state now (after a
    /// SUBSCRIBE, RFC 6665 §4.2.1.4), as the final NOTIFY if `ending`.
    /// A feature key's `change` goes to the store, and the NOTIFY shows it
    /// made: the tenant's reload after the write confirms it, or shows the
    /// phone the settings as they stayed.
    pub(super) fn notify_current(
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
        let mut view = private(sx.tenants, sub, view_of(sx, sub.package, &sub.resource));
        let subscriber = sub.subscriber.clone();
        if let Some(key) = change
            && let Some(settings) = sx
                .tenants
                .tenant(&subscriber.tenant)
                .and_then(|t| t.extensions.get(&subscriber.extension))
                .map(|e| &e.settings)
        {
            let next = settings.with(&key);
            if next != *settings && self.key_allowed(now, &subscriber) {
                info!(tenant = %subscriber.tenant, extension = %subscriber.extension,
                    ?key, "feature key pressed");
                view = View::Keys(keys_of(&next));
                sx.sig.push(Output::FeatureKey {
                    tenant: subscriber.tenant.clone(),
                    extension: subscriber.extension.clone(),
                    key,
                });
            }
        }
        if ending {
            self.end(now, sx.sig, id, Some((view, "timeout")));
        } else {
            self.send(now, sx.sig, id, view, true);
        }
    }

    /// Whether `aor`'s phone may change a setting now; notes that it did.
    fn key_allowed(&mut self, now: Instant, aor: &Aor) -> bool {
        if self.last_key.len() > 1_024 {
            self.last_key
                .retain(|_, at| now.saturating_duration_since(*at) < KEY_INTERVAL);
        }
        match self.last_key.get(aor) {
            Some(at) if now.saturating_duration_since(*at) < KEY_INTERVAL => false,
            _ => {
                self.last_key.insert(aor.clone(), now);
                true
            }
        }
    }

    /// What changed since watchers were last told: every touched number's
    /// watchers whose view changed get a NOTIFY.
    pub fn handle_touched(&mut self, now: Instant, sx: &mut Sx<'_>, touched: HashSet<Aor>) {
        for aor in touched {
            let Some(ids) = self.watchers.get(&aor).cloned() else {
                continue;
            };
            let mut views: HashMap<Package, View> = HashMap::new();
            for id in ids {
                let Some(sub) = self.subs.get(&id) else {
                    continue;
                };
                let package = sub.package;
                let view = views
                    .entry(package)
                    .or_insert_with(|| view_of(sx, package, &aor))
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
            .filter(|(_, s)| changed.contains(&s.resource.tenant) && s.ending.is_none())
            .map(|(id, s)| {
                let ending = match sx.tenants.tenant(&s.resource.tenant) {
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
                    let last = private(sx.tenants, sub, view_of(sx, sub.package, &sub.resource));
                    self.end(now, sx.sig, id, Some((last, reason)));
                }
            }
        }
        self.handle_touched(now, sx, touched);
    }

    /// The final answer to a NOTIFY. 481 means the subscription is gone at
    /// the subscriber (RFC 6665 §4.1.3); another refusal (a busy or
    /// confused phone) keeps it, to be told everything at the next change.
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
        if status == 481 {
            info!(tenant = %sub.subscriber.tenant, subscriber = %sub.subscriber.extension,
                "subscriber no longer has the subscription: ended");
            return self.remove(id);
        }
        if status >= 300 {
            info!(tenant = %sub.subscriber.tenant, subscriber = %sub.subscriber.extension,
                status, "subscriber refused a NOTIFY");
            sub.shown = None;
        }
        let queued = sub.queued.take().map(|q| *q);
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
            .filter(|(_, s)| s.peer.conn() == Some(conn))
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

    /// Sends `view` to subscription `id` if it differs from what it was
    /// last sent (or `always`, after a SUBSCRIBE), or queues it behind the
    /// NOTIFY in flight.
    fn send(&mut self, now: Instant, sig: &mut Signalling, id: SubId, view: View, always: bool) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.in_flight.is_some() {
            let always = always || sub.queued.as_ref().is_some_and(|q| q.1);
            sub.queued = Some(Box::new((view, always)));
            return;
        }
        if !always && sub.shown.as_ref() == Some(&view) {
            return;
        }
        let remaining = sub.expires_at.saturating_duration_since(now).as_secs();
        let state = format!("active;expires={remaining}");
        if let Some(key) = notify(now, sig, sub, &view, &state) {
            sub.in_flight = Some(key);
            self.by_client.insert(key, id);
        }
        sub.shown = Some(view);
    }

    /// Ends subscription `id`: a final NOTIFY showing `last` with its
    /// reason when given, then forgotten. With a NOTIFY in flight, the
    /// final one waits for its answer (NOTIFYs reach a subscriber in
    /// order), and the subscription hears of no change meanwhile.
    pub(super) fn end(
        &mut self,
        now: Instant,
        sig: &mut Signalling,
        id: SubId,
        last: Option<(View, &'static str)>,
    ) {
        let Some((view, reason)) = last else {
            return self.remove(id);
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.in_flight.is_some() {
            sub.ending = Some(reason);
            sub.queued = Some(Box::new((view, true)));
            return self.detach(id);
        }
        let state = format!("terminated;reason={reason}");
        if let Some(key) = notify(now, sig, sub, &view, &state) {
            self.by_client.insert(key, id);
        }
        self.remove(id);
    }
}

/// Sends one NOTIFY of `sub` showing `view`.
fn notify(
    now: Instant,
    sig: &mut Signalling,
    sub: &mut Subscription,
    view: &View,
    state: &str,
) -> Option<ClientKey> {
    let entity = Entity {
        number: &sub.resource.extension,
        domain: &sub.domain,
    };
    let body = packages::body(&entity, view, sub.shown.as_ref(), sub.version);
    sub.version = sub.version.wrapping_add(1);
    let mut request = match sub
        .dialog
        .request(Method::from_token("NOTIFY"), Some(&sub.contact))
    {
        Ok(request) => request,
        Err(error) => {
            warn!(%error, "subscription dialog unreadable: NOTIFY not sent");
            return None;
        }
    };
    request.headers.push("Event", &*sub.event);
    request.headers.push("Subscription-State", state);
    request
        .headers
        .push("Content-Type", sub.package.content_type());
    request.body = body.into_bytes();
    let peer = sub.peer.clone();
    sig.send_request(now, &mut request, &peer)
}
