use actix_bouncer::{deny_flags, rate_limit, require_human};

#[require_human(message = 403)]
pub async fn message_not_a_string() -> &'static str {
    "ok"
}

#[rate_limit(hits = 5, per = "1m", key = ip)]
pub async fn key_not_a_string() -> &'static str {
    "ok"
}

#[deny_flags(tor = true)]
pub async fn flag_with_a_value() -> &'static str {
    "ok"
}

fn main() {}
