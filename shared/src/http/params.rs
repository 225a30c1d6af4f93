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
    if raw.len() > MAX_ATTRIBUTES_BYTES {
        return Err(ApiError::invalid("Attributes", "must be at most 16 KiB"));
    }
    serde_json::from_str::<serde_json::Value>(raw)
        .map_err(|e| ApiError::invalid("Attributes", format!("must be valid JSON ({e})")))?;
    Ok(raw.to_owned())
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
