//! Access tokens: any string is verified or refused without a panic, and a
//! valid token changed in one byte is refused. The first three input bytes
//! choose the byte to change in a freshly minted token and its new value.
#![no_main]

use chat_media::sid::{AccountSid, ApiKeySid, ServiceSid};
use chat_media::{Credentials, Identity};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000;

fn credentials() -> Credentials {
    Credentials {
        account_sid: AccountSid::parse("AC00000000000000000000000000000001").unwrap(),
        auth_token: "local-auth-token-0001".into(),
        api_key_sid: ApiKeySid::parse("SK00000000000000000000000000000001").unwrap(),
        api_key_secret: "local-api-key-secret-0001".into(),
        clock_skew_secs: 60,
    }
}

fuzz_target!(|data: &[u8]| {
    let creds = credentials();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = creds.verify_token(s, NOW);
    }
    if let [hi, lo, value, ..] = *data {
        let service = ServiceSid::parse("IS00000000000000000000000000000001").unwrap();
        let identity = Identity::parse("alice").unwrap();
        let token = creds.mint_token(&service, &identity, NOW, 3600);
        let mut bytes = token.into_bytes();
        let at = usize::from(u16::from_be_bytes([hi, lo])) % bytes.len();
        if bytes[at] != value {
            bytes[at] = value;
            if let Ok(changed) = String::from_utf8(bytes) {
                assert!(creds.verify_token(&changed, NOW).is_err(), "{changed}");
            }
        }
    }
});
