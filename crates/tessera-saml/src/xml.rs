//! A strict XML reader for what service providers send: a document becomes a tree
//! of elements with resolved namespaces, or an error. Refused: a document type
//! declaration (so no external or internal entity, no "billion laughs"), any entity
//! reference but `&lt; &gt; &amp; &apos; &quot;` and character references,
//! processing instructions, a second root, text outside the root, and documents
//! beyond the limits below. An `ID`, `Id` or `id` attribute value given twice is
//! refused (signature wrapping hides a second element under the same id).

use std::collections::HashSet;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// The limits a document must keep within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_elements: usize,
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 256 * 1024,
            max_depth: 32,
            max_elements: 10_000,
            max_attributes: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the document nests elements deeper than {0}")]
    TooDeep(usize),
    #[error("the document has more than {0} elements")]
    TooManyElements(usize),
    #[error("an element has more than {0} attributes")]
    TooManyAttributes(usize),
    #[error("a document type declaration is not accepted")]
    DocumentType,
    #[error("processing instructions are not accepted")]
    ProcessingInstruction,
    #[error("the entity &{0}; is not accepted")]
    Entity(String),
    #[error("the prefix {0} is not declared")]
    UndeclaredPrefix(String),
    #[error("the attribute {0} is given twice")]
    DuplicateAttribute(String),
    #[error("the id {0} is given to two elements")]
    DuplicateId(String),
    #[error("the document has no root element, or more than one")]
    Root,
    #[error("text is not accepted outside the root element")]
    TextOutsideRoot,
    #[error("the document is not well-formed: {0}")]
    Malformed(String),
}

/// An attribute, by namespace and local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Empty for an attribute without a prefix (attributes take no default namespace).
    pub namespace: String,
    pub local: String,
    /// The prefixed name as written.
    pub qualified: String,
    pub value: String,
}

/// What an element holds, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// Text, with references resolved; comments are not kept, and text on either
    /// side of one is joined.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub namespace: String,
    pub local: String,
    /// The prefix as written (empty for none).
    pub prefix: String,
    pub attributes: Vec<Attribute>,
    /// The namespace declarations made on this element: (prefix, uri), the default
    /// namespace with an empty prefix.
    pub declarations: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    /// Whether this is `local` in namespace `namespace`.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace == namespace && self.local == local
    }

    /// The value of the attribute `local` without a namespace.
    pub fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_empty() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// The child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|node| match node {
            Node::Element(element) => Some(element),
            Node::Text(_) => None,
        })
    }

    /// The child elements named `local` in `namespace`.
    pub fn children_named<'a>(
        &'a self,
        namespace: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(namespace, local))
    }

    /// The element's text when it holds nothing but text (an element inside is not
    /// skipped over: `None`).
    pub fn only_text(&self) -> Option<String> {
        self.elements().next().is_none().then(|| self.text())
    }

    /// A new element for Tessera to write: `local` in `namespace`, written with
    /// `prefix` (canonicalization declares it where it is used).
    pub fn new(namespace: &str, prefix: &str, local: &str) -> Element {
        Element {
            namespace: namespace.to_string(),
            local: local.to_string(),
            prefix: prefix.to_string(),
            attributes: Vec::new(),
            declarations: Vec::new(),
            children: Vec::new(),
        }
    }

    /// With the attribute `name` (without a namespace) set to `value`.
    pub fn with_attribute(mut self, name: &str, value: impl Into<String>) -> Element {
        self.attributes.push(Attribute {
            namespace: String::new(),
            local: name.to_string(),
            qualified: name.to_string(),
            value: value.into(),
        });
        self
    }

    /// With the attribute set when there is a value.
    pub fn with_optional(self, name: &str, value: Option<impl Into<String>>) -> Element {
        match value {
            Some(value) => self.with_attribute(name, value),
            None => self,
        }
    }

    /// With `child` appended.
    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// With `text` appended.
    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// The element's own text (its text children joined; comments were left out).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|node| match node {
                Node::Text(text) => Some(text.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }
}

/// A parsed document: its root element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub root: Element,
}

const XML_NAMESPACE: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// An element being read: the element, and where its namespace declarations start
/// on the scope stack (what it declared is dropped when it ends).
/// children.
struct Open {
    element: Element,
    scope_mark: usize,
}

fn malformed(error: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(error.to_string())
}

/// Reads `text` within `limits`.
pub fn parse(text: &str, limits: Limits) -> Result<Document, XmlError> {
    if text.len() > limits.max_bytes {
        return Err(XmlError::TooLarge(limits.max_bytes));
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.check_comments = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Element> = None;
    let mut ids: HashSet<String> = HashSet::new();
    let mut elements = 0usize;
    // The namespaces in scope: one stack, each open element's declarations on top.
    let mut scope = vec![("xml".to_string(), XML_NAMESPACE.to_string())];
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Root);
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(XmlError::TooManyElements(limits.max_elements));
                }
                if stack.len() >= limits.max_depth {
                    return Err(XmlError::TooDeep(limits.max_depth));
                }
                let open = open_element(&start, &mut scope, limits, &mut ids)?;
                stack.push(open);
            }
            Event::End(_) => {
                let Some(open) = stack.pop() else {
                    return Err(malformed("an end tag without its start"));
                };
                scope.truncate(open.scope_mark);
                match stack.last_mut() {
                    Some(parent) => parent.element.children.push(Node::Element(open.element)),
                    None => root = Some(open.element),
                }
            }
            Event::Empty(_) => {
                // Expanded into a start and an end by the configuration.
                return Err(malformed("an unexpanded empty element"));
            }
            Event::Text(text) => {
                let decoded = text.decode().map_err(malformed)?;
                push_text(&mut stack, &line_ends(&decoded))?;
            }
            Event::CData(data) => {
                if stack.is_empty() {
                    return Err(XmlError::TextOutsideRoot);
                }
                let bytes = data.into_inner();
                let decoded = std::str::from_utf8(&bytes).map_err(malformed)?;
                push_text(&mut stack, &line_ends(decoded))?;
            }
            Event::GeneralRef(reference) => {
                let name = reference.decode().map_err(malformed)?;
                let resolved = resolve_reference(&name)?;
                push_text(&mut stack, &resolved)?;
            }
            Event::Comment(_) => {}
            Event::Decl(_) => {
                if elements > 0 || !stack.is_empty() {
                    return Err(malformed("an XML declaration after the start"));
                }
            }
            Event::PI(_) => return Err(XmlError::ProcessingInstruction),
            Event::DocType(_) => return Err(XmlError::DocumentType),
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element"));
    }
    root.map(|root| Document { root }).ok_or(XmlError::Root)
}

/// XML 1.0 §2.11: CR LF and a lone CR read as LF.
fn line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The text a reference stands for: a character reference (decimal or hex digits
/// only, naming an XML character) or one of the five predefined entities.
fn resolve_reference(name: &str) -> Result<String, XmlError> {
    if let Some(number) = name.strip_prefix('#') {
        let (digits, radix) = match number.strip_prefix('x') {
            Some(hex) => (hex, 16),
            None => (number, 10),
        };
        if digits.is_empty() || digits.len() > 8 || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(malformed("a bad character reference"));
        }
        let code = u32::from_str_radix(digits, radix)
            .map_err(|_| malformed("a bad character reference"))?;
        let allowed =
            matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
        return match char::from_u32(code) {
            Some(c) if allowed => Ok(c.to_string()),
            _ => Err(malformed(
                "a character reference to a character XML does not allow",
            )),
        };
    }
    quick_xml::escape::resolve_predefined_entity(name)
        .map(str::to_string)
        .ok_or_else(|| XmlError::Entity(quoted(name)))
}

/// Whether `name` is a well-formed qualified name: one optional prefix, each part
/// an XML name without a colon (NCName).
fn qualified_name(name: &str) -> bool {
    let mut parts = name.split(':');
    match name.matches(':').count() {
        0 => parts.next().is_some_and(nc_name),
        1 => parts.next().is_some_and(nc_name) && parts.next().is_some_and(nc_name),
        _ => false,
    }
}

/// XML 1.0 (fifth edition) `NameStartChar` and `NameChar`, without the colon.
fn nc_name(name: &str) -> bool {
    let start = |c: char| {
        matches!(c, 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
            | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
            | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
            | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
            | '\u{10000}'..='\u{EFFFF}')
    };
    let rest = |c: char| {
        start(c)
            || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    };
    let mut chars = name.chars();
    chars.next().is_some_and(start) && chars.all(rest)
}

/// The most namespace declarations one element may make, and in scope at once.
const MAX_DECLARATIONS: usize = 16;
const MAX_SCOPE: usize = 64;
/// The longest namespace name (a URI) accepted: canonical forms repeat them.
const MAX_NAMESPACE_NAME: usize = 1024;

/// Text from the document, as an error message quotes it: at most 100 characters.
fn quoted(text: &str) -> String {
    let mut out: String = text.chars().take(100).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Adds text to the element being read; outside the root only whitespace may be.
fn push_text(stack: &mut [Open], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(open) => {
            if let Some(Node::Text(last)) = open.element.children.last_mut() {
                last.push_str(text);
            } else if !text.is_empty() {
                open.element.children.push(Node::Text(text.to_string()));
            }
            Ok(())
        }
        None if text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) => Ok(()),
        None => Err(XmlError::TextOutsideRoot),
    }
}

fn split(qualified: &str) -> (&str, &str) {
    match qualified.split_once(':') {
        Some((prefix, local)) => (prefix, local),
        None => ("", qualified),
    }
}

pub(crate) fn lookup<'a>(scope: &'a [(String, String)], prefix: &str) -> Option<&'a str> {
    scope
        .iter()
        .rev()
        .find(|(p, _)| p == prefix)
        .map(|(_, uri)| uri.as_str())
}

fn open_element(
    start: &BytesStart<'_>,
    scope: &mut Vec<(String, String)>,
    limits: Limits,
    ids: &mut HashSet<String>,
) -> Result<Open, XmlError> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(malformed)?
        .to_string();
    if !qualified_name(&name) {
        return Err(malformed(format!(
            "{} is not a qualified name",
            quoted(&name)
        )));
    }
    let mut raw: Vec<(String, String)> = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(malformed)?;
        if raw.len() >= limits.max_attributes {
            return Err(XmlError::TooManyAttributes(limits.max_attributes));
        }
        let key = std::str::from_utf8(attribute.key.as_ref())
            .map_err(malformed)?
            .to_string();
        if !qualified_name(&key) {
            return Err(malformed(format!(
                "{} is not a qualified name",
                quoted(&key)
            )));
        }
        let value = attribute_value(&attribute)?;
        if raw.iter().any(|(k, _)| *k == key) {
            return Err(XmlError::DuplicateAttribute(quoted(&key)));
        }
        raw.push((key, value));
    }
    let mut declarations = Vec::new();
    for (key, value) in &raw {
        if (key == "xmlns" || key.starts_with("xmlns:")) && value.len() > MAX_NAMESPACE_NAME {
            return Err(malformed(format!(
                "a namespace name longer than {MAX_NAMESPACE_NAME} bytes"
            )));
        }
        let reserved = value == XML_NAMESPACE || value == XMLNS_NAMESPACE;
        if key == "xmlns" {
            if reserved {
                return Err(malformed("the default namespace cannot be a reserved one"));
            }
            declarations.push((String::new(), value.clone()));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            if value.is_empty() || prefix == "xmlns" || prefix == "xml" || reserved {
                return Err(malformed(format!(
                    "the declaration {} is not allowed",
                    quoted(key)
                )));
            }
            declarations.push((prefix.to_string(), value.clone()));
        }
    }
    if declarations.len() > MAX_DECLARATIONS || scope.len() + declarations.len() > MAX_SCOPE {
        return Err(malformed("too many namespace declarations"));
    }
    let scope_mark = scope.len();
    scope.extend(declarations.iter().cloned());
    let (prefix, local) = split(&name);
    let namespace = match lookup(scope, prefix) {
        Some(uri) => uri.to_string(),
        None if prefix.is_empty() => String::new(),
        None => return Err(XmlError::UndeclaredPrefix(quoted(prefix))),
    };
    let mut attributes = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (key, value) in raw {
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let (attribute_prefix, attribute_local) = split(&key);
        let attribute_namespace = if attribute_prefix.is_empty() {
            String::new()
        } else {
            match lookup(scope, attribute_prefix) {
                Some(uri) if uri != XMLNS_NAMESPACE => uri.to_string(),
                _ => return Err(XmlError::UndeclaredPrefix(quoted(attribute_prefix))),
            }
        };
        if !seen.insert((attribute_namespace.clone(), attribute_local.to_string())) {
            return Err(XmlError::DuplicateAttribute(quoted(&key)));
        }
        // Any attribute named like an id, in any namespace (`xml:id`, `wsu:Id`),
        // counts: a reference will never be resolved to one of two.
        if matches!(attribute_local, "ID" | "Id" | "id") && !ids.insert(value.clone()) {
            return Err(XmlError::DuplicateId(quoted(&value)));
        }
        attributes.push(Attribute {
            namespace: attribute_namespace,
            local: attribute_local.to_string(),
            qualified: key.clone(),
            value,
        });
    }
    Ok(Open {
        element: Element {
            namespace,
            local: local.to_string(),
            prefix: prefix.to_string(),
            attributes,
            declarations,
            children: Vec::new(),
        },
        scope_mark,
    })
}

/// An attribute's value (XML 1.0 §3.3.3: literal tab, CR and LF read as a space)
/// with references resolved: only character references and the predefined
/// entities.
fn attribute_value(
    attribute: &quick_xml::events::attributes::Attribute<'_>,
) -> Result<String, XmlError> {
    let raw = std::str::from_utf8(&attribute.value).map_err(malformed)?;
    if raw.contains('<') {
        return Err(malformed("a < in an attribute value"));
    }
    let raw = raw.replace("\r\n", " ").replace(['\t', '\r', '\n'], " ");
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = after.find(';') else {
            return Err(malformed("an unterminated reference in an attribute"));
        };
        out.push_str(&resolve_reference(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

    #[test]
    fn names_must_be_xml_names() {
        // Found by the fuzzer: `0A/` was taken for a name, and its canonical form
        // did not read back.
        for bad in [
            "\r<0A/\n/>",
            "<a b/=\"1\"/>",
            "<-a/>",
            "<a:1b xmlns:a=\"urn:a\"/>",
        ] {
            assert!(parse(bad, Limits::default()).is_err(), "{bad:?}");
        }
        for good in ["<a.b-c_d/>", "<é/>", "<a:b xmlns:a=\"urn:a\" a:c.d=\"1\"/>"] {
            assert!(parse(good, Limits::default()).is_ok(), "{good:?}");
        }
    }
    const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

    fn read(text: &str) -> Result<Document, XmlError> {
        parse(text, Limits::default())
    }

    #[test]
    fn an_authn_request_is_read_with_its_namespaces() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a1" Version="2.0"
    AssertionConsumerServiceURL="https://sp.example/acs?a=1&amp;b=2">
  <saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">https://sp.example</saml:Issuer>
  <!-- a comment -->
  <samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"/>
</samlp:AuthnRequest>"#;
        let document = read(text).unwrap();
        let root = &document.root;
        assert!(root.is(SAMLP, "AuthnRequest"));
        assert_eq!(root.attribute("ID"), Some("_a1"));
        assert_eq!(
            root.attribute("AssertionConsumerServiceURL"),
            Some("https://sp.example/acs?a=1&b=2")
        );
        let issuer = root.children_named(SAML, "Issuer").next().unwrap();
        assert_eq!(issuer.text(), "https://sp.example");
        assert_eq!(root.children_named(SAMLP, "NameIDPolicy").count(), 1);
    }

    #[test]
    fn a_comment_does_not_cut_text_short() {
        let text = r#"<NameID xmlns="urn:oasis:names:tc:SAML:2.0:assertion">user@evil.example<!---->.good.example</NameID>"#;
        assert_eq!(
            read(text).unwrap().root.text(),
            "user@evil.example.good.example"
        );
        let text = "<a>x&lt;&#x41;&#66;<![CDATA[<c>]]></a>";
        assert_eq!(read(text).unwrap().root.text(), "x<AB<c>");
    }

    #[test]
    fn document_types_entities_and_instructions_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#;
        assert_eq!(read(xxe).unwrap_err(), XmlError::DocumentType);
        let laughs = r#"<!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;">]><a>&l2;</a>"#;
        assert_eq!(read(laughs).unwrap_err(), XmlError::DocumentType);
        assert_eq!(
            read("<a>&x;</a>").unwrap_err(),
            XmlError::Entity("x".to_string())
        );
        assert_eq!(
            read(r#"<a b="&x;"/>"#).unwrap_err(),
            XmlError::Entity("x".to_string())
        );
        assert_eq!(
            read(r#"<a><?php x?></a>"#).unwrap_err(),
            XmlError::ProcessingInstruction
        );
    }

    #[test]
    fn ids_given_twice_and_other_ambiguities_are_refused() {
        let wrapped = r#"<r><a ID="_1"/><b ID="_1"/></r>"#;
        assert_eq!(
            read(wrapped).unwrap_err(),
            XmlError::DuplicateId("_1".to_string())
        );
        assert!(matches!(
            read(r#"<a b="1" b="2"/>"#).unwrap_err(),
            XmlError::DuplicateAttribute(_) | XmlError::Malformed(_)
        ));
        let same = r#"<a xmlns:p="u" xmlns:q="u" p:b="1" q:b="2"/>"#;
        assert!(matches!(
            read(same).unwrap_err(),
            XmlError::DuplicateAttribute(_)
        ));
        assert_eq!(
            read("<p:a/>").unwrap_err(),
            XmlError::UndeclaredPrefix("p".to_string())
        );
        assert_eq!(read("<a/><b/>").unwrap_err(), XmlError::Root);
        assert_eq!(read("x<a/>").unwrap_err(), XmlError::TextOutsideRoot);
        assert!(read("<a><b></a>").is_err());
        assert!(read("<a>").is_err());
        assert_eq!(read("").unwrap_err(), XmlError::Root);
    }

    #[test]
    fn names_references_and_line_ends_are_read_as_xml_says() {
        assert!(read(r#"<a xmlns:="u"/>"#).is_err());
        assert!(read("<:a/>").is_err());
        assert!(read("<a:b:c xmlns:a=\"u\"/>").is_err());
        assert!(read(r#"<a b="&#+65;"/>"#).is_err());
        assert!(read(r#"<a b="&#1;"/>"#).is_err());
        assert!(read("<a>&#xFFFE;</a>").is_err());
        assert!(read(r#"<a xmlns:p="http://www.w3.org/2000/xmlns/"/>"#).is_err());
        assert_eq!(
            read("<a b=\"x\ty\r\nz\"/>").unwrap().root.attribute("b"),
            Some("x y z")
        );
        assert_eq!(read("<a>x\r\ny\rz</a>").unwrap().root.text(), "x\ny\nz");
        assert!(read(r#"<r><a xml:id="_1"/><b ID="_1"/></r>"#).is_err());
        assert!(read("<![CDATA[ ]]><a/>").is_err());
        let many = format!(
            "<a {}/>",
            (0..17)
                .map(|i| format!("xmlns:p{i}=\"u\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(read(&many).is_err());
        let mixed = read("<a>x<b/>y</a>").unwrap();
        assert_eq!(mixed.root.only_text(), None);
        assert_eq!(
            read("<a>xy</a>").unwrap().root.only_text().as_deref(),
            Some("xy")
        );
    }

    #[test]
    fn limits_hold() {
        let deep = format!("{}{}", "<a>".repeat(40), "</a>".repeat(40));
        assert_eq!(read(&deep).unwrap_err(), XmlError::TooDeep(32));
        let many = format!("<r>{}</r>", "<a/>".repeat(10_001));
        assert_eq!(read(&many).unwrap_err(), XmlError::TooManyElements(10_000));
        let wide = format!(
            "<a {}/>",
            (0..65)
                .map(|i| format!("a{i}=\"\""))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(read(&wide).unwrap_err(), XmlError::TooManyAttributes(64));
        let big = format!("<a>{}</a>", "x".repeat(300 * 1024));
        assert_eq!(read(&big).unwrap_err(), XmlError::TooLarge(256 * 1024));
    }
}
