//! Why a lookup gave no report.

use std::fmt;

/// Why a lookup gave no report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReputationError {
    /// The API did not answer within
    /// [`ReputationConfig::timeout`](super::ReputationConfig::timeout).
    Timeout,
    /// The API answered with this non-success HTTP status.
    Status(u16),
    /// The answer was not a JSON object holding any of the configured fields (or was
    /// larger than 64 KiB).
    Malformed,
    /// The API could not be reached: connection refused or reset, DNS or TLS failure.
    Transport,
    /// A recent lookup of this address failed, and the failure is remembered for
    /// [`ReputationConfig::negative_ttl`](super::ReputationConfig::negative_ttl): the API is
    /// not asked again until then.
    Unavailable,
    /// The background queue was full, so the lookup was dropped.
    QueueFull,
}

impl fmt::Display for ReputationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReputationError::Timeout => f.write_str("the reputation API timed out"),
            ReputationError::Status(status) => {
                write!(f, "the reputation API answered HTTP {status}")
            }
            ReputationError::Malformed => {
                f.write_str("the reputation API's answer is not a usable JSON object")
            }
            ReputationError::Transport => f.write_str("the reputation API cannot be reached"),
            ReputationError::Unavailable => {
                f.write_str("the reputation API failed recently for this address")
            }
            ReputationError::QueueFull => f.write_str("the reputation lookup queue is full"),
        }
    }
}

impl std::error::Error for ReputationError {}
