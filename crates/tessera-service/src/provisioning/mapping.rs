//! The tenant's attribute mapping from SCIM users to the directory's users.
//!
//! Without one the default mapping applies ([`default_user_mapping`]); a tenant
//! may replace it whole (`userMapping` in the provisioning settings), checked
//! when saved. A SCIM attribute is read by its path, as filters name it
//! (`name.givenName`, `emails[type eq "work"].value`, the enterprise extension's
//! attributes qualified or bare).
//!
//! What a client reads back and what its filters see follow the mapping: an
//! attribute the default mapping carries, and the tenant's mapping carries the
//! same way, is read from the directory (true whoever changed it); the others
//! from the source as the client sent it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tessera_core::TenantId;
use tessera_directory::model::{AttributeDefinitionSpec, AttributeStatus, AttributeType};
use tessera_provisioning::expression::{Attributes, Env, Val};
use tessera_provisioning::mapping::{AttributeMapping, Compiled, Mapping, Output, SourceSchema};
use tessera_provisioning::targets::{CustomTarget, DirectoryUsers, TargetType};
use tessera_scim::ScimError;
use tessera_scim::path::PatchPath;
use tessera_scim::schema::{ENTERPRISE_USER, USER_TYPE};
use tessera_store::{Kind, Reader};

use super::settings::ProvisioningSettings;
use crate::Context;
use crate::error::{ServiceError, ServiceResult};

/// The default mapping: (target, expression, default value).
const DEFAULT_USER_MAPPING: &[(&str, &str, Option<&str>)] = &[
    ("userPrincipalName", "[userName]", None),
    (
        "displayName",
        r#"Coalesce([displayName], [name.formatted], Join(" ", [name.givenName], [name.familyName]), [userName])"#,
        None,
    ),
    ("givenName", "[name.givenName]", None),
    ("surname", "[name.familyName]", None),
    ("accountEnabled", "[active]", Some("True")),
    (
        "mail",
        r#"Coalesce([emails[primary eq true].value], [emails[type eq "work"].value], [emails.value])"#,
        None,
    ),
    ("jobTitle", "[title]", None),
    ("employeeType", "[userType]", None),
    ("employeeId", "[enterprise:employeeNumber]", None),
    ("department", "[enterprise:department]", None),
    ("companyName", "[enterprise:organization]", None),
    ("employeeOrgData.division", "[enterprise:division]", None),
    (
        "employeeOrgData.costCenter",
        "[enterprise:costCenter]",
        None,
    ),
    ("managerId", "[enterprise:manager.value]", None),
];

/// The default mapping from SCIM users to the directory's users.
pub fn default_user_mapping() -> Mapping {
    Mapping {
        attributes: DEFAULT_USER_MAPPING
            .iter()
            .map(|(target, expression, default)| AttributeMapping {
                target: (*target).to_string(),
                expression: expression.replace("enterprise:", &format!("{ENTERPRISE_USER}:")),
                default_value: default.map(str::to_string),
                apply: Default::default(),
            })
            .collect(),
    }
}

/// SCIM users as a mapping's source: attribute paths checked against the schema.
struct ScimUsers;

impl SourceSchema for ScimUsers {
    fn check(&self, attribute: &str) -> Result<(), String> {
        let path = PatchPath::parse(attribute).map_err(|e| e.detail)?;
        let empty = Map::new();
        tessera_scim::eval::values_at(&USER_TYPE, &empty, &path)
            .map(|_| ())
            .map_err(|e| e.detail)
    }
}

/// One SCIM user as a mapping's source.
struct ScimUser<'a>(&'a Map<String, Value>);

impl Attributes for ScimUser<'_> {
    fn value(&self, name: &str) -> Val {
        let Ok(path) = PatchPath::parse(name) else {
            return Val::Null;
        };
        let Ok((values, multi)) = tessera_scim::eval::values_at(&USER_TYPE, self.0, &path) else {
            return Val::Null;
        };
        let one = |v: &Value| -> Option<Val> {
            match v {
                Value::String(s) => Some(Val::Text(s.clone())),
                Value::Bool(b) => Some(Val::Bool(*b)),
                Value::Number(n) => Some(Val::Text(n.to_string())),
                _ => None,
            }
        };
        if multi {
            let texts: Vec<String> = values
                .iter()
                .filter_map(|v| one(v).and_then(|v| v.text()))
                .collect();
            if texts.is_empty() {
                Val::Null
            } else {
                Val::List(texts)
            }
        } else {
            values.first().and_then(|v| one(v)).unwrap_or(Val::Null)
        }
    }
}

/// A custom security attribute as a mapping target, spelt as its definition is.
pub(crate) fn custom_target(definition: &AttributeDefinitionSpec) -> Option<CustomTarget> {
    if definition.status == AttributeStatus::Deprecated {
        return None;
    }
    let kind = match (definition.attribute_type, definition.is_collection) {
        (AttributeType::String, false) => TargetType::Text,
        (AttributeType::String, true) => TargetType::TextList,
        (AttributeType::Integer, false) => TargetType::Integer,
        (AttributeType::Integer, true) => TargetType::IntegerList,
        (AttributeType::Boolean, false) => TargetType::Boolean,
        // No value can be assigned to it.
        (AttributeType::Boolean, true) => return None,
    };
    Some((
        definition.attribute_set.clone(),
        definition.name.clone(),
        kind,
    ))
}

/// Checks a mapping against SCIM users and the tenant's directory.
fn compile(
    mapping: &Mapping,
    definitions: &BTreeMap<String, AttributeDefinitionSpec>,
) -> Result<Compiled, tessera_provisioning::MappingError> {
    let custom = |set: &str, name: &str| {
        definitions
            .get(&format!("{set}_{name}").to_lowercase())
            .and_then(custom_target)
    };
    mapping.compile(&ScimUsers, &DirectoryUsers { custom: &custom })
}

/// Checks a tenant's mapping when it is saved.
pub(crate) async fn check_user_mapping(
    reader: &mut dyn Reader,
    tenant: TenantId,
    mapping: &Mapping,
) -> ServiceResult<()> {
    let definitions = if writes_custom(mapping) {
        crate::directory::attributes::definitions(reader, tenant).await?
    } else {
        BTreeMap::new()
    };
    compile(mapping, &definitions).map_err(|e| invalid_mapping("userMapping", e))?;
    Ok(())
}

/// A mapping's problems as validation errors, each at its place.
pub(crate) fn invalid_mapping(
    field: &str,
    error: tessera_provisioning::MappingError,
) -> ServiceError {
    let mut errors = tessera_directory::ValidationErrors::new();
    for (at, what) in error.problems {
        errors.add(format!("{field}.{at}"), what);
    }
    ServiceError::Validation(errors)
}

/// Whether a mapping writes custom security attributes.
pub(crate) fn writes_custom(mapping: &Mapping) -> bool {
    mapping.attributes.iter().any(|a| {
        a.target
            .trim()
            .starts_with(tessera_provisioning::targets::CUSTOM_PREFIX)
    })
}

/// The mapping in effect for a tenant, ready to apply.
pub(crate) struct UserMapper {
    compiled: Compiled,
    /// The targets the tenant's mapping carries as the default does.
    defaults: Vec<&'static str>,
    default_domain: Option<String>,
    env: Env,
    /// The mapping writes custom security attributes.
    writes_custom: bool,
    /// The tenant's mapping no longer holds: users cannot be written.
    broken: bool,
}

/// What a SCIM user makes of the directory's attributes.
#[derive(Debug)]
pub(crate) struct Mapped {
    /// A Graph-shaped patch: what to set (`null` clears).
    pub patch: Map<String, Value>,
    /// The user principal name's candidates when the mapping chooses a unique one.
    pub unique_upn: Option<Vec<String>>,
}

fn failure(error: tessera_provisioning::MappingError) -> ScimError {
    ScimError::invalid_value(error.to_string())
}

impl UserMapper {
    pub(crate) async fn load(
        reader: &mut dyn Reader,
        tenant: TenantId,
        settings: &ProvisioningSettings,
        now: tessera_core::Timestamp,
    ) -> ServiceResult<UserMapper> {
        let default = default_user_mapping();
        let mapping = settings.user_mapping.as_ref().unwrap_or(&default);
        let definitions = if writes_custom(mapping) {
            crate::directory::attributes::definitions(reader, tenant).await?
        } else {
            BTreeMap::new()
        };
        // A mapping that no longer compiles (a custom security attribute it writes
        // was deprecated since) refuses every user write until it is fixed;
        // reads go on as the default mapping reads.
        match compile(mapping, &definitions) {
            Ok(compiled) => UserMapper::new(compiled, settings.default_domain.clone(), now),
            Err(error) => {
                tracing::warn!(%tenant, %error, "the provisioning attribute mapping no longer holds");
                let compiled = compile(&default, &BTreeMap::new())
                    .map_err(|e| ServiceError::Internal(format!("the default mapping: {e}")))?;
                let mut mapper = UserMapper::new(compiled, settings.default_domain.clone(), now)?;
                mapper.broken = true;
                Ok(mapper)
            }
        }
    }

    fn new(
        compiled: Compiled,
        default_domain: Option<String>,
        now: tessera_core::Timestamp,
    ) -> ServiceResult<UserMapper> {
        let reference = compile(&default_user_mapping(), &BTreeMap::new())
            .map_err(|e| ServiceError::Internal(format!("the default mapping: {e}")))?;
        let same = |target: &str| {
            compiled
                .of(target)
                .zip(reference.of(target))
                .is_some_and(|(a, d)| {
                    a.expression == d.expression
                        && a.default_value == d.default_value
                        && a.apply == d.apply
                })
        };
        // A Graph attribute reads back from the directory when every target in it
        // is carried as the default carries it (employeeOrgData has two).
        let defaults = tessera_scim::graph::USER_ATTRIBUTES
            .iter()
            .copied()
            .filter(|g| {
                let mut targets = reference
                    .attributes
                    .iter()
                    .filter(|d| d.target.name.split('.').next() == Some(*g))
                    .peekable();
                targets.peek().is_some() && targets.all(|d| same(&d.target.name))
            })
            .collect();
        let env = Env {
            now: time::OffsetDateTime::from_unix_timestamp(now.unix_seconds())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        };
        let writes_custom = compiled.attributes.iter().any(|a| {
            a.target
                .name
                .starts_with(tessera_provisioning::targets::CUSTOM_PREFIX)
        });
        Ok(UserMapper {
            compiled,
            defaults,
            default_domain,
            env,
            writes_custom,
            broken: false,
        })
    }

    /// Who writes a mapped user: the caller, and a provisioning token or client
    /// may also write the custom security attributes the mapping writes (whoever
    /// saved the mapping was allowed to; the SCIM API sets them no other way).
    pub(crate) fn writer(&self, ctx: &Context) -> Context {
        let mut ctx = ctx.clone();
        if self.writes_custom && matches!(ctx.caller.principal, crate::Principal::Workload { .. }) {
            ctx.caller.grants.push(tessera_directory::authz::Grant {
                assignment_id: uuid::Uuid::nil(),
                role_id: tessera_directory::roles::ATTRIBUTE_ASSIGNMENT_ADMINISTRATOR,
                scope: tessera_directory::model::DirectoryScope::Tenant,
            });
        }
        ctx
    }

    /// Whether the directory's value of a Graph attribute is what a client reads
    /// (the mapping carries it as the default does).
    pub(crate) fn is_default(&self, graph_attribute: &str) -> bool {
        self.defaults.contains(&graph_attribute)
    }

    /// The domain added to a userName without `@`.
    pub(crate) fn default_domain(&self) -> Option<&str> {
        self.default_domain.as_deref()
    }

    /// The user principal name a userName gives (the default domain added to
    /// one without `@`).
    fn with_domain(&self, name: &str) -> Result<String, ScimError> {
        if name.contains('@') {
            return Ok(name.to_string());
        }
        match &self.default_domain {
            Some(domain) => Ok(format!("{name}@{domain}")),
            None => Err(ScimError::invalid_value(format!(
                "userName {name:?} has no domain, and provisioning has no default domain to add \
                 (set it with `tessera provisioning settings --default-domain example.com`)"
            ))),
        }
    }

    /// The directory attributes a SCIM user maps to (`creating`: a new user).
    pub(crate) fn to_graph(
        &self,
        source: &Map<String, Value>,
        creating: bool,
    ) -> Result<Mapped, ScimError> {
        if self.broken {
            return Err(ScimError::new(
                409,
                None,
                "the tenant's provisioning attribute mapping no longer holds (a custom security attribute \
                 it writes was deprecated or removed): an administrator must fix it before users can be written",
            ));
        }
        let outputs = self
            .compiled
            .apply(&ScimUser(source), &self.env, creating)
            .map_err(failure)?;
        let mut values: Vec<(&str, Value)> = Vec::new();
        let mut unique_upn = None;
        for (target, output) in outputs {
            match output {
                Output::Leave => {}
                Output::Set(value) => {
                    let value = match (target.name.as_str(), value) {
                        ("userPrincipalName", Value::String(name)) => {
                            Value::String(self.with_domain(&name)?)
                        }
                        (_, value) => value,
                    };
                    values.push((target.name.as_str(), value));
                }
                Output::Unique(candidates) => {
                    let candidates = candidates
                        .iter()
                        .map(|c| self.with_domain(c))
                        .collect::<Result<Vec<_>, _>>()?;
                    unique_upn = Some(candidates);
                }
            }
        }
        Ok(Mapped {
            patch: tessera_provisioning::mapping::graph_patch(values),
            unique_upn,
        })
    }

    /// A patch with only what differs from what the source before made, for the
    /// attributes the tenant's mapping carries otherwise than the default (so a
    /// change in the directory, an administrator disabling a user, stays until
    /// the source itself changes); the default's attributes are written whole.
    pub(crate) fn changes_only(
        &self,
        mut patch: Map<String, Value>,
        before: &Map<String, Value>,
    ) -> Map<String, Value> {
        let Ok(old) = self.to_graph(before, false) else {
            return patch;
        };
        patch.retain(|key, value| self.is_default(key) || old.patch.get(key) != Some(value));
        patch
    }

    /// What the mapping makes of a source, attribute by attribute, for the ones
    /// read back from the directory (a value that cannot be made is `null`).
    pub(crate) fn expected(&self, source: &Map<String, Value>) -> Map<String, Value> {
        let user = ScimUser(source);
        let mut values: Vec<(&str, Value)> = Vec::new();
        for a in &self.compiled.attributes {
            let graph = a.target.name.split('.').next().unwrap_or_default();
            if !self.is_default(graph) {
                continue;
            }
            let value = match a.output(&user, &self.env, false) {
                Ok(Output::Set(Value::String(name))) if a.target.name == "userPrincipalName" => {
                    self.with_domain(&name).map_or(Value::Null, Value::String)
                }
                Ok(Output::Set(value)) => value,
                _ => Value::Null,
            };
            values.push((a.target.name.as_str(), value));
        }
        let mut expected = tessera_provisioning::mapping::graph_patch(values);
        if let Some(Value::Object(org)) = expected.get_mut("employeeOrgData") {
            org.retain(|_, v| !v.is_null());
            if org.is_empty() {
                expected.insert("employeeOrgData".into(), Value::Null);
            }
        }
        expected
    }
}

/// The directory's JSON with the mapped attributes set as `graph` has them
/// (`null` removes one; objects such as `employeeOrgData` and the custom security
/// attributes merge member by member, and go when emptied).
pub(crate) fn merged(current: Map<String, Value>, graph: Map<String, Value>) -> Value {
    fn merge(into: &mut Map<String, Value>, patch: Map<String, Value>) {
        for (key, value) in patch {
            match value {
                Value::Null => {
                    into.remove(&key);
                }
                Value::Object(members) => {
                    let mut object = match into.remove(&key) {
                        Some(Value::Object(o)) => o,
                        _ => Map::new(),
                    };
                    merge(&mut object, members);
                    if !object.is_empty() {
                        into.insert(key, Value::Object(object));
                    }
                }
                other => {
                    into.insert(key, other);
                }
            }
        }
    }
    let mut out = current;
    merge(&mut out, graph);
    Value::Object(out)
}

/// Whether a user principal name is free for a user (`me`: the user being changed).
pub(crate) async fn upn_free(
    reader: &mut dyn Reader,
    tenant: TenantId,
    upn: &str,
    me: Option<uuid::Uuid>,
) -> ServiceResult<bool> {
    Ok(
        match reader
            .get_by_key1(tenant, Kind::User, &upn.to_lowercase())
            .await?
        {
            None => true,
            Some(record) => Some(record.id) == me,
        },
    )
}

/// The mapping in effect, with what a mapping may use.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UserMappingView {
    /// The tenant's mapping, or the default when it has none.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub user_mapping: Mapping,
    /// Whether the default mapping is in effect.
    pub is_default: bool,
    /// The functions an expression may call.
    pub functions: Vec<&'static str>,
    /// The user attributes a mapping may write (and `customSecurityAttributes.<set>.<name>`).
    pub targets: Vec<&'static str>,
}

impl super::Provisioning {
    /// The user mapping in effect.
    pub async fn user_mapping(&self, ctx: &Context) -> ServiceResult<UserMappingView> {
        let (settings, _) = self.settings(ctx).await?;
        Ok(UserMappingView {
            is_default: settings.user_mapping.is_none(),
            user_mapping: settings.user_mapping.unwrap_or_else(default_user_mapping),
            functions: tessera_provisioning::Function::ALL
                .iter()
                .map(|f| f.name())
                .collect(),
            targets: tessera_provisioning::targets::user_target_names(),
        })
    }

    /// What a mapping (the one given, else the tenant's) makes of a SCIM user,
    /// without writing anything: `{"resource": {...}, "mapping": {...}}`.
    pub async fn preview_user_mapping(&self, ctx: &Context, body: Value) -> ServiceResult<Value> {
        let (settings, _) = self.settings(ctx).await?;
        let request: PreviewRequest = tessera_directory::patch::parse_spec(body)?;
        // Trying out a mapping is for who may save one; reading one that writes
        // custom security attributes needs their definitions' read right.
        if request.mapping.is_some() {
            self.may_change_settings(ctx)?;
        }
        if request
            .mapping
            .as_ref()
            .or(settings.user_mapping.as_ref())
            .is_some_and(writes_custom)
        {
            self.require(
                ctx,
                tessera_directory::roles::action::ATTRIBUTE_DEFINITIONS_READ,
                &tessera_directory::authz::Target::Tenant,
            )?;
        }
        let source = tessera_scim::resource::read(
            &USER_TYPE,
            &request.resource,
            tessera_scim::resource::Completeness::Whole,
        )
        .map_err(|e| ServiceError::invalid("resource", e.detail))?;
        let mapping = request
            .mapping
            .or(settings.user_mapping)
            .unwrap_or_else(default_user_mapping);
        let mut reader = self.reader().await?;
        let definitions = if writes_custom(&mapping) {
            crate::directory::attributes::definitions(reader.as_mut(), ctx.tenant).await?
        } else {
            BTreeMap::new()
        };
        let compiled =
            compile(&mapping, &definitions).map_err(|e| invalid_mapping("mapping", e))?;
        let mapper = UserMapper::new(compiled, settings.default_domain, self.now())?;
        let mapped = mapper
            .to_graph(&source, true)
            .map_err(|e| ServiceError::invalid("resource", e.detail))?;
        let mut out = serde_json::json!({ "attributes": mapped.patch });
        if let Some(candidates) = mapped.unique_upn {
            out["userPrincipalNameCandidates"] = serde_json::json!(candidates);
        }
        Ok(out)
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    resource: Value,
    #[serde(default)]
    mapping: Option<Mapping>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mapper(mapping: Option<Mapping>) -> UserMapper {
        let mapping = mapping.unwrap_or_else(default_user_mapping);
        let compiled = compile(&mapping, &BTreeMap::new()).unwrap();
        UserMapper::new(
            compiled,
            Some("example.com".into()),
            tessera_core::Timestamp::from_unix_micros(0),
        )
        .unwrap()
    }

    fn source() -> Map<String, Value> {
        json!({
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [{"value": "home@x.org", "type": "home"}, {"value": "b@example.com", "type": "work"}],
            ENTERPRISE_USER: {"employeeNumber": "701984", "division": "Tours",
                              "manager": {"value": "26118915-6090-4610-87E4-49D8CA9F808D"}},
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn the_default_mapping() {
        let m = mapper(None);
        let graph = m.to_graph(&source(), true).unwrap().patch;
        assert_eq!(graph["userPrincipalName"], "bjensen@example.com");
        assert_eq!(graph["displayName"], "Barbara Jensen");
        assert_eq!(
            graph["mail"], "b@example.com",
            "the work email when none is primary"
        );
        assert_eq!(graph["accountEnabled"], true, "active is true when absent");
        assert_eq!(
            graph["employeeOrgData"],
            json!({"division": "Tours", "costCenter": null})
        );
        assert_eq!(graph["managerId"], "26118915-6090-4610-87e4-49d8ca9f808d");
        assert_eq!(graph["jobTitle"], Value::Null);
        let mut bad = source();
        bad[ENTERPRISE_USER]["manager"]["value"] = json!("not-an-id");
        let error = m.to_graph(&bad, true).unwrap_err();
        assert!(error.detail.contains("managerId"), "{}", error.detail);
        let mut no_domain = mapper(None);
        no_domain.default_domain = None;
        assert!(
            no_domain.to_graph(&source(), true).is_err(),
            "no domain to add"
        );
        assert!(m.is_default("mail") && m.is_default("employeeOrgData"));
        let expected = m.expected(&source());
        assert_eq!(expected["employeeOrgData"], json!({"division": "Tours"}));
    }

    #[test]
    fn a_tenant_mapping_replaces_the_default() {
        let mut mapping = default_user_mapping();
        mapping.attributes[0].expression =
            r#"ToLower(Join(".", [name.givenName], [name.familyName]))@corp.example"#.into();
        mapping.attributes.retain(|a| a.target != "mail");
        let m = mapper(Some(mapping));
        let graph = m.to_graph(&source(), true).unwrap().patch;
        assert_eq!(graph["userPrincipalName"], "barbara.jensen@corp.example");
        assert!(
            !graph.contains_key("mail"),
            "an unmapped attribute is left alone"
        );
        assert!(!m.is_default("userPrincipalName") && !m.is_default("mail"));
        assert!(m.is_default("displayName"));
    }

    #[test]
    fn scim_paths_are_checked() {
        assert!(ScimUsers.check(r#"emails[type eq "work"].value"#).is_ok());
        assert!(ScimUsers.check("employeeNumber").is_ok());
        assert!(ScimUsers.check("nickname").is_ok());
        assert!(ScimUsers.check("favouriteColour").is_err());
        assert!(ScimUsers.check(r#"emails[colour eq "x"].value"#).is_err());
    }
}
