//! Issue 17 §1–2: photos lose their metadata at finalize (direct and session
//! uploads), and thumbnails, authorized like the media, bounded, deleted with it.
//! Every image is made here with the `image` crate; the EXIF is written by hand.

use std::time::{Duration, Instant};

use chat_media::imagemeta::exif_orientation;
use chat_media::thumbnail::Spec;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, media_path, send, sha256_hex, sid, Fixture, TestApp};
use image::GenericImageView;
use serde_json::Value;

/// A `w`×`h` JPEG (a smooth gradient, so a 12 MP one stays small).
fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .unwrap();
    out
}

/// An EXIF APP1 segment (big-endian TIFF) with a camera Make, a DateTime, the
/// Orientation and a GPS IFD (48°51'24"N 2°17'40"E).
fn exif_app1(orientation: u16) -> Vec<u8> {
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value.to_be_bytes());
    };
    // IFD0 at 8 (4 entries, 54 bytes), GPS IFD at 62 (4 entries), data from 116.
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&4u16.to_be_bytes());
    entry(&mut t, 0x010F, 2, 7, 116); // Make
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation) << 16); // Orientation
    entry(&mut t, 0x0132, 2, 20, 124); // DateTime
    entry(&mut t, 0x8825, 4, 1, 62); // GPS IFD
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&4u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, 0x4E00_0000); // "N"
    entry(&mut t, 0x0002, 5, 3, 144); // latitude
    entry(&mut t, 0x0003, 2, 2, 0x4500_0000); // "E"
    entry(&mut t, 0x0004, 5, 3, 168); // longitude
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 116);
    t.extend_from_slice(b"Camera\0\0");
    t.extend_from_slice(b"2024:05:01 12:00:00\0");
    for (n, d) in [(48, 1), (51, 1), (2400, 100), (2, 1), (17, 1), (4000, 100)] {
        t.extend_from_slice(&(n as u32).to_be_bytes());
        t.extend_from_slice(&(d as u32).to_be_bytes());
    }
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + t.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend(t);
    seg
}

/// A small JPEG photo carrying [`exif_app1`] right after its SOI.
fn photo(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let plain = jpeg(w, h);
    let mut out = plain[..2].to_vec();
    out.extend(exif_app1(orientation));
    out.extend_from_slice(&plain[2..]);
    out
}

/// The segments of a JPEG up to its first SOS: (marker, body).
fn segments(jpeg: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    let mut out = Vec::new();
    let mut i = 2;
    while jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let marker = jpeg[i + 1];
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        out.push((marker, jpeg[i + 4..i + 2 + len].to_vec()));
        i += 2 + len;
    }
    out
}

/// What the EXIF of a downloaded JPEG says: `None` without any APP1; else its
/// orientation, after checking it holds nothing else (one IFD entry, no GPS).
fn exif_left(jpeg: &[u8]) -> Option<u16> {
    let app1: Vec<_> = segments(jpeg)
        .into_iter()
        .filter(|(m, _)| *m == 0xE1)
        .collect();
    assert!(app1.len() <= 1, "one APP1 at most");
    let (_, body) = app1.first()?;
    let tiff = body.strip_prefix(b"Exif\0\0").expect("only EXIF in APP1");
    assert_eq!(tiff.len(), 26, "a minimal TIFF: one IFD of one entry");
    assert_eq!(&tiff[8..10], &[0, 1], "one entry");
    assert_eq!(&tiff[10..12], &[0x01, 0x12], "the Orientation");
    for gone in [&b"Camera"[..], b"2024:05:01", &[0x88, 0x25]] {
        assert!(
            !jpeg.windows(gone.len()).any(|w| w == gone),
            "{gone:?} left"
        );
    }
    exif_orientation(tiff)
}

async fn direct(
    app: &TestApp,
    f: &Fixture,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    send(
        app.user(&f.token, Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", content_type)
            .body(bytes.to_vec()),
    )
    .await
}

async fn by_session(
    app: &TestApp,
    f: &Fixture,
    content_type: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let session = app
        .uploaded_session(&f.token, &f.service_sid, content_type, bytes)
        .await;
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&session));
    send(app.user(&f.token, Method::POST, &complete)).await
}

/// The bytes a caller downloads through `.../Content`.
async fn download(app: &TestApp, f: &Fixture, media: &str) -> Vec<u8> {
    let path = format!("{}/{media}/Content", media_path(&f.service_sid));
    let response = app.admin(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let url = response.headers()["location"].to_str().unwrap().to_owned();
    let got = chat_media_tests::reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    got.bytes().await.unwrap().to_vec()
}

fn thumbnail_path(f: &Fixture, media: &str, query: &str) -> String {
    format!("{}/{media}/Thumbnail?{query}", media_path(&f.service_sid))
}

/// The thumbnail `query` asks for, as `token`'s user (admin when `None`): the
/// redirect followed and the image decoded.
async fn thumbnail(app: &TestApp, f: &Fixture, media: &str, query: &str) -> image::DynamicImage {
    let response = app
        .admin(Method::GET, &thumbnail_path(f, media, query))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "{query}: {}",
        response.text().await.unwrap()
    );
    let url = response.headers()["location"].to_str().unwrap().to_owned();
    let got = chat_media_tests::reqwest::get(&url).await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    image::load_from_memory(&got.bytes().await.unwrap()).expect("a decodable thumbnail")
}

#[tokio::test]
async fn a_photo_loses_its_exif_and_gps_direct_and_by_session() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // Upright (1): nothing of the EXIF is left. Turned (6): only the Orientation.
    for (how, orientation, kept) in [
        ("direct", 1, None),
        ("direct", 6, Some(6)),
        ("session", 1, None),
        ("session", 6, Some(6)),
    ] {
        let original = photo(64, 48, orientation);
        let (status, media) = match how {
            "direct" => direct(&app, &f, "image/jpeg", &original).await,
            _ => by_session(&app, &f, "image/jpeg", &original).await,
        };
        assert!(status.is_success(), "{how}: {status} {media}");
        assert_eq!(media["status"], "ready", "{how}: {media}");
        let stored = download(&app, &f, &sid(&media)).await;
        assert_eq!(exif_left(&stored), kept, "{how} {orientation}");
        assert!(stored.len() < original.len(), "{how}");
        // What is stored is what the record describes; the upload's hash is kept.
        assert_eq!(media["size"], stored.len(), "{how}");
        assert_eq!(media["sha256"], sha256_hex(&stored), "{how}");
        assert_eq!(media["original_sha256"], sha256_hex(&original), "{how}");
        // Same pixels' dimensions, same displayed orientation.
        let (a, b) = (
            image::load_from_memory(&original).unwrap(),
            image::load_from_memory(&stored).unwrap(),
        );
        assert_eq!(a.dimensions(), b.dimensions(), "{how}");
        assert_eq!(a.dimensions(), (64, 48));
        let record = app.record(sid(&media)).await;
        assert_eq!(app.object(&record.object_key).await.unwrap(), stored);
    }
}

#[tokio::test]
async fn a_service_that_does_not_strip_keeps_the_bytes() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    assert_eq!(f.service["media"]["strip_metadata"], true, "on by default");
    let path = format!("/v2/Services/{}", f.service_sid);
    let (status, body) = send(
        app.admin(Method::POST, &path)
            .form(&[("Media.StripMetadata", "maybe")]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, service) = send(
        app.admin(Method::POST, &path)
            .form(&[("Media.StripMetadata", "false")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{service}");
    assert_eq!(service["media"]["strip_metadata"], false);
    let original = photo(32, 32, 6);
    for how in ["direct", "session"] {
        let (status, media) = match how {
            "direct" => direct(&app, &f, "image/jpeg", &original).await,
            _ => by_session(&app, &f, "image/jpeg", &original).await,
        };
        assert!(status.is_success(), "{how}: {status} {media}");
        assert_eq!(download(&app, &f, &sid(&media)).await, original, "{how}");
        assert_eq!(media["sha256"], sha256_hex(&original));
        assert_eq!(media["original_sha256"], sha256_hex(&original));
    }
}

#[tokio::test]
async fn an_image_that_does_not_parse_as_its_type_is_refused() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // A JPEG start (the sniffer says JPEG), then an APP1 longer than the file.
    let mut corrupt = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x40, 0x00];
    corrupt.extend_from_slice(b"Exif\0\0truncated");
    let (status, body) = direct(&app, &f, "image/jpeg", &corrupt).await;
    assert_error(status, &body, 415, Some(20415));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a valid image/jpeg"),
        "{body}"
    );
    assert_eq!(app.slots(&f.service_sid, "alice").await, 0, "nothing kept");
    let (status, body) = by_session(&app, &f, "image/jpeg", &corrupt).await;
    assert_error(status, &body, 415, Some(20415));
    let session = app.media_records(&f.service_sid).await;
    let refused = session
        .iter()
        .find(|m| m.status.as_str() == "rejected")
        .unwrap();
    assert!(
        !app.object_exists(&refused.object_key).await,
        "its object is deleted"
    );
}

#[tokio::test]
async fn thumbnails_of_a_12_mp_photo_have_the_sizes_and_aspect_asked() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, media) = direct(&app, &f, "image/jpeg", &jpeg(4000, 3000)).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let me = sid(&media);
    assert_eq!(
        media["links"]["thumbnail"],
        format!("{}/{me}/Thumbnail", app.url(&media_path(&f.service_sid)))
    );
    for size in chat_media::thumbnail::SIZES {
        let scaled = thumbnail(&app, &f, &me, &format!("Width={size}&Height={size}")).await;
        assert_eq!(scaled.dimensions(), (size, size * 3 / 4), "scale {size}");
        let cropped = thumbnail(
            &app,
            &f,
            &me,
            &format!("Width={size}&Height={size}&Method=crop"),
        )
        .await;
        assert_eq!(cropped.dimensions(), (size, size), "crop {size}");
    }
    // Sizes snap up; a tall crop of a wide photo keeps the asked aspect.
    let snapped = thumbnail(&app, &f, &me, "Width=100&Height=5000&Method=crop").await;
    assert_eq!(snapped.dimensions(), (320, 1280));
    let snapped = thumbnail(&app, &f, &me, "Width=200&Height=200").await;
    assert_eq!(snapped.dimensions(), (320, 240));
    // Stored under the media's key.
    let key = app.record(&me).await.object_key;
    let spec = Spec::parse(Some("96"), Some("96"), Some("crop")).unwrap();
    assert!(spec.key(&key).starts_with(&format!("{key}.thumbnails/")));
    assert!(app.object_exists(&spec.key(&key)).await);
    // Bad parameters: 400 naming them.
    for (query, param) in [
        ("Height=96", "Width"),
        ("Width=0&Height=96", "Width"),
        ("Width=96&Height=x", "Height"),
        ("Width=96&Height=96&Method=zoom", "Method"),
    ] {
        let (status, body) = send(app.admin(Method::GET, &thumbnail_path(&f, &me, query))).await;
        assert_error(status, &body, 400, Some(20001));
        assert!(body["message"].as_str().unwrap().contains(param), "{body}");
    }
}

#[tokio::test]
async fn thumbnails_are_refused_for_other_types_and_to_non_members() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, text) = direct(&app, &f, "text/plain", b"not an image").await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(text["links"]["thumbnail"], Value::Null);
    let (status, body) = send(app.admin(
        Method::GET,
        &thumbnail_path(&f, &sid(&text), "Width=96&Height=96"),
    ))
    .await;
    assert_error(status, &body, 415, Some(20415));

    let (status, media) = direct(&app, &f, "image/jpeg", &jpeg(40, 30)).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let (status, message) = app.post_media(&f, &f.token, &sid(&media)).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let path = thumbnail_path(&f, &sid(&media), "Width=96&Height=96");
    let outsider = app.token(&f.service_sid, "mallory");
    let (status, body) = send(app.user(&outsider, Method::GET, &path)).await;
    assert_error(status, &body, 403, Some(50400));
    let (status, _) = send(app.user(&f.token, Method::GET, &path)).await;
    assert_eq!(status, StatusCode::FOUND, "the member gets it");
}

#[tokio::test]
async fn a_thumbnail_past_its_time_limit_is_refused_and_nothing_is_stored() {
    // No time at all: the decode, started on a blocking thread, cannot be done
    // when the limit is first checked.
    let settings = chat_media::config::Settings {
        thumbnail_time_limit: Duration::ZERO,
        ..chat_media::config::Settings::default()
    };
    let app = TestApp::spawn_with(chat_media_tests::aws_options(), settings).await;
    let f = app.service_with_member("alice").await;
    let (status, media) = direct(&app, &f, "image/jpeg", &jpeg(2000, 1500)).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let (status, body) = send(app.admin(
        Method::GET,
        &thumbnail_path(&f, &sid(&media), "Width=320&Height=320"),
    ))
    .await;
    assert_error(status, &body, 415, Some(20415));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("took longer than"),
        "{body}"
    );
    let key = app.record(sid(&media)).await.object_key;
    let spec = Spec::parse(Some("320"), Some("320"), None).unwrap();
    assert!(
        !app.object_exists(&spec.key(&key)).await,
        "no thumbnail stored"
    );
}

/// The process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_in_bounded_time_and_memory() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // 100000×100000 RGBA (40 GB decoded) in 69 bytes.
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut c = (body.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(body);
        let crc = {
            let mut crc = !0u32;
            for &b in &c[4..] {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
                }
            }
            !crc
        };
        c.extend_from_slice(&crc.to_be_bytes());
        c
    };
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    bomb.extend(chunk(b"IHDR", &ihdr));
    bomb.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
    bomb.extend(chunk(b"IEND", b""));
    let (status, media) = direct(&app, &f, "image/png", &bomb).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");

    let before = peak_rss_mib();
    let started = Instant::now();
    let (status, body) = send(app.admin(
        Method::GET,
        &thumbnail_path(&f, &sid(&media), "Width=1280&Height=1280"),
    ))
    .await;
    let took = started.elapsed();
    let after = peak_rss_mib();
    println!(
        "decompression bomb ({} bytes, 100000x100000): refused in {} ms, process peak RSS {before} -> {after} MiB",
        bomb.len(),
        took.as_millis()
    );
    assert_error(status, &body, 415, Some(20415));
    assert!(
        body["message"].as_str().unwrap().contains("100000x100000"),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "refused from its header");
    assert!(after - before < 64, "nothing decoded");
}

#[tokio::test]
async fn thumbnails_go_with_their_media() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let asked = [
        (
            "Width=96&Height=96",
            Spec::parse(Some("96"), Some("96"), None),
        ),
        (
            "Width=640&Height=320&Method=crop",
            Spec::parse(Some("640"), Some("320"), Some("crop")),
        ),
    ]
    .map(|(query, spec)| (query, spec.unwrap()));

    // Deleted with its message.
    let (status, media) = direct(&app, &f, "image/jpeg", &jpeg(400, 300)).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let (status, message) = app.post_media(&f, &f.token, &sid(&media)).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let key = app.record(sid(&media)).await.object_key;
    for (query, spec) in asked {
        thumbnail(&app, &f, &sid(&media), query).await;
        assert!(app.object_exists(&spec.key(&key)).await, "{query}");
    }
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!app.object_exists(&key).await);
    for (query, spec) in asked {
        assert!(!app.object_exists(&spec.key(&key)).await, "{query} deleted");
    }

    // Deleted by a quarantine.
    let (status, media) = direct(&app, &f, "image/jpeg", &jpeg(300, 400)).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let key = app.record(sid(&media)).await.object_key;
    for (query, _) in asked {
        thumbnail(&app, &f, &sid(&media), query).await;
    }
    let (status, body) = app.quarantine(&f, &sid(&media), "abuse").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!app.object_exists(&key).await);
    for (query, spec) in asked {
        assert!(!app.object_exists(&spec.key(&key)).await, "{query} deleted");
    }
}

#[tokio::test]
async fn a_quarantined_photo_is_refused_by_its_original_and_its_stripped_bytes() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let original = photo(48, 32, 1);
    let (status, media) = direct(&app, &f, "image/jpeg", &original).await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    let stripped = download(&app, &f, &sid(&media)).await;
    assert_ne!(stripped, original);
    let (status, body) = app.quarantine(&f, &sid(&media), "abuse").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bob = app.join(&f, "bob", None).await;
    for bytes in [&original, &stripped] {
        let (status, body) = direct(&app, &bob, "image/jpeg", bytes).await;
        assert_error(status, &body, 422, Some(20422));
    }
}

/// A HEIC or AVIF photo with EXIF (make, serial, GPS) and XMP, made by
/// pillow-heif / Pillow (`heif_images.py`), and the strings its metadata holds.
fn heif_photo(format: &str) -> (Vec<u8>, Vec<String>) {
    let made = chat_media_tests::twilio_python(
        "heif_images.py",
        &serde_json::json!({"op": "make", "format": format}),
    );
    let bytes = hex::decode(made["hex"].as_str().unwrap()).unwrap();
    let markers: Vec<String> = serde_json::from_value(made["markers"].clone()).unwrap();
    for m in &markers {
        assert!(
            bytes.windows(m.len()).any(|w| w == m.as_bytes()),
            "{format} made without {m}"
        );
    }
    (bytes, markers)
}

#[tokio::test]
async fn a_heic_or_avif_photo_loses_its_exif_and_xmp_in_place_direct_and_by_session() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let heic = heif_photo("HEIF");
    let avif = heif_photo("AVIF");
    for (how, content_type, (original, markers)) in [
        ("direct", "image/heic", &heic),
        ("session", "image/heif", &heic),
        ("direct", "image/avif", &avif),
        ("session", "image/avif", &avif),
    ] {
        let (status, media) = match how {
            "direct" => direct(&app, &f, content_type, original).await,
            _ => by_session(&app, &f, content_type, original).await,
        };
        let what = format!("{how} {content_type}");
        assert!(status.is_success(), "{what}: {status} {media}");
        assert_eq!(media["status"], "ready", "{what}: {media}");
        let stored = download(&app, &f, &sid(&media)).await;
        // Overwritten in place: same size, something changed, no marker left.
        assert_eq!(stored.len(), original.len(), "{what}");
        assert_ne!(&stored, original, "{what}");
        for m in markers {
            assert!(
                !stored.windows(m.len()).any(|w| w == m.as_bytes()),
                "{what}: {m} left"
            );
        }
        assert_eq!(media["size"], stored.len(), "{what}");
        assert_eq!(media["sha256"], sha256_hex(&stored), "{what}");
        assert_eq!(media["original_sha256"], sha256_hex(original), "{what}");
        let record = app.record(sid(&media)).await;
        assert_eq!(app.object(&record.object_key).await.unwrap(), stored);
        // libheif and Pillow read it: same pixels, no EXIF tag, no GPS, no XMP.
        let read = chat_media_tests::twilio_python(
            "heif_images.py",
            &serde_json::json!({
                "op": "check",
                "original": hex::encode(original),
                "stored": hex::encode(&stored),
            }),
        );
        assert_eq!(read["original_size"], serde_json::json!([64, 48]), "{what}");
        assert_eq!(read["size"], read["original_size"], "{what}");
        assert_eq!(read["same_pixels"], true, "{what}");
        assert!(
            !read["original_exif_tags"].as_array().unwrap().is_empty()
                && !read["original_gps_tags"].as_array().unwrap().is_empty(),
            "{what}: the original had EXIF and GPS: {read}"
        );
        assert_eq!(read["exif_tags"], serde_json::json!([]), "{what}: {read}");
        assert_eq!(read["gps"], serde_json::json!({}), "{what}: {read}");
        let xmp = read["xmp"].as_str().unwrap();
        assert!(!xmp.contains("rdf:Description"), "{what}: {xmp}");
    }
}

#[tokio::test]
async fn a_heic_that_does_not_parse_is_refused() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (heic, _) = heif_photo("HEIF");
    // Cut short: the last box (`mdat`) now ends past the end of the file.
    let truncated = &heic[..heic.len() - 10];
    let (status, body) = direct(&app, &f, "image/heic", truncated).await;
    assert_error(status, &body, 415, Some(20415));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a valid image/heic"),
        "{body}"
    );
    let (status, body) = by_session(&app, &f, "image/avif", truncated).await;
    assert_error(status, &body, 415, Some(20415));
    let records = app.media_records(&f.service_sid).await;
    let refused = records
        .iter()
        .find(|m| m.status.as_str() == "rejected")
        .unwrap();
    assert!(
        !app.object_exists(&refused.object_key).await,
        "its object is deleted"
    );
}
