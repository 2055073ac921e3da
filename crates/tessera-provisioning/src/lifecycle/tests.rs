use serde_json::json;

use super::*;

fn joiner() -> Workflow {
    serde_json::from_value(json!({
        "displayName": "Onboard new hires",
        "category": "joiner",
        "trigger": {"kind": "timeBased", "attribute": "employeeHireDate", "offsetDays": 0},
        "scope": "user.department -eq \"Sales\"",
        "tasks": [
            {"task": "enableUser"},
            {"task": "generateTemporaryAccessPass", "lifetimeMinutes": 480},
            {"task": "addToGroups", "groups": ["2f1e5c7a-9d3b-4c6e-8a1f-0b2c3d4e5f60"]},
            {"task": "notifyManager", "continueOnError": true}
        ]
    }))
    .unwrap()
}

#[test]
fn a_joiner_reads_and_holds() {
    let w = joiner();
    assert_eq!(w.check(), Vec::<(String, String)>::new());
    assert_eq!(w.window_days, 3);
    assert!(w.enabled);
    assert!(w.tasks[3].continue_on_error);
}

#[test]
fn workflows_are_checked_whole() {
    let mut w = joiner();
    w.display_name = " ".into();
    w.scope = Some("user.department -eq".into());
    w.tasks.push(Step {
        task: Task::DeleteUser,
        continue_on_error: false,
    });
    w.tasks.push(Step {
        task: Task::AddToGroups { groups: vec![] },
        continue_on_error: false,
    });
    w.window_days = 0;
    let problems = w.check();
    let text = format!("{problems:?}");
    for says in [
        "displayName",
        "scope",
        "deleteuser is not a task of a joiner workflow",
        "deleteUser is the last task",
        "1 to 20 groups",
        "windowDays",
    ] {
        assert!(text.contains(says), "{says:?} missing from {text}");
    }
    let mover: Result<Workflow, _> = serde_json::from_value(json!({
        "displayName": "Movers", "category": "mover",
        "trigger": {"kind": "attributeChange", "attributes": ["department", "shoeSize"]},
        "tasks": [{"task": "removeFromGroups", "groups": ["2f1e5c7a-9d3b-4c6e-8a1f-0b2c3d4e5f60"]}]
    }));
    let text = format!("{:?}", mover.unwrap().check());
    assert!(text.contains("shoeSize is not watched"), "{text}");
    let mut leaver_on_change = joiner();
    leaver_on_change.category = Category::Leaver;
    leaver_on_change.trigger = Trigger::AttributeChange {
        attributes: vec!["department".into()],
    };
    leaver_on_change.tasks = vec![Step {
        task: Task::DisableUser,
        continue_on_error: false,
    }];
    let text = format!("{:?}", leaver_on_change.check());
    assert!(text.contains("mover workflows only"), "{text}");
    let mut unsent = joiner();
    unsent.tasks.truncate(2);
    unsent.tasks.push(unsent.tasks[0].clone());
    let text = format!("{:?}", unsent.check());
    assert!(text.contains("put notifyManager after it"), "{text}");
    assert!(text.contains("enableUser is there twice"), "{text}");
    let unknown: Result<Workflow, _> = serde_json::from_value(json!({
        "displayName": "x", "category": "leaver",
        "trigger": {"kind": "timeBased", "attribute": "employeeLeaveDateTime"},
        "tasks": [{"task": "launchMissiles"}]
    }));
    assert!(unknown.is_err());
}

#[test]
fn dates_fire_once_come_within_their_window() {
    let now = OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(); // 2026-05-28T20:26:40Z
    let fired = due("2026-05-27", 0, 3, now).unwrap();
    assert_eq!(fired.key, "2026-05-27T00:00:00Z");
    assert!(
        due("2026-05-26T09:00:00Z", 0, 3, now).is_some(),
        "two days ago"
    );
    assert!(due("2026-05-20", 0, 3, now).is_none(), "past the window");
    assert!(due("2026-05-29", 0, 3, now).is_none(), "not yet");
    assert!(
        due("2026-06-03", -7, 3, now).is_some(),
        "a week before the hire date"
    );
    assert!(
        due("2026-04-28", 30, 3, now).is_some(),
        "thirty days after leaving"
    );
    assert!(due("not a date", 0, 3, now).is_none());
    assert!(due("9999-12-31", 180, 3, now).is_none(), "out of range");
    assert_ne!(
        event_key(Uuid::nil(), Uuid::nil(), "2026-05-27T00:00:00Z"),
        event_key(Uuid::nil(), Uuid::nil(), "2026-05-28T00:00:00Z"),
        "a changed date is a new event"
    );
}
