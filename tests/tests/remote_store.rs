//! edgepbx on a real SurrealDB server instead of the embedded database:
//! over `wss://` with a private CA, signed in with a password from a file.
//! The administration CLI, the registrar's write-behind and the API write
//! there, and a restart finds it all again. A wrong password, or a server
//! certificate nobody vouches for, stops edgepbx with a clear error.

use edgepbx_e2e::certs::ca_signed;
use edgepbx_e2e::pbx::{Deployment, NO_KEEPALIVE};
use edgepbx_e2e::sip::{RegisterParams, SipClient};
use edgepbx_e2e::surreal::SurrealServer;
use serde_json::json;

const PASSWORD: &str = "surreal root pw 7";

/// A deployment whose store is `server`, signing in as root with
/// `password`, trusting `ca` when given.
fn on_server(name: &str, server: &SurrealServer, password: &str, ca: Option<&str>) -> Deployment {
    let deployment = Deployment::with_config(name, "");
    let work = deployment.work();
    let password_file = work.write("db-password", &format!("{password}\n"));
    let ca_line = ca.map_or_else(String::new, |ca| format!("ca_file = \"{ca}\"\n"));
    // The configuration the deployment was made with, rewritten in place.
    work.write(
        "edgepbx.toml",
        &format!(
            "db = \"{}\"\n{NO_KEEPALIVE}[remote_store]\nuser = \"root\"\npassword_file = \"{}\"\n{ca_line}",
            server.url(),
            password_file.display(),
        ),
    );
    deployment
}

#[test]
fn a_node_on_a_surrealdb_server_over_tls_keeps_its_data_across_a_restart() {
    let files = Deployment::new("remote-store-db");
    let (ca, cert, key) = ca_signed(files.work().path(), &["IP:127.0.0.1"]);
    let server = SurrealServer::start(
        &files.work().join("db"),
        "root",
        PASSWORD,
        Some((&cert, &key)),
        &files.work().join("surreal.log"),
    );
    let ca = ca.to_string_lossy().into_owned();
    let deployment = on_server("remote-store", &server, PASSWORD, Some(&ca));
    let extensions = deployment.acme_with([100, 101]);
    let key = deployment.api_key("ACME", false);

    let pbx = deployment.start();
    assert!(
        pbx.log().contains("connected to remote store"),
        "{}",
        pbx.log()
    );
    let mut desk = extensions[0].agent(SipClient::udp(pbx.udp()));
    let ok = desk.register(&RegisterParams::bind("<sip:desk@127.0.0.1:9>", 3600));
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    let api = pbx.api().with_token(&key);
    let r = api.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "102", "name": "Over TLS"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let status = pbx.stop();
    assert!(status.success(), "{status}");

    let pbx = deployment.start();
    let listed = pbx.api().with_token(&key).get("/api/v1/extensions").json();
    let items = listed["items"].as_array().cloned().unwrap_or_default();
    let numbers: Vec<&str> = items.iter().filter_map(|e| e["number"].as_str()).collect();
    assert_eq!(numbers, ["100", "101", "102"], "{listed}");
    assert_eq!(items[0]["devices"], 1, "the binding was restored: {listed}");
    drop(pbx);

    // A wrong password is refused by SurrealDB, and edgepbx says so.
    let wrong = on_server("remote-store-wrong", &server, "not the password", Some(&ca));
    let out = wrong.admin_output(&["tenant", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("opening the store") && stderr.contains("authentication"),
        "{stderr}"
    );

    // Without the private CA the server's certificate is not trusted.
    let untrusted = on_server("remote-store-untrusted", &server, PASSWORD, None);
    let out = untrusted.admin_output(&["tenant", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}
