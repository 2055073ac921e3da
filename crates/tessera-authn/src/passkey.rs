//! Passkeys and FIDO2 security keys (WebAuthn), over webauthn-rs.
//!
//! Registration asks for a discoverable credential (so the user can later sign in
//! without typing a name, from the browser's autofill) and requires user
//! verification (PIN or biometric), which makes a passkey a multi-factor,
//! phishing-resistant method: the browser binds every response to our origin.
//!
//! Ceremony state (the challenge) is serialized between the two halves of a
//! ceremony; the service keeps it server-side in the sign-in flow, never in the
//! browser. Everything the browser sends is untrusted JSON and parsed here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};
use webauthn_rs_core::proto::ResidentKeyRequirement;

/// Largest browser response accepted (a registration with a large attestation
/// certificate chain is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("the relying party is misconfigured: {0}")]
    Config(String),
    #[error("the browser's response is malformed: {0}")]
    Malformed(String),
    #[error("the ceremony failed: {0}")]
    Rejected(String),
    #[error("the ceremony state is unreadable")]
    State,
}

/// The relying party: our origin and RP id.
pub struct RelyingParty {
    webauthn: Webauthn,
}

/// A registered passkey, ready to store.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The webauthn-rs credential, serialized.
    pub credential: String,
    /// The credential id, base64url: the key we find it by at sign-in.
    pub credential_id: String,
    /// The authenticator model the authenticator claims (nil if it withholds it).
    pub aaguid: Uuid,
    /// Whether the credential may be synced between devices (a synced passkey rather
    /// than a device-bound security key).
    pub backup_eligible: bool,
}

/// The result of a successful assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asserted {
    /// The authenticator's signature counter (0 if it keeps none).
    pub counter: u32,
    pub user_verified: bool,
    pub backup_state: bool,
}

fn state_to_string<T: serde::Serialize>(state: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(state).map_err(|_| PasskeyError::State)
}

fn state_from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(text).map_err(|_| PasskeyError::State)
}

fn parse_response<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, PasskeyError> {
    if json.len() > MAX_RESPONSE_BYTES {
        return Err(PasskeyError::Malformed(
            "the response is too large".to_string(),
        ));
    }
    serde_json::from_str(json).map_err(|e| PasskeyError::Malformed(e.to_string()))
}

/// Parses a registration response as the browser sends it.
pub fn parse_registration(json: &str) -> Result<RegisterPublicKeyCredential, PasskeyError> {
    parse_response(json)
}

/// Parses an authentication response as the browser sends it.
pub fn parse_assertion(json: &str) -> Result<PublicKeyCredential, PasskeyError> {
    parse_response(json)
}

/// The credential id of a stored passkey, base64url.
pub fn credential_id_of(credential: &str) -> Result<String, PasskeyError> {
    let passkey: Passkey = state_from_str(credential)?;
    Ok(URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref()))
}

/// The AAGUID in a registration's attested credential data. The attestation object
/// is CBOR `{fmt, attStmt, authData}`; authData is rpIdHash(32) flags(1) counter(4)
/// then, with the AT flag, aaguid(16). Read only after webauthn-rs verified the
/// response, so the bytes are the ones it checked.
fn aaguid_of(response: &RegisterPublicKeyCredential) -> Uuid {
    #[derive(Deserialize)]
    struct AttestationObject<'a> {
        #[serde(rename = "authData", borrow)]
        auth_data: &'a [u8],
    }
    let bytes: &[u8] = response.response.attestation_object.as_ref();
    let Ok(object) = serde_cbor_2::from_slice::<AttestationObject<'_>>(bytes) else {
        return Uuid::nil();
    };
    let data = object.auth_data;
    const ATTESTED: u8 = 0x40;
    if data.len() >= 53 && data[32] & ATTESTED != 0 {
        let mut aaguid = [0u8; 16];
        aaguid.copy_from_slice(&data[37..53]);
        Uuid::from_bytes(aaguid)
    } else {
        Uuid::nil()
    }
}

impl RelyingParty {
    /// `origin` is the public URL users reach Tessera at; the RP id is its host.
    pub fn new(origin: &str, name: &str) -> Result<RelyingParty, PasskeyError> {
        let origin = Url::parse(origin).map_err(|e| PasskeyError::Config(e.to_string()))?;
        let rp_id = origin
            .host_str()
            .ok_or_else(|| PasskeyError::Config("the public URL has no host".to_string()))?
            .to_string();
        if rp_id.parse::<std::net::IpAddr>().is_ok() {
            return Err(PasskeyError::Config(
                "passkeys need a host name, not an IP address, in the public URL (use localhost for local tests)"
                    .to_string(),
            ));
        }
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .map_err(|e| PasskeyError::Config(e.to_string()))?
            .rp_name(name)
            .build()
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        Ok(RelyingParty { webauthn })
    }

    /// Starts registering a passkey for a user; returns the options for
    /// `navigator.credentials.create` (JSON) and the state to keep.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        user_name: &str,
        display_name: &str,
        existing: &[String],
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        let exclude: Vec<_> = existing
            .iter()
            .filter_map(|c| state_from_str::<Passkey>(c).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(
                user_id,
                user_name,
                display_name,
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        // Discoverable credentials, for sign-in without a user name.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        let options = serde_json::to_value(&options).map_err(|_| PasskeyError::State)?;
        Ok((options, state_to_string(&state)?))
    }

    pub fn finish_registration(
        &self,
        response_json: &str,
        state: &str,
    ) -> Result<Registered, PasskeyError> {
        let response = parse_registration(response_json)?;
        let state: PasskeyRegistration = state_from_str(state)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let credential: webauthn_rs::prelude::Credential = passkey.clone().into();
        Ok(Registered {
            credential_id: URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref()),
            credential: state_to_string(&passkey)?,
            aaguid: aaguid_of(&response),
            backup_eligible: credential.backup_eligible,
        })
    }

    /// Starts a sign-in with any discoverable passkey of this site (the browser's
    /// autofill or a "sign in with a passkey" button).
    pub fn start(&self) -> Result<(serde_json::Value, String), PasskeyError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        let options = serde_json::to_value(&options).map_err(|_| PasskeyError::State)?;
        Ok((options, state_to_string(&state)?))
    }

    /// The user and credential a sign-in response claims, to look the passkey up.
    pub fn identify(&self, response_json: &str) -> Result<(Uuid, String), PasskeyError> {
        let response = parse_assertion(response_json)?;
        let (user, credential_id) = self
            .webauthn
            .identify_discoverable_authentication(&response)
            .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        Ok((user, URL_SAFE_NO_PAD.encode(credential_id)))
    }

    /// Verifies a sign-in response against the stored passkey.
    pub fn finish_sign_in(
        &self,
        response_json: &str,
        state: &str,
        credential: &str,
    ) -> Result<Asserted, PasskeyError> {
        let response = parse_assertion(response_json)?;
        let state: DiscoverableAuthentication = state_from_str(state)?;
        let passkey: Passkey = state_from_str(credential)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&response, state, &passkey)
            .map_err(|e| PasskeyError::Rejected(e.to_string()))?;
        Ok(Asserted {
            counter: result.counter(),
            user_verified: result.user_verified(),
            backup_state: result.backup_state(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_options_ask_for_a_discoverable_verified_credential() {
        let rp = RelyingParty::new("http://localhost:8080", "Tessera").unwrap();
        let (options, state) = rp
            .start_registration(Uuid::new_v4(), "adele@contoso.com", "Adele Vance", &[])
            .unwrap();
        let selection = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(selection["residentKey"], "required");
        assert_eq!(selection["requireResidentKey"], true);
        assert_eq!(selection["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
        assert!(!state.is_empty());
    }

    #[test]
    fn ip_addresses_and_garbage_are_refused() {
        assert!(RelyingParty::new("http://127.0.0.1:8080", "T").is_err());
        assert!(RelyingParty::new("not a url", "T").is_err());
        let rp = RelyingParty::new("https://id.contoso.com", "T").unwrap();
        assert!(matches!(rp.identify("{}"), Err(PasskeyError::Malformed(_))));
        assert!(matches!(
            rp.finish_registration("[1,2]", "{}"),
            Err(PasskeyError::Malformed(_))
        ));
        assert!(matches!(
            rp.finish_sign_in(&"x".repeat(MAX_RESPONSE_BYTES + 1), "{}", "{}"),
            Err(PasskeyError::Malformed(_))
        ));
        let (_, state) = rp.start().unwrap();
        assert!(matches!(
            rp.finish_sign_in("{}", &state, "{}"),
            Err(PasskeyError::Malformed(_))
        ));
    }
}
