//! Signals: checks that add points, flags and reasons to a request's verdict.
//!
//! The bouncer runs its signals after rules and rate limits and before the block threshold,
//! so their points count toward the global decision and every per-handler guard. Allowlisted
//! and already-blocked requests skip them. A signal runs on every request: keep it cheap and
//! synchronous (no I/O).
//!
//! ```
//! use std::borrow::Cow;
//! use actix_bouncer::{Bouncer, Flag, Reason};
//!
//! let bouncer = Bouncer::builder()
//!     .signal(|req: &actix_web::dev::ServiceRequest, verdict: &mut actix_bouncer::IpVerdict| {
//!         if !req.headers().contains_key("accept-language") {
//!             verdict.flag(Flag::Bot);
//!             verdict.add(Reason::Signal {
//!                 description: Cow::Borrowed("no Accept-Language header"),
//!                 points: 15,
//!             });
//!         }
//!     })
//!     .build()?;
//! # Ok::<_, actix_bouncer::ConfigError>(())
//! ```

use actix_web::dev::ServiceRequest;

use crate::verdict::IpVerdict;

/// A check that adds points ([`IpVerdict::add`]) and flags ([`IpVerdict::flag`]) to a verdict.
pub trait Signal: Send + Sync + 'static {
    /// Looks at the request and adds what it finds to the verdict.
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict);
}

impl<F> Signal for F
where
    F: Fn(&ServiceRequest, &mut IpVerdict) + Send + Sync + 'static,
{
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) {
        self(req, verdict)
    }
}
