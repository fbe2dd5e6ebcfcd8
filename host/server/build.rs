//! Builds the console (`console/build.sh`: the Leptos app for
//! `wasm32-unknown-unknown`, then wasm-bindgen; no wasm-opt, see
//! console/README.md) and embeds its files, each with a gzip copy and an
//! entity tag, so that the binary serves the console with no files beside
//! it. The console has its own target directory, `console/target`, or
//! `EDGEPBX_CONSOLE_TARGET_DIR` when set (CI keeps it outside the clone).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let console = manifest.join("../../console");
    for watched in [
        "src",
        "static",
        "Cargo.toml",
        "Cargo.lock",
        "build.sh",
        "rust-toolchain.toml",
    ] {
        println!("cargo:rerun-if-changed={}", console.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=EDGEPBX_CONSOLE_TARGET_DIR");
    let out = PathBuf::from(env("OUT_DIR"));
    let dist = out.join("console");
    let status = Command::new("bash")
        .arg(console.join("build.sh"))
        .arg(&dist)
        // The outer build's settings are not the console's: its own target
        // directory and toolchain file, no host rustflags, no clippy.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO_PROFILE_RELEASE_LTO")
        .env("CARGO_BUILD_JOBS", "2")
        .status()
        .unwrap_or_else(|e| panic!("cannot run console/build.sh: {e}"));
    assert!(status.success(), "building the console failed");
    embed(&dist, &out.join("console_assets.rs"));
}

/// Writes the table of embedded files: URL path, content type, entity tag,
/// bytes and gzip bytes.
fn embed(dist: &Path, table: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dist)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dist.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "gz"))
        .collect();
    files.sort();
    let mut code = String::from("&[\n");
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| panic!("{} has no UTF-8 name", file.display()));
        let bytes =
            std::fs::read(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let gz = file.with_file_name(format!("{name}.gz"));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder
            .write_all(&bytes)
            .and_then(|()| encoder.finish())
            .and_then(|compressed| std::fs::write(&gz, compressed))
            .unwrap_or_else(|e| panic!("cannot compress {}: {e}", file.display()));
        let kind = match file.extension().and_then(|x| x.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("wasm") => "application/wasm",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            _ => "application/octet-stream",
        };
        let _ = writeln!(
            code,
            "    (\"/{name}\", \"{kind}\", \"\\\"{:016x}\\\"\", include_bytes!({:?}), include_bytes!({:?})),",
            fnv1a(&bytes),
            file.display().to_string(),
            gz.display().to_string()
        );
    }
    code.push(']');
    assert!(
        files.iter().any(|f| f.ends_with("index.html")),
        "the console build produced no index.html"
    );
    std::fs::write(table, code).unwrap_or_else(|e| panic!("cannot write {}: {e}", table.display()));
}

/// 64-bit FNV-1a: the entity tag of a file.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}
