//! The shared corpus (a public Entra Conditional Access baseline, exported as
//! administrators export it) imports with a report, and its policies decide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tessera_authn::strength;
use tessera_ca::engine::*;
use tessera_ca::import::{self, Export, ItemStatus, Known, Options};
use uuid::Uuid;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/entra-ca-baseline")
}

fn documents(dir: &str) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            let value = import::parse_document(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (
                path.file_name().unwrap().to_string_lossy().to_string(),
                value,
            )
        })
        .collect()
}

/// The export, and a tenant where the administrator created the export's groups
/// (same names, new ids).
fn setup() -> (Export, Known, HashMap<String, Uuid>) {
    let mut export = Export {
        policies: documents("ConditionalAccess"),
        named_locations: documents("NamedLocations"),
        ..Default::default()
    };
    for (_, group) in documents("Groups") {
        export.objects.add_group(&group);
    }
    let table =
        import::parse_document(&std::fs::read(corpus().join("MigrationTable.json")).unwrap())
            .unwrap();
    export.objects.add_migration_table(&table);
    let mut known = Known::default();
    let mut by_name = HashMap::new();
    for (n, name) in export.objects.group_names.values().enumerate() {
        let id = Uuid::from_u128(0x6000 + n as u128);
        known.groups.insert(id, name.clone());
        by_name.insert(name.clone(), id);
    }
    (export, known, by_name)
}

#[test]
fn the_whole_corpus_imports_with_a_report() {
    let (export, known, _) = setup();
    assert_eq!(export.policies.len(), 36);
    let plan = import::plan(&export, &known, Options::default());
    let report = serde_json::to_string_pretty(&plan.report).unwrap();
    println!("{report}");
    let status: HashMap<&str, &import::ItemReport> = plan
        .report
        .policies
        .iter()
        .map(|p| (p.file.split('-').next().unwrap(), p))
        .collect();
    let errors = |code: &str| -> Vec<String> {
        status[code]
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    };
    // What Tessera does not support is reported, per policy.
    for code in ["CA501", "CA502", "CA503", "CA504", "CA505"] {
        assert_eq!(status[code].status, ItemStatus::Error, "{code}");
        assert!(
            errors(code).iter().any(|e| e.contains("agent")),
            "{code}: {:?}",
            errors(code)
        );
    }
    assert!(
        errors("CA005").iter().any(|e| e.contains("app protection")),
        "{:?}",
        errors("CA005")
    );
    // The compliant-network location is unsupported, so is the policy using it.
    let network = plan
        .report
        .named_locations
        .iter()
        .find(|l| l.file.starts_with("All Compliant"))
        .unwrap();
    assert_eq!(network.status, ItemStatus::Error);
    assert_eq!(plan.named_locations.len(), 2);
    // Everything else maps: groups by name, roles by template id, locations from the export.
    let ready: Vec<&str> = plan
        .report
        .policies
        .iter()
        .filter(|p| p.status == ItemStatus::Ready)
        .map(|p| p.file.as_str())
        .collect();
    assert_eq!(ready.len(), plan.policies.len());
    assert!(ready.len() >= 28, "{ready:?}");
    let ca001 = status["CA001"];
    assert_eq!(ca001.status, ItemStatus::Ready, "{:?}", ca001.errors);
    assert!(
        ca001
            .mapped
            .iter()
            .any(|m| m.how.contains("by display name"))
    );
    let ca100 = status["CA100"];
    assert!(
        ca100
            .mapped
            .iter()
            .any(|m| m.how.contains("Global Administrator")),
        "{:?}",
        ca100.mapped
    );
    assert!(
        ca100
            .mapped
            .iter()
            .any(|m| m.how.contains("management API"))
    );
    let ca207 = status["CA207"];
    assert!(
        ca207
            .warnings
            .iter()
            .any(|w| w.message.contains("Microsoft application")),
        "{:?}",
        ca207.warnings
    );
    // Without the groups, the import stops and names every missing group.
    let empty = import::plan(&export, &Known::default(), Options::default());
    assert!(empty.report.policies.iter().any(|p| {
        p.errors
            .iter()
            .any(|e| e.message.contains("CA-BreakGlassAccounts - Exclude"))
    }));
}

#[test]
fn corpus_policies_decide() {
    let (export, known, groups) = setup();
    let plan = import::plan(&export, &known, Options::default());
    let glass = groups["CA-BreakGlassAccounts - Exclude"];
    let breaker = support::OTHER_USER;
    let mut graph = GroupGraph::default();
    graph.users.insert(glass, vec![breaker]);
    let set = PolicySet::compile(&plan.policies, &plan.named_locations, &graph, true);
    assert!(
        set.security_defaults,
        "defaults stay beside imported policies"
    );
    let by_code = |decision: &Decision, code: &str| -> PolicyResultKind {
        let index = set
            .policies
            .iter()
            .position(|p| p.display_name.starts_with(code))
            .unwrap_or_else(|| panic!("{code}"));
        decision
            .policies
            .iter()
            .find(|p| p.policy as usize == index)
            .unwrap()
            .kind
    };
    let admin_roles = vec![tessera_directory::roles::GLOBAL_ADMINISTRATOR];
    let base = |roles: &'static [Uuid]| support::Ctx {
        roles: roles.to_vec(),
        country: Some(*b"NL"),
        ..support::Ctx::default()
    };
    // A member in the Netherlands with a password only: MFA is required (CA000).
    let ctx = base(&[]);
    let decision = set.evaluate(&ctx.sign_in());
    assert_eq!(decision.outcome, Outcome::Interrupt);
    assert_eq!(by_code(&decision, "CA000"), PolicyResultKind::Failure);
    assert_eq!(by_code(&decision, "CA001"), PolicyResultKind::NotApplied);
    // From a country outside the allowed list: blocked (CA001).
    let abroad = support::Ctx {
        country: Some(*b"US"),
        ..base(&[])
    };
    let decision = set.evaluate(&abroad.sign_in());
    assert_eq!(decision.outcome, Outcome::Block);
    assert_eq!(by_code(&decision, "CA001"), PolicyResultKind::Failure);
    // Legacy protocols are blocked (CA002).
    let legacy = support::Ctx {
        client: ClientApp::Other,
        strengths: vec![strength::MFA],
        ..base(&[])
    };
    let decision = set.evaluate(&legacy.sign_in());
    assert_eq!(decision.outcome, Outcome::Block);
    assert_eq!(by_code(&decision, "CA002"), PolicyResultKind::Failure);
    // An unknown platform is blocked for internals... unless it's a report-only policy.
    let unknown = support::Ctx {
        platform: None,
        strengths: vec![strength::MFA],
        ..base(&[])
    };
    let decision = set.evaluate(&unknown.sign_in());
    let ca204 = by_code(&decision, "CA204");
    assert!(
        matches!(
            ca204,
            PolicyResultKind::Failure
                | PolicyResultKind::ReportOnlyFailure
                | PolicyResultKind::NotApplied
        ),
        "{ca204:?}"
    );
    // Administrators need phishing-resistant MFA (CA105): MFA alone is not enough.
    let admin = support::Ctx {
        roles: admin_roles.clone(),
        strengths: vec![strength::MFA],
        ..base(&[])
    };
    let decision = set.evaluate(&admin.sign_in());
    assert_ne!(by_code(&decision, "CA105"), PolicyResultKind::NotApplied);
    let strong = support::Ctx {
        roles: admin_roles,
        strengths: vec![strength::MFA, strength::PHISHING_RESISTANT_MFA],
        ..base(&[])
    };
    let decision = set.evaluate(&strong.sign_in());
    assert!(matches!(
        by_code(&decision, "CA105"),
        PolicyResultKind::Success | PolicyResultKind::ReportOnlySuccess
    ));
    // Break-glass accounts are excluded from every policy that excludes them.
    let glass_ctx = support::Ctx {
        user: breaker,
        country: Some(*b"US"),
        ..support::Ctx::default()
    };
    let decision = set.evaluate(&glass_ctx.sign_in());
    assert_eq!(by_code(&decision, "CA000"), PolicyResultKind::NotApplied);
    let ca001 = decision
        .policies
        .iter()
        .find(|p| {
            set.policies[p.policy as usize]
                .display_name
                .starts_with("CA001")
        })
        .unwrap();
    assert!(
        ca001.miss.unwrap().excluded,
        "excluded, not merely not included"
    );
    // The reference evaluator agrees on every scenario above.
    for ctx in [
        &ctx, &abroad, &legacy, &unknown, &admin, &strong, &glass_ctx,
    ] {
        let slow = tessera_ca::reference::evaluate(
            &plan.policies,
            &plan.named_locations,
            &graph,
            true,
            &ctx.sign_in(),
        );
        assert_eq!(set.evaluate(&ctx.sign_in()), slow);
    }
}

/// A policy for workload identities as Entra exports it: `users` with
/// `includeUsers: ["None"]` beside `clientApplications` (the corpus's CA501 and
/// CA502 have that shape, with AI agents instead of service principals).
#[test]
fn a_workload_policy_as_entra_exports_it_imports_and_decides() {
    let (mut export, mut known, _) = setup();
    let (file, mut document) = export
        .policies
        .iter()
        .find(|(file, _)| file.starts_with("CA501"))
        .cloned()
        .unwrap();
    assert_eq!(document["conditions"]["users"]["includeUsers"][0], "None");
    // The same policy for this tenant's service principals rather than agents.
    let workload = support::WORKLOAD;
    known.service_principals.insert(workload);
    let conditions = &mut document["conditions"];
    conditions["agentIdRiskLevels"] = Value::Null;
    conditions["clientApplications"]["includeAgentIdServicePrincipals"] = serde_json::json!([]);
    conditions["clientApplications"]["includeServicePrincipals"] =
        serde_json::json!(["ServicePrincipalsInMyTenant"]);
    conditions["clientApplications"]["excludeServicePrincipals"] =
        serde_json::json!([support::OTHER_WORKLOAD.to_string()]);
    known.service_principals.insert(support::OTHER_WORKLOAD);
    export.policies = vec![(file.clone(), document.clone())];
    export.named_locations.clear();
    let plan = import::plan(&export, &known, Options::default());
    let report = &plan.report.policies[0];
    assert_eq!(report.status, ItemStatus::Ready, "{:?}", report.errors);
    assert_eq!(plan.policies.len(), 1);
    let graph = GroupGraph::default();
    let set = PolicySet::compile(&plan.policies, &[], &graph, false);
    let decide = |ctx: &support::Ctx| {
        let fast = set.evaluate(&ctx.sign_in());
        let slow =
            tessera_ca::reference::evaluate(&plan.policies, &[], &graph, false, &ctx.sign_in());
        assert_eq!(fast, slow, "the evaluators disagree");
        fast
    };
    // It blocks the tenant's workloads...
    let blocked = decide(&support::Ctx {
        workload: Some(workload),
        ..support::Ctx::default()
    });
    assert_eq!(blocked.outcome, Outcome::Block);
    assert_eq!(blocked.policies[0].kind, PolicyResultKind::Failure);
    // ...but not the one it excludes, and no user.
    let excluded = decide(&support::Ctx {
        workload: Some(support::OTHER_WORKLOAD),
        ..support::Ctx::default()
    });
    assert_eq!(excluded.outcome, Outcome::Allow);
    assert_eq!(
        excluded.policies[0].miss,
        Some(Miss {
            condition: Condition::WorkloadIdentities,
            excluded: true
        })
    );
    let user = decide(&support::Ctx::default());
    assert_eq!(user.outcome, Outcome::Allow);
    assert_eq!(
        user.policies[0].miss,
        Some(Miss {
            condition: Condition::WorkloadIdentities,
            excluded: false
        })
    );
    // A policy that really names users and workloads stays refused.
    let mut both = document;
    both["conditions"]["users"]["includeUsers"] = serde_json::json!(["All"]);
    export.policies = vec![(file, both)];
    let plan = import::plan(&export, &known, Options::default());
    let report = &plan.report.policies[0];
    assert_eq!(report.status, ItemStatus::Error);
    assert!(
        report.errors.iter().any(|e| e.message.contains("not both")),
        "{:?}",
        report.errors
    );
}

/// Each file of the export is recognised by its content alone (an upload in the
/// console names no folder).
#[test]
fn every_file_of_the_export_is_recognised_by_its_content() {
    for (folder, part) in [
        ("ConditionalAccess", import::ExportPart::Policy),
        ("NamedLocations", import::ExportPart::NamedLocation),
        ("Groups", import::ExportPart::Group),
    ] {
        let files = documents(folder);
        assert!(!files.is_empty());
        for (name, document) in files {
            assert_eq!(import::export_part(&document), part, "{folder}/{name}");
        }
    }
    let table =
        import::parse_document(&std::fs::read(corpus().join("MigrationTable.json")).unwrap())
            .unwrap();
    assert_eq!(
        import::export_part(&table),
        import::ExportPart::MigrationTable
    );
    assert_eq!(
        import::export_part(&serde_json::json!({"hello": 1})),
        import::ExportPart::Unknown
    );
}
