//! S3 access: the bucket holding media objects. Presigning is local computation;
//! every other call goes to S3 and maps its failures to [`BlobError`].

use std::time::Duration;

use crate::digest::ContentHash;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
pub use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::{Stream, StreamExt};

/// Bytes per ranged GET when an object is read whole ([`Blob::read_ranges`]).
pub const READ_RANGE_BYTES: u64 = 8 * 1024 * 1024;

/// Ranged GETs in flight at once: one S3 connection gives ~90 MB/s in AWS,
/// several ranges multiply it. Memory is bounded by `in_flight × range`.
pub const READ_RANGES_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    #[error("object not found")]
    NotFound,
    #[error("S3 is unavailable: {0}")]
    Unavailable(String),
    #[error("S3 error: {0}")]
    Other(String),
}

impl BlobError {
    /// S3's own failures (a 5xx, whatever its code) are an outage the caller
    /// may retry, never a 500 of ours.
    pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::DispatchFailure(e) => {
                BlobError::Unavailable(format!("cannot reach S3: {e:?}"))
            }
            SdkError::TimeoutError(_) => BlobError::Unavailable("S3 timed out".into()),
            SdkError::ServiceError(e) => {
                let server_error = e.raw().status().is_server_error();
                let e = e.into_err();
                match e.code() {
                    Some("NoSuchKey" | "NotFound" | "NoSuchUpload") => BlobError::NotFound,
                    Some("SlowDown" | "ServiceUnavailable" | "InternalError") => {
                        BlobError::Unavailable(format!("{e}"))
                    }
                    code if server_error => BlobError::Unavailable(format!(
                        "{}: {}",
                        code.unwrap_or("unknown"),
                        e.message().unwrap_or_default()
                    )),
                    code => BlobError::Other(format!(
                        "{}: {}",
                        code.unwrap_or("unknown"),
                        e.message().unwrap_or_default()
                    )),
                }
            }
            other => BlobError::Unavailable(format!("{other:?}")),
        }
    }
}

pub type BlobResult<T> = Result<T, BlobError>;

/// How a presigned download presents itself to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadHeaders {
    pub content_type: String,
    pub content_disposition: String,
}

/// A presigned request a client sends straight to S3: the URL and the headers it
/// must carry exactly (they are part of the signature).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
}

impl PresignedRequest {
    fn from_sdk(p: aws_sdk_s3::presigning::PresignedRequest) -> Self {
        Self {
            method: p.method().to_owned(),
            url: p.uri().to_owned(),
            headers: p
                .headers()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
                .collect(),
        }
    }
}

/// Why S3 refused to complete a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompleteUploadError {
    /// The parts do not match what was uploaded (missing part, wrong ETag, part too small).
    #[error("the parts do not match the upload: {0}")]
    InvalidParts(String),
    /// No such multipart upload: already completed, aborted, or never created.
    #[error("no such multipart upload")]
    NoSuchUpload,
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// An object's SHA-256 and length, read through once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub sha256: String,
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct Blob {
    client: Client,
    bucket: String,
}

impl Blob {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if missing; for local runs and tests.
    pub async fn ensure_bucket(&self) -> BlobResult<()> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(BlobError::from_sdk(e)),
        }
    }

    pub async fn put(&self, key: &str, body: ByteStream, content_type: &str) -> BlobResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(BlobError::from_sdk)
    }

    /// Size of the object, or `None` if it does not exist.
    pub async fn size(&self, key: &str) -> BlobResult<Option<u64>> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length.unwrap_or(0).max(0) as u64)),
            Err(e) => match BlobError::from_sdk(e) {
                BlobError::NotFound => Ok(None),
                // HEAD has no body, so a missing key arrives as a bare 404.
                BlobError::Other(m) if m.starts_with("unknown") => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Deletes an object; deleting a missing object succeeds (S3 semantics).
    pub async fn delete(&self, key: &str) -> BlobResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(BlobError::from_sdk)
    }

    /// Deletes up to 1000 objects in one DeleteObjects call (missing ones count
    /// as deleted); fails if any could not be deleted.
    pub async fn delete_many(&self, keys: &[String]) -> BlobResult<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BlobError::Other(e.to_string()))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| BlobError::Other(e.to_string()))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(BlobError::from_sdk)?;
        match out.errors().first() {
            None => Ok(()),
            Some(e) => Err(BlobError::Unavailable(format!(
                "deleting {}: {}",
                e.key().unwrap_or_default(),
                e.code().unwrap_or_default()
            ))),
        }
    }

    /// A presigned GET that overrides the response headers; no network call.
    pub async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
        headers: &DownloadHeaders,
    ) -> BlobResult<String> {
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| BlobError::Other(format!("presigning config: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(&headers.content_type)
            .response_content_disposition(&headers.content_disposition)
            .presigned(config)
            .await
            .map_err(BlobError::from_sdk)?;
        Ok(request.uri().to_string())
    }

    fn presigning(expires_in: Duration) -> BlobResult<PresigningConfig> {
        PresigningConfig::expires_in(expires_in)
            .map_err(|e| BlobError::Other(format!("presigning config: {e}")))
    }

    /// A presigned PUT of exactly `content_length` bytes that creates the object
    /// only if it does not exist yet (`If-None-Match: *`), so a URL can never
    /// replace bytes that were already checked.
    pub async fn presign_put(
        &self,
        key: &str,
        content_length: u64,
        expires_in: Duration,
    ) -> BlobResult<PresignedRequest> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(content_length as i64)
            .if_none_match("*")
            .presigned(Self::presigning(expires_in)?)
            .await
            .map_err(BlobError::from_sdk)?;
        Ok(PresignedRequest::from_sdk(request))
    }

    /// Starts a multipart upload; returns its upload id.
    pub async fn create_multipart(&self, key: &str, content_type: &str) -> BlobResult<String> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(BlobError::from_sdk)?;
        out.upload_id
            .ok_or_else(|| BlobError::Other("S3 returned no upload id".into()))
    }

    /// A presigned PUT of one part (1-based) of exactly `content_length` bytes.
    pub async fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        content_length: u64,
        expires_in: Duration,
    ) -> BlobResult<PresignedRequest> {
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .content_length(content_length as i64)
            .presigned(Self::presigning(expires_in)?)
            .await
            .map_err(BlobError::from_sdk)?;
        Ok(PresignedRequest::from_sdk(request))
    }

    /// Completes a multipart upload from its parts' ETags, in part order; refuses
    /// to replace an existing object.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), CompleteUploadError> {
        let parts = etags
            .iter()
            .enumerate()
            .map(|(i, etag)| {
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(etag)
                    .build()
            })
            .collect();
        match self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.code() {
                Some("NoSuchUpload") => Err(CompleteUploadError::NoSuchUpload),
                Some(
                    code @ ("InvalidPart" | "InvalidPartOrder" | "EntityTooSmall"
                    | "InvalidRequest" | "MalformedXML"),
                ) => Err(CompleteUploadError::InvalidParts(format!(
                    "{code}: {}",
                    e.message().unwrap_or_default()
                ))),
                _ => Err(BlobError::from_sdk(e).into()),
            },
        }
    }

    /// Uploads one part (1-based) of a multipart upload from the bytes in hand
    /// (media fetched from a URL); returns its ETag for the completion.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> BlobResult<String> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number as i32)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(BlobError::from_sdk)?;
        out.e_tag
            .ok_or_else(|| BlobError::Other("S3 returned no part ETag".into()))
    }

    /// Aborts a multipart upload and frees its parts; a missing upload is fine.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> BlobResult<()> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match BlobError::from_sdk(e) {
                BlobError::NotFound => Ok(()),
                other => Err(other),
            },
        }
    }

    /// The first `len` bytes of an object (fewer if it is shorter), or `None` if
    /// it does not exist: what the sniffer needs, without reading the rest.
    pub async fn head_bytes(&self, key: &str, len: usize) -> BlobResult<Option<Bytes>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes=0-{}", len.saturating_sub(1)))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match BlobError::from_sdk(e) {
                    BlobError::NotFound => Ok(None),
                    other => Err(other),
                }
            }
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BlobError::Unavailable(format!("reading S3 body: {e}")))?;
        Ok(Some(body.into_bytes()))
    }

    /// The first `size` bytes of an object as ranged GETs of `range` bytes,
    /// `in_flight` of them at a time, yielded in order: one slow connection does
    /// not cap the read, and memory stays at most `in_flight × range` whatever the
    /// size. A range that comes back short ends the stream early (the object
    /// changed or is shorter); the caller compares the bytes it got with `size`.
    pub fn read_ranges(
        &self,
        key: &str,
        size: u64,
        range: u64,
        in_flight: usize,
    ) -> impl Stream<Item = BlobResult<Bytes>> + Send + 'static {
        let range = range.max(1);
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), key.to_owned());
        futures::stream::iter((0..size).step_by(range as usize))
            .map(move |start| {
                let end = (start + range).min(size) - 1;
                let get = client
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .range(format!("bytes={start}-{end}"))
                    .send();
                async move {
                    let out = get.await.map_err(BlobError::from_sdk)?;
                    let body = out
                        .body
                        .collect()
                        .await
                        .map_err(|e| BlobError::Unavailable(format!("reading S3 body: {e}")))?;
                    Ok::<_, BlobError>((body.into_bytes(), end + 1 - start))
                }
            })
            .buffered(in_flight.max(1))
            // A short range: stop after it, so no later range is appended past a gap.
            .scan(false, |short, got| {
                if *short {
                    return futures::future::ready(None);
                }
                let item = got.map(|(bytes, want)| {
                    *short = (bytes.len() as u64) < want;
                    bytes
                });
                futures::future::ready(Some(item))
            })
    }

    /// Streams an object through SHA-256 (constant memory); `None` if it is missing.
    pub async fn digest(&self, key: &str) -> BlobResult<Option<Digested>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match BlobError::from_sdk(e) {
                    BlobError::NotFound => Ok(None),
                    other => Err(other),
                }
            }
        };
        let mut body = out.body;
        let mut hasher = ContentHash::new();
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| BlobError::Unavailable(format!("reading S3 body: {e}")))?
        {
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok(Some(Digested {
            sha256: hasher.hex(),
            size,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(status: u16, code: &str) -> BlobError {
        let err = GetObjectError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        BlobError::from_sdk(SdkError::service_error(err, raw))
    }

    #[test]
    fn any_server_error_is_an_outage_and_an_unknown_client_error_is_not() {
        assert!(matches!(
            service_error(500, "SomethingNew"),
            BlobError::Unavailable(_)
        ));
        assert!(matches!(
            service_error(503, "SlowDown"),
            BlobError::Unavailable(_)
        ));
        assert!(matches!(
            service_error(403, "AccessDenied"),
            BlobError::Other(_)
        ));
        assert_eq!(service_error(404, "NoSuchKey"), BlobError::NotFound);
    }
}
