//! `edgepbx policy ...`: validate a policy, try it on a call described in
//! JSON, and manage tenants' versions in the store.
//!
//! A module is validated by the same engine the server runs (size cap, a
//! component, only the contract's imports, the world's export) before it is
//! stored or activated, so a stored version always loads.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use edgepbx_policy::{Limits, module_hash, playground};
use edgepbx_store::{PolicyModuleInfo, Store};

use edgepbx_engine::time::humantime;

use crate::admin::policies::{check_module, compile_module, engine};
use crate::admin::tenants::find_tenant;
use crate::cli::PolicyCommand;

/// `policy check` and `policy try`, which need no store; `None` for the
/// other policy commands.
pub fn local(cmd: &PolicyCommand) -> Option<anyhow::Result<()>> {
    match cmd {
        PolicyCommand::Check { file } => Some(check(file)),
        PolicyCommand::Try { file, context } => Some(try_policy(file, context)),
        _ => None,
    }
}

fn check(file: &Path) -> anyhow::Result<()> {
    let (_, policy) = compile_module(read_module(file)?)?;
    println!(
        "{}: a valid edgepbx:policy@0.1.0 component, {} bytes, sha256 {}",
        file.display(),
        policy.size(),
        policy.hash()
    );
    Ok(())
}

fn try_policy(file: &Path, context: &Path) -> anyhow::Result<()> {
    let engine = engine()?;
    let policy = if file.as_os_str() == "builtin" {
        engine.builtin().clone()
    } else {
        compile_module(read_module(file)?)?.1
    };
    let json = std::fs::read_to_string(context)
        .with_context(|| format!("reading {}", context.display()))?;
    let context = playground::parse_context(&json)?;
    let outcome = playground::run(engine, &policy, context)?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(())
}

/// The policy commands that work on the store (upload, list, activate,
/// deactivate).
pub async fn store_command(
    store: &Store,
    cmd: PolicyCommand,
    out: &mut String,
) -> anyhow::Result<()> {
    match cmd {
        PolicyCommand::Check { .. } | PolicyCommand::Try { .. } => {
            bail!("policy check and try need no store")
        }
        PolicyCommand::Upload {
            tenant,
            file,
            uploader,
            activate,
        } => {
            let (wasm, hash) = check_module(None, read_module(&file)?).await??;
            let t = find_tenant(store, &tenant).await?;
            let info = store
                .policies()
                .upload(&t.code, wasm, &hash, &uploader)
                .await?;
            writeln!(
                out,
                "policy version {} stored for {} (sha256 {})",
                info.version, t.code, info.hash
            )?;
            if activate {
                store.policies().activate(&t.code, info.version).await?;
                writeln!(out, "version {} is now active", info.version)?;
            }
        }
        PolicyCommand::List { tenant, json } => {
            let t = find_tenant(store, &tenant).await?;
            let versions = store.policies().list(&t.code).await?;
            print_versions(&versions, json, out)?;
        }
        PolicyCommand::Activate { tenant, version } => {
            let t = find_tenant(store, &tenant).await?;
            let Some(module) = store.policies().get(&t.code, version).await? else {
                bail!("tenant {} has no policy version {version}", t.code);
            };
            // Stored versions were validated on upload; a newer edgepbx
            // may be stricter, so check again before activating.
            check_module(None, module.wasm)
                .await?
                .with_context(|| format!("version {version} no longer validates"))?;
            store.policies().activate(&t.code, version).await?;
            writeln!(out, "policy version {version} is now active for {}", t.code)?;
        }
        PolicyCommand::Deactivate { tenant } => {
            let t = find_tenant(store, &tenant).await?;
            match active_version(store, &t.code).await? {
                Some(version) => {
                    store.policies().deactivate(&t.code, version, None).await?;
                    writeln!(out, "{} uses the built-in policy again", t.code)?;
                }
                None => writeln!(out, "{} already uses the built-in policy", t.code)?,
            }
        }
    }
    Ok(())
}

async fn active_version(store: &Store, tenant: &str) -> anyhow::Result<Option<u32>> {
    let versions = store.policies().list(tenant).await?;
    Ok(versions.iter().find(|v| v.active).map(|v| v.version))
}

/// Reads a policy file, refusing files above the size cap before reading
/// them whole.
fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let max = Limits::default().max_module_bytes;
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > u64::try_from(max).unwrap_or(u64::MAX) {
        bail!(
            "{} has {len} bytes; a policy may have at most {max}",
            path.display()
        );
    }
    let wasm = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    tracing::debug!(hash = %module_hash(&wasm), "read policy module");
    Ok(wasm)
}

fn print_versions(
    versions: &[PolicyModuleInfo],
    json: bool,
    out: &mut String,
) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version,
                    "hash": v.hash,
                    "size": v.size,
                    "uploader": v.uploader,
                    "uploaded_at": humantime(v.uploaded_at),
                    "active": v.active,
                    "deactivated_reason": v.deactivated_reason,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if versions.is_empty() {
        writeln!(out, "no policy versions: the built-in policy decides")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:>7}  {:<6}  {:<12}  {:>8}  {:<16}  {:<20}  NOTE",
        "VERSION", "ACTIVE", "SHA256", "BYTES", "UPLOADER", "UPLOADED (UTC)"
    )?;
    for v in versions {
        writeln!(
            out,
            "{:>7}  {:<6}  {:<12}  {:>8}  {:<16}  {:<20}  {}",
            v.version,
            if v.active { "yes" } else { "" },
            v.hash.get(..12).unwrap_or(&v.hash),
            v.size,
            v.uploader,
            humantime(v.uploaded_at),
            v.deactivated_reason
                .as_deref()
                .map(|r| format!("deactivated: {r}"))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}
