//! The command line's administration commands (`tenant`, `ext`, `group`,
//! `trunk`, `user`, `apikey`, `calls`, and `policy` in [`policy`]). A
//! command goes to the running server through its control socket when one
//! answers (the server applies the change at once); otherwise it opens the
//! store itself (the embedded database admits one process at a time).
//! Commands write their output into a string, so that the same code serves
//! both paths. What they share with the API is in [`crate::admin`].

mod device;
mod policy;

use std::fmt::Write as _;

use anyhow::{Context, bail};
use edgepbx_store::{
    AllowedDestinations, CallSettings, Did, FollowMe, ForwardTarget, Group, GroupKind,
    GroupStrategy, NewExtension, Role, Store, StoreConfig, Trunk,
};

use crate::admin::accounts;
use crate::admin::credentials::{credentials_from, generate_password};
use crate::admin::tenants::find_tenant;
use crate::cli::{
    ApikeyCommand, CallsArgs, Command, ExtCommand, ExtSettingsArgs, GroupCommand, PolicyCommand,
    StorageArgs, TenantCommand, TrunkCommand, UserCommand,
};
use crate::config::Config;

/// Opens the store named by the flags and config.
pub async fn open_store(storage: &StorageArgs, config: &Config) -> anyhow::Result<Store> {
    let data = storage.data.clone().unwrap_or_else(|| config.data.clone());
    let db = storage.db.clone().or_else(|| config.db.clone());
    let key_file = config
        .sealing_key
        .clone()
        .unwrap_or_else(|| data.join(edgepbx_store::KEY_FILE));
    let spec = match db {
        Some(url) => remote_spec(url, &config.remote_store)?,
        None => edgepbx_store::DbSpec::Embedded { path: data },
    };
    Store::open(StoreConfig::new(spec).with_key_file(key_file))
        .await
        .context("opening the store")
}

/// The SurrealDB server at `url`, as `[remote_store]` says to use it.
fn remote_spec(
    url: String,
    remote: &crate::config::RemoteStoreConfig,
) -> anyhow::Result<edgepbx_store::DbSpec> {
    let password = match &remote.password_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading remote_store.password_file {}", path.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        None => None,
    };
    Ok(edgepbx_store::DbSpec::Remote {
        url,
        namespace: remote.namespace.clone(),
        database: remote.database.clone(),
        username: remote.user.clone(),
        password,
        database_user: remote.database_user,
        ca_file: remote.ca_file.clone(),
    })
}

/// Runs an administration command: in the running server when one
/// answers on the data directory's control socket, else on the store.
pub async fn execute(storage: &StorageArgs, command: Command) -> anyhow::Result<()> {
    if let Command::Policy(cmd) = &command
        && let Some(result) = policy::local(cmd)
    {
        return result;
    }
    let config = match &storage.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    let data = storage.data.clone().unwrap_or_else(|| config.data.clone());
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if crate::control::forward(&data, args).await?.is_some() {
        return Ok(());
    }
    if let Command::Events(_) = command {
        bail!("no edgepbx is running on {}", data.display());
    }
    let store = open_store(storage, &config).await?;
    let mut out = String::new();
    let result = execute_on(&store, command, &mut out).await;
    print!("{out}");
    store.close().await?;
    result
}

/// Runs an administration command on `store`, writing what it prints to
/// `out`.
pub async fn execute_on(store: &Store, command: Command, out: &mut String) -> anyhow::Result<()> {
    match command {
        Command::Tenant(cmd) => tenant_command(store, cmd, out).await,
        Command::Ext(cmd) => ext_command(store, cmd, out).await,
        Command::Device(cmd) => device::device_command(store, cmd, out).await,
        Command::Group(cmd) => group_command(store, cmd, out).await,
        Command::Trunk(cmd) => trunk_command(store, cmd, out).await,
        Command::Policy(cmd) => policy::store_command(store, cmd, out).await,
        Command::Calls(args) => calls_command(store, args, out).await,
        Command::User(cmd) => user_command(store, cmd, out).await,
        Command::Apikey(cmd) => apikey_command(store, cmd, out).await,
        Command::Serve(_) | Command::Events(_) => bail!("not an administration command"),
    }
}

/// The tenant whose configuration in the running server a command
/// changes, if any: the one to reload after it.
pub fn configured_tenant(command: &Command) -> Option<&str> {
    match command {
        Command::Tenant(
            TenantCommand::Add { code, .. }
            | TenantCommand::Limits { code, .. }
            | TenantCommand::Features { code, .. },
        ) => Some(code),
        Command::Ext(
            ExtCommand::Add { tenant, .. }
            | ExtCommand::Passwd { tenant, .. }
            | ExtCommand::Rm { tenant, .. },
        )
        | Command::Group(GroupCommand::Add { tenant, .. } | GroupCommand::Rm { tenant, .. })
        | Command::Trunk(TrunkCommand::Add { tenant, .. } | TrunkCommand::Rm { tenant, .. })
        | Command::Policy(
            PolicyCommand::Upload { tenant, .. }
            | PolicyCommand::Activate { tenant, .. }
            | PolicyCommand::Deactivate { tenant, .. },
        ) => Some(tenant),
        Command::Ext(ExtCommand::Set(args)) => Some(&args.tenant),
        Command::Tenant(TenantCommand::List { .. })
        | Command::Ext(ExtCommand::List { .. })
        | Command::Group(GroupCommand::List { .. })
        | Command::Trunk(TrunkCommand::List { .. })
        | Command::Policy(
            PolicyCommand::List { .. } | PolicyCommand::Check { .. } | PolicyCommand::Try { .. },
        )
        | Command::Serve(_)
        | Command::Calls(_)
        | Command::Events(_)
        | Command::User(_)
        | Command::Apikey(_)
        | Command::Device(_)
        | Command::Tenant(TenantCommand::Provisioning { .. }) => None,
    }
}

/// `edgepbx user ...`
async fn user_command(store: &Store, cmd: UserCommand, out: &mut String) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            email,
            role,
            tenant,
            extension,
            password,
        } => {
            let role = Role::parse(&role)?;
            let generated = password.is_none();
            let password = password.unwrap_or_else(generate_password);
            let user = accounts::create_user(
                store,
                &email,
                role,
                tenant.as_deref(),
                extension.as_deref(),
                &password,
            )
            .await?;
            writeln!(
                out,
                "console user {} added ({}{}{})",
                user.email,
                user.role.as_str(),
                user.tenant
                    .as_deref()
                    .map(|t| format!(", tenant {t}"))
                    .unwrap_or_default(),
                user.extension
                    .as_deref()
                    .map(|n| format!(", extension {n}"))
                    .unwrap_or_default()
            )?;
            if generated {
                writeln!(out, "  password: {password}")?;
            }
        }
        UserCommand::List { tenant } => {
            let users = store.access().users(tenant.as_deref()).await?;
            writeln!(
                out,
                "{:<40}  {:<14}  {:<16}  EXTENSION",
                "EMAIL", "ROLE", "TENANT"
            )?;
            for u in users {
                writeln!(
                    out,
                    "{:<40}  {:<14}  {:<16}  {}",
                    u.email,
                    u.role.as_str(),
                    u.tenant.as_deref().unwrap_or("-"),
                    u.extension.as_deref().unwrap_or("-")
                )?;
            }
        }
        UserCommand::Passwd { email, password } => {
            let generated = password.is_none();
            let password = password.unwrap_or_else(generate_password);
            accounts::set_user_password(store, &email, &password).await?;
            writeln!(out, "password of {email} changed; their sessions ended")?;
            if generated {
                writeln!(out, "  password: {password}")?;
            }
        }
        UserCommand::Rm { email } => {
            store.access().remove_user(&email).await?;
            writeln!(out, "console user {email} removed")?;
        }
    }
    Ok(())
}

/// `edgepbx apikey ...`
async fn apikey_command(store: &Store, cmd: ApikeyCommand, out: &mut String) -> anyhow::Result<()> {
    match cmd {
        ApikeyCommand::Add {
            tenant,
            name,
            read_only,
        } => {
            let t = find_tenant(store, &tenant).await?;
            let (stored, key) = accounts::create_api_key(store, &t.code, &name, read_only).await?;
            writeln!(
                out,
                "API key {} for {} ({}); it is shown only now:",
                stored.id,
                t.code,
                if read_only { "read-only" } else { "read-write" }
            )?;
            writeln!(out, "{key}")?;
        }
        ApikeyCommand::List { tenant } => {
            let t = find_tenant(store, &tenant).await?;
            writeln!(
                out,
                "{:<12}  {:<10}  {:<20}  {:<20}  NAME",
                "ID", "ACCESS", "CREATED (UTC)", "LAST USED (UTC)"
            )?;
            for k in store.access().keys(&t.code).await? {
                writeln!(
                    out,
                    "{:<12}  {:<10}  {:<20}  {:<20}  {}",
                    k.id,
                    if k.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    edgepbx_engine::time::humantime(k.created_at),
                    k.last_used_at
                        .map(edgepbx_engine::time::humantime)
                        .unwrap_or_else(|| "never".into()),
                    k.name
                )?;
            }
        }
        ApikeyCommand::Rm { tenant, id } => {
            let t = find_tenant(store, &tenant).await?;
            store.access().revoke_key(&t.code, &id).await?;
            writeln!(out, "API key {id} revoked")?;
        }
    }
    Ok(())
}

/// `edgepbx calls` on the store: the latest records; calls in progress
/// only exist in a running server.
async fn calls_command(store: &Store, args: CallsArgs, out: &mut String) -> anyhow::Result<()> {
    let t = find_tenant(store, &args.tenant).await?;
    let Some(limit) = args.recent else {
        writeln!(out, "edgepbx is not running here: no calls in progress")?;
        return Ok(());
    };
    let records = store.calls().recent(&t.code, limit).await?;
    if args.json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "caller": r.caller,
                    "dialled": r.dialled,
                    "answered_by": r.answered_by,
                    "started_at": edgepbx_engine::time::humantime(r.started_at),
                    "duration_secs": r.duration_secs,
                    "outcome": r.outcome,
                    "cause": r.cause,
                    "policy": r.policy,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<8} {:<8} {:<8} {:>6}  {:<10} CAUSE",
        "STARTED (UTC)", "CALLER", "DIALLED", "ANSWER", "SECS", "OUTCOME"
    )?;
    for r in &records {
        writeln!(
            out,
            "{:<20} {:<8} {:<8} {:<8} {:>6}  {:<10} {}",
            edgepbx_engine::time::humantime(r.started_at),
            r.caller,
            r.dialled,
            r.answered_by.as_deref().unwrap_or("-"),
            r.duration_secs,
            r.outcome,
            r.cause
        )?;
    }
    Ok(())
}

/// Prints the calls in progress.
pub fn print_active_calls(
    calls: &[edgepbx_engine::ActiveCall],
    json: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(calls)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<8} {:<8} {:<9} {:<8} {:>6}  POLICY",
        "CALL", "CALLER", "DIALLED", "STATE", "ANSWER", "SECS"
    )?;
    for c in calls {
        writeln!(
            out,
            "{:<16} {:<8} {:<8} {:<9} {:<8} {:>6}  {}",
            c.id,
            c.caller,
            c.dialled,
            c.state,
            c.answered_by.as_deref().unwrap_or("-"),
            c.secs,
            c.policy
        )?;
    }
    Ok(())
}

async fn tenant_command(store: &Store, cmd: TenantCommand, out: &mut String) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Add { code, domain } => {
            let tenant = store.tenants().add(&code, &domain).await?;
            writeln!(
                out,
                "tenant {} added (SIP domain {})",
                tenant.code, tenant.sip_domain
            )?;
        }
        TenantCommand::Limits {
            code,
            max_extensions,
            max_calls,
            max_bindings,
        } => {
            let t = find_tenant(store, &code).await?;
            let mut limits = t.limits;
            let value = |name: &str, v: &str| -> anyhow::Result<Option<u32>> {
                if v == "off" {
                    return Ok(None);
                }
                Ok(Some(v.parse().with_context(|| {
                    format!("--{name} takes a number or off")
                })?))
            };
            if let Some(v) = &max_extensions {
                limits.max_extensions = value("max-extensions", v)?;
            }
            if let Some(v) = &max_calls {
                limits.max_calls = value("max-calls", v)?;
            }
            if let Some(v) = &max_bindings {
                limits.max_bindings_per_extension = value("max-bindings", v)?;
            }
            store.tenants().set_limits(&t.code, limits).await?;
            writeln!(out, "limits of {} changed", t.code)?;
        }
        TenantCommand::Features {
            code,
            pickup_code,
            blf_shows_caller,
            operator,
        } => {
            let t = find_tenant(store, &code).await?;
            let mut features = t.features;
            if let Some(code) = pickup_code {
                features.pickup_code = code;
            }
            match blf_shows_caller.as_deref() {
                None => {}
                Some("on") => features.blf_shows_caller = true,
                Some("off") => features.blf_shows_caller = false,
                Some(_) => bail!("--blf-shows-caller takes on or off"),
            }
            match operator {
                None => {}
                Some(off) if off == "off" => features.operator = None,
                Some(number) => features.operator = Some(number),
            }
            store.tenants().set_features(&t.code, &features).await?;
            writeln!(out, "features of {} changed", t.code)?;
        }
        TenantCommand::Provisioning { code, off } => {
            let t = find_tenant(store, &code).await?;
            if off {
                store
                    .tenants()
                    .set_provisioning_secret(&t.code, None)
                    .await?;
                writeln!(out, "provisioning of {} turned off", t.code)?;
            } else {
                let password =
                    crate::admin::tenants::new_provisioning_password(store, &t.code).await?;
                writeln!(
                    out,
                    "provisioning of {code}: phones fetch https://<server>/prov/{code}/ \
                     as user {code} with password\n{password}",
                    code = t.code
                )?;
            }
        }
        TenantCommand::List { json } => {
            let tenants = store.tenants().list().await?;
            if json {
                let rows: Vec<_> = tenants
                    .iter()
                    .map(|t| serde_json::json!({"code": t.code, "domain": t.sip_domain}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                writeln!(out, "{:<16} DOMAIN", "CODE")?;
                for t in tenants {
                    writeln!(out, "{:<16} {}", t.code, t.sip_domain)?;
                }
            }
        }
    }
    Ok(())
}

async fn ext_command(store: &Store, cmd: ExtCommand, out: &mut String) -> anyhow::Result<()> {
    match cmd {
        ExtCommand::Add {
            tenant,
            number,
            name,
            password,
            aliases,
        } => {
            let t = find_tenant(store, &tenant).await?;
            let (credentials, password, generated) =
                credentials_from(store, &t, &number, password)?;
            store
                .extensions()
                .add(
                    &t.code,
                    NewExtension {
                        number: number.clone(),
                        name,
                        aliases,
                        credentials,
                    },
                )
                .await?;
            writeln!(out, "extension {number} added to {}", t.code)?;
            print_registration_hint(
                &t.code,
                &t.sip_domain,
                &number,
                generated.then_some(&password),
                out,
            )?;
        }
        ExtCommand::List { tenant, json } => {
            let t = find_tenant(store, &tenant).await?;
            let extensions = store.extensions().list(&t.code).await?;
            let bindings = store.bindings().load_all().await?;
            let count = |n: &str| {
                bindings
                    .iter()
                    .filter(|b| b.tenant == t.code && b.extension == n)
                    .count()
            };
            if json {
                let rows: Vec<_> = extensions
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "number": e.number,
                            "name": e.name,
                            "aliases": e.aliases,
                            "username": format!("{}-{}", e.number, t.code),
                            "settings": settings_json(&e.settings),
                            "bindings": bindings
                                .iter()
                                .filter(|b| b.tenant == t.code && b.extension == e.number)
                                .map(|b| serde_json::json!({
                                    "contact": b.contact,
                                    "source": b.source.to_string(),
                                    "transport": b.transport.as_str(),
                                    "user_agent": b.user_agent,
                                }))
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                writeln!(
                    out,
                    "{:<8} {:<24} {:<16} {:>8}  ALIASES",
                    "NUMBER", "NAME", "USERNAME", "DEVICES"
                )?;
                for e in &extensions {
                    writeln!(
                        out,
                        "{:<8} {:<24} {:<16} {:>8}  {}",
                        e.number,
                        e.name,
                        format!("{}-{}", e.number, t.code),
                        count(&e.number),
                        e.aliases.join(",")
                    )?;
                }
            }
        }
        ExtCommand::Passwd {
            tenant,
            number,
            password,
        } => {
            let t = find_tenant(store, &tenant).await?;
            let (credentials, password, generated) =
                credentials_from(store, &t, &number, password)?;
            store
                .extensions()
                .set_credentials(&t.code, &number, credentials)
                .await?;
            writeln!(out, "password of {number} in {} changed", t.code)?;
            if generated {
                writeln!(out, "new password: {password}")?;
            }
        }
        ExtCommand::Set(args) => {
            let t = find_tenant(store, &args.tenant).await?;
            let current = store
                .extensions()
                .get(&t.code, &args.number)
                .await?
                .with_context(|| format!("no extension {} in {}", args.number, t.code))?;
            let settings = apply_settings(current.settings, &args)?;
            store
                .extensions()
                .set_settings(&t.code, &args.number, &settings)
                .await?;
            writeln!(out, "settings of {} in {} changed", args.number, t.code)?;
        }
        ExtCommand::Rm { tenant, number } => {
            let t = find_tenant(store, &tenant).await?;
            store.extensions().remove(&t.code, &number, None).await?;
            writeln!(out, "extension {number} removed from {}", t.code)?;
        }
    }
    Ok(())
}

async fn group_command(store: &Store, cmd: GroupCommand, out: &mut String) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Add {
            tenant,
            number,
            name,
            members,
            strategy,
            ring_timeout,
            no_answer,
            is_virtual,
        } => {
            let t = find_tenant(store, &tenant).await?;
            let group = Group {
                tenant: t.code.clone(),
                number: number.clone(),
                name,
                kind: if is_virtual {
                    GroupKind::Virtual
                } else {
                    GroupKind::Ring
                },
                strategy: if is_virtual {
                    GroupStrategy::RingAll
                } else {
                    GroupStrategy::parse(&strategy)?
                },
                members,
                ring_timeout_secs: ring_timeout,
                no_answer: no_answer
                    .map(|n| ForwardTarget::parse("no_answer", &n))
                    .transpose()?,
                updated_at: std::time::SystemTime::UNIX_EPOCH,
            };
            store.groups().add(&t.code, group).await?;
            let what = if is_virtual {
                "virtual extension"
            } else {
                "group"
            };
            writeln!(out, "{what} {number} added to {}", t.code)?;
        }
        GroupCommand::List { tenant, json } => {
            let t = find_tenant(store, &tenant).await?;
            let groups = store.groups().list(&t.code).await?;
            let kind = |g: &Group| match g.kind {
                GroupKind::Ring => "group",
                GroupKind::Virtual => "virtual",
            };
            if json {
                let rows: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        serde_json::json!({
                            "number": g.number,
                            "name": g.name,
                            "kind": kind(g),
                            "strategy": g.strategy.as_str(),
                            "members": g.members,
                            "ring_timeout_secs": g.ring_timeout_secs,
                            "no_answer": g.no_answer.as_ref().map(ToString::to_string),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                writeln!(
                    out,
                    "{:<8} {:<24} {:<8} {:<13} {:>5}  MEMBERS",
                    "NUMBER", "NAME", "KIND", "STRATEGY", "RING"
                )?;
                for g in &groups {
                    writeln!(
                        out,
                        "{:<8} {:<24} {:<8} {:<13} {:>5}  {}",
                        g.number,
                        g.name,
                        kind(g),
                        g.strategy.as_str(),
                        g.ring_timeout_secs,
                        g.members.join(",")
                    )?;
                }
            }
        }
        GroupCommand::Rm { tenant, number } => {
            let t = find_tenant(store, &tenant).await?;
            store.groups().remove(&t.code, &number, None).await?;
            writeln!(out, "group {number} removed from {}", t.code)?;
        }
    }
    Ok(())
}

async fn trunk_command(store: &Store, cmd: TrunkCommand, out: &mut String) -> anyhow::Result<()> {
    match cmd {
        TrunkCommand::Add {
            tenant,
            name,
            host,
            username,
            password,
            register,
            caller_id,
            dids,
        } => {
            let t = find_tenant(store, &tenant).await?;
            let dids = dids
                .iter()
                .map(|d| {
                    let (number, destination) = d
                        .split_once('=')
                        .with_context(|| format!("--did {d:?}: expected DID=NUMBER"))?;
                    Ok(Did {
                        number: number.trim().to_owned(),
                        destination: destination.trim().to_owned(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let trunk = Trunk {
                tenant: t.code.clone(),
                name: name.clone(),
                host,
                username,
                password,
                register,
                caller_id,
                dids,
            };
            store.trunks().put(&t.code, trunk).await?;
            writeln!(out, "trunk {name} of {} saved", t.code)?;
        }
        TrunkCommand::List { tenant, json } => {
            let t = find_tenant(store, &tenant).await?;
            let trunks = store.trunks().list(&t.code).await?;
            if json {
                let rows: Vec<_> = trunks
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "name": k.name,
                            "host": k.host,
                            "username": k.username,
                            "register": k.register,
                            "caller_id": k.caller_id,
                            "dids": k.dids.iter().map(|d| serde_json::json!({
                                "number": d.number,
                                "destination": d.destination,
                            })).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                writeln!(
                    out,
                    "{:<16} {:<28} {:<9} {:<16} DIDS",
                    "NAME", "HOST", "REGISTER", "CALLER ID"
                )?;
                for k in &trunks {
                    writeln!(
                        out,
                        "{:<16} {:<28} {:<9} {:<16} {}",
                        k.name,
                        k.host,
                        if k.register { "yes" } else { "no" },
                        k.caller_id.as_deref().unwrap_or("-"),
                        k.dids
                            .iter()
                            .map(|d| format!("{}={}", d.number, d.destination))
                            .collect::<Vec<_>>()
                            .join(",")
                    )?;
                }
            }
        }
        TrunkCommand::Rm { tenant, name } => {
            let t = find_tenant(store, &tenant).await?;
            store.trunks().remove(&t.code, &name).await?;
            writeln!(out, "trunk {name} removed from {}", t.code)?;
        }
    }
    Ok(())
}

/// `settings` with the options of `ext set` applied.
fn apply_settings(mut s: CallSettings, a: &ExtSettingsArgs) -> anyhow::Result<CallSettings> {
    let off = |v: &str| v.eq_ignore_ascii_case("off");
    let switch = |name: &str, v: &str| match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => bail!("--{name} takes on or off"),
    };
    let rule = |field: &'static str, v: &str| -> anyhow::Result<Option<ForwardTarget>> {
        Ok((!off(v))
            .then(|| ForwardTarget::parse(field, v))
            .transpose()?)
    };
    if let Some(v) = &a.ring_timeout {
        s.ring_timeout_secs = if off(v) {
            None
        } else {
            Some(v.parse().context("--ring-timeout takes seconds or off")?)
        };
    }
    if let Some(v) = &a.dnd {
        s.dnd = switch("dnd", v)?;
    }
    if let Some(v) = &a.away {
        s.away = switch("away", v)?;
    }
    if let Some(v) = &a.forward_unconditional {
        s.forward_unconditional = rule("forward_unconditional", v)?;
    }
    if let Some(v) = &a.forward_busy {
        s.forward_busy = rule("forward_busy", v)?;
    }
    if let Some(v) = &a.forward_no_answer {
        s.forward_no_answer = rule("forward_no_answer", v)?;
    }
    if let Some(v) = &a.forward_offline {
        s.forward_offline = rule("forward_offline", v)?;
    }
    if let Some(v) = &a.follow_me {
        s.follow_me = if off(v) {
            None
        } else {
            Some(FollowMe::parse(v)?)
        };
    }
    if let Some(v) = &a.voicemail {
        s.voicemail = switch("voicemail", v)?;
    }
    if let Some(v) = &a.outbound_caller_id {
        s.outbound_caller_id = (!off(v)).then(|| v.clone());
    }
    if let Some(v) = &a.inbound_prefix {
        s.inbound_prefix = (!off(v)).then(|| v.clone());
    }
    if let Some(v) = &a.allowed_destinations {
        s.allowed_destinations = AllowedDestinations::parse(v)?;
    }
    s.validate()?;
    Ok(s)
}

/// An extension's settings as `ext list --json` shows them.
fn settings_json(s: &CallSettings) -> serde_json::Value {
    let text = |t: &Option<ForwardTarget>| t.as_ref().map(ToString::to_string);
    serde_json::json!({
        "ring_timeout_secs": s.ring_timeout_secs,
        "dnd": s.dnd,
        "away": s.away,
        "forward_unconditional": text(&s.forward_unconditional),
        "forward_busy": text(&s.forward_busy),
        "forward_no_answer": text(&s.forward_no_answer),
        "forward_offline": text(&s.forward_offline),
        "follow_me": s.follow_me.as_ref().map(|f| serde_json::json!({
            "mode": f.mode.as_str(),
            "destinations": f.destinations.iter().map(|d| serde_json::json!({
                "number": d.number,
                "timeout_secs": d.timeout_secs,
            })).collect::<Vec<_>>(),
        })),
        "voicemail": s.voicemail,
        "outbound_caller_id": s.outbound_caller_id,
        "inbound_prefix": s.inbound_prefix,
        "allowed_destinations": s.allowed_destinations.to_string(),
    })
}

/// Tells a person how to register a phone to an extension.
pub fn print_registration_hint(
    code: &str,
    domain: &str,
    number: &str,
    password: Option<&String>,
    out: &mut String,
) -> std::fmt::Result {
    writeln!(
        out,
        "  register as {number}@{domain} (or username {number}-{code} at the server's address)"
    )?;
    if let Some(password) = password {
        writeln!(out, "  password: {password}")?;
    }
    Ok(())
}
