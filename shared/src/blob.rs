//! S3 access: the bucket holding media objects. Presigning is local computation;
//! every other call goes to S3 and maps its failures to [`BlobError`].

use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::error::ApiError;

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
    pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err {
            SdkError::DispatchFailure(e) => {
                BlobError::Unavailable(format!("cannot reach S3: {e:?}"))
            }
            SdkError::TimeoutError(_) => BlobError::Unavailable("S3 timed out".into()),
            SdkError::ServiceError(e) => {
                let e = e.into_err();
                match e.code() {
                    Some("NoSuchKey" | "NotFound" | "NoSuchUpload") => BlobError::NotFound,
                    Some("SlowDown" | "ServiceUnavailable" | "InternalError") => {
                        BlobError::Unavailable(format!("{e}"))
                    }
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

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => ApiError::not_found("The media content was not found"),
            BlobError::Unavailable(m) => {
                tracing::error!(error = %m, "S3 unavailable");
                ApiError::unavailable("The media store is unavailable; try again shortly")
            }
            BlobError::Other(m) => ApiError::internal(format!("Media store error: {m}")),
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
}
