//! A service provider's metadata (SAML metadata §2.3.2, §2.4.4) read into what the
//! IdP's configuration of the application takes from it: the entity id, the
//! assertion consumer services, the single logout services, the certificates it
//! signs and encrypts with, the NameID formats it accepts, and whether it signs its
//! requests and wants assertions signed. The metadata's own signature, when the
//! file is signed, is checked by the caller before this is trusted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::request::DSIG;
use crate::xml::{Document, Element};

pub const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const HTTP_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// An endpoint of the SP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: String,
    pub location: String,
    /// For an assertion consumer service: its index, and whether it is the default.
    pub index: Option<u16>,
    pub is_default: bool,
}

/// What a certificate is for, as the metadata says (none: both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    Signing,
    Encryption,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub key_use: KeyUse,
    /// DER.
    pub der: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceProvider {
    pub entity_id: String,
    pub consumer_services: Vec<Endpoint>,
    pub logout_services: Vec<Endpoint>,
    pub certificates: Vec<Certificate>,
    pub name_id_formats: Vec<String>,
    pub authn_requests_signed: bool,
    pub want_assertions_signed: bool,
    /// Until when the metadata may be used (`validUntil` of the entity or its
    /// role), in seconds since the epoch.
    pub valid_until: Option<i64>,
}

impl ServiceProvider {
    /// The consumer service a request's `AssertionConsumerServiceIndex` names, or
    /// the default one (the one marked so, else the lowest index, else the first).
    pub fn consumer_by_index(&self, index: Option<u16>) -> Option<&Endpoint> {
        match index {
            Some(wanted) => self
                .consumer_services
                .iter()
                .find(|e| e.index == Some(wanted)),
            None => self
                .consumer_services
                .iter()
                .find(|e| e.is_default)
                .or_else(|| {
                    self.consumer_services
                        .iter()
                        .min_by_key(|e| e.index.unwrap_or(u16::MAX))
                }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("this is not SAML 2.0 metadata of one entity")]
    NotAnEntity,
    #[error("the entity has no SPSSODescriptor, or more than one")]
    NotAServiceProvider,
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is not acceptable: {1}")]
    Invalid(&'static str, String),
}

fn invalid(what: &'static str, why: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(what, why.into())
}

/// Whether `value` may be an endpoint: see [`location`].
pub fn location_allowed(value: &str) -> bool {
    location(value).is_ok()
}

/// Only https endpoints (http for the loopback interface, for development), with a
/// host and no user information.
fn location(value: &str) -> Result<String, MetadataError> {
    if value.len() > 2048 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(
            "Location",
            "too long, or holds spaces or control characters",
        ));
    }
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| invalid("Location", format!("{value} is not https")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') || authority.contains('\\') {
        return Err(invalid("Location", "names user information"));
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().map(|h| format!("[{h}]")),
        None => authority.split(':').next().map(str::to_string),
    }
    .unwrap_or_default();
    let secure = scheme.eq_ignore_ascii_case("https") && !host.is_empty();
    let loopback = scheme.eq_ignore_ascii_case("http")
        && matches!(
            host.to_ascii_lowercase().as_str(),
            "localhost" | "127.0.0.1" | "[::1]"
        );
    if !(secure || loopback) {
        return Err(invalid("Location", format!("{value} is not https")));
    }
    Ok(value.to_string())
}

fn flag(element: &Element, name: &'static str) -> Result<bool, MetadataError> {
    match element.attribute(name) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(invalid(name, format!("{other} is not a boolean"))),
    }
}

fn endpoints(
    descriptor: &Element,
    local: &'static str,
    indexed: bool,
) -> Result<Vec<Endpoint>, MetadataError> {
    let mut out: Vec<Endpoint> = Vec::new();
    for element in descriptor.children_named(METADATA, local) {
        let binding = element
            .attribute("Binding")
            .ok_or(MetadataError::Missing("Binding"))?
            .to_string();
        let location = location(
            element
                .attribute("Location")
                .ok_or(MetadataError::Missing("Location"))?,
        )?;
        let index = if indexed {
            let index: u16 = element
                .attribute("index")
                .ok_or(MetadataError::Missing("index"))?
                .parse()
                .map_err(|_| invalid("index", "not 0 to 65535"))?;
            if out.iter().any(|e| e.index == Some(index)) {
                return Err(invalid("index", format!("{index} is given twice")));
            }
            Some(index)
        } else {
            None
        };
        out.push(Endpoint {
            binding,
            location,
            index,
            is_default: flag(element, "isDefault")?,
        });
        if out.len() > 64 {
            return Err(invalid(local, "more than 64"));
        }
    }
    Ok(out)
}

fn certificates(descriptor: &Element) -> Result<Vec<Certificate>, MetadataError> {
    let mut out = Vec::new();
    for key in descriptor.children_named(METADATA, "KeyDescriptor") {
        let key_use = match key.attribute("use") {
            None => KeyUse::Both,
            Some("signing") => KeyUse::Signing,
            Some("encryption") => KeyUse::Encryption,
            Some(other) => return Err(invalid("KeyDescriptor use", other.to_string())),
        };
        for info in key.children_named(DSIG, "KeyInfo") {
            for data in info.children_named(DSIG, "X509Data") {
                for certificate in data.children_named(DSIG, "X509Certificate") {
                    let text: String = certificate
                        .only_text()
                        .ok_or_else(|| invalid("X509Certificate", "holds an element"))?
                        .chars()
                        .filter(|c| !c.is_ascii_whitespace())
                        .collect();
                    let der = STANDARD
                        .decode(text.as_bytes())
                        .map_err(|_| invalid("X509Certificate", "not base64"))?;
                    out.push(Certificate { key_use, der });
                }
            }
        }
        if out.len() > 16 {
            return Err(invalid("KeyDescriptor", "more than 16 certificates"));
        }
    }
    Ok(out)
}

impl ServiceProvider {
    pub fn from_document(document: &Document) -> Result<ServiceProvider, MetadataError> {
        let root = &document.root;
        if !root.is(METADATA, "EntityDescriptor") {
            return Err(MetadataError::NotAnEntity);
        }
        let entity_id = root
            .attribute("entityID")
            .ok_or(MetadataError::Missing("entityID"))?;
        if entity_id.is_empty() || entity_id.len() > 1024 || entity_id.chars().any(char::is_control)
        {
            return Err(invalid(
                "entityID",
                "empty, too long or with control characters",
            ));
        }
        let mut descriptors = root.children_named(METADATA, "SPSSODescriptor");
        let descriptor = descriptors
            .next()
            .ok_or(MetadataError::NotAServiceProvider)?;
        if descriptors.next().is_some() {
            return Err(MetadataError::NotAServiceProvider);
        }
        if !descriptor
            .attribute("protocolSupportEnumeration")
            .is_some_and(|p| p.split_whitespace().any(|p| p == crate::request::PROTOCOL))
        {
            return Err(invalid(
                "protocolSupportEnumeration",
                "does not name SAML 2.0",
            ));
        }
        let consumer_services = endpoints(descriptor, "AssertionConsumerService", true)?;
        if consumer_services.is_empty() {
            return Err(MetadataError::Missing("AssertionConsumerService"));
        }
        if consumer_services.iter().filter(|e| e.is_default).count() > 1 {
            return Err(invalid(
                "isDefault",
                "two consumer services are the default",
            ));
        }
        let name_id_formats = descriptor
            .children_named(METADATA, "NameIDFormat")
            .filter_map(|f| f.only_text())
            .map(|f| f.trim_matches([' ', '\t', '\r', '\n']).to_string())
            .filter(|f| !f.is_empty())
            .collect();
        // The earlier of the entity's and the role's validUntil.
        let mut valid_until: Option<i64> = None;
        for element in [root, descriptor] {
            if let Some(text) = element.attribute("validUntil") {
                let at = crate::request::unix_instant(text)
                    .ok_or_else(|| invalid("validUntil", "not a UTC date and time"))?;
                valid_until = Some(valid_until.map_or(at, |v| v.min(at)));
            }
        }
        Ok(ServiceProvider {
            valid_until,
            entity_id: entity_id.to_string(),
            consumer_services,
            logout_services: endpoints(descriptor, "SingleLogoutService", false)?,
            certificates: certificates(descriptor)?,
            name_id_formats,
            authn_requests_signed: flag(descriptor, "AuthnRequestsSigned")?,
            want_assertions_signed: flag(descriptor, "WantAssertionsSigned")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Limits, parse};

    const SP: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://sp.example/metadata">
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
      protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>
        AAEC
        AwQ=
      </ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>BQY=</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sp.example/slo"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs" index="1"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="http://localhost:8000/acs" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

    fn read(text: &str) -> Result<ServiceProvider, MetadataError> {
        ServiceProvider::from_document(&parse(text, Limits::default()).unwrap())
    }

    #[test]
    fn sp_metadata_is_read() {
        let sp = read(SP).unwrap();
        assert_eq!(sp.entity_id, "https://sp.example/metadata");
        assert!(sp.authn_requests_signed && sp.want_assertions_signed);
        assert_eq!(sp.valid_until, None);
        let dated = SP.replace(
            "entityID=",
            r#"validUntil="2030-01-01T00:00:00Z" entityID="#,
        );
        let dated = dated.replace(
            "<md:SPSSODescriptor ",
            r#"<md:SPSSODescriptor validUntil="2029-01-01T00:00:00Z" "#,
        );
        assert_eq!(
            read(&dated).unwrap().valid_until,
            Some(1_861_920_000),
            "the earlier one"
        );
        assert!(read(&SP.replace("entityID=", r#"validUntil="soon" entityID="#)).is_err());
        assert_eq!(sp.consumer_services.len(), 2);
        assert_eq!(
            sp.consumer_by_index(None).unwrap().location,
            "http://localhost:8000/acs"
        );
        assert_eq!(
            sp.consumer_by_index(Some(1)).unwrap().location,
            "https://sp.example/acs"
        );
        assert!(sp.consumer_by_index(Some(7)).is_none());
        assert_eq!(sp.logout_services[0].binding, HTTP_REDIRECT);
        assert_eq!(
            sp.certificates,
            vec![
                Certificate {
                    key_use: KeyUse::Signing,
                    der: vec![0, 1, 2, 3, 4]
                },
                Certificate {
                    key_use: KeyUse::Both,
                    der: vec![5, 6]
                },
            ]
        );
        assert_eq!(
            sp.name_id_formats,
            ["urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"]
        );
    }

    #[test]
    fn unsafe_or_ambiguous_metadata_is_refused() {
        let cases = [
            (
                SP.replace("https://sp.example/acs", "http://sp.example/acs"),
                "not https",
            ),
            (
                SP.replace("https://sp.example/acs", "javascript:alert(1)"),
                "not https",
            ),
            (
                SP.replace(
                    "http://localhost:8000/acs",
                    "http://localhost.evil.example/acs",
                ),
                "not https",
            ),
            (SP.replace("index=\"0\"", "index=\"1\""), "given twice"),
            (
                SP.replace("index=\"1\"/>", "index=\"1\" isDefault=\"true\"/>"),
                "two consumer services",
            ),
            (
                SP.replace(
                    "urn:oasis:names:tc:SAML:2.0:protocol\"",
                    "urn:oasis:names:tc:SAML:1.1:protocol\"",
                ),
                "SAML 2.0",
            ),
            (SP.replace("use=\"signing\"", "use=\"other\""), "other"),
            (SP.replace("BQY=", "not base64!"), "not base64"),
            (
                SP.replace(
                    "http://localhost:8000/acs",
                    "http://localhost:@evil.example/acs",
                ),
                "user information",
            ),
            (
                SP.replace(
                    "http://localhost:8000/acs",
                    "http://127.0.0.1:80@evil.example/acs",
                ),
                "user information",
            ),
            (
                SP.replace("https://sp.example/acs", "https:///acs"),
                "not https",
            ),
        ];
        for (text, expected) in cases {
            let error = read(&text).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} for {expected}");
        }
        assert_eq!(
            read(&SP.replace("md:SPSSODescriptor", "md:IDPSSODescriptor")).unwrap_err(),
            MetadataError::NotAServiceProvider
        );
        assert_eq!(read("<a/>").unwrap_err(), MetadataError::NotAnEntity);
    }
}
