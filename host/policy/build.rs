//! Builds the built-in policy (`guest-policies/default`) for
//! `wasm32-unknown-unknown` and wraps the core module into a component
//! against `guest-policies/wit`, so that the host embeds exactly what the
//! guest sources say. The sandbox tests' misbehaving policy
//! (`guest-policies/hostile`) is built beside it, into `OUT_DIR`, and never
//! embedded, and so is a policy built against an earlier revision of the
//! contract (`guest-policies/earlier`). The guest workspace has its own
//! target directory, `guest-policies/target`, or `EDGEPBX_GUEST_TARGET_DIR`
//! when set (CI keeps it outside the clone).

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let guests = manifest.join("../../guest-policies");
    for watched in [
        ".cargo",
        "wit",
        "sdk",
        "default",
        "hostile",
        "earlier",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=EDGEPBX_GUEST_TARGET_DIR");
    ensure_wasm_target();
    let target_dir = std::env::var_os("EDGEPBX_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| guests.join("target"));

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&guests)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            WASM_TARGET,
            "-p",
            "edgepbx-policy-default",
            "-p",
            "edgepbx-policy-hostile",
            "-p",
            "edgepbx-policy-earlier",
            "--features",
            "edgepbx-policy-default/component",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's settings are not the guest's: its own target
        // directory (sharing the outer one would deadlock on its lock), no
        // host rustflags, no clippy.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        // `cargo clippy` on the host must not lint (and fail) the guests.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_PROFILE_RELEASE_LTO")
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo for the guest policies: {e}"));
    assert!(
        status.success(),
        "building guest-policies (default, hostile, earlier) failed"
    );

    let modules = target_dir.join(WASM_TARGET).join("release");
    let out = PathBuf::from(env("OUT_DIR"));
    for (crate_name, component) in [
        ("edgepbx_policy_default", "builtin-policy.wasm"),
        ("edgepbx_policy_hostile", "hostile-policy.wasm"),
        ("edgepbx_policy_earlier", "earlier-policy.wasm"),
    ] {
        componentize(
            &modules.join(format!("{crate_name}.wasm")),
            &out.join(component),
        );
    }
}

/// Wraps a core module built with wit-bindgen into a component.
fn componentize(module_path: &Path, out: &Path) {
    let module = std::fs::read(module_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", module_path.display()));
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| {
            panic!(
                "cannot make a component of {}: {e:#}",
                module_path.display()
            )
        });
    std::fs::write(out, component)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

/// Adds the wasm target with rustup when its standard library is missing,
/// so that a fresh checkout builds with one command.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let installed = sysroot.is_some_and(|root| has_target(&root));
    if installed {
        return;
    }
    println!(
        "cargo:warning=adding the {WASM_TARGET} target with rustup (the built-in policy needs it)"
    );
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        added,
        "the {WASM_TARGET} target is missing; run `rustup target add {WASM_TARGET}`"
    );
}

fn has_target(sysroot: &Path) -> bool {
    sysroot
        .join("lib/rustlib")
        .join(WASM_TARGET)
        .join("lib")
        .is_dir()
}
