use actix_bouncer::rate_limit;

#[rate_limit(hits = 5)]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
