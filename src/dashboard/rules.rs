//! `GET /rules`, `POST /rules` and `POST /rules/{id}/delete`.
//!
//! Filters and the new rule are read by the admin API's own parsers, so the dashboard
//! accepts and refuses exactly what the API does, and names the same field.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::layout::{self, Form, Nav};
use super::session::{Denied, Operator};
use super::Ui;
use crate::admin_api::body::Fields;
use crate::admin_api::rules::{list_query, new_rule, rule_error, rule_id};
use crate::events::AdminAction;
use crate::rules::{Rule, RuleAction, RuleSource, RuleTarget};

/// Rules per page.
const PAGE: usize = 50;

/// `GET /rules?target=&action=&source=&state=&after=`.
pub(crate) async fn page(
    ui: web::Data<Ui>,
    operator: Operator,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let params = query.into_inner();
    let notice = match params.iter().find(|(n, _)| n == "added" || n == "removed") {
        Some((what, id)) if rule_id(id, "id").is_ok() => Some(format!("Rule #{id} {what}.")),
        _ => None,
    };
    render(&ui, &operator, params, notice, None, &Form::default()).await
}

/// The rules page: the filters in `params` (empty ones ignored, notices left out), a
/// `notice` or an `error` on top, the add form filled with `kept` (after a refused add).
async fn render(
    ui: &Ui,
    operator: &Operator,
    params: Vec<(String, String)>,
    notice: Option<String>,
    error: Option<(StatusCode, String)>,
    kept: &Form,
) -> HttpResponse {
    let filters: Vec<(String, String)> = params
        .into_iter()
        .filter(|(n, v)| !v.trim().is_empty() && n != "added" && n != "removed")
        .collect();
    let shown = |name: &str| {
        filters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (target, action, source, state) = (
        shown("target"),
        shown("action"),
        shown("source"),
        shown("state"),
    );
    let mut with_limit = filters.clone();
    with_limit.retain(|(n, _)| n != "limit");
    with_limit.push(("limit".to_owned(), PAGE.to_string()));
    let (status, listing) = match list_query(with_limit) {
        Err(problem) => (
            StatusCode::BAD_REQUEST,
            layout::notice(
                "error",
                &format!(
                    "Bad filter `{}`: {}",
                    problem.field().unwrap_or("query"),
                    problem.detail()
                ),
            ),
        ),
        Ok(query) => match ui.bouncer.rules().list(query).await {
            Ok(page) => {
                let next = page.next.map(|id| {
                    let mut q: Vec<(String, String)> = filters
                        .iter()
                        .filter(|(n, _)| n != "after")
                        .cloned()
                        .collect();
                    q.push(("after".to_owned(), id.0.to_string()));
                    query_string(&q)
                });
                (StatusCode::OK, table(ui, operator, &page.rules, next))
            }
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                super::overview::store_failed(&e),
            ),
        },
    };
    let (status, error) = match error {
        Some((status, text)) => (status, Some(text)),
        None => (status, None),
    };
    let base = &ui.base;
    let body = html! {
        @if let Some(text) = &notice { (layout::notice("ok", text)) }
        @if let Some(text) = &error { (layout::notice("error", text)) }
        section.card {
            h2 { "Add a rule" }
            form.add method="post" action={ (base) "/rules" } {
                (layout::csrf(operator))
                label { "target" input type="text" name="target" required placeholder="203.0.113.0/24, 2001:db8::1 or user:alice" value=(kept.get("target").unwrap_or("")); }
                label { "action"
                    select name="action" {
                        @for a in [RuleAction::Block, RuleAction::Allow] {
                            option value=(a.as_str()) selected[kept.get("action") == Some(a.as_str())] { (a.as_str()) }
                        }
                    }
                }
                label { "for (e.g. 1h, 7d; empty: no end)" input type="text" name="for" value=(kept.get("for").unwrap_or("")); }
                label { "or until (RFC 3339)" input type="text" name="expires" placeholder="2030-01-01T00:00:00Z" value=(kept.get("expires").unwrap_or("")); }
                label { "comment" input type="text" name="comment" maxlength="1024" value=(kept.get("comment").unwrap_or("")); }
                button type="submit" { "Add" }
            }
        }
        section.card {
            form.filters method="get" action={ (base) "/rules" } {
                label { "target (exactly)" input type="text" name="target" value=(target); }
                (choice("action", &action, &["block", "allow"]))
                (choice("source", &source, &["manual", "config", "auto"]))
                (choice("state", &state, &["active", "expired"]))
                button type="submit" { "Filter" }
                a href={ (base) "/rules" } { "Clear" }
            }
            (listing)
        }
    };
    layout::page(ui, operator, Nav::Rules, "Rules", status, body)
}

fn choice(name: &str, current: &str, options: &[&str]) -> Markup {
    html! {
        label { (name)
            select name=(name) {
                option value="" { "any" }
                @for o in options {
                    option value=(o) selected[current == *o] { (o) }
                }
            }
        }
    }
}

fn query_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                super::bans::urlencode(n),
                super::bans::urlencode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn table(ui: &Ui, operator: &Operator, rules: &[Rule], next: Option<String>) -> Markup {
    let now = ui.bouncer.engine.clock.wall();
    let base = &ui.base;
    html! {
        @if rules.is_empty() {
            p.muted { "No rules match." }
        } @else {
            table {
                tr { th.num { "id" } th { "target" } th { "action" } th { "source" } th { "expires" } th { "comment" } th { "added" } th {} }
                @for rule in rules {
                    tr {
                        td.num { (rule.id) }
                        td.text {
                            @match &rule.target {
                                RuleTarget::User(user) => a href={ (base) "/client?q=" (super::bans::urlencode(&format!("user:{user}"))) } { "user:" (user) },
                                other => a href={ (base) "/client?q=" (super::bans::urlencode(&other.to_string())) } { (other) },
                            }
                        }
                        td { span class=(rule.action.as_str()) { (rule.action.as_str()) } }
                        td { (source_name(rule.source)) }
                        td {
                            @match rule.expires {
                                None => span.muted { "never" },
                                Some(at) if rule.is_active_at(now) => (layout::relative(at, now)),
                                Some(at) => span.muted { "expired " (layout::relative(at, now)) },
                            }
                        }
                        td.text { (rule.comment.as_deref().unwrap_or("")) }
                        td { (layout::relative(rule.created, now)) }
                        td {
                            form.inline method="post" action={ (base) "/rules/" (rule.id.0) "/delete" } hx-confirm={ "Delete rule " (rule.id) "?" } {
                                (layout::csrf(operator))
                                button.danger type="submit" { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p.pager { a href={ (base) "/rules?" (next) } { "Next page" } }
        }
    }
}

fn source_name(source: RuleSource) -> &'static str {
    source.into()
}

/// `POST /rules`: `target`, `action`, `for` or `expires`, `comment`, `csrf`.
pub(crate) async fn add(
    ui: web::Data<Ui>,
    req: HttpRequest,
    operator: Operator,
    form: Form,
) -> Result<HttpResponse, Denied> {
    operator.check(&req, &form)?;
    let refused = |status: StatusCode, text: String| {
        let ui = ui.clone();
        let operator = operator.clone();
        let form = &form;
        async move { render(&ui, &operator, Vec::new(), None, Some((status, text)), form).await }
    };
    let rule = match new_rule(Fields::from_form(form.filled())) {
        Ok(rule) => rule,
        Err(problem) => {
            let text = format!(
                "Not added: `{}`: {}",
                problem.field().unwrap_or("form"),
                problem.detail()
            );
            return Ok(refused(problem.status(), text).await);
        }
    };
    match ui.bouncer.rules().add(rule).await {
        Ok(rule) => {
            crate::admin_api::audit(
                &ui.bouncer,
                &req,
                &operator.name,
                AdminAction::RuleAdded,
                format!(
                    "rule {}: {} {} (dashboard)",
                    rule.id,
                    rule.action.as_str(),
                    rule.target
                ),
            );
            Ok(layout::see_other(&format!(
                "{}/rules?added={}",
                ui.base, rule.id.0
            )))
        }
        Err(e) => {
            let problem = rule_error(e);
            let text = match problem.field() {
                Some(field) => format!("Not added: `{field}`: {}", problem.detail()),
                None => format!("Not added: {}", problem.detail()),
            };
            Ok(refused(problem.status(), text).await)
        }
    }
}

/// `POST /rules/{id}/delete` (`csrf`).
pub(crate) async fn remove(
    ui: web::Data<Ui>,
    req: HttpRequest,
    operator: Operator,
    id: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, Denied> {
    operator.check(&req, &form)?;
    let id = match rule_id(&id, "id") {
        Ok(id) => id,
        Err(problem) => {
            let text = format!("Not deleted: {}", problem.detail());
            return Ok(render(
                &ui,
                &operator,
                Vec::new(),
                None,
                Some((StatusCode::BAD_REQUEST, text)),
                &Form::default(),
            )
            .await);
        }
    };
    match ui.bouncer.rules().remove(id).await {
        Ok(Some(rule)) => {
            crate::admin_api::audit(
                &ui.bouncer,
                &req,
                &operator.name,
                AdminAction::RuleRemoved,
                format!(
                    "rule {}: {} {} (dashboard)",
                    rule.id,
                    rule.action.as_str(),
                    rule.target
                ),
            );
            Ok(layout::see_other(&format!(
                "{}/rules?removed={}",
                ui.base, id.0
            )))
        }
        Ok(None) => {
            let text = format!("No rule {id}: it was removed already.");
            Ok(render(
                &ui,
                &operator,
                Vec::new(),
                None,
                Some((StatusCode::NOT_FOUND, text)),
                &Form::default(),
            )
            .await)
        }
        Err(e) => {
            let problem = rule_error(e);
            let text = format!("Not deleted: {}", problem.detail());
            Ok(render(
                &ui,
                &operator,
                Vec::new(),
                None,
                Some((problem.status(), text)),
                &Form::default(),
            )
            .await)
        }
    }
}
