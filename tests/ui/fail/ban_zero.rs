use actix_bouncer::rate_limit;

#[rate_limit(hits = 5, per = "1m", ban_for = "0s")]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
