//! Rules as an aligned table for people to read (`--json` is for programs).

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_bouncer::rules::Rule;
use time::format_description::well_known::Rfc3339;

use crate::text::fit;

/// Widest target shown; an IPv6 network (`ffff:…:ffff/128`) is 43 characters, user ids may be
/// anything.
const TARGET_WIDTH: usize = 45;
/// Widest comment shown.
const COMMENT_WIDTH: usize = 40;
const HEADER: [&str; 7] = [
    "ID", "TARGET", "ACTION", "SOURCE", "EXPIRES", "CREATED", "COMMENT",
];

/// Writes `rules` as a table with a header line, or `no rules` when there are none.
pub fn write_rules(out: &mut impl Write, rules: &[Rule]) -> io::Result<()> {
    if rules.is_empty() {
        return writeln!(out, "no rules");
    }
    let rows: Vec<[String; 7]> = rules.iter().map(row).collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    write_line(out, &HEADER.map(str::to_owned), &widths)?;
    for row in &rows {
        write_line(out, row, &widths)?;
    }
    Ok(())
}

/// One line, every cell but the last padded to its column (no trailing blanks).
fn write_line(out: &mut impl Write, cells: &[String; 7], widths: &[usize; 7]) -> io::Result<()> {
    let last = cells.iter().rposition(|c| !c.is_empty()).unwrap_or(0);
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate().take(last + 1) {
        if i == last {
            write!(out, "{cell}")?;
        } else {
            // `{:<width$}` pads by characters, which is what the widths count.
            write!(out, "{cell:<width$}  ")?;
        }
    }
    writeln!(out)
}

/// A rule's cells, every one escaped and cut to fit.
fn row(rule: &Rule) -> [String; 7] {
    [
        rule.id.0.to_string(),
        fit(&rule.target.to_string(), TARGET_WIDTH),
        rule.action.as_str().to_owned(),
        <&'static str>::from(rule.source).to_owned(),
        rule.expires.map_or_else(|| "never".to_owned(), timestamp),
        timestamp(rule.created),
        rule.comment
            .as_deref()
            .map_or_else(String::new, |c| fit(c, COMMENT_WIDTH)),
    ]
}

/// `t` in RFC 3339 to the second, in UTC: `2030-01-01T00:00:00Z`.
pub fn timestamp(t: SystemTime) -> String {
    let seconds = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Before 1970 (a store someone else wrote): round toward the past.
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(d.subsec_nanos() > 0)
        }
    };
    // Whole seconds in UTC, so RFC 3339 writes no fraction and `Z` for the offset.
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        // Beyond RFC 3339's years (0 to 9999): still say something exact.
        .unwrap_or_else(|| format!("@{seconds}s"))
}
