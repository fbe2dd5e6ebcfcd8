//! The `edgepbx` server: a thin driver around the sans-IO crates (the
//! engine, SIP, media, policies, the store). It owns every socket, task and
//! clock read; [`run`] carries out one command line. The binary only turns
//! off huge pages, picks the allocator and parses the flags.
//!
//! Module map:
//! - [`cli`]: flags and subcommands.
//! - [`config`]: the TOML configuration with its defaults and checks.
//! - [`serve`]: starts the store, the SIP plane and the transports.
//! - [`sip`]: the SIP plane's driver around the sans-IO engine
//!   (`edgepbx-engine`): it feeds the engine and carries out its outputs.
//! - [`transport`]: UDP and TCP drivers.
//! - [`routing`]: the policy boundary: the engine's decision requests in,
//!   the tenants' policies' decisions out.
//! - [`media`]: the media relay's socket driver.
//! - [`persist`]: write-behind of bindings, events and call records.
//! - [`retention`]: deleting history past its retention.
//! - [`admin`]: the administration service the CLI, the control socket
//!   and the API share (tenants, credentials, policies, accounts, reloads).
//! - [`commands`]: the administration commands of the command line.
//! - [`control`]: the control socket through which they reach a running
//!   server.
//! - [`carriers`]: following trunks' carriers' addresses.
//! - [`events`]: the event bus.
//! - [`disk`]: the data directory's free space.
//! - [`kv`]: the policies' key-value store, written behind.
//! - [`secrets`]: sealed SIP passwords, tokens.
//! - [`passwords`]: console passwords and voicemail PINs (argon2id).
//! - [`work`]: admission of expensive work tenants can start.
//! - [`api`]: the REST API, the event stream and the console.

mod admin;
mod api;
mod carriers;
pub mod cli;
mod commands;
pub mod config;
mod control;
mod disk;
mod events;
mod kv;
mod media;
mod passwords;
mod persist;
mod retention;
mod routing;
mod secrets;
mod serve;
mod sip;
mod transport;
mod voicemail;
mod work;

use tracing_subscriber::EnvFilter;

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

/// Runs one command line: `serve`, or an administration command (through a
/// running server's control socket when one answers).
pub fn run(cli: cli::Cli) -> std::process::ExitCode {
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
            Work::Admin(command) => commands::execute(&cli.storage, command).await,
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
