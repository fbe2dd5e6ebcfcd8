//! The example policies of `guest-policies/examples` and the misbehaving
//! one of `guest-policies/hostile`, built for WebAssembly the way a policy
//! developer builds them.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The guest workspace.
pub fn guest_dir() -> PathBuf {
    crate::manifest_dir().join("../guest-policies")
}

/// A JSON call context of `guest-policies/examples/contexts`.
pub fn context(name: &str) -> PathBuf {
    guest_dir().join("examples/contexts").join(name)
}

/// The guest workspace's target directory (`EDGEPBX_GUEST_TARGET_DIR` when
/// set, as for the host's build script).
fn guest_target_dir() -> PathBuf {
    std::env::var_os("EDGEPBX_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| guest_dir().join("target"))
}

/// Builds the example policies and the hostile one once per test process
/// (`cargo build --release --target wasm32-unknown-unknown` in the guest
/// workspace) and returns the module of `crate_name` (e.g.
/// `edgepbx_policy_example_vip`).
pub fn policy_module(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(guest_dir())
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .args(["-p", "edgepbx-policy-example-business-hours"])
            .args(["-p", "edgepbx-policy-example-vip"])
            .args(["-p", "edgepbx-policy-example-sales-round-robin"])
            .args(["-p", "edgepbx-policy-hostile"])
            .arg("--target-dir")
            .arg(guest_target_dir())
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo for the policies: {e}"));
        assert!(status.success(), "building the policies failed");
    });
    guest_target_dir()
        .join("wasm32-unknown-unknown/release")
        .join(format!("{crate_name}.wasm"))
}
