//! What each `bouncer rules …` and `bouncer logs …` command does against the store.

use std::io::Write;
use std::time::{Duration, SystemTime};

use actix_bouncer::access_log::SqlAccessLog;
use actix_bouncer::rules::{
    ListQuery, NewRule, Rule, RuleDraft, RuleId, RuleStore, SqlRuleStore, Trim,
};
use serde::Serialize;

use crate::args::{AddArgs, ListArgs, LogsCommand, RulesCommand};
use crate::failure::Failure;
use crate::json::write_json;
use crate::store_url::redact;
use crate::table::{timestamp, write_rules};

/// A command checked against the clock and ready to run on a store.
enum Job {
    List(ListArgs),
    Add(RuleDraft),
    Remove(Vec<RuleId>),
    Trim(Trim),
}

/// What `rules remove --json` prints.
#[derive(Serialize)]
struct Removed {
    /// The rules removed.
    removed: Vec<Rule>,
    /// The ids no rule had.
    missing: Vec<RuleId>,
}

/// What `rules trim --json` prints.
#[derive(Serialize)]
struct Trimmed {
    /// How many rules were removed.
    removed: u64,
}

/// Runs `command` on the store at `url`, writing its result to `out`.
pub async fn run(
    command: RulesCommand,
    url: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let now = SystemTime::now();
    // Checked before the store is opened: bad input never creates a SQLite file.
    let job = job(command, now)?;
    supported("rule store", url)?;
    let store = SqlRuleStore::connect(url)
        .await
        .map_err(|e| Failure::open(url, &e))?;
    let result = match job {
        Job::List(args) => list(&store, url, args, json, out).await,
        Job::Add(draft) => add(&store, url, draft, json, out).await,
        Job::Remove(ids) => remove(&store, url, ids, json, out).await,
        Job::Trim(trim) => trim_expired(&store, url, trim, now, json, out).await,
    };
    // Closed on every path: the last connection to a SQLite file folds its write-ahead log
    // back in, leaving one complete file.
    store.close().await;
    result
}

/// Fails when `url` needs PostgreSQL and this bouncer was built without it.
fn supported(part: &str, url: &str) -> Result<(), Failure> {
    if !cfg!(feature = "postgres") && matches!(scheme(url), "postgres" | "postgresql") {
        return Err(Failure::Failed(format!(
            "cannot open the {part} at {}: this bouncer was built without PostgreSQL \
             support; install it with `cargo install actix-bouncer --features cli,postgres`",
            redact(url)
        )));
    }
    Ok(())
}

/// What `logs trim --json` prints.
#[derive(Serialize)]
struct LogsTrimmed {
    /// How many records were deleted.
    removed: u64,
    /// They were older than this (RFC 3339).
    before: String,
}

/// Runs `command` on the access log in the database at `url`, writing its result to `out`.
pub async fn run_logs(
    command: LogsCommand,
    url: &str,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let LogsCommand::Trim(args) = command;
    let before = SystemTime::now()
        .checked_sub(Duration::from_secs(86_400) * args.days)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    supported("access log", url)?;
    let log = SqlAccessLog::connect(url)
        .await
        .map_err(|e| Failure::open_part("access log", url, &e))?;
    let result = log
        .trim(before)
        .await
        .map_err(|e| Failure::part_failed("access log", url, &e));
    // Closed on every path, as the rule store is: one complete SQLite file is left.
    log.close().await;
    let removed = result?;
    if json {
        write_json(
            out,
            &LogsTrimmed {
                removed,
                before: timestamp(before),
            },
        )?;
    } else {
        let records = if removed == 1 { "record" } else { "records" };
        writeln!(
            out,
            "removed {removed} access log {records} from before {}",
            timestamp(before)
        )?;
    }
    Ok(())
}

/// The URL's scheme, as the store reads it: what precedes the first `:`.
fn scheme(url: &str) -> &str {
    url.split_once(':').map_or("", |(scheme, _)| scheme)
}

/// `command` as a job, its input checked at `now`.
fn job(command: RulesCommand, now: SystemTime) -> Result<Job, Failure> {
    Ok(match command {
        RulesCommand::List(args) => Job::List(args),
        RulesCommand::Add(args) => Job::Add(draft(args, now)?),
        RulesCommand::Remove(args) => {
            let mut ids = args.ids;
            // Naming an id twice asks for one removal, not a "not found" the second time.
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(*id));
            Job::Remove(ids)
        }
        RulesCommand::Trim(args) => Job::Trim(
            Trim::default()
                .created_days(args.created_days)
                .expired_days(args.expired_days),
        ),
    })
}

/// The rule `rules add` asks for, created at `now`; refused when it would expire at once.
fn draft(args: AddArgs, now: SystemTime) -> Result<RuleDraft, Failure> {
    let mut rule = NewRule::new(args.action.into(), args.target);
    if let Some(after) = args.for_ {
        rule = rule.expires_after(after);
    }
    if let Some(at) = args.expires {
        if at <= now {
            return Err(Failure::Usage(format!(
                "the expiry {} is already past; a rule that never matches is not added",
                timestamp(at)
            )));
        }
        rule = rule.expires_at(at);
    }
    if let Some(comment) = args.comment {
        rule = rule.comment(comment);
    }
    Ok(rule.draft(now))
}

/// `rules list`: one page, or every page with `--all`.
async fn list(
    store: &SqlRuleStore,
    url: &str,
    args: ListArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let mut query = ListQuery::first(args.limit);
    if let Some(target) = args.target {
        query = query.target(target);
    }
    if let Some(action) = args.action {
        query = query.action(action.into());
    }
    if let Some(source) = args.source {
        query = query.source(source.into());
    }
    if let Some(state) = args.state {
        query = query.state(state.into());
    }
    if let Some(after) = args.after {
        query = query.after(after);
    }
    let now = SystemTime::now();
    let mut page = store
        .list(query.clone(), now)
        .await
        .map_err(|e| Failure::store(url, &e))?;
    if args.all {
        let mut rules = std::mem::take(&mut page.rules);
        while let Some(next) = page.next {
            // A cursor that does not move on would page forever.
            if query.after.is_some_and(|after| next <= after) {
                return Err(Failure::Failed(format!(
                    "the rule store at {} returned a page cursor that does not move on",
                    redact(url)
                )));
            }
            query = query.after(next);
            page = store
                .list(query.clone(), now)
                .await
                .map_err(|e| Failure::store(url, &e))?;
            rules.append(&mut page.rules);
        }
        page.rules = rules;
    }
    if json {
        write_json(out, &page)?;
        return Ok(());
    }
    write_rules(out, &page.rules)?;
    if let Some(next) = page.next {
        writeln!(
            out,
            "more rules follow: --after {} for the next page, --all for every page",
            next.0
        )?;
    }
    Ok(())
}

/// `rules add`: stores the rule and prints it as stored.
async fn add(
    store: &SqlRuleStore,
    url: &str,
    draft: RuleDraft,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let added = store
        .insert(vec![draft])
        .await
        .map_err(|e| Failure::store(url, &e))?;
    if json {
        // One rule in, one rule out: print it alone rather than a list of one.
        match added.as_slice() {
            [rule] => write_json(out, rule)?,
            rules => write_json(out, &rules)?,
        }
    } else {
        write_rules(out, &added)?;
    }
    Ok(())
}

/// `rules trim`: removes the expired rules `trim` names and says how many.
async fn trim_expired(
    store: &SqlRuleStore,
    url: &str,
    trim: Trim,
    now: SystemTime,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let removed = store
        .trim(trim, now)
        .await
        .map_err(|e| Failure::store(url, &e))?;
    if json {
        write_json(out, &Trimmed { removed })?;
    } else {
        let rules = if removed == 1 { "rule" } else { "rules" };
        writeln!(out, "removed {removed} expired {rules}")?;
    }
    Ok(())
}

/// `rules remove`: removes each rule, then fails if any id had none.
async fn remove(
    store: &SqlRuleStore,
    url: &str,
    ids: Vec<RuleId>,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let mut done = Removed {
        removed: Vec::new(),
        missing: Vec::new(),
    };
    let mut failed = None;
    for id in ids {
        match store.delete(id).await {
            Ok(Some(rule)) => done.removed.push(rule),
            Ok(None) => done.missing.push(id),
            Err(error) => {
                // What was removed before the failure is still reported.
                failed = Some(Failure::store(url, &error));
                break;
            }
        }
    }
    if json {
        write_json(out, &done)?;
    } else if !done.removed.is_empty() {
        write_rules(out, &done.removed)?;
    }
    if let Some(failure) = failed {
        return Err(failure);
    }
    if !done.missing.is_empty() {
        let ids: Vec<String> = done.missing.iter().map(|id| id.0.to_string()).collect();
        let noun = if ids.len() == 1 {
            "no rule has id"
        } else {
            "no rules have ids"
        };
        return Err(Failure::Failed(format!("{noun} {}", ids.join(", "))));
    }
    Ok(())
}
