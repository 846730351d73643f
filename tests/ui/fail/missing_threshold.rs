use actix_bouncer::require_low_risk;

#[require_low_risk(message = "Too risky.")]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
