//! What a rule is: its target, action, expiry, comment, source and creation time.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::{Serialize, Serializer};

use crate::net::{normalize, parse_network, NetworkError};

/// A rule's identifier, given by the rule store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct RuleId(pub u64);

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a matching rule does.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantNames,
)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[non_exhaustive]
pub enum RuleAction {
    /// Refuse the client (403, reason `blacklisted`).
    Block,
    /// Let the client through untouched: no counting, no ban, no block.
    Allow,
}

impl RuleAction {
    /// `"block"` or `"allow"`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Where a rule came from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
#[non_exhaustive]
pub enum RuleSource {
    /// Added at runtime through [`Rules`](super::Rules) (an operator, the app). The default.
    #[default]
    Manual,
    /// The `[[rules]]` of the config, seeded at startup.
    Config,
    /// Added by the bouncer itself (a ban, an extreme reputation score).
    Auto,
}

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RuleTarget {
    /// An address (a full-length network) or a network.
    Network(IpNet),
    /// A user id, as returned by the bouncer's user hook.
    User(String),
}

impl RuleTarget {
    /// A single address.
    pub fn ip(ip: IpAddr) -> Self {
        RuleTarget::Network(IpNet::from(normalize(ip)))
    }
}

/// Why a rule target or action could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTarget(&'static str);

impl fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidTarget {}

/// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32` or `user:<id>`.
///
/// A network with host bits set (`10.1.2.3/8`) is rejected rather than widened silently.
impl FromStr for RuleTarget {
    type Err = InvalidTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(user) = s.strip_prefix("user:") {
            return if user.is_empty() {
                Err(InvalidTarget("`user:` needs an id after the colon"))
            } else {
                Ok(RuleTarget::User(user.to_owned()))
            };
        }
        match parse_network(s) {
            Ok(net) => Ok(RuleTarget::Network(net)),
            Err(NetworkError::HostBits) => Err(InvalidTarget(
                "the network has host bits set; write the network address (e.g. 10.0.0.0/8)",
            )),
            Err(_) => Err(InvalidTarget(
                "expected an IP address, a CIDR network such as 203.0.113.0/24, or user:<id>",
            )),
        }
    }
}

impl fmt::Display for RuleTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleTarget::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            RuleTarget::Network(net) => write!(f, "{net}"),
            RuleTarget::User(user) => write!(f, "user:{user}"),
        }
    }
}

impl Serialize for RuleTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// When a new rule stops matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// At an absolute time.
    At(SystemTime),
    /// This long after the rule is created.
    After(Duration),
}

impl Expiry {
    /// The instant, for a rule created at `created`. A duration too long to add saturates
    /// about 136 years out.
    pub fn at(self, created: SystemTime) -> SystemTime {
        match self {
            Expiry::At(at) => at,
            Expiry::After(after) => created
                .checked_add(after)
                .unwrap_or(created + Duration::from_secs(u32::MAX.into())),
        }
    }
}

/// A rule to add; the rule store gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewRule {
    /// Who the rule applies to.
    pub target: RuleTarget,
    /// What it does.
    pub action: RuleAction,
    /// When it stops matching; `None` (the default) means never.
    pub expires: Option<Expiry>,
    /// Free text for operators; no comment by default.
    pub comment: Option<String>,
    /// Where it came from. Default: [`RuleSource::Manual`].
    pub source: RuleSource,
}

impl NewRule {
    /// A rule with no expiry and no comment.
    pub fn new(action: RuleAction, target: RuleTarget) -> Self {
        NewRule {
            target,
            action,
            expires: None,
            comment: None,
            source: RuleSource::Manual,
        }
    }

    /// A block rule for `target`.
    pub fn block(target: RuleTarget) -> Self {
        Self::new(RuleAction::Block, target)
    }

    /// An allow rule for `target`.
    pub fn allow(target: RuleTarget) -> Self {
        Self::new(RuleAction::Allow, target)
    }

    /// Stops matching at `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires = Some(Expiry::At(at));
        self
    }

    /// Stops matching `after` its creation.
    pub fn expires_after(mut self, after: Duration) -> Self {
        self.expires = Some(Expiry::After(after));
        self
    }

    /// Attaches a comment.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Says where the rule came from.
    pub fn source(mut self, source: RuleSource) -> Self {
        self.source = source;
        self
    }

    /// The rule as created at `now`, ready for [`RuleStore::insert`](super::RuleStore::insert):
    /// its expiry resolved to an instant.
    pub fn draft(self, now: SystemTime) -> RuleDraft {
        RuleDraft {
            expires: self.expires.map(|e| e.at(now)),
            target: self.target,
            action: self.action,
            comment: self.comment,
            source: self.source,
            created: now,
        }
    }
}

/// A rule on its way into a store: everything but the id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleDraft {
    /// Who it applies to.
    pub target: RuleTarget,
    /// What it does.
    pub action: RuleAction,
    /// When it stops matching; `None` means never.
    pub expires: Option<SystemTime>,
    /// Free text for operators.
    pub comment: Option<String>,
    /// Where it came from.
    pub source: RuleSource,
    /// When it was created.
    pub created: SystemTime,
}

impl RuleDraft {
    /// The rule, once the store has given it `id`.
    pub fn with_id(self, id: RuleId) -> Rule {
        Rule {
            id,
            target: self.target,
            action: self.action,
            expires: self.expires,
            comment: self.comment,
            source: self.source,
            created: self.created,
        }
    }
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "admin-api", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Rule {
    /// Its identifier.
    pub id: RuleId,
    /// Who it applies to: an address, a CIDR network or `user:<id>`.
    #[cfg_attr(
        feature = "admin-api",
        schema(value_type = String, example = "203.0.113.0/24")
    )]
    pub target: RuleTarget,
    /// What it does.
    pub action: RuleAction,
    /// When it stops matching (RFC 3339 in JSON); `None` means never.
    #[serde(serialize_with = "ser_opt_time")]
    #[cfg_attr(feature = "admin-api", schema(value_type = Option<String>, format = DateTime))]
    pub expires: Option<SystemTime>,
    /// Free text for operators.
    pub comment: Option<String>,
    /// Where it came from.
    pub source: RuleSource,
    /// When it was added (RFC 3339 in JSON).
    #[serde(serialize_with = "ser_time")]
    #[cfg_attr(feature = "admin-api", schema(value_type = String, format = DateTime))]
    pub created: SystemTime,
}

impl Rule {
    /// Whether the rule matches at `now` (it has not expired).
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        self.expires.is_none_or(|at| now < at)
    }
}

fn ser_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::clock::rfc3339(*t, false))
}

pub(super) fn ser_opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser_time(t, s),
        None => s.serialize_none(),
    }
}
