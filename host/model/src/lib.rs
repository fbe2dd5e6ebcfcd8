//! The PBX's data as plain values: the configuration an administrator
//! gives a tenant (an extension's call settings in [`settings`], ring
//! groups and virtual extensions in [`groups`], trunks to carriers in
//! [`trunks`], the tenant's feature codes and BLF privacy in
//! [`features`], desk phones and their BLF keys in [`devices`]), the
//! records calls leave ([`calls`]), the bounds of what a registration
//! keeps ([`registrations`]) and the CSV sheets in which administrators
//! export and import extensions and phones ([`sheet`]).
//!
//! The store persists these values, the call engine acts on them and
//! writes the records, the API and the CLI edit them, the policy boundary
//! shows them to routing policies: each reads the same types from here,
//! none of them from another. Nothing here does I/O; the checks say which
//! field is wrong.

pub mod calls;
pub mod devices;
pub mod features;
pub mod groups;
pub mod registrations;
pub mod settings;
pub mod sheet;
pub mod trunks;

pub use calls::CallRecord;
pub use devices::{BlfKey, InvalidMac, MAX_BLF_LABEL_CHARS, Mac, PhoneIdentity, Vendor};
pub use features::{DEFAULT_PICKUP_CODE, TenantFeatures};
pub use groups::{Group, GroupKind, GroupStrategy, MAX_MEMBERS};
pub use settings::{
    AllowedDestinations, CallSettings, FeatureKey, FollowMe, FollowMeDestination, ForwardTarget,
    ForwardWhen, MAX_FOLLOW_ME, MAX_NUMBER_LEN, MAX_RING_SECS, RingMode, dialable, is_dialable,
};
pub use trunks::{Did, MAX_DIDS, MAX_TRUNKS, Trunk};

/// A value that does not have the shape its field needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidField {
    /// The field, as the API names it (`forward_busy`, `follow_me.mode`...).
    pub field: &'static str,
    /// What is wrong with it, for a person.
    pub reason: String,
}

impl InvalidField {
    /// The field `field` is wrong for `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> InvalidField {
        InvalidField {
            field,
            reason: reason.into(),
        }
    }
}
