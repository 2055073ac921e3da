//! The expression language of attribute mappings: Entra's provisioning syntax.
//!
//! ```text
//! expression := part [ ("=" | "<>" | "!=") part ]      a comparison (IIF's condition)
//! part       := term { term }                           terms side by side are joined
//! term       := Name "(" [ expression { "," expression } ] ")"   a function
//!             | "[" attribute "]"                      an attribute, as the source names it
//!             | attribute                              the same, bare (letters, digits, _ . : -)
//!             | "\"" text "\""                         a string (\" and \\ escaped)
//!             | number | true | false                  constants
//!             | "@" domain                             a constant suffix: [userName]@contoso.com
//! ```
//!
//! Values are nothing (a missing attribute), text, a boolean, or a list of texts
//! (a multi-valued attribute). Where one text is needed a list gives its first
//! item. Terms side by side, `Append` and the text functions give nothing when a
//! value they need is missing (so `[mailNickname]@contoso.com` does not make
//! `@contoso.com`); `Join` leaves missing and empty values out. Comparisons and
//! `Switch` keys are exact. `Item`, `InStr`, `Mid` and `Word` count from 1.
//!
//! Parsing is bounded (length, nesting, number of operations) and every value is
//! cut to [`MAX_TEXT`] characters and [`MAX_LIST`] items, whatever the attributes
//! hold.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 2048;
/// The most operations (terms and calls) in one expression.
pub const MAX_NODES: usize = 128;
/// The deepest nesting of calls.
pub const MAX_DEPTH: usize = 16;
/// The longest value, in characters.
pub const MAX_TEXT: usize = 4096;
/// The most items of a list value.
pub const MAX_LIST: usize = 100;
/// The longest attribute name.
const MAX_ATTRIBUTE_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpressionError {
    pub message: String,
}

fn refuse<T>(message: impl Into<String>) -> Result<T, ExpressionError> {
    Err(ExpressionError {
        message: message.into(),
    })
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// An attribute of the source, by the name the source knows it.
    Attribute(String),
    Literal(String),
    Call(Function, Vec<Expression>),
    /// Terms side by side.
    Concat(Vec<Expression>),
    /// `left = right` (`equal`) or `left <> right`.
    Compare {
        left: Box<Expression>,
        equal: bool,
        right: Box<Expression>,
    },
}

macro_rules! functions {
    ($($name:ident: $min:literal ..= $max:literal),* $(,)?) => {
        /// The functions an expression may call.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum Function { $($name),* }

        impl Function {
            /// Every function, for documentation and the console's expression builder.
            pub const ALL: &'static [Function] = &[$(Function::$name),*];

            pub fn name(self) -> &'static str {
                match self { $(Function::$name => stringify!($name)),* }
            }

            /// How many arguments it takes, at least and at most.
            pub fn arity(self) -> (usize, usize) {
                match self { $(Function::$name => ($min, $max)),* }
            }

            /// The function a name calls, without regard to case.
            pub fn named(name: &str) -> Option<Function> {
                Function::ALL.iter().copied().find(|f| f.name().eq_ignore_ascii_case(name))
            }
        }
    };
}

functions! {
    Append: 2..=2,
    CBool: 1..=1,
    CStr: 1..=1,
    Coalesce: 1..=16,
    Count: 1..=1,
    DateAdd: 3..=3,
    FormatDateTime: 3..=4,
    IgnoreFlowIfNullOrEmpty: 1..=1,
    IIF: 3..=3,
    InStr: 2..=4,
    IsNull: 1..=1,
    IsNullOrEmpty: 1..=1,
    IsPresent: 1..=1,
    IsString: 1..=1,
    Item: 2..=2,
    Join: 2..=32,
    Left: 2..=2,
    Mid: 3..=3,
    NormalizeDiacritics: 1..=1,
    Not: 1..=1,
    Now: 0..=0,
    RemoveDuplicates: 1..=1,
    Replace: 3..=7,
    SelectUniqueValue: 1..=8,
    Split: 2..=2,
    StripSpaces: 1..=1,
    Switch: 2..=64,
    ToLower: 1..=2,
    ToUpper: 1..=2,
    Trim: 1..=1,
    Word: 3..=3,
}

// ---------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    text: &'a str,
    at: usize,
    nodes: usize,
}

/// Parses an expression (bounded; every function known, with its arity).
pub fn parse(text: &str) -> Result<Expression, ExpressionError> {
    if text.trim().is_empty() {
        return refuse("the expression is empty");
    }
    if text.len() > MAX_EXPRESSION_LEN {
        return refuse(format!(
            "an expression is at most {MAX_EXPRESSION_LEN} characters"
        ));
    }
    let mut parser = Parser {
        text,
        at: 0,
        nodes: 0,
    };
    let expression = parser.expression(0)?;
    parser.skip_space();
    if parser.at < text.len() {
        return refuse(format!(
            "unexpected {:?} at character {}",
            parser.rest().chars().next().unwrap_or(' '),
            parser.at + 1
        ));
    }
    check(&expression, true)?;
    Ok(expression)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            if !c.is_whitespace() {
                break;
            }
            self.at += c.len_utf8();
        }
    }

    fn count(&mut self) -> Result<(), ExpressionError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return refuse(format!("an expression has at most {MAX_NODES} operations"));
        }
        Ok(())
    }

    fn expression(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        let left = self.part(depth)?;
        self.skip_space();
        let rest = self.rest();
        let (equal, width) = if rest.starts_with("<>") || rest.starts_with("!=") {
            (false, 2)
        } else if rest.starts_with("==") {
            (true, 2)
        } else if rest.starts_with('=') {
            (true, 1)
        } else {
            return Ok(left);
        };
        self.at += width;
        let right = self.part(depth)?;
        Ok(Expression::Compare {
            left: Box::new(left),
            equal,
            right: Box::new(right),
        })
    }

    fn part(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        let mut terms = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None | Some(',' | ')' | '=' | '<' | '!') => break,
                Some(_) => terms.push(self.term(depth)?),
            }
        }
        match terms.len() {
            0 => match self.peek() {
                None => refuse("the expression ends where a value is expected"),
                Some(c) => refuse(format!(
                    "a value is expected at character {}, not {c:?}",
                    self.at + 1
                )),
            },
            1 => Ok(terms.remove(0)),
            _ => Ok(Expression::Concat(terms)),
        }
    }

    fn term(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        self.count()?;
        let start = self.at;
        let Some(first) = self.peek() else {
            return refuse("the expression ends where a value is expected");
        };
        match first {
            '"' => self.string(),
            '[' => self.bracketed(),
            '@' => {
                let end = self.rest()[1..]
                    .find(|c: char| !(c.is_alphanumeric() || "._-@".contains(c)))
                    .map_or(self.text.len(), |i| self.at + 1 + i);
                self.at = end;
                Ok(Expression::Literal(self.text[start..end].to_string()))
            }
            c if c.is_ascii_digit()
                || (c == '-' && self.rest()[1..].starts_with(|d: char| d.is_ascii_digit())) =>
            {
                let end = self.rest()[1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(self.text.len(), |i| self.at + 1 + i);
                self.at = end;
                Ok(Expression::Literal(self.text[start..end].to_string()))
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = self
                    .rest()
                    .find(|c: char| !(c.is_alphanumeric() || "_.:-$".contains(c)))
                    .map_or(self.text.len(), |i| self.at + i);
                let word = &self.text[start..end];
                self.at = end;
                self.skip_space();
                if self.peek() == Some('(') {
                    self.at += 1;
                    let function = Function::named(word).ok_or_else(|| ExpressionError {
                        message: format!(
                            "{word} is not a function (the functions are {})",
                            function_names()
                        ),
                    })?;
                    return self.call(function, depth + 1);
                }
                if word.eq_ignore_ascii_case("true") {
                    return Ok(Expression::Literal("True".into()));
                }
                if word.eq_ignore_ascii_case("false") {
                    return Ok(Expression::Literal("False".into()));
                }
                attribute(word)
            }
            other => refuse(format!("unexpected {other:?} at character {}", start + 1)),
        }
    }

    fn call(&mut self, function: Function, depth: usize) -> Result<Expression, ExpressionError> {
        if depth > MAX_DEPTH {
            return refuse(format!("calls nest at most {MAX_DEPTH} deep"));
        }
        let mut arguments = Vec::new();
        self.skip_space();
        if self.peek() == Some(')') {
            self.at += 1;
        } else {
            loop {
                self.skip_space();
                // An empty argument (Entra's Replace leaves unused ones empty).
                if matches!(self.peek(), Some(',' | ')')) {
                    self.count()?;
                    arguments.push(Expression::Literal(String::new()));
                } else {
                    arguments.push(self.expression(depth)?);
                }
                self.skip_space();
                match self.peek() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        break;
                    }
                    Some(c) => {
                        return refuse(format!(
                            "{}( expects ',' or ')' at character {}, not {c:?}",
                            function.name(),
                            self.at + 1
                        ));
                    }
                    None => return refuse(format!("{}( is not closed", function.name())),
                }
            }
        }
        let (min, max) = function.arity();
        if arguments.len() < min || arguments.len() > max {
            let wanted = if min == max {
                format!("{min}")
            } else {
                format!("{min} to {max}")
            };
            return refuse(format!(
                "{} takes {wanted} arguments, not {}",
                function.name(),
                arguments.len()
            ));
        }
        Ok(Expression::Call(function, arguments))
    }

    fn string(&mut self) -> Result<Expression, ExpressionError> {
        let mut value = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Ok(Expression::Literal(value));
                }
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => value.push(e),
                    Some(_) => {
                        return refuse("a string escapes only \\\" and \\\\");
                    }
                    None => break,
                },
                c if c.is_control() => {
                    return refuse("a string holds no control characters");
                }
                c => value.push(c),
            }
        }
        refuse("a string is not closed with \"")
    }

    /// `[name]`, where the name may hold a value filter in brackets and quoted
    /// strings (`[emails[type eq "work"].value]`).
    fn bracketed(&mut self) -> Result<Expression, ExpressionError> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (i, c) in self.rest().char_indices() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        let name = self.rest()[1..i].trim().to_string();
                        self.at += i + 1;
                        return attribute(&name);
                    }
                }
                _ => {}
            }
        }
        refuse("an attribute's '[' is not closed with ']'")
    }
}

fn attribute(name: &str) -> Result<Expression, ExpressionError> {
    if name.is_empty() || name.len() > MAX_ATTRIBUTE_LEN {
        return refuse(format!(
            "an attribute is named in 1 to {MAX_ATTRIBUTE_LEN} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return refuse("an attribute's name holds no control characters");
    }
    Ok(Expression::Attribute(name.to_string()))
}

fn function_names() -> String {
    Function::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a literal argument must be, checked when the expression is parsed.
fn literal(argument: &Expression) -> Option<&str> {
    match argument {
        Expression::Literal(text) => Some(text),
        _ => None,
    }
}

/// The checks beyond the grammar: arguments that must be constants, and
/// `SelectUniqueValue` only as the whole expression.
fn check(expression: &Expression, top: bool) -> Result<(), ExpressionError> {
    match expression {
        Expression::Call(function, arguments) => {
            match function {
                Function::SelectUniqueValue if !top => {
                    return refuse("SelectUniqueValue is the whole expression, not a part of one");
                }
                Function::Switch if arguments.len() % 2 != 0 => {
                    return refuse(
                        "Switch takes the source, the default, then pairs of key and value",
                    );
                }
                Function::FormatDateTime => {
                    let n = arguments.len();
                    for format in &arguments[n - 2..] {
                        let Some(format) = literal(format) else {
                            return refuse("FormatDateTime's formats are constant strings");
                        };
                        date_format(format)?;
                    }
                }
                Function::DateAdd => {
                    let Some(interval) = literal(&arguments[0]) else {
                        return refuse(
                            "DateAdd's interval is a constant: yyyy, q, m, d, ww, h, n or s",
                        );
                    };
                    interval_of(interval)?;
                }
                Function::Replace if arguments.len() == 7 => {
                    for (i, what) in [
                        (2, "regexPattern"),
                        (3, "regexGroupName"),
                        (5, "replacementAttributeName"),
                        (6, "template"),
                    ] {
                        if literal(&arguments[i]) != Some("") {
                            return refuse(format!(
                                "Replace's {what} is not supported: give the value to find and its replacement"
                            ));
                        }
                    }
                }
                Function::Replace if arguments.len() != 3 => {
                    return refuse(
                        "Replace takes (source, find, replacement) or Entra's seven arguments",
                    );
                }
                _ => {}
            }
            for argument in arguments {
                check(argument, false)?;
            }
        }
        Expression::Concat(terms) => {
            for term in terms {
                check(term, false)?;
            }
        }
        Expression::Compare { left, right, .. } => {
            check(left, false)?;
            check(right, false)?;
        }
        Expression::Attribute(_) | Expression::Literal(_) => {}
    }
    Ok(())
}

impl Expression {
    /// The attributes the expression reads, in order, each once.
    pub fn attributes(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expression::Attribute(name) => {
                if !out.contains(&name.as_str()) {
                    out.push(name);
                }
            }
            Expression::Literal(_) => {}
            Expression::Call(_, arguments) | Expression::Concat(arguments) => {
                for a in arguments {
                    a.collect(out);
                }
            }
            Expression::Compare { left, right, .. } => {
                left.collect(out);
                right.collect(out);
            }
        }
    }

    /// The candidates of a `SelectUniqueValue` expression, `None` for any other.
    pub fn unique_candidates(&self) -> Option<&[Expression]> {
        match self {
            Expression::Call(Function::SelectUniqueValue, candidates) => Some(candidates),
            _ => None,
        }
    }
}

/// The canonical text, which parses back to the same expression.
impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expression::Attribute(name) => write!(f, "[{name}]"),
            Expression::Literal(text) => {
                f.write_str("\"")?;
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
            Expression::Call(function, arguments) => {
                write!(f, "{}(", function.name())?;
                for (i, a) in arguments.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expression::Concat(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
            Expression::Compare { left, equal, right } => {
                write!(f, "{left} {} {right}", if *equal { "=" } else { "<>" })
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Values and evaluation

/// A value: nothing, a text, a boolean, or a list of texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Null,
    Text(String),
    Bool(bool),
    List(Vec<String>),
}

impl Val {
    /// Nothing, an empty text or an empty list.
    pub fn is_empty(&self) -> bool {
        match self {
            Val::Null => true,
            Val::Text(t) => t.is_empty(),
            Val::Bool(_) => false,
            Val::List(items) => items.is_empty(),
        }
    }

    /// The value as one text: a list's first item, a boolean as `True`/`False`.
    pub fn text(&self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Text(t) => Some(t.clone()),
            Val::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            Val::List(items) => items.first().cloned(),
        }
    }

    /// The value as texts: a list's items, one text, or none.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Val::List(items) => items.clone(),
            other => other.text().into_iter().collect(),
        }
    }

    /// The value as a boolean: a boolean, or the text `true`/`false` in any case.
    pub fn truth(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            other => match other.text()?.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
        }
    }

    fn bounded(self) -> Val {
        match self {
            Val::Text(t) => Val::Text(cut(t)),
            Val::List(items) => Val::List(items.into_iter().take(MAX_LIST).map(cut).collect()),
            other => other,
        }
    }
}

fn cut(text: String) -> String {
    if text.len() <= MAX_TEXT {
        text
    } else {
        text.chars().take(MAX_TEXT).collect()
    }
}

/// Where an expression reads attributes.
pub trait Attributes {
    /// The value of an attribute (as the expression names it), `Val::Null` when the
    /// object has none.
    fn value(&self, name: &str) -> Val;
}

/// What an evaluation may read besides the attributes.
#[derive(Debug, Clone, Copy)]
pub struct Env {
    pub now: OffsetDateTime,
}

/// Why an evaluation gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// `IgnoreFlowIfNullOrEmpty` found nothing: the target is left as it is.
    Ignore,
    /// The value cannot be computed (a date that does not match its format...).
    Failed(String),
}

pub type Evaluation = Result<Val, Stop>;

fn failed<T>(message: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Failed(message.into()))
}

fn number(value: &Val, what: &str) -> Result<i64, Stop> {
    match value.text() {
        Some(t) => t
            .trim()
            .parse::<i64>()
            .or_else(|_| failed(format!("{what} must be a whole number, not {t:?}"))),
        None => failed(format!("{what} is missing")),
    }
}

fn text_or_null(value: Option<String>) -> Val {
    value.map_or(Val::Null, Val::Text)
}

/// A count from a whole number: negatives are 0, and any size fits.
fn count_of(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

/// `text` with every `find` replaced, built no further than the value bound.
fn replace_bounded(text: &str, find: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(find) {
        out.push_str(&rest[..at]);
        out.push_str(with);
        rest = &rest[at + find.len()..];
        if out.len() > MAX_TEXT * 4 {
            return out;
        }
    }
    out.push_str(rest);
    out
}

/// The chars of `text` from `start` (0-based), `count` of them.
fn slice(text: &str, start: usize, count: usize) -> String {
    text.chars().skip(start).take(count).collect()
}

impl Expression {
    /// The value for one object.
    pub fn evaluate(&self, source: &dyn Attributes, env: &Env) -> Evaluation {
        self.eval(source, env).map(Val::bounded)
    }

    fn eval(&self, source: &dyn Attributes, env: &Env) -> Evaluation {
        match self {
            Expression::Attribute(name) => Ok(source.value(name)),
            Expression::Literal(text) => Ok(Val::Text(text.clone())),
            Expression::Concat(terms) => {
                let mut out = String::new();
                for term in terms {
                    match term.evaluate(source, env)?.text() {
                        Some(t) => out.push_str(&t),
                        None => return Ok(Val::Null),
                    }
                }
                Ok(Val::Text(out))
            }
            Expression::Compare { left, equal, right } => {
                let l = left.evaluate(source, env)?.text();
                let r = right.evaluate(source, env)?.text();
                Ok(Val::Bool((l == r) == *equal))
            }
            Expression::Call(function, arguments) => call(*function, arguments, source, env),
        }
    }
}

fn call(function: Function, args: &[Expression], source: &dyn Attributes, env: &Env) -> Evaluation {
    let arg = |i: usize| -> Evaluation {
        match args.get(i) {
            Some(a) => a.evaluate(source, env),
            None => Ok(Val::Null),
        }
    };
    let text_of = |i: usize| -> Result<Option<String>, Stop> { Ok(arg(i)?.text()) };
    let map_text =
        |f: &dyn Fn(String) -> String| -> Evaluation { Ok(text_or_null(text_of(0)?.map(f))) };
    match function {
        Function::Append => match text_of(0)? {
            None => Ok(Val::Null),
            Some(mut t) => {
                t.push_str(&text_of(1)?.unwrap_or_default());
                Ok(Val::Text(t))
            }
        },
        Function::CBool => {
            let value = arg(0)?;
            if value.is_empty() {
                return Ok(Val::Null);
            }
            match value.truth() {
                Some(b) => Ok(Val::Bool(b)),
                None => match value.text().and_then(|t| t.trim().parse::<i64>().ok()) {
                    Some(n) => Ok(Val::Bool(n != 0)),
                    None => failed(format!(
                        "CBool: {:?} is not true or false",
                        value.text().unwrap_or_default()
                    )),
                },
            }
        }
        Function::CStr => Ok(text_or_null(text_of(0)?)),
        Function::Coalesce => {
            for i in 0..args.len() {
                let value = arg(i)?;
                if !value.is_empty() {
                    return Ok(value);
                }
            }
            Ok(Val::Null)
        }
        Function::Count => Ok(Val::Text(
            match arg(0)? {
                Val::Null => 0,
                Val::List(items) => items.len(),
                _ => 1,
            }
            .to_string(),
        )),
        Function::DateAdd => {
            let interval = interval_of(&text_of(0)?.unwrap_or_default())
                .map_err(|e| Stop::Failed(e.message))?;
            let amount = number(&arg(1)?, "DateAdd's value")?;
            let Some(date) = text_of(2)? else {
                return Ok(Val::Null);
            };
            let date = parse_datetime(&date).ok_or_else(|| {
                Stop::Failed(format!(
                    "DateAdd: {date:?} is not a date (2026-01-31 or 2026-01-31T09:00:00Z)"
                ))
            })?;
            add(date, interval, amount)
                .and_then(rfc3339)
                .map(Val::Text)
                .ok_or_else(|| Stop::Failed("DateAdd: the date is out of range".into()))
        }
        Function::FormatDateTime => {
            let n = args.len();
            let Some(value) = text_of(0)? else {
                return Ok(Val::Null);
            };
            let input = text_of(n - 2)?.unwrap_or_default();
            let output = text_of(n - 1)?.unwrap_or_default();
            let input = date_format(&input).map_err(|e| Stop::Failed(e.message))?;
            let output = date_format(&output).map_err(|e| Stop::Failed(e.message))?;
            let date = read_date(&input, value.trim()).ok_or_else(|| {
                Stop::Failed(format!(
                    "FormatDateTime: {value:?} does not match the input format"
                ))
            })?;
            Ok(Val::Text(write_date(&output, date)))
        }
        Function::IgnoreFlowIfNullOrEmpty => {
            let value = arg(0)?;
            if value.is_empty() {
                Err(Stop::Ignore)
            } else {
                Ok(value)
            }
        }
        Function::IIF => {
            if arg(0)?.truth() == Some(true) {
                arg(1)
            } else {
                arg(2)
            }
        }
        Function::InStr => {
            let Some(value) = text_of(0)? else {
                return Ok(Val::Null);
            };
            let find = text_of(1)?.unwrap_or_default();
            let start = if args.len() > 2 {
                count_of(number(&arg(2)?, "InStr's start")?.max(1))
            } else {
                1
            };
            let insensitive = args.len() > 3
                && text_of(3)?.is_some_and(|c| c.eq_ignore_ascii_case("vbTextCompare"));
            let (hay, needle) = if insensitive {
                (value.to_lowercase(), find.to_lowercase())
            } else {
                (value, find)
            };
            // The byte offset where the search starts, then a linear search.
            let from = hay
                .char_indices()
                .nth(start - 1)
                .map_or(hay.len(), |(at, _)| at);
            let position = if start - 1 > hay.chars().count() {
                0
            } else {
                hay[from..]
                    .find(needle.as_str())
                    .map_or(0, |at| hay[..from + at].chars().count() + 1)
            };
            Ok(Val::Text(position.to_string()))
        }
        Function::IsNull => Ok(Val::Bool(arg(0)? == Val::Null)),
        Function::IsNullOrEmpty => Ok(Val::Bool(arg(0)?.is_empty())),
        Function::IsPresent => Ok(Val::Bool(!arg(0)?.is_empty())),
        Function::IsString => Ok(Val::Bool(matches!(arg(0)?, Val::Text(_)))),
        Function::Item => {
            let items = arg(0)?.texts();
            let index = number(&arg(1)?, "Item's index")?;
            Ok(text_or_null(
                usize::try_from(index)
                    .ok()
                    .and_then(|i| i.checked_sub(1))
                    .and_then(|i| items.get(i).cloned()),
            ))
        }
        Function::Join => {
            let separator = text_of(0)?.unwrap_or_default();
            let mut parts: Vec<String> = Vec::new();
            let mut length = 0;
            for i in 1..args.len() {
                for part in arg(i)?.texts() {
                    if part.is_empty() {
                        continue;
                    }
                    length += part.len() + separator.len();
                    parts.push(part);
                    if length > MAX_TEXT * 4 {
                        break;
                    }
                }
            }
            Ok(if parts.is_empty() {
                Val::Null
            } else {
                Val::Text(parts.join(&separator))
            })
        }
        Function::Left => {
            let count = count_of(number(&arg(1)?, "Left's length")?);
            map_text(&|t| slice(&t, 0, count))
        }
        Function::Mid => {
            let start = count_of(number(&arg(1)?, "Mid's start")?.max(1));
            let count = count_of(number(&arg(2)?, "Mid's length")?);
            map_text(&|t| slice(&t, start - 1, count))
        }
        Function::NormalizeDiacritics => map_text(&|t| normalize_diacritics(&t)),
        Function::Not => match arg(0)?.truth() {
            Some(b) => Ok(Val::Bool(!b)),
            None => Ok(Val::Null),
        },
        Function::Now => rfc3339(env.now)
            .map(Val::Text)
            .ok_or_else(|| Stop::Failed("Now: the clock is out of range".into())),
        Function::RemoveDuplicates => {
            let mut seen: Vec<String> = Vec::new();
            for item in arg(0)?.texts() {
                if !seen.contains(&item) {
                    seen.push(item);
                }
            }
            Ok(Val::List(seen))
        }
        Function::Replace => {
            let (find, with) = if args.len() == 7 { (1, 4) } else { (1, 2) };
            let find = text_of(find)?.unwrap_or_default();
            let with = text_of(with)?.unwrap_or_default();
            if find.is_empty() {
                return failed("Replace needs a value to find");
            }
            map_text(&|t| replace_bounded(&t, &find, &with))
        }
        // Evaluated as the list of its candidates; the mapping picks the first
        // free one.
        Function::SelectUniqueValue => {
            let mut candidates = Vec::new();
            for i in 0..args.len() {
                if let Some(t) = arg(i)?.text().filter(|t| !t.is_empty()) {
                    candidates.push(t);
                }
            }
            Ok(Val::List(candidates))
        }
        Function::Split => {
            let Some(value) = text_of(0)? else {
                return Ok(Val::Null);
            };
            let delimiter = text_of(1)?.unwrap_or_default();
            if delimiter.is_empty() {
                return failed("Split needs a delimiter");
            }
            Ok(Val::List(
                value
                    .split(delimiter.as_str())
                    .take(MAX_LIST)
                    .map(str::to_string)
                    .collect(),
            ))
        }
        Function::StripSpaces => map_text(&|t| t.chars().filter(|c| !c.is_whitespace()).collect()),
        Function::Switch => {
            let value = text_of(0)?;
            let mut i = 2;
            while i + 1 < args.len() {
                if text_of(i)? == value {
                    return arg(i + 1);
                }
                i += 2;
            }
            arg(1)
        }
        Function::ToLower => map_text(&|t| t.to_lowercase()),
        Function::ToUpper => map_text(&|t| t.to_uppercase()),
        Function::Trim => map_text(&|t| t.trim().to_string()),
        Function::Word => {
            let index = number(&arg(1)?, "Word's number")?;
            let delimiters: Vec<char> = text_of(2)?.unwrap_or_default().chars().collect();
            let Some(value) = text_of(0)? else {
                return Ok(Val::Null);
            };
            let word = usize::try_from(index)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| {
                    value
                        .split(|c| delimiters.contains(&c))
                        .filter(|w| !w.is_empty())
                        .nth(i)
                        .map(str::to_string)
                });
            Ok(text_or_null(word))
        }
    }
}

/// Letters with diacritics as their base letters (Latin-1 and Latin Extended-A;
/// ß, æ, œ and the like as two letters).
pub fn normalize_diacritics(text: &str) -> String {
    const TABLE: &[(&str, &str)] = &[
        ("ÀÁÂÃÄÅĀĂĄ", "A"),
        ("àáâãäåāăą", "a"),
        ("ÇĆĈĊČ", "C"),
        ("çćĉċč", "c"),
        ("ĎĐÐ", "D"),
        ("ďđð", "d"),
        ("ÈÉÊËĒĔĖĘĚ", "E"),
        ("èéêëēĕėęě", "e"),
        ("ĜĞĠĢ", "G"),
        ("ĝğġģ", "g"),
        ("ĤĦ", "H"),
        ("ĥħ", "h"),
        ("ÌÍÎÏĨĪĬĮİ", "I"),
        ("ìíîïĩīĭįı", "i"),
        ("Ĵ", "J"),
        ("ĵ", "j"),
        ("Ķ", "K"),
        ("ķĸ", "k"),
        ("ĹĻĽĿŁ", "L"),
        ("ĺļľŀł", "l"),
        ("ÑŃŅŇŊ", "N"),
        ("ñńņňŉŋ", "n"),
        ("ÒÓÔÕÖØŌŎŐ", "O"),
        ("òóôõöøōŏő", "o"),
        ("ŔŖŘ", "R"),
        ("ŕŗř", "r"),
        ("ŚŜŞŠ", "S"),
        ("śŝşšſ", "s"),
        ("ŢŤŦ", "T"),
        ("ţťŧ", "t"),
        ("ÙÚÛÜŨŪŬŮŰŲ", "U"),
        ("ùúûüũūŭůűų", "u"),
        ("Ŵ", "W"),
        ("ŵ", "w"),
        ("ÝŸŶ", "Y"),
        ("ýÿŷ", "y"),
        ("ŹŻŽ", "Z"),
        ("źżž", "z"),
        ("Æ", "AE"),
        ("æ", "ae"),
        ("Œ", "OE"),
        ("œ", "oe"),
        ("ß", "ss"),
        ("Þ", "TH"),
        ("þ", "th"),
        ("Ĳ", "IJ"),
        ("ĳ", "ij"),
    ];
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match TABLE.iter().find(|(from, _)| from.contains(c)) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Dates

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interval {
    Years,
    Quarters,
    Months,
    Days,
    Weeks,
    Hours,
    Minutes,
    Seconds,
}

fn interval_of(text: &str) -> Result<Interval, ExpressionError> {
    Ok(match text {
        "yyyy" => Interval::Years,
        "q" => Interval::Quarters,
        "m" => Interval::Months,
        "d" | "y" | "w" => Interval::Days,
        "ww" => Interval::Weeks,
        "h" => Interval::Hours,
        "n" => Interval::Minutes,
        "s" => Interval::Seconds,
        other => {
            return refuse(format!(
                "{other:?} is not a DateAdd interval (yyyy, q, m, d, ww, h, n, s)"
            ));
        }
    })
}

fn add(date: OffsetDateTime, interval: Interval, amount: i64) -> Option<OffsetDateTime> {
    let months = |n: i64| -> Option<OffsetDateTime> {
        let total =
            (i64::from(date.year()) * 12 + i64::from(date.month() as u8) - 1).checked_add(n)?;
        let year = i32::try_from(total.div_euclid(12)).ok()?;
        let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
        let last = time::util::days_in_month(month, year);
        let day = date.day().min(last);
        let day = Date::from_calendar_date(year, month, day).ok()?;
        Some(date.replace_date(day))
    };
    let seconds = |unit: i64| -> Option<OffsetDateTime> {
        date.checked_add(time::Duration::seconds(amount.checked_mul(unit)?))
    };
    match interval {
        Interval::Years => months(amount.checked_mul(12)?),
        Interval::Quarters => months(amount.checked_mul(3)?),
        Interval::Months => months(amount),
        Interval::Days => seconds(86_400),
        Interval::Weeks => seconds(7 * 86_400),
        Interval::Hours => seconds(3_600),
        Interval::Minutes => seconds(60),
        Interval::Seconds => seconds(1),
    }
}

/// A date as the directory writes it: `2026-01-31T09:00:00Z` (UTC); `None`
/// when it falls outside the years 1 to 9999 in UTC.
pub fn rfc3339(date: OffsetDateTime) -> Option<String> {
    let d = date.checked_to_offset(UtcOffset::UTC)?;
    if !(1..=9999).contains(&d.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        d.month() as u8,
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    ))
}

/// A date as RFC 3339, or a day alone (`2026-01-31`, midnight UTC).
pub fn parse_datetime(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(date) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(date);
    }
    let format = date_format("yyyy-MM-dd").ok()?;
    read_date(&format, text)
}

/// A piece of a .NET custom date format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Year4,
    Year2,
    Month(usize),
    Day(usize),
    Hour(usize),
    Minute(usize),
    Second(usize),
    Fraction(usize),
    /// `zzz` (`+01:00`) or `K` (`Z` for UTC).
    Offset {
        utc_as_z: bool,
    },
    Text(String),
}

/// A .NET custom date format (`yyyyMMddHHmmss.fZ`, `M/d/yyyy`...), or one of
/// the standard `o`, `s`, `u`.
fn date_format(format: &str) -> Result<Vec<Piece>, ExpressionError> {
    let format = match format {
        "o" | "O" => "yyyy-MM-ddTHH:mm:ss.fffffffK",
        "s" => "yyyy-MM-ddTHH:mm:ss",
        "u" => "yyyy-MM-dd HH:mm:ssZ",
        "" => return refuse("a date format is empty"),
        other if other.len() > 64 => return refuse("a date format is at most 64 characters"),
        other => other,
    };
    let chars: Vec<char> = format.chars().collect();
    let mut pieces = Vec::new();
    let mut i = 0;
    let mut text = String::new();
    let flush = |text: &mut String, pieces: &mut Vec<Piece>| {
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(text)));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let piece = match (c, run) {
            ('y', 4) => Piece::Year4,
            ('y', 2) => Piece::Year2,
            ('M', 1 | 2) => Piece::Month(run),
            ('d', 1 | 2) => Piece::Day(run),
            ('H', 1 | 2) => Piece::Hour(run),
            ('m', 1 | 2) => Piece::Minute(run),
            ('s', 1 | 2) => Piece::Second(run),
            ('f' | 'F', 1..=7) => Piece::Fraction(run),
            ('z', 3) => Piece::Offset { utc_as_z: false },
            ('K', 1) => Piece::Offset { utc_as_z: true },
            ('\'' | '"', _) => {
                let end =
                    chars[i + 1..]
                        .iter()
                        .position(|&x| x == c)
                        .ok_or_else(|| ExpressionError {
                            message: "a quoted part of a date format is not closed".into(),
                        })?;
                text.extend(&chars[i + 1..i + 1 + end]);
                i += end + 2;
                continue;
            }
            ('\\', _) => {
                let Some(&next) = chars.get(i + 1) else {
                    return refuse("a date format ends with \\");
                };
                text.push(next);
                i += 2;
                continue;
            }
            ('y' | 'M' | 'd' | 'H' | 'h' | 'm' | 's' | 'f' | 'F' | 'z' | 'K' | 't' | 'g', _) => {
                let spec: String = chars[i..i + run].iter().collect();
                return refuse(format!(
                    "{spec:?} is not supported in a date format (yyyy, yy, MM, M, dd, d, HH, H, mm, m, ss, s, f to fffffff, zzz, K; quote other letters)"
                ));
            }
            _ => {
                text.push(c);
                i += 1;
                continue;
            }
        };
        flush(&mut text, &mut pieces);
        pieces.push(piece);
        i += run;
    }
    flush(&mut text, &mut pieces);
    Ok(pieces)
}

/// Reads a date by a format: every piece must match, nothing may be left.
fn read_date(pieces: &[Piece], text: &str) -> Option<OffsetDateTime> {
    let mut rest = text;
    let (mut year, mut month, mut day) = (1i32, 1u8, 1u8);
    let (mut hour, mut minute, mut second, mut nanos) = (0u8, 0u8, 0u8, 0u32);
    let mut offset = UtcOffset::UTC;
    fn digits(rest: &mut &str, min: usize, max: usize) -> Option<u32> {
        let n = rest
            .chars()
            .take(max)
            .take_while(char::is_ascii_digit)
            .count();
        if n < min {
            return None;
        }
        let (number, tail) = rest.split_at(n);
        *rest = tail;
        number.parse().ok()
    }
    for piece in pieces {
        match piece {
            Piece::Year4 => year = i32::try_from(digits(&mut rest, 4, 4)?).ok()?,
            Piece::Year2 => year = 2000 + i32::try_from(digits(&mut rest, 2, 2)?).ok()?,
            Piece::Month(n) => month = u8::try_from(digits(&mut rest, *n, 2)?).ok()?,
            Piece::Day(n) => day = u8::try_from(digits(&mut rest, *n, 2)?).ok()?,
            Piece::Hour(n) => hour = u8::try_from(digits(&mut rest, *n, 2)?).ok()?,
            Piece::Minute(n) => minute = u8::try_from(digits(&mut rest, *n, 2)?).ok()?,
            Piece::Second(n) => second = u8::try_from(digits(&mut rest, *n, 2)?).ok()?,
            Piece::Fraction(n) => {
                let before = rest.len();
                let value = digits(&mut rest, *n, *n)?;
                let width = before - rest.len();
                nanos = value * 10u32.pow(9 - u32::try_from(width).ok()?);
            }
            Piece::Offset { utc_as_z } => {
                if let Some(tail) = rest.strip_prefix('Z').filter(|_| *utc_as_z) {
                    rest = tail;
                } else if *utc_as_z && rest.is_empty() {
                } else {
                    let sign = match rest.chars().next()? {
                        '+' => 1,
                        '-' => -1,
                        _ => return None,
                    };
                    rest = &rest[1..];
                    let h = i8::try_from(digits(&mut rest, 2, 2)?).ok()?;
                    rest = rest.strip_prefix(':')?;
                    let m = i8::try_from(digits(&mut rest, 2, 2)?).ok()?;
                    offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
                }
            }
            Piece::Text(t) => rest = rest.strip_prefix(t.as_str())?,
        }
    }
    if !rest.is_empty() {
        return None;
    }
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

fn write_date(pieces: &[Piece], date: OffsetDateTime) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Year4 => out.push_str(&format!("{:04}", date.year())),
            Piece::Year2 => out.push_str(&format!("{:02}", date.year().rem_euclid(100))),
            Piece::Month(n) => out.push_str(&format!("{:0n$}", date.month() as u8, n = *n)),
            Piece::Day(n) => out.push_str(&format!("{:0n$}", date.day(), n = *n)),
            Piece::Hour(n) => out.push_str(&format!("{:0n$}", date.hour(), n = *n)),
            Piece::Minute(n) => out.push_str(&format!("{:0n$}", date.minute(), n = *n)),
            Piece::Second(n) => out.push_str(&format!("{:0n$}", date.second(), n = *n)),
            Piece::Fraction(n) => {
                let nanos = format!("{:09}", date.nanosecond());
                out.push_str(&nanos[..*n]);
            }
            Piece::Offset { utc_as_z } => {
                let offset = date.offset();
                if *utc_as_z && offset.is_utc() {
                    out.push('Z');
                } else {
                    let (h, m, _) = offset.as_hms();
                    let sign = if offset.is_negative() { '-' } else { '+' };
                    out.push_str(&format!(
                        "{sign}{:02}:{:02}",
                        h.unsigned_abs(),
                        m.unsigned_abs()
                    ));
                }
            }
            Piece::Text(t) => out.push_str(t),
        }
    }
    out
}

#[cfg(test)]
mod tests;
