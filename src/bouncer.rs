//! The [`Bouncer`] handle: what an app holds, wraps into its `App`s, and asks about rules,
//! bans and counters. Built by [`config`](crate::config); its `Transform` is in `middleware.rs`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::client_ip::ClientKey;
use crate::engine::{Engine, Mode};
use crate::limiter::{ActiveBan, Subject};
use crate::rules::Rules;
use crate::store_error::StoreError;

/// The bouncer middleware. Build it once and `.wrap()` a clone into each app instance;
/// clones share counters, bans and rules.
///
/// ```no_run
/// use actix_bouncer::{Bouncer, IpVerdict};
/// use actix_web::{web, App, HttpServer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let bouncer = Bouncer::from_toml_file("bouncer.toml")?;
/// HttpServer::new(move || {
///     App::new()
///         .wrap(bouncer.clone())
///         .route("/", web::get().to(|v: IpVerdict| async move { format!("score {}", v.score()) }))
/// })
/// .bind("127.0.0.1:8080")?
/// .run()
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Bouncer {
    pub(crate) engine: Arc<Engine>,
}

impl std::fmt::Debug for Bouncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bouncer")
            .field("mode", &self.engine.mode)
            .field("block_threshold", &self.engine.block_threshold)
            .field("rules", &self.engine.rules)
            .finish_non_exhaustive()
    }
}

impl Bouncer {
    pub(crate) fn from_engine(engine: Engine) -> Self {
        Bouncer {
            engine: Arc::new(engine),
        }
    }

    /// The rules handle: add, remove, list and check rules at runtime.
    pub fn rules(&self) -> &Rules {
        &self.engine.rules
    }

    /// Enforce or monitor.
    pub fn mode(&self) -> Mode {
        self.engine.mode
    }

    /// The key `ip` is counted and banned under.
    pub fn key_for(&self, ip: IpAddr) -> ClientKey {
        self.engine.resolver.key_for(ip)
    }

    /// Every active ban (global and handler limits), soonest end first.
    pub async fn bans(&self) -> Result<Vec<ActiveBan>, StoreError> {
        self.engine.limits.bans().await
    }

    /// Bans `key` under the global limit for `length` (an operator's ban: 403 with
    /// `Retry-After` until it ends).
    pub async fn ban(&self, key: ClientKey, length: Duration) -> Result<(), StoreError> {
        self.engine.limits.ban(key, length).await
    }

    /// Lifts every ban on `key` and forgets its hits and offences, under every limit. Returns
    /// whether the key was tracked.
    pub async fn unban(&self, key: ClientKey) -> Result<bool, StoreError> {
        self.engine.limits.unban(Subject::Client(key)).await
    }

    /// Lifts every ban on a user (handler limits keyed by user) and forgets its hits.
    pub async fn unban_user(&self, user: &str) -> Result<bool, StoreError> {
        self.engine.limits.unban(Subject::User(user)).await
    }

    /// How many keys the counter store tracks now, over all limits (never above
    /// `limit.max_tracked_keys` with the memory store).
    pub fn tracked_keys(&self) -> usize {
        self.engine.limits.tracked_keys()
    }

    /// The reputation API's counters (upstream calls, cache hits, failures, and background
    /// lookups dropped because the queue was full), when one is configured.
    #[cfg(feature = "reputation")]
    pub fn reputation_stats(&self) -> Option<crate::reputation::ReputationStats> {
        self.engine.reputation.as_ref().map(|r| r.client().stats())
    }
}
