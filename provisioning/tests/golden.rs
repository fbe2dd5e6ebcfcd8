//! Golden files: the rendered output of the sample profiles, byte for
//! byte, in `tests/golden/`. A change to a template shows up here as a
//! diff to review. After an intended change, regenerate them with
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p edgepbx-provisioning --test golden
//! ```
//!
//! and read the diff of `tests/golden/` before committing it.

mod common;

use std::path::PathBuf;

use edgepbx_provisioning::{Vendor, phonebook, render};

/// Compares `body` with `tests/golden/<name>`, or writes it there when
/// `UPDATE_GOLDEN` is set.
fn golden(name: &str, body: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, body).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == body,
        "{name} differs from its golden file; if the change is intended, run \
         UPDATE_GOLDEN=1 cargo test -p edgepbx-provisioning --test golden\n\
         --- expected\n{expected}\n--- rendered\n{body}"
    );
}

#[test]
fn yealink_files_match_their_golden_files() {
    let rendered = render(&common::yealink_profile()).expect("renders");
    let names: Vec<&str> = rendered.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["y000000000000.cfg", "805ec0123456.cfg"]);
    for file in &rendered.files {
        golden(&file.name, &file.body);
    }
}

#[test]
fn grandstream_file_matches_its_golden_file() {
    let rendered = render(&common::grandstream_profile()).expect("renders");
    let names: Vec<&str> = rendered.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["cfg000b82123456.xml"]);
    golden(&rendered.files[0].name, &rendered.files[0].body);
}

#[test]
fn phonebooks_match_their_golden_files() {
    let entries = common::directory();
    for (vendor, name) in [
        (Vendor::Yealink, "yealink-phonebook.xml"),
        (Vendor::Grandstream, "grandstream-phonebook.xml"),
    ] {
        let file = phonebook(vendor, &entries).expect("renders");
        assert_eq!(file.name, "phonebook.xml");
        golden(name, &file.body);
    }
}
