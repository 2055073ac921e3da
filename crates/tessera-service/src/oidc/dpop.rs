//! DPoP at the token endpoint and at userinfo (RFC 9449): proofs are verified by
//! `tessera_oauth::dpop`, and each proof's `jti` is taken once through an atomic
//! counter, so a replayed proof fails on every node.

use serde_json::Value;
use tessera_core::TenantId;
use tessera_core::crypto::secret_hash;
use tessera_oauth::claims::{AccessTokenClaims, Confirmation};
use tessera_oauth::dpop::{self, DpopError, Proof};

use crate::Oidc;

/// Binds access token claims to the request's DPoP key (`cnf.jkt`) and, when the
/// client authenticated with a mutual-TLS certificate, to that certificate
/// (`cnf.x5t#S256`, RFC 8705 §3); returns the token type to answer with.
pub(crate) fn bind(
    claims: &mut AccessTokenClaims,
    proof: Option<&Proof>,
    certificate: Option<&str>,
) -> &'static str {
    claims.cnf = Confirmation::of(proof.map(|p| p.jkt.as_str()), certificate);
    if proof.is_some() { "DPoP" } else { "Bearer" }
}

/// The certificate thumbprint an access token is bound to.
pub(crate) fn bound_certificate(claims: &serde_json::Map<String, Value>) -> Option<&str> {
    claims
        .get("cnf")
        .and_then(|c| c.get("x5t#S256"))
        .and_then(Value::as_str)
}

/// The key thumbprint an access token is bound to.
pub(crate) fn bound_jkt(claims: &serde_json::Map<String, Value>) -> Option<&str> {
    claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str)
}

impl Oidc {
    /// Verifies the request's DPoP header, if any, and refuses a replayed proof.
    pub(crate) async fn dpop_proof(
        &self,
        tenant: TenantId,
        header: Option<&str>,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
    ) -> Result<Option<Proof>, DpopError> {
        let Some(header) = header else {
            return Ok(None);
        };
        let now = self.now();
        let proof = dpop::verify(header, htm, htu, now.unix_seconds(), access_token)?;
        let key = format!(
            "dpop-jti:{}",
            secret_hash(&format!("{}:{}", proof.jkt, proof.jti))
        );
        let first = self
            .store
            .counter_take(tenant, &key, 1, now)
            .await
            .map_err(|_| DpopError("cannot be checked now"))?;
        if !first {
            return Err(DpopError("this proof was already used"));
        }
        Ok(Some(proof))
    }
}
