//! The IdP's own metadata (SAML metadata §2.4.3), written from a fixed template:
//! its entity id, signing certificates (the one in use and the next one, published
//! before it is used), its single sign-on and single logout endpoints in both
//! bindings, the NameID formats it issues, and whether it wants requests signed.
//! The caller signs it with `dsig::sign_enveloped` at `SIGNATURE_POSITION`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::metadata::{HTTP_POST, HTTP_REDIRECT, METADATA};
use crate::request::{DSIG, PROTOCOL};
use crate::response::instant;
use crate::xml::Element;

pub const NAME_ID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAME_ID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAME_ID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAME_ID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// Where the signature goes in the metadata: before the role descriptor.
pub const SIGNATURE_POSITION: usize = 0;

/// What the metadata says.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub id: String,
    pub entity_id: String,
    /// Until when it may be cached.
    pub valid_until: i64,
    /// Signing certificates (DER), the one in use first.
    pub signing_certificates: Vec<Vec<u8>>,
    pub sso_url: String,
    pub slo_url: String,
    pub want_requests_signed: bool,
    pub name_id_formats: Vec<String>,
}

fn md(local: &str) -> Element {
    Element::new(METADATA, "md", local)
}

fn ds(local: &str) -> Element {
    Element::new(DSIG, "ds", local)
}

/// The metadata, unsigned.
pub fn metadata(content: &IdpMetadata) -> Element {
    let mut role = md("IDPSSODescriptor")
        .with_attribute(
            "WantAuthnRequestsSigned",
            if content.want_requests_signed {
                "true"
            } else {
                "false"
            },
        )
        .with_attribute("protocolSupportEnumeration", PROTOCOL);
    for certificate in &content.signing_certificates {
        role =
            role.with_child(
                md("KeyDescriptor")
                    .with_attribute("use", "signing")
                    .with_child(ds("KeyInfo").with_child(ds("X509Data").with_child(
                        ds("X509Certificate").with_text(STANDARD.encode(certificate)),
                    ))),
            );
    }
    for binding in [HTTP_REDIRECT, HTTP_POST] {
        role = role.with_child(
            md("SingleLogoutService")
                .with_attribute("Binding", binding)
                .with_attribute("Location", content.slo_url.clone()),
        );
    }
    for format in &content.name_id_formats {
        role = role.with_child(md("NameIDFormat").with_text(format.clone()));
    }
    for binding in [HTTP_REDIRECT, HTTP_POST] {
        role = role.with_child(
            md("SingleSignOnService")
                .with_attribute("Binding", binding)
                .with_attribute("Location", content.sso_url.clone()),
        );
    }
    md("EntityDescriptor")
        .with_attribute("ID", content.id.clone())
        .with_attribute("entityID", content.entity_id.clone())
        .with_attribute("validUntil", instant(content.valid_until))
        .with_child(role)
}
