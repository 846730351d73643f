//! Database URLs as they may be shown: with their passwords masked, for error messages and
//! logs (the rule store, the access log, the `bouncer` CLI).

/// `url` with its passwords masked: the userinfo's (`postgres://user:***@host/db`) and any
/// `password=` query parameter's. It masks too much rather than too little: the last `@`
/// ends the userinfo, so an unencoded `/` or `?` in a password stays hidden.
pub fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some((start, colon, at)) = userinfo_password(url) {
        shown = format!("{}***{}", &url[..start + colon + 1], &url[start + at..]);
    }
    for (from, to) in query_passwords(&shown).into_iter().rev() {
        shown.replace_range(from..to, "***");
    }
    shown
}

/// Every password in `url`, to scrub from error messages in case a driver quotes one.
pub fn passwords(url: &str) -> Vec<&str> {
    let mut found: Vec<&str> = query_passwords(url)
        .into_iter()
        .map(|(from, to)| &url[from..to])
        .collect();
    if let Some((start, colon, at)) = userinfo_password(url) {
        found.push(&url[start + colon + 1..start + at]);
    }
    found.retain(|p| !p.is_empty());
    found
}

/// Where the authority starts, and its first `:` and last `@` relative to that start, when
/// it holds `user:password@`.
fn userinfo_password(url: &str) -> Option<(usize, usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((start, colon, at))
}

/// The byte ranges of the values of `password=` query parameters, in order.
fn query_passwords(url: &str) -> Vec<(usize, usize)> {
    let Some(query) = url.find('?') else {
        return Vec::new();
    };
    let mut ranges = Vec::new();
    let mut at = query + 1;
    for param in url[query + 1..].split('&') {
        if let Some((key, value)) = param.split_once('=') {
            if key.eq_ignore_ascii_case("password") && !value.is_empty() {
                let from = at + key.len() + 1;
                ranges.push((from, from + value.len()));
            }
        }
        at += param.len() + 1;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::{passwords, redact};

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact("postgres://user:s3cret@db.example/rules"),
            "postgres://user:***@db.example/rules"
        );
        assert_eq!(
            redact("postgres://user:p/a?s@s@host/db"),
            "postgres://user:***@host/db"
        );
        assert_eq!(
            redact("postgres://host/db?user=u&password=s3cret&sslmode=require"),
            "postgres://host/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact("postgres://u:a@h/db?PASSWORD=b"),
            "postgres://u:***@h/db?PASSWORD=***"
        );
        assert_eq!(passwords("postgres://u:a1@h/db?password=b2"), ["b2", "a1"]);
    }

    #[test]
    fn urls_without_passwords_are_unchanged() {
        for url in [
            "sqlite://rules.db",
            "sqlite::memory:",
            "postgres://user@host/db",
            "postgres://host:5432/db",
            "",
            "::@@//",
        ] {
            assert_eq!(redact(url), url);
        }
    }
}
