//! `/Bulk` (RFC 7644 §3.7): the operations of a bulk request run one by one, each
//! as its own request would (its own transaction, authorization and audit
//! events), in an order that resolves `bulkId` references; `failOnErrors` stops
//! the run after that many errors.

use std::collections::BTreeMap;

use serde_json::Value;
use tessera_scim::ScimError;
use tessera_scim::ScimType;
use tessera_scim::bulk::{self, BulkRequest, Method, Operation};

use super::Provisioning;
use super::scim::ScimFailure;
use crate::Context;

/// What one operation gave: its status, location, version and (for a POST) id.
struct Done {
    status: u16,
    location: Option<String>,
    version: Option<String>,
    id: Option<String>,
}

impl Provisioning {
    /// Runs a bulk request and returns the BulkResponse body.
    pub async fn bulk(&self, ctx: &Context, request: BulkRequest, base: &str) -> Value {
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        let mut results = Vec::with_capacity(request.operations.len());
        let mut errors = 0u32;
        for (index, blocked) in bulk::order(&request.operations) {
            if request.fail_on_errors.is_some_and(|limit| errors >= limit) {
                break;
            }
            let operation = &request.operations[index];
            if let Some(reference) = blocked {
                errors += 1;
                let error = ScimError::new(
                    409,
                    Some(ScimType::InvalidValue),
                    format!(
                        "bulkId:{reference} names no POST of this request that could run first"
                    ),
                );
                results.push(bulk::result(operation, None, 409, None, Some(&error)));
                continue;
            }
            let resolved = bulk::resolve(operation, &ids);
            match self.bulk_operation(ctx, &resolved, base).await {
                Ok(done) => {
                    if let (Some(bulk_id), Some(id)) = (&operation.bulk_id, &done.id) {
                        ids.insert(bulk_id.clone(), id.clone());
                    }
                    results.push(bulk::result(
                        operation,
                        done.location.as_deref(),
                        done.status,
                        done.version.as_deref(),
                        None,
                    ));
                }
                Err(failure) => {
                    errors += 1;
                    let error = failure.into_scim();
                    results.push(bulk::result(
                        operation,
                        None,
                        error.status,
                        None,
                        Some(&error),
                    ));
                }
            }
        }
        // A burst of writes moves the planner's statistics (SQLite keeps none itself).
        if let Err(error) = self.store().optimize().await {
            tracing::warn!(%error, "cannot refresh the planner's statistics");
        }
        bulk::response(results)
    }

    async fn bulk_operation(
        &self,
        ctx: &Context,
        operation: &Operation,
        base: &str,
    ) -> Result<Done, ScimFailure> {
        let (rt, id) = bulk::target(operation)?;
        let data = operation.data.clone().unwrap_or(Value::Null);
        let version = operation.version.as_deref();
        let done = |status: u16,
                    body: Option<&serde_json::Map<String, Value>>,
                    etag: Option<String>| Done {
            status,
            location: body
                .and_then(|b| b.get("meta"))
                .and_then(|m| m.get("location"))
                .and_then(Value::as_str)
                .map(str::to_string),
            version: etag,
            id: body
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        match (operation.method, id) {
            (Method::Post, _) => {
                let made = self.create(ctx, &rt, &data, base).await?;
                Ok(done(201, Some(&made.body), Some(made.etag)))
            }
            (Method::Put, Some(id)) => {
                let r = self.replace(ctx, &rt, &id, &data, version, base).await?;
                Ok(done(200, Some(&r.body), Some(r.etag)))
            }
            (Method::Patch, Some(id)) => {
                let r = self.patch(ctx, &rt, &id, &data, version, base).await?;
                Ok(done(200, Some(&r.body), Some(r.etag)))
            }
            (Method::Delete, Some(id)) => {
                self.delete(ctx, &rt, &id, version).await?;
                Ok(Done {
                    status: 204,
                    location: Some(format!("{base}{}/{id}", rt.endpoint)),
                    version: None,
                    id: None,
                })
            }
            (_, None) => Err(ScimError::invalid_path("name the resource, e.g. /Users/<id>").into()),
        }
    }
}
