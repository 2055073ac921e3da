//! A software FIDO2 authenticator (ES256, "none" attestation, discoverable
//! credentials, user verification): for tests and the benchmark, not for users. It
//! answers the options a relying party sends with the JSON a browser would post.

use std::collections::BTreeMap;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_cbor_2::Value as Cbor;
use serde_json::{Value, json};

/// One credential held by the authenticator.
pub struct Credential {
    key: EcdsaKeyPair,
    pub id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub rp_id: String,
    pub counter: u32,
}

/// An authenticator with an AAGUID and the credentials it made.
pub struct SoftAuthenticator {
    pub aaguid: [u8; 16],
    pub credentials: Vec<Credential>,
    /// Report a signature counter (else always 0, like many passkey providers).
    pub counts: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(value: &Value) -> Result<Vec<u8>, String> {
    let text = value.as_str().ok_or("expected a base64url string")?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| e.to_string())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    tessera_core::crypto::sha256(data)
}

impl SoftAuthenticator {
    pub fn new(aaguid: [u8; 16]) -> SoftAuthenticator {
        SoftAuthenticator {
            aaguid,
            credentials: Vec::new(),
            counts: true,
        }
    }

    /// Answers `navigator.credentials.create` options (`{"publicKey": ...}`).
    pub fn register(&mut self, options: &Value, origin: &str) -> Result<Value, String> {
        let public_key = &options["publicKey"];
        let challenge = decode(&public_key["challenge"])?;
        let rp_id = public_key["rp"]["id"]
            .as_str()
            .ok_or("no rp.id")?
            .to_string();
        let user_handle = decode(&public_key["user"]["id"])?;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|e| e.to_string())?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(|e| e.to_string())?;
        let mut id = [0u8; 32];
        tessera_core::crypto::fill_random(&mut id).map_err(|e| e.to_string())?;
        // Uncompressed point: 0x04 || x || y.
        let point = key.public_key().as_ref().to_vec();
        let (x, y) = (point[1..33].to_vec(), point[33..65].to_vec());
        let cose = Cbor::Map(BTreeMap::from([
            (Cbor::Integer(1), Cbor::Integer(2)),
            (Cbor::Integer(3), Cbor::Integer(-7)),
            (Cbor::Integer(-1), Cbor::Integer(1)),
            (Cbor::Integer(-2), Cbor::Bytes(x)),
            (Cbor::Integer(-3), Cbor::Bytes(y)),
        ]));
        let mut auth_data = sha256(rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04 | 0x40); // user present, user verified, attested data
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&self.aaguid);
        auth_data.extend_from_slice(&(id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend(serde_cbor_2::to_vec(&cose).map_err(|e| e.to_string())?);
        let attestation = Cbor::Map(BTreeMap::from([
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]));
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": b64(&challenge),
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        self.credentials.push(Credential {
            key,
            id: id.to_vec(),
            user_handle,
            rp_id,
            counter: 0,
        });
        Ok(json!({
            "id": b64(&id),
            "rawId": b64(&id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "clientDataJSON": b64(client_data.as_bytes()),
                "attestationObject": b64(&serde_cbor_2::to_vec(&attestation).map_err(|e| e.to_string())?),
                "transports": ["internal"],
            },
        }))
    }

    /// Answers `navigator.credentials.get` options with credential `index`.
    pub fn assert(&mut self, options: &Value, origin: &str, index: usize) -> Result<Value, String> {
        let public_key = &options["publicKey"];
        let challenge = decode(&public_key["challenge"])?;
        let counts = self.counts;
        let credential = self
            .credentials
            .get_mut(index)
            .ok_or("no such credential")?;
        if counts {
            credential.counter += 1;
        }
        let mut auth_data = sha256(credential.rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04);
        auth_data.extend_from_slice(&credential.counter.to_be_bytes());
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": b64(&challenge),
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let signature = credential
            .key
            .sign(&SystemRandom::new(), &signed)
            .map_err(|e| e.to_string())?;
        Ok(json!({
            "id": b64(&credential.id),
            "rawId": b64(&credential.id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "clientDataJSON": b64(client_data.as_bytes()),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&credential.user_handle),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passkey::RelyingParty;

    #[test]
    fn registers_and_signs_in_through_webauthn_rs() {
        let origin = "https://id.contoso.com";
        let rp = RelyingParty::new(origin, "Contoso").unwrap();
        let mut authenticator = SoftAuthenticator::new([7; 16]);
        let user = uuid::Uuid::new_v4();
        let (options, state) = rp
            .start_registration(user, "adele@contoso.com", "Adele", &[])
            .unwrap();
        let response = authenticator.register(&options, origin).unwrap();
        let registered = rp
            .finish_registration(&response.to_string(), &state)
            .unwrap();
        assert_eq!(registered.aaguid, uuid::Uuid::from_bytes([7; 16]));

        let (options, state) = rp.start().unwrap();
        let response = authenticator
            .assert(&options, origin, 0)
            .unwrap()
            .to_string();
        let (found, credential_id) = rp.identify(&response).unwrap();
        assert_eq!(
            (found, credential_id),
            (user, registered.credential_id.clone())
        );
        let asserted = rp
            .finish_sign_in(&response, &state, &registered.credential)
            .unwrap();
        assert!(asserted.user_verified);
        assert_eq!(asserted.counter, 1);

        // A response for another origin, or replayed against a new challenge, fails.
        let (options, state) = rp.start().unwrap();
        let phished = authenticator
            .assert(&options, "https://id.contoso.evil", 0)
            .unwrap()
            .to_string();
        assert!(
            rp.finish_sign_in(&phished, &state, &registered.credential)
                .is_err()
        );
        let (_, state) = rp.start().unwrap();
        assert!(
            rp.finish_sign_in(&response, &state, &registered.credential)
                .is_err()
        );
    }
}
