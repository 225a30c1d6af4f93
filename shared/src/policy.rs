//! The content policy: what a service accepts as media. Declared facts (type,
//! filename, size) are checked before any byte is stored; the first bytes are then
//! sniffed with the `infer` crate's signatures so the bytes must agree with the
//! declared type. Every refusal names its reason and maps to 400, 413 or 415.
//!
//! Rules, in order:
//! 1. A media type `type/subtype` is required (parameters such as `charset` are dropped).
//! 2. It must match the service's `allowed_types` (`image/*` or exact; empty = all).
//! 3. The filename's extension must not be in `blocked_extensions`.
//! 4. The size must be at most the service's `size_limit_mb` MiB (150 MiB at most).
//! 5. Executables and scripts (PE, ELF, Mach-O, Java class, DEX, WebAssembly, `#!`)
//!    are refused unless declared as exactly what they are AND the service names
//!    that type in `allowed_types` (an explicit opt-in; patterns do not count).
//! 6. A declared type whose signature is known (PNG, JPEG, MP4, PDF, ZIP, ...) must
//!    have that signature, or one of a compatible type (JPEG/JPG, MP4/MOV/M4A, ...).
//! 7. A declared image, audio or video type with no known signature must not carry
//!    bytes recognised as another kind of content (HTML, another family, ...).

use std::fmt;

use crate::filename::Filename;
use crate::model::MediaSettings;

/// How many leading bytes the sniffer looks at (enough for TAR, Matroska, OOXML).
pub const SNIFF_BYTES: usize = 8 * 1024;

pub use crate::model::Refusal;

/// A declared media type: `type/subtype`, lower case, without parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType(String);

impl MediaType {
    /// Parses a `Content-Type` value; parameters (`; charset=...`) are dropped.
    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let essence = raw.split(';').next().unwrap_or_default().trim();
        if essence.is_empty() {
            return Err(Refusal::MissingType);
        }
        let t = essence.to_ascii_lowercase();
        let token = |p: &str| {
            !p.is_empty()
                && p.len() <= 127
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
        };
        match t.split_once('/') {
            Some((ty, sub)) if token(ty) && token(sub) => Ok(Self(t)),
            _ => Err(Refusal::InvalidType(essence.chars().take(100).collect())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The top-level type (`image` of `image/png`).
    pub fn top(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// The name this type is known by among its aliases (`image/jpg` → `image/jpeg`).
    fn canonical(&self) -> &str {
        canonical(&self.0)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The service's size limit in bytes (`size_limit_mb` MiB: 150 → 157286400).
pub fn size_limit(settings: &MediaSettings) -> u64 {
    u64::from(settings.size_limit_mb) * 1024 * 1024
}

/// Size against the service limit; zero is an empty upload.
pub fn check_size(settings: &MediaSettings, size: u64) -> Result<(), Refusal> {
    let limit = size_limit(settings);
    if size == 0 {
        Err(Refusal::Empty)
    } else if size > limit {
        Err(Refusal::TooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// Rules 2 and 3: the declared type and filename, before any byte is read.
pub fn check_declared(
    settings: &MediaSettings,
    content_type: &MediaType,
    filename: Option<&Filename>,
) -> Result<(), Refusal> {
    if !type_allowed(settings, content_type) {
        return Err(Refusal::TypeNotAllowed(content_type.to_string()));
    }
    if let Some(ext) = filename.and_then(Filename::extension) {
        if settings
            .blocked_extensions
            .iter()
            .any(|b| b.eq_ignore_ascii_case(&ext))
        {
            return Err(Refusal::ExtensionBlocked(ext));
        }
    }
    Ok(())
}

fn type_allowed(settings: &MediaSettings, t: &MediaType) -> bool {
    settings.allowed_types.is_empty()
        || settings
            .allowed_types
            .iter()
            .any(|p| match p.strip_suffix("/*") {
                Some(top) => t.top() == top,
                None => canonical(p) == t.canonical(),
            })
}

/// Rules 5 to 7: the first bytes (up to [`SNIFF_BYTES`]) against the declared type.
pub fn check_content(
    settings: &MediaSettings,
    content_type: &MediaType,
    head: &[u8],
) -> Result<(), Refusal> {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let declared = content_type.canonical();
    let refuse = |detected: Option<&str>| Refusal::Contradicts {
        declared: content_type.to_string(),
        detected: detected.map(str::to_owned),
    };

    if let Some(kind) = executable_kind(head) {
        let honest = executable_aliases(kind).contains(&declared);
        let opted_in = settings
            .allowed_types
            .iter()
            .any(|p| executable_aliases(kind).contains(&canonical(p)));
        if honest && opted_in {
            return Ok(());
        }
        return Err(Refusal::Executable {
            declared: content_type.to_string(),
            detected: kind.to_owned(),
        });
    }

    let group = compatible_group(declared);
    let known: Vec<&str> = group
        .iter()
        .copied()
        .filter(|m| !GENERIC.contains(m) && infer::is_mime_supported(m))
        .collect();
    if !known.is_empty() {
        return if known.iter().any(|m| infer::is_mime(head, m)) {
            Ok(())
        } else {
            Err(refuse(describe(head).as_deref()))
        };
    }

    // A media type without a known signature: the bytes must not be something else.
    let top = content_type.top();
    if matches!(top, "image" | "audio" | "video") {
        let textual_ok = declared == "image/svg+xml";
        if infer::text::is_html(head) || infer::text::is_xml(head) {
            return if textual_ok {
                Ok(())
            } else {
                Err(refuse(describe(head).as_deref()))
            };
        }
        if let Some(t) = infer::get(head) {
            if t.mime_type().split('/').next() != Some(top) || textual_ok {
                return Err(refuse(Some(t.mime_type())));
            }
        }
    }
    Ok(())
}

/// What the bytes look like, for refusal messages.
fn describe(head: &[u8]) -> Option<String> {
    if infer::text::is_html(head) {
        return Some("text/html".into());
    }
    infer::get(head).map(|t| t.mime_type().to_owned())
}

/// The executable or script kind of the bytes, named by its canonical media type.
fn executable_kind(head: &[u8]) -> Option<&'static str> {
    use infer::{app, text};
    if app::is_exe(head) {
        Some("application/vnd.microsoft.portable-executable")
    } else if app::is_elf(head) {
        Some("application/x-executable")
    } else if app::is_mach(head) {
        Some("application/x-mach-binary")
    } else if app::is_java(head) {
        Some("application/java")
    } else if app::is_dex(head) {
        Some("application/vnd.android.dex")
    } else if app::is_dey(head) {
        Some("application/vnd.android.dey")
    } else if app::is_wasm(head) {
        Some("application/wasm")
    } else if text::is_shellscript(head) {
        Some("text/x-shellscript")
    } else {
        None
    }
}

/// The canonical names under which an executable kind may honestly be declared.
fn executable_aliases(kind: &str) -> &'static [&'static str] {
    match kind {
        "application/vnd.microsoft.portable-executable" => &[
            "application/vnd.microsoft.portable-executable",
            "application/x-msdownload",
            "application/x-dosexec",
            "application/x-msdos-program",
        ],
        "application/x-executable" => &[
            "application/x-executable",
            "application/x-elf",
            "application/x-sharedlib",
            "application/x-pie-executable",
        ],
        "application/x-mach-binary" => &["application/x-mach-binary"],
        "application/java" => &["application/java", "application/java-vm"],
        "application/vnd.android.dex" => &["application/vnd.android.dex"],
        "application/vnd.android.dey" => &["application/vnd.android.dey"],
        "application/wasm" => &["application/wasm"],
        "text/x-shellscript" => &["text/x-shellscript", "application/x-sh"],
        _ => &[],
    }
}

/// Types that say nothing about the bytes (infer also files EOT fonts under the first).
const GENERIC: &[&str] = &["application/octet-stream", "binary/octet-stream"];

/// Names of one type (first is canonical). Not a signature table: only which names
/// mean the same bytes.
const ALIASES: &[&[&str]] = &[
    &["image/jpeg", "image/jpg", "image/pjpeg"],
    &["image/vnd.microsoft.icon", "image/x-icon", "image/ico"],
    &["image/bmp", "image/x-bmp", "image/x-ms-bmp"],
    &["image/tiff", "image/tif"],
    &[
        "image/heif",
        "image/heic",
        "image/heif-sequence",
        "image/heic-sequence",
    ],
    &[
        "audio/mpeg",
        "audio/mp3",
        "audio/mpeg3",
        "audio/x-mpeg-3",
        "audio/x-mp3",
    ],
    &["audio/m4a", "audio/x-m4a", "audio/mp4"],
    &["audio/aac", "audio/x-aac", "audio/aacp"],
    &["audio/x-wav", "audio/wav", "audio/wave", "audio/vnd.wave"],
    &["audio/x-flac", "audio/flac"],
    &["audio/x-aiff", "audio/aiff"],
    &["audio/midi", "audio/x-midi", "audio/mid"],
    &["audio/ogg", "audio/vorbis", "application/ogg"],
    &["video/x-msvideo", "video/avi", "video/msvideo"],
    &["video/mpeg", "video/mpg"],
    &["application/pdf", "application/x-pdf"],
    &[
        "application/zip",
        "application/x-zip-compressed",
        "application/x-zip",
    ],
    &["application/gzip", "application/x-gzip"],
    &[
        "application/vnd.rar",
        "application/x-rar-compressed",
        "application/x-rar",
    ],
    &["application/x-executable", "application/x-elf"],
    &[
        "application/vnd.microsoft.portable-executable",
        "application/x-msdownload",
    ],
    &[
        "text/x-shellscript",
        "application/x-shellscript",
        "text/x-sh",
    ],
];

fn canonical(t: &str) -> &str {
    ALIASES
        .iter()
        .find(|names| names.contains(&t))
        .map(|names| names[0])
        .unwrap_or(t)
}

/// Types sharing one container, whose bytes satisfy any of them (canonical names).
const CONTAINERS: &[&[&str]] = &[
    // ISO base media: MP4, QuickTime, M4A/M4V, 3GP.
    &[
        "video/mp4",
        "video/x-m4v",
        "video/quicktime",
        "audio/m4a",
        "video/3gpp",
        "video/3gpp2",
        "audio/3gpp",
    ],
    &["image/heif", "image/avif"],
    &[
        "video/webm",
        "video/x-matroska",
        "audio/webm",
        "audio/x-matroska",
    ],
    &["audio/ogg", "audio/opus", "video/ogg"],
    &["video/x-ms-wmv", "video/x-ms-asf", "audio/x-ms-wma"],
    &["image/tiff", "image/x-canon-cr2"],
    // ZIP containers: office documents, OpenDocument, EPUB.
    &[
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/epub+zip",
    ],
    // OLE compound files: legacy Office documents.
    &[
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/x-ole-storage",
    ],
];

/// The declared type and every type whose bytes are acceptable for it.
fn compatible_group(declared: &str) -> Vec<&str> {
    match CONTAINERS.iter().find(|g| g.contains(&declared)) {
        Some(group) => group.to_vec(),
        None => vec![declared],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
    const MOV: &[u8] = b"\0\0\0\x14ftypqt  \0\0\0\0qt  \0\0\0\x08wide";
    const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x08free";

    fn exe() -> Vec<u8> {
        let mut b = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".to_vec();
        b.resize(256, 0);
        b
    }

    fn elf() -> Vec<u8> {
        let mut b = b"\x7fELF\x02\x01\x01\0".to_vec();
        b.resize(128, 0);
        b
    }

    fn t(s: &str) -> MediaType {
        MediaType::parse(s).unwrap()
    }

    fn defaults() -> MediaSettings {
        MediaSettings::default()
    }

    #[test]
    fn media_types_parse_and_normalise() {
        assert_eq!(t("Image/PNG; charset=binary").as_str(), "image/png");
        assert_eq!(MediaType::parse(""), Err(Refusal::MissingType));
        assert_eq!(MediaType::parse("  ; x=y"), Err(Refusal::MissingType));
        assert!(matches!(
            MediaType::parse("png"),
            Err(Refusal::InvalidType(_))
        ));
        assert!(matches!(
            MediaType::parse("image/"),
            Err(Refusal::InvalidType(_))
        ));
        assert!(matches!(
            MediaType::parse("image/p ng"),
            Err(Refusal::InvalidType(_))
        ));
        assert_eq!(t("image/jpg").canonical(), "image/jpeg");
    }

    fn name(raw: &str) -> Option<Filename> {
        Filename::parse(raw).unwrap()
    }

    #[test]
    fn size_limit_is_in_mebibytes_and_empty_is_refused() {
        let s = defaults();
        assert_eq!(size_limit(&s), 157_286_400);
        assert_eq!(check_size(&s, 157_286_400), Ok(()));
        assert_eq!(
            check_size(&s, 157_286_401),
            Err(Refusal::TooLarge {
                size: 157_286_401,
                limit: 157_286_400
            })
        );
        assert_eq!(check_size(&s, 0), Err(Refusal::Empty));
        let small = MediaSettings {
            size_limit_mb: 1,
            ..defaults()
        };
        assert!(check_size(&small, 1_048_577).is_err());
    }

    #[test]
    fn allow_list_patterns_and_block_list() {
        let s = MediaSettings {
            allowed_types: vec!["image/*".into(), "application/pdf".into()],
            ..defaults()
        };
        assert_eq!(
            check_declared(&s, &t("image/png"), name("a.png").as_ref()),
            Ok(())
        );
        assert_eq!(check_declared(&s, &t("application/pdf"), None), Ok(()));
        assert_eq!(
            check_declared(&s, &t("video/mp4"), None),
            Err(Refusal::TypeNotAllowed("video/mp4".into()))
        );
        // Block list applies whatever the type, to the extension a system would use.
        assert_eq!(
            check_declared(&s, &t("image/png"), name("cat.png.EXE.").as_ref()),
            Err(Refusal::ExtensionBlocked("exe".into()))
        );
        // Aliases are the same type.
        let jpeg_only = MediaSettings {
            allowed_types: vec!["image/jpeg".into()],
            ..defaults()
        };
        assert_eq!(check_declared(&jpeg_only, &t("image/jpg"), None), Ok(()));
        // Empty allow-list: everything.
        assert_eq!(
            check_declared(&defaults(), &t("x-custom/thing"), None),
            Ok(())
        );
    }

    #[test]
    fn bytes_must_carry_the_declared_signature() {
        let s = defaults();
        assert_eq!(check_content(&s, &t("image/png"), PNG), Ok(()));
        assert_eq!(check_content(&s, &t("image/jpg"), JPEG), Ok(()));
        assert_eq!(check_content(&s, &t("application/pdf"), PDF), Ok(()));
        assert_eq!(
            check_content(&s, &t("image/jpeg"), PNG),
            Err(Refusal::Contradicts {
                declared: "image/jpeg".into(),
                detected: Some("image/png".into())
            })
        );
        assert_eq!(
            check_content(&s, &t("image/png"), b"just some text, not an image"),
            Err(Refusal::Contradicts {
                declared: "image/png".into(),
                detected: None
            })
        );
        // One container, several names.
        assert_eq!(check_content(&s, &t("video/quicktime"), MOV), Ok(()));
        assert_eq!(check_content(&s, &t("audio/mp4"), MP4), Ok(()));
        assert_eq!(check_content(&s, &t("video/mp4"), MOV), Ok(()));
    }

    #[test]
    fn executables_html_and_scripts_disguised_as_images_are_refused() {
        let s = defaults();
        assert!(matches!(
            check_content(&s, &t("image/png"), &exe()),
            Err(Refusal::Executable { .. })
        ));
        assert!(matches!(
            check_content(&s, &t("image/gif"), &elf()),
            Err(Refusal::Executable { .. })
        ));
        assert!(matches!(
            check_content(&s, &t("image/jpeg"), b"#!/bin/sh\nrm -rf /\n"),
            Err(Refusal::Executable { .. })
        ));
        assert_eq!(
            check_content(
                &s,
                &t("image/png"),
                b"<html><script>alert(1)</script></html>"
            ),
            Err(Refusal::Contradicts {
                declared: "image/png".into(),
                detected: Some("text/html".into())
            })
        );
        // An image type without a known signature still refuses HTML and other families.
        assert!(check_content(&s, &t("image/x-portable-pixmap"), b"<html> <body>").is_err());
        assert!(check_content(&s, &t("image/x-portable-pixmap"), PDF).is_err());
        assert_eq!(
            check_content(&s, &t("image/x-portable-pixmap"), b"P6\n1 1\n255\n\0\0\0"),
            Ok(())
        );
        // Executables declared as generic binaries are refused too.
        assert!(check_content(&s, &t("application/octet-stream"), &exe()).is_err());
    }

    #[test]
    fn executables_need_an_honest_type_and_an_explicit_opt_in() {
        let opted_in = MediaSettings {
            allowed_types: vec!["application/x-msdownload".into()],
            blocked_extensions: vec![],
            ..defaults()
        };
        assert_eq!(
            check_content(
                &opted_in,
                &t("application/vnd.microsoft.portable-executable"),
                &exe()
            ),
            Ok(())
        );
        // Honest but not opted in (the default allow-list is "everything", not this).
        assert!(check_content(&defaults(), &t("application/x-msdownload"), &exe()).is_err());
        // Opted in but dishonest.
        assert!(check_content(&opted_in, &t("application/octet-stream"), &exe()).is_err());
        let patterns = MediaSettings {
            allowed_types: vec!["application/*".into()],
            ..defaults()
        };
        assert!(check_content(&patterns, &t("application/x-msdownload"), &exe()).is_err());
    }

    #[test]
    fn textual_and_generic_types_accept_text() {
        let s = defaults();
        assert_eq!(check_content(&s, &t("text/plain"), b"<p> hello"), Ok(()));
        assert_eq!(check_content(&s, &t("text/html"), b"<html> <body>"), Ok(()));
        assert_eq!(
            check_content(&s, &t("image/svg+xml"), b"<?xml version=\"1.0\"?><svg/>"),
            Ok(())
        );
        assert_eq!(
            check_content(&s, &t("image/svg+xml"), b"<svg xmlns=\"x\"/>"),
            Ok(())
        );
        assert!(check_content(&s, &t("image/svg+xml"), PNG).is_err());
        assert_eq!(
            check_content(&s, &t("application/octet-stream"), PNG),
            Ok(())
        );
        assert_eq!(
            check_content(&s, &t("application/json"), b"{\"a\":1}"),
            Ok(())
        );
    }
}
