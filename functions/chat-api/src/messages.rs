use axum::extract::{Path, State};
use axum::Json;
use chat_media::http::{page_json, parse_sid, ApiResult, ChannelScope, Paging, QueryForm};
use chat_media::sid::MessageSid;
use chat_media::{ApiError, AppState};
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
        &path,
        "messages",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

pub async fn fetch(
    State(state): State<AppState>,
    scope: ChannelScope,
    Path((_, _, message)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let message_sid: MessageSid = parse_sid("MessageSid", &message)?;
    let message = state
        .store
        .get_message(&scope.channel.sid, &message_sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Message {message_sid} not found")))?;
    Ok(Json(message.to_json(state.view())))
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
