//! PIM reads ISO 8601 durations, role settings, Graph policy rules, policy ids
//! and `$filter`s from administrators and requesters: none may panic; a
//! duration read is one the formatter writes back to the same value; a rule
//! accepted leaves settings that pass their check and show that rule back; a
//! policy id read is one written back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_pim::{Settings, alerts::AlertSettings, duration, graph};

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
    if let Ok(body) = serde_json::from_str::<serde_json::Value>(text) {
        let settings = Settings::default();
        for id in graph::RULE_IDS {
            if let Ok(changed) = graph::apply_rule(&settings, id, &body) {
                assert!(changed.check().is_ok(), "{id}");
                let shown = graph::rule(&changed, id).unwrap();
                assert_eq!(graph::apply_rule(&changed, id, &shown).as_ref(), Ok(&changed));
            }
        }
    }
    let _ = graph::parse_filter(text);
    if let Some(of) = graph::parse_policy_id(text) {
        assert_eq!(graph::parse_policy_id(&graph::policy_id(of)), Some(of));
    }
});
