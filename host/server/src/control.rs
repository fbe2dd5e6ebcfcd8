//! The control socket: how administration commands reach a running server.
//!
//! `edgepbx serve` listens on a Unix socket in its data directory (only its
//! user may connect). An administration command (`edgepbx ext set ...`)
//! first tries that socket: when a server answers, the server runs the
//! command on its own store and applies the change at once (new
//! configuration for the SIP plane, policy activations); otherwise the
//! command opens the store itself. The embedded database admits one process
//! at a time, so this is also the only way to administer a running server.
//!
//! Protocol: the client sends one JSON line `{"args": [...]}` (the command
//! line without the program name); the server answers JSON lines: one
//! `{"ok": bool, "output": "..."}` for a command, or a stream of events for
//! `edgepbx events` until the client hangs up.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info, warn};

use crate::admin::Admin;
use crate::cli::{CallsArgs, Cli, Command, DeviceCommand, EventsArgs, ExtCommand};
use crate::commands;

use crate::events::EventBus;
use crate::sip::Control;

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "edgepbx.ctl";

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    args: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    /// What the command printed.
    output: String,
    /// Why it failed, if it did.
    error: Option<String>,
}

/// The bound control socket at `<data>/edgepbx.ctl`, ready to accept before
/// the server announces itself, so that administration commands run right
/// after the ready line reach the running server.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds the socket, replacing one left by a server that died (the data
    /// directory lock already proved that no other server runs here).
    ///
    /// It is bound under a temporary name, restricted to the server's
    /// user, and only then renamed into place: the socket at its known
    /// path never has looser permissions, not even for a moment.
    pub fn bind(data: &Path) -> anyhow::Result<Self> {
        let path = data.join(SOCKET_NAME);
        let staging = data.join(format!("{SOCKET_NAME}.{}", std::process::id()));
        let _ = std::fs::remove_file(&staging);
        let listener = UnixListener::bind(&staging)
            .with_context(|| format!("binding the control socket {}", staging.display()))?;
        restrict(&staging)?;
        std::fs::rename(&staging, &path)
            .with_context(|| format!("placing the control socket at {}", path.display()))?;
        info!(path = %path.display(), "control socket listening");
        Ok(Self { listener, path })
    }
}

/// Serves administration sessions on `socket` until `shutdown`.
pub async fn serve(socket: ControlSocket, context: Admin, mut shutdown: watch::Receiver<bool>) {
    let ControlSocket { listener, path } = socket;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let context = context.clone();
                    tokio::spawn(async move {
                        if let Err(error) = session(stream, context).await {
                            debug!(%error, "control session ended");
                        }
                    });
                }
                Err(error) => warn!(%error, "control socket accept failed"),
            },
            _ = shutdown.changed() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Only the server's user may connect.
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))
}

async fn session(stream: UnixStream, context: Admin) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let request: Request = serde_json::from_str(&line).context("malformed control request")?;
    let argv = std::iter::once("edgepbx".to_owned()).chain(request.args);
    let command = match Cli::try_parse_from(argv) {
        Ok(cli) => cli.command,
        Err(error) => return reply(&mut write, String::new(), Some(error.to_string())).await,
    };
    match command {
        Command::Events(args) => stream_events(&mut write, &context.events, args).await,
        command => match run(command, &context).await {
            Ok(output) => reply(&mut write, output, None).await,
            Err((output, error)) => reply(&mut write, output, Some(format!("{error:#}"))).await,
        },
    }
}

async fn reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    output: String,
    error: Option<String>,
) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(&Reply { output, error })?;
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    Ok(())
}

/// Runs one command in the server; the output so far comes with an error.
async fn run(command: Command, context: &Admin) -> Result<String, (String, anyhow::Error)> {
    let mut out = String::new();
    let result = match command {
        Command::Serve(_) => Err(anyhow::anyhow!("edgepbx is already running here")),
        Command::Calls(CallsArgs {
            tenant,
            recent: None,
            json,
        }) => active_calls(context, &tenant, json, &mut out).await,
        Command::Device(DeviceCommand::Resync { tenant, mac, all }) => {
            resync(context, &tenant, mac.as_deref(), all, &mut out).await
        }
        Command::Device(DeviceCommand::Add(args)) => {
            let (tenant, mac) = (args.tenant.clone(), args.mac.clone());
            let added = commands::execute_on(
                &context.store,
                Command::Device(DeviceCommand::Add(args)),
                &mut out,
            )
            .await;
            match added {
                // A registered phone fetches the change at once.
                Ok(()) => resync(context, &tenant, Some(&mac), false, &mut out).await,
                Err(error) => Err(error),
            }
        }
        Command::Ext(ExtCommand::Passwd {
            tenant,
            number,
            password,
        }) => {
            let (code, ext) = (tenant.clone(), number.clone());
            let command = Command::Ext(ExtCommand::Passwd {
                tenant,
                number,
                password,
            });
            let result = commands::execute_on(&context.store, command, &mut out).await;
            match result {
                Ok(()) => {
                    let reloaded = context.reload_tenant(&code).await;
                    // Its phones fetch the new password.
                    context
                        .resync_extension(&code.to_ascii_uppercase(), &ext)
                        .await;
                    reloaded
                }
                Err(error) => Err(error),
            }
        }
        command => {
            let changes = commands::configured_tenant(&command).map(str::to_owned);
            let result = commands::execute_on(&context.store, command, &mut out).await;
            match (result, changes) {
                (Ok(()), Some(tenant)) => context.reload_tenant(&tenant).await,
                (result, _) => result,
            }
        }
    };
    match result {
        Ok(()) => Ok(out),
        Err(error) => Err((out, error)),
    }
}

/// Tells phone `mac` of `tenant` (or all its phones) to fetch its
/// configuration again.
async fn resync(
    context: &Admin,
    tenant: &str,
    mac: Option<&str>,
    all: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    let tenant = crate::admin::tenants::find_tenant(&context.store, tenant).await?;
    let devices = match mac {
        Some(mac) if !all => {
            let mac: edgepbx_store::Mac = mac.parse()?;
            let device = context
                .store
                .devices()
                .get(&tenant.code, &mac)
                .await?
                .with_context(|| format!("no device {mac} in tenant {}", tenant.code))?;
            vec![device]
        }
        _ => context.store.devices().list(&tenant.code, None).await?,
    };
    for device in &devices {
        let sent = context.resync(&tenant.code, device).await?;
        writeln!(
            out,
            "device {}: {}",
            device.mac,
            if sent == 0 {
                "not registered; it fetches its files when it next starts".to_owned()
            } else {
                format!("told to fetch its files ({sent} registration(s))")
            }
        )?;
    }
    Ok(())
}

async fn active_calls(
    context: &Admin,
    tenant: &str,
    json: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    let tenant = crate::admin::tenants::find_tenant(&context.store, tenant).await?;
    let (reply, answer) = oneshot::channel();
    context
        .core
        .send(Control::Calls {
            tenant: tenant.code.clone(),
            reply,
        })
        .await
        .context("the SIP plane has stopped")?;
    let calls = answer.await.context("the SIP plane has stopped")?;
    commands::print_active_calls(&calls, json, out)
}

async fn stream_events(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    bus: &EventBus,
    args: EventsArgs,
) -> anyhow::Result<()> {
    let tenant = args.tenant.map(|t| t.to_ascii_uppercase());
    let mut events = bus.subscribe(tenant.as_deref());
    reply(write, String::new(), None).await?;
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(lost)) => {
                warn!(lost, "an events subscriber fell behind");
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if tenant.as_deref().is_some_and(|t| t != event.event.tenant()) {
            continue;
        }
        let mut line = serde_json::to_string(&*event)?;
        line.push('\n');
        // The client hung up: the subscription ends.
        write.write_all(line.as_bytes()).await?;
    }
}

/// Sends the command to a server running on `data`, if one answers.
/// Returns `None` when none does (no socket, or nobody listening).
pub async fn forward(data: &Path, args: Vec<String>) -> anyhow::Result<Option<()>> {
    let path: PathBuf = data.join(SOCKET_NAME);
    let Ok(stream) = UnixStream::connect(&path).await else {
        return Ok(None);
    };
    let (read, mut write) = stream.into_split();
    let mut request = serde_json::to_string(&Request {
        args: absolute_paths(args),
    })?;
    request.push('\n');
    write.write_all(request.as_bytes()).await?;
    let mut lines = BufReader::new(read).lines();
    let first = lines
        .next_line()
        .await?
        .context("the server closed the control connection")?;
    let reply: Reply = serde_json::from_str(&first).context("malformed control reply")?;
    print!("{}", reply.output);
    if let Some(error) = reply.error {
        bail!("{error}");
    }
    // `edgepbx events`: the rest is the stream.
    while let Some(line) = lines.next_line().await? {
        println!("{line}");
    }
    Ok(Some(()))
}

/// The server has another working directory: relative paths of files the
/// command names (a policy module) become absolute.
fn absolute_paths(args: Vec<String>) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            let path = Path::new(&arg);
            if path.is_relative() && path.is_file() {
                std::path::absolute(path)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or(arg)
            } else {
                arg
            }
        })
        .collect()
}
