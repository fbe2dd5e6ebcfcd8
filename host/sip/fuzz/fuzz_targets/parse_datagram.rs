//! Any datagram: parsing never panics, a rejected request's error response
//! is well-formed, and an accepted message survives serialisation.
#![no_main]

use edgepbx_sip::parse::{Limits, error_response, parse_datagram};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match parse_datagram(data, &limits) {
        Ok(message) => {
            let bytes = message.to_bytes();
            // Serialising an accepted message must give an acceptable one.
            if let Err(error) = parse_datagram(&bytes, &limits) {
                panic!("accepted message does not reparse: {error}");
            }
        }
        Err(error) => {
            let _ = error.rejection();
            if let Some(response) = error_response(data, &error) {
                let _ = response.to_bytes();
            }
        }
    }
});
