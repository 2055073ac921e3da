//! Audit queries, chain verification, and signed checkpoints of chain heads.

use serde::Serialize;
use serde_json::Value;
use tessera_core::crypto::Ed25519Key;
use tessera_core::{TenantId, Timestamp};
use tessera_directory::audit::{ChainRow, ChainVerifier, Tampering};
use tessera_directory::authz::Target;
use tessera_directory::checkpoint::{Checkpoint, CheckpointProblem};
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
pub(crate) fn hide_attribute_values(mut entry: AuditEntry, reveal: bool) -> AuditEntry {
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

/// Signs the tenant's current chain head with the checkpoint key. Works on the store
/// directly, for the server's schedule and for `tessera audit checkpoint`.
pub async fn checkpoint(
    store: &dyn Store,
    tenant: TenantId,
    key: &Ed25519Key,
    now: Timestamp,
) -> ServiceResult<Checkpoint> {
    let (seq, hash) = match store.audit_head(tenant).await? {
        Some(head) => (head.seq, head.hash),
        None => (0, tessera_core::crypto::GENESIS_HASH.to_string()),
    };
    Ok(Checkpoint::sign(key, tenant.0, seq, &hash, now))
}

/// What one checkpoint says about the database.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointReport {
    /// The line of the checkpoint file it was read from (1-based).
    pub line: usize,
    pub tenant_id: uuid::Uuid,
    pub seq: i64,
    pub time: Timestamp,
    pub intact: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<CheckpointProblem>,
}

/// Checks checkpoints (each with the line it came from) against the store: the
/// signature with the operator's `pinned` public key first, then that the chain still
/// reaches the checkpoint's event and that this event still has the checkpoint's hash.
/// A tenant that is gone altogether counts as wiped. The chains themselves are checked
/// by [`verify_chain`].
pub async fn check_checkpoints(
    store: &dyn Store,
    checkpoints: &[(usize, Checkpoint)],
    pinned: &[u8; 32],
) -> ServiceResult<Vec<CheckpointReport>> {
    let mut heads = std::collections::HashMap::new();
    let mut reports = Vec::with_capacity(checkpoints.len());
    for (line, checkpoint) in checkpoints {
        let mut outcome = checkpoint.check_signature(pinned);
        if outcome.is_ok() {
            let tenant = TenantId(checkpoint.tenant_id);
            let head_seq = match heads.get(&tenant) {
                Some(seq) => *seq,
                None => {
                    let seq = store.audit_head(tenant).await?.map(|h| h.seq).unwrap_or(0);
                    heads.insert(tenant, seq);
                    seq
                }
            };
            let event_hash = if checkpoint.seq > 0 && head_seq >= checkpoint.seq {
                store
                    .audit_scan(tenant, checkpoint.seq - 1, 1)
                    .await?
                    .into_iter()
                    .find(|row| row.seq == checkpoint.seq)
                    .map(|row| row.hash)
            } else {
                None
            };
            outcome = checkpoint.check_against(head_seq, event_hash.as_deref());
        }
        reports.push(CheckpointReport {
            line: *line,
            tenant_id: checkpoint.tenant_id,
            seq: checkpoint.seq,
            time: checkpoint.time,
            intact: outcome.is_ok(),
            problem: outcome.err(),
        });
    }
    Ok(reports)
}

impl Directory {
    pub async fn query_audit(
        &self,
        ctx: &Context,
        filter: &AuditFilter,
    ) -> ServiceResult<Page<AuditEntry>> {
        self.require(ctx, action::AUDIT_LOGS_READ, &Target::Tenant)?;
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
        self.require(ctx, action::AUDIT_LOGS_READ, &Target::Tenant)?;
        verify_chain(self.store.as_ref(), ctx.tenant).await
    }
}
