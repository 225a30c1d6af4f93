//! A user identity: the name a user is known by in a service and in its tokens.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits;

pub const MAX_IDENTITY_LEN: usize = limits::IDENTITY.chars;

/// A non-empty identity with no control characters, of at most 256 characters
/// and 768 bytes ([`limits::IDENTITY`]: it is part of DynamoDB keys).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(String);

impl Identity {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("identity must not be empty".into());
        }
        limits::IDENTITY
            .check(s)
            .map_err(|e| format!("identity {e}"))?;
        if s.chars().any(char::is_control) {
            return Err("identity must not contain control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The author of everything an admin does without naming an identity.
    pub fn system() -> Self {
        Self("system".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_refuses_the_rest() {
        assert!(Identity::parse("alice@example.com").is_ok());
        assert!(Identity::parse("Zoë").is_ok());
        assert!(Identity::parse("").is_err());
        assert!(Identity::parse("   ").is_err());
        assert!(Identity::parse("a\nb").is_err());
        assert!(Identity::parse(&"x".repeat(257)).is_err());
        assert!(Identity::parse(&"x".repeat(256)).is_ok());
        assert!(Identity::parse(&"€".repeat(256)).is_ok());
        let e = Identity::parse(&"😀".repeat(193)).unwrap_err();
        assert!(e.contains("768 bytes"), "{e}");
    }
}
