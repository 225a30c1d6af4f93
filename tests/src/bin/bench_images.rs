//! The cost of the image work of issue 17, one measurement per process so each
//! peak RSS (VmHWM) is its own: `bench_images strip` (metadata stripping of a
//! 12 MP JPEG photo with EXIF/GPS, in memory, as a direct upload does it),
//! `bench_images strip150` (the same on a 150 MB JPEG, as a session finalize does
//! before it rewrites the object), `bench_images heic` and `heic150` (the same for
//! a 3 MB and a 150 MB HEIC, whose EXIF and XMP are overwritten in place),
//! `bench_images thumbnail` (one 320 px and one 1280 px thumbnail of the 12 MP
//! photo, decode included). Prints; asserts nothing.
//! Run by `scripts/bench-images`.

use std::time::Instant;

use bytes::Bytes;
use chat_media::imagemeta::{self, Format};
use chat_media::thumbnail::{self, ImageFormat, Spec};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// An EXIF APP1 with a GPS IFD, as phones write it (a few hundred bytes suffice:
/// stripping cost is in the bytes it copies, not in the EXIF's size).
fn exif_app1() -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01\x88\x25\0\x04\0\0\0\x01\0\0\0\x1a\0\0\0\0".to_vec();
    tiff.extend_from_slice(&[0u8; 400]);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend(tiff);
    seg
}

/// A 4000×3000 photo-like JPEG (noise over a gradient, so it is photo-sized).
fn photo_12mp() -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed & 31) as u8;
        image::Rgb([(x / 16) as u8 ^ n, (y / 12) as u8 ^ n, ((x + y) / 28) as u8])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .expect("encodes");
    let mut out = jpeg[..2].to_vec();
    out.extend(exif_app1());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A 12 MP photo grown to ~150 MB with more entropy-coded bytes (stuffed where
/// they hold 0xFF): what stripping walks through is the same kind of bytes.
fn jpeg_150mb(photo: &[u8]) -> Vec<u8> {
    let sos = photo
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a scan");
    let mut out = photo[..photo.len() - 2].to_vec();
    let mut x = 0x9e37_79b9_u32;
    while out.len() < 150 * 1000 * 1000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let b = (x >> 8) as u8;
        out.push(b);
        if b == 0xFF {
            out.push(0);
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    assert!(sos < out.len());
    out
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// A HEIC of `size` bytes as phones lay it out: `ftyp`, a `meta` with an image
/// item, an EXIF item (GPS) and an XMP item located by `iloc` in `mdat`, then
/// `mdat` (noise standing for the coded image).
fn heic(size: usize) -> Vec<u8> {
    let exif = [&b"\0\0\0\x06Exif\0\0"[..], &exif_app1()[10..]].concat();
    let xmp = [
        &b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>"[..],
        &[b' '; 2000],
        b"</x:xmpmeta>",
    ]
    .concat();
    let pixels = size - exif.len() - xmp.len() - 400;
    let meta = |at: u32| {
        let mut m = vec![0, 0, 0, 0];
        m.extend(bx(b"hdlr", &[&[0u8; 8][..], b"pict", &[0; 13]].concat()));
        let infe = |id: u8, kind: &[u8; 4], extra: &[u8]| {
            bx(
                b"infe",
                &[&[2, 0, 0, 0, 0, id, 0, 0][..], kind, b"\0", extra].concat(),
            )
        };
        let mut iinf = vec![0, 0, 0, 0, 0, 3];
        iinf.extend(infe(1, b"hvc1", b""));
        iinf.extend(infe(2, b"Exif", b""));
        iinf.extend(infe(3, b"mime", b"application/rdf+xml\0"));
        m.extend(bx(b"iinf", &iinf));
        let mut iloc = vec![0, 0, 0, 0, 0x44, 0, 0, 3];
        let mut at = at;
        for (id, len) in [(1u16, pixels), (2, exif.len()), (3, xmp.len())] {
            iloc.extend_from_slice(&id.to_be_bytes());
            iloc.extend_from_slice(&[0, 0, 0, 1]);
            iloc.extend_from_slice(&at.to_be_bytes());
            iloc.extend_from_slice(&(len as u32).to_be_bytes());
            at += len as u32;
        }
        m.extend(bx(b"iloc", &iloc));
        bx(b"meta", &m)
    };
    let mut f = bx(b"ftyp", b"heic\0\0\0\0mif1heicmiaf");
    let start = (f.len() + meta(0).len() + 8) as u32;
    f.extend(meta(start));
    let mut mdat = Vec::with_capacity(pixels + exif.len() + xmp.len());
    let mut x = 0x9e37_79b9_u32;
    mdat.extend((0..pixels).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (x >> 8) as u8
    }));
    mdat.extend(exif);
    mdat.extend(xmp);
    f.extend(bx(b"mdat", &mdat));
    f
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    let photo = photo_12mp();
    let base = peak_rss_mib();
    match what.as_str() {
        "strip" | "strip150" | "heic" | "heic150" => {
            let (format, data) = match what.as_str() {
                "strip" => (Format::Jpeg, Bytes::from(photo)),
                "strip150" => (Format::Jpeg, Bytes::from(jpeg_150mb(&photo))),
                "heic" => (Format::Heif, Bytes::from(heic(3_000_000))),
                _ => (Format::Heif, Bytes::from(heic(150_000_000))),
            };
            let base = peak_rss_mib();
            let runs = if matches!(what.as_str(), "strip" | "heic") {
                20
            } else {
                3
            };
            let started = Instant::now();
            let mut out_len = 0;
            for _ in 0..runs {
                let out = imagemeta::strip(format, &data).expect("parses");
                assert!(out.is_some(), "metadata found");
                out_len = out.map_or(data.len(), |o| o.len());
            }
            let ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
            // Baseline, same run: one plain copy of the input, the least any
            // rewrite of the bytes costs.
            let started = Instant::now();
            for _ in 0..runs {
                std::hint::black_box(Bytes::copy_from_slice(std::hint::black_box(&data)));
            }
            let copy_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
            println!(
                "strip {what}: {:.1} MB -> {:.1} MB in {ms:.1} ms per image (mean of {runs}), {:.1}x a plain copy ({copy_ms:.1} ms); peak RSS {:.0} MiB ({:.0} MiB holding the input)",
                data.len() as f64 / 1e6,
                out_len as f64 / 1e6,
                ms / copy_ms.max(1e-6),
                peak_rss_mib(),
                base
            );
        }
        "thumbnail" => {
            println!(
                "12 MP JPEG: {:.1} MB; process before decoding: {base:.0} MiB",
                photo.len() as f64 / 1e6
            );
            // Baseline, same run: decoding the photo alone, which every size pays.
            let started = Instant::now();
            std::hint::black_box(
                image::load_from_memory_with_format(&photo, ImageFormat::Jpeg).expect("decodes"),
            );
            let decode_ms = started.elapsed().as_secs_f64() * 1000.0;
            println!("decode alone (baseline): {decode_ms:.0} ms");
            for (w, method) in [(320, "scale"), (1280, "crop")] {
                let spec = Spec::parse(Some(&w.to_string()), Some(&w.to_string()), Some(method))
                    .expect("a spec");
                let started = Instant::now();
                let t = thumbnail::render(ImageFormat::Jpeg, &photo, spec).expect("renders");
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                println!(
                    "thumbnail {w} {method}: {}x{} ({} bytes) in {ms:.0} ms, {:.2}x the decode alone; peak RSS {:.0} MiB",
                    t.width,
                    t.height,
                    t.bytes.len(),
                    ms / decode_ms.max(1e-6),
                    peak_rss_mib()
                );
            }
        }
        _ => eprintln!("usage: bench_images strip|strip150|heic|heic150|thumbnail"),
    }
}
