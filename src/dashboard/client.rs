//! `GET /client?q=`: one client (an address, a network or `user:<id>`): the verdict a request
//! from it would get now and why, the rules on it, its bans, its recent activity.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpResponse};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::session::Operator;
use super::Ui;
use crate::client_ip::ClientKey;
use crate::engine::Probe;
use crate::limiter::BannedKey;
use crate::net::parse_network;
use crate::rules::{ListQuery, RuleTarget};

/// The User-Agent a probe sends unless the form gives another: a current desktop browser's,
/// so the verdict shows the client's standing rather than a missing header.
const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// The address a user's request is judged from unless the form gives one (TEST-NET-1).
const USER_FROM: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
/// Longest value of a field read, in bytes.
const MAX_FIELD: usize = 512;
/// Records of recent activity shown.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const ACTIVITY: usize = 50;

/// Who the page is about.
enum Who {
    Ip(IpAddr),
    Network(ipnet::IpNet),
    User(String),
}

fn parse(q: &str) -> Result<Who, &'static str> {
    if q.len() > MAX_FIELD || q.chars().any(char::is_control) {
        return Err("at most 512 bytes, without control characters");
    }
    if let Some(user) = q.strip_prefix("user:") {
        return if user.is_empty() {
            Err("`user:` needs an id after the colon")
        } else {
            Ok(Who::User(user.to_owned()))
        };
    }
    if let Ok(ip) = q.parse::<IpAddr>() {
        return Ok(Who::Ip(ip));
    }
    parse_network(q).map(Who::Network).map_err(|_| {
        "expected an address (203.0.113.7), a network (203.0.113.0/24, no host bits) or user:<id>"
    })
}

/// `GET /client?q=&ua=&from=`.
pub(crate) async fn page(
    ui: web::Data<Ui>,
    operator: Operator,
    query: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let q = get("q");
    let ua = get("ua").unwrap_or_else(|| BROWSER.to_owned());
    let from = get("from");
    let form = html! {
        form.filters method="get" action={ (ui.base) "/client" } {
            label { "address, network or user:<id>" input type="text" name="q" required value=(q.as_deref().unwrap_or("")) placeholder="203.0.113.7"; }
            label { "User-Agent to judge with" input type="text" name="ua" size="40" value=(ua); }
            label { "from address (for a user)" input type="text" name="from" value=(from.as_deref().unwrap_or("")) placeholder=(USER_FROM); }
            button type="submit" { "Look up" }
        }
    };
    // A bad field: the form again, with what is wrong (400).
    let refused = |why: &str, form: Markup| {
        let body = html! { (form) (layout::notice("error", why)) };
        layout::page(
            &ui,
            &operator,
            Nav::Client,
            "Client",
            StatusCode::BAD_REQUEST,
            body,
        )
    };
    let Some(q) = q else {
        return layout::page(&ui, &operator, Nav::Client, "Client", StatusCode::OK, form);
    };
    let who = match parse(&q) {
        Ok(who) => who,
        Err(why) => return refused(&format!("`q`: {why}"), form),
    };
    if ua.len() > MAX_FIELD || ua.chars().any(char::is_control) {
        return refused("`ua`: at most 512 bytes, without control characters", form);
    }
    let from = match from.as_deref().map(str::parse::<IpAddr>) {
        None => USER_FROM,
        Some(Ok(ip)) => ip,
        Some(Err(_)) => return refused("`from`: expected an address", form),
    };
    let (ip, user) = match &who {
        Who::Ip(ip) => (*ip, None),
        Who::Network(net) => (net.network(), None),
        Who::User(user) => (from, Some(user.clone())),
    };
    let body = html! {
        (form)
        div.grid {
            (verdict_panel(&ui, &who, ip, user, &ua).await)
            (rules_panel(&ui, &who, ip).await)
        }
        (activity_panel(&ui, &who).await)
    };
    layout::page(
        &ui,
        &operator,
        Nav::Client,
        &format!("Client {q}"),
        StatusCode::OK,
        body,
    )
}

/// The ban of `who` on this instance, if any, and the key it is under.
async fn ban_of(
    ui: &Ui,
    who: &Who,
    key: ClientKey,
) -> Result<Option<crate::limiter::ActiveBan>, crate::StoreError> {
    let bans = ui.bouncer.bans().await?;
    Ok(bans.into_iter().find(|b| match (&b.key, who) {
        (BannedKey::User(u), Who::User(user)) => u == user,
        (BannedKey::Client(k), Who::Ip(_) | Who::Network(_)) => *k == key,
        _ => false,
    }))
}

async fn verdict_panel(ui: &Ui, who: &Who, ip: IpAddr, user: Option<String>, ua: &str) -> Markup {
    let engine = &ui.bouncer.engine;
    let key = ui.bouncer.key_for(ip);
    let now = engine.clock.wall();
    let ban = match ban_of(ui, who, key).await {
        Ok(ban) => ban,
        Err(e) => {
            return html! { section.card { h2 { "Verdict now" } (super::overview::store_failed(&e)) } }
        }
    };
    let req = actix_web::test::TestRequest::get()
        .uri("/")
        .peer_addr(SocketAddr::new(ip, 0))
        .insert_header((header::USER_AGENT, ua))
        .to_srv_request();
    let Probe {
        verdict,
        refusal,
        waiting,
    } = engine.probe(&req, user, ban.as_ref().map(|b| b.remaining));
    let decision = match (&refusal, verdict.enforced()) {
        (None, _) => html! { span.allow { "allowed" } },
        (Some(r), true) => html! { span.block { "refused (" (r.reason.as_str()) ")" } },
        (Some(r), false) => {
            html! { span.would { "would be refused (" (r.reason.as_str()) "); monitor mode lets it through" } }
        }
    };
    html! {
        section.card {
            h2 { "Verdict now" }
            dl.facts {
                dt { "decision" } dd { (decision) }
                dt { "score" } dd { (verdict.score()) " / 100 (refused from " (engine.block_threshold) ")" }
                dt { "judged as" } dd.text {
                    (verdict.ip())
                    @if let Some(u) = verdict.user() { " as user " (u) }
                    " (key " (verdict.key()) ")"
                }
                dt { "ban here" }
                dd {
                    @match &ban {
                        Some(b) => span.block { "banned, ends " (layout::relative(b.until, now)) " (" (b.limit.as_ref()) ")" },
                        None => "none",
                    }
                }
            }
            h2 { "Why" }
            @if verdict.reasons().is_empty() {
                p.muted { "Nothing counted against it." }
            } @else {
                ul.reasons { @for r in verdict.reasons() { li.text { (r) } } }
            }
            @if waiting > 0 {
                p.muted { "The reputation API has not answered for this address yet: its score is left out; a lookup was started." }
            }
            p.muted { "As a GET request with the User-Agent above, without counting it against the limits." }
            @if let Who::Network(net) = who { p.muted { "Judged from the network's first address, " (net.network()) "." } }
        }
    }
}

async fn rules_panel(ui: &Ui, who: &Who, ip: IpAddr) -> Markup {
    let base = &ui.base;
    let matched = match who {
        Who::User(user) => ui
            .bouncer
            .rules()
            .check(IpAddr::V4(Ipv4Addr::UNSPECIFIED), Some(user)),
        _ => ui.bouncer.rules().check(ip, None),
    };
    let target = match who {
        Who::Ip(ip) => RuleTarget::ip(*ip),
        Who::Network(net) => RuleTarget::Network(*net),
        Who::User(user) => RuleTarget::User(user.clone()),
    };
    let exact = ui
        .bouncer
        .rules()
        .list(ListQuery::first(20).target(target.clone()))
        .await;
    html! {
        section.card {
            h2 { "Rules in force that match" }
            dl.facts {
                dt { "allow" } dd { @match matched.allow { Some(id) => a href={ (base) "/rules?after=" (id.0.saturating_sub(1)) } { "rule " (id) }, None => "none" } }
                dt { "block" } dd { @match matched.block { Some(id) => { a href={ (base) "/rules?after=" (id.0.saturating_sub(1)) } { "rule " (id) } @if let Some(s) = matched.block_source { " (" (<&'static str>::from(s)) ")" } }, None => "none" } }
            }
            h2 { "Rules on exactly " (target) }
            @match exact {
                Ok(page) if page.rules.is_empty() => p.muted { "None." },
                Ok(page) => ul { @for r in &page.rules { li.text { "rule " (r.id) ": " (r.action.as_str()) ", " (<&'static str>::from(r.source)) @if let Some(c) = &r.comment { ": " (c) } } } },
                Err(e) => (super::overview::store_failed(&e)),
            }
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn activity_panel(ui: &Ui, who: &Who) -> Markup {
    use crate::access_log::Subject;
    let Some(store) = &ui.store else {
        return html! { section.card { h2 { "Recent activity" } (layout::unavailable(super::overview::NO_LOG)) } };
    };
    let subject = match who {
        Who::Ip(ip) => Subject::Ip(*ip),
        Who::User(user) => Subject::User(user.clone()),
        Who::Network(_) => {
            return html! { section.card { h2 { "Recent activity" } p.muted { "The access log is read by address or by user: look up an address of the network." } } };
        }
    };
    let now = ui.bouncer.engine.clock.wall();
    html! {
        section.card {
            h2 { "Recent activity" }
            @match store.activity(&subject, ACTIVITY).await {
                Ok(rows) if rows.is_empty() => p.muted { "No requests in the access log." },
                Ok(rows) => table {
                    tr { th { "when" } th { "request" } th.num { "status" } th { "verdict" } th { "User-Agent" } }
                    @for r in &rows {
                        tr {
                            td { (layout::relative(r.time, now)) }
                            td.text { (r.method) " " (r.path) @if let Some(q) = &r.query { "?" (q) } }
                            td.num { (r.status) }
                            td {
                                @match &r.verdict {
                                    Some(v) if v.reason.is_some() && v.enforced => span.block { "refused: " (v.reason.map(|x| x.as_str()).unwrap_or("")) },
                                    Some(v) if v.reason.is_some() => span.would { "would refuse: " (v.reason.map(|x| x.as_str()).unwrap_or("")) },
                                    Some(v) => { "score " (v.score) },
                                    None => span.muted { "not judged" },
                                }
                            }
                            td.text { (r.user_agent.as_deref().unwrap_or("")) }
                        }
                    }
                },
                Err(e) => (super::overview::store_failed(&e)),
            }
        }
    }
}

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
async fn activity_panel(_: &Ui, _: &Who) -> Markup {
    html! { section.card { h2 { "Recent activity" } (layout::unavailable(super::overview::NO_SQL)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_parse_and_bad_ones_are_named() {
        assert!(matches!(parse("203.0.113.7"), Ok(Who::Ip(_))));
        assert!(matches!(parse("203.0.113.0/24"), Ok(Who::Network(_))));
        assert!(matches!(parse("user:alice"), Ok(Who::User(u)) if u == "alice"));
        assert!(parse("user:").is_err());
        assert!(parse("203.0.113.7/24").is_err());
        assert!(parse("nonsense").is_err());
        assert!(parse(&"1".repeat(600)).is_err());
        assert!(parse("user:a\nb").is_err());
    }
}
