//! The schemas Tessera serves (RFC 7643 §4, §8.7.1): User, the enterprise User
//! extension and Group, with every attribute's characteristics, and the discovery
//! documents built from them. Attribute names are matched case-insensitively
//! (RFC 7643 §2.1) and answered as the schema spells them.

use serde_json::{Value, json};

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
pub const SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Decimal => "decimal",
            Type::Integer => "integer",
            Type::DateTime => "dateTime",
            Type::Binary => "binary",
            Type::Reference => "reference",
            Type::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: Type,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
}

const STRING: Attribute = Attribute {
    name: "",
    kind: Type::String,
    multi_valued: false,
    description: "",
    required: false,
    case_exact: false,
    mutability: Mutability::ReadWrite,
    returned: Returned::Default,
    uniqueness: Uniqueness::None,
    canonical_values: &[],
    reference_types: &[],
    sub_attributes: &[],
};

const fn string(name: &'static str, description: &'static str) -> Attribute {
    Attribute {
        name,
        description,
        ..STRING
    }
}

const fn boolean(name: &'static str, description: &'static str) -> Attribute {
    Attribute {
        name,
        description,
        kind: Type::Boolean,
        ..STRING
    }
}

const fn complex(
    name: &'static str,
    description: &'static str,
    multi_valued: bool,
    sub_attributes: &'static [Attribute],
) -> Attribute {
    Attribute {
        name,
        description,
        kind: Type::Complex,
        multi_valued,
        sub_attributes,
        ..STRING
    }
}

const fn typed(name: &'static str, canonical_values: &'static [&'static str]) -> Attribute {
    Attribute {
        name,
        description: "A label indicating the attribute's function.",
        canonical_values,
        ..STRING
    }
}

const PRIMARY: Attribute = boolean(
    "primary",
    "Whether this is the primary or preferred value; at most one is.",
);

const DISPLAY: Attribute = Attribute {
    mutability: Mutability::ReadOnly,
    ..string(
        "display",
        "A human-readable name, primarily used for display purposes.",
    )
};

const fn multi_string(
    value_description: &'static str,
    kinds: &'static [&'static str],
) -> [Attribute; 4] {
    [
        string("value", value_description),
        DISPLAY,
        typed("type", kinds),
        PRIMARY,
    ]
}

const EMAIL_SUBS: [Attribute; 4] =
    multi_string("Email address for the user.", &["work", "home", "other"]);
const PHONE_SUBS: [Attribute; 4] = multi_string(
    "Phone number of the user.",
    &["work", "home", "mobile", "fax", "pager", "other"],
);
const IM_SUBS: [Attribute; 4] = multi_string(
    "Instant messaging address for the user.",
    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
);
const PHOTO_SUBS: [Attribute; 4] = [
    Attribute {
        kind: Type::Reference,
        case_exact: true,
        reference_types: &["external"],
        ..string("value", "URL of a photo of the user.")
    },
    DISPLAY,
    typed("type", &["photo", "thumbnail"]),
    PRIMARY,
];
const ADDRESS_SUBS: [Attribute; 8] = [
    string(
        "formatted",
        "The full mailing address, formatted for display.",
    ),
    string("streetAddress", "The full street address component."),
    string("locality", "The city or locality component."),
    string("region", "The state or region component."),
    string("postalCode", "The zip code or postal code component."),
    string("country", "The country name component."),
    typed("type", &["work", "home", "other"]),
    PRIMARY,
];
const GROUP_REF_SUBS: [Attribute; 4] = [
    Attribute {
        mutability: Mutability::ReadOnly,
        ..string("value", "The identifier of the user's group.")
    },
    Attribute {
        kind: Type::Reference,
        mutability: Mutability::ReadOnly,
        reference_types: &["Group"],
        ..string("$ref", "The URI of the corresponding Group resource.")
    },
    DISPLAY,
    Attribute {
        mutability: Mutability::ReadOnly,
        ..typed("type", &["direct", "indirect"])
    },
];
const ENTITLEMENT_SUBS: [Attribute; 4] = multi_string("The value of an entitlement.", &[]);
const ROLE_SUBS: [Attribute; 4] = multi_string("The value of a role.", &[]);
const CERTIFICATE_SUBS: [Attribute; 4] = [
    Attribute {
        kind: Type::Binary,
        case_exact: true,
        ..string("value", "The value of an X.509 certificate (base64 DER).")
    },
    DISPLAY,
    typed("type", &[]),
    PRIMARY,
];
const NAME_SUBS: [Attribute; 6] = [
    string("formatted", "The full name, formatted for display."),
    string("familyName", "The family name of the user."),
    string("givenName", "The given name of the user."),
    string("middleName", "The middle name(s) of the user."),
    string("honorificPrefix", "The honorific prefix(es) of the user."),
    string("honorificSuffix", "The honorific suffix(es) of the user."),
];

pub const USER_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        required: true,
        uniqueness: Uniqueness::Server,
        ..string(
            "userName",
            "Unique identifier for the user, used to authenticate; case-insensitive.",
        )
    },
    complex(
        "name",
        "The components of the user's real name.",
        false,
        &NAME_SUBS,
    ),
    string("displayName", "The name of the user, suitable for display."),
    string("nickName", "The casual way to address the user."),
    Attribute {
        kind: Type::Reference,
        reference_types: &["external"],
        ..string("profileUrl", "A URI of the user's online profile.")
    },
    string("title", "The user's title, such as Vice President."),
    string(
        "userType",
        "The relationship between the organization and the user.",
    ),
    string(
        "preferredLanguage",
        "The user's preferred written or spoken language.",
    ),
    string(
        "locale",
        "The user's default location, for localizing items.",
    ),
    string(
        "timezone",
        "The user's time zone in the Olson database format.",
    ),
    boolean("active", "The user's administrative status."),
    complex("emails", "Email addresses for the user.", true, &EMAIL_SUBS),
    complex(
        "phoneNumbers",
        "Phone numbers for the user.",
        true,
        &PHONE_SUBS,
    ),
    complex(
        "ims",
        "Instant messaging addresses for the user.",
        true,
        &IM_SUBS,
    ),
    complex("photos", "URLs of photos of the user.", true, &PHOTO_SUBS),
    complex(
        "addresses",
        "A physical mailing address for the user.",
        true,
        &ADDRESS_SUBS,
    ),
    Attribute {
        mutability: Mutability::ReadOnly,
        ..complex(
            "groups",
            "The groups the user belongs to.",
            true,
            &GROUP_REF_SUBS,
        )
    },
    complex(
        "entitlements",
        "Entitlements of the user.",
        true,
        &ENTITLEMENT_SUBS,
    ),
    complex("roles", "Roles of the user.", true, &ROLE_SUBS),
    complex(
        "x509Certificates",
        "X.509 certificates issued to the user.",
        true,
        &CERTIFICATE_SUBS,
    ),
];

const MANAGER_SUBS: [Attribute; 3] = [
    string(
        "value",
        "The id of the SCIM resource representing the user's manager.",
    ),
    Attribute {
        kind: Type::Reference,
        reference_types: &["User"],
        ..string(
            "$ref",
            "The URI of the SCIM resource representing the user's manager.",
        )
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        ..string("displayName", "The displayName of the user's manager.")
    },
];

pub const ENTERPRISE_ATTRIBUTES: &[Attribute] = &[
    string(
        "employeeNumber",
        "An identifier for the user, assigned by the organization.",
    ),
    string("costCenter", "The name of a cost center."),
    string("organization", "The name of an organization."),
    string("division", "The name of a division."),
    string("department", "The name of a department."),
    complex("manager", "The user's manager.", false, &MANAGER_SUBS),
];

const MEMBER_SUBS: [Attribute; 4] = [
    Attribute {
        mutability: Mutability::Immutable,
        ..string("value", "The identifier of the member of this group.")
    },
    Attribute {
        kind: Type::Reference,
        mutability: Mutability::Immutable,
        reference_types: &["User", "Group"],
        ..string("$ref", "The URI of the member resource.")
    },
    Attribute {
        mutability: Mutability::Immutable,
        ..typed("type", &["User", "Group"])
    },
    DISPLAY,
];

pub const GROUP_ATTRIBUTES: &[Attribute] = &[
    Attribute {
        required: true,
        ..string("displayName", "A human-readable name for the group.")
    },
    complex(
        "members",
        "A list of members of the group.",
        true,
        &MEMBER_SUBS,
    ),
];

/// The common attributes every resource has (RFC 7643 §3.1).
pub const ID: Attribute = Attribute {
    mutability: Mutability::ReadOnly,
    returned: Returned::Always,
    case_exact: true,
    uniqueness: Uniqueness::Server,
    ..string(
        "id",
        "The resource's identifier, issued by the service provider.",
    )
};
pub const EXTERNAL_ID: Attribute = Attribute {
    case_exact: true,
    ..string(
        "externalId",
        "An identifier for the resource as the provisioning client defines it.",
    )
};
const META_SUBS: [Attribute; 5] = [
    Attribute {
        mutability: Mutability::ReadOnly,
        case_exact: true,
        ..string("resourceType", "The name of the resource type.")
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        kind: Type::DateTime,
        ..string("created", "When the resource was added.")
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        kind: Type::DateTime,
        ..string("lastModified", "When the resource last changed.")
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        kind: Type::Reference,
        case_exact: true,
        ..string("location", "The URI of the resource.")
    },
    Attribute {
        mutability: Mutability::ReadOnly,
        case_exact: true,
        ..string("version", "The version (entity tag) of the resource.")
    },
];
pub const META: Attribute = Attribute {
    mutability: Mutability::ReadOnly,
    ..complex("meta", "Resource metadata.", false, &META_SUBS)
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

pub const USER_SCHEMA: Schema = Schema {
    id: USER,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRIBUTES,
};
pub const ENTERPRISE_USER_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_ATTRIBUTES,
};
pub const GROUP_SCHEMA: Schema = Schema {
    id: GROUP,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};

/// A resource type: its core schema and its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    pub id: &'static str,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: Schema,
    pub extensions: &'static [Schema],
}

pub const USER_TYPE: ResourceType = ResourceType {
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: USER_SCHEMA,
    extensions: &[ENTERPRISE_USER_SCHEMA],
};
pub const GROUP_TYPE: ResourceType = ResourceType {
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: GROUP_SCHEMA,
    extensions: &[],
};
pub const RESOURCE_TYPES: [ResourceType; 2] = [USER_TYPE, GROUP_TYPE];
pub const SCHEMAS: [Schema; 3] = [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA];

/// Where a path leads, resolved against a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// `None` for the core schema and the common attributes; the extension's URN
    /// otherwise (its attributes live under that key of the resource).
    pub extension: Option<&'static str>,
    pub attribute: &'static Attribute,
    pub sub: Option<&'static Attribute>,
}

impl Resolved {
    /// The attribute the path's value has: the sub-attribute if named.
    pub fn leaf(&self) -> &'static Attribute {
        self.sub.unwrap_or(self.attribute)
    }

    /// The canonical path text (`name.givenName`, `urn:...:User:manager.value`).
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(urn) = self.extension {
            text.push_str(urn);
            text.push(':');
        }
        text.push_str(self.attribute.name);
        if let Some(sub) = self.sub {
            text.push('.');
            text.push_str(sub.name);
        }
        text
    }
}

fn find(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

fn common(name: &str) -> Option<&'static Attribute> {
    [&ID, &EXTERNAL_ID, &META]
        .into_iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

impl ResourceType {
    /// The schema a URN names (core or an extension), matched case-insensitively.
    pub fn schema_of(&self, urn: &str) -> Option<Schema> {
        std::iter::once(self.schema)
            .chain(self.extensions.iter().copied())
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The extension a bare URN names (a PATCH path or a value key may be one).
    pub fn extension_named(&self, text: &str) -> Option<&'static str> {
        self.extensions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(text))
            .map(|s| s.id)
    }

    /// Resolves an attribute path: a qualified one in its schema; an unqualified one
    /// among the common attributes, the core schema's, then (as clients write
    /// `employeeNumber` bare) the extensions' when exactly one has it.
    pub fn resolve(&self, path: &AttrPath) -> ScimResult<Resolved> {
        let unknown = || {
            ScimError::invalid_path(format!(
                "{} is not an attribute of {}",
                path.text(),
                self.name
            ))
        };
        let (extension, attribute) = match &path.urn {
            Some(urn) => {
                let schema = self.schema_of(urn).ok_or_else(|| {
                    ScimError::invalid_path(format!("{urn} is not a schema of {}", self.name))
                })?;
                let attribute = find(schema.attributes, &path.name).ok_or_else(unknown)?;
                let extension = (schema.id != self.schema.id).then_some(schema.id);
                (extension, attribute)
            }
            None => {
                if let Some(attribute) =
                    common(&path.name).or_else(|| find(self.schema.attributes, &path.name))
                {
                    (None, attribute)
                } else {
                    let mut found = self
                        .extensions
                        .iter()
                        .filter_map(|s| find(s.attributes, &path.name).map(|a| (s.id, a)));
                    match (found.next(), found.next()) {
                        (Some((urn, attribute)), None) => (Some(urn), attribute),
                        _ => return Err(unknown()),
                    }
                }
            }
        };
        let sub = match &path.sub {
            None => None,
            Some(name) => Some(find(attribute.sub_attributes, name).ok_or_else(unknown)?),
        };
        Ok(Resolved {
            extension,
            attribute,
            sub,
        })
    }

    /// A sub-attribute of a multi-valued complex attribute, as a value path's
    /// filter names it relative to the elements.
    pub fn resolve_sub(
        &self,
        parent: &Resolved,
        name: &AttrPath,
    ) -> ScimResult<&'static Attribute> {
        if name.urn.is_some() || name.sub.is_some() || parent.attribute.kind != Type::Complex {
            return Err(ScimError::invalid_path(format!(
                "{} is not a sub-attribute of {}",
                name.text(),
                parent.attribute.name
            )));
        }
        find(parent.attribute.sub_attributes, &name.name).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "{} is not a sub-attribute of {}",
                name.name, parent.attribute.name
            ))
        })
    }

    /// The ResourceType document.
    pub fn document(&self, base: &str) -> Value {
        json!({
            "schemas": [RESOURCE_TYPE],
            "id": self.id,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": self.extensions.iter()
                .map(|s| json!({ "schema": s.id, "required": false }))
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "ResourceType",
                "location": format!("{base}/ResourceTypes/{}", self.id),
            },
        })
    }
}

/// The resource type served at an endpoint name (`Users`, `Groups`).
pub fn resource_type(endpoint: &str) -> Option<ResourceType> {
    RESOURCE_TYPES
        .into_iter()
        .find(|t| t.endpoint[1..].eq_ignore_ascii_case(endpoint))
}

fn mutability(m: Mutability) -> &'static str {
    match m {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    }
}

fn returned(r: Returned) -> &'static str {
    match r {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    }
}

fn uniqueness(u: Uniqueness) -> &'static str {
    match u {
        Uniqueness::None => "none",
        Uniqueness::Server => "server",
        Uniqueness::Global => "global",
    }
}

fn attribute_document(a: &Attribute) -> Value {
    let mut doc = json!({
        "name": a.name,
        "type": a.kind.as_str(),
        "multiValued": a.multi_valued,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": mutability(a.mutability),
        "returned": returned(a.returned),
        "uniqueness": uniqueness(a.uniqueness),
    });
    if !a.canonical_values.is_empty() {
        doc["canonicalValues"] = json!(a.canonical_values);
    }
    if !a.reference_types.is_empty() {
        doc["referenceTypes"] = json!(a.reference_types);
    }
    if a.kind == Type::Complex {
        doc["subAttributes"] =
            Value::Array(a.sub_attributes.iter().map(attribute_document).collect());
    }
    doc
}

impl Schema {
    /// The Schema document (RFC 7643 §7).
    pub fn document(&self, base: &str) -> Value {
        json!({
            "schemas": [SCHEMA],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(attribute_document).collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": format!("{base}/Schemas/{}", self.id),
            },
        })
    }
}

/// The schema a URN names.
pub fn schema(urn: &str) -> Option<Schema> {
    SCHEMAS.into_iter().find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// What the service provider supports, for its configuration document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub max_results: u32,
    pub bulk_max_operations: u32,
    pub bulk_max_payload: u32,
}

/// The ServiceProviderConfig document (RFC 7643 §5).
pub fn service_provider_config(base: &str, caps: Capabilities, documentation: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "documentationUri": documentation,
        "patch": { "supported": true },
        "bulk": {
            "supported": true,
            "maxOperations": caps.bulk_max_operations,
            "maxPayloadSize": caps.bulk_max_payload,
        },
        "filter": { "supported": true, "maxResults": caps.max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": caps.max_results.min(100),
            "maxPageSize": caps.max_results,
            "cursorTimeout": 3600,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A provisioning token, or an access token from client credentials \
                            for an application holding the provisioning app role.",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_case_insensitively_to_the_schema_spelling() {
        let r = USER_TYPE
            .resolve(&AttrPath::parse("NAME.GIVENNAME").unwrap())
            .unwrap();
        assert_eq!(r.text(), "name.givenName");
        let r = USER_TYPE
            .resolve(&AttrPath::parse("employeenumber").unwrap())
            .unwrap();
        assert_eq!(r.text(), format!("{ENTERPRISE_USER}:employeeNumber"));
        let r = USER_TYPE
            .resolve(
                &AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap(),
            )
            .unwrap();
        assert_eq!(r.text(), "userName");
        let r = USER_TYPE
            .resolve(&AttrPath::parse("meta.lastModified").unwrap())
            .unwrap();
        assert_eq!(r.leaf().kind, Type::DateTime);
        assert!(
            USER_TYPE
                .resolve(&AttrPath::parse("nosuch").unwrap())
                .is_err()
        );
        assert!(
            USER_TYPE
                .resolve(&AttrPath::parse("name.nosuch").unwrap())
                .is_err()
        );
        assert!(
            GROUP_TYPE
                .resolve(&AttrPath::parse("userName").unwrap())
                .is_err()
        );
        assert!(
            USER_TYPE
                .resolve(&AttrPath::parse(&format!("{GROUP}:displayName")).unwrap())
                .is_err()
        );
    }

    #[test]
    fn documents_name_every_attribute() {
        let doc = USER_SCHEMA.document("https://x/scim/v2");
        let names: Vec<&str> = doc["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"userName") && names.contains(&"x509Certificates"));
        assert_eq!(resource_type("users"), Some(USER_TYPE));
        assert_eq!(resource_type("Groups"), Some(GROUP_TYPE));
        assert_eq!(resource_type("Devices"), None);
    }
}
