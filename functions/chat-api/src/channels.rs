use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::access;
use chat_media::dispatch::{self, Hooks};
use chat_media::http::hooks::WebhookEnabled;
use chat_media::http::PublicBase;
use chat_media::http::{
    code, created, page_json, AdminService, ApiResult, Caller, ChannelForDelete, ChannelScope,
    Paging, QueryForm, TwilioForm,
};
use chat_media::limits;
use chat_media::model::{self, Channel, ChannelType, NewChannel};
use chat_media::permission::Permission;
use chat_media::sid::ChannelSid;
use chat_media::store::CreateChannelError;
use chat_media::webhook::{self, Proceed, Refused};
use chat_media::{ApiError, AppState, Identity};
use serde_json::{Map, Value};

use crate::{attributes_param, attributes_update, date_param, text_param};

/// `UniqueName`: non-empty, not a SID (paths accept both), no `/`.
fn unique_name_param(value: &str) -> ApiResult<String> {
    if value.is_empty() {
        return Err(ApiError::invalid("UniqueName", "must not be empty"));
    }
    if ChannelSid::parse(value).is_ok() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code::UNIQUE_NAME_LIKE_SID,
            "Invalid parameter UniqueName: must not look like a channel SID",
        ));
    }
    if value.contains('/') {
        return Err(ApiError::invalid("UniqueName", "must not contain '/'"));
    }
    text_param("UniqueName", value, limits::UNIQUE_NAME)
}

/// The form of a channel create, parsed before any I/O.
fn parse_new_channel(form: &TwilioForm) -> ApiResult<NewChannel> {
    Ok(NewChannel {
        unique_name: form.get("UniqueName").map(unique_name_param).transpose()?,
        friendly_name: form
            .get("FriendlyName")
            .map(|n| text_param("FriendlyName", n, limits::FRIENDLY_NAME))
            .transpose()?,
        channel_type: form
            .parsed::<ChannelType>("Type")?
            .unwrap_or(ChannelType::Public),
        attributes: attributes_param(form.get("Attributes"))?,
        created_by: match form.get("CreatedBy") {
            Some(i) => Identity::parse(i).map_err(|e| ApiError::invalid("CreatedBy", e))?,
            None => Identity::system(),
        },
    })
}

pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    enabled: WebhookEnabled,
    form: TwilioForm,
) -> ApiResult<Response> {
    let new = parse_new_channel(&form)?;
    let hooks = enabled.admin_hooks(&service);
    let mut channel = Channel::new(ChannelSid::generate(), service.sid, new, model::now());
    pre_channel(&state, &hooks, "onChannelAdd", &mut channel, false).await?;
    let events = post_channel(&state, &hooks, "onChannelAdded", &channel);
    state
        .store
        .create_channel_with_events(&channel, &events)
        .await
        .map_err(|e| match e {
            CreateChannelError::UniqueNameTaken => ApiError::conflict(
                code::CHANNEL_UNIQUE_NAME_EXISTS,
                format!(
                    "Channel with unique name {} already exists",
                    channel.unique_name.as_deref().unwrap_or_default()
                ),
            ),
            // The service was read: its delete started meanwhile.
            CreateChannelError::ServiceGone => {
                ApiError::being_deleted(format!("Service {}", channel.service_sid))
            }
            CreateChannelError::Store(e) => e.into(),
        })?;
    Ok(created(channel.to_json(state.view_at(base.as_str()))))
}

pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
    QueryForm(query): QueryForm,
    Paging(mut req): Paging,
) -> ApiResult<Json<Value>> {
    let types = query
        .all("Type")
        .into_iter()
        .map(|t| {
            t.parse::<ChannelType>()
                .map_err(|e| ApiError::invalid("Type", e))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    for t in &types {
        req.filter("Type", t.as_str());
    }
    let page = state
        .store
        .list_channels(&service.sid, &req, &types)
        .await?;
    let path = format!("/v2/Services/{}/Channels", service.sid);
    Ok(page_json(
        &state,
        &base,
        &path,
        "channels",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

/// POST a channel: Twilio's channel update (`FriendlyName`, `UniqueName`,
/// `Attributes`, `CreatedBy`, `DateCreated`, `DateUpdated`, each optional). Admins
/// change anything; a member needs `editChannelName` for the names and
/// `editChannelAttributes` for the attributes. A new unique name is claimed in the
/// same transaction that writes the channel, so two channels never share one.
pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ChannelScope,
    enabled: WebhookEnabled,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let friendly_name = form
        .get("FriendlyName")
        .map(|n| text_param("FriendlyName", n, limits::FRIENDLY_NAME))
        .transpose()?;
    let unique_name = form.get("UniqueName").map(unique_name_param).transpose()?;
    let attributes = attributes_update(form.get("Attributes"))?;
    let created_by = form
        .get("CreatedBy")
        .map(|i| Identity::parse(i).map_err(|e| ApiError::invalid("CreatedBy", e)))
        .transpose()?;
    let date_created = date_param("DateCreated", form.get("DateCreated"))?;
    let date_updated = date_param("DateUpdated", form.get("DateUpdated"))?;
    if friendly_name.is_some() || unique_name.is_some() {
        scope.caller.require(Permission::EditChannelName)?;
    }
    if attributes.is_some() {
        scope.caller.require(Permission::EditChannelAttributes)?;
    }
    if (created_by.is_some() || date_created.is_some() || date_updated.is_some())
        && !matches!(scope.caller, Caller::Admin)
    {
        return Err(ApiError::forbidden(
            "Only an admin may set CreatedBy, DateCreated or DateUpdated",
        ));
    }
    let hooks = enabled
        .hooks_of(&state, &scope.service, &scope.caller)
        .await?
        .with_channel(&state, &scope.channel.sid)
        .await?;
    let mut read = scope.channel;
    // The hook's changes, decided once on the first read and kept across retries.
    let mut hooked: Option<Channel> = None;
    for _ in 0..MAX_ATTEMPTS {
        let mut channel = read.clone();
        if let Some(v) = &friendly_name {
            channel.friendly_name = Some(v.clone());
        }
        if let Some(v) = &unique_name {
            channel.unique_name = Some(v.clone());
        }
        if let Some(v) = &attributes {
            channel.attributes = v.clone();
        }
        if let Some(v) = &created_by {
            channel.created_by = v.clone();
        }
        if let Some(v) = date_created {
            channel.date_created = v;
        }
        channel.date_updated = date_updated.unwrap_or_else(model::now);
        match &hooked {
            None => {
                pre_channel(&state, &hooks, "onChannelUpdate", &mut channel, true).await?;
                hooked = Some(channel.clone());
            }
            Some(decided) => {
                channel.friendly_name = decided.friendly_name.clone();
                channel.unique_name = decided.unique_name.clone();
                channel.attributes = decided.attributes.clone();
            }
        }
        let events = post_channel(&state, &hooks, "onChannelUpdated", &channel);
        match state
            .store
            .replace_channel_with_events(&channel, &read, &events)
            .await
        {
            Ok(()) => return Ok(Json(channel.to_json(state.view_at(base.as_str())))),
            Err(CreateChannelError::UniqueNameTaken) => {
                return Err(ApiError::conflict(
                    code::CHANNEL_UNIQUE_NAME_EXISTS,
                    format!(
                        "Channel with unique name {} already exists",
                        channel.unique_name.as_deref().unwrap_or_default()
                    ),
                ))
            }
            // Changed meanwhile (or being deleted): read it again.
            Err(CreateChannelError::ServiceGone) => {
                read = access::live(
                    state
                        .store
                        .get_channel(&read.service_sid, &read.sid)
                        .await?,
                    read.sid.as_str(),
                )?;
            }
            Err(CreateChannelError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        code::CONFLICT,
        "The channel kept changing; try again",
    ))
}

/// Attempts at an update when a concurrent one to the same record wins.
pub(crate) const MAX_ATTEMPTS: usize = 5;

/// GET a channel: admins, and users who are members of it.
pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: ChannelScope,
) -> Json<Value> {
    Json(scope.channel.to_json(state.view_at(base.as_str())))
}

/// DELETE a channel with its members, messages and media (resumes an
/// interrupted delete).
pub async fn delete(
    State(state): State<AppState>,
    ChannelForDelete(channel): ChannelForDelete,
    enabled: WebhookEnabled,
) -> ApiResult<Response> {
    let hooks = enabled
        .hooks(&state, &channel.service_sid, None)
        .await?
        .with_channel(&state, &channel.sid)
        .await?;
    if !channel.deleting {
        // A resumed delete was decided already.
        let mut event = hooks.event(&state, "onChannelDestroy");
        dispatch::channel_params(&mut event, &channel, true);
        hooks.pre(&state, &event).await?;
    }
    let events = post_channel(&state, &hooks, "onChannelDestroyed", &channel);
    let pending = state
        .store
        .delete_channel_with_events(&channel, &events)
        .await?;
    chat_media::cleanup::delete_objects(&state, &pending).await;
    tracing::info!(channel = %channel.sid, objects = pending.len(), "channel deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Fires a channel pre-event (`onChannelAdd`, `onChannelUpdate`) and applies what
/// the hook changed (`friendlyName`, `uniqueName`, `attributes`), checked as
/// strictly as the caller's own values.
async fn pre_channel(
    state: &AppState,
    hooks: &Hooks,
    name: &'static str,
    channel: &mut Channel,
    exists: bool,
) -> ApiResult<()> {
    let mut event = hooks.event(state, name);
    dispatch::channel_params(&mut event, channel, exists);
    let Proceed::Modified(map) = hooks.pre(state, &event).await? else {
        return Ok(());
    };
    let invalid = |field: &'static str, e: ApiError| Refused::InvalidModification {
        event: name,
        field,
        why: e.message,
    };
    if let Some(v) = modified(&map, &["friendlyName", "friendly_name"]) {
        channel.friendly_name = Some(
            text_param("FriendlyName", &v, limits::FRIENDLY_NAME)
                .map_err(|e| invalid("friendlyName", e))?,
        );
    }
    if let Some(v) = modified(&map, &["uniqueName", "unique_name"]) {
        channel.unique_name = Some(unique_name_param(&v).map_err(|e| invalid("uniqueName", e))?);
    }
    if let Some(v) = webhook::modified_text(&map, "attributes") {
        channel.attributes = attributes_param(Some(&v)).map_err(|e| invalid("attributes", e))?;
    }
    Ok(())
}

/// The first of `names` the hook's answer sets.
fn modified(map: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| webhook::modified_text(map, n))
}

/// A channel post-event for the outbox, when it fires.
fn post_channel(
    state: &AppState,
    hooks: &Hooks,
    name: &'static str,
    channel: &Channel,
) -> Vec<model::OutboxEvent> {
    if !hooks.fires_post(name) {
        return Vec::new();
    }
    let mut event = hooks.event(state, name);
    dispatch::channel_params(&mut event, channel, true);
    hooks.post(event, Some(&channel.sid)).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> TwilioForm {
        TwilioForm::from_pairs(pairs)
    }

    #[test]
    fn a_new_channel_defaults_to_public_by_the_system() {
        let new = parse_new_channel(&form(&[])).unwrap();
        assert_eq!(new.channel_type, ChannelType::Public);
        assert_eq!(new.created_by, Identity::system());
        assert_eq!(new.attributes, "{}");
        assert_eq!(new.unique_name, None);
    }

    #[test]
    fn unique_names_that_paths_could_not_tell_apart_are_refused() {
        for bad in ["", "CH00000000000000000000000000000001", "a/b"] {
            let e = parse_new_channel(&form(&[("UniqueName", bad)])).unwrap_err();
            assert_eq!(e.status, 400, "{bad:?}");
            assert!(e.message.contains("UniqueName"), "{}", e.message);
        }
        assert!(parse_new_channel(&form(&[("Type", "secret")])).is_err());
        assert!(parse_new_channel(&form(&[("Attributes", "{")])).is_err());
    }
}
