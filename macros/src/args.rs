//! Parsing and validation of the four attributes' arguments.
//!
//! Everything that can be checked without the runtime is checked here, at compile time, and
//! every error is spanned on the token the user has to change.

use std::time::Duration;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{parse_quote, Error, Expr, ExprLit, ExprPath, Ident, Lit, LitStr, Path, Result, Token};

/// One item of an argument list: `key = value`, or a bare `key` (a flag of `deny_flags`).
struct Arg {
    /// As written; spans the key for errors.
    key: Ident,
    /// The key without any `r#` prefix, for matching.
    name: String,
    value: Option<Expr>,
}

impl Arg {
    /// The value of a key that needs one; `example` shows the user how to write it.
    fn value(&self, example: &str) -> Result<&Expr> {
        self.value.as_ref().ok_or_else(|| {
            Error::new(
                self.key.span(),
                format!("`{}` needs a value, e.g. `{example}`", self.name),
            )
        })
    }
}

/// Parses a comma-separated list of [`Arg`]s. `expected` says what an item looks like, for the
/// error when something else (a literal, a stray token) stands where an item should.
fn parse_list(input: ParseStream, expected: &str) -> Result<Vec<Arg>> {
    let mut args = Vec::new();
    while !input.is_empty() {
        // `peek_any` so that the keyword `crate` is accepted as a key.
        if !input.peek(Ident::peek_any) {
            return Err(input.error(format!("expected {expected}")));
        }
        let key = input.call(Ident::parse_any)?;
        let name = key.unraw().to_string();
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse::<Expr>()?)
        } else {
            None
        };
        args.push(Arg { key, name, value });
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(args)
}

/// `` `a`, `b`, `c` `` for error messages.
fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_key(arg: &Arg, allowed: &[&str]) -> Error {
    Error::new(
        arg.key.span(),
        format!(
            "unknown key `{}`; expected one of: {}",
            arg.name,
            list(allowed)
        ),
    )
}

/// Keys already given, so that a repeated one is reported on its second occurrence instead of
/// silently overriding the first.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn first(&mut self, arg: &Arg) -> Result<()> {
        if self.0.contains(&arg.name) {
            return Err(Error::new(
                arg.key.span(),
                format!("duplicate key `{}`", arg.name),
            ));
        }
        self.0.push(arg.name.clone());
        Ok(())
    }
}

/// Strips `Expr::Group`, which appears when an argument comes from a `macro_rules!` fragment.
fn ungroup(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => ungroup(&group.expr),
        expr => expr,
    }
}

/// An integer literal in `min..=max`; other expressions (negative numbers, strings, constants)
/// get the same message, because the value has to be known when the macro runs.
fn int_in(expr: &Expr, key: &str, min: u64, max: u64) -> Result<u64> {
    let range = || format!("{key} must be an integer literal between {min} and {max}");
    match ungroup(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Error::new(
                int.span(),
                format!(
                    "{key} must be between {min} and {max}, got {}",
                    int.base10_digits()
                ),
            )),
        },
        other => Err(Error::new_spanned(other, range())),
    }
}

/// A string literal; `example` shows the expected form.
fn string(expr: &Expr, key: &str, example: &str) -> Result<LitStr> {
    match ungroup(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit.clone()),
        other => Err(Error::new_spanned(
            other,
            format!("`{key}` expects a string literal, e.g. `{example}`"),
        )),
    }
}

fn threshold(expr: &Expr) -> Result<u8> {
    // Range 1..=100 fits u8, so the cast cannot truncate.
    int_in(expr, "threshold", 1, 100).map(|n| n as u8)
}

fn message(expr: &Expr) -> Result<LitStr> {
    let lit = string(
        expr,
        "message",
        "message = \"Sign in from a regular connection.\"",
    )?;
    if lit.value().trim().is_empty() {
        // An empty `detail` tells the client nothing; leaving `message` out keeps the default.
        return Err(Error::new(
            lit.span(),
            "`message` must not be empty; leave it out to keep the default message",
        ));
    }
    Ok(lit)
}

/// A limit's name: a non-empty string, its identity in the counter store.
fn limit_name(expr: &Expr) -> Result<LitStr> {
    let lit = string(expr, "name", "name = \"login\"")?;
    if lit.value().trim().is_empty() {
        return Err(Error::new(
            lit.span(),
            "`name` must not be empty; leave it out to name the limit after the handler",
        ));
    }
    Ok(lit)
}

/// `crate = "path"` as serde spells it, or a bare path.
fn crate_path(expr: &Expr) -> Result<Path> {
    match ungroup(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit.parse::<Path>(),
        Expr::Path(ExprPath {
            qself: None, path, ..
        }) => Ok(path.clone()),
        other => Err(Error::new_spanned(
            other,
            "`crate` expects the path of the actix-bouncer crate, e.g. `crate = \"actix_bouncer\"`",
        )),
    }
}

fn default_crate() -> Path {
    parse_quote!(::actix_bouncer)
}

/// `#[require_low_risk(threshold = 70, message = "...", crate = "...")]`.
pub(crate) struct LowRiskArgs {
    pub(crate) threshold: u8,
    pub(crate) message: Option<LitStr>,
    pub(crate) krate: Path,
}

impl Parse for LowRiskArgs {
    fn parse(input: ParseStream) -> Result<Self> {
        const KEYS: &[&str] = &["threshold", "message", "crate"];
        let (mut threshold_, mut message_, mut krate) = (None, None, None);
        let mut seen = Seen::default();
        for arg in parse_list(input, "`threshold = 70`")? {
            seen.first(&arg)?;
            match arg.name.as_str() {
                "threshold" => threshold_ = Some(threshold(arg.value("threshold = 70")?)?),
                "message" => message_ = Some(message(arg.value("message = \"...\"")?)?),
                "crate" => krate = Some(crate_path(arg.value("crate = \"actix_bouncer\"")?)?),
                _ => return Err(unknown_key(&arg, KEYS)),
            }
        }
        let threshold = threshold_.ok_or_else(|| {
            Error::new(
                Span::call_site(),
                "missing key `threshold`: #[require_low_risk] refuses requests scoring at or \
                 above it, e.g. `#[require_low_risk(threshold = 70)]`",
            )
        })?;
        Ok(Self {
            threshold,
            message: message_,
            krate: krate.unwrap_or_else(default_crate),
        })
    }
}

/// `#[require_human(threshold = 80, message = "...", crate = "...")]`, all optional.
pub(crate) struct HumanArgs {
    pub(crate) threshold: u8,
    pub(crate) message: Option<LitStr>,
    pub(crate) krate: Path,
}

/// The runtime's default for `Human`, spelled out in the expansion so that it reads plainly.
const DEFAULT_HUMAN_THRESHOLD: u8 = 80;

impl Parse for HumanArgs {
    fn parse(input: ParseStream) -> Result<Self> {
        const KEYS: &[&str] = &["threshold", "message", "crate"];
        let (mut threshold_, mut message_, mut krate) = (None, None, None);
        let mut seen = Seen::default();
        for arg in parse_list(input, "`threshold = 80`")? {
            seen.first(&arg)?;
            match arg.name.as_str() {
                "threshold" => threshold_ = Some(threshold(arg.value("threshold = 80")?)?),
                "message" => message_ = Some(message(arg.value("message = \"...\"")?)?),
                "crate" => krate = Some(crate_path(arg.value("crate = \"actix_bouncer\"")?)?),
                _ => return Err(unknown_key(&arg, KEYS)),
            }
        }
        Ok(Self {
            threshold: threshold_.unwrap_or(DEFAULT_HUMAN_THRESHOLD),
            message: message_,
            krate: krate.unwrap_or_else(default_crate),
        })
    }
}

/// The flags `deny_flags` accepts: attribute spelling and `Flag` variant. The others
/// (allowlisted, banned, ...) describe the bouncer's own decisions, not the client.
const FLAGS: &[(&str, &str)] = &[
    ("tor", "Tor"),
    ("vpn", "Vpn"),
    ("proxy", "Proxy"),
    ("hosting", "Hosting"),
    ("cdn", "Cdn"),
    ("bot", "Bot"),
    ("fake_crawler", "FakeCrawler"),
];

fn flag_names() -> Vec<&'static str> {
    FLAGS.iter().map(|(name, _)| *name).collect()
}

/// `#[deny_flags(tor, vpn, message = "...", crate = "...")]`.
pub(crate) struct DenyFlagsArgs {
    /// `Flag` variants in the order given, spanned on the user's flag.
    pub(crate) flags: Vec<Ident>,
    pub(crate) message: Option<LitStr>,
    pub(crate) krate: Path,
}

impl Parse for DenyFlagsArgs {
    fn parse(input: ParseStream) -> Result<Self> {
        const KEYS: &[&str] = &["message", "crate"];
        let (mut flags, mut message_, mut krate) = (Vec::new(), None, None);
        let mut seen = Seen::default();
        for arg in parse_list(input, "a flag such as `tor`, or `message = \"...\"`")? {
            let flag = FLAGS.iter().find(|(name, _)| *name == arg.name);
            match (&arg.value, flag) {
                (None, Some((name, variant))) => {
                    if seen.0.iter().any(|s| s == name) {
                        return Err(Error::new(
                            arg.key.span(),
                            format!("flag `{name}` is listed twice"),
                        ));
                    }
                    seen.0.push(arg.name.clone());
                    flags.push(Ident::new(variant, arg.key.span()));
                }
                (Some(value), Some((name, _))) => {
                    return Err(Error::new_spanned(
                        value,
                        format!("flags take no value: write `{name}`"),
                    ))
                }
                (Some(value), None) => {
                    seen.first(&arg)?;
                    match arg.name.as_str() {
                        "message" => message_ = Some(message(value)?),
                        "crate" => krate = Some(crate_path(value)?),
                        _ => return Err(unknown_key(&arg, KEYS)),
                    }
                }
                (None, None) => {
                    let error = if KEYS.contains(&arg.name.as_str()) {
                        format!(
                            "`{}` needs a value, e.g. `{} = \"...\"`",
                            arg.name, arg.name
                        )
                    } else {
                        format!(
                            "unknown flag `{}`; expected one of: {}",
                            arg.name,
                            list(&flag_names())
                        )
                    };
                    return Err(Error::new(arg.key.span(), error));
                }
            }
        }
        if flags.is_empty() {
            return Err(Error::new(
                Span::call_site(),
                format!(
                    "#[deny_flags] needs at least one flag, e.g. `#[deny_flags(tor, vpn)]`; \
                     expected any of: {}",
                    list(&flag_names())
                ),
            ));
        }
        Ok(Self {
            flags,
            message: message_,
            krate: krate.unwrap_or_else(default_crate),
        })
    }
}

/// Whose hits `rate_limit` counts; each names a constant of `guard::limit_key`.
#[derive(Clone, Copy)]
pub(crate) enum LimitKey {
    Ip,
    User,
    UserOrIp,
}

impl LimitKey {
    const ALL: &'static [(&'static str, LimitKey)] = &[
        ("ip", LimitKey::Ip),
        ("user", LimitKey::User),
        ("user_or_ip", LimitKey::UserOrIp),
    ];

    /// The name of the runtime's `limit_key` constant.
    pub(crate) fn constant(self) -> &'static str {
        match self {
            LimitKey::Ip => "IP",
            LimitKey::User => "USER",
            LimitKey::UserOrIp => "USER_OR_IP",
        }
    }
}

fn limit_key(expr: &Expr) -> Result<LimitKey> {
    let lit = string(expr, "key", "key = \"ip\"")?;
    let value = lit.value();
    LimitKey::ALL
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, key)| *key)
        .ok_or_else(|| {
            Error::new(
                lit.span(),
                format!(
                    "unknown rate-limit key \"{value}\"; expected one of: \"ip\", \"user\", \
                     \"user_or_ip\""
                ),
            )
        })
}

/// A duration string, checked with the same parser the runtime's config uses. The runtime
/// counts in whole milliseconds, so anything finer would be silently rounded: refuse it.
fn duration(expr: &Expr, key: &str) -> Result<(Duration, LitStr)> {
    let lit = string(expr, key, &format!("{key} = \"1m\""))?;
    let text = lit.value();
    let err = |msg: String| Err(Error::new(lit.span(), msg));
    let parsed = match humantime::parse_duration(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            return err(format!(
                "invalid duration \"{text}\" for `{key}`: {e}; write e.g. \"30s\", \"1m\", \
                 \"15m\" or \"1h 30m\""
            ))
        }
    };
    if parsed.is_zero() {
        return err(format!("`{key}` must be longer than zero"));
    }
    if parsed.subsec_nanos() % 1_000_000 != 0 {
        return err(format!(
            "`{key}` must be a whole number of milliseconds, got \"{text}\""
        ));
    }
    if u64::try_from(parsed.as_millis()).is_err() {
        return err(format!("`{key}` is too long, got \"{text}\""));
    }
    Ok((parsed, lit))
}

/// Duration to the runtime's milliseconds; [`duration`] has checked that it fits.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// `#[rate_limit(hits = 5, per = "1m", ban_for = "15m", user_ban_for = "1h", key = "ip",
/// name = "...", crate = "...")]`.
pub(crate) struct RateLimitArgs {
    pub(crate) hits: u32,
    pub(crate) per_ms: u64,
    /// 0 when no `ban_for` was given: the runtime's "no ban".
    pub(crate) ban_ms: u64,
    /// How long a signed-in user's automatic rule lasts; `None`: as long as the ban.
    pub(crate) user_ban_ms: Option<u64>,
    pub(crate) key: LimitKey,
    /// The limit's name; `None`: the handler's module path and function name.
    pub(crate) name: Option<LitStr>,
    pub(crate) krate: Path,
}

impl Parse for RateLimitArgs {
    fn parse(input: ParseStream) -> Result<Self> {
        const KEYS: &[&str] = &[
            "hits",
            "per",
            "ban_for",
            "user_ban_for",
            "key",
            "name",
            "crate",
        ];
        let (mut hits, mut per, mut ban_for, mut key, mut krate) = (None, None, None, None, None);
        let (mut name, mut user_ban_for) = (None, None);
        let mut seen = Seen::default();
        for arg in parse_list(input, "`hits = 5` or `per = \"1m\"`")? {
            seen.first(&arg)?;
            match arg.name.as_str() {
                "hits" => {
                    let n = int_in(arg.value("hits = 5")?, "hits", 1, u32::MAX.into())?;
                    // In 1..=u32::MAX, so the cast cannot truncate.
                    hits = Some(n as u32);
                }
                "per" => per = Some(duration(arg.value("per = \"1m\"")?, "per")?),
                "ban_for" => {
                    ban_for = Some(duration(arg.value("ban_for = \"15m\"")?, "ban_for")?);
                }
                "user_ban_for" => {
                    let value = arg.value("user_ban_for = \"1h\"")?;
                    user_ban_for = Some(duration(value, "user_ban_for")?);
                }
                "key" => key = Some(limit_key(arg.value("key = \"ip\"")?)?),
                "name" => name = Some(limit_name(arg.value("name = \"login\"")?)?),
                "crate" => krate = Some(crate_path(arg.value("crate = \"actix_bouncer\"")?)?),
                _ => return Err(unknown_key(&arg, KEYS)),
            }
        }
        let missing = |key: &str| {
            Error::new(
                Span::call_site(),
                format!(
                    "missing key `{key}`: #[rate_limit] needs `hits` and `per`, e.g. \
                     `#[rate_limit(hits = 5, per = \"1m\")]`"
                ),
            )
        };
        let hits = hits.ok_or_else(|| missing("hits"))?;
        let (per, _) = per.ok_or_else(|| missing("per"))?;
        // Any ban above zero (`duration` refuses zero): fail2ban's default bans for as long as
        // it counts.
        let ban_ms = ban_for.map_or(0, |(ban, _)| millis(ban));
        let user_ban_ms = match user_ban_for {
            Some((_, lit)) if ban_ms == 0 => {
                return Err(Error::new(
                    lit.span(),
                    "`user_ban_for` needs `ban_for`: without a ban there is nothing to record",
                ));
            }
            Some((length, _)) => Some(millis(length)),
            None => None,
        };
        Ok(Self {
            hits,
            per_ms: millis(per),
            ban_ms,
            user_ban_ms,
            key: key.unwrap_or(LimitKey::Ip),
            name,
            krate: krate.unwrap_or_else(default_crate),
        })
    }
}
