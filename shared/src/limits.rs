//! Every length limit on a caller's text, in one place, checked when the value
//! is parsed, before any I/O uses it.
//!
//! Characters are Twilio's limits. Bytes (of UTF-8) matter where a value becomes
//! part of a DynamoDB key: a sort key holds at most 1024 bytes, and a longer one
//! is a `ValidationException`, i.e. a 500 instead of the caller's 400. The
//! longest key prefix in front of a caller's value is 35 bytes (`CH…#<identity>`,
//! a 34-character SID and `#`; see `store::keys`), so 768 bytes (any 256
//! characters of the Basic Multilingual Plane, 3 bytes each at most) leave ample
//! room; `store::keys` asserts it. Values that are never part of a key are bounded
//! in characters only (their bytes follow: at most 4 per character).

/// How long a value may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub chars: usize,
    pub bytes: usize,
}

/// A user identity (in `USER#`, `MEMBER#`, `UPLOADS#` sort keys and GSI1 sort keys).
pub const IDENTITY: Limit = Limit {
    chars: 256,
    bytes: 768,
};
/// A channel's unique name (in the `CHANNELNAME#` sort key).
pub const UNIQUE_NAME: Limit = Limit {
    chars: 256,
    bytes: 768,
};
/// A service's, channel's or user's friendly name (no key).
pub const FRIENDLY_NAME: Limit = Limit::chars(256);
/// A role's friendly name (no key).
pub const ROLE_FRIENDLY_NAME: Limit = Limit::chars(64);
/// A service's `Media.CompatibilityMessage` (no key).
pub const COMPATIBILITY_MESSAGE: Limit = Limit::chars(1024);
/// An uploaded file's name (no key).
pub const FILENAME: Limit = Limit::chars(255);
/// `Attributes`, a JSON document (no key): 16 KiB, as Twilio.
pub const ATTRIBUTES: Limit = Limit {
    chars: 16 * 1024,
    bytes: 16 * 1024,
};
/// The `Reason` of a quarantine (shown to whoever uploads the same bytes again).
pub const QUARANTINE_REASON: Limit = Limit::chars(1024);
/// A push notification's `Template` or `Sound` (`Notifications.*`, no key).
pub const NOTIFICATION_TEXT: Limit = Limit::chars(1024);
/// Entries of one `POST …/MediaSet` (each is a media GET: a bounded fan-out).
pub const MEDIA_SET_ENTRIES: usize = 100;
/// The largest DynamoDB sort key, in bytes.
pub const DYNAMODB_SORT_KEY_BYTES: usize = 1024;

/// Why a value is too long; the text says what the limit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooLong {
    #[error("must be at most {0} characters")]
    Chars(usize),
    #[error("must be at most {0} bytes of UTF-8")]
    Bytes(usize),
}

impl Limit {
    /// A limit in characters only: its bytes follow (at most 4 per character).
    pub const fn chars(chars: usize) -> Self {
        Self {
            chars,
            bytes: chars * 4,
        }
    }

    /// Whether `value` is within the limit, characters and bytes.
    pub fn check(&self, value: &str) -> Result<(), TooLong> {
        if value.chars().count() > self.chars {
            return Err(TooLong::Chars(self.chars));
        }
        if value.len() > self.bytes {
            return Err(TooLong::Bytes(self.bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_and_bytes_are_both_bounded() {
        assert_eq!(IDENTITY.check(&"x".repeat(256)), Ok(()));
        assert_eq!(IDENTITY.check(&"x".repeat(257)), Err(TooLong::Chars(256)));
        // 256 three-byte characters: at both limits.
        assert_eq!(IDENTITY.check(&"€".repeat(256)), Ok(()));
        // 193 four-byte characters: few enough, but 772 bytes.
        assert_eq!(IDENTITY.check(&"😀".repeat(193)), Err(TooLong::Bytes(768)));
        assert_eq!(IDENTITY.check(&"😀".repeat(192)), Ok(()));
        assert_eq!(FRIENDLY_NAME.check(&"😀".repeat(256)), Ok(()));
        assert_eq!(
            TooLong::Bytes(768).to_string(),
            "must be at most 768 bytes of UTF-8"
        );
    }
}
