// `#[rate_limit]` alone, in all its forms; handlers of the same name in different modules.
use actix_bouncer::rate_limit;
use actix_web::{web, App, HttpResponse};

#[rate_limit(hits = 5, per = "1m", ban_for = "15m", key = "ip")]
async fn login() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[rate_limit(hits = 100, per = "1h 30m", key = "user", ban_for = "10m", user_ban_for = "1d")]
async fn upload(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().body(body)
}

#[rate_limit(per = "250ms", hits = 4294967295, key = "user_or_ip")]
async fn search() -> HttpResponse {
    HttpResponse::Ok().finish()
}

// A ban as long as the window, and a name of its own shared by two handlers.
#[rate_limit(hits = 10, per = "1m", ban_for = "1m", name = "auth")]
async fn signup() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[rate_limit(hits = 10, per = "1m", ban_for = "1m", name = "auth")]
async fn reset() -> HttpResponse {
    HttpResponse::Ok().finish()
}

mod admin {
    use actix_bouncer::rate_limit;
    use actix_web::HttpResponse;

    #[rate_limit(hits = 3, per = "10s", ban_for = "1h")]
    pub async fn login() -> HttpResponse {
        HttpResponse::Ok().finish()
    }
}

fn main() {
    let _app = App::new()
        .route("/login", web::post().to(login))
        .route("/admin/login", web::post().to(admin::login))
        .route("/upload", web::post().to(upload))
        .route("/search", web::get().to(search))
        .route("/signup", web::post().to(signup))
        .route("/reset", web::post().to(reset));
}
