//! Desk-phone provisioning end to end: phones' files fetched over HTTPS
//! as each vendor's phone fetches them (its User-Agent, the tenant's
//! credential, curl verifying the test certificate), parsed, and the
//! account in them registered and called with by SIPp; nothing served
//! without the credential; MAC guessing blocked; a changed phone told to
//! resync by a NOTIFY it receives.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use edgepbx_e2e::pbx::{Deployment, RunningPbx};
use edgepbx_e2e::phones::{Behaviour, CALL_CONFIG, Device, wait_for_bindings};
use edgepbx_e2e::sipp::Sipp;
use edgepbx_e2e::{require_program, sipp_dir, wait_for};

const YEALINK_MAC: &str = "80:5E:C0:12:34:56";
const YEALINK_AGENT: &str = "Yealink SIP-T46U 108.86.0.20 80:5e:c0:12:34:56";
const GRANDSTREAM_MAC: &str = "000B82ABCDEF";
const GRANDSTREAM_AGENT: &str = "Grandstream Model HW GXP2170 SW 1.0.11.6 DevId 000b82abcdef";

/// An HTTPS GET as a phone makes it.
struct Fetch<'a> {
    path: &'a str,
    agent: &'a str,
    credential: Option<(&'a str, &'a str)>,
    /// The local address to fetch from (another 127/8 address is another
    /// source).
    from: &'a str,
}

/// Status and body.
fn fetch(pbx: &RunningPbx, ca: &Path, f: &Fetch<'_>) -> (u16, String) {
    let mut args = vec!["--interface", f.from, "-A", f.agent];
    let basic = f
        .credential
        .map(|(user, password)| format!("{user}:{password}"));
    if let Some(basic) = &basic {
        args.extend(["-u", basic]);
    }
    curl(pbx, ca, &args, f.path)
}

/// curl with `args` on `path` of the server's HTTPS listener, verifying
/// its certificate against `ca`: status and body.
fn curl(pbx: &RunningPbx, ca: &Path, args: &[&str], path: &str) -> (u16, String) {
    let out = Command::new(require_program("curl"))
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("https://127.0.0.1:{}{path}", pbx.http().port()))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

/// A JSON answer of the API, through curl with a bearer key.
fn api(pbx: &RunningPbx, ca: &Path, key: &str, method: &str, path: &str) -> serde_json::Value {
    let bearer = format!("Authorization: Bearer {key}");
    let (status, body) = curl(pbx, ca, &["-X", method, "-H", &bearer], path);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A Yealink `.cfg` file's settings.
fn yealink_settings(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The text of `<P{n}>` in a Grandstream file, unescaped.
fn p_value(xml: &str, n: u32) -> String {
    let open = format!("<P{n}>");
    let value = xml
        .split(&open)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no P{n} in\n{xml}"));
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The tenant's provisioning password, set with the CLI.
fn provisioning_password(deployment: &Deployment) -> String {
    let out = deployment.admin(&["tenant", "provisioning", "ACME"]);
    out.lines()
        .last()
        .unwrap_or_else(|| panic!("no password printed:\n{out}"))
        .trim()
        .to_owned()
}

fn deployment(name: &str, ca: &Path, key: &Path) -> Deployment {
    Deployment::with_config(
        name,
        &format!(
            "{CALL_CONFIG}[http]\ncert = {:?}\nkey = {:?}\n\
             [provisioning]\nmax_failures = 20\ntime_zone = \"Europe/Berlin\"\n",
            ca.display().to_string(),
            key.display().to_string()
        ),
    )
}

#[test]
fn phones_provision_themselves_and_register_with_what_they_fetched() {
    let certs = edgepbx_e2e::workdir::Workdir::new("provisioning-certs");
    let (ca, key) = edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1"]);
    let deployment = deployment("provisioning", &ca, &key);
    let mut exts = deployment.acme_with([100, 101, 102]);
    let (alice, bob, carol) = (exts.remove(0), exts.remove(0), exts.remove(0));
    let password = provisioning_password(&deployment);
    deployment.admin(&[
        "device",
        "add",
        "ACME",
        YEALINK_MAC,
        "--extension",
        "100",
        "--model",
        "T46U",
        "--blf",
        "101=Bob,102",
    ]);
    deployment.admin(&[
        "device",
        "add",
        "acme",
        GRANDSTREAM_MAC,
        "--extension",
        "102",
        "--blf",
        "100",
    ]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let as_phone = |path, agent, credential| Fetch {
        path,
        agent,
        credential,
        from: "127.0.0.1",
    };
    let right = Some(("ACME", password.as_str()));

    // Without the credential nothing is served, known MAC or not.
    for path in [
        "/prov/ACME/805ec0123456.cfg",
        "/prov/ACME/y000000000000.cfg",
        "/prov/ACME/001565000001.cfg",
    ] {
        let (status, body) = fetch(&pbx, &ca, &as_phone(path, YEALINK_AGENT, None));
        assert_eq!(status, 401, "{path}: {body}");
        assert!(!body.contains("password"), "{body}");
    }

    // The Yealink phone: its common file (nothing secret), then its own.
    let (status, common) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/y000000000000.cfg", YEALINK_AGENT, right),
    );
    assert_eq!(status, 200, "{common}");
    assert!(common.starts_with("#!version:1.0.0.1"), "{common}");
    assert!(!common.contains("account."), "{common}");
    let (status, own) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/805ec0123456.cfg", YEALINK_AGENT, right),
    );
    assert_eq!(status, 200, "{own}");
    let s = yealink_settings(&own);
    assert_eq!(s["account.1.user_name"], "100-ACME");
    assert_eq!(s["account.1.auth_name"], "100-ACME");
    assert_eq!(s["account.1.password"], alice.password);
    assert_eq!(s["account.1.sip_server.1.address"], "127.0.0.1");
    assert_eq!(
        s["account.1.sip_server.1.port"],
        pbx.udp().port().to_string()
    );
    assert_eq!(s["account.1.sip_server.1.transport_type"], "0");
    // The BLF keys, after the account's own line key: each is a dialog
    // subscription target the phone will use.
    assert_eq!(s["linekey.2.type"], "16");
    assert_eq!(s["linekey.2.value"], "101");
    assert_eq!(s["linekey.2.label"], "Bob");
    assert_eq!(s["linekey.3.value"], "102");
    assert_eq!(s["features.feature_key_sync.enable"], "1");
    assert!(
        s["remote_phonebook.data.1.url"].ends_with("/prov/ACME/phonebook.xml"),
        "{own}"
    );
    let (status, book) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/phonebook.xml", YEALINK_AGENT, right),
    );
    assert_eq!(status, 200, "{book}");
    assert!(book.contains("<YealinkIPPhoneDirectory>"), "{book}");
    assert!(book.contains("<Telephone>102</Telephone>"), "{book}");

    // The Grandstream phone's file and phonebook.
    let (status, xml) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/cfg000b82abcdef.xml", GRANDSTREAM_AGENT, right),
    );
    assert_eq!(status, 200, "{xml}");
    assert_eq!(p_value(&xml, 35), "102-ACME");
    assert_eq!(p_value(&xml, 34), carol.password);
    assert_eq!(p_value(&xml, 47), format!("127.0.0.1:{}", pbx.udp().port()));
    let (gs_server, gs_port) = p_value(&xml, 47)
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .expect("host:port");
    assert_eq!(gs_port, pbx.udp().port().to_string());
    Sipp::new("device_register", pbx.udp())
        .account(&gs_server, &p_value(&xml, 35), &p_value(&xml, 34))
        .key("device", "grandstream")
        .arg("-d")
        .arg("1")
        .run(deployment.work().path(), "grandstream-register")
        .assert_all_succeeded(1);
    let (status, book) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/phonebook.xml", GRANDSTREAM_AGENT, right),
    );
    assert_eq!(status, 200, "{book}");
    assert!(book.contains("<AddressBook>"), "{book}");
    // A Yealink file asked for by a Grandstream MAC is no file.
    let (status, _) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/000b82abcdef.cfg", YEALINK_AGENT, right),
    );
    assert_eq!(status, 404);

    // A phone asks for its own file only: the Yealink phone asking for
    // another MAC's is refused.
    let (status, _) = fetch(
        &pbx,
        &ca,
        &as_phone("/prov/ACME/001565000001.cfg", YEALINK_AGENT, right),
    );
    assert_eq!(status, 404);

    // The fetches are recorded and shown.
    let key = deployment.api_key("ACME", true);
    let device = api(&pbx, &ca, &key, "GET", "/api/v1/devices/805EC0123456");
    assert_eq!(
        device["last_provisioned"]["file"], "805ec0123456.cfg",
        "{device}"
    );
    assert_eq!(device["last_provisioned"]["user_agent"], YEALINK_AGENT);

    // Bob's desk phone answers; the Yealink phone, set up with nothing but
    // what it fetched, registers and calls Bob.
    let desk = Device::start(
        dir,
        &pbx,
        &bob,
        "desk",
        Behaviour::Answer,
        Duration::from_secs(10),
    );
    wait_for_bindings(&pbx, &bob, 1);
    let server = &s["account.1.sip_server.1.address"];
    let user = &s["account.1.user_name"];
    let secret = &s["account.1.password"];
    let registered = Sipp::new("device_register", pbx.udp())
        .account(server, user, secret)
        .key("device", "yealink")
        .arg("-d")
        .arg("1")
        .run(dir, "yealink-register");
    registered.assert_all_succeeded(1);
    // Each phone calls Bob with the account its file gave it.
    let accounts = [
        (
            "yealink",
            server.clone(),
            user.clone(),
            secret.clone(),
            "100",
        ),
        (
            "grandstream",
            gs_server,
            p_value(&xml, 35),
            p_value(&xml, 34),
            "102",
        ),
    ];
    for (phone, server, user, secret, number) in accounts {
        Sipp::new("call", pbx.udp())
            .key("domain", &server)
            .key("user", &user)
            .key("password", &secret)
            .arg("-s")
            .arg("101")
            .auth_uri(&format!("101@{server}"))
            .arg("-d")
            .arg("1000")
            .run(dir, &format!("{phone}-call"))
            .assert_all_succeeded(1);
        // The newest record is this call's once it is written.
        let record = wait_for(Duration::from_secs(10), || {
            let record = deployment.last_call_record("ACME");
            (record["caller"] == number).then_some(record)
        })
        .unwrap_or_else(|| panic!("no record of {phone}'s call"));
        assert_eq!(record["answered_by"], "101", "{record}");
    }
    desk.finish();
}

#[test]
fn guessing_mac_addresses_blocks_the_guesser_and_no_one_else() {
    let certs = edgepbx_e2e::workdir::Workdir::new("provisioning-guess-certs");
    let (ca, key) = edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1"]);
    let deployment = deployment("provisioning-guess", &ca, &key);
    deployment.acme_with([100]);
    let password = provisioning_password(&deployment);
    deployment.admin(&["device", "add", "ACME", YEALINK_MAC, "--extension", "100"]);
    // Another tenant, its own phone and password.
    deployment.add_tenant("BETA", "beta.test");
    deployment.add_extension("BETA", "beta.test", "100", "pw-beta-100-Secret");
    let beta_password = deployment
        .admin(&["tenant", "provisioning", "BETA"])
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    deployment.admin(&[
        "device",
        "add",
        "BETA",
        GRANDSTREAM_MAC,
        "--extension",
        "100",
    ]);
    let pbx = deployment.start();
    // A tenant's credential fetches nothing of another tenant's, either way.
    let across = |path: &str, credential| {
        fetch(
            &pbx,
            &ca,
            &Fetch {
                path,
                agent: GRANDSTREAM_AGENT,
                credential,
                from: "127.0.0.6",
            },
        )
    };
    let (status, body) = across("/prov/BETA/cfg000b82abcdef.xml", Some(("ACME", &password)));
    assert_eq!(status, 401, "{body}");
    let (status, body) = across(
        "/prov/ACME/cfg000b82abcdef.xml",
        Some(("BETA", &beta_password)),
    );
    assert_eq!(status, 401, "{body}");
    let (status, body) = across("/prov/ACME/cfg000b82abcdef.xml", Some(("ACME", &password)));
    assert_eq!(status, 404, "{body}");
    let (status, body) = across(
        "/prov/BETA/cfg000b82abcdef.xml",
        Some(("BETA", &beta_password)),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<P35>100-BETA</P35>"), "{body}");
    let guesser = |path: &str, credential| {
        fetch(
            &pbx,
            &ca,
            &Fetch {
                path,
                agent: YEALINK_AGENT,
                credential,
                from: "127.0.0.3",
            },
        )
    };
    // Phones booting behind one address ask for every file first without
    // a credential (the challenge asks for it): that blocks nobody.
    let booting = |credential| {
        fetch(
            &pbx,
            &ca,
            &Fetch {
                path: "/prov/ACME/805ec0123456.cfg",
                agent: YEALINK_AGENT,
                credential,
                from: "127.0.0.5",
            },
        )
        .0
    };
    for _ in 0..30 {
        assert_eq!(booting(None), 401);
    }
    assert_eq!(booting(Some(("ACME", &password))), 200);
    // 50 guesses: random MAC addresses, with a wrong credential or the
    // right one.
    let mut statuses = Vec::new();
    for i in 0..50u32 {
        let path = format!("/prov/ACME/001565{:06x}.cfg", i * 7919 + 1);
        let credential = if i % 2 == 0 {
            Some(("ACME", "guess"))
        } else {
            Some(("ACME", password.as_str()))
        };
        statuses.push(guesser(&path, credential).0);
    }
    assert!(
        statuses.iter().take(20).all(|s| *s == 401 || *s == 404),
        "{statuses:?}"
    );
    assert!(statuses.iter().skip(25).all(|s| *s == 403), "{statuses:?}");
    // Blocked: even the right credential and a real phone's file.
    let (status, body) = guesser("/prov/ACME/805ec0123456.cfg", Some(("ACME", &password)));
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("password"), "{body}");
    // Another address is not blocked.
    let (status, body) = fetch(
        &pbx,
        &ca,
        &Fetch {
            path: "/prov/ACME/805ec0123456.cfg",
            agent: YEALINK_AGENT,
            credential: Some(("ACME", &password)),
            from: "127.0.0.4",
        },
    );
    assert_eq!(status, 200, "{body}");
    let log = pbx.log();
    assert!(
        log.contains("provisioning source throttled"),
        "the throttling is logged"
    );
    assert!(
        log.contains("provisioning source blocked"),
        "the block is logged"
    );
}

#[test]
fn a_changed_phone_is_told_to_fetch_its_files_again() {
    let certs = edgepbx_e2e::workdir::Workdir::new("provisioning-resync-certs");
    let (ca, key) = edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1"]);
    let deployment = deployment("provisioning-resync", &ca, &key);
    let alice = deployment.acme_with([100, 101]).remove(0);
    deployment.admin(&["device", "add", "ACME", YEALINK_MAC, "--extension", "100"]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let phone = Sipp::new("provisioned_phone", pbx.udp())
        .key("domain", "127.0.0.1")
        .key("user", &format!("{}-ACME", alice.number))
        .key("password", &alice.password)
        .key("agent", YEALINK_AGENT)
        .auth_uri("127.0.0.1")
        .arg("-d")
        .arg("15000")
        .arg("-oocsf")
        .arg(&sipp_dir().join("answer_notify.xml").to_string_lossy())
        .timeout(Duration::from_secs(40));
    let trace = dir.join("yealink").join("messages.log");
    let running = {
        let dir = dir.to_owned();
        std::thread::spawn(move || phone.run(&dir, "yealink"))
    };
    wait_for_bindings(&pbx, &alice, 1);
    let told = |times: usize| {
        wait_for(Duration::from_secs(10), || {
            let text = std::fs::read_to_string(&trace).ok()?;
            (text.matches("Event: check-sync;reboot=false").count() >= times).then_some(())
        })
        .is_some()
    };
    // A new BLF key: the registered phone is told at once.
    let out = deployment.admin(&[
        "device",
        "add",
        "ACME",
        YEALINK_MAC,
        "--extension",
        "100",
        "--blf",
        "101",
        "--replace",
    ]);
    assert!(
        out.contains("told to fetch its files (1 registration(s))"),
        "{out}"
    );
    assert!(told(1), "the phone got no check-sync");
    // The phone shows as registered: its User-Agent names its MAC.
    let key = deployment.api_key("ACME", false);
    let device = api(&pbx, &ca, &key, "GET", "/api/v1/devices/805ec0123456");
    assert_eq!(device["registered"]["transport"], "udp", "{device}");
    assert!(device["registered"]["last_seen"].is_string(), "{device}");
    // Resync by hand, through the API: told again.
    let r = api(
        &pbx,
        &ca,
        &key,
        "POST",
        "/api/v1/devices/805ec0123456/resync",
    );
    assert_eq!(r, serde_json::json!({"devices": 1, "notified": 1}));
    assert!(told(2), "the phone got no second check-sync");
    // A new password for its extension: the phone must fetch it.
    deployment.admin(&["ext", "passwd", "ACME", "100"]);
    assert!(told(3), "the phone was not told of its new password");
    let outcome = running.join().expect("the phone's thread");
    // The phone answered all three.
    let answered = outcome
        .received()
        .filter(|m| m.method() == Some("NOTIFY"))
        .count();
    assert_eq!(answered, 3, "{}", outcome.report());
}

#[test]
fn phones_import_from_csv_all_or_nothing_and_export_back() {
    let certs = edgepbx_e2e::workdir::Workdir::new("provisioning-csv-certs");
    let (ca, key) = edgepbx_e2e::certs::self_signed(certs.path(), &["IP:127.0.0.1"]);
    let deployment = deployment("provisioning-csv", &ca, &key);
    deployment.acme_with([100, 101]);
    let pbx = deployment.start();
    let dir = deployment.work().path();
    let key = deployment.api_key("ACME", false);
    let bearer = format!("Authorization: Bearer {key}");
    let import = |csv: &str, dry_run: bool| {
        let file = dir.join("devices.csv");
        std::fs::write(&file, csv).expect("a CSV file");
        let data = format!("@{}", file.display());
        let (status, body) = curl(
            &pbx,
            &ca,
            &[
                "-X",
                "POST",
                "-H",
                &bearer,
                "-H",
                "Content-Type: text/csv",
                "--data-binary",
                &data,
            ],
            &format!("/api/v1/devices/import.csv?dry_run={dry_run}"),
        );
        (status, body)
    };
    let report = |csv: &str, dry_run: bool| {
        let (status, body) = import(csv, dry_run);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("a report")
    };
    let listed = || api(&pbx, &ca, &key, "GET", "/api/v1/devices");

    // One bad row (an extension that does not exist, a MAC given twice, a
    // vendor nobody knows): its errors, and nothing written.
    let bad = "mac,extension,blf_keys,label,vendor\n\
               80:5e:c0:12:34:56,100,101=Bob;102,Front desk,\n\
               00:0b:82:ab:cd:ef,555,,,\n\
               805EC0123456,101,,,\n\
               52:54:00:12:34:56,101,,,\n";
    let r = report(bad, false);
    assert_eq!(r["committed"], false, "{r}");
    let errors = r["errors"].as_array().expect("errors");
    let at = |row: u64| {
        errors
            .iter()
            .find(|e| e["row"] == row)
            .map(|e| e["field"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(at(3).as_deref(), Some("extension"), "{r}");
    assert_eq!(at(4).as_deref(), Some("mac"), "{r}");
    assert_eq!(at(5).as_deref(), Some("vendor"), "{r}");
    assert_eq!(listed(), serde_json::json!([]));
    // An unknown column is refused as a whole.
    let (status, body) = import("mac,extension,colour\n", false);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("colour"), "{body}");

    // The good rows: a dry run writes nothing, a commit writes both.
    let good = "mac,extension,blf_keys,label\n\
                80:5e:c0:12:34:56,100,101=Bob;102,=Front desk\n\
                00:0b:82:ab:cd:ef,101,,\n";
    let r = report(good, true);
    assert_eq!(
        (r["created"].as_u64(), r["committed"].as_bool()),
        (Some(2), Some(false)),
        "{r}"
    );
    assert_eq!(listed(), serde_json::json!([]));
    let r = report(good, false);
    assert_eq!(r["committed"], true, "{r}");
    let phones = listed();
    assert_eq!(phones.as_array().map(Vec::len), Some(2), "{phones}");
    assert_eq!(phones[1]["vendor"], "yealink", "{phones}");
    assert_eq!(
        phones[1]["blf_keys"][0],
        serde_json::json!({"number": "101", "label": "Bob"})
    );
    assert_eq!(phones[1]["label"], "=Front desk");

    // The export imports back unchanged (the label that looks like a
    // formula goes out with an apostrophe).
    let (status, exported) = curl(&pbx, &ca, &["-H", &bearer], "/api/v1/devices/export.csv");
    assert_eq!(status, 200, "{exported}");
    assert!(exported.contains("'=Front desk"), "{exported}");
    let r = report(&exported, false);
    assert_eq!(
        (r["updated"].as_u64(), r["committed"].as_bool()),
        (Some(2), Some(true)),
        "{r}"
    );
    let again = listed();
    let strip = |v: &serde_json::Value| {
        let mut v = v.clone();
        for d in v.as_array_mut().into_iter().flatten() {
            d.as_object_mut().map(|o| o.remove("etag"));
        }
        v
    };
    assert_eq!(strip(&again), strip(&phones));
}

#[test]
fn plain_http_serves_no_provisioning_unless_allowed() {
    let deployment = Deployment::with_config("provisioning-http", CALL_CONFIG);
    deployment.acme_with([100]);
    let password = provisioning_password(&deployment);
    deployment.admin(&["device", "add", "ACME", YEALINK_MAC, "--extension", "100"]);
    let pbx = deployment.start();
    let out = Command::new(require_program("curl"))
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(["-u", &format!("ACME:{password}"), "-A", YEALINK_AGENT])
        .arg(format!(
            "http://127.0.0.1:{}/prov/ACME/805ec0123456.cfg",
            pbx.http().port()
        ))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
    assert_eq!(status.trim(), "403", "{text}");
    assert!(body.contains("HTTPS only"), "{body}");
    assert!(!body.contains("account."), "{body}");
}
