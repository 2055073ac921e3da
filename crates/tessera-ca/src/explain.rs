//! A decision as people and the sign-in log read it: per policy, applied or not
//! (and which condition did not match), report-only results, what was required.

use serde::Serialize;
use uuid::Uuid;

use crate::engine::{
    ControlState, Decision, EffectiveSession, Miss, Outcome, PolicyResultKind, PolicySet, Remedy,
};
use crate::model::Operator;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub result: Outcome,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub security_defaults: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub register_mfa: bool,
    pub session_controls: EffectiveSession,
    /// For an interrupted sign-in: what would satisfy it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
    pub policies: Vec<PolicyExplanation>,
    /// What the person asking should know about how the answer was reached (What-If:
    /// no country database, so every address is an unknown country).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyExplanation {
    pub id: Uuid,
    pub display_name: String,
    pub result: PolicyResultKind,
    /// For a policy that did not apply: the condition that did not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_applied: Option<Miss>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub block: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// What the policy requires, each with whether the sign-in meets it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<ControlState>,
    /// Its sign-in frequency asks for a new sign-in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reauthenticate: bool,
}

impl Decision {
    /// The explanation of this decision against the set that made it.
    pub fn explain(&self, set: &PolicySet) -> Explanation {
        Explanation {
            result: self.outcome,
            security_defaults: self.security_defaults,
            register_mfa: self.register_mfa,
            session_controls: self.session.clone(),
            remedy: (self.outcome == Outcome::Interrupt).then(|| self.remedy(set)),
            policies: self
                .policies
                .iter()
                .map(|p| {
                    let policy = &set.policies[p.policy as usize];
                    let applied = p.miss.is_none();
                    PolicyExplanation {
                        id: policy.id,
                        display_name: policy.display_name.clone(),
                        result: p.kind,
                        not_applied: p.miss,
                        block: p.block,
                        operator: (applied && p.controls.count > 1).then(|| policy.operator()),
                        controls: p.controls.states(policy.controls()),
                        reauthenticate: p.reauthenticate,
                    }
                })
                .collect(),
            warnings: Vec::new(),
        }
    }
}
