//! SID parsing: never panics; what parses is canonical (prefix + 32 lower-case
//! hex digits) and parses again to itself.
#![no_main]

use chat_media::sid::{
    AccountSid, ApiKeySid, ChannelSid, MediaSid, MemberSid, MessageSid, RoleSid, ServiceSid,
    UserSid,
};
use libfuzzer_sys::fuzz_target;

macro_rules! check {
    ($s:expr, $($ty:ty),*) => {$(
        if let Ok(sid) = <$ty>::parse($s) {
            let canonical = sid.as_str();
            assert_eq!(canonical.len(), 34);
            assert!(canonical.starts_with(<$ty>::PREFIX));
            assert!(canonical[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert!(canonical.eq_ignore_ascii_case($s));
            assert_eq!(<$ty>::parse(canonical).as_ref(), Ok(&sid));
        }
    )*};
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check!(
            s, AccountSid, ApiKeySid, ChannelSid, MediaSid, MemberSid, MessageSid, RoleSid,
            ServiceSid, UserSid
        );
    }
});
