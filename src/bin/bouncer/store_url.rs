//! The rule store's URL: where it comes from, and how it is shown without its password.

use crate::failure::Failure;

/// The URL given by `--store` or `BOUNCER_STORE`, or a usage failure saying how to give one.
pub fn resolve(given: Option<String>) -> Result<String, Failure> {
    match given {
        Some(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        _ => Err(Failure::Usage(
            "no rule store given: pass --store <URL> or set BOUNCER_STORE \
             (e.g. sqlite://bouncer.db or postgres://user:password@host/database)"
                .to_owned(),
        )),
    }
}

pub use actix_bouncer::store_url::{passwords, redact};
