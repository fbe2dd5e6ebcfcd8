//! Extension users against the running binary: the person behind an
//! extension logs in to the console API and reaches their own extension's
//! call settings, mailbox and web phone credentials, and nothing else.

use edgepbx_e2e::http::Response;
use edgepbx_e2e::pbx::Deployment;
use serde_json::json;

const ANN: (&str, &str) = ("ann@acme.test", "ann's password 1");
const BOB: (&str, &str) = ("bob@acme.test", "bob's password 1");

fn assert_refused(r: &Response, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    if let Some(field) = field {
        assert_eq!(r.json()["errors"][0]["field"], field, "{}", r.text());
    }
}

#[test]
fn an_extension_user_reaches_their_own_extension_and_nothing_else() {
    let deployment = Deployment::new("extension-users");
    deployment.acme_with([100, 101]);
    deployment.add_tenant("BETA", "beta.test");
    deployment.add_console_user("admin@acme.test", Some("ACME"), "acme password 1");
    // The CLI makes one, the API another.
    let added = deployment.admin(&[
        "user",
        "add",
        ANN.0,
        "--role",
        "extension-user",
        "--tenant",
        "ACME",
        "--extension",
        "100",
        "--password",
        ANN.1,
    ]);
    assert!(added.contains("extension 100"), "{added}");
    let pbx = deployment.start();
    let api = pbx.api();
    let admin = api.logged_in("admin@acme.test", "acme password 1");
    let r = admin.json(
        "POST",
        "/api/v1/users",
        &json!({"email": BOB.0, "password": BOB.1, "role": "extension-user", "extension": "101"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["extension"], "101");
    for (body, status, field) in [
        (
            json!({"email": "c@acme.test", "password": "c's password 1", "role": "extension-user"}),
            422,
            "extension",
        ),
        (
            json!({"email": "c@acme.test", "password": "c's password 1", "role": "read-only", "extension": "101"}),
            422,
            "extension",
        ),
    ] {
        assert_refused(
            &admin.json("POST", "/api/v1/users", &body),
            status,
            Some(field),
        );
    }
    assert_refused(
        &admin.json(
            "POST",
            "/api/v1/users",
            &json!({"email": "c@acme.test", "password": "c's password 1", "role": "extension-user", "extension": "999"}),
        ),
        404,
        None,
    );
    let users = admin.get("/api/v1/users").json();
    assert!(
        users.as_array().is_some_and(|u| u
            .iter()
            .any(|u| u["email"] == ANN.0 && u["extension"] == "100")),
        "{users}"
    );

    let ann = api.logged_in(ANN.0, ANN.1);
    let session = ann.get("/api/v1/session").json();
    assert_eq!(session["role"], "extension-user");
    assert_eq!(session["extension"], "100");
    // Their own extension, mailbox and devices...
    for path in [
        "/api/v1/extensions/100",
        "/api/v1/extensions/100/voicemail",
        "/api/v1/extensions/100/devices",
        "/api/v1/extensions/100/history",
    ] {
        assert_eq!(ann.get(path).status, 200, "{path}");
    }
    // ...never another's, which looks like no extension at all...
    for path in [
        "/api/v1/extensions/101",
        "/api/v1/extensions/101/voicemail",
        "/api/v1/extensions/101/webphone",
        "/api/v1/extensions/999",
    ] {
        assert_refused(&ann.get(path), 404, None);
    }
    assert_refused(
        &ann.json("PATCH", "/api/v1/extensions/101", &json!({"dnd": true})),
        404,
        None,
    );
    // ...nor the tenant's lists, users, keys or passwords.
    for path in [
        "/api/v1/extensions",
        "/api/v1/users",
        "/api/v1/api-keys",
        "/api/v1/groups",
        "/api/v1/extensions/100/password",
        "/api/v1/audit",
    ] {
        assert_refused(&ann.get(path), 403, None);
    }

    // How calls reach them is theirs to change; who they are and what
    // they may dial is not.
    let r = ann.json(
        "PATCH",
        "/api/v1/extensions/100",
        &json!({"dnd": true, "forwarding": {"no_answer": "101"}, "voicemail": {"pin": "2468"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["dnd"], true);
    for field in ["name", "aliases", "allowed_destinations", "caller_id"] {
        let body = match field {
            "aliases" => json!({ field: ["ann"] }),
            "caller_id" => json!({ field: {"name": "Boss"} }),
            _ => json!({ field: "all" }),
        };
        assert_refused(
            &ann.json("PATCH", "/api/v1/extensions/100", &body),
            403,
            Some(field),
        );
    }
    assert_eq!(
        admin.get("/api/v1/extensions/100").json()["name"],
        r.json()["name"],
        "nothing else changed"
    );

    // The web phone's credentials: the extension's, audited.
    let phone = ann.get("/api/v1/extensions/100/webphone");
    assert_eq!(phone.status, 200, "{}", phone.text());
    assert_eq!(phone.header("cache-control"), Some("no-store"));
    let phone = phone.json();
    let revealed = admin.get("/api/v1/extensions/100/password").json();
    assert_eq!(phone["password"], revealed["password"]);
    assert_eq!(phone["username"], "100-ACME");
    assert_eq!(phone["domain"], "acme.test");
    assert_eq!(phone["path"], "/ws");
    let audit = admin.get("/api/v1/audit").json();
    assert!(
        audit.as_array().is_some_and(|a| a
            .iter()
            .any(|e| e["actor"] == ANN.0 && e["action"] == "webphone")),
        "{audit}"
    );
    // An administrator may use any extension's web phone.
    assert_eq!(admin.get("/api/v1/extensions/101/webphone").status, 200);

    // The user goes with their extension, sessions and all.
    assert_eq!(admin.delete("/api/v1/extensions/100").status, 204);
    assert_eq!(ann.get("/api/v1/session").status, 401);
    let users = admin.get("/api/v1/users").json();
    assert!(
        users
            .as_array()
            .is_some_and(|u| u.iter().all(|u| u["email"] != ANN.0)),
        "{users}"
    );
}

#[test]
fn the_extensions_csv_lists_and_sets_each_extensions_console_users() {
    let deployment = Deployment::new("extension-users-csv");
    deployment.acme_with([100, 101]);
    deployment.add_console_user("admin@acme.test", Some("ACME"), "acme password 1");
    let key = deployment.api_key("ACME", false);
    let pbx = deployment.start();
    let acme = pbx.api().with_token(&key);
    let users_of = |number: &str| -> Vec<String> {
        let mut found: Vec<String> = acme
            .get("/api/v1/users")
            .json()
            .as_array()
            .into_iter()
            .flatten()
            .filter(|u| u["extension"] == number)
            .filter_map(|u| u["email"].as_str().map(str::to_owned))
            .collect();
        found.sort();
        found
    };

    // A file with a bad row changes nothing: an address that is another
    // kind of user already, one named on two rows.
    let bad = "number,name,console_users\n\
        100,Ann,ann@acme.test\n\
        101,Bob,bob@acme.test;ann@acme.test\n\
        102,New,admin@acme.test\n\
        103,New,not an address\n";
    let report = acme.import_extensions(bad, false);
    assert_eq!(report["committed"], false, "{report}");
    let errors: Vec<(u64, String)> = report["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["row"].as_u64().unwrap_or(0),
                e["field"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [3, 4, 5].map(|row| (row, "console_users".to_owned())),
        "{report}"
    );
    assert!(users_of("100").is_empty() && users_of("101").is_empty());

    // A good one makes the users, their passwords in the report once.
    let good =
        "number,name,console_users\n100,Ann,ann@acme.test\n101,Bob,bob@acme.test; bea@acme.test\n";
    let dry = acme.import_extensions(good, true);
    assert_eq!(dry["errors"], json!([]), "{dry}");
    assert!(users_of("101").is_empty(), "a dry run adds nobody");
    let report = acme.import_extensions(good, false);
    assert_eq!(report["committed"], true, "{report}");
    let issued = report["user_passwords"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(issued.len(), 3, "{report}");
    assert_eq!(users_of("101"), ["bea@acme.test", "bob@acme.test"]);
    let bea = issued
        .iter()
        .find(|p| p["email"] == "bea@acme.test")
        .expect("bea's password");
    assert_eq!(bea["extension"], "101");
    let as_bea = pbx.api().logged_in(
        "bea@acme.test",
        bea["password"].as_str().unwrap_or_default(),
    );
    assert_eq!(as_bea.get("/api/v1/extensions/101").status, 200);
    let id = report["id"].as_str().unwrap_or_default();
    let again = acme.get(&format!("/api/v1/imports/{id}")).json();
    assert_eq!(again["user_passwords"], json!([]), "handed out once");

    // The export lists them; a file that names fewer takes the others'
    // access away (and their sessions with it).
    let export = acme.get("/api/v1/extensions/export.csv").text();
    assert!(
        export
            .lines()
            .next()
            .is_some_and(|h| h.ends_with(",console_users")),
        "{export}"
    );
    assert!(
        export.contains("bob@acme.test;bea@acme.test")
            || export.contains("bea@acme.test;bob@acme.test"),
        "{export}"
    );
    let report =
        acme.import_extensions("number,name,console_users\n101,Bob,bob@acme.test\n", false);
    assert_eq!(report["committed"], true, "{report}");
    assert_eq!(report["user_passwords"], json!([]), "bob is kept as he is");
    assert_eq!(users_of("101"), ["bob@acme.test"]);
    assert_eq!(
        users_of("100"),
        ["ann@acme.test"],
        "a file without row 100 keeps 100's"
    );
    assert_eq!(as_bea.get("/api/v1/session").status, 401);
}
