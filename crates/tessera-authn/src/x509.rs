//! Certificate-based authentication: path validation of a client certificate to a
//! tenant's trust store, revocation by CRL, and the facts binding rules look at.
//!
//! What is checked (RFC 5280 §6, as CAC/PIV chains need it):
//! - every certificate parses, is within its validity period, and has no critical
//!   extension we do not understand;
//! - a path exists from the leaf through intermediates (the client's or the trust
//!   store's) to a root in the trust store, each signature verifying with its issuer's
//!   key (SHA-1 signatures are refused below the root);
//! - issuers are CAs (basic constraints) allowed to sign certificates (key usage);
//!   path length constraints hold;
//! - the leaf may be used for client authentication: key usage, when present,
//!   includes digitalSignature; extended key usage, when present, includes TLS client
//!   authentication, smart-card logon or anyExtendedKeyUsage;
//! - for every issuer with a CRL, the CRL is signed by it, current, and does not list
//!   the certificate; an issuer marked as requiring revocation data without a current
//!   CRL fails closed.
//!
//! Pure: the caller passes the certificates, CRLs and the time.

use std::collections::BTreeSet;

use x509_parser::asn1_rs::{Any, FromDer as _};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{CertificateRevocationList, X509Certificate};
use x509_parser::time::ASN1Time;

/// Longest path accepted (leaf to root).
pub const MAX_PATH: usize = 8;
/// Largest certificate or CRL accepted, in bytes.
pub const MAX_DER_BYTES: usize = 1024 * 1024;

const OID_UPN: &str = "1.3.6.1.4.1.311.20.2.3";
const OID_SMARTCARD_LOGON: &str = "1.3.6.1.4.1.311.20.2.2";
const OID_SHA1_RSA: &str = "1.2.840.113549.1.1.5";
const OID_SHA1_RSA_OLD: &str = "1.3.14.3.2.29";
const OID_SHA1_ECDSA: &str = "1.2.840.10045.4.1";

/// A trust store entry.
#[derive(Debug, Clone)]
pub struct TrustedCa {
    pub der: Vec<u8>,
    /// A trust anchor (root) rather than an intermediate.
    pub is_root: bool,
    /// Refuse certificates this CA issued unless a current CRL for it is known.
    pub require_revocation_data: bool,
}

/// A CRL as stored (DER).
#[derive(Debug, Clone)]
pub struct KnownCrl {
    pub der: Vec<u8>,
}

/// Why a certificate is refused. The codes are stable (sign-in log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the certificate cannot be parsed")]
    Malformed,
    #[error("the certificate is not valid at this time")]
    Expired,
    #[error("no path to a trusted root")]
    Untrusted,
    #[error("the certificate has been revoked")]
    Revoked,
    #[error("no current revocation list for {issuer}")]
    RevocationUnknown { issuer: String },
    #[error("the certificate may not be used for client authentication")]
    WrongUsage,
    #[error("the certificate has an unsupported critical extension")]
    UnsupportedCriticalExtension,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Malformed => "certificate_malformed",
            Refusal::Expired => "certificate_expired",
            Refusal::Untrusted => "certificate_untrusted",
            Refusal::Revoked => "certificate_revoked",
            Refusal::RevocationUnknown { .. } => "certificate_revocation_unknown",
            Refusal::WrongUsage => "certificate_wrong_usage",
            Refusal::UnsupportedCriticalExtension => "certificate_unsupported_extension",
        }
    }
}

/// The facts of a validated certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validated {
    /// RFC 4514-style distinguished names.
    pub subject: String,
    pub issuer: String,
    /// Serial number, upper-case hex without leading zeros' padding removed.
    pub serial: String,
    /// Subject key identifier, upper-case hex.
    pub subject_key_id: Option<String>,
    /// Principal names from the subject alternative name (UPN otherName).
    pub principal_names: Vec<String>,
    pub rfc822_names: Vec<String>,
    /// Certificate policy OIDs of the leaf.
    pub policies: Vec<String>,
    /// Subjects from the leaf's issuer to the root.
    pub path: Vec<String>,
    /// SHA-256 of the leaf, hex (a stable identifier for the log).
    pub thumbprint: String,
    /// Links of the path no CRL answered for, to ask an OCSP responder about.
    pub unchecked: Vec<Unchecked>,
}

/// A certificate of the path whose revocation status no CRL gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    pub certificate: Vec<u8>,
    pub issuer: Vec<u8>,
    /// The issuer's trust store entry requires revocation data.
    pub required: bool,
}

/// Refuses if a link that requires revocation data is still unchecked.
pub fn require_revocation(validated: &Validated) -> Result<(), Refusal> {
    match validated.unchecked.iter().find(|u| u.required) {
        None => Ok(()),
        Some(link) => Err(Refusal::RevocationUnknown {
            issuer: parse(&link.issuer)
                .map(|c| dn(c.subject()))
                .unwrap_or_default(),
        }),
    }
}

/// A distinguished name as text, RFC 4514 escaping applied to values (so a value
/// holding `,` or `=` cannot pose as more name components), in the certificate's
/// order (`C=US, O=..., CN=...`).
pub fn dn(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut parts = Vec::new();
    for rdn in name.iter() {
        let attributes: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type().to_id_string();
                let key = match oid.as_str() {
                    "2.5.4.3" => "CN".to_string(),
                    "2.5.4.11" => "OU".to_string(),
                    "2.5.4.10" => "O".to_string(),
                    "2.5.4.6" => "C".to_string(),
                    "2.5.4.7" => "L".to_string(),
                    "2.5.4.8" => "ST".to_string(),
                    "2.5.4.5" => "SERIALNUMBER".to_string(),
                    "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                    "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                    "1.2.840.113549.1.9.1" => "E".to_string(),
                    _ => oid,
                };
                let value = match attribute.as_str() {
                    Ok(text) => escape_dn_value(text),
                    Err(_) => format!(
                        "#{}",
                        tessera_core::crypto::to_hex(attribute.attr_value().data)
                    ),
                };
                format!("{key}={value}")
            })
            .collect();
        parts.push(attributes.join("+"));
    }
    parts.join(", ")
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        if c.is_control() {
            out.push_str(&format!("\\{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn hex_upper(bytes: &[u8]) -> String {
    tessera_core::crypto::to_hex(bytes).to_ascii_uppercase()
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Refusal> {
    if der.len() > MAX_DER_BYTES {
        return Err(Refusal::Malformed);
    }
    match X509Certificate::from_der(der) {
        Ok((&[], cert)) => Ok(cert),
        _ => Err(Refusal::Malformed),
    }
}

/// Extensions x509-parser understands but this validator does not enforce (name
/// constraints, policy constraints and mappings, inhibit anyPolicy): refused when
/// critical rather than silently ignored.
const UNENFORCED: [&str; 4] = ["2.5.29.30", "2.5.29.36", "2.5.29.33", "2.5.29.54"];

fn check_extensions(cert: &X509Certificate<'_>) -> Result<(), Refusal> {
    for extension in cert.extensions() {
        let unenforced = UNENFORCED.contains(&extension.oid.to_id_string().as_str());
        if extension.critical && (extension.parsed_extension().unsupported() || unenforced) {
            return Err(Refusal::UnsupportedCriticalExtension);
        }
        if let ParsedExtension::ParseError { .. } = extension.parsed_extension() {
            return Err(Refusal::Malformed);
        }
    }
    Ok(())
}

fn valid_at(cert: &X509Certificate<'_>, now: ASN1Time) -> bool {
    cert.validity().is_valid_at(now)
}

fn is_sha1(cert: &X509Certificate<'_>) -> bool {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    [OID_SHA1_RSA, OID_SHA1_RSA_OLD, OID_SHA1_ECDSA].contains(&oid.as_str())
}

fn may_issue(cert: &X509Certificate<'_>, certificates_below: usize) -> bool {
    let constraints = match cert.basic_constraints() {
        Ok(Some(ext)) => ext.value.clone(),
        _ => return false,
    };
    if !constraints.ca {
        return false;
    }
    if let Some(limit) = constraints.path_len_constraint
        && certificates_below.saturating_sub(1) > limit as usize
    {
        return false;
    }
    match cert.key_usage() {
        Ok(Some(usage)) => usage.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    }
}

fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw()
        && child.verify_signature(Some(issuer.public_key())).is_ok()
}

fn leaf_usage_ok(cert: &X509Certificate<'_>) -> bool {
    let key_usage_ok = match cert.key_usage() {
        Ok(Some(usage)) => usage.value.digital_signature(),
        Ok(None) => true,
        Err(_) => false,
    };
    let eku_ok = match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            eku.value.any
                || eku.value.client_auth
                || eku
                    .value
                    .other
                    .iter()
                    .any(|oid| oid.to_id_string() == OID_SMARTCARD_LOGON)
        }
        Ok(None) => true,
        Err(_) => false,
    };
    key_usage_ok && eku_ok
}

/// The UTF-8 string inside a UPN otherName's `[0] EXPLICIT UTF8String`.
fn other_name_text(value: &[u8]) -> Option<String> {
    let (_, explicit) = Any::from_der(value).ok()?;
    let (_, inner) = Any::from_der(explicit.data).ok()?;
    std::str::from_utf8(inner.data).ok().map(str::to_string)
}

fn facts(leaf: &X509Certificate<'_>, der: &[u8], path: Vec<String>) -> Validated {
    let mut validated = Validated {
        subject: dn(leaf.subject()),
        issuer: dn(leaf.issuer()),
        serial: hex_upper(leaf.raw_serial()),
        path,
        thumbprint: tessera_core::crypto::sha256_hex(der),
        ..Validated::default()
    };
    for extension in leaf.extensions() {
        match extension.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => {
                validated.subject_key_id = Some(hex_upper(id.0));
            }
            ParsedExtension::CertificatePolicies(policies) => {
                validated.policies = policies
                    .iter()
                    .map(|p| p.policy_id.to_id_string())
                    .collect();
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::OtherName(oid, value) if oid.to_id_string() == OID_UPN => {
                            if let Some(text) = other_name_text(value) {
                                validated.principal_names.push(text);
                            }
                        }
                        GeneralName::RFC822Name(mail) => {
                            validated.rfc822_names.push(mail.to_string())
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    validated
}

/// Checks a CRL for `issuer` and whether it lists `serial`. `Ok(None)`: the CRL is
/// not this issuer's (or not validly signed by it), so it says nothing.
/// Whether a CRL is a complete CRL for all of its issuer's certificates: delta CRLs,
/// partitioned CRLs (issuing distribution point) and CRLs with critical extensions
/// we do not understand are not, and are not used.
fn complete_crl(crl: &CertificateRevocationList<'_>) -> bool {
    crl.extensions().iter().all(|extension| {
        let oid = extension.oid.to_id_string();
        let scoped = oid == "2.5.29.27" || oid == "2.5.29.28";
        !(scoped || (extension.critical && extension.parsed_extension().unsupported()))
    })
}

fn crl_says(
    crl_der: &[u8],
    issuer: &X509Certificate<'_>,
    serial: &[u8],
    now: ASN1Time,
) -> Option<Result<(), Refusal>> {
    let (_, crl) = CertificateRevocationList::from_der(crl_der).ok()?;
    if !complete_crl(&crl) {
        return None;
    }
    if crl.issuer().as_raw() != issuer.subject().as_raw()
        || crl.verify_signature(issuer.public_key()).is_err()
    {
        return None;
    }
    let current = crl.last_update() <= now && crl.next_update().is_none_or(|next| now < next);
    if !current {
        return Some(Err(Refusal::RevocationUnknown {
            issuer: dn(issuer.subject()),
        }));
    }
    if crl
        .iter_revoked_certificates()
        .any(|r| trim_zeros(r.raw_serial()) == trim_zeros(serial))
    {
        return Some(Err(Refusal::Revoked));
    }
    Some(Ok(()))
}

fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Validates `presented` (the leaf first, then any intermediates the client sent)
/// against the trust store and CRLs at `now_unix` seconds, failing closed where
/// revocation data is required and no CRL answered.
pub fn validate(
    presented: &[Vec<u8>],
    trust_store: &[TrustedCa],
    crls: &[KnownCrl],
    now_unix: i64,
) -> Result<Validated, Refusal> {
    let validated = validate_path(presented, trust_store, crls, now_unix)?;
    require_revocation(&validated)?;
    Ok(validated)
}

/// Like [`validate`], but leaves links no CRL answered in `unchecked` (for OCSP)
/// instead of refusing; call [`require_revocation`] after.
pub fn validate_path(
    presented: &[Vec<u8>],
    trust_store: &[TrustedCa],
    crls: &[KnownCrl],
    now_unix: i64,
) -> Result<Validated, Refusal> {
    let now = ASN1Time::from_timestamp(now_unix).map_err(|_| Refusal::Malformed)?;
    let leaf_der = presented.first().ok_or(Refusal::Malformed)?;
    let leaf = parse(leaf_der)?;
    check_extensions(&leaf)?;
    if !valid_at(&leaf, now) {
        return Err(Refusal::Expired);
    }
    if !leaf_usage_ok(&leaf) {
        return Err(Refusal::WrongUsage);
    }
    // Candidates: the store's first (so its entries and their settings are found
    // even when a client sends its own copy of a CA certificate), then the client's.
    let mut candidates: Vec<(X509Certificate<'_>, Option<&TrustedCa>)> = Vec::new();
    for ca in trust_store {
        if let Ok(cert) = parse(&ca.der) {
            candidates.push((cert, Some(ca)));
        }
    }
    for der in presented.iter().skip(1).take(MAX_PATH) {
        if let Ok(cert) = parse(der) {
            candidates.push((cert, None));
        }
    }
    // Walk up: at each step take an issuer that verifies; stop at a stored root.
    let mut chain: Vec<(usize, Option<&TrustedCa>)> = Vec::new();
    let mut used = BTreeSet::new();
    let mut current: &X509Certificate<'_> = &leaf;
    let mut reached_root = false;
    for depth in 0..MAX_PATH {
        if is_sha1(current) && depth < MAX_PATH {
            // A SHA-1 signature on anything but a trust anchor is not accepted.
            return Err(Refusal::Untrusted);
        }
        let found = candidates
            .iter()
            .enumerate()
            .find(|(index, (candidate, _))| {
                !used.contains(index)
                    && issued_by(current, candidate)
                    && may_issue(candidate, depth + 1)
            });
        let Some((index, (issuer, stored))) = found else {
            break;
        };
        check_extensions(issuer)?;
        if !valid_at(issuer, now) {
            return Err(Refusal::Expired);
        }
        used.insert(index);
        chain.push((index, *stored));
        if stored.is_some_and(|ca| ca.is_root) {
            reached_root = true;
            break;
        }
        current = issuer;
    }
    if !reached_root {
        return Err(Refusal::Untrusted);
    }
    // Revocation: each certificate against its issuer's CRLs.
    let mut subjects: Vec<&X509Certificate<'_>> = vec![&leaf];
    for (index, _) in &chain {
        subjects.push(&candidates[*index].0);
    }
    let mut unchecked = Vec::new();
    for (position, (index, stored)) in chain.iter().enumerate() {
        let issuer = &candidates[*index].0;
        let subject = subjects[position];
        let serial = subject.raw_serial();
        let mut answered = false;
        for crl in crls {
            match crl_says(&crl.der, issuer, serial, now) {
                Some(Err(Refusal::RevocationUnknown { .. })) => {}
                Some(Err(refusal)) => return Err(refusal),
                Some(Ok(())) => answered = true,
                None => {}
            }
        }
        let required = stored.is_some_and(|ca| ca.require_revocation_data)
            || trust_store.iter().any(|ca| {
                ca.require_revocation_data
                    && parse(&ca.der).is_ok_and(|stored| {
                        stored.subject().as_raw() == issuer.subject().as_raw()
                            && stored.public_key().raw == issuer.public_key().raw
                    })
            });
        if !answered {
            unchecked.push(Unchecked {
                certificate: subject.as_ref().to_vec(),
                issuer: issuer.as_ref().to_vec(),
                required,
            });
        }
    }
    let path = chain
        .iter()
        .map(|(index, _)| dn(candidates[*index].0.subject()))
        .collect();
    let mut validated = facts(&leaf, leaf_der, path);
    validated.unchecked = unchecked;
    Ok(validated)
}

/// Facts of a CA certificate for the trust store's listing, or why it is unfit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFacts {
    pub subject: String,
    pub issuer: String,
    pub self_signed: bool,
    pub not_after_unix: i64,
    pub thumbprint: String,
    /// CRL distribution point URLs (http only).
    pub crl_urls: Vec<String>,
}

pub fn ca_facts(der: &[u8]) -> Result<CaFacts, String> {
    let cert = parse(der).map_err(|_| "not a DER X.509 certificate".to_string())?;
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(ext)) if ext.value.ca);
    if !is_ca {
        return Err("not a CA certificate (basic constraints cA is not set)".to_string());
    }
    let mut crl_urls = Vec::new();
    for extension in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = extension.parsed_extension() {
            for point in points.iter() {
                if let Some(x509_parser::extensions::DistributionPointName::FullName(names)) =
                    &point.distribution_point
                {
                    for name in names {
                        if let GeneralName::URI(uri) = name
                            && uri.starts_with("http://")
                        {
                            crl_urls.push(uri.to_string());
                        }
                    }
                }
            }
        }
    }
    Ok(CaFacts {
        subject: dn(cert.subject()),
        issuer: dn(cert.issuer()),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        not_after_unix: cert.validity().not_after.timestamp(),
        thumbprint: tessera_core::crypto::sha256_hex(der),
        crl_urls,
    })
}

/// Facts of a CRL for storage: its issuer and validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFacts {
    pub issuer: String,
    pub this_update_unix: i64,
    pub next_update_unix: Option<i64>,
    pub revoked: usize,
}

/// Parses a CRL and checks it is signed by one of `issuers` (DER certificates).
pub fn crl_facts(der: &[u8], issuers: &[Vec<u8>]) -> Result<CrlFacts, String> {
    if der.len() > MAX_DER_BYTES * 64 {
        return Err("the CRL is too large".to_string());
    }
    let (rest, crl) =
        CertificateRevocationList::from_der(der).map_err(|_| "not a DER CRL".to_string())?;
    if !rest.is_empty() {
        return Err("trailing data after the CRL".to_string());
    }
    if !complete_crl(&crl) {
        return Err("delta and partitioned CRLs (issuing distribution point) are not supported; give the complete CRL".to_string());
    }
    let signed = issuers.iter().filter_map(|d| parse(d).ok()).any(|issuer| {
        crl.issuer().as_raw() == issuer.subject().as_raw()
            && crl.verify_signature(issuer.public_key()).is_ok()
    });
    if !signed {
        return Err("the CRL is not signed by a CA in the trust store".to_string());
    }
    Ok(CrlFacts {
        issuer: dn(crl.issuer()),
        this_update_unix: crl.last_update().timestamp(),
        next_update_unix: crl.next_update().map(|t| t.timestamp()),
        revoked: crl.iter_revoked_certificates().count(),
    })
}

/// Decodes PEM (one or more blocks of `label`) or passes DER through.
pub fn pem_or_der(input: &[u8], label: &str) -> Result<Vec<Vec<u8>>, String> {
    let text = match std::str::from_utf8(input) {
        Ok(text) if text.contains("-----BEGIN") => text,
        _ => return Ok(vec![input.to_vec()]),
    };
    let mut out = Vec::new();
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let stop = after
            .find(&end)
            .ok_or_else(|| format!("unterminated {label} block"))?;
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| format!("a {label} block is not base64"))?;
        out.push(der);
        rest = &after[stop + end.len()..];
    }
    if out.is_empty() {
        return Err(format!("no {label} block found"));
    }
    Ok(out)
}

/// A test PKI built with rcgen: roots, intermediates, leaves, CRLs. For tests only
/// (here and, with the `testing` feature, in other crates' tests).
#[cfg(any(test, feature = "testing"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod test_pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
        CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
        KeyUsagePurpose, OtherNameValue, RevokedCertParams, SanType, SerialNumber,
    };
    use time::{Duration, OffsetDateTime};

    pub fn oid_der(components: &[u64]) -> Vec<u8> {
        let mut body = vec![(components[0] * 40 + components[1]) as u8];
        for &c in &components[2..] {
            let mut stack = vec![(c & 0x7f) as u8];
            let mut rest = c >> 7;
            while rest > 0 {
                stack.push(((rest & 0x7f) as u8) | 0x80);
                rest >>= 7;
            }
            stack.reverse();
            body.extend(stack);
        }
        let mut out = vec![0x06, body.len() as u8];
        out.extend(body);
        out
    }

    fn sequence(content: Vec<u8>) -> Vec<u8> {
        let mut out = vec![0x30];
        if content.len() < 128 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x81, content.len() as u8]);
        }
        out.extend(content);
        out
    }

    /// certificatePolicies with the given policy OIDs.
    pub fn policies(oids: &[&[u64]]) -> CustomExtension {
        let mut content = Vec::new();
        for oid in oids {
            content.extend(sequence(oid_der(oid)));
        }
        CustomExtension::from_oid_content(&[2, 5, 29, 32], sequence(content))
    }

    pub struct Ca {
        pub issuer: CertifiedIssuer<'static, KeyPair>,
        /// The CA's private key, PEM (for tools that sign as the CA, e.g. openssl ocsp).
        pub key_pem: String,
    }

    impl Ca {
        pub fn der(&self) -> Vec<u8> {
            self.issuer.der().to_vec()
        }

        pub fn pem(&self) -> String {
            self.issuer.pem()
        }
    }

    fn ca_params(name: &str, days: i64) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Tessera Test PKI");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(days);
        params.key_identifier_method = KeyIdMethod::Sha256;
        params
    }

    pub fn root(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        Ca {
            issuer: CertifiedIssuer::self_signed(ca_params(name, 3650), key).unwrap(),
            key_pem,
        }
    }

    pub fn intermediate(name: &str, parent: &Ca) -> Ca {
        let key = KeyPair::generate().unwrap();
        let key_pem = key.serialize_pem();
        Ca {
            issuer: CertifiedIssuer::signed_by(ca_params(name, 1825), key, &parent.issuer).unwrap(),
            key_pem,
        }
    }

    pub struct Leaf {
        pub der: Vec<u8>,
        pub pem: String,
        pub key_pem: String,
    }

    pub struct LeafSpec<'a> {
        pub upn: &'a str,
        pub serial: u64,
        pub policies: &'a [&'a [u64]],
        pub days: i64,
        pub client_auth: bool,
    }

    pub fn leaf(spec: LeafSpec<'_>, issuer: &Ca) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, spec.upn);
        params.subject_alt_names = vec![
            SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
                OtherNameValue::Utf8String(spec.upn.to_string()),
            )),
            SanType::Rfc822Name(spec.upn.try_into().unwrap()),
        ];
        params.serial_number = Some(SerialNumber::from(spec.serial));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if spec.client_auth {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        if !spec.policies.is_empty() {
            params.custom_extensions.push(policies(spec.policies));
        }
        let now = OffsetDateTime::now_utc();
        if spec.days < 0 {
            params.not_before = now - Duration::days(30);
            params.not_after = now + Duration::days(spec.days);
        } else {
            params.not_before = now - Duration::days(1);
            params.not_after = now + Duration::days(spec.days);
        }
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.signed_by(&key, &issuer.issuer).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A TLS server certificate and key (PEM) for `names`.
    pub fn server(names: &[&str], issuer: &Ca) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
        let cert = params.signed_by(&key, &issuer.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A CRL in PEM.
    pub fn crl_pem(issuer: &Ca, revoked: &[u64], next_update_days: i64) -> String {
        use base64::Engine as _;
        let der = crl(issuer, revoked, next_update_days);
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
            lines.join("\n")
        )
    }

    pub fn crl(issuer: &Ca, revoked: &[u64], next_update_days: i64) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::days(2),
            next_update: now + Duration::days(next_update_days),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::days(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&issuer.issuer).unwrap().der().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::*;
    use super::*;

    const CAC_POLICY: &[u64] = &[2, 16, 840, 1, 101, 2, 1, 11, 42];

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn spec(serial: u64) -> LeafSpec<'static> {
        LeafSpec {
            upn: "adele@contoso.com",
            serial,
            policies: &[CAC_POLICY],
            days: 365,
            client_auth: true,
        }
    }

    fn store(root: &Ca, intermediates: &[&Ca]) -> Vec<TrustedCa> {
        let mut out = vec![TrustedCa {
            der: root.der(),
            is_root: true,
            require_revocation_data: false,
        }];
        for ca in intermediates {
            out.push(TrustedCa {
                der: ca.der(),
                is_root: false,
                require_revocation_data: false,
            });
        }
        out
    }

    #[test]
    fn a_chain_to_a_trusted_root_validates_and_yields_its_facts() {
        let root = root("Root CA");
        let issuing = intermediate("Issuing CA 1", &root);
        let leaf = leaf(spec(0x1234), &issuing);
        let validated = validate(
            std::slice::from_ref(&leaf.der),
            &store(&root, &[&issuing]),
            &[],
            now(),
        )
        .unwrap();
        assert_eq!(validated.principal_names, ["adele@contoso.com"]);
        assert_eq!(validated.rfc822_names, ["adele@contoso.com"]);
        assert_eq!(validated.policies, ["2.16.840.1.101.2.1.11.42"]);
        assert_eq!(validated.serial, "1234");
        assert!(validated.issuer.contains("Issuing CA 1"));
        assert_eq!(validated.path.len(), 2);
        // The intermediate may come from the client instead of the store.
        let validated = validate(
            &[leaf.der.clone(), issuing.der()],
            &store(&root, &[]),
            &[],
            now(),
        )
        .unwrap();
        assert_eq!(validated.path.len(), 2);
    }

    #[test]
    fn untrusted_expired_and_misused_certificates_are_refused() {
        let root = root("Root CA");
        let other = root_other();
        let good = leaf(spec(1), &root);
        assert_eq!(
            validate(
                std::slice::from_ref(&good.der),
                &store(&other, &[]),
                &[],
                now()
            ),
            Err(Refusal::Untrusted)
        );
        // A client cannot make its own CA a root by sending it.
        assert_eq!(
            validate(
                &[good.der.clone(), root.der()],
                &store(&other, &[]),
                &[],
                now()
            ),
            Err(Refusal::Untrusted)
        );
        let expired = leaf(
            LeafSpec {
                days: -1,
                ..spec(2)
            },
            &root,
        );
        assert_eq!(
            validate(&[expired.der], &store(&root, &[]), &[], now()),
            Err(Refusal::Expired)
        );
        let server = leaf(
            LeafSpec {
                client_auth: false,
                ..spec(3)
            },
            &root,
        );
        assert_eq!(
            validate(&[server.der], &store(&root, &[]), &[], now()),
            Err(Refusal::WrongUsage)
        );
        assert_eq!(
            validate(&[b"garbage".to_vec()], &store(&root, &[]), &[], now()),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            validate(&[], &store(&root, &[]), &[], now()),
            Err(Refusal::Malformed)
        );
    }

    fn root_other() -> Ca {
        root("Some Other Root")
    }

    #[test]
    fn revocation_lists_are_checked_and_must_be_genuine_and_current() {
        let root = root("Root CA");
        let issuing = intermediate("Issuing CA 1", &root);
        let revoked = leaf(spec(66), &issuing);
        let fine = leaf(spec(67), &issuing);
        let trust = store(&root, &[&issuing]);
        let crl_der = crl(&issuing, &[66], 7);
        let crls = [KnownCrl {
            der: crl_der.clone(),
        }];
        assert_eq!(
            validate(std::slice::from_ref(&revoked.der), &trust, &crls, now()),
            Err(Refusal::Revoked)
        );
        assert!(validate(std::slice::from_ref(&fine.der), &trust, &crls, now()).is_ok());
        // A CRL signed by someone else says nothing.
        let impostor = intermediate("Issuing CA 1", &root_other());
        let forged = [KnownCrl {
            der: crl(&impostor, &[67], 7),
        }];
        assert!(validate(std::slice::from_ref(&fine.der), &trust, &forged, now()).is_ok());
        // Where revocation data is required, a missing or stale CRL fails closed.
        let mut strict = trust.clone();
        strict[1].require_revocation_data = true;
        assert!(matches!(
            validate(std::slice::from_ref(&fine.der), &strict, &[], now()),
            Err(Refusal::RevocationUnknown { .. })
        ));
        let stale = [KnownCrl {
            der: crl(&issuing, &[], -1),
        }];
        assert!(matches!(
            validate(std::slice::from_ref(&fine.der), &strict, &stale, now()),
            Err(Refusal::RevocationUnknown { .. })
        ));
        assert!(validate(&[fine.der], &strict, &crls, now()).is_ok());
        // Facts for storage.
        let facts = crl_facts(&crl_der, &[issuing.der()]).unwrap();
        assert_eq!(facts.revoked, 1);
        assert!(crl_facts(&crl_der, &[root.der()]).is_err());
        assert!(crl_facts(b"junk", &[issuing.der()]).is_err());
    }

    #[test]
    fn names_are_escaped_so_values_cannot_pose_as_components() {
        let root = root("Root CA");
        let sneaky = leaf(
            LeafSpec {
                upn: "x, O=U.S. Government",
                ..spec(9)
            },
            &root,
        );
        let validated = validate(
            std::slice::from_ref(&sneaky.der),
            &store(&root, &[]),
            &[],
            now(),
        )
        .unwrap();
        assert!(
            validated.subject.contains("CN=x\\, O\\=U.S. Government"),
            "{}",
            validated.subject
        );
        assert!(!crate::cba::same_dn(
            &validated.subject,
            "CN=x, O=U.S. Government"
        ));
    }

    #[test]
    fn ca_facts_and_pem() {
        let root = root("Root CA");
        let facts = ca_facts(&root.der()).unwrap();
        assert!(facts.self_signed && facts.subject.contains("Root CA"));
        let leaf = leaf(spec(5), &root);
        assert!(ca_facts(&leaf.der).unwrap_err().contains("not a CA"));
        let both = format!("{}\n{}", root.pem(), leaf.pem);
        let blocks = pem_or_der(both.as_bytes(), "CERTIFICATE").unwrap();
        assert_eq!(blocks, vec![root.der(), leaf.der.clone()]);
        assert_eq!(
            pem_or_der(&leaf.der, "CERTIFICATE").unwrap(),
            vec![leaf.der.clone()]
        );
        assert!(
            pem_or_der(
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----",
                "CERTIFICATE"
            )
            .is_err()
        );
    }
}
