//! Attribute paths (RFC 7644 §3.10) and PATCH paths (§3.5.2).
//!
//! Parsing here is syntactic: `urn:...:User:name.givenName` becomes the URN, the
//! attribute and the sub-attribute. Which schema and attribute a path names, case
//! insensitively, is the schema's business ([`crate::schema::Schemas::resolve`]).

use crate::error::{ScimError, ScimResult};
use crate::filter::{self, Filter};

/// Longest attribute path accepted.
pub const MAX_PATH_LEN: usize = 512;

/// `[urn:]attr[.sub]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN the path was qualified with, as written.
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn simple(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.to_string(),
            sub: None,
        }
    }

    pub fn parse(text: &str) -> ScimResult<AttrPath> {
        if text.is_empty() || text.len() > MAX_PATH_LEN {
            return Err(ScimError::invalid_path(format!(
                "an attribute path has 1 to {MAX_PATH_LEN} characters"
            )));
        }
        let qualified = text
            .get(..4)
            .is_some_and(|start| start.eq_ignore_ascii_case("urn:"))
            && text.len() > 4;
        let (urn, rest) = if qualified {
            match text.rfind(':') {
                Some(at) if at + 1 < text.len() => (Some(text[..at].to_string()), &text[at + 1..]),
                _ => {
                    return Err(ScimError::invalid_path(format!(
                        "{text:?} names no attribute after its schema URN"
                    )));
                }
            }
        } else {
            (None, text)
        };
        if let Some(urn) = &urn
            && !urn
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":.-_".contains(c))
        {
            return Err(ScimError::invalid_path(format!(
                "{urn:?} is not a schema URN"
            )));
        }
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        check_name(name)?;
        if let Some(sub) = sub {
            check_name(sub)?;
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }

    /// The path as text, URN first when qualified.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(urn) = &self.urn {
            text.push_str(urn);
            text.push(':');
        }
        text.push_str(&self.name);
        if let Some(sub) = &self.sub {
            text.push('.');
            text.push_str(sub);
        }
        text
    }
}

/// ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA; and `$ref`.
fn check_name(name: &str) -> ScimResult<()> {
    let mut chars = name.chars();
    let ok = name == "$ref"
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if ok {
        Ok(())
    } else {
        Err(ScimError::invalid_path(format!(
            "{name:?} is not an attribute name"
        )))
    }
}

/// A PATCH operation's `path`: an attribute, or the elements of a multi-valued one
/// a filter selects, optionally one sub-attribute of them.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    /// `emails[type eq "work"]`: which elements (sub-attributes relative to them).
    pub filter: Option<Filter>,
    /// `emails[type eq "work"].value`: the sub-attribute of the selected elements.
    pub sub: Option<String>,
}

impl PatchPath {
    pub fn parse(text: &str) -> ScimResult<PatchPath> {
        let text = text.trim();
        if text.len() > filter::MAX_FILTER_LEN {
            return Err(ScimError::invalid_path("the path is too long"));
        }
        let Some(open) = text.find('[') else {
            return Ok(PatchPath {
                attr: AttrPath::parse(text)?,
                filter: None,
                sub: None,
            });
        };
        let attr = AttrPath::parse(&text[..open])?;
        if attr.sub.is_some() {
            return Err(ScimError::invalid_path(
                "a filter applies to a multi-valued attribute, not to a sub-attribute",
            ));
        }
        let close = closing_bracket(text, open).ok_or_else(|| {
            ScimError::invalid_path(format!("{text:?} has a '[' without its ']'"))
        })?;
        let inner = &text[open + 1..close];
        let filter = filter::parse_value_filter(inner).map_err(|e| {
            ScimError::invalid_path(format!("the filter in the path is invalid: {}", e.detail))
        })?;
        let rest = &text[close + 1..];
        let sub = if rest.is_empty() {
            None
        } else if let Some(sub) = rest.strip_prefix('.') {
            check_name(sub)?;
            Some(sub.to_string())
        } else {
            return Err(ScimError::invalid_path(format!(
                "{rest:?} after the filter is not a sub-attribute"
            )));
        };
        Ok(PatchPath {
            attr,
            filter: Some(filter),
            sub,
        })
    }
}

/// The `]` closing the `[` at `open`, skipping quoted strings.
fn closing_bracket(text: &str, open: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (at, c) in text.char_indices().skip_while(|(i, _)| *i <= open) {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if c == ']' {
            return Some(at);
        } else if c == '[' {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_paths() {
        let p = AttrPath::parse("name.givenName").unwrap();
        assert_eq!(
            (p.urn, p.name.as_str(), p.sub.as_deref()),
            (None, "name", Some("givenName"))
        );
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.urn.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(
            (p.name.as_str(), p.sub.as_deref()),
            ("manager", Some("value"))
        );
        assert_eq!(
            p.text(),
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"
        );
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub.as_deref(),
            Some("$ref")
        );
        // Found by fuzzing: a multi-byte character within the first four bytes.
        for bad in ["zÜ'", "Üé", "ÜÜÜ:a"] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?}");
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "name.",
            "a.b.c",
            "urn:",
            "urn:x:",
            "na*me",
            "urn:a b:c",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patch_paths() {
        let p = PatchPath::parse(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr.name, "emails");
        assert!(p.filter.is_some());
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = PatchPath::parse(r#"members[value eq "a]b"]"#).unwrap();
        assert!(p.filter.is_some() && p.sub.is_none());
        for bad in [
            r#"emails[type eq "work""#,
            r#"emails[type eq "work"]value"#,
            r#"name.givenName[type eq "x"]"#,
            "emails[]",
            r#"emails[type eq "a"].value.x"#,
        ] {
            assert!(PatchPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
