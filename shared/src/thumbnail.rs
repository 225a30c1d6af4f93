//! Thumbnails of image media (issue 17 §2): what size a request asks for, where
//! the thumbnail lives in S3, and how it is made, with every cost bounded.
//!
//! - Sizes snap up to [`SIZES`] (96, 320, 640, 1280 px, Matrix-style), width and
//!   height each, so at most 32 thumbnails exist per media and they cache well.
//! - `scale` fits the image inside the box (aspect kept); `crop` fills the box and
//!   cuts the centre. Never enlarged: an image smaller than the box keeps its size
//!   (`crop`: the largest box of the asked aspect that fits in it).
//! - Decoding is bounded before it starts: the header's pixel count against
//!   [`MAX_PIXELS`] (a 100000×100000 PNG of a few KB is refused without
//!   decoding), the source size against [`MAX_SOURCE_BYTES`], and every decoder
//!   allocation against [`MAX_DECODE_ALLOC`] (`image::Limits`). The caller adds a
//!   time limit ([`TIME_LIMIT`]). Memory is therefore at most the source
//!   (≤ 64 MiB) + the decoded image (≤ 256 MiB) + the thumbnail (≤ 6.3 MiB).
//! - JPEG sources give JPEG thumbnails (quality 80); PNG, GIF (first frame) and
//!   WebP give PNG (transparency kept). The EXIF orientation is applied.

use std::io::Cursor;
use std::time::Duration;

pub use image::ImageFormat;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// The edge lengths thumbnails snap to.
pub const SIZES: [u32; 4] = [96, 320, 640, 1280];
/// Most pixels (width × height) a source may have: 50 MP, a 48 MP phone photo.
pub const MAX_PIXELS: u64 = 50_000_000;
/// Largest source object read to make a thumbnail.
pub const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes the decoder may allocate (50 MP of 8-bit RGBA is 200 MB).
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// How long making one thumbnail may take before the request gives up: the
/// default of `Settings::thumbnail_time_limit`.
pub const TIME_LIMIT: Duration = Duration::from_secs(10);

/// How the image fits the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Scale,
    Crop,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Scale => "scale",
            Method::Crop => "crop",
        }
    }
}

/// A thumbnail request, snapped: `Width`, `Height` (1 to 10000, each snapped up
/// to [`SIZES`]) and `Method` (`scale`, the default, or `crop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub width: u32,
    pub height: u32,
    pub method: Method,
}

/// Which parameter is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param} {why}")]
pub struct SpecError {
    pub param: &'static str,
    pub why: &'static str,
}

/// The snapped edge: the smallest size at least `n`, the largest beyond them.
fn snap(n: u32) -> u32 {
    SIZES.into_iter().find(|s| *s >= n).unwrap_or(SIZES[3])
}

impl Spec {
    pub fn parse(
        width: Option<&str>,
        height: Option<&str>,
        method: Option<&str>,
    ) -> Result<Self, SpecError> {
        let edge = |param: &'static str, v: Option<&str>| -> Result<u32, SpecError> {
            let v = v.ok_or(SpecError {
                param,
                why: "is required",
            })?;
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .map(snap)
                .ok_or(SpecError {
                    param,
                    why: "must be a number from 1 to 10000",
                })
        };
        let method = match method {
            None => Method::Scale,
            Some(m) if m.eq_ignore_ascii_case("scale") => Method::Scale,
            Some(m) if m.eq_ignore_ascii_case("crop") => Method::Crop,
            Some(_) => {
                return Err(SpecError {
                    param: "Method",
                    why: "must be scale or crop",
                })
            }
        };
        Ok(Spec {
            width: edge("Width", width)?,
            height: edge("Height", height)?,
            method,
        })
    }

    /// The thumbnail's S3 key, prefixed by its media's key
    /// (`{object_key}.thumbnails/{W}x{H}-{method}`: a sibling "folder", not one
    /// under the key, so stores that map keys to files can hold both).
    pub fn key(&self, object_key: &str) -> String {
        format!(
            "{object_key}.thumbnails/{}x{}-{}",
            self.width,
            self.height,
            self.method.as_str()
        )
    }

    /// Every thumbnail key a media may have (deleted with it).
    pub fn all_keys(object_key: &str) -> Vec<String> {
        let mut keys = Vec::with_capacity(SIZES.len() * SIZES.len() * 2);
        for width in SIZES {
            for height in SIZES {
                for method in [Method::Scale, Method::Crop] {
                    keys.push(
                        Spec {
                            width,
                            height,
                            method,
                        }
                        .key(object_key),
                    );
                }
            }
        }
        keys
    }

    /// The thumbnail's size for a `w`×`h` source.
    pub fn fit(&self, w: u32, h: u32) -> (u32, u32) {
        let (bw, bh) = (f64::from(self.width), f64::from(self.height));
        let (w, h) = (f64::from(w), f64::from(h));
        let (tw, th) = match self.method {
            Method::Scale => {
                let f = (bw / w).min(bh / h).min(1.0);
                (w * f, h * f)
            }
            Method::Crop => {
                let f = (w / bw).min(h / bh).min(1.0);
                (bw * f, bh * f)
            }
        };
        ((tw.round() as u32).max(1), (th.round() as u32).max(1))
    }
}

/// The image types thumbnails are made of.
pub fn source_format(media_type: &str) -> Option<ImageFormat> {
    match media_type {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(ImageFormat::Jpeg),
        "image/png" | "image/x-png" => Some(ImageFormat::Png),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Why no thumbnail can be made of a media.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThumbnailError {
    #[error("thumbnails are made of JPEG, PNG, GIF and WebP images, not {0}")]
    Unsupported(String),
    #[error(
        "the image is {width}x{height}: more than the {MAX_PIXELS} pixels thumbnails are made of"
    )]
    TooManyPixels { width: u32, height: u32 },
    #[error(
        "the image is {0} bytes: more than the {MAX_SOURCE_BYTES} bytes thumbnails are made of"
    )]
    TooLarge(u64),
    #[error("the image could not be decoded")]
    Undecodable,
    #[error("the thumbnail took longer than {0} s to make")]
    TimedOut(u64),
}

/// A made thumbnail.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Makes the thumbnail of `data` (a `format` image). CPU-bound: run it on a
/// blocking thread under [`TIME_LIMIT`].
pub fn render(format: ImageFormat, data: &[u8], spec: Spec) -> Result<Thumbnail, ThumbnailError> {
    if data.len() as u64 > MAX_SOURCE_BYTES {
        return Err(ThumbnailError::TooLarge(data.len() as u64));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.limits(limits);
    let undecodable = |_| ThumbnailError::Undecodable;
    // Reads the header only: the pixel count is known before any pixel is.
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbnailError::TooManyPixels { width, height });
    }
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width(), img.height());
    let (tw, th) = spec.fit(w, h);
    let thumb = match spec.method {
        // The whole image: DynamicImage's own (non-generic) resize, no copy.
        Method::Scale => img.thumbnail_exact(tw, th),
        Method::Crop => {
            // The centred part of the source with the thumbnail's aspect.
            let f = (f64::from(w) / f64::from(tw)).min(f64::from(h) / f64::from(th));
            let cw = ((f64::from(tw) * f).round() as u32).clamp(1, w);
            let ch = ((f64::from(th) * f).round() as u32).clamp(1, h);
            shrink(&img, ((w - cw) / 2, (h - ch) / 2, cw, ch), tw, th)
        }
    };
    let (content_type, out_format, thumb) = match format {
        ImageFormat::Jpeg => ("image/jpeg", ImageFormat::Jpeg, thumb.into_rgb8().into()),
        _ => ("image/png", ImageFormat::Png, thumb),
    };
    let mut bytes = Cursor::new(Vec::new());
    match out_format {
        ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80);
            thumb.write_with_encoder(encoder)
        }
        _ => thumb.write_to(&mut bytes, out_format),
    }
    .map_err(undecodable)?;
    Ok(Thumbnail {
        bytes: bytes.into_inner(),
        content_type,
        width: tw,
        height: th,
    })
}

/// The `rect` (x, y, w, h) of `img` shrunk to `tw`×`th`, without copying the
/// source for the crop (8-bit images; others are converted first).
fn shrink(img: &DynamicImage, rect: (u32, u32, u32, u32), tw: u32, th: u32) -> DynamicImage {
    use image::imageops::{crop_imm, thumbnail};
    let (x, y, w, h) = rect;
    match img {
        DynamicImage::ImageRgb8(b) => thumbnail(&*crop_imm(b, x, y, w, h), tw, th).into(),
        DynamicImage::ImageRgba8(b) => thumbnail(&*crop_imm(b, x, y, w, h), tw, th).into(),
        DynamicImage::ImageLuma8(b) => thumbnail(&*crop_imm(b, x, y, w, h), tw, th).into(),
        DynamicImage::ImageLumaA8(b) => thumbnail(&*crop_imm(b, x, y, w, h), tw, th).into(),
        other => {
            let b = other.to_rgba8();
            thumbnail(&*crop_imm(&b, x, y, w, h), tw, th).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_snap_up_and_methods_parse() {
        let s = Spec::parse(Some("100"), Some("50"), Some("crop")).unwrap();
        assert_eq!((s.width, s.height, s.method), (320, 96, Method::Crop));
        let s = Spec::parse(Some("5000"), Some("1280"), None).unwrap();
        assert_eq!((s.width, s.height, s.method), (1280, 1280, Method::Scale));
        assert!(Spec::parse(Some("0"), Some("1"), None).is_err());
        assert!(Spec::parse(None, Some("1"), None).is_err());
        assert!(Spec::parse(Some("1"), Some("1"), Some("zoom")).is_err());
    }

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        let scale = |w, h| Spec {
            width: w,
            height: h,
            method: Method::Scale,
        };
        let crop = |w, h| Spec {
            width: w,
            height: h,
            method: Method::Crop,
        };
        assert_eq!(scale(96, 96).fit(4000, 3000), (96, 72));
        assert_eq!(scale(1280, 1280).fit(4000, 3000), (1280, 960));
        assert_eq!(scale(640, 640).fit(100, 50), (100, 50));
        assert_eq!(crop(320, 320).fit(4000, 3000), (320, 320));
        assert_eq!(crop(640, 320).fit(100, 100), (100, 50));
        assert_eq!(Spec::all_keys("k").len(), 32);
    }

    #[test]
    fn a_png_bomb_is_refused_from_its_header() {
        // A PNG claiming 100000×100000 pixels in 57 bytes.
        let chunk = |kind: &[u8], body: &[u8]| {
            let mut c = (body.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(body);
            c.extend_from_slice(&crate::imagemeta::crc32(&c[4..]).to_be_bytes());
            c
        };
        let mut ihdr = 100_000u32.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &[0x78, 1, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 1]));
        png.extend(chunk(b"IEND", b""));
        let spec = Spec::parse(Some("96"), Some("96"), None).unwrap();
        assert!(matches!(
            render(ImageFormat::Png, &png, spec),
            Err(ThumbnailError::TooManyPixels { .. })
        ));
    }
}
