//! OCSP (RFC 6960): the request for one certificate, and the checks on the answer.
//! The service sends the request to a responder an administrator configured and
//! gives the response back here. Pure: no I/O, the time is a parameter.
//!
//! A response counts only if it is `successful`, of the basic type, signed by the
//! issuing CA or by a responder certificate that CA issued for OCSP signing, names
//! this certificate (issuer name and key hashes, serial) and is current.

use aws_lc_rs::digest;
use x509_parser::asn1_rs::{BitString, FromDer as _};
use x509_parser::prelude::X509Certificate;
use x509_parser::time::ASN1Time;
use x509_parser::x509::AlgorithmIdentifier;

/// Oldest response accepted (its thisUpdate), whatever its nextUpdate says.
pub const MAX_AGE_SECONDS: i64 = 7 * 86_400;

/// Largest response accepted.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked,
    Unknown,
}

// ---------------------------------------------------------------------------------
// DER, just enough

fn encode_length(length: usize, out: &mut Vec<u8>) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    encode_length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// One DER element: its tag, its content, its full bytes, and what follows it.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);
/// An element of an expected tag: content, full bytes, what follows.
type Expected<'a> = (&'a [u8], &'a [u8], &'a [u8]);

fn read(input: &[u8]) -> Result<Element<'_>, String> {
    let malformed = || "malformed DER".to_string();
    let tag = *input.first().ok_or_else(malformed)?;
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tags are not used in OCSP".to_string());
    }
    let first = *input.get(1).ok_or_else(malformed)?;
    let (length, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 {
            return Err(malformed());
        }
        let bytes = input.get(2..2 + count).ok_or_else(malformed)?;
        (
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize),
            2 + count,
        )
    };
    let end = header.checked_add(length).ok_or_else(malformed)?;
    if end > input.len() {
        return Err(malformed());
    }
    Ok((tag, &input[header..end], &input[..end], &input[end..]))
}

fn expect(input: &[u8], tag: u8) -> Result<Expected<'_>, String> {
    let (found, content, whole, rest) = read(input)?;
    if found != tag {
        return Err(format!("expected tag {tag:#04x}, found {found:#04x}"));
    }
    Ok((content, whole, rest))
}

fn generalized_time(content: &[u8]) -> Result<i64, String> {
    // YYYYMMDDHHMMSS[.f]Z
    let text = std::str::from_utf8(content).map_err(|_| "bad time".to_string())?;
    let digits = text.get(..14).ok_or("bad time")?;
    if !text.ends_with('Z') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad time".to_string());
    }
    let n = |range: std::ops::Range<usize>| digits[range].parse::<i64>().unwrap_or(0);
    let date = time::Date::from_calendar_date(
        n(0..4) as i32,
        time::Month::try_from(n(4..6) as u8).map_err(|_| "bad month")?,
        n(6..8) as u8,
    )
    .map_err(|_| "bad date")?;
    let moment = date
        .with_hms(n(8..10) as u8, n(10..12) as u8, n(12..14) as u8)
        .map_err(|_| "bad time of day")?
        .assume_utc();
    Ok(moment.unix_timestamp())
}

// ---------------------------------------------------------------------------------

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|_| "not a certificate".to_string())
}

fn hash(algorithm: &'static digest::Algorithm, data: &[u8]) -> Vec<u8> {
    digest::digest(algorithm, data).as_ref().to_vec()
}

/// The CertID fields for `certificate` issued by `issuer`, with SHA-1 (which every
/// responder supports; it hashes public names and keys, it signs nothing).
fn cert_id(
    certificate: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    algorithm: &[u8],
) -> Vec<u8> {
    let digest_algorithm = if algorithm == SHA256 {
        &digest::SHA256
    } else {
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    };
    let name_hash = hash(digest_algorithm, issuer.subject().as_raw());
    let key_hash = hash(
        digest_algorithm,
        &issuer.public_key().subject_public_key.data,
    );
    let mut algorithm_identifier = tlv(0x06, algorithm);
    algorithm_identifier.extend(tlv(0x05, &[]));
    let mut content = tlv(0x30, &algorithm_identifier);
    content.extend(tlv(0x04, &name_hash));
    content.extend(tlv(0x04, &key_hash));
    content.extend(tlv(0x02, certificate.raw_serial()));
    tlv(0x30, &content)
}

/// The DER `OCSPRequest` for one certificate.
pub fn request(certificate_der: &[u8], issuer_der: &[u8]) -> Result<Vec<u8>, String> {
    let certificate = parse(certificate_der)?;
    let issuer = parse(issuer_der)?;
    let request = tlv(0x30, &cert_id(&certificate, &issuer, SHA1));
    let request_list = tlv(0x30, &request);
    let tbs_request = tlv(0x30, &request_list);
    Ok(tlv(0x30, &tbs_request))
}

fn signature_ok(
    signer: &X509Certificate<'_>,
    algorithm: &[u8],
    signature: &[u8],
    signed: &[u8],
) -> bool {
    let Ok((_, algorithm)) = AlgorithmIdentifier::from_der(algorithm) else {
        return false;
    };
    let Ok((_, signature)) = BitString::from_der(signature) else {
        return false;
    };
    x509_parser::verify::verify_signature(signer.public_key(), &algorithm, &signature, signed)
        .is_ok()
}

fn may_sign_for(
    responder: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    now: ASN1Time,
) -> bool {
    let delegated =
        matches!(responder.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
    delegated
        && responder.validity().is_valid_at(now)
        && responder.issuer().as_raw() == issuer.subject().as_raw()
        && responder
            .verify_signature(Some(issuer.public_key()))
            .is_ok()
}

/// Checks a DER `OCSPResponse` for `certificate` issued by `issuer` at `now_unix`.
pub fn check(
    response_der: &[u8],
    certificate_der: &[u8],
    issuer_der: &[u8],
    now_unix: i64,
) -> Result<Status, String> {
    if response_der.len() > MAX_RESPONSE_BYTES {
        return Err("the response is too large".to_string());
    }
    let certificate = parse(certificate_der)?;
    let issuer = parse(issuer_der)?;
    let now = ASN1Time::from_timestamp(now_unix).map_err(|_| "bad time".to_string())?;

    let (response, _, _) = expect(response_der, 0x30)?;
    let (status, _, rest) = expect(response, 0x0a)?;
    if status != [0] {
        return Err(format!("the responder answered with status {status:?}"));
    }
    let (bytes, _, _) = expect(rest, 0xa0)?;
    let (bytes, _, _) = expect(bytes, 0x30)?;
    let (response_type, _, rest) = expect(bytes, 0x06)?;
    if response_type != BASIC {
        return Err("not a basic OCSP response".to_string());
    }
    let (basic_der, _, _) = expect(rest, 0x04)?;
    let (basic, _, _) = expect(basic_der, 0x30)?;
    let (tbs, tbs_whole, rest) = expect(basic, 0x30)?;
    let (_, _, algorithm, rest) = read(rest)?;
    let (_, _, signature, rest) = read(rest)?;

    // The signer: the issuer, or a delegated responder the issuer certified.
    let mut signed_by = signature_ok(&issuer, algorithm, signature, tbs_whole);
    if !signed_by && !rest.is_empty() {
        let (certs, _, _) = expect(rest, 0xa0)?;
        let (mut list, _, _) = expect(certs, 0x30)?;
        while !list.is_empty() && !signed_by {
            let (_, _, cert_der, next) = read(list)?;
            if let Ok(responder) = parse(cert_der)
                && may_sign_for(&responder, &issuer, now)
            {
                signed_by = signature_ok(&responder, algorithm, signature, tbs_whole);
            }
            list = next;
        }
    }
    if !signed_by {
        return Err("the response is not signed by the CA or its OCSP responder".to_string());
    }

    // ResponseData: [0] version?, responderID, producedAt, responses, [1] extensions?
    let mut rest = tbs;
    let (tag, _, _, _) = read(rest)?;
    if tag == 0xa0 {
        rest = read(rest)?.3;
    }
    rest = read(rest)?.3; // responderID
    let (_, _, rest) = expect(rest, 0x18)?; // producedAt
    let (mut responses, _, _) = expect(rest, 0x30)?;
    while !responses.is_empty() {
        let (single, _, next) = expect(responses, 0x30)?;
        responses = next;
        let (cert_id_content, _, rest) = expect(single, 0x30)?;
        let (algorithm_content, _, _) = expect(cert_id_content, 0x30)?;
        let (hash_oid, _, _) = expect(algorithm_content, 0x06)?;
        let expected = cert_id(&certificate, &issuer, hash_oid);
        let (expected_content, _, _) = expect(&expected, 0x30)?;
        // Compare everything but the algorithm's optional NULL parameters.
        let strip = |content: &[u8]| -> Result<Vec<u8>, String> {
            let (_, _, after) = expect(content, 0x30)?;
            Ok(after.to_vec())
        };
        if strip(cert_id_content)? != strip(expected_content)? {
            continue;
        }
        let (status_tag, _, _, rest) = read(rest)?;
        let (this_update, _, rest) = expect(rest, 0x18)?;
        let this_update = generalized_time(this_update)?;
        let next_update = match read(rest) {
            Ok((0xa0, content, _, _)) => Some(generalized_time(expect(content, 0x18)?.0)?),
            _ => None,
        };
        // Current: not from the future; before its nextUpdate; and, against replay of
        // an old "good", no older than a week (an hour when it names no nextUpdate).
        let max_age = if next_update.is_some() {
            MAX_AGE_SECONDS
        } else {
            3600
        };
        let current = this_update <= now_unix + 300
            && now_unix - this_update <= max_age
            && next_update.is_none_or(|next| now_unix < next);
        if !current {
            return Err("the response is not current".to_string());
        }
        return Ok(match status_tag {
            0x80 => Status::Good,
            0xa1 => Status::Revoked,
            _ => Status::Unknown,
        });
    }
    Err("the response does not name this certificate".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_reading_refuses_truncation_and_long_forms() {
        assert!(read(&[0x30]).is_err());
        assert!(read(&[0x30, 0x05, 1, 2]).is_err());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        let (tag, content, whole, rest) = read(&[0x04, 0x02, 9, 9, 7]).unwrap();
        assert_eq!(
            (tag, content, whole, rest),
            (0x04, &[9u8, 9][..], &[4u8, 2, 9, 9][..], &[7u8][..])
        );
        let mut long = vec![0x04, 0x81, 200];
        long.extend([0u8; 200]);
        assert_eq!(read(&long).unwrap().1.len(), 200);
        assert_eq!(tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
    }

    #[test]
    fn generalized_times() {
        assert_eq!(generalized_time(b"20261122073000Z").unwrap(), 1_795_332_600);
        assert!(generalized_time(b"2026112207300Z").is_err());
        assert!(generalized_time(b"20261322073000Z").is_err());
    }

    /// Our request, answered by OpenSSL's OCSP responder (`openssl ocsp -index`).
    #[test]
    fn openssl_responses_are_understood_and_verified() {
        use crate::x509::test_pki::*;
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let ca = root("OCSP Test CA");
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("ca-key.pem"), &ca.key_pem).unwrap();
        std::fs::write(
            path("index.txt"),
            "V\t301231000000Z\t\t05\tunknown\t/CN=good\nR\t301231000000Z\t251101000000Z\t06\tunknown\t/CN=revoked\n",
        )
        .unwrap();
        let spec = |serial| LeafSpec {
            upn: "a@contoso.com",
            serial,
            policies: &[],
            days: 5,
            client_auth: true,
        };
        let answer = |certificate: &[u8]| -> Vec<u8> {
            std::fs::write(path("req.der"), request(certificate, &ca.der()).unwrap()).unwrap();
            let status = std::process::Command::new("openssl")
                .args(["ocsp", "-index"])
                .arg(path("index.txt"))
                .arg("-rsigner")
                .arg(path("ca.pem"))
                .arg("-rkey")
                .arg(path("ca-key.pem"))
                .arg("-CA")
                .arg(path("ca.pem"))
                .arg("-reqin")
                .arg(path("req.der"))
                .arg("-respout")
                .arg(path("resp.der"))
                .args(["-ndays", "1"])
                .output()
                .expect("openssl is installed");
            assert!(
                status.status.success(),
                "{}",
                String::from_utf8_lossy(&status.stderr)
            );
            std::fs::read(path("resp.der")).unwrap()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let good = leaf(spec(5), &ca);
        assert_eq!(
            check(&answer(&good.der), &good.der, &ca.der(), now),
            Ok(Status::Good)
        );
        let revoked = leaf(spec(6), &ca);
        assert_eq!(
            check(&answer(&revoked.der), &revoked.der, &ca.der(), now),
            Ok(Status::Revoked)
        );
        let unknown = leaf(spec(7), &ca);
        assert_eq!(
            check(&answer(&unknown.der), &unknown.der, &ca.der(), now),
            Ok(Status::Unknown)
        );
        // A response for one certificate says nothing about another.
        assert!(check(&answer(&good.der), &revoked.der, &ca.der(), now).is_err());
        // Nor does a response another CA signed, nor a stale one.
        let impostor = root("OCSP Test CA");
        assert!(check(&answer(&good.der), &good.der, &impostor.der(), now).is_err());
        assert!(check(&answer(&good.der), &good.der, &ca.der(), now + 3 * 86_400).is_err());
    }

    #[test]
    fn garbage_responses_are_errors() {
        use crate::x509::test_pki::*;
        let root = root("R");
        let leaf = leaf(
            LeafSpec {
                upn: "a@b.c",
                serial: 5,
                policies: &[],
                days: 5,
                client_auth: true,
            },
            &root,
        );
        assert!(check(b"", &leaf.der, &root.der(), 0).is_err());
        assert!(
            check(&[0x30, 0x03, 0x0a, 0x01, 0x06], &leaf.der, &root.der(), 0)
                .unwrap_err()
                .contains("status")
        );
        let request = request(&leaf.der, &root.der()).unwrap();
        assert_eq!(request[0], 0x30);
    }
}
