//! Exclusive XML Canonicalization 1.0 without comments
//! (<https://www.w3.org/TR/xml-exc-c14n/>) of an element of the tree `xml` reads or
//! Tessera builds: the octets a signature's digest and value are computed over.
//!
//! The tree holds no comments and no processing instructions (the reader drops the
//! first and refuses the second), so the result is the canonical form of the
//! element's subtree without comments. An element can be left out (the enveloped
//! signature transform). Namespace declarations are written where exclusive
//! canonicalization renders them: on the first output element that visibly uses a
//! prefix (its own or an attribute's) and whose nearest output ancestor did not
//! already render the same binding, plus the prefixes of an `InclusiveNamespaces`
//! list, as inclusive canonicalization would.

use std::collections::BTreeMap;

use crate::xml::{Element, Node, lookup};

/// The transform and canonicalization method's identifier.
pub const EXCLUSIVE: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The same keeping comments: never accepted (comments change no signed text here,
/// but nothing needs them).
pub const EXCLUSIVE_WITH_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";

/// How to canonicalize.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// The namespaces in scope at the element from its ancestors (prefix, uri),
    /// outermost first; only an inclusive prefix reads them.
    pub ancestors_scope: &'a [(String, String)],
    /// `InclusiveNamespaces PrefixList`, `#default` written as the empty prefix.
    pub inclusive_prefixes: &'a [String],
    /// An element of the subtree left out, with everything in it (compared by
    /// address: the very element, not an equal one).
    pub exclude: Option<&'a Element>,
}

/// The canonical form of `element` (one Tessera built, or one whose size is
/// otherwise bounded).
pub fn canonicalize(element: &Element, options: Options<'_>) -> String {
    canonicalize_bounded(element, options, usize::MAX).unwrap_or_default()
}

/// The canonical form of `element` if it is at most `max` bytes: the canonical
/// form repeats namespace declarations on every element that uses them, so a
/// small document can have a very large one.
pub fn canonicalize_bounded(element: &Element, options: Options<'_>, max: usize) -> Option<String> {
    let mut out = String::with_capacity(1024);
    let mut scope: Vec<(String, String)> = options.ancestors_scope.to_vec();
    let mut rendered: Vec<(String, String)> = Vec::new();
    write_element(element, &options, &mut scope, &mut rendered, &mut out, max)?;
    Some(out)
}

fn attribute_prefix(qualified: &str) -> &str {
    qualified.split_once(':').map_or("", |(prefix, _)| prefix)
}

fn write_element(
    element: &Element,
    options: &Options<'_>,
    scope: &mut Vec<(String, String)>,
    rendered: &mut Vec<(String, String)>,
    out: &mut String,
    max: usize,
) -> Option<()> {
    let scope_mark = scope.len();
    scope.extend(element.declarations.iter().cloned());
    // The namespaces this element needs rendered: those it visibly uses, and the
    // inclusive ones in scope.
    let mut needed: BTreeMap<&str, &str> = BTreeMap::new();
    // The `xml` prefix is bound by definition and never declared.
    if element.prefix != "xml" {
        needed.insert(element.prefix.as_str(), element.namespace.as_str());
    }
    for attribute in &element.attributes {
        let prefix = attribute_prefix(&attribute.qualified);
        if !prefix.is_empty() && prefix != "xml" {
            needed.insert(prefix, attribute.namespace.as_str());
        }
    }
    for prefix in options.inclusive_prefixes {
        if prefix == "xml" {
            continue;
        }
        if let Some(uri) = lookup(scope, prefix) {
            needed.entry(prefix.as_str()).or_insert(uri);
        }
    }
    let rendered_mark = rendered.len();
    let mut declarations: Vec<(String, String)> = Vec::new();
    for (prefix, uri) in needed {
        let current = lookup(rendered, prefix);
        let render = if prefix.is_empty() {
            // The default namespace: rendered when it differs from what the output
            // ancestors rendered (none rendered means the empty namespace).
            current.unwrap_or("") != uri
        } else {
            current != Some(uri)
        };
        if render {
            declarations.push((prefix.to_string(), uri.to_string()));
        }
    }
    let name = qualified(&element.prefix, &element.local);
    out.push('<');
    out.push_str(&name);
    for (prefix, uri) in &declarations {
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        escape_attribute(uri, out);
        out.push('"');
    }
    rendered.extend(declarations);
    let mut attributes: Vec<_> = element.attributes.iter().collect();
    attributes.sort_by(|a, b| (&a.namespace, &a.local).cmp(&(&b.namespace, &b.local)));
    for attribute in attributes {
        out.push(' ');
        out.push_str(&attribute.qualified);
        out.push_str("=\"");
        escape_attribute(&attribute.value, out);
        out.push('"');
    }
    out.push('>');
    for child in &element.children {
        match child {
            Node::Text(text) => escape_text(text, out),
            Node::Element(child) => {
                if options
                    .exclude
                    .is_some_and(|skip| std::ptr::eq(skip, child))
                {
                    continue;
                }
                write_element(child, options, scope, rendered, out, max)?;
            }
        }
        if out.len() > max {
            return None;
        }
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
    rendered.truncate(rendered_mark);
    scope.truncate(scope_mark);
    (out.len() <= max).then_some(())
}

/// A character XML 1.0 allows; a tree read from a document holds no other, and
/// one Tessera built gets U+FFFD in its place, so what it writes stays well-formed.
fn allowed(c: char) -> char {
    if matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    {
        c
    } else {
        '\u{FFFD}'
    }
}

fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_string()
    } else {
        format!("{prefix}:{local}")
    }
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(allowed(c)),
        }
    }
}

fn escape_attribute(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(allowed(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Limits, parse};

    fn c14n(text: &str) -> String {
        canonicalize(
            &parse(text, Limits::default()).unwrap().root,
            Options::default(),
        )
    }

    #[test]
    fn namespaces_are_rendered_where_used() {
        // The unused declaration goes, the used one moves to where it is used, and
        // a redundant one on a child is dropped.
        let text = r#"<a:root xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c"><b:x><a:y xmlns:a="urn:a" c:k="1"/></b:x></a:root>"#;
        assert_eq!(
            c14n(text),
            r#"<a:root xmlns:a="urn:a"><b:x xmlns:b="urn:b"><a:y xmlns:c="urn:c" c:k="1"></a:y></b:x></a:root>"#
        );
    }

    #[test]
    fn attributes_sort_by_namespace_then_name_and_values_escape() {
        let text = "<r xmlns=\"urn:d\" xmlns:z=\"urn:a\" z:b=\"2\" b=\"x&#9;y&quot;&lt;\" a=\"1\">t&amp;&gt;&#xD;</r>";
        assert_eq!(
            c14n(text),
            "<r xmlns=\"urn:d\" xmlns:z=\"urn:a\" a=\"1\" b=\"x&#x9;y&quot;&lt;\" z:b=\"2\">t&amp;&gt;&#xD;</r>"
        );
    }

    #[test]
    fn an_empty_default_namespace_is_undeclared_only_below_a_rendered_one() {
        assert_eq!(
            c14n(r#"<r xmlns="urn:d"><x xmlns=""/></r>"#),
            r#"<r xmlns="urn:d"><x xmlns=""></x></r>"#
        );
        assert_eq!(c14n(r#"<r><x xmlns=""/></r>"#), "<r><x></x></r>");
    }

    #[test]
    fn inclusive_prefixes_are_rendered_from_scope() {
        let doc = parse(
            r#"<a:r xmlns:a="urn:a" xmlns:xs="urn:xs"><a:v>xs:string</a:v></a:r>"#,
            Limits::default(),
        )
        .unwrap();
        let child = doc.root.elements().next().unwrap();
        let prefixes = ["xs".to_string()];
        let out = canonicalize(
            child,
            Options {
                ancestors_scope: &doc.root.declarations,
                inclusive_prefixes: &prefixes,
                exclude: None,
            },
        );
        assert_eq!(
            out,
            r#"<a:v xmlns:a="urn:a" xmlns:xs="urn:xs">xs:string</a:v>"#
        );
    }

    #[test]
    fn a_bound_stops_a_blown_up_canonical_form() {
        // An unused declaration on the root is rendered again on every child.
        let uri = format!("urn:{}", "u".repeat(1000));
        let children = "<x:a/>".repeat(200);
        let text = format!(r#"<r xmlns:x="{uri}">{children}</r>"#);
        let doc = parse(&text, Limits::default()).unwrap();
        let full = canonicalize(&doc.root, Options::default());
        assert!(full.len() > 200 * 1000);
        assert!(canonicalize_bounded(&doc.root, Options::default(), 100_000).is_none());
        assert_eq!(
            canonicalize_bounded(&doc.root, Options::default(), full.len()),
            Some(full)
        );
    }

    #[test]
    fn characters_xml_forbids_are_not_written() {
        let built = Element::new("", "", "r")
            .with_text("a\u{1}b")
            .with_attribute("k", "\u{FFFE}");
        assert_eq!(
            canonicalize(&built, Options::default()),
            "<r k=\"\u{FFFD}\">a\u{FFFD}b</r>"
        );
    }

    #[test]
    fn comments_are_left_out_and_an_excluded_element_goes() {
        let doc = parse("<r><!-- c -->a<x>y</x>b<s/></r>", Limits::default()).unwrap();
        let x = doc.root.elements().next().unwrap();
        let out = canonicalize(
            &doc.root,
            Options {
                exclude: Some(x),
                ..Options::default()
            },
        );
        assert_eq!(out, "<r>ab<s></s></r>");
    }
}
