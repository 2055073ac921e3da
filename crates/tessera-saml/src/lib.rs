//! SAML 2.0 for Tessera as an identity provider, sans I/O (issue 14).
//!
//! Built up in steps. The first is the one everything else stands on: `xml`, a
//! strict reader of the XML that service providers send (AuthnRequests,
//! LogoutRequests, metadata). It accepts no document type declaration, no entity
//! but the five predefined ones and character references, no processing
//! instruction, and bounds size, depth, element and attribute counts; it resolves
//! namespaces, refuses an `ID` given to two elements, and gives an element's text
//! with comments left out (what exclusive canonicalization without comments signs,
//! so a comment cannot cut a `NameID` short). Signatures will be verified over the
//! exact element this tree then hands to the code, and what Tessera signs will be
//! written from fixed templates already in canonical form.
//!
//! `binding`: the HTTP-Redirect binding as received, the message inflated within a
//! bound and read with `xml`, its detached signature (RSA-SHA256 or ECDSA-SHA256;
//! SHA-1 refused) checked over the query string's octets exactly as they came.
//!
//! `request`: an `AuthnRequest` read into what the IdP acts on (issuer, consumer
//! service, NameID policy, requested authentication context, ForceAuthn and
//! IsPassive), strictly: what is ambiguous or unsupported is refused by name.
//!
//! `metadata`: a service provider's metadata read into its configuration (entity
//! id, consumer and logout services, https only, certificates by use, NameID
//! formats, signing wishes).

pub mod binding;
pub mod c14n;
pub mod config;
pub mod dsig;
pub mod encrypt;
pub mod idp;
pub mod logout;
pub mod metadata;
pub mod request;
pub mod response;
pub mod xml;
