// The guards above actix-web's routing attributes.
use actix_bouncer::{deny_flags, rate_limit, require_human, require_low_risk};
use actix_web::{get, post, web, App, HttpResponse};
use serde::Deserialize;

#[derive(Deserialize)]
struct Credentials {
    user: String,
}

#[require_human]
#[get("/login")]
async fn login_page() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[rate_limit(hits = 5, per = "1m", ban_for = "15m")]
#[deny_flags(tor)]
#[require_low_risk(threshold = 70)]
#[post("/login")]
pub async fn login(form: web::Form<Credentials>) -> HttpResponse {
    HttpResponse::Ok().body(form.into_inner().user)
}

// Guards on both sides of the routing attribute.
#[require_human]
#[get("/mixed")]
#[rate_limit(hits = 1, per = "1s")]
async fn mixed() -> HttpResponse {
    HttpResponse::Ok().finish()
}

fn main() {
    let _app = App::new().service(login_page).service(login).service(mixed);
}
