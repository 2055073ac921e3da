//! One Conditional Access decision against 50, 500 and 5,000 policies for a user
//! in 200 nested groups, and what compiling a set costs.
//! `cargo bench -p tessera-ca --bench evaluate`
//!
//! Criterion gives the median; the p99 of single decisions is printed first (the
//! percentiles of 20,000 timed calls after a warm-up).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, criterion_group};
use serde_json::json;
use tessera_authn::strength;
use tessera_ca::engine::*;
use tessera_ca::model::*;
use uuid::Uuid;

const GROUPS: u128 = 2000;
const NESTING: u128 = 200;
const USER: Uuid = Uuid::from_u128(1);
const APPS: u128 = 50;

/// A deterministic pseudo-random sequence (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn group(n: u128) -> Uuid {
    Uuid::from_u128(0x1_0000 + n)
}

fn app(n: u128) -> Uuid {
    Uuid::from_u128(0x2_0000 + n)
}

fn location(n: u128) -> Uuid {
    Uuid::from_u128(0x3_0000 + n)
}

/// The user is in group 0, which is in group 1, ... up to group 199; the other
/// groups hold other users.
fn graph() -> GroupGraph {
    let mut graph = GroupGraph::default();
    graph.users.insert(group(0), vec![USER]);
    for n in 1..NESTING {
        graph.groups.insert(group(n), vec![group(n - 1)]);
    }
    for n in NESTING..GROUPS {
        graph.users.insert(
            group(n),
            (0..20)
                .map(|u| Uuid::from_u128(0x9_0000 + n * 20 + u))
                .collect(),
        );
    }
    graph
}

fn locations() -> Vec<(Uuid, NamedLocationSpec)> {
    (0..20)
        .map(|n| {
            let ranges: Vec<_> = (0..5)
                .map(|r| json!({"cidrAddress": format!("10.{n}.{r}.0/24")}))
                .collect();
            let spec = json!({"@odata.type": "#microsoft.graph.ipNamedLocation",
                "displayName": format!("site {n}"), "isTrusted": n % 2 == 0, "ipRanges": ranges});
            (location(n), serde_json::from_value(spec).unwrap())
        })
        .collect()
}

/// A mix like real tenants': most policies for all users with exclusion groups,
/// some for groups, apps, locations, platforms; a fifth report-only.
fn policies(count: usize) -> Vec<(Uuid, PolicySpec)> {
    let mut rng = Rng(0x5eed_0000 + count as u64);
    (0..count)
        .map(|n| {
            let pick_group = |rng: &mut Rng| group(rng.below(GROUPS as u64) as u128).to_string();
            let include = if rng.below(3) == 0 {
                let first = rng.below(GROUPS as u64 - 1) as u128;
                json!({"includeUsers": [], "includeGroups": [group(first).to_string(), group(first + 1).to_string()]})
            } else {
                json!({"includeUsers": ["All"]})
            };
            let mut users = include;
            users["excludeGroups"] = json!([pick_group(&mut rng)]);
            let apps = if rng.below(2) == 0 {
                json!({"includeApplications": ["All"]})
            } else {
                let first = rng.below(APPS as u64 - 1) as u128;
                json!({"includeApplications": [app(first).to_string(), app(first + 1).to_string()]})
            };
            let mut conditions = json!({"users": users, "applications": apps, "clientAppTypes": ["all"]});
            if rng.below(4) == 0 {
                conditions["locations"] = json!({"includeLocations": ["All"], "excludeLocations": ["AllTrusted", location(rng.below(20) as u128).to_string()]});
            }
            if rng.below(5) == 0 {
                conditions["platforms"] = json!({"includePlatforms": ["all"], "excludePlatforms": ["iOS", "android"]});
            }
            if rng.below(8) == 0 {
                conditions["devices"] = json!({"deviceFilter": {"mode": "exclude", "rule": "device.isCompliant -eq True -and device.deviceOwnership -eq \"Company\""}});
            }
            let grant = match rng.below(4) {
                0 => json!({"operator": "OR", "builtInControls": ["block"]}),
                1 => json!({"operator": "OR", "builtInControls": [], "authenticationStrength": {"id": strength::PHISHING_RESISTANT_MFA}}),
                2 => json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}),
                _ => json!({"operator": "OR", "builtInControls": ["mfa"]}),
            };
            let state = if rng.below(5) == 0 { "enabledForReportingButNotEnforced" } else { "enabled" };
            let spec = json!({"displayName": format!("policy {n}"), "state": state,
                "conditions": conditions, "grantControls": grant,
                "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "hours", "value": 12, "frequencyInterval": "timeBased"}}});
            let spec: PolicySpec = serde_json::from_value(spec).unwrap();
            tessera_ca::validate::policy(&spec).unwrap();
            (Uuid::from_u128(0x4_0000 + n as u128), spec)
        })
        .collect()
}

fn sign_in<'a>(strengths: &'a [Uuid], contexts: &'a [String]) -> SignIn<'a> {
    SignIn {
        subject: Subject::User {
            id: USER,
            roles: &[],
            guest: None,
            risk: RiskLevel::None,
            has_mfa_method: true,
            groups: &[],
        },
        target: Target::App {
            resource: None,
            app_id: tessera_core::AppId::from_uuid(app(7)),
            admin_portal: false,
        },
        auth_contexts: contexts,
        client_app: ClientApp::Browser,
        platform: Some(Platform::Windows),
        ip: Some("203.0.113.50".parse().unwrap()),
        country: Some(*b"NL"),
        device: None,
        sign_in_risk: RiskLevel::None,
        device_code_flow: false,
        proof: Proof {
            strengths,
            auth_age_seconds: Some(600),
            password_changed: false,
            accepted_terms: &[],
        },
    }
}

const SIZES: [usize; 3] = [50, 500, 5000];

fn percentiles() {
    let graph = graph();
    let locations = locations();
    let strengths = [strength::MFA];
    let contexts: Vec<String> = Vec::new();
    let input = sign_in(&strengths, &contexts);
    println!("single decisions (20,000 timed calls each):");
    for size in SIZES {
        let set = PolicySet::compile(&policies(size), &locations, &graph, true);
        for _ in 0..2000 {
            black_box(set.evaluate(black_box(&input)));
        }
        let mut times: Vec<u128> = (0..20_000)
            .map(|_| {
                let start = Instant::now();
                black_box(set.evaluate(black_box(&input)));
                start.elapsed().as_nanos()
            })
            .collect();
        times.sort_unstable();
        let at = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
        let applied = set.evaluate(&input).enforced().count();
        println!(
            "  {size:>5} policies: median {:>8.2} us, p99 {:>8.2} us ({applied} applied)",
            at(0.5),
            at(0.99)
        );
    }
}

fn decisions(c: &mut Criterion) {
    let graph = graph();
    let locations = locations();
    let strengths = [strength::MFA];
    let contexts: Vec<String> = Vec::new();
    let input = sign_in(&strengths, &contexts);
    let mut group = c.benchmark_group("decision");
    for size in SIZES {
        let set = PolicySet::compile(&policies(size), &locations, &graph, true);
        group.bench_with_input(BenchmarkId::from_parameter(size), &set, |b, set| {
            b.iter(|| set.evaluate(black_box(&input)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for size in SIZES {
        let specs = policies(size);
        group.bench_with_input(BenchmarkId::from_parameter(size), &specs, |b, specs| {
            b.iter(|| PolicySet::compile(black_box(specs), &locations, &graph, true))
        });
    }
    group.finish();
    let set = PolicySet::compile(&policies(500), &locations, &graph, true);
    let decision = set.evaluate(&input);
    c.bench_function("explain/500", |b| {
        b.iter(|| serde_json::to_vec(&decision.explain(black_box(&set))))
    });
}

criterion_group!(benches, decisions);

fn main() {
    percentiles();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
