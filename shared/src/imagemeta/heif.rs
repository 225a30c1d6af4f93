//! HEIF (HEIC) and AVIF: ISOBMFF containers whose EXIF and XMP are items of
//! the top-level `meta` box, located by `iloc` extents (in the file or in the
//! `meta`'s own `idat`). Removing an item would move every offset `iloc` holds,
//! so the metadata is overwritten in place instead: each EXIF item becomes an
//! empty TIFF (no tags) padded with zeros, each XMP item (a `mime` item of type
//! `application/rdf+xml`) an empty XMP packet padded with spaces, both of the
//! same length. Offsets, sizes and the coded pixels stay byte for byte; the
//! orientation lives in the `irot`/`imir` item properties, which are kept (HEIF
//! readers ignore the EXIF Orientation). In an image sequence's `moov`, `udta`
//! and `meta` boxes (user data, QuickTime metadata) become `free` boxes of the
//! same size, zero-filled; so does a top-level XMP `uuid` box.
//!
//! Refused as malformed: no `ftyp` first with a HEIF/AVIF brand, a box past
//! its parent's end, no top-level `meta` (with a `pict` handler) unless the
//! file is a sequence (`moov`), an unknown `iloc`/`infe` version or field size,
//! and a metadata item whose bytes cannot be located safely (another file's
//! data reference, bytes built from another item, an open-ended extent, an
//! extent outside the file or `idat`): such a file is never stored unstripped.

use super::Malformed;

const BAD: Malformed = Malformed("HEIF/AVIF image");

/// Brands of HEIF (HEVC and others) and AVIF images and image sequences.
const BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"mif2", b"msf1", b"avif",
    b"avis",
];

/// The `uuid` of XMP boxes (Adobe's XMP specification, part 3).
const XMP_UUID: [u8; 16] = [
    0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8, 0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC,
];

/// Bytes to write over `at..at + bytes.len()`.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Edit {
    pub at: usize,
    pub bytes: Vec<u8>,
}

/// One box: its type, where its payload starts (after size, type and, for
/// `uuid`, the user type) and where it ends.
#[derive(Debug, Clone, Copy)]
struct Bx {
    kind: [u8; 4],
    start: usize,
    /// After size, type and largesize: a `uuid`'s user type, else `body`.
    after_type: usize,
    body: usize,
    end: usize,
}

/// The boxes of `data[at..end]`, in order; a box past `end` is an error.
struct Boxes<'a> {
    data: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Boxes<'a> {
    fn new(data: &'a [u8], at: usize, end: usize) -> Self {
        Boxes { data, at, end }
    }
}

impl Iterator for Boxes<'_> {
    type Item = Result<Bx, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let parsed = parse_box(self.data, self.at, self.end);
        // A bad box ends the walk: nothing after it can be trusted.
        self.at = parsed.as_ref().map_or(self.end, |b| b.end);
        Some(parsed)
    }
}

fn parse_box(data: &[u8], start: usize, end: usize) -> Result<Bx, Malformed> {
    let size = u32_at(data, start, end)?;
    let kind: [u8; 4] = take(data, start + 4, 4, end)?.try_into().map_err(|_| BAD)?;
    let (len, after_type) = match size {
        0 => (end - start, start + 8), // to the end of the parent
        1 => {
            let large = u64_at(data, start + 8, end)?;
            (usize::try_from(large).map_err(|_| BAD)?, start + 16)
        }
        n => (n as usize, start + 8),
    };
    let box_end = start.checked_add(len).filter(|e| *e <= end).ok_or(BAD)?;
    let body = after_type + if &kind == b"uuid" { 16 } else { 0 };
    if body > box_end {
        return Err(BAD);
    }
    Ok(Bx {
        kind,
        start,
        after_type,
        body,
        end: box_end,
    })
}

/// `n` bytes at `at`, all before `end`.
fn take(data: &[u8], at: usize, n: usize, end: usize) -> Result<&[u8], Malformed> {
    let stop = at.checked_add(n).filter(|s| *s <= end).ok_or(BAD)?;
    data.get(at..stop).ok_or(BAD)
}

fn u16_at(data: &[u8], at: usize, end: usize) -> Result<u16, Malformed> {
    let b = take(data, at, 2, end)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize, end: usize) -> Result<u32, Malformed> {
    let b = take(data, at, 4, end)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(data: &[u8], at: usize, end: usize) -> Result<u64, Malformed> {
    let b = take(data, at, 8, end)?;
    Ok(u64::from_be_bytes([
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
    ]))
}

/// An unsigned field of `size` bytes (0, 4 or 8: `iloc`'s sizes); 0 reads as 0.
fn uint_at(data: &[u8], at: usize, size: u8, end: usize) -> Result<u64, Malformed> {
    match size {
        0 => Ok(0),
        4 => u32_at(data, at, end).map(u64::from),
        8 => u64_at(data, at, end),
        _ => Err(BAD),
    }
}

/// A NUL-terminated string from `at` (a missing NUL ends it at `end`), and
/// where the next field starts.
fn cstr(data: &[u8], at: usize, end: usize) -> (&[u8], usize) {
    let rest = data.get(at..end).unwrap_or_default();
    match memchr::memchr(0, rest) {
        Some(n) => (&rest[..n], at + n + 1),
        None => (rest, end),
    }
}

/// The kinds of item whose bytes are metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    Exif,
    /// XMP; `encoded` when stored compressed (`content_encoding`).
    Xmp {
        encoded: bool,
    },
}

/// The edits that remove the metadata of a HEIF/AVIF file (none: nothing to do).
pub(super) fn edits(data: &[u8]) -> Result<Vec<Edit>, Malformed> {
    let mut top = Boxes::new(data, 0, data.len());
    let ftyp = top.next().ok_or(BAD)??;
    if &ftyp.kind != b"ftyp" || ftyp.end - ftyp.body < 8 {
        return Err(BAD);
    }
    let major = &data[ftyp.body..ftyp.body + 4];
    let compatible = &data[ftyp.body + 8..ftyp.end];
    let branded = std::iter::once(major)
        .chain(compatible.chunks_exact(4))
        .any(|b| BRANDS.iter().any(|k| &k[..] == b));
    if !branded {
        return Err(BAD);
    }
    let mut edits = Vec::new();
    let mut meta = None;
    let mut moov = false;
    for b in top {
        let b = b?;
        match &b.kind {
            b"meta" if meta.is_some() => return Err(BAD),
            b"meta" => meta = Some(b),
            b"moov" => {
                moov = true;
                blank_user_data(data, b, &mut edits)?;
            }
            b"uuid" if data[b.after_type..b.body] == XMP_UUID => blank(b, &mut edits),
            _ => {}
        }
    }
    match meta {
        Some(meta) => items(data, meta, &mut edits)?,
        None if moov => {}
        None => return Err(BAD),
    }
    Ok(edits)
}

/// `udta` and `meta` boxes of a `moov` and of its tracks become zeroed `free` boxes.
fn blank_user_data(data: &[u8], moov: Bx, edits: &mut Vec<Edit>) -> Result<(), Malformed> {
    for b in Boxes::new(data, moov.body, moov.end) {
        let b = b?;
        match &b.kind {
            b"udta" | b"meta" => blank(b, edits),
            b"trak" => {
                for t in Boxes::new(data, b.body, b.end) {
                    let t = t?;
                    if matches!(&t.kind, b"udta" | b"meta") {
                        blank(t, edits);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A box turned into a `free` box of the same size (its size fields kept),
/// everything after them zeroed.
fn blank(b: Bx, edits: &mut Vec<Edit>) {
    edits.push(Edit {
        at: b.start + 4,
        bytes: b"free".to_vec(),
    });
    if b.end > b.after_type {
        edits.push(Edit {
            at: b.after_type,
            bytes: vec![0; b.end - b.after_type],
        });
    }
}

/// The EXIF and XMP items of the top-level `meta` box, overwritten in place.
fn items(data: &[u8], meta: Bx, edits: &mut Vec<Edit>) -> Result<(), Malformed> {
    // `meta` is a full box: version and flags, then boxes.
    let mut hdlr = None;
    let mut iinf = None;
    let mut iloc = None;
    let mut idat = None;
    for b in Boxes::new(data, meta.body.checked_add(4).ok_or(BAD)?, meta.end) {
        let b = b?;
        let slot = match &b.kind {
            b"hdlr" => &mut hdlr,
            b"iinf" => &mut iinf,
            b"iloc" => &mut iloc,
            b"idat" => &mut idat,
            _ => continue,
        };
        if slot.replace(b).is_some() {
            return Err(BAD);
        }
    }
    let hdlr = hdlr.ok_or(BAD)?;
    // Version and flags, pre_defined, then the handler type.
    if take(data, hdlr.body + 8, 4, hdlr.end)? != b"pict" {
        return Err(BAD);
    }
    let metadata = match iinf {
        Some(iinf) => metadata_items(data, iinf)?,
        None => Vec::new(),
    };
    let Some(iloc) = iloc else {
        return if metadata.is_empty() {
            Ok(())
        } else {
            Err(BAD)
        };
    };
    for (id, extents) in locations(data, iloc, idat, &metadata)? {
        let Some(&(_, kind)) = metadata.iter().find(|(m, _)| *m == id) else {
            continue;
        };
        let total: usize = extents.iter().map(|(_, len)| len).sum();
        let mut blanked = match kind {
            Meta::Exif => empty_exif(total),
            Meta::Xmp { encoded: false } => empty_xmp(total),
            // A compressed packet cannot be rewritten in place; zeros (readers
            // fail to inflate it and see no XMP).
            Meta::Xmp { encoded: true } => vec![0; total],
        };
        for (at, len) in extents {
            let rest = blanked.split_off(len);
            edits.push(Edit { at, bytes: blanked });
            blanked = rest;
        }
    }
    Ok(())
}

/// The metadata items (id, kind) listed by `iinf`.
fn metadata_items(data: &[u8], iinf: Bx) -> Result<Vec<(u32, Meta)>, Malformed> {
    let version = *data.get(iinf.body).ok_or(BAD)?;
    let first = iinf.body + 4 + if version == 0 { 2 } else { 4 };
    if first > iinf.end {
        return Err(BAD);
    }
    let mut found = Vec::new();
    for b in Boxes::new(data, first, iinf.end) {
        let b = b?;
        if &b.kind != b"infe" {
            continue;
        }
        let end = b.end;
        let version = *data.get(b.body).ok_or(BAD)?;
        let at = b.body + 4;
        let (id, kind) = match version {
            0 | 1 => {
                // Item id, protection index, name, content type, encoding.
                let id = u32::from(u16_at(data, at, end)?);
                take(data, at, 4, end)?;
                let (_, at) = cstr(data, at + 4, end);
                let (content_type, at) = cstr(data, at, end);
                let (encoding, _) = cstr(data, at, end);
                (id, xmp(content_type, encoding))
            }
            2 | 3 => {
                let (id, at) = if version == 2 {
                    (u32::from(u16_at(data, at, end)?), at + 2)
                } else {
                    (u32_at(data, at, end)?, at + 4)
                };
                let item_type = take(data, at + 2, 4, end)?;
                let (_, at) = cstr(data, at + 6, end);
                let kind = match item_type {
                    b"Exif" => Some(Meta::Exif),
                    b"mime" => {
                        let (content_type, at) = cstr(data, at, end);
                        let (encoding, _) = cstr(data, at, end);
                        xmp(content_type, encoding)
                    }
                    _ => None,
                };
                (id, kind)
            }
            _ => return Err(BAD),
        };
        if let Some(kind) = kind {
            found.push((id, kind));
        }
    }
    Ok(found)
}

/// XMP, when a `mime` item's content type says so.
fn xmp(content_type: &[u8], encoding: &[u8]) -> Option<Meta> {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/rdf+xml")
        .then_some(Meta::Xmp {
            encoded: !encoding.is_empty(),
        })
}

/// Where an item's bytes are: (absolute offset, length) pieces, in order.
type Extents = Vec<(usize, usize)>;

/// The extents of each metadata item in `iloc`.
fn locations(
    data: &[u8],
    iloc: Bx,
    idat: Option<Bx>,
    metadata: &[(u32, Meta)],
) -> Result<Vec<(u32, Extents)>, Malformed> {
    let end = iloc.end;
    let version = *data.get(iloc.body).ok_or(BAD)?;
    if version > 2 {
        return Err(BAD);
    }
    let sizes = take(data, iloc.body + 4, 2, end)?;
    let (offset_size, length_size) = (sizes[0] >> 4, sizes[0] & 0x0F);
    let base_offset_size = sizes[1] >> 4;
    let index_size = if version == 0 { 0 } else { sizes[1] & 0x0F };
    for s in [offset_size, length_size, base_offset_size, index_size] {
        if !matches!(s, 0 | 4 | 8) {
            return Err(BAD);
        }
    }
    let mut at = iloc.body + 6;
    let count = if version < 2 {
        let c = u16_at(data, at, end)?;
        at += 2;
        u32::from(c)
    } else {
        let c = u32_at(data, at, end)?;
        at += 4;
        c
    };
    let mut found = Vec::new();
    for _ in 0..count {
        let id = if version < 2 {
            let id = u16_at(data, at, end)?;
            at += 2;
            u32::from(id)
        } else {
            let id = u32_at(data, at, end)?;
            at += 4;
            id
        };
        let method = if version == 0 {
            0
        } else {
            let m = u16_at(data, at, end)? & 0x0F;
            at += 2;
            m
        };
        let reference = u16_at(data, at, end)?;
        at += 2;
        let base = uint_at(data, at, base_offset_size, end)?;
        at += base_offset_size as usize;
        let extent_count = u16_at(data, at, end)?;
        at += 2;
        let wanted = metadata.iter().any(|(m, _)| *m == id);
        let mut extents = Vec::new();
        for _ in 0..extent_count {
            at += index_size as usize; // only meaningful for method 2
            let offset = uint_at(data, at, offset_size, end)?;
            at += offset_size as usize;
            let length = uint_at(data, at, length_size, end)?;
            at += length_size as usize;
            if !wanted {
                continue;
            }
            // The bytes must be in this file, at a known place: not another
            // file's (data reference), not built from another item (method
            // 2), not open-ended (length 0).
            let (from, to) = match (method, reference) {
                (0, 0) => (0, data.len()),
                (1, 0) => {
                    let idat = idat.ok_or(BAD)?;
                    (idat.body, idat.end)
                }
                _ => return Err(BAD),
            };
            if length == 0 {
                return Err(BAD);
            }
            let start = base
                .checked_add(offset)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| o.checked_add(from))
                .ok_or(BAD)?;
            let length = usize::try_from(length).map_err(|_| BAD)?;
            start
                .checked_add(length)
                .filter(|stop| *stop <= to)
                .ok_or(BAD)?;
            extents.push((start, length));
        }
        if at > end {
            return Err(BAD);
        }
        if wanted {
            found.push((id, extents));
        }
    }
    Ok(found)
}

/// An EXIF item's payload without tags, `len` bytes: the 4-byte offset of the
/// TIFF header, `Exif\0\0` (as phones write it), a TIFF header and one empty
/// IFD; zeros after. Too short for that: all zeros.
fn empty_exif(len: usize) -> Vec<u8> {
    const EMPTY: &[u8] = b"\0\0\0\x06Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0";
    const BARE: &[u8] = b"\0\0\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0";
    let mut out = if len >= EMPTY.len() {
        EMPTY.to_vec()
    } else if len >= BARE.len() {
        BARE.to_vec()
    } else {
        Vec::new()
    };
    out.resize(len, 0);
    out
}

/// An XMP item's payload without properties, `len` bytes: an empty packet
/// padded with spaces (XMP's own padding), or only spaces when too short.
fn empty_xmp(len: usize) -> Vec<u8> {
    const HEAD: &[u8] = b"<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?><x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>";
    const TAIL: &[u8] = b"<?xpacket end=\"w\"?>";
    if len < HEAD.len() + TAIL.len() {
        return vec![b' '; len];
    }
    let mut out = HEAD.to_vec();
    out.resize(len - TAIL.len(), b' ');
    out.extend_from_slice(TAIL);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imagemeta::{exif_orientation, strip, Format};
    use bytes::Bytes;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
        let mut b = vec![version, 0, 0, 0];
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    fn ftyp(major: &[u8; 4]) -> Vec<u8> {
        let mut b = major.to_vec();
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(major);
        b.extend_from_slice(b"miaf");
        bx(b"ftyp", &b)
    }

    fn hdlr(kind: &[u8; 4]) -> Vec<u8> {
        let mut b = vec![0; 4];
        b.extend_from_slice(kind);
        b.extend_from_slice(&[0; 12]);
        b.push(0);
        full(b"hdlr", 0, &b)
    }

    /// An `infe`: version 2 (16-bit id) or 3 (32-bit id).
    fn infe(version: u8, id: u32, kind: &[u8; 4], extra: &[u8]) -> Vec<u8> {
        let mut b = if version == 2 {
            (id as u16).to_be_bytes().to_vec()
        } else {
            id.to_be_bytes().to_vec()
        };
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(kind);
        b.extend_from_slice(b"name\0");
        b.extend_from_slice(extra);
        full(b"infe", version, &b)
    }

    fn iinf(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut b = (entries.len() as u16).to_be_bytes().to_vec();
        entries.iter().for_each(|e| b.extend_from_slice(e));
        full(b"iinf", 0, &b)
    }

    struct Loc {
        id: u32,
        method: u16,
        reference: u16,
        base: u64,
        extents: Vec<(u64, u64)>,
    }

    fn loc(id: u32, base: u64, extents: &[(u64, u64)]) -> Loc {
        Loc {
            id,
            method: 0,
            reference: 0,
            base,
            extents: extents.to_vec(),
        }
    }

    fn uint(v: u64, size: u8) -> Vec<u8> {
        match size {
            0 => vec![],
            2 => (v as u16).to_be_bytes().to_vec(),
            4 => (v as u32).to_be_bytes().to_vec(),
            _ => v.to_be_bytes().to_vec(),
        }
    }

    /// An `iloc` of `version` with offset, length, base offset and index sizes.
    fn iloc(version: u8, sizes: [u8; 4], locs: &[Loc]) -> Vec<u8> {
        let [off, len, base, index] = sizes;
        let mut b = vec![off << 4 | len, base << 4 | index];
        let wide = if version < 2 { 2 } else { 4 };
        b.extend(uint(locs.len() as u64, wide));
        for l in locs {
            b.extend(uint(u64::from(l.id), wide));
            if version > 0 {
                b.extend_from_slice(&l.method.to_be_bytes());
            }
            b.extend_from_slice(&l.reference.to_be_bytes());
            b.extend(uint(l.base, base));
            b.extend_from_slice(&(l.extents.len() as u16).to_be_bytes());
            for &(o, n) in &l.extents {
                if version > 0 {
                    b.extend(uint(0, index));
                }
                b.extend(uint(o, off));
                b.extend(uint(n, len));
            }
        }
        full(b"iloc", version, &b)
    }

    /// ftyp, a `meta` built for the offset where the `mdat` payload starts,
    /// then the `mdat`.
    fn file(major: &[u8; 4], meta: impl Fn(u64) -> Vec<u8>, mdat: &[u8]) -> Vec<u8> {
        let mut f = ftyp(major);
        let start = f.len() + meta(0).len() + 8;
        f.extend(meta(start as u64));
        assert_eq!(f.len() + 8, start, "meta's size depends on offsets");
        f.extend(bx(b"mdat", mdat));
        f
    }

    const PIXELS: &[u8] = b"coded-pixels-coded-pixels";
    const EXIF: &[u8] =
        b"\0\0\0\x06Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x0f\0\x02\0\0\0\x04GPS\0\0\0\0\0GPS-SECRET";
    const XMP: &[u8] = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description dc:creator='XMP-SECRET'/></rdf:RDF></x:xmpmeta>";
    const RDF: &[u8] = b"application/rdf+xml\0";

    fn has(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn stripped(f: &[u8]) -> Bytes {
        let out = strip(Format::Heif, &Bytes::copy_from_slice(f))
            .expect("parses")
            .expect("changed");
        assert_eq!(out.len(), f.len(), "same size");
        assert!(!has(&out, b"SECRET"), "metadata left");
        assert!(has(&out, PIXELS), "pixels kept");
        assert_eq!(
            strip(Format::Heif, &out).unwrap(),
            None,
            "a stripped file is stripped"
        );
        out
    }

    /// A file with an image, EXIF and XMP in `mdat`, located by an `iloc` v0.
    fn heic() -> Vec<u8> {
        let mut mdat = PIXELS.to_vec();
        mdat.extend_from_slice(EXIF);
        mdat.extend_from_slice(XMP);
        let (p, e) = (PIXELS.len() as u64, EXIF.len() as u64);
        file(
            b"heic",
            |at| {
                let mut m = hdlr(b"pict");
                m.extend(iinf(&[
                    infe(2, 1, b"hvc1", b""),
                    infe(2, 2, b"Exif", b""),
                    infe(2, 3, b"mime", RDF),
                ]));
                m.extend(iloc(
                    0,
                    [4, 4, 0, 0],
                    &[
                        loc(1, 0, &[(at, p)]),
                        loc(2, 0, &[(at + p, e)]),
                        loc(3, 0, &[(at + p + e, XMP.len() as u64)]),
                    ],
                ));
                full(b"meta", 0, &m)
            },
            &mdat,
        )
    }

    #[test]
    fn exif_and_xmp_items_are_overwritten_in_place() {
        let f = heic();
        let out = stripped(&f);
        let at = f.windows(EXIF.len()).position(|w| w == EXIF).unwrap();
        // The EXIF item: offset 6, `Exif\0\0`, a TIFF with an empty IFD, zeros.
        assert_eq!(&out[at..at + 10], b"\0\0\0\x06Exif\0\0");
        assert_eq!(&out[at + 10..at + 18], b"MM\0\x2a\0\0\0\x08");
        assert_eq!(&out[at + 18..at + 20], &[0, 0], "no tags");
        assert_eq!(exif_orientation(&out[at + 10..]), None);
        assert!(out[at + 24..at + EXIF.len()].iter().all(|b| *b == 0));
        // The XMP item: an empty packet padded with spaces.
        let x = &out[at + EXIF.len()..at + EXIF.len() + XMP.len()];
        assert!(x.starts_with(b"<?xpacket begin="), "{x:?}");
        assert!(x.ends_with(b"<?xpacket end=\"w\"?>"));
        // Everything else is byte for byte the same.
        assert_eq!(out[..at], f[..at]);
        assert_eq!(Format::of("image/avif"), Some(Format::Heif));
        assert_eq!(Format::of("image/heic-sequence"), Some(Format::Heif));
    }

    #[test]
    fn idat_items_and_iloc_versions_1_and_2() {
        // Version 1: EXIF and XMP in `idat` (method 1), 8-byte base offsets,
        // 4-byte extent indices; the image in the file.
        let mut idat = EXIF.to_vec();
        idat.extend_from_slice(XMP);
        let f = file(
            b"avif",
            |at| {
                let mut m = hdlr(b"pict");
                m.extend(iinf(&[
                    infe(2, 1, b"av01", b""),
                    infe(2, 7, b"mime", b"Application/RDF+XML; x=y\0\0"),
                    infe(2, 9, b"Exif", b""),
                ]));
                let mut xmp = loc(7, EXIF.len() as u64, &[(0, XMP.len() as u64)]);
                xmp.method = 1;
                let mut exif = loc(9, 0, &[(0, EXIF.len() as u64)]);
                exif.method = 1;
                m.extend(iloc(
                    1,
                    [4, 4, 8, 4],
                    &[loc(1, at, &[(0, PIXELS.len() as u64)]), xmp, exif],
                ));
                m.extend(bx(b"idat", &idat));
                full(b"meta", 0, &m)
            },
            PIXELS,
        );
        let out = stripped(&f);
        assert!(has(
            &out,
            b"\0\0\0\x06Exif\0\0MM\0\x2a\0\0\0\x08\0\0\0\0\0\0"
        ));
        assert!(has(&out, b"<?xpacket end=\"w\"?>"));

        // Version 2: 32-bit item ids (`infe` v3), 8-byte offsets, an EXIF
        // item in two extents (the empty TIFF spans them).
        let mut mdat = PIXELS.to_vec();
        mdat.extend_from_slice(&EXIF[..12]);
        mdat.extend_from_slice(b"image-between");
        mdat.extend_from_slice(&EXIF[12..]);
        let f = file(
            b"mif1",
            |at| {
                let p = PIXELS.len() as u64;
                let mut m = hdlr(b"pict");
                m.extend(iinf(&[
                    infe(3, 70_000, b"hvc1", b""),
                    infe(3, 70_001, b"Exif", b""),
                ]));
                m.extend(iloc(
                    2,
                    [8, 8, 0, 0],
                    &[
                        loc(70_000, 0, &[(at, p)]),
                        loc(
                            70_001,
                            0,
                            &[(at + p, 12), (at + p + 12 + 13, EXIF.len() as u64 - 12)],
                        ),
                    ],
                ));
                full(b"meta", 0, &m)
            },
            &mdat,
        );
        let out = stripped(&f);
        assert!(has(
            &out,
            b"\0\0\0\x06Exif\0\0MMimage-between\0\x2a\0\0\0\x08\0\0"
        ));
    }

    #[test]
    fn sequence_user_data_and_xmp_uuid_boxes_become_free() {
        let mut f = heic();
        let mut trak = bx(b"tkhd", b"track");
        trak.extend(bx(b"udta", b"GPS-SECRET"));
        let mut moov = bx(b"mvhd", b"movie");
        moov.extend(bx(b"trak", &trak));
        moov.extend(full(b"meta", 0, b"QT-SECRET"));
        f.extend(bx(b"moov", &moov));
        let mut uuid = XMP_UUID.to_vec();
        uuid.extend_from_slice(b"XMP-SECRET");
        f.extend(bx(b"uuid", &uuid));
        let out = stripped(&f);
        assert!(has(&out, b"tkhd") && has(&out, b"track") && has(&out, b"mvhd"));
        assert!(!has(&out, b"udta") && !has(&out, b"uuid"));
        assert_eq!(out.windows(4).filter(|w| w == b"free").count(), 3);
        assert!(!has(&out, &XMP_UUID));

        // A sequence without a `meta` box is a HEIF too.
        let mut f = ftyp(b"avis");
        f.extend(bx(b"moov", &bx(b"udta", b"GPS-SECRET")));
        f.extend(bx(b"mdat", PIXELS));
        stripped(&f);
    }

    #[test]
    fn malformed_or_unlocatable_files_are_refused() {
        let ok = heic();
        let e = EXIF.len() as u64;
        // A file whose only metadata item is EXIF, located by `exif`.
        let with = |version: u8, sizes: [u8; 4], exif: Loc, idat: &[u8]| {
            let mut m = hdlr(b"pict");
            m.extend(iinf(&[infe(2, 1, b"Exif", b"")]));
            m.extend(iloc(version, sizes, &[exif]));
            if !idat.is_empty() {
                m.extend(bx(b"idat", idat));
            }
            let mut f = ftyp(b"heic");
            f.extend(full(b"meta", 0, &m));
            // The EXIF in `mdat`, unless given in `idat`.
            let exif = if idat.is_empty() { EXIF } else { b"" };
            f.extend(bx(b"mdat", &[PIXELS, exif].concat()));
            f
        };
        let method = |m: u16, r: u16| Loc {
            method: m,
            reference: r,
            ..loc(1, 0, &[(0, e)])
        };
        let meta_only = |m: Vec<u8>| {
            let mut f = ftyp(b"heic");
            f.extend(full(b"meta", 0, &m));
            f
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("not ISOBMFF", b"\x89PNG\r\n\x1a\n".to_vec()),
            ("an MP4", {
                let mut f = bx(b"ftyp", b"isom\0\0\0\0isommp42");
                f.extend(bx(b"moov", b""));
                f
            }),
            ("truncated", ok[..ok.len() - 1].to_vec()),
            ("cut inside meta", ok[..40].to_vec()),
            ("box smaller than its header", {
                let mut f = ftyp(b"heic");
                f.extend_from_slice(b"\0\0\0\x04meta");
                f
            }),
            ("no meta, no moov", {
                let mut f = ftyp(b"heic");
                f.extend(bx(b"mdat", PIXELS));
                f
            }),
            ("two metas", {
                let mut f = ok.clone();
                f.extend(full(b"meta", 0, &hdlr(b"pict")));
                f
            }),
            ("not a picture handler", meta_only(hdlr(b"vide"))),
            ("EXIF without iloc", {
                let mut m = hdlr(b"pict");
                m.extend(iinf(&[infe(2, 1, b"Exif", b"")]));
                meta_only(m)
            }),
            ("infe version 4", {
                let mut m = hdlr(b"pict");
                m.extend(iinf(&[full(b"infe", 4, b"\0\0\0\x01\0\0Exif\0")]));
                meta_only(m)
            }),
            ("iloc version 3", with(3, [4, 4, 0, 0], method(0, 0), b"")),
            ("2-byte offsets", with(0, [2, 4, 0, 0], method(0, 0), b"")),
            (
                "bytes of another item",
                with(1, [4, 4, 0, 0], method(2, 0), b""),
            ),
            (
                "another file's bytes",
                with(1, [4, 4, 0, 0], method(0, 1), b""),
            ),
            (
                "open-ended extent",
                with(0, [4, 4, 0, 0], loc(1, 0, &[(0, 0)]), b""),
            ),
            (
                "extent past the end",
                with(0, [4, 4, 0, 0], loc(1, 0, &[(1 << 20, e)]), b""),
            ),
            (
                "offset overflow",
                with(0, [8, 4, 8, 0], loc(1, u64::MAX, &[(2, e)]), b""),
            ),
            ("idat missing", with(1, [4, 4, 0, 0], method(1, 0), b"")),
            ("extent past idat", {
                // Past `idat`, though not past the file.
                let mut f = with(1, [4, 4, 0, 0], method(1, 0), b"short");
                f.extend(bx(b"free", &[0; 200]));
                f
            }),
            ("mdat past the end", {
                let mut f = ftyp(b"heic");
                f.extend(full(b"meta", 0, &hdlr(b"pict")));
                f.extend_from_slice(&1000u32.to_be_bytes());
                f.extend_from_slice(b"mdat");
                f.extend_from_slice(PIXELS);
                f
            }),
            ("iloc cut short", {
                // The count says two items, the box holds one.
                let mut f = with(0, [4, 4, 0, 0], method(0, 0), b"");
                let at = f.windows(4).position(|w| w == b"iloc").unwrap() + 10;
                f[at..at + 2].copy_from_slice(&2u16.to_be_bytes());
                f
            }),
        ];
        for (why, f) in cases {
            assert!(
                strip(Format::Heif, &Bytes::from(f)).is_err(),
                "accepted: {why}"
            );
        }
        // The same files with the EXIF where it is (in `mdat`, in `idat`): stripped.
        let probe = with(0, [4, 4, 0, 0], method(0, 0), b"");
        let at = probe.windows(EXIF.len()).position(|w| w == EXIF).unwrap() as u64;
        stripped(&with(0, [4, 4, 0, 0], loc(1, 0, &[(at, e)]), b""));
        stripped(&with(1, [4, 4, 0, 0], method(1, 0), EXIF));
        // Items that are not metadata may be located any way at all.
        let mut m = hdlr(b"pict");
        m.extend(iinf(&[infe(2, 1, b"grid", b"")]));
        m.extend(iloc(1, [4, 4, 0, 0], &[method(2, 1)]));
        assert_eq!(strip(Format::Heif, &Bytes::from(meta_only(m))), Ok(None));
    }
}
