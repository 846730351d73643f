// `#[require_low_risk]` alone, on a handler with no other parameters and on one with some.
use actix_bouncer::require_low_risk;
use actix_web::{web, App, HttpResponse};

#[require_low_risk(threshold = 70)]
async fn bare() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[require_low_risk(threshold = 1)]
async fn strictest(path: web::Path<u32>, query: web::Query<Vec<(String, String)>>) -> String {
    format!("{} {}", path.into_inner(), query.len())
}

#[require_low_risk(threshold = 100, crate = "::actix_bouncer")]
pub async fn laxest(body: String) -> String {
    body
}

fn main() {
    let _app = App::new()
        .service(web::resource("/bare").to(bare))
        .route("/strictest/{n}", web::get().to(strictest))
        .route("/laxest", web::post().to(laxest));
}
