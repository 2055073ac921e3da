//! Subject identifiers: the formats of RFC 9493 (`email`, `iss_sub`,
//! `opaque`, `account`, `phone_number`, `uri`, `did`, `aliases`), SSF's
//! additions (`jwt_id`, `saml_assertion_id`) and SSF's `complex` subject,
//! whose members (`user`, `device`, `session`, `application`, `tenant`,
//! `org_unit`, `group`) are simple identifiers that together name one
//! principal.
//!
//! Parsing is bounded (lengths, members, aliases) because a subject comes
//! from a receiver's request or a transmitter's token. Some transmitters say
//! `subject_type` for `format`; that is taken too.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::SsfError;

/// Longest value of one field.
pub const MAX_FIELD: usize = 512;
/// Most identifiers in an `aliases` subject, or members in a complex one.
pub const MAX_MEMBERS: usize = 8;

/// The members a complex subject may have that Tessera knows.
pub const COMPLEX_MEMBERS: [&str; 7] = [
    "user",
    "device",
    "session",
    "application",
    "tenant",
    "org_unit",
    "group",
];

/// A subject identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectId {
    Email(String),
    IssSub {
        iss: String,
        sub: String,
    },
    Opaque(String),
    Account(String),
    PhoneNumber(String),
    Uri(String),
    Did(String),
    JwtId {
        iss: String,
        jti: String,
    },
    SamlAssertionId {
        issuer: String,
        assertion_id: String,
    },
    /// Other identifiers of one subject (none of them `aliases`).
    Aliases(Vec<SubjectId>),
    /// Members by name; each a simple identifier.
    Complex(BTreeMap<String, SubjectId>),
}

fn field(object: &Map<String, Value>, name: &str) -> Result<String, SsfError> {
    let value = object
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| SsfError::invalid(format!("the subject needs a string `{name}`")))?;
    if value.is_empty() || value.len() > MAX_FIELD || value.chars().any(char::is_control) {
        return Err(SsfError::invalid(format!(
            "the subject's `{name}` must be 1 to {MAX_FIELD} characters, none a control character"
        )));
    }
    Ok(value.to_string())
}

impl SubjectId {
    /// The identifier `value` holds.
    pub fn parse(value: &Value) -> Result<SubjectId, SsfError> {
        Self::parse_at(value, 0)
    }

    fn parse_at(value: &Value, depth: u8) -> Result<SubjectId, SsfError> {
        let object = value
            .as_object()
            .ok_or_else(|| SsfError::invalid("a subject is a JSON object"))?;
        let format = object
            .get("format")
            .or_else(|| object.get("subject_type"))
            .and_then(Value::as_str)
            .ok_or_else(|| SsfError::invalid("the subject has no `format`"))?;
        Ok(match format {
            "email" => SubjectId::Email(field(object, "email")?),
            "iss_sub" => SubjectId::IssSub {
                iss: field(object, "iss")?,
                sub: field(object, "sub")?,
            },
            "opaque" => SubjectId::Opaque(field(object, "id")?),
            "account" => SubjectId::Account(field(object, "uri")?),
            "phone_number" | "phone" => SubjectId::PhoneNumber(field(object, "phone_number")?),
            "uri" => SubjectId::Uri(field(object, "uri")?),
            "did" => SubjectId::Did(field(object, "url")?),
            "jwt_id" => SubjectId::JwtId {
                iss: field(object, "iss")?,
                jti: field(object, "jti")?,
            },
            "saml_assertion_id" => SubjectId::SamlAssertionId {
                issuer: field(object, "issuer")?,
                assertion_id: field(object, "assertion_id")?,
            },
            "aliases" if depth == 0 => {
                let list = object
                    .get("identifiers")
                    .and_then(Value::as_array)
                    .ok_or_else(|| SsfError::invalid("an `aliases` subject needs `identifiers`"))?;
                if list.is_empty() || list.len() > MAX_MEMBERS {
                    return Err(SsfError::invalid(format!(
                        "an `aliases` subject holds 1 to {MAX_MEMBERS} identifiers"
                    )));
                }
                let mut identifiers = Vec::with_capacity(list.len());
                for item in list {
                    match Self::parse_at(item, depth + 1)? {
                        SubjectId::Aliases(_) | SubjectId::Complex(_) => {
                            return Err(SsfError::invalid(
                                "an `aliases` subject holds simple identifiers only",
                            ));
                        }
                        simple => identifiers.push(simple),
                    }
                }
                SubjectId::Aliases(identifiers)
            }
            "complex" if depth == 0 => {
                let mut members = BTreeMap::new();
                for (name, member) in object {
                    if name == "format" || name == "subject_type" {
                        continue;
                    }
                    // Members this build does not know are passed over (SSF
                    // lets a transmitter add its own).
                    if !member.is_object() {
                        continue;
                    }
                    if members.len() == MAX_MEMBERS {
                        return Err(SsfError::invalid(format!(
                            "a complex subject has at most {MAX_MEMBERS} members"
                        )));
                    }
                    match Self::parse_at(member, depth + 1)? {
                        SubjectId::Aliases(_) | SubjectId::Complex(_) => {
                            return Err(SsfError::invalid(format!(
                                "the complex subject's `{name}` must be a simple identifier"
                            )));
                        }
                        simple => {
                            members.insert(name.clone(), simple);
                        }
                    }
                }
                if members.is_empty() {
                    return Err(SsfError::invalid("a complex subject needs a member"));
                }
                SubjectId::Complex(members)
            }
            other => {
                return Err(SsfError::invalid(format!(
                    "subject format `{}` is not supported",
                    other.chars().take(40).collect::<String>()
                )));
            }
        })
    }

    /// The identifier as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            SubjectId::Email(email) => json!({ "format": "email", "email": email }),
            SubjectId::IssSub { iss, sub } => {
                json!({ "format": "iss_sub", "iss": iss, "sub": sub })
            }
            SubjectId::Opaque(id) => json!({ "format": "opaque", "id": id }),
            SubjectId::Account(uri) => json!({ "format": "account", "uri": uri }),
            SubjectId::PhoneNumber(number) => {
                json!({ "format": "phone_number", "phone_number": number })
            }
            SubjectId::Uri(uri) => json!({ "format": "uri", "uri": uri }),
            SubjectId::Did(url) => json!({ "format": "did", "url": url }),
            SubjectId::JwtId { iss, jti } => json!({ "format": "jwt_id", "iss": iss, "jti": jti }),
            SubjectId::SamlAssertionId {
                issuer,
                assertion_id,
            } => {
                json!({ "format": "saml_assertion_id", "issuer": issuer, "assertion_id": assertion_id })
            }
            SubjectId::Aliases(list) => json!({
                "format": "aliases",
                "identifiers": list.iter().map(SubjectId::to_json).collect::<Vec<_>>(),
            }),
            SubjectId::Complex(members) => {
                let mut object = Map::new();
                object.insert("format".into(), Value::from("complex"));
                for (name, member) in members {
                    object.insert(name.clone(), member.to_json());
                }
                Value::Object(object)
            }
        }
    }

    /// Whether two identifiers name the same subject: simple ones when
    /// equal (an email's domain and a name's case aside); complex ones when
    /// every member either is missing on one side or matches; an alias list
    /// when any of its identifiers matches.
    pub fn matches(&self, other: &SubjectId) -> bool {
        match (self, other) {
            (SubjectId::Aliases(list), _) => list.iter().any(|one| one.matches(other)),
            (_, SubjectId::Aliases(list)) => list.iter().any(|one| self.matches(one)),
            (SubjectId::Complex(mine), SubjectId::Complex(theirs)) => {
                let mut shared = false;
                for (name, member) in mine {
                    if let Some(their) = theirs.get(name) {
                        if !member.matches(their) {
                            return false;
                        }
                        shared = true;
                    }
                }
                shared
            }
            // A simple identifier matches a complex subject's member of the
            // same kind (a user named by email and the complex subject whose
            // user it is).
            (SubjectId::Complex(members), simple) | (simple, SubjectId::Complex(members)) => {
                members.values().any(|member| member.matches(simple))
            }
            (SubjectId::Email(a), SubjectId::Email(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }

    /// The complex subject's member `name`, or the identifier itself when
    /// it is simple and `name` is `user`.
    pub fn member(&self, name: &str) -> Option<&SubjectId> {
        match self {
            SubjectId::Complex(members) => members.get(name),
            SubjectId::Aliases(_) => None,
            simple => (name == "user").then_some(simple),
        }
    }
}

/// A user of `issuer`, as Tessera names one: `iss_sub` with the user's object
/// id (the `sub` of its ID tokens).
pub fn user(issuer: &str, user: uuid::Uuid) -> SubjectId {
    SubjectId::IssSub {
        iss: issuer.to_string(),
        sub: user.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for value in [
            json!({"format": "email", "email": "adele@contoso.com"}),
            json!({"format": "iss_sub", "iss": "https://id.contoso.com", "sub": "42"}),
            json!({"format": "opaque", "id": "stream-1"}),
            json!({"format": "account", "uri": "acct:adele@contoso.com"}),
            json!({"format": "phone_number", "phone_number": "+12065550100"}),
            json!({"format": "uri", "uri": "https://contoso.com/adele"}),
            json!({"format": "did", "url": "did:example:123"}),
            json!({"format": "jwt_id", "iss": "https://id", "jti": "j"}),
            json!({"format": "saml_assertion_id", "issuer": "https://id", "assertion_id": "_a"}),
            json!({"format": "aliases", "identifiers": [
                {"format": "email", "email": "a@b.c"}, {"format": "opaque", "id": "x"}]}),
            json!({"format": "complex",
                   "user": {"format": "email", "email": "a@b.c"},
                   "device": {"format": "opaque", "id": "d-1"}}),
        ] {
            let parsed = SubjectId::parse(&value).unwrap();
            assert_eq!(parsed.to_json(), value);
        }
    }

    #[test]
    fn bad_subjects_are_refused() {
        for value in [
            json!("adele@contoso.com"),
            json!({"email": "a@b.c"}),
            json!({"format": "email"}),
            json!({"format": "email", "email": ""}),
            json!({"format": "email", "email": "a\u{0}b"}),
            json!({"format": "email", "email": "x".repeat(MAX_FIELD + 1)}),
            json!({"format": "frobnicate", "id": "1"}),
            json!({"format": "complex"}),
            json!({"format": "complex", "user": {"format": "complex",
                    "user": {"format": "opaque", "id": "1"}}}),
            json!({"format": "aliases", "identifiers": []}),
            json!({"format": "aliases", "identifiers": [{"format": "aliases",
                    "identifiers": [{"format": "opaque", "id": "1"}]}]}),
        ] {
            assert!(SubjectId::parse(&value).is_err(), "{value}");
        }
    }

    #[test]
    fn google_says_subject_type() {
        let parsed =
            SubjectId::parse(&json!({"subject_type": "iss_sub", "iss": "i", "sub": "s"})).unwrap();
        assert_eq!(
            parsed,
            SubjectId::IssSub {
                iss: "i".into(),
                sub: "s".into()
            }
        );
    }

    #[test]
    fn complex_subjects_match_member_by_member() {
        let parse = |v: Value| SubjectId::parse(&v).unwrap();
        let adele = json!({"format": "email", "email": "Adele@Contoso.com"});
        let whole = parse(json!({"format": "complex", "user": adele,
            "device": {"format": "opaque", "id": "d-1"}}));
        let user_only = parse(json!({"format": "complex",
            "user": {"format": "email", "email": "adele@contoso.com"}}));
        let other_device = parse(json!({"format": "complex", "user": adele,
            "device": {"format": "opaque", "id": "d-2"}}));
        let session_only = parse(json!({"format": "complex",
            "session": {"format": "opaque", "id": "s"}}));
        assert!(whole.matches(&user_only));
        assert!(user_only.matches(&whole));
        assert!(!whole.matches(&other_device));
        assert!(!whole.matches(&session_only), "no member in common");
        assert!(whole.matches(&parse(adele.clone())));
        let aliases = parse(json!({"format": "aliases", "identifiers": [
            {"format": "opaque", "id": "zz"}, adele]}));
        assert!(aliases.matches(&whole));
    }
}
