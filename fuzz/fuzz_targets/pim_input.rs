//! PIM reads ISO 8601 durations and role settings from administrators and
//! requesters: neither may panic, and a duration read is one the formatter
//! writes back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_pim::{Settings, alerts::AlertSettings, duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(seconds) = duration::parse(text) {
        assert!((0..=10 * 366 * 86_400).contains(&seconds));
        assert_eq!(duration::parse(&duration::format(seconds)), Ok(seconds));
    }
    if let Ok(settings) = serde_json::from_str::<Settings>(text) {
        let _ = settings.check();
    }
    if let Ok(settings) = serde_json::from_str::<AlertSettings>(text) {
        let _ = settings.check();
    }
});
