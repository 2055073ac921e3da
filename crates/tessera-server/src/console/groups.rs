//! Groups in the console: the list, a group's page (properties, members with add and
//! remove, nesting), create and edit (assigned or dynamic, with a rule editor that
//! checks the rule as it is typed and previews its members), delete.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tessera_directory::model::{DirectoryObjectRef, Group, GroupSpec, ObjectType, ProcessingState};
use tessera_directory::roles::action;
use tessera_service::{PageRequest, RulePreview, ServiceError, Versioned};
use tessera_store::Kind;
use uuid::Uuid;

use super::{
    Admin, ConsoleForm, ListQuery, Listing, Posted, confirm_delete_of, delete_at, done,
    form_refusal, holds, named_object, refused,
};
use crate::pages;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/groups", get(list).post(create))
        .route("/admin/groups.csv", get(export))
        .route("/admin/groups/new", get(new))
        .route("/admin/groups/rule-preview", post(rule_preview))
        .route("/admin/groups/{id}", get(detail))
        .route("/admin/groups/{id}/edit", get(edit).post(save))
        .route(
            "/admin/groups/{id}/delete",
            get(confirm_delete).post(delete),
        )
        .route("/admin/groups/{id}/members", post(add_member))
        .route(
            "/admin/groups/{id}/owners/{owner}/remove",
            post(remove_owner),
        )
        .route("/admin/groups/{id}/owners", post(add_owner))
        .route(
            "/admin/groups/{id}/members/{member}/remove",
            post(remove_member),
        )
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("The group was created."),
        "saved" => Some("Your changes were saved."),
        "deleted" => Some("The group was deleted."),
        "member-added" => Some("The member was added."),
        "member-removed" => Some("The member was removed."),
        "owner-added" => Some("The owner was added."),
        "owner-removed" => Some("The owner was removed."),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage<'a> {
    admin: &'a Admin,
    listing: Listing<Group>,
    notice: Option<&'static str>,
    may_create: bool,
}

async fn list(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    let listing = match state
        .app
        .directory
        .list::<GroupSpec>(&admin.ctx, &query.request())
        .await
    {
        Ok(page) => query.listing(page),
        Err(error) => return refused(error),
    };
    pages::page(
        StatusCode::OK,
        &GroupsPage {
            admin: &admin,
            listing,
            notice: notice(query.done.as_deref()),
            may_create: holds(&admin.ctx, action::GROUPS_CREATE),
        },
    )
}

/// The group form's values, as typed or as stored.
#[derive(Default)]
struct GroupValues {
    display_name: String,
    description: String,
    dynamic: bool,
    rule: String,
    paused: bool,
    role_assignable: bool,
}

impl GroupValues {
    fn of(spec: &GroupSpec) -> GroupValues {
        GroupValues {
            display_name: spec.display_name.clone(),
            description: spec.description.clone().unwrap_or_default(),
            dynamic: spec.is_dynamic(),
            rule: spec.membership_rule.clone().unwrap_or_default(),
            paused: spec.membership_rule_processing_state == ProcessingState::Paused,
            role_assignable: spec.is_assignable_to_role,
        }
    }

    fn from_form(form: &ConsoleForm) -> GroupValues {
        GroupValues {
            display_name: form.get("displayName").unwrap_or("").to_string(),
            description: form.get("description").unwrap_or("").to_string(),
            dynamic: form.get("membership") == Some("dynamic"),
            rule: form.get("membershipRule").unwrap_or("").to_string(),
            paused: form.checked("paused"),
            role_assignable: form.checked("isAssignableToRole"),
        }
    }

    /// The JSON the API takes; an assigned group has no rule.
    fn json(&self, new: bool) -> Value {
        let mut body = Map::new();
        body.insert("displayName".into(), json!(self.display_name));
        body.insert(
            "description".into(),
            if self.description.is_empty() {
                Value::Null
            } else {
                json!(self.description)
            },
        );
        if self.dynamic {
            body.insert("membershipRule".into(), json!(self.rule));
            body.insert(
                "membershipRuleProcessingState".into(),
                json!(if self.paused { "Paused" } else { "On" }),
            );
        } else {
            body.insert("membershipRule".into(), Value::Null);
        }
        if new {
            body.insert("isAssignableToRole".into(), json!(self.role_assignable));
            body.retain(|_, v| !v.is_null());
        }
        Value::Object(body)
    }
}

#[derive(Template)]
#[template(path = "console/group_form.html")]
struct GroupForm<'a> {
    admin: &'a Admin,
    heading: String,
    action: String,
    back: String,
    values: GroupValues,
    version: Option<i64>,
    is_new: bool,
    error: Option<String>,
}

async fn new(admin: Admin) -> Response {
    pages::page(
        StatusCode::OK,
        &GroupForm {
            admin: &admin,
            heading: "New group".to_string(),
            action: "/admin/groups".to_string(),
            back: "/admin/groups".to_string(),
            values: GroupValues::default(),
            version: None,
            is_new: true,
            error: None,
        },
    )
}

/// The form again with what was typed and why it was refused.
fn form_error(form: GroupForm<'_>, error: ServiceError) -> Response {
    match form_refusal(error, "group") {
        Ok((status, message)) => pages::page(
            status,
            &GroupForm {
                error: Some(message),
                ..form
            },
        ),
        Err(page) => page,
    }
}

async fn create(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let values = GroupValues::from_form(&form);
    match state
        .app
        .directory
        .create_group(&admin.ctx, values.json(true))
        .await
    {
        Ok(group) => pages::redirect(&format!("/admin/groups/{}?done=created", group.id)),
        Err(error) => form_error(
            GroupForm {
                admin: &admin,
                heading: "New group".to_string(),
                action: "/admin/groups".to_string(),
                back: "/admin/groups".to_string(),
                values,
                version: None,
                is_new: true,
                error: None,
            },
            error,
        ),
    }
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage<'a> {
    admin: &'a Admin,
    group: Group,
    members: Option<Vec<MemberRow>>,
    more_members: bool,
    /// `None` when the administrator may not read them.
    owners: Option<Vec<MemberRow>>,
    may_change_owners: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    may_edit: bool,
    may_delete: bool,
    may_change_members: bool,
}

/// One member as the page lists it: its name, what it is, and where its own page is.
struct MemberRow {
    id: Uuid,
    name: String,
    kind: &'static str,
    link: Option<String>,
}

impl MemberRow {
    fn of(member: DirectoryObjectRef) -> MemberRow {
        let (kind, link) = match member.object_type {
            ObjectType::User => ("User", Some(format!("/admin/users/{}", member.id))),
            ObjectType::Group => ("Group", Some(format!("/admin/groups/{}", member.id))),
            ObjectType::Device => ("Device", None),
            ObjectType::ServicePrincipal => ("Service principal", None),
        };
        MemberRow {
            id: member.id,
            name: member.display_name,
            kind,
            link,
        }
    }
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn detail(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(query): Query<DoneQuery>,
) -> Response {
    group_page(
        &state,
        &admin,
        id,
        notice(query.done.as_deref()),
        None,
        StatusCode::OK,
    )
    .await
}

async fn group_page(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    notice: Option<&'static str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let ctx = &admin.ctx;
    let group = match state.app.directory.get::<GroupSpec>(ctx, id).await {
        Ok(group) => group,
        Err(error) => return refused(error),
    };
    let request = PageRequest {
        cursor: None,
        limit: Some(200),
        search: None,
    };
    let (members, more_members) = match state
        .app
        .directory
        .list_group_members(ctx, id, false, &request)
        .await
    {
        Ok(page) => (
            Some(page.value.into_iter().map(MemberRow::of).collect()),
            page.next_cursor.is_some(),
        ),
        Err(ServiceError::Forbidden { .. }) => (None, false),
        Err(error) => return refused(error),
    };
    let owners = match state.app.directory.list_owners(ctx, Kind::Group, id).await {
        Ok(page) => Some(page.value.into_iter().map(MemberRow::of).collect()),
        Err(ServiceError::Forbidden { .. }) => None,
        Err(error) => return refused(error),
    };
    let dynamic = group.spec.is_dynamic();
    pages::page(
        status,
        &GroupPage {
            admin,
            group,
            members,
            more_members,
            owners,
            may_change_owners: holds(ctx, action::GROUPS_OWNERS_UPDATE),
            notice,
            error,
            may_edit: holds(ctx, action::GROUPS_BASIC_UPDATE),
            may_delete: holds(ctx, action::GROUPS_DELETE),
            may_change_members: !dynamic && holds(ctx, action::GROUPS_MEMBERS_UPDATE),
        },
    )
}

async fn edit(State(state): State<AppState>, admin: Admin, Path(id): Path<Uuid>) -> Response {
    let group = match state.app.directory.get::<GroupSpec>(&admin.ctx, id).await {
        Ok(group) => group,
        Err(error) => return refused(error),
    };
    pages::page(
        StatusCode::OK,
        &GroupForm {
            admin: &admin,
            heading: format!("Edit {}", group.spec.display_name),
            action: format!("/admin/groups/{id}/edit"),
            back: format!("/admin/groups/{id}"),
            values: GroupValues::of(&group.spec),
            version: Some(group.version),
            is_new: false,
            error: None,
        },
    )
}

async fn save(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let version = match form.version() {
        Ok(version) => version,
        Err(refusal) => return refusal,
    };
    let values = GroupValues::from_form(&form);
    let patch = Versioned::new(id, Some(version)).patch(values.json(false));
    match state.app.directory.update_group(&admin.ctx, patch).await {
        Ok(_) => pages::redirect(&format!("/admin/groups/{id}?done=saved")),
        Err(error) => form_error(
            GroupForm {
                admin: &admin,
                heading: "Edit group".to_string(),
                action: format!("/admin/groups/{id}/edit"),
                back: format!("/admin/groups/{id}"),
                values,
                version: Some(version),
                is_new: false,
                error: None,
            },
            error,
        ),
    }
}

async fn confirm_delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let found = state.app.directory.get::<GroupSpec>(&admin.ctx, id).await;
    confirm_delete_of(
        &admin,
        found,
        "group",
        |group| (&group.spec.display_name, group.version),
        "Its members stay in the directory; the group leaves every group, role and application assignment it was in.",
        &format!("/admin/groups/{id}"),
    )
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    Posted { admin, form }: Posted,
) -> Response {
    let directory = &state.app.directory;
    delete_at(&form, id, "/admin/groups?done=deleted", |at| {
        directory.delete_group(&admin.ctx, at)
    })
    .await
}

/// What a group links to from its page: its members, and its owners.
#[derive(Clone, Copy)]
enum Relation {
    Member,
    Owner,
}

impl Relation {
    fn noun(self) -> &'static str {
        match self {
            Relation::Member => "member",
            Relation::Owner => "owner",
        }
    }
}

async fn add_member(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    posted: Posted,
) -> Response {
    add_link(&state, id, posted, Relation::Member).await
}

async fn add_owner(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    posted: Posted,
) -> Response {
    add_link(&state, id, posted, Relation::Owner).await
}

/// Adds a member or an owner named by user principal name or object id.
async fn add_link(state: &AppState, id: Uuid, posted: Posted, relation: Relation) -> Response {
    let Posted { admin, form } = posted;
    let noun = relation.noun();
    let Some(named) = form.get(noun) else {
        return group_page(
            state,
            &admin,
            id,
            None,
            Some(format!(
                "Name the {noun} to add: a user principal name or an object id."
            )),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let object = match named_object(state, &admin, named).await {
        Ok(id) => id,
        Err(Ok(message)) => {
            return group_page(
                state,
                &admin,
                id,
                None,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Err(Err(page)) => return page,
    };
    let directory = &state.app.directory;
    let body = json!({ "id": object });
    let result = match relation {
        Relation::Member => directory.add_group_member(&admin.ctx, id, body).await,
        Relation::Owner => directory.add_owner(&admin.ctx, Kind::Group, id, body).await,
    };
    match result {
        Ok(()) => pages::redirect(&format!("/admin/groups/{id}?done={noun}-added")),
        Err(error @ (ServiceError::Validation(_) | ServiceError::Conflict { .. })) => {
            group_page(
                state,
                &admin,
                id,
                None,
                Some(error.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(error) => refused(error),
    }
}

async fn remove_owner(
    State(state): State<AppState>,
    Path((id, owner)): Path<(Uuid, Uuid)>,
    Posted { admin, form: _ }: Posted,
) -> Response {
    done(
        state
            .app
            .directory
            .remove_owner(&admin.ctx, Kind::Group, id, owner)
            .await,
        &format!("/admin/groups/{id}?done=owner-removed"),
    )
}

async fn remove_member(
    State(state): State<AppState>,
    Path((id, member)): Path<(Uuid, Uuid)>,
    Posted { admin, form: _ }: Posted,
) -> Response {
    done(
        state
            .app
            .directory
            .remove_group_member(&admin.ctx, id, member)
            .await,
        &format!("/admin/groups/{id}?done=member-removed"),
    )
}

#[derive(Template)]
#[template(path = "console/rule_preview.html")]
struct RulePreviewFragment {
    error: Option<String>,
    preview: Option<RulePreview>,
}

/// The rule editor's check, as the administrator types: an HTML fragment that says
/// what is wrong with the rule or which users it would hold. Sent by the page's
/// script with the anti-forgery token in a header.
async fn rule_preview(State(state): State<AppState>, Posted { admin, form }: Posted) -> Response {
    let rule = form.get("membershipRule").unwrap_or("");
    let fragment = if rule.is_empty() {
        RulePreviewFragment {
            error: Some("Write a rule, e.g. user.department -eq \"Sales\".".to_string()),
            preview: None,
        }
    } else {
        match state
            .app
            .directory
            .preview_membership_rule(&admin.ctx, rule)
            .await
        {
            Ok(preview) => RulePreviewFragment {
                error: None,
                preview: Some(preview),
            },
            Err(ServiceError::Validation(errors)) => RulePreviewFragment {
                error: Some(ServiceError::Validation(errors).to_string()),
                preview: None,
            },
            Err(error) => return refused(error),
        }
    };
    pages::page(StatusCode::OK, &fragment)
}

/// The groups the search selects, as CSV.
async fn export(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<ListQuery>,
) -> Response {
    let (directory, ctx) = (&state.app.directory, &admin.ctx);
    super::export_csv(
        &query,
        "groups.csv",
        &[
            "id",
            "displayName",
            "membership",
            "membershipRule",
            "isAssignableToRole",
        ],
        |request| async move { directory.list::<GroupSpec>(ctx, &request).await },
        |group: &Group| {
            vec![
                group.id.to_string(),
                group.spec.display_name.clone(),
                if group.spec.is_dynamic() {
                    "dynamic"
                } else {
                    "assigned"
                }
                .to_string(),
                group.spec.membership_rule.clone().unwrap_or_default(),
                group.spec.is_assignable_to_role.to_string(),
            ]
        },
    )
    .await
}
