//! Free-text form parameters shared by every function that accepts them.

use super::error::ApiError;
use crate::limits::{self, Limit};

/// Largest `Attributes` document, as Twilio (16 KiB).
pub const MAX_ATTRIBUTES_BYTES: usize = limits::ATTRIBUTES.bytes;

/// A free-text parameter within `limit` (characters, and bytes), no control characters.
pub fn text_param(name: &str, value: &str, limit: Limit) -> Result<String, ApiError> {
    limit.check(value).map_err(|e| ApiError::invalid(name, e))?;
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(
            name,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// `Attributes`: a JSON document of at most 16 KiB, kept as the caller sent it.
pub fn attributes_param(value: Option<&str>) -> Result<String, ApiError> {
    let Some(raw) = value else {
        return Ok("{}".into());
    };
    let code = |code, why: String| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            code,
            format!("Invalid parameter Attributes: {why}"),
        )
    };
    if raw.len() > MAX_ATTRIBUTES_BYTES {
        return Err(code(
            super::code::ATTRIBUTES_TOO_LONG,
            "must be at most 16 KiB".into(),
        ));
    }
    serde_json::from_str::<serde_json::Value>(raw).map_err(|e| {
        code(
            super::code::ATTRIBUTES_NOT_JSON,
            format!("must be valid JSON ({e})"),
        )
    })?;
    Ok(raw.to_owned())
}

/// Largest message `Body`, in bytes (Twilio's 32 KiB).
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// A message `Body`: at most 32 KiB (400 with Twilio's 50504 beyond), no control
/// characters but line breaks and tabs. Empty is allowed, as Twilio's spec says.
pub fn message_body(body: &str) -> Result<String, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            super::code::MESSAGE_BODY_TOO_LONG,
            format!(
                "The message body is {} bytes; the limit is {MAX_BODY_BYTES} bytes (32 KiB)",
                body.len()
            ),
        ));
    }
    if body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::invalid(
            "Body",
            "must not contain control characters",
        ));
    }
    Ok(body.to_owned())
}

/// An optional `Attributes` update: `None` when the parameter is absent.
pub fn attributes_update(value: Option<&str>) -> Result<Option<String>, ApiError> {
    value.map(|v| attributes_param(Some(v))).transpose()
}

/// A date parameter (`DateCreated`, `DateUpdated`, `LastConsumptionTimestamp`):
/// ISO 8601 with a zone, as Twilio's libraries send it (`2015-12-16T22:18:37Z`).
pub fn date_param(
    name: &str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|_| ApiError::invalid(name, "must be an ISO 8601 date and time"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_bounded_in_characters_and_printable() {
        let chars = Limit::chars;
        assert_eq!(
            text_param("FriendlyName", "ünïcode", chars(7)).unwrap(),
            "ünïcode"
        );
        let e = text_param("FriendlyName", "ünïcode", chars(6)).unwrap_err();
        assert!(e.message.contains("FriendlyName") && e.message.contains('6'));
        assert!(text_param("FriendlyName", "a\nb\tc", chars(10)).is_ok());
        let e = text_param("FriendlyName", "a\u{0}b", chars(10)).unwrap_err();
        assert!(e.message.contains("control"));
        let e = text_param("UniqueName", &"😀".repeat(193), limits::UNIQUE_NAME).unwrap_err();
        assert!(
            e.message.contains("UniqueName") && e.message.contains("768 bytes"),
            "{}",
            e.message
        );
    }

    #[test]
    fn dates_are_iso_8601_with_a_zone() {
        let d = date_param("DateCreated", Some("2015-12-16T22:18:37Z")).unwrap();
        assert_eq!(d.unwrap().timestamp(), 1450304317);
        assert!(date_param("DateCreated", None).unwrap().is_none());
        for bad in ["yesterday", "2015-12-16", "2015-12-16T22:18:37"] {
            let e = date_param("DateCreated", Some(bad)).unwrap_err();
            assert!(e.message.contains("DateCreated"), "{bad}");
        }
    }

    #[test]
    fn attributes_are_json_of_at_most_16_kib() {
        assert_eq!(attributes_param(None).unwrap(), "{}");
        assert_eq!(attributes_param(Some(r#"{"a":1}"#)).unwrap(), r#"{"a":1}"#);
        assert_eq!(attributes_param(Some("[1,2]")).unwrap(), "[1,2]");
        assert!(attributes_param(Some("{")).is_err());
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_ATTRIBUTES_BYTES));
        let e = attributes_param(Some(&big)).unwrap_err();
        assert!(e.message.contains("16 KiB"));
    }
}
