//! `edgepbx policy ...` as a policy developer and an administrator use it:
//! check and try the example policies built from guest-policies/, upload
//! versions, activate, restore and deactivate them.

use edgepbx_e2e::pbx::Deployment;
use edgepbx_e2e::policies::{context, policy_module};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 paths")
}

#[test]
fn check_and_try_the_examples() {
    let deployment = Deployment::new("policy-try");
    let vip = policy_module("edgepbx_policy_example_vip");
    let out = deployment.admin(&["policy", "check", path(&vip)]);
    assert!(
        out.contains("a valid edgepbx:policy@0.1.0 component"),
        "{out}"
    );

    // The built-in policy rings Alice's desk phone...
    let alice = context("vip-to-alice.json");
    let builtin = json(&deployment.admin(&["policy", "try", "builtin", "--context", path(&alice)]));
    assert_eq!(
        builtin["decision"]["action"]["Ring"]["targets"][0]["target"],
        json(r#"{"Extension": "100"}"#),
        "{builtin:#}"
    );
    // ...the VIP policy rings her mobile (from the key-value store) and
    // marks the caller.
    let decided =
        json(&deployment.admin(&["policy", "try", path(&vip), "--context", path(&alice)]));
    assert_eq!(
        decided["decision"]["action"]["Ring"]["targets"][0],
        json(r#"{"target": {"External": "+491701234567"}, "timeout_secs": 30}"#),
        "{decided:#}"
    );
    assert_eq!(
        decided["decision"]["presentation"]["name_prefix"], "VIP ",
        "{decided:#}"
    );

    // Round robin through the tenant's counter: the built-in group strategy
    // skips the member on DND and starts where the counter says.
    let sales = context("sales-group.json");
    let group = json(&deployment.admin(&["policy", "try", "builtin", "--context", path(&sales)]));
    let order: Vec<&Value> = group["decision"]["action"]["Ring"]["targets"]
        .as_array()
        .expect("ring targets")
        .iter()
        .map(|t| &t["target"]["Extension"])
        .collect();
    assert_eq!(order, ["103", "101"], "{group:#}");
    assert_eq!(group["kv"]["group:600:round-robin"], "4", "{group:#}");
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let deployment = Deployment::new("policy-bad");
    let not_wasm = deployment.work().write("notes.wasm", "not a module");
    let out = deployment.admin_output(&["policy", "check", path(&not_wasm)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );

    let bad_context = deployment
        .work()
        .write("call.json", r#"{"call": {"id": 1}}"#);
    let out =
        deployment.admin_output(&["policy", "try", "builtin", "--context", path(&bad_context)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the context is not valid"), "{stderr}");
}

#[test]
fn versions_are_uploaded_activated_restored_and_deactivated() {
    let deployment = Deployment::new("policy-versions");
    deployment.add_tenant("ACME", "acme.example");
    let vip = policy_module("edgepbx_policy_example_vip");
    let hours = policy_module("edgepbx_policy_example_business_hours");

    let out = deployment.admin(&[
        "policy",
        "upload",
        "ACME",
        path(&vip),
        "--uploader",
        "alice",
    ]);
    assert!(out.contains("policy version 1 stored for ACME"), "{out}");
    let out = deployment.admin(&["policy", "upload", "acme", path(&hours), "--activate"]);
    assert!(out.contains("version 2 is now active"), "{out}");

    // The same module again, and something that is no module: refused,
    // nothing stored.
    let again = deployment.admin_output(&["policy", "upload", "ACME", path(&vip)]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("version 1"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let junk = deployment.work().write("junk.wasm", "\0asm junk");
    assert!(
        !deployment
            .admin_output(&["policy", "upload", "ACME", path(&junk)])
            .status
            .success()
    );
    let unknown = deployment.admin_output(&["policy", "upload", "NOPE", path(&vip)]);
    assert!(!unknown.status.success());

    let active = |deployment: &Deployment| -> Vec<(u64, bool)> {
        let list = json(&deployment.admin(&["policy", "list", "ACME", "--json"]));
        list.as_array()
            .expect("a list")
            .iter()
            .map(|v| (v["version"].as_u64().expect("version"), v["active"] == true))
            .collect()
    };
    assert_eq!(active(&deployment), [(1, false), (2, true)]);
    let list = json(&deployment.admin(&["policy", "list", "ACME", "--json"]));
    assert_eq!(list[0]["uploader"], "alice");
    assert_eq!(list[0]["hash"].as_str().map(str::len), Some(64));

    deployment.admin(&["policy", "activate", "ACME", "1"]);
    assert_eq!(active(&deployment), [(1, true), (2, false)]);
    assert!(
        !deployment
            .admin_output(&["policy", "activate", "ACME", "7"])
            .status
            .success()
    );

    let out = deployment.admin(&["policy", "deactivate", "ACME"]);
    assert!(out.contains("uses the built-in policy again"), "{out}");
    assert_eq!(active(&deployment), [(1, false), (2, false)]);
    let table = deployment.admin(&["policy", "list", "ACME"]);
    assert!(table.contains("VERSION"), "{table}");
}
