//! Sample profiles and small parsers that read rendered files back the
//! way a phone would, shared by the integration tests.

#![allow(dead_code)] // Each test file uses a part.

use std::collections::BTreeMap;

use edgepbx_provisioning::{
    BlfKey, DirectoryEntry, LineKey, Mac, PhoneProfile, PhonebookLink, SipAccount, SipServer,
    SiteSettings, Transport, Vendor,
};

/// The Yealink password of the samples: every XML special character, and
/// `=` and `#` which mean something in a `.cfg` line.
pub const YEALINK_PASSWORD: &str = "s3cr3t=#&<pw>";
/// The Grandstream password of the samples.
pub const GRANDSTREAM_PASSWORD: &str = "a&b<c>\"d'e";

pub fn blf(number: &str, label: &str) -> LineKey {
    LineKey::Blf(BlfKey::new(number, label).expect("valid key"))
}

pub fn speed_dial(number: &str, label: &str) -> LineKey {
    LineKey::SpeedDial(BlfKey::new(number, label).expect("valid key"))
}

/// A T46S of tenant DEMO in Berlin.
pub fn yealink_profile() -> PhoneProfile {
    PhoneProfile {
        vendor: Vendor::Yealink,
        model: Some("SIP-T46S".into()),
        mac: Mac::parse("80:5E:C0:12:34:56").expect("valid MAC"),
        account: SipAccount {
            display_name: "Alice Martin".into(),
            user_name: "100-DEMO".into(),
            auth_name: "100-DEMO".into(),
            password: YEALINK_PASSWORD.into(),
            server: SipServer {
                host: "pbx.example.com".into(),
                port: 5060,
                transport: Transport::Udp,
            },
            registration_expiry_secs: 3600,
            keep_alive_secs: Some(30),
        },
        keys: vec![
            blf("101", "Bob"),
            blf("102", "Zoë & <Co>"),
            speed_dial("*97", "Voicemail"),
            blf("103", ""),
        ],
        site: SiteSettings {
            ntp_server: Some("pool.ntp.org".into()),
            time_zone: "Europe/Berlin".into(),
        },
        phonebook: Some(PhonebookLink {
            url: "https://pbx.example.com/prov/DEMO/phonebook.xml".into(),
            name: "DEMO directory".into(),
        }),
        provisioning_url: Some("https://pbx.example.com/prov/DEMO/".into()),
        feature_key_sync: true,
    }
}

/// A GXP2170 of tenant DEMO in New York, on TLS, without keep-alive.
pub fn grandstream_profile() -> PhoneProfile {
    PhoneProfile {
        vendor: Vendor::Grandstream,
        model: Some("GXP2170".into()),
        mac: Mac::parse("00-0B-82-12-34-56").expect("valid MAC"),
        account: SipAccount {
            display_name: "Bob \"The Boss\" O'Neil".into(),
            user_name: "101-DEMO".into(),
            auth_name: "101-DEMO".into(),
            password: GRANDSTREAM_PASSWORD.into(),
            server: SipServer {
                host: "pbx.example.com".into(),
                port: 5061,
                transport: Transport::Tls,
            },
            registration_expiry_secs: 3599,
            keep_alive_secs: None,
        },
        keys: vec![
            blf("100", "Alice"),
            blf("102", "Carol <ops>"),
            speed_dial("+4930123456", "Berlin office"),
        ],
        site: SiteSettings {
            ntp_server: Some("time.example.com".into()),
            time_zone: "America/New_York".into(),
        },
        phonebook: Some(PhonebookLink {
            url: "http://pbx.example.com:8080/prov/DEMO/phonebook.xml?v=1&x=2".into(),
            name: "DEMO".into(),
        }),
        provisioning_url: Some("https://pbx.example.com/prov/DEMO".into()),
        feature_key_sync: false,
    }
}

/// A directory with names that need escaping.
pub fn directory() -> Vec<DirectoryEntry> {
    [
        ("Alice Martin", "100"),
        ("Bob <boss> & 'co' \"ltd\"", "101"),
        ("Zoë Ünal", "+4930123456"),
        ("Voicemail", "*97"),
    ]
    .into_iter()
    .map(|(name, number)| DirectoryEntry {
        name: name.into(),
        number: number.into(),
    })
    .collect()
}

/// Reads a Yealink `.cfg` like a phone: the version line first, `#`
/// comments, then `key = value` lines. Refuses any other line, a key of
/// other characters than a phone's keys have, and a key set twice.
pub fn parse_cfg(body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut lines = body.lines();
    if lines.next() != Some("#!version:1.0.0.1") {
        return Err("the first line is not #!version:1.0.0.1".into());
    }
    let mut settings = BTreeMap::new();
    for line in lines {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(" = ")
            .ok_or_else(|| format!("not a setting: {line:?}"))?;
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !key_ok {
            return Err(format!("not a key: {key:?}"));
        }
        if settings.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("{key} set twice"));
        }
    }
    Ok(settings)
}

/// The element texts of a well-formed XML document, as (path, text) in
/// document order, e.g. `("gs_provision/config/P47", "pbx:5061")`, with
/// entities resolved. Attributes come as `path/@name`. Refuses anything
/// quick-xml refuses, end tags that do not match, unclosed elements, and
/// more than one root.
pub fn parse_xml(body: &str) -> Result<Vec<(String, String)>, String> {
    use quick_xml::Reader;
    use quick_xml::escape::resolve_predefined_entity;
    use quick_xml::events::Event;

    let mut reader = Reader::from_str(body);
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut open_text: Option<(String, String)> = None;
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        let is_empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                let name =
                    String::from_utf8(start.name().as_ref().to_vec()).map_err(|e| e.to_string())?;
                if stack.is_empty() {
                    roots += 1;
                }
                stack.push(name);
                let path = stack.join("/");
                for attribute in start.attributes() {
                    let attribute = attribute.map_err(|e| e.to_string())?;
                    let key = String::from_utf8(attribute.key.as_ref().to_vec())
                        .map_err(|e| e.to_string())?;
                    let value = attribute.unescape_value().map_err(|e| e.to_string())?;
                    texts.push((format!("{path}/@{key}"), value.into_owned()));
                }
                if is_empty {
                    texts.push((path, String::new()));
                    stack.pop();
                } else {
                    open_text = Some((path, String::new()));
                }
            }
            Event::Text(text) => {
                let text = text.decode().map_err(|e| e.to_string())?;
                if let Some((_, buffer)) = open_text.as_mut() {
                    buffer.push_str(&text);
                } else if !text.trim().is_empty() {
                    return Err(format!("text outside an element: {text:?}"));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| e.to_string())?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                match open_text.as_mut() {
                    Some((_, buffer)) => buffer.push_str(&resolved),
                    None => return Err("reference outside an element".into()),
                }
            }
            Event::End(end) => {
                let name =
                    String::from_utf8(end.name().as_ref().to_vec()).map_err(|e| e.to_string())?;
                if stack.pop().as_deref() != Some(name.as_str()) {
                    return Err(format!("</{name}> closes nothing open"));
                }
                // Only leaf elements carry text.
                if let Some((path, text)) = open_text.take() {
                    texts.push((path, text));
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) => {}
            other => return Err(format!("unexpected {other:?}")),
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed {}", stack.join("/")));
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(texts)
}

/// The text of the first element at `path`.
pub fn xml_value<'a>(texts: &'a [(String, String)], path: &str) -> Option<&'a str> {
    texts
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, text)| text.as_str())
}
