//! Signals: checks that add points, flags and reasons to a request's verdict.
//!
//! The bouncer runs its signals in order after rules and rate limits and before the block
//! threshold, so their points count toward the global decision and every per-handler guard.
//! Allowlisted and already-blocked requests skip them. The built-in signals are ordinary
//! [`Signal`]s: the User-Agent (with crawler claims checked against the crawler's published
//! ranges), the offline range feeds, and the IP-reputation API (feature `reputation`); the
//! app's own come after them.
//!
//! A signal runs on every request: keep it cheap and synchronous. One that must wait (the
//! reputation API on a critical path, when its cache has no answer) returns
//! [`Applied::Wait`] with what it waits for: the bouncer then holds the request, without
//! blocking its thread, finishes the signal's work once the wait ends, and goes on with the
//! next signal.
//!
//! ```
//! use std::borrow::Cow;
//! use actix_bouncer::{Bouncer, Flag, Reason};
//!
//! let bouncer = Bouncer::builder()
//!     // A closure is a signal that never waits.
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
//!
//! The files of this folder: `weights.rs` (the built-in signals' points), `user_agent.rs`,
//! `ranges.rs` and `reputation.rs` (the built-in signals).

mod ranges;
#[cfg(feature = "reputation")]
mod reputation;
mod user_agent;
mod weights;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::ServiceRequest;

use crate::verdict::IpVerdict;

pub(crate) use self::ranges::RangeSignal;
#[cfg(feature = "reputation")]
pub(crate) use self::reputation::{ReputationSignal, ReputationSignalConfig};
pub(crate) use self::user_agent::UserAgentSignal;
pub use self::weights::Weights;

/// A check that adds points ([`IpVerdict::add`]) and flags ([`IpVerdict::flag`]) to a verdict.
///
/// Closures `Fn(&ServiceRequest, &mut IpVerdict)` are signals that never wait.
pub trait Signal: Send + Sync + 'static {
    /// Looks at the request and adds what it finds to the verdict, or says what it must wait
    /// for first.
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) -> Applied;
}

impl<F> Signal for F
where
    F: Fn(&ServiceRequest, &mut IpVerdict) + Send + Sync + 'static,
{
    fn apply(&self, req: &ServiceRequest, verdict: &mut IpVerdict) -> Applied {
        self(req, verdict);
        Applied::Done
    }
}

/// What a signal did with a request.
#[derive(Debug)]
#[must_use = "a signal that waits must hand its wait to the bouncer"]
#[non_exhaustive]
pub enum Applied {
    /// Its work on the verdict is done.
    Done,
    /// It must wait before it can finish (at most as long as it chooses: bound the wait).
    Wait(Pending),
}

/// What finishes a waiting signal's work on the verdict.
pub type Finish = Box<dyn FnOnce(&mut IpVerdict)>;

/// A signal's wait: a future whose output finishes the signal's work on the verdict.
///
/// ```
/// use std::time::Duration;
/// use actix_bouncer::signals::{Applied, Pending, Signal};
/// use actix_bouncer::{IpVerdict, Reason};
/// use actix_web::dev::ServiceRequest;
///
/// /// Asks a (slow) service about some requests; waits at most 50 ms.
/// struct Slow;
///
/// impl Signal for Slow {
///     fn apply(&self, req: &ServiceRequest, _: &mut IpVerdict) -> Applied {
///         if req.path() != "/checkout" {
///             return Applied::Done;
///         }
///         Applied::Wait(Pending::new(async {
///             let verdict = tokio::time::timeout(Duration::from_millis(50), async { 30u8 }).await;
///             move |v: &mut IpVerdict| {
///                 let points = verdict.unwrap_or(50);
///                 v.add(Reason::Signal { description: "slow service".into(), points });
///             }
///         }))
///     }
/// }
/// ```
pub struct Pending(Pin<Box<dyn Future<Output = Finish>>>);

impl Pending {
    /// Waits for `wait`; its output finishes the signal's work.
    pub fn new<W, F>(wait: W) -> Self
    where
        W: Future<Output = F> + 'static,
        F: FnOnce(&mut IpVerdict) + 'static,
    {
        Pending(Box::pin(async move { Box::new(wait.await) as Finish }))
    }
}

impl Future for Pending {
    type Output = Finish;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Finish> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pending")
    }
}
