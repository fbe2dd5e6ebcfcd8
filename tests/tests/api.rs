//! The REST API against the running binary: authentication (API keys,
//! console sessions, throttling), tenant isolation, every resource, problem
//! details naming the field, CSV import and export, the event stream, and
//! SIP devices seen through it.

use std::time::{Duration, Instant};

use edgepbx_e2e::pbx::{Deployment, Extension};
use edgepbx_e2e::phones::{Behaviour, CALL_CONFIG, Device, caller, wait_for_bindings};
use edgepbx_e2e::policies::policy_module;
use edgepbx_e2e::wait_for;
use serde_json::{Value, json};

/// A deployment with tenants ACME and BETA, their keys and a system admin.
struct Setup {
    deployment: Deployment,
    acme: String,
    acme_read_only: String,
    beta: String,
}

fn setup(name: &str) -> Setup {
    let toml = format!("{CALL_CONFIG}[http]\nmax_event_streams = 2\n");
    let deployment = Deployment::with_config(name, &toml);
    deployment.add_tenant("ACME", "acme.test");
    deployment.add_tenant("BETA", "beta.test");
    deployment.add_console_user("root@example.test", None, "root password 1");
    deployment.add_console_user("admin@acme.test", Some("ACME"), "acme password 1");
    Setup {
        acme: deployment.api_key("ACME", false),
        acme_read_only: deployment.api_key("ACME", true),
        beta: deployment.api_key("BETA", false),
        deployment,
    }
}

fn assert_problem(r: &edgepbx_e2e::http::Response, status: u16, field: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.text()
    );
    let body = r.json();
    assert_eq!(body["status"], status);
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    if let Some(field) = field {
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
}

#[test]
fn keys_sessions_and_tenant_isolation() {
    let s = setup("api-auth");
    let pbx = s.deployment.start();
    let api = pbx.api();
    let acme = api.with_token(&s.acme);
    let beta = api.with_token(&s.beta);

    // No credentials, a malformed or unknown key: 401 with a challenge.
    for client in [
        api.clone(),
        api.with_token("nonsense"),
        api.with_token("epk_unknown_0000000000"),
    ] {
        let r = client.get("/api/v1/extensions");
        assert_problem(&r, 401, None);
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer"))
        );
    }

    // A's key creates an extension in A; the password is shown once.
    let r = acme.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "200", "name": "Alice", "aliases": ["alice"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let password = created["password"].as_str().expect("a password").to_owned();
    assert_eq!(created["username"], "200-ACME");
    assert_eq!(created["status"], "offline");
    assert!(
        acme.get("/api/v1/extensions/200")
            .json()
            .get("password")
            .is_none()
    );

    // B's key sees nothing of A, changes nothing of A, cannot name A.
    assert_problem(&beta.get("/api/v1/extensions/200"), 404, None);
    assert_problem(
        &beta.json(
            "PATCH",
            "/api/v1/extensions/200",
            &json!({"name": "Mallory"}),
        ),
        404,
        None,
    );
    assert_problem(&beta.delete("/api/v1/extensions/200"), 404, None);
    assert_problem(&beta.get("/api/v1/extensions/200/password"), 404, None);
    assert_eq!(beta.get("/api/v1/extensions").json()["total"], 0);
    assert_problem(&beta.get("/api/v1/extensions?tenant=ACME"), 403, None);
    assert_problem(&beta.get("/api/v1/tenants"), 403, None);
    assert_eq!(acme.get("/api/v1/extensions/200").json()["name"], "Alice");

    // A read-only key reads but does not write.
    let ro = api.with_token(&s.acme_read_only);
    assert_eq!(ro.get("/api/v1/extensions").json()["total"], 1);
    assert_problem(
        &ro.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": "201", "name": "X"}),
        ),
        403,
        None,
    );
    assert_problem(&ro.get("/api/v1/extensions/200/password"), 403, None);

    // Reveal gives the password back; a reset changes it.
    let revealed = acme.get("/api/v1/extensions/200/password").json();
    assert_eq!(revealed["password"], password.as_str());
    let trail = acme.get("/api/v1/audit").json();
    assert_eq!(trail[0]["action"], "reveal-password", "{trail}");
    assert_eq!(trail[0]["target"], "extension 200", "{trail}");
    assert!(
        trail[0]["actor"]
            .as_str()
            .is_some_and(|a| a.starts_with("key:"))
    );
    assert_eq!(beta.get("/api/v1/audit").json(), json!([]));
    assert_problem(&ro.get("/api/v1/audit"), 403, None);
    let reset = acme.json("POST", "/api/v1/extensions/200/password", &json!({}));
    assert_eq!(reset.status, 200, "{}", reset.text());
    let new_password = reset.json()["password"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(new_password, password);
    assert_eq!(
        acme.get("/api/v1/extensions/200/password").json()["password"],
        new_password.as_str()
    );

    // Keys: listed without the secret, last use recorded, revocable.
    let keys = acme.get("/api/v1/api-keys").json();
    let listed = keys.as_array().expect("a list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.get("key").is_none()));
    assert!(
        listed.iter().any(|k| k["last_used_at"].is_string()),
        "{keys}"
    );
    let r = acme.json("POST", "/api/v1/api-keys", &json!({"name": "temp"}));
    assert_eq!(r.status, 201, "{}", r.text());
    let temp = r.json();
    let temp_client = api.with_token(temp["key"].as_str().unwrap_or_default());
    assert_eq!(temp_client.get("/api/v1/extensions").status, 200);
    let id = temp["id"].as_str().unwrap_or_default();
    let mut stream = temp_client.events("/api/v1/events");
    assert_problem(&beta.delete(&format!("/api/v1/api-keys/{id}")), 404, None);
    assert_eq!(acme.delete(&format!("/api/v1/api-keys/{id}")).status, 204);
    assert_problem(&temp_client.get("/api/v1/extensions"), 401, None);
    // Its event stream ends at the next configuration change.
    acme.json(
        "PATCH",
        "/api/v1/extensions/200",
        &json!({"name": "Alice A."}),
    );
    assert!(
        stream.ends_before(Instant::now() + Duration::from_secs(10)),
        "the revoked key's stream ends"
    );

    // Console sessions: a tenant admin, and a system admin who names the
    // tenant.
    let admin = api.logged_in("admin@acme.test", "acme password 1");
    let me = admin.get("/api/v1/session").json();
    assert_eq!(
        me,
        json!({"email": "admin@acme.test", "role": "tenant-admin", "tenant": "ACME"})
    );
    assert_eq!(admin.get("/api/v1/extensions").json()["total"], 1);
    let root = api.logged_in("root@example.test", "root password 1");
    assert_problem(&root.get("/api/v1/extensions"), 422, Some("tenant"));
    assert_eq!(
        root.get("/api/v1/extensions?tenant=ACME").json()["total"],
        1
    );
    let tenants = root.get("/api/v1/tenants").json();
    assert_eq!(tenants.as_array().map(Vec::len), Some(2), "{tenants}");
    let r = root.json(
        "POST",
        "/api/v1/tenants",
        &json!({"code": "GAMMA", "sip_domain": "gamma.test", "max_extensions": 5,
            "max_bindings_per_extension": 2}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["max_extensions"], 5);
    assert_eq!(r.json()["max_bindings_per_extension"], 2);
    assert_problem(
        &root.json(
            "POST",
            "/api/v1/tenants",
            &json!({"code": "DELTA", "sip_domain": "delta.test", "max_bindings_per_extension": 0}),
        ),
        422,
        Some("max_bindings_per_extension"),
    );
    assert_problem(
        &root.json(
            "POST",
            "/api/v1/tenants",
            &json!({"code": "G", "sip_domain": "x.test"}),
        ),
        422,
        Some("tenant_code"),
    );
    assert_eq!(root.delete("/api/v1/tenants/GAMMA").status, 204);
    // Users: a tenant admin adds a read-only user, who can read but not
    // write; no tenant admin makes a system admin; another tenant cannot
    // remove them.
    let r = admin.json(
        "POST",
        "/api/v1/users",
        &json!({"email": "viewer@acme.test", "password": "viewer password 1", "role": "read-only"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["tenant"], "ACME");
    assert_problem(
        &admin.json(
            "POST",
            "/api/v1/users",
            &json!({"email": "boss@acme.test", "password": "boss password 1", "role": "system-admin"}),
        ),
        403,
        None,
    );
    assert_problem(
        &admin.json(
            "POST",
            "/api/v1/users",
            &json!({"email": "weak@acme.test", "password": "short", "role": "read-only"}),
        ),
        422,
        Some("password"),
    );
    let users = admin.get("/api/v1/users").json();
    assert_eq!(users.as_array().map(Vec::len), Some(2), "{users}");
    let viewer = api.logged_in("viewer@acme.test", "viewer password 1");
    assert_eq!(viewer.get("/api/v1/extensions").status, 200);
    assert_problem(
        &viewer.json("PATCH", "/api/v1/extensions/200", &json!({"name": "X"})),
        403,
        None,
    );
    assert_problem(&beta.delete("/api/v1/users/viewer@acme.test"), 404, None);
    assert_eq!(admin.delete("/api/v1/users/viewer@acme.test").status, 204);
    assert_problem(&viewer.get("/api/v1/extensions"), 401, None);
    assert_eq!(admin.delete("/api/v1/session").status, 204);
    assert_problem(&admin.get("/api/v1/session"), 401, None);

    // A JSON endpoint takes JSON only: a form a hostile page could post
    // across sites without asking is refused before it is read.
    let form = api.request(
        "POST",
        "/api/v1/session",
        Some((
            "application/x-www-form-urlencoded",
            b"{\"email\":\"admin@acme.test\",\"password\":\"acme password 1\"}",
        )),
        &[],
    );
    assert_problem(&form, 415, None);
    let plain = acme.request(
        "POST",
        "/api/v1/extensions",
        Some(("text/plain", b"{\"number\":\"555\",\"name\":\"X\"}")),
        &[],
    );
    assert_problem(&plain, 415, None);

    // A login is small: a large body is refused before it is read whole.
    let big = json!({"email": "admin@acme.test", "password": "x".repeat(10_000)});
    assert_eq!(api.json("POST", "/api/v1/session", &big).status, 413);

    // Behind a proxy that says the browser came over HTTPS, the session
    // cookie is Secure even though edgepbx itself speaks HTTP.
    let proxied = api.request(
        "POST",
        "/api/v1/session",
        Some((
            "application/json",
            b"{\"email\":\"admin@acme.test\",\"password\":\"acme password 1\"}",
        )),
        &[("X-Forwarded-Proto", "https")],
    );
    assert_eq!(proxied.status, 200, "{}", proxied.text());
    assert!(
        proxied
            .header("set-cookie")
            .is_some_and(|c| c.contains("; Secure")),
        "{:?}",
        proxied.header("set-cookie")
    );

    // Wrong passwords and unknown users get the same answer; past the
    // limit, 429, even with the right password (from this address: the
    // user is locked out here, not everywhere).
    for email in ["admin@acme.test", "nobody@acme.test"] {
        let r = api.json(
            "POST",
            "/api/v1/session",
            &json!({"email": email, "password": "wrong password"}),
        );
        assert_problem(&r, 401, None);
        assert_eq!(r.json()["detail"], "wrong e-mail or password");
    }
    for _ in 0..10 {
        api.json(
            "POST",
            "/api/v1/session",
            &json!({"email": "admin@acme.test", "password": "wrong password"}),
        );
    }
    let r = api.json(
        "POST",
        "/api/v1/session",
        &json!({"email": "admin@acme.test", "password": "acme password 1"}),
    );
    assert_problem(&r, 429, None);

    // The OpenAPI document describes the API.
    let doc = api.get("/api/v1/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api/v1/extensions",
        "/api/v1/extensions/{number}",
        "/api/v1/imports",
        "/api/v1/events",
        "/api/v1/policies",
        "/api/v1/contacts",
        "/api/v1/groups",
        "/api/v1/call-records",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    assert_problem(&api.get("/api/v1/nothing-here"), 404, None);
}

#[test]
fn extension_settings_validation_and_listing() {
    let s = setup("api-extensions");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    for (number, name) in [("100", "Zed"), ("101", "Amy"), ("1000", "Bob")] {
        let r = acme.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": number, "name": name, "password": format!("pw-{number}-Secret")}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }

    // Validation errors name the field.
    for (body, field) in [
        (json!({"number": "10a", "name": "X"}), "number"),
        (json!({"name": "X"}), "number"),
        (json!({"number": "300", "name": "X".repeat(101)}), "name"),
        (
            json!({"number": "300", "name": "X", "password": "short"}),
            "password",
        ),
        (
            json!({"number": "300", "name": "X", "colour": "red"}),
            "colour",
        ),
        (
            json!({"number": "300", "name": "X", "aliases": ["bad alias"]}),
            "aliases",
        ),
        (
            json!({"number": "300", "name": "X", "forwarding": {"busy": "x"}}),
            "forwarding.busy",
        ),
    ] {
        let r = acme.json("POST", "/api/v1/extensions", &body);
        assert_problem(&r, 422, Some(field));
    }
    assert_problem(
        &acme.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": "100", "name": "Again"}),
        ),
        409,
        None,
    );
    assert_problem(
        &acme.request(
            "POST",
            "/api/v1/extensions",
            Some(("application/json", b"{not json")),
            &[],
        ),
        422,
        Some("body"),
    );

    // Every setting through one merge patch, read back.
    let patch = json!({
        "name": "Zed Zulu",
        "aliases": ["zed", "+15550100"],
        "ring_timeout_secs": 30,
        "dnd": true,
        "away": true,
        "forwarding": {"busy": "voicemail", "no_answer": "101", "offline": "0612345678"},
        "follow_me": {"mode": "sequential", "destinations": [
            {"number": "0612345678", "timeout_secs": 15}, {"number": "101", "timeout_secs": 20}]},
        "voicemail": {"enabled": true, "email": "zed@acme.test", "pin": "4321"},
        "caller_id": {"outbound": "+15550100", "inbound_prefix": "Sales: "},
        "directory": {"listed": false, "email": "zed@acme.test", "department": "Sales"},
        "allowed_destinations": "0X.,+1X."
    });
    let r = acme.json("PATCH", "/api/v1/extensions/100", &patch);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = acme.get("/api/v1/extensions/100").json();
    assert_eq!(e["name"], "Zed Zulu");
    assert_eq!(e["aliases"], json!(["zed", "+15550100"]));
    assert_eq!(e["forwarding"]["busy"], "voicemail");
    assert_eq!(e["follow_me"]["destinations"][1]["number"], "101");
    assert_eq!(
        e["voicemail"],
        json!({"enabled": true, "email": "zed@acme.test", "attach_audio": true,
            "delete_after_email": false, "skip_pin_on_own_phone": false, "pin_set": true})
    );
    assert_eq!(e["directory"]["department"], "Sales");
    assert_eq!(e["allowed_destinations"], "0X.,+1X.");
    assert_eq!(e["dnd"], true);
    assert_eq!(e["away"], true);
    // null removes one value and keeps the others.
    let r = acme.json(
        "PATCH",
        "/api/v1/extensions/100",
        &json!({"forwarding": {"busy": null}, "voicemail": {"pin": null}}),
    );
    let e = r.json();
    assert_eq!(
        e["forwarding"],
        json!({"unconditional": null, "busy": null, "no_answer": "101", "offline": "0612345678"})
    );
    assert_eq!(e["voicemail"]["pin_set"], false);
    assert_eq!(e["voicemail"]["enabled"], true);
    for (patch, field) in [
        (json!({"ring_timeout_secs": 0}), "ring_timeout_secs"),
        (
            json!({"forwarding": {"no_answer": "abc"}}),
            "forwarding.no_answer",
        ),
        (
            json!({"follow_me": {"mode": "sideways", "destinations": []}}),
            "follow_me.mode",
        ),
        (json!({"voicemail": {"pin": "12"}}), "voicemail.pin"),
        (
            json!({"voicemail": {"email": "not-an-address"}}),
            "voicemail.email",
        ),
        (
            json!({"caller_id": {"outbound": "call me"}}),
            "caller_id.outbound",
        ),
        (json!({"number": "999"}), "number"),
        (json!({"aliases": ["amy"], "dnd": "yes"}), "dnd"),
        (
            json!({"allowed_destinations": "0X.Y"}),
            "allowed_destinations",
        ),
    ] {
        let r = acme.json("PATCH", "/api/v1/extensions/100", &patch);
        assert_problem(&r, 422, Some(field));
    }
    // An alias taken by another extension is a conflict; nothing changed.
    acme.json(
        "PATCH",
        "/api/v1/extensions/101",
        &json!({"aliases": ["amy"]}),
    );
    let r = acme.json(
        "PATCH",
        "/api/v1/extensions/100",
        &json!({"aliases": ["amy"]}),
    );
    assert_problem(&r, 409, None);
    assert_eq!(
        acme.get("/api/v1/extensions/100").json()["aliases"],
        json!(["zed", "+15550100"])
    );

    // Search, sort, paging.
    let page = acme.get("/api/v1/extensions?q=amy").json();
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["number"], "101");
    let page = acme.get("/api/v1/extensions?q=ZULU").json();
    assert_eq!(page["items"][0]["number"], "100");
    let numbers = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["number"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        numbers(&acme.get("/api/v1/extensions").json()),
        ["100", "101", "1000"]
    );
    assert_eq!(
        numbers(&acme.get("/api/v1/extensions?sort=name&order=desc").json()),
        ["100", "1000", "101"]
    );
    let page = acme.get("/api/v1/extensions?per_page=2&page=2").json();
    assert_eq!(
        (page["total"].as_u64(), numbers(&page)),
        (Some(3), vec!["1000".to_owned()])
    );
    assert_problem(
        &acme.get("/api/v1/extensions?sort=colour"),
        422,
        Some("sort"),
    );
    assert_problem(
        &acme.get("/api/v1/extensions?per_page=0"),
        422,
        Some("per_page"),
    );

    // Bulk voicemail off, then bulk delete.
    let r = acme.json(
        "POST",
        "/api/v1/extensions/bulk",
        &json!({"numbers": ["100", "101"], "action": "voicemail_off"}),
    );
    assert_eq!(r.json()["affected"], 2);
    assert_eq!(
        acme.get("/api/v1/extensions/100").json()["voicemail"]["enabled"],
        false
    );
    let r = acme.json(
        "POST",
        "/api/v1/extensions/bulk",
        &json!({"numbers": ["101", "1000"], "action": "delete"}),
    );
    assert_eq!(r.json()["affected"], 2, "{}", r.text());
    assert_eq!(numbers(&acme.get("/api/v1/extensions").json()), ["100"]);
    assert_problem(
        &acme.json(
            "POST",
            "/api/v1/extensions/bulk",
            &json!({"numbers": ["100"], "action": "paint"}),
        ),
        422,
        Some("action"),
    );
}

#[test]
fn devices_history_presence_events_and_calls() {
    let s = setup("api-live");
    let ext = s
        .deployment
        .add_extension("ACME", "acme.test", "100", "pw-100-Secret");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    assert_eq!(
        acme.get("/api/v1/presence").json(),
        json!([{"extension": "100", "status": "offline", "devices": 0}])
    );

    // The event stream starts with every extension's state, then follows
    // a phone registering.
    let mut events = acme.events("/api/v1/events");
    let first = events
        .next_before(Instant::now() + Duration::from_secs(5))
        .expect("the initial presence");
    assert_eq!(first.name, "presence");
    // The tenant may hold two streams open (see `setup`); a third waits.
    let second = acme.events("/api/v1/events");
    assert_problem(&acme.get("/api/v1/events"), 429, None);
    drop(second);
    let again = wait_for(Duration::from_secs(5), || {
        let r = acme.request("HEAD", "/api/v1/events", None, &[]);
        (r.status == 200).then_some(())
    });
    assert!(again.is_some(), "a closed stream frees its place");
    let dir = s.deployment.work().path();
    let phone = Device::start(
        dir,
        &pbx,
        &ext,
        "phone",
        Behaviour::Answer,
        Duration::from_secs(30),
    );
    wait_for_bindings(&pbx, &ext, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut online = None;
    while let Some(event) = events.next_before(deadline) {
        if event.name == "presence" {
            online = Some(event.data);
            break;
        }
    }
    let online: Value =
        serde_json::from_str(&online.expect("a presence event")).unwrap_or_default();
    assert_eq!(
        online,
        json!({"extension": "100", "status": "online", "devices": 1})
    );

    // DND set through the API shows on the stream and in the list.
    acme.json("PATCH", "/api/v1/extensions/100", &json!({"dnd": true}));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut dnd = None;
    while let Some(event) = events.next_before(deadline) {
        if event.name == "presence" {
            dnd = Some(event.data);
            break;
        }
    }
    assert!(
        dnd.is_some_and(|d| d.contains("\"dnd\"")),
        "a dnd presence event"
    );
    assert_eq!(acme.get("/api/v1/extensions/100").json()["status"], "dnd");
    // Away shows once DND is off.
    acme.json(
        "PATCH",
        "/api/v1/extensions/100",
        &json!({"dnd": false, "away": true}),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut away = None;
    while let Some(event) = events.next_before(deadline) {
        if event.name == "presence" {
            away = Some(event.data);
            break;
        }
    }
    assert!(
        away.is_some_and(|d| d.contains("\"away\"")),
        "an away presence event"
    );
    assert_eq!(acme.get("/api/v1/extensions/100").json()["status"], "away");
    acme.json("PATCH", "/api/v1/extensions/100", &json!({"away": false}));

    // Devices and the registration history.
    let devices = wait_for(Duration::from_secs(10), || {
        let d = acme.get("/api/v1/extensions/100/devices").json();
        (d.as_array().map(Vec::len) == Some(1)).then_some(d)
    })
    .expect("the phone listed as a device");
    assert_eq!(devices[0]["transport"], "udp");
    assert!(devices[0]["last_seen"].is_string(), "{devices}");
    assert!(
        devices[0]["contact"]
            .as_str()
            .is_some_and(|c| c.starts_with("sip:"))
    );
    let history = wait_for(Duration::from_secs(10), || {
        let h = acme.get("/api/v1/extensions/100/history?hours=24").json();
        (h.as_array().is_some_and(|a| !a.is_empty())).then_some(h)
    })
    .expect("a registration transition");
    assert_eq!(history[0]["online"], true);
    assert_problem(
        &acme.get("/api/v1/extensions/100/history?hours=0"),
        422,
        Some("hours"),
    );

    // A call from 101 to 100 (DND off again): listed while it lasts, on the
    // stream, then in the records.
    assert_eq!(acme.get("/api/v1/calls").json(), json!([]));
    assert_eq!(acme.get("/api/v1/call-records").json(), json!([]));
    acme.json("PATCH", "/api/v1/extensions/100", &json!({"dnd": false}));
    let caller_ext = s
        .deployment
        .add_extension("ACME", "acme.test", "101", "pw-101-Secret");
    std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            caller("call", &pbx, &caller_ext, "100")
                .arg("-d")
                .arg("3000")
                .run(dir, "call")
        });
        let listed = wait_for(Duration::from_secs(10), || {
            let calls = acme.get("/api/v1/calls").json();
            (calls.as_array().map(Vec::len) == Some(1)).then_some(calls)
        })
        .expect("the call listed while it lasts");
        assert_eq!(listed[0]["caller"], "101", "{listed}");
        assert_eq!(listed[0]["dialled"], "100", "{listed}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answered = false;
        while let Some(event) = events.next_before(deadline) {
            if event.name == "call" && event.data.contains("\"answered\"") {
                answered = true;
                break;
            }
        }
        assert!(answered, "an answered call leg on the stream");
        call.join()
            .expect("the caller thread")
            .assert_all_succeeded(1);
    });
    let records = wait_for(Duration::from_secs(10), || {
        let r = acme.get("/api/v1/call-records?limit=5").json();
        (r.as_array().map(Vec::len) == Some(1)).then_some(r)
    })
    .expect("a call record");
    assert_eq!(records[0]["outcome"], "answered", "{records}");
    assert_eq!(records[0]["answered_by"], "100", "{records}");
    assert_problem(
        &acme.get("/api/v1/call-records?limit=0"),
        422,
        Some("limit"),
    );
    // A deleted extension leaves the consoles' grids.
    assert_eq!(acme.delete("/api/v1/extensions/101").status, 204);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut removed = None;
    while let Some(event) = events.next_before(deadline) {
        if event.name == "removed" {
            removed = Some(event.data);
            break;
        }
    }
    assert_eq!(removed.as_deref(), Some(r#"{"extension":"101"}"#));
    drop(phone);
}

#[test]
fn groups_contacts_and_policies() {
    let s = setup("api-resources");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let beta = pbx.api().with_token(&s.beta);
    for n in ["100", "101"] {
        acme.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": n, "name": n}),
        );
    }

    // Groups.
    let group = json!({"number": "600", "name": "Sales", "strategy": "round-robin",
        "members": ["100", "101"], "ring_timeout_secs": 15, "no_answer": "voicemail"});
    let r = acme.json("POST", "/api/v1/groups", &group);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["kind"], "ring_group");
    assert_problem(&acme.json("POST", "/api/v1/groups", &group), 409, None);
    assert_problem(
        &acme.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": "600", "name": "Clash"}),
        ),
        409,
        None,
    );
    let mut changed = group.clone();
    changed["members"] = json!(["101"]);
    changed["strategy"] = json!("hunt");
    let r = acme.json("PUT", "/api/v1/groups/600", &changed);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        acme.get("/api/v1/groups/600").json()["members"],
        json!(["101"])
    );
    let mut bad = group.clone();
    bad["members"] = json!(["999"]);
    bad["number"] = json!("601");
    assert_problem(&acme.json("POST", "/api/v1/groups", &bad), 404, None);
    bad["strategy"] = json!("loudest");
    assert_problem(
        &acme.json("POST", "/api/v1/groups", &bad),
        422,
        Some("strategy"),
    );
    assert_problem(&beta.get("/api/v1/groups/600"), 404, None);
    assert_eq!(acme.delete("/api/v1/groups/600").status, 204);
    assert_eq!(acme.get("/api/v1/groups").json(), json!([]));

    // Contacts.
    let r = acme.json(
        "POST",
        "/api/v1/contacts",
        &json!({"name": "Acme Plumbing", "number": "+15550199", "company": "Plumbers", "extension": "100"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        acme.get("/api/v1/contacts?q=plumb").json()[0]["id"],
        id.as_str()
    );
    assert_eq!(acme.get("/api/v1/contacts?q=nobody").json(), json!([]));
    assert_problem(&beta.get(&format!("/api/v1/contacts/{id}")), 404, None);
    assert_problem(
        &acme.json(
            "POST",
            "/api/v1/contacts",
            &json!({"name": "X", "number": "call me"}),
        ),
        422,
        Some("number"),
    );
    assert_problem(
        &acme.json(
            "POST",
            "/api/v1/contacts",
            &json!({"name": "X", "number": "1", "extension": "555"}),
        ),
        404,
        None,
    );
    let r = acme.json(
        "PUT",
        &format!("/api/v1/contacts/{id}"),
        &json!({"name": "Acme Plumbing Ltd", "number": "+15550199"}),
    );
    assert_eq!(r.json()["extension"], Value::Null, "{}", r.text());
    assert_eq!(acme.delete(&format!("/api/v1/contacts/{id}")).status, 204);
    assert_problem(&acme.delete(&format!("/api/v1/contacts/{id}")), 404, None);

    // Policies: a bad module is refused naming the body; an example is
    // uploaded, activated, tried, rolled back.
    let r = acme.request(
        "POST",
        "/api/v1/policies",
        Some(("application/wasm", b"\0asm not really")),
        &[],
    );
    assert_problem(&r, 422, Some("body"));
    let module = std::fs::read(policy_module("edgepbx_policy_example_sales_round_robin"))
        .expect("the example builds");
    let r = acme.request(
        "POST",
        "/api/v1/policies?activate=true",
        Some(("application/wasm", &module)),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["version"], 1);
    assert_eq!(r.json()["active"], true);
    assert_eq!(
        r.json()["uploader"],
        format!("key:{}", s.acme.split('_').nth(1).unwrap_or_default())
    );
    // Try decisions on sample calls against the live directory: the
    // active version (round-robin over the group), then the built-in one.
    acme.json("POST", "/api/v1/groups", &group);
    let r = acme.json(
        "POST",
        "/api/v1/policies/try",
        &json!({"call": {"caller": "100", "dialled": "600"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let tried = r.json();
    assert_eq!(tried["policy"], "version 1", "{tried}");
    assert!(tried.get("decision").is_some(), "{tried}");
    assert_problem(
        &acme.json("POST", "/api/v1/policies/7/activate", &json!({})),
        404,
        None,
    );
    assert_eq!(
        acme.json("POST", "/api/v1/policies/deactivate", &json!({}))
            .status,
        204
    );
    let builtin = acme.json(
        "POST",
        "/api/v1/policies/try",
        &json!({"call": {"caller": "100", "dialled": "101"}}),
    );
    assert_eq!(builtin.status, 200, "{}", builtin.text());
    assert_eq!(builtin.json()["policy"], "builtin");
    assert_problem(
        &acme.json(
            "POST",
            "/api/v1/policies/try",
            &json!({"call": {"caller": "1 0", "dialled": "2"}}),
        ),
        422,
        Some("call.caller"),
    );
    assert_eq!(acme.get("/api/v1/policies").json()[0]["active"], false);
    assert_eq!(
        acme.json("POST", "/api/v1/policies/1/activate", &json!({}))
            .status,
        200
    );
    assert_eq!(beta.get("/api/v1/policies").json(), json!([]));
}

#[test]
fn csv_import_is_all_or_nothing_and_round_trips() {
    let s = setup("api-csv");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    acme.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "100", "name": "Existing", "aliases": ["boss"]}),
    );

    let header = "number,name,aliases,forward_busy,voicemail,follow_me,password\n";
    let mut rows: Vec<String> = (0..50)
        .map(|i| format!("{},User {i},,,yes,,pw-import-{i:04}\n", 2000 + i))
        .collect();
    rows[6] = "2006,User 6,boss,,yes,,pw-import-0006\n".into(); // alias taken by 100
    rows[20] = "2020,User 20,,not a number,no,,pw-import-0020\n".into();
    let bad: String = std::iter::once(header)
        .chain(rows.iter().map(String::as_str))
        .collect();

    let report = acme.import_extensions(&bad, true);
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(report["total"], 50);
    assert_eq!(report["processed"], 50);
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{report}");
    assert_eq!(
        (errors[0]["row"].as_u64(), errors[0]["field"].as_str()),
        (Some(8), Some("aliases"))
    );
    assert_eq!(
        (errors[1]["row"].as_u64(), errors[1]["field"].as_str()),
        (Some(22), Some("forward_busy"))
    );
    // A commit with errors writes nothing.
    let report = acme.import_extensions(&bad, false);
    assert_eq!(report["committed"], false, "{report}");
    assert_eq!(acme.get("/api/v1/extensions").json()["total"], 1);

    rows[6] = "2006,User 6,sixer,,yes,,pw-import-0006\n".into();
    rows[20] = "2020,User 20,,100,no,sequential:0612/20,pw-import-0020\n".into();
    let good: String = std::iter::once(header)
        .chain(rows.iter().map(String::as_str))
        .collect();
    let report = acme.import_extensions(&good, false);
    assert_eq!(
        (report["committed"].as_bool(), report["created"].as_u64()),
        (Some(true), Some(50)),
        "{report}"
    );
    assert_eq!(acme.get("/api/v1/extensions").json()["total"], 51);
    assert_eq!(
        acme.get("/api/v1/extensions/2020").json()["follow_me"]["mode"],
        "sequential"
    );
    assert_eq!(
        acme.get("/api/v1/extensions/2006/password").json()["password"],
        "pw-import-0006"
    );

    // A file without a column keeps that setting; an alias may move from
    // one row's extension to another's.
    acme.json(
        "PATCH",
        "/api/v1/extensions/100",
        &json!({"caller_id": {"inbound_prefix": "Sales: "}}),
    );
    // A name a spreadsheet would run as a formula.
    let formula = "=HYPERLINK(\"http://evil.test\",\"Boss\")";
    let r = acme.json(
        "PATCH",
        "/api/v1/extensions/2030",
        &json!({"name": formula}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let report = acme.import_extensions(
        "number,name,aliases\n100,Existing,\n2006,User 6,sixer;boss\n2020,User Twenty,\n",
        false,
    );
    assert_eq!(report["committed"], true, "{report}");
    assert_eq!(
        acme.get("/api/v1/extensions/2006").json()["aliases"],
        json!(["sixer", "boss"])
    );
    let kept = acme.get("/api/v1/extensions/2020").json();
    assert_eq!(kept["name"], "User Twenty");
    assert_eq!(kept["follow_me"]["mode"], "sequential", "{kept}");
    assert_eq!(kept["forwarding"]["busy"], "100", "{kept}");

    // Export, import the export, export again: the same file (the
    // prefix's trailing space included).
    let first = acme.get("/api/v1/extensions/export.csv");
    assert_eq!(first.status, 200);
    assert!(
        first
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/csv"))
    );
    let report = acme.import_extensions(&first.text(), false);
    assert_eq!(
        (report["committed"].as_bool(), report["updated"].as_u64()),
        (Some(true), Some(51)),
        "{report}"
    );
    let second = acme.get("/api/v1/extensions/export.csv");
    assert_eq!(first.text(), second.text());
    assert!(second.text().contains(",Sales: ,"), "{}", second.text());
    // Exported as text (an apostrophe in front), imported back as it was.
    assert!(
        second.text().contains("2030,\"'=HYPERLINK("),
        "{}",
        second.text()
    );
    assert_eq!(acme.get("/api/v1/extensions/2030").json()["name"], formula);
    let some = acme
        .get("/api/v1/extensions/export.csv?numbers=2006,2020")
        .text();
    assert_eq!(some.lines().count(), 3, "{some}");
    assert!(some.contains("boss"));

    // A malformed file is refused before any job starts.
    let r = acme.request(
        "POST",
        "/api/v1/imports",
        Some(("text/csv", b"number,colour\n1,red\n")),
        &[],
    );
    assert_problem(&r, 422, Some("colour"));
    // Another tenant cannot read the job.
    let beta = pbx.api().with_token(&s.beta);
    let r = acme.request(
        "POST",
        "/api/v1/imports",
        Some(("text/csv", good.as_bytes())),
        &[],
    );
    let id = r.json()["id"].as_str().unwrap_or_default().to_owned();
    assert_problem(&beta.get(&format!("/api/v1/imports/{id}")), 404, None);
    acme.import_finished(&id);
}

/// Two clients edit the same extension: the one whose `If-Match` names the
/// version it read wins, the other gets 412 and overwrites nothing.
#[test]
fn if_match_keeps_a_change_from_being_overwritten() {
    let s = setup("api-if-match");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let created = acme.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "300", "name": "Shared"}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let read = acme.get("/api/v1/extensions/300");
    let tag = read.header("etag").unwrap_or_default().to_owned();
    assert!(tag.starts_with('"') && tag.len() > 2, "{tag:?}");
    assert_eq!(read.json()["etag"], tag.as_str());

    let patch = |name: &str, if_match: &str| {
        let body = json!({ "name": name }).to_string();
        acme.request(
            "PATCH",
            "/api/v1/extensions/300",
            Some(("application/merge-patch+json", body.as_bytes())),
            &[("If-Match", if_match)],
        )
    };
    let first = patch("First", &tag);
    assert_eq!(first.status, 200, "{}", first.text());
    let new_tag = first.header("etag").unwrap_or_default().to_owned();
    assert_ne!(new_tag, tag);
    assert_eq!(first.json()["etag"], new_tag.as_str());

    // The second client read before the first one's change.
    assert_problem(&patch("Second", &tag), 412, None);
    assert_problem(&patch("Second", &format!("W/{new_tag}")), 412, None);
    assert_problem(&patch("Second", "not a tag"), 412, None);
    let delete = |if_match: &str| {
        acme.request(
            "DELETE",
            "/api/v1/extensions/300",
            None,
            &[("If-Match", if_match)],
        )
    };
    assert_problem(&delete(&tag), 412, None);
    assert_eq!(acme.get("/api/v1/extensions/300").json()["name"], "First");

    // A list naming the current version, or `*`, matches.
    let listed = patch("Third", &format!("\"0\", {new_tag}"));
    assert_eq!(listed.status, 200, "{}", listed.text());
    let any = patch("Fourth", "*");
    assert_eq!(any.status, 200, "{}", any.text());
    let current = any.header("etag").unwrap_or_default().to_owned();
    assert_eq!(delete(&current).status, 204);
    assert_eq!(acme.get("/api/v1/extensions/300").status, 404);
}

/// Clients that patch different fields of one extension at the same time,
/// without If-Match, lose nothing: each patch applies to the version it
/// is written against.
#[test]
fn concurrent_patches_of_different_fields_are_all_kept() {
    let s = setup("api-concurrent-patch");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let created = acme.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "310", "name": "Round 0", "ring_timeout_secs": 10}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    for round in 1..=15u64 {
        let name = format!("Round {round}");
        let timeout = 10 + round;
        let patches = [
            json!({ "name": name }),
            json!({ "ring_timeout_secs": timeout }),
        ];
        std::thread::scope(|scope| {
            for patch in &patches {
                let acme = acme.clone();
                scope.spawn(move || {
                    let body = patch.to_string();
                    let r = acme.request(
                        "PATCH",
                        "/api/v1/extensions/310",
                        Some(("application/merge-patch+json", body.as_bytes())),
                        &[],
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                });
            }
        });
        let now = acme.get("/api/v1/extensions/310").json();
        assert_eq!(now["name"], name.as_str(), "round {round}: {now}");
        assert_eq!(now["ring_timeout_secs"], timeout, "round {round}: {now}");
    }
}

/// A bulk action writes each extension against the version it read: a
/// PATCH of another field that lands in between is kept.
#[test]
fn a_bulk_change_keeps_a_concurrent_patch() {
    let s = setup("api-concurrent-bulk");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    for number in ["320", "321"] {
        let created = acme.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": number, "name": "Round 0"}),
        );
        assert_eq!(created.status, 201, "{}", created.text());
    }
    for round in 1..=15u32 {
        let name = format!("Round {round}");
        let on = round % 2 == 1;
        let action = if on { "voicemail_on" } else { "voicemail_off" };
        std::thread::scope(|scope| {
            let bulk = acme.clone();
            scope.spawn(move || {
                let r = bulk.json(
                    "POST",
                    "/api/v1/extensions/bulk",
                    &json!({"numbers": ["320", "321"], "action": action}),
                );
                assert_eq!(r.status, 200, "{}", r.text());
            });
            let patch = acme.clone();
            let name = &name;
            scope.spawn(move || {
                let body = json!({ "name": name }).to_string();
                let r = patch.request(
                    "PATCH",
                    "/api/v1/extensions/320",
                    Some(("application/merge-patch+json", body.as_bytes())),
                    &[],
                );
                assert_eq!(r.status, 200, "{}", r.text());
            });
        });
        let now = acme.get("/api/v1/extensions/320").json();
        assert_eq!(now["name"], name.as_str(), "round {round}: {now}");
        assert_eq!(now["voicemail"]["enabled"], on, "round {round}: {now}");
    }
}

/// A CSV import writes against the versions it read: a PATCH of a column
/// the file does not have, landing while the import runs, is kept.
#[test]
fn a_csv_import_keeps_a_concurrent_patch() {
    let s = setup("api-concurrent-import");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let created = acme.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "330", "name": "Round 0", "ring_timeout_secs": 10}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    for round in 1..=12u64 {
        let name = format!("Round {round}");
        let timeout = 10 + round;
        std::thread::scope(|scope| {
            let importer = acme.clone();
            let name = &name;
            scope.spawn(move || {
                let report =
                    importer.import_extensions(&format!("number,name\n330,{name}\n"), false);
                assert_eq!(report["state"], "done", "{report}");
                assert_eq!(report["committed"], true, "{report}");
            });
            let patcher = acme.clone();
            scope.spawn(move || {
                let body = json!({ "ring_timeout_secs": timeout }).to_string();
                let r = patcher.request(
                    "PATCH",
                    "/api/v1/extensions/330",
                    Some(("application/merge-patch+json", body.as_bytes())),
                    &[],
                );
                assert_eq!(r.status, 200, "{}", r.text());
            });
        });
        let now = acme.get("/api/v1/extensions/330").json();
        assert_eq!(now["name"], name.as_str(), "round {round}: {now}");
        assert_eq!(now["ring_timeout_secs"], timeout, "round {round}: {now}");
    }
}

/// Policy tries are expensive work a tenant can start at will: one
/// tenant's pile of tries of a module that spins until its deadline is
/// refused beyond a small queue (503, nothing crashes), while another
/// tenant's try still gets its answer.
#[test]
fn a_tenants_pile_of_slow_tries_is_refused_beyond_its_queue() {
    let s = setup("api-try-gate");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let beta = pbx.api().with_token(&s.beta);
    let module = std::fs::read(policy_module("edgepbx_policy_hostile")).expect("it builds");
    let r = acme.request(
        "POST",
        "/api/v1/policies",
        Some(("application/wasm", &module)),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let version = r.json()["version"].clone();
    let spin = json!({"version": version, "call": {"caller": "100", "dialled": "loop"}});
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let tries: Vec<_> = (0..10)
            .map(|_| {
                let acme = acme.clone();
                let spin = &spin;
                scope.spawn(move || acme.json("POST", "/api/v1/policies/try", spin))
            })
            .collect();
        // While acme's tries run and wait, beta's is answered.
        std::thread::sleep(Duration::from_millis(300));
        let asked = Instant::now();
        let theirs = beta.json(
            "POST",
            "/api/v1/policies/try",
            &json!({"call": {"caller": "100", "dialled": "101"}}),
        );
        assert_eq!(theirs.status, 200, "{}", theirs.text());
        // Not behind acme's pile, which holds at least 4 s of tries: a
        // lane shared by both tenants would make beta wait for it.
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "beta waited {:?}",
            asked.elapsed()
        );
        tries
            .into_iter()
            .map(|t| {
                let r = t.join().expect("a try returns");
                if r.status == 503 {
                    assert_problem(&r, 503, None);
                }
                r.status
            })
            .collect()
    });
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    assert!(refused >= 1, "no try was refused: {statuses:?}");
    assert!(
        refused < statuses.len(),
        "every try was refused: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 503 || s < 500),
        "{statuses:?}"
    );
    // Once the pile is gone, acme's tries are taken again.
    let r = acme.json(
        "POST",
        "/api/v1/policies/try",
        &json!({"version": version, "call": {"caller": "100", "dialled": "other"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Groups take part in conditional writes as extensions do: a replacement
/// or removal with a stale `ETag` is refused and changes nothing, a read
/// sent back whole (its `etag` field included) is a valid replacement, and
/// removing a member extension is a change of the group.
#[test]
fn if_match_keeps_a_group_change_from_being_overwritten() {
    let s = setup("api-group-if-match");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    for number in ["301", "302"] {
        let r = acme.json(
            "POST",
            "/api/v1/extensions",
            &json!({"number": number, "name": format!("Agent {number}")}),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let created = acme.json(
        "POST",
        "/api/v1/groups",
        &json!({"number": "600", "name": "Sales", "members": ["301", "302"]}),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let tag = created.header("etag").unwrap_or_default().to_owned();
    assert!(tag.starts_with('"') && tag.len() > 2, "{tag:?}");
    assert_eq!(created.json()["etag"], tag.as_str());
    let read = acme.get("/api/v1/groups/600");
    assert_eq!(read.header("etag"), Some(tag.as_str()));
    assert_eq!(acme.get("/api/v1/groups").json()[0]["etag"], tag.as_str());

    let put = |body: &Value, if_match: &str| {
        acme.request(
            "PUT",
            "/api/v1/groups/600",
            Some(("application/json", body.to_string().as_bytes())),
            &[("If-Match", if_match)],
        )
    };
    let delete = |if_match: &str| {
        acme.request(
            "DELETE",
            "/api/v1/groups/600",
            None,
            &[("If-Match", if_match)],
        )
    };
    let mut body = read.json();
    body["name"] = json!("First");
    let first = put(&body, &tag);
    assert_eq!(first.status, 200, "{}", first.text());
    let first_tag = first.header("etag").unwrap_or_default().to_owned();
    assert_ne!(first_tag, tag);
    assert_eq!(first.json()["etag"], first_tag.as_str());

    // The second client read before the first one's change.
    body["name"] = json!("Second");
    assert_problem(&put(&body, &tag), 412, None);
    assert_problem(&put(&body, &format!("W/{first_tag}")), 412, None);
    assert_problem(&delete(&tag), 412, None);
    assert_eq!(acme.get("/api/v1/groups/600").json()["name"], "First");

    // Taking a member out of the tenant changes the group's version too.
    assert_eq!(
        acme.request("DELETE", "/api/v1/extensions/302", None, &[])
            .status,
        204
    );
    let after = acme.get("/api/v1/groups/600");
    assert_eq!(after.json()["members"], json!(["301"]));
    let after_tag = after.header("etag").unwrap_or_default().to_owned();
    assert_ne!(after_tag, first_tag);
    assert_problem(&put(&body, &first_tag), 412, None);

    // BETA neither sees nor removes it; `*` or the current tag does.
    let beta = pbx.api().with_token(&s.beta);
    assert_eq!(
        beta.request("DELETE", "/api/v1/groups/600", None, &[("If-Match", "*")])
            .status,
        404
    );
    body["members"] = json!(["301"]);
    assert_eq!(put(&body, "*").status, 200);
    let current = acme.get("/api/v1/groups/600");
    assert_eq!(current.json()["name"], "Second");
    let current_tag = current.header("etag").unwrap_or_default().to_owned();
    assert_eq!(delete(&current_tag).status, 204);
    assert_eq!(acme.get("/api/v1/groups/600").status, 404);
}

/// Contacts too: a stale `ETag` changes nothing, the current one (or `*`)
/// applies, and an id given twice is a conflict rather than an overwrite.
#[test]
fn if_match_keeps_a_contact_change_from_being_overwritten() {
    let s = setup("api-contact-if-match");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let plumber = json!({"id": "plumber", "name": "Plumber", "number": "+15550199"});
    let created = acme.json("POST", "/api/v1/contacts", &plumber);
    assert_eq!(created.status, 201, "{}", created.text());
    let tag = created.header("etag").unwrap_or_default().to_owned();
    assert_eq!(created.json()["etag"], tag.as_str());
    assert_problem(&acme.json("POST", "/api/v1/contacts", &plumber), 409, None);
    let read = acme.get("/api/v1/contacts/plumber");
    assert_eq!(read.header("etag"), Some(tag.as_str()));

    let put = |name: &str, if_match: &str| {
        let mut body = read.json();
        body["name"] = json!(name);
        acme.request(
            "PUT",
            "/api/v1/contacts/plumber",
            Some(("application/json", body.to_string().as_bytes())),
            &[("If-Match", if_match)],
        )
    };
    let first = put("Plumber Pete", &tag);
    assert_eq!(first.status, 200, "{}", first.text());
    let first_tag = first.header("etag").unwrap_or_default().to_owned();
    assert_ne!(first_tag, tag);
    assert_problem(&put("Plumber Paul", &tag), 412, None);
    let delete = |if_match: &str| {
        acme.request(
            "DELETE",
            "/api/v1/contacts/plumber",
            None,
            &[("If-Match", if_match)],
        )
    };
    assert_problem(&delete(&tag), 412, None);
    assert_eq!(
        acme.get("/api/v1/contacts/plumber").json()["name"],
        "Plumber Pete"
    );
    assert_eq!(put("Plumber Paul", "*").status, 200);
    let current = acme.get("/api/v1/contacts/plumber");
    assert_eq!(current.json()["name"], "Plumber Paul");
    let current_tag = current.header("etag").unwrap_or_default().to_owned();
    assert_eq!(delete(&current_tag).status, 204);
    assert_eq!(acme.get("/api/v1/contacts/plumber").status, 404);
}

#[test]
fn an_extension_created_through_the_api_registers_with_its_password() {
    let s = setup("api-register");
    let pbx = s.deployment.start();
    let acme = pbx.api().with_token(&s.acme);
    let r = acme.json(
        "POST",
        "/api/v1/extensions",
        &json!({"number": "300", "name": "New"}),
    );
    let password = r.json()["password"].as_str().unwrap_or_default().to_owned();
    let ext = Extension {
        tenant: "ACME".into(),
        domain: "acme.test".into(),
        number: "300".into(),
        password,
    };
    let dir = s.deployment.work().path();
    let phone = Device::start(
        dir,
        &pbx,
        &ext,
        "new",
        Behaviour::Answer,
        Duration::from_secs(20),
    );
    wait_for_bindings(&pbx, &ext, 1);
    let e = wait_for(Duration::from_secs(5), || {
        let e = acme.get("/api/v1/extensions/300").json();
        (e["status"] == "online").then_some(e)
    })
    .expect("online in the API");
    assert_eq!(e["devices"], 1);
    drop(phone);
}

#[test]
fn the_api_is_served_over_https_with_secure_cookies() {
    edgepbx_e2e::require_program("curl");
    let certs = edgepbx_e2e::workdir::Workdir::new("https-certs");
    let (cert, key) = edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1"]);
    let toml = format!(
        "{CALL_CONFIG}[http]\ncert = {:?}\nkey = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    let deployment = Deployment::with_config("api-https", &toml);
    deployment.add_tenant("ACME", "acme.test");
    deployment.add_console_user("admin@acme.test", Some("ACME"), "acme password 1");
    let pbx = deployment.start();
    let url = format!("https://{}/api/v1/session", pbx.http());
    let out = std::process::Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(&cert)
        .args(["-H", "Content-Type: application/json", "--data"])
        .arg(r#"{"email":"admin@acme.test","password":"acme password 1"}"#)
        .arg(&url)
        .output()
        .expect("curl runs");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP on the HTTPS port gets nowhere.
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{}/api/v1/openapi.json", pbx.http()))
        .output()
        .expect("curl runs");
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}
