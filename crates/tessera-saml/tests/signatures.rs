//! Signatures Tessera makes, checked by `xmlsec1` (an implementation nobody here
//! wrote), and the classic attack corpus against the signatures Tessera checks
//! (a POST-bound AuthnRequest stands for every signed message it receives), each
//! refused with its own test.
//!
//! The classic signature-wrapping attacks (XSW1–8) target a consumer that checks
//! one element and reads another. Tessera checks the signature of the root it then
//! reads, so each variant comes down to one of: the reference names another
//! element, the root is unsigned, the changed root no longer matches its digest,
//! or a copy of the signed element repeats its ID.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tessera_saml::binding::{self, PublicKey};
use tessera_saml::dsig::{self, Algorithm, SigningKey};
use tessera_saml::encrypt::{self, DataAlgorithm};
use tessera_saml::request::AuthnRequest;
use tessera_saml::response::{
    self, AssertionContent, NameId, ResponseContent, SamlAttribute, Status,
};
use tessera_saml::xml::{self, Limits, XmlError};
use tessera_saml::{c14n, idp, logout};

fn key(algorithm: Algorithm) -> (Vec<u8>, SigningKey) {
    let now = time::OffsetDateTime::now_utc();
    SigningKey::generate(
        algorithm,
        "Tessera test",
        now - time::Duration::days(1),
        now + time::Duration::days(365),
    )
    .unwrap()
}

const UNSIGNED_REQUEST: &str = r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_orig" Version="2.0" IssueInstant="2026-12-04T10:00:00Z" AssertionConsumerServiceURL="https://sp.example/acs"><saml:Issuer>ISSUER</saml:Issuer>
  <samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/>
</samlp:AuthnRequest>"#;

/// A request as an SP signs it: its own text (not canonical) with the signature
/// inserted after the issuer.
fn signed_request(key: &SigningKey, issuer: &str) -> String {
    let text = UNSIGNED_REQUEST.replace("ISSUER", issuer);
    let mut document = xml::parse(&text, Limits::default()).unwrap();
    dsig::sign_enveloped(&mut document.root, key, 1).unwrap();
    response::serialize(&document.root)
}

fn verify(text: &str, key: &PublicKey) -> Result<AuthnRequest, String> {
    let document = xml::parse(text, Limits::default()).map_err(|e| format!("xml: {e}"))?;
    dsig::verify_enveloped(&document, std::slice::from_ref(key)).map_err(|e| format!("{e:?}"))?;
    AuthnRequest::from_document(&document).map_err(|e| format!("request: {e}"))
}

/// Asserts that `text` is refused for a reason containing `why`.
fn refused(text: &str, key: &SigningKey, why: &str) {
    let error = verify(text, &key.public_key()).expect_err("the attack was accepted");
    assert!(error.contains(why), "refused for another reason: {error}");
}

fn signature_of(text: &str) -> &str {
    let start = text.find("<ds:Signature").unwrap();
    let end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    &text[start..end]
}

fn without_signature(text: &str) -> String {
    text.replace(signature_of(text), "")
}

/// A root the attacker wrote, with their consumer service, around `body`.
fn attacker_root(id: &str, body: &str) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="2026-12-04T10:00:00Z" AssertionConsumerServiceURL="https://evil.example/acs"><saml:Issuer>https://sp.example</saml:Issuer>{body}</samlp:AuthnRequest>"#
    )
}

fn evil(text: &str) -> String {
    text.replace("https://sp.example/acs", "https://evil.example/acs")
}

#[test]
fn a_signed_request_verifies_with_rsa_and_ecdsa() {
    for algorithm in [Algorithm::RsaSha256, Algorithm::EcdsaSha256] {
        let (_, key) = key(algorithm);
        let text = signed_request(&key, "https://sp.example");
        let request = verify(&text, &key.public_key()).unwrap();
        assert_eq!(request.issuer, "https://sp.example");
        // Line breaks in the base64 values, as some libraries write them.
        let value = text
            .split("<ds:SignatureValue>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let wrapped: String = value
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                if i > 0 && i % 64 == 0 {
                    vec!['\n', c]
                } else {
                    vec![c]
                }
            })
            .collect();
        verify(&text.replace(value, &wrapped), &key.public_key()).unwrap();
    }
}

#[test]
fn the_signature_of_another_key_is_refused_whatever_keyinfo_says() {
    let (_, configured) = key(Algorithm::RsaSha256);
    let (_, attacker) = key(Algorithm::RsaSha256);
    // The attacker's signature carries the attacker's certificate in KeyInfo.
    let text = signed_request(&attacker, "https://sp.example");
    refused(&text, &configured, "BadSignature");
}

#[test]
fn an_unsigned_request_is_not_taken_for_a_signed_one() {
    let (_, key) = key(Algorithm::RsaSha256);
    let text = without_signature(&signed_request(&key, "https://sp.example"));
    refused(&text, &key, "Unsigned");
}

#[test]
fn xsw1_the_original_inside_the_signature_of_a_new_root() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let signature = signature_of(&original);
    let attack = attacker_root(
        "_evil",
        &signature.replace(
            "</ds:Signature>",
            &format!(
                "<ds:Object>{}</ds:Object></ds:Signature>",
                without_signature(&original)
            ),
        ),
    );
    refused(&attack, &key, "reference is not to the signed element");
}

#[test]
fn xsw2_the_original_beside_the_signature_of_a_new_root() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let attack = attacker_root(
        "_evil",
        &format!(
            r#"{}<samlp:Extensions>{}</samlp:Extensions>"#,
            signature_of(&original),
            without_signature(&original)
        ),
    );
    refused(&attack, &key, "reference is not to the signed element");
}

#[test]
fn xsw3_a_new_root_with_the_same_id_before_the_original() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let attack = attacker_root(
        "_orig",
        &format!(r#"<samlp:Extensions>{original}</samlp:Extensions>"#),
    );
    refused(&attack, &key, "xml: the id _orig");
}

#[test]
fn xsw4_the_signed_original_wrapped_inside_an_unsigned_root() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let attack = attacker_root(
        "_evil",
        &format!(r#"<samlp:Extensions>{original}</samlp:Extensions>"#),
    );
    refused(&attack, &key, "Unsigned");
}

#[test]
fn xsw5_the_signed_element_changed_in_place() {
    let (_, key) = key(Algorithm::RsaSha256);
    let attack = evil(&signed_request(&key, "https://sp.example"));
    refused(&attack, &key, "Digest");
}

#[test]
fn xsw6_the_changed_root_with_the_original_inside_its_signature() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let attack = evil(&original).replace(
        "</ds:Signature>",
        &format!(
            "<ds:Object>{}</ds:Object></ds:Signature>",
            without_signature(&original)
        ),
    );
    refused(&attack, &key, "xml: the id _orig");
}

#[test]
fn xsw7_the_changed_root_with_the_original_in_extensions() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let attack = evil(&original).replace(
        "</samlp:AuthnRequest>",
        &format!(
            "<samlp:Extensions>{}</samlp:Extensions></samlp:AuthnRequest>",
            without_signature(&original).replace("_orig", "_copy")
        ),
    );
    refused(&attack, &key, "Digest");
}

#[test]
fn xsw8_the_changed_root_with_the_unsigned_original_in_an_object() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let copy = without_signature(&original);
    let attack = evil(&original).replace(
        "</ds:SignatureValue>",
        &format!("</ds:SignatureValue><ds:Object>{copy}</ds:Object>"),
    );
    refused(&attack, &key, "xml: the id _orig");
}

#[test]
fn a_second_signature_anywhere_is_refused() {
    let (_, key) = key(Algorithm::RsaSha256);
    let original = signed_request(&key, "https://sp.example");
    let other = signed_request(&key, "https://sp.example").replace("_orig", "_other");
    let attack = original.replace(
        "</samlp:AuthnRequest>",
        &format!("<samlp:Extensions>{other}</samlp:Extensions></samlp:AuthnRequest>"),
    );
    refused(&attack, &key, "another signature");
}

#[test]
fn a_comment_in_signed_text_cannot_shorten_what_is_read() {
    // Comments are not signed: inserting one keeps the signature valid, and the
    // text read is still the whole text that was signed.
    let (_, key) = key(Algorithm::RsaSha256);
    let signed = signed_request(&key, "https://sp.example.evil");
    let attack = signed.replace(
        "https://sp.example.evil<",
        "https://sp.example<!---->.evil<",
    );
    assert_ne!(attack, signed);
    let request = verify(&attack, &key.public_key()).unwrap();
    assert_eq!(request.issuer, "https://sp.example.evil");
}

#[test]
fn document_types_and_external_entities_are_refused() {
    let (_, key) = key(Algorithm::RsaSha256);
    let signed = signed_request(&key, "https://sp.example");
    let xxe = format!(
        "<!DOCTYPE samlp:AuthnRequest [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        signed.replace("https://sp.example<", "&x;<")
    );
    refused(&xxe, &key, "xml");
    let laughs = format!("<!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>{signed}");
    assert_eq!(
        xml::parse(&laughs, Limits::default()).unwrap_err(),
        XmlError::DocumentType
    );
}

#[test]
fn duplicated_ids_are_refused() {
    let (_, key) = key(Algorithm::RsaSha256);
    let signed = signed_request(&key, "https://sp.example");
    let attack = signed.replace(
        "<samlp:NameIDPolicy",
        "<samlp:Extensions ID=\"_orig\"></samlp:Extensions><samlp:NameIDPolicy",
    );
    refused(&attack, &key, "xml: the id _orig");
}

#[test]
fn weak_or_unexpected_algorithms_and_transforms_are_refused() {
    let (_, key) = key(Algorithm::RsaSha256);
    let signed = signed_request(&key, "https://sp.example");
    let sha1 = signed.replace(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    );
    refused(&sha1, &key, "Sha1");
    let sha1_digest = signed.replace(
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2000/09/xmldsig#sha1",
    );
    refused(&sha1_digest, &key, "Sha1");
    let with_comments = signed.replacen(
        "http://www.w3.org/2001/10/xml-exc-c14n#\"",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments\"",
        1,
    );
    refused(&with_comments, &key, "Algorithm");
    let xpath = signed.replace(
        "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>",
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>",
    );
    assert_ne!(xpath, signed);
    refused(&xpath, &key, "transforms");
}

fn assertion_content(issuer: &str) -> AssertionContent {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    AssertionContent {
        id: "_a1".to_string(),
        issue_instant: now,
        issuer: issuer.to_string(),
        name_id: NameId {
            format: idp::NAME_ID_PERSISTENT.to_string(),
            value: "AbC<&>\"x".to_string(),
            name_qualifier: None,
            sp_name_qualifier: Some("https://sp.example".to_string()),
        },
        recipient: "https://sp.example/acs".to_string(),
        in_response_to: Some("_orig".to_string()),
        confirmation_not_on_or_after: now + 300,
        not_before: now - 60,
        not_on_or_after: now + 300,
        audience: "https://sp.example".to_string(),
        authn_instant: now - 10,
        session_index: "_s1".to_string(),
        session_not_on_or_after: None,
        authn_context_class: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            .to_string(),
        attributes: vec![SamlAttribute {
            name: "groups".to_string(),
            name_format: response::ATTRIBUTE_BASIC.to_string(),
            friendly_name: None,
            values: vec!["a & b".to_string(), "c".to_string()],
        }],
    }
}

fn envelope() -> ResponseContent {
    ResponseContent {
        id: "_r1".to_string(),
        in_response_to: Some("_orig".to_string()),
        issue_instant: time::OffsetDateTime::now_utc().unix_timestamp(),
        destination: "https://sp.example/acs".to_string(),
        issuer: "https://idp.example".to_string(),
        status: Status::Success,
    }
}

/// Writes the files `xmlsec1` reads, in a fresh directory.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }
    fn put(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }
}

fn xmlsec1(args: &[&str]) -> (bool, String) {
    let output = Command::new("xmlsec1")
        .args(args)
        .output()
        .expect("xmlsec1 is installed (Debian's xmlsec1, by scripts/test)");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

const ID_ATTRIBUTES: [&str; 10] = [
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:protocol:Response",
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
];

fn xmlsec1_verifies(files: &Files, document: &str, key: &SigningKey) -> (bool, String) {
    let cert = files.put("cert.der", key.certificate());
    let file = files.put("doc.xml", document.as_bytes());
    let mut args = vec!["--verify", "--pubkey-cert-der", &cert];
    args.extend(ID_ATTRIBUTES);
    args.push(&file);
    xmlsec1(&args)
}

#[test]
fn xmlsec1_verifies_signed_assertions_responses_and_metadata() {
    for algorithm in [Algorithm::RsaSha256, Algorithm::EcdsaSha256] {
        let (_, key) = key(algorithm);
        let files = Files::new();
        // The assertion signed.
        let mut assertion = response::assertion(&assertion_content("https://idp.example"));
        dsig::sign_enveloped(&mut assertion, &key, response::SIGNATURE_POSITION).unwrap();
        let signed_assertion = response::response(&envelope(), Some(assertion.clone()));
        let text = response::serialize(&signed_assertion);
        let (ok, out) = xmlsec1_verifies(&files, &text, &key);
        assert!(ok, "{algorithm:?} assertion: {out}\n{text}");
        // And the response around it, too.
        let mut both = signed_assertion.clone();
        dsig::sign_enveloped(&mut both, &key, response::SIGNATURE_POSITION).unwrap();
        let (ok, out) = xmlsec1_verifies(&files, &response::serialize(&both), &key);
        assert!(ok, "{algorithm:?} response: {out}");
        // A changed value does not verify.
        let tampered = text.replace("a &amp; b", "a &amp; c");
        assert_ne!(tampered, text);
        let (ok, _) = xmlsec1_verifies(&files, &tampered, &key);
        assert!(!ok, "xmlsec1 accepted a changed assertion");
        // The metadata.
        let mut metadata = idp::metadata(&idp::IdpMetadata {
            id: "_m1".to_string(),
            entity_id: "https://idp.example/saml2".to_string(),
            valid_until: time::OffsetDateTime::now_utc().unix_timestamp() + 86_400,
            signing_certificates: vec![key.certificate().to_vec()],
            sso_url: "https://idp.example/saml2/sso".to_string(),
            slo_url: "https://idp.example/saml2/slo".to_string(),
            want_requests_signed: false,
            name_id_formats: vec![idp::NAME_ID_PERSISTENT.to_string()],
        });
        dsig::sign_enveloped(&mut metadata, &key, idp::SIGNATURE_POSITION).unwrap();
        let (ok, out) = xmlsec1_verifies(&files, &response::serialize(&metadata), &key);
        assert!(ok, "{algorithm:?} metadata: {out}");
        // Single logout over the POST binding: the LogoutRequest Tessera sends
        // and the LogoutResponse it answers with.
        for mut message in logout_messages() {
            dsig::sign_enveloped(&mut message, &key, response::SIGNATURE_POSITION).unwrap();
            let (ok, out) = xmlsec1_verifies(&files, &response::serialize(&message), &key);
            assert!(ok, "{algorithm:?} {}: {out}", message.local);
        }
    }
}

fn logout_messages() -> Vec<xml::Element> {
    vec![
        logout::logout_request(&logout::LogoutRequestContent {
            id: "_q1".into(),
            issue_instant: 1_800_000_000,
            destination: "https://sp.example/slo".into(),
            issuer: "https://idp.example/saml2".into(),
            name_id: response::NameId {
                format: idp::NAME_ID_PERSISTENT.into(),
                value: "abc".into(),
                name_qualifier: Some("https://idp.example/saml2".into()),
                sp_name_qualifier: Some("https://sp.example".into()),
            },
            session_index: "_s1".into(),
            not_on_or_after: 1_800_000_300,
        }),
        logout::logout_response(&logout::LogoutResponseContent {
            id: "_p1".into(),
            in_response_to: "_r1".into(),
            issue_instant: 1_800_000_000,
            destination: "https://sp.example/slo".into(),
            issuer: "https://idp.example/saml2".into(),
            status: response::Status::SuccessWith(response::PARTIAL_LOGOUT),
        }),
    ]
}

#[test]
fn openssl_verifies_the_redirect_binding_signature() {
    let (_, key) = key(Algorithm::RsaSha256);
    let files = Files::new();
    let certificate = files.put("cert.der", key.certificate());
    let public = Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "der",
            "-pubkey",
            "-noout",
            "-in",
            &certificate,
        ])
        .output()
        .expect("openssl is installed");
    assert!(public.status.success());
    let public = files.put("pub.pem", &public.stdout);
    for message in logout_messages() {
        let name = if message.local == "LogoutRequest" {
            "SAMLRequest"
        } else {
            "SAMLResponse"
        };
        let query = binding::write_redirect(
            name,
            &response::serialize(&message),
            Some("a b/c~d-e_f.g"),
            Some(&key),
        )
        .unwrap();
        let (signed, signature) = query.rsplit_once("&Signature=").unwrap();
        let signature = STANDARD
            .decode(
                percent_encoding::percent_decode_str(signature)
                    .decode_utf8()
                    .unwrap()
                    .as_bytes(),
            )
            .unwrap();
        let data = files.put("signed.txt", signed.as_bytes());
        let signature = files.put("signature.bin", &signature);
        let verified = Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                &public,
                "-signature",
                &signature,
                &data,
            ])
            .output()
            .unwrap();
        assert!(
            verified.status.success(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
        // Unreserved characters stay as they are, as other encoders keep them.
        assert!(signed.contains("RelayState=a%20b%2Fc~d-e_f.g"), "{signed}");
        // And it reads back, its signature checked by Tessera too.
        let read = binding::read_redirect(&query).unwrap();
        read.signature.unwrap().verify(&key.public_key()).unwrap();
    }
}

#[test]
fn what_tessera_writes_is_canonical_and_reads_back() {
    let (_, key) = key(Algorithm::RsaSha256);
    let mut assertion = response::assertion(&assertion_content("https://idp.example"));
    dsig::sign_enveloped(&mut assertion, &key, response::SIGNATURE_POSITION).unwrap();
    let mut whole = response::response(&envelope(), Some(assertion));
    dsig::sign_enveloped(&mut whole, &key, response::SIGNATURE_POSITION).unwrap();
    let text = response::serialize(&whole);
    let read = xml::parse(&text, Limits::default()).unwrap();
    assert_eq!(
        c14n::canonicalize(&read.root, c14n::Options::default()),
        text
    );
    dsig::verify_enveloped(&read, &[key.public_key()]).unwrap_err();
    // The value with markup characters is escaped, not pasted.
    assert!(text.contains("AbC&lt;&amp;&gt;\"x"));
}

#[test]
fn xmlsec1_decrypts_an_encrypted_assertion_whose_signature_still_verifies() {
    let (sp_pkcs8, sp_key) = key(Algorithm::RsaSha256);
    let (_, idp_key) = key(Algorithm::RsaSha256);
    for data in [DataAlgorithm::Aes256Gcm, DataAlgorithm::Aes128Gcm] {
        let files = Files::new();
        let mut assertion = response::assertion(&assertion_content("https://idp.example"));
        dsig::sign_enveloped(&mut assertion, &idp_key, response::SIGNATURE_POSITION).unwrap();
        let encrypted = encrypt::encrypt_assertion(&assertion, sp_key.certificate(), data).unwrap();
        let text = response::serialize(&response::response(&envelope(), Some(encrypted)));
        assert!(!text.contains("a &amp; b"));
        let key_file = files.put("sp.p8", &sp_pkcs8);
        let file = files.put("enc.xml", text.as_bytes());
        let (ok, decrypted) = xmlsec1(&["--decrypt", "--privkey-der", &key_file, &file]);
        assert!(ok, "{data:?}: {decrypted}");
        assert!(decrypted.contains("a &amp; b"), "{decrypted}");
        let xml_start = decrypted.find('<').unwrap();
        let (ok, out) = xmlsec1_verifies(&files, &decrypted[xml_start..], &idp_key);
        assert!(ok, "the decrypted assertion's signature: {out}");
    }
}

#[test]
fn a_post_bound_request_reads_with_line_breaks() {
    let (_, key) = key(Algorithm::EcdsaSha256);
    let signed = signed_request(&key, "https://sp.example");
    let encoded = STANDARD.encode(signed.as_bytes());
    let wrapped: String = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let document = binding::read_post(&wrapped).unwrap();
    dsig::verify_enveloped(&document, &[key.public_key()]).unwrap();
    assert!(binding::read_post("not base64!").is_err());
}

/// A request as another implementation lays it out before signing: CRLF line ends,
/// whitespace between elements, unsorted attributes, a tab by reference, CDATA,
/// `xml:lang`, the signature in the default namespace, and an inclusive prefix
/// used only inside a value.
const THIRD_PARTY_TEMPLATE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" Version=\"2.0\" ID=\"_third\" IssueInstant=\"2026-12-04T10:00:00Z\" AssertionConsumerServiceURL=\"https://sp.example/acs\" ProviderName=\"a&#9;b\">\r\n  <saml:Issuer xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" xml:lang=\"en\"><![CDATA[https://sp.example]]></saml:Issuer>\r\n  <Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">\r\n    <SignedInfo>\r\n      <CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\r\n      <SignatureMethod Algorithm=\"ALGORITHM\"/>\r\n      <Reference URI=\"#_third\">\r\n        <Transforms>\r\n          <Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\r\n          <Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><InclusiveNamespaces xmlns=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"#default xs\"/></Transform>\r\n        </Transforms>\r\n        <DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\r\n        <DigestValue/>\r\n      </Reference>\r\n    </SignedInfo>\r\n    <SignatureValue/>\r\n    <KeyInfo/>\r\n  </Signature>\r\n  <samlp:Extensions><v xsi:type=\"xs:string\" b=\"2\" a=\"1\">x &amp; y</v></samlp:Extensions>\r\n  <samlp:NameIDPolicy AllowCreate=\"true\" Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\"/>\r\n</samlp:AuthnRequest>\r\n";

#[test]
fn tessera_verifies_what_xmlsec1_signed_from_a_non_canonical_layout() {
    for algorithm in [Algorithm::RsaSha256, Algorithm::EcdsaSha256] {
        let (pkcs8, key) = key(algorithm);
        let files = Files::new();
        let template = THIRD_PARTY_TEMPLATE.replace("ALGORITHM", algorithm.uri());
        let template_file = files.put("template.xml", template.as_bytes());
        let key_file = files.put("sp.p8", &pkcs8);
        let (ok, signed) = xmlsec1(&[
            "--sign",
            "--privkey-der",
            &key_file,
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
            &template_file,
        ]);
        assert!(ok, "{algorithm:?}: {signed}");
        let document = xml::parse(&signed, Limits::default()).unwrap();
        dsig::verify_enveloped(&document, &[key.public_key()])
            .unwrap_or_else(|e| panic!("{algorithm:?}: {e}\n{signed}"));
        // The same document changed anywhere the signature covers is refused.
        let changed = signed.replace("x &amp; y", "x &amp; z");
        assert_ne!(changed, signed);
        let document = xml::parse(&changed, Limits::default()).unwrap();
        assert_eq!(
            dsig::verify_enveloped(&document, &[key.public_key()]),
            Err(dsig::SignatureError::Digest)
        );
    }
}
