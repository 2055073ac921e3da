use super::*;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_micros(seconds * 1_000_000)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const ALICE: u128 = 1;
const ADMIN: u128 = 2;
const APPROVER: u128 = 3;
const APPROVERS: u128 = 50;

fn caller(who: u128) -> Caller {
    Caller {
        id: id(who),
        administers: who == ADMIN,
        mfa: true,
        authentication_contexts: Vec::new(),
        groups: if who == APPROVER {
            vec![id(APPROVERS)]
        } else {
            Vec::new()
        },
    }
}

fn request(action: Action, kind: Kind) -> Request {
    Request {
        action,
        kind,
        principal: id(ALICE),
        justification: Some("ticket 42: rotate the keys".into()),
        ticket: None,
        start: None,
        expiration: Expiration::AfterDuration(2 * HOUR),
        schedule: None,
    }
}

fn eligible(until: Option<i64>) -> Schedule {
    Schedule {
        id: id(100),
        kind: Kind::Eligibility,
        window: Window {
            start: at(0),
            end: until.map(at),
        },
        activated_from: None,
    }
}

fn facts<'a>(now: i64, settings: &'a Settings, schedules: &'a [Schedule]) -> Facts<'a> {
    Facts {
        now: at(now),
        settings,
        schedules,
    }
}

#[test]
fn an_eligible_user_activates_for_what_they_ask_within_the_maximum() {
    let settings = Settings::default();
    let schedules = [eligible(None)];
    let decided = decide(
        &request(Action::SelfActivate, Kind::Assignment),
        &caller(ALICE),
        facts(HOUR, &settings, &schedules),
    )
    .unwrap();
    assert_eq!(
        decided,
        Decision::Create {
            kind: Kind::Assignment,
            window: Window {
                start: at(HOUR),
                end: Some(at(3 * HOUR))
            },
            activated_from: Some(id(100)),
        }
    );
    let mut long = request(Action::SelfActivate, Kind::Assignment);
    long.expiration = Expiration::AfterDuration(9 * HOUR);
    assert_eq!(
        decide(&long, &caller(ALICE), facts(HOUR, &settings, &schedules)),
        Err(Refusal::TooLong(8 * HOUR)),
        "beyond the maximum duration"
    );
    // Never past the eligibility's end.
    let ending = [eligible(Some(2 * HOUR))];
    let Ok(Decision::Create { window, .. }) = decide(
        &request(Action::SelfActivate, Kind::Assignment),
        &caller(ALICE),
        facts(HOUR, &settings, &ending),
    ) else {
        panic!("an activation");
    };
    assert_eq!(window.end, Some(at(2 * HOUR)));
}

#[test]
fn activation_needs_eligibility_justification_ticket_and_strength() {
    let mut settings = Settings::default();
    let expired = [eligible(Some(HOUR))];
    let ask = request(Action::SelfActivate, Kind::Assignment);
    assert_eq!(
        decide(&ask, &caller(ALICE), facts(2 * HOUR, &settings, &expired)),
        Err(Refusal::NotEligible),
        "an eligibility that has expired"
    );
    let schedules = [eligible(None)];
    let mut bare = ask.clone();
    bare.justification = Some("  ".into());
    assert_eq!(
        decide(&bare, &caller(ALICE), facts(HOUR, &settings, &schedules)),
        Err(Refusal::JustificationRequired)
    );
    let mut no_mfa = caller(ALICE);
    no_mfa.mfa = false;
    assert_eq!(
        decide(&ask, &no_mfa, facts(HOUR, &settings, &schedules)),
        Err(Refusal::MfaRequired)
    );
    settings.activation_authentication_context = Some("c1".into());
    assert_eq!(
        decide(&ask, &caller(ALICE), facts(HOUR, &settings, &schedules)),
        Err(Refusal::AuthenticationContextRequired("c1".into())),
        "activation without the required strength"
    );
    let mut stepped_up = caller(ALICE);
    stepped_up.authentication_contexts = vec!["c1".into()];
    assert!(decide(&ask, &stepped_up, facts(HOUR, &settings, &schedules)).is_ok());
    settings.activation_requires_ticket = true;
    assert_eq!(
        decide(&ask, &stepped_up, facts(HOUR, &settings, &schedules)),
        Err(Refusal::TicketRequired)
    );
    // Someone else cannot activate for Alice, not even an administrator.
    assert_eq!(
        decide(&ask, &caller(ADMIN), facts(HOUR, &settings, &schedules)),
        Err(Refusal::NotThePrincipal)
    );
    let mut active = schedules.to_vec();
    active.push(Schedule {
        id: id(101),
        kind: Kind::Assignment,
        window: Window {
            start: at(0),
            end: Some(at(2 * HOUR)),
        },
        activated_from: Some(id(100)),
    });
    settings.activation_requires_ticket = false;
    assert_eq!(
        decide(&ask, &stepped_up, facts(HOUR, &settings, &active)),
        Err(Refusal::AlreadyActive)
    );
}

#[test]
fn approval_is_by_a_named_approver_not_the_requester_and_in_time() {
    let settings = Settings {
        activation_requires_approval: true,
        approvers: vec![Approver::Group(id(APPROVERS))],
        ..Settings::default()
    };
    let schedules = [eligible(None)];
    let Ok(Decision::Pending(pending)) = decide(
        &request(Action::SelfActivate, Kind::Assignment),
        &caller(ALICE),
        facts(HOUR, &settings, &schedules),
    ) else {
        panic!("a pending request");
    };
    assert_eq!(pending.expires, at(HOUR + DAY));
    assert_eq!(
        approve(
            &pending,
            &caller(ALICE),
            facts(2 * HOUR, &settings, &schedules)
        ),
        Err(Refusal::SelfApproval)
    );
    assert_eq!(
        approve(
            &pending,
            &caller(ADMIN),
            facts(2 * HOUR, &settings, &schedules)
        ),
        Err(Refusal::NotAnApprover),
        "approvers are named: an administrator is not one"
    );
    assert_eq!(
        approve(
            &pending,
            &caller(APPROVER),
            facts(HOUR + DAY, &settings, &schedules)
        ),
        Err(Refusal::TimedOut),
        "approval after the timeout"
    );
    assert_eq!(
        deny(
            &pending,
            &caller(ALICE),
            facts(2 * HOUR, &settings, &schedules)
        ),
        Err(Refusal::SelfApproval)
    );
    // Approved: the activation starts when approved.
    let decided = approve(
        &pending,
        &caller(APPROVER),
        facts(5 * HOUR, &settings, &schedules),
    )
    .unwrap();
    assert_eq!(
        decided,
        Decision::Create {
            kind: Kind::Assignment,
            window: Window {
                start: at(5 * HOUR),
                end: Some(at(7 * HOUR))
            },
            activated_from: Some(id(100)),
        }
    );
    // The eligibility ended meanwhile: nothing to approve into.
    let ended = [eligible(Some(4 * HOUR))];
    assert_eq!(
        approve(
            &pending,
            &caller(APPROVER),
            facts(5 * HOUR, &settings, &ended)
        ),
        Err(Refusal::NotEligible)
    );
}

#[test]
fn administrators_assign_within_the_settings() {
    let settings = Settings {
        max_eligibility_seconds: Some(365 * DAY),
        ..Settings::default()
    };
    let mut assign = request(Action::AdminAssign, Kind::Eligibility);
    assign.expiration = Expiration::NoExpiration;
    assert_eq!(
        decide(&assign, &caller(ALICE), facts(0, &settings, &[])),
        Err(Refusal::NotPermitted)
    );
    assert_eq!(
        decide(&assign, &caller(ADMIN), facts(0, &settings, &[])),
        Err(Refusal::PermanentNotAllowed)
    );
    assign.expiration = Expiration::AfterDuration(400 * DAY);
    assert_eq!(
        decide(&assign, &caller(ADMIN), facts(0, &settings, &[])),
        Err(Refusal::TooLong(365 * DAY))
    );
    assign.expiration = Expiration::AfterDuration(30 * DAY);
    assert!(matches!(
        decide(&assign, &caller(ADMIN), facts(0, &settings, &[])),
        Ok(Decision::Create {
            kind: Kind::Eligibility,
            ..
        })
    ));
    assign.start = Some(at(-DAY));
    assert_eq!(
        decide(&assign, &caller(ADMIN), facts(0, &settings, &[])),
        Err(Refusal::BadWindow),
        "a start in the past"
    );
    assign.start = None;
    let existing = [eligible(None)];
    assert_eq!(
        decide(&assign, &caller(ADMIN), facts(HOUR, &settings, &existing)),
        Err(Refusal::AlreadyAssigned)
    );
    // Active assignments: time-bound by default.
    let mut active = request(Action::AdminAssign, Kind::Assignment);
    active.expiration = Expiration::NoExpiration;
    assert_eq!(
        decide(&active, &caller(ADMIN), facts(0, &Settings::default(), &[])),
        Err(Refusal::PermanentNotAllowed)
    );
    let mut removal = request(Action::AdminRemove, Kind::Eligibility);
    removal.schedule = Some(id(100));
    assert_eq!(
        decide(&removal, &caller(ADMIN), facts(HOUR, &settings, &existing)),
        Ok(Decision::End { schedule: id(100) })
    );
    removal.kind = Kind::Assignment;
    assert_eq!(
        decide(&removal, &caller(ADMIN), facts(HOUR, &settings, &existing)),
        Err(Refusal::NoSuchSchedule)
    );
}

#[test]
fn extension_and_renewal() {
    let settings = Settings {
        max_eligibility_seconds: Some(365 * DAY),
        ..Settings::default()
    };
    let ending = [eligible(Some(100 * DAY))];
    let mut extend = request(Action::AdminExtend, Kind::Eligibility);
    extend.schedule = Some(id(100));
    extend.expiration = Expiration::AfterDuration(90 * DAY);
    assert_eq!(
        decide(&extend, &caller(ADMIN), facts(50 * DAY, &settings, &ending)),
        Err(Refusal::NotExtensible),
        "not near its end"
    );
    assert_eq!(
        decide(&extend, &caller(ADMIN), facts(95 * DAY, &settings, &ending)),
        Ok(Decision::Change {
            schedule: id(100),
            window: Window {
                start: at(95 * DAY),
                end: Some(at(185 * DAY))
            }
        }),
        "measured from now: a schedule at its maximum can still be extended"
    );
    assert_eq!(
        decide(&extend, &caller(ALICE), facts(95 * DAY, &settings, &ending)),
        Err(Refusal::NotPermitted),
        "extension without permission"
    );
    // The principal asks; an administrator approves.
    let mut self_extend = extend.clone();
    self_extend.action = Action::SelfExtend;
    let Ok(Decision::Pending(pending)) = decide(
        &self_extend,
        &caller(ALICE),
        facts(95 * DAY, &settings, &ending),
    ) else {
        panic!("a pending extension");
    };
    assert_eq!(
        approve(
            &pending,
            &caller(APPROVER),
            facts(95 * DAY + HOUR, &settings, &ending)
        ),
        Err(Refusal::NotAnApprover)
    );
    assert!(matches!(
        approve(
            &pending,
            &caller(ADMIN),
            facts(95 * DAY + HOUR, &settings, &ending)
        ),
        Ok(Decision::Change { .. })
    ));
    assert_eq!(
        decide(
            &self_extend,
            &caller(ADMIN),
            facts(95 * DAY, &settings, &ending)
        ),
        Err(Refusal::NotThePrincipal)
    );
    // Renewal: only once ended, and not too long ago.
    let mut renew = extend.clone();
    renew.action = Action::AdminRenew;
    assert_eq!(
        decide(&renew, &caller(ADMIN), facts(95 * DAY, &settings, &ending)),
        Err(Refusal::NotRenewable)
    );
    assert_eq!(
        decide(&renew, &caller(ADMIN), facts(110 * DAY, &settings, &ending)),
        Ok(Decision::Change {
            schedule: id(100),
            window: Window {
                start: at(110 * DAY),
                end: Some(at(200 * DAY))
            }
        })
    );
    assert_eq!(
        decide(&renew, &caller(ADMIN), facts(200 * DAY, &settings, &ending)),
        Err(Refusal::NotRenewable)
    );
}

#[test]
fn deactivation_ends_only_an_active_activation() {
    let settings = Settings::default();
    let activation = Schedule {
        id: id(101),
        kind: Kind::Assignment,
        window: Window {
            start: at(0),
            end: Some(at(2 * HOUR)),
        },
        activated_from: Some(id(100)),
    };
    let schedules = [eligible(None), activation];
    let mut deactivate = request(Action::SelfDeactivate, Kind::Assignment);
    deactivate.schedule = Some(id(101));
    assert_eq!(
        decide(
            &deactivate,
            &caller(ALICE),
            facts(HOUR, &settings, &schedules)
        ),
        Ok(Decision::End { schedule: id(101) })
    );
    assert_eq!(
        decide(
            &deactivate,
            &caller(ALICE),
            facts(3 * HOUR, &settings, &schedules)
        ),
        Err(Refusal::NoSuchSchedule),
        "an activation that has ended"
    );
    // An administrator ends an activation; they do not stretch it.
    let mut extend = request(Action::AdminExtend, Kind::Assignment);
    extend.schedule = Some(id(101));
    extend.expiration = Expiration::AfterDuration(30 * DAY);
    assert_eq!(
        decide(&extend, &caller(ADMIN), facts(HOUR, &settings, &schedules)),
        Err(Refusal::NotExtensible)
    );
    assert!(holds(&schedules, at(HOUR)));
    assert!(
        !holds(&schedules, at(2 * HOUR)),
        "the end is checked at use: at its end time it holds no more"
    );
}

#[test]
fn settings_are_checked_and_read_with_defaults() {
    let settings: Settings = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(settings, Settings::default());
    settings.check().unwrap();
    for bad in [
        serde_json::json!({"maxActivationSeconds": 60}),
        serde_json::json!({"approvalTimeoutSeconds": 10}),
        serde_json::json!({"maxEligibilitySeconds": 5}),
        serde_json::json!({"activationAuthenticationContext": "c 1"}),
    ] {
        let settings: Settings = serde_json::from_value(bad.clone()).unwrap();
        assert!(settings.check().is_err(), "{bad}");
    }
    assert!(serde_json::from_value::<Settings>(serde_json::json!({"unknown": 1})).is_err());
}

#[test]
fn an_activation_goes_with_its_eligibility() {
    let activation = Schedule {
        id: id(101),
        kind: Kind::Assignment,
        window: Window {
            start: at(0),
            end: Some(at(8 * HOUR)),
        },
        activated_from: Some(id(100)),
    };
    assert!(holds(&[eligible(None), activation.clone()], at(HOUR)));
    assert!(
        !holds(&[eligible(Some(HOUR)), activation.clone()], at(HOUR)),
        "the eligibility was shortened: the activation ends with it"
    );
    assert!(
        !holds(std::slice::from_ref(&activation), at(HOUR)),
        "the eligibility was removed"
    );
}

#[test]
fn activation_rules_hold_together() {
    let settings = Settings {
        activation_authentication_context: Some("c1".into()),
        activation_requires_approval: true,
        ..Settings::default()
    };
    let schedules = [eligible(None)];
    let mut context_only = caller(ALICE);
    context_only.mfa = false;
    context_only.authentication_contexts = vec!["c1".into()];
    let ask = request(Action::SelfActivate, Kind::Assignment);
    assert_eq!(
        decide(&ask, &context_only, facts(HOUR, &settings, &schedules)),
        Err(Refusal::MfaRequired),
        "a context does not stand in for MFA"
    );
    let mut ready = caller(ALICE);
    ready.authentication_contexts = vec!["c1".into()];
    let mut later = ask.clone();
    later.start = Some(at(HOUR + DAY));
    assert_eq!(
        decide(&later, &ready, facts(HOUR, &settings, &schedules)),
        Err(Refusal::BadWindow),
        "no scheduled activation"
    );
    let mut long = ask.clone();
    long.expiration = Expiration::AfterDuration(9 * HOUR);
    assert_eq!(
        decide(&long, &ready, facts(HOUR, &settings, &schedules)),
        Err(Refusal::TooLong(8 * HOUR)),
        "bounded before an approver is asked"
    );
}

#[test]
fn updates_keep_a_running_start_and_do_not_overlap() {
    let settings = Settings::default();
    let assignment = |n: u128, start: i64, end: i64| Schedule {
        id: id(n),
        kind: Kind::Assignment,
        window: Window {
            start: at(start),
            end: Some(at(end)),
        },
        activated_from: None,
    };
    let schedules = [
        assignment(200, 0, 10 * DAY),
        assignment(201, 20 * DAY, 30 * DAY),
    ];
    let mut update = request(Action::AdminUpdate, Kind::Assignment);
    update.schedule = Some(id(200));
    update.start = Some(at(0));
    update.expiration = Expiration::AfterDateTime(at(15 * DAY));
    assert_eq!(
        decide(
            &update,
            &caller(ADMIN),
            facts(5 * DAY, &settings, &schedules)
        ),
        Ok(Decision::Change {
            schedule: id(200),
            window: Window {
                start: at(0),
                end: Some(at(15 * DAY))
            }
        }),
        "the running schedule keeps its start"
    );
    update.expiration = Expiration::AfterDateTime(at(25 * DAY));
    assert_eq!(
        decide(
            &update,
            &caller(ADMIN),
            facts(5 * DAY, &settings, &schedules)
        ),
        Err(Refusal::AlreadyAssigned),
        "it would overlap the other one"
    );
    update.justification = None;
    update.expiration = Expiration::AfterDateTime(at(15 * DAY));
    assert_eq!(
        decide(
            &update,
            &caller(ADMIN),
            facts(5 * DAY, &settings, &schedules)
        ),
        Err(Refusal::JustificationRequired)
    );
}
