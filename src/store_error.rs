//! The error every store returns (rule stores, counter stores): opaque to clients, with the
//! backend's own error as its source.

use std::fmt;

/// A store (a database, Redis…) failed. The backend's error is kept as the
/// [`source`](std::error::Error::source); nothing of it is ever sent to a client.
#[derive(Debug)]
pub struct StoreError {
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl StoreError {
    /// Wraps a backend's error (or a message).
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError {
            source: source.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store failed: {}", self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
