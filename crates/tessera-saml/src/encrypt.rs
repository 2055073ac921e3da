//! Assertion encryption (XML Encryption 1.1 as SAML uses it): the canonical
//! (already signed) assertion encrypted with a fresh AES-GCM key, that key
//! encrypted to the service provider's certificate with RSA-OAEP (`rsa-oaep-mgf1p`:
//! SHA-1 inside OAEP is not a collision risk, and it is the one transport every
//! SAML library and xmlsec1 1.2 decrypt; XML Encryption 1.1's `rsa-oaep` with
//! SHA-256 is not read by xmlsec1 1.2, so it is not offered yet), in an
//! `EncryptedAssertion`.
//!
//! AES-GCM only: the CBC modes are open to padding-oracle attacks on XML
//! Encryption and are not offered.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PublicEncryptingKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::c14n::{self, Options};
use crate::request::{ASSERTION, DSIG};
use crate::xml::Element;

pub const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
/// RSA-OAEP with SHA-1 and MGF1 with SHA-1: what every SAML library decrypts.
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const ELEMENT_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#Element";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    #[error("the service provider's encryption certificate has no usable RSA key")]
    Key,
    #[error("encryption failed")]
    Failed,
}

/// The content encryption algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAlgorithm {
    Aes256Gcm,
    Aes128Gcm,
}

/// The `SubjectPublicKeyInfo` (DER) of a certificate (DER).
pub fn subject_public_key_info(certificate: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::FromDer as _;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(certificate).ok()?;
    Some(cert.public_key().raw.to_vec())
}

fn xenc(local: &str) -> Element {
    Element::new(XENC, "xenc", local)
}

fn cipher_data(bytes: &[u8]) -> Element {
    xenc("CipherData").with_child(xenc("CipherValue").with_text(STANDARD.encode(bytes)))
}

/// `assertion` encrypted to `certificate` (DER), as an `EncryptedAssertion`.
pub fn encrypt_assertion(
    assertion: &Element,
    certificate: &[u8],
    data: DataAlgorithm,
) -> Result<Element, EncryptError> {
    let spki = subject_public_key_info(certificate).ok_or(EncryptError::Key)?;
    let public = PublicEncryptingKey::from_der(&spki).map_err(|_| EncryptError::Key)?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| EncryptError::Key)?;
    let (algorithm, key_len) = match data {
        DataAlgorithm::Aes256Gcm => (&AES_256_GCM, 32),
        DataAlgorithm::Aes128Gcm => (&AES_128_GCM, 16),
    };
    let mut key = vec![0u8; key_len];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| EncryptError::Failed)?;
    let mut iv = [0u8; 12];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| EncryptError::Failed)?;
    let sealing =
        LessSafeKey::new(UnboundKey::new(algorithm, &key).map_err(|_| EncryptError::Failed)?);
    // The element as the SP will parse it on its own: canonical, so it declares
    // every namespace it uses.
    let mut buffer = c14n::canonicalize(assertion, Options::default()).into_bytes();
    sealing
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut buffer)
        .map_err(|_| EncryptError::Failed)?;
    let mut content = iv.to_vec();
    content.extend_from_slice(&buffer);
    let mut wrapped = vec![0u8; oaep.ciphertext_size()];
    let method = xenc("EncryptionMethod")
        .with_attribute("Algorithm", RSA_OAEP_MGF1P)
        .with_child(Element::new(DSIG, "ds", "DigestMethod").with_attribute("Algorithm", SHA1));
    let wrapped = oaep
        .encrypt(&OAEP_SHA1_MGF1SHA1, &key, &mut wrapped, None)
        .map_err(|_| EncryptError::Failed)?
        .to_vec();
    let encrypted_key = xenc("EncryptedKey")
        .with_child(method)
        .with_child(cipher_data(&wrapped));
    let encrypted_data = xenc("EncryptedData")
        .with_attribute("Type", ELEMENT_TYPE)
        .with_child(xenc("EncryptionMethod").with_attribute(
            "Algorithm",
            match data {
                DataAlgorithm::Aes256Gcm => AES256_GCM,
                DataAlgorithm::Aes128Gcm => AES128_GCM,
            },
        ))
        .with_child(Element::new(DSIG, "ds", "KeyInfo").with_child(encrypted_key))
        .with_child(cipher_data(&content));
    Ok(Element::new(ASSERTION, "saml", "EncryptedAssertion").with_child(encrypted_data))
}
