use actix_bouncer::rate_limit;

#[rate_limit(hits = 5, per = "1m", user_ban_for = "1h")]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
