//! `GET /rules`, `POST /rules`, `DELETE /rules/{id}` and `POST /trim`.

use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::auth::Admin;
use super::body::{self, check_names, Fields};
use super::problem::Problem;
use super::{Api, MAX_COMMENT, MAX_TARGET};
use crate::events::AdminAction;
use crate::rules::{
    ListQuery, NewRule, Rule, RuleAction, RuleError, RuleId, RulePage, RuleSource, RuleState,
    RuleTarget, Trim, MAX_PAGE,
};

/// The query parameters of `GET /rules` (documentation: the handler reads them one by one, to
/// name the bad one).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ListParams {
    /// Only rules on exactly this target (not the networks around it): an address, a CIDR
    /// network or `user:<id>`.
    #[param(example = "203.0.113.0/24")]
    target: Option<String>,
    /// Only rules with this action.
    #[param(inline)]
    action: Option<RuleAction>,
    /// Only rules from this source.
    #[param(inline)]
    source: Option<RuleSource>,
    /// Only active, or only expired, rules.
    #[param(inline)]
    state: Option<RuleState>,
    /// Rules with an id above this one: the `next` of the previous page.
    after: Option<u64>,
    /// Rules per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// The body of `POST /rules` (documentation: the handler reads it member by member, to name
/// the bad one).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct CreateRule {
    /// An address, a CIDR network (`203.0.113.0/24`, no host bits) or `user:<id>`; at most
    /// 512 bytes.
    #[schema(example = "203.0.113.0/24")]
    target: String,
    /// What the rule does.
    action: RuleAction,
    /// When it stops matching: an RFC 3339 time in the future. Not with `for`.
    #[schema(format = DateTime, example = "2030-01-01T00:00:00Z")]
    expires: Option<String>,
    /// How long it lasts from now, such as `90s`, `10m`, `1h` or `7d`. Not with `expires`.
    #[schema(rename = "for", example = "1h")]
    for_: Option<String>,
    /// Free text for operators: at most 1024 bytes, no control characters.
    #[schema(example = "scraper")]
    comment: Option<String>,
}

/// The answer of `POST /trim`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Trimmed {
    /// How many expired rules were removed.
    removed: u64,
}

/// A page of rules, by ascending id, with the cursor of the next page.
#[utoipa::path(
    get,
    path = "/rules",
    tag = "rules",
    params(ListParams),
    responses(
        (status = 200, description = "A page of rules; `next` is the `after` of the next page, or null on the last", body = RulePage),
        (status = 400, description = "A bad query parameter, named by `field`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The rule store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_rules(
    _: Admin,
    api: web::Data<Api>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let query = list_query(body::query(&req)?)?;
    let page = api.bouncer.rules().list(query).await.map_err(rule_error)?;
    Ok(HttpResponse::Ok().json(page))
}

/// Adds a rule (source `manual`); it is in force when the answer comes.
#[utoipa::path(
    post,
    path = "/rules",
    tag = "rules",
    request_body = CreateRule,
    responses(
        (status = 201, description = "The rule, as stored", body = Rule),
        (status = 400, description = "A bad or unknown member, named by `field`; or a body that is not a JSON object", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not `application/json`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The rule store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn add_rule(
    admin: Admin,
    api: web::Data<Api>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let fields = body::object(&req, payload, false).await?;
    let rule = new_rule(fields)?;
    let rule = api.bouncer.rules().add(rule).await.map_err(rule_error)?;
    let expires = rule
        .expires
        .map_or_else(|| "never".to_owned(), super::rfc3339);
    api.audit(
        &req,
        &admin,
        AdminAction::RuleAdded,
        format!(
            "rule {}: {} {}, expires {expires}",
            rule.id, rule.action, rule.target
        ),
    );
    Ok(HttpResponse::Created().json(rule))
}

/// Removes a rule; it no longer matches when the answer comes. A rule of the config file comes
/// back at the next restart.
#[utoipa::path(
    delete,
    path = "/rules/{id}",
    tag = "rules",
    params(("id" = u64, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Not a rule id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The rule store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn remove_rule(
    admin: Admin,
    api: web::Data<Api>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = rule_id(&id, "id")?;
    match api.bouncer.rules().remove(id).await.map_err(rule_error)? {
        Some(rule) => {
            api.audit(
                &req,
                &admin,
                AdminAction::RuleRemoved,
                format!(
                    "rule {}: {} {} ({})",
                    rule.id, rule.action, rule.target, rule.source
                ),
            );
            Ok(HttpResponse::NoContent().finish())
        }
        None => Err(Problem::not_found(format!("There is no rule {id}."))),
    }
}

/// Removes expired rules (django-blacklist's `trim_blacklist`): those that expired at least
/// `expired_days` ago and were created at least `created_days` ago. Active rules and rules that
/// never expire stay. An empty body trims every expired rule.
#[utoipa::path(
    post,
    path = "/trim",
    tag = "rules",
    request_body(content = Option<Trim>, description = "Both members default to 0"),
    responses(
        (status = 200, description = "How many rules were removed", body = Trimmed),
        (status = 400, description = "A bad or unknown member, named by `field`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The rule store failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn trim_rules(
    admin: Admin,
    api: web::Data<Api>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Problem> {
    let fields = body::object(&req, payload, true).await?;
    let trim = trim(fields)?;
    let removed = api.bouncer.rules().trim(trim).await.map_err(rule_error)?;
    api.audit(
        &req,
        &admin,
        AdminAction::Trimmed,
        format!(
            "expired rules of at least {} days since expiry and {} since creation: {removed} removed",
            trim.expired_days, trim.created_days
        ),
    );
    Ok(HttpResponse::Ok().json(Trimmed { removed }))
}

/// A rule change or read that failed: an expiry in the past is the client's, the rest the
/// store's.
pub(crate) fn rule_error(error: RuleError) -> Problem {
    match error {
        RuleError::AlreadyExpired => {
            Problem::invalid("expires", "The rule would already have expired.")
        }
        other => Problem::unavailable("the rule store", &other),
    }
}

/// A rule id: digits only.
pub(crate) fn rule_id(text: &str, field: &'static str) -> Result<RuleId, Problem> {
    let bad = || Problem::invalid(field, "expected a rule id: a whole number");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    text.parse().map(RuleId).map_err(|_| bad())
}

/// A target: what `RuleTarget` parses, bounded and free of control characters (it goes into
/// logs).
pub(crate) fn target(text: &str, field: &'static str) -> Result<RuleTarget, Problem> {
    if text.len() > MAX_TARGET {
        return Err(Problem::invalid(
            field,
            format!("at most {MAX_TARGET} bytes"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Problem::invalid(field, "no control characters"));
    }
    text.parse()
        .map_err(|e: crate::rules::InvalidTarget| Problem::invalid(field, e.to_string()))
}

/// One of the names `T` parses from; errors list them.
pub(crate) fn name<T: std::str::FromStr + strum::VariantNames>(
    text: &str,
    field: &'static str,
) -> Result<T, Problem> {
    text.parse().map_err(|_| {
        Problem::invalid(
            field,
            format!("expected one of: {}", T::VARIANTS.join(", ")),
        )
    })
}

pub(crate) fn list_query(params: Vec<(String, String)>) -> Result<ListQuery, Problem> {
    const KNOWN: &[&str] = &["target", "action", "source", "state", "after", "limit"];
    check_names(params.iter().map(|(n, _)| n.as_str()), KNOWN)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                Problem::invalid("limit", format!("a whole number from 1 to {MAX_PAGE}"))
            })?,
        None => ListQuery::default().limit,
    };
    let mut query = ListQuery::first(limit);
    if let Some(after) = get("after") {
        query = query.after(rule_id(after, "after")?);
    }
    if let Some(text) = get("target") {
        query = query.target(target(text, "target")?);
    }
    if let Some(text) = get("action") {
        query = query.action(name::<RuleAction>(text, "action")?);
    }
    if let Some(text) = get("source") {
        query = query
            .source(text.parse::<RuleSource>().map_err(|_| {
                Problem::invalid("source", "expected one of: manual, config, auto")
            })?);
    }
    if let Some(text) = get("state") {
        query = query.state(name::<RuleState>(text, "state")?);
    }
    Ok(query)
}

/// A member that must be a string when given.
fn string(value: Value, field: &'static str) -> Result<String, Problem> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(Problem::invalid(field, "must be a string")),
    }
}

pub(crate) fn new_rule(mut fields: Fields) -> Result<NewRule, Problem> {
    fields.check(&["target", "action", "expires", "for", "comment"])?;
    let target = match fields.take("target") {
        Some(v) => target(&string(v, "target")?, "target")?,
        None => return Err(Problem::invalid("target", "required")),
    };
    let action = match fields.take("action") {
        Some(v) => name::<RuleAction>(&string(v, "action")?, "action")?,
        None => return Err(Problem::invalid("action", "required: block or allow")),
    };
    let mut rule = NewRule::new(action, target);
    match (fields.take("expires"), fields.take("for")) {
        (Some(_), Some(_)) => {
            return Err(Problem::invalid(
                "for",
                "give either `expires` or `for`, not both",
            ))
        }
        (Some(v), None) => rule = rule.expires_at(expires(&string(v, "expires")?)?),
        (None, Some(v)) => {
            let text = string(v, "for")?;
            let length = humantime::parse_duration(text.trim()).map_err(|_| {
                Problem::invalid(
                    "for",
                    "expected a duration like \"90s\", \"10m\", \"1h\" or \"7d\"",
                )
            })?;
            if length.is_zero() {
                return Err(Problem::invalid("for", "must be longer than zero"));
            }
            rule = rule.expires_after(length);
        }
        (None, None) => {}
    }
    if let Some(v) = fields.take("comment") {
        let comment = string(v, "comment")?;
        if comment.len() > MAX_COMMENT {
            return Err(Problem::invalid(
                "comment",
                format!("at most {MAX_COMMENT} bytes"),
            ));
        }
        if comment.chars().any(char::is_control) {
            return Err(Problem::invalid("comment", "no control characters"));
        }
        rule = rule.comment(comment);
    }
    Ok(rule)
}

/// An RFC 3339 time with an offset.
fn expires(text: &str) -> Result<SystemTime, Problem> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| {
            Problem::invalid(
                "expires",
                "expected an RFC 3339 time with an offset, like \"2030-01-01T00:00:00Z\"",
            )
        })
}

fn trim(mut fields: Fields) -> Result<Trim, Problem> {
    fields.check(&["created_days", "expired_days"])?;
    let mut trim = Trim::default();
    for (field, slot) in [
        ("created_days", &mut trim.created_days),
        ("expired_days", &mut trim.expired_days),
    ] {
        if let Some(value) = fields.take(field) {
            *slot = value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Problem::invalid(
                        field,
                        format!("a whole number of days from 0 to {}", u32::MAX),
                    )
                })?;
        }
    }
    Ok(trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Fields {
        serde_json::from_str(json).unwrap()
    }

    fn field_of(problem: Problem) -> String {
        serde_json::to_value(&problem).unwrap()["field"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn each_bad_member_is_named() {
        for (json, field) in [
            (r#"{"action":"block"}"#, "target"),
            (r#"{"target":"10.1.2.3/8","action":"block"}"#, "target"),
            (r#"{"target":5,"action":"block"}"#, "target"),
            (r#"{"target":"user:a\nb","action":"block"}"#, "target"),
            (r#"{"target":"10.0.0.1","action":"Block"}"#, "action"),
            (r#"{"target":"10.0.0.1"}"#, "action"),
            (
                r#"{"target":"10.0.0.1","action":"block","for":"soon"}"#,
                "for",
            ),
            (
                r#"{"target":"10.0.0.1","action":"block","for":"0s"}"#,
                "for",
            ),
            (
                r#"{"target":"10.0.0.1","action":"block","for":"1h","expires":"2030-01-01T00:00:00Z"}"#,
                "for",
            ),
            (
                r#"{"target":"10.0.0.1","action":"block","expires":"tomorrow"}"#,
                "expires",
            ),
            (
                r#"{"target":"10.0.0.1","action":"block","comment":["x"]}"#,
                "comment",
            ),
            (
                r#"{"target":"10.0.0.1","action":"block","source":"auto"}"#,
                "source",
            ),
        ] {
            let err = new_rule(fields(json)).unwrap_err();
            assert_eq!(field_of(err), field, "{json}");
        }
        let long = format!(
            r#"{{"target":"10.0.0.1","action":"block","comment":"{}"}}"#,
            "x".repeat(1025)
        );
        assert_eq!(field_of(new_rule(fields(&long)).unwrap_err()), "comment");
        let rule = new_rule(fields(
            r#"{"target":"user:alice","action":"allow","for":"1h","comment":null}"#,
        ))
        .unwrap();
        assert_eq!(rule.target, RuleTarget::User("alice".into()));
    }

    #[test]
    fn list_parameters_are_checked() {
        let q = |pairs: &[(&str, &str)]| {
            list_query(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            )
        };
        for (pairs, field) in [
            (&[("limit", "0")][..], "limit"),
            (&[("limit", "1001")][..], "limit"),
            (&[("limit", "-1")][..], "limit"),
            (&[("after", "x")][..], "after"),
            (&[("after", "+1")][..], "after"),
            (&[("state", "gone")][..], "state"),
            (&[("source", "cli")][..], "source"),
            (&[("page", "2")][..], "page"),
            (&[("limit", "5"), ("limit", "6")][..], "limit"),
        ] {
            assert_eq!(field_of(q(pairs).unwrap_err()), field, "{pairs:?}");
        }
        let query = q(&[("limit", "1000"), ("after", "7"), ("state", "active")]).unwrap();
        assert_eq!(
            query,
            ListQuery::first(1000)
                .after(RuleId(7))
                .state(RuleState::Active)
        );
        assert_eq!(q(&[]).unwrap(), ListQuery::default());
    }

    #[test]
    fn trim_members_are_days() {
        assert_eq!(trim(fields("{}")).unwrap(), Trim::default());
        assert_eq!(
            trim(fields(r#"{"expired_days":7}"#)).unwrap(),
            Trim::default().expired_days(7)
        );
        for json in [
            r#"{"expired_days":-1}"#,
            r#"{"expired_days":1.5}"#,
            r#"{"expired_days":"7"}"#,
            r#"{"expired_days":4294967296}"#,
        ] {
            assert_eq!(field_of(trim(fields(json)).unwrap_err()), "expired_days");
        }
        assert_eq!(field_of(trim(fields(r#"{"days":1}"#)).unwrap_err()), "days");
    }
}
