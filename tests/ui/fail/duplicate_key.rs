use actix_bouncer::require_human;

#[require_human(threshold = 60, message = "Humans only.", threshold = 70)]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
