//! Takedown by hash (admins only): `POST /v1/Services/{ServiceSid}/Media/{MediaSid}/Quarantine`
//! (`Reason`): the media becomes `quarantined`, its object is deleted, its message
//! stays and shows the media as removed, and its SHA-256 enters the service's
//! deny-list (listed and lifted through chat-api's `QuarantinedHashes`).

use axum::extract::{Path, State};
use axum::Json;
use chat_media::http::{parse_sid, AdminService, ApiResult, TwilioForm};
use chat_media::sid::MediaSid;
use chat_media::takedown::{self, Reason};
use chat_media::{ApiError, AppState};
use serde_json::Value;

/// POST .../Media/{MediaSid}/Quarantine: the quarantined Media.
pub async fn quarantine(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Path((_, media)): Path<(String, String)>,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let media_sid: MediaSid = parse_sid("MediaSid", &media)?;
    let reason =
        Reason::parse(form.required("Reason")?).map_err(|e| ApiError::invalid("Reason", e))?;
    let media = takedown::quarantine(&state, &service.sid, &media_sid, &reason).await?;
    Ok(Json(media.to_json(state.view(), None)))
}
