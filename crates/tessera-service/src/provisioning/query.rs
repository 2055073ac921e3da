//! SCIM filters and sort orders compiled to store searches.
//!
//! Where each SCIM attribute is read: the attributes the mapping carries into the
//! directory (`tessera_scim::graph`) from the user's or group's own record, where
//! they are true whoever changed them; `userName` and `emails` from the client's
//! source for provisioned users and from the directory for the others; every other
//! attribute from the source; `groups` and `members` from the membership links;
//! `meta.created` and `meta.lastModified` from the record's times. The semantics
//! are `tessera_scim::eval`'s, which the tests compare with.

use tessera_core::Timestamp;
use tessera_scim::ScimError;
use tessera_scim::eval::leaf_for_compare;
use tessera_scim::filter::{CompareOp, Filter, Literal};
use tessera_scim::schema::{
    Attribute, ENTERPRISE_USER, GROUP_TYPE, Resolved, ResourceType, Type, USER_TYPE,
};
use tessera_store::{Field, Order, Predicate, Rel, Scalar, Step, Test};
use uuid::Uuid;

use super::mapping::UserMapper;

type Result<T> = std::result::Result<T, ScimError>;

fn keys(path: &[&str]) -> Vec<Step> {
    path.iter().map(|k| Step::Key((*k).to_string())).collect()
}

fn never() -> Predicate {
    Predicate::Or(vec![])
}

fn has_source() -> Predicate {
    Predicate::Test {
        field: Field::CompanionId,
        test: Test::Present,
        fold_case: false,
    }
}

/// Where an attribute's values are read.
enum Place {
    /// A column (id, times).
    Column(Field),
    /// The directory record's data at this path.
    Directory(Vec<Step>),
    /// The source's data at this path (a list when the attribute is multi-valued).
    Source(Vec<Step>),
    /// An attribute the tenant's mapping carries otherwise than the default: the
    /// source's (first path) for provisioned users, the directory's (second) for
    /// the others, as each reads.
    Either(Vec<Step>, Vec<Step>),
    UserName,
    Emails,
    /// `meta.lastModified`: the later of the record's and its source's.
    LastModified,
    /// Membership links: a user's groups (`LinkFrom`), a group's members (`LinkTo`).
    Links(bool),
}

fn unsupported(what: &str) -> ScimError {
    ScimError::invalid_filter(format!("{what} cannot be filtered or sorted by"))
}

fn place(rt: &ResourceType, r: &Resolved, mapper: &UserMapper) -> Result<Place> {
    let name = r.attribute.name;
    let sub = r.sub.map(|s| s.name);
    match (name, sub) {
        ("id", _) => return Ok(Place::Column(Field::Id)),
        ("meta", Some("created")) => return Ok(Place::Column(Field::Created)),
        ("meta", Some("lastModified")) => return Ok(Place::LastModified),
        ("meta", _) => return Err(unsupported(&r.text())),
        _ => {}
    }
    if rt.id == GROUP_TYPE.id {
        return Ok(match (name, sub) {
            ("displayName", _) => Place::Directory(keys(&["displayName"])),
            ("members", None | Some("value")) => Place::Links(true),
            ("members", _) => return Err(unsupported(&r.text())),
            _ => Place::Source(source_path(r)),
        });
    }
    // An attribute the tenant's mapping carries otherwise than the default is
    // read as the client sent it (from the directory for users without a source).
    let directory = |path: &[&str]| {
        Ok(if mapper.is_default(path[0]) {
            Place::Directory(keys(path))
        } else {
            Place::Either(source_path(r), keys(path))
        })
    };
    match (r.extension, name, sub) {
        (None, "userName", _) if mapper.is_default("userPrincipalName") => Ok(Place::UserName),
        (None, "userName", _) => Ok(Place::Either(source_path(r), keys(&["userPrincipalName"]))),
        (None, "displayName", _) => directory(&["displayName"]),
        (None, "name", Some("givenName")) => directory(&["givenName"]),
        (None, "name", Some("familyName")) => directory(&["surname"]),
        (None, "active", _) => directory(&["accountEnabled"]),
        (None, "title", _) => directory(&["jobTitle"]),
        (None, "userType", _) => directory(&["employeeType"]),
        (None, "emails", _) => Ok(Place::Emails),
        (None, "groups", None | Some("value")) => Ok(Place::Links(false)),
        (None, "groups", _) => Err(unsupported(&r.text())),
        (Some(ENTERPRISE_USER), "employeeNumber", _) => directory(&["employeeId"]),
        (Some(ENTERPRISE_USER), "department", _) => directory(&["department"]),
        (Some(ENTERPRISE_USER), "organization", _) => directory(&["companyName"]),
        (Some(ENTERPRISE_USER), "division", _) => directory(&["employeeOrgData", "division"]),
        (Some(ENTERPRISE_USER), "costCenter", _) => directory(&["employeeOrgData", "costCenter"]),
        (Some(ENTERPRISE_USER), "manager", None | Some("value")) => directory(&["managerId"]),
        (Some(ENTERPRISE_USER), "manager", _) => Err(unsupported(&r.text())),
        _ => Ok(Place::Source(source_path(r))),
    }
}

/// The path of an attribute in a source document (up to the attribute; the
/// sub-attribute is added per element for multi-valued ones).
fn source_path(r: &Resolved) -> Vec<Step> {
    let mut path = Vec::new();
    if let Some(urn) = r.extension {
        path.push(Step::Key(urn.to_string()));
    }
    path.push(Step::Key(r.attribute.name.to_string()));
    if !r.attribute.multi_valued
        && let Some(sub) = r.sub
    {
        path.push(Step::Key(sub.name.to_string()));
    }
    path
}

/// A comparison as a store test; `None` for `eq null` / `ne null` (presence).
fn test_of(
    leaf: &Attribute,
    on_column: bool,
    op: CompareOp,
    literal: &Literal,
) -> Result<Option<Test>> {
    let scalar = match literal {
        Literal::Null => return Ok(None),
        Literal::Bool(b) => Scalar::Bool(*b),
        Literal::Number(n) => Scalar::Number(n.as_f64().unwrap_or(f64::NAN)),
        Literal::String(s) if on_column && leaf.kind == Type::DateTime => {
            let time = Timestamp::parse_rfc3339(s)
                .map_err(|_| ScimError::invalid_filter(format!("{s:?} is not a date and time")))?;
            Scalar::Int(time.unix_micros())
        }
        Literal::String(s) => Scalar::Text(s.clone()),
    };
    let text = || match &scalar {
        Scalar::Text(t) => Ok(t.clone()),
        _ => Err(ScimError::invalid_filter(format!(
            "{} needs a string",
            op.as_str()
        ))),
    };
    Ok(Some(match op {
        CompareOp::Eq | CompareOp::Ne => Test::Eq(scalar.clone()),
        CompareOp::Co => Test::Contains(text()?),
        CompareOp::Sw => Test::StartsWith(text()?),
        CompareOp::Ew => Test::EndsWith(text()?),
        CompareOp::Gt => Test::Gt(scalar.clone()),
        CompareOp::Ge => Test::Ge(scalar.clone()),
        CompareOp::Lt => Test::Lt(scalar.clone()),
        CompareOp::Le => Test::Le(scalar.clone()),
    }))
}

/// One comparison (or presence, when `compare` is `None`) on a field.
fn on_field(
    field: Field,
    leaf: &Attribute,
    compare: Option<(CompareOp, &Literal)>,
) -> Result<Predicate> {
    let on_column = matches!(
        field,
        Field::Id | Field::Created | Field::Modified | Field::CompanionModified
    );
    let present = |field: Field| Predicate::Test {
        field,
        test: Test::Present,
        fold_case: false,
    };
    let Some((op, literal)) = compare else {
        return Ok(present(field));
    };
    let Some(test) = test_of(leaf, on_column, op, literal)? else {
        return Ok(match op {
            CompareOp::Eq => Predicate::Not(Box::new(present(field))),
            _ => present(field),
        });
    };
    let predicate = Predicate::Test {
        field,
        test,
        fold_case: !leaf.case_exact,
    };
    Ok(if op == CompareOp::Ne {
        Predicate::Not(Box::new(predicate))
    } else {
        predicate
    })
}

/// What a compilation needs besides the filter.
pub(crate) struct Scope<'a> {
    /// Users (`USER_TYPE`) or groups.
    pub rt: &'a ResourceType,
    /// The tenant's attribute mapping (what reads from the directory, and the
    /// default domain `userName` maps with).
    pub mapper: &'a UserMapper,
    /// Whether the caller may read memberships (filters on `groups` and `members`).
    pub memberships: bool,
}

/// The filter as a store predicate over users or groups.
pub(crate) fn predicate(cx: &Scope<'_>, filter: &Filter) -> Result<Predicate> {
    let rt = cx.rt;
    Ok(match filter {
        Filter::And(a, b) => Predicate::And(vec![predicate(cx, a)?, predicate(cx, b)?]),
        Filter::Or(a, b) => Predicate::Or(vec![predicate(cx, a)?, predicate(cx, b)?]),
        Filter::Not(f) => Predicate::Not(Box::new(predicate(cx, f)?)),
        Filter::Present(path) => attribute_test(cx, &rt.resolve(path)?, None)?,
        Filter::Compare { path, op, value } => {
            attribute_test(cx, &rt.resolve(path)?, Some((*op, value)))?
        }
        Filter::ValuePath { path, filter } => {
            let r = rt.resolve(path)?;
            match place(rt, &r, cx.mapper)? {
                Place::Source(array) => Predicate::AnyElement {
                    array: Field::CompanionData(array),
                    element: Box::new(element_predicate(r.attribute, filter)?),
                },
                Place::Emails => Predicate::Or(vec![
                    Predicate::And(vec![
                        has_source(),
                        Predicate::AnyElement {
                            array: Field::CompanionData(keys(&["emails"])),
                            element: Box::new(element_predicate(r.attribute, filter)?),
                        },
                    ]),
                    Predicate::And(vec![
                        Predicate::Not(Box::new(has_source())),
                        directory_email(filter)?,
                    ]),
                ]),
                Place::Links(members) => {
                    may_filter_memberships(cx)?;
                    links_filter(members, filter)?
                }
                _ => return Err(unsupported(&r.text())),
            }
        }
    })
}

fn may_filter_memberships(cx: &Scope<'_>) -> Result<()> {
    if cx.memberships {
        Ok(())
    } else {
        Err(ScimError::new(
            403,
            None,
            "not allowed: your role assignments do not let you read memberships",
        ))
    }
}

fn attribute_test(
    cx: &Scope<'_>,
    r: &Resolved,
    compare: Option<(CompareOp, &Literal)>,
) -> Result<Predicate> {
    attribute_test_at(cx, r, compare, place(cx.rt, r, cx.mapper)?)
}

fn attribute_test_at(
    cx: &Scope<'_>,
    r: &Resolved,
    compare: Option<(CompareOp, &Literal)>,
    place: Place,
) -> Result<Predicate> {
    let leaf = leaf_for_compare(r.attribute, r.sub);
    match place {
        Place::Column(field) => on_field(field, leaf, compare),
        Place::Either(source, directory) => Ok(Predicate::Or(vec![
            Predicate::And(vec![
                has_source(),
                attribute_test_at(cx, r, compare, Place::Source(source))?,
            ]),
            Predicate::And(vec![
                Predicate::Not(Box::new(has_source())),
                on_field(Field::Data(directory), leaf, compare)?,
            ]),
        ])),
        Place::LastModified => last_modified(leaf, compare),
        Place::Directory(path) => on_field(Field::Data(path), leaf, compare),
        // `pr` of a complex list: some element has a value.
        Place::Source(path) if r.attribute.multi_valued && r.sub.is_none() && compare.is_none() => {
            any_element(Field::CompanionData(path), vec![], leaf, None)
        }
        Place::Source(path) if r.attribute.multi_valued => {
            let sub = if r.attribute.kind == Type::Complex {
                vec![Step::Key(leaf.name.to_string())]
            } else {
                vec![]
            };
            any_element(Field::CompanionData(path), sub, leaf, compare)
        }
        // `externalId eq`: the source's key2, which an index answers.
        Place::Source(_)
            if r.extension.is_none()
                && r.attribute.name == "externalId"
                && matches!(compare, Some((CompareOp::Eq, Literal::String(_)))) =>
        {
            on_field(Field::CompanionKey2, leaf, compare)
        }
        Place::Source(path) => on_field(Field::CompanionData(path), leaf, compare),
        Place::UserName => user_name(cx, leaf, compare),
        Place::Emails if r.sub.is_none() && compare.is_none() => Ok(Predicate::Or(vec![
            Predicate::And(vec![
                has_source(),
                any_element(Field::CompanionData(keys(&["emails"])), vec![], leaf, None)?,
            ]),
            Predicate::And(vec![Predicate::Not(Box::new(has_source())), mail_present()]),
        ])),
        Place::Emails => {
            let from_source = any_element(
                Field::CompanionData(keys(&["emails"])),
                vec![Step::Key(leaf.name.to_string())],
                leaf,
                compare,
            )?;
            let sub = r.sub.map_or("value", |s| s.name);
            let from_directory = directory_email_attribute(sub, compare)?;
            Ok(Predicate::Or(vec![
                Predicate::And(vec![has_source(), from_source]),
                Predicate::And(vec![Predicate::Not(Box::new(has_source())), from_directory]),
            ]))
        }
        Place::Links(members) => match compare {
            Some((op, literal)) => {
                may_filter_memberships(cx)?;
                links_filter(
                    members,
                    &Filter::Compare {
                        path: tessera_scim::AttrPath::simple("value"),
                        op,
                        value: literal.clone(),
                    },
                )
            }
            None => Err(unsupported(&r.text())),
        },
    }
}

/// "Some element of the list at `array` has `sub` meeting the comparison" (or,
/// for `ne`, "none has it equal").
fn any_element(
    array: Field,
    sub: Vec<Step>,
    leaf: &Attribute,
    compare: Option<(CompareOp, &Literal)>,
) -> Result<Predicate> {
    let (negate, compare) = match compare {
        Some((CompareOp::Ne, literal)) if *literal != Literal::Null => {
            (true, Some((CompareOp::Eq, literal)))
        }
        other => (false, other),
    };
    let any = match compare {
        Some((CompareOp::Eq, Literal::Null)) => {
            let present = on_field(Field::Element(sub), leaf, None)?;
            Predicate::Not(Box::new(Predicate::AnyElement {
                array,
                element: Box::new(present),
            }))
        }
        Some((CompareOp::Ne, Literal::Null)) => Predicate::AnyElement {
            array,
            element: Box::new(on_field(Field::Element(sub), leaf, None)?),
        },
        _ => Predicate::AnyElement {
            array,
            element: Box::new(on_field(Field::Element(sub), leaf, compare)?),
        },
    };
    Ok(if negate {
        Predicate::Not(Box::new(any))
    } else {
        any
    })
}

/// A value filter over one element of a multi-valued complex attribute.
fn element_predicate(parent: &Attribute, filter: &Filter) -> Result<Predicate> {
    Ok(match filter {
        Filter::And(a, b) => Predicate::And(vec![
            element_predicate(parent, a)?,
            element_predicate(parent, b)?,
        ]),
        Filter::Or(a, b) => Predicate::Or(vec![
            element_predicate(parent, a)?,
            element_predicate(parent, b)?,
        ]),
        Filter::Not(f) => Predicate::Not(Box::new(element_predicate(parent, f)?)),
        Filter::Present(path) | Filter::Compare { path, .. } => {
            let sub = parent
                .sub_attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&path.name))
                .ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "{} is not a sub-attribute of {}",
                        path.name, parent.name
                    ))
                })?;
            let compare = match filter {
                Filter::Compare { op, value, .. } => Some((*op, value)),
                _ => None,
            };
            on_field(
                Field::Element(vec![Step::Key(sub.name.to_string())]),
                sub,
                compare,
            )?
        }
        Filter::ValuePath { .. } => {
            return Err(ScimError::invalid_filter("value paths do not nest"));
        }
    })
}

/// Whether the one email of a user without a source (the directory's `mail`, of
/// type `work`, primary) matches a value filter, given that it exists.
fn email_element(filter: &Filter) -> Result<Predicate> {
    let emails = USER_TYPE
        .resolve(&tessera_scim::AttrPath::simple("emails"))?
        .attribute;
    Ok(match filter {
        Filter::And(a, b) => Predicate::And(vec![email_element(a)?, email_element(b)?]),
        Filter::Or(a, b) => Predicate::Or(vec![email_element(a)?, email_element(b)?]),
        Filter::Not(f) => Predicate::Not(Box::new(email_element(f)?)),
        Filter::Present(path) | Filter::Compare { path, .. } => {
            let sub = emails
                .sub_attributes
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&path.name))
                .ok_or_else(|| {
                    ScimError::invalid_filter(format!(
                        "{} is not a sub-attribute of emails",
                        path.name
                    ))
                })?;
            if sub.name == "value" {
                let compare = match filter {
                    Filter::Compare { op, value, .. } => Some((*op, value)),
                    _ => None,
                };
                on_field(Field::Data(keys(&["mail"])), sub, compare)?
            } else {
                // The other sub-attributes are constants: decide as the evaluator.
                let element = serde_json::json!({"type": "work", "primary": true});
                if tessera_scim::eval::element_matches(emails, &element, filter) {
                    Predicate::True
                } else {
                    never()
                }
            }
        }
        Filter::ValuePath { .. } => {
            return Err(ScimError::invalid_filter("value paths do not nest"));
        }
    })
}

/// `emails[...]` for a user without a source: the email exists and matches.
fn directory_email(filter: &Filter) -> Result<Predicate> {
    Ok(Predicate::And(vec![mail_present(), email_element(filter)?]))
}

fn mail_present() -> Predicate {
    Predicate::Test {
        field: Field::Data(keys(&["mail"])),
        test: Test::Present,
        fold_case: false,
    }
}

/// `emails.<sub> <op> <value>` (or `pr`) for a user without a source, with the
/// evaluator's meaning over the one email (`ne` and `eq null` hold without it).
fn directory_email_attribute(
    sub: &str,
    compare: Option<(CompareOp, &Literal)>,
) -> Result<Predicate> {
    let path = tessera_scim::AttrPath::simple(sub);
    let as_filter = |op: CompareOp, literal: &Literal| Filter::Compare {
        path: path.clone(),
        op,
        value: literal.clone(),
    };
    Ok(match compare {
        None => directory_email(&Filter::Present(path.clone()))?,
        Some((CompareOp::Eq, Literal::Null)) => {
            Predicate::Not(Box::new(directory_email(&Filter::Present(path.clone()))?))
        }
        Some((CompareOp::Ne, Literal::Null)) => directory_email(&Filter::Present(path.clone()))?,
        Some((CompareOp::Ne, literal)) => Predicate::Not(Box::new(directory_email(&as_filter(
            CompareOp::Eq,
            literal,
        ))?)),
        Some((op, literal)) => directory_email(&as_filter(op, literal))?,
    })
}

fn user_name(
    cx: &Scope<'_>,
    leaf: &Attribute,
    compare: Option<(CompareOp, &Literal)>,
) -> Result<Predicate> {
    // `eq`: the user principal name the userName maps to, which the unique index
    // answers (a userName is unique because its user principal name is).
    if let Some((CompareOp::Eq, Literal::String(name))) = compare {
        let upn = if name.contains('@') {
            name.clone()
        } else {
            match cx.mapper.default_domain() {
                Some(domain) => format!("{name}@{domain}"),
                None => return Ok(never()),
            }
        };
        return Ok(Predicate::Test {
            field: Field::Key1,
            test: Test::Eq(Scalar::Text(upn.to_ascii_lowercase())),
            fold_case: false,
        });
    }
    // Otherwise: provisioned users' userName as their source has it, the others'
    // user principal name.
    Ok(Predicate::Or(vec![
        Predicate::And(vec![
            has_source(),
            on_field(Field::CompanionData(keys(&["userName"])), leaf, compare)?,
        ]),
        Predicate::And(vec![
            Predicate::Not(Box::new(has_source())),
            on_field(Field::Data(keys(&["userPrincipalName"])), leaf, compare)?,
        ]),
    ]))
}

/// `meta.lastModified`: the later of the record's time and its source's, so a
/// change to either shows (`eq` and `ne` compare the record's).
fn last_modified(leaf: &Attribute, compare: Option<(CompareOp, &Literal)>) -> Result<Predicate> {
    let record = on_field(Field::Modified, leaf, compare)?;
    let source = || on_field(Field::CompanionModified, leaf, compare);
    Ok(match compare {
        Some((CompareOp::Gt | CompareOp::Ge, _)) => Predicate::Or(vec![record, source()?]),
        Some((CompareOp::Lt | CompareOp::Le, _)) => Predicate::And(vec![
            record,
            Predicate::Or(vec![Predicate::Not(Box::new(has_source())), source()?]),
        ]),
        _ => record,
    })
}

/// `members[value eq "id"]`, `members.value eq "id"` (a group's members) or
/// `groups.value eq "id"` (a user's groups): equality on ids, joined with
/// `or`/`and`/`not`.
fn links_filter(members: bool, filter: &Filter) -> Result<Predicate> {
    Ok(match filter {
        Filter::And(a, b) => {
            Predicate::And(vec![links_filter(members, a)?, links_filter(members, b)?])
        }
        Filter::Or(a, b) => {
            Predicate::Or(vec![links_filter(members, a)?, links_filter(members, b)?])
        }
        Filter::Not(f) => Predicate::Not(Box::new(links_filter(members, f)?)),
        Filter::Compare {
            path,
            op: op @ (CompareOp::Eq | CompareOp::Ne),
            value: Literal::String(id),
        } if path.name.eq_ignore_ascii_case("value") => {
            let link = match Uuid::parse_str(id) {
                Err(_) => never(),
                Ok(other) if members => Predicate::LinkTo {
                    rel: Rel::Member,
                    target: other,
                },
                Ok(other) => Predicate::LinkFrom {
                    rel: Rel::Member,
                    source: other,
                },
            };
            if *op == CompareOp::Ne {
                Predicate::Not(Box::new(link))
            } else {
                link
            }
        }
        _ => {
            return Err(ScimError::invalid_filter(
                "memberships are filtered by the id: value eq \"<id>\"",
            ));
        }
    })
}

/// The store order for `sortBy`.
pub(crate) fn order(
    rt: &ResourceType,
    by: &Resolved,
    descending: bool,
    mapper: &UserMapper,
) -> Result<Order> {
    let leaf = leaf_for_compare(by.attribute, by.sub);
    let fold_case = !leaf.case_exact;
    let field = match place(rt, by, mapper)? {
        Place::Column(field) => field,
        Place::LastModified => Field::Modified,
        Place::Directory(path) => Field::Data(path),
        Place::UserName => Field::Data(keys(&["userPrincipalName"])),
        Place::Either(path, _) => Field::CompanionData(path),
        Place::Emails => Field::Data(keys(&["mail"])),
        Place::Source(mut path) => {
            if by.attribute.multi_valued {
                path.push(Step::Index(0));
                if by.attribute.kind == Type::Complex {
                    path.push(Step::Key(leaf.name.to_string()));
                }
            }
            Field::CompanionData(path)
        }
        Place::Links(_) => return Err(unsupported(&by.text())),
    };
    Ok(Order::By {
        field,
        descending,
        fold_case,
    })
}
