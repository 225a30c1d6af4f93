//! Metadata stripping of photos (issue 17 §1): EXIF (GPS, camera serial,
//! timestamps), XMP and IPTC are removed from JPEG, PNG and WebP by editing their
//! segments or chunks; the pixels are never decoded or re-encoded. Kept: what
//! changes how the pixels display (JPEG's JFIF and Adobe segments, ICC profiles,
//! PNG's colour chunks, WebP's VP8X/ICCP/ANIM/ALPH) and the EXIF Orientation:
//! when the original says anything but "upright" (1), the output carries a
//! minimal EXIF block holding that one tag, so the photo still displays upright.
//! Bytes after a JPEG's EOI and past a WebP's RIFF size are dropped: phones
//! append whole second images there (MPF, motion photos) with their own EXIF.
//! Bytes after a PNG's IEND are kept (no PNG metadata lives there).
//!
//! HEIC/HEIF and AVIF ([`heif`]) are ISOBMFF: their EXIF and XMP are items
//! that `iloc` locates by offset, so they are overwritten in place (an empty
//! TIFF, an empty XMP packet, padded to the same length) rather than removed:
//! the file keeps its size, its offsets and its pixels byte for byte.
//!
//! A file that does not parse as its format is refused by the caller (415),
//! never stored unstripped.

use bytes::{Bytes, BytesMut};

mod heif;

/// The formats whose metadata is stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    /// HEIC/HEIF and AVIF, still images and sequences.
    Heif,
}

impl Format {
    /// The strippable format of a (lower-case) media type, if it is one.
    pub fn of(media_type: &str) -> Option<Self> {
        match media_type {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Format::Jpeg),
            "image/png" | "image/x-png" => Some(Format::Png),
            "image/webp" => Some(Format::Webp),
            "image/heic"
            | "image/heif"
            | "image/heic-sequence"
            | "image/heif-sequence"
            | "image/avif" => Some(Format::Heif),
            _ => None,
        }
    }
}

/// The bytes do not parse as the format: truncated, or not that format at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {0}")]
pub struct Malformed(&'static str);

/// `data` without its metadata; `None` when there was nothing to remove (the
/// stored object stays as it is).
pub fn strip(format: Format, data: &Bytes) -> Result<Option<Bytes>, Malformed> {
    let out = match format {
        Format::Jpeg => jpeg(data)?,
        Format::Png => png(data)?,
        Format::Webp => webp(data)?,
        Format::Heif => return in_place(data, heif::edits(data)?),
    };
    Ok((out.len() != data.len() || out[..] != data[..]).then(|| out.freeze()))
}

/// `data` with `edits` written over it; `None` when they change nothing.
fn in_place(data: &Bytes, edits: Vec<heif::Edit>) -> Result<Option<Bytes>, Malformed> {
    let unchanged = |e: &heif::Edit| data.get(e.at..e.at + e.bytes.len()) == Some(&e.bytes[..]);
    if edits.iter().all(unchanged) {
        return Ok(None);
    }
    let mut out = BytesMut::from(&data[..]);
    for e in edits {
        let to = out
            .get_mut(e.at..e.at + e.bytes.len())
            .ok_or(Malformed("HEIF/AVIF image"))?;
        to.copy_from_slice(&e.bytes);
    }
    Ok(Some(out.freeze()))
}

/// EXIF orientation 1: upright, nothing to keep.
const UPRIGHT: u16 = 1;

/// The Orientation tag (0x0112) of a TIFF-structured EXIF block, if readable.
pub fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let be = match tiff.get(..4)? {
        [b'M', b'M', 0, 42] => true,
        [b'I', b'I', 42, 0] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if be {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count.min(512)).find_map(|n| {
        let entry = ifd.checked_add(2 + 12 * n)?;
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3)
            .then(|| u16_at(entry + 8))
            .flatten()
    })
}

/// A TIFF block (big-endian) with one IFD holding only the Orientation.
fn minimal_tiff(orientation: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    t.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // header, IFD0 at 8
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // one value
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]); // value padding
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// The orientation to keep: a valid one other than upright.
fn kept(orientation: Option<u16>) -> Option<u16> {
    orientation.filter(|o| (2..=8).contains(o) && *o != UPRIGHT)
}

const EXIF_HEADER: &[u8] = b"Exif\0\0";

fn jpeg(data: &Bytes) -> Result<BytesMut, Malformed> {
    let bad = Malformed("JPEG");
    let n = data.len();
    if data.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(bad);
    }
    let mut out = BytesMut::with_capacity(n);
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut i = 2;
    let mut orientation = None;
    let mut in_header = true;
    loop {
        if data.get(i) != Some(&0xFF) {
            return Err(bad);
        }
        while data.get(i) == Some(&0xFF) {
            i += 1; // fill bytes
        }
        let Some(&marker) = data.get(i) else {
            return Err(bad);
        };
        i += 1;
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Ok(out); // EOI: what follows is dropped
            }
            0xD8 | 0x00 => return Err(bad),
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                continue;
            }
            _ => {}
        }
        let len = match data.get(i..i + 2) {
            Some(l) => u16::from_be_bytes([l[0], l[1]]) as usize,
            None => return Err(bad),
        };
        if len < 2 || i + len > n {
            return Err(bad);
        }
        let body = &data[i + 2..i + len];
        let keep = match marker {
            0xE1 => {
                if let Some(tiff) = body.strip_prefix(EXIF_HEADER) {
                    orientation = orientation.or(exif_orientation(tiff));
                }
                false // EXIF, XMP, extended XMP
            }
            0xE0 => body.starts_with(b"JFIF\0") || body.starts_with(b"JFXX\0"),
            0xE2 => body.starts_with(b"ICC_PROFILE\0"),
            0xEE => body.starts_with(b"Adobe"), // colour transform of the pixels
            0xE3..=0xEF | 0xFE => false,        // IPTC (APP13), vendor data, comments
            _ => true,
        };
        let app = (0xE0..=0xEF).contains(&marker) || marker == 0xFE;
        if in_header && !app {
            // The APPn area ends here: the kept orientation goes where EXIF was.
            in_header = false;
            if let Some(o) = kept(orientation) {
                let tiff = minimal_tiff(o);
                let seg_len = (2 + EXIF_HEADER.len() + tiff.len()) as u16;
                out.extend_from_slice(&[0xFF, 0xE1]);
                out.extend_from_slice(&seg_len.to_be_bytes());
                out.extend_from_slice(EXIF_HEADER);
                out.extend_from_slice(&tiff);
            }
        }
        if keep {
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(&data[i..i + len]);
        }
        i += len;
        if marker == 0xDA {
            // Entropy-coded data up to the next marker (FF followed by neither
            // a stuffed 00, a restart marker nor a fill byte).
            let mut k = i;
            loop {
                // Straight to the next 0xFF (memchr: the scan is most of the file).
                k = memchr::memchr(0xFF, &data[k..]).map_or(n, |at| k + at);
                match data.get(k) {
                    None => {
                        // No EOI: a truncated scan, which viewers still show.
                        out.extend_from_slice(&data[i..]);
                        return Ok(out);
                    }
                    Some(0xFF) => match data.get(k + 1) {
                        Some(0x00 | 0xD0..=0xD7) => k += 2,
                        Some(0xFF) => k += 1,
                        Some(_) => break,
                        None => k += 1,
                    },
                    Some(_) => k += 1,
                }
            }
            out.extend_from_slice(&data[i..k]);
            i = k;
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn png(data: &Bytes) -> Result<BytesMut, Malformed> {
    let bad = Malformed("PNG");
    if !data.starts_with(PNG_SIGNATURE) {
        return Err(bad);
    }
    let mut out = BytesMut::with_capacity(data.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut i = PNG_SIGNATURE.len();
    let mut first = true;
    loop {
        let Some(head) = data.get(i..i + 8) else {
            return Err(bad); // no IEND
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let end = i
            .checked_add(12)
            .and_then(|e| e.checked_add(len))
            .filter(|e| *e <= data.len())
            .ok_or(bad.clone())?;
        if !kind.iter().all(u8::is_ascii_alphabetic) || (first && &kind != b"IHDR") {
            return Err(bad);
        }
        first = false;
        let body = &data[i + 8..i + 8 + len];
        match &kind {
            b"eXIf" => {
                if let Some(o) = kept(exif_orientation(body)) {
                    let tiff = minimal_tiff(o);
                    out.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
                    let start = out.len();
                    out.extend_from_slice(b"eXIf");
                    out.extend_from_slice(&tiff);
                    let crc = crc32(&out[start..]);
                    out.extend_from_slice(&crc.to_be_bytes());
                }
            }
            // Text (XMP is iTXt, IPTC and EXIF as text are zTXt/tEXt), and the
            // modification time.
            b"tEXt" | b"zTXt" | b"iTXt" | b"tIME" => {}
            _ => out.extend_from_slice(&data[i..end]),
        }
        i = end;
        if &kind == b"IEND" {
            // Bytes after IEND are kept: PNG defines no metadata there (unlike
            // JPEG's appended MPF images), and they make uploads distinct.
            out.extend_from_slice(&data[i..]);
            return Ok(out);
        }
    }
}

fn webp(data: &Bytes) -> Result<BytesMut, Malformed> {
    let bad = Malformed("WebP");
    if data.get(..4) != Some(b"RIFF") || data.get(8..12) != Some(b"WEBP") {
        return Err(bad);
    }
    let riff = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let riff_end = riff
        .checked_add(8)
        .filter(|e| *e <= data.len())
        .ok_or(bad.clone())?;
    let mut out = BytesMut::with_capacity(riff_end);
    out.extend_from_slice(&data[..12]);
    let mut i = 12;
    let mut vp8x_flags_at = None;
    let mut orientation = None;
    let mut chunks = 0;
    while i < riff_end {
        let Some(head) = data.get(i..i + 8).filter(|_| i + 8 <= riff_end) else {
            return Err(bad);
        };
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let fourcc = [head[0], head[1], head[2], head[3]];
        let body_end = i
            .checked_add(8 + len)
            .filter(|e| *e <= riff_end)
            .ok_or(bad.clone())?;
        let end = (body_end + (len & 1)).min(riff_end);
        if chunks == 0 && !matches!(&fourcc, b"VP8 " | b"VP8L" | b"VP8X") {
            return Err(bad);
        }
        chunks += 1;
        let body = &data[i + 8..body_end];
        match &fourcc {
            b"EXIF" => {
                let tiff = body.strip_prefix(EXIF_HEADER).unwrap_or(body);
                orientation = orientation.or(exif_orientation(tiff));
            }
            b"XMP " => {}
            _ => {
                if &fourcc == b"VP8X" {
                    if len < 10 {
                        return Err(bad);
                    }
                    vp8x_flags_at = Some(out.len() + 8);
                }
                out.extend_from_slice(&data[i..end]);
                if end - i < 8 + len + (len & 1) {
                    out.extend_from_slice(&[0]); // the missing pad byte
                }
            }
        }
        i = end;
    }
    if chunks == 0 {
        return Err(bad);
    }
    if let Some(at) = vp8x_flags_at {
        // Flags: EXIF 0x08, XMP 0x04.
        out[at] &= !(0x08 | 0x04);
        if let Some(o) = kept(orientation) {
            out[at] |= 0x08;
            let tiff = minimal_tiff(o);
            out.extend_from_slice(b"EXIF");
            out.extend_from_slice(&(tiff.len() as u32).to_le_bytes());
            out.extend_from_slice(&tiff);
        }
    }
    let size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

/// CRC-32 (ISO-HDLC) of PNG chunks.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(body);
        s
    }

    fn exif(orientation: u16) -> Vec<u8> {
        let mut b = EXIF_HEADER.to_vec();
        b.extend_from_slice(&minimal_tiff(orientation));
        b.extend_from_slice(b"GPS-and-serial-would-be-here");
        b
    }

    fn sample_jpeg(orientation: u16) -> Bytes {
        let mut j = vec![0xFF, 0xD8];
        j.extend(segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        j.extend(segment(0xE1, &exif(orientation)));
        j.extend(segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>"));
        j.extend(segment(0xE2, b"ICC_PROFILE\0\x01\x01profile"));
        j.extend(segment(0xED, b"Photoshop 3.0\0IPTC"));
        j.extend(segment(0xDB, &[0; 65]));
        j.extend(segment(0xDA, &[1, 1, 0, 0, 63, 0]));
        j.extend_from_slice(&[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j.extend_from_slice(b"trailing second image with Exif");
        Bytes::from(j)
    }

    fn has(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn jpeg_loses_exif_xmp_iptc_and_trailer_but_keeps_icc_and_scan() {
        let out = strip(Format::Jpeg, &sample_jpeg(1)).unwrap().unwrap();
        assert!(!has(&out, b"Exif"));
        assert!(!has(&out, b"GPS"));
        assert!(!has(&out, b"xmpmeta"));
        assert!(!has(&out, b"IPTC"));
        assert!(!has(&out, b"trailing"));
        assert!(has(&out, b"ICC_PROFILE"));
        assert!(has(&out, b"JFIF"));
        assert!(has(&out, &[1, 2, 0xFF, 0x00, 3, 0xFF, 0xD0, 4, 0xFF, 0xD9]));
    }

    #[test]
    fn jpeg_keeps_only_a_turned_orientation() {
        let out = strip(Format::Jpeg, &sample_jpeg(6)).unwrap().unwrap();
        assert!(!has(&out, b"GPS"));
        let at = out.windows(6).position(|w| w == EXIF_HEADER).unwrap();
        assert_eq!(exif_orientation(&out[at + 6..]), Some(6));
        assert_eq!(strip(Format::Jpeg, &out).unwrap(), None);
    }

    #[test]
    fn malformed_files_are_refused() {
        for (f, data) in [
            (Format::Jpeg, &b"\xFF\xD8\xFF\xE1\xFF\xFFshort"[..]),
            (Format::Jpeg, b"not a jpeg"),
            (Format::Png, b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"),
            (Format::Webp, b"RIFF\xff\0\0\0WEBPVP8 "),
        ] {
            assert!(strip(f, &Bytes::copy_from_slice(data)).is_err(), "{f:?}");
        }
    }

    fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut c = (body.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(body);
        c.extend_from_slice(&crc32(&c[4..]).to_be_bytes());
        c
    }

    #[test]
    fn png_loses_text_and_exif_keeps_the_rest() {
        let mut p = PNG_SIGNATURE.to_vec();
        p.extend(chunk(b"IHDR", &[0; 13]));
        p.extend(chunk(b"iCCP", b"icc"));
        p.extend(chunk(b"eXIf", &minimal_tiff(3)));
        p.extend(chunk(b"iTXt", b"XML:com.adobe.xmp"));
        p.extend(chunk(b"IDAT", b"pixels"));
        p.extend(chunk(b"IEND", b""));
        let out = strip(Format::Png, &Bytes::from(p)).unwrap().unwrap();
        assert!(!has(&out, b"xmp"));
        assert!(has(&out, b"iCCP") && has(&out, b"pixels") && has(&out, b"IEND"));
        let at = out.windows(4).position(|w| w == b"eXIf").unwrap();
        assert_eq!(exif_orientation(&out[at + 4..]), Some(3));
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn webp_loses_exif_and_xmp_and_fixes_sizes_and_flags() {
        let mut chunks = Vec::new();
        chunks.extend_from_slice(b"VP8X\x0a\0\0\0\x0c\0\0\0\0\0\0\0\0\0");
        chunks.extend_from_slice(b"VP8L\x03\0\0\0abc\0");
        let e = exif(1);
        chunks.extend_from_slice(b"EXIF");
        chunks.extend_from_slice(&(e.len() as u32).to_le_bytes());
        chunks.extend_from_slice(&e);
        if e.len() % 2 == 1 {
            chunks.push(0);
        }
        chunks.extend_from_slice(b"XMP \x04\0\0\0<x/>");
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
        w.extend_from_slice(b"WEBP");
        w.extend(chunks);
        let out = strip(Format::Webp, &Bytes::from(w)).unwrap().unwrap();
        assert!(!has(&out, b"EXIF") && !has(&out, b"XMP"));
        assert_eq!(out[20] & 0x0c, 0);
        assert_eq!(
            u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize,
            out.len() - 8
        );
    }
}
