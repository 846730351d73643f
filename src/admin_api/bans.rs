//! `GET /bans` and `DELETE /bans/{key}`.

use std::net::IpAddr;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::auth::Admin;
use super::problem::Problem;
use super::{Api, MAX_TARGET};
use crate::bouncer::Bouncer;
use crate::client_ip::ClientKey;
use crate::clock::ceil_secs;
use crate::events::AdminAction;
use crate::limiter::{ActiveBan, BannedKey};
use crate::net::parse_network;
use crate::rules::{RuleId, RuleTarget};

/// The answer of `GET /bans`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Bans {
    /// Every active ban on this instance (global and handler limits), soonest end first.
    bans: Vec<Ban>,
}

/// An active ban.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Ban {
    /// The limit's name: `global`, or a handler limit's.
    #[schema(example = "global")]
    limit: String,
    /// Who is banned: a client key (`203.0.113.7`, `2001:db8:1:2::/64`), `user:<id>`, or
    /// `user#<hash>` for a user the counter store keeps only hashed (unban it by its id).
    #[schema(example = "203.0.113.7")]
    key: String,
    /// What `key` is.
    kind: BanKind,
    /// When the ban ends (RFC 3339).
    #[schema(format = DateTime, example = "2030-01-01T00:15:00Z")]
    until: String,
    /// Seconds left, rounded up.
    remaining_secs: u64,
    /// Which ban of this key this is (0 for an operator's ban of a key never banned before).
    offence: u32,
}

/// What a ban's key is.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BanKind {
    /// A client address or network.
    Client,
    /// A user, by id.
    User,
    /// A user kept as a keyed hash of its id.
    HashedUser,
}

/// The answer of `DELETE /bans/{key}`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Unbanned {
    /// Whether this instance tracked the key; if so its hits, offences and ban are forgotten.
    unbanned: bool,
    /// The automatic rules on the key that were removed, so no instance enforces them any more.
    #[schema(value_type = Vec<u64>)]
    rules_removed: Vec<RuleId>,
}

impl From<ActiveBan> for Ban {
    fn from(ban: ActiveBan) -> Self {
        let (key, kind) = match ban.key {
            BannedKey::Client(key) => (key.to_string(), BanKind::Client),
            BannedKey::User(user) => (format!("user:{user}"), BanKind::User),
            BannedKey::HashedUser(hash) => (format!("user#{hash:016x}"), BanKind::HashedUser),
        };
        Ban {
            limit: ban.limit.to_string(),
            key,
            kind,
            until: super::rfc3339(ban.until),
            remaining_secs: ceil_secs(ban.remaining),
            offence: ban.offence,
        }
    }
}

/// Every active ban on this instance, soonest end first.
#[utoipa::path(
    get,
    path = "/bans",
    tag = "bans",
    responses(
        (status = 200, description = "The active bans", body = Bans),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The counter store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_bans(_: Admin, api: web::Data<Api>) -> Result<HttpResponse, Problem> {
    let bans = api
        .bouncer
        .bans()
        .await
        .map_err(|e| Problem::unavailable("the counter store", &e))?;
    Ok(HttpResponse::Ok().json(Bans {
        bans: bans.into_iter().map(Ban::from).collect(),
    }))
}

/// Lifts the bans of a client key or a user on this instance, and removes its automatic rules
/// so that no instance sharing the rule store enforces them any more. Safe to repeat.
#[utoipa::path(
    delete,
    path = "/bans/{key}",
    tag = "bans",
    params(("key" = String, Path, description = "A client key as listed (`203.0.113.7`, `2001:db8:1:2::/64`; an address stands for its key), or `user:<id>`. Percent-encode it, or send the `/` of a network as is", example = "203.0.113.7")),
    responses(
        (status = 200, description = "What was done", body = Unbanned),
        (status = 400, description = "Not a client key or `user:<id>`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "A store failed; repeat the request", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn lift_ban(
    admin: Admin,
    api: web::Data<Api>,
    req: HttpRequest,
    key: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let Lifted {
        shown,
        unbanned,
        rules_removed,
    } = lift(&api.bouncer, &key).await?;
    let ids: Vec<String> = rules_removed.iter().map(RuleId::to_string).collect();
    api.audit(
        &req,
        &admin,
        AdminAction::Unbanned,
        format!(
            "{shown}: tracked here: {unbanned}; automatic rules removed: [{}]",
            ids.join(", ")
        ),
    );
    Ok(HttpResponse::Ok().json(Unbanned {
        unbanned,
        rules_removed,
    }))
}

/// What lifting a ban did.
pub(crate) struct Lifted {
    /// The key as shown (`user:<id>` for a user).
    pub(crate) shown: String,
    /// Whether this instance tracked the key.
    pub(crate) unbanned: bool,
    /// The automatic rules removed.
    pub(crate) rules_removed: Vec<RuleId>,
}

/// Lifts the bans of `key` (a client key, an address, or `user:<id>`) here and removes its
/// automatic rules everywhere: `DELETE /bans/{key}`, and the dashboard's unban.
pub(crate) async fn lift(bouncer: &Bouncer, key: &str) -> Result<Lifted, Problem> {
    let (shown, unbanned, target) = match subject(bouncer, key)? {
        Subject::Client(key) => (
            key.to_string(),
            bouncer.unban(key).await,
            key.network().map(RuleTarget::Network),
        ),
        Subject::User(user) => (
            format!("user:{user}"),
            bouncer.unban_user(&user).await,
            Some(RuleTarget::User(user)),
        ),
    };
    let unbanned = unbanned.map_err(|e| Problem::unavailable("the counter store", &e))?;
    let removed = match &target {
        Some(target) => bouncer
            .rules()
            .remove_automatic(target)
            .await
            .map_err(|e| Problem::unavailable("the rule store", &e))?,
        None => Vec::new(),
    };
    Ok(Lifted {
        shown,
        unbanned,
        rules_removed: removed.iter().map(|r| r.id).collect(),
    })
}

/// Whom `DELETE /bans/{key}` is about.
enum Subject {
    Client(ClientKey),
    User(String),
}

/// `user:<id>`, an address (its key), or a network that is a client key of this bouncer.
fn subject(bouncer: &Bouncer, text: &str) -> Result<Subject, Problem> {
    let bad = |detail: String| Problem::invalid("key", detail);
    if text.len() > MAX_TARGET {
        return Err(bad(format!("at most {MAX_TARGET} bytes")));
    }
    if text.chars().any(char::is_control) {
        return Err(bad("no control characters".to_owned()));
    }
    if let Some(user) = text.strip_prefix("user:") {
        return if user.is_empty() {
            Err(bad("`user:` needs an id after the colon".to_owned()))
        } else {
            Ok(Subject::User(user.to_owned()))
        };
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(Subject::Client(bouncer.key_for(ip)));
    }
    let net = parse_network(text).map_err(|_| {
        bad(
            "expected a client key (203.0.113.7, 2001:db8:1:2::/64) or user:<id>, without host bits set"
                .to_owned(),
        )
    })?;
    let key = bouncer.key_for(net.addr());
    if key.network() == Some(net) {
        Ok(Subject::Client(key))
    } else {
        Err(bad(format!(
            "{net} is not a client key here: this bouncer counts {} clients per {}",
            if net.addr().is_ipv4() { "IPv4" } else { "IPv6" },
            key.network()
                .map_or_else(String::new, |n| format!("/{}", n.prefix_len())),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_this_bouncer_forms_them() {
        let bouncer = Bouncer::new();
        let client = |text: &str| match subject(&bouncer, text) {
            Ok(Subject::Client(key)) => key.to_string(),
            _ => panic!("{text} is no client key"),
        };
        assert_eq!(client("203.0.113.7"), "203.0.113.7");
        assert_eq!(client("2001:db8:1:2::7"), "2001:db8:1:2::/64");
        assert_eq!(client("2001:db8:1:2::/64"), "2001:db8:1:2::/64");
        assert_eq!(client("::ffff:203.0.113.7"), "203.0.113.7");
        assert!(matches!(subject(&bouncer, "user:alice"), Ok(Subject::User(u)) if u == "alice"));
        for bad in [
            "",
            "user:",
            "nonsense",
            "203.0.113.0/24",
            "2001:db8:1:2::7/64",
            "2001:db8::/32",
            "unknown@unix",
            "user:a\nb",
        ] {
            assert!(subject(&bouncer, bad).is_err(), "{bad:?}");
        }
        assert!(subject(&bouncer, &"1".repeat(600)).is_err());
    }
}
