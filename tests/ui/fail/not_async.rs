use actix_bouncer::require_low_risk;

#[require_low_risk(threshold = 70)]
pub fn handler() -> &'static str {
    "ok"
}

fn main() {}
