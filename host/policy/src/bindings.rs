//! The one `bindgen!` over `guest-policies/wit`: the contract's types as
//! Rust values and the typed entry point of a policy component.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../../guest-policies/wit",
    world: "policy",
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
});

pub use edgepbx::policy::kv::KvError;
pub use edgepbx::policy::log::Level;
pub use edgepbx::policy::types::*;

impl Extension {
    /// Its live state, as `get-status` answers it.
    pub fn status(&self) -> ExtensionStatus {
        ExtensionStatus {
            presence: self.presence,
            dnd: self.dnd,
            devices: u32::try_from(self.devices.len()).unwrap_or(u32::MAX),
        }
    }
}
