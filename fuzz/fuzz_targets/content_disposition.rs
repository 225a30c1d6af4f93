//! Content-Disposition filename extraction never panics, and what it gives
//! goes through `Filename::parse` as an upload's name does.
#![no_main]

use chat_media::filename::Filename;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        if let Some(name) = upload_media::content_disposition_filename(header) {
            assert!(!name.is_empty());
            let _ = Filename::parse(&name);
        }
    }
});
