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
        match state.store.replace_message_unchanged(&updated, &read).await {
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
