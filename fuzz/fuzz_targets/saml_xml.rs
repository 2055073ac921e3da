//! XML from service providers (AuthnRequests, LogoutRequests, metadata), the
//! redirect binding's query strings and the POST binding's values, AuthnRequests,
//! LogoutRequests, LogoutResponses and SP metadata read from them, and enveloped
//! signatures checked on them: any
//! bytes must give a tree within the limits or an error, never a panic; no element
//! of an accepted tree is deeper than the limit, no id is held by two elements, and
//! the canonical form of an accepted tree reads back to the same canonical form.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tessera_saml::{binding, c14n, dsig};
use tessera_saml::metadata::ServiceProvider;
use tessera_saml::logout::{LogoutRequest, LogoutResponse};
use tessera_saml::request::AuthnRequest;
use tessera_saml::xml::{self, Element, Limits};

fn check(element: &Element, depth: usize, ids: &mut HashSet<String>) {
    assert!(depth <= Limits::default().max_depth);
    assert!(element.attributes.len() <= Limits::default().max_attributes);
    for id in ["ID", "Id", "id"] {
        if let Some(value) = element.attribute(id) {
            assert!(ids.insert(value.to_string()), "id {value} twice");
        }
    }
    for child in element.elements() {
        check(child, depth + 1, ids);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(document) = xml::parse(text, Limits::default()) {
        check(&document.root, 1, &mut HashSet::new());
        let canonical = c14n::canonicalize(&document.root, c14n::Options::default());
        let again = xml::parse(&canonical, Limits::default()).expect("a canonical form reads");
        assert_eq!(
            c14n::canonicalize(&again.root, c14n::Options::default()),
            canonical
        );
        let _ = dsig::verify_enveloped(&document, &[binding::PublicKey::Rsa(vec![0; 270])]);
        if let Ok(request) = LogoutRequest::from_document(&document) {
            assert!(!request.id.is_empty() && !request.name_id.is_empty());
        }
        if let Ok(response) = LogoutResponse::from_document(&document) {
            assert!(!response.id.is_empty() && !response.status.is_empty());
        }
        if let Ok(request) = AuthnRequest::from_document(&document) {
            assert!(!request.id.is_empty() && !request.issuer.is_empty());
        }
        if let Ok(sp) = ServiceProvider::from_document(&document) {
            assert!(!sp.consumer_services.is_empty());
            assert!(sp.consumer_by_index(None).is_some());
        }
    }
    if let Ok(document) = binding::read_post(text) {
        check(&document.root, 1, &mut HashSet::new());
    }
    if let Ok(message) = binding::read_redirect(text) {
        check(&message.document.root, 1, &mut HashSet::new());
        if let Some(signature) = message.signature {
            let _ = signature.verify(&binding::PublicKey::EcP256(vec![4; 65]));
        }
    }
});
