use actix_bouncer::require_low_risk;

#[require_low_risk(thresold = 70)]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
