//! `GET /`: traffic, refusals, bans, rules and the health of every part, on one page.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use std::time::Duration;
use std::time::SystemTime;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use maud::{html, Markup};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
use super::chart::{self, Bar};
use super::layout::{self, Nav};
use super::session::Operator;
use super::Ui;

/// How far back the "top" panels look.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const RECENT: Duration = Duration::from_secs(3600);
/// Rows of each "top" panel.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const TOP_ROWS: usize = 10;
/// Bans listed on the overview (the bans page lists them all).
const BANS_SHOWN: usize = 10;

/// `GET /`.
pub(crate) async fn page(ui: web::Data<Ui>, operator: Operator) -> HttpResponse {
    let now = ui.bouncer.engine.clock.wall();
    let body = html! {
        (charts_fragment(&ui, now).await)
        div.grid {
            (traffic_panels(&ui, now).await)
            (bans_panel(&ui, now).await)
            (rules_panel(&ui))
            (health_panel(&ui))
        }
    };
    layout::page(
        &ui,
        &operator,
        Nav::Overview,
        "Overview",
        StatusCode::OK,
        body,
    )
}

/// `GET /overview/charts`: the charts alone, which htmx reloads every 30 seconds.
pub(crate) async fn charts(ui: web::Data<Ui>, _: Operator) -> HttpResponse {
    let now = ui.bouncer.engine.clock.wall();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(charts_fragment(&ui, now).await.into_string())
}

async fn charts_fragment(ui: &Ui, now: SystemTime) -> Markup {
    let refresh = format!("{}/overview/charts", ui.base);
    html! {
        section.card.wide #charts hx-get=(refresh) hx-trigger="every 30s" hx-swap="outerHTML" {
            (charts_body(ui, now).await)
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn charts_body(ui: &Ui, now: SystemTime) -> Markup {
    use crate::access_log::Bucket;
    let Some(store) = &ui.store else {
        return html! {
            h2 { "Requests" }
            (layout::unavailable(NO_LOG))
        };
    };
    let minute = Duration::from_secs(60);
    let hour = Duration::from_secs(3600);
    // The current minute (hour) is the last bar: the window starts 59 (23) before it.
    let by_minute_from = chart::floor(now, minute) - minute * 59;
    let by_hour_from = chart::floor(now, hour) - hour * 23;
    let series = |rows: Vec<crate::access_log::BlockedBucket>,
                  from: SystemTime,
                  width: Duration,
                  n: usize| {
        let mut bars = vec![Bar::default(); n];
        for row in rows {
            let Ok(offset) = row.start.duration_since(from) else {
                continue;
            };
            let i = (offset.as_secs() / width.as_secs()) as usize;
            if let Some(bar) = bars.get_mut(i) {
                bar.allowed += row.allowed;
                bar.would += row.would_block;
                bar.blocked += row.blocked;
            }
        }
        bars
    };
    let per_minute = store
        .blocked_over_time(by_minute_from, Bucket::Minute)
        .await;
    let per_hour = store.blocked_over_time(by_hour_from, Bucket::Hour).await;
    html! {
        div.grid {
            div {
                h2 { "Requests per minute, last hour" }
                @match per_minute {
                    Ok(rows) => (chart::bars("Requests per minute, last hour", by_minute_from, minute, &series(rows, by_minute_from, minute, 60), 10)),
                    Err(e) => (store_failed(&e)),
                }
            }
            div {
                h2 { "Requests per hour, last day" }
                @match per_hour {
                    Ok(rows) => (chart::bars("Requests per hour, last day", by_hour_from, hour, &series(rows, by_hour_from, hour, 24), 4)),
                    Err(e) => (store_failed(&e)),
                }
            }
        }
    }
}

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
async fn charts_body(_: &Ui, _: SystemTime) -> Markup {
    html! { h2 { "Requests" } (layout::unavailable(NO_SQL)) }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Said by a panel that reads the access log when none is connected.
pub(crate) const NO_LOG: &str = "The access log is not connected to the dashboard: give it \
    one with `Dashboard::log_store` (a `SqlAccessLog` on the database the access log writes to).";
#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
pub(crate) const NO_SQL: &str =
    "Traffic panels need the access log in SQL: features `sqlite` or `postgres`.";

/// A store failure, logged in full and shown without its text.
pub(crate) fn store_failed(error: &dyn std::fmt::Display) -> Markup {
    tracing::warn!(target: "actix_bouncer", %error, "dashboard: a store query failed");
    layout::notice(
        "error",
        "The store did not answer; the error is in the log.",
    )
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn traffic_panels(ui: &Ui, now: SystemTime) -> Markup {
    let Some(store) = &ui.store else {
        return html! {
            section.card { h2 { "Traffic, last hour" } (layout::unavailable(NO_LOG)) }
        };
    };
    let since = now - RECENT;
    let client = format!("{}/client", ui.base);
    let reasons = store.block_reasons(since).await;
    let refused = store.top_blocked_ips(since, TOP_ROWS).await;
    let paths = store.top_paths(since, TOP_ROWS).await;
    html! {
        section.card {
            h2 { "Block reasons, last hour" }
            @match reasons {
                Ok(top) if top.rows.is_empty() => p.muted { "Nothing refused in the last hour." },
                Ok(top) => {
                    table {
                        tr { th { "reason" } th.num { "refused" } th.num { "would be (monitor)" } }
                        @for row in &top.rows {
                            tr {
                                td { (row.reason.map_or("unknown", |r| r.as_str())) }
                                td.num.block[row.blocked > 0] { (row.blocked) }
                                td.num { (row.would_block) }
                            }
                        }
                    }
                    (cut(&top, "refused requests"))
                }
                Err(e) => (store_failed(&e)),
            }
        }
        section.card {
            h2 { "Top refused clients, last hour" }
            @match refused {
                Ok(top) if top.rows.is_empty() => p.muted { "Nothing refused in the last hour." },
                Ok(top) => {
                    table {
                        tr { th { "client" } th.num { "refused" } th.num { "would be (monitor)" } }
                        @for row in &top.rows {
                            tr {
                                td { a href={ (client) "?q=" (row.ip) } { (row.ip) } }
                                td.num.block[row.blocked > 0] { (row.blocked) }
                                td.num { (row.would_block) }
                            }
                        }
                    }
                    (cut(&top, "refused requests"))
                }
                Err(e) => (store_failed(&e)),
            }
        }
        section.card {
            h2 { "Top paths, last hour" }
            @match paths {
                Ok(top) if top.rows.is_empty() => p.muted { "No requests in the last hour." },
                Ok(top) => {
                    table {
                        tr { th { "path" } th.num { "requests" } th.num { "refused" } }
                        @for row in &top.rows {
                            tr {
                                td.text { (row.path) }
                                td.num { (row.requests) }
                                td.num.block[row.blocked > 0] { (row.blocked) }
                            }
                        }
                    }
                    (cut(&top, "requests"))
                }
                Err(e) => (store_failed(&e)),
            }
        }
    }
}

/// Says when a "top" panel counted only the newest records of its window (a busy hour: the
/// query reads at most `TOP_READ_MAX` records, so the page costs the same whatever the traffic).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn cut<T>(top: &crate::access_log::Top<T>, what: &str) -> Markup {
    html! {
        @if top.window_cut {
            p.muted { "Of the last " (top.read) " " (what) ", since " (layout::when(top.since)) "." }
        }
    }
}

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
async fn traffic_panels(_: &Ui, _: SystemTime) -> Markup {
    html! { section.card { h2 { "Traffic, last hour" } (layout::unavailable(NO_SQL)) } }
}

async fn bans_panel(ui: &Ui, now: SystemTime) -> Markup {
    let bans = ui.bouncer.bans().await;
    let page = format!("{}/bans", ui.base);
    html! {
        section.card {
            h2 { "Active bans" }
            @match bans {
                Ok(bans) if bans.is_empty() => p.muted { "Nobody is banned on this instance." },
                Ok(bans) => {
                    p { (bans.len()) " active on this instance. " a href=(page) { "All bans" } }
                    table {
                        tr { th { "who" } th { "limit" } th { "ends" } }
                        @for ban in bans.iter().take(BANS_SHOWN) {
                            tr {
                                td.text { (super::bans::shown(&ban.key)) }
                                td { (ban.limit.as_ref()) }
                                td { (layout::relative(ban.until, now)) }
                            }
                        }
                    }
                }
                Err(e) => (store_failed(&e)),
            }
        }
    }
}

fn rules_panel(ui: &Ui) -> Markup {
    use crate::rules::{RuleAction, RuleSource};
    let counts = ui.bouncer.rules().counts();
    let page = format!("{}/rules", ui.base);
    let sources = [
        (RuleSource::Manual, "manual (operators, the app)"),
        (RuleSource::Config, "config ([[rules]])"),
        (RuleSource::Auto, "automatic (bans)"),
    ];
    html! {
        section.card {
            h2 { "Rules in force" }
            p { (counts.total) " rules: " (counts.action(RuleAction::Block)) " block, " (counts.action(RuleAction::Allow)) " allow; " (counts.networks) " on addresses or networks, " (counts.users) " on users." }
            table {
                tr { th { "source" } th.num { "rules" } }
                @for (source, label) in sources {
                    tr {
                        td { a href={ (page) "?source=" (<&'static str>::from(source)) } { (label) } }
                        td.num { (counts.source(source)) }
                    }
                }
            }
            @let health = ui.bouncer.rules().health();
            p.muted { a href=(page) { "All rules" } }
            (rules_health(&health, ui.bouncer.engine.clock.wall()))
        }
    }
}

/// The rule store's reload state, when there is a store to reload from.
fn rules_health(health: &crate::rules::RulesHealth, now: SystemTime) -> Markup {
    html! {
        @if let Some(at) = health.last_reload {
            dl.facts {
                dt { "store reloaded" } dd { (layout::relative(at, now)) }
                dt { "reload failures" } dd.block[health.consecutive_failures > 0] { (health.reload_failures) @if health.consecutive_failures > 0 { " (" (health.consecutive_failures) " in a row: serving the last snapshot)" } }
                @if health.auto_rules_waiting > 0 || health.auto_rules_dropped > 0 {
                    dt { "automatic rules waiting / dropped" } dd { (health.auto_rules_waiting) " / " (health.auto_rules_dropped) }
                }
            }
        }
    }
}

fn health_panel(ui: &Ui) -> Markup {
    let engine = &ui.bouncer.engine;
    let counters = ui.bouncer.counter_stats();
    html! {
        section.card {
            h2 { "Range feeds" }
            @match &engine.feeds {
                None => (layout::unavailable("No range feed is configured ([[feeds]]).")),
                Some(feeds) => {
                    @let health = feeds.health();
                    @let now = SystemTime::now();
                    table {
                        tr { th { "kind" } th.num { "ranges" } }
                        @for (kind, n) in &health.ranges {
                            tr { td { (kind.as_str()) } td.num { (n) } }
                        }
                    }
                    dl.facts {
                        dt { "loaded" } dd { (layout::relative(health.loaded_at, now)) }
                        dt { "last checked" } dd { (layout::relative(health.checked_at, now)) }
                        dt { "reload failures" } dd.block[health.reload_failures > 0] { (health.reload_failures) }
                    }
                    @if !health.warnings.is_empty() {
                        h2 { "Warnings" }
                        ul { @for w in health.warnings.iter().take(20) { li.text { (w) } } }
                        @if health.warnings.len() > 20 { p.muted { "and " (health.warnings.len() - 20) " more" } }
                    }
                }
            }
        }
        section.card {
            h2 { "Reputation" }
            (reputation(ui))
        }
        section.card {
            h2 { "Counters and access log" }
            dl.facts {
                dt { "clients tracked" } dd { (counters.tracked_keys) }
                @if let Some(evictions) = counters.evictions {
                    dt { "evicted (ever)" } dd { (evictions) }
                }
                @if let Some(shared) = counters.shared {
                    dt { "shared store" }
                    dd {
                        @if shared.connected { span.allow { "connected" } } @else { span.block { "unreachable: local counts" } }
                    }
                    dt { "round trips / failed" } dd { (shared.round_trips) " / " (shared.failures) }
                }
            }
            @match &ui.log {
                None => (layout::unavailable("The access log is not connected to the dashboard (`Dashboard::access_log`).")),
                Some(log) => {
                    @let s = log.stats();
                    dl.facts {
                        dt { "log written" } dd { (s.written) }
                        dt { "log queue" } dd { (s.queued) " of " (s.capacity) }
                        dt { "log dropped" } dd.block[s.dropped > 0] { (s.dropped) }
                        dt { "log failed" } dd.block[s.failed > 0] { (s.failed) }
                    }
                }
            }
        }
    }
}

#[cfg(feature = "reputation")]
fn reputation(ui: &Ui) -> Markup {
    match ui.bouncer.reputation_stats() {
        None => layout::unavailable("No reputation API is configured ([reputation])."),
        Some(s) => {
            let looked = s.cache_hits + s.cache_misses;
            let rate = if looked == 0 {
                "no lookups yet".to_owned()
            } else {
                format!("{:.1} %", 100.0 * s.cache_hits as f64 / looked as f64)
            };
            html! {
                dl.facts {
                    dt { "cache hit rate" } dd { (rate) }
                    dt { "upstream calls" } dd { (s.upstream_calls) }
                    dt { "failures" } dd.block[s.failures > 0] { (s.failures) }
                    dt { "queue drops" } dd.block[s.dropped > 0] { (s.dropped) }
                    dt { "queued" } dd { (s.queued) }
                }
            }
        }
    }
}

#[cfg(not(feature = "reputation"))]
fn reputation(_: &Ui) -> Markup {
    layout::unavailable("The reputation API is not built in (feature `reputation`).")
}
