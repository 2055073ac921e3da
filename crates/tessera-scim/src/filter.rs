//! SCIM filters (RFC 7644 §3.4.2.2), parsed from untrusted text into a tree.
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")" / "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER     ; "and" binds tighter than "or"
//! compValue = false / null / true / number / string  ; as JSON writes them
//! ```
//!
//! Operators and keywords are case-insensitive. The text, the tree's size and its
//! depth are bounded, so a hostile filter costs little to refuse. A `valuePath`
//! cannot nest another; the attribute paths inside it are relative to the elements.

use serde_json::{Number, Value};

use crate::error::{ScimError, ScimResult};
use crate::path::AttrPath;

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Most comparisons and operators in one filter.
pub const MAX_NODES: usize = 200;
/// Deepest nesting of parentheses, `not` and value paths.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

/// A comparison's literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
}

impl Literal {
    pub fn to_json(&self) -> Value {
        match self {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Number(n) => Value::Number(n.clone()),
            Literal::String(s) => Value::String(s.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Literal,
    },
    /// Some element of the multi-valued attribute `path` matches `filter`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

impl Filter {
    /// The filter written back as text (canonical spacing, lower-case operators).
    pub fn text(&self) -> String {
        match self {
            Filter::And(a, b) => format!("({} and {})", a.text(), b.text()),
            Filter::Or(a, b) => format!("({} or {})", a.text(), b.text()),
            Filter::Not(f) => format!("not ({})", f.text()),
            Filter::Present(p) => format!("{} pr", p.text()),
            Filter::Compare { path, op, value } => {
                format!("{} {} {}", path.text(), op.as_str(), value.to_json())
            }
            Filter::ValuePath { path, filter } => format!("{}[{}]", path.text(), filter.text()),
        }
    }
}

/// Parses a filter as the `filter` query parameter or a search body carries it.
pub fn parse(text: &str) -> ScimResult<Filter> {
    parse_with(text, false)
}

/// Parses the filter between the brackets of a value path (a PATCH path's), whose
/// attribute paths are relative to the elements.
pub fn parse_value_filter(text: &str) -> ScimResult<Filter> {
    parse_with(text, true)
}

fn parse_with(text: &str, inside_value_path: bool) -> ScimResult<Filter> {
    if text.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "a filter has at most {MAX_FILTER_LEN} bytes"
        )));
    }
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(ScimError::invalid_filter("the filter is empty"));
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        nodes: 0,
    };
    let filter = parser.or_expr(0, inside_value_path)?;
    if parser.at != parser.tokens.len() {
        return Err(ScimError::invalid_filter(format!(
            "unexpected {} after a complete filter",
            parser.tokens[parser.at].describe()
        )));
    }
    Ok(filter)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    String(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Open => "'('".to_string(),
            Token::Close => "')'".to_string(),
            Token::OpenBracket => "'['".to_string(),
            Token::CloseBracket => "']'".to_string(),
            Token::Word(w) => format!("{w:?}"),
            Token::String(_) => "a string".to_string(),
        }
    }
}

fn tokenize(text: &str) -> ScimResult<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                // A JSON string: find its end, then let serde_json decode the escapes.
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (at, c) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = Some(at);
                        break;
                    }
                }
                let end = end.ok_or_else(|| ScimError::invalid_filter("a string is not closed"))?;
                let decoded: String = serde_json::from_str(&text[start..=end]).map_err(|_| {
                    ScimError::invalid_filter("a string holds an invalid escape or character")
                })?;
                tokens.push(Token::String(decoded));
            }
            _ => {
                let mut end = text.len();
                while let Some(&(at, c)) = chars.peek() {
                    if c.is_whitespace() || "()[]\"".contains(c) {
                        end = at;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_string()));
            }
        }
        if tokens.len() > MAX_NODES * 4 {
            return Err(ScimError::invalid_filter("the filter is too complex"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    nodes: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn count(&mut self) -> ScimResult<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(ScimError::invalid_filter(format!(
                "a filter has at most {MAX_NODES} comparisons and operators"
            )));
        }
        Ok(())
    }

    fn deeper(depth: usize) -> ScimResult<usize> {
        if depth >= MAX_DEPTH {
            return Err(ScimError::invalid_filter(format!(
                "a filter nests at most {MAX_DEPTH} levels"
            )));
        }
        Ok(depth + 1)
    }

    fn or_expr(&mut self, depth: usize, inner: bool) -> ScimResult<Filter> {
        let mut left = self.and_expr(depth, inner)?;
        while self.peek_keyword("or") {
            self.at += 1;
            self.count()?;
            let right = self.and_expr(depth, inner)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize, inner: bool) -> ScimResult<Filter> {
        let mut left = self.unary(depth, inner)?;
        while self.peek_keyword("and") {
            self.at += 1;
            self.count()?;
            let right = self.unary(depth, inner)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize, inner: bool) -> ScimResult<Filter> {
        if self.peek_keyword("not") && self.tokens.get(self.at + 1) == Some(&Token::Open) {
            self.at += 1;
            self.count()?;
            let filter = self.group(depth, inner)?;
            return Ok(Filter::Not(Box::new(filter)));
        }
        if self.peek() == Some(&Token::Open) {
            return self.group(depth, inner);
        }
        self.attr_expr(depth, inner)
    }

    /// `( FILTER )`
    fn group(&mut self, depth: usize, inner: bool) -> ScimResult<Filter> {
        let depth = Self::deeper(depth)?;
        self.expect(&Token::Open)?;
        let filter = self.or_expr(depth, inner)?;
        self.expect(&Token::Close)?;
        Ok(filter)
    }

    fn expect(&mut self, token: &Token) -> ScimResult<()> {
        match self.peek() {
            Some(t) if t == token => {
                self.at += 1;
                Ok(())
            }
            Some(other) => Err(ScimError::invalid_filter(format!(
                "expected {} but found {}",
                token.describe(),
                other.describe()
            ))),
            None => Err(ScimError::invalid_filter(format!(
                "expected {} but the filter ended",
                token.describe()
            ))),
        }
    }

    fn attr_expr(&mut self, depth: usize, inner: bool) -> ScimResult<Filter> {
        self.count()?;
        let path = match self.peek() {
            Some(Token::Word(word)) => {
                AttrPath::parse(word).map_err(|e| ScimError::invalid_filter(e.detail))?
            }
            Some(other) => {
                return Err(ScimError::invalid_filter(format!(
                    "expected an attribute but found {}",
                    other.describe()
                )));
            }
            None => return Err(ScimError::invalid_filter("expected an attribute")),
        };
        self.at += 1;
        if self.peek() == Some(&Token::OpenBracket) {
            if inner {
                return Err(ScimError::invalid_filter(
                    "a value path cannot hold another value path",
                ));
            }
            if path.sub.is_some() {
                return Err(ScimError::invalid_filter(
                    "a value path's attribute has no sub-attribute",
                ));
            }
            self.at += 1;
            let depth = Self::deeper(depth)?;
            let filter = self.or_expr(depth, true)?;
            self.expect(&Token::CloseBracket)?;
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(filter),
            });
        }
        let operator = match self.peek() {
            Some(Token::Word(word)) => word.clone(),
            Some(other) => {
                return Err(ScimError::invalid_filter(format!(
                    "expected an operator after {} but found {}",
                    path.text(),
                    other.describe()
                )));
            }
            None => {
                return Err(ScimError::invalid_filter(format!(
                    "expected an operator after {}",
                    path.text()
                )));
            }
        };
        self.at += 1;
        if operator.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&operator).ok_or_else(|| {
            ScimError::invalid_filter(format!("{operator:?} is not a comparison operator"))
        })?;
        let value = match self.peek() {
            Some(Token::String(s)) => Literal::String(s.clone()),
            Some(Token::Word(w)) => literal(w)?,
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "expected a value after {} {}",
                    path.text(),
                    op.as_str()
                )));
            }
        };
        self.at += 1;
        Ok(Filter::Compare { path, op, value })
    }
}

fn literal(word: &str) -> ScimResult<Literal> {
    match word {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        "null" => return Ok(Literal::Null),
        _ => {}
    }
    // Clients write True/False and NULL too.
    match word.to_ascii_lowercase().as_str() {
        "true" => return Ok(Literal::Bool(true)),
        "false" => return Ok(Literal::Bool(false)),
        "null" => return Ok(Literal::Null),
        _ => {}
    }
    let looks_numeric = word
        .chars()
        .all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
    if looks_numeric
        && word.len() <= 40
        && let Ok(Value::Number(n)) = serde_json::from_str::<Value>(word)
    {
        return Ok(Literal::Number(n));
    }
    Err(ScimError::invalid_filter(format!(
        "{word:?} is not a value: strings are quoted, e.g. \"{word}\""
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        parse(text).unwrap().text()
    }

    #[test]
    fn the_rfc_examples_parse() {
        let examples = [
            r#"userName Eq "john""#,
            r#"Username eq "john""#,
            r#"userName eq "bjensen""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        ];
        for example in examples {
            let filter = parse(example).unwrap_or_else(|e| panic!("{example}: {e}"));
            // The printed form parses back to the same tree.
            assert_eq!(parse(&filter.text()).unwrap(), filter, "{example}");
        }
    }

    #[test]
    fn and_binds_tighter_than_or() {
        assert_eq!(round("a pr or b pr and c pr"), "(a pr or (b pr and c pr))");
        assert_eq!(
            round("(a pr or b pr) and c pr"),
            "((a pr or b pr) and c pr)"
        );
        assert_eq!(round("a pr and b pr or c pr"), "((a pr and b pr) or c pr)");
        assert_eq!(round("NOT (a pr)"), "not (a pr)");
        assert_eq!(round("not(a pr)"), "not (a pr)");
    }

    #[test]
    fn literals() {
        assert_eq!(round("active eq True"), "active eq true");
        assert_eq!(round("x eq 12.5"), "x eq 12.5");
        assert_eq!(round("x eq -3"), "x eq -3");
        assert_eq!(round(r#"x eq "a\"b\\c\u00e9""#), r#"x eq "a\"b\\cé""#);
        assert!(parse("x eq bareword").is_err());
    }

    #[test]
    fn bad_filters_are_refused_with_invalid_filter() {
        for bad in [
            "",
            "   ",
            "userName",
            "userName eq",
            r#"userName equals "x""#,
            r#"userName eq "x" and"#,
            r#"(userName eq "x""#,
            r#"userName eq "x")"#,
            r#"emails[type eq "work""#,
            r#"emails[type[x eq "y"] eq "work"]"#,
            r#"emails.value[type eq "work"]"#,
            r#"userName eq "unterminated"#,
            r#"userName eq "bad \q escape""#,
            r#"not userName eq "x""#,
            r#"1bad eq "x""#,
            r#"userName eq "x" userName eq "y""#,
        ] {
            let error = parse(bad).unwrap_err();
            assert_eq!(
                error.scim_type,
                Some(crate::ScimType::InvalidFilter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hostile_sizes_are_bounded() {
        let deep = format!("{}a pr{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err());
        let wide = vec!["a pr"; 500].join(" or ");
        assert!(parse(&wide).is_err());
        let long = format!("a eq \"{}\"", "x".repeat(5000));
        assert!(parse(&long).is_err());
        let nots = format!("{}a pr{}", "not (".repeat(40), ")".repeat(40));
        assert!(parse(&nots).is_err());
    }
}
