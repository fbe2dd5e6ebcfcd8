//! `edgepbx device ...`: desk phones that provision themselves.

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::{Context, bail};
use edgepbx_store::{BlfKey, Device, Mac, Store, Vendor};

use crate::admin::tenants::find_tenant;
use crate::cli::{DeviceArgs, DeviceCommand};

/// Runs a device command on the store; `resync` needs the running server
/// (the control socket runs it there).
pub(super) async fn device_command(
    store: &Store,
    cmd: DeviceCommand,
    out: &mut String,
) -> anyhow::Result<()> {
    match cmd {
        DeviceCommand::Add(args) => {
            let tenant = find_tenant(store, &args.tenant).await?;
            let replace = args.replace;
            let device = device_of(args)?;
            let stored = if replace {
                store.devices().replace(&tenant.code, device, None).await?
            } else {
                store.devices().add(&tenant.code, device).await?
            };
            writeln!(
                out,
                "device {} ({}) {} for extension {}",
                stored.mac,
                stored.vendor.as_str(),
                if replace { "changed" } else { "added" },
                stored.extension
            )?;
        }
        DeviceCommand::List {
            tenant,
            extension,
            json,
        } => {
            let tenant = find_tenant(store, &tenant).await?;
            let devices = store
                .devices()
                .list(&tenant.code, extension.as_deref())
                .await?;
            if json {
                let rows: Vec<_> = devices.iter().map(device_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                for d in &devices {
                    let keys: Vec<&str> = d.blf_keys.iter().map(BlfKey::number).collect();
                    writeln!(
                        out,
                        "{}  {:<11} {:<8} ext {:<6} blf {}  {}",
                        d.mac,
                        d.vendor.as_str(),
                        d.model.as_deref().unwrap_or("-"),
                        d.extension,
                        if keys.is_empty() {
                            "-".to_owned()
                        } else {
                            keys.join(",")
                        },
                        d.label.as_deref().unwrap_or("")
                    )?;
                }
            }
        }
        DeviceCommand::Rm { tenant, mac } => {
            let tenant = find_tenant(store, &tenant).await?;
            let mac: Mac = mac.parse()?;
            store.devices().remove(&tenant.code, &mac, None).await?;
            writeln!(out, "device {mac} removed")?;
        }
        DeviceCommand::Resync { .. } => {
            bail!("resync tells registered phones: it needs the server running (edgepbx serve)")
        }
    }
    Ok(())
}

/// The device `args` describe, every value checked.
fn device_of(args: DeviceArgs) -> anyhow::Result<Device> {
    let mac: Mac = args.mac.parse()?;
    let vendor = match &args.vendor {
        Some(v) => v.parse::<Vendor>()?,
        None => Vendor::of_mac(&mac).with_context(|| {
            format!("the maker of {mac} is not known from its address: give --vendor yealink or grandstream")
        })?,
    };
    let blf_keys = args
        .blf
        .iter()
        .filter(|k| !k.trim().is_empty())
        .map(|k| {
            let (number, label) = k.split_once('=').unwrap_or((k, ""));
            BlfKey::new(number.trim(), label.trim())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Device {
        mac,
        vendor,
        model: args.model,
        extension: args.extension,
        line: 1,
        blf_keys,
        label: args.label,
        updated_at: SystemTime::UNIX_EPOCH,
    })
}

fn device_json(d: &Device) -> serde_json::Value {
    serde_json::json!({
        "mac": d.mac.to_string(),
        "vendor": d.vendor.as_str(),
        "model": d.model,
        "extension": d.extension,
        "line": d.line,
        "blf_keys": d.blf_keys.iter().map(|k| serde_json::json!({
            "number": k.number(),
            "label": k.label(),
        })).collect::<Vec<_>>(),
        "label": d.label,
    })
}
