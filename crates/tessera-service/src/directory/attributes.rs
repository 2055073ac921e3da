//! Custom security attribute definitions: typed, namespaced attributes (attribute set
//! and name) that users and service principals carry. As in Entra, they can be
//! deprecated but not deleted or renamed, and only the attribute roles manage them.

use std::collections::BTreeMap;
use tessera_directory::audit_action::AuditAction;

use serde_json::Value;
use tessera_core::TenantId;
use tessera_directory::authz::Target;
use tessera_directory::model::{AttributeDefinition, AttributeDefinitionSpec};
use tessera_directory::patch;
use tessera_directory::roles::action;
use tessera_directory::validate;
use tessera_store::{Kind, Reader, Record};
use uuid::Uuid;

use crate::codec::Patch;
use crate::codec::{self, Keys, Page, PageRequest};
use crate::error::{OrConflict, ServiceError, ServiceResult};
use crate::{Context, Directory, EventDraft};

const READ_ONLY: &[&str] = &["id", "createdDateTime", "modifiedDateTime", "version"];
const MAX_DEFINITIONS: usize = 500;

fn definition_keys(spec: &AttributeDefinitionSpec) -> Keys {
    let name = spec.qualified_name().to_lowercase();
    Keys {
        key1: Some(name.clone()),
        key2: None,
        sort_key: name,
    }
}

fn definition_from(record: &Record) -> ServiceResult<AttributeDefinition> {
    let spec: AttributeDefinitionSpec = codec::data(record)?;
    Ok(AttributeDefinition {
        id: spec.qualified_name(),
        spec,
        created_date_time: record.created,
        modified_date_time: record.modified,
        version: record.version,
    })
}

/// All definitions of a tenant, keyed by lower-cased `{set}_{name}`.
pub(crate) async fn definitions(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<BTreeMap<String, AttributeDefinitionSpec>> {
    let mut out = BTreeMap::new();
    for record in codec::list_all(reader, tenant, Kind::AttributeDefinition, None).await? {
        let spec: AttributeDefinitionSpec = codec::data(&record)?;
        out.insert(spec.qualified_name().to_lowercase(), spec);
    }
    Ok(out)
}

async fn load_by_name(
    reader: &mut dyn Reader,
    tenant: TenantId,
    id: &str,
) -> ServiceResult<Record> {
    reader
        .get_by_key1(tenant, Kind::AttributeDefinition, &id.to_lowercase())
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            kind: "customSecurityAttributeDefinition",
            id: id.to_string(),
        })
}

fn spec_json(spec: &AttributeDefinitionSpec) -> Value {
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

impl Directory {
    pub async fn create_attribute_definition(
        &self,
        ctx: &Context,
        body: Value,
    ) -> ServiceResult<AttributeDefinition> {
        let spec: AttributeDefinitionSpec = patch::parse_spec(body)?;
        validate::attribute_definition_spec(&spec)?;
        self.require(ctx, action::ATTRIBUTE_DEFINITIONS_MANAGE, &Target::Tenant)?;
        let mut tx = self.write(ctx).await?;
        if definitions(tx.as_mut(), ctx.tenant).await?.len() >= MAX_DEFINITIONS {
            return Err(ServiceError::Conflict {
                message: format!("a tenant has at most {MAX_DEFINITIONS} attribute definitions"),
            });
        }
        let record = codec::new_record(
            Kind::AttributeDefinition,
            Uuid::new_v4(),
            self.now(),
            definition_keys(&spec),
            &spec,
        )?;
        tx.insert(ctx.tenant, &record)
            .await
            .or_conflict(format!("{} is already defined", spec.qualified_name()))?;
        let event = EventDraft::new(AuditAction::AttributeDefinitionCreate)
            .on(
                Kind::AttributeDefinition,
                spec.qualified_name(),
                &spec.qualified_name(),
            )
            .changes(patch::changes(&Value::Null, &spec_json(&spec)));
        self.commit(tx, ctx, event).await?;
        definition_from(&record)
    }

    pub async fn list_attribute_definitions(
        &self,
        ctx: &Context,
        request: &PageRequest,
    ) -> ServiceResult<Page<AttributeDefinition>> {
        self.require(ctx, action::ATTRIBUTE_DEFINITIONS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        let (records, next_cursor) = codec::list_page(
            reader.as_mut(),
            ctx.tenant,
            Kind::AttributeDefinition,
            request,
            None,
        )
        .await?;
        Page::of(&records, next_cursor, definition_from)
    }

    pub async fn get_attribute_definition(
        &self,
        ctx: &Context,
        id: &str,
    ) -> ServiceResult<AttributeDefinition> {
        self.require(ctx, action::ATTRIBUTE_DEFINITIONS_READ, &Target::Tenant)?;
        let mut reader = self.reader().await?;
        definition_from(&load_by_name(reader.as_mut(), ctx.tenant, id).await?)
    }

    pub async fn update_attribute_definition(
        &self,
        ctx: &Context,
        patch: Patch<&str>,
    ) -> ServiceResult<AttributeDefinition> {
        let Patch { at, body } = patch;
        let id = at.id;
        self.require(ctx, action::ATTRIBUTE_DEFINITIONS_MANAGE, &Target::Tenant)?;
        let mut tx = self.write(ctx).await?;
        let record = load_by_name(tx.as_mut(), ctx.tenant, id).await?;
        at.check(&record)?;
        let before: AttributeDefinitionSpec = codec::data(&record)?;
        let after: AttributeDefinitionSpec = patch::merge_patch(&before, &body, READ_ONLY)?;
        validate::attribute_definition_update(&before, &after)?;
        let changes = patch::changes(&spec_json(&before), &spec_json(&after));
        if changes.is_empty() {
            return definition_from(&record);
        }
        let updated = codec::next_version(&record, self.now(), definition_keys(&after), &after)?;
        tx.update(ctx.tenant, &updated).await?;
        let event = EventDraft::new(AuditAction::AttributeDefinitionUpdate)
            .on(
                Kind::AttributeDefinition,
                after.qualified_name(),
                &after.qualified_name(),
            )
            .changes(changes);
        self.commit(tx, ctx, event).await?;
        definition_from(&updated)
    }
}
