//! JWT claims. The claim sets Tessera issues, typed: [`IdTokenClaims`] (OpenID
//! Connect Core §2, with the standard claims of §5.4 the scopes release) and
//! [`AccessTokenClaims`] (RFC 9068, with Entra's names for what it adds), each
//! leaving out what it does not carry. And checks that every kind of token shares
//! (RFC 7519 §4.1): whether `aud` (a string or an array) names an accepted
//! audience, and whether the token is inside its lifetime.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_directory::model::UserSpec;
use uuid::Uuid;

/// The standard claims about the user (OIDC Core §5.4) a token or the userinfo
/// endpoint releases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl ProfileClaims {
    /// The claims the `scopes` release, and those asked for one by one with the
    /// `claims` parameter (`requested`, OIDC Core §5.5).
    pub fn released(user: &UserSpec, scopes: &[String], requested: &[String]) -> ProfileClaims {
        let has = |scope: &str| scopes.iter().any(|s| s == scope);
        // A claim asked for one by one is released only under the scope consented
        // to for it: no profile data through `claims` alone.
        let asked = |claim: &str| {
            let scope = if claim == "email" { "email" } else { "profile" };
            requested.iter().any(|c| c == claim) && has(scope)
        };
        let profile = has("profile");
        ProfileClaims {
            name: (profile || asked("name")).then(|| user.display_name.clone()),
            preferred_username: (profile || asked("preferred_username"))
                .then(|| user.user_principal_name.clone()),
            given_name: user
                .given_name
                .clone()
                .filter(|_| profile || asked("given_name")),
            family_name: user
                .surname
                .clone()
                .filter(|_| profile || asked("family_name")),
            email: user.mail.clone().filter(|_| has("email") || asked("email")),
        }
    }
}

/// The userinfo endpoint's answer (OIDC Core §5.3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub sub: Uuid,
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// An ID token's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: Uuid,
    /// The client.
    pub aud: String,
    pub azp: String,
    pub iat: i64,
    pub exp: i64,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    /// The browser session (see back-channel logout).
    pub sid: String,
    /// The tenant.
    pub tid: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(flatten)]
    pub profile: ProfileClaims,
    /// The user's app roles on the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Conditional Access session controls for the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_controls: Option<Value>,
}

/// Whom an access token is for (`idtyp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityType {
    /// A user, through an application.
    User,
    /// A workload on its own (client credentials).
    App,
}

/// The proof-of-possession key an access token is bound to (`cnf`): a DPoP key's
/// thumbprint (RFC 9449 §6.1), a client certificate's (RFC 8705 §3.1), or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
}

impl Confirmation {
    /// The binding to a DPoP key and a certificate, when there is either.
    pub fn of(jkt: Option<&str>, certificate_thumbprint: Option<&str>) -> Option<Confirmation> {
        (jkt.is_some() || certificate_thumbprint.is_some()).then(|| Confirmation {
            jkt: jkt.map(str::to_string),
            x5t_s256: certificate_thumbprint.map(str::to_string),
        })
    }
}

/// The party acting for the subject (`act`, RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

/// An access token's claims (RFC 9068 §2.2). A user's token also carries the
/// sign-in (`sid`, `auth_time`, `acr`, `amr`, `acrs`), the user's name, groups
/// and roles on the resource; a workload's carries its roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: Uuid,
    /// The resource: an application id, the management API, or userinfo.
    pub aud: String,
    pub client_id: String,
    pub azp: String,
    /// The granted scopes' names, space-separated (users' tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// The tenant.
    pub tid: Uuid,
    /// The subject's object id (the same as `sub`).
    pub oid: Uuid,
    pub idtyp: IdentityType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The tenant's authentication contexts the sign-in satisfies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
    /// The refresh token family the token came from (not a secret), so
    /// introspection can tell when the family ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    /// Conditional Access session controls for the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_controls: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The client's capabilities (`cp1`: it handles claims challenges, and
    /// the token may live longer because revocation reaches it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xms_cc: Vec<String>,
    /// The Conditional Access policies whose locations the token is refused
    /// in (continuous access evaluation, strict location enforcement): the
    /// issuer's resources check where it is presented from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cae_loc: Vec<Uuid>,
    /// App roles on the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The user's groups, unless there are too many to list (`hasgroups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Uuid>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hasgroups: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// What every access token states, whoever it is for.
#[derive(Debug, Clone)]
pub struct AccessTokenBasics {
    pub issuer: String,
    /// The user or service principal (`sub` and `oid`).
    pub subject: Uuid,
    pub audience: String,
    /// The client the token was issued to (`client_id` and `azp`).
    pub client_id: String,
    pub tenant: Uuid,
    pub identity_type: IdentityType,
    /// Unix seconds (`iat` and `nbf`).
    pub issued_at: i64,
    pub lifetime_seconds: i64,
    /// `jti`: unique per token (the caller draws it).
    pub id: Uuid,
}

impl AccessTokenClaims {
    /// The claims every access token has; the rest are left out.
    pub fn new(basics: AccessTokenBasics) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: basics.issuer,
            sub: basics.subject,
            aud: basics.audience,
            azp: basics.client_id.clone(),
            client_id: basics.client_id,
            scp: None,
            tid: basics.tenant,
            oid: basics.subject,
            idtyp: basics.identity_type,
            sid: None,
            auth_time: None,
            acr: None,
            amr: None,
            acrs: Vec::new(),
            preferred_username: None,
            iat: basics.issued_at,
            nbf: basics.issued_at,
            exp: basics.issued_at + basics.lifetime_seconds,
            jti: basics.id,
            fam: None,
            session_controls: None,
            act: None,
            xms_cc: Vec::new(),
            cae_loc: Vec::new(),
            roles: Vec::new(),
            groups: None,
            hasgroups: false,
            cnf: None,
        }
    }
}

/// Whether an `aud` claim names one of the audiences `accepted` accepts.
pub fn audience_matches(aud: Option<&Value>, accepted: impl Fn(&str) -> bool) -> bool {
    match aud {
        Some(Value::String(aud)) => accepted(aud),
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    }
}

/// Why a token is outside its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    MissingExp,
    Expired,
    NotYetValid,
    Malformed,
}

impl Lifetime {
    pub fn describe(self) -> &'static str {
        match self {
            Lifetime::MissingExp => "exp is required",
            Lifetime::Expired => "it has expired",
            Lifetime::NotYetValid => "it is not valid yet",
            Lifetime::Malformed => "nbf and iat are numbers",
        }
    }
}

/// `exp` is present and not more than `skew` seconds past, and `nbf`/`iat` (when
/// present) not more than `skew` ahead of `now`; returns `exp`.
pub fn check_lifetime(claims: &Value, now: i64, skew: i64) -> Result<i64, Lifetime> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or(Lifetime::MissingExp)?;
    if exp <= now - skew {
        return Err(Lifetime::Expired);
    }
    for name in ["nbf", "iat"] {
        if let Some(value) = claims.get(name) {
            let at = value.as_i64().ok_or(Lifetime::Malformed)?;
            if at > now + skew {
                return Err(Lifetime::NotYetValid);
            }
        }
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: Uuid = Uuid::from_u128(0x1111);
    const TENANT: Uuid = Uuid::from_u128(0x2222);
    const JTI: Uuid = Uuid::from_u128(0x3333);

    fn basics(identity_type: IdentityType) -> AccessTokenBasics {
        AccessTokenBasics {
            issuer: "https://id.contoso.com".to_string(),
            subject: USER,
            audience: "api".to_string(),
            client_id: "client".to_string(),
            tenant: TENANT,
            identity_type,
            issued_at: 1000,
            lifetime_seconds: 900,
            id: JTI,
        }
    }

    fn user() -> UserSpec {
        serde_json::from_value(json!({
            "userPrincipalName": "adele@contoso.com",
            "displayName": "Adele Vance",
            "givenName": "Adele",
            "mail": "adele@contoso.com",
            "accountEnabled": true,
        }))
        .unwrap()
    }

    #[test]
    fn a_workload_token_has_only_the_basics_and_roles() {
        let mut claims = AccessTokenClaims::new(basics(IdentityType::App));
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            json!({
                "iss": "https://id.contoso.com", "sub": USER, "aud": "api",
                "client_id": "client", "azp": "client", "tid": TENANT, "oid": USER,
                "idtyp": "app", "iat": 1000, "nbf": 1000, "exp": 1900, "jti": JTI,
            })
        );
        claims.roles = vec!["Reports.Read".to_string()];
        claims.cnf = Confirmation::of(None, Some("thumb"));
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(value["roles"], json!(["Reports.Read"]));
        assert_eq!(value["cnf"], json!({ "x5t#S256": "thumb" }));
        assert_eq!(
            serde_json::from_value::<AccessTokenClaims>(value).unwrap(),
            claims
        );
    }

    #[test]
    fn a_user_token_carries_the_sign_in() {
        let mut claims = AccessTokenClaims::new(basics(IdentityType::User));
        claims.scp = Some("openid read".to_string());
        claims.sid = Some("sid".to_string());
        claims.auth_time = Some(990);
        claims.acr = Some("urn:tessera:acr:mfa".to_string());
        claims.amr = Some(vec!["pwd".to_string(), "mfa".to_string()]);
        claims.preferred_username = Some("adele@contoso.com".to_string());
        claims.groups = Some(Vec::new());
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            json!({
                "iss": "https://id.contoso.com", "sub": USER, "aud": "api",
                "client_id": "client", "azp": "client", "scp": "openid read",
                "tid": TENANT, "oid": USER, "idtyp": "user", "sid": "sid",
                "auth_time": 990, "acr": "urn:tessera:acr:mfa", "amr": ["pwd", "mfa"],
                "preferred_username": "adele@contoso.com", "iat": 1000, "nbf": 1000,
                "exp": 1900, "jti": JTI, "groups": [],
            })
        );
        claims.acrs = vec!["c1".to_string()];
        claims.fam = Some("family".to_string());
        claims.session_controls = Some(json!({ "persistentBrowser": false }));
        claims.act = Some(Actor {
            sub: "api".to_string(),
        });
        claims.groups = None;
        claims.hasgroups = true;
        claims.cnf = Confirmation::of(Some("jkt"), None);
        let value = serde_json::to_value(&claims).unwrap();
        for (name, expected) in [
            ("acrs", json!(["c1"])),
            ("fam", json!("family")),
            ("session_controls", json!({ "persistentBrowser": false })),
            ("act", json!({ "sub": "api" })),
            ("hasgroups", json!(true)),
            ("cnf", json!({ "jkt": "jkt" })),
        ] {
            assert_eq!(value[name], expected, "{name}");
        }
        assert!(value.get("groups").is_none());
        assert_eq!(
            serde_json::from_value::<AccessTokenClaims>(value).unwrap(),
            claims
        );
    }

    #[test]
    fn an_id_token_has_the_released_profile() {
        let mut claims = IdTokenClaims {
            iss: "https://id.contoso.com".to_string(),
            sub: USER,
            aud: "client".to_string(),
            azp: "client".to_string(),
            iat: 1000,
            exp: 1900,
            auth_time: 990,
            acr: "urn:tessera:acr:sfa".to_string(),
            amr: vec!["pwd".to_string()],
            sid: "sid".to_string(),
            tid: TENANT,
            nonce: None,
            profile: ProfileClaims::default(),
            roles: Vec::new(),
            session_controls: None,
        };
        assert_eq!(
            serde_json::to_value(&claims).unwrap(),
            json!({
                "iss": "https://id.contoso.com", "sub": USER, "aud": "client",
                "azp": "client", "iat": 1000, "exp": 1900, "auth_time": 990,
                "acr": "urn:tessera:acr:sfa", "amr": ["pwd"], "sid": "sid", "tid": TENANT,
            })
        );
        claims.nonce = Some("n".to_string());
        claims.profile = ProfileClaims::released(&user(), &["profile".to_string()], &[]);
        claims.roles = vec!["Admin".to_string()];
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(value["nonce"], "n");
        assert_eq!(value["name"], "Adele Vance");
        assert_eq!(value["preferred_username"], "adele@contoso.com");
        assert_eq!(value["given_name"], "Adele");
        assert!(value.get("family_name").is_none());
        assert!(value.get("email").is_none());
        assert_eq!(value["roles"], json!(["Admin"]));
        assert_eq!(
            serde_json::from_value::<IdTokenClaims>(value).unwrap(),
            claims
        );
    }

    #[test]
    fn profile_claims_follow_the_scopes() {
        let user = user();
        let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ProfileClaims::released(&user, &scopes(&["openid"]), &[]),
            ProfileClaims::default()
        );
        let email = ProfileClaims::released(&user, &scopes(&["openid", "email"]), &[]);
        assert_eq!(email.email.as_deref(), Some("adele@contoso.com"));
        assert_eq!(email.name, None);
        // A claim asked for one by one needs the scope it belongs to.
        let asked = scopes(&["name", "email"]);
        let without = ProfileClaims::released(&user, &scopes(&["openid"]), &asked);
        assert_eq!(without, ProfileClaims::default());
        let with = ProfileClaims::released(&user, &scopes(&["openid", "email"]), &asked);
        assert_eq!(with.email.as_deref(), Some("adele@contoso.com"));
        assert_eq!(with.name, None);
        let info = UserInfo {
            sub: USER,
            profile: with,
        };
        assert_eq!(
            serde_json::to_value(info).unwrap(),
            json!({ "sub": USER, "email": "adele@contoso.com" })
        );
    }

    #[test]
    fn audiences_and_lifetimes() {
        assert!(audience_matches(Some(&json!("a")), |a| a == "a"));
        assert!(audience_matches(Some(&json!(["b", "a"])), |a| a == "a"));
        assert!(!audience_matches(Some(&json!(1)), |_| true));
        assert!(!audience_matches(None, |_| true));
        assert_eq!(check_lifetime(&json!({ "exp": 200 }), 100, 60), Ok(200));
        assert_eq!(
            check_lifetime(&json!({}), 100, 60),
            Err(Lifetime::MissingExp)
        );
        assert_eq!(
            check_lifetime(&json!({ "exp": 40 }), 100, 60),
            Err(Lifetime::Expired)
        );
        assert_eq!(
            check_lifetime(&json!({ "exp": 200, "iat": 500 }), 100, 60),
            Err(Lifetime::NotYetValid)
        );
        assert_eq!(
            check_lifetime(&json!({ "exp": 200, "nbf": "x" }), 100, 60),
            Err(Lifetime::Malformed)
        );
    }
}
