//! Checkpoint files are read by `tessera audit verify --checkpoint`; a syslog file
//! holding them also holds whatever other programs (or an intruder) logged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_directory::checkpoint::{parse_line, parse_public_key};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_public_key(text);
        for line in text.lines() {
            if let Ok(Some(checkpoint)) = parse_line(line) {
                let _ = checkpoint.check_signature(&[7u8; 32]);
                let _ = checkpoint.check_against(checkpoint.seq, Some(checkpoint.hash.as_str()));
                let reparsed = parse_line(&checkpoint.to_line());
                assert_eq!(reparsed, Ok(Some(checkpoint)));
            }
        }
    }
});
