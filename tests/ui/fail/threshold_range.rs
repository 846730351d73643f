use actix_bouncer::{require_human, require_low_risk};

#[require_low_risk(threshold = 0)]
pub async fn zero() -> &'static str {
    "ok"
}

#[require_human(threshold = 101)]
pub async fn too_high() -> &'static str {
    "ok"
}

#[require_low_risk(threshold = "70")]
pub async fn not_an_integer() -> &'static str {
    "ok"
}

fn main() {}
