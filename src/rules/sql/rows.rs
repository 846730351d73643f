//! Rows to rules and back. Times are microseconds since the Unix epoch (`BIGINT`), targets
//! their canonical text (`203.0.113.0/24`, `user:alice`), action and source their names.

use super::super::model::{Rule, RuleAction, RuleId, RuleSource, RuleTarget};
use super::super::store::LoadedRule;
use crate::sql::time;
use crate::store_error::StoreError;

/// The columns of a whole rule, in [`RuleRow`]'s order.
pub(super) const RULE_COLUMNS: &str = "id, target, action, source, expires_us, created_us, comment";
/// The columns of a rule as loaded for enforcing, in [`LoadedRow`]'s order.
pub(super) const LOADED_COLUMNS: &str = "id, target, action, source, expires_us";

/// `(id, target, action, source, expires_us, created_us, comment)`.
pub(super) type RuleRow = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<String>,
);
/// `(id, target, action, source, expires_us)`.
pub(super) type LoadedRow = (i64, String, String, String, Option<i64>);

/// A row a person or another program wrote badly.
fn bad(id: i64, what: &str, value: &str) -> StoreError {
    StoreError::new(format!(
        "rule #{id} in the store has an invalid {what}: {value:?}"
    ))
}

fn parts(
    id: i64,
    target: &str,
    action: &str,
    source: &str,
) -> Result<(RuleId, RuleTarget, RuleAction, RuleSource), StoreError> {
    let id_ = u64::try_from(id).map_err(|_| bad(id, "id", &id.to_string()))?;
    Ok((
        RuleId(id_),
        target.parse().map_err(|_| bad(id, "target", target))?,
        action.parse().map_err(|_| bad(id, "action", action))?,
        source.parse().map_err(|_| bad(id, "source", source))?,
    ))
}

pub(super) fn rule(row: RuleRow) -> Result<Rule, StoreError> {
    let (id, target, action, source, expires, created, comment) = row;
    let (id, target, action, source) = parts(id, &target, &action, &source)?;
    Ok(Rule {
        id,
        target,
        action,
        expires: expires.map(time),
        comment,
        source,
        created: time(created),
    })
}

pub(super) fn loaded(row: &LoadedRow) -> Result<LoadedRule, StoreError> {
    let (id, target, action, source, expires) = row;
    loaded_from(*id, target, action, source, *expires)
}

/// A loaded rule from its columns, borrowed from the row (no allocation per column).
fn loaded_from(
    id: i64,
    target: &str,
    action: &str,
    source: &str,
    expires: Option<i64>,
) -> Result<LoadedRule, StoreError> {
    let (id, target, action, source) = parts(id, target, action, source)?;
    Ok(LoadedRule {
        id,
        target,
        action,
        source,
        expires: expires.map(time),
    })
}

/// Appends the rules of one batch of the dialect's `loaded_batch` query to `out`. Each rule is
/// `<id>,<expires_us, or nothing>,` then its target, action and source, each as
/// `<length in bytes>:<text>`: lengths, not separators, so a user id may hold any character.
/// A rule that reads badly is logged and left out, as with rows; a batch that does not follow
/// the framing at all is an error.
pub(super) fn read_batch(mut batch: &[u8], out: &mut Vec<LoadedRule>) -> Result<(), StoreError> {
    let malformed = || StoreError::new("the rule store sent a malformed batch of rules");
    while !batch.is_empty() {
        let id = number(&mut batch, b',').ok_or_else(malformed)?;
        let expires = match batch.first() {
            Some(b',') => {
                batch = &batch[1..];
                None
            }
            _ => Some(number(&mut batch, b',').ok_or_else(malformed)?),
        };
        let mut text = [""; 3];
        let mut readable = true;
        for field in &mut text {
            let len = number(&mut batch, b':')
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= batch.len())
                .ok_or_else(malformed)?;
            let (bytes, rest) = batch.split_at(len);
            batch = rest;
            match std::str::from_utf8(bytes) {
                Ok(t) => *field = t,
                Err(_) => readable = false,
            }
        }
        let [target, action, source] = text;
        let rule = if readable {
            loaded_from(id, target, action, source, expires)
        } else {
            Err(bad(id, "text", "(not UTF-8)"))
        };
        match rule {
            Ok(rule) => out.push(rule),
            Err(error) => tracing::warn!(target: "actix_bouncer", %error, "rule row skipped"),
        }
    }
    Ok(())
}

/// The decimal number at the start of `input`, up to `end`, which is consumed too.
fn number(input: &mut &[u8], end: u8) -> Option<i64> {
    let at = input.iter().position(|&b| b == end)?;
    let n = std::str::from_utf8(&input[..at]).ok()?.parse().ok()?;
    *input = &input[at + 1..];
    Some(n)
}

/// The rules of `rows` that read well; the others are logged and left out, so one row written
/// badly by hand cannot keep every other rule out of force.
pub(super) fn keep_good<T, R>(rows: Vec<R>, read: impl Fn(R) -> Result<T, StoreError>) -> Vec<T> {
    rows.into_iter()
        .filter_map(|row| {
            read(row)
                .map_err(|error| {
                    tracing::warn!(target: "actix_bouncer", %error, "rule row skipped");
                })
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_row_names_the_rule_and_the_field() {
        let row: LoadedRow = (7, "10.1.2.3/8".into(), "block".into(), "auto".into(), None);
        let error = loaded(&row).unwrap_err().to_string();
        assert!(
            error.contains("rule #7") && error.contains("target"),
            "{error}"
        );
        let row: LoadedRow = (8, "10.0.0.0/8".into(), "ban".into(), "auto".into(), None);
        assert!(loaded(&row).unwrap_err().to_string().contains("action"));
    }
}
