//! Direct-upload `multipart/form-data` bodies, through the same code the
//! upload handler runs (multer, Content-Disposition, filename, media type and
//! declared-type policy): any body gives a file or a refusal, never a panic.
//! The first input line, when it starts with `multipart/`, is the Content-Type;
//! otherwise the boundary is `XBOUNDARY`.
#![no_main]

use libfuzzer_sys::fuzz_target;

const MAX: u64 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) if data.starts_with(b"multipart/") => {
            (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..])
        }
        _ => ("multipart/form-data; boundary=XBOUNDARY".to_owned(), data),
    };
    if let Ok(file) =
        upload_media::parse_form_data(&content_type, bytes::Bytes::copy_from_slice(body), MAX)
    {
        assert!(file.size as u64 <= MAX);
    }
});
