//! Any session description: parsing never panics, an error names a line
//! of the input, an accepted description serialises to one that parses
//! to the same text again, and what anchoring and answering make of it
//! parses too.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use edgepbx_media::anchor::anchor;
use edgepbx_media::answer::{answer, negotiate};
use edgepbx_media::sdp::{SdpError, SessionDescription};
use libfuzzer_sys::fuzz_target;

/// What the relay carries, as the server configures it.
const CODECS: [(&str, u32); 3] = [("PCMU", 8000), ("PCMA", 8000), ("telephone-event", 8000)];

fuzz_target!(|data: &[u8]| {
    let sdp = match SessionDescription::parse(data) {
        Ok(sdp) => sdp,
        Err(SdpError::Syntax { line } | SdpError::Field { line, .. }) => {
            let lines = data.split(|b| *b == b'\n').count();
            assert!((1..=lines).contains(&line), "line {line} of {lines}");
            return;
        }
        Err(_) => return,
    };
    let text = reparsed(&sdp);
    assert_eq!(reparsed(&parse(&text)), text, "serialising is not stable");

    for media in &sdp.media {
        let _ = media.direction();
        let _ = media.accepted_formats(&CODECS);
        for format in &media.formats {
            if let Ok(payload_type) = format.parse::<u8>() {
                let _ = media.rtpmap(payload_type);
            }
        }
    }
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if let Ok(anchored) = anchor(&sdp, local, 40_000, &CODECS) {
        reparsed(&anchored.description);
    }
    let _ = negotiate(&sdp);
    if let Ok(ours) = answer(&sdp, local, 40_000, 7) {
        reparsed(&ours.description);
    }
});

/// `sdp` serialised, after checking that the text parses.
fn reparsed(sdp: &SessionDescription) -> Vec<u8> {
    let text = sdp.to_bytes();
    parse(&text);
    text
}

fn parse(text: &[u8]) -> SessionDescription {
    SessionDescription::parse(text).unwrap_or_else(|error| {
        panic!(
            "serialised description does not parse ({error}):\n{}",
            String::from_utf8_lossy(text)
        )
    })
}
