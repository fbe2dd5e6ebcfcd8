//! Any byte stream, delivered in chunks whose sizes come from the input:
//! framing never panics, a broken framer stays quiet, and the chunking does
//! not change what comes out.
#![no_main]

use edgepbx_sip::parse::{Framed, Limits, StreamFramer, error_response};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], chunk: usize) -> Vec<String> {
    let limits = Limits {
        max_message_bytes: 4096,
        max_headers: 32,
    };
    let mut framer = StreamFramer::new(limits);
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        framer.handle_bytes(piece);
        while let Some(item) = framer.poll_message() {
            out.push(match item {
                Ok(Framed::Message(message)) => format!("{message:?}"),
                Ok(Framed::Ping) => "ping".to_owned(),
                Err(error) => {
                    let _ = error_response(framer.rejected_bytes(), &error);
                    format!("{error:?}")
                }
            });
        }
        if framer.is_broken() {
            assert!(framer.poll_message().is_none());
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let whole = run(stream, stream.len());
    assert_eq!(whole, run(stream, usize::from(chunk)));
});
