//! Reading Conditional Access exports as administrators have them: the files Graph
//! or the Entra portal wrote (UTF-16 with a byte order mark, or UTF-8), OData
//! annotations, read-only fields, Entra role template ids, ids of groups and
//! locations from another tenant, Microsoft application ids.
//!
//! [`normalize_policy`] and [`normalize_location`] turn one document into the
//! native model, reporting every feature Tessera does not support;
//! [`plan`] resolves every reference against what the tenant has ([`Known`]) and
//! says, per policy, what was mapped, what only warrants a warning and what stops
//! the import. Nothing here writes: the caller imports the plan's ready items, in
//! one transaction, only when there is no error (or skips the items in error when
//! told to).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::*;
use crate::validate;

pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Decodes an export file: UTF-16 (little or big endian, with its byte order mark)
/// or UTF-8 (with or without one).
pub fn decode(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let utf16 = |bytes: &[u8], little: bool| {
        if !bytes.len().is_multiple_of(2) {
            return Err("is UTF-16 with an odd number of bytes".to_string());
        }
        let units = bytes.chunks_exact(2).map(|pair| {
            if little {
                u16::from_le_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], pair[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| "is not valid UTF-16".to_string())
    };
    match bytes {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [0xEF, 0xBB, 0xBF, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| "is not valid UTF-8".to_string())
        }
        // UTF-16 without a byte order mark starts with `{` and a zero byte.
        [b'{', 0, ..] => utf16(bytes, true),
        [0, b'{', ..] => utf16(bytes, false),
        _ => String::from_utf8(bytes.to_vec()).map_err(|_| "is not valid UTF-8".to_string()),
    }
}

/// What one file of an Entra export is, read from its content (an upload names
/// no folder): a Conditional Access policy, a named location, an exported group, or
/// the migration table of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportPart {
    Policy,
    NamedLocation,
    Group,
    MigrationTable,
    Unknown,
}

pub fn export_part(document: &Value) -> ExportPart {
    let Some(fields) = document.as_object() else {
        return ExportPart::Unknown;
    };
    let odata_type = fields
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    if odata_type.ends_with("namedlocation") {
        ExportPart::NamedLocation
    } else if fields.contains_key("conditions") || odata_type.ends_with("conditionalaccesspolicy") {
        ExportPart::Policy
    } else if fields.contains_key("Objects") && fields.contains_key("TenantId") {
        ExportPart::MigrationTable
    } else if fields.contains_key("groupTypes") || fields.contains_key("securityEnabled") {
        ExportPart::Group
    } else {
        ExportPart::Unknown
    }
}

/// Reads an export file into JSON.
pub fn parse_document(bytes: &[u8]) -> Result<Value, String> {
    let text = decode(bytes)?;
    serde_json::from_str(&text).map_err(|e| format!("is not JSON: {e}"))
}

fn is_annotation(key: &str) -> bool {
    key.starts_with('@') || key.contains("@odata.") || key.starts_with('#')
}

/// Removes OData annotations (`@odata.*`, `field@odata.type`, `#microsoft.graph.*`
/// actions) at every level.
pub fn strip_annotations(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !is_annotation(k));
            for v in map.values_mut() {
                strip_annotations(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_annotations),
        _ => {}
    }
}

/// One thing the import says about a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// JSON path in the document.
    pub field: String,
    pub message: String,
}

fn finding(field: impl Into<String>, message: impl Into<String>) -> Finding {
    Finding {
        field: field.into(),
        message: message.into(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty() || o.values().all(is_empty),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Fields Graph has and Tessera does not evaluate: harmless when empty, an
/// unsupported feature otherwise.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("conditions.times", "time-of-day conditions"),
    (
        "conditions.deviceStates",
        "device states (deprecated in Entra; use a filter for devices)",
    ),
    (
        "conditions.devices.includeDevices",
        "device states (deprecated in Entra; use a filter for devices)",
    ),
    (
        "conditions.devices.excludeDevices",
        "device states (deprecated in Entra; use a filter for devices)",
    ),
    (
        "conditions.devices.includeDeviceStates",
        "device states (deprecated in Entra; use a filter for devices)",
    ),
    (
        "conditions.devices.excludeDeviceStates",
        "device states (deprecated in Entra; use a filter for devices)",
    ),
    (
        "conditions.insiderRiskLevels",
        "insider risk (Microsoft Purview)",
    ),
    ("conditions.agents", "AI agent identities"),
    ("conditions.agentIdRiskLevels", "AI agent identities"),
    ("conditions.agentContext", "AI agent identities"),
    (
        "conditions.applications.applicationFilter",
        "filters for applications (custom security attributes on apps)",
    ),
    (
        "conditions.applications.globalSecureAccess",
        "Global Secure Access traffic profiles",
    ),
    (
        "conditions.applications.networkAccess",
        "Global Secure Access traffic profiles",
    ),
    (
        "conditions.clientApplications.servicePrincipalFilter",
        "filters for service principals",
    ),
    (
        "conditions.clientApplications.includeAgentIdServicePrincipals",
        "AI agent identities",
    ),
    (
        "conditions.clientApplications.excludeAgentIdServicePrincipals",
        "AI agent identities",
    ),
    (
        "conditions.clientApplications.agentIdServicePrincipalFilter",
        "AI agent identities",
    ),
    (
        "grantControls.customAuthenticationFactors",
        "custom controls",
    ),
    (
        "sessionControls.secureSignInSession",
        "token protection (device-bound sign-in sessions)",
    ),
    (
        "sessionControls.tokenProtection",
        "token protection (device-bound sign-in sessions)",
    ),
    (
        "sessionControls.blockSensitiveActions",
        "blocking sensitive actions",
    ),
    (
        "sessionControls.globalSecureAccessFilteringProfile",
        "Global Secure Access filtering profiles",
    ),
];

/// Fields Graph sets and a client does not.
const READ_ONLY: &[&str] = &[
    "id",
    "createdDateTime",
    "modifiedDateTime",
    "deletedDateTime",
    "templateId",
    "partialEnablementStrategy",
];

fn take_path(root: &mut Value, path: &str) -> Option<Value> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop()?;
    let mut node = root;
    for part in parts {
        node = node.as_object_mut()?.get_mut(part)?;
    }
    node.as_object_mut()?.remove(last)
}

/// A normalized document: the native JSON, plus what was left out.
#[derive(Debug, Clone)]
pub struct Normalized {
    pub id: Option<Uuid>,
    pub display_name: Option<String>,
    pub value: Value,
    /// Features present in the document that Tessera does not support.
    pub unsupported: Vec<Finding>,
}

fn remove_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
}

fn id_of(value: &Value) -> Option<Uuid> {
    value
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// Takes off annotations and read-only fields, reduces an embedded authentication
/// strength to its id, and reports (and removes) non-empty unsupported features.
/// Used for imports and for API writes alike, so Graph clients work unchanged.
pub fn normalize_policy(mut value: Value) -> Normalized {
    strip_annotations(&mut value);
    let id = id_of(&value);
    let display_name = value
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut unsupported = Vec::new();
    if let Some(map) = value.as_object_mut() {
        for field in READ_ONLY {
            map.remove(*field);
        }
    }
    for (path, what) in UNSUPPORTED {
        if let Some(removed) = take_path(&mut value, path)
            && !is_empty(&removed)
        {
            unsupported.push(finding(*path, format!("{what} are not supported")));
        }
    }
    let apps = "conditions.applications.includeApplications";
    if let Some(list) = value
        .pointer_mut("/conditions/applications/includeApplications")
        .and_then(Value::as_array_mut)
    {
        for special in ["AllAgentIdResources"] {
            if list.iter().any(|v| v == special) {
                unsupported.push(finding(
                    apps,
                    format!("{special} (AI agent resources) is not supported"),
                ));
                list.retain(|v| v != special);
            }
        }
    }
    if let Some(strength) = value.pointer_mut("/grantControls/authenticationStrength")
        && let Some(map) = strength.as_object_mut()
    {
        let id = map.get("id").cloned();
        map.clear();
        if let Some(id) = id {
            map.insert("id".to_string(), id);
        }
    }
    // Graph writes null for an absent object; the model says absent.
    for pointer in [
        "",
        "/conditions",
        "/grantControls",
        "/sessionControls",
        "/conditions/users",
        "/conditions/applications",
        "/conditions/devices",
        "/sessionControls/signInFrequency",
        "/conditions/users/includeGuestsOrExternalUsers",
        "/conditions/users/excludeGuestsOrExternalUsers",
    ] {
        if let Some(map) = value.pointer_mut(pointer).and_then(Value::as_object_mut) {
            remove_nulls(map);
        }
    }
    for controls in ["/sessionControls"] {
        if let Some(map) = value.pointer_mut(controls).and_then(Value::as_object_mut) {
            for v in map.values_mut() {
                if let Some(inner) = v.as_object_mut() {
                    remove_nulls(inner);
                }
            }
        }
    }
    if value.pointer("/conditions/devices").is_some_and(is_empty)
        && let Some(c) = value
            .pointer_mut("/conditions")
            .and_then(Value::as_object_mut)
    {
        c.remove("devices");
    }
    Normalized {
        id,
        display_name,
        value,
        unsupported,
    }
}

/// The same for a named location; compliant-network and other location kinds are
/// unsupported.
pub fn normalize_location(mut value: Value) -> Normalized {
    let kind = value
        .get("@odata.type")
        .and_then(Value::as_str)
        .map(str::to_string);
    strip_annotations(&mut value);
    let id = id_of(&value);
    let display_name = value
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut unsupported = Vec::new();
    if let Some(map) = value.as_object_mut() {
        for field in READ_ONLY {
            map.remove(*field);
        }
        remove_nulls(map);
        match kind.as_deref() {
            Some("#microsoft.graph.ipNamedLocation" | "#microsoft.graph.countryNamedLocation") => {
                map.insert("@odata.type".to_string(), Value::String(kind.clone().unwrap_or_default()));
            }
            Some(other) => unsupported.push(finding(
                "@odata.type",
                format!("{other} locations are not supported (IP ranges and countries are)"),
            )),
            None => unsupported.push(finding(
                "@odata.type",
                "a named location says its kind: #microsoft.graph.ipNamedLocation or #microsoft.graph.countryNamedLocation",
            )),
        }
    }
    Normalized {
        id,
        display_name,
        value,
        unsupported,
    }
}

/// Reads normalized JSON into a model type, with the path of the first problem.
pub fn read<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, Finding> {
    tessera_directory::patch::parse_spec(value.clone()).map_err(|errors| {
        let first = errors.errors.into_iter().next();
        let (field, message) = first.map(|e| (e.field, e.message)).unwrap_or_default();
        finding(field, message)
    })
}

// ---------------------------------------------------------------------------------
// Resolution

/// What the tenant has, for resolving references.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Every group: id to display name.
    pub groups: HashMap<Uuid, String>,
    pub users: HashSet<Uuid>,
    /// Application (client) ids.
    pub apps: HashSet<Uuid>,
    pub service_principals: HashSet<Uuid>,
    pub locations: HashSet<Uuid>,
    /// Custom authentication strengths (built-in ones are always known).
    pub strengths: HashSet<Uuid>,
    pub terms_of_use: HashSet<Uuid>,
}

/// The export's own description of objects it names: `Groups/*.json` and the
/// migration table (`MigrationTable.json`: `Objects` with `Id`, `DisplayName`,
/// `Type`).
#[derive(Debug, Clone, Default)]
pub struct ExportObjects {
    pub group_names: HashMap<Uuid, String>,
}

impl ExportObjects {
    pub fn add_group(&mut self, value: &Value) {
        if let (Some(id), Some(name)) = (
            id_of(value),
            value.get("displayName").and_then(Value::as_str),
        ) {
            self.group_names.insert(id, name.to_string());
        }
    }

    pub fn add_migration_table(&mut self, value: &Value) {
        for object in value
            .get("Objects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = object
                .get("Id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok());
            let name = object.get("DisplayName").and_then(Value::as_str);
            let kind = object.get("Type").and_then(Value::as_str);
            if let (Some(id), Some(name), Some("Group")) = (id, name, kind) {
                self.group_names
                    .entry(id)
                    .or_insert_with(|| name.to_string());
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mapping {
    pub field: String,
    pub from: String,
    pub to: String,
    pub how: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemStatus {
    /// Would be imported as mapped.
    Ready,
    /// Has errors: not imported.
    Error,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemReport {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mapped: Vec<Mapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub named_locations: Vec<ItemReport>,
    pub policies: Vec<ItemReport>,
}

impl Report {
    pub fn error_count(&self) -> usize {
        self.policies
            .iter()
            .chain(&self.named_locations)
            .filter(|i| i.status == ItemStatus::Error)
            .count()
    }
}

/// What an import would write.
#[derive(Debug, Clone)]
pub struct Plan {
    pub report: Report,
    /// Ready named locations, keyed by their exported id.
    pub named_locations: Vec<(Uuid, NamedLocationSpec)>,
    /// Ready policies, with references mapped, keyed by their exported id.
    pub policies: Vec<(Uuid, PolicySpec)>,
}

/// An export: file name and parsed JSON of each document.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub policies: Vec<(String, Value)>,
    pub named_locations: Vec<(String, Value)>,
    pub objects: ExportObjects,
}

/// Microsoft's first-party applications exports name most often.
const MICROSOFT_APPS: &[(&str, &str)] = &[
    (
        "00000002-0000-0ff1-ce00-000000000000",
        "Office 365 Exchange Online",
    ),
    (
        "00000003-0000-0ff1-ce00-000000000000",
        "Office 365 SharePoint Online",
    ),
    ("00000003-0000-0000-c000-000000000000", "Microsoft Graph"),
    ("0000000a-0000-0000-c000-000000000000", "Microsoft Intune"),
    (
        "d4ebce55-015a-49b5-a083-c84d1797ae8c",
        "Microsoft Intune Enrollment",
    ),
    (
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
        "Windows Azure Service Management API",
    ),
    (
        "14d82eec-204b-4c2f-b7e8-296a70dab67e",
        "Microsoft Graph Command Line Tools",
    ),
    ("2793995e-0a7d-40d7-bd35-6968ba142197", "My Apps"),
    (
        "f53895d3-095d-408f-8e93-8f94b391404e",
        "Microsoft Authenticator",
    ),
    (
        "00000012-0000-0000-c000-000000000000",
        "Microsoft Rights Management Services",
    ),
    (
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        "Microsoft Azure CLI",
    ),
    (
        "1950a258-227b-4e31-a9cf-717495945fc2",
        "Microsoft Azure PowerShell",
    ),
];

struct Resolver<'a> {
    known: &'a Known,
    objects: &'a ExportObjects,
    /// Exported location id to the id it gets here.
    locations: &'a HashMap<Uuid, Uuid>,
    /// Display name (lower case) to the groups here with that name.
    group_by_name: HashMap<String, Vec<Uuid>>,
}

#[derive(Default)]
struct ItemLog {
    mapped: Vec<Mapping>,
    warnings: Vec<Finding>,
    errors: Vec<Finding>,
}

impl Resolver<'_> {
    fn group(&self, field: &str, text: &str, log: &mut ItemLog) -> Option<String> {
        let Ok(id) = Uuid::parse_str(text) else {
            return Some(text.to_string());
        };
        if self.known.groups.contains_key(&id) {
            return Some(text.to_string());
        }
        let Some(name) = self.objects.group_names.get(&id) else {
            log.errors.push(finding(
                field,
                format!("group {id} is not in this directory and the export does not name it (add Groups/ or MigrationTable.json)"),
            ));
            return None;
        };
        match self
            .group_by_name
            .get(&name.to_lowercase())
            .map(Vec::as_slice)
        {
            Some([only]) => {
                log.mapped.push(Mapping {
                    field: field.to_string(),
                    from: id.to_string(),
                    to: only.to_string(),
                    how: format!("group {name:?} by display name"),
                });
                Some(only.to_string())
            }
            Some(many) if many.len() > 1 => {
                log.errors.push(finding(
                    field,
                    format!("{} groups here are named {name:?}: rename all but one, or create the group with id {id}", many.len()),
                ));
                None
            }
            _ => {
                log.errors.push(finding(
                    field,
                    format!(
                        "group {name:?} ({id}) does not exist here: create it, then import again"
                    ),
                ));
                None
            }
        }
    }

    fn user(&self, field: &str, text: &str, log: &mut ItemLog) -> Option<String> {
        let Ok(id) = Uuid::parse_str(text) else {
            return Some(text.to_string());
        };
        if self.known.users.contains(&id) {
            return Some(text.to_string());
        }
        log.errors
            .push(finding(field, format!("user {id} does not exist here")));
        None
    }

    fn role(&self, field: &str, text: &str, log: &mut ItemLog) -> Option<String> {
        if let Ok(id) = Uuid::parse_str(text) {
            match tessera_directory::roles::built_in(id) {
                Some(role) => log.mapped.push(Mapping {
                    field: field.to_string(),
                    from: text.to_string(),
                    to: text.to_string(),
                    how: format!("role template {:?}", role.display_name),
                }),
                None => log.warnings.push(finding(
                    field,
                    format!("role template {id} is not a role here: nobody can hold it, so it matches nobody"),
                )),
            }
        }
        Some(text.to_string())
    }

    fn app(&self, field: &str, text: &str, log: &mut ItemLog) -> Option<String> {
        match text {
            validate::ADMIN_PORTALS => log.mapped.push(Mapping {
                field: field.to_string(),
                from: text.to_string(),
                to: text.to_string(),
                how: "Tessera's management API and command line".to_string(),
            }),
            validate::OFFICE_365 => log.warnings.push(finding(
                field,
                "Office365 is Microsoft's application suite: no application here belongs to it",
            )),
            _ => {
                if let Ok(id) = Uuid::parse_str(text)
                    && !self.known.apps.contains(&id)
                {
                    let name = MICROSOFT_APPS
                        .iter()
                        .find(|(app, _)| *app == text)
                        .map(|(_, n)| format!(" ({n}, a Microsoft application)"))
                        .unwrap_or_default();
                    log.warnings.push(finding(
                        field,
                        format!("no application here has the id {id}{name}; the policy applies to it once one is registered with that application id"),
                    ));
                }
            }
        }
        Some(text.to_string())
    }

    fn location(&self, field: &str, text: &str, log: &mut ItemLog) -> Option<String> {
        let Ok(id) = Uuid::parse_str(text) else {
            return Some(text.to_string());
        };
        if let Some(to) = self.locations.get(&id) {
            if *to != id {
                log.mapped.push(Mapping {
                    field: field.to_string(),
                    from: id.to_string(),
                    to: to.to_string(),
                    how: "named location from the export".to_string(),
                });
            }
            return Some(to.to_string());
        }
        if self.known.locations.contains(&id) {
            return Some(text.to_string());
        }
        log.errors.push(finding(
            field,
            format!("named location {id} is neither in the export (NamedLocations/) nor here, or could not be imported"),
        ));
        None
    }

    fn service_principal(&self, field: &str, text: &str, log: &mut ItemLog) -> Option<String> {
        if let Ok(id) = Uuid::parse_str(text)
            && !self.known.service_principals.contains(&id)
        {
            log.errors.push(finding(
                field,
                format!("service principal {id} does not exist here"),
            ));
            return None;
        }
        Some(text.to_string())
    }
}

type Resolve<'r> = fn(&Resolver<'r>, &str, &str, &mut ItemLog) -> Option<String>;

fn map_list<'r>(
    resolver: &Resolver<'r>,
    log: &mut ItemLog,
    field: &str,
    list: &mut Vec<String>,
    resolve: Resolve<'r>,
) {
    let mut out = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        if let Some(mapped) = resolve(resolver, &format!("{field}[{index}]"), item, log) {
            out.push(mapped);
        }
    }
    *list = out;
}

fn resolve_policy(resolver: &Resolver<'_>, spec: &mut PolicySpec, log: &mut ItemLog) {
    let c = &mut spec.conditions;
    if let Some(users) = &mut c.users {
        let base = "conditions.users";
        map_list(
            resolver,
            log,
            &format!("{base}.includeUsers"),
            &mut users.include_users,
            Resolver::user,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.excludeUsers"),
            &mut users.exclude_users,
            Resolver::user,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.includeGroups"),
            &mut users.include_groups,
            Resolver::group,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.excludeGroups"),
            &mut users.exclude_groups,
            Resolver::group,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.includeRoles"),
            &mut users.include_roles,
            Resolver::role,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.excludeRoles"),
            &mut users.exclude_roles,
            Resolver::role,
        );
        if users.include_guests_or_external_users.is_some()
            || users.exclude_guests_or_external_users.is_some()
        {
            log.mapped.push(Mapping {
                field: format!("{base}.includeGuestsOrExternalUsers"),
                from: "guest or external user types".to_string(),
                to: "users whose userType is guest".to_string(),
                how: "guests here are internal guests (no cross-tenant access)".to_string(),
            });
        }
    }
    let apps = &mut c.applications;
    let base = "conditions.applications";
    map_list(
        resolver,
        log,
        &format!("{base}.includeApplications"),
        &mut apps.include_applications,
        Resolver::app,
    );
    map_list(
        resolver,
        log,
        &format!("{base}.excludeApplications"),
        &mut apps.exclude_applications,
        Resolver::app,
    );
    for context in &apps.include_authentication_context_class_references {
        log.mapped.push(Mapping {
            field: format!("{base}.includeAuthenticationContextClassReferences"),
            from: context.clone(),
            to: context.clone(),
            how: "authentication context, asked for with acr_values".to_string(),
        });
    }
    if let Some(workloads) = &mut c.client_applications {
        let base = "conditions.clientApplications";
        map_list(
            resolver,
            log,
            &format!("{base}.includeServicePrincipals"),
            &mut workloads.include_service_principals,
            Resolver::service_principal,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.excludeServicePrincipals"),
            &mut workloads.exclude_service_principals,
            Resolver::service_principal,
        );
    }
    if let Some(locations) = &mut c.locations {
        let base = "conditions.locations";
        map_list(
            resolver,
            log,
            &format!("{base}.includeLocations"),
            &mut locations.include_locations,
            Resolver::location,
        );
        map_list(
            resolver,
            log,
            &format!("{base}.excludeLocations"),
            &mut locations.exclude_locations,
            Resolver::location,
        );
    }
    if let Some(flows) = &c.authentication_flows
        && flows.transfer_methods.contains("authenticationTransfer")
    {
        log.warnings.push(finding(
            "conditions.authenticationFlows.transferMethods",
            "authenticationTransfer (moving a sign-in between Microsoft apps) does not happen here; deviceCodeFlow does",
        ));
    }
    if let Some(grant) = &spec.grant_controls {
        if let Some(strength) = &grant.authentication_strength {
            let built_in = tessera_authn::strength::built_in();
            if let Some(found) = built_in.iter().find(|s| s.id == strength.id) {
                log.mapped.push(Mapping {
                    field: "grantControls.authenticationStrength".to_string(),
                    from: strength.id.to_string(),
                    to: strength.id.to_string(),
                    how: format!("built-in strength {:?}", found.display_name),
                });
            } else if !resolver.known.strengths.contains(&strength.id) {
                log.errors.push(finding(
                    "grantControls.authenticationStrength",
                    format!(
                        "authentication strength {} does not exist here: create it first",
                        strength.id
                    ),
                ));
            }
        }
        for (index, terms) in grant.terms_of_use.iter().enumerate() {
            if Uuid::parse_str(terms).is_ok_and(|id| !resolver.known.terms_of_use.contains(&id)) {
                log.errors.push(finding(
                    format!("grantControls.termsOfUse[{index}]"),
                    format!("terms of use {terms} do not exist here: create them first"),
                ));
            }
        }
    }
}

/// Options for [`plan`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Import every policy in this state (e.g. report-only, to watch before
    /// enforcing).
    pub state: Option<PolicyState>,
}

/// Plans an import: every document normalized, validated and resolved.
pub fn plan(export: &Export, known: &Known, options: Options) -> Plan {
    let mut group_by_name: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (id, name) in &known.groups {
        group_by_name
            .entry(name.to_lowercase())
            .or_default()
            .push(*id);
    }
    let mut location_reports = Vec::new();
    let mut locations = Vec::new();
    let mut location_ids = HashMap::new();
    for (file, value) in &export.named_locations {
        let normalized = normalize_location(value.clone());
        let mut log = ItemLog {
            errors: normalized.unsupported.clone(),
            ..Default::default()
        };
        let mut spec = None;
        if log.errors.is_empty() {
            match read::<NamedLocationSpec>(&normalized.value) {
                Ok(parsed) => match validate::named_location(&parsed) {
                    Ok(()) => spec = Some(parsed),
                    Err(errors) => log.errors.extend(
                        errors
                            .errors
                            .into_iter()
                            .map(|e| finding(e.field, e.message)),
                    ),
                },
                Err(f) => log.errors.push(f),
            }
        }
        let id = normalized.id.unwrap_or_else(Uuid::new_v4);
        if let Some(spec) = spec {
            location_ids.insert(id, id);
            locations.push((id, spec));
        }
        location_reports.push(ItemReport {
            file: file.clone(),
            id: normalized.id,
            display_name: normalized.display_name,
            status: if log.errors.is_empty() {
                ItemStatus::Ready
            } else {
                ItemStatus::Error
            },
            mapped: log.mapped,
            warnings: log.warnings,
            errors: log.errors,
        });
    }
    let resolver = Resolver {
        known,
        objects: &export.objects,
        locations: &location_ids,
        group_by_name,
    };
    let mut policy_reports = Vec::new();
    let mut policies = Vec::new();
    let mut seen: BTreeMap<Uuid, String> = BTreeMap::new();
    for (file, value) in &export.policies {
        let normalized = normalize_policy(value.clone());
        let mut log = ItemLog {
            errors: normalized.unsupported.clone(),
            ..Default::default()
        };
        let id = normalized.id.unwrap_or_else(Uuid::new_v4);
        if let Some(other) = seen.insert(id, file.clone()) {
            log.errors
                .push(finding("id", format!("the same policy id is in {other}")));
        }
        match read::<PolicySpec>(&normalized.value) {
            Ok(mut spec) => {
                resolve_policy(&resolver, &mut spec, &mut log);
                if let Some(state) = options.state
                    && state != spec.state
                {
                    log.mapped.push(Mapping {
                        field: "state".to_string(),
                        from: serde_json::to_value(spec.state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        to: serde_json::to_value(state)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        how: "as asked for the import".to_string(),
                    });
                    spec.state = state;
                }
                if log.errors.is_empty() {
                    match validate::policy(&spec) {
                        Ok(()) => policies.push((id, spec)),
                        Err(errors) => log.errors.extend(
                            errors
                                .errors
                                .into_iter()
                                .map(|e| finding(e.field, e.message)),
                        ),
                    }
                }
            }
            Err(f) => log.errors.push(finding(
                f.field.clone(),
                format!("{} (not a field or value Tessera supports)", f.message),
            )),
        }
        policy_reports.push(ItemReport {
            file: file.clone(),
            id: normalized.id,
            display_name: normalized.display_name,
            status: if log.errors.is_empty() {
                ItemStatus::Ready
            } else {
                ItemStatus::Error
            },
            mapped: log.mapped,
            warnings: log.warnings,
            errors: log.errors,
        });
    }
    Plan {
        report: Report {
            named_locations: location_reports,
            policies: policy_reports,
        },
        named_locations: locations,
        policies,
    }
}
