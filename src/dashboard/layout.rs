//! The page shell, the headers every answer carries, forms, and small formatting helpers.
//!
//! Everything goes through maud's `html!`, which escapes every value it is given: text from
//! clients (paths, User-Agents, rule comments, user ids) is never written out raw.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

use super::session::{Operator, CSRF_FIELD};
use super::Ui;

/// Largest form body read, in bytes.
pub(crate) const MAX_FORM: usize = 16 * 1024;

/// The policy of every answer: the dashboard's own scripts, styles and images only, no
/// inline script or style, no framing, forms posted back to it only.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// htmx's settings: no inline indicator styles (the policy forbids them), no `eval`, no
/// scripts from swapped content.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;

/// The headers every answer of the dashboard carries (404s and assets included).
pub(crate) fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CSP))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
}

/// A form's fields, in order (`application/x-www-form-urlencoded`, at most [`MAX_FORM`]
/// bytes). A body that does not read is answered 400.
#[derive(Debug, Default)]
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The fields but the CSRF token, empty ones left out (an unset field of a form).
    pub(crate) fn filled(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(n, v)| n != CSRF_FIELD && !v.trim().is_empty())
            .cloned()
            .collect()
    }
}

impl FromRequest for Form {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fut = web::Form::<Vec<(String, String)>>::from_request(req, payload);
        Box::pin(async move {
            match fut.await {
                Ok(form) => Ok(Form(form.into_inner())),
                Err(_) => Err(actix_web::error::InternalError::from_response(
                    "unreadable form",
                    bare(
                        StatusCode::BAD_REQUEST,
                        "Bad request",
                        html! { p { "The form could not be read (too large, or not a form)." } },
                    ),
                )
                .into()),
            }
        })
    }
}

/// A 303 to `to`.
pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

fn head(title: &str, base: Option<&str>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            meta name="robots" content="noindex";
            title { (title) " · bouncer" }
            @if let Some(base) = base {
                link rel="stylesheet" href={ (base) "/assets/dashboard.css" };
                script src={ (base) "/assets/htmx.min.js" } defer {}
            }
        }
    }
}

/// A page outside the session (errors): no navigation, no stylesheet.
pub(crate) fn bare(status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    bare_in(None, status, title, body)
}

/// A page outside the session, styled when the dashboard's `base` is known (sign-in).
pub(crate) fn bare_in(
    base: Option<&str>,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> HttpResponse {
    html_response(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, base))
                body.bare {
                    main { h1 { (title) } (body) }
                }
            }
        },
    )
}

/// Which navigation entry is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Rules,
    Bans,
    Client,
}

/// A page of the signed-in dashboard.
pub(crate) fn page(
    ui: &Ui,
    operator: &Operator,
    nav: Nav,
    title: &str,
    status: StatusCode,
    body: Markup,
) -> HttpResponse {
    let base = &*ui.base;
    let entries = [
        (Nav::Overview, "Overview", format!("{base}/")),
        (Nav::Rules, "Rules", format!("{base}/rules")),
        (Nav::Bans, "Bans", format!("{base}/bans")),
        (Nav::Client, "Client", format!("{base}/client")),
    ];
    let mode = ui.bouncer.mode();
    html_response(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, Some(base)))
                body hx-boost="true" {
                    header {
                        nav {
                            span.brand { "bouncer" }
                            @for (which, label, href) in &entries {
                                @if *which == nav {
                                    a href=(href) aria-current="page" { (label) }
                                } @else {
                                    a href=(href) { (label) }
                                }
                            }
                            span.mode { "mode: " strong { (mode.as_str()) } }
                            form.logout method="post" action={ (base) "/logout" } {
                                (csrf(operator))
                                span { "signed in as " strong { (operator.name.as_ref()) } }
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        },
    )
}

/// The hidden CSRF field of an action's form.
pub(crate) fn csrf(operator: &Operator) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(operator.csrf); }
}

/// A message for the operator at the top of a page.
pub(crate) fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={ "notice " (kind) } role="status" { (text) } }
}

/// The panel of a part that is not connected.
pub(crate) fn unavailable(text: &str) -> Markup {
    html! { p.unavailable { (text) } }
}

/// `t` in UTC, to the second.
pub(crate) fn when(t: SystemTime) -> String {
    crate::clock::rfc3339(t, true)
}

/// A length such as `3h 20m`, `45s`: the two largest units.
pub(crate) fn span(d: Duration) -> String {
    let s = crate::clock::ceil_secs(d);
    let (days, hours, minutes, seconds) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) if seconds == 0 => format!("{minutes}m"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, 0) => format!("{hours}h"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        (_, 0, _) => format!("{days}d"),
        _ => format!("{days}d {hours}h"),
    }
}

/// `t` as "in 3h 20m" or "4m ago" from `now`, with the exact time as a tooltip.
pub(crate) fn relative(t: SystemTime, now: SystemTime) -> Markup {
    let text = match t.duration_since(now) {
        Ok(ahead) => format!("in {}", span(ahead)),
        Err(e) => format!("{} ago", span(e.duration())),
    };
    html! { time datetime=(when(t)) title=(when(t)) { (text) } }
}

/// `GET` of a path the dashboard does not have.
pub(crate) async fn not_found(_: Operator) -> HttpResponse {
    bare(
        StatusCode::NOT_FOUND,
        "Not found",
        html! { p { "The dashboard has no such page." } },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_two_units() {
        assert_eq!(span(Duration::from_secs(45)), "45s");
        assert_eq!(span(Duration::from_secs(600)), "10m");
        assert_eq!(span(Duration::from_secs(605)), "10m 5s");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 20 * 60)), "3h 20m");
        assert_eq!(span(Duration::from_secs(2 * 86400 + 3600)), "2d 1h");
        assert_eq!(span(Duration::from_secs(3600)), "1h");
        assert_eq!(span(Duration::from_secs(7 * 86400)), "7d");
        assert_eq!(span(Duration::from_millis(1500)), "2s");
    }
}
