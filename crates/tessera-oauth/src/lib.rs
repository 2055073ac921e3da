//! OAuth 2.x and OpenID Connect as protocol code: signing keys and their JWKs, JWS
//! compact serialization, and the key rotation schedule; the authorization and
//! token endpoints' requests and their rules ([`redirect`]: which redirect URIs
//! match a registration; [`acr`]: what a sign-in proved as `acr`, `acrs` and
//! `amr`; [`resource`]: the one resource a request's scopes and resource
//! indicators name; [`claims`]: the ID token's and RFC 9068 access token's
//! claims, typed). No storage and no HTTP types: the service layer stores
//! keys (sealed) and state, and the server speaks HTTP.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod acr;
pub mod assertion;
pub mod authorize;
pub mod claims;
pub mod device;
pub mod dpop;
pub mod error;
pub mod exchange;
pub mod jws;
pub mod keys;
pub mod metadata;
pub mod pkce;
pub mod redirect;
pub mod resource;
pub mod rotation;
pub mod token;
