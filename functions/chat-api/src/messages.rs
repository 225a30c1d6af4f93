use axum::extract::{Path, State};
use axum::Json;
use chat_media::http::params::message_body;
use chat_media::http::PublicBase;
use chat_media::http::{
    code, page_json, parse_sid, ApiResult, Caller, ChannelScope, Paging, QueryForm, TwilioForm,
};
use chat_media::model;
use chat_media::permission::Permission;
use chat_media::sid::MessageSid;
use chat_media::{ApiError, AppState, Identity};

use crate::{attributes_update, date_param};
use serde_json::Value;

/// `Order`: `asc` (default) reads oldest first, `desc` newest first.
fn forward(order: Option<&str>) -> ApiResult<bool> {
    match order {
        None | Some("asc") => Ok(true),
        Some("desc") => Ok(false),
        Some(other) => Err(ApiError::invalid(
            "Order",
            format!("'{other}' is not asc or desc"),
        )),
    }
}

/// Messages in index order (`Order=desc` for newest first): admins and channel members.
pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    QueryForm(query): QueryForm,
    scope: ChannelScope,
    Paging(mut req): Paging,
) -> ApiResult<Json<Value>> {
    if query.all("Order").len() > 1 {
        return Err(ApiError::invalid("Order", "must be given once"));
    }
    let order = query.get("Order");
    let forward = forward(order)?;
    if let Some(order) = order {
        req.filter("Order", order);
    }
    let channel = scope.channel;
    let page = state
        .store
        .list_messages(&channel.sid, &req, forward)
        .await?;
    let path = format!("{}/Messages", channel.path());
    Ok(page_json(
        &state,
        &base,
        &path,
        "messages",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ChannelScope,
    Path((_, _, message)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let message_sid: MessageSid = parse_sid("MessageSid", &message)?;
    let message = state
        .store
        .get_message(&scope.channel.sid, &message_sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Message {message_sid} not found")))?;
    Ok(Json(message.to_json(state.view_at(base.as_str()))))
}

/// POST a message: Twilio's message update (`Body`, `Attributes`, `From`,
/// `LastUpdatedBy`, `DateCreated`, `DateUpdated`, each optional). A member needs
/// `editOwnMessage` / `editAnyMessage` for the body and `editOwnMessageAttributes` /
/// `editAnyMessageAttributes` for the attributes (own = the member sent it), and
/// its identity becomes `last_updated_by`; `From`, `LastUpdatedBy` and the dates
/// are an admin's. A media message keeps its media: media is immutable.
pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ChannelScope,
    enabled: chat_media::http::hooks::WebhookEnabled,
    Path((_, _, message)): Path<(String, String, String)>,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let message_sid: MessageSid = parse_sid("MessageSid", &message)?;
    let body = form.get("Body").map(message_body).transpose()?;
    let attributes = attributes_update(form.get("Attributes"))?;
    let identity_param = |name: &str| {
        form.get(name)
            .map(|i| Identity::parse(i).map_err(|e| ApiError::invalid(name, e)))
            .transpose()
    };
    let from = identity_param("From")?;
    let last_updated_by = identity_param("LastUpdatedBy")?;
    let date_created = date_param("DateCreated", form.get("DateCreated"))?;
    let date_updated = date_param("DateUpdated", form.get("DateUpdated"))?;
    let is_admin = matches!(scope.caller, Caller::Admin);
    if !is_admin
        && (from.is_some()
            || last_updated_by.is_some()
            || date_created.is_some()
            || date_updated.is_some())
    {
        return Err(ApiError::forbidden(
            "Only an admin may set From, LastUpdatedBy, DateCreated or DateUpdated",
        ));
    }
    let mut read = state
        .store
        .get_message(&scope.channel.sid, &message_sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Message {message_sid} not found")))?;
    let hooks = enabled
        .hooks_of(&state, &scope.service, &scope.caller)
        .await?
        .with_channel(&state, &scope.channel.sid)
        .await?;
    // The hook's body and attributes, decided once and kept across retries.
    let mut hooked: Option<(Option<String>, String)> = None;
    for _ in 0..crate::channels::MAX_ATTEMPTS {
        let own = scope.caller.identity() == Some(&read.from);
        if body.is_some() {
            scope.caller.require(if own {
                Permission::EditOwnMessage
            } else {
                Permission::EditAnyMessage
            })?;
        }
        if attributes.is_some() {
            scope.caller.require(if own {
                Permission::EditOwnMessageAttributes
            } else {
                Permission::EditAnyMessageAttributes
            })?;
        }
        let mut updated = read.clone();
        if let Some(b) = &body {
            updated.was_edited |= Some(b) != read.body.as_ref();
            updated.body = Some(b.clone());
        }
        if let Some(a) = &attributes {
            updated.attributes = a.clone();
        }
        if let Some(f) = &from {
            updated.from = f.clone();
        }
        if let Some(d) = date_created {
            updated.date_created = d;
        }
        updated.last_updated_by = match (scope.caller.identity(), &last_updated_by) {
            (Some(me), _) => Some(me.to_string()),
            (None, Some(by)) => Some(by.to_string()),
            (None, None) => read.last_updated_by.clone(),
        };
        updated.date_updated = date_updated.unwrap_or_else(model::now);
        match &hooked {
            None => {
                pre_update(&state, &hooks, &mut updated).await?;
                updated.was_edited |= updated.body != read.body;
                hooked = Some((updated.body.clone(), updated.attributes.clone()));
            }
            Some((body, attributes)) => {
                updated.was_edited |= *body != read.body;
                updated.body = body.clone();
                updated.attributes = attributes.clone();
            }
        }
        let events = post_message(&state, &hooks, "onMessageUpdated", &updated);
        match state
            .store
            .replace_message_with_events(&updated, &read, &events)
            .await
        {
            Ok(()) => return Ok(Json(updated.to_json(state.view_at(base.as_str())))),
            Err(e) if e.condition_failed_at(0) || e.is_conflict() => {
                read = state
                    .store
                    .get_message(&scope.channel.sid, &message_sid)
                    .await?
                    .ok_or_else(|| {
                        ApiError::not_found(format!("Message {message_sid} not found"))
                    })?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        code::CONFLICT,
        "The message kept changing; try again",
    ))
}

/// Fires `onMessageUpdate` and applies what the hook changed (`body` of a text
/// message, `attributes`), checked as strictly as the caller's own values.
async fn pre_update(
    state: &AppState,
    hooks: &chat_media::dispatch::Hooks,
    message: &mut chat_media::model::Message,
) -> ApiResult<()> {
    use chat_media::webhook::{self, Proceed, Refused};
    const NAME: &str = "onMessageUpdate";
    let mut event = hooks.event(state, NAME);
    chat_media::dispatch::message_params(&mut event, message);
    if let Some(by) = hooks.identity.as_ref() {
        event.param("ModifiedBy", by.as_str());
    }
    let Proceed::Modified(map) = hooks.pre(state, &event).await? else {
        return Ok(());
    };
    let invalid = |field: &'static str, e: ApiError| Refused::InvalidModification {
        event: NAME,
        field,
        why: e.message,
    };
    if let Some(body) = webhook::modified_text(&map, "body") {
        if message.media.is_none() {
            message.body = Some(message_body(&body).map_err(|e| invalid("body", e))?);
        }
    }
    if let Some(a) = webhook::modified_text(&map, "attributes") {
        message.attributes = chat_media::http::params::attributes_param(Some(&a))
            .map_err(|e| invalid("attributes", e))?;
    }
    Ok(())
}

/// A message post-event for the outbox, when it fires.
pub(crate) fn post_message(
    state: &AppState,
    hooks: &chat_media::dispatch::Hooks,
    name: &'static str,
    message: &chat_media::model::Message,
) -> Vec<chat_media::model::OutboxEvent> {
    if !hooks.fires_post(name) {
        return Vec::new();
    }
    let mut event = hooks.event(state, name);
    chat_media::dispatch::message_params(&mut event, message);
    if let Some(by) = hooks.identity.as_ref() {
        event.param("ModifiedBy", by.as_str());
    }
    hooks
        .post(event, Some(&message.channel_sid))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_is_asc_or_desc() {
        assert!(super::forward(None).unwrap());
        assert!(super::forward(Some("asc")).unwrap());
        assert!(!super::forward(Some("desc")).unwrap());
        let e = super::forward(Some("DESC")).unwrap_err();
        assert!(e.message.contains("Order"));
    }
}
