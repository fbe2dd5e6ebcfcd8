//! Administration commands on the data directory (`tenant`, `ext`). They
//! open the store themselves, so they run while the server is stopped (the
//! embedded database admits one process at a time) or against a remote
//! SurrealDB at any time.

use anyhow::{Context, bail};
use edgepbx_sip::auth::Credentials;
use edgepbx_store::{CredentialEntry, NewExtension, SipCredentials, Store, StoreConfig};
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::cli::{ExtCommand, StorageArgs, TenantCommand};
use crate::config::Config;

/// Length of generated SIP passwords: long enough that guessing is hopeless.
const GENERATED_PASSWORD_LEN: usize = 24;

/// Opens the store named by the flags and config.
pub async fn open_store(storage: &StorageArgs, config: &Config) -> anyhow::Result<Store> {
    let data = storage.data.clone().unwrap_or_else(|| config.data.clone());
    let db = storage.db.clone().or_else(|| config.db.clone());
    let spec = match db {
        Some(url) => edgepbx_store::DbSpec::remote(url),
        None => edgepbx_store::DbSpec::Embedded { path: data },
    };
    Store::open(StoreConfig::new(spec))
        .await
        .context("opening the store")
}

/// A random password of letters and digits.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(GENERATED_PASSWORD_LEN)
        .map(char::from)
        .collect()
}

/// HA1 values for both digest usernames of an extension: `<number>` (on the
/// tenant's domain) and `<number>-<CODE>` (on any address).
pub fn credentials_for(tenant: &str, domain: &str, number: &str, password: &str) -> SipCredentials {
    let entries = [number.to_owned(), format!("{number}-{tenant}")]
        .into_iter()
        .map(|username| {
            let c = Credentials::from_password(&username, domain, password);
            CredentialEntry {
                username,
                md5_ha1: c.md5,
                sha256_ha1: c.sha256,
            }
        })
        .collect();
    SipCredentials { entries }
}

/// Runs `command` on the store named by the flags, then closes the store
/// (waiting for the embedded engine to let go of the data directory).
pub async fn with_store<F, Fut>(storage: &StorageArgs, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let store = open_store(storage, &Config::default()).await?;
    let result = command(store.clone()).await;
    store.close().await?;
    result
}

/// `edgepbx tenant ...`
pub async fn tenant(storage: &StorageArgs, cmd: TenantCommand) -> anyhow::Result<()> {
    with_store(storage, |store| tenant_command(store, cmd)).await
}

async fn tenant_command(store: Store, cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::Add { code, domain } => {
            let tenant = store.tenants().add(&code, &domain).await?;
            println!(
                "tenant {} added (SIP domain {})",
                tenant.code, tenant.sip_domain
            );
        }
        TenantCommand::List { json } => {
            let tenants = store.tenants().list().await?;
            if json {
                let rows: Vec<_> = tenants
                    .iter()
                    .map(|t| serde_json::json!({"code": t.code, "domain": t.sip_domain}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{:<16} DOMAIN", "CODE");
                for t in tenants {
                    println!("{:<16} {}", t.code, t.sip_domain);
                }
            }
        }
    }
    Ok(())
}

/// `edgepbx ext ...`
pub async fn ext(storage: &StorageArgs, cmd: ExtCommand) -> anyhow::Result<()> {
    with_store(storage, |store| ext_command(store, cmd)).await
}

async fn ext_command(store: Store, cmd: ExtCommand) -> anyhow::Result<()> {
    match cmd {
        ExtCommand::Add {
            tenant,
            number,
            name,
            password,
            aliases,
        } => {
            let t = find_tenant(&store, &tenant).await?;
            let (credentials, password, generated) = credentials_from(&t, &number, password)?;
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
            println!("extension {number} added to {}", t.code);
            print_registration_hint(
                &t.code,
                &t.sip_domain,
                &number,
                generated.then_some(&password),
            );
        }
        ExtCommand::List { tenant, json } => {
            let t = find_tenant(&store, &tenant).await?;
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
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<8} {:<24} {:<16} {:>8}  ALIASES",
                    "NUMBER", "NAME", "USERNAME", "DEVICES"
                );
                for e in &extensions {
                    println!(
                        "{:<8} {:<24} {:<16} {:>8}  {}",
                        e.number,
                        e.name,
                        format!("{}-{}", e.number, t.code),
                        count(&e.number),
                        e.aliases.join(",")
                    );
                }
            }
        }
        ExtCommand::Passwd {
            tenant,
            number,
            password,
        } => {
            let t = find_tenant(&store, &tenant).await?;
            let (credentials, password, generated) = credentials_from(&t, &number, password)?;
            store
                .extensions()
                .set_credentials(&t.code, &number, credentials)
                .await?;
            println!("password of {number} in {} changed", t.code);
            if generated {
                println!("new password: {password}");
            }
        }
        ExtCommand::Rm { tenant, number } => {
            let t = find_tenant(&store, &tenant).await?;
            store.extensions().remove(&t.code, &number).await?;
            println!("extension {number} removed from {}", t.code);
        }
    }
    Ok(())
}

/// The tenant with this code, or an error naming it.
pub async fn find_tenant(store: &Store, code: &str) -> anyhow::Result<edgepbx_store::Tenant> {
    match store.tenants().get(&code.to_ascii_uppercase()).await? {
        Some(t) => Ok(t),
        None => bail!("no tenant with code {code}"),
    }
}

/// Credentials from a given password, or from a generated one. Returns
/// the password and whether it was generated (so it is printed once).
fn credentials_from(
    tenant: &edgepbx_store::Tenant,
    number: &str,
    password: Option<String>,
) -> anyhow::Result<(SipCredentials, String, bool)> {
    let generated = password.is_none();
    let password = password.unwrap_or_else(generate_password);
    check_password(&password)?;
    let credentials = credentials_for(&tenant.code, &tenant.sip_domain, number, &password);
    Ok((credentials, password, generated))
}

fn check_password(password: &str) -> anyhow::Result<()> {
    if password.len() < 8 || password.len() > 128 {
        bail!("a SIP password must be 8 to 128 characters long");
    }
    if password.chars().any(|c| c.is_control()) {
        bail!("a SIP password must not contain control characters");
    }
    Ok(())
}

/// Tells a person how to register a phone to an extension.
pub fn print_registration_hint(code: &str, domain: &str, number: &str, password: Option<&String>) {
    println!(
        "  register as {number}@{domain} (or username {number}-{code} at the server's address)"
    );
    if let Some(password) = password {
        println!("  password: {password}");
    }
}
