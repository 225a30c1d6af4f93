//! create-message: `POST /v2/Services/{ServiceSid}/Channels/{ChannelSid}/Messages`.
//!
//! A text message, or a media message that binds a ready upload: the message write,
//! the channel's message count and the media binding commit in one DynamoDB
//! transaction, so a media is bound to at most one message and only when ready.
//! The common path makes four DynamoDB calls: one consistent BatchGetItem (service,
//! channel, the sender's membership, the media), one GetItem (the sender's role),
//! one UpdateItem that takes the channel's next index with an atomic `ADD`, and the
//! TransactWriteItems, which also checks the sender's role is still the one whose
//! permissions were checked (a block applies to messages not yet committed) and
//! that the channel is not being deleted.
//!
//! Concurrent sends to one channel therefore never race for an index (the `ADD` is
//! serialized by DynamoDB, no condition can fail) and never retry for it. What a
//! reader can observe while sends are concurrent: indexes are unique and each send
//! gets a larger index than any send that finished before it started, but a send
//! that took index 7 may commit after the one that took 8, so a list read in
//! between shows 8 without 7 (7 appears once its send commits); a send that fails
//! after taking its index (media no longer available, sender blocked, channel being
//! deleted) leaves that index unused for good, so indexes may have gaps.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use chat_media::access::{self, AccessError};
use chat_media::http::params::{attributes_param, message_body};
use chat_media::http::PublicBase;
use chat_media::http::{code, created, parse_sid, ApiResult, ServiceScope, TwilioForm};
use chat_media::model::{self, Channel, Media, MediaStatus, Member, Message, Role, WebhookConfig};
use chat_media::permission::Permission;
use chat_media::sid::{ChannelSid, MediaSid, MessageSid, ServiceSid};
use chat_media::store::{CreateMessageError, SendContext};
use chat_media::webhook::{self, Firing, Proceed, Refused};
use chat_media::{ApiError, AppState, Identity, Principal};
use rand::Rng;

/// Largest message body, as Twilio: 32 KiB of UTF-8.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// How long a send keeps retrying a transaction cancelled by a conflicting one
/// (DynamoDB's `TransactionConflict`, e.g. the same sender's concurrent sends on
/// its membership). Past it, the channel is too busy: 429.
const RETRY_BUDGET: Duration = Duration::from_secs(8);

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v2/Services/{service}/Channels/{channel}/Messages",
        post(create),
    )
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// What the message carries: a body, or a media with an optional text of its own.
#[derive(Debug)]
enum Content {
    Text(String),
    /// Twilio's spec has `Body` and `MediaSid` independent: a non-empty `Body`
    /// sent with a media is that message's text, in place of the service's
    /// `Media.CompatibilityMessage`.
    Media(MediaSid, Option<String>),
}

/// The form, parsed and checked before any I/O.
#[derive(Debug)]
struct Request {
    from: Identity,
    content: Content,
    attributes: String,
}

fn parse_request(who: &Principal, form: &TwilioForm) -> ApiResult<Request> {
    let content = match (form.get("Body"), form.get("MediaSid")) {
        (body, Some(sid)) => Content::Media(
            parse_sid("MediaSid", sid)?,
            body.map(message_body)
                .transpose()?
                .filter(|b| !b.is_empty()),
        ),
        (None, None) => {
            return Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                code::MESSAGE_BODY_MISSING,
                "Missing required parameter Body or MediaSid in the post body",
            ))
        }
        (Some(body), None) => Content::Text(message_body(body)?),
    };
    let attributes = attributes_param(form.get("Attributes"))?;
    let from = match (who, form.get("From")) {
        (Principal::Admin, None) => Identity::system(),
        (Principal::Admin, Some(from)) => {
            Identity::parse(from).map_err(|e| ApiError::invalid("From", e))?
        }
        (Principal::User { identity, .. }, None) => identity.clone(),
        (Principal::User { identity, .. }, Some(from)) => {
            if from != identity.as_str() {
                return Err(ApiError::forbidden(format!(
                    "Users may only send as themselves: From must be {identity}"
                )));
            }
            identity.clone()
        }
    };
    Ok(Request {
        from,
        content,
        attributes,
    })
}

/// What a checked send carries: the text, or the media it binds.
enum Sent {
    Text(String),
    Media(Box<Media>),
}

/// The records a send was checked against; kept across retries of the transaction.
struct Checked {
    service_body: String,
    /// The service's webhooks, read with it.
    hooks: WebhookConfig,
    /// The channel's webhooks, read with it (s20-hooks).
    channel_hooks: Vec<model::ChannelWebhook>,
    channel: Channel,
    member: Option<Member>,
    sent: Sent,
}

impl Checked {
    fn media(&self) -> Option<&Media> {
        match &self.sent {
            Sent::Media(media) => Some(media),
            Sent::Text(_) => None,
        }
    }

    /// The message at the channel's next index: a media message carries the
    /// service's placeholder body.
    fn message(&self, sid: &MessageSid, req: &Request, now: model::Timestamp) -> Message {
        let (from, attributes) = (req.from.clone(), req.attributes.clone());
        match &self.sent {
            Sent::Media(media) => Message::media(
                sid.clone(),
                &self.channel,
                from,
                self.service_body.clone(),
                media,
                attributes,
                now,
            ),
            Sent::Text(body) => Message::text(
                sid.clone(),
                &self.channel,
                from,
                body.clone(),
                attributes,
                now,
            ),
        }
    }
}

/// Turns what was read into a decision: every refusal of the send is here.
async fn check(
    state: &AppState,
    who: &Principal,
    service_sid: &ServiceSid,
    channel_ref: &str,
    req: &Request,
    ctx: SendContext,
) -> ApiResult<Checked> {
    let service = ctx
        .service
        .ok_or_else(|| ApiError::not_found(format!("Service {service_sid} not found")))?;
    let channel = access::live(ctx.channel, channel_ref)?;
    let channel_hooks = ctx.channel_webhooks.webhooks;
    let member = match who {
        Principal::Admin => None,
        Principal::User { identity, .. } => {
            let member = ctx.member.ok_or_else(|| AccessError::NotAMember {
                identity: identity.clone(),
                channel: channel.sid.clone(),
            })?;
            let role: Role = access::member_role(state, &member).await?;
            access::require(&role, Permission::SendMessage, identity)?;
            if matches!(req.content, Content::Media(..)) {
                access::require(&role, Permission::SendMediaMessage, identity)?;
            }
            Some(member)
        }
    };
    let sent = match &req.content {
        Content::Text(body) => Sent::Text(body.clone()),
        Content::Media(sid, _) => {
            Sent::Media(Box::new(check_media(who, service_sid, sid, ctx.media)?))
        }
    };
    let service_body = match &req.content {
        Content::Media(_, Some(body)) => body.clone(),
        _ => service.media.compatibility_message,
    };
    Ok(Checked {
        hooks: service.webhooks,
        channel_hooks,
        service_body,
        channel,
        member,
        sent,
    })
}

/// The binding rules: same service, the sender's own upload (admins: any), not
/// bound yet, ready. Another service's media does not exist for this one (404).
fn check_media(
    who: &Principal,
    service_sid: &ServiceSid,
    sid: &MediaSid,
    media: Option<Media>,
) -> ApiResult<Media> {
    let media = media
        .filter(|m| &m.service_sid == service_sid)
        .ok_or_else(|| ApiError::not_found(format!("Media {sid} not found")))?;
    if let Some(identity) = who.identity() {
        if &media.author != identity {
            return Err(ApiError::forbidden(format!(
                "Media {sid} was uploaded by another identity; only its uploader may attach it"
            )));
        }
    }
    if let Some(message) = &media.message_sid {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!("Media {sid} is already attached to message {message}"),
        ));
    }
    if media.status != MediaStatus::Ready {
        return Err(ApiError::conflict(
            code::CONFLICT,
            format!(
                "Media {sid} is not ready to be attached (status {})",
                media.status.as_str()
            ),
        ));
    }
    Ok(media)
}

/// POST .../Messages: `From`, `Body` or `MediaSid`, `Attributes`.
pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    ServiceScope {
        sid: service_sid,
        caller: who,
    }: ServiceScope,
    Path((_, channel_ref)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    form: TwilioForm,
) -> ApiResult<Response> {
    let req = parse_request(&who, &form)?;
    let firing = firing(&who, &headers);
    let channel_sid = match ChannelSid::parse(&channel_ref) {
        Ok(sid) => sid,
        Err(_) => state
            .store
            .channel_sid_by_unique_name(&service_sid, &channel_ref)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("Channel {channel_ref} not found")))?,
    };
    let media_sid = match &req.content {
        Content::Media(sid, _) => Some(sid),
        Content::Text(_) => None,
    };
    // One consistent read of everything the send depends on, then every check.
    let read_and_check = async || -> ApiResult<Checked> {
        let ctx = state
            .store
            .load_send_context(&service_sid, &channel_sid, who.identity(), media_sid)
            .await?;
        check(&state, &who, &service_sid, &channel_ref, &req, ctx).await
    };
    let mut checked = read_and_check().await?;
    // The pre-event hook decides before anything is written.
    let hooked = pre_send(&state, &who, firing, &req, &checked).await?;
    // The index is this send's from here on, kept across retries.
    checked.channel.next_message_index = match state.store.take_message_index(&channel_sid).await? {
        Some(index) => index,
        None => return Err(AccessError::ChannelNotFound(channel_ref.clone()).into()),
    };
    let message_sid = MessageSid::generate();
    let started = std::time::Instant::now();
    let mut attempt = 0;
    while started.elapsed() < RETRY_BUDGET {
        attempt += 1;
        let mut message = checked.message(&message_sid, &req, model::now());
        hooked.apply(&mut message);
        let post_event = post_send(&state, &who, firing, &checked, &message);
        match state
            .store
            .create_message_with_outbox(
                &checked.channel,
                &message,
                checked.media(),
                checked.member.as_ref(),
                &post_event,
            )
            .await
        {
            Ok(()) => {
                tracing::info!(message = %message.sid, channel = %message.channel_sid, index = message.index, media = ?media_sid, attempts = attempt, "message created");
                return Ok(created(message.to_json(state.view_at(base.as_str()))));
            }
            Err(CreateMessageError::IndexTaken) => {
                pause(attempt).await;
                let current = state.store.get_channel(&service_sid, &channel_sid).await?;
                let index = checked.channel.next_message_index;
                checked.channel = access::live(current, &channel_ref)?;
                checked.channel.next_message_index = index;
            }
            // Only a channel gone or being deleted fails the transaction's condition.
            Err(CreateMessageError::ChannelMoved(_)) => {
                return Err(AccessError::ChannelNotFound(channel_ref.clone()).into())
            }
            Err(CreateMessageError::SenderChanged) => {
                let index = checked.channel.next_message_index;
                checked = read_and_check().await?;
                checked.channel.next_message_index = index;
            }
            Err(CreateMessageError::MediaUnavailable) => {
                let sid = media_sid.map(ToString::to_string).unwrap_or_default();
                return Err(ApiError::conflict(
                    code::CONFLICT,
                    format!(
                        "Media {sid} is no longer available: another message attached it first, or it was removed"
                    ),
                ));
            }
            Err(CreateMessageError::Store(e)) => return Err(e.into()),
        }
    }
    tracing::warn!(channel = %channel_sid, attempts = attempt, "channel too busy");
    Err(ApiError::too_many_requests(format!(
        "Channel {channel_ref} is receiving too many messages at once; try again shortly"
    )))
}

/// What the `onMessageSend` / `onMediaMessageSend` hook changed.
#[derive(Debug, Default)]
struct Hooked {
    body: Option<String>,
    attributes: Option<String>,
}

impl Hooked {
    fn apply(&self, message: &mut Message) {
        if let Some(body) = &self.body {
            message.body = Some(body.clone());
        }
        if let Some(attributes) = &self.attributes {
            message.attributes = attributes.clone();
        }
    }
}

/// Fires the send's pre-event (`onMessageSend`, or `onMediaMessageSend` with the
/// media's parameters and a temporary `ContentUrl`) and checks what the hook
/// changed as strictly as the caller's own values.
async fn pre_send(
    state: &AppState,
    who: &Principal,
    firing: Firing,
    req: &Request,
    checked: &Checked,
) -> ApiResult<Hooked> {
    let name = match checked.sent {
        Sent::Text(_) => "onMessageSend",
        Sent::Media(_) => "onMediaMessageSend",
    };
    if checked.hooks.pre_hook(name).is_none() || !firing.fires_pre(&checked.hooks) {
        return Ok(Hooked::default());
    }
    let channel = &checked.channel;
    let mut event = state.event(name, &channel.service_sid, who.identity());
    event
        .param("ChannelSid", channel.sid.as_str())
        .param("From", req.from.as_str())
        .param("Attributes", req.attributes.as_str());
    match &checked.sent {
        Sent::Text(body) => {
            event.param("Body", body.as_str());
        }
        Sent::Media(media) => {
            event.param("Body", checked.service_body.as_str());
            media_params(&mut event, media)
                .param("ContentUrl", hook_content_url(state, media).await?);
        }
    }
    let map = match state.pre_event(&checked.hooks, firing, &event).await? {
        Proceed::Modified(map) => map,
        _ => return Ok(Hooked::default()),
    };
    let invalid = |field: &'static str, e: ApiError| Refused::InvalidModification {
        event: name,
        field,
        why: e.message,
    };
    let mut hooked = Hooked::default();
    if let Some(body) = webhook::modified_text(&map, "body") {
        // A media message keeps the service's placeholder body.
        if matches!(checked.sent, Sent::Text(_)) {
            hooked.body = Some(message_body(&body).map_err(|e| invalid("body", e))?);
        }
    }
    if let Some(attributes) = webhook::modified_text(&map, "attributes") {
        hooked.attributes =
            Some(attributes_param(Some(&attributes)).map_err(|e| invalid("attributes", e))?);
    }
    Ok(hooked)
}

/// Who sends, for the hooks: a user, or admin REST (post-events only with
/// `X-Twilio-Webhook-Enabled: true`, as Twilio).
fn firing(who: &Principal, headers: &axum::http::HeaderMap) -> Firing {
    match who {
        Principal::User { .. } => Firing::User,
        Principal::Admin => Firing::Rest {
            webhook_enabled: headers
                .get(webhook::ENABLED_HEADER)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true")),
        },
    }
}

/// The `onMessageSent` / `onMediaMessageSent` post-event of `message`, for the
/// outbox: to the service's post hook if its filters list it, and to each
/// channel webhook that receives it, when `firing` fires post-events.
fn post_send(
    state: &AppState,
    who: &Principal,
    firing: Firing,
    checked: &Checked,
    message: &Message,
) -> Vec<model::OutboxEvent> {
    let name = match checked.sent {
        Sent::Text(_) => "onMessageSent",
        Sent::Media(_) => "onMediaMessageSent",
    };
    let mut hooks = chat_media::dispatch::Hooks::new(
        message.service_sid.clone(),
        checked.hooks.clone(),
        firing,
        who.identity().cloned(),
    );
    hooks.channel_hooks = checked.channel_hooks.clone();
    if !hooks.fires_post(name) {
        return Vec::new();
    }
    let mut event = state.event(name, &message.service_sid, who.identity());
    event
        .param("ChannelSid", message.channel_sid.as_str())
        .param("MessageSid", message.sid.as_str())
        .param("Index", message.index.to_string())
        .param("Body", message.body.clone().unwrap_or_default())
        .param("Attributes", message.attributes.as_str())
        .param("From", message.from.as_str())
        .param("DateCreated", model::iso(&message.date_created));
    if let Sent::Media(media) = &checked.sent {
        media_params(&mut event, media);
    }
    hooks.post(event, Some(&message.channel_sid))
}

/// A presigned GET (the download TTL) a hook may use to check the content itself.
async fn hook_content_url(state: &AppState, media: &Media) -> ApiResult<String> {
    let headers = chat_media::disposition::download_headers(
        &media.content_type,
        media.filename.as_ref(),
        media.sid.as_str(),
    );
    Ok(state
        .blob
        .presign_get(&media.object_key, state.settings.download_url_ttl, &headers)
        .await?)
}

/// A random pause whose ceiling doubles with each lost race (5 ms up to 400 ms),
/// so racing senders spread out instead of colliding again.
async fn pause(attempt: u32) {
    let ceiling_ms = (5u64 << attempt.min(7)).min(400);
    let ms = rand::rng().random_range(0..=ceiling_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// The media parameters Twilio's media-message events carry (pre and post).
fn media_params<'e>(event: &'e mut webhook::Event, media: &Media) -> &'e mut webhook::Event {
    event
        .param("MediaSid", media.sid.as_str())
        .param("MediaContentType", media.content_type.as_str())
        .param("MediaSize", media.size.to_string())
        .param(
            "MediaFilename",
            media
                .filename
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_default(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Principal {
        Principal::User {
            identity: Identity::parse("alice").unwrap(),
            service: ServiceSid::generate(),
        }
    }

    fn parse(who: &Principal, pairs: &[(&str, &str)]) -> ApiResult<Request> {
        parse_request(who, &TwilioForm::from_pairs(pairs))
    }

    #[test]
    fn a_message_carries_a_body_or_a_media_with_an_optional_text() {
        let media = MediaSid::generate().to_string();
        let both = parse(&alice(), &[("Body", "hi"), ("MediaSid", &media)]).unwrap();
        assert!(matches!(both.content, Content::Media(_, Some(ref b)) if b == "hi"));
        let empty = parse(&alice(), &[("Body", ""), ("MediaSid", &media)]).unwrap();
        assert!(matches!(empty.content, Content::Media(_, None)));
        let neither = parse(&alice(), &[("Attributes", "{}")]).unwrap_err();
        assert!(neither.message.contains("Body or MediaSid"), "{neither}");
        let req = parse(&alice(), &[("MediaSid", &media)]).unwrap();
        assert!(matches!(req.content, Content::Media(ref sid, None) if sid.as_str() == media));
        let bad = parse(&alice(), &[("MediaSid", "ME123")]).unwrap_err();
        assert!(bad.message.contains("MediaSid"), "{bad}");
    }

    #[test]
    fn bodies_are_bounded_and_printable() {
        let long = "x".repeat(MAX_BODY_BYTES + 1);
        let e = parse(&alice(), &[("Body", &long)]).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.code),
            (400, code::MESSAGE_BODY_TOO_LONG)
        );
        let fits = "x".repeat(MAX_BODY_BYTES);
        assert!(parse(&alice(), &[("Body", &fits)]).is_ok());
        // Twilio's spec: an empty Body is a message with an empty body.
        assert!(parse(&alice(), &[("Body", "")]).is_ok());
        assert!(parse(&alice(), &[("Body", "a\u{7}b")]).is_err());
        assert!(parse(&alice(), &[("Body", "two\nlines\tand tab")]).is_ok());
        assert!(parse(&alice(), &[("Body", "x"), ("Attributes", "{")]).is_err());
    }

    #[test]
    fn users_send_as_themselves_and_admins_as_anyone() {
        let req = parse(&alice(), &[("Body", "hi")]).unwrap();
        assert_eq!(req.from.as_str(), "alice");
        let same = parse(&alice(), &[("Body", "hi"), ("From", "alice")]).unwrap();
        assert_eq!(same.from.as_str(), "alice");
        let other = parse(&alice(), &[("Body", "hi"), ("From", "bob")]).unwrap_err();
        assert_eq!(other.status, 403);
        let admin = parse(&Principal::Admin, &[("Body", "hi")]).unwrap();
        assert_eq!(admin.from, Identity::system());
        let as_bob = parse(&Principal::Admin, &[("Body", "hi"), ("From", "bob")]).unwrap();
        assert_eq!(as_bob.from.as_str(), "bob");
    }
}
