//! The error a component returns for a setting it cannot accept.
//!
//! Components (the limiter, the feeds, the reputation client) know their own settings but not
//! where they sit in a TOML file: they name the field relative to themselves (`per`,
//! `fields.risk_score`), and the config layer adds the path (`limit.per`,
//! `reputation.fields.risk_score`) when it turns the error into a
//! [`ConfigError`](crate::ConfigError).

use std::borrow::Cow;
use std::fmt;

/// A setting a component refused: which one, the value given, and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    field: Cow<'static, str>,
    value: String,
    expected: Cow<'static, str>,
}

impl InvalidSetting {
    /// A refusal of `value` for `field`, which accepts `expected`.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        value: impl fmt::Display,
        expected: impl Into<Cow<'static, str>>,
    ) -> Self {
        InvalidSetting {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// The field, relative to the component: `per`, `ban_for`, `fields.risk_score`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The refused value, as given (strings quoted).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the field accepts.
    pub fn expected(&self) -> &str {
        &self.expected
    }
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` = {}: {}", self.field, self.value, self.expected)
    }
}

impl std::error::Error for InvalidSetting {}
