use actix_bouncer::rate_limit;

#[rate_limit(hits = 5, per = "soon")]
pub async fn unparsable() -> &'static str {
    "ok"
}

#[rate_limit(hits = 5, per = "0s")]
pub async fn zero() -> &'static str {
    "ok"
}

fn main() {}
