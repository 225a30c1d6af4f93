//! Upload by URL: `POST /v1/Services/{ServiceSid}/Media` with the form parameter
//! `MediaUrl` (admins only), for systems that hand over a file by URL (a CRM, a
//! ticketing tool). The Media is recorded `uploading` and answered 202 at once;
//! the fetch runs as an inbound job (`chat_media::inbound`), under the same rules
//! as the media of Twilio's inbound webhook (allowed hosts, no internal
//! addresses, size limit, then the checks and scan of every upload).
//! `GET …/Media/{MediaSid}` shows it `ready`, or `rejected` with the reason.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chat_media::fetch::Url;
use chat_media::filename::Filename;
use chat_media::http::{unix_now, ApiResult, ServiceScope, TwilioForm};
use chat_media::model::{self, InboundJob, InboundKind, InboundMedia, InboundStatus};
use chat_media::policy::MediaType;
use chat_media::sid::MediaSid;
use chat_media::upload::fetched_upload;
use chat_media::{ApiError, AppState, Identity};

/// Longest `MediaUrl` accepted.
const MAX_URL_CHARS: usize = 2048;

pub async fn create(state: AppState, scope: ServiceScope, body: Bytes) -> ApiResult<Response> {
    if !scope.caller.is_admin() {
        return Err(ApiError::forbidden(
            "Uploads by URL (MediaUrl) are for admins (HTTP Basic auth)",
        ));
    }
    let form = TwilioForm::parse(&body);
    let url = form.required("MediaUrl")?;
    let parsed = Url::parse(url)
        .ok()
        .filter(|_| url.chars().count() <= MAX_URL_CHARS)
        .ok_or_else(|| ApiError::invalid("MediaUrl", "must be an http(s) URL"))?;
    // What can be refused without connecting is refused now (the host, a literal
    // internal address); what a name resolves to is checked when it is fetched.
    state
        .fetcher
        .check(&parsed)
        .map_err(|e| ApiError::invalid("MediaUrl", e))?;
    let content_type = match form.get("ContentType") {
        Some(t) => Some(
            MediaType::parse(t)
                .map_err(|e| ApiError::invalid("ContentType", e))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let filename = match form.get("Filename") {
        Some(f) => Filename::parse(f).map_err(|e| ApiError::invalid("Filename", e))?,
        None => None,
    };
    let service = scope.load(&state).await?;
    let now = unix_now();
    let sid = MediaSid::generate();
    let expires_at = now + state.settings.upload_session_ttl.as_secs() as i64;
    let media = fetched_upload(
        sid.clone(),
        service.sid.clone(),
        Identity::system(),
        content_type.as_deref(),
        filename,
        expires_at,
        now,
    );
    state.store.create_media(&media).await?;
    let created = model::now();
    let job = InboundJob {
        service_sid: service.sid.clone(),
        key: sid.to_string(),
        kind: InboundKind::Url,
        from: Identity::system(),
        to: None,
        account_sid: None,
        profile_name: None,
        body: None,
        channel: None,
        media: vec![InboundMedia {
            index: 0,
            url: url.to_owned(),
            content_type,
            media_sid: sid.clone(),
            outcome: None,
            reason: None,
        }],
        status: InboundStatus::Pending,
        status_reason: None,
        channel_sid: None,
        messages: Vec::new(),
        attempts: 0,
        working_until: 0,
        date_created: created,
        date_updated: created,
    };
    state.store.create_inbound(&job).await?;
    chat_media::inbound::dispatch(&state, &service.sid, sid.as_str());
    tracing::info!(media = %sid, "upload by URL accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(media.to_json(state.view(), None)),
    )
        .into_response())
}
