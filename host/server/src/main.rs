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

/// Lowers the calling thread's priority to `nice`. The main runtime's
/// threads call it as they start, so that under load the kernel prefers
/// the SIP and media threads, which `serve` starts from the main thread and
/// which keep the process's own priority (a thread inherits its creator's
/// nice value). On Linux the nice value belongs to each thread; elsewhere
/// `setpriority` would lower the whole process, so there this does nothing.
fn lower_thread_priority(nice: u8) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of
        // ours; PRIO_PROCESS with id 0 is the calling thread on Linux.
        #[allow(unsafe_code)]
        let status = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, i32::from(nice)) };
        if status != 0 {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    error = %std::io::Error::last_os_error(),
                    "cannot lower the priority of the background threads"
                );
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

mod accounts;
mod admin;
mod api;
mod carriers;
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
    let (command, background_nice) = match cli.command {
        cli::Command::Serve(args) => match serve::configure(&cli.storage, &args) {
            Ok(config) => {
                let nice = config.sip.background_nice;
                (Work::Serve(args, Box::new(config)), nice)
            }
            Err(e) => {
                eprintln!("edgepbx: {e:#}");
                return std::process::ExitCode::FAILURE;
            }
        },
        command => (Work::Admin(command), 0),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if background_nice > 0 {
        builder.on_thread_start(move || lower_thread_priority(background_nice));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgepbx: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match command {
            Work::Serve(args, config) => serve::run(&cli.storage, args, *config).await,
            Work::Admin(command) => admin::execute(&cli.storage, command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgepbx: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What the binary was asked to do, ready to run.
enum Work {
    /// `serve`, with its configuration read and checked.
    Serve(cli::ServeArgs, Box<config::Config>),
    /// Any administration command.
    Admin(cli::Command),
}
