//! No sequence of schedule requests, approvals, denials and passing time leaves a
//! principal with privilege that no rule allows: every activation was approved
//! where the settings ask for approval (by an approver who is not the
//! requester, before the request timed out), started while its eligibility
//! held, ends within the maximum activation and never after its eligibility
//! did; every administrator's schedule keeps within its maximum length; and
//! nothing is held at or after its end.

use proptest::prelude::*;
use tessera_core::Timestamp;
use tessera_pim::{
    Action, Approver, Caller, Decision, Expiration, Facts, Kind, Pending, Request, Schedule,
    Settings, Ticket, approve, decide, deny, holds,
};
use uuid::Uuid;

const ALICE: u128 = 1;
const ADMIN: u128 = 2;
const APPROVER: u128 = 3;
const OTHER: u128 = 4;
const APPROVERS: u128 = 50;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

#[derive(Debug, Clone)]
enum Step {
    Wait(i64),
    Ask {
        action: Action,
        kind: Kind,
        who: u128,
        mfa: bool,
        stepped_up: bool,
        justified: bool,
        ticket: bool,
        start: Option<i64>,
        expiration: (u8, i64),
        schedule: usize,
    },
    Approve {
        pending: usize,
        who: u128,
    },
    Deny {
        pending: usize,
        who: u128,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::AdminAssign),
        1 => Just(Action::AdminRemove),
        1 => Just(Action::AdminUpdate),
        2 => Just(Action::AdminExtend),
        1 => Just(Action::AdminRenew),
        5 => Just(Action::SelfActivate),
        1 => Just(Action::SelfDeactivate),
        2 => Just(Action::SelfExtend),
        1 => Just(Action::SelfRenew),
    ]
}

/// Mostly true: most requests are well formed, so the sequences get far.
fn mostly() -> impl Strategy<Value = bool> {
    proptest::bool::weighted(0.85)
}

fn who() -> impl Strategy<Value = u128> {
    prop_oneof![
        3 => Just(ALICE),
        3 => Just(ADMIN),
        1 => Just(APPROVER),
        1 => Just(OTHER)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0i64..4 * 3600).prop_map(Step::Wait),
        1 => (0i64..20 * 86_400).prop_map(Step::Wait),
        6 => (
            action(),
            prop_oneof![Just(Kind::Eligibility), Just(Kind::Assignment)],
            who(),
            mostly(),
            mostly(),
            mostly(),
            mostly(),
            proptest::option::weighted(0.3, -600i64..86_400),
            (0u8..3, prop_oneof![-3600i64..86_400, -3600i64..400 * 86_400]),
            0usize..64,
        )
            .prop_map(
                |(
                    action,
                    kind,
                    who,
                    mfa,
                    stepped_up,
                    justified,
                    ticket,
                    start,
                    expiration,
                    schedule,
                )| Step::Ask {
                    action,
                    // An activation asks for an assignment (mostly).
                    kind: if action == Action::SelfActivate && mfa {
                        Kind::Assignment
                    } else {
                        kind
                    },
                    who,
                    mfa,
                    stepped_up,
                    justified,
                    ticket,
                    start,
                    expiration,
                    schedule,
                }
            ),
        2 => (0usize..64, who()).prop_map(|(pending, who)| Step::Approve { pending, who }),
        1 => (0usize..64, who()).prop_map(|(pending, who)| Step::Deny { pending, who }),
    ]
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        1800i64..=86_400,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(1800i64..400 * 86_400),
        proptest::option::of(1800i64..400 * 86_400),
        (any::<bool>(), any::<bool>(), 3600i64..=7 * 86_400),
    )
        .prop_map(
            |(
                max_activation,
                mfa,
                context,
                approval,
                named,
                eligibility,
                assignment,
                (ticket, justification, timeout),
            )| Settings {
                activation_requires_ticket: ticket,
                activation_requires_justification: justification,
                approval_timeout_seconds: timeout,
                max_activation_seconds: max_activation,
                activation_requires_mfa: mfa,
                activation_authentication_context: context.then(|| "c1".to_string()),
                activation_requires_approval: approval,
                approvers: if named {
                    vec![Approver::Group(id(APPROVERS))]
                } else {
                    Vec::new()
                },
                max_eligibility_seconds: eligibility,
                max_assignment_seconds: assignment,
                ..Settings::default()
            },
        )
}

fn caller(who: u128, mfa: bool, stepped_up: bool) -> Caller {
    Caller {
        id: id(who),
        administers: who == ADMIN,
        mfa,
        authentication_contexts: if stepped_up {
            vec!["c1".into()]
        } else {
            Vec::new()
        },
        groups: if who == APPROVER {
            vec![id(APPROVERS)]
        } else {
            Vec::new()
        },
    }
}

/// How an activation came to be.
#[derive(Debug, Clone)]
struct Origin {
    schedule: Uuid,
    approved_by: Option<u128>,
    eligibility_end: Option<Timestamp>,
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_micros(seconds * 1_000_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_privilege_that_no_rule_allows(settings in settings(), steps in proptest::collection::vec(step(), 1..60)) {
        let mut now = 1_000_000i64;
        let mut schedules: Vec<Schedule> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut origins: Vec<Origin> = Vec::new();
        let mut next_id = 1000u128;
        for step in steps {
            let facts = Facts { now: at(now), settings: &settings, schedules: &schedules };
            let (decided, approved_by) = match step {
                Step::Wait(seconds) => {
                    now += seconds;
                    (None, None)
                }
                Step::Ask { action, kind, who, mfa, stepped_up, justified, ticket, start, expiration, schedule } => {
                    let request = Request {
                        action,
                        kind,
                        principal: id(ALICE),
                        justification: justified.then(|| "needed".to_string()),
                        ticket: ticket.then(|| Ticket { ticket_number: Some("T-1".into()), ticket_system: None }),
                        start: start.map(|s| at(now + s)),
                        expiration: match expiration.0 {
                            0 => Expiration::NoExpiration,
                            1 => Expiration::AfterDuration(expiration.1),
                            _ => Expiration::AfterDateTime(at(now + expiration.1)),
                        },
                        // Any schedule there is, the newest as likely as the first.
                        schedule: (!schedules.is_empty()).then(|| schedules[schedule % schedules.len()].id),
                    };
                    let decided = decide(&request, &caller(who, mfa, stepped_up), facts).ok();
                    // An activation, or a request for one, met every requirement.
                    let activating = matches!(
                        &decided,
                        Some(Decision::Create { activated_from: Some(_), .. })
                    ) || matches!(&decided, Some(Decision::Pending(p)) if p.action == Action::SelfActivate);
                    if activating {
                        prop_assert_eq!(who, ALICE, "activated by someone else");
                        prop_assert!(mfa || !settings.activation_requires_mfa, "activated without MFA");
                        prop_assert!(stepped_up || settings.activation_authentication_context.is_none(), "activated without the context");
                        prop_assert!(justified || !settings.activation_requires_justification, "activated without a justification");
                        prop_assert!(ticket || !settings.activation_requires_ticket, "activated without a ticket");
                    }
                    (decided, None)
                }
                Step::Approve { pending: index, who } => match pending.get(index % pending.len().max(1)).cloned() {
                    Some(waiting) => {
                        let answer = approve(&waiting, &caller(who, true, true), facts);
                        if answer.is_ok() {
                            prop_assert!(at(now) < waiting.expires, "approved after it timed out");
                            pending.remove(index % pending.len());
                        }
                        (answer.ok(), Some(who))
                    }
                    None => (None, None),
                },
                Step::Deny { pending: index, who } => {
                    let index = index % pending.len().max(1);
                    if let Some(waiting) = pending.get(index)
                        && deny(waiting, &caller(who, true, true), facts).is_ok()
                    {
                        prop_assert_ne!(who, ALICE, "the requester denied their own request");
                        pending.remove(index);
                    }
                    (None, None)
                }
            };
            match decided {
                None => {}
                Some(Decision::Create { kind, window, activated_from }) => {
                    next_id += 1;
                    let created = Schedule { id: id(next_id), kind, window, activated_from };
                    if let Some(eligibility) = activated_from {
                        let eligibility = schedules.iter().find(|s| s.id == eligibility).unwrap();
                        prop_assert!(eligibility.window.covers(at(now)), "activated while not eligible");
                        origins.push(Origin { schedule: created.id, approved_by, eligibility_end: eligibility.window.end });
                    }
                    schedules.push(created);
                }
                Some(Decision::Change { schedule, window }) => {
                    let found = schedules.iter_mut().find(|s| s.id == schedule).unwrap();
                    found.window = window;
                }
                Some(Decision::End { schedule }) => {
                    let found = schedules.iter_mut().find(|s| s.id == schedule).unwrap();
                    if found.window.end.is_none_or(|end| end > at(now)) {
                        found.window.end = Some(at(now));
                    }
                }
                Some(Decision::Pending(waiting)) => {
                    prop_assert_eq!(waiting.requester, id(ALICE));
                    pending.push(waiting);
                }
            }
            // What holds now was allowed.
            for schedule in &schedules {
                let length = schedule.window.end.map(|end| end.unix_seconds() - schedule.window.start.unix_seconds());
                match schedule.activated_from {
                    Some(_) => {
                        let origin = origins.iter().find(|o| o.schedule == schedule.id).unwrap();
                        let end = schedule.window.end.expect("an activation ends");
                        prop_assert!(length.unwrap() <= settings.max_activation_seconds, "beyond the maximum activation");
                        if let Some(limit) = origin.eligibility_end {
                            prop_assert!(end <= limit, "past its eligibility's end");
                        }
                        if settings.activation_requires_approval {
                            let approver = origin.approved_by;
                            prop_assert!(approver.is_some(), "activated without approval");
                            prop_assert_ne!(approver, Some(ALICE), "self-approved");
                            let allowed = if settings.approvers.is_empty() { ADMIN } else { APPROVER };
                            prop_assert_eq!(approver, Some(allowed), "approved by someone who is not an approver");
                        } else {
                            prop_assert!(origin.approved_by.is_none());
                        }
                    }
                    None => {
                        let limit = match schedule.kind {
                            Kind::Eligibility => settings.max_eligibility_seconds,
                            Kind::Assignment => settings.max_assignment_seconds,
                        };
                        if let Some(limit) = limit {
                            prop_assert!(length.is_some(), "permanent where the settings forbid it");
                            prop_assert!(length.unwrap() <= limit, "beyond the maximum length");
                        }
                    }
                }
            }
            // What is held now is allowed now: an administrator's assignment in
            // its window, or an activation in its window whose eligibility, as it
            // is now, covers now too.
            let in_window = |s: &Schedule| s.window.start <= at(now) && s.window.end.is_none_or(|end| at(now) < end);
            let allowed = schedules.iter().any(|s| {
                s.kind == Kind::Assignment
                    && in_window(s)
                    && match s.activated_from {
                        None => true,
                        Some(eligibility) => schedules.iter().any(|e| e.id == eligibility && in_window(e)),
                    }
            });
            prop_assert_eq!(holds(&schedules, at(now)), allowed, "held without a rule that allows it, or not held where one does");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// From a principal who is eligible and has activated, any one request by
    /// anyone leaves the activation within its rules (an administrator ends an
    /// activation; nobody stretches it).
    #[test]
    fn no_request_stretches_an_activation(
        settings in settings(),
        step in step(),
        activated_ago in 0i64..1800,
        eligible_for in proptest::option::of(3600i64..30 * 86_400),
    ) {
        let now = 1_000_000i64;
        let eligibility = Schedule {
            id: id(10),
            kind: Kind::Eligibility,
            window: tessera_pim::Window { start: at(0), end: eligible_for.map(|s| at(now + s)) },
            activated_from: None,
        };
        let end = (now - activated_ago + settings.max_activation_seconds).min(
            eligibility.window.end.map_or(i64::MAX, Timestamp::unix_seconds),
        );
        let activation = Schedule {
            id: id(11),
            kind: Kind::Assignment,
            window: tessera_pim::Window { start: at(now - activated_ago), end: Some(at(end)) },
            activated_from: Some(id(10)),
        };
        let schedules = vec![eligibility, activation];
        let Step::Ask { action, kind, who, mfa, stepped_up, justified, ticket, start, expiration, schedule } = step else {
            return Ok(());
        };
        let request = Request {
            action,
            kind,
            principal: id(ALICE),
            justification: justified.then(|| "needed".to_string()),
            ticket: ticket.then(|| Ticket { ticket_number: Some("T-1".into()), ticket_system: None }),
            start: start.map(|s| at(now + s)),
            expiration: match expiration.0 {
                0 => Expiration::NoExpiration,
                1 => Expiration::AfterDuration(expiration.1),
                _ => Expiration::AfterDateTime(at(now + expiration.1)),
            },
            schedule: schedules.get(schedule).map(|s| s.id),
        };
        let facts = Facts { now: at(now), settings: &settings, schedules: &schedules };
        let decided = decide(&request, &caller(who, mfa, stepped_up), facts);
        // Applied, what is held is what the schedules, as they now are, allow.
        let mut after = schedules.clone();
        match &decided {
            Ok(Decision::Change { schedule, window }) => {
                after.iter_mut().filter(|s| s.id == *schedule).for_each(|s| s.window = *window);
            }
            Ok(Decision::End { schedule }) => {
                after.iter_mut().filter(|s| s.id == *schedule).for_each(|s| s.window.end = Some(at(now)));
            }
            _ => {}
        }
        let covers = |s: &Schedule| s.window.start <= at(now) && s.window.end.is_none_or(|end| at(now) < end);
        let activation_allowed = covers(&after[1]) && covers(&after[0]);
        prop_assert_eq!(holds(&after, at(now)), activation_allowed, "an activation held without its eligibility");
        match decided {
            Ok(Decision::Change { schedule, window }) => {
                prop_assert_ne!(schedule, id(11), "an activation was changed");
                prop_assert!(window.end.is_some() || settings.max_eligibility_seconds.is_none());
            }
            Ok(Decision::Create { kind: Kind::Assignment, activated_from: Some(_), .. }) => {
                prop_assert!(false, "activated while active");
            }
            Ok(Decision::End { schedule }) if schedule == id(11) => {
                prop_assert!(who == ADMIN || who == ALICE, "ended by someone else");
            }
            _ => {}
        }
    }
}
