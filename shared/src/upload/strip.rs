//! The metadata-stripping step of finalize ([`crate::imagemeta`]), when the
//! service's `Media.StripMetadata` is on and the checked type is JPEG, PNG,
//! WebP, HEIC/HEIF or AVIF. A direct upload is stripped in hand before it is
//! stored; a session upload is stripped from the bytes of the one read
//! ([`super::pass`]) and its
//! object rewritten once, within the finalize lease, to the same key (a single
//! PUT, or a multipart upload of `upload_part_size` parts, 4 in flight, that
//! replaces the object only when completed). Either way `size` and `sha256`
//! describe the stored bytes and `original_sha256` the uploaded ones.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{FinalizeError, FinalizeResult, Refusal};
use crate::blob::{ByteStream, CompleteUploadError};
use crate::config::AppState;
use crate::imagemeta::{self, Format};
use crate::model::MediaSettings;
use crate::policy::MediaType;

/// Parts uploaded at a time when a stripped object is rewritten.
const PARTS_IN_FLIGHT: usize = 4;

/// The format to strip, if the service strips and the type has metadata we remove.
pub fn format_to_strip(settings: &MediaSettings, content_type: &MediaType) -> Option<Format> {
    settings
        .strip_metadata
        .then(|| Format::of(content_type.as_str()))
        .flatten()
}

/// `bytes` without their metadata, `None` if there is nothing to strip (the
/// service does not strip, the type has no metadata we remove, or none was
/// there). Bytes that do not parse as their image type are refused.
pub fn strip_metadata(
    settings: &MediaSettings,
    content_type: &MediaType,
    bytes: &Bytes,
) -> Result<Option<Bytes>, Refusal> {
    let Some(format) = format_to_strip(settings, content_type) else {
        return Ok(None);
    };
    imagemeta::strip(format, bytes).map_err(|_| Refusal::MalformedImage {
        declared: content_type.as_str().to_owned(),
    })
}

/// Replaces the object `key` with `bytes` (see the module doc).
pub(super) async fn rewrite(
    state: &AppState,
    key: &str,
    content_type: &str,
    bytes: Bytes,
) -> FinalizeResult<()> {
    let part = state.settings.upload_part_size.max(5 * 1024 * 1024) as usize;
    if bytes.len() <= part {
        state
            .blob
            .put(key, ByteStream::from(bytes), content_type)
            .await?;
        return Ok(());
    }
    let id = state.blob.create_multipart(key, content_type).await?;
    let uploaded: FinalizeResult<()> = async {
        let etags: Vec<String> = futures::stream::iter((0..bytes.len()).step_by(part))
            .enumerate()
            .map(|(n, start)| {
                let body = bytes.slice(start..(start + part).min(bytes.len()));
                state.blob.upload_part(key, &id, n as u32 + 1, body)
            })
            .buffered(PARTS_IN_FLIGHT)
            .try_collect()
            .await?;
        state
            .blob
            .complete_multipart(key, &id, &etags)
            .await
            .map_err(|e| match e {
                CompleteUploadError::Blob(b) => FinalizeError::Blob(b),
                other => FinalizeError::Blob(crate::blob::BlobError::Other(other.to_string())),
            })
    }
    .await;
    if uploaded.is_err() {
        if let Err(e) = state.blob.abort_multipart(key, &id).await {
            tracing::warn!(object = %key, error = %e, "multipart rewrite left to the bucket lifecycle rule");
        }
    }
    uploaded
}
