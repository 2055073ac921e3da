//! Audit queries and chain verification.

use serde::Serialize;
use serde_json::Value;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit::{ChainRow, ChainVerifier, Tampering};
use tessera_directory::authz::Target;
use tessera_directory::roles::action;
use tessera_store::{AuditQuery, AuditRow, Store};

use crate::codec::Page;
use crate::error::{ServiceError, ServiceResult};
use crate::{Context, Directory};

/// Filters of an audit query; results come newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    pub action: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// One event as the API returns it: its place in the chain and its body.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub seq: i64,
    pub hash: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub event: Value,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: TenantId,
    pub events_checked: i64,
    pub head_seq: i64,
    /// The head's hash: record it outside the database to anchor the chain.
    pub head_hash: String,
    pub intact: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<Tampering>,
}

fn entry(row: AuditRow) -> AuditEntry {
    let event = serde_json::from_str(&row.body).unwrap_or(Value::String(row.body));
    AuditEntry {
        seq: row.seq,
        hash: row.hash,
        event,
    }
}

/// Custom security attribute values are readable only by attribute roles; other audit
/// readers see that they changed, not what they are. The stored, hashed event is
/// untouched.
fn hide_attribute_values(mut entry: AuditEntry, reveal: bool) -> AuditEntry {
    if reveal {
        return entry;
    }
    let Some(changes) = entry.event.get_mut("changes").and_then(Value::as_array_mut) else {
        return entry;
    };
    for change in changes {
        if change.get("attribute").and_then(Value::as_str) != Some("customSecurityAttributes") {
            continue;
        }
        for side in ["oldValue", "newValue"] {
            if let Some(value) = change.get_mut(side).filter(|v| !v.is_null()) {
                *value = Value::String("(hidden: needs an attribute assignment role)".to_string());
            }
        }
    }
    entry
}

/// Walks a tenant's whole chain. Works on the store directly, so `tessera audit
/// verify` can run offline against the data directory.
pub async fn verify_chain(store: &dyn Store, tenant: TenantId) -> ServiceResult<VerifyReport> {
    // The head first: events up to it are all committed; later ones, appended while
    // we walk, are for the next verification.
    let head = store.audit_head(tenant).await?;
    let head_seq = head.as_ref().map(|h| h.seq).unwrap_or(0);
    let mut verifier = ChainVerifier::for_tenant(tenant.0);
    let mut after = 0;
    let mut problem = None;
    'scan: while after < head_seq {
        let rows = store.audit_scan(tenant, after, 5000).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if row.seq > head_seq {
                break 'scan;
            }
            after = row.seq;
            let chain_row = ChainRow {
                seq: row.seq,
                id: row.id,
                time_micros: row.time.unix_micros(),
                actor_id: row.actor_id,
                action: row.action,
                target_id: row.target_id,
                correlation_id: row.correlation_id,
                body: row.body,
                prev_hash: row.prev_hash,
                hash: row.hash,
            };
            if let Err(found) = verifier.check(&chain_row) {
                problem = Some(found);
                break 'scan;
            }
        }
    }
    if problem.is_none() {
        problem = verifier
            .finish(head.as_ref().map(|h| (h.seq, h.hash.as_str())))
            .err();
    }
    Ok(VerifyReport {
        tenant_id: tenant,
        events_checked: verifier.checked(),
        head_seq,
        head_hash: head
            .map(|h| h.hash)
            .unwrap_or_else(|| tessera_core::crypto::GENESIS_HASH.to_string()),
        intact: problem.is_none(),
        first_problem: problem,
    })
}

impl Directory {
    pub async fn query_audit(
        &self,
        ctx: &Context,
        filter: &AuditFilter,
    ) -> ServiceResult<Page<AuditEntry>> {
        self.authorize(ctx, action::AUDIT_LOGS_READ, &Target::Tenant)?;
        let limit = match filter.limit {
            None => 100,
            Some(n) if (1..=1000).contains(&n) => n,
            Some(_) => return Err(ServiceError::invalid("limit", "must be between 1 and 1000")),
        };
        let before_seq = match &filter.cursor {
            None => None,
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                ServiceError::invalid("cursor", "is not a cursor returned by this API")
            })?),
        };
        let query = AuditQuery {
            actor_id: filter.actor_id.clone(),
            target_id: filter.target_id.clone(),
            action: filter.action.clone(),
            since: filter.since,
            until: filter.until,
            before_seq,
            limit: limit + 1,
        };
        let mut rows = self.store.audit_query(ctx.tenant, &query).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| r.seq.to_string())
        } else {
            None
        };
        let reveal = self.may_read_attributes(ctx, action::USERS_CSA_READ);
        let definitions = self.may_read_attributes(ctx, action::ATTRIBUTE_DEFINITIONS_READ);
        // Attribute definitions are for attribute roles, in the trail as in the API.
        // (Filtered after paging: a page may hold fewer items than asked.)
        let value = rows
            .into_iter()
            .filter(|row| definitions || !row.action.starts_with("attributeDefinition."))
            .map(|row| hide_attribute_values(entry(row), reveal))
            .collect();
        Ok(Page { value, next_cursor })
    }

    pub async fn verify_audit(&self, ctx: &Context) -> ServiceResult<VerifyReport> {
        self.authorize(ctx, action::AUDIT_LOGS_READ, &Target::Tenant)?;
        verify_chain(self.store.as_ref(), ctx.tenant).await
    }
}
