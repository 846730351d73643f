//! Configuration: the [`BouncerBuilder`] and the TOML file format, two doors to one validation.
//! It sits on top of everything: it builds every component, and maps each one's typed errors
//! to the key at fault. Nothing imports it back.
//!
//! The TOML loader reads each key and calls the matching builder setter, so both doors accept
//! exactly the same values and report errors with the same key names (`limit.hits`,
//! `client.trusted_proxies[1]`, `rules[0].target`, …).
//!
//! ```toml
//! mode = "enforce"          # or "monitor": log what would be blocked, block nothing
//! block_threshold = 90      # 0–100
//!
//! [client]
//! trusted_proxies = ["10.0.0.0/8"]  # forwarding headers are read only from these peers ("unix": a Unix socket)
//! ip_headers = ["x-forwarded-for"]  # any of "forwarded", "x-forwarded-for", "x-real-ip", in order
//! ipv4_prefix = 32
//! ipv6_prefix = 64
//!
//! [limit]
//! hits = 300
//! per = "1m"
//! burst = 300
//! ban_for = "15m"
//! ban_growth = 2.0
//! max_ban = "24h"
//! max_tracked_keys = 100000
//! user_ban_for = "1h"         # a signed-in user's automatic rule lasts this long
//!
//! [store]                     # without it, rules live in process
//! rules = "sqlite://bouncer.db"  # or "postgres://user@host/db" (feature `postgres`)
//! reload = "60s"              # apply other instances' rule changes this often
//! auto_rules = true           # record bans as automatic rules every instance enforces
//! counters = "redis://127.0.0.1:6379/0"  # counts and bans shared by every instance (feature `redis`)
//! counters_prefix = "bouncer" # instances with the same Redis and prefix share counts and bans
//! counters_timeout = "5ms"    # longest Redis round trip before it counts as a failure
//! counters_fail = "open"      # Redis unreachable: "open" (local limits) or "closed" (429)
//! counters_max_delay = "100ms" # longest a key's hits wait to be shared (also counters_sync_every, counters_batch_hits)
//!
//! [access_log]                # what Bouncer::access_log() starts from
//! store = "sqlite://access.db"   # default: records go to tracing only
//! retain = "7d"               # trim older records hourly
//! also_redact = ["pin"]       # or redact = [...] to replace the default list
//! skip = ["/static/", "/media/"]
//!
//! [[admin_api.tokens]]        # Bouncer::admin_scope; no token: the API is disabled
//! name = "ops"                # who made a change, in logs and events
//! env = "BOUNCER_ADMIN_TOKEN" # or token = "…" (at least 16 bytes)
//!
//! [[rules]]                   # seeded once per entry: restarts make no copies
//! target = "203.0.113.0/24"   # an IP, a CIDR network, or "user:<id>"
//! action = "block"            # or "allow"
//! for = "7d"                  # or expires = "2030-01-01T00:00:00Z"
//! comment = "scraper"
//! ```

mod build;
mod builder;
mod error;
mod toml_file;

use std::path::Path;
use std::time::Duration;

pub use self::builder::BouncerBuilder;
#[cfg(feature = "reputation")]
pub use self::builder::{PathGroup, ReputationSettings};
pub use self::error::ConfigError;
use crate::bouncer::Bouncer;
pub use crate::engine::Mode;

/// Default `block_threshold`.
pub const DEFAULT_BLOCK_THRESHOLD: u8 = 90;
/// Default `limit.hits`.
pub const DEFAULT_HITS: u32 = 300;
/// Default `limit.per`.
pub const DEFAULT_PER: Duration = Duration::from_secs(60);
/// Default `limit.ban_growth`.
pub const DEFAULT_BAN_GROWTH: f64 = 2.0;
/// Default `limit.max_ban`, raised to `ban_for` when that is longer.
pub const DEFAULT_MAX_BAN: Duration = Duration::from_secs(24 * 3600);
/// Default `admin.max_score`.
pub const DEFAULT_ADMIN_MAX_SCORE: u8 = 60;
/// Default `store.reload`.
pub const DEFAULT_STORE_RELOAD: Duration = Duration::from_secs(60);
/// Default `limit.max_tracked_keys`.
pub const DEFAULT_MAX_TRACKED_KEYS: usize = 100_000;
/// Shortest admin API secret, in bytes (`admin_api.tokens[i]`): 128 bits, out of reach of
/// guessing.
#[cfg(feature = "admin-api")]
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

impl Default for Bouncer {
    fn default() -> Self {
        Self::new()
    }
}

impl Bouncer {
    /// A bouncer with safe defaults: enforce mode, block threshold 90, no trusted proxies (the
    /// peer address is the client), 300 requests a minute per client, no bans, no rules.
    pub fn new() -> Self {
        BouncerBuilder::default()
            .build()
            .unwrap_or_else(|e| unreachable!("the default config is valid: {e}"))
    }

    /// A builder starting from the defaults of [`Bouncer::new`].
    pub fn builder() -> BouncerBuilder {
        BouncerBuilder::default()
    }

    /// A bouncer configured by a TOML file; see [`config`](crate::config) for the keys.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::builder().toml_file(path)?.build()
    }

    /// A bouncer configured by a TOML document.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::builder().toml_str(toml)?.build()
    }
}

/// Parses a human duration such as `"90s"`, `"10m"`, `"24h"`, `"7d"` or `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("expected a duration like \"90s\", \"10m\" or \"24h\" ({e})"))
}

/// A string as a config error shows it: quoted, escaped.
pub(crate) fn quoted(s: &str) -> String {
    format!("{s:?}")
}
