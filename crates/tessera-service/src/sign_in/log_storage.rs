//! How the sign-in log is kept: what an entry stores, how repeated failures become
//! one entry, and how long entries stay.
//!
//! - **Compact entries.** What a row's columns hold (id, time, user, name,
//!   application, result, failure code, correlation id) and what is the default is
//!   left out of the stored body and put back when the entry is read. Conditional
//!   Access stores the policy set's version and only the policies that applied
//!   (`Decided::log_value`).
//! - **Failure aggregates.** Failures with the same source address, name,
//!   application and failure code within one window are one entry with a count, the
//!   first attempt's details and time, and the time of the last attempt, by which
//!   the entry is listed and filtered, so new failures show first (on every node
//!   alike: the store merges entries by key). Successes and interruptions are never
//!   aggregated. A source that fails for many names in one window has the failures
//!   for further names counted together under the name `*`; a tenant with failures
//!   from very many sources in one window, further failures counted together under
//!   the address `*` too.
//! - **Retention.** Per tenant, by age and by number of entries
//!   (`signInLogRetention`, defaults below); the server purges every five minutes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tessera_directory::audit_action::AuditAction;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tessera_core::TenantId;
use tessera_core::crypto::sha256_hex;
use tessera_directory::patch;
use tessera_store::{Reader, SignInRow};

use crate::error::{ServiceError, ServiceResult};
use crate::kernel::tenant_settings::{TenantSetting, read_setting};
use crate::sign_in::SignInEntry;
use crate::{Context, SignIn};

/// Failures within one window of this many seconds (aligned to the epoch) can be
/// one entry.
pub const AGGREGATE_WINDOW_SECONDS: i64 = 60;

/// Distinct names a source may fail for in one window before the failures for
/// further names are counted together.
pub const MAX_NAMES_PER_SOURCE: usize = 20;

/// Distinct failure entries (source and name) a tenant gets per window from one
/// node; beyond them (many sources at once), failures are counted together per
/// failure code, whatever their source and name.
pub const MAX_ENTRIES_PER_WINDOW: usize = 1_000;

/// The name, or address, failures are counted under once there are too many.
pub const MANY: &str = "*";

const RETENTION_KEY: &str = "signInLogRetention";

/// Body members a row's columns already hold.
const IN_COLUMNS: [&str; 9] = [
    "id",
    "createdDateTime",
    "userId",
    "appDisplayName",
    "result",
    "failureCode",
    "correlationId",
    "attemptCount",
    "lastAttemptDateTime",
];

/// How long a tenant keeps its sign-in log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInLogRetention {
    /// Entries older than this many days are removed (1 to 3650).
    pub retention_days: i64,
    /// Beyond this many entries, the oldest are removed (1,000 to 1,000,000,000).
    pub max_entries: i64,
}

impl Default for SignInLogRetention {
    fn default() -> Self {
        SignInLogRetention {
            retention_days: 30,
            max_entries: 1_000_000,
        }
    }
}

/// How a failure is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// With the failures of the same source and name.
    Own,
    /// The source failed for too many names: with its other failures.
    SourceOnly,
    /// The tenant has too many failure entries this window: with all its failures.
    Tenant,
}

#[derive(Default)]
struct Window {
    number: i64,
    names: HashMap<(TenantId, String), HashSet<String>>,
    entries: HashMap<TenantId, usize>,
}

/// Which names each source failed for in the current window, on this node (a
/// bound on the entries failures make; the counting itself is in the database).
#[derive(Default)]
pub(crate) struct FailureSources {
    seen: Mutex<Window>,
}

impl FailureSources {
    fn grouping(&self, window: i64, tenant: TenantId, source: &str, name: &str) -> Grouping {
        let Ok(mut seen) = self.seen.lock() else {
            return Grouping::Tenant;
        };
        if seen.number != window {
            *seen = Window {
                number: window,
                ..Window::default()
            };
        }
        let key = (tenant, source.to_string());
        if seen.names.get(&key).is_some_and(|n| n.contains(name)) {
            return Grouping::Own;
        }
        let entries = seen.entries.get(&tenant).copied().unwrap_or(0);
        if entries >= MAX_ENTRIES_PER_WINDOW {
            return Grouping::Tenant;
        }
        let names = seen.names.entry(key).or_default();
        if names.len() >= MAX_NAMES_PER_SOURCE {
            return Grouping::SourceOnly;
        }
        names.insert(name.to_string());
        *seen.entries.entry(tenant).or_default() += 1;
        Grouping::Own
    }
}

/// The stored form of an entry: the row with a compact body.
fn row_of(entry: &SignInEntry, aggregate_key: Option<String>) -> ServiceResult<SignInRow> {
    let user_name = entry.user_principal_name.to_lowercase();
    let Value::Object(mut body) =
        serde_json::to_value(entry).map_err(|e| ServiceError::Internal(e.to_string()))?
    else {
        return Err(ServiceError::Internal(
            "a sign-in entry is not an object".to_string(),
        ));
    };
    for member in IN_COLUMNS {
        // An aggregate's time moves to its latest attempt; the body keeps its first.
        if member == "createdDateTime" && aggregate_key.is_some() {
            continue;
        }
        body.remove(member);
    }
    // Absent is read as unset.
    body.retain(|_, value| !value.is_null());
    let is =
        |body: &Map<String, Value>, member: &str, value: &Value| body.get(member) == Some(value);
    if is(
        &body,
        "userPrincipalName",
        &Value::String(user_name.clone()),
    ) {
        body.remove("userPrincipalName");
    }
    if is(
        &body,
        "authenticationRequirement",
        &"singleFactorAuthentication".into(),
    ) {
        body.remove("authenticationRequirement");
    }
    if is(&body, "signInEventType", &"interactiveUser".into()) {
        body.remove("signInEventType");
    }
    for member in ["authenticationMethods", "satisfiedStrengths"] {
        if is(&body, member, &Value::Array(Vec::new())) {
            body.remove(member);
        }
    }
    if let Some(app_id) = &entry.app_id
        && user_name == format!("app:{app_id}")
    {
        body.remove("appId");
    }
    Ok(SignInRow {
        id: entry.id,
        time: entry.created_date_time,
        user_id: entry.user_id,
        user_name,
        application: Some(entry.app_display_name.clone()),
        result: entry.result.clone(),
        failure_code: entry.failure_code.clone(),
        correlation_id: entry.correlation_id.clone(),
        body: Value::Object(body).to_string(),
        attempts: 1,
        aggregate_key,
    })
}

/// An entry as the API shows it, from its row (compact bodies and the full bodies
/// of entries written before they were compact alike).
pub(crate) fn entry_of(row: &SignInRow) -> ServiceResult<SignInEntry> {
    let unreadable = |e: serde_json::Error| {
        ServiceError::Internal(format!("sign-in entry {} cannot be read: {e}", row.id))
    };
    let mut body: Map<String, Value> = serde_json::from_str(&row.body).map_err(unreadable)?;
    body.insert("id".to_string(), json(&row.id));
    if row.aggregate_key.is_some() {
        body.insert("attemptCount".to_string(), row.attempts.into());
        body.insert("lastAttemptDateTime".to_string(), json(&row.time));
        body.entry("createdDateTime").or_insert(json(&row.time));
    } else {
        body.insert("createdDateTime".to_string(), json(&row.time));
    }
    body.insert("userId".to_string(), json(&row.user_id));
    body.insert("result".to_string(), json(&row.result));
    body.insert("failureCode".to_string(), json(&row.failure_code));
    body.insert("correlationId".to_string(), json(&row.correlation_id));
    if !body.contains_key("appDisplayName") {
        body.insert(
            "appDisplayName".to_string(),
            json(&row.application.clone().unwrap_or_default()),
        );
    }
    if !body.contains_key("userPrincipalName") {
        body.insert("userPrincipalName".to_string(), json(&row.user_name));
    }
    if !body.contains_key("authenticationRequirement") {
        body.insert(
            "authenticationRequirement".to_string(),
            "singleFactorAuthentication".into(),
        );
    }
    for member in ["authenticationMethods", "satisfiedStrengths"] {
        body.entry(member).or_insert(Value::Array(Vec::new()));
    }
    let workload = body.get("signInEventType") == Some(&"servicePrincipal".into());
    if workload
        && !body.contains_key("appId")
        && let Some(app_id) = row.user_name.strip_prefix("app:")
    {
        body.insert("appId".to_string(), app_id.into());
    }
    serde_json::from_value(Value::Object(body)).map_err(unreadable)
}

/// What a row holds (ids, times, text) as JSON; serializing these cannot fail.
fn json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The key failures share when they are one entry: a hash of what they share.
fn aggregate_key(parts: &[&str]) -> String {
    let text = serde_json::to_string(parts).unwrap_or_default();
    sha256_hex(text.as_bytes())[..32].to_string()
}

pub(crate) async fn retention(
    reader: &mut dyn Reader,
    tenant: TenantId,
) -> ServiceResult<SignInLogRetention> {
    read_setting(reader, tenant).await
}

impl crate::kernel::tenant_settings::sealed::Sealed for SignInLogRetention {}

impl TenantSetting for SignInLogRetention {
    const KEY: &'static str = RETENTION_KEY;
    const UPDATED: AuditAction = AuditAction::SignInLogRetentionUpdate;
}

/// The policies of a Conditional Access decision with their results, as one text
/// (part of an aggregate's key).
fn decision_of(applied: Option<&serde_json::Value>) -> String {
    let Some(policies) = applied
        .and_then(|v| v.get("policies"))
        .and_then(serde_json::Value::as_array)
    else {
        return String::new();
    };
    let mut parts: Vec<String> = policies
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p.get("id")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default(),
                p.get("result")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
            )
        })
        .collect();
    parts.sort();
    parts.join(",")
}

impl SignIn {
    /// The row to append for an entry: failures become (part of) an aggregate.
    pub(crate) fn log_row(
        &self,
        tenant: TenantId,
        entry: &SignInEntry,
    ) -> ServiceResult<SignInRow> {
        if entry.result != "failure" {
            return row_of(entry, None);
        }
        // A Conditional Access block is aggregated only with blocks by the same
        // decision (the same policies with the same results), so each different
        // decision stays visible while a replayed credential cannot flood the log.
        let decision = if entry.failure_code.as_deref() == Some(crate::sign_in::failure::CA_BLOCKED)
        {
            decision_of(entry.applied_conditional_access_policies.as_ref())
        } else {
            String::new()
        };
        let window = entry
            .created_date_time
            .unix_micros()
            .div_euclid(AGGREGATE_WINDOW_SECONDS * 1_000_000);
        let window_text = window.to_string();
        let source = entry.client_address.clone().unwrap_or_default();
        let name = entry.user_principal_name.to_lowercase();
        let code = entry.failure_code.clone().unwrap_or_default();
        let grouping = self
            .sign_in_sources
            .grouping(window, tenant, &source, &name);
        if grouping == Grouping::Own {
            let key = aggregate_key(&[
                &window_text,
                &source,
                &name,
                &code,
                &entry.app_display_name,
                entry.app_id.as_deref().unwrap_or_default(),
                &entry.sign_in_event_type,
                &decision,
            ]);
            return row_of(entry, Some(key));
        }
        // Too many: counted together whatever the name (and, for workloads, the
        // application, which is the name), and if need be whatever the address.
        let mut many = entry.clone();
        many.user_id = None;
        many.user_principal_name = MANY.to_string();
        many.app_display_name = MANY.to_string();
        many.app_id = None;
        many.user_agent = None;
        let reason = if grouping == Grouping::SourceOnly {
            format!("this address failed for more than {MAX_NAMES_PER_SOURCE} names")
        } else {
            many.client_address = Some(MANY.to_string());
            format!("more than {MAX_ENTRIES_PER_WINDOW} addresses and names failed")
        };
        many.failure_reason = Some(format!(
            "{reason} within {AGGREGATE_WINDOW_SECONDS} seconds: further failures counted together"
        ));
        let source = many.client_address.clone().unwrap_or_default();
        let key = aggregate_key(&[
            &window_text,
            &source,
            MANY,
            &code,
            &entry.sign_in_event_type,
            &decision,
        ]);
        row_of(&many, Some(key))
    }

    /// Changes the retention with a JSON merge patch.
    pub async fn set_log_retention(
        &self,
        ctx: &Context,
        change: crate::Replacement,
    ) -> ServiceResult<SignInLogRetention> {
        let crate::Replacement { body, if_match } = change;
        let (tx, before) = self
            .open_setting::<SignInLogRetention>(ctx, if_match)
            .await?;
        let after: SignInLogRetention = patch::merge_patch(&before, &body, &[])?;
        if !(1..=3650).contains(&after.retention_days) {
            return Err(ServiceError::invalid(
                "retentionDays",
                "must be between 1 and 3650",
            ));
        }
        if !(1_000..=1_000_000_000).contains(&after.max_entries) {
            return Err(ServiceError::invalid(
                "maxEntries",
                "must be between 1000 and 1000000000",
            ));
        }
        self.save_setting(ctx, tx, &before, &after).await?;
        Ok(after)
    }

    /// Removes, in every tenant, the sign-in log entries its retention no longer
    /// keeps; returns how many. A tenant that fails is logged and the others go on.
    pub async fn purge_log(&self) -> ServiceResult<u64> {
        let now = self.now();
        let mut removed = 0;
        let mut failed = None;
        for tenant in self.store.tenants().await? {
            let kept = async {
                let mut reader = self.reader().await?;
                retention(reader.as_mut(), tenant.id).await
            }
            .await;
            let outcome = match kept {
                Ok(kept) => self
                    .store
                    .sign_in_purge(
                        tenant.id,
                        now.plus_seconds(-kept.retention_days * 86_400),
                        u64::try_from(kept.max_entries).unwrap_or(u64::MAX),
                    )
                    .await
                    .map_err(ServiceError::from),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(count) => removed += count,
                Err(error) => {
                    tracing::warn!(%error, tenant = %tenant.id, "cannot purge the sign-in log");
                    failed = Some(error);
                }
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(removed),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn blocks_aggregate_only_with_the_same_decision() {
        let a = serde_json::json!({"policies": [
            {"id": "p1", "result": "failure"}, {"id": "p2", "result": "success"}]});
        let same = serde_json::json!({"policies": [
            {"id": "p2", "result": "success"}, {"id": "p1", "result": "failure"}]});
        let other = serde_json::json!({"policies": [{"id": "p3", "result": "failure"}]});
        assert_eq!(
            super::decision_of(Some(&a)),
            super::decision_of(Some(&same))
        );
        assert_ne!(
            super::decision_of(Some(&a)),
            super::decision_of(Some(&other))
        );
        assert_eq!(super::decision_of(None), "");
    }

    use super::*;
    use tessera_core::Timestamp;
    use uuid::Uuid;

    fn entry() -> SignInEntry {
        SignInEntry {
            id: Uuid::new_v4(),
            created_date_time: Timestamp::from_unix_micros(1_700_000_000_000_000),
            user_id: None,
            user_principal_name: "app:3f0c5d52-7a5e-4bb5-b5a4-5c5bd3c7b7a1".to_string(),
            app_display_name: "Sync".to_string(),
            client_address: Some("192.0.2.1".to_string()),
            user_agent: None,
            result: "success".to_string(),
            failure_code: None,
            failure_reason: None,
            authentication_methods: vec!["clientSecret".to_string()],
            authentication_requirement: "singleFactorAuthentication".to_string(),
            satisfied_strengths: Vec::new(),
            correlation_id: "c1".to_string(),
            sign_in_event_type: "servicePrincipal".to_string(),
            app_id: Some("3f0c5d52-7a5e-4bb5-b5a4-5c5bd3c7b7a1".to_string()),
            conditional_access_status: Some("notApplied".to_string()),
            applied_conditional_access_policies: None,
            attempt_count: None,
            last_attempt_date_time: None,
            risk_level_during_sign_in: None,
            risk_event_types: Vec::new(),
            device_detail: None,
        }
    }

    fn check_round_trip(entry: SignInEntry) {
        let row = row_of(&entry, None).unwrap();
        let read = entry_of(&row).unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&entry).unwrap(),
            "stored as {}",
            row.body
        );
    }

    #[test]
    fn compact_entries_read_back_whole() {
        check_round_trip(entry());
        let mut user = entry();
        user.user_principal_name = "Adele@Contoso.com".to_string();
        user.user_id = Some(Uuid::new_v4());
        user.sign_in_event_type = "interactiveUser".to_string();
        user.app_id = None;
        user.authentication_methods = Vec::new();
        user.authentication_requirement = "multiFactorAuthentication".to_string();
        user.satisfied_strengths = vec![Uuid::new_v4()];
        check_round_trip(user);
        let mut odd_client = entry();
        odd_client.app_id = Some("Mixed-Case".to_string());
        odd_client.user_principal_name = "app:mixed-case".to_string();
        check_round_trip(odd_client);
    }

    #[test]
    fn compact_bodies_leave_out_what_columns_hold() {
        let row = row_of(&entry(), None).unwrap();
        assert_eq!(
            row.body,
            r#"{"authenticationMethods":["clientSecret"],"clientAddress":"192.0.2.1","conditionalAccessStatus":"notApplied","signInEventType":"servicePrincipal"}"#
        );
    }

    #[test]
    fn aggregates_read_with_their_count_and_times() {
        let mut failure = entry();
        failure.result = "failure".to_string();
        failure.failure_code = Some("invalid_client".to_string());
        let mut row = row_of(&failure, Some("k".to_string())).unwrap();
        row.attempts = 7;
        row.time = failure.created_date_time.plus_seconds(30);
        let read = entry_of(&row).unwrap();
        assert_eq!(read.attempt_count, Some(7));
        assert_eq!(read.created_date_time, failure.created_date_time);
        assert_eq!(read.last_attempt_date_time, Some(row.time));
    }

    #[test]
    fn entries_written_whole_still_read() {
        let entry = entry();
        let row = SignInRow {
            body: serde_json::to_string(&entry).unwrap(),
            ..row_of(&entry, None).unwrap()
        };
        assert_eq!(
            serde_json::to_value(entry_of(&row).unwrap()).unwrap(),
            serde_json::to_value(&entry).unwrap()
        );
    }

    #[test]
    fn a_source_fails_for_a_bounded_number_of_names() {
        let sources = FailureSources::default();
        let tenant = TenantId::new_random();
        let group =
            |window, tenant, source, name: &str| sources.grouping(window, tenant, source, name);
        for i in 0..MAX_NAMES_PER_SOURCE {
            assert_eq!(
                group(1, tenant, "192.0.2.1", &format!("n{i}")),
                Grouping::Own
            );
        }
        assert_eq!(
            group(1, tenant, "192.0.2.1", "n0"),
            Grouping::Own,
            "a known name"
        );
        assert_eq!(
            group(1, tenant, "192.0.2.1", "another"),
            Grouping::SourceOnly
        );
        assert_eq!(
            group(1, tenant, "192.0.2.2", "another"),
            Grouping::Own,
            "per source"
        );
        assert_eq!(
            group(2, tenant, "192.0.2.1", "another"),
            Grouping::Own,
            "per window"
        );
    }

    #[test]
    fn a_tenant_gets_a_bounded_number_of_failure_entries() {
        let sources = FailureSources::default();
        let tenant = TenantId::new_random();
        for i in 0..MAX_ENTRIES_PER_WINDOW {
            assert_eq!(
                sources.grouping(1, tenant, &format!("s{i}"), "n"),
                Grouping::Own
            );
        }
        assert_eq!(
            sources.grouping(1, tenant, "s0", "n"),
            Grouping::Own,
            "a known one"
        );
        assert_eq!(sources.grouping(1, tenant, "new", "n"), Grouping::Tenant);
        let other = TenantId::new_random();
        assert_eq!(
            sources.grouping(1, other, "new", "n"),
            Grouping::Own,
            "per tenant"
        );
        assert_eq!(
            sources.grouping(2, tenant, "new", "n"),
            Grouping::Own,
            "per window"
        );
    }
}
