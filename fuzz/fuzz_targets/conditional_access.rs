//! Conditional Access input from administrators and exports: export files (any
//! bytes: UTF-16, UTF-8, BOMs), Graph policy and named-location JSON through
//! normalization, the model and validation, device filter rules, and a decision
//! with whatever compiled. Nothing may panic; a valid policy must compile and
//! decide.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_ca::engine::{ClientApp, GroupGraph, PolicySet, Proof, SignIn, Subject, Target};
use tessera_ca::import;
use tessera_ca::model::{NamedLocationSpec, PolicySpec, RiskLevel};
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(document) = import::parse_document(data) else {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = tessera_directory::rule::parse_device_filter(text);
        }
        return;
    };
    let policy = import::normalize_policy(document.clone());
    let location = import::normalize_location(document);
    let mut policies = Vec::new();
    if let Ok(spec) = import::read::<PolicySpec>(&policy.value)
        && tessera_ca::validate::policy(&spec).is_ok()
    {
        policies.push((Uuid::from_u128(1), spec));
    }
    let mut locations = Vec::new();
    if let Ok(spec) = import::read::<NamedLocationSpec>(&location.value)
        && tessera_ca::validate::named_location(&spec).is_ok()
    {
        locations.push((Uuid::from_u128(2), spec));
    }
    let set = PolicySet::compile(&policies, &locations, &GroupGraph::default(), true);
    let sign_in = SignIn {
        subject: Subject::User {
            id: Uuid::from_u128(3),
            roles: &[],
            guest: None,
            risk: RiskLevel::None,
            has_mfa_method: false,
            groups: &[],
        },
        target: Target::App {
            resource: None,
            app_id: Uuid::from_u128(4),
            admin_portal: false,
        },
        auth_contexts: &[],
        client_app: ClientApp::Browser,
        platform: None,
        ip: "192.0.2.1".parse().ok(),
        country: None,
        device: None,
        sign_in_risk: RiskLevel::None,
        device_code_flow: false,
        proof: Proof::default(),
    };
    let decision = set.evaluate(&sign_in);
    let _ = serde_json::to_string(&decision.explain(&set));
});
