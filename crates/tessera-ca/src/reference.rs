//! A reference evaluator, written for clarity rather than speed: it reads the
//! policies as stored, walks group nesting and parses ranges on every call. The
//! property tests check that [`crate::engine::PolicySet::evaluate`] agrees with it.

use std::str::FromStr;

use ipnet::IpNet;
use tessera_authn::strength;
use tessera_directory::model::TrustType;
use tessera_directory::rule;
use uuid::Uuid;

use crate::engine::*;
use crate::model::*;
use crate::validate::{self, auth_context_number};

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == value)
}

fn named(list: &[String], id: Uuid) -> bool {
    list.iter().any(|v| Uuid::parse_str(v).ok() == Some(id))
}

/// Whether a user is in one of `groups`, directly or through nesting.
fn in_groups(graph: &GroupGraph, groups: &[String], user: Uuid) -> bool {
    groups
        .iter()
        .filter_map(|g| Uuid::parse_str(g).ok())
        .any(|g| graph.transitive_users(g).contains(&user))
}

fn guest_listed(list: &Option<GuestsOrExternalUsers>, kind: Option<&str>) -> bool {
    match (list, kind) {
        (Some(list), Some(kind)) => list
            .guest_or_external_user_types
            .split(',')
            .any(|k| k.trim() == kind),
        _ => false,
    }
}

fn location_matches(
    locations: &[(Uuid, NamedLocationSpec)],
    id: &str,
    sign_in: &SignIn<'_>,
) -> bool {
    let Some((_, location)) = locations
        .iter()
        .find(|(l, _)| Uuid::parse_str(id).ok() == Some(*l))
    else {
        return false;
    };
    match location {
        NamedLocationSpec::Ip(ip) => sign_in.ip.is_some_and(|addr| {
            ip.ip_ranges.iter().any(|r| {
                IpNet::from_str(r.cidr_address.trim()).is_ok_and(|net| net.contains(&addr))
            })
        }),
        NamedLocationSpec::Country(country) => match sign_in.country {
            Some(code) => country
                .countries_and_regions
                .iter()
                .any(|c| c.eq_ignore_ascii_case(std::str::from_utf8(&code).unwrap_or(""))),
            None => country.include_unknown_countries_and_regions,
        },
    }
}

fn trusted(locations: &[(Uuid, NamedLocationSpec)], sign_in: &SignIn<'_>) -> bool {
    locations.iter().any(|(id, l)| {
        matches!(l, NamedLocationSpec::Ip(ip) if ip.is_trusted)
            && location_matches(locations, &id.to_string(), sign_in)
    })
}

fn not(condition: Condition, excluded: bool) -> Option<Miss> {
    Some(Miss {
        condition,
        excluded,
    })
}

/// The first condition of `policy` that does not match, if any.
fn first_miss(
    policy: &PolicySpec,
    locations: &[(Uuid, NamedLocationSpec)],
    graph: &GroupGraph,
    sign_in: &SignIn<'_>,
) -> Option<Miss> {
    let c = &policy.conditions;
    let for_workloads = c
        .client_applications
        .as_ref()
        .is_some_and(|w| !w.include_service_principals.is_empty());
    match sign_in.subject {
        Subject::User {
            id,
            roles,
            guest,
            groups: now_in,
            ..
        } => {
            if for_workloads {
                return not(Condition::WorkloadIdentities, false);
            }
            let users = c.users.clone().unwrap_or_default();
            let guest_any = guest.is_some();
            let included = has(&users.include_users, validate::ALL)
                || named(&users.include_users, id)
                || in_groups(graph, &users.include_groups, id)
                || in_listed(&users.include_groups, now_in)
                || roles.iter().any(|r| named(&users.include_roles, *r))
                || (guest_any && has(&users.include_users, validate::GUESTS_OR_EXTERNAL_USERS))
                || guest_listed(&users.include_guests_or_external_users, guest);
            if !included {
                return not(Condition::Users, false);
            }
            let excluded = named(&users.exclude_users, id)
                || in_groups(graph, &users.exclude_groups, id)
                || in_listed(&users.exclude_groups, now_in)
                || roles.iter().any(|r| named(&users.exclude_roles, *r))
                || (guest_any && has(&users.exclude_users, validate::GUESTS_OR_EXTERNAL_USERS))
                || guest_listed(&users.exclude_guests_or_external_users, guest);
            if excluded {
                return not(Condition::Users, true);
            }
        }
        Subject::Workload {
            service_principal_id,
            ..
        } => {
            if !for_workloads {
                return not(Condition::Users, false);
            }
            let workloads = c.client_applications.clone().unwrap_or_default();
            let included = has(
                &workloads.include_service_principals,
                validate::SERVICE_PRINCIPALS_IN_MY_TENANT,
            ) || named(&workloads.include_service_principals, service_principal_id);
            if !included {
                return not(Condition::WorkloadIdentities, false);
            }
            if named(&workloads.exclude_service_principals, service_principal_id) {
                return not(Condition::WorkloadIdentities, true);
            }
        }
    }
    let apps = &c.applications;
    if !apps.include_user_actions.is_empty() {
        let Target::UserAction(action) = sign_in.target else {
            return not(Condition::Applications, false);
        };
        if !has(&apps.include_user_actions, action.urn()) {
            return not(Condition::Applications, false);
        }
    } else if !apps
        .include_authentication_context_class_references
        .is_empty()
    {
        let asked = sign_in.auth_contexts.iter().any(|asked| {
            auth_context_number(asked).is_some()
                && has(&apps.include_authentication_context_class_references, asked)
        });
        if !asked {
            return not(Condition::Applications, false);
        }
    } else {
        let Target::App {
            app_id,
            resource,
            admin_portal,
        } = sign_in.target
        else {
            return not(Condition::Applications, false);
        };
        // The policy applies when it applies to the client or to the resource;
        // when to neither, the client's reason is the one given.
        let for_app = |id: tessera_core::AppId| -> Option<Miss> {
            let included = has(&apps.include_applications, validate::ALL)
                || (admin_portal && has(&apps.include_applications, validate::ADMIN_PORTALS))
                || named(&apps.include_applications, id.uuid());
            if !included {
                return not(Condition::Applications, false);
            }
            let excluded = named(&apps.exclude_applications, id.uuid())
                || (admin_portal && has(&apps.exclude_applications, validate::ADMIN_PORTALS));
            if excluded {
                return not(Condition::Applications, true);
            }
            None
        };
        let client_miss = for_app(app_id);
        let resource_applies = resource.is_some_and(|r| r != app_id && for_app(r).is_none());
        if client_miss.is_some() && !resource_applies {
            return client_miss;
        }
    }
    let types = &c.client_app_types;
    if !types.is_empty() && !types.contains(&ClientAppType::All) {
        let wanted = match sign_in.client_app {
            ClientApp::Browser => types.contains(&ClientAppType::Browser),
            ClientApp::MobileAppsAndDesktopClients => {
                types.contains(&ClientAppType::MobileAppsAndDesktopClients)
            }
            ClientApp::ExchangeActiveSync => {
                types.contains(&ClientAppType::ExchangeActiveSync)
                    || types.contains(&ClientAppType::EasSupported)
            }
            ClientApp::Other => types.contains(&ClientAppType::Other),
        };
        if !wanted {
            return not(Condition::ClientAppTypes, false);
        }
    }
    if let Some(platforms) = &c.platforms {
        let included = platforms.include_platforms.contains(&Platform::All)
            || sign_in
                .platform
                .is_some_and(|p| platforms.include_platforms.contains(&p));
        if !included {
            return not(Condition::Platforms, false);
        }
        if sign_in
            .platform
            .is_some_and(|p| platforms.exclude_platforms.contains(&p))
        {
            return not(Condition::Platforms, true);
        }
    }
    if let Some(l) = &c.locations {
        let is_trusted = trusted(locations, sign_in);
        let included = has(&l.include_locations, validate::ALL)
            || (is_trusted && has(&l.include_locations, validate::ALL_TRUSTED))
            || l.include_locations
                .iter()
                .any(|id| location_matches(locations, id, sign_in));
        if !included {
            return not(Condition::Locations, false);
        }
        let excluded = (is_trusted && has(&l.exclude_locations, validate::ALL_TRUSTED))
            || l.exclude_locations
                .iter()
                .any(|id| location_matches(locations, id, sign_in));
        if excluded {
            return not(Condition::Locations, true);
        }
    }
    if let Some(filter) = c.devices.as_ref().and_then(|d| d.device_filter.as_ref())
        && let Ok(parsed) = rule::parse_device_filter(&filter.rule)
    {
        let hit = rule::matches_device(&parsed, sign_in.device);
        if filter.mode == FilterMode::Include && !hit {
            return not(Condition::Devices, false);
        }
        if filter.mode == FilterMode::Exclude && hit {
            return not(Condition::Devices, true);
        }
    }
    if !c.sign_in_risk_levels.is_empty() && !c.sign_in_risk_levels.contains(&sign_in.sign_in_risk) {
        return not(Condition::SignInRisk, false);
    }
    match sign_in.subject {
        Subject::User { risk, .. } => {
            if !c.user_risk_levels.is_empty() && !c.user_risk_levels.contains(&risk) {
                return not(Condition::UserRisk, false);
            }
        }
        Subject::Workload { risk, .. } => {
            if !c.service_principal_risk_levels.is_empty()
                && !c.service_principal_risk_levels.contains(&risk)
            {
                return not(Condition::ServicePrincipalRisk, false);
            }
        }
    }
    if let Some(flows) = &c.authentication_flows {
        let listed = flows
            .transfer_methods
            .split(',')
            .any(|m| m.trim() == "deviceCodeFlow");
        if !(listed && sign_in.device_code_flow) {
            return not(Condition::AuthenticationFlows, false);
        }
    }
    None
}

fn controls_of(policy: &PolicySpec) -> (bool, Operator, Vec<Control>) {
    let Some(grant) = &policy.grant_controls else {
        return (false, Operator::AND, Vec::new());
    };
    let mut controls = Vec::new();
    for control in &grant.built_in_controls {
        controls.push(match control {
            BuiltInControl::Mfa => Control::Mfa,
            BuiltInControl::CompliantDevice => Control::CompliantDevice,
            BuiltInControl::DomainJoinedDevice => Control::DomainJoinedDevice,
            BuiltInControl::PasswordChange => Control::PasswordChange,
            _ => continue,
        });
    }
    if let Some(s) = &grant.authentication_strength {
        controls.push(Control::AuthenticationStrength(s.id));
    }
    for terms in &grant.terms_of_use {
        if let Ok(id) = Uuid::parse_str(terms) {
            controls.push(Control::TermsOfUse(id));
        }
    }
    (
        grant.built_in_controls.contains(&BuiltInControl::Block),
        grant.operator,
        controls,
    )
}

fn met(control: Control, sign_in: &SignIn<'_>) -> bool {
    match control {
        Control::Mfa => sign_in.proof.strengths.contains(&strength::MFA),
        Control::AuthenticationStrength(id) => sign_in.proof.strengths.contains(&id),
        Control::CompliantDevice => matches!(sign_in.device, Some((_, d)) if d.is_compliant),
        Control::DomainJoinedDevice => {
            matches!(sign_in.device, Some((_, d)) if d.trust_type == Some(TrustType::Hybrid))
        }
        Control::PasswordChange => sign_in.proof.password_changed,
        Control::TermsOfUse(id) => sign_in.proof.accepted_terms.contains(&id),
    }
}

/// Decides a sign-in straight from the stored policies.
pub fn evaluate(
    policies: &[(Uuid, PolicySpec)],
    locations: &[(Uuid, NamedLocationSpec)],
    graph: &GroupGraph,
    defaults_enabled: bool,
    sign_in: &SignIn<'_>,
) -> Decision {
    let use_defaults = defaults_enabled;
    let all = with_defaults(policies, defaults_enabled);
    let policies = &all[..];
    let mut results = Vec::new();
    let mut any_block = false;
    let mut any_unmet = false;
    let mut session = EffectiveSession::default();
    let mut frequencies = Vec::new();
    let mut index = 0u32;
    for (_, policy) in policies {
        if policy.state == PolicyState::Disabled {
            continue;
        }
        let report_only = policy.state == PolicyState::EnabledForReportingButNotEnforced;
        let miss = first_miss(policy, locations, graph, sign_in);
        let (block, operator, controls) = controls_of(policy);
        let result = if let Some(miss) = miss {
            PolicyOutcome {
                policy: index,
                kind: if report_only {
                    PolicyResultKind::ReportOnlyNotApplied
                } else {
                    PolicyResultKind::NotApplied
                },
                miss: Some(miss),
                block: false,
                controls: ControlsMet::default(),
                reauthenticate: false,
            }
        } else {
            let states: Vec<ControlState> = controls
                .iter()
                .map(|c| ControlState {
                    control: *c,
                    satisfied: met(*c, sign_in),
                })
                .collect();
            let satisfied = states.is_empty()
                || match operator {
                    Operator::AND => states.iter().all(|s| s.satisfied),
                    Operator::OR => states.iter().any(|s| s.satisfied),
                };
            let limit = policy
                .session_controls
                .as_ref()
                .and_then(|s| s.sign_in_frequency.as_ref())
                .and_then(SignInFrequency::seconds);
            let stale = match limit {
                None => false,
                Some(limit) => {
                    let allowed = if limit == 0 {
                        EVERY_TIME_SECONDS
                    } else {
                        limit
                    };
                    match sign_in.proof.auth_age_seconds {
                        None => true,
                        Some(age) => age > allowed,
                    }
                }
            };
            let kind = if report_only {
                if block {
                    PolicyResultKind::ReportOnlyFailure
                } else if !satisfied || stale {
                    PolicyResultKind::ReportOnlyInterrupted
                } else {
                    PolicyResultKind::ReportOnlySuccess
                }
            } else if block || !satisfied {
                PolicyResultKind::Failure
            } else {
                PolicyResultKind::Success
            };
            if !report_only {
                any_block |= block;
                any_unmet |= !satisfied || stale;
                if let Some(limit) = limit {
                    frequencies.push(limit);
                }
                reference_merge(&mut session, policy.session_controls.as_ref());
            }
            PolicyOutcome {
                policy: index,
                kind,
                miss: None,
                block,
                controls: ControlsMet::from_states(states.iter().map(|s| s.satisfied)),
                reauthenticate: stale,
            }
        };
        results.push(result);
        index += 1;
    }
    session.sign_in_frequency_seconds = frequencies.into_iter().min();
    Decision {
        outcome: if any_block {
            Outcome::Block
        } else if any_unmet {
            Outcome::Interrupt
        } else {
            Outcome::Allow
        },
        policies: results,
        session,
        security_defaults: use_defaults,
        register_mfa: use_defaults
            && matches!(
                sign_in.subject,
                Subject::User {
                    has_mfa_method: false,
                    groups: &[],
                    ..
                }
            ),
    }
}

/// The strictest of each session control, one control at a time.
fn reference_merge(session: &mut EffectiveSession, controls: Option<&SessionControls>) {
    let Some(controls) = controls else { return };
    if let Some(browser) = controls
        .persistent_browser
        .as_ref()
        .filter(|b| b.is_enabled)
    {
        let always = browser.mode == PersistentBrowserMode::Always;
        session.persistent_browser = Some(match session.persistent_browser {
            Some(false) => false,
            _ => always,
        });
    }
    if controls
        .application_enforced_restrictions
        .as_ref()
        .is_some_and(|e| e.is_enabled)
    {
        session.application_enforced_restrictions = true;
    }
    if let Some(kind) = controls
        .cloud_app_security
        .as_ref()
        .filter(|c| c.is_enabled)
        .and_then(|c| c.cloud_app_security_type)
    {
        session.restricted_session = Some(match session.restricted_session {
            Some(current) if current > kind => current,
            _ => kind,
        });
    }
    if let Some(cae) = &controls.continuous_access_evaluation {
        let rank = |m: Option<CaeMode>| match m {
            None => 0,
            Some(CaeMode::Disabled) => 1,
            Some(CaeMode::StrictEnforcement) => 2,
            Some(CaeMode::StrictLocation) => 3,
        };
        if rank(Some(cae.mode)) > rank(session.continuous_access_evaluation) {
            session.continuous_access_evaluation = Some(cae.mode);
        }
    }
    if controls.disable_resilience_defaults == Some(true) {
        session.disable_resilience_defaults = true;
    }
}

/// Whether any of the groups the user is in at this moment is listed.
fn in_listed(listed: &[String], groups: &[Uuid]) -> bool {
    groups.iter().any(|g| named(listed, *g))
}
