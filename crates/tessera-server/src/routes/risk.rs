//! Identity Protection: `identityProtection/riskDetections`.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use tessera_core::Timestamp;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Caller, Query};
use crate::routes::{PageOf, ok};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectionParams {
    pub user_id: Option<Uuid>,
    /// A `riskEventType`, e.g. `anonymizedIPAddress`.
    pub risk_event_type: Option<String>,
    /// `low`, `medium` or `high`.
    pub risk_level: Option<String>,
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Risk detections, newest first: what Identity Protection found in sign-ins.
#[utoipa::path(get, path = "/api/v1/identityProtection/riskDetections", tag = "identityProtection",
    params(DetectionParams),
    responses((status = 200, body = PageOf<tessera_service::risk::RiskDetectionView>)),
    security(("bearer" = [])))]
pub async fn list_risk_detections(
    State(state): State<AppState>,
    Caller(ctx): Caller,
    Query(params): Query<DetectionParams>,
) -> ApiResult<Response> {
    let filter = tessera_service::risk::DetectionFilter {
        user_id: params.user_id,
        risk_event_type: params.risk_event_type,
        risk_level: params.risk_level,
        since: params.since,
        until: params.until,
        cursor: params.cursor,
        limit: params.limit,
    };
    Ok(ok(&state.app.risk.list_detections(&ctx, &filter).await?))
}
