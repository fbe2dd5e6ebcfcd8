//! The data directory's free space. The embedded database, voice messages
//! and the policy cache live there; a disk that fills up would fail writes
//! half-way. Writes that can wait (the API's) are refused with a clear 503
//! while less than a reserve is free, so the space left goes to what cannot
//! wait (the write-behind of registrations and call records), and they are
//! taken again as soon as space is freed.

use std::path::PathBuf;

/// Checks the free space of one directory's file system.
#[derive(Debug, Clone)]
pub struct DiskGuard {
    dir: PathBuf,
    reserve: u64,
}

impl DiskGuard {
    /// Guards `dir`, keeping `reserve` bytes free.
    pub fn new(dir: PathBuf, reserve: u64) -> DiskGuard {
        DiskGuard { dir, reserve }
    }

    /// Whether less than the reserve is free (a file system that cannot be
    /// asked counts as not low: the write then fails or succeeds on its
    /// own).
    pub fn is_low(&self) -> bool {
        self.free_bytes().is_some_and(|free| free < self.reserve)
    }

    /// The bytes an unprivileged writer may still use.
    #[cfg(unix)]
    fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stats.f_bavail.saturating_mul(stats.f_frsize))
    }

    /// Not asked elsewhere than on Unix.
    #[cfg(not(unix))]
    fn free_bytes(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_the_disk_is_low_and_none_is_not() {
        let dir = std::env::temp_dir();
        assert!(DiskGuard::new(dir.clone(), u64::MAX).is_low());
        assert!(!DiskGuard::new(dir.clone(), 0).is_low());
        assert!(!DiskGuard::new(dir.join("no such directory"), u64::MAX).is_low());
    }
}
