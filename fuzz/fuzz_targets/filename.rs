//! Filename parsing: a parsed name is non-empty, at most 255 characters, has no
//! path separator, control or invisible formatting character, does not start
//! with a dot or space, and parses again to itself.
#![no_main]

use chat_media::filename::{Filename, MAX_FILENAME_CHARS};
use libfuzzer_sys::fuzz_target;

fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(name)) = Filename::parse(raw) {
        let s = name.as_str();
        assert!(!s.is_empty());
        assert!(s.chars().count() <= MAX_FILENAME_CHARS);
        assert!(!s.contains(['/', '\\', '"']));
        assert!(!s.chars().any(|c| c.is_control() || invisible(c)));
        assert!(!s.starts_with(['.', ' ']));
        assert_eq!(Filename::parse(s), Ok(Some(name.clone())), "not idempotent");
        let _ = name.extension();
    }
});
