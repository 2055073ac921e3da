//! A Conditional Access explanation (as the sign-in log stores it and What-If
//! answers it) read into what a page shows: the result, then per policy whether it
//! applied, what it required and whether that was met, or which condition did not
//! match.

use serde_json::Value;

/// One explanation, ready to print.
pub struct ExplanationView {
    pub result: String,
    pub security_defaults: bool,
    pub policies: Vec<PolicyRow>,
    /// Policies the log counted but did not list (they did not apply).
    pub not_applied: Option<u64>,
    pub warnings: Vec<String>,
}

pub struct PolicyRow {
    pub name: String,
    pub result: &'static str,
    pub block: bool,
    pub controls: Vec<(String, bool)>,
    /// For a policy that did not apply: the condition that did not match.
    pub missed: Option<String>,
}

impl ExplanationView {
    /// Reads an explanation; `None` for a value that is not one.
    pub fn of(value: &Value) -> Option<ExplanationView> {
        let fields = value.as_object()?;
        let result = fields.get("result")?.as_str()?.to_string();
        let policies = fields
            .get("policies")
            .and_then(Value::as_array)
            .map(|policies| policies.iter().map(PolicyRow::of).collect())
            .unwrap_or_default();
        Some(ExplanationView {
            result,
            security_defaults: fields
                .get("securityDefaults")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            policies,
            not_applied: fields.get("notAppliedPolicies").and_then(Value::as_u64),
            warnings: fields
                .get("warnings")
                .and_then(Value::as_array)
                .map(|w| {
                    w.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

impl PolicyRow {
    fn of(value: &Value) -> PolicyRow {
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
        let result = match text("result") {
            "success" => "Applied, requirements met",
            "failure" => "Applied, requirements not met",
            "notApplied" => "Did not apply",
            "reportOnlySuccess" => "Report-only: would have been met",
            "reportOnlyFailure" => "Report-only: would have failed",
            "reportOnlyInterrupted" => "Report-only: would have interrupted",
            "reportOnlyNotApplied" => "Report-only: did not apply",
            _ => "Unknown",
        };
        let controls = value
            .get("controls")
            .and_then(Value::as_array)
            .map(|controls| {
                controls
                    .iter()
                    .map(|c| {
                        let name = match c.get("control").and_then(Value::as_str) {
                            Some("mfa") => "Multifactor authentication".to_string(),
                            Some("authenticationStrength") => format!(
                                "Authentication strength {}",
                                c.get("id").and_then(Value::as_str).unwrap_or("")
                            ),
                            Some("compliantDevice") => "Compliant device".to_string(),
                            Some("domainJoinedDevice") => "Hybrid joined device".to_string(),
                            Some("passwordChange") => "Password change".to_string(),
                            Some("termsOfUse") => format!(
                                "Terms of use {}",
                                c.get("id").and_then(Value::as_str).unwrap_or("")
                            ),
                            Some(other) => other.to_string(),
                            None => "?".to_string(),
                        };
                        let met = c.get("satisfied").and_then(Value::as_bool).unwrap_or(false);
                        (name, met)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missed = value.get("notApplied").map(|miss| match miss {
            Value::String(text) => text.clone(),
            Value::Object(fields) => {
                let condition = fields
                    .get("condition")
                    .and_then(Value::as_str)
                    .unwrap_or("a condition");
                if fields
                    .get("excluded")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                {
                    format!("{condition}: excluded")
                } else {
                    format!("{condition}: not included")
                }
            }
            other => other.to_string(),
        });
        PolicyRow {
            name: text("displayName").to_string(),
            result,
            block: value.get("block").and_then(Value::as_bool).unwrap_or(false),
            controls,
            missed,
        }
    }
}
