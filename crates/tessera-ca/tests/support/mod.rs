//! A small world of users, groups, apps and locations for decision tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::IpAddr;

use serde_json::{Value, json};
use tessera_authn::strength;
use tessera_ca::engine::*;
use tessera_ca::model::*;
use tessera_directory::model::DeviceSpec;
use uuid::Uuid;

pub const fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

pub const USER: Uuid = id(1);
pub const OTHER_USER: Uuid = id(2);
pub const GUEST: Uuid = id(3);
pub const STAFF: Uuid = id(10);
pub const NESTED: Uuid = id(11);
pub const BREAK_GLASS: Uuid = id(12);
pub const APP: Uuid = id(100);
pub const APP2: Uuid = id(101);
pub const OFFICE: Uuid = id(200);
pub const COUNTRIES: Uuid = id(201);
pub const UNKNOWN_COUNTRY: Uuid = id(202);
pub const TERMS: Uuid = id(300);
pub const WORKLOAD: Uuid = id(400);
pub const OTHER_WORKLOAD: Uuid = id(401);
pub const DEVICE: Uuid = id(500);
pub const GLOBAL_ADMIN: Uuid = tessera_directory::roles::GLOBAL_ADMINISTRATOR;

pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// A valid policy: all users, all apps, require MFA, with `patch` merged over it.
pub fn policy(patch: Value) -> PolicySpec {
    let mut base = json!({
        "displayName": "P",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"]
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}
    });
    merge(&mut base, &patch);
    let spec: PolicySpec =
        serde_json::from_value(base.clone()).unwrap_or_else(|e| panic!("{base}: {e}"));
    if let Err(errors) = tessera_ca::validate::policy(&spec) {
        panic!("{base}: {errors}");
    }
    spec
}

pub fn locations() -> Vec<(Uuid, NamedLocationSpec)> {
    let parse = |v: Value| serde_json::from_value::<NamedLocationSpec>(v).unwrap();
    vec![
        (
            OFFICE,
            parse(
                json!({"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office",
                "isTrusted": true, "ipRanges": [{"cidrAddress": "192.0.2.0/24"}, {"cidrAddress": "2001:db8::/32"}]}),
            ),
        ),
        (
            COUNTRIES,
            parse(
                json!({"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Benelux",
                "countriesAndRegions": ["NL", "BE", "LU"], "includeUnknownCountriesAndRegions": false}),
            ),
        ),
        (
            UNKNOWN_COUNTRY,
            parse(
                json!({"@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Unknown",
                "countriesAndRegions": [], "includeUnknownCountriesAndRegions": true}),
            ),
        ),
    ]
}

/// USER is in NESTED, which is in STAFF; OTHER_USER is in BREAK_GLASS.
pub fn graph() -> GroupGraph {
    let mut graph = GroupGraph::default();
    graph.users.insert(NESTED, vec![USER]);
    graph.groups.insert(STAFF, vec![NESTED]);
    graph.users.insert(BREAK_GLASS, vec![OTHER_USER]);
    graph
}

pub fn compliant_device() -> DeviceSpec {
    serde_json::from_value(json!({"displayName": "LAPTOP", "isCompliant": true,
        "deviceOwnership": "Company", "trustType": "ServerAd", "operatingSystem": "Windows"}))
    .unwrap()
}

pub fn personal_device() -> DeviceSpec {
    serde_json::from_value(
        json!({"displayName": "PHONE", "deviceOwnership": "Personal",
        "trustType": "Workplace"}),
    )
    .unwrap()
}

/// An owned sign-in context that tests adjust, then borrow as a [`SignIn`].
#[derive(Clone, Debug)]
pub struct Ctx {
    pub workload: Option<Uuid>,
    pub user: Uuid,
    pub roles: Vec<Uuid>,
    pub guest: Option<&'static str>,
    pub user_risk: RiskLevel,
    pub has_mfa_method: bool,
    pub target: Target,
    pub contexts: Vec<String>,
    pub client: ClientApp,
    pub platform: Option<Platform>,
    pub ip: Option<IpAddr>,
    pub country: Option<[u8; 2]>,
    pub device: Option<DeviceSpec>,
    pub sign_in_risk: RiskLevel,
    pub device_code: bool,
    pub strengths: Vec<Uuid>,
    pub auth_age: Option<i64>,
    pub password_changed: bool,
    pub terms: Vec<Uuid>,
}

impl Default for Ctx {
    fn default() -> Ctx {
        Ctx {
            workload: None,
            user: USER,
            roles: Vec::new(),
            guest: None,
            user_risk: RiskLevel::None,
            has_mfa_method: true,
            target: Target::App {
                resource: None,
                app_id: tessera_core::AppId::from_uuid(APP),
                admin_portal: false,
            },
            contexts: Vec::new(),
            client: ClientApp::Browser,
            platform: Some(Platform::Windows),
            ip: Some("198.51.100.7".parse().unwrap()),
            country: Some(*b"DE"),
            device: None,
            sign_in_risk: RiskLevel::None,
            device_code: false,
            strengths: Vec::new(),
            auth_age: Some(60),
            password_changed: false,
            terms: Vec::new(),
        }
    }
}

impl Ctx {
    pub fn mfa() -> Ctx {
        Ctx {
            strengths: vec![strength::MFA],
            ..Ctx::default()
        }
    }

    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            subject: match self.workload {
                Some(sp) => Subject::Workload {
                    service_principal_id: sp,
                    risk: self.user_risk,
                },
                None => Subject::User {
                    id: self.user,
                    roles: &self.roles,
                    guest: self.guest,
                    risk: self.user_risk,
                    has_mfa_method: self.has_mfa_method,
                    groups: &[],
                },
            },
            target: self.target,
            auth_contexts: &self.contexts,
            client_app: self.client,
            platform: self.platform,
            ip: self.ip,
            country: self.country,
            device: self.device.as_ref().map(|d| (DEVICE, d)),
            sign_in_risk: self.sign_in_risk,
            device_code_flow: self.device_code,
            proof: Proof {
                strengths: &self.strengths,
                auth_age_seconds: self.auth_age,
                password_changed: self.password_changed,
                accepted_terms: &self.terms,
            },
        }
    }
}

/// Decides with both evaluators and checks they agree.
pub fn decide(policies: &[PolicySpec], ctx: &Ctx, defaults: bool) -> (PolicySet, Decision) {
    let policies: Vec<(Uuid, PolicySpec)> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| (id(1000 + i as u128), p.clone()))
        .collect();
    let locations = locations();
    let graph = graph();
    let set = PolicySet::compile(&policies, &locations, &graph, defaults);
    let fast = set.evaluate(&ctx.sign_in());
    let slow =
        tessera_ca::reference::evaluate(&policies, &locations, &graph, defaults, &ctx.sign_in());
    assert_eq!(fast, slow, "the evaluators disagree");
    (set, fast)
}
