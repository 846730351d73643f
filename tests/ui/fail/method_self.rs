use actix_bouncer::require_human;

pub struct Api;

impl Api {
    #[require_human]
    pub async fn handler(&self) -> &'static str {
        "ok"
    }
}

fn main() {}
