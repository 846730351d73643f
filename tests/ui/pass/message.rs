// `message = "..."` at module level, under and over `#[get]` (where the handler sits in a
// block), in a nested module, on a `pub` handler and on a raw-identifier name.
use actix_bouncer::guard::GuardMessage;
use actix_bouncer::{deny_flags, require_human, require_low_risk};
use actix_web::{get, web, App, HttpResponse};

#[require_human(message = "Humans only.")]
#[require_low_risk(threshold = 70, message = "Too risky.")]
#[deny_flags(tor, vpn, message = "No anonymous networks.")]
async fn module_level() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[get("/under")]
#[require_human(threshold = 90, message = "Under #[get].")]
async fn under_get() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[deny_flags(bot, message = "Over #[get].")]
#[get("/over")]
pub async fn over_get() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[require_low_risk(threshold = 70, message = r#"Raw "quoted" text."#)]
async fn r#match() -> HttpResponse {
    HttpResponse::Ok().finish()
}

mod nested {
    #[actix_bouncer::require_human(message = "Nested.")]
    pub async fn handler() -> actix_web::HttpResponse {
        actix_web::HttpResponse::Ok().finish()
    }
}

fn main() {
    assert_eq!(
        __actix_bouncer_msg_module_level_human::MESSAGE,
        "Humans only."
    );
    assert_eq!(
        __actix_bouncer_msg_module_level_low_risk::MESSAGE,
        "Too risky."
    );
    assert_eq!(
        __actix_bouncer_msg_match_low_risk::MESSAGE,
        r#"Raw "quoted" text."#
    );
    fn handler_in_block() {
        #[require_human(message = "In a block.")]
        async fn inner() -> HttpResponse {
            HttpResponse::Ok().finish()
        }
        let _ = web::get().to(inner);
    }
    handler_in_block();
    let _app = App::new()
        .route("/module", web::get().to(module_level))
        .route("/match", web::get().to(r#match))
        .route("/nested", web::get().to(nested::handler))
        .service(under_get)
        .service(over_get);
}
