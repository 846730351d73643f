// `crate = "..."` with the runtime crate under another name.
extern crate actix_bouncer as bouncer;

use actix_web::{web, App, HttpResponse};
use bouncer::{deny_flags, rate_limit, require_human, require_low_risk};

#[require_human(crate = "bouncer", message = "Renamed.")]
#[require_low_risk(threshold = 70, crate = "bouncer")]
#[deny_flags(tor, crate = "bouncer")]
#[rate_limit(hits = 5, per = "1m", crate = "bouncer")]
async fn login(body: String) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

mod inner {
    // `extern crate .. as bouncer` puts `bouncer` in the extern prelude, so `::bouncer` works
    // from any module.
    #[bouncer::require_low_risk(threshold = 70, crate = "::bouncer")]
    pub async fn handler() -> actix_web::HttpResponse {
        actix_web::HttpResponse::Ok().finish()
    }
}

fn main() {
    let _app = App::new()
        .route("/login", web::post().to(login))
        .route("/inner", web::get().to(inner::handler));
}
