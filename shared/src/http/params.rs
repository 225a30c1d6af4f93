//! Free-text form parameters shared by every function that accepts them.

use super::error::ApiError;

/// Largest `Attributes` document, as Twilio (16 KiB).
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

/// A free-text parameter: at most `max` characters, no control characters.
pub fn text_param(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            name,
            format!("must be at most {max} characters"),
        ));
    }
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
        assert_eq!(text_param("FriendlyName", "ünïcode", 7).unwrap(), "ünïcode");
        let e = text_param("FriendlyName", "ünïcode", 6).unwrap_err();
        assert!(e.message.contains("FriendlyName") && e.message.contains('6'));
        assert!(text_param("FriendlyName", "a\nb\tc", 10).is_ok());
        let e = text_param("FriendlyName", "a\u{0}b", 10).unwrap_err();
        assert!(e.message.contains("control"));
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
