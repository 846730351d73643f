// actix-web's routing attributes above the guards: the guards expand inside `#[get]`'s
// `register` function.
use actix_bouncer::{deny_flags, rate_limit, require_human, require_low_risk};
use actix_web::{get, post, web, App, HttpResponse};
use serde::Deserialize;

#[derive(Deserialize)]
struct Credentials {
    user: String,
}

#[get("/login")]
#[require_human]
async fn login_page() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[post("/login")]
#[rate_limit(hits = 5, per = "1m", ban_for = "15m")]
#[deny_flags(tor)]
#[require_low_risk(threshold = 70)]
async fn login(form: web::Form<Credentials>) -> HttpResponse {
    HttpResponse::Ok().body(form.into_inner().user)
}

fn main() {
    let _app = App::new().service(login_page).service(login);
}
