//! The `edgepbx` binary: parses flags, sets up logging, and runs a command.
//!
//! Module map:
//! - [`cli`]: flags and subcommands.
//! - [`config`]: the TOML configuration with its defaults and checks.
//! - [`serve`]: starts the store, the SIP core and the transports.
//! - [`core`]: the SIP core task (transactions, registrar, keepalives).
//! - [`registrar`]: REGISTER handling and the location service.
//! - [`directory`]: tenants, extensions and credentials cached in memory.
//! - [`transport`]: UDP and TCP drivers.
//! - [`persist`]: write-behind of bindings and registration events.
//! - [`throttle`]: brute-force protection per source address.
//! - [`admin`]: the administration commands.
//! - [`control`]: the control socket through which they reach a running
//!   server.
//! - [`events`]: the event bus (devices, call legs).
//! - [`kv`]: the policies' key-value store, written behind.
//! - [`lines`]: live line state and the policies' view of the directory.
//! - [`media`]: the media relay's socket driver.
//! - [`policy`]: the policy commands (check, try, upload, list, activate).

/// The SIP core allocates and frees small buffers for every message. With
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

mod accounts;
mod admin;
mod api;
mod cli;
mod config;
mod control;
mod core;
mod directory;
mod events;
mod kv;
mod lines;
mod media;
mod persist;
mod policy;
mod registrar;
mod secrets;
mod serve;
mod throttle;
mod transport;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    without_huge_pages();
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("EDGEPBX_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,surrealdb=warn,surrealkv=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgepbx: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgepbx: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Serve(args) => serve::run(&cli.storage, args).await,
        command => admin::execute(&cli.storage, command).await,
    }
}
