//! The login, the session cookie and the CSRF token.
//!
//! A session is not stored anywhere: the cookie is `v1.<end>.<mac>`, `end` in seconds since
//! the epoch and `mac` the HMAC-SHA-256 of `v1.<end>` under the session key of the token that
//! logged in. The key is derived from the token's digest, so every instance with the same
//! tokens accepts the session, and a changed or removed token ends its sessions at once. The
//! check tries every token's key and compares in constant time, as the API's bearer check
//! does. A form's CSRF token is the HMAC of the cookie's value under the same key (another
//! label): a page from another site can neither read the cookie nor forge the token.

use std::future::{ready, Ready};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use hmac::{Hmac, Mac};
use maud::html;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::layout::{self, Form};
use super::Ui;
use crate::engine::AdminToken;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "bouncer_dashboard";
/// The form field holding the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";

type HmacSha256 = Hmac<Sha256>;

/// A token's session key, and its name for the change log.
pub(crate) struct SessionKey {
    name: Arc<str>,
    key: [u8; 32],
}

/// One key per admin token, derived from its digest (the secret itself is not kept).
pub(crate) fn keys(tokens: &[AdminToken]) -> Arc<[SessionKey]> {
    tokens
        .iter()
        .map(|t| {
            let mut h = Sha256::new();
            h.update(b"actix-bouncer dashboard session key v1\0");
            h.update(t.digest);
            SessionKey {
                name: Arc::clone(&t.name),
                key: h.finalize().into(),
            }
        })
        .collect()
}

fn mac(key: &[u8; 32], label: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(label);
    m.update(message);
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A signed-in operator: who, and the CSRF token of the session.
#[derive(Debug, Clone)]
pub(crate) struct Operator {
    /// The name of the token that logged in.
    pub(crate) name: Arc<str>,
    /// What forms carry in [`CSRF_FIELD`].
    pub(crate) csrf: String,
}

impl Ui {
    /// A session cookie value for the key at `index`, ending `ttl` from now.
    fn issue(&self, index: usize) -> String {
        let end = secs(self.bouncer.engine.clock.wall() + self.session_ttl);
        let payload = format!("v1.{end}");
        let mac = mac(&self.keys[index].key, b"session\0", payload.as_bytes());
        format!("{payload}.{}", hex(&mac))
    }

    /// The operator of a session cookie value, if it is valid now.
    pub(crate) fn operator(&self, value: &str) -> Option<Operator> {
        let (payload, mac_hex) = value.rsplit_once('.')?;
        let end: u64 = payload.strip_prefix("v1.")?.parse().ok()?;
        let presented = unhex(mac_hex)?;
        if secs(self.bouncer.engine.clock.wall()) >= end {
            return None;
        }
        let mut found = None;
        for (i, k) in self.keys.iter().enumerate() {
            let expected = mac(&k.key, b"session\0", payload.as_bytes());
            if bool::from(expected.ct_eq(&presented)) {
                found = Some(i);
            }
        }
        let key = &self.keys[found?];
        Some(Operator {
            name: Arc::clone(&key.name),
            csrf: hex(&mac(&key.key, b"csrf\0", value.as_bytes())),
        })
    }

    fn session_of(&self, req: &HttpRequest) -> Option<Operator> {
        // One cookie of that name: two (one planted by a sibling subdomain, say) is refused.
        let all = req.cookies().ok()?;
        let mut cookies = all.iter().filter(|c| c.name() == COOKIE);
        let cookie = cookies.next()?;
        if cookies.next().is_some() {
            return None;
        }
        self.operator(cookie.value())
    }

    fn cookie(&self, value: String, max_age: Duration) -> Cookie<'static> {
        let path = if self.base.is_empty() {
            "/".to_owned()
        } else {
            self.base.to_string()
        };
        Cookie::build(COOKIE, value)
            .path(path)
            .http_only(true)
            .secure(self.secure_cookie)
            .same_site(SameSite::Strict)
            .max_age(actix_web::cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .finish()
    }
}

/// Why a request did not get past the session check.
#[derive(Debug)]
pub(crate) enum Denied {
    /// No valid session: a read is sent to the login page, an action refused.
    NoSession { read: bool, login: String },
    /// The form's CSRF token is missing or wrong, or the request came from another site.
    Forgery,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::NoSession { .. } => f.write_str("no valid dashboard session"),
            Denied::Forgery => f.write_str("missing or wrong CSRF token"),
        }
    }
}

impl ResponseError for Denied {
    fn status_code(&self) -> StatusCode {
        match self {
            Denied::NoSession { read: true, .. } => StatusCode::SEE_OTHER,
            Denied::NoSession { read: false, .. } => StatusCode::UNAUTHORIZED,
            Denied::Forgery => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Denied::NoSession { read: true, login } => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, login.as_str()))
                .finish(),
            Denied::NoSession { read: false, login } => layout::bare(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                html! {
                    p { "Your session has ended. " a href=(login) { "Sign in" } " and try again." }
                },
            ),
            Denied::Forgery => layout::bare(
                StatusCode::FORBIDDEN,
                "Refused",
                html! {
                    p { "This form could not be verified (its CSRF token is missing or wrong). \
                         Reload the page and try again." }
                },
            ),
        }
    }
}

impl FromRequest for Operator {
    type Error = Denied;
    type Future = Ready<Result<Self, Denied>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(signed_in(req))
    }
}

fn signed_in(req: &HttpRequest) -> Result<Operator, Denied> {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    let Some(ui) = req.app_data::<web::Data<Ui>>() else {
        // Only the dashboard's scope routes here; without its data nothing is signed in.
        return Err(Denied::NoSession {
            read,
            login: "/".to_owned(),
        });
    };
    ui.session_of(req).ok_or_else(|| {
        tracing::debug!(target: "actix_bouncer", path = %req.path(), "dashboard: no valid session");
        Denied::NoSession {
            read,
            login: format!("{}/login", ui.base),
        }
    })
}

impl Operator {
    /// Checks an action's form: its CSRF token, and that the browser did not flag the request
    /// as coming from another site (`Sec-Fetch-Site`, sent by every current browser).
    pub(crate) fn check(&self, req: &HttpRequest, form: &Form) -> Result<(), Denied> {
        if cross_site(req) {
            return Err(Denied::Forgery);
        }
        let presented = form.get(CSRF_FIELD).unwrap_or("");
        if bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            tracing::warn!(
                target: "actix_bouncer",
                path = %req.path(),
                operator = %self.name,
                "dashboard: action refused: missing or wrong CSRF token"
            );
            Err(Denied::Forgery)
        }
    }
}

fn cross_site(req: &HttpRequest) -> bool {
    req.headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
}

/// `GET /login`.
pub(crate) async fn login_page(ui: web::Data<Ui>, req: HttpRequest) -> HttpResponse {
    if ui.session_of(&req).is_some() {
        return layout::see_other(&format!("{}/", ui.base));
    }
    login_form(&ui, StatusCode::OK, None)
}

fn login_form(ui: &Ui, status: StatusCode, error: Option<&str>) -> HttpResponse {
    let action = format!("{}/login", ui.base);
    layout::bare_in(
        Some(&ui.base),
        status,
        "Sign in",
        html! {
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form.login method="post" action=(action) {
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `POST /login`: a token in, a session cookie out.
pub(crate) async fn login(ui: web::Data<Ui>, req: HttpRequest, form: Form) -> HttpResponse {
    if cross_site(&req) {
        return Denied::Forgery.error_response();
    }
    let presented = form.get("token").unwrap_or("").trim().as_bytes();
    let tokens = &ui.bouncer.engine.admin_tokens;
    match crate::admin_api::find_token(tokens, presented) {
        Some(index) => {
            tracing::info!(
                target: "actix_bouncer",
                operator = %tokens[index].name,
                peer = ?req.peer_addr().map(|a| a.ip()),
                "dashboard: signed in"
            );
            let mut res = layout::see_other(&format!("{}/", ui.base));
            // The cookie is set on a redirect: a failure to add it would leave the operator
            // signed out, not in.
            let _ = res.add_cookie(&ui.cookie(ui.issue(index), ui.session_ttl));
            res
        }
        None => {
            tracing::warn!(
                target: "actix_bouncer",
                peer = ?req.peer_addr().map(|a| a.ip()),
                "dashboard: sign-in refused: wrong token"
            );
            login_form(&ui, StatusCode::UNAUTHORIZED, Some("Wrong token."))
        }
    }
}

/// `POST /logout`: the cookie is cleared. The session's value stays valid until its end
/// (nothing is stored to revoke); change the token to end every session at once.
pub(crate) async fn logout(
    ui: web::Data<Ui>,
    req: HttpRequest,
    operator: Operator,
    form: Form,
) -> Result<HttpResponse, Denied> {
    operator.check(&req, &form)?;
    let mut res = layout::see_other(&format!("{}/login", ui.base));
    let _ = res.add_cookie(&ui.cookie(String::new(), Duration::ZERO));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_text() {
        let bytes = [0xab_u8; 32];
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
        assert_eq!(unhex(&"a".repeat(63)), None);
    }

    #[test]
    fn keys_differ_per_token_and_macs_per_label() {
        let keys = keys(&[
            AdminToken::new("a", b"0123456789abcdef"),
            AdminToken::new("b", b"fedcba9876543210"),
        ]);
        assert_ne!(keys[0].key, keys[1].key);
        assert_ne!(
            mac(&keys[0].key, b"session\0", b"v1.1"),
            mac(&keys[0].key, b"csrf\0", b"v1.1")
        );
    }
}
