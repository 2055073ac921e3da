//! XML Signature as SAML uses it, and nothing more: one enveloped signature over
//! the element it sits in, canonicalized with exclusive canonicalization.
//!
//! Signing: Tessera's own element (built without a signature) is canonicalized,
//! digested with SHA-256, and a `ds:Signature` with one reference to the element's
//! `ID` is inserted into it; the signature value is over the canonical `SignedInfo`.
//!
//! Verifying an element someone else signed: the signature must be a direct child
//! of that very element and reference it by its `ID`, with exactly the transforms
//! enveloped-signature then exclusive canonicalization, SHA-256 (or SHA-384/512)
//! digests, and RSA-SHA256 or ECDSA-SHA256; the key is the one configured for the
//! sender, never one the document offers. The caller then reads the element it
//! passed in, so there is nothing else the signature could have covered (signature
//! wrapping); the reader refused two elements with one `ID`. Any other signature
//! anywhere in the document is refused rather than ignored.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::binding::{DetachedSignature, ECDSA_SHA256, PublicKey, RSA_SHA256};
use crate::c14n::{self, EXCLUSIVE, Options};
use crate::request::DSIG;
use crate::xml::{Document, Element, Node};

pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const EXC_C14N_NAMESPACE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the element is not signed")]
    Unsigned,
    #[error("the signature is not acceptable: {0}")]
    Structure(&'static str),
    #[error("SHA-1 is not accepted")]
    Sha1,
    #[error("the algorithm {0} is not accepted")]
    Algorithm(String),
    #[error("the signed content was changed (digest mismatch)")]
    Digest,
    #[error("the signature does not verify with the configured key")]
    BadSignature,
    #[error("the key or certificate cannot be used: {0}")]
    Key(&'static str),
}

/// The signature algorithms Tessera signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RsaSha256,
    EcdsaSha256,
}

impl Algorithm {
    pub fn uri(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => RSA_SHA256,
            Algorithm::EcdsaSha256 => ECDSA_SHA256,
        }
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key with its certificate, as the IdP signs with it.
pub struct SigningKey {
    algorithm: Algorithm,
    pair: Pair,
    certificate: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl SigningKey {
    /// A new key and a self-signed certificate for it (`subject` as its common
    /// name), valid between the two times: the PKCS#8 key to keep (sealed), and the
    /// key.
    pub fn generate(
        algorithm: Algorithm,
        subject: &str,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<(Vec<u8>, SigningKey), SignatureError> {
        let pkcs8 = match algorithm {
            Algorithm::EcdsaSha256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| SignatureError::Key("cannot generate a key"))?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::RsaSha256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| SignatureError::Key("cannot generate a key"))?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> =
                    aws_lc_rs::encoding::AsDer::as_der(&pair)
                        .map_err(|_| SignatureError::Key("cannot encode the key"))?;
                der.as_ref().to_vec()
            }
        };
        let certified = rcgen::KeyPair::try_from(pkcs8.as_slice())
            .map_err(|_| SignatureError::Key("cannot read the new key"))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, subject);
        params.not_before = not_before;
        params.not_after = not_after;
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| SignatureError::Key("no randomness"))?;
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let certificate = params
            .self_signed(&certified)
            .map_err(|_| SignatureError::Key("cannot make the certificate"))?
            .der()
            .to_vec();
        let key = SigningKey::load(algorithm, &pkcs8, certificate)?;
        Ok((pkcs8, key))
    }

    /// A kept key and its certificate.
    pub fn load(
        algorithm: Algorithm,
        pkcs8: &[u8],
        certificate: Vec<u8>,
    ) -> Result<SigningKey, SignatureError> {
        let pair = match algorithm {
            Algorithm::RsaSha256 => Pair::Rsa(
                RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| SignatureError::Key("not an RSA key"))?,
            ),
            Algorithm::EcdsaSha256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|_| SignatureError::Key("not a P-256 key"))?,
            ),
        };
        let key = SigningKey {
            algorithm,
            pair,
            certificate,
        };
        // The certificate must be this key's.
        let public = public_key_of(&key.certificate)?;
        let own = match &key.pair {
            Pair::Rsa(pair) => PublicKey::Rsa(pair.public_key().as_ref().to_vec()),
            Pair::Ec(pair) => PublicKey::EcP256(pair.public_key().as_ref().to_vec()),
        };
        if public != own {
            return Err(SignatureError::Key("the certificate is not this key's"));
        }
        Ok(key)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The public key, as a signature made with this key is verified.
    pub fn public_key(&self) -> PublicKey {
        match &self.pair {
            Pair::Rsa(pair) => PublicKey::Rsa(pair.public_key().as_ref().to_vec()),
            Pair::Ec(pair) => PublicKey::EcP256(pair.public_key().as_ref().to_vec()),
        }
    }

    /// A signature over `message` (ECDSA as r || s, as xmldsig-more asks).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(pair) => pair
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignatureError::Key("cannot sign")),
            Pair::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .map_err(|_| SignatureError::Key("cannot sign"))?;
                Ok(out)
            }
        }
    }
}

/// The public key of a certificate (DER): RSA, or EC on P-256. The certificate's
/// dates are not checked: SAML metadata names keys, not a trust path, and
/// service providers routinely publish long-expired self-signed certificates.
pub fn public_key_of(certificate: &[u8]) -> Result<PublicKey, SignatureError> {
    use x509_parser::prelude::FromDer as _;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(certificate)
        .map_err(|_| SignatureError::Key("not an X.509 certificate"))?;
    let info = cert.public_key();
    let bits = info.subject_public_key.data.to_vec();
    let oid = info.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => {
            // 2048 to 8192 bits, as verification and encryption accept.
            let size = aws_lc_rs::rsa::PublicEncryptingKey::from_der(info.raw)
                .map(|key| key.key_size_bytes())
                .map_err(|_| SignatureError::Key("the RSA key cannot be read"))?;
            if !(256..=1024).contains(&size) {
                return Err(SignatureError::Key("RSA keys must have 2048 to 8192 bits"));
            }
            Ok(PublicKey::Rsa(bits))
        }
        "1.2.840.10045.2.1" => {
            let curve = info
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string());
            if curve.as_deref() == Some("1.2.840.10045.3.1.7") {
                Ok(PublicKey::EcP256(bits))
            } else {
                Err(SignatureError::Key("only the P-256 curve is accepted"))
            }
        }
        _ => Err(SignatureError::Key("only RSA and EC keys are accepted")),
    }
}

fn ds(local: &str) -> Element {
    Element::new(DSIG, "ds", local)
}

/// Signs `element` (which has an `ID` and no signature yet) with `key`, inserting
/// the signature as its child at `position` (after the `Issuer`, where the SAML
/// schema puts it).
pub fn sign_enveloped(
    element: &mut Element,
    key: &SigningKey,
    position: usize,
) -> Result<(), SignatureError> {
    let id = element
        .attribute("ID")
        .ok_or(SignatureError::Structure("the element has no ID"))?
        .to_string();
    let canonical = c14n::canonicalize(element, Options::default());
    let digest = digest::digest(&digest::SHA256, canonical.as_bytes());
    let signed_info = ds("SignedInfo")
        .with_child(ds("CanonicalizationMethod").with_attribute("Algorithm", EXCLUSIVE))
        .with_child(ds("SignatureMethod").with_attribute("Algorithm", key.algorithm.uri()))
        .with_child(
            ds("Reference")
                .with_attribute("URI", format!("#{id}"))
                .with_child(
                    ds("Transforms")
                        .with_child(ds("Transform").with_attribute("Algorithm", ENVELOPED))
                        .with_child(ds("Transform").with_attribute("Algorithm", EXCLUSIVE)),
                )
                .with_child(ds("DigestMethod").with_attribute("Algorithm", SHA256))
                .with_child(ds("DigestValue").with_text(STANDARD.encode(digest.as_ref()))),
        );
    let value = key.sign(c14n::canonicalize(&signed_info, Options::default()).as_bytes())?;
    let signature = ds("Signature")
        .with_child(signed_info)
        .with_child(ds("SignatureValue").with_text(STANDARD.encode(value)))
        .with_child(
            ds("KeyInfo")
                .with_child(ds("X509Data").with_child(
                    ds("X509Certificate").with_text(STANDARD.encode(&key.certificate)),
                )),
        );
    let position = position.min(element.children.len());
    element.children.insert(position, Node::Element(signature));
    Ok(())
}

/// Whether `element` holds a signature as a direct child.
pub fn is_signed(element: &Element) -> bool {
    element.children_named(DSIG, "Signature").next().is_some()
}

fn only_child<'a>(
    parent: &'a Element,
    local: &'static str,
    what: &'static str,
) -> Result<&'a Element, SignatureError> {
    let mut found = parent.children_named(DSIG, local);
    match (found.next(), found.next()) {
        (Some(child), None) => Ok(child),
        _ => Err(SignatureError::Structure(what)),
    }
}

fn algorithm_of(element: &Element) -> Result<&str, SignatureError> {
    element
        .attribute("Algorithm")
        .ok_or(SignatureError::Structure("an algorithm is not named"))
}

/// The `PrefixList` of an exclusive canonicalization's `InclusiveNamespaces`, the
/// only child such a method or transform may have.
fn inclusive_prefixes(method: &Element) -> Result<Vec<String>, SignatureError> {
    let mut prefixes = Vec::new();
    for child in method.elements() {
        if !child.is(EXC_C14N_NAMESPACE, "InclusiveNamespaces") || child.elements().next().is_some()
        {
            return Err(SignatureError::Structure(
                "a canonicalization method holds something unknown",
            ));
        }
        for prefix in child
            .attribute("PrefixList")
            .unwrap_or("")
            .split_ascii_whitespace()
        {
            prefixes.push(if prefix == "#default" {
                String::new()
            } else {
                prefix.to_string()
            });
        }
    }
    if prefixes.len() > 16 {
        return Err(SignatureError::Structure("too many inclusive prefixes"));
    }
    Ok(prefixes)
}

fn count_signatures(element: &Element) -> usize {
    element
        .elements()
        .map(|child| usize::from(child.is(DSIG, "Signature")) + count_signatures(child))
        .sum()
}

/// The largest canonical form digested: a document is at most 256 KiB, but its
/// canonical form repeats namespace declarations.
const MAX_CANONICAL: usize = 4 * 1024 * 1024;

/// Verifies the enveloped signature of `document`'s root with any of `keys`. On
/// success the caller reads that root, the element the signature covers.
pub fn verify_enveloped(document: &Document, keys: &[PublicKey]) -> Result<(), SignatureError> {
    if keys.is_empty() {
        return Err(SignatureError::Key("no key is configured to verify with"));
    }
    let element = &document.root;
    let signature = match element.children_named(DSIG, "Signature").count() {
        0 => return Err(SignatureError::Unsigned),
        1 => element
            .children_named(DSIG, "Signature")
            .next()
            .ok_or(SignatureError::Unsigned)?,
        _ => {
            return Err(SignatureError::Structure(
                "the element holds two signatures",
            ));
        }
    };
    if count_signatures(element) != 1 {
        return Err(SignatureError::Structure(
            "the document holds another signature",
        ));
    }
    let id = element
        .attribute("ID")
        .ok_or(SignatureError::Structure("the signed element has no ID"))?;
    let signed_info = only_child(signature, "SignedInfo", "one SignedInfo is required")?;
    let value = only_child(
        signature,
        "SignatureValue",
        "one SignatureValue is required",
    )?;
    let mut parts = signed_info.elements();
    let (Some(method), Some(signature_method), Some(reference), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Structure(
            "SignedInfo must hold a canonicalization method, a signature method and one reference",
        ));
    };
    if !method.is(DSIG, "CanonicalizationMethod")
        || !signature_method.is(DSIG, "SignatureMethod")
        || !reference.is(DSIG, "Reference")
    {
        return Err(SignatureError::Structure(
            "SignedInfo must hold a canonicalization method, a signature method and one reference",
        ));
    }
    if algorithm_of(method)? != EXCLUSIVE {
        return Err(SignatureError::Algorithm(
            algorithm_of(method)?.chars().take(200).collect(),
        ));
    }
    let signed_info_prefixes = inclusive_prefixes(method)?;
    let algorithm = algorithm_of(signature_method)?;
    if algorithm == RSA_SHA1 {
        return Err(SignatureError::Sha1);
    }
    if algorithm != RSA_SHA256 && algorithm != ECDSA_SHA256 {
        return Err(SignatureError::Algorithm(
            algorithm.chars().take(200).collect(),
        ));
    }
    if signature_method.elements().next().is_some() {
        return Err(SignatureError::Structure(
            "HMAC output lengths are not accepted",
        ));
    }
    // The one reference: the element itself.
    if reference.attribute("URI") != Some(&format!("#{id}")) {
        return Err(SignatureError::Structure(
            "the reference is not to the signed element's ID",
        ));
    }
    let mut parts = reference.elements();
    let (Some(transforms), Some(digest_method), Some(digest_value), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Structure(
            "the reference must hold transforms, a digest method and a digest value",
        ));
    };
    if !transforms.is(DSIG, "Transforms")
        || !digest_method.is(DSIG, "DigestMethod")
        || !digest_value.is(DSIG, "DigestValue")
    {
        return Err(SignatureError::Structure(
            "the reference must hold transforms, a digest method and a digest value",
        ));
    }
    let steps: Vec<&Element> = transforms.elements().collect();
    let [enveloped, exclusive] = steps.as_slice() else {
        return Err(SignatureError::Structure(
            "the transforms must be enveloped-signature then exclusive canonicalization",
        ));
    };
    if !enveloped.is(DSIG, "Transform")
        || !exclusive.is(DSIG, "Transform")
        || algorithm_of(enveloped)? != ENVELOPED
        || enveloped.elements().next().is_some()
        || algorithm_of(exclusive)? != EXCLUSIVE
    {
        return Err(SignatureError::Structure(
            "the transforms must be enveloped-signature then exclusive canonicalization",
        ));
    }
    let reference_prefixes = inclusive_prefixes(exclusive)?;
    if digest_method.elements().next().is_some() || digest_value.elements().next().is_some() {
        return Err(SignatureError::Structure(
            "the digest method and value hold no elements",
        ));
    }
    let digest_algorithm = match algorithm_of(digest_method)? {
        SHA256 => &digest::SHA256,
        SHA384 => &digest::SHA384,
        SHA512 => &digest::SHA512,
        SHA1 => return Err(SignatureError::Sha1),
        other => return Err(SignatureError::Algorithm(other.chars().take(200).collect())),
    };
    // SignedInfo in its context: the namespaces declared on the element and on
    // the signature are in scope for inclusive prefixes.
    let mut scope = element.declarations.clone();
    scope.extend(signature.declarations.iter().cloned());
    let canonical_info = c14n::canonicalize_bounded(
        signed_info,
        Options {
            ancestors_scope: &scope,
            inclusive_prefixes: &signed_info_prefixes,
            exclude: None,
        },
        MAX_CANONICAL,
    )
    .ok_or(SignatureError::Structure("the canonical form is too large"))?;
    let value = decode(&value.only_text().unwrap_or_default())?;
    let detached = DetachedSignature {
        algorithm: algorithm.to_string(),
        value,
        signed: canonical_info,
    };
    // The small SignedInfo first: a document signed by nobody configured is not
    // canonicalized whole.
    if !keys.iter().any(|key| detached.verify(key).is_ok()) {
        return Err(SignatureError::BadSignature);
    }
    let expected = decode(&digest_value.only_text().unwrap_or_default())?;
    let canonical = c14n::canonicalize_bounded(
        element,
        Options {
            ancestors_scope: &[],
            inclusive_prefixes: &reference_prefixes,
            exclude: Some(signature),
        },
        MAX_CANONICAL,
    )
    .ok_or(SignatureError::Structure("the canonical form is too large"))?;
    let actual = digest::digest(digest_algorithm, canonical.as_bytes());
    if aws_lc_rs::constant_time::verify_slices_are_equal(actual.as_ref(), &expected).is_err() {
        return Err(SignatureError::Digest);
    }
    Ok(())
}

/// Base64 with the line breaks and spaces XML signatures carry.
fn decode(text: &str) -> Result<Vec<u8>, SignatureError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| SignatureError::Structure("a value is not base64"))
}
