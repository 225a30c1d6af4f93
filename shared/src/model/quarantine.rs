//! Takedown by hash: an entry of a service's deny-list of SHA-256 digests. Media
//! whose bytes hash to a listed digest are refused at finalize, whoever uploads them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{iso, ViewCtx};
use crate::sid::{MediaSid, ServiceSid};

/// A SHA-256 digest as the API shows it: 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a SHA-256 digest: 64 hexadecimal digits")]
pub struct Sha256Error;

impl Sha256 {
    /// Accepts upper or lower case; keeps the lowercase form (the one media show).
    pub fn parse(value: &str) -> Result<Self, Sha256Error> {
        if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(Sha256Error)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256 {
    type Error = Sha256Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Sha256> for String {
    fn from(value: Sha256) -> Self {
        value.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One deny-listed digest of a service, with the media whose quarantine listed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedHash {
    pub sha256: Sha256,
    pub service_sid: ServiceSid,
    pub media_sid: MediaSid,
    /// The admin's `Reason`, shown to whoever uploads the same bytes again.
    pub reason: String,
    pub date_created: DateTime<Utc>,
}

impl QuarantinedHash {
    pub fn path(&self) -> String {
        format!(
            "/v1/Services/{}/QuarantinedHashes/{}",
            self.service_sid, self.sha256
        )
    }

    pub fn to_json(&self, ctx: ViewCtx<'_>) -> Value {
        json!({
            "sha256": self.sha256,
            "account_sid": ctx.account_sid,
            "service_sid": self.service_sid,
            "media_sid": self.media_sid,
            "reason": self.reason,
            "date_created": iso(&self.date_created),
            "url": ctx.url(&self.path()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_64_hex_digits_kept_in_lowercase() {
        let upper = "AB".repeat(32);
        assert_eq!(Sha256::parse(&upper).unwrap().as_str(), "ab".repeat(32));
        for bad in ["", "ab", &"g".repeat(64), &"a".repeat(63), &"a".repeat(65)] {
            assert_eq!(Sha256::parse(bad), Err(Sha256Error), "{bad}");
        }
        // A non-ASCII string of 64 bytes is not a digest either.
        assert!(Sha256::parse(&"é".repeat(32)).is_err());
    }
}
