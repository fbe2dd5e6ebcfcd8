//! The location service of RFC 3261 §10.3: the contacts bound to each
//! extension, with the update rules of steps 6 to 8 and RFC 5626 instance
//! matching. Pure state: time is passed in; the caller authenticates,
//! answers, and writes the changes behind to the store.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::config::RegistrarConfig;
use crate::peer::Peer;

/// The address-of-record an extension registers: tenant and number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aor {
    /// Tenant code.
    pub tenant: String,
    /// Extension number.
    pub extension: String,
}

/// One Contact of a REGISTER, already parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSpec {
    /// The contact URI as sent (escapes and URI parameters preserved).
    pub uri: String,
    /// The `expires` contact parameter.
    pub expires: Option<u32>,
    /// The `q` parameter, verbatim.
    pub q: Option<String>,
    /// `+sip.instance` (RFC 5626), quotes removed.
    pub instance: Option<String>,
    /// `reg-id` (RFC 5626).
    pub reg_id: Option<u32>,
}

/// The Contact header field(s) of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// No Contact: a query for the current bindings.
    Query,
    /// `Contact: *`: remove every binding (only with `Expires: 0`).
    Star,
    /// Contacts to add, refresh or remove.
    List(Vec<ContactSpec>),
}

/// A REGISTER request reduced to what the location service needs.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Whose bindings change.
    pub aor: Aor,
    /// Call-ID of the request.
    pub call_id: String,
    /// CSeq number of the request.
    pub cseq: u32,
    /// The Expires header field.
    pub expires: Option<u32>,
    /// The Contact header field(s).
    pub contacts: Contacts,
    /// The flow the request came over; keepalives and requests use it.
    pub source: Peer,
    /// The User-Agent header field (truncated).
    pub user_agent: Option<String>,
    /// The tenant's own limit on bindings per extension, when it has one
    /// (the server's applies when it is lower).
    pub max_bindings: Option<usize>,
}

/// A current binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The contact URI as registered.
    pub contact: String,
    /// `q` parameter, verbatim.
    pub q: Option<String>,
    /// RFC 5626 instance id.
    pub instance: Option<String>,
    /// RFC 5626 registration id.
    pub reg_id: Option<u32>,
    /// Call-ID of the REGISTER that made or refreshed it.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// Wall-clock expiry (stored, shown to people).
    pub expires_at: SystemTime,
    /// The expiry the store was last given. A refresh that moves the expiry
    /// less than a quarter of the interval past it, and changes nothing a
    /// restart needs (Call-ID and CSeq only order REGISTERs of a running
    /// server), is not written: a phone re-registering every few seconds
    /// costs no disk writes, and after a crash its restored binding expires
    /// at most that much early.
    pub stored_expires_at: SystemTime,
    /// Monotonic expiry (drives removal).
    pub deadline: Instant,
    /// Where the REGISTER came from.
    pub source: Peer,
    /// User-Agent of the device.
    pub user_agent: Option<String>,
}

impl Binding {
    /// Seconds left before expiry, as the 200 states them.
    pub fn remaining(&self, now: Instant) -> u64 {
        self.deadline.saturating_duration_since(now).as_secs()
    }
}

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalReason {
    /// The device asked (expires 0, or `*`).
    Unregistered,
    /// The same device registered a new contact (instance or Call-ID).
    Replaced,
    /// It was not refreshed in time.
    Expired,
    /// OPTIONS pings went unanswered or its connection failed.
    Unreachable,
    /// The connection it registered over closed (RFC 5626 §5.2: a flow
    /// that is gone cannot reach the device).
    Disconnected,
}

impl RemovalReason {
    /// The name stored in registration events.
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::Unregistered => "unregistered",
            RemovalReason::Replaced => "replaced",
            RemovalReason::Expired => "expired",
            RemovalReason::Unreachable => "unreachable",
            RemovalReason::Disconnected => "disconnected",
        }
    }
}

/// A change to write behind and to announce.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new binding (an online transition).
    Added(Aor, Binding),
    /// An existing binding refreshed.
    Refreshed {
        /// Whose.
        aor: Aor,
        /// The binding as it is now.
        binding: Binding,
        /// Whether the store must see it (see [`Binding::stored_expires_at`]).
        write: bool,
    },
    /// A binding gone (an offline transition).
    Removed(Aor, Binding, RemovalReason),
}

/// Why a REGISTER was refused (RFC 3261 §10.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Expiry shorter than allowed: 423 with Min-Expires.
    #[error("interval too brief, minimum {min} s")]
    IntervalTooBrief {
        /// The minimum the registrar accepts.
        min: u32,
    },
    /// `*` with other contacts or a non-zero expiry: 400.
    #[error("Contact: * needs Expires: 0 and no other contact")]
    InvalidStar,
    /// Same Call-ID with a CSeq not above the stored one: 500.
    #[error("out-of-order REGISTER (CSeq {cseq} not above {stored})")]
    OutOfOrder {
        /// CSeq of the request.
        cseq: u32,
        /// CSeq of the binding.
        stored: u32,
    },
    /// The extension already has as many bindings as allowed: 403.
    #[error("too many registered contacts (limit {limit})")]
    TooManyBindings {
        /// The configured limit.
        limit: usize,
    },
}

/// Bindings of every extension.
#[derive(Debug)]
pub struct Location {
    config: RegistrarConfig,
    bindings: HashMap<Aor, Vec<Binding>>,
}

impl Location {
    /// An empty location service.
    pub fn new(config: RegistrarConfig) -> Self {
        Location {
            config,
            bindings: HashMap::new(),
        }
    }

    /// Puts back a binding loaded from the store at start-up.
    pub fn restore(&mut self, aor: Aor, binding: Binding) {
        self.bindings.entry(aor).or_default().push(binding);
    }

    /// The current bindings of an AOR.
    pub fn bindings(&self, aor: &Aor) -> &[Binding] {
        self.bindings.get(aor).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every AOR with at least one binding.
    pub fn iter(&self) -> impl Iterator<Item = (&Aor, &[Binding])> {
        self.bindings.iter().map(|(a, b)| (a, b.as_slice()))
    }

    /// Number of bindings in all.
    pub fn len(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    /// Whether no extension has a binding.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Applies a REGISTER (RFC 3261 §10.3 steps 6–8). All-or-nothing: on an
    /// error no binding changes.
    pub fn register(
        &mut self,
        now: Instant,
        wall: SystemTime,
        reg: &Registration,
    ) -> Result<Vec<Change>, RegisterError> {
        let specs = match &reg.contacts {
            Contacts::Query => return Ok(Vec::new()),
            Contacts::Star => {
                if reg.expires != Some(0) {
                    return Err(RegisterError::InvalidStar);
                }
                let gone = self.bindings.remove(&reg.aor).unwrap_or_default();
                return Ok(gone
                    .into_iter()
                    .map(|b| Change::Removed(reg.aor.clone(), b, RemovalReason::Unregistered))
                    .collect());
            }
            Contacts::List(specs) => specs,
        };
        // Work on a copy so that a refusal half-way changes nothing.
        let mut current = self.bindings.get(&reg.aor).cloned().unwrap_or_default();
        let mut changes = Vec::new();
        for spec in specs {
            let expires = spec
                .expires
                .or(reg.expires)
                .unwrap_or(self.config.default_expires);
            if expires != 0 && expires < self.config.min_expires {
                return Err(RegisterError::IntervalTooBrief {
                    min: self.config.min_expires,
                });
            }
            let expires = expires.min(self.config.max_expires);
            let same_contact = current.iter().position(|b| b.contact == spec.uri);
            let same_device = current.iter().position(|b| same_device(b, spec, reg));
            if let Some(at) = same_contact
                && current[at].call_id == reg.call_id
                && reg.cseq <= current[at].cseq
            {
                return Err(RegisterError::OutOfOrder {
                    cseq: reg.cseq,
                    stored: current[at].cseq,
                });
            }
            if expires == 0 {
                if let Some(at) = same_contact.or(same_device) {
                    let gone = current.remove(at);
                    changes.push(Change::Removed(
                        reg.aor.clone(),
                        gone,
                        RemovalReason::Unregistered,
                    ));
                }
                continue;
            }
            let binding = Binding {
                contact: spec.uri.clone(),
                q: spec.q.clone(),
                instance: spec.instance.clone(),
                reg_id: spec.reg_id,
                call_id: reg.call_id.clone(),
                cseq: reg.cseq,
                expires_at: wall + Duration::from_secs(expires.into()),
                stored_expires_at: wall + Duration::from_secs(expires.into()),
                deadline: now + Duration::from_secs(expires.into()),
                source: reg.source.clone(),
                user_agent: reg.user_agent.clone(),
            };
            match (same_contact, same_device) {
                (Some(at), _) => {
                    let old = &current[at];
                    let moved = binding
                        .expires_at
                        .duration_since(old.stored_expires_at)
                        .unwrap_or_default();
                    let write = moved > Duration::from_secs(u64::from(expires) / 4)
                        || old.source != binding.source
                        || old.user_agent != binding.user_agent
                        || old.q != binding.q
                        || old.instance != binding.instance
                        || old.reg_id != binding.reg_id;
                    let binding = Binding {
                        stored_expires_at: if write {
                            binding.expires_at
                        } else {
                            old.stored_expires_at
                        },
                        ..binding
                    };
                    current[at] = binding.clone();
                    changes.push(Change::Refreshed {
                        aor: reg.aor.clone(),
                        binding,
                        write,
                    });
                }
                (None, Some(at)) => {
                    let old = std::mem::replace(&mut current[at], binding.clone());
                    changes.push(Change::Removed(
                        reg.aor.clone(),
                        old,
                        RemovalReason::Replaced,
                    ));
                    changes.push(Change::Added(reg.aor.clone(), binding));
                }
                (None, None) => {
                    let limit = reg
                        .max_bindings
                        .map_or(self.config.max_bindings_per_extension, |tenant| {
                            tenant.min(self.config.max_bindings_per_extension)
                        });
                    if current.len() >= limit {
                        return Err(RegisterError::TooManyBindings { limit });
                    }
                    current.push(binding.clone());
                    changes.push(Change::Added(reg.aor.clone(), binding));
                }
            }
        }
        if current.is_empty() {
            self.bindings.remove(&reg.aor);
        } else {
            self.bindings.insert(reg.aor.clone(), current);
        }
        Ok(changes)
    }

    /// Removes bindings whose time is up.
    pub fn expire(&mut self, now: Instant) -> Vec<Change> {
        self.remove_where(RemovalReason::Expired, |b| b.deadline <= now)
    }

    /// Removes the bindings registered over stream connection `conn`,
    /// which closed.
    pub fn disconnected(&mut self, conn: u64) -> Vec<Change> {
        self.remove_where(RemovalReason::Disconnected, |b| {
            b.source.conn() == Some(conn)
        })
    }

    fn remove_where(
        &mut self,
        reason: RemovalReason,
        gone: impl Fn(&Binding) -> bool,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        self.bindings.retain(|aor, list| {
            list.retain(|b| {
                if gone(b) {
                    changes.push(Change::Removed(aor.clone(), b.clone(), reason));
                }
                !gone(b)
            });
            !list.is_empty()
        });
        changes
    }

    /// Removes one binding (an unreachable device).
    pub fn remove(&mut self, aor: &Aor, contact: &str, reason: RemovalReason) -> Option<Change> {
        let list = self.bindings.get_mut(aor)?;
        let at = list.iter().position(|b| b.contact == contact)?;
        let gone = list.remove(at);
        if list.is_empty() {
            self.bindings.remove(aor);
        }
        Some(Change::Removed(aor.clone(), gone, reason))
    }
}

/// Whether an existing binding belongs to the device that sent `spec`: the
/// same RFC 5626 instance and reg-id, or (for devices without an instance
/// id) the same Call-ID, which RFC 3261 §10.2.4 asks a UA to keep.
fn same_device(binding: &Binding, spec: &ContactSpec, reg: &Registration) -> bool {
    match (&binding.instance, &spec.instance) {
        (Some(a), Some(b)) => a == b && binding.reg_id == spec.reg_id,
        (None, None) => binding.call_id == reg.call_id,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        Peer::Udp(([192, 0, 2, 10], 5060).into())
    }

    fn reg(call_id: &str, cseq: u32, contacts: Contacts) -> Registration {
        Registration {
            aor: Aor {
                tenant: "ACME".into(),
                extension: "100".into(),
            },
            call_id: call_id.into(),
            cseq,
            expires: None,
            contacts,
            source: peer(),
            user_agent: None,
            max_bindings: None,
        }
    }

    fn contact(uri: &str) -> ContactSpec {
        ContactSpec {
            uri: uri.into(),
            expires: None,
            q: None,
            instance: None,
            reg_id: None,
        }
    }

    fn location() -> Location {
        Location::new(RegistrarConfig {
            max_bindings_per_extension: 2,
            ..RegistrarConfig::default()
        })
    }

    fn refresh_written(changes: &[Change]) -> Option<bool> {
        match changes {
            [Change::Refreshed { write, .. }] => Some(*write),
            _ => None,
        }
    }

    #[test]
    fn refreshes_that_barely_move_the_expiry_are_not_written() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let uri = "sip:100@192.0.2.10";
        let first = reg("a", 1, Contacts::List(vec![contact(uri)]));
        assert!(loc.register(now, wall, &first).is_ok());
        // Seconds later: nothing the store needs.
        let soon = wall + Duration::from_secs(5);
        let again = reg("a", 2, Contacts::List(vec![contact(uri)]));
        let changes = loc.register(now, soon, &again).unwrap_or_default();
        assert_eq!(refresh_written(&changes), Some(false));
        // From another address: written.
        let mut moved = reg("a", 3, Contacts::List(vec![contact(uri)]));
        moved.source = Peer::Udp(([192, 0, 2, 99], 5060).into());
        let changes = loc.register(now, soon, &moved).unwrap_or_default();
        assert_eq!(refresh_written(&changes), Some(true));
        // Half an interval later (default 3600 s): written.
        let later = soon + Duration::from_secs(1800);
        let mut refresh = reg("a", 4, Contacts::List(vec![contact(uri)]));
        refresh.source = moved.source.clone();
        let changes = loc.register(now, later, &refresh).unwrap_or_default();
        assert_eq!(refresh_written(&changes), Some(true));
        let stored = loc.bindings(&first.aor)[0].stored_expires_at;
        assert_eq!(stored, later + Duration::from_secs(3600));
    }

    #[test]
    fn two_devices_bind_side_by_side() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let a = reg("a", 1, Contacts::List(vec![contact("sip:100@192.0.2.10")]));
        let b = reg("b", 1, Contacts::List(vec![contact("sip:100@192.0.2.11")]));
        assert!(loc.register(now, wall, &a).is_ok());
        assert!(loc.register(now, wall, &b).is_ok());
        assert_eq!(loc.bindings(&a.aor).len(), 2);
    }

    #[test]
    fn new_contact_with_same_call_id_replaces_the_old_one() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let first = reg(
            "a",
            1,
            Contacts::List(vec![contact("sip:100@192.0.2.10:5060")]),
        );
        let moved = reg(
            "a",
            2,
            Contacts::List(vec![contact("sip:100@192.0.2.10:6000")]),
        );
        assert!(loc.register(now, wall, &first).is_ok());
        let changes = loc.register(now, wall, &moved).unwrap_or_default();
        assert!(matches!(
            changes[0],
            Change::Removed(_, _, RemovalReason::Replaced)
        ));
        assert_eq!(loc.bindings(&first.aor).len(), 1);
        assert_eq!(
            loc.bindings(&first.aor)[0].contact,
            "sip:100@192.0.2.10:6000"
        );
    }

    #[test]
    fn instance_id_replaces_across_call_ids() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut c1 = contact("sip:100@192.0.2.10:5060");
        c1.instance = Some("<urn:uuid:1>".into());
        c1.reg_id = Some(1);
        let mut c2 = contact("sip:100@192.0.2.99:5060");
        c2.instance = Some("<urn:uuid:1>".into());
        c2.reg_id = Some(1);
        assert!(
            loc.register(now, wall, &reg("a", 1, Contacts::List(vec![c1])))
                .is_ok()
        );
        assert!(
            loc.register(now, wall, &reg("b", 1, Contacts::List(vec![c2])))
                .is_ok()
        );
        let aor = reg("x", 1, Contacts::Query).aor;
        assert_eq!(loc.bindings(&aor).len(), 1);
    }

    #[test]
    fn too_brief_is_refused_without_change() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut r = reg("a", 1, Contacts::List(vec![contact("sip:100@192.0.2.10")]));
        r.expires = Some(5);
        assert_eq!(
            loc.register(now, wall, &r),
            Err(RegisterError::IntervalTooBrief { min: 60 })
        );
        assert!(loc.bindings(&r.aor).is_empty());
    }

    #[test]
    fn out_of_order_is_refused() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let c = || Contacts::List(vec![contact("sip:100@192.0.2.10")]);
        assert!(loc.register(now, wall, &reg("a", 5, c())).is_ok());
        assert!(matches!(
            loc.register(now, wall, &reg("a", 5, c())),
            Err(RegisterError::OutOfOrder { .. })
        ));
    }

    #[test]
    fn limit_and_star() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        for (i, id) in ["a", "b"].iter().enumerate() {
            let uri = format!("sip:100@192.0.2.{}", 10 + i);
            assert!(
                loc.register(now, wall, &reg(id, 1, Contacts::List(vec![contact(&uri)])))
                    .is_ok()
            );
        }
        let third = reg("c", 1, Contacts::List(vec![contact("sip:100@192.0.2.30")]));
        assert_eq!(
            loc.register(now, wall, &third),
            Err(RegisterError::TooManyBindings { limit: 2 })
        );
        // A tenant's own limit applies below the server's, not above it.
        for (tenant, limit) in [(1, 1), (5, 2)] {
            let more = Registration {
                max_bindings: Some(tenant),
                ..third.clone()
            };
            assert_eq!(
                loc.register(now, wall, &more),
                Err(RegisterError::TooManyBindings { limit })
            );
        }
        let mut star = reg("c", 2, Contacts::Star);
        assert_eq!(
            loc.register(now, wall, &star),
            Err(RegisterError::InvalidStar)
        );
        star.expires = Some(0);
        assert_eq!(loc.register(now, wall, &star).map(|c| c.len()), Ok(2));
        assert_eq!(loc.len(), 0);
    }

    #[test]
    fn expiry_removes_and_reports() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut c = contact("sip:100@192.0.2.10");
        c.expires = Some(60);
        assert!(
            loc.register(now, wall, &reg("a", 1, Contacts::List(vec![c])))
                .is_ok()
        );
        assert!(loc.expire(now + Duration::from_secs(59)).is_empty());
        let gone = loc.expire(now + Duration::from_secs(60));
        assert!(matches!(
            gone[0],
            Change::Removed(_, _, RemovalReason::Expired)
        ));
    }

    #[test]
    fn unregister_one_contact() {
        let mut loc = location();
        let (now, wall) = (Instant::now(), SystemTime::now());
        assert!(
            loc.register(
                now,
                wall,
                &reg("a", 1, Contacts::List(vec![contact("sip:x@h")]))
            )
            .is_ok()
        );
        let mut c = contact("sip:x@h");
        c.expires = Some(0);
        let changes = loc.register(now, wall, &reg("a", 2, Contacts::List(vec![c])));
        assert!(matches!(
            changes.as_deref(),
            Ok([Change::Removed(_, _, RemovalReason::Unregistered)])
        ));
    }
}
