// All four attributes on one handler, before a body extractor, registered with
// `web::resource(..).route(..)`.
use actix_bouncer::{deny_flags, rate_limit, require_human, require_low_risk};
use actix_web::{web, App, HttpResponse};
use serde::Deserialize;

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

#[require_human]
#[require_low_risk(threshold = 50)]
#[deny_flags(tor, vpn, proxy, hosting, bot)]
#[rate_limit(hits = 5, per = "1m", ban_for = "15m", key = "ip")]
async fn login(form: web::Form<Credentials>, req: actix_web::HttpRequest) -> HttpResponse {
    let Credentials { user, password } = form.into_inner();
    HttpResponse::Ok().body(format!("{user}:{} {}", password.len(), req.path()))
}

fn main() {
    let _app = App::new().service(web::resource("/login").route(web::post().to(login)));
}
