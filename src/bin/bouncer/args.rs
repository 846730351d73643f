//! The command line, as clap parses it, and the parsers for the values it takes.

use std::time::{Duration, SystemTime};

use actix_bouncer::rules::{RuleAction, RuleId, RuleSource, RuleState, RuleTarget, MAX_PAGE};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Manages the block and allow rules of actix-bouncer, and trims its access log, in the store
/// the app uses.
#[derive(Debug, Parser)]
#[command(name = "bouncer", version, max_term_width = 100)]
pub struct Cli {
    /// The store: sqlite://path/to/rules.db or postgres://user:password@host/database (for
    /// `logs`, the database the app's access log writes to).
    // The value is hidden from `--help`: it may hold a password.
    #[arg(
        long,
        env = "BOUNCER_STORE",
        hide_env_values = true,
        global = true,
        value_name = "URL",
        help_heading = "Global options",
        display_order = 900
    )]
    pub store: Option<String>,

    /// Prints JSON instead of tables.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        display_order = 901
    )]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lists, adds, removes and trims rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Trims the access log.
    #[command(subcommand)]
    Logs(LogsCommand),
}

/// `bouncer logs …`.
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// Deletes access-log records older than --days (like the Django access log's cleanup
    /// command).
    Trim(LogsTrimArgs),
}

/// `bouncer logs trim`.
#[derive(Debug, Args)]
pub struct LogsTrimArgs {
    /// Keeps this many days of records, 1 to 36500; older ones are deleted.
    #[arg(long, default_value_t = 7, value_name = "DAYS", value_parser = days)]
    pub days: u32,
}

/// `bouncer rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Lists rules by ascending id, one page at a time unless --all.
    List(ListArgs),
    /// Adds a rule and prints it.
    Add(AddArgs),
    /// Removes rules by id.
    Remove(RemoveArgs),
    /// Removes expired rules (like django-blacklist's trim_blacklist).
    Trim(TrimArgs),
}

/// `bouncer rules list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only rules on exactly this target (an IP, a network or user:<id>).
    #[arg(long, value_parser = target)]
    pub target: Option<RuleTarget>,
    /// Only rules with this action.
    #[arg(long, value_enum)]
    pub action: Option<ActionArg>,
    /// Only rules from this source.
    #[arg(long, value_enum)]
    pub source: Option<SourceArg>,
    /// Only active, or only expired, rules.
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// Rules per page, 1 to 1000.
    #[arg(long, default_value_t = 100, value_parser = page_size)]
    pub limit: usize,
    /// Starts after this rule id (the `next` of the previous page).
    #[arg(long, value_parser = rule_id, value_name = "ID")]
    pub after: Option<RuleId>,
    /// Walks every page, not just the first.
    #[arg(long)]
    pub all: bool,
}

/// `bouncer rules add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Who the rule applies to: 203.0.113.7, 203.0.113.0/24, 2001:db8::/32 or user:<id>.
    #[arg(value_parser = target)]
    pub target: RuleTarget,
    /// What the rule does.
    #[arg(long, value_enum, default_value_t = ActionArg::Block)]
    pub action: ActionArg,
    /// Expires this long after now: 90s, 10m, 1h, 7d, "1h 30m".
    #[arg(long = "for", value_parser = positive_duration, value_name = "DURATION", conflicts_with = "expires")]
    pub for_: Option<Duration>,
    /// Expires at this RFC 3339 time, such as 2030-01-01T00:00:00Z.
    #[arg(long, value_parser = rfc3339, value_name = "TIME")]
    pub expires: Option<SystemTime>,
    /// A note for operators.
    #[arg(long)]
    pub comment: Option<String>,
}

/// `bouncer rules remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The ids of the rules to remove (as listed; a leading # is accepted).
    #[arg(required = true, value_parser = rule_id, value_name = "ID")]
    pub ids: Vec<RuleId>,
}

/// `bouncer rules trim`.
#[derive(Debug, Args)]
pub struct TrimArgs {
    /// Only rules created at least this many days ago.
    #[arg(short = 'c', long, default_value_t = 0, value_name = "DAYS")]
    pub created_days: u32,
    /// Only rules that expired at least this many days ago (0: every expired rule).
    #[arg(short = 'e', long, default_value_t = 0, value_name = "DAYS")]
    pub expired_days: u32,
}

/// A rule action, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// Refuse the client.
    Block,
    /// Let the client through untouched.
    Allow,
}

impl From<ActionArg> for RuleAction {
    fn from(action: ActionArg) -> Self {
        match action {
            ActionArg::Block => RuleAction::Block,
            ActionArg::Allow => RuleAction::Allow,
        }
    }
}

/// A rule source, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// Added by an operator or the app.
    Manual,
    /// Declared by the config.
    Config,
    /// Added by the bouncer itself (a ban).
    Auto,
}

impl From<SourceArg> for RuleSource {
    fn from(source: SourceArg) -> Self {
        match source {
            SourceArg::Manual => RuleSource::Manual,
            SourceArg::Config => RuleSource::Config,
            SourceArg::Auto => RuleSource::Auto,
        }
    }
}

/// A rule state, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// Not expired.
    Active,
    /// Expired.
    Expired,
}

impl From<StateArg> for RuleState {
    fn from(state: StateArg) -> Self {
        match state {
            StateArg::Active => RuleState::Active,
            StateArg::Expired => RuleState::Expired,
        }
    }
}

/// A rule target; the library says what is wrong with a bad one.
fn target(s: &str) -> Result<RuleTarget, String> {
    s.parse().map_err(|e| format!("{e}"))
}

/// A rule id: a positive integer, optionally written `#12` as the tables show it.
fn rule_id(s: &str) -> Result<RuleId, String> {
    let digits = s.strip_prefix('#').unwrap_or(s);
    match digits.parse::<u64>() {
        Ok(id) if id > 0 => Ok(RuleId(id)),
        _ => Err("expected a rule id, a positive integer such as 12".to_owned()),
    }
}

/// A page size, 1 to the store's maximum.
fn page_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from 1 to {MAX_PAGE}")),
    }
}

/// Days of access log to keep: 1 to 100 years' worth.
fn days(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=36_500).contains(&n) => Ok(n),
        _ => Err("expected a number of days from 1 to 36500".to_owned()),
    }
}

/// A duration longer than zero.
fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = actix_bouncer::config::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// An RFC 3339 time with an offset, after 1970 (an earlier one is past anyway, and some
/// platforms' clocks cannot hold it).
fn rfc3339(s: &str) -> Result<SystemTime, String> {
    let at = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map_err(|_| "expected an RFC 3339 time with an offset, like 2030-01-01T00:00:00Z")?;
    if at < time::OffsetDateTime::UNIX_EPOCH {
        return Err("the time is already past".to_owned());
    }
    Ok(at.into())
}
