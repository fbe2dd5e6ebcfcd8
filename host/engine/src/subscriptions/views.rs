//! What each package shows of the engine's state: the calls of a number
//! (dialog), its line and DND (presence), its mailbox (message summary),
//! its settings (feature keys); and what a subscriber may see of it.

use edgepbx_model::CallSettings;

use super::packages::{KeysView, Package, PresenceView, View};
use super::{Subscription, Sx};
use crate::calls::DialogView;
use crate::lines::Presence;
use crate::registrar::Aor;
use crate::tenants::{Tenant, TenantTable};

/// What subscribers of `package` to `resource` see now (nothing of a
/// tenant that is gone: an idle line, offline, no messages, no settings).
pub(super) fn view_of(sx: &Sx<'_>, package: Package, resource: &Aor) -> View {
    let tenant = sx.tenants.tenant(&resource.tenant);
    match package {
        Package::Dialog => View::Dialogs(
            tenant
                .map(|t| sx.calls.dialogs_of(t, &resource.extension))
                .unwrap_or_default(),
        ),
        Package::Presence => View::Presence(presence(sx, tenant.map(AsRef::as_ref), resource)),
        Package::MessageSummary => {
            let (new, old) = sx.mailboxes.get(resource).copied().unwrap_or((0, 0));
            View::Messages { new, old }
        }
        Package::FeatureEvent => {
            let settings = tenant.and_then(|t| t.extensions.get(&resource.extension));
            View::Keys(keys_of(
                settings.map_or(&CallSettings::default(), |e| &e.settings),
            ))
        }
    }
}

/// An extension's presence from its line and DND; a group's from the
/// calls routed to it.
fn presence(sx: &Sx<'_>, tenant: Option<&Tenant>, resource: &Aor) -> PresenceView {
    let Some(tenant) = tenant else {
        return PresenceView {
            online: false,
            on_the_phone: false,
            ringing: false,
            dnd: false,
            away: false,
        };
    };
    match tenant.extensions.get(&resource.extension) {
        Some(extension) => {
            let (presence, devices) = sx.lines.status(resource);
            PresenceView {
                online: devices > 0,
                on_the_phone: presence == Presence::Busy,
                ringing: presence == Presence::Ringing,
                dnd: extension.settings.dnd,
                away: extension.settings.away,
            }
        }
        None => {
            let dialogs = sx.calls.dialogs_of(tenant, &resource.extension);
            PresenceView {
                online: true,
                on_the_phone: dialogs.iter().any(|d| d.confirmed),
                ringing: dialogs.iter().any(|d| !d.confirmed),
                dnd: false,
                away: false,
            }
        }
    }
}

/// `view` as `sub` may see it: when the tenant keeps callers private,
/// only the watched extension's own phones see who calls.
pub(super) fn private(tenants: &TenantTable, sub: &Subscription, view: View) -> View {
    let hidden = tenants
        .tenant(&sub.resource.tenant)
        .is_some_and(|t| !t.features.blf_shows_caller);
    match view {
        View::Dialogs(dialogs) if hidden && sub.subscriber != sub.resource => View::Dialogs(
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
pub(super) fn keys_of(settings: &CallSettings) -> Box<KeysView> {
    let text = |t: &Option<edgepbx_model::ForwardTarget>| t.as_ref().map(ToString::to_string);
    Box::new(KeysView {
        dnd: settings.dnd,
        always: text(&settings.forward_unconditional),
        busy: text(&settings.forward_busy),
        no_answer: text(&settings.forward_no_answer),
    })
}

/// Whether `number` is still an extension or group of `tenant`.
pub(super) fn exists(tenant: &Tenant, number: &str) -> bool {
    tenant.extensions.contains_key(number) || tenant.groups.contains_key(number)
}
