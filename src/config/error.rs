use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use crate::setting::InvalidSetting;

/// Why a configuration was rejected. Every variant names the key at fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong type.
    Toml {
        /// The file, when the config came from one.
        path: Option<PathBuf>,
        /// The parser's message, which names the key and its line.
        message: String,
    },
    /// A key holds a value outside what it accepts.
    Invalid {
        /// The key's path, as in the TOML file: `limit.hits`, `rules[2].target`.
        key: Cow<'static, str>,
        /// The rejected value, as given.
        value: String,
        /// What the key accepts.
        expected: Cow<'static, str>,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `key`.
    pub(crate) fn invalid(
        key: impl Into<Cow<'static, str>>,
        value: impl fmt::Display,
        expected: impl Into<Cow<'static, str>>,
    ) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// A component's refusal of a setting, keyed by where the setting sits: `section` then the
    /// field (`limit` + `per` = `limit.per`), or the section alone for an empty field.
    pub(crate) fn setting(section: &str, setting: &InvalidSetting) -> Self {
        let key = match setting.field() {
            "" => section.to_owned(),
            field => format!("{section}.{field}"),
        };
        // The value is already as given (strings quoted).
        ConfigError::invalid(key, setting.value(), setting.expected().to_owned())
    }

    /// Names the file a TOML error came from.
    pub(crate) fn in_file(self, file: &std::path::Path) -> Self {
        match self {
            ConfigError::Toml {
                path: None,
                message,
            } => ConfigError::Toml {
                path: Some(file.to_owned()),
                message,
            },
            other => other,
        }
    }

    /// The key at fault, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "cannot read bouncer config {}: {source}", path.display())
            }
            ConfigError::Toml {
                path: Some(path),
                message,
            } => write!(f, "invalid bouncer config {}: {message}", path.display()),
            ConfigError::Toml {
                path: None,
                message,
            } => {
                write!(f, "invalid bouncer config: {message}")
            }
            ConfigError::Invalid {
                key,
                value,
                expected,
            } => write!(f, "invalid bouncer config: `{key}` = {value}: {expected}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
