use actix_bouncer::{rate_limit, require_human};

#[require_human]
#[rate_limit(hits = 5, per = "1m")]
#[require_human(threshold = 60)]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
