//! `GET /bans` and `POST /bans/unban`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::layout::{self, Form, Nav};
use super::session::{Denied, Operator};
use super::Ui;
use crate::events::AdminAction;
use crate::limiter::BannedKey;
use crate::rules::RuleId;

/// Bans listed on the page, soonest end first (a flood can ban a hundred thousand keys).
const SHOWN: usize = 1000;

/// A ban's key as the unban form takes it back (`user:<id>` for a user).
pub(crate) fn shown(key: &BannedKey) -> String {
    match key {
        BannedKey::Client(key) => key.to_string(),
        BannedKey::User(user) => format!("user:{user}"),
        BannedKey::HashedUser(hash) => format!("user#{hash:016x}"),
    }
}

/// `GET /bans`: this instance's active bans, soonest end first.
pub(crate) async fn page(
    ui: web::Data<Ui>,
    operator: Operator,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let now = ui.bouncer.engine.clock.wall();
    let done = query
        .iter()
        .find(|(n, _)| n == "unbanned")
        .map(|(_, key)| key.as_str());
    let bans = ui.bouncer.bans().await;
    let client = format!("{}/client", ui.base);
    let action = format!("{}/bans/unban", ui.base);
    let body = html! {
        @if let Some(key) = done {
            (layout::notice("ok", &format!("Unbanned {key}.")))
        }
        @match bans {
            Ok(bans) if bans.is_empty() => p.muted { "Nobody is banned on this instance." },
            Ok(bans) => section.card {
                @if bans.len() > SHOWN {
                    p { "The " (SHOWN) " that end soonest of " (bans.len()) " active bans." }
                }
                table {
                    tr { th { "who" } th { "limit" } th { "ends" } th.num { "offence" } th {} }
                    @for ban in bans.iter().take(SHOWN) {
                        @let key = shown(&ban.key);
                        tr {
                            td.text {
                                @if matches!(ban.key, BannedKey::HashedUser(_)) {
                                    (key)
                                } @else {
                                    a href={ (client) "?q=" (urlencode(&key)) } { (key) }
                                }
                            }
                            td { (ban.limit.as_ref()) }
                            td { (layout::relative(ban.until, now)) " (" (layout::when(ban.until)) ")" }
                            td.num { (ban.offence) }
                            td {
                                @if !matches!(ban.key, BannedKey::HashedUser(_)) {
                                    form.inline method="post" action=(action) hx-confirm={ "Unban " (key) "?" } {
                                        (layout::csrf(&operator))
                                        input type="hidden" name="key" value=(key);
                                        button.danger type="submit" { "Unban" }
                                    }
                                }
                            }
                        }
                    }
                }
            },
            Err(e) => (super::overview::store_failed(&e)),
        }
        p.muted { "Bans are counted per instance; unbanning also removes the client's automatic rules, so no instance sharing the rule store enforces them any more." }
    };
    layout::page(&ui, &operator, Nav::Bans, "Bans", StatusCode::OK, body)
}

/// `POST /bans/unban` (`key`, `csrf`): as the admin API's `DELETE /bans/{key}`.
pub(crate) async fn unban(
    ui: web::Data<Ui>,
    req: HttpRequest,
    operator: Operator,
    form: Form,
) -> Result<HttpResponse, Denied> {
    operator.check(&req, &form)?;
    let key = form.get("key").unwrap_or("").trim().to_owned();
    match crate::admin_api::bans::lift(&ui.bouncer, &key).await {
        Ok(lifted) => {
            let ids: Vec<String> = lifted.rules_removed.iter().map(RuleId::to_string).collect();
            crate::admin_api::audit(
                &ui.bouncer,
                &req,
                &operator.name,
                AdminAction::Unbanned,
                format!(
                    "{}: tracked here: {}; automatic rules removed: [{}] (dashboard)",
                    lifted.shown,
                    lifted.unbanned,
                    ids.join(", ")
                ),
            );
            Ok(layout::see_other(&format!(
                "{}/bans?unbanned={}",
                ui.base,
                urlencode(&lifted.shown)
            )))
        }
        Err(problem) => Ok(layout::page(
            &ui,
            &operator,
            Nav::Bans,
            "Bans",
            problem.status(),
            html! {
                (layout::notice("error", &format!("Not unbanned: {}", problem.detail())))
                p { a href={ (ui.base) "/bans" } { "Back to the bans" } }
            },
        )),
    }
}

/// `text` for a query string: unreserved bytes as they are, the rest percent-encoded.
pub(crate) fn urlencode(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(urlencode("2001:db8::/64"), "2001:db8::%2F64");
        assert_eq!(urlencode("user:a&b=c d"), "user:a%26b%3Dc%20d");
        assert_eq!(urlencode("é"), "%C3%A9");
    }
}
