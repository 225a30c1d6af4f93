//! Upload sessions for files too large for a request body (up to 150 MiB).
//!
//! `POST /v1/Services/{ServiceSid}/MediaUploads` (`Size`, `ContentType`, `Filename`,
//! optional `Sha256` of the whole file) checks the declared facts (a `Sha256` on the
//! service's deny-list is refused at once, 422), records a Media in `uploading`
//! (holding the author's slot) and answers with presigned S3 URLs under
//! `upload.parts`: one PUT when
//! `Size` is at most `UPLOAD_SINGLE_PUT_MAX_BYTES`, else one URL per multipart part.
//! Every URL must be sent with exactly the headers listed beside it (the length is
//! signed; a single PUT also carries `If-None-Match: *`, so the object can never be
//! replaced once written).
//!
//! `POST /v1/Services/{ServiceSid}/Media/{MediaSid}/Complete` (`PartETag` repeated in
//! part order, multipart only) finalizes: 200 with the Media when it is ready, 202
//! while another finalizer (the S3 event) is at it, or the refusal (413, 415, 400;
//! 400 when the bytes do not have the declared `Sha256`, which also lets finalize
//! skip the scan of bytes the service's hash index knows clean: see `upload`).
//! Calling it again answers the same.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::blob::PresignedRequest;
use chat_media::filename::Filename;
use chat_media::http::PublicBase;
use chat_media::http::{created, parse_sid, ApiResult, ServiceScope, TwilioForm};
use chat_media::model::{iso, Media, NewUpload, Sha256, UploadSession};
use chat_media::policy::{self, MediaType, Refusal};
use chat_media::sid::MediaSid;
use chat_media::upload::{self, Outcome, Trigger};
use chat_media::{ApiError, AppState};
use serde_json::{json, Value};

use crate::{author_of, create_record};

/// S3 allows at most this many parts.
const MAX_PARTS: u64 = 10_000;

pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ServiceScope,
    form: TwilioForm,
) -> ApiResult<Response> {
    let size: u64 = form
        .required("Size")?
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid("Size", "must be a whole number of bytes"))?;
    let content_type = MediaType::parse(form.required("ContentType")?).map_err(|r| match r {
        Refusal::MissingType | Refusal::InvalidType(_) => {
            ApiError::invalid("ContentType", "must be a media type such as image/png")
        }
        other => other.into(),
    })?;
    let filename = form
        .get("Filename")
        .map(Filename::parse)
        .transpose()?
        .flatten();
    let declared_sha256 = form
        .get("Sha256")
        .map(|v| Sha256::parse(v.trim()))
        .transpose()
        .map_err(|e| ApiError::invalid("Sha256", e))?;
    let service = scope.load(&state).await?;
    let (service_sid, who) = (scope.sid, scope.caller);
    policy::check_size(&service.media, size)?;
    policy::check_declared(&service.media, &content_type, filename.as_ref())?;
    // Declared bytes the service deny-listed are refused before they are sent
    // (finalize still checks the hash of the bytes that arrive).
    if let Some(digest) = &declared_sha256 {
        if let Some(entry) = state.store.quarantined_hash(&service_sid, digest).await? {
            return Err(Refusal::Quarantined {
                reason: entry.reason,
            }
            .into());
        }
    }

    let settings = &state.settings;
    let now = chrono::Utc::now().timestamp();
    let sid = MediaSid::generate();
    let object_key = Media::object_key_for(&service_sid, &sid);
    let session = if size <= settings.single_put_max_bytes {
        UploadSession {
            multipart_upload_id: None,
            part_size: size,
            part_count: 1,
            declared_sha256,
        }
    } else {
        let part_count = size.div_ceil(settings.upload_part_size);
        if part_count > MAX_PARTS {
            return Err(ApiError::internal(std::io::Error::other(
                "UPLOAD_PART_SIZE_BYTES is too small for this size (S3 allows 10000 parts)",
            )));
        }
        UploadSession {
            multipart_upload_id: Some(
                state
                    .blob
                    .create_multipart(&object_key, content_type.as_str())
                    .await?,
            ),
            part_size: settings.upload_part_size,
            part_count: part_count as u32,
            declared_sha256,
        }
    };
    let today = chat_media::model::now();
    let mut media = Media::new_upload(
        sid,
        service_sid,
        NewUpload {
            author: author_of(&who),
            content_type: content_type.to_string(),
            filename,
            size,
            upload: Some(session.clone()),
            holds_slot: who.identity().is_some(),
        },
        now + settings.upload_session_ttl.as_secs() as i64,
        None,
        today,
    );
    if let Err(e) = create_record(&state, &mut media, &service.quotas, now).await {
        if let Some(id) = &session.multipart_upload_id {
            if let Err(abort) = state.blob.abort_multipart(&media.object_key, id).await {
                tracing::warn!(error = %abort, "multipart upload left to the bucket lifecycle rule");
            }
        }
        return Err(e);
    }

    let ttl = settings.upload_url_ttl;
    let mut parts = Vec::with_capacity(session.part_count as usize);
    for n in 1..=session.part_count {
        let len = session.part_len(size, n);
        let request = match &session.multipart_upload_id {
            None => state.blob.presign_put(&media.object_key, len, ttl).await?,
            Some(id) => {
                state
                    .blob
                    .presign_part(&media.object_key, id, n, len, ttl)
                    .await?
            }
        };
        parts.push(part_json(n, len, request));
    }
    let mut body = media.to_json(state.view_at(base.as_str()), None);
    let complete_url = state
        .view_at(base.as_str())
        .url(&format!("{}/Complete", media.path()));
    body["links"]["complete"] = json!(complete_url);
    body["upload"] = json!({
        "type": if session.multipart_upload_id.is_some() { "multipart" } else { "single" },
        "part_size": session.part_size,
        "part_count": session.part_count,
        "url_expires": iso(&(today + chrono::Duration::seconds(ttl.as_secs() as i64))),
        "session_expires": media.expires_at.and_then(|e| chrono::DateTime::from_timestamp(e, 0)).map(|t| iso(&t)),
        "parts": parts,
        "complete_url": complete_url,
        "sha256": session.declared_sha256,
    });
    Ok(created(body))
}

fn part_json(n: u32, len: u64, request: PresignedRequest) -> Value {
    json!({
        "part_number": n,
        "size": len,
        "method": request.method,
        "url": request.url,
        "headers": request.headers,
    })
}

pub async fn complete(
    State(state): State<AppState>,
    base: PublicBase,
    ServiceScope {
        sid: service_sid,
        caller: who,
    }: ServiceScope,
    Path((_, media)): Path<(String, String)>,
    form: TwilioForm,
) -> ApiResult<Response> {
    let media_sid: MediaSid = parse_sid("MediaSid", &media)?;
    let not_found = || ApiError::not_found(format!("Media {media_sid} not found"));
    let media = state
        .store
        .get_media(&media_sid)
        .await?
        .filter(|m| m.service_sid == service_sid)
        .ok_or_else(not_found)?;
    if let Some(identity) = who.identity() {
        if &media.author != identity {
            return Err(ApiError::forbidden(format!(
                "Media {media_sid} was uploaded by another identity"
            )));
        }
    }
    let part_etags: Vec<String> = form
        .all("PartETag")
        .into_iter()
        .map(|e| e.trim().to_owned())
        .collect();
    let now = chrono::Utc::now().timestamp();
    match upload::finalize(
        &state,
        &media_sid,
        Trigger::Complete {
            part_etags: &part_etags,
        },
        now,
    )
    .await?
    {
        Outcome::Finished(m) => {
            Ok(Json(m.to_json(state.view_at(base.as_str()), None)).into_response())
        }
        Outcome::InProgress(m) => Ok((
            StatusCode::ACCEPTED,
            Json(m.to_json(state.view_at(base.as_str()), None)),
        )
            .into_response()),
        Outcome::Refused(m) => Err(ApiError::refused(&m)),
    }
}
