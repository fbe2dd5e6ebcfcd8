//! Write edgepbx call-routing policies in Rust.
//!
//! edgepbx asks a tenant's policy what to do with each call: once when the
//! call starts and again after every step that did not connect it. A policy
//! is a type implementing [`Policy`], exported with [`export_policy!`] and
//! built for `wasm32-unknown-unknown`; edgepbx runs it as a WebAssembly
//! component against the contract in `guest-policies/wit/policy.wit`.
//!
//! ```
//! use edgepbx_policy_sdk::{Call, Decision, Host, Policy};
//!
//! struct AlwaysVoicemail;
//!
//! impl Policy for AlwaysVoicemail {
//!     fn decide(call: &Call, _host: &impl Host) -> Decision {
//!         Decision::voicemail(call.dialled.number.clone())
//!     }
//! }
//!
//! edgepbx_policy_sdk::export_policy!(AlwaysVoicemail);
//! ```
//!
//! Module map:
//! - the contract's types ([`Call`], [`Decision`], [`Action`], ...) are
//!   re-exported from the generated bindings, with builders and helpers
//!   added here ([`Ring`], [`Decision::voicemail`], [`Call::last_outcome`]);
//! - [`Host`] is what a policy may ask of edgepbx: the tenant's directory, a
//!   key-value store and logging. [`WasmHost`] is the real one inside
//!   edgepbx; [`testing::TestHost`] is an in-memory one for native tests;
//! - [`testing`] builds calls and directories for table-driven tests.

#[cfg(target_arch = "wasm32")]
mod arena;
pub mod testing;

#[cfg(target_arch = "wasm32")]
pub use arena::DecisionArena;

/// The code `wit-bindgen` generates from `guest-policies/wit`. Policies
/// rarely need it directly: everything useful is re-exported at the crate
/// root.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "edgepbx_policy_sdk::bindings",
        additional_derives: [PartialEq, Eq],
    });
}

pub use bindings::edgepbx::policy::kv::KvError;
pub use bindings::edgepbx::policy::log::Level;
pub use bindings::edgepbx::policy::types::{
    Action, Attempt, Call, Caller, CallerKind, Destination, Device, DeviceTarget, Dialled,
    Extension, ExtensionStatus, FollowMe, FollowMeDestination, ForwardTo, Forwarding, Group,
    GroupStrategy, LocalTime, Outcome, Presence, Presentation, Reject, Ring, RingMode, RingTarget,
    Target, VirtualExtension, Weekday,
};

/// A call-routing policy.
pub trait Policy {
    /// The next step of `call`. `host` answers questions about the tenant
    /// and keeps counters; a policy must not assume anything else about
    /// the world.
    fn decide(call: &Call, host: &impl Host) -> Decision;
}

/// The policy's answer: an action and optional caller-ID changes.
pub type Decision = bindings::edgepbx::policy::types::Decision;

/// What a policy may ask of edgepbx. Every question concerns the tenant the
/// call belongs to; there is no way to see another tenant.
pub trait Host {
    /// An extension with its settings and live state.
    fn extension(&self, number: &str) -> Option<Extension>;
    /// An extension's live state alone: enough to tell whether it can take
    /// a call, and several times cheaper than [`extension`](Host::extension)
    /// inside edgepbx. By default, what `extension` says of it.
    fn status(&self, number: &str) -> Option<ExtensionStatus> {
        self.extension(number).as_ref().map(Extension::status)
    }
    /// A ring group.
    fn group(&self, number: &str) -> Option<Group>;
    /// The numbers of the ring groups `extension` belongs to.
    fn groups_of(&self, extension: &str) -> Vec<String>;
    /// A value of the tenant's key-value store.
    fn kv_get(&self, key: &str) -> Option<String>;
    /// Sets a value of the tenant's key-value store.
    fn kv_set(&self, key: &str, value: &str) -> Result<(), KvError>;
    /// Removes a key of the tenant's key-value store.
    fn kv_delete(&self, key: &str);
    /// Adds `delta` to a counter (absent counts as 0) and returns the new
    /// value; atomic across concurrent calls.
    fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, KvError>;
    /// Writes a log line, attributed to the tenant and policy version.
    fn log(&self, level: Level, message: &str);
}

/// The host inside edgepbx: every method is a call into the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn extension(&self, number: &str) -> Option<Extension> {
        bindings::edgepbx::policy::directory::get_extension(number)
    }
    fn status(&self, number: &str) -> Option<ExtensionStatus> {
        bindings::edgepbx::policy::directory::get_status(number)
    }
    fn group(&self, number: &str) -> Option<Group> {
        bindings::edgepbx::policy::directory::get_group(number)
    }
    fn groups_of(&self, extension: &str) -> Vec<String> {
        bindings::edgepbx::policy::directory::groups_of(extension)
    }
    fn kv_get(&self, key: &str) -> Option<String> {
        bindings::edgepbx::policy::kv::get(key)
    }
    fn kv_set(&self, key: &str, value: &str) -> Result<(), KvError> {
        bindings::edgepbx::policy::kv::set(key, value)
    }
    fn kv_delete(&self, key: &str) {
        bindings::edgepbx::policy::kv::delete(key)
    }
    fn kv_increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        bindings::edgepbx::policy::kv::increment(key, delta)
    }
    fn log(&self, level: Level, message: &str) {
        bindings::edgepbx::policy::log::write(level, message)
    }
}

/// Exports a [`Policy`] as the component's `decide` function. Use it once,
/// at the root of the policy crate.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        struct EdgepbxPolicyExport;

        impl $crate::bindings::Guest for EdgepbxPolicyExport {
            fn decide(call: $crate::Call) -> $crate::Decision {
                <$policy as $crate::Policy>::decide(&call, &$crate::WasmHost)
            }
        }

        $crate::bindings::export!(EdgepbxPolicyExport with_types_in $crate::bindings);
    };
}

impl Decision {
    /// Ring some targets (see [`Ring`]).
    pub fn ring(ring: Ring) -> Decision {
        Decision::from(Action::Ring(ring))
    }

    /// Route the call on to another number; edgepbx asks the policy again
    /// for that number.
    pub fn forward(number: impl Into<String>) -> Decision {
        Decision::from(Action::Forward(number.into()))
    }

    /// Send the caller to the voicemail box of `extension`.
    pub fn voicemail(extension: impl Into<String>) -> Decision {
        Decision::from(Action::Voicemail(extension.into()))
    }

    /// Refuse the call with a SIP status (400–699) and its standard reason.
    pub fn reject(status: u16) -> Decision {
        Decision::from(Action::Reject(Reject {
            status,
            reason: None,
        }))
    }

    /// Refuse the call with a SIP status and a reason phrase of its own.
    pub fn reject_with(status: u16, reason: impl Into<String>) -> Decision {
        Decision::from(Action::Reject(Reject {
            status,
            reason: Some(reason.into()),
        }))
    }

    /// Where a forwarding rule of `extension` sends the call.
    pub fn forward_to(rule: &ForwardTo, extension: &str) -> Decision {
        match rule {
            ForwardTo::Number(number) => Decision::forward(number.clone()),
            ForwardTo::Voicemail => Decision::voicemail(extension),
        }
    }

    /// Puts `prefix` before the caller's number shown to the called party.
    pub fn with_number_prefix(mut self, prefix: impl Into<String>) -> Decision {
        self.presentation
            .get_or_insert_with(no_presentation_change)
            .number_prefix = Some(prefix.into());
        self
    }

    /// Puts `prefix` before the caller's name shown to the called party.
    pub fn with_name_prefix(mut self, prefix: impl Into<String>) -> Decision {
        self.presentation
            .get_or_insert_with(no_presentation_change)
            .name_prefix = Some(prefix.into());
        self
    }
}

fn no_presentation_change() -> Presentation {
    Presentation {
        number_prefix: None,
        name_prefix: None,
    }
}

impl From<Action> for Decision {
    fn from(action: Action) -> Decision {
        Decision {
            action,
            presentation: None,
        }
    }
}

impl From<Ring> for Decision {
    fn from(ring: Ring) -> Decision {
        Decision::ring(ring)
    }
}

impl Ring {
    /// An empty ring step whose targets ring together.
    pub fn simultaneous() -> Ring {
        Ring {
            mode: RingMode::Simultaneous,
            targets: Vec::new(),
        }
    }

    /// An empty ring step whose targets ring one after another.
    pub fn sequential() -> Ring {
        Ring {
            mode: RingMode::Sequential,
            targets: Vec::new(),
        }
    }

    /// Adds every registered device of an extension, ringing `timeout_secs`.
    pub fn extension(self, number: impl Into<String>, timeout_secs: u32) -> Ring {
        self.target(Target::Extension(number.into()), timeout_secs)
    }

    /// Adds one device of an extension.
    pub fn device(
        self,
        extension: impl Into<String>,
        device: impl Into<String>,
        timeout_secs: u32,
    ) -> Ring {
        self.target(
            Target::Device(DeviceTarget {
                extension: extension.into(),
                device: device.into(),
            }),
            timeout_secs,
        )
    }

    /// Adds a number outside the tenant.
    pub fn external(self, number: impl Into<String>, timeout_secs: u32) -> Ring {
        self.target(Target::External(number.into()), timeout_secs)
    }

    /// Adds a target.
    pub fn target(mut self, target: Target, timeout_secs: u32) -> Ring {
        self.targets.push(RingTarget {
            target,
            timeout_secs,
        });
        self
    }
}

impl Call {
    /// How the previous step ended; `None` at the start of the call.
    pub fn last_outcome(&self) -> Option<Outcome> {
        self.history.last().map(|attempt| attempt.outcome)
    }

    /// Whether the caller is an extension of this tenant.
    pub fn is_internal(&self) -> bool {
        self.caller.kind == CallerKind::Internal
    }
}

impl Extension {
    /// Its live state, as [`Host::status`] answers it.
    pub fn status(&self) -> ExtensionStatus {
        ExtensionStatus {
            presence: self.presence,
            dnd: self.dnd,
            devices: u32::try_from(self.devices.len()).unwrap_or(u32::MAX),
        }
    }

    /// Whether at least one device is registered.
    pub fn is_online(&self) -> bool {
        self.status().is_online()
    }

    /// Whether the extension takes calls right now: online and neither on
    /// do-not-disturb nor busy.
    pub fn is_available(&self) -> bool {
        self.status().is_available()
    }
}

impl ExtensionStatus {
    /// Whether at least one device is registered.
    pub fn is_online(&self) -> bool {
        self.devices > 0 && self.presence != Presence::Offline
    }

    /// Whether the extension takes calls right now: online and neither on
    /// do-not-disturb nor busy.
    pub fn is_available(&self) -> bool {
        self.is_online() && !self.dnd && !matches!(self.presence, Presence::Busy | Presence::Dnd)
    }
}

impl Weekday {
    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

impl LocalTime {
    /// Minutes since local midnight, 0–1439.
    pub fn minute_of_day(&self) -> u32 {
        u32::from(self.hour) * 60 + u32::from(self.minute)
    }
}
