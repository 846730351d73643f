//! What the API said about an address, and how it is read out of the API's JSON answer.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{FieldMap, ReputationError};

/// What the API said about one address.
///
/// Missing (or `null`) fields are `None`/`false`. A `risk_score` outside 0..=100 is clamped
/// and a fractional one rounded; a numeric string is accepted too. The flags accept `true`,
/// a non-zero number, or the strings `"true"`, `"yes"`, `"1"`. `asn` may arrive as a number
/// or a string (`13335`, `"13335"`, `"AS13335"`) and is normalised to `"AS13335"`; a string
/// that is not a bare number keeps its text.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct IpReport {
    /// The risk score, 0 (harmless) to 100, when the API gave one.
    pub risk_score: Option<u8>,
    /// The address is a VPN exit.
    pub is_vpn: bool,
    /// The address is an open or commercial proxy.
    pub is_proxy: bool,
    /// The address is a Tor exit node.
    pub is_tor: bool,
    /// The address belongs to a hosting provider.
    pub is_datacenter: bool,
    /// The ISO 3166 country code, as the API spelled it.
    pub country_code: Option<String>,
    /// The autonomous system, as `"AS<number>"` when the API gave a number. Shared, since
    /// every request from the address names it as the verdict's provider.
    pub asn: Option<Arc<str>>,
    /// The network operator's name (shared, like `asn`).
    pub isp: Option<Arc<str>>,
}

/// Reads a report out of the API's answer.
pub(super) fn parse_report(body: &[u8], fields: &FieldMap) -> Result<IpReport, ReputationError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ReputationError::Malformed)?;
    let object = value.as_object().ok_or(ReputationError::Malformed)?;
    let get = |name: &str| field(object, name);

    // An object without any of the fields is an error message or a wrong field map, not a
    // clean bill of health: do not cache it as one.
    if fields.named().iter().all(|(_, name)| get(name).is_none()) {
        return Err(ReputationError::Malformed);
    }

    Ok(IpReport {
        risk_score: get(&fields.risk_score).and_then(score),
        is_vpn: get(&fields.is_vpn).is_some_and(flag),
        is_proxy: get(&fields.is_proxy).is_some_and(flag),
        is_tor: get(&fields.is_tor).is_some_and(flag),
        is_datacenter: get(&fields.is_datacenter).is_some_and(flag),
        country_code: get(&fields.country_code).and_then(text),
        asn: get(&fields.asn).and_then(asn).map(Arc::from),
        isp: get(&fields.isp).and_then(text).map(Arc::from),
    })
}

/// The value of `name`: a top-level key, else a dotted path into nested objects. `null`
/// counts as missing.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let value = match object.get(name) {
        Some(value) => value,
        None if name.contains('.') => {
            let mut parts = name.split('.');
            let first = object.get(parts.next()?)?;
            parts.try_fold(first, |value, part| value.as_object()?.get(part))?
        }
        None => return None,
    };
    (!value.is_null()).then_some(value)
}

fn score(value: &Value) -> Option<u8> {
    let number = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !number.is_finite() {
        return None;
    }
    // In 0..=100 after the clamp, so the cast is exact.
    Some(number.round().clamp(0.0, 100.0) as u8)
}

fn flag(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => {
            let text = text.trim();
            ["true", "yes", "1"]
                .iter()
                .any(|yes| text.eq_ignore_ascii_case(yes))
        }
        _ => false,
    }
}

fn text(value: &Value) -> Option<String> {
    let text = value.as_str()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn asn(value: &Value) -> Option<String> {
    match value {
        Value::Number(number) => number.as_u64().map(|n| format!("AS{n}")),
        Value::String(text) => {
            let text = text.trim();
            let digits = match text.get(..2) {
                Some(prefix) if prefix.eq_ignore_ascii_case("as") => &text[2..],
                _ => text,
            };
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                Some(format!("AS{digits}"))
            } else {
                (!text.is_empty()).then(|| text.to_owned())
            }
        }
        _ => None,
    }
}
