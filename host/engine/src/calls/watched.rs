//! The calls of one number as its watchers see them: one dialog per call
//! (RFC 4235), whatever the number of devices it forks to, so that a
//! losing branch never looks like the end of the call.

use super::{BranchState, Call, Calls};
use crate::registrar::Aor;
use crate::tenants::Tenant;

/// Which way a watched call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The watched number called.
    Initiator,
    /// The watched number is called.
    Recipient,
}

/// One call of a watched number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DialogView {
    /// The call's id (as in its records and events).
    pub id: String,
    /// Which way it goes.
    pub direction: Direction,
    /// Answered (else ringing).
    pub confirmed: bool,
    /// The other party's number.
    pub remote: String,
    /// The other party's name, when known.
    pub remote_name: Option<String>,
}

impl Calls {
    /// The calls `number` of `tenant` is in (an extension: as caller, as
    /// the party that answered, or rung; a group or virtual extension: the
    /// calls routed to it), oldest first.
    pub(crate) fn dialogs_of(&self, tenant: &Tenant, number: &str) -> Vec<DialogView> {
        let aor = Aor {
            tenant: tenant.code.clone(),
            extension: number.to_owned(),
        };
        let group = tenant.groups.contains_key(number);
        let mut views: Vec<(std::time::SystemTime, DialogView)> = self
            .calls
            .values()
            .filter(|c| c.tenant.code == tenant.code && c.decisions != usize::MAX)
            .filter_map(|c| view(c, &aor, group).map(|v| (c.started, v)))
            .collect();
        views.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        views.into_iter().map(|(_, v)| v).collect()
    }
}

/// How `aor` sees `call`, if it is in it.
fn view(call: &Call, aor: &Aor, group: bool) -> Option<DialogView> {
    let answered = call.answered.is_some();
    let caller = |confirmed| DialogView {
        id: call.uid.clone(),
        direction: Direction::Recipient,
        confirmed,
        remote: call.caller.number.clone(),
        remote_name: call.caller.name.clone(),
    };
    if call.parties.caller.as_ref() == Some(aor) {
        let remote = call
            .parties
            .callee
            .as_ref()
            .map_or_else(|| call.dialled.clone(), |c| c.extension.clone());
        let remote_name = call.tenant.resolve(&remote).map(|e| e.name.clone());
        return Some(DialogView {
            id: call.uid.clone(),
            direction: Direction::Initiator,
            confirmed: answered,
            remote,
            remote_name: remote_name.filter(|n| !n.is_empty()),
        });
    }
    if call.parties.callee.as_ref() == Some(aor) {
        return Some(caller(true));
    }
    let rung = !answered
        && call.branches.iter().any(|b| {
            b.aor.as_ref() == Some(aor)
                && matches!(b.state, BranchState::Calling | BranchState::Ringing)
        });
    if rung {
        return Some(caller(false));
    }
    // A group's call: ringing its members, or answered by one of them.
    (group && call.dialled == aor.extension && (answered || super::ringing(call)))
        .then(|| caller(answered))
}
