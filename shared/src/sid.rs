//! Typed Twilio SIDs: two upper-case letters and 32 hex digits.
//!
//! Each resource has its own type so a `ChannelSid` can never be passed where a
//! `MediaSid` is expected, and a string from a path or form is parsed exactly once.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a SID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a {prefix} SID ({prefix} followed by 32 hex digits)")]
pub struct SidError {
    pub prefix: &'static str,
}

fn parse_body(prefix: &'static str, s: &str) -> Result<String, SidError> {
    let ok = s.len() == 34
        && s.as_bytes()[..2] == *prefix.as_bytes()
        && s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit);
    if ok {
        Ok(format!("{prefix}{}", s[2..].to_ascii_lowercase()))
    } else {
        Err(SidError { prefix })
    }
}

fn random_body(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A new random SID.
            pub fn generate() -> Self {
                Self(random_body($prefix))
            }

            pub fn parse(s: &str) -> Result<Self, SidError> {
                parse_body($prefix, s).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = SidError;
            fn from_str(s: &str) -> Result<Self, SidError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

sid_type!(/// A Chat service (`IS…`).
    ServiceSid, "IS");
sid_type!(/// A channel (`CH…`).
    ChannelSid, "CH");
sid_type!(/// A channel membership (`MB…`).
    MemberSid, "MB");
sid_type!(/// A role (`RL…`).
    RoleSid, "RL");
sid_type!(/// A message (`IM…`).
    MessageSid, "IM");
sid_type!(/// An uploaded media object (`ME…`).
    MediaSid, "ME");
sid_type!(/// A service user (`US…`).
    UserSid, "US");
sid_type!(/// A channel-scoped webhook (`WH…`).
    WebhookSid, "WH");
sid_type!(/// The Twilio account the deployment answers as (`AC…`).
    AccountSid, "AC");
sid_type!(/// An API key, the issuer of access tokens (`SK…`).
    ApiKeySid, "SK");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sids_parse_back() {
        let sid = MediaSid::generate();
        assert_eq!(sid.as_str().len(), 34);
        assert!(sid.as_str().starts_with("ME"));
        assert_eq!(MediaSid::parse(sid.as_str()).unwrap(), sid);
        assert_ne!(MediaSid::generate(), sid);
    }

    #[test]
    fn hex_is_normalised_to_lower_case() {
        let sid = ChannelSid::parse("CH0123456789ABCDEF0123456789abcdef").unwrap();
        assert_eq!(sid.as_str(), "CH0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn rejects_wrong_prefix_length_and_digits() {
        for bad in [
            "",
            "CH",
            "ch0123456789abcdef0123456789abcdef",
            "IS0123456789abcdef0123456789abcdef",
            "CH0123456789abcdef0123456789abcde",
            "CH0123456789abcdef0123456789abcdef0",
            "CH0123456789abcdef0123456789abcdeg",
            "CHé123456789abcdef0123456789abcde",
        ] {
            assert!(ChannelSid::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let sid = RoleSid::generate();
        let json = serde_json::to_string(&sid).unwrap();
        assert_eq!(serde_json::from_str::<RoleSid>(&json).unwrap(), sid);
        assert!(serde_json::from_str::<RoleSid>("\"CH0123456789abcdef0123456789abcdef\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_hex_body_round_trips(body in "[0-9a-fA-F]{32}") {
            let sid = MediaSid::parse(&format!("ME{body}")).unwrap();
            proptest::prop_assert_eq!(sid.as_str(), format!("ME{}", body.to_ascii_lowercase()));
            proptest::prop_assert_eq!(MediaSid::parse(sid.as_str()), Ok(sid.clone()));
            proptest::prop_assert_eq!(sid.to_string().parse::<MediaSid>(), Ok(sid.clone()));
            let json = serde_json::to_string(&sid).unwrap();
            proptest::prop_assert_eq!(serde_json::from_str::<MediaSid>(&json).unwrap(), sid);
        }

        #[test]
        fn parses_exactly_the_canonical_shape(s in "(CH|ch|IS|C)?[0-9a-fA-Fg-z\\-é]{0,36}") {
            let shaped = s.len() == 34
                && s.starts_with("CH")
                && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
            proptest::prop_assert_eq!(ChannelSid::parse(&s).is_ok(), shaped, "{:?}", s);
        }

        #[test]
        fn any_single_change_to_a_valid_sid_is_refused_or_the_same_sid(
            at in 0usize..34, c in proptest::char::any()
        ) {
            let sid = ChannelSid::generate();
            let mut chars: Vec<char> = sid.as_str().chars().collect();
            chars[at] = c;
            let changed: String = chars.into_iter().collect();
            proptest::prop_assume!(changed != sid.as_str());
            match ChannelSid::parse(&changed) {
                // Only a hex digit (either case) in the body keeps it a channel SID.
                Ok(_) => proptest::prop_assert!(at >= 2 && c.is_ascii_hexdigit()),
                Err(_) => proptest::prop_assert!(at < 2 || !c.is_ascii_hexdigit()),
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in proptest::prelude::any::<String>()) {
            let _ = ServiceSid::parse(&s);
            let _ = AccountSid::parse(&s);
        }
    }
}
