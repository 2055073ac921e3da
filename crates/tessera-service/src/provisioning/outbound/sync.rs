//! One object at a time: where it stands, the resource the mapping makes of
//! it, and the requests that take the application's copy there
//! (`tessera_provisioning::outbound::decide` chooses; this sends).

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value, json};
use tessera_core::TenantId;
use tessera_directory::model::{AppRoleAssignment, GroupSpec, UserSpec};
use tessera_directory::rule::Rule;
use tessera_provisioning::Env;
use tessera_provisioning::mapping::{Compiled, Output};
use tessera_provisioning::outbound::{self as rules, Action, Known, Scope, Standing};
use tessera_scim::schema::USER_TYPE;
use tessera_store::Kind;
use uuid::Uuid;

use super::client::{Client, Failure, Resource};
use super::{ObjectState, Stored};
use crate::Context;
use crate::codec;
use crate::error::ServiceResult;

/// Attempts of one unchanged object before incremental cycles stop trying it
/// (a change to it, a full cycle or provisioning on demand tries again).
const MAX_OBJECT_ATTEMPTS: u32 = 5;

/// What a cycle works with.
pub(super) struct Cycle<'a> {
    pub(super) tenant: TenantId,
    pub(super) sp: Uuid,
    pub(super) stored: &'a Stored,
    pub(super) compiled: Compiled,
    pub(super) rule: Option<Rule>,
    pub(super) client: Client<'a>,
    pub(super) ctx: Context,
    pub(super) id: Uuid,
    pub(super) env: Env,
    /// The users the assignments reach (`None`: every user is in scope).
    pub(super) assigned_users: Option<HashSet<Uuid>>,
    /// The groups assigned directly.
    pub(super) assigned_groups: BTreeSet<Uuid>,
}

/// How one object went.
pub(super) struct Done {
    pub(super) action: Action,
    pub(super) failure: Option<Failure>,
    pub(super) target_id: Option<String>,
    pub(super) changed: Vec<String>,
    pub(super) resource: Value,
    pub(super) standing: Standing,
    pub(super) scope_reason: String,
    /// The hash of what the object should be (what a later attempt compares).
    pub(super) hash: String,
}

impl Done {
    fn new(standing: Standing, target_id: Option<String>, scope_reason: String) -> Done {
        Done {
            action: Action::None,
            failure: None,
            target_id,
            changed: Vec::new(),
            resource: Value::Null,
            standing,
            scope_reason,
            hash: String::new(),
        }
    }
}

pub(super) fn hash_of(value: &Value) -> String {
    tessera_core::crypto::sha256_hex(value.to_string().as_bytes())
}

/// The paths an update changed, for the log.
pub(super) fn changed_paths(operations: &[Value]) -> Vec<String> {
    operations
        .iter()
        .filter_map(|op| op["path"].as_str().map(str::to_string))
        .collect()
}

/// The users reached by the assignments to `sp` (directly, or as members of
/// assigned groups, nested), and the groups assigned directly.
pub(super) async fn assignments(
    reader: &mut dyn tessera_store::Reader,
    tenant: TenantId,
    sp: Uuid,
) -> ServiceResult<(HashSet<Uuid>, BTreeSet<Uuid>)> {
    let mut users = HashSet::new();
    let mut groups = BTreeSet::new();
    for record in codec::list_all(
        reader,
        tenant,
        Kind::AppRoleAssignment,
        Some(sp.to_string()),
    )
    .await?
    {
        let assignment: AppRoleAssignment = codec::data(&record)?;
        match assignment.principal_type.as_str() {
            "User" => {
                users.insert(assignment.principal_id);
            }
            "Group" => {
                groups.insert(assignment.principal_id);
            }
            _ => {}
        }
    }
    for group in &groups {
        for link in
            crate::directory::groups::transitive_member_links(reader, tenant, *group).await?
        {
            if link.target_kind == Kind::User {
                users.insert(link.target);
            }
        }
    }
    Ok((users, groups))
}

impl Cycle<'_> {
    /// Where a user stands, and why.
    fn standing(&self, user: Option<(&Uuid, &UserSpec)>) -> (Standing, String) {
        let Some((id, spec)) = user else {
            return (Standing::Deleted, "deleted from the directory".into());
        };
        if let Some(assigned) = &self.assigned_users
            && !assigned.contains(id)
        {
            return (
                Standing::OutOfScope,
                "not assigned to the application, directly or through a group".into(),
            );
        }
        if let Some(rule) = &self.rule
            && !tessera_directory::rule::matches(rule, *id, spec)
        {
            return (
                Standing::OutOfScope,
                "the scoping rule does not match".into(),
            );
        }
        (
            Standing::InScope,
            match self.stored.scope {
                Scope::AllUsers => "every user is in scope".into(),
                Scope::AssignedUsersAndGroups => "assigned to the application".into(),
            },
        )
    }

    /// The resource the mapping makes of a user, and the places (by
    /// `patch_place`) it wrote: what it leaves (`IgnoreFlowIfNullOrEmpty`, an
    /// `onCreate` mapping on an update) stays the application's.
    fn resource(
        &self,
        id: Uuid,
        spec: &UserSpec,
        creating: bool,
    ) -> Result<(Map<String, Value>, Vec<String>), String> {
        let source = rules::DirectoryUser { id, spec };
        let outputs = self
            .compiled
            .apply(&source, &self.env, creating)
            .map_err(|e| e.to_string())?;
        let mut resource = Map::new();
        let mut managed = Vec::new();
        for (target, output) in outputs {
            let value = match output {
                Output::Set(value) => value,
                Output::Leave => continue,
                Output::Unique(candidates) => match candidates.into_iter().next() {
                    Some(first) => Value::String(first),
                    None => continue,
                },
            };
            tessera_scim::outbound::set_at(&USER_TYPE, &mut resource, &target.name, value)
                .map_err(|e| e.detail)?;
            managed.push(tessera_scim::outbound::patch_place(&target.name));
        }
        Ok((resource, managed))
    }

    /// Takes one user to where it should be on the application.
    pub(super) async fn sync_user(
        &self,
        id: Uuid,
        user: Option<&UserSpec>,
        state: Option<&ObjectState>,
        forced: bool,
    ) -> Done {
        let (standing, scope_reason) = self.standing(user.map(|spec| (&id, spec)));
        let known_target = state.and_then(|s| s.target_id.clone());
        let mut done = Done::new(standing, known_target.clone(), scope_reason);
        let mut managed = Vec::new();
        let desired = match user {
            Some(spec) if standing == Standing::InScope => {
                match self.resource(id, spec, known_target.is_none()) {
                    Ok((resource, places)) => {
                        managed = places;
                        Some(resource)
                    }
                    Err(why) => {
                        done.action = if known_target.is_some() {
                            Action::Update
                        } else {
                            Action::Create
                        };
                        done.failure = Some(Failure::Object(format!("the mapping failed: {why}")));
                        return done;
                    }
                }
            }
            _ => None,
        };
        let desired_value = desired.clone().map(Value::Object).unwrap_or(Value::Null);
        let hash = hash_of(&desired_value);
        done.hash = hash.clone();
        done.resource = desired_value;
        let known = match (state, &known_target) {
            (Some(s), Some(_)) => Some(Known {
                hash: &s.hash,
                active: s.active,
            }),
            _ => None,
        };
        done.action = rules::decide(known.as_ref(), standing, &hash, self.stored.deprovision);
        if done.action == Action::None {
            return done;
        }
        if !forced
            && let Some(s) = state
            && s.failures >= MAX_OBJECT_ATTEMPTS
            && s.failed_hash == hash
        {
            done.action = Action::None;
            return done;
        }
        let result = match (done.action, desired) {
            (Action::Create | Action::Update, Some(desired)) => {
                self.put_user(known_target.as_deref(), &desired, &managed)
                    .await
            }
            (Action::Disable, _) => {
                let target = known_target.clone().unwrap_or_default();
                let operations = vec![json!({"op": "replace", "path": "active", "value": false})];
                match self
                    .client
                    .patch(Resource::Users, &target, operations)
                    .await
                {
                    Ok(true) => Ok((Some(target), vec!["active".to_string()])),
                    // Gone there already: nothing left to disable.
                    Ok(false) => Ok((None, Vec::new())),
                    Err(failure) => Err(failure),
                }
            }
            (Action::Delete, _) => {
                let target = known_target.clone().unwrap_or_default();
                self.client
                    .delete(Resource::Users, &target)
                    .await
                    .map(|()| (None, Vec::new()))
            }
            _ => Ok((known_target.clone(), Vec::new())),
        };
        match result {
            Ok((target_id, changed)) => {
                done.target_id = target_id;
                done.changed = changed;
            }
            Err(failure) => done.failure = Some(failure),
        }
        done
    }

    /// Creates or updates a user on the application: an update reads what the
    /// application holds and patches what differs; a create first looks for an
    /// account with the same `userName` and takes it over.
    async fn put_user(
        &self,
        known: Option<&str>,
        desired: &Map<String, Value>,
        managed: &[String],
    ) -> Result<(Option<String>, Vec<String>), Failure> {
        if let Some(target) = known
            && let Some(current) = self.client.get(Resource::Users, target).await?
        {
            let operations = tessera_scim::outbound::patch_operations(
                current.as_object().unwrap_or(&Map::new()),
                desired,
                managed,
            );
            let changed = changed_paths(&operations);
            if self
                .client
                .patch(Resource::Users, target, operations)
                .await?
            {
                return Ok((Some(target.to_string()), changed));
            }
        }
        let user_name = desired
            .get(rules::MATCHING_ATTRIBUTE)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if user_name.is_empty() {
            return Err(Failure::Object("the mapping gives no userName".into()));
        }
        let adopt = |found: (String, Value)| async move {
            let (target, current) = found;
            let operations = tessera_scim::outbound::patch_operations(
                current.as_object().unwrap_or(&Map::new()),
                desired,
                managed,
            );
            let changed = changed_paths(&operations);
            self.client
                .patch(Resource::Users, &target, operations)
                .await?;
            Ok::<_, Failure>((Some(target), changed))
        };
        if let Some(found) = self
            .client
            .find(Resource::Users, rules::MATCHING_ATTRIBUTE, &user_name)
            .await?
        {
            return adopt(found).await;
        }
        match self.client.create(Resource::Users, desired).await {
            Ok(target) => Ok((Some(target), desired.keys().cloned().collect())),
            // Made meanwhile, or held under another spelling the filter finds now.
            Err(Failure::Conflict(why)) => {
                match self
                    .client
                    .find(Resource::Users, rules::MATCHING_ATTRIBUTE, &user_name)
                    .await?
                {
                    Some(found) => adopt(found).await,
                    None => Err(Failure::Object(why)),
                }
            }
            Err(failure) => Err(failure),
        }
    }

    /// Takes one group to where it should be: its name, and its members that
    /// the application holds as users.
    pub(super) async fn sync_group(
        &self,
        id: Uuid,
        group: Option<&GroupSpec>,
        members: Vec<String>,
        state: Option<&ObjectState>,
        forced: bool,
    ) -> (Done, Vec<String>) {
        let assigned = self.assigned_groups.contains(&id);
        let standing = match group {
            None => Standing::Deleted,
            Some(_) if !assigned => Standing::OutOfScope,
            Some(_) => Standing::InScope,
        };
        let known_target = state.and_then(|s| s.target_id.clone());
        let mut done = Done::new(standing, known_target.clone(), String::new());
        let desired = group
            .filter(|_| standing == Standing::InScope)
            .map(|spec| json!({"displayName": spec.display_name, "externalId": id.to_string()}));
        let hash = hash_of(&json!({"group": desired, "members": members}));
        done.hash = hash.clone();
        done.resource = desired.clone().unwrap_or(Value::Null);
        let known = match (state, &known_target) {
            (Some(s), Some(_)) => Some(Known {
                hash: &s.hash,
                active: true,
            }),
            _ => None,
        };
        // A group out of scope is deleted there: it has no `active` to clear.
        done.action = rules::decide(known.as_ref(), standing, &hash, rules::Deprovision::Delete);
        if !forced
            && let Some(s) = state
            && s.failures >= MAX_OBJECT_ATTEMPTS
            && s.failed_hash == hash
        {
            done.action = Action::None;
        }
        let sent_before: Vec<String> = state.map(|s| s.members.clone()).unwrap_or_default();
        let member_values = |ids: &[String]| -> Value {
            Value::Array(ids.iter().map(|m| json!({"value": m})).collect())
        };
        let result: Result<Option<String>, Failure> = match (done.action, &desired) {
            (Action::None, _) => return (done, sent_before),
            (Action::Delete, _) => {
                let target = known_target.clone().unwrap_or_default();
                self.client
                    .delete(Resource::Groups, &target)
                    .await
                    .map(|()| None)
            }
            (Action::Update, Some(desired)) => {
                let target = known_target.clone().unwrap_or_default();
                let mut operations = vec![
                    json!({"op": "replace", "path": "displayName", "value": desired["displayName"]}),
                ];
                let added: Vec<String> = members
                    .iter()
                    .filter(|m| !sent_before.contains(m))
                    .cloned()
                    .collect();
                if !added.is_empty() {
                    operations.push(
                        json!({"op": "add", "path": "members", "value": member_values(&added)}),
                    );
                }
                for gone in sent_before.iter().filter(|m| !members.contains(m)) {
                    let path = format!(
                        "members[value eq {}]",
                        serde_json::to_string(gone).unwrap_or_default()
                    );
                    operations.push(json!({"op": "remove", "path": path}));
                }
                done.changed = changed_paths(&operations);
                match self
                    .client
                    .patch(Resource::Groups, &target, operations)
                    .await
                {
                    Ok(true) => Ok(Some(target)),
                    Ok(false) => {
                        self.create_group(desired, &members, &member_values(&members))
                            .await
                    }
                    Err(failure) => Err(failure),
                }
            }
            (Action::Create, Some(desired)) => {
                done.changed = vec!["displayName".into(), "externalId".into(), "members".into()];
                self.create_group(desired, &members, &member_values(&members))
                    .await
            }
            _ => Ok(known_target.clone()),
        };
        match result {
            Ok(target) => {
                done.target_id = target;
                (done, members)
            }
            Err(failure) => {
                done.failure = Some(failure);
                (done, sent_before)
            }
        }
    }

    /// Creates a group, or takes over the one with its name and sets its members.
    async fn create_group(
        &self,
        desired: &Value,
        members: &[String],
        member_values: &Value,
    ) -> Result<Option<String>, Failure> {
        let name = desired["displayName"].as_str().unwrap_or_default();
        if let Some((target, _)) = self
            .client
            .find(Resource::Groups, "displayName", name)
            .await?
        {
            // Its members stay; Tessera's are added to them.
            let mut operations = vec![
                json!({"op": "replace", "path": "externalId", "value": desired["externalId"]}),
            ];
            if !members.is_empty() {
                operations.push(json!({"op": "add", "path": "members", "value": member_values}));
            }
            self.client
                .patch(Resource::Groups, &target, operations)
                .await?;
            return Ok(Some(target));
        }
        let mut body = desired.as_object().cloned().unwrap_or_default();
        if !members.is_empty() {
            body.insert("members".into(), member_values.clone());
        }
        self.client.create(Resource::Groups, &body).await.map(Some)
    }
}

/// The object's state after an outcome (`None`: forgotten).
pub(super) fn next_state(
    before: Option<&ObjectState>,
    endpoint: &str,
    id: Uuid,
    object_type: &str,
    name: &str,
    done: &Done,
    members: Vec<String>,
) -> Option<ObjectState> {
    let hash = done.hash.clone();
    let mut state = before.cloned().unwrap_or_else(|| ObjectState {
        object_id: id,
        object_type: object_type.to_string(),
        ..Default::default()
    });
    state.display_name = name.to_string();
    state.endpoint = endpoint.to_string();
    if let Some(failure) = &done.failure {
        state.failures = if state.failed_hash == hash {
            state.failures.saturating_add(1)
        } else {
            1
        };
        state.failed_hash = hash;
        state.last_error = Some(failure.message().to_string());
        return Some(state);
    }
    match done.action {
        Action::Delete => None,
        // Disabled there, or found gone.
        Action::Disable if done.target_id.is_none() => None,
        Action::Disable => {
            state.active = false;
            state.failures = 0;
            state.failed_hash.clear();
            state.last_error = None;
            Some(state)
        }
        _ => {
            state.target_id = done.target_id.clone();
            state.hash = hash;
            state.active = true;
            state.members = members;
            state.failures = 0;
            state.failed_hash.clear();
            state.last_error = None;
            Some(state)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(action: Action, failure: Option<&str>, hash: &str) -> Done {
        let mut done = Done::new(Standing::InScope, Some("t1".into()), String::new());
        done.action = action;
        done.failure = failure.map(|f| Failure::Object(f.into()));
        done.hash = hash.into();
        done
    }

    #[test]
    fn what_is_remembered_of_an_outcome() {
        let id = Uuid::from_u128(1);
        let made = next_state(
            None,
            "https://a",
            id,
            "user",
            "ada",
            &done(Action::Create, None, "h1"),
            vec![],
        )
        .unwrap();
        assert_eq!(
            (made.target_id.as_deref(), made.hash.as_str(), made.active),
            (Some("t1"), "h1", true)
        );
        assert_eq!(made.endpoint, "https://a");
        // Failures of the same resource count up; another resource starts again.
        let failed = next_state(
            Some(&made),
            "https://a",
            id,
            "user",
            "ada",
            &done(Action::Update, Some("no"), "h2"),
            vec![],
        )
        .unwrap();
        let again = next_state(
            Some(&failed),
            "https://a",
            id,
            "user",
            "ada",
            &done(Action::Update, Some("no"), "h2"),
            vec![],
        )
        .unwrap();
        assert_eq!(
            (again.failures, again.hash.as_str()),
            (2, "h1"),
            "what the target holds is unchanged"
        );
        let other = next_state(
            Some(&again),
            "https://a",
            id,
            "user",
            "ada",
            &done(Action::Update, Some("no"), "h3"),
            vec![],
        )
        .unwrap();
        assert_eq!(other.failures, 1);
        let fixed = next_state(
            Some(&other),
            "https://a",
            id,
            "user",
            "ada",
            &done(Action::Update, None, "h3"),
            vec![],
        )
        .unwrap();
        assert_eq!(
            (
                fixed.failures,
                fixed.last_error.as_deref(),
                fixed.hash.as_str()
            ),
            (0, None, "h3")
        );
        let mut disabled = done(Action::Disable, None, "h3");
        let off = next_state(
            Some(&fixed),
            "https://a",
            id,
            "user",
            "ada",
            &disabled,
            vec![],
        )
        .unwrap();
        assert!(!off.active);
        disabled.target_id = None;
        assert!(
            next_state(
                Some(&fixed),
                "https://a",
                id,
                "user",
                "ada",
                &disabled,
                vec![]
            )
            .is_none(),
            "gone there: forgotten"
        );
        assert!(
            next_state(
                Some(&fixed),
                "https://a",
                id,
                "user",
                "ada",
                &done(Action::Delete, None, ""),
                vec![]
            )
            .is_none()
        );
    }
}
