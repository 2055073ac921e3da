//! The HTTP-Redirect binding (SAML bindings §3.4) as it arrives: the message
//! inflated within a bound and read strictly, and its detached signature checked
//! over the octets the binding says were signed, taken from the query string
//! exactly as received (never re-encoded).

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::xml::{self, Document, Limits, XmlError};

/// RSA with SHA-256 (xmldsig-more).
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// ECDSA with SHA-256 (xmldsig-more).
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";

/// The longest query string read, and the most an inflated message may hold.
const MAX_QUERY: usize = 64 * 1024;
const MAX_INFLATED: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("the query string is longer than {MAX_QUERY} bytes")]
    TooLong,
    #[error("the parameter {0} is given twice")]
    Repeated(&'static str),
    #[error("there is no SAMLRequest or SAMLResponse, or there are both")]
    NoMessage,
    #[error("the message is not base64 of DEFLATE-compressed XML: {0}")]
    Encoding(&'static str),
    #[error("the message inflates to more than {MAX_INFLATED} bytes")]
    TooLarge,
    #[error("the message is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("SHA-1 signatures are not accepted")]
    Sha1,
    #[error("the signature algorithm {0} is not supported")]
    Algorithm(String),
    #[error("a Signature needs a SigAlg, and a SigAlg a Signature")]
    HalfSigned,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the RelayState is longer than {MAX_RELAY_STATE} bytes or holds control characters")]
    RelayState,
}

/// Which message the query carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

/// A message received over the redirect binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectMessage {
    pub kind: Kind,
    pub document: Document,
    pub relay_state: Option<String>,
    /// The detached signature, when the message is signed.
    pub signature: Option<DetachedSignature>,
}

/// A detached signature of the redirect binding, with what it was made over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedSignature {
    pub algorithm: String,
    pub value: Vec<u8>,
    /// `SAMLRequest=…[&RelayState=…]&SigAlg=…`, as received.
    pub signed: String,
}

/// The public key of a service provider, as its certificate's
/// `subjectPublicKey` bits: PKCS#1 `RSAPublicKey` for RSA, the uncompressed point
/// for an EC P-256 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(Vec<u8>),
    EcP256(Vec<u8>),
}

impl DetachedSignature {
    /// Whether `key` made this signature. SHA-1 and unknown algorithms are refused,
    /// as is an algorithm that does not fit the key.
    pub fn verify(&self, key: &PublicKey) -> Result<(), BindingError> {
        let outcome = match (self.algorithm.as_str(), key) {
            (RSA_SHA256, PublicKey::Rsa(bits)) => {
                UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, bits)
                    .verify(self.signed.as_bytes(), &self.value)
            }
            // xmldsig-more gives ECDSA signatures as r || s; some SPs send DER.
            (ECDSA_SHA256, PublicKey::EcP256(bits)) if self.value.len() == 64 => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, bits)
                    .verify(self.signed.as_bytes(), &self.value)
            }
            (ECDSA_SHA256, PublicKey::EcP256(bits)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, bits)
                    .verify(self.signed.as_bytes(), &self.value)
            }
            (RSA_SHA1, _) => return Err(BindingError::Sha1),
            (other, _) => return Err(BindingError::Algorithm(other.chars().take(200).collect())),
        };
        outcome.map_err(|_| BindingError::BadSignature)
    }
}

fn percent_decoded(raw: &str) -> Result<String, BindingError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| BindingError::Encoding("a parameter is not UTF-8"))
}

/// Reads the query string of a redirect-binding request (without the `?`).
pub fn read_redirect(query: &str) -> Result<RedirectMessage, BindingError> {
    if query.len() > MAX_QUERY {
        return Err(BindingError::TooLong);
    }
    let mut found: [Option<(&'static str, &str)>; 5] = [None; 5];
    const NAMES: [&str; 5] = [
        "SAMLRequest",
        "SAMLResponse",
        "RelayState",
        "SigAlg",
        "Signature",
    ];
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if let Some(index) = NAMES.iter().position(|n| *n == name) {
            if found[index].is_some() {
                return Err(BindingError::Repeated(NAMES[index]));
            }
            found[index] = Some((NAMES[index], value));
        }
    }
    let [request, response, relay_state, algorithm, signature_value] = found;
    let (kind, (name, message)) = match (request, response) {
        (Some(request), None) => (Kind::Request, request),
        (None, Some(response)) => (Kind::Response, response),
        _ => return Err(BindingError::NoMessage),
    };
    let signature = match (algorithm, signature_value) {
        (Some((_, algorithm)), Some((_, value))) => {
            let mut signed = format!("{name}={message}");
            if let Some((_, relay)) = relay_state {
                signed.push_str(&format!("&RelayState={relay}"));
            }
            signed.push_str(&format!("&SigAlg={algorithm}"));
            let value = STANDARD
                .decode(percent_decoded(value)?.as_bytes())
                .map_err(|_| BindingError::Encoding("the signature is not base64"))?;
            Some(DetachedSignature {
                algorithm: percent_decoded(algorithm)?,
                value,
                signed,
            })
        }
        (None, None) => None,
        _ => return Err(BindingError::HalfSigned),
    };
    let compressed = STANDARD
        .decode(percent_decoded(message)?.as_bytes())
        .map_err(|_| BindingError::Encoding("the message is not base64"))?;
    let inflated = miniz_oxide::inflate::decompress_to_vec_with_limit(&compressed, MAX_INFLATED)
        .map_err(|error| match error.status {
            miniz_oxide::inflate::TINFLStatus::HasMoreOutput => BindingError::TooLarge,
            _ => BindingError::Encoding("the message is not DEFLATE-compressed"),
        })?;
    let text = std::str::from_utf8(&inflated)
        .map_err(|_| BindingError::Encoding("the message is not UTF-8"))?;
    // Form encoding, as SPs send it: a space may come as `+` (the base64 values
    // keep their `+`).
    let relay_state = relay_state
        .map(|(_, raw)| percent_decoded(&raw.replace('+', " ")))
        .transpose()?;
    if let Some(relay) = &relay_state {
        check_relay_state(relay)?;
    }
    let document = xml::parse(text, Limits::default())?;
    Ok(RedirectMessage {
        kind,
        document,
        relay_state,
        signature,
    })
}

/// The longest RelayState accepted. SAML bindings §3.4.3 says 80 bytes; service
/// providers routinely send a return URL, so more is taken, within a bound.
pub const MAX_RELAY_STATE: usize = 1024;

/// A RelayState as it may be sent back: bounded, without control characters.
pub fn check_relay_state(relay: &str) -> Result<(), BindingError> {
    if relay.len() > MAX_RELAY_STATE || relay.chars().any(char::is_control) {
        return Err(BindingError::RelayState);
    }
    Ok(())
}

/// The longest `SAMLRequest`/`SAMLResponse` form value read (base64).
const MAX_POSTED: usize = 512 * 1024;

/// Reads the `SAMLRequest` or `SAMLResponse` value of a POST-binding form (base64
/// of the XML, line breaks allowed). A signature, if any, is enveloped in the
/// document: verify it with `dsig::verify_enveloped` on the root before using it.
pub fn read_post(value: &str) -> Result<Document, BindingError> {
    if value.len() > MAX_POSTED {
        return Err(BindingError::TooLong);
    }
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| BindingError::Encoding("the message is not base64"))?;
    // The binding sends the XML as it is; some service providers (node-saml by
    // default) DEFLATE it as for the redirect binding. XML starts with `<` (after
    // a byte order mark or spaces); anything else is tried as DEFLATE, bounded.
    let plain = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0xEF | 0xBB | 0xBF))
        .is_some_and(|b| *b == b'<');
    let bytes = if plain {
        bytes
    } else {
        miniz_oxide::inflate::decompress_to_vec_with_limit(&bytes, MAX_INFLATED).map_err(
            |error| match error.status {
                miniz_oxide::inflate::TINFLStatus::HasMoreOutput => BindingError::TooLarge,
                _ => {
                    BindingError::Encoding("the message is neither XML nor DEFLATE-compressed XML")
                }
            },
        )?
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| BindingError::Encoding("the message is not UTF-8"))?;
    Ok(xml::parse(text, Limits::default())?)
}

/// A message for the redirect binding: `name=…[&RelayState=…]`, the XML
/// DEFLATE-compressed and base64- and percent-encoded, and with a key, `SigAlg`
/// and `Signature` over exactly those octets.
pub fn write_redirect(
    name: &str,
    xml: &str,
    relay_state: Option<&str>,
    key: Option<&crate::dsig::SigningKey>,
) -> Result<String, crate::dsig::SignatureError> {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    // Everything but RFC 3986's unreserved characters is encoded, as Python's
    // `quote_plus` and Java's `URLEncoder` do: a service provider that checks the
    // signature over the query as it encodes it again (python3-saml by default)
    // gets the same octets.
    const ENCODED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
    let mut query = format!(
        "{name}={}",
        utf8_percent_encode(&STANDARD.encode(deflated), ENCODED)
    );
    if let Some(relay) = relay_state {
        query.push_str(&format!(
            "&RelayState={}",
            utf8_percent_encode(relay, ENCODED)
        ));
    }
    if let Some(key) = key {
        query.push_str(&format!(
            "&SigAlg={}",
            utf8_percent_encode(key.algorithm().uri(), ENCODED)
        ));
        let signature = key.sign(query.as_bytes())?;
        query.push_str(&format!(
            "&Signature={}",
            utf8_percent_encode(&STANDARD.encode(signature), ENCODED)
        ));
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    const REQUEST: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r1" Version="2.0" IssueInstant="2026-12-04T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://sp.example</saml:Issuer></samlp:AuthnRequest>"#;

    fn encoded(xml: &str) -> String {
        let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
        utf8_percent_encode(&STANDARD.encode(deflated), NON_ALPHANUMERIC).to_string()
    }

    fn signed_query(key: &EcdsaKeyPair, relay: &str) -> String {
        let mut query = format!(
            "SAMLRequest={}&RelayState={}&SigAlg={}",
            encoded(REQUEST),
            utf8_percent_encode(relay, NON_ALPHANUMERIC),
            utf8_percent_encode(ECDSA_SHA256, NON_ALPHANUMERIC)
        );
        let signature = key.sign(&SystemRandom::new(), query.as_bytes()).unwrap();
        query.push_str(&format!(
            "&Signature={}",
            utf8_percent_encode(&STANDARD.encode(signature.as_ref()), NON_ALPHANUMERIC)
        ));
        query
    }

    fn key() -> EcdsaKeyPair {
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap()
    }

    #[test]
    fn a_signed_request_is_read_and_verified() {
        let key = key();
        let public = PublicKey::EcP256(key.public_key().as_ref().to_vec());
        let message = read_redirect(&signed_query(&key, "https://sp.example/after?x=1")).unwrap();
        assert_eq!(message.kind, Kind::Request);
        assert_eq!(message.document.root.attribute("ID"), Some("_r1"));
        assert_eq!(
            message.relay_state.as_deref(),
            Some("https://sp.example/after?x=1")
        );
        let spaced = read_redirect(&format!(
            "SAMLRequest={}&RelayState=a+b%2Bc",
            encoded(REQUEST)
        ))
        .unwrap();
        assert_eq!(spaced.relay_state.as_deref(), Some("a b+c"));
        message.signature.as_ref().unwrap().verify(&public).unwrap();
        // Another key, or a changed RelayState, does not verify.
        let other = PublicKey::EcP256(self::key().public_key().as_ref().to_vec());
        assert_eq!(
            message.signature.unwrap().verify(&other).unwrap_err(),
            BindingError::BadSignature
        );
        let tampered = signed_query(&key, "https://sp.example/after")
            .replace("RelayState=https", "RelayState=http");
        let message = read_redirect(&tampered).unwrap();
        assert_eq!(
            message.signature.unwrap().verify(&public).unwrap_err(),
            BindingError::BadSignature
        );
        // A key of the wrong kind for the algorithm is refused too.
        let message = read_redirect(&signed_query(&key, "r")).unwrap();
        assert!(
            message
                .signature
                .unwrap()
                .verify(&PublicKey::Rsa(vec![0; 10]))
                .is_err()
        );
    }

    #[test]
    fn an_ecdsa_signature_as_r_and_s_verifies_too() {
        use aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let mut query = format!(
            "SAMLRequest={}&SigAlg={}",
            encoded(REQUEST),
            utf8_percent_encode(ECDSA_SHA256, NON_ALPHANUMERIC)
        );
        let signature = key.sign(&SystemRandom::new(), query.as_bytes()).unwrap();
        assert_eq!(signature.as_ref().len(), 64);
        query.push_str(&format!(
            "&Signature={}",
            utf8_percent_encode(&STANDARD.encode(signature.as_ref()), NON_ALPHANUMERIC)
        ));
        let public = PublicKey::EcP256(key.public_key().as_ref().to_vec());
        read_redirect(&query)
            .unwrap()
            .signature
            .unwrap()
            .verify(&public)
            .unwrap();
    }

    #[test]
    fn unsigned_sha1_repeated_and_oversized_messages() {
        let unsigned = format!("SAMLRequest={}", encoded(REQUEST));
        assert!(read_redirect(&unsigned).unwrap().signature.is_none());
        let sha1 = format!(
            "SAMLRequest={}&SigAlg={}&Signature=AAAA",
            encoded(REQUEST),
            utf8_percent_encode(RSA_SHA1, NON_ALPHANUMERIC)
        );
        let message = read_redirect(&sha1).unwrap();
        assert_eq!(
            message
                .signature
                .unwrap()
                .verify(&PublicKey::Rsa(vec![1]))
                .unwrap_err(),
            BindingError::Sha1
        );
        assert_eq!(
            read_redirect(&format!("{unsigned}&{unsigned}")).unwrap_err(),
            BindingError::Repeated("SAMLRequest")
        );
        assert_eq!(
            read_redirect(&format!("{unsigned}&Signature=AAAA")).unwrap_err(),
            BindingError::HalfSigned
        );
        assert_eq!(
            read_redirect("RelayState=x").unwrap_err(),
            BindingError::NoMessage
        );
        // A bomb: a megabyte of one letter inflates past the bound.
        let bomb = format!("<a>{}</a>", "a".repeat(1024 * 1024));
        assert_eq!(
            read_redirect(&format!("SAMLRequest={}", encoded(&bomb))).unwrap_err(),
            BindingError::TooLarge
        );
        let doctype = format!("SAMLRequest={}", encoded("<!DOCTYPE a><a/>"));
        assert_eq!(
            read_redirect(&doctype).unwrap_err(),
            BindingError::Xml(XmlError::DocumentType)
        );
        assert!(matches!(
            read_redirect("SAMLRequest=not-base64!").unwrap_err(),
            BindingError::Encoding(_)
        ));
    }
}
