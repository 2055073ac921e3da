//! The audit trail: what an event says, and how a tenant's hash chain is checked.
//!
//! Each event's body is a JSON document written once, at the change, in the same
//! transaction. The store links it to its predecessor with
//! [`tessera_core::crypto::audit_link_hash`]. Verification walks the chain in order
//! and reports the first event that was altered (its hash no longer matches its
//! content, or its indexed columns disagree with its body), removed (a gap in the
//! sequence, or the chain ends before the recorded head) or reordered (an event that
//! does not link to the one before it).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_core::Timestamp;
use tessera_core::crypto::{GENESIS_HASH, audit_link_hash};
use uuid::Uuid;

use crate::patch::Change;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// `user`, `servicePrincipal` or `system` (bootstrap, migrations).
    #[serde(rename = "type")]
    pub actor_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The user principal name or display name at the time of the event.
    pub display_name: String,
    /// How the actor authenticated, e.g. `pat:<token id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl Actor {
    pub fn system(reason: &str) -> Actor {
        Actor {
            actor_type: "system".to_string(),
            id: None,
            display_name: reason.to_string(),
            credential: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// The object kind: `user`, `group`, `device`, `application`, ...
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: String,
    pub display_name: String,
}

/// The body of an audit event, as hashed into the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub time: Timestamp,
    pub actor: Actor,
    /// A stable action name, e.g. `user.create`, `group.member.add`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetRef>,
    /// Changed attributes with their values before and after. Secrets never appear.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub changes: Vec<ChangeRecord>,
    /// Further facts about the event (e.g. the member added to a group).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

/// [`Change`] as stored in an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    pub attribute: String,
    pub old_value: Value,
    pub new_value: Value,
}

impl From<Change> for ChangeRecord {
    fn from(change: Change) -> ChangeRecord {
        ChangeRecord {
            attribute: change.attribute,
            old_value: change.old_value,
            new_value: change.new_value,
        }
    }
}

/// One stored event as the chain verifier sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    pub seq: i64,
    pub id: String,
    pub time_micros: i64,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_id: Option<String>,
    pub correlation_id: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum TamperKind {
    Altered,
    Removed,
    Reordered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Tampering {
    pub kind: TamperKind,
    /// The sequence number of the first event found wrong (or expected, when removed).
    pub seq: i64,
    pub detail: String,
}

/// Walks a tenant's chain in order. Feed every row with [`ChainVerifier::check`], then
/// call [`ChainVerifier::finish`] with the recorded head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    previous_hash: String,
    /// When set, every event must name this tenant.
    tenant: Option<Uuid>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            previous_hash: GENESIS_HASH.to_string(),
            tenant: None,
        }
    }
}

impl ChainVerifier {
    pub fn new() -> ChainVerifier {
        ChainVerifier::default()
    }

    /// A verifier that also checks every event belongs to `tenant`.
    pub fn for_tenant(tenant: Uuid) -> ChainVerifier {
        ChainVerifier {
            tenant: Some(tenant),
            ..ChainVerifier::default()
        }
    }

    /// How many events have been checked.
    pub fn checked(&self) -> i64 {
        self.expected_seq - 1
    }

    pub fn check(&mut self, row: &ChainRow) -> Result<(), Tampering> {
        let recomputed = audit_link_hash(&row.prev_hash, row.seq, &row.body);
        if recomputed != row.hash {
            return Err(Tampering {
                kind: TamperKind::Altered,
                seq: row.seq,
                detail: "the event's content no longer matches its hash".to_string(),
            });
        }
        if row.seq > self.expected_seq {
            return Err(Tampering {
                kind: TamperKind::Removed,
                seq: self.expected_seq,
                detail: format!(
                    "events {} to {} are missing",
                    self.expected_seq,
                    row.seq - 1
                ),
            });
        }
        if row.seq < self.expected_seq || row.prev_hash != self.previous_hash {
            return Err(Tampering {
                kind: TamperKind::Reordered,
                seq: row.seq,
                detail: "the event does not follow the event before it in the chain".to_string(),
            });
        }
        if let Err(detail) = columns_agree(row, self.tenant) {
            return Err(Tampering {
                kind: TamperKind::Altered,
                seq: row.seq,
                detail,
            });
        }
        self.expected_seq += 1;
        self.previous_hash = row.hash.clone();
        Ok(())
    }

    /// Checks the end of the chain against the recorded head `(seq, hash)`.
    pub fn finish(&self, head: Option<(i64, &str)>) -> Result<(), Tampering> {
        let (head_seq, head_hash) = head.unwrap_or((0, GENESIS_HASH));
        let last = self.expected_seq - 1;
        if head_seq > last {
            return Err(Tampering {
                kind: TamperKind::Removed,
                seq: last + 1,
                detail: format!(
                    "the chain ends at event {last} but its head records event {head_seq}"
                ),
            });
        }
        if head_seq < last || head_hash != self.previous_hash {
            return Err(Tampering {
                kind: TamperKind::Altered,
                seq: head_seq.max(1),
                detail: "the chain's recorded head does not match its last event".to_string(),
            });
        }
        Ok(())
    }
}

/// The indexed columns are copies of body fields for querying; they must agree, or a
/// query could be misled without the chain noticing.
fn columns_agree(row: &ChainRow, tenant: Option<Uuid>) -> Result<(), String> {
    let event: AuditEvent = serde_json::from_str(&row.body)
        .map_err(|e| format!("the event body is not a valid event: {e}"))?;
    let actor_id = event.actor.id.map(|id| id.to_string());
    let target_id = event.target.as_ref().map(|t| t.id.clone());
    if event.id.to_string() != row.id
        || event.time.unix_micros() != row.time_micros
        || actor_id != row.actor_id
        || event.action != row.action
        || target_id != row.target_id
        || event.correlation_id != row.correlation_id
        || tenant.is_some_and(|t| t != event.tenant_id)
    {
        return Err("the event's indexed columns disagree with its hashed body".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u128) -> AuditEvent {
        AuditEvent {
            id: Uuid::from_u128(n),
            tenant_id: Uuid::nil(),
            time: Timestamp::from_unix_micros(n as i64),
            actor: Actor::system("test"),
            action: "user.create".to_string(),
            target: Some(TargetRef {
                target_type: "user".into(),
                id: format!("t{n}"),
                display_name: "x".into(),
            }),
            changes: Vec::new(),
            details: Value::Null,
            correlation_id: "c".to_string(),
            client_address: None,
        }
    }

    fn chain(n: i64) -> Vec<ChainRow> {
        let mut rows: Vec<ChainRow> = Vec::new();
        let mut prev = GENESIS_HASH.to_string();
        for seq in 1..=n {
            let e = event(seq as u128);
            let body = serde_json::to_string(&e).unwrap();
            let hash = audit_link_hash(&prev, seq, &body);
            rows.push(ChainRow {
                seq,
                id: e.id.to_string(),
                time_micros: e.time.unix_micros(),
                actor_id: None,
                action: e.action.clone(),
                target_id: e.target.as_ref().map(|t| t.id.clone()),
                correlation_id: e.correlation_id.clone(),
                body,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        rows
    }

    fn verify(rows: &[ChainRow], head: Option<(i64, &str)>) -> Result<(), Tampering> {
        let mut verifier = ChainVerifier::new();
        for row in rows {
            verifier.check(row)?;
        }
        verifier.finish(head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let head = (5, rows[4].hash.as_str());
        assert_eq!(verify(&rows, Some(head)), Ok(()));
        assert_eq!(verify(&[], None), Ok(()));
    }

    #[test]
    fn an_edited_body_is_altered() {
        let mut rows = chain(5);
        let head_hash = rows[4].hash.clone();
        rows[2].body = rows[2].body.replace("user.create", "user.delete");
        let found = verify(&rows, Some((5, &head_hash))).unwrap_err();
        assert_eq!((found.kind, found.seq), (TamperKind::Altered, 3));
    }

    #[test]
    fn an_edited_index_column_is_altered() {
        let mut rows = chain(3);
        let head_hash = rows[2].hash.clone();
        rows[1].action = "group.create".to_string();
        let found = verify(&rows, Some((3, &head_hash))).unwrap_err();
        assert_eq!((found.kind, found.seq), (TamperKind::Altered, 2));
    }

    #[test]
    fn a_removed_event_is_found() {
        let mut rows = chain(5);
        let head_hash = rows[4].hash.clone();
        rows.remove(1);
        let found = verify(&rows, Some((5, &head_hash))).unwrap_err();
        assert_eq!((found.kind, found.seq), (TamperKind::Removed, 2));
    }

    #[test]
    fn a_removed_last_event_is_found_through_the_head() {
        let mut rows = chain(5);
        let head_hash = rows[4].hash.clone();
        rows.pop();
        let found = verify(&rows, Some((5, &head_hash))).unwrap_err();
        assert_eq!((found.kind, found.seq), (TamperKind::Removed, 5));
    }

    #[test]
    fn swapped_events_are_reordered() {
        let mut rows = chain(5);
        let head_hash = rows[4].hash.clone();
        rows.swap(1, 2);
        let found = verify(&rows, Some((5, &head_hash))).unwrap_err();
        assert_eq!(found.kind, TamperKind::Removed);
        // Renumbering the swapped rows to hide the gap breaks their hashes instead.
        let mut rows = chain(5);
        rows.swap(1, 2);
        rows[1].seq = 2;
        rows[2].seq = 3;
        let found = verify(&rows, Some((5, &head_hash))).unwrap_err();
        assert_eq!((found.kind, found.seq), (TamperKind::Altered, 2));
    }

    #[test]
    fn a_rebuilt_suffix_does_not_link() {
        // An attacker replaces event 3 with a forged event whose hash is consistent with
        // its own content but computed from a wrong predecessor.
        let mut rows = chain(4);
        let forged_prev = audit_link_hash(GENESIS_HASH, 99, "{}");
        rows[2].prev_hash = forged_prev.clone();
        rows[2].hash = audit_link_hash(&forged_prev, 3, &rows[2].body);
        let found = verify(&rows, None).unwrap_err();
        assert_eq!((found.kind, found.seq), (TamperKind::Reordered, 3));
    }
}
