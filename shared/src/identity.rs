//! A user identity: the name a user is known by in a service and in its tokens.
//!
//! One name is reserved: [`SYSTEM`], the author recorded for what an admin uploads
//! or sends without naming an identity. No token, user, member or `From` may carry
//! it (nor a case variant or look-alike of it), so an author of `system` always
//! means an admin and no user can act as its owner. Records that already say
//! `system` still read ([`Identity::reference`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::limits;

pub const MAX_IDENTITY_LEN: usize = limits::IDENTITY.chars;

/// The author of everything an admin does without naming an identity; reserved.
pub const SYSTEM: &str = "system";

/// A non-empty identity with no control characters, of at most 256 characters
/// and 768 bytes ([`limits::IDENTITY`]: it is part of DynamoDB keys); never
/// [`SYSTEM`] or a look-alike of it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(String);

impl Identity {
    /// An identity a caller brings (a token's grant, a new user or member, `From`,
    /// `CreatedBy`): as [`Identity::reference`], and never the reserved [`SYSTEM`]
    /// or a look-alike of it.
    pub fn parse(s: &str) -> Result<Self, String> {
        let identity = Self::reference(s)?;
        if is_reserved(s) {
            return Err(format!(
                "'{SYSTEM}' (in any case or look-alike spelling) is reserved for admin authorship"
            ));
        }
        Ok(identity)
    }

    /// An identity that names something stored (a record read back, a lookup by
    /// identity): the reserved name is accepted, as records carry it.
    pub fn reference(s: &str) -> Result<Self, String> {
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
        Self(SYSTEM.into())
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
        Self::reference(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether `s` reads as [`SYSTEM`]: compared case-insensitively after dropping
/// what does not show (whitespace, Unicode format characters such as zero-width
/// spaces and bidi controls, combining marks) and folding what looks the same
/// (fullwidth forms, small capitals, Cyrillic and Greek letters shaped like
/// s, y, t, e, m).
fn is_reserved(s: &str) -> bool {
    let skeleton: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && !invisible(*c))
        .map(fold)
        .flat_map(char::to_lowercase)
        .collect();
    skeleton == SYSTEM
}

/// Characters that render as nothing, or only as a mark on the one before.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// A character shaped like an ASCII letter of `system`, as that letter.
fn fold(c: char) -> char {
    match c {
        // Fullwidth ASCII.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        'ѕ' | 'Ѕ' | 'ſ' | 'ꜱ' => 's',
        'у' | 'У' | 'ү' | 'Ү' | 'ʏ' | 'Υ' => 'y',
        'т' | 'Т' | 'Τ' | 'ᴛ' => 't',
        'е' | 'Е' | 'Ε' | 'ᴇ' => 'e',
        'м' | 'М' | 'Μ' | 'ᴍ' => 'm',
        c => c,
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

    #[test]
    fn system_and_its_look_alikes_are_reserved() {
        for name in [
            "system",
            "SYSTEM",
            "System",
            " system ",
            "sys tem",
            "sys\u{200B}tem",
            "\u{202E}system",
            "system\u{FEFF}",
            "ｓｙｓｔｅｍ",
            "ѕуѕтем",
            "sYsTeM",
            "ꜱʏꜱᴛᴇᴍ",
            "s\u{0301}ystem",
        ] {
            let e = Identity::parse(name).unwrap_err();
            assert!(e.contains("reserved"), "{name:?}: {e}");
        }
        for name in ["systems", "system1", "my-system", "sys", "Zoë", "alice"] {
            assert!(Identity::parse(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn stored_records_that_say_system_still_read() {
        let read: Identity = serde_json::from_str("\"system\"").unwrap();
        assert_eq!(read, Identity::system());
        assert_eq!(Identity::reference("system").unwrap(), Identity::system());
        assert_eq!(
            serde_json::to_string(&Identity::system()).unwrap(),
            "\"system\""
        );
    }
}
