use actix_bouncer::deny_flags;

#[deny_flags(tor, vpm, proxy)]
pub async fn handler() -> &'static str {
    "ok"
}

fn main() {}
