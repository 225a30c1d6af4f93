//! inbound-messages: Twilio Messaging's inbound webhook, for a phone number's or
//! WhatsApp sender's "A message comes in" URL or a Studio flow's HTTP widget.
//!
//! - `POST /v2/Services/{ServiceSid}/InboundMessages` (form, Twilio's webhook
//!   parameters; `ChannelSid` in the query string to choose the channel): checks
//!   `X-Twilio-Signature` against the public URL of the request (or admin Basic
//!   auth), records the job once per `MessageSid` and answers an empty TwiML
//!   `<Response/>` at once; the media are fetched and the messages posted by the
//!   job (`chat_media::inbound`), never while Twilio waits.
//! - `GET /v2/Services/{ServiceSid}/InboundMessages/{MessageSid}` (admin): the job's
//!   status, `pending`, `done` or `failed` with a reason, and each media's outcome.

use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use chat_media::http::{
    code, has_content_type, parse_sid, unix_now, AdminService, PublicBase, TwilioForm,
    MAX_FORM_BYTES,
};
use chat_media::model::{
    parse_inbound_sid, InboundJob, InboundKind, InboundMedia, InboundStatus, MAX_INBOUND_MEDIA,
};
use chat_media::sid::ServiceSid;
use chat_media::{signature, ApiError, ApiResult, AppState, Identity, Principal};

/// Largest `Body` kept, as any message: 32 KiB of UTF-8.
const MAX_BODY_BYTES: usize = 32 * 1024;
/// Longest media URL accepted.
const MAX_URL_CHARS: usize = 2048;

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/Services/{service}/InboundMessages", post(receive))
        .route(
            "/v2/Services/{service}/InboundMessages/{message}",
            get(status),
        )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// Twilio's empty answer: do nothing more (no reply message).
fn empty_twiml() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>",
    )
        .into_response()
}

/// Twilio's signature over the public URL and the form, or an admin's Basic
/// credentials (scripts, Studio). Anything else is 403 and nothing is recorded.
fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    url: &str,
    pairs: &[(String, String)],
) -> ApiResult<()> {
    if headers.contains_key(header::AUTHORIZATION) {
        return match state.credentials.authenticate(headers, unix_now())? {
            Principal::Admin => Ok(()),
            Principal::User { .. } => Err(ApiError::forbidden(
                "The inbound webhook takes Twilio's signature or admin credentials",
            )),
        };
    }
    let valid = headers
        .get(signature::HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| signature::verify(&state.credentials.auth_token, url, pairs, sig));
    if valid {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "X-Twilio-Signature is missing or does not match this URL and form",
        ))
    }
}

/// The job a webhook describes, every parameter checked before anything is stored.
fn parse_job(service: &ServiceSid, form: &TwilioForm, query: &TwilioForm) -> ApiResult<InboundJob> {
    let key = form
        .get("MessageSid")
        .or_else(|| form.get("SmsMessageSid"))
        .ok_or_else(|| ApiError::missing("MessageSid"))?;
    let key = parse_inbound_sid(key).map_err(|e| ApiError::invalid("MessageSid", e))?;
    let from = Identity::parse(form.required("From")?).map_err(|e| ApiError::invalid("From", e))?;
    let body = form
        .get("Body")
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    if body.as_ref().is_some_and(|b| b.len() > MAX_BODY_BYTES) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::MESSAGE_BODY_TOO_LONG,
            format!("Body is longer than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let count = form.parsed::<usize>("NumMedia")?.unwrap_or(0);
    if count > MAX_INBOUND_MEDIA {
        return Err(ApiError::invalid(
            "NumMedia",
            format!("at most {MAX_INBOUND_MEDIA} media per message"),
        ));
    }
    let mut media = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("MediaUrl{i}");
        let url = form.required(&name)?;
        if url.chars().count() > MAX_URL_CHARS || chat_media::fetch::Url::parse(url).is_err() {
            return Err(ApiError::invalid(&name, "must be an http(s) URL"));
        }
        media.push(InboundMedia {
            index: i as u32,
            url: url.to_owned(),
            content_type: form
                .get(&format!("MediaContentType{i}"))
                .filter(|t| !t.is_empty() && t.len() <= 255)
                .map(str::to_owned),
            media_sid: InboundJob::media_sid_for(service, &key, i as u32),
            outcome: None,
            reason: None,
        });
    }
    if body.is_none() && media.is_empty() {
        return Err(ApiError::bad_request(
            "The message has neither a Body nor media: nothing to deliver",
        ));
    }
    let short = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty() && v.len() <= 512)
            .map(str::to_owned)
    };
    let now = chat_media::model::now();
    Ok(InboundJob {
        service_sid: service.clone(),
        key,
        kind: InboundKind::Webhook,
        from,
        to: short("To"),
        account_sid: short("AccountSid"),
        profile_name: short("ProfileName"),
        body,
        channel: query
            .get("ChannelSid")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        media,
        status: InboundStatus::Pending,
        status_reason: None,
        channel_sid: None,
        messages: Vec::new(),
        attempts: 0,
        working_until: 0,
        date_created: now,
        date_updated: now,
    })
}

/// POST …/InboundMessages: record once, answer at once, work after.
pub async fn receive(
    State(state): State<AppState>,
    Path(service): Path<String>,
    base: PublicBase,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if !body.is_empty() && !has_content_type(&headers, "application/x-www-form-urlencoded") {
        return Err(ApiError::unsupported_media_type(
            "Request body must be application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_FORM_BYTES {
        return Err(ApiError::too_large(format!(
            "Request body exceeds {MAX_FORM_BYTES} bytes"
        )));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    authenticate(&state, &headers, &base.url(path_and_query), &pairs)?;
    let service: ServiceSid = parse_sid("ServiceSid", &service)?;
    if state.store.get_service(&service).await?.is_none() {
        return Err(ApiError::not_found(format!("Service {service} not found")));
    }
    let query = TwilioForm::parse(uri.query().unwrap_or_default().as_bytes());
    let job = parse_job(&service, &TwilioForm::parse(&body), &query)?;
    if state.store.create_inbound(&job).await? {
        tracing::info!(service = %service, message = %job.key, media = job.media.len(), "inbound message recorded");
        chat_media::inbound::dispatch(&state, &service, &job.key);
    } else {
        tracing::info!(service = %service, message = %job.key, "inbound message delivered again; nothing to do");
    }
    Ok(empty_twiml())
}

/// GET …/InboundMessages/{MessageSid} (admin): how the job stands.
pub async fn status(
    State(state): State<AppState>,
    AdminService(service): AdminService,
    Path((_, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    let job = state
        .store
        .get_inbound(&service.sid, &key)
        .await?
        .filter(|j| j.kind == InboundKind::Webhook)
        .ok_or_else(|| ApiError::not_found(format!("Inbound message {key} not found")))?;
    Ok(Json(job.to_json(state.view())).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> String {
        format!("MM{}", "a".repeat(32))
    }

    #[test]
    fn a_webhook_form_becomes_a_job_with_its_media_in_order() {
        let service = ServiceSid::generate();
        let form = TwilioForm::from_pairs(&[
            ("MessageSid", &sid()),
            ("From", "whatsapp:+14155550100"),
            ("Body", "look"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://api.twilio.com/a"),
            ("MediaContentType0", "image/png"),
            ("MediaUrl1", "https://api.twilio.com/b"),
        ]);
        let job = parse_job(&service, &form, &TwilioForm::default()).unwrap();
        assert_eq!(job.from.as_str(), "whatsapp:+14155550100");
        assert_eq!(job.media.len(), 2);
        assert_eq!(job.media[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(job.media[1].index, 1);
        assert_eq!(
            job.media[1].media_sid,
            InboundJob::media_sid_for(&service, &sid(), 1)
        );
    }

    #[test]
    fn missing_or_bad_parameters_are_named() {
        let service = ServiceSid::generate();
        let bad = |pairs: &[(&str, &str)]| {
            parse_job(
                &service,
                &TwilioForm::from_pairs(pairs),
                &TwilioForm::default(),
            )
            .unwrap_err()
            .message
        };
        let s = sid();
        assert!(bad(&[("From", "a"), ("Body", "x")]).contains("MessageSid"));
        assert!(bad(&[("MessageSid", "SM1"), ("From", "a"), ("Body", "x")]).contains("MessageSid"));
        assert!(bad(&[("MessageSid", &s), ("Body", "x")]).contains("From"));
        assert!(bad(&[("MessageSid", &s), ("From", "a"), ("NumMedia", "1")]).contains("MediaUrl0"));
        assert!(bad(&[("MessageSid", &s), ("From", "a"), ("NumMedia", "11")]).contains("NumMedia"));
        assert!(bad(&[
            ("MessageSid", &s),
            ("From", "a"),
            ("NumMedia", "1"),
            ("MediaUrl0", "nope")
        ])
        .contains("MediaUrl0"));
        assert!(bad(&[("MessageSid", &s), ("From", "a")]).contains("neither"));
    }
}
