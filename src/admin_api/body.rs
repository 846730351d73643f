//! Reading what a client sends: a JSON object body (bounded, JSON media type, no duplicate or
//! unknown member) and query parameters (no duplicate or unknown name), so that every bad
//! input is answered with a 4xx naming what is wrong.

use std::fmt;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::problem::Problem;
use super::MAX_BODY;

/// The members of a JSON object, in order, duplicates kept (serde_json's map would keep the
/// last one silently).
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> Visitor<'de> for Members {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Fields(members))
            }
        }

        deserializer.deserialize_map(Members)
    }
}

impl Fields {
    /// The fields of a form: every value a string, as a JSON body would give it.
    #[cfg(feature = "dashboard")]
    pub(crate) fn from_form(pairs: Vec<(String, String)>) -> Self {
        Fields(
            pairs
                .into_iter()
                .map(|(n, v)| (n, Value::String(v)))
                .collect(),
        )
    }

    /// Refuses a member not in `known`, or one given twice, naming it.
    pub(crate) fn check(&self, known: &[&str]) -> Result<(), Problem> {
        check_names(self.0.iter().map(|(name, _)| name.as_str()), known)
    }

    /// The value of `name`; `None` when absent or `null`.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        match self.0.swap_remove(at).1 {
            Value::Null => None,
            value => Some(value),
        }
    }
}

/// Refuses a name not in `known`, or one given twice, naming it.
pub(crate) fn check_names<'a>(
    names: impl Iterator<Item = &'a str> + Clone,
    known: &[&str],
) -> Result<(), Problem> {
    for (i, name) in names.clone().enumerate() {
        if !known.contains(&name) {
            return Err(Problem::invalid(
                name.to_owned(),
                format!("unknown field; expected one of: {}", known.join(", ")),
            ));
        }
        if names.clone().take(i).any(|n| n == name) {
            return Err(Problem::invalid(name.to_owned(), "given more than once"));
        }
    }
    Ok(())
}

/// The request's body as a JSON object. An empty body is an empty object when `empty_ok`.
pub(crate) async fn object(
    req: &HttpRequest,
    payload: web::Payload,
    empty_ok: bool,
) -> Result<Fields, Problem> {
    let too_large = || {
        Problem::body(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The body may hold at most {MAX_BODY} bytes."),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let bytes = payload
        .to_bytes_limited(MAX_BODY)
        .await
        .map_err(|_| too_large())?
        .map_err(|_| Problem::body(StatusCode::BAD_REQUEST, "The body could not be read."))?;
    if bytes.is_empty() {
        return if empty_ok {
            Ok(Fields::default())
        } else {
            Err(Problem::body(
                StatusCode::BAD_REQUEST,
                "Send a JSON object as the body.",
            ))
        };
    }
    let json = matches!(
        req.mime_type(),
        Ok(Some(mime)) if mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
    );
    if !json {
        return Err(Problem::body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the body as `Content-Type: application/json`.",
        ));
    }
    serde_json::from_slice::<Fields>(&bytes).map_err(|e| {
        // serde's messages may quote the input: say where, not what.
        let detail = if e.is_data() {
            "The body must be a JSON object.".to_owned()
        } else {
            format!(
                "The body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            )
        };
        Problem::body(StatusCode::BAD_REQUEST, detail)
    })
}

/// The request's query parameters, percent-decoded, in order.
pub(crate) fn query(req: &HttpRequest) -> Result<Vec<(String, String)>, Problem> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|_| Problem::invalid("query", "The query string could not be decoded."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_duplicates() {
        let fields: Fields = serde_json::from_str(r#"{"a":1,"b":null,"a":2}"#).unwrap();
        let err = fields.check(&["a", "b"]).unwrap_err();
        assert_eq!(err.to_string(), "given more than once");
        let mut fields: Fields = serde_json::from_str(r#"{"a":1,"b":null}"#).unwrap();
        assert!(fields.check(&["a", "b"]).is_ok());
        assert!(fields.check(&["a"]).is_err());
        assert_eq!(fields.take("b"), None);
        assert_eq!(fields.take("a"), Some(Value::from(1)));
        assert!(serde_json::from_str::<Fields>("[1]").unwrap_err().is_data());
    }
}
