//! How a download presents itself in a browser: the `Content-Disposition` and
//! `Content-Type` a presigned GET asks S3 to answer with.
//!
//! Active content (HTML, SVG, XHTML, XML, JavaScript) is always an attachment, so a
//! download URL never runs script in the bucket's origin; images, audio, video and
//! PDF open inline; everything else downloads. Filenames come from uploaders and are
//! untrusted: the header is built from a parsed [`Filename`], plain ASCII in `filename`
//! and RFC 5987 `filename*` for the rest, so no input can add or split a header.

use crate::blob::DownloadHeaders;
use crate::filename::Filename;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Inline,
    Attachment,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        }
    }
}

/// `type/subtype`, lower-cased, without parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Content a browser would execute or render as a document with script.
pub fn is_active_content(content_type: &str) -> bool {
    let e = essence(content_type);
    matches!(
        e.as_str(),
        "text/html"
            | "image/svg+xml"
            | "application/xhtml+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "text/ecmascript"
            | "application/ecmascript"
            | "text/jscript"
            | "text/x-javascript"
            | "application/x-shockwave-flash"
    ) || e.ends_with("+xml")
}

/// Inline only for passive media a browser displays itself; attachment otherwise.
pub fn disposition_for(content_type: &str) -> Disposition {
    if is_active_content(content_type) {
        return Disposition::Attachment;
    }
    let e = essence(content_type);
    let passive = e.starts_with("image/")
        || e.starts_with("audio/")
        || e.starts_with("video/")
        || e == "application/pdf";
    if passive {
        Disposition::Inline
    } else {
        Disposition::Attachment
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

/// The stored type if it is a well-formed `type/subtype` (with at most a token
/// charset); `application/octet-stream` otherwise.
pub fn safe_content_type(stored: &str) -> String {
    let mut parts = stored.split(';');
    let e = essence(stored);
    let well_formed = matches!(e.split_once('/'), Some((t, s)) if is_token(t) && is_token(s));
    if !well_formed {
        return "application/octet-stream".into();
    }
    parts.next();
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("charset") && is_token(v)).then(|| v.to_ascii_lowercase())
    });
    match charset {
        Some(c) => format!("{e}; charset={c}"),
        None => e,
    }
}

/// Printable ASCII that is safe inside a quoted-string for every browser: no quote,
/// backslash or percent (some browsers decode `%xx` in `filename`).
fn ascii_fallback(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%' | ';') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 5987 `value-chars`: UTF-8, percent-encoding all but `attr-char`.
fn rfc5987(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A conventional extension for common types, for names made up from a SID.
fn extension_for(content_type: &str) -> Option<&'static str> {
    Some(match essence(content_type).as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/heic" => "heic",
        "application/pdf" => "pdf",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "text/plain" => "txt",
        _ => return None,
    })
}

/// The `Content-Disposition` value for a file; `fallback` names files without a
/// usable name (the media SID, plus an extension for common types).
pub fn content_disposition(
    content_type: &str,
    filename: Option<&Filename>,
    fallback: &str,
) -> String {
    let disposition = disposition_for(content_type);
    let name = filename.map(ToString::to_string).unwrap_or_else(|| {
        let base = ascii_fallback(fallback);
        match extension_for(content_type) {
            Some(ext) => format!("{base}.{ext}"),
            None => base,
        }
    });
    let ascii = ascii_fallback(&name);
    if ascii == name {
        format!("{}; filename=\"{ascii}\"", disposition.as_str())
    } else {
        format!(
            "{}; filename=\"{ascii}\"; filename*=UTF-8''{}",
            disposition.as_str(),
            rfc5987(&name)
        )
    }
}

/// Both response overrides of a presigned download.
pub fn download_headers(
    content_type: &str,
    filename: Option<&Filename>,
    fallback: &str,
) -> DownloadHeaders {
    DownloadHeaders {
        content_type: safe_content_type(content_type),
        content_disposition: content_disposition(content_type, filename, fallback),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> Option<Filename> {
        Filename::parse(raw).unwrap()
    }

    /// What a header value must be: visible ASCII and spaces only.
    fn header_safe(v: &str) -> bool {
        v.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
    }

    #[test]
    fn active_content_is_always_an_attachment() {
        for t in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xhtml+xml",
            "text/xml",
            "application/xml",
            "application/rss+xml",
            "application/javascript",
            "text/javascript",
            "application/ecmascript",
        ] {
            assert!(is_active_content(t), "{t}");
            assert_eq!(disposition_for(t), Disposition::Attachment, "{t}");
            assert!(content_disposition(t, name("x").as_ref(), "ME1").starts_with("attachment;"));
        }
    }

    #[test]
    fn passive_media_is_inline_and_the_rest_downloads() {
        for t in [
            "image/png",
            "image/jpeg",
            "audio/mpeg",
            "video/mp4",
            "application/pdf",
        ] {
            assert_eq!(disposition_for(t), Disposition::Inline, "{t}");
        }
        for t in [
            "text/plain",
            "application/zip",
            "application/octet-stream",
            "application/json",
            "",
            "nonsense",
        ] {
            assert_eq!(disposition_for(t), Disposition::Attachment, "{t}");
        }
    }

    #[test]
    fn header_injection_is_impossible() {
        assert!(Filename::parse("a.png\r\nSet-Cookie: x=1").is_err());
        let evil = name("a.pngSet-Cookie: x=1\"; filename=\"evil.html");
        let v = content_disposition("image/png", evil.as_ref(), "ME1");
        assert!(header_safe(&v), "{v}");
        assert!(!v.contains('\r') && !v.contains('\n'));
        // Exactly one quoted filename parameter: no injected quote closes it early.
        assert_eq!(v.matches('"').count(), 2, "{v}");
        assert!(
            v.starts_with("inline; filename=\"a.pngSet-Cookie: x=1'_ filename='evil.html\"; filename*=UTF-8''"),
            "{v}"
        );
    }

    #[test]
    fn non_ascii_names_use_rfc5987() {
        let v = content_disposition("image/jpeg", name("Zoë's café 東京.jpg").as_ref(), "ME1");
        assert_eq!(
            v,
            "inline; filename=\"Zo_'s caf_ __.jpg\"; filename*=UTF-8''Zo%C3%AB%27s%20caf%C3%A9%20%E6%9D%B1%E4%BA%AC.jpg"
        );
        assert!(header_safe(&v));
        // Percent signs and semicolons are not passed through the plain parameter.
        let v = content_disposition("application/pdf", name("100%; report.pdf").as_ref(), "ME1");
        assert_eq!(
            v,
            "inline; filename=\"100__ report.pdf\"; filename*=UTF-8''100%25%3B%20report.pdf"
        );
        let v = content_disposition("application/pdf", name("plain report.pdf").as_ref(), "ME1");
        assert_eq!(v, "inline; filename=\"plain report.pdf\"");
    }

    #[test]
    fn missing_names_fall_back_to_the_sid() {
        assert_eq!(
            content_disposition("image/png", None, "MEabc"),
            "inline; filename=\"MEabc.png\""
        );
        assert_eq!(
            content_disposition("application/zip", name("///").as_ref(), "MEabc"),
            "attachment; filename=\"MEabc\""
        );
    }

    #[test]
    fn content_type_is_kept_only_when_well_formed() {
        assert_eq!(safe_content_type("image/PNG"), "image/png");
        assert_eq!(
            safe_content_type("text/plain; charset=UTF-8"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            safe_content_type("text/plain; name=\"x\"; charset=\"utf-8\""),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            safe_content_type("text/html\r\nX-Evil: 1"),
            "application/octet-stream"
        );
        assert_eq!(safe_content_type("image"), "application/octet-stream");
        assert_eq!(safe_content_type(""), "application/octet-stream");
        let h = download_headers("image/svg+xml", name("logo.svg").as_ref(), "ME1");
        assert_eq!(h.content_type, "image/svg+xml");
        assert_eq!(h.content_disposition, "attachment; filename=\"logo.svg\"");
    }
}
