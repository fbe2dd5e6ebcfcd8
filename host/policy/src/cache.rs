//! Compiled policy artifacts on disk, keyed by the module's content hash
//! and the engine's compatibility hash, so that a restart does not compile
//! the same modules again.
//!
//! An artifact is native code: loading one is only sound if the bytes are
//! what this engine wrote. Each artifact therefore has a sidecar with its
//! own SHA-256, written after it; an artifact whose sidecar is missing or
//! does not match (a torn write, a truncated file) is compiled again and
//! rewritten. The directory is the server's own data directory: whoever
//! can write there can already change the server's database.

#![allow(unsafe_code)]

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The artifact cache directory.
#[derive(Debug)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// Opens (creating) `dir`.
    pub(crate) fn open(dir: PathBuf) -> std::io::Result<ArtifactCache> {
        std::fs::create_dir_all(&dir)?;
        Ok(ArtifactCache { dir })
    }

    /// The component for `wasm` (whose SHA-256 is `hash`): loaded from the
    /// cache when a sound artifact is there (then `true`), else compiled
    /// and stored.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        hash: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, bool)> {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let name = format!("{hash}-{:016x}", hasher.finish());
        let artifact_path = self.dir.join(format!("{name}.cwasm"));
        let sum_path = self.dir.join(format!("{name}.sha256"));

        if let (Ok(artifact), Ok(sum)) = (
            std::fs::read(&artifact_path),
            std::fs::read_to_string(&sum_path),
        ) && hex::encode(Sha256::digest(&artifact)) == sum.trim()
        {
            // SAFETY: the artifact is byte for byte what
            // `precompile_component` of an engine with this compatibility
            // hash produced (its checksum, written after it, matches), so
            // it is a valid serialized component for this engine.
            match unsafe { Component::deserialize(engine, &artifact) } {
                Ok(component) => return Ok((component, true)),
                Err(error) => tracing::warn!(%error, "policy artifact unusable; compiling again"),
            }
        }

        let artifact = engine.precompile_component(wasm)?;
        // SAFETY: these bytes were produced just now, in memory, by this
        // engine's `precompile_component`.
        let component = unsafe { Component::deserialize(engine, &artifact) }?;
        if let Err(error) = self.store(&artifact_path, &sum_path, &artifact) {
            tracing::warn!(%error, dir = %self.dir.display(), "cannot cache a compiled policy");
        }
        Ok((component, false))
    }

    fn store(
        &self,
        artifact_path: &std::path::Path,
        sum_path: &std::path::Path,
        artifact: &[u8],
    ) -> std::io::Result<()> {
        let tmp = artifact_path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(artifact)?;
        file.sync_all()?;
        std::fs::rename(&tmp, artifact_path)?;
        std::fs::write(sum_path, hex::encode(Sha256::digest(artifact)))
    }
}
