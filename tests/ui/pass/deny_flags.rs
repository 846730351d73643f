// `#[deny_flags]` alone: one flag, every flag, and a trailing comma.
use actix_bouncer::deny_flags;
use actix_web::{web, App, HttpResponse};

#[deny_flags(tor)]
async fn one() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[deny_flags(tor, vpn, proxy, hosting, cdn, bot, fake_crawler)]
async fn all(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

fn main() {
    let _app = App::new()
        .route("/one", web::get().to(one))
        .route("/all", web::post().to(all));
}
