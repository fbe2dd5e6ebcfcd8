//! Native tests of policies: an in-memory [`TestHost`] and builders for
//! calls and directory entries.
//!
//! ```
//! use edgepbx_policy_sdk::testing::{extension, CallBuilder, TestHost};
//! use edgepbx_policy_sdk::{Call, Decision, Host, Policy, Ring};
//!
//! struct RingTheDesk;
//!
//! impl Policy for RingTheDesk {
//!     fn decide(call: &Call, _host: &impl Host) -> Decision {
//!         Decision::ring(Ring::simultaneous().extension(call.dialled.number.clone(), 20))
//!     }
//! }
//!
//! let alice = extension("100");
//! let host = TestHost::default().with_extension(alice.clone());
//! let call = CallBuilder::to_extension(alice).build();
//! let decision = RingTheDesk::decide(&call, &host);
//! assert_eq!(decision, Decision::ring(Ring::simultaneous().extension("100", 20)));
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::{
    Action, Attempt, Call, Caller, CallerKind, Destination, Device, Dialled, Extension, Forwarding,
    Group, GroupStrategy, Host, KvError, Level, LocalTime, Outcome, Presence, VirtualExtension,
    Weekday,
};

/// Longest key the real host accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// Longest value the real host accepts, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;

/// An in-memory [`Host`]: a directory you fill, a key-value store with the
/// real host's limits, and the log lines written.
#[derive(Debug, Default)]
pub struct TestHost {
    extensions: BTreeMap<String, Extension>,
    groups: BTreeMap<String, Group>,
    kv: RefCell<BTreeMap<String, String>>,
    logs: RefCell<Vec<(Level, String)>>,
}

impl TestHost {
    /// Adds an extension to the directory.
    pub fn with_extension(mut self, extension: Extension) -> TestHost {
        self.extensions.insert(extension.number.clone(), extension);
        self
    }

    /// Adds a ring group to the directory.
    pub fn with_group(mut self, group: Group) -> TestHost {
        self.groups.insert(group.number.clone(), group);
        self
    }

    /// Sets a key-value entry.
    pub fn with_kv(self, key: &str, value: &str) -> TestHost {
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// The key-value store's content.
    pub fn kv(&self) -> BTreeMap<String, String> {
        self.kv.borrow().clone()
    }

    /// The log lines written so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.borrow().clone()
    }
}

impl Host for TestHost {
    fn extension(&self, number: &str) -> Option<Extension> {
        self.extensions.get(number).cloned()
    }

    fn group(&self, number: &str) -> Option<Group> {
        self.groups.get(number).cloned()
    }

    fn groups_of(&self, extension: &str) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| g.members.iter().any(|m| m == extension))
            .map(|g| g.number.clone())
            .collect()
    }

    fn kv_get(&self, key: &str) -> Option<String> {
        self.kv.borrow().get(key).cloned()
    }

    fn kv_set(&self, key: &str, value: &str) -> Result<(), KvError> {
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(KvError::TooLarge);
        }
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn kv_delete(&self, key: &str) {
        self.kv.borrow_mut().remove(key);
    }

    fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(KvError::TooLarge);
        }
        let mut kv = self.kv.borrow_mut();
        let current = match kv.get(key) {
            None => 0,
            Some(value) => value.parse::<i64>().map_err(|_| KvError::NotACounter)?,
        };
        let next = current.wrapping_add(delta);
        kv.insert(key.to_owned(), next.to_string());
        Ok(next)
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }
}

/// An available extension with one device, a 20-second ring timeout,
/// voicemail on and no forwarding.
pub fn extension(number: &str) -> Extension {
    Extension {
        number: number.to_owned(),
        name: format!("Extension {number}"),
        ring_timeout_secs: 20,
        dnd: false,
        forwarding: Forwarding {
            unconditional: None,
            busy: None,
            no_answer: None,
            offline: None,
        },
        follow_me: None,
        voicemail: true,
        presence: Presence::Available,
        devices: vec![Device {
            id: "desk".to_owned(),
            user_agent: None,
        }],
    }
}

/// A ring group with the given strategy and members, 15 seconds per member,
/// no destination for unanswered calls.
pub fn group(number: &str, strategy: GroupStrategy, members: &[&str]) -> Group {
    Group {
        number: number.to_owned(),
        name: format!("Group {number}"),
        strategy,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        ring_timeout_secs: 15,
        no_answer: None,
    }
}

/// A virtual extension ringing `members` for 20 seconds.
pub fn virtual_extension(number: &str, members: &[&str]) -> VirtualExtension {
    VirtualExtension {
        number: number.to_owned(),
        name: format!("Virtual {number}"),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        ring_timeout_secs: 20,
        no_answer: None,
    }
}

/// Builds a [`Call`]: by default from internal extension 200 to the given
/// destination, on Wednesday 2026-01-07 at 10:00 in Europe/Berlin, with
/// entropy 0 and no history.
#[derive(Debug, Clone)]
pub struct CallBuilder {
    call: Call,
}

impl CallBuilder {
    fn to(number: &str, destination: Destination) -> CallBuilder {
        CallBuilder {
            call: Call {
                id: "test-call".to_owned(),
                tenant: "TEST".to_owned(),
                caller: Caller {
                    number: "200".to_owned(),
                    name: Some("Caller 200".to_owned()),
                    kind: CallerKind::Internal,
                    source: "200".to_owned(),
                },
                dialled: Dialled {
                    number: number.to_owned(),
                    alias_of: None,
                    destination,
                },
                now: LocalTime {
                    year: 2026,
                    month: 1,
                    day: 7,
                    weekday: Weekday::Wednesday,
                    hour: 10,
                    minute: 0,
                    time_zone: "Europe/Berlin".to_owned(),
                },
                entropy: 0,
                history: Vec::new(),
            },
        }
    }

    /// A call to an extension, dialled by its number.
    pub fn to_extension(extension: Extension) -> CallBuilder {
        let number = extension.number.clone();
        CallBuilder::to(&number, Destination::Extension(extension))
    }

    /// A call to a ring group.
    pub fn to_group(group: Group) -> CallBuilder {
        let number = group.number.clone();
        CallBuilder::to(&number, Destination::Group(group))
    }

    /// A call to a virtual extension.
    pub fn to_virtual(virtual_extension: VirtualExtension) -> CallBuilder {
        let number = virtual_extension.number.clone();
        CallBuilder::to(&number, Destination::VirtualExtension(virtual_extension))
    }

    /// A call to a number outside the tenant.
    pub fn to_external(number: &str) -> CallBuilder {
        CallBuilder::to(number, Destination::External(number.to_owned()))
    }

    /// A call to a number the tenant does not know.
    pub fn to_unknown(number: &str) -> CallBuilder {
        CallBuilder::to(number, Destination::Unknown)
    }

    /// Dialled through an alias: the number dialled was `alias`.
    pub fn via_alias(mut self, alias: &str) -> CallBuilder {
        let target = std::mem::replace(&mut self.call.dialled.number, alias.to_owned());
        self.call.dialled.alias_of = Some(target);
        self
    }

    /// From an external caller.
    pub fn from_external(mut self, number: &str, name: Option<&str>) -> CallBuilder {
        self.call.caller = Caller {
            number: number.to_owned(),
            name: name.map(str::to_owned),
            kind: CallerKind::External,
            source: "trunk".to_owned(),
        };
        self
    }

    /// From another internal extension.
    pub fn from_internal(mut self, number: &str) -> CallBuilder {
        self.call.caller = Caller {
            number: number.to_owned(),
            name: Some(format!("Caller {number}")),
            kind: CallerKind::Internal,
            source: number.to_owned(),
        };
        self
    }

    /// At a local date and time.
    pub fn at(mut self, date: (u16, u8, u8), weekday: Weekday, time: (u8, u8)) -> CallBuilder {
        self.call.now.year = date.0;
        self.call.now.month = date.1;
        self.call.now.day = date.2;
        self.call.now.weekday = weekday;
        self.call.now.hour = time.0;
        self.call.now.minute = time.1;
        self
    }

    /// With these random bits.
    pub fn entropy(mut self, entropy: u64) -> CallBuilder {
        self.call.entropy = entropy;
        self
    }

    /// After a step that ended with `outcome`.
    pub fn after(mut self, action: Action, outcome: Outcome) -> CallBuilder {
        self.call.history.push(Attempt { action, outcome });
        self
    }

    /// The call.
    pub fn build(self) -> Call {
        self.call
    }
}
