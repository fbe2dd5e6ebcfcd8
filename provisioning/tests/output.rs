//! The rendered files read back the way a phone reads them: every Yealink
//! line a setting, every XML document well formed, every value what went
//! in, and nothing where it must not be.

mod common;

use common::{
    GRANDSTREAM_PASSWORD, YEALINK_PASSWORD, blf, directory, grandstream_profile, parse_cfg,
    parse_xml, xml_value, yealink_profile,
};
use edgepbx_provisioning::{
    DEFAULT_LINE_KEYS, DirectoryEntry, LineKey, Mac, PhoneIdentity, PhoneProfile, RenderError,
    RequestedFile, SiteSettings, Vendor, common_file, device_file, phonebook, render,
};

fn yealink_settings(profile: &PhoneProfile) -> std::collections::BTreeMap<String, String> {
    let file = device_file(profile).expect("renders").file;
    parse_cfg(&file.body).expect("a phone reads it")
}

#[test]
fn yealink_device_file_reads_back_as_the_profile() {
    let profile = yealink_profile();
    let settings = yealink_settings(&profile);
    let get = |key: &str| settings.get(key).map(String::as_str);
    assert_eq!(get("account.1.enable"), Some("1"));
    assert_eq!(get("account.1.label"), Some("Alice Martin"));
    assert_eq!(get("account.1.user_name"), Some("100-DEMO"));
    assert_eq!(get("account.1.auth_name"), Some("100-DEMO"));
    assert_eq!(get("account.1.password"), Some(YEALINK_PASSWORD));
    assert_eq!(
        get("account.1.sip_server.1.address"),
        Some("pbx.example.com")
    );
    assert_eq!(get("account.1.sip_server.1.port"), Some("5060"));
    assert_eq!(get("account.1.sip_server.1.transport_type"), Some("0"));
    assert_eq!(get("account.1.sip_server.1.expires"), Some("3600"));
    assert_eq!(get("account.1.nat.udp_update_enable"), Some("1"));
    assert_eq!(get("account.1.nat.udp_update_time"), Some("30"));
    assert_eq!(get("features.feature_key_sync.enable"), Some("1"));
    assert_eq!(
        get("remote_phonebook.data.1.url"),
        Some("https://pbx.example.com/prov/DEMO/phonebook.xml")
    );
    assert_eq!(
        get("static.auto_provision.server.url"),
        Some("https://pbx.example.com/prov/DEMO/")
    );
    // Key 1 is the line; the profile's keys follow in order.
    assert_eq!(get("linekey.1.type"), Some("15"));
    for (n, kind, value, label) in [
        (2, "16", "101", "Bob"),
        (3, "16", "102", "Zoë & <Co>"),
        (4, "13", "*97", "Voicemail"),
        (5, "16", "103", "%NULL%"),
    ] {
        assert_eq!(get(&format!("linekey.{n}.type")), Some(kind), "key {n}");
        assert_eq!(get(&format!("linekey.{n}.line")), Some("1"), "key {n}");
        assert_eq!(get(&format!("linekey.{n}.value")), Some(value), "key {n}");
        assert_eq!(get(&format!("linekey.{n}.label")), Some(label), "key {n}");
    }
    // The rest of the T46S's 27 keys are cleared, none beyond.
    assert_eq!(get("linekey.6.type"), Some("0"));
    assert_eq!(get("linekey.27.type"), Some("0"));
    assert_eq!(get("linekey.28.type"), None);
}

#[test]
fn yealink_transports_and_switches_map_to_their_codes() {
    use edgepbx_provisioning::Transport;
    for (transport, code) in [
        (Transport::Udp, "0"),
        (Transport::Tcp, "1"),
        (Transport::Tls, "2"),
    ] {
        let mut profile = yealink_profile();
        profile.account.server.transport = transport;
        profile.account.keep_alive_secs = None;
        profile.feature_key_sync = false;
        profile.phonebook = None;
        profile.provisioning_url = None;
        let settings = yealink_settings(&profile);
        assert_eq!(
            settings["account.1.sip_server.1.transport_type"], code,
            "{transport:?}"
        );
        assert_eq!(settings["account.1.nat.udp_update_enable"], "0");
        assert!(!settings.contains_key("account.1.nat.udp_update_time"));
        assert_eq!(settings["features.feature_key_sync.enable"], "0");
        // A removed phonebook is cleared on the phone; an absent
        // provisioning URL leaves the phone's own alone.
        assert_eq!(settings["remote_phonebook.data.1.url"], "%NULL%");
        assert!(!settings.contains_key("static.auto_provision.server.url"));
    }
}

#[test]
fn the_common_file_holds_no_secret_and_no_account() {
    for profile in [yealink_profile(), grandstream_profile()] {
        let common = common_file(Vendor::Yealink, &profile.site)
            .expect("renders")
            .expect("Yealink has one");
        assert_eq!(common.name, "y000000000000.cfg");
        assert!(!common.secret);
        let settings = parse_cfg(&common.body).expect("a phone reads it");
        assert!(!settings.is_empty());
        for key in settings.keys() {
            assert!(key.starts_with("local_time."), "{key} in the common file");
        }
        let account = &profile.account;
        for secret in [&account.password, &account.user_name, &account.auth_name] {
            assert!(!common.body.contains(secret.as_str()), "{secret} leaked");
        }
        assert!(!common.body.contains("password"));
    }
    assert_eq!(
        common_file(Vendor::Grandstream, &yealink_profile().site),
        Ok(None)
    );
    // The device files are the secret ones.
    for file in render(&yealink_profile()).expect("renders").files {
        assert_eq!(
            file.secret,
            file.name != "y000000000000.cfg",
            "{}",
            file.name
        );
        // And their Debug output does not show a secret body.
        if file.secret {
            assert!(!format!("{file:?}").contains(YEALINK_PASSWORD));
        }
    }
}

/// Sets one field of a profile.
type SetField = fn(&mut PhoneProfile, String);
/// Changes a profile.
type Change = fn(&mut PhoneProfile);

/// Every text field of a profile, and a way to set it.
fn text_fields() -> Vec<(&'static str, SetField)> {
    vec![
        ("account.display_name", |p, v| p.account.display_name = v),
        ("account.user_name", |p, v| p.account.user_name = v),
        ("account.auth_name", |p, v| p.account.auth_name = v),
        ("account.password", |p, v| p.account.password = v),
        ("site.time_zone", |p, v| p.site.time_zone = v),
        ("phonebook.name", |p, v| {
            if let Some(phonebook) = p.phonebook.as_mut() {
                phonebook.name = v;
            }
        }),
        ("phonebook.url", |p, v| {
            if let Some(phonebook) = p.phonebook.as_mut() {
                phonebook.url = format!("https://pbx/{v}");
            }
        }),
        ("provisioning_url", |p, v| {
            p.provisioning_url = Some(format!("https://pbx/{v}"));
        }),
    ]
}

#[test]
fn no_value_can_start_a_new_line_or_setting() {
    let injections = [
        "x\naccount.1.password = stolen",
        "x\raccount.1.password = stolen",
        "x\r\n#!version:1.0.0.1",
        "x\u{2028}y\u{85}z", // Unicode line and next-line separators
        "x\u{0}y",
    ];
    for (field, set) in text_fields() {
        for injection in injections {
            for mut profile in [yealink_profile(), grandstream_profile()] {
                set(&mut profile, injection.to_owned());
                let result = render(&profile);
                // U+2028 is not a control character, but U+0085 in the
                // same value is; every injection is refused.
                assert!(
                    matches!(
                        result,
                        Err(RenderError::ControlCharacter { field: f }) if f == field
                    ),
                    "{field} = {injection:?} gave {result:?}"
                );
            }
        }
    }
    // Hosts refuse anything but host characters.
    let mut profile = yealink_profile();
    profile.account.server.host = "pbx\naccount.1.enable = 0".into();
    assert!(matches!(
        render(&profile),
        Err(RenderError::InvalidHost {
            field: "account.server.host",
            ..
        })
    ));
    let mut profile = grandstream_profile();
    profile.site.ntp_server = Some("ntp</P30><P34>x".into());
    assert!(matches!(
        render(&profile),
        Err(RenderError::InvalidHost {
            field: "site.ntp_server",
            ..
        })
    ));
    // Keys cannot carry one either: BlfKey refuses it at the source.
    assert!(edgepbx_provisioning::BlfKey::new("101", "Bob\nlinekey.1.type = 0").is_err());
    // And every line of every rendered Yealink file is a setting or a
    // comment (parse_cfg refuses anything else).
    for file in render(&yealink_profile()).expect("renders").files {
        parse_cfg(&file.body).expect("only settings and comments");
    }
}

#[test]
fn other_unsafe_values_are_refused_with_their_field() {
    let cases: Vec<(Change, RenderError)> = vec![
        (
            |p| p.account.password = String::new(),
            RenderError::Empty {
                field: "account.password",
            },
        ),
        (
            |p| p.account.password = " padded ".into(),
            RenderError::SurroundingSpace {
                field: "account.password",
            },
        ),
        (
            |p| p.account.display_name = "x".repeat(65),
            RenderError::TooLong {
                field: "account.display_name",
                max: 64,
            },
        ),
        (
            |p| p.account.registration_expiry_secs = 10,
            RenderError::OutOfRange {
                field: "account.registration_expiry_secs",
                value: 10,
                min: 60,
                max: 86_400,
            },
        ),
        (
            |p| p.account.keep_alive_secs = Some(0),
            RenderError::OutOfRange {
                field: "account.keep_alive_secs",
                value: 0,
                min: 10,
                max: 3_600,
            },
        ),
        (
            |p| p.account.server.port = 0,
            RenderError::OutOfRange {
                field: "account.server.port",
                value: 0,
                min: 1,
                max: 65_535,
            },
        ),
        (
            |p| p.provisioning_url = Some("ftp://pbx/".into()),
            RenderError::InvalidUrl {
                field: "provisioning_url",
            },
        ),
        (
            |p| p.model = Some("T46S\" -->".into()),
            RenderError::InvalidModel {
                value: "T46S\" -->".into(),
            },
        ),
    ];
    for (change, expected) in cases {
        for mut profile in [yealink_profile(), grandstream_profile()] {
            change(&mut profile);
            assert_eq!(render(&profile), Err(expected.clone()));
        }
    }
    // Errors never show the password.
    let mut profile = yealink_profile();
    profile.account.password = format!("{YEALINK_PASSWORD}\n");
    let error = render(&profile).expect_err("refused");
    assert!(!error.to_string().contains(YEALINK_PASSWORD));
    assert!(!format!("{profile:?}").contains(YEALINK_PASSWORD));
}

#[test]
fn grandstream_device_file_reads_back_as_the_profile() {
    let profile = grandstream_profile();
    let file = device_file(&profile).expect("renders").file;
    assert_eq!(file.name, "cfg000b82123456.xml");
    assert!(file.secret);
    let texts = parse_xml(&file.body).expect("well formed");
    let p = |n: u32| xml_value(&texts, &format!("gs_provision/config/P{n}"));
    assert_eq!(xml_value(&texts, "gs_provision/@version"), Some("1"));
    assert_eq!(xml_value(&texts, "gs_provision/mac"), Some("000b82123456"));
    assert_eq!(xml_value(&texts, "gs_provision/config/@version"), Some("1"));
    // Escaped values come back exactly.
    assert_eq!(p(34), Some(GRANDSTREAM_PASSWORD));
    assert_eq!(p(3), Some("Bob \"The Boss\" O'Neil"));
    assert_eq!(p(270), Some("Bob \"The Boss\" O'Neil"));
    assert_eq!(p(271), Some("1"));
    assert_eq!(p(47), Some("pbx.example.com:5061"));
    assert_eq!(p(35), Some("101-DEMO"));
    assert_eq!(p(36), Some("101-DEMO"));
    assert_eq!(p(130), Some("2"));
    assert_eq!(p(32), Some("60")); // 3599 s, rounded up to minutes
    assert_eq!(p(52), Some("0"));
    assert_eq!(p(84), None);
    assert_eq!(p(2325), Some("0"));
    assert_eq!(p(30), Some("time.example.com"));
    assert_eq!(p(330), Some("1"));
    assert_eq!(
        p(331),
        Some("pbx.example.com:8080/prov/DEMO/phonebook.xml?v=1&x=2")
    );
    assert_eq!(p(212), Some("2"));
    assert_eq!(p(237), Some("pbx.example.com/prov/DEMO"));
    // Keys: 1 the line, then BLF, BLF, speed dial.
    for (index, mode, description, value) in [
        (0, "0", "", ""),
        (1, "11", "Alice", "100"),
        (2, "11", "Carol <ops>", "102"),
        (3, "10", "Berlin office", "+4930123456"),
        (4, "0", "", ""),
    ] {
        assert_eq!(p(1363 + 2 * index), Some(mode), "key {}", index + 1);
        assert_eq!(p(1364 + 2 * index), Some("0"), "key {}", index + 1);
        assert_eq!(p(1465 + 2 * index), Some(description), "key {}", index + 1);
        assert_eq!(p(1466 + 2 * index), Some(value), "key {}", index + 1);
    }
    // Every P-value appears once.
    let mut names: Vec<&str> = texts.iter().map(|(path, _)| path.as_str()).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a P-value twice");
}

#[test]
fn grandstream_keep_alive_and_https_phonebook_map_to_their_codes() {
    let mut profile = grandstream_profile();
    profile.account.keep_alive_secs = Some(20);
    profile.feature_key_sync = true;
    if let Some(phonebook) = profile.phonebook.as_mut() {
        phonebook.url = "https://pbx.example.com/pb.xml".into();
    }
    profile.provisioning_url = Some("http://pbx.example.com/prov".into());
    let texts = parse_xml(&device_file(&profile).expect("renders").file.body).expect("xml");
    let p = |n: u32| xml_value(&texts, &format!("gs_provision/config/P{n}"));
    assert_eq!((p(52), p(84)), (Some("2"), Some("20")));
    assert_eq!(p(2325), Some("1"));
    assert_eq!(
        (p(330), p(331)),
        (Some("3"), Some("pbx.example.com/pb.xml"))
    );
    assert_eq!((p(212), p(237)), (Some("1"), Some("pbx.example.com/prov")));
    profile.phonebook = None;
    profile.provisioning_url = None;
    let texts = parse_xml(&device_file(&profile).expect("renders").file.body).expect("xml");
    let p = |n: u32| xml_value(&texts, &format!("gs_provision/config/P{n}"));
    assert_eq!((p(330), p(331), p(212)), (Some("0"), None, None));
}

#[test]
fn phonebooks_are_well_formed_and_escaped() {
    let entries = directory();
    let yealink = phonebook(Vendor::Yealink, &entries).expect("renders");
    assert!(!yealink.secret);
    let texts = parse_xml(&yealink.body).expect("well formed");
    let names: Vec<&str> = texts
        .iter()
        .filter(|(path, _)| path == "YealinkIPPhoneDirectory/DirectoryEntry/Name")
        .map(|(_, text)| text.as_str())
        .collect();
    let numbers: Vec<&str> = texts
        .iter()
        .filter(|(path, _)| path == "YealinkIPPhoneDirectory/DirectoryEntry/Telephone")
        .map(|(_, text)| text.as_str())
        .collect();
    let expected_names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let expected_numbers: Vec<&str> = entries.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(names, expected_names);
    assert_eq!(numbers, expected_numbers);

    let grandstream = phonebook(Vendor::Grandstream, &entries).expect("renders");
    let texts = parse_xml(&grandstream.body).expect("well formed");
    let names: Vec<&str> = texts
        .iter()
        .filter(|(path, _)| path == "AddressBook/Contact/FirstName")
        .map(|(_, text)| text.as_str())
        .collect();
    assert_eq!(names, expected_names);
    assert_eq!(
        xml_value(&texts, "AddressBook/Contact/Phone/accountindex"),
        Some("0")
    );
    assert_eq!(
        xml_value(&texts, "AddressBook/Contact/Phone/@type"),
        Some("Work")
    );

    // An empty directory is still a document.
    for vendor in Vendor::ALL {
        let file = phonebook(vendor, &[]).expect("renders");
        parse_xml(&file.body).expect("well formed");
    }
}

#[test]
fn phonebook_entries_are_checked() {
    let entry = |name: &str, number: &str| DirectoryEntry {
        name: name.into(),
        number: number.into(),
    };
    let mut entries = directory();
    entries.push(entry("Eve\n<x>", "100"));
    assert_eq!(
        phonebook(Vendor::Yealink, &entries),
        Err(RenderError::DirectoryEntry {
            index: 4,
            problem: Box::new(RenderError::ControlCharacter {
                field: "directory.name"
            }),
        })
    );
    assert!(matches!(
        phonebook(Vendor::Grandstream, &[entry("Eve", "100</phonenumber>")]),
        Err(RenderError::DirectoryEntry { index: 0, .. })
    ));
    assert!(matches!(
        phonebook(Vendor::Grandstream, &[entry("", "100")]),
        Err(RenderError::DirectoryEntry { index: 0, .. })
    ));
    let many = vec![entry("A", "1"); edgepbx_provisioning::MAX_DIRECTORY_ENTRIES + 1];
    assert!(matches!(
        phonebook(Vendor::Yealink, &many),
        Err(RenderError::TooManyEntries { .. })
    ));
}

/// `count` BLF keys 201, 202...
fn keys(count: usize) -> Vec<LineKey> {
    (0..count)
        .map(|i| blf(&(201 + i).to_string(), &format!("Key {i}")))
        .collect()
}

#[test]
fn yealink_keys_respect_the_models_count() {
    for (model, capacity) in [
        (Some("T31P"), 2),
        (Some("T33G"), 4),
        (Some("T43U"), 21),
        (Some("SIP-T46S"), 27),
        (Some("T46U"), 27),
        (Some("T48S"), 29),
        (Some("T53W"), 21),
        (Some("T54W"), 27),
        (Some("T57W"), 29),
        (Some("T99X"), DEFAULT_LINE_KEYS),
        (None, DEFAULT_LINE_KEYS),
    ] {
        for assigned in [0, 1, capacity - 1, capacity, capacity + 7] {
            let mut profile = yealink_profile();
            profile.model = model.map(str::to_owned);
            profile.keys = keys(assigned);
            let device = device_file(&profile).expect("renders");
            let settings = parse_cfg(&device.file.body).expect("a phone reads it");
            let written = assigned.min(capacity - 1);
            assert_eq!(
                device.dropped_keys,
                assigned - written,
                "{model:?} with {assigned}"
            );
            for n in 1..=capacity {
                assert!(
                    settings.contains_key(&format!("linekey.{n}.type")),
                    "{model:?}: key {n} missing"
                );
            }
            assert!(!settings.contains_key(&format!("linekey.{}.type", capacity + 1)));
            let blf_keys = settings
                .iter()
                .filter(|(k, v)| k.ends_with(".type") && *v == "16")
                .count();
            assert_eq!(blf_keys, written, "{model:?} with {assigned}");
        }
    }
}

#[test]
fn grandstream_keys_respect_the_models_count() {
    for (model, capacity) in [
        (Some("GXP2130"), 3),
        (Some("GXP2140"), 4),
        (Some("GXP2160"), 6),
        (Some("GXP2170"), 12),
        (Some("GRP2615"), 40),
        (None, DEFAULT_LINE_KEYS),
    ] {
        let mut profile = grandstream_profile();
        profile.model = model.map(str::to_owned);
        profile.keys = keys(capacity + 3);
        let device = device_file(&profile).expect("renders");
        assert_eq!(device.dropped_keys, 4, "{model:?}");
        let texts = parse_xml(&device.file.body).expect("well formed");
        let p = |n: u32| xml_value(&texts, &format!("gs_provision/config/P{n}"));
        let last = u32::try_from(capacity).expect("small") - 1;
        assert!(p(1363 + 2 * last).is_some(), "{model:?}");
        assert!(p(1466 + 2 * last).is_some(), "{model:?}");
        assert_eq!(p(1363 + 2 * (last + 1)), None, "{model:?}");
        assert_eq!(p(1466 + 2 * (last + 1)), None, "{model:?}");
        let blf_keys = (0..=last).filter(|i| p(1363 + 2 * i) == Some("11")).count();
        assert_eq!(blf_keys, capacity - 1, "{model:?}");
    }
}

#[test]
fn time_zones_reach_each_vendor_in_its_form() {
    let site = |zone: &str| SiteSettings {
        ntp_server: None,
        time_zone: zone.into(),
    };
    let berlin = common_file(Vendor::Yealink, &site("Europe/Berlin"))
        .expect("renders")
        .expect("Yealink");
    let settings = parse_cfg(&berlin.body).expect("reads");
    assert_eq!(settings["local_time.time_zone"], "+1");
    assert_eq!(settings["local_time.time_zone_name"], "Germany(Berlin)");
    assert!(!settings.contains_key("local_time.ntp_server1"));

    let mut profile = grandstream_profile();
    profile.site = site("Europe/Paris");
    let device = device_file(&profile).expect("renders");
    assert!(!device.unknown_time_zone);
    let texts = parse_xml(&device.file.body).expect("xml");
    assert_eq!(
        xml_value(&texts, "gs_provision/config/P64"),
        Some("CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00")
    );
    assert_eq!(xml_value(&texts, "gs_provision/config/P30"), None);

    // An unknown zone renders as UTC and says so.
    for mut profile in [yealink_profile(), grandstream_profile()] {
        profile.site = site("Atlantis/Poseidonis");
        let rendered = render(&profile).expect("renders");
        assert!(rendered.unknown_time_zone);
        let device = rendered.files.last().expect("a device file");
        match profile.vendor {
            Vendor::Yealink => {
                let settings = parse_cfg(&device.body).expect("reads");
                assert_eq!(settings["local_time.time_zone"], "0");
                assert_eq!(settings["local_time.time_zone_name"], "GMT");
            }
            Vendor::Grandstream => {
                let texts = parse_xml(&device.body).expect("xml");
                assert_eq!(xml_value(&texts, "gs_provision/config/P64"), Some("UTC0"));
            }
        }
    }
    assert!(
        !render(&yealink_profile())
            .expect("renders")
            .unknown_time_zone
    );
}

#[test]
fn files_are_named_after_the_normalised_mac() {
    for text in ["80:5E:C0:12:34:56", "805EC0123456", "805e.c012.3456"] {
        let mut profile = yealink_profile();
        profile.mac = Mac::parse(text).expect("valid");
        let device = device_file(&profile).expect("renders").file;
        assert_eq!(device.name, "805ec0123456.cfg");
        // The name the phone asks for leads back to the same device.
        assert_eq!(
            RequestedFile::parse(&device.name),
            Some(RequestedFile::YealinkDevice(profile.mac))
        );
    }
    let profile = grandstream_profile();
    let device = device_file(&profile).expect("renders").file;
    assert_eq!(
        RequestedFile::parse(&device.name),
        Some(RequestedFile::GrandstreamDevice(profile.mac))
    );
    let texts = parse_xml(&device.body).expect("xml");
    assert_eq!(xml_value(&texts, "gs_provision/mac"), Some("000b82123456"));
}

#[test]
fn a_request_is_matched_to_the_phone_that_makes_it() {
    // The User-Agent names the same phone as the file requested.
    for (user_agent, path) in [
        (
            "Yealink SIP-T46S 66.86.0.15 80:5e:c0:12:34:56",
            "/prov/DEMO/805ec0123456.cfg",
        ),
        (
            "Grandstream Model HW GXP2170 SW 1.0.11.6 DevId 000b82123456",
            "/prov/DEMO/cfg000b82123456.xml",
        ),
    ] {
        let phone = PhoneIdentity::from_user_agent(user_agent).expect("a phone");
        let request = RequestedFile::parse(path).expect("a phone's file");
        assert_eq!(phone.mac, request.mac(), "{user_agent}");
        assert_eq!(Some(phone.vendor), request.vendor(), "{user_agent}");
        // The model it reports sizes its keys.
        assert!(edgepbx_provisioning::is_known_model(
            phone.vendor,
            phone.model.as_deref().expect("a model")
        ));
    }
    assert_eq!(PhoneIdentity::from_user_agent("Mozilla/5.0"), None);
}
