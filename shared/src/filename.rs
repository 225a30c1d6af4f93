//! The name of an uploaded file, parsed once: the name the policy checks is the
//! name that is stored and the name a download is offered under.
//!
//! Uploaders' names are untrusted. Parsing keeps the last path segment, drops
//! invisible formatting characters (zero-width and bidirectional controls, which
//! can disguise `invoice\u{202E}fdp.exe` as a PDF), turns `"` into `'`, trims
//! spaces and leading dots (no hidden files), and refuses control characters
//! and names longer than [`MAX_FILENAME_CHARS`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest filename, in characters.
pub const MAX_FILENAME_CHARS: usize = 255;

/// Why a filename is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilenameError {
    #[error("must not contain control characters")]
    Control,
    #[error("must be at most {MAX_FILENAME_CHARS} characters")]
    TooLong,
}

/// A clean, non-empty filename.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Filename(String);

/// Invisible characters that can disguise a name.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

impl Filename {
    /// `Ok(None)` when nothing usable is left (`"dir/"`, `"  "`, `".."`).
    pub fn parse(raw: &str) -> Result<Option<Self>, FilenameError> {
        let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        if base.chars().any(char::is_control) {
            return Err(FilenameError::Control);
        }
        let cleaned: String = base
            .chars()
            .filter(|c| !is_format_char(*c))
            .map(|c| if c == '"' { '\'' } else { c })
            .collect();
        let name = cleaned.trim().trim_start_matches(['.', ' ']).trim_end();
        if name.chars().count() > MAX_FILENAME_CHARS {
            return Err(FilenameError::TooLong);
        }
        Ok((!name.is_empty()).then(|| Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension a system would act on: after the last dot, lower case,
    /// ignoring trailing dots and spaces (Windows drops them: `x.exe.` runs as
    /// `x.exe`).
    pub fn extension(&self) -> Option<String> {
        let name = self.0.trim_end_matches(['.', ' ']);
        let (_, ext) = name.rsplit_once('.')?;
        (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
    }
}

impl fmt::Display for Filename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Filename {
    type Error = String;

    /// Stored names were parsed on the way in; one that no longer parses is corrupt.
    fn try_from(raw: String) -> Result<Self, String> {
        match Filename::parse(&raw) {
            Ok(Some(name)) => Ok(name),
            Ok(None) => Err("empty filename".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl From<Filename> for String {
    fn from(name: Filename) -> Self {
        name.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(raw: &str) -> Option<String> {
        Filename::parse(raw).unwrap().map(String::from)
    }

    #[test]
    fn paths_and_hidden_names_are_stripped() {
        assert_eq!(parsed("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(parsed("C:\\Users\\me\\cat.jpg").as_deref(), Some("cat.jpg"));
        assert_eq!(parsed(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(parsed("dir/"), None);
        assert_eq!(parsed("  "), None);
        assert_eq!(parsed(".."), None);
        assert_eq!(parsed("€ rates.txt").as_deref(), Some("€ rates.txt"));
    }

    #[test]
    fn invisible_characters_cannot_disguise_a_name() {
        assert_eq!(
            parsed("invoice\u{202E}fdp.exe").as_deref(),
            Some("invoicefdp.exe")
        );
        let name = Filename::parse("payload.bat\u{200B}").unwrap().unwrap();
        assert_eq!(name.extension().as_deref(), Some("bat"));
    }

    #[test]
    fn control_characters_and_long_names_are_refused() {
        assert_eq!(Filename::parse("a\nb.png"), Err(FilenameError::Control));
        assert_eq!(Filename::parse(" \u{7} "), Err(FilenameError::Control));
        assert_eq!(
            Filename::parse(&"x".repeat(256)),
            Err(FilenameError::TooLong)
        );
        assert!(Filename::parse(&"x".repeat(255)).unwrap().is_some());
    }

    #[test]
    fn extensions_are_what_a_system_would_run() {
        let ext = |n: &str| Filename::parse(n).unwrap().unwrap().extension();
        assert_eq!(ext("report.PDF").as_deref(), Some("pdf"));
        assert_eq!(ext("setup.exe. . ").as_deref(), Some("exe"));
        assert_eq!(ext("archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(ext("README"), None);
    }

    #[test]
    fn stored_names_round_trip() {
        let name = Filename::parse("cat.png").unwrap().unwrap();
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"cat.png\"");
        assert_eq!(serde_json::from_str::<Filename>(&json).unwrap(), name);
        assert!(serde_json::from_str::<Filename>("\"a\\u0007b\"").is_err());
    }
}
