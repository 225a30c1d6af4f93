//! Page tokens: any `PageToken` decodes to this list's own cursor or is
//! refused (`InvalidPageToken`), never a panic.
#![no_main]

use chat_media::store::decode_page_token;
use libfuzzer_sys::fuzz_target;

const CHANNEL: &str = "CH00000000000000000000000000000001";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    // A channel's members (table, sort-key prefix) and a channel's messages (GSI1).
    if let Ok(key) = decode_page_token(token, false, CHANNEL, "MEMBER#") {
        assert_eq!(key.len(), 2);
    }
    let _ = decode_page_token(
        token,
        true,
        "CH00000000000000000000000000000001#MESSAGES",
        "MESSAGE#",
    );
    let _ = decode_page_token(token, false, CHANNEL, "");
});
