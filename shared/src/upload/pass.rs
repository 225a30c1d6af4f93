//! One read of a stored upload: its bytes come from S3 once, as ranged GETs in
//! flight together ([`Blob::read_ranges`](crate::blob::Blob::read_ranges)), and
//! feed the sniffer (first chunk), SHA-256 and clamd (when configured) from the
//! same stream. Memory is the ranges in flight plus the scanner's two chunks,
//! whatever the object size, except for an image whose metadata is stripped
//! ([`super::strip`]): its bytes are kept (up to 150 MB, twice while the
//! stripped copy is written) and the object rewritten once. A session that
//! declared a SHA-256 the service's hash index knows clean is only hashed, not
//! scanned, and refused if the hash differs from the declared one.

use crate::digest::ContentHash;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::{FinalizeError, FinalizeResult, Passed, Refusal};
use crate::blob::{BlobError, READ_RANGES_IN_FLIGHT, READ_RANGE_BYTES};
use crate::config::AppState;
use crate::model::{MediaSettings, Sha256};
use crate::policy::{self, MediaType};
use crate::scan::{ScanResult, ScanVerdict};

/// What the one read found about an object whose first bytes passed the sniffer.
#[derive(Debug)]
pub(super) struct Read {
    pub passed: Passed,
    pub verdict: Verdict,
}

/// What the one read learnt of the bytes' safety.
#[derive(Debug)]
pub(super) enum Verdict {
    /// No scanner is configured.
    Unscanned,
    /// clamd's answer on the same bytes, as uploaded.
    Scanned(ScanResult),
    /// Not sent to clamd: the bytes have the session's declared SHA-256, which
    /// the service's hash index lists as scanned clean under this signature
    /// version, the one clamd reports now ([`super::scanning::declared_known_clean`]).
    Known(u64),
}

/// Reads the `size`-byte object `key` once: sniffs its first bytes against the
/// declared type (a refusal stops the read), hashes all of it, and streams it
/// to clamd at the same time, unless `known` (the declared hash is known clean
/// under that signature version): then it is only hashed. Bytes whose hash is
/// not the `declared` one are refused before anything else is done with them.
/// An image whose metadata the service strips is then stripped and rewritten
/// ([`super::strip`]). `Ok(Err(_))` is a refusal; an S3 failure or a size that
/// differs from `size` leaves the upload as it was.
pub(super) async fn read_once(
    state: &AppState,
    key: &str,
    size: u64,
    settings: &MediaSettings,
    content_type: &MediaType,
    declared: Option<&Sha256>,
    known: Option<u64>,
) -> FinalizeResult<Result<Read, Refusal>> {
    let mut chunks = state
        .blob
        .read_ranges(key, size, READ_RANGE_BYTES, READ_RANGES_IN_FLIGHT)
        .boxed();
    let first = match chunks.next().await {
        Some(chunk) => chunk?,
        None => Bytes::new(),
    };
    let head = &first[..first.len().min(policy::SNIFF_BYTES)];
    if let Err(r) = policy::check_content(settings, content_type, head) {
        return Ok(Err(r));
    }
    let strip = super::strip::format_to_strip(settings, content_type);
    // The bytes to strip, when stripping (capacity capped: `size` is the caller's).
    let mut kept =
        strip.map(|_| BytesMut::with_capacity(size.min(policy::size_limit(settings)) as usize));
    let mut keep = |bytes: &[u8]| {
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(bytes);
        }
    };
    let mut hasher = ContentHash::new();
    hasher.update(&first);
    keep(&first);
    let mut read = first.len() as u64;
    let mut failed: Option<BlobError> = None;
    // Known clean bytes are not streamed to clamd: the loop below hashes them.
    let scanner = state.scanner.as_ref().filter(|_| known.is_none());
    let scanned = match scanner {
        None => None,
        Some(scanner) => {
            // Every chunk is hashed as it goes to clamd; an S3 failure is kept
            // to be reported as such, not as the scanner's.
            let rest = chunks.by_ref().map(|chunk| match chunk {
                Ok(bytes) => {
                    hasher.update(&bytes);
                    keep(&bytes);
                    read += bytes.len() as u64;
                    Ok(bytes)
                }
                Err(e) => {
                    let io = std::io::Error::other(e.to_string());
                    failed = Some(e);
                    Err(io)
                }
            });
            let stream = futures::stream::once(futures::future::ready(Ok(first))).chain(rest);
            Some(
                scanner
                    .scan_reader(tokio_util::io::StreamReader::new(stream))
                    .await,
            )
        }
    };
    if let Some(e) = failed {
        return Err(e.into());
    }
    // Whatever clamd did not take (no scanner, or it stopped early) is still hashed:
    // a media that failed its scan keeps its hash for the rescan.
    while let Some(chunk) = chunks.next().await {
        let bytes = chunk?;
        hasher.update(&bytes);
        keep(&bytes);
        read += bytes.len() as u64;
    }
    if read != size {
        return Err(FinalizeError::ObjectChanged);
    }
    let original = hasher.hex();
    let verdict = match (scanned, known) {
        (Some(verdict), _) => Verdict::Scanned(verdict),
        (None, Some(version)) => Verdict::Known(version),
        (None, None) => Verdict::Unscanned,
    };
    if let Some(declared) = declared.filter(|d| d.as_str() != original) {
        // Infected bytes are refused as such (the stronger verdict, and logged).
        if !matches!(verdict, Verdict::Scanned(Ok(ScanVerdict::Infected(_)))) {
            return Ok(Err(Refusal::Sha256Mismatch {
                declared: declared.to_string(),
                actual: original,
            }));
        }
    }
    let stripped = match kept {
        None => None,
        Some(kept) => match super::strip::strip_metadata(settings, content_type, &kept.freeze()) {
            Ok(stripped) => stripped,
            Err(refusal) => return Ok(Err(refusal)),
        },
    };
    let passed = match stripped {
        None => Passed {
            sha256: original,
            size,
            original_sha256: None,
        },
        Some(stripped) => {
            let passed = Passed {
                sha256: ContentHash::of(&stripped),
                size: stripped.len() as u64,
                original_sha256: Some(original),
            };
            let started = std::time::Instant::now();
            super::strip::rewrite(state, key, content_type.as_str(), stripped).await?;
            tracing::info!(object = %key, from = size, to = passed.size, took_ms = started.elapsed().as_millis() as u64, "metadata stripped; object rewritten");
            passed
        }
    };
    Ok(Ok(Read { passed, verdict }))
}
