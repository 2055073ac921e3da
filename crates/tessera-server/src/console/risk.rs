//! Identity Protection in the console: risky users (with their history, the
//! detections behind them, dismiss and confirm compromised), risky workloads,
//! and the detections with their evidence drawn: where (a map of the places
//! for travel) and when.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::Value;
use tessera_directory::roles::action;
use tessera_service::risk::{
    DetectionFilter, PrincipalKind, RiskDetectionView, RiskHistoryView, RiskLevel, RiskyFilter,
    RiskyServicePrincipalView, RiskyState, RiskyUserView, ServicePrincipalRiskDetectionView,
};
use uuid::Uuid;

use super::forms::Posted;
use super::{Admin, done, holds, refused};
use crate::pages;
use crate::state::AppState;

const PAGE_SIZE: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/risk", get(risky_users))
        .route("/admin/risk/users/{id}", get(risky_user))
        .route("/admin/risk/{kind}/{id}/{act}", post(act))
        .route("/admin/risk/workloads", get(risky_workloads))
        .route("/admin/risk/detections", get(detections))
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn name_of<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The risky lists' filters, as the form sends them.
#[derive(Deserialize, Default, Clone)]
struct RiskyQuery {
    level: Option<String>,
    state: Option<String>,
    cursor: Option<String>,
    done: Option<String>,
}

impl RiskyQuery {
    fn filter(&self) -> Result<RiskyFilter, String> {
        let risk_level = given(&self.level)
            .map(|v| {
                serde_json::from_value::<RiskLevel>(Value::String(v))
                    .map_err(|_| "Level: not a risk level".to_string())
            })
            .transpose()?;
        let risk_state = given(&self.state)
            .map(|v| {
                serde_json::from_value::<RiskyState>(Value::String(v))
                    .map_err(|_| "State: not a risk state".to_string())
            })
            .transpose()?;
        Ok(RiskyFilter {
            risk_level,
            risk_state,
            cursor: given(&self.cursor),
            limit: Some(PAGE_SIZE),
        })
    }

    fn next(&self, cursor: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [("level", &self.level), ("state", &self.state)] {
            if let Some(value) = given(value) {
                query.append_pair(name, &value);
            }
        }
        query.append_pair("cursor", cursor);
        query.finish()
    }
}

/// What was just done, said above the page.
fn notice(done: &Option<String>) -> Option<&'static str> {
    match done.as_deref() {
        Some("dismissed") => Some("The risk was dismissed."),
        Some("confirmed") => {
            Some("Confirmed compromised: the risk is high, and a user's sessions were ended.")
        }
        _ => None,
    }
}

/// A risky user or workload as the pages show it.
struct RiskyRow {
    id: Uuid,
    name: String,
    /// The user principal name, or the workload's application id.
    detail_name: String,
    level: String,
    state: String,
    detail: String,
    updated: String,
}

impl RiskyRow {
    fn user(view: &RiskyUserView) -> RiskyRow {
        RiskyRow {
            id: view.id,
            name: view.user_display_name.clone(),
            detail_name: view.user_principal_name.clone(),
            level: name_of(&view.risk_level),
            state: name_of(&view.risk_state),
            detail: name_of(&view.risk_detail),
            updated: view
                .risk_last_updated_date_time
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }

    fn workload(view: &RiskyServicePrincipalView) -> RiskyRow {
        RiskyRow {
            id: view.id,
            name: view.display_name.clone(),
            detail_name: view.app_id.clone(),
            level: name_of(&view.risk_level),
            state: name_of(&view.risk_state),
            detail: view.risk_detail.clone(),
            updated: view
                .risk_last_updated_date_time
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }
}

/// One change of a risk, as the page shows it.
struct HistoryRow {
    at: String,
    level: String,
    state: String,
    detail: String,
    by: String,
    types: String,
}

impl HistoryRow {
    fn of(item: &RiskHistoryView) -> HistoryRow {
        HistoryRow {
            at: item.risk_last_updated_date_time.to_string(),
            level: name_of(&item.risk_level),
            state: name_of(&item.risk_state),
            detail: item.risk_detail.clone(),
            by: item
                .initiated_by
                .clone()
                .unwrap_or_else(|| "Identity Protection".to_string()),
            types: item.activity["riskEventTypes"]
                .as_array()
                .map(|types| {
                    types
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/risky_users.html")]
struct RiskyUsersPage<'a> {
    admin: &'a Admin,
    filters: RiskyQuery,
    rows: Vec<RiskyRow>,
    next: Option<String>,
    error: Option<String>,
    notice: Option<&'static str>,
}

async fn risky_users(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<RiskyQuery>,
) -> Response {
    let (rows, next, error, status) = match query.filter() {
        Err(message) => (Vec::new(), None, Some(message), StatusCode::BAD_REQUEST),
        Ok(filter) => match state.app.risk.list_risky_users(&admin.ctx, &filter).await {
            Ok(page) => (
                page.value.iter().map(RiskyRow::user).collect(),
                page.next_cursor.as_deref().map(|c| query.next(c)),
                None,
                StatusCode::OK,
            ),
            Err(tessera_service::ServiceError::Validation(errors)) => (
                Vec::new(),
                None,
                Some(tessera_service::ServiceError::Validation(errors).to_string()),
                StatusCode::BAD_REQUEST,
            ),
            Err(error) => return refused(error),
        },
    };
    pages::page(
        status,
        &RiskyUsersPage {
            admin: &admin,
            notice: notice(&query.done),
            filters: query,
            rows,
            next,
            error,
        },
    )
}

/// One detection as a page shows it: what, when, where, and its evidence.
struct DetectionRow {
    d: RiskDetectionView,
    /// The evidence, as (what, value) lines.
    evidence: Vec<(String, String)>,
    /// For travel: the two places on a world map (SVG).
    map: Option<String>,
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A place of a travel detection: "city, country (lat, lon) at time".
fn place_line(located: &Value) -> String {
    let place = &located["place"];
    let name = [text(&place["city"]), text(&place["country"])]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} ({:.2}, {:.2}, within {} km) at {}",
        if name.is_empty() {
            "unnamed place".to_string()
        } else {
            name
        },
        place["latitude"].as_f64().unwrap_or_default(),
        place["longitude"].as_f64().unwrap_or_default(),
        place["accuracyKm"].as_f64().unwrap_or_default().round(),
        text(&located["at"]),
    )
}

/// The two places on an equirectangular world (only numbers go in it).
fn travel_map(from: &Value, to: &Value) -> Option<String> {
    let point = |located: &Value| {
        let place = &located["place"];
        let lat = place["latitude"].as_f64()?;
        let lon = place["longitude"].as_f64()?;
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some((lon + 180.0, 90.0 - lat))
    };
    let (x1, y1) = point(from)?;
    let (x2, y2) = point(to)?;
    Some(format!(
        concat!(
            r##"<svg class="travel-map" viewBox="0 0 360 180" width="360" height="180" role="img" aria-label="From the first place to the second">"##,
            r##"<rect width="360" height="180" fill="#eef3f8" stroke="#9aa"/>"##,
            r##"<line x1="0" y1="90" x2="360" y2="90" stroke="#cdd" stroke-dasharray="2 3"/>"##,
            r##"<line x1="180" y1="0" x2="180" y2="180" stroke="#cdd" stroke-dasharray="2 3"/>"##,
            r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#b33" stroke-width="1.5"/>"##,
            r##"<circle cx="{x1:.1}" cy="{y1:.1}" r="4" fill="#246"/>"##,
            r##"<circle cx="{x2:.1}" cy="{y2:.1}" r="4" fill="#b33"/></svg>"##
        ),
        x1 = x1,
        y1 = y1,
        x2 = x2,
        y2 = y2
    ))
}

impl DetectionRow {
    fn of(d: RiskDetectionView) -> DetectionRow {
        let info = &d.additional_info;
        let mut evidence = Vec::new();
        let mut map = None;
        match d.risk_event_type.as_str() {
            "impossibleTravel" | "unlikelyTravel" => {
                evidence.push(("From".to_string(), place_line(&info["from"])));
                evidence.push(("To".to_string(), place_line(&info["to"])));
                evidence.push((
                    "Distance".to_string(),
                    format!(
                        "{} km at {} km/h",
                        text(&info["distanceKm"]),
                        text(&info["speedKmh"])
                    ),
                ));
                map = travel_map(&info["from"], &info["to"]);
            }
            "unfamiliarFeatures" | "suspiciousSignins" => {
                if let Some(new) = info["unfamiliar"].as_object() {
                    for (property, value) in new {
                        evidence.push((format!("New {property}"), text(value)));
                    }
                }
                evidence.push(("Score".to_string(), text(&info["score"])));
            }
            _ => {
                if let Some(map) = info.as_object() {
                    for (key, value) in map {
                        evidence.push((key.clone(), text(value)));
                    }
                }
            }
        }
        DetectionRow { d, evidence, map }
    }

    /// A workload's detection, shown as a user's is (named by the workload).
    fn of_workload(w: ServicePrincipalRiskDetectionView) -> DetectionRow {
        DetectionRow::of(RiskDetectionView {
            id: w.id,
            risk_event_type: w.risk_event_type,
            risk_level: w.risk_level,
            risk_state: w.risk_state,
            detection_timing_type: w.detection_timing_type,
            activity: w.activity,
            source: w.source,
            detected_date_time: w.detected_date_time,
            activity_date_time: w.activity_date_time,
            user_id: w.service_principal_id,
            user_principal_name: w.service_principal_display_name,
            request_id: None,
            correlation_id: w.correlation_id,
            ip_address: w.ip_address,
            additional_info: w.additional_info,
        })
    }
}

#[derive(Template)]
#[template(path = "console/risky_user.html")]
struct RiskyUserPage<'a> {
    admin: &'a Admin,
    user: RiskyRow,
    history: Vec<HistoryRow>,
    detections: Vec<DetectionRow>,
    may_manage: bool,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

async fn risky_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<Uuid>,
    Query(done): Query<Done>,
) -> Response {
    let risk = &state.app.risk;
    let user = match risk.get_risky_user(&admin.ctx, id).await {
        Ok(user) => user,
        Err(error) => return refused(error),
    };
    let history = match risk.risk_history(&admin.ctx, PrincipalKind::User, id).await {
        Ok(history) => history,
        Err(error) => return refused(error),
    };
    let filter = DetectionFilter {
        user_id: Some(id),
        limit: Some(PAGE_SIZE),
        ..Default::default()
    };
    let detections = match risk.list_detections(&admin.ctx, &filter).await {
        Ok(page) => page.value.into_iter().map(DetectionRow::of).collect(),
        Err(error) => return refused(error),
    };
    pages::page(
        StatusCode::OK,
        &RiskyUserPage {
            may_manage: holds(&admin.ctx, action::RISK_MANAGE),
            admin: &admin,
            user: RiskyRow::user(&user),
            history: history.iter().map(HistoryRow::of).collect(),
            detections,
            notice: notice(&done.done),
        },
    )
}

#[derive(Template)]
#[template(path = "console/risky_workloads.html")]
struct RiskyWorkloadsPage<'a> {
    admin: &'a Admin,
    rows: Vec<RiskyRow>,
    /// The newest workload detections.
    detections: Vec<DetectionRow>,
    next: Option<String>,
    may_manage: bool,
    notice: Option<&'static str>,
}

async fn risky_workloads(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<RiskyQuery>,
) -> Response {
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(message) => return pages::error_page(StatusCode::BAD_REQUEST, &message),
    };
    let page = match state
        .app
        .risk
        .list_risky_service_principals(&admin.ctx, &filter)
        .await
    {
        Ok(page) => page,
        Err(error) => return refused(error),
    };
    let newest = DetectionFilter {
        limit: Some(PAGE_SIZE),
        ..Default::default()
    };
    let detections = match state
        .app
        .risk
        .list_service_principal_detections(&admin.ctx, &newest)
        .await
    {
        Ok(page) => page
            .value
            .into_iter()
            .map(DetectionRow::of_workload)
            .collect(),
        Err(error) => return refused(error),
    };
    pages::page(
        StatusCode::OK,
        &RiskyWorkloadsPage {
            detections,
            may_manage: holds(&admin.ctx, action::RISK_MANAGE),
            admin: &admin,
            next: page.next_cursor.as_deref().map(|c| query.next(c)),
            rows: page.value.iter().map(RiskyRow::workload).collect(),
            notice: notice(&query.done),
        },
    )
}

/// Dismisses or confirms compromised a user (`users`) or a workload
/// (`workloads`): `/admin/risk/{kind}/{id}/{dismiss|confirm}`.
async fn act(
    State(state): State<AppState>,
    Path((kind, id, act)): Path<(String, Uuid, String)>,
    Posted { admin, form: _ }: Posted,
) -> Response {
    let (principal, back) = match kind.as_str() {
        "users" => (PrincipalKind::User, format!("/admin/risk/users/{id}")),
        "workloads" => (
            PrincipalKind::ServicePrincipal,
            "/admin/risk/workloads".to_string(),
        ),
        _ => return pages::error_page(StatusCode::NOT_FOUND, "There is no such page."),
    };
    let risk = &state.app.risk;
    let (result, said) = match act.as_str() {
        "dismiss" => (
            risk.dismiss(&admin.ctx, principal, &[id]).await,
            "dismissed",
        ),
        "confirm" => (
            risk.confirm_compromised(&admin.ctx, principal, &[id]).await,
            "confirmed",
        ),
        _ => return pages::error_page(StatusCode::NOT_FOUND, "There is no such page."),
    };
    done(result, &format!("{back}?done={said}"))
}

/// The detections list's filters, as the form sends them.
#[derive(Deserialize, Default, Clone)]
struct DetectionsQuery {
    user: Option<String>,
    kind: Option<String>,
    level: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "console/risk_detections.html")]
struct DetectionsPage<'a> {
    admin: &'a Admin,
    filters: DetectionsQuery,
    kinds: Vec<&'static str>,
    rows: Vec<DetectionRow>,
    next: Option<String>,
    error: Option<String>,
}

async fn detections(
    State(state): State<AppState>,
    admin: Admin,
    Query(query): Query<DetectionsQuery>,
) -> Response {
    let user_id = match given(&query.user).map(|u| Uuid::parse_str(&u)) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return pages::error_page(StatusCode::BAD_REQUEST, "User: give the user's object id");
        }
        None => None,
    };
    let filter = DetectionFilter {
        user_id,
        risk_event_type: given(&query.kind),
        risk_level: given(&query.level),
        cursor: given(&query.cursor),
        limit: Some(PAGE_SIZE),
        ..Default::default()
    };
    let (rows, next, error, status) =
        match state.app.risk.list_detections(&admin.ctx, &filter).await {
            Ok(page) => {
                let next = page.next_cursor.as_deref().map(|cursor| {
                    let mut q = form_urlencoded::Serializer::new(String::new());
                    for (name, value) in [
                        ("user", &query.user),
                        ("kind", &query.kind),
                        ("level", &query.level),
                    ] {
                        if let Some(value) = given(value) {
                            q.append_pair(name, &value);
                        }
                    }
                    q.append_pair("cursor", cursor);
                    q.finish()
                });
                (
                    page.value.into_iter().map(DetectionRow::of).collect(),
                    next,
                    None,
                    StatusCode::OK,
                )
            }
            Err(tessera_service::ServiceError::Validation(errors)) => (
                Vec::new(),
                None,
                Some(tessera_service::ServiceError::Validation(errors).to_string()),
                StatusCode::BAD_REQUEST,
            ),
            Err(error) => return refused(error),
        };
    pages::page(
        status,
        &DetectionsPage {
            admin: &admin,
            filters: query,
            kinds: tessera_service::risk::EVENT_TYPES.to_vec(),
            rows,
            next,
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn detection(kind: &str, info: Value) -> RiskDetectionView {
        serde_json::from_value(json!({
            "id": Uuid::nil(), "riskEventType": kind, "riskLevel": "high", "riskState": "atRisk",
            "detectionTimingType": "realtime", "activity": "signin", "source": "tessera",
            "detectedDateTime": "2026-12-06T10:00:00Z", "activityDateTime": "2026-12-06T10:00:00Z",
            "userPrincipalName": "adele@contoso.com", "correlationId": "c",
            "additionalInfo": info,
        }))
        .unwrap()
    }

    #[test]
    fn travel_is_drawn_on_a_map_and_said_in_words() {
        let place = |city: &str, lat: f64, lon: f64, at: &str| {
            json!({"signIn": "x", "at": at, "place": {"latitude": lat, "longitude": lon,
                "accuracyKm": 20.0, "country": "FR", "city": city}})
        };
        let row = DetectionRow::of(detection(
            "impossibleTravel",
            json!({"from": place("Paris", 48.86, 2.35, "2026-12-06T09:00:00Z"),
                   "to": place("<b>Sydney</b>", -33.87, 151.21, "2026-12-06T10:00:00Z"),
                   "distanceKm": 16960.0, "speedKmh": 16960.0}),
        ));
        let map = row.map.expect("a map");
        assert!(
            map.starts_with("<svg") && map.contains(r#"cx="182.3" cy="41.1""#),
            "{map}"
        );
        assert!(
            !map.contains("Sydney"),
            "no text from the evidence goes in the SVG"
        );
        assert_eq!(row.evidence[0].0, "From");
        assert!(
            row.evidence[1].1.starts_with("<b>Sydney</b>, FR"),
            "escaped by the template"
        );
        // Out of range or missing coordinates draw nothing.
        let row = DetectionRow::of(detection(
            "impossibleTravel",
            json!({"from": place("X", 95.0, 0.0, "t"), "to": place("Y", 0.0, 0.0, "t")}),
        ));
        assert!(row.map.is_none());
        // Other detections list their evidence.
        let row = DetectionRow::of(detection(
            "anonymizedIPAddress",
            json!({"ipAddress": "185.220.101.9", "list": "anonymous", "label": "tor"}),
        ));
        assert!(
            row.evidence
                .contains(&("label".to_string(), "tor".to_string()))
        );
        assert!(row.map.is_none());
    }
}
