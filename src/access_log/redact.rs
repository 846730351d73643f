//! Redaction: secrets out of query strings, url-encoded forms and JSON bodies, and the bounds on
//! client-written text.
//!
//! A field is redacted when its name, decoded and folded, **contains** one of the configured
//! names, folded the same way. Folding lowercases ASCII letters and drops every ASCII character
//! that is not a letter or a digit, so `password`, `user_password`, `Password`, `pass-word`,
//! `user[password]`, `pass%77ord` and `pass+word` all match `password`, and `X-Api-Key`,
//! `apiKey` and `api.key` all match `api_key`. Substring matching errs on the side of hiding:
//! `discard` matches `card`, `tokens` matches `token`. Names are percent-decoded (up to three
//! rounds, `+` as a space) before folding, so an escaped name cannot slip past. A redacted
//! value is replaced by `[REDACTED]`, never dropped: the log still shows the field was sent.

use serde_json::Value;

/// What replaces a redacted value.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// Rounds of percent-decoding applied to a field name.
const DECODE_ROUNDS: usize = 3;

/// The default names whose values are redacted.
pub(crate) const DEFAULT_REDACT: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "csrfmiddlewaretoken",
    "authorization",
    "api_key",
    "card",
    "cvv",
];

/// Field names to redact, folded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redactor {
    names: Vec<String>,
}

impl Redactor {
    /// The folded names; the error names an entry that folds to nothing (it would match every
    /// field).
    pub(crate) fn new<I, S>(names: I) -> Result<Redactor, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut folded = Vec::new();
        for name in names {
            let f = fold(name.as_ref().as_bytes());
            if f.is_empty() {
                return Err(name.as_ref().to_owned());
            }
            if !folded.contains(&f) {
                folded.push(f);
            }
        }
        Ok(Redactor { names: folded })
    }

    /// Whether the (still encoded) field name `raw` is to be redacted.
    pub(crate) fn matches_encoded(&self, raw: &str) -> bool {
        if self.names.is_empty() {
            return false;
        }
        let mut bytes = raw.as_bytes().to_vec();
        for round in 0..DECODE_ROUNDS {
            if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
                break;
            }
            bytes = percent_decode(&bytes, round == 0);
        }
        self.matches_folded(&fold(&bytes))
    }

    fn matches_folded(&self, folded: &str) -> bool {
        self.names.iter().any(|n| folded.contains(n.as_str()))
    }

    /// A query string or url-encoded form with the values of matching fields replaced. Pairs
    /// are split on `&` (as actix's `Query` and `Form` do), kept in order and as sent otherwise.
    pub(crate) fn urlencoded(&self, input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        for (i, pair) in input.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if self.matches_encoded(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
        out
    }

    /// A JSON body with the values of matching keys replaced at any depth; `None` when the
    /// body is not JSON.
    pub(crate) fn json(&self, input: &[u8]) -> Option<String> {
        let mut value: Value = serde_json::from_slice(input).ok()?;
        self.json_value(&mut value);
        serde_json::to_string(&value).ok()
    }

    fn json_value(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    // JSON keys are not percent-encoded, but decoding them as well only ever
                    // hides more.
                    if self.matches_encoded(key) {
                        *v = Value::String(REDACTED.to_owned());
                    } else {
                        self.json_value(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json_value(v)),
            _ => {}
        }
    }
}

/// ASCII letters lowercased, ASCII non-alphanumerics dropped, other characters kept.
fn fold(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Percent-decodes leniently: a broken escape is kept as is; `+` is a space in the first
/// round (form encoding).
fn percent_decode(input: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hex = input.get(i + 1..i + 3).and_then(|h| {
                    let hi = (h[0] as char).to_digit(16)?;
                    let lo = (h[1] as char).to_digit(16)?;
                    u8::try_from(hi * 16 + lo).ok()
                });
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// `s` cut to at most `max` bytes, on a char boundary.
pub(crate) fn bound(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes, owned.
pub(crate) fn bounded(s: &str, max: usize) -> String {
    bound(s, max).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Redactor {
        Redactor::new(DEFAULT_REDACT).unwrap()
    }

    #[test]
    fn query_names_are_decoded_and_folded() {
        let r = default();
        assert_eq!(
            r.urlencoded("q=shoes&pass%77ord=x&User_Password=y&X-Api-Key=z&a"),
            "q=shoes&pass%77ord=[REDACTED]&User_Password=[REDACTED]&X-Api-Key=[REDACTED]&a"
        );
        assert_eq!(
            r.urlencoded("pass+word=1&pass%2577ord=2"),
            "pass+word=[REDACTED]&pass%2577ord=[REDACTED]"
        );
        assert_eq!(r.urlencoded("%zz=1&%=2&=3&&"), "%zz=1&%=2&=3&&");
        assert_eq!(
            r.urlencoded("user[card][number]=4111"),
            "user[card][number]=[REDACTED]"
        );
    }

    #[test]
    fn json_is_redacted_at_any_depth() {
        let r = default();
        let out = r
            .json(br#"{"a":{"b":[{"Token":"t"},{"x":1}]},"pass\u0077ord":{"deep":1},"n":2}"#)
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&out).unwrap(),
            serde_json::json!({"a":{"b":[{"Token":"[REDACTED]"},{"x":1}]},"n":2,"password":"[REDACTED]"})
        );
        assert_eq!(r.json(b"{not json"), None);
        let deep = "[".repeat(10_000);
        assert_eq!(r.json(deep.as_bytes()), None);
    }

    proptest::proptest! {
        #[test]
        fn malformed_input_never_panics(
            text in "\\PC{0,64}",
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let r = default();
            let _ = r.urlencoded(&text);
            let _ = r.json(&bytes);
            let _ = r.json(text.as_bytes());
            let _ = r.matches_encoded(&text);
            let _ = bound(&text, bytes.len());
        }

        #[test]
        fn a_secret_never_survives(
            before in "[a-z&=%+]{0,20}",
            name in "(pass%77ord|PASSWORD|user_password|x-api-key|Token|pass%2577ord)",
            secret in "S3[A-Z0-9]{8}",
        ) {
            let r = default();
            let query = format!("{before}&{name}={secret}");
            proptest::prop_assert!(!r.urlencoded(&query).contains(&secret));
            let json = format!(r#"{{"a":[{{"{name}":"{secret}"}}]}}"#);
            proptest::prop_assert!(!r.json(json.as_bytes()).unwrap().contains(&secret));
        }
    }

    #[test]
    fn an_empty_name_is_refused() {
        assert!(Redactor::new(["-"]).is_err());
    }

    #[test]
    fn bounds_cut_on_char_boundaries() {
        assert_eq!(bound("héllo", 2), "h");
        assert_eq!(bound("héllo", 3), "hé");
        assert_eq!(bound("abc", 10), "abc");
    }
}
