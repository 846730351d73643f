//! Bans recorded as automatic rules (django-blacklist's `@blacklist_ratelimited`): a ban that
//! starts here becomes a block rule every instance sharing the rule store enforces.

use std::time::Duration;

use actix_web::dev::RequestHead;

use super::Engine;
use crate::rules::{NewRule, RuleTarget};
use crate::verdict::{IpVerdict, Refusal};

/// Longest request id kept in a rule's comment.
const MAX_REQUEST_ID: usize = 64;
/// Longest path kept in a rule's comment.
const MAX_PATH: usize = 256;

/// How bans become rules.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AutoRules {
    /// How long a signed-in user's rule lasts; `None`: as long as the ban.
    pub(crate) user_ban_for: Option<Duration>,
}

impl Engine {
    /// Records a ban that started with this request as an automatic rule, written off the
    /// request path: on the user when the request has one, otherwise on the client's address
    /// or network. A client whose address is unknown gets no rule (there is no address to put
    /// it on; its ban holds here). Monitor mode records nothing.
    pub(crate) fn record_ban(&self, head: &RequestHead, verdict: &IpVerdict, refusal: &Refusal) {
        let (Some(auto), Some(ban), true) = (self.auto_rules, refusal.ban, self.enforces()) else {
            return;
        };
        let (target, length) = match verdict.user() {
            Some(user) => (
                RuleTarget::User(user.to_owned()),
                refusal.user_ban.or(auto.user_ban_for).unwrap_or(ban),
            ),
            None => match verdict.key().network() {
                Some(net) => (RuleTarget::Network(net), ban),
                None => return,
            },
        };
        let rule = NewRule::block(target)
            .expires_after(length)
            .comment(comment(head));
        self.rules.add_automatic(rule);
    }
}

/// `banned by a rate limit: POST /login (request 4bf92f35)`: the request line (method and path,
/// no query string, which may carry secrets) and the `X-Request-Id` when it is a short run of
/// visible ASCII. Both are the client's to write, so both are cut short.
fn comment(head: &RequestHead) -> String {
    // A parsed URI is ASCII, so any byte offset is a char boundary.
    let path = head.uri.path();
    let path = &path[..path.len().min(MAX_PATH)];
    let id = head
        .headers
        .get("x-request-id")
        .map(|v| v.as_bytes())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID)
        .filter(|v| v.iter().all(|b| b.is_ascii_graphic()))
        .and_then(|v| std::str::from_utf8(v).ok());
    match id {
        Some(id) => format!(
            "banned by a rate limit: {} {path} (request {id})",
            head.method
        ),
        None => format!("banned by a rate limit: {} {path}", head.method),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::comment;

    #[test]
    fn the_comment_holds_the_request_line_and_a_sane_request_id() {
        let req = TestRequest::post()
            .uri("/login?password=hunter2")
            .insert_header(("x-request-id", "4bf92f35"))
            .to_http_request();
        assert_eq!(
            comment(req.head()),
            "banned by a rate limit: POST /login (request 4bf92f35)"
        );
        for hostile in ["a b", "x".repeat(65).as_str(), "a\tb"] {
            let req = TestRequest::get()
                .uri("/")
                .insert_header(("x-request-id", hostile))
                .to_http_request();
            assert_eq!(comment(req.head()), "banned by a rate limit: GET /");
        }
        let long = format!("/{}", "%C3%A9".repeat(100));
        let req = TestRequest::get().uri(&long).to_http_request();
        assert_eq!(
            comment(req.head()).len(),
            "banned by a rate limit: GET ".len() + 256
        );
    }
}
