//! `bouncer`: manages actix-bouncer's block and allow rules from the command line, in the same
//! store (`sqlite://…`, or `postgres://…` with the `postgres` feature) the running app reads,
//! so every instance picks up a change at its next reload. The counterpart of
//! django-blacklist's admin and `trim_blacklist` command.
//!
//! ```text
//! bouncer --store sqlite://rules.db rules add 203.0.113.0/24 --for 1h --comment "scraper"
//! bouncer --store sqlite://rules.db rules list --state active
//! bouncer --store sqlite://rules.db rules remove 12
//! bouncer --store sqlite://rules.db rules trim -e 7
//! bouncer --store sqlite://rules.db logs trim --days 7
//! ```
//!
//! `logs trim` deletes the access log's records older than `--days` (7 by default), as the
//! Django access log's cleanup command does; `--store` names the database the app's
//! `SqlAccessLog` writes to (the rule store's, or one of its own). Run it from cron, or let
//! the app trim in the background with `SqlAccessLog::trim_every`.
//!
//! Exit codes: 0 done, 1 the store failed or a rule was not found, 2 bad usage.
//!
//! The files: `args.rs` (the command line), `commands.rs` (what each command does),
//! `table.rs` and `json.rs` (the output), `text.rs` (escaping client-written text for a
//! terminal), `store_url.rs` (the URL, and hiding its password), `failure.rs` (errors and
//! exit codes).

#![forbid(unsafe_code)]

mod args;
mod commands;
mod failure;
mod json;
mod store_url;
mod table;
mod text;

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::failure::Failure;
use crate::text::escape;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = failure.message() {
                let _ = writeln!(io::stderr().lock(), "bouncer: {}", escape(message));
            }
            failure.exit_code()
        }
    }
}

/// Runs the command on a single-threaded runtime: one store call at a time is all it needs.
fn run(cli: Cli) -> Result<(), Failure> {
    let url = store_url::resolve(cli.store)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?;
    let mut out = BufWriter::new(io::stdout().lock());
    let result = runtime.block_on(async {
        match cli.command {
            Command::Rules(command) => commands::run(command, &url, cli.json, &mut out).await,
            Command::Logs(command) => commands::run_logs(command, &url, cli.json, &mut out).await,
        }
    });
    // What was written goes out before any error, so the two read in order.
    let flushed = out.flush().map_err(Failure::output);
    result.and(flushed)
}

/// Prints clap's message (help, version, or a usage error) and returns its exit code.
fn usage_error(error: &clap::Error) -> ExitCode {
    let code = ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
    if !error.use_stderr() {
        // Help and version: our own text, safe to print as clap styles it.
        let _ = error.print();
        return code;
    }
    // A usage error quotes the offending argument, which may hold escape sequences.
    let rendered = error.render().to_string();
    let mut stderr = io::stderr().lock();
    for line in rendered.lines() {
        let _ = writeln!(stderr, "{}", escape(line));
    }
    code
}
