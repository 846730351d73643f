//! Error answers: `application/problem+json` (RFC 9457), naming the bad field when there is
//! one. Nothing of a store's error ever goes into one: that is logged instead.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::response::PROBLEM_JSON;

/// Longest field name echoed back, in bytes: an unknown name comes from the client.
const MAX_FIELD: usize = 64;

/// An error answer of the admin API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    kind: &'static str,
    /// The status's reason phrase.
    #[schema(example = "Bad Request")]
    title: &'static str,
    /// The HTTP status.
    #[schema(example = 400)]
    status: u16,
    /// What went wrong, for a person.
    #[schema(value_type = String, example = "expected an IP address, a CIDR network such as 203.0.113.0/24, or user:<id>")]
    detail: Cow<'static, str>,
    /// The body field or query parameter at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "target")]
    field: Option<Cow<'static, str>>,
    /// The methods the resource answers, for a 405.
    #[serde(skip)]
    allow: Option<&'static str>,
}

impl Problem {
    /// A problem with `status`.
    pub(crate) fn new(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            allow: None,
        }
    }

    /// 400: `field` is missing or holds a bad value.
    pub(crate) fn invalid(
        field: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut problem = Problem::new(StatusCode::BAD_REQUEST, detail);
        problem.field = Some(cut(field.into()));
        problem
    }

    /// A problem with the whole body (its size, its media type, its syntax).
    pub(crate) fn body(status: StatusCode, detail: impl Into<Cow<'static, str>>) -> Self {
        let mut problem = Problem::new(status, detail);
        problem.field = Some(Cow::Borrowed("body"));
        problem
    }

    /// The field at fault, for a validation error.
    #[cfg(feature = "dashboard")]
    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What went wrong, for a person.
    #[cfg(feature = "dashboard")]
    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// The HTTP status.
    #[cfg(feature = "dashboard")]
    pub(crate) fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 404.
    pub(crate) fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// 401, the same whatever was wrong with the credentials.
    pub(crate) fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "Send a valid admin API token: `Authorization: Bearer <token>`.",
        )
    }

    /// 405, with the methods `allow`ed.
    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        let mut problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("This resource answers {allow}."),
        );
        problem.allow = Some(allow);
        problem
    }

    /// 503 for a failed store: `error` is logged, never sent.
    pub(crate) fn unavailable(what: &'static str, error: &dyn fmt::Display) -> Self {
        tracing::error!(target: "actix_bouncer", %error, "admin API: {what} failed");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "A store of the bouncer is unavailable; try again later.",
        )
    }
}

/// `name` cut to [`MAX_FIELD`] bytes on a character boundary.
fn cut(name: Cow<'static, str>) -> Cow<'static, str> {
    if name.len() <= MAX_FIELD {
        return name;
    }
    let mut end = MAX_FIELD;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(name[..end].to_owned())
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="actix-bouncer""#),
            ));
        }
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        // A struct of strings and numbers always serializes.
        res.body(serde_json::to_string(self).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_field_name_is_cut_on_a_char_boundary() {
        let problem = Problem::invalid("é".repeat(40), "unknown field");
        let field = problem.field.unwrap();
        assert_eq!(field.len(), 64);
        assert!(Problem::invalid("target", "x").field.unwrap() == "target");
    }

    #[test]
    fn the_body_is_problem_json() {
        let res = Problem::invalid("limit", "1 to 1000").error_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
        let res = Problem::unauthorized().error_response();
        assert_eq!(
            res.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="actix-bouncer""#
        );
        let res = Problem::method_not_allowed("GET, POST").error_response();
        assert_eq!(res.headers().get(header::ALLOW).unwrap(), "GET, POST");
    }
}
