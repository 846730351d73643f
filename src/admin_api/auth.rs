//! The bearer check every route of the API makes first ([`Admin`], an extractor).
//!
//! `Authorization: Bearer <token>`, the scheme in any case (RFC 7235 makes auth schemes
//! case-insensitive, and RFC 6750 does not override that), one or more spaces, then the token.
//! The presented token and every configured one are compared as SHA-256 digests with
//! [`subtle`]'s constant-time equality, checking every configured token without stopping at a
//! match: how long the check takes says nothing about how close a guess came, nor which token
//! it was close to. Any failure (no header, two headers, another scheme, an empty or unknown
//! token) gets the same 401 with `WWW-Authenticate: Bearer`.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, FromRequest, HttpRequest};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::problem::Problem;
use super::Api;
use crate::engine::{admin_digest, AdminToken};

/// A request that carried a valid admin token: `name` is the token's, for the change log.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    pub(crate) name: Arc<str>,
}

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Admin, Problem> {
    // Registered by `admin_scope` on the scope of every route that takes `Admin`.
    let Some(api) = req.app_data::<web::Data<Api>>() else {
        return Err(Problem::not_found("No such resource."));
    };
    let tokens = &api.bouncer.engine.admin_tokens;
    let found = match bearer(req.headers()) {
        Ok(presented) => find(tokens, presented).ok_or("an unknown token"),
        Err(why) => Err(why),
    };
    match found {
        Ok(i) => Ok(Admin {
            name: Arc::clone(&tokens[i].name),
        }),
        Err(why) => {
            tracing::warn!(
                target: "actix_bouncer",
                path = %req.path(),
                peer = ?req.peer_addr().map(|a| a.ip()),
                "admin API: request refused: {why}"
            );
            Err(Problem::unauthorized())
        }
    }
}

/// The token of the request's one `Authorization: Bearer` header, or why there is none.
fn bearer(headers: &HeaderMap) -> Result<&[u8], &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION);
    let value = values.next().ok_or("no Authorization header")?;
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    let value = value.as_bytes();
    let space = value
        .iter()
        .position(|&b| b == b' ')
        .ok_or("no token after the scheme")?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err("not the Bearer scheme");
    }
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    match &rest[start..] {
        [] => Err("an empty token"),
        token => Ok(token),
    }
}

/// The index of the configured token `presented` is, checking all of them in constant time.
pub(crate) fn find(tokens: &[AdminToken], presented: &[u8]) -> Option<usize> {
    let digest = admin_digest(presented);
    let mut found = Choice::from(0);
    let mut index = 0u32;
    for (i, token) in tokens.iter().enumerate() {
        let same = token.digest[..].ct_eq(&digest[..]);
        // A config holds a handful of tokens: the index fits.
        index.conditional_assign(&(i as u32), same);
        found |= same;
    }
    bool::from(found).then_some(index as usize)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_must_be_there() {
        assert_eq!(bearer(&headers(&["Bearer abc"])), Ok(&b"abc"[..]));
        assert_eq!(bearer(&headers(&["bearer  abc"])), Ok(&b"abc"[..]));
        assert_eq!(bearer(&headers(&["BEARER abc"])), Ok(&b"abc"[..]));
        assert!(bearer(&headers(&[])).is_err());
        assert!(bearer(&headers(&["Bearer"])).is_err());
        assert!(bearer(&headers(&["Bearer "])).is_err());
        assert!(bearer(&headers(&["Basic abc"])).is_err());
        assert!(bearer(&headers(&["Bearerabc"])).is_err());
        assert!(bearer(&headers(&["Bearer a", "Bearer b"])).is_err());
    }

    #[test]
    fn every_token_is_checked_and_the_match_named() {
        let tokens = [
            AdminToken::new("a", b"0123456789abcdef"),
            AdminToken::new("b", b"fedcba9876543210"),
        ];
        assert_eq!(find(&tokens, b"0123456789abcdef"), Some(0));
        assert_eq!(find(&tokens, b"fedcba9876543210"), Some(1));
        assert_eq!(find(&tokens, b"0123456789abcde"), None);
        assert_eq!(find(&tokens, b"0123456789abcdefg"), None);
        assert_eq!(find(&[], b"0123456789abcdef"), None);
    }
}
