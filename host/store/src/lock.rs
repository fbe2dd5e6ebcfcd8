//! Exclusive use of an embedded data directory by one process.
//!
//! SurrealKV takes an OS file lock (`flock`) on `<dir>/LOCK` itself, but a
//! clash only surfaces as an error string deep inside SurrealDB, and the lock
//! is released asynchronously after the last database handle is dropped. So
//! edgepbx takes its own lock on `<dir>/edgepbx.lock` first, with the PID of
//! the holder written into it: a second process gets a typed
//! [`StoreError::Locked`] naming the holder, before SurrealDB is touched. The
//! OS releases the lock when the process ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::StoreError;

/// The name of edgepbx's lock file inside the data directory.
const LOCK_FILE: &str = "edgepbx.lock";
/// The name of SurrealKV's own lock file inside the data directory.
const ENGINE_LOCK_FILE: &str = "LOCK";
/// How long to wait for a closing engine in this process to let go.
const ENGINE_RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to look while waiting.
const ENGINE_RELEASE_POLL: Duration = Duration::from_millis(10);

/// Holds the data directory for as long as it lives.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    /// The locked file; the OS lock goes with the handle.
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `dir` (which must exist) or reports who holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: dir.to_owned(),
                    pid: read_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // For the next process's error message; the lock itself is what counts.
        file.set_len(0).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The PID a holder wrote into its lock file, if readable.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Waits until SurrealKV's own lock on `dir` is free.
///
/// Called while holding [`DataDirLock`], so the only holders can be a store
/// of this process that is still closing (its engine shuts down on a
/// background task after the last handle is dropped) or a process that is not
/// edgepbx. The first goes away within moments; the second is reported as
/// [`StoreError::Locked`] after a timeout.
pub(crate) async fn wait_for_engine_release(dir: &Path) -> Result<(), StoreError> {
    let path = dir.join(ENGINE_LOCK_FILE);
    let deadline = tokio::time::Instant::now() + ENGINE_RELEASE_TIMEOUT;
    loop {
        if engine_lock_is_free(&path)? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Locked {
                path: dir.to_owned(),
                pid: None,
            });
        }
        tokio::time::sleep(ENGINE_RELEASE_POLL).await;
    }
}

/// Whether nobody holds SurrealKV's lock file at `path` (absent counts as free).
fn engine_lock_is_free(path: &Path) -> Result<bool, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    match file.try_lock() {
        // Dropping the handle right away releases the probe's lock.
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(source)) => Err(StoreError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}
