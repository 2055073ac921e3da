//! Bulk creation of users from a CSV file, as administrators keep them: Entra's own
//! "bulk create" template (a `version:v1.0` line, then headers such as
//! `Name [displayName] Required`) or plain Graph property names as headers.
//!
//! Pure: the text in, one Graph-shaped user object per row out (with the row's line
//! number), or every problem found with its line. Nothing is created here; the
//! caller hands the objects to the directory's import in batches.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::model::UserSpec;
use crate::{patch, validate};

/// The most rows one file may hold.
pub const MAX_ROWS: usize = 50_000;
/// The longest a cell may be.
const MAX_CELL: usize = 4096;
/// The most columns a file may have.
const MAX_COLUMNS: usize = 64;
/// The most problems reported (a file with more is wrong throughout).
const MAX_PROBLEMS: usize = 100;

/// A user to create, with the line of the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkUser {
    pub line: usize,
    pub user: Value,
}

/// What the file holds: the users, and what was in it but is not kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkFile {
    pub users: Vec<BulkUser>,
    pub warnings: Vec<String>,
}

/// A problem with the file, at a line (0 for the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkProblem {
    pub line: usize,
    pub message: String,
}

impl BulkProblem {
    fn at(line: usize, message: impl Into<String>) -> BulkProblem {
        BulkProblem {
            line,
            message: message.into(),
        }
    }
}

/// Splits CSV text (RFC 4180: commas, double quotes with `""` inside, CRLF or LF)
/// into records, each with the line it starts on. A byte-order mark is skipped.
pub fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, BulkProblem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut at_cell_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',' | '\r' | '\n')) {
                        return Err(BulkProblem::at(line, "a closing quote must end its cell"));
                    }
                }
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                '\r' => {
                    // A lone CR ends a line too (CRLF counts once, at its LF).
                    if chars.peek() != Some(&'\n') {
                        line += 1;
                    }
                    cell.push(c);
                }
                _ => cell.push(c),
            }
        } else {
            match c {
                '"' if at_cell_start => {
                    quoted = true;
                    at_cell_start = false;
                    continue;
                }
                '"' => {
                    return Err(BulkProblem::at(
                        line,
                        "a quote inside a cell that does not start with one",
                    ));
                }
                ',' => {
                    record.push(std::mem::take(&mut cell));
                    if record.len() > MAX_COLUMNS {
                        return Err(BulkProblem::at(
                            line,
                            format!("a line has more than {MAX_COLUMNS} cells"),
                        ));
                    }
                    at_cell_start = true;
                    continue;
                }
                '\r' if chars.peek() == Some(&'\n') => continue,
                '\n' | '\r' => {
                    record.push(std::mem::take(&mut cell));
                    push_record(&mut out, start, std::mem::take(&mut record))?;
                    line += 1;
                    start = line;
                    at_cell_start = true;
                    continue;
                }
                _ => cell.push(c),
            }
        }
        at_cell_start = false;
        if cell.len() > MAX_CELL {
            return Err(BulkProblem::at(
                line,
                format!("a cell is longer than {MAX_CELL} bytes"),
            ));
        }
    }
    if quoted {
        return Err(BulkProblem::at(start, "a quoted cell is never closed"));
    }
    if !cell.is_empty() || !record.is_empty() {
        record.push(cell);
        push_record(&mut out, start, record)?;
    }
    Ok(out)
}

fn push_record(
    out: &mut Vec<(usize, Vec<String>)>,
    line: usize,
    record: Vec<String>,
) -> Result<(), BulkProblem> {
    // Blank lines (a lone empty cell, or only empty cells) are skipped.
    if record.iter().all(|cell| cell.trim().is_empty()) {
        return Ok(());
    }
    if record.len() > MAX_COLUMNS {
        return Err(BulkProblem::at(
            line,
            format!("a line has more than {MAX_COLUMNS} cells"),
        ));
    }
    // The rows, a header and Entra's version line.
    if out.len() >= MAX_ROWS + 2 {
        return Err(BulkProblem::at(
            line,
            format!("a file holds at most {MAX_ROWS} users"),
        ));
    }
    out.push((line, record));
    Ok(())
}

/// How a column's cells become the user's property.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    /// A string property, named as in Graph.
    Text(&'static str),
    /// `accountEnabled` from yes/no or true/false.
    Enabled,
    /// Entra's `Block sign in (Yes/No)`: `accountEnabled`, inverted.
    Blocked,
    /// In Entra's template, not kept here (with why).
    Dropped(&'static str),
}

const TEXT_PROPERTIES: [&str; 11] = [
    "userPrincipalName",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "employeeId",
    "department",
    "jobTitle",
    "managerId",
    "usageLocation",
    "userType",
];

/// The column a header names: the bracketed Graph name of Entra's template
/// (`Name [displayName] Required`) or the Graph name itself, in any case.
fn column_of(header: &str) -> Option<Column> {
    let trimmed = header.trim();
    let name = match (trimmed.find('['), trimmed.find(']')) {
        (Some(open), Some(close)) if open < close => &trimmed[open + 1..close],
        _ => trimmed,
    };
    if name.eq_ignore_ascii_case("accountEnabled") {
        let blocked = trimmed.to_ascii_lowercase().contains("block");
        return Some(if blocked {
            Column::Blocked
        } else {
            Column::Enabled
        });
    }
    if name.eq_ignore_ascii_case("passwordProfile") {
        return Some(Column::Dropped(
            "initial passwords are not taken from files: give each user a Temporary Access Pass",
        ));
    }
    if let Some(property) = TEXT_PROPERTIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
    {
        return Some(Column::Text(property));
    }
    const NOT_KEPT: [&str; 9] = [
        "streetAddress",
        "state",
        "country",
        "physicalDeliveryOfficeName",
        "city",
        "postalCode",
        "telephoneNumber",
        "mobile",
        "officeLocation",
    ];
    NOT_KEPT
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
        .then_some(Column::Dropped("Tessera does not keep this property"))
}

/// What a header names, for telling a column given twice.
fn column_key(header: &str) -> String {
    let trimmed = header.trim();
    match (trimmed.find('['), trimmed.find(']')) {
        (Some(open), Some(close)) if open < close => &trimmed[open + 1..close],
        _ => trimmed,
    }
    .to_ascii_lowercase()
}

fn yes_or_no(cell: &str) -> Option<bool> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "y" | "1" => Some(true),
        "no" | "false" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Reads a bulk-create file. Every problem is reported (up to 100), each with its
/// line; a file with any problem gives no users.
pub fn users(text: &str) -> Result<BulkFile, Vec<BulkProblem>> {
    let mut rows = records(text).map_err(|problem| vec![problem])?;
    // Entra's template starts with a version line.
    if rows
        .first()
        .and_then(|(_, cells)| cells.first())
        .is_some_and(|cell| cell.trim().to_ascii_lowercase().starts_with("version:"))
    {
        rows.remove(0);
    }
    let mut rows = rows.into_iter();
    let Some((header_line, headers)) = rows.next() else {
        return Err(vec![BulkProblem::at(0, "the file is empty")]);
    };
    if rows.len() > MAX_ROWS {
        return Err(vec![BulkProblem::at(
            0,
            format!("a file holds at most {MAX_ROWS} users"),
        )]);
    }
    let mut problems = Vec::new();
    let mut columns = Vec::with_capacity(headers.len());
    let mut headers_seen = HashSet::new();
    for header in &headers {
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
        if !headers_seen.insert(column_key(header)) {
            problems.push(BulkProblem::at(
                header_line,
                format!("the column \"{}\" is there twice", header.trim()),
            ));
            continue;
        }
        match column_of(header) {
            Some(column) => columns.push(column),
            None => problems.push(BulkProblem::at(
                header_line,
                format!("unknown column \"{}\"", header.trim()),
            )),
        }
    }
    for wanted in ["userPrincipalName", "displayName"] {
        if !columns.contains(&Column::Text(wanted)) {
            problems.push(BulkProblem::at(
                header_line,
                format!("a {wanted} column is required"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut file = BulkFile::default();
    let mut dropped: Vec<String> = Vec::new();
    let mut dropped_seen: HashSet<String> = HashSet::new();
    let mut names: HashSet<String> = HashSet::new();
    for (line, cells) in rows {
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
        if cells.len() > columns.len() {
            problems.push(BulkProblem::at(
                line,
                format!("{} cells, but {} columns", cells.len(), columns.len()),
            ));
            continue;
        }
        let mut user = Map::new();
        for ((column, header), cell) in columns.iter().zip(&headers).zip(&cells) {
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            match column {
                Column::Text(property) => {
                    user.insert((*property).to_string(), Value::String(cell.to_string()));
                }
                Column::Enabled | Column::Blocked => match yes_or_no(cell) {
                    Some(yes) => {
                        let enabled = if *column == Column::Blocked {
                            !yes
                        } else {
                            yes
                        };
                        user.insert("accountEnabled".to_string(), Value::Bool(enabled));
                    }
                    None => problems.push(BulkProblem::at(
                        line,
                        format!("\"{}\" must be Yes or No", header.trim()),
                    )),
                },
                Column::Dropped(why) => {
                    let named = header.trim().to_string();
                    if dropped_seen.insert(named.clone()) {
                        dropped.push(format!("{named}: {why}"));
                    }
                }
            }
        }
        let missing: Vec<&str> = ["userPrincipalName", "displayName"]
            .into_iter()
            .filter(|wanted| !user.contains_key(*wanted))
            .collect();
        for wanted in &missing {
            problems.push(BulkProblem::at(line, format!("{wanted} is empty")));
        }
        let user = Value::Object(user);
        if missing.is_empty() {
            // Checked as the directory will check it, so that a file with a bad
            // line creates nobody (the directory checks again when it creates).
            match patch::parse_spec::<UserSpec>(user.clone())
                .and_then(|spec| validate::user_spec(&spec).map(|()| spec))
            {
                Ok(spec) => {
                    if !names.insert(spec.user_principal_name.to_lowercase()) {
                        problems.push(BulkProblem::at(
                            line,
                            format!("{} is in the file twice", spec.user_principal_name),
                        ));
                    }
                }
                Err(found) => {
                    for error in found.errors {
                        let field = if error.field.is_empty() {
                            String::new()
                        } else {
                            format!("{}: ", error.field)
                        };
                        problems.push(BulkProblem::at(line, format!("{field}{}", error.message)));
                    }
                }
            }
        }
        file.users.push(BulkUser { line, user });
    }
    problems.truncate(MAX_PROBLEMS);
    if !problems.is_empty() {
        return Err(problems);
    }
    if file.users.is_empty() {
        return Err(vec![BulkProblem::at(0, "the file holds no users")]);
    }
    file.warnings = dropped
        .into_iter()
        .map(|d| format!("Not imported: {d}."))
        .collect();
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entras_template_is_read() {
        let text = "\u{feff}version:v1.0\r\n\
            Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,Block sign in (Yes/No) [accountEnabled] Required,First name [givenName],Last name [surname],Job title [jobTitle],Department [department],Usage location [usageLocation],City [city]\r\n\
            Ada Lovelace,ada@contoso.com,Secret-123,No,Ada,Lovelace,\"Analyst, senior\",Research,GB,London\r\n\
            \r\n\
            \"Grace \"\"Amazing\"\" Hopper\",grace@contoso.com,,Yes,,,,,,\r\n";
        let file = users(text).unwrap();
        assert_eq!(file.users.len(), 2);
        assert_eq!(file.users[0].line, 3);
        assert_eq!(
            file.users[0].user,
            json!({
                "displayName": "Ada Lovelace", "userPrincipalName": "ada@contoso.com",
                "accountEnabled": true, "givenName": "Ada", "surname": "Lovelace",
                "jobTitle": "Analyst, senior", "department": "Research", "usageLocation": "GB"
            })
        );
        assert_eq!(file.users[1].line, 5);
        assert_eq!(
            file.users[1].user["displayName"],
            "Grace \"Amazing\" Hopper"
        );
        assert_eq!(file.users[1].user["accountEnabled"], false);
        assert_eq!(file.warnings.len(), 2, "{:?}", file.warnings);
        assert!(
            file.warnings
                .iter()
                .any(|w| w.contains("Temporary Access Pass"))
        );
        assert!(!file.warnings.iter().any(|w| w.contains("Secret-123")));
    }

    #[test]
    fn graph_names_are_headers_too_and_cells_may_span_lines() {
        let text = "userPrincipalName,displayName,accountEnabled\nbo@contoso.com,\"Bo, \"\"the\"\" Builder\",true";
        let file = users(text).unwrap();
        assert_eq!(file.users[0].user["displayName"], "Bo, \"the\" Builder");
        assert_eq!(file.users[0].user["accountEnabled"], true);
        // A cell may span lines; a display name may not hold a line break, and the
        // next record's line is counted past it.
        let text = "userPrincipalName,displayName\nbo@contoso.com,\"Bo\nBo\"\nal@contoso.com,Al\n";
        let problems = users(text).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
        assert_eq!(records(text).unwrap()[2].0, 4);
    }

    #[test]
    fn problems_come_with_their_lines_and_nothing_is_given() {
        let text = "userPrincipalName,displayName,accountEnabled,favouriteColour\n";
        let problems = users(text).unwrap_err();
        assert_eq!(
            problems,
            vec![BulkProblem::at(1, "unknown column \"favouriteColour\"")]
        );

        let text =
            "userPrincipalName,displayName,accountEnabled\na@b.c,A,maybe\n,B,yes\nc@d.e,C,no,extra";
        let problems = users(text).unwrap_err();
        assert_eq!(problems.len(), 3);
        assert_eq!(
            (problems[0].line, problems[1].line, problems[2].line),
            (2, 3, 4)
        );

        assert!(users("").is_err());
        assert!(users("userPrincipalName,displayName\n").is_err());
        assert_eq!(
            users("displayName\nA").unwrap_err()[0].message,
            "a userPrincipalName column is required"
        );
        let twice =
            users("userPrincipalName,displayName\na@contoso.com,A\nA@contoso.com,B").unwrap_err();
        assert_eq!(twice[0].line, 3);
        let invalid = users(
            "userPrincipalName,displayName,usageLocation\nnot-an-address,A,GB\nb@contoso.com,B,gbr",
        )
        .unwrap_err();
        assert_eq!(
            invalid.iter().map(|p| p.line).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(
            users("userPrincipalName,displayName,displayName\na@b.c,A,B").unwrap_err()[0]
                .message
                .contains("twice")
        );
        assert!(records(&",".repeat(1000)).is_err());
        assert!(
            records(&format!("{}a", "a,".repeat(MAX_COLUMNS))).is_err(),
            "65 cells"
        );
        assert!(
            records(&format!("{}a", "a,".repeat(MAX_COLUMNS - 1))).is_ok(),
            "64 cells"
        );
        assert_eq!(records("\"a\rb\"\nc").unwrap()[1].0, 3);
        assert!(records("a,\"b").is_err());
        assert!(records("a,b\"c").is_err());
        assert!(records("\"a\"b").is_err());
    }
}
