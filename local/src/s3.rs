//! The embedded S3: s3s-fs, with GETs served from a 1 MiB-buffered file stream.
//!
//! s3s-fs 0.14 streams a GET in 4 KiB reads (66–119 MB/s here), slower than clamd
//! takes bytes (200–230 MB/s), so the local S3 and not the code under test set the
//! speed of finalizing large uploads in `scripts/dev` and the tests. [`BufferedFs`]
//! lets s3s-fs answer every call (checks, headers, ranges, errors) and only swaps
//! the body of a successful GET for the same bytes read in 1 MiB buffers, and
//! answers unknown multipart upload ids as S3 does ([`unknown_upload`]).

use std::path::{Path, PathBuf};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Bytes per read of a GET body.
const GET_BUFFER: usize = 1024 * 1024;

/// S3 answers a call naming an upload id it does not know (never created,
/// completed or aborted) with 404 `NoSuchUpload`; s3s-fs says `AccessDenied`
/// (its only reason for that code in these calls: the id's record is gone). The
/// app relies on S3's answer: a Complete retried after a timed-out attempt that
/// did complete finds `NoSuchUpload` and reads the object instead.
fn unknown_upload(e: s3s::S3Error) -> s3s::S3Error {
    if *e.code() == s3s::S3ErrorCode::AccessDenied {
        s3s::s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        )
    } else {
        e
    }
}

/// s3s-fs with large GET buffers and S3's answer for unknown upload ids; every
/// other call is s3s-fs's own.
pub struct BufferedFs {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

impl BufferedFs {
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
        // The same root s3s-fs resolves paths against.
        let root = std::env::current_dir()?.join(root).canonicalize()?;
        Ok(Self { fs, root })
    }
}

#[async_trait::async_trait]
impl S3 for BufferedFs {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let path = self.root.join(&req.input.bucket).join(&req.input.key);
        let range = req.input.range;
        let mut response = self.fs.get_object(req).await?;
        let out = &mut response.output;
        let len = out.content_length.unwrap_or(0).max(0) as u64;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| s3s::s3_error!(e, InternalError))?;
        let file_len = file
            .metadata()
            .await
            .map_err(|e| s3s::s3_error!(e, InternalError))?
            .len();
        // s3s-fs has checked the range already.
        let start = match range.map(|r| r.check(file_len)) {
            Some(Ok(r)) => r.start,
            Some(Err(_)) => return Err(s3s::s3_error!(InvalidRange)),
            None => 0,
        };
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| s3s::s3_error!(e, InternalError))?;
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(len), GET_BUFFER);
        out.body = Some(StreamingBlob::wrap(body));
        Ok(response)
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.fs.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await.map_err(unknown_upload)
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await.map_err(unknown_upload)
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.fs.list_parts(req).await.map_err(unknown_upload)
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.fs
            .complete_multipart_upload(req)
            .await
            .map_err(unknown_upload)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs
            .abort_multipart_upload(req)
            .await
            .map_err(unknown_upload)
    }
}
