use actix_bouncer::deny_flags;

#[deny_flags]
pub async fn bare() -> &'static str {
    "ok"
}

#[deny_flags(message = "Not from there.")]
pub async fn only_a_message() -> &'static str {
    "ok"
}

fn main() {}
