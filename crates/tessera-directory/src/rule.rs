//! Dynamic membership rules, in the syntax of Entra ID:
//!
//! ```text
//! user.department -eq "Finance" -and user.accountEnabled -eq true
//! (user.jobTitle -startsWith "SDE") -or -not (user.mail -endsWith "@contoso.com")
//! user.usageLocation -in ["DE", "FR"]
//! ```
//!
//! Precedence, loosest first: `-or`, `-and`, `-not`, comparisons. Operators may be
//! written with or without the leading hyphen and in any case; string comparisons and
//! regular expressions are case-insensitive; `null` is compared with `-eq`/`-ne` only.
//! Strings are double-quoted with a backtick escaping a quote or a backtick (Entra's
//! rule), or single-quoted with `''` for a quote.
//!
//! The same syntax over device attributes is Conditional Access's filter for devices
//! (`device.isCompliant -eq True -and device.trustType -eq "AzureAD"`), parsed by
//! [`parse_device_filter`] and evaluated by [`matches_device`]; a device that is not
//! registered has every attribute null.
//!
//! Not supported (refused with a clear error): device properties in membership rules
//! and user properties in device filters, `-any`/`-all` over collections,
//! `system.now`. Membership is recomputed when a user changes, so a rule that depends
//! on the passing of time would silently go stale.
//!
//! The parser takes untrusted input (any administrator's text): it bounds length and
//! nesting depth and never panics (see `fuzz/fuzz_targets/membership_rule.rs`).

use std::fmt;

use regex::{Regex, RegexBuilder};
use tessera_core::Timestamp;
use uuid::Uuid;

use crate::model::{DeviceSpec, TrustType, UserSpec};

pub const MAX_RULE_LENGTH: usize = 3072;
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {position})")]
pub struct RuleError {
    pub message: String,
    /// Character offset in the rule text where the problem was found.
    pub position: usize,
}

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    User,
    Device,
}

impl Object {
    fn prefix(self) -> &'static str {
        match self {
            Object::User => "user",
            Object::Device => "device",
        }
    }
}

/// A user or device attribute a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    ObjectId,
    AccountEnabled,
    UserType,
    UserPrincipalName,
    DisplayName,
    GivenName,
    Surname,
    Mail,
    EmployeeId,
    Department,
    JobTitle,
    UsageLocation,
    EmployeeHireDate,
    EmployeeLeaveDateTime,
    ManagerId,
    DeviceId,
    DeviceDisplayName,
    DeviceOwnership,
    IsCompliant,
    Manufacturer,
    Model,
    OperatingSystem,
    OperatingSystemVersion,
    TrustType,
    /// `extensionAttribute1` .. `extensionAttribute15`.
    ExtensionAttribute(u8),
}

const PROPERTIES: &[(&str, Property)] = &[
    ("objectId", Property::ObjectId),
    ("accountEnabled", Property::AccountEnabled),
    ("userType", Property::UserType),
    ("userPrincipalName", Property::UserPrincipalName),
    ("displayName", Property::DisplayName),
    ("givenName", Property::GivenName),
    ("surname", Property::Surname),
    ("mail", Property::Mail),
    ("employeeId", Property::EmployeeId),
    ("department", Property::Department),
    ("jobTitle", Property::JobTitle),
    ("usageLocation", Property::UsageLocation),
    ("employeeHireDate", Property::EmployeeHireDate),
    ("employeeLeaveDateTime", Property::EmployeeLeaveDateTime),
    ("manager", Property::ManagerId),
];

const DEVICE_PROPERTIES: &[(&str, Property)] = &[
    ("deviceId", Property::DeviceId),
    ("displayName", Property::DeviceDisplayName),
    ("deviceOwnership", Property::DeviceOwnership),
    ("isCompliant", Property::IsCompliant),
    ("manufacturer", Property::Manufacturer),
    ("model", Property::Model),
    ("operatingSystem", Property::OperatingSystem),
    ("operatingSystemVersion", Property::OperatingSystemVersion),
    ("trustType", Property::TrustType),
];

impl Property {
    fn lookup(object: Object, name: &str) -> Option<Property> {
        let table = match object {
            Object::User => PROPERTIES,
            Object::Device => {
                let lower = name.to_ascii_lowercase();
                if let Some(digits) = lower.strip_prefix("extensionattribute")
                    && let Ok(n) = digits.parse::<u8>()
                    && (1..=15).contains(&n)
                    && digits == n.to_string()
                {
                    return Some(Property::ExtensionAttribute(n));
                }
                DEVICE_PROPERTIES
            }
        };
        table
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }

    fn object(self) -> Object {
        if DEVICE_PROPERTIES.iter().any(|(_, p)| *p == self)
            || matches!(self, Property::ExtensionAttribute(_))
        {
            Object::Device
        } else {
            Object::User
        }
    }

    /// The attribute as a rule names it, e.g. `user.department`.
    fn qualified(self) -> String {
        if let Property::ExtensionAttribute(n) = self {
            return format!("device.extensionAttribute{n}");
        }
        let name = PROPERTIES
            .iter()
            .chain(DEVICE_PROPERTIES)
            .find(|(_, p)| *p == self)
            .map(|(n, _)| *n)
            .unwrap_or("?");
        format!("{}.{name}", self.object().prefix())
    }

    fn is_boolean(self) -> bool {
        matches!(self, Property::AccountEnabled | Property::IsCompliant)
    }

    fn is_date(self) -> bool {
        matches!(
            self,
            Property::EmployeeHireDate | Property::EmployeeLeaveDateTime
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
    Le,
    Ge,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("eq", Operator::Eq),
    ("ne", Operator::Ne),
    ("startsWith", Operator::StartsWith),
    ("notStartsWith", Operator::NotStartsWith),
    ("endsWith", Operator::EndsWith),
    ("notEndsWith", Operator::NotEndsWith),
    ("contains", Operator::Contains),
    ("notContains", Operator::NotContains),
    ("match", Operator::Match),
    ("notMatch", Operator::NotMatch),
    ("in", Operator::In),
    ("notIn", Operator::NotIn),
    ("le", Operator::Le),
    ("ge", Operator::Ge),
];

impl Operator {
    fn lookup(name: &str) -> Option<Operator> {
        OPERATORS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, o)| *o)
    }

    fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Null,
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

/// A compiled regular expression, compared by its source.
#[derive(Debug, Clone)]
pub struct Pattern(Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Or(Vec<Rule>),
    And(Vec<Rule>),
    Not(Box<Rule>),
    Compare {
        property: Property,
        operator: Operator,
        value: Literal,
        pattern: Option<Pattern>,
    },
}

// ---------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    Comma,
    /// `-word`: an operator or a logical keyword.
    Dashed(String),
    /// A bare word: `user.department`, `true`, `null`, `and`, `eq`, a number.
    Word(String),
    Text(String),
}

fn is_dash(c: char) -> bool {
    // The Entra documentation itself contains rules typed with an en dash.
    c == '-' || c == '\u{2013}'
}

fn lex(text: &str) -> Result<Vec<(Token, usize)>, RuleError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let simple = match c {
            '(' => Some(Token::LeftParen),
            ')' => Some(Token::RightParen),
            '[' => Some(Token::LeftBracket),
            ']' => Some(Token::RightBracket),
            ',' => Some(Token::Comma),
            _ => None,
        };
        if let Some(token) = simple {
            tokens.push((token, start));
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' {
            let quote = c;
            let mut value = String::new();
            i += 1;
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(RuleError {
                        message: "unterminated string".to_string(),
                        position: start,
                    });
                };
                if quote == '"' && ch == '`' {
                    match chars.get(i + 1) {
                        Some(&next) if next == '"' || next == '`' => {
                            value.push(next);
                            i += 2;
                            continue;
                        }
                        _ => {
                            value.push(ch);
                            i += 1;
                            continue;
                        }
                    }
                }
                if ch == quote {
                    if quote == '\'' && chars.get(i + 1) == Some(&'\'') {
                        value.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                value.push(ch);
                i += 1;
            }
            tokens.push((Token::Text(value), start));
            continue;
        }
        let word_char = |ch: char| {
            ch.is_alphanumeric() || ch == '.' || ch == '_' || ch == '$' || ch == ':' || ch == '+'
        };
        if is_dash(c) && chars.get(i + 1).is_some_and(|n| n.is_alphabetic()) {
            i += 1;
            let mut word = String::new();
            while let Some(&ch) = chars.get(i) {
                if !ch.is_alphanumeric() {
                    break;
                }
                word.push(ch);
                i += 1;
            }
            tokens.push((Token::Dashed(word), start));
            continue;
        }
        if word_char(c) || is_dash(c) {
            let mut word = String::new();
            word.push(c);
            i += 1;
            while let Some(&ch) = chars.get(i) {
                if !(word_char(ch) || ch == '-') {
                    break;
                }
                word.push(ch);
                i += 1;
            }
            tokens.push((Token::Word(word), start));
            continue;
        }
        return Err(RuleError {
            message: format!("unexpected character {c:?}"),
            position: start,
        });
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------
// Parser

struct Parser {
    object: Object,
    tokens: Vec<(Token, usize)>,
    next: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens
            .get(self.next)
            .map(|(_, p)| *p)
            .unwrap_or(self.end)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError {
            message: message.into(),
            position: self.position(),
        })
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(t, _)| t.clone());
        self.next += 1;
        token
    }

    /// Whether the next token is the keyword `word` (`-word` or bare `word`).
    fn at_keyword(&self, word: &str) -> bool {
        match self.peek() {
            Some(Token::Dashed(w)) | Some(Token::Word(w)) => w.eq_ignore_ascii_case(word),
            _ => false,
        }
    }

    fn enter(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.error(format!(
                "the rule is nested more than {MAX_DEPTH} levels deep"
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Rule, RuleError> {
        self.enter()?;
        let mut terms = vec![self.and()?];
        while self.at_keyword("or") {
            self.advance();
            terms.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Rule::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Rule, RuleError> {
        let mut terms = vec![self.unary()?];
        while self.at_keyword("and") {
            self.advance();
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Rule::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Rule, RuleError> {
        if self.at_keyword("not") {
            self.advance();
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            if let Rule::Compare {
                value: Literal::Null,
                ..
            } = inner
            {
                return self
                    .error("-not cannot be used with a comparison against null; use -ne null");
            }
            return Ok(Rule::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Rule, RuleError> {
        match self.peek() {
            Some(Token::LeftParen) => {
                self.advance();
                let inner = self.or()?;
                match self.advance() {
                    Some(Token::RightParen) => Ok(inner),
                    _ => {
                        self.next = self.next.saturating_sub(1);
                        self.error("expected )")
                    }
                }
            }
            Some(Token::Word(_)) => self.comparison(),
            Some(_) => self.error("expected a property such as user.department, or ("),
            None => self.error("the rule ends where a comparison was expected"),
        }
    }

    fn comparison(&mut self) -> Result<Rule, RuleError> {
        let property_position = self.position();
        let Some(Token::Word(word)) = self.advance() else {
            return self.error("expected a property");
        };
        let prefix = self.object.prefix();
        let property = match word.split_once('.') {
            Some((object, name)) if object.eq_ignore_ascii_case(prefix) => {
                match Property::lookup(self.object, name) {
                    Some(property) => property,
                    None => {
                        return Err(RuleError {
                            message: format!("{prefix}.{name} is not a supported property"),
                            position: property_position,
                        });
                    }
                }
            }
            Some((object, _)) if object.eq_ignore_ascii_case("device") => {
                return Err(RuleError {
                    message: "device rules are not supported: group rules are over user attributes"
                        .to_string(),
                    position: property_position,
                });
            }
            Some((object, _)) if object.eq_ignore_ascii_case("user") => {
                return Err(RuleError {
                    message: "a filter for devices tests device attributes, not user ones"
                        .to_string(),
                    position: property_position,
                });
            }
            _ => {
                return Err(RuleError {
                    message: format!("{word:?} is not a property (expected {prefix}.<attribute>)"),
                    position: property_position,
                });
            }
        };
        let operator_name = match self.advance() {
            Some(Token::Dashed(w)) | Some(Token::Word(w)) => w,
            _ => {
                self.next = self.next.saturating_sub(1);
                return self.error("expected an operator such as -eq");
            }
        };
        if operator_name.eq_ignore_ascii_case("any") || operator_name.eq_ignore_ascii_case("all") {
            self.next = self.next.saturating_sub(1);
            return self.error(format!(
                "-any and -all are not supported: no {prefix} property here is a collection"
            ));
        }
        let Some(operator) = Operator::lookup(&operator_name) else {
            self.next = self.next.saturating_sub(1);
            return self.error(format!("{operator_name:?} is not an operator"));
        };
        let value = self.literal()?;
        self.check(property, operator, value)
    }

    fn literal(&mut self) -> Result<Literal, RuleError> {
        match self.advance() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            Some(Token::Word(word)) => {
                if word.eq_ignore_ascii_case("null") {
                    Ok(Literal::Null)
                } else if word.eq_ignore_ascii_case("true") {
                    Ok(Literal::Bool(true))
                } else if word.eq_ignore_ascii_case("false") {
                    Ok(Literal::Bool(false))
                } else if word.to_ascii_lowercase().starts_with("system.") {
                    self.next = self.next.saturating_sub(1);
                    self.error("system.now is not supported: membership is recomputed when users change, not as time passes")
                } else if self.object == Object::User
                    && word.chars().all(|c| c.is_ascii_digit() || c == '-')
                {
                    Ok(Literal::Text(word))
                } else {
                    self.next = self.next.saturating_sub(1);
                    self.error(format!(
                        "{word:?} is not a value: put text in double quotes"
                    ))
                }
            }
            Some(Token::LeftBracket) => {
                let mut items = Vec::new();
                loop {
                    match self.advance() {
                        Some(Token::Text(text)) => items.push(text),
                        Some(Token::Word(word)) if word.chars().all(|c| c.is_ascii_digit()) => {
                            items.push(word)
                        }
                        Some(Token::RightBracket) if items.is_empty() => break,
                        _ => {
                            self.next = self.next.saturating_sub(1);
                            return self.error("expected a quoted value in the list");
                        }
                    }
                    match self.advance() {
                        Some(Token::Comma) => continue,
                        Some(Token::RightBracket) => break,
                        _ => {
                            self.next = self.next.saturating_sub(1);
                            return self.error("expected , or ] in the list");
                        }
                    }
                }
                Ok(Literal::List(items))
            }
            _ => {
                self.next = self.next.saturating_sub(1);
                self.error("expected a value")
            }
        }
    }

    fn check(
        &self,
        property: Property,
        operator: Operator,
        value: Literal,
    ) -> Result<Rule, RuleError> {
        let position = self
            .tokens
            .get(self.next.saturating_sub(1))
            .map(|(_, p)| *p)
            .unwrap_or(self.end);
        let fail = |message: String| Err(RuleError { message, position });
        let list_operator = matches!(operator, Operator::In | Operator::NotIn);
        match (&value, list_operator) {
            (Literal::List(_), false) => {
                return fail(format!(
                    "-{} takes a single value, not a list",
                    operator.name()
                ));
            }
            (Literal::List(_), true) => {}
            (_, true) => {
                return fail(format!(
                    "-{} takes a list such as [\"a\", \"b\"]",
                    operator.name()
                ));
            }
            _ => {}
        }
        if value == Literal::Null && !matches!(operator, Operator::Eq | Operator::Ne) {
            return fail("null can only be compared with -eq or -ne".to_string());
        }
        if property.is_boolean() && !matches!(operator, Operator::Eq | Operator::Ne) {
            return fail(format!(
                "{} is true or false: use -eq or -ne",
                property.qualified()
            ));
        }
        if matches!(operator, Operator::Le | Operator::Ge) && !property.is_date() {
            return fail(format!(
                "-{} compares dates; {} is not a date",
                operator.name(),
                property.qualified()
            ));
        }
        if property.is_date()
            && let Literal::Text(text) = &value
            && Timestamp::parse_rfc3339(text).is_err()
        {
            return fail(format!(
                "{text:?} is not a date-time such as \"2026-01-31T00:00:00Z\""
            ));
        }
        if let Literal::Bool(_) = value
            && !property.is_boolean()
        {
            return fail(format!("{} is not true or false", property.qualified()));
        }
        let pattern = if matches!(operator, Operator::Match | Operator::NotMatch) {
            let Literal::Text(source) = &value else {
                return fail("-match takes a regular expression in quotes".to_string());
            };
            let compiled = RegexBuilder::new(source)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .nest_limit(32)
                .build();
            match compiled {
                Ok(regex) => Some(Pattern(regex)),
                Err(error) => return fail(format!("invalid regular expression: {error}")),
            }
        } else {
            None
        };
        Ok(Rule::Compare {
            property,
            operator,
            value,
            pattern,
        })
    }
}

/// Parses a membership rule.
pub fn parse(text: &str) -> Result<Rule, RuleError> {
    parse_for(Object::User, text)
}

/// Parses a Conditional Access filter for devices.
pub fn parse_device_filter(text: &str) -> Result<Rule, RuleError> {
    parse_for(Object::Device, text)
}

fn parse_for(object: Object, text: &str) -> Result<Rule, RuleError> {
    if text.chars().count() > MAX_RULE_LENGTH {
        return Err(RuleError {
            message: format!("a rule is at most {MAX_RULE_LENGTH} characters"),
            position: 0,
        });
    }
    let tokens = lex(text)?;
    let end = text.chars().count();
    let mut parser = Parser {
        object,
        tokens,
        next: 0,
        end,
        depth: 0,
    };
    let rule = parser.or()?;
    if parser.next < parser.tokens.len() {
        return parser.error("unexpected text after the end of the rule (missing -and or -or?)");
    }
    Ok(rule)
}

// ---------------------------------------------------------------------------------
// Evaluation

enum Value<'a> {
    Null,
    Bool(bool),
    Text(std::borrow::Cow<'a, str>),
    Time(Timestamp),
}

fn value_of<'a>(property: Property, id: Uuid, user: &'a UserSpec) -> Value<'a> {
    use std::borrow::Cow;
    let text = |v: &'a Option<String>| match v {
        Some(s) if !s.is_empty() => Value::Text(Cow::Borrowed(s.as_str())),
        _ => Value::Null,
    };
    match property {
        Property::ObjectId => Value::Text(Cow::Owned(id.to_string())),
        Property::AccountEnabled => Value::Bool(user.account_enabled),
        Property::UserType => Value::Text(Cow::Borrowed(user.user_type.as_str())),
        Property::UserPrincipalName => Value::Text(Cow::Borrowed(&user.user_principal_name)),
        Property::DisplayName => Value::Text(Cow::Borrowed(&user.display_name)),
        Property::GivenName => text(&user.given_name),
        Property::Surname => text(&user.surname),
        Property::Mail => text(&user.mail),
        Property::EmployeeId => text(&user.employee_id),
        Property::Department => text(&user.department),
        Property::JobTitle => text(&user.job_title),
        Property::UsageLocation => text(&user.usage_location),
        Property::EmployeeHireDate => user
            .employee_hire_date
            .map(Value::Time)
            .unwrap_or(Value::Null),
        Property::EmployeeLeaveDateTime => user
            .employee_leave_date_time
            .map(Value::Time)
            .unwrap_or(Value::Null),
        Property::ManagerId => user
            .manager_id
            .map(|m| Value::Text(Cow::Owned(m.to_string())))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn device_value_of<'a>(property: Property, device: Option<(Uuid, &'a DeviceSpec)>) -> Value<'a> {
    use std::borrow::Cow;
    let Some((id, device)) = device else {
        return Value::Null;
    };
    let text = |v: &'a Option<String>| match v {
        Some(s) if !s.is_empty() => Value::Text(Cow::Borrowed(s.as_str())),
        _ => Value::Null,
    };
    match property {
        Property::DeviceId => Value::Text(Cow::Owned(id.to_string())),
        Property::DeviceDisplayName => Value::Text(Cow::Borrowed(&device.display_name)),
        Property::DeviceOwnership => device
            .device_ownership
            .map(|o| Value::Text(Cow::Borrowed(o.as_graph())))
            .unwrap_or(Value::Null),
        Property::IsCompliant => Value::Bool(device.is_compliant),
        Property::Manufacturer => text(&device.manufacturer),
        Property::Model => text(&device.model),
        Property::OperatingSystem => text(&device.operating_system),
        Property::OperatingSystemVersion => text(&device.operating_system_version),
        Property::TrustType => device
            .trust_type
            .map(|t| {
                Value::Text(Cow::Borrowed(match t {
                    TrustType::Registered => "Workplace",
                    TrustType::Joined => "AzureAD",
                    TrustType::Hybrid => "ServerAD",
                }))
            })
            .unwrap_or(Value::Null),
        Property::ExtensionAttribute(n) => device
            .extension_attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&format!("extensionAttribute{n}")))
            .map(|(_, v)| Value::Text(Cow::Borrowed(v.as_str())))
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn lower(text: &str) -> String {
    text.to_lowercase()
}

/// Whether the user with `id` and attributes `user` satisfies `rule`.
pub fn matches(rule: &Rule, id: Uuid, user: &UserSpec) -> bool {
    evaluate(rule, &|property| value_of(property, id, user))
}

/// Whether a device (`None`: not registered, every attribute null) passes a filter.
pub fn matches_device(rule: &Rule, device: Option<(Uuid, &DeviceSpec)>) -> bool {
    evaluate(rule, &|property| device_value_of(property, device))
}

fn evaluate<'a>(rule: &Rule, value: &dyn Fn(Property) -> Value<'a>) -> bool {
    match rule {
        Rule::Or(terms) => terms.iter().any(|t| evaluate(t, value)),
        Rule::And(terms) => terms.iter().all(|t| evaluate(t, value)),
        Rule::Not(inner) => !evaluate(inner, value),
        Rule::Compare {
            property,
            operator,
            value: expected,
            pattern,
        } => compare(value(*property), *operator, expected, pattern.as_ref()),
    }
}

fn compare(
    actual: Value<'_>,
    operator: Operator,
    expected: &Literal,
    pattern: Option<&Pattern>,
) -> bool {
    match (expected, operator) {
        (Literal::Null, Operator::Eq) => return matches!(actual, Value::Null),
        (Literal::Null, _) => return !matches!(actual, Value::Null),
        _ => {}
    }
    let actual_text = match &actual {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        Value::Text(t) => Some(lower(t)),
        Value::Time(t) => Some(t.to_rfc3339()),
    };
    match operator {
        Operator::Eq | Operator::Ne => {
            let equal = match (&actual, expected) {
                (Value::Bool(b), Literal::Bool(e)) => b == e,
                (Value::Bool(b), Literal::Text(e)) => e.eq_ignore_ascii_case(&b.to_string()),
                (Value::Time(t), Literal::Text(e)) => {
                    Timestamp::parse_rfc3339(e).is_ok_and(|e| e == *t)
                }
                (Value::Text(t), Literal::Text(e)) => lower(t) == lower(e),
                _ => false,
            };
            if operator == Operator::Eq {
                equal
            } else {
                !equal
            }
        }
        Operator::StartsWith
        | Operator::NotStartsWith
        | Operator::EndsWith
        | Operator::NotEndsWith
        | Operator::Contains
        | Operator::NotContains => {
            let Literal::Text(e) = expected else {
                return false;
            };
            let e = lower(e);
            let hit = actual_text.as_deref().is_some_and(|a| match operator {
                Operator::StartsWith | Operator::NotStartsWith => a.starts_with(&e),
                Operator::EndsWith | Operator::NotEndsWith => a.ends_with(&e),
                _ => a.contains(&e),
            });
            let negated = matches!(
                operator,
                Operator::NotStartsWith | Operator::NotEndsWith | Operator::NotContains
            );
            hit != negated
        }
        Operator::Match | Operator::NotMatch => {
            let hit = match (&actual, pattern) {
                (Value::Text(t), Some(p)) => p.0.is_match(t),
                (Value::Bool(b), Some(p)) => p.0.is_match(&b.to_string()),
                _ => false,
            };
            if operator == Operator::Match {
                hit
            } else {
                !hit
            }
        }
        Operator::In | Operator::NotIn => {
            let Literal::List(items) = expected else {
                return false;
            };
            let hit = actual_text
                .as_deref()
                .is_some_and(|a| items.iter().any(|i| lower(i) == a));
            if operator == Operator::In { hit } else { !hit }
        }
        Operator::Le | Operator::Ge => {
            let (Value::Time(t), Literal::Text(e)) = (&actual, expected) else {
                return false;
            };
            let Ok(e) = Timestamp::parse_rfc3339(e) else {
                return false;
            };
            if operator == Operator::Le {
                *t <= e
            } else {
                *t >= e
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Printing: a canonical form that parses back to the same rule.

fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Or(terms) | Rule::And(terms) => {
                let keyword = if matches!(self, Rule::Or(_)) {
                    " -or "
                } else {
                    " -and "
                };
                for (index, term) in terms.iter().enumerate() {
                    if index > 0 {
                        f.write_str(keyword)?;
                    }
                    write!(f, "({term})")?;
                }
                Ok(())
            }
            Rule::Not(inner) => write!(f, "-not ({inner})"),
            Rule::Compare {
                property,
                operator,
                value,
                ..
            } => {
                write!(f, "{} -{} ", property.qualified(), operator.name())?;
                match value {
                    Literal::Null => f.write_str("null"),
                    Literal::Bool(b) => write!(f, "{b}"),
                    Literal::Text(t) => f.write_str(&quote(t)),
                    Literal::List(items) => {
                        let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
                        write!(f, "[{}]", quoted.join(", "))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user(extra: serde_json::Value) -> UserSpec {
        let mut base =
            json!({"userPrincipalName": "adele@contoso.com", "displayName": "Adele Vance"});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    /// Parses `rule` and checks the verdict for a user with `attributes`.
    fn check(rule: &str, attributes: serde_json::Value, expected: bool) {
        let parsed = parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(
            matches(&parsed, Uuid::nil(), &user(attributes)),
            expected,
            "{rule}"
        );
        let reprinted = parsed.to_string();
        assert_eq!(
            parse(&reprinted).unwrap(),
            parsed,
            "round trip of {rule} via {reprinted}"
        );
    }

    fn check_error(rule: &str, fragment: &str) {
        let error = parse(rule).expect_err(rule);
        assert!(error.message.contains(fragment), "{rule}: {error}");
    }

    #[test]
    fn the_issue_example() {
        let rule = "user.department -eq \"Finance\" -and user.accountEnabled -eq true";
        check(rule, json!({"department": "Finance"}), true);
        check(rule, json!({"department": "finance"}), true);
        check(
            rule,
            json!({"department": "Finance", "accountEnabled": false}),
            false,
        );
        check(rule, json!({"department": "Sales"}), false);
        check(rule, json!({}), false);
    }

    #[test]
    fn documented_examples() {
        check(
            "user.department -eq \"Sales\"",
            json!({"department": "Sales"}),
            true,
        );
        check(
            "(user.department -eq \"Sales\") -or (user.department -eq \"Marketing\")",
            json!({"department": "Marketing"}),
            true,
        );
        check(
            "(user.department -eq \"Sales\") -and -not (user.jobTitle -startsWith \"SDE\")",
            json!({"department": "Sales", "jobTitle": "SDE II"}),
            false,
        );
        check(
            "(user.department -eq \"Sales\") -and -not (user.jobTitle -startsWith \"SDE\")",
            json!({"department": "Sales", "jobTitle": "Manager"}),
            true,
        );
        check(
            "user.usageLocation -eq \"US\" -and (user.department -eq \"Marketing\" -or user.department -eq \"Sales\")",
            json!({"usageLocation": "US", "department": "Sales"}),
            true,
        );
        check("user.displayName -match \"^Ad.*\"", json!({}), true);
        check("user.displayName -match \".*vid\"", json!({}), false);
        check(
            "user.mail -notEndsWith \"@Contoso.com\"",
            json!({"mail": "adele@contoso.com"}),
            false,
        );
        check(
            "(user.objectId -ne null) -and (user.userType -eq \"Member\")",
            json!({}),
            true,
        );
        check(
            "user.department -in [\"50001\",\"50002\"]",
            json!({"department": "50002"}),
            true,
        );
        check(
            "user.department -notIn ['50001', '50002']",
            json!({"department": "50003"}),
            true,
        );
    }

    #[test]
    fn null_means_absent() {
        check("user.department -eq null", json!({}), true);
        check(
            "user.department -eq null",
            json!({"department": "Sales"}),
            false,
        );
        check("user.mail -ne null", json!({"mail": "a@b.c"}), true);
        check("user.department -eq \"null\"", json!({}), false);
    }

    #[test]
    fn operators_without_hyphen_and_in_any_case() {
        check(
            "user.department EQ \"Sales\" and user.accountEnabled eq true",
            json!({"department": "sales"}),
            true,
        );
        check(
            "user.department \u{2013}eq \"Sales\"",
            json!({"department": "Sales"}),
            true,
        );
    }

    #[test]
    fn escapes() {
        check(
            "user.department -eq \"`\"Sales`\"\"",
            json!({"department": "\"Sales\""}),
            true,
        );
        check(
            "user.jobTitle -eq 'O''Brien'",
            json!({"jobTitle": "O'Brien"}),
            true,
        );
    }

    #[test]
    fn dates() {
        check(
            "user.employeeHireDate -le \"2026-01-01T00:00:00Z\"",
            json!({"employeeHireDate": "2025-06-01T00:00:00Z"}),
            true,
        );
        check(
            "user.employeeHireDate -ge \"2026-01-01T00:00:00Z\"",
            json!({"employeeHireDate": "2025-06-01T00:00:00Z"}),
            false,
        );
    }

    fn device(extra: serde_json::Value) -> DeviceSpec {
        let mut base = json!({"displayName": "LAPTOP-1"});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn device_filters_read_entra_syntax() {
        let managed = device(json!({
            "isCompliant": true, "deviceOwnership": "Company", "trustType": "AzureAd",
            "operatingSystem": "Windows", "model": "Surface Laptop 5",
            "extensionAttributes": {"extensionAttribute3": "SAW"}
        }));
        let personal = device(json!({"deviceOwnership": "Personal", "trustType": "Workplace"}));
        let id = Uuid::from_u128(7);
        let cases = [
            (
                "device.isCompliant -eq True -and device.deviceOwnership -eq \"Company\"",
                true,
                false,
                false,
            ),
            (
                "device.deviceOwnership -eq \"Company\" -or device.isCompliant -eq True",
                true,
                false,
                false,
            ),
            ("device.trustType -eq \"AzureAD\"", true, false, false),
            ("device.trustType -ne \"AzureAD\"", false, true, true),
            (
                "device.trustType -in [\"AzureAD\", \"ServerAD\"]",
                true,
                false,
                false,
            ),
            ("device.model -startsWith \"surface\"", true, false, false),
            ("device.extensionAttribute3 -eq \"SAW\"", true, false, false),
            ("device.isCompliant -ne True", false, true, true),
            (
                "device.deviceId -eq \"00000000-0000-0000-0000-000000000007\"",
                true,
                false,
                false,
            ),
        ];
        for (text, on_managed, on_personal, on_unregistered) in cases {
            let rule = parse_device_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                matches_device(&rule, Some((id, &managed))),
                on_managed,
                "{text}"
            );
            assert_eq!(
                matches_device(&rule, Some((Uuid::from_u128(8), &personal))),
                on_personal,
                "{text}"
            );
            assert_eq!(matches_device(&rule, None), on_unregistered, "{text}");
            let printed = rule.to_string();
            assert_eq!(parse_device_filter(&printed).unwrap(), rule, "{printed}");
        }
        for (text, message) in [
            ("user.department -eq \"x\"", "device attributes"),
            ("device.isCompliant -startsWith \"T\"", "true or false"),
            (
                "device.extensionAttribute16 -eq \"x\"",
                "not a supported property",
            ),
            ("device.serial -eq \"x\"", "not a supported property"),
        ] {
            let error = parse_device_filter(text).unwrap_err();
            assert!(error.message.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn errors_are_clear() {
        check_error("user.departmnt -eq \"Sales\"", "not a supported property");
        check_error("device.deviceOSType -eq \"iOS\"", "device rules");
        check_error("user.department -equals \"Sales\"", "not an operator");
        check_error("user.department -eq Sales", "put text in double quotes");
        check_error("user.department -eq \"Sales", "unterminated");
        check_error("(user.department -eq \"Sales\"", "expected )");
        check_error(
            "user.department -eq \"Sales\" user.jobTitle -eq \"x\"",
            "after the end",
        );
        check_error("user.department -in \"Sales\"", "takes a list");
        check_error("user.department -startsWith null", "null can only");
        check_error("-not (user.department -eq null)", "-not cannot");
        check_error("user.accountEnabled -startsWith \"t\"", "true or false");
        check_error(
            "user.displayName -match \"(\"",
            "invalid regular expression",
        );
        check_error("user.employeeHireDate -ge system.now", "system.now");
        check_error(
            "user.proxyAddresses -any (_ -startsWith \"x\")",
            "not a supported property",
        );
        check_error("", "ends where");
        check_error(&"(".repeat(100), "nested");
        check_error(&"a".repeat(MAX_RULE_LENGTH + 1), "at most");
    }
}
