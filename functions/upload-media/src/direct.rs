//! `POST /v1/Services/{ServiceSid}/Media`: a small file in the request itself, as
//! the raw body (type from `Content-Type`, name from `Content-Disposition` or the
//! `Filename` query parameter) or as the one file part of a `multipart/form-data`
//! body (what a browser's FormData sends).
//!
//! The declared type and name are checked before the body is read, the body is
//! read once into one buffer (at most the direct limit) and sniffed, then stored,
//! hashed and scanned (when a scanner is configured) at the same time, so the
//! answer waits for the slower of S3 and clamd, not their sum: 201
//! `ready`, 422 infected, or 503 with the media `failed` until the sweep rescans
//! it. The record is written first (`uploading`, holding the author's slot and
//! the finalization lease), so a crash at any point leaves something the sweep
//! removes, never an orphan object.
//!
//! A refusal while the body is still arriving (too large, a type or name the
//! service refuses) first reads and discards the rest of the body, up to
//! [`DRAIN_MAX_BYTES`] and [`DRAIN_TIME`]: a client still streaming its body then
//! reads the Twilio error instead of a reset connection (`EPIPE`).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::BodyDataStream;
use axum::extract::{Request, State};
use axum::http::{header, request::Parts};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use chat_media::blob::ByteStream;
use chat_media::digest::ContentHash;
use chat_media::filename::Filename;
use chat_media::http::PublicBase;
use chat_media::http::{created, ApiResult, ServiceScope, TwilioForm};
use chat_media::model::{Media, NewUpload};
use chat_media::policy::{self, MediaType, Refusal};
use chat_media::sid::{MediaSid, ServiceSid};
use chat_media::upload::{self, Outcome, Passed, ScanContent, ScanStart, FINALIZE_LEASE_SECS};
use chat_media::{ApiError, AppState, Principal};
use futures::{Stream, StreamExt};

use crate::{author_of, content_disposition, create_record};

/// Room for the multipart framing around the file part.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// How much of a refused body is read and discarded before answering: API
/// Gateway's own payload limit (10 MB) with margin. A larger body is cut off.
pub const DRAIN_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// How long a refused body may take to arrive before the connection is cut.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The two ceilings on a direct upload and how to explain each.
struct Limits {
    direct: u64,
    service: u64,
    service_sid: ServiceSid,
}

impl Limits {
    fn max(&self) -> u64 {
        self.direct.min(self.service)
    }

    /// The 413 for a body of `size` bytes (or "more than the limit" when unknown).
    fn refuse(&self, size: Option<u64>) -> ApiError {
        if self.direct < self.service {
            let what = size.map_or_else(
                || "The request body is larger".to_owned(),
                |s| format!("The request body is {s} bytes,"),
            );
            ApiError::too_large(format!(
                "{what} more than the {} bytes a direct upload may carry; upload larger files \
                 with an upload session: POST /v1/Services/{}/MediaUploads",
                self.direct, self.service_sid
            ))
        } else {
            Refusal::TooLarge {
                size: size.unwrap_or(self.service + 1),
                limit: self.service,
            }
            .into()
        }
    }

    fn check_declared_length(&self, len: Option<u64>) -> ApiResult<()> {
        match len {
            Some(len) if len > self.max() => Err(self.refuse(Some(len))),
            _ => Ok(()),
        }
    }
}

/// A file as received: declared type, name, and its bytes.
struct Received {
    content_type: MediaType,
    filename: Option<Filename>,
    bytes: Bytes,
}

pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    req: Request,
) -> ApiResult<Response> {
    // A form is an upload by URL (`MediaUrl`), not a file.
    if chat_media::http::has_content_type(req.headers(), "application/x-www-form-urlencoded") {
        let body =
            chat_media::http::read_body_limited(req, chat_media::http::MAX_FORM_BYTES).await?;
        return crate::by_url::create(state, scope, body).await;
    }
    let (parts, body) = req.into_parts();
    let body = SharedBody::new(body.into_data_stream());
    let (settings, quotas, received) = match receive(&state, &scope, &parts, body.clone()).await {
        Ok(read) => read,
        Err(refused) => {
            body.drain().await;
            return Err(refused);
        }
    };
    policy::check_size(&settings, received.bytes.len() as u64)?;
    policy::check_content(&settings, &received.content_type, &received.bytes)?;
    let stripped = upload::strip_metadata(&settings, &received.content_type, &received.bytes)?;
    store(
        &state,
        &base,
        &scope.caller,
        scope.sid,
        &quotas,
        received,
        stripped,
    )
    .await
}

/// The service's media settings and quotas, and the file, read within the limits.
async fn receive(
    state: &AppState,
    scope: &ServiceScope,
    parts: &Parts,
    body: SharedBody,
) -> ApiResult<(
    chat_media::model::MediaSettings,
    chat_media::model::MediaQuotas,
    Received,
)> {
    let service = scope.load(state).await?;
    let limits = Limits {
        direct: state.settings.direct_upload_max_bytes,
        service: policy::size_limit(&service.media),
        service_sid: scope.sid.clone(),
    };
    let received = if is_form_data(parts) {
        read_form_data(parts, body, &service.media, &limits).await?
    } else {
        read_raw(parts, body, &service.media, &limits).await?
    };
    Ok((service.media, service.quotas, received))
}

/// The request body, shared by the reader (which may stop early) and the drain
/// that reads the rest after a refusal.
#[derive(Clone)]
struct SharedBody(Arc<Mutex<BodyDataStream>>);

impl SharedBody {
    fn new(body: BodyDataStream) -> Self {
        Self(Arc::new(Mutex::new(body)))
    }

    /// Reads and discards what is left of the body, within [`DRAIN_MAX_BYTES`]
    /// and [`DRAIN_TIME`], so the client reads the answer instead of a reset.
    async fn drain(mut self) {
        let read = async {
            let mut left = DRAIN_MAX_BYTES;
            while let Some(Ok(chunk)) = self.next().await {
                left = left.saturating_sub(chunk.len() as u64);
                if left == 0 {
                    tracing::info!("refused body larger than the drain limit; connection cut");
                    return;
                }
            }
        };
        if tokio::time::timeout(DRAIN_TIME, read).await.is_err() {
            tracing::info!("refused body still arriving after the drain time; connection cut");
        }
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll_next_unpin(cx)
    }
}

fn is_form_data(parts: &Parts) -> bool {
    chat_media::http::has_content_type(&parts.headers, "multipart/form-data")
}

fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn read_raw(
    parts: &Parts,
    body: SharedBody,
    settings: &chat_media::model::MediaSettings,
    limits: &Limits,
) -> ApiResult<Received> {
    let raw_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let content_type = MediaType::parse(&raw_type)?;
    if content_type.as_str() == "application/x-www-form-urlencoded" {
        return Err(ApiError::bad_request(
            "Send the file as the raw body with its media type as Content-Type \
             (application/x-www-form-urlencoded is a form, not media), or as multipart/form-data",
        ));
    }
    let query = TwilioForm::parse(parts.uri.query().unwrap_or_default().as_bytes());
    let named = match query.get("Filename") {
        Some(f) => Some(f.to_owned()),
        None => parts
            .headers
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(content_disposition::filename),
    };
    let filename = named.as_deref().map(Filename::parse).transpose()?.flatten();
    policy::check_declared(settings, &content_type, filename.as_ref())?;
    let expected = declared_length(parts);
    limits.check_declared_length(expected)?;
    let bytes = collect(body, expected, limits).await?;
    Ok(Received {
        content_type,
        filename,
        bytes,
    })
}

async fn read_form_data(
    parts: &Parts,
    body: SharedBody,
    settings: &chat_media::model::MediaSettings,
    limits: &Limits,
) -> ApiResult<Received> {
    let raw_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let boundary = multer::parse_boundary(&raw_type)
        .map_err(|_| ApiError::bad_request("multipart/form-data needs a boundary parameter"))?;
    let whole = limits.max() + FORM_OVERHEAD;
    if declared_length(parts).is_some_and(|len| len > whole) {
        return Err(limits.refuse(declared_length(parts)));
    }
    read_form_stream(body, boundary, settings, limits).await
}

/// The one file part of a `multipart/form-data` stream with this boundary.
async fn read_form_stream<S, E>(
    body: S,
    boundary: String,
    settings: &chat_media::model::MediaSettings,
    limits: &Limits,
) -> ApiResult<Received>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let whole = limits.max() + FORM_OVERHEAD;
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(whole));
    let mut form = multer::Multipart::with_constraints(body, boundary, constraints);
    let mut found: Option<Received> = None;
    while let Some(field) = form.next_field().await.map_err(|e| form_error(e, limits))? {
        let disposition_name = field
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(content_disposition::filename)
            .or_else(|| field.file_name().map(str::to_owned));
        let part_type = field
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A file part has a filename or a type; plain text fields are skipped.
        if disposition_name.is_none() && part_type.is_none() {
            drain(field, limits).await?;
            continue;
        }
        if found.is_some() {
            return Err(ApiError::bad_request(
                "multipart/form-data must carry exactly one file part",
            ));
        }
        let content_type = MediaType::parse(part_type.as_deref().unwrap_or_default())?;
        let filename = disposition_name
            .as_deref()
            .map(Filename::parse)
            .transpose()?
            .flatten();
        policy::check_declared(settings, &content_type, filename.as_ref())?;
        let bytes = collect(
            field.map(|c| c.map_err(|e| form_error(e, limits))),
            None,
            limits,
        )
        .await?;
        found = Some(Received {
            content_type,
            filename,
            bytes,
        });
    }
    found.ok_or_else(|| ApiError::bad_request("multipart/form-data carried no file part"))
}

async fn drain(mut field: multer::Field<'_>, limits: &Limits) -> ApiResult<()> {
    while field
        .chunk()
        .await
        .map_err(|e| form_error(e, limits))?
        .is_some()
    {}
    Ok(())
}

fn form_error(e: multer::Error, limits: &Limits) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            limits.refuse(None)
        }
        other => ApiError::bad_request(format!("Malformed multipart/form-data body: {other}")),
    }
}

/// Reads a body stream into one buffer, refusing past the limit.
async fn collect<S, E>(stream: S, expected: Option<u64>, limits: &Limits) -> ApiResult<Bytes>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<ApiErrorOrRead>,
{
    let max = limits.max();
    let mut buf = BytesMut::with_capacity(expected.unwrap_or(64 * 1024).min(max) as usize);
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.into().0)?;
        if (buf.len() + chunk.len()) as u64 > max {
            return Err(limits.refuse(None));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A body read failure as the caller's 400 (or an already-mapped error).
struct ApiErrorOrRead(ApiError);

impl From<ApiError> for ApiErrorOrRead {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<axum::Error> for ApiErrorOrRead {
    fn from(e: axum::Error) -> Self {
        Self(ApiError::bad_request(format!(
            "Could not read the request body: {e}"
        )))
    }
}

/// What [`parse_form_data`] found: the file part's declared type, name and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormFile {
    pub content_type: String,
    pub filename: Option<String>,
    pub size: usize,
}

/// Parses a complete `multipart/form-data` body exactly as a direct upload does
/// (boundary from `content_type`, one file part, the default media settings,
/// at most `max_bytes` of file), without I/O: the entry point for fuzzing.
pub fn parse_form_data(content_type: &str, body: Bytes, max_bytes: u64) -> ApiResult<FormFile> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::bad_request("multipart/form-data needs a boundary parameter"))?;
    let limits = Limits {
        direct: max_bytes,
        service: max_bytes,
        service_sid: ServiceSid::generate(),
    };
    let settings = chat_media::model::MediaSettings::default();
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(body)]);
    let received =
        futures::executor::block_on(read_form_stream(stream, boundary, &settings, &limits))?;
    Ok(FormFile {
        content_type: received.content_type.to_string(),
        filename: received.filename.map(String::from),
        size: received.bytes.len(),
    })
}

/// Records, stores and finalizes a checked direct upload: `stripped` (its bytes
/// without their metadata) when stripping changed them, else the bytes received.
async fn store(
    state: &AppState,
    base: &PublicBase,
    who: &Principal,
    service_sid: ServiceSid,
    quotas: &chat_media::model::MediaQuotas,
    received: Received,
    stripped: Option<Bytes>,
) -> ApiResult<Response> {
    let now = chrono::Utc::now().timestamp();
    let lease = now + FINALIZE_LEASE_SECS;
    let original_sha256 = stripped.as_ref().map(|_| ContentHash::of(&received.bytes));
    let bytes = stripped.unwrap_or_else(|| received.bytes.clone());
    let size = bytes.len() as u64;
    let mut media = Media::new_upload(
        MediaSid::generate(),
        service_sid,
        NewUpload {
            author: author_of(who),
            content_type: received.content_type.to_string(),
            filename: received.filename,
            size,
            upload: None,
            holds_slot: who.identity().is_some(),
        },
        now + state.settings.upload_session_ttl.as_secs() as i64,
        Some(lease),
        chat_media::model::now(),
    );
    create_record(state, &mut media, quotas, now).await?;

    // S3 and clamd take the bytes in hand at the same time (no read back from
    // S3). The hash comes first: bytes the service's hash index lists as scanned
    // clean under clamd's current signatures are not scanned again.
    // The put is polled first, so S3 is already receiving while the bytes are hashed.
    let put = state.blob.put(
        &media.object_key,
        ByteStream::from(bytes.clone()),
        &media.content_type,
    );
    let scan = async {
        let sha256 = ContentHash::of(&bytes);
        let scanned = match &state.scanner {
            Some(scanner) => Some(
                upload::scan_unless_known(state, scanner, &media.service_sid, &sha256, &bytes)
                    .await,
            ),
            None => None,
        };
        (sha256, scanned)
    };
    let (stored, (sha256, scanned)) = tokio::join!(put, scan);
    let outcome = match stored {
        Err(e) => Err(ApiError::from(e)),
        Ok(()) => {
            // The verdict is stored only now that the object is: scanned before the 201.
            let start = ScanStart::Checked {
                lease,
                passed: Passed {
                    sha256,
                    size,
                    original_sha256,
                },
            };
            let content = scanned.unwrap_or(ScanContent::Bytes(&bytes));
            upload::scan_media(state, &media, start, content, now)
                .await
                .map_err(ApiError::from)
        }
    };
    match outcome {
        Ok(Outcome::Finished(m)) => Ok(created(m.to_json(state.view_at(base.as_str()), None))),
        // Infected (422, object deleted) or scanner down (503, media `failed`
        // and kept for the sweep's rescan): the record says so already.
        Ok(Outcome::Refused(m)) => Err(ApiError::refused(&m)),
        Ok(Outcome::InProgress(m)) => Err(ApiError::internal(std::io::Error::other(format!(
            "media {} was taken over by another scan (status {})",
            m.sid,
            m.status.as_str()
        )))),
        Err(e) => {
            // Give the slot back; whatever was stored is left to the sweep.
            if let Err(fail) = upload::fail_upload(state, &media, lease, now).await {
                tracing::warn!(media = %media.sid, error = %fail, "failed upload left to the sweep");
            }
            Err(e)
        }
    }
}
