//! The `edgepbx` binary: see the library's documentation.

/// The SIP plane allocates and frees small buffers for every message. With
/// glibc's allocator its thread's arena kept growing and shrinking (mprotect
/// and fresh page faults on every cycle); mimalloc keeps per-thread pages.
/// See also [`without_huge_pages`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for
/// them, and gives idle memory back to the kernel: the next allocation
/// there then faults in a whole 2 MiB page, which the kernel zeroes while
/// the SIP thread waits (a tenth of a millisecond or more). Under load
/// that was the registrar's p99.
fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no
        // memory of ours.
        #[allow(unsafe_code)]
        let status = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if status != 0 {
            eprintln!(
                "edgepbx: cannot turn transparent huge pages off: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

use clap::Parser;

fn main() -> std::process::ExitCode {
    without_huge_pages();
    edgepbx::run(edgepbx::cli::Cli::parse())
}
