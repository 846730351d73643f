//! Why a command failed, and the exit code that says so.

use std::error::Error as _;
use std::io;
use std::process::ExitCode;

use actix_bouncer::StoreError;

use crate::store_url::{passwords, redact};

/// A failed command.
#[derive(Debug)]
pub enum Failure {
    /// The command line asked for something impossible (exit 2, as clap's usage errors).
    Usage(String),
    /// The store could not be opened or failed, or a rule was not found (exit 1).
    Failed(String),
    /// Whoever read our output stopped reading (`bouncer … | head`): stop quietly.
    Closed,
}

impl Failure {
    /// The rule store at `url` could not be opened.
    pub fn open(url: &str, error: &StoreError) -> Self {
        Failure::open_part("rule store", url, error)
    }

    /// The rule store at `url` failed after it was opened.
    pub fn store(url: &str, error: &StoreError) -> Self {
        Failure::part_failed("rule store", url, error)
    }

    /// The `part` ("rule store", "access log") at `url` could not be opened.
    pub fn open_part(part: &str, url: &str, error: &StoreError) -> Self {
        Failure::Failed(format!(
            "cannot open the {part} at {}: {}",
            redact(url),
            detail(url, error)
        ))
    }

    /// The `part` at `url` failed after it was opened.
    pub fn part_failed(part: &str, url: &str, error: &StoreError) -> Self {
        Failure::Failed(format!(
            "the {part} at {} failed: {}",
            redact(url),
            detail(url, error)
        ))
    }

    /// Writing the output failed.
    pub fn output(error: io::Error) -> Self {
        if error.kind() == io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Failed(format!("cannot write the output: {error}"))
        }
    }

    /// The process's exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Failed(_) => ExitCode::from(1),
            Failure::Closed => ExitCode::SUCCESS,
        }
    }

    /// What to tell the user on stderr, if anything.
    pub fn message(&self) -> Option<&str> {
        match self {
            Failure::Usage(message) | Failure::Failed(message) => Some(message),
            Failure::Closed => None,
        }
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Failure::output(error)
    }
}

/// The backend's own message (`StoreError`'s display only prefixes it), without the URL's
/// passwords: drivers do not quote them, but if one ever does, they stay unprinted.
fn detail(url: &str, error: &StoreError) -> String {
    let mut detail = error
        .source()
        .map_or_else(|| error.to_string(), ToString::to_string);
    for password in passwords(url) {
        detail = detail.replace(password, "***");
    }
    detail
}
