// `#[require_human]` alone, with and without a threshold.
use actix_bouncer::require_human;
use actix_web::{web, App, HttpResponse, Responder};

#[require_human]
async fn signup() -> impl Responder {
    HttpResponse::Ok()
}

#[require_human(threshold = 60)]
async fn invite(req: actix_web::HttpRequest) -> impl Responder {
    HttpResponse::Ok().body(req.path().to_owned())
}

fn main() {
    let _app = App::new()
        .route("/signup", web::post().to(signup))
        .route("/invite", web::post().to(invite));
}
