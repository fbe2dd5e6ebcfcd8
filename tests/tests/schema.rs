//! schemathesis (from PyPI) against the served OpenAPI document: thousands of
//! generated requests, valid and not, must get no 5xx and no answer that
//! breaks the document's schemas.

use std::process::Command;

use edgepbx_e2e::pbx::Deployment;

/// The `st` command: `EDGEPBX_SCHEMATHESIS` (set by scripts/test.sh, which
/// installs it), else `st` on PATH.
fn schemathesis() -> String {
    std::env::var("EDGEPBX_SCHEMATHESIS").unwrap_or_else(|_| {
        edgepbx_e2e::require_program("st")
            .to_string_lossy()
            .into_owned()
    })
}

#[test]
fn generated_requests_get_no_server_error_and_match_the_schema() {
    let st = schemathesis();
    let deployment = Deployment::new("schemathesis");
    deployment.add_tenant("ACME", "acme.test");
    deployment.add_extension("ACME", "acme.test", "100", "pw-100-Secret");
    let key = deployment.api_key("ACME", false);
    let pbx = deployment.start();
    let out = Command::new(&st)
        .arg("run")
        .arg(format!("http://{}/api/v1/openapi.json", pbx.http()))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", "10", "--generation-deterministic"])
        .args(["--request-timeout", "5", "--no-color"])
        // The key under test would revoke itself; the event stream never
        // ends (its schema is the text/event-stream it always answers).
        .args(["--exclude-path", "/api/v1/api-keys/{id}"])
        .args(["--exclude-path", "/api/v1/events"])
        .env("SCHEMATHESIS_HOOKS", "")
        // Its cache of earlier runs goes with the deployment: every run
        // starts from the same state, and the clone stays clean.
        .current_dir(deployment.work().path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {st}: {e}"));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains(" passed"),
        "schemathesis found problems ({}):\n{report}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        edgepbx_e2e::pbx::tail(&pbx.log(), 40)
    );
    assert!(!report.contains("FAILURES"), "{report}");
}
