//! Twilio's channel-scoped webhooks: `/v2/Services/{ServiceSid}/Channels/{ChannelSid}/Webhooks[/{Sid}]`
//! (admins only, as Twilio's REST). `Type` `webhook` (filtered post-events of the
//! channel), `trigger` (`onMessageSent` when a keyword is a word of the body) or
//! `studio` (stored and rendered; never invoked here: Studio is Twilio's). At
//! most five per channel (Twilio's 50321 past that).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::http::{
    code, created, parse_sid, AdminChannel, ApiResult, Paging, PublicBase, TwilioForm,
};
use chat_media::model::{
    self, is_post_event, ChannelWebhook, ChannelWebhookType, ChannelWebhooks, WebhookMethod,
    WebhookUrl, MAX_CHANNEL_WEBHOOKS, MAX_FILTERS, MAX_RETRY_COUNT, MAX_TRIGGERS,
    MAX_TRIGGER_CHARS,
};
use chat_media::sid::WebhookSid;
use chat_media::store::{Page, SaveWebhooksError};
use chat_media::{ApiError, AppState};
use serde_json::Value;

/// Attempts at a change when a concurrent one to the same channel's webhooks wins.
const MAX_ATTEMPTS: usize = 5;

/// The `Configuration.*` parameters of a create or update, each optional.
#[derive(Debug, Default)]
struct Configuration {
    url: Option<WebhookUrl>,
    method: Option<WebhookMethod>,
    filters: Option<Vec<String>>,
    triggers: Option<Vec<String>>,
    flow_sid: Option<String>,
    retry_count: Option<u32>,
}

impl Configuration {
    fn parse(form: &TwilioForm, allow_http: bool) -> ApiResult<Self> {
        let url = form
            .get("Configuration.Url")
            .map(|u| {
                WebhookUrl::parse(u, allow_http)
                    .map_err(|e| ApiError::invalid("Configuration.Url", e))
            })
            .transpose()?;
        let method = form
            .get("Configuration.Method")
            .map(|m| {
                WebhookMethod::parse(m)
                    .ok_or_else(|| ApiError::invalid("Configuration.Method", "must be POST or GET"))
            })
            .transpose()?;
        let list = |name: &str| -> Vec<String> {
            form.all(name)
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let filters = if form.has("Configuration.Filters") {
            let filters = list("Configuration.Filters");
            if let Some(bad) = filters.iter().find(|f| !is_post_event(f)) {
                return Err(ApiError::invalid(
                    "Configuration.Filters",
                    format!("{bad} is not a post-event (onMessageSent, onMemberAdded, …)"),
                ));
            }
            if filters.len() > MAX_FILTERS {
                return Err(ApiError::invalid(
                    "Configuration.Filters",
                    format!("at most {MAX_FILTERS}"),
                ));
            }
            Some(filters)
        } else {
            None
        };
        let triggers = if form.has("Configuration.Triggers") {
            let triggers = list("Configuration.Triggers");
            if triggers.len() > MAX_TRIGGERS {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    code::TOO_MANY_WEBHOOK_TRIGGERS,
                    format!(
                        "Invalid parameter Configuration.Triggers: at most {MAX_TRIGGERS} keywords"
                    ),
                ));
            }
            if let Some(bad) = triggers.iter().find(|t| {
                t.chars().count() > MAX_TRIGGER_CHARS
                    || t.chars().any(|c| c.is_whitespace() || c.is_control())
            }) {
                return Err(ApiError::invalid(
                    "Configuration.Triggers",
                    format!("{bad:?} must be one word of at most {MAX_TRIGGER_CHARS} characters"),
                ));
            }
            Some(triggers)
        } else {
            None
        };
        let flow_sid = form
            .get("Configuration.FlowSid")
            .map(|f| {
                let valid = f.len() == 34
                    && f.starts_with("FW")
                    && f[2..].chars().all(|c| c.is_ascii_hexdigit());
                if valid {
                    Ok(f.to_owned())
                } else {
                    Err(ApiError::invalid(
                        "Configuration.FlowSid",
                        "must be a Studio flow SID (FW followed by 32 hex digits)",
                    ))
                }
            })
            .transpose()?;
        let retry_count = form
            .get("Configuration.RetryCount")
            .map(|r| {
                r.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_RETRY_COUNT)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            code::INVALID_WEBHOOK_RETRY_COUNT,
                            format!(
                                "Invalid parameter Configuration.RetryCount: must be 0 to {MAX_RETRY_COUNT}"
                            ),
                        )
                    })
            })
            .transpose()?;
        Ok(Self {
            url,
            method,
            filters,
            triggers,
            flow_sid,
            retry_count,
        })
    }

    fn apply(self, hook: &mut ChannelWebhook) {
        if let Some(v) = self.url {
            hook.url = Some(v);
        }
        if let Some(v) = self.method {
            hook.method = v;
        }
        if let Some(v) = self.filters {
            hook.filters = v;
        }
        if let Some(v) = self.triggers {
            hook.triggers = v;
        }
        if let Some(v) = self.flow_sid {
            hook.flow_sid = Some(v);
        }
        if let Some(v) = self.retry_count {
            hook.retry_count = v;
        }
    }
}

/// What each type needs: a URL and filters, a URL and triggers, a flow.
fn complete(hook: &ChannelWebhook) -> ApiResult<()> {
    match hook.kind {
        ChannelWebhookType::Webhook | ChannelWebhookType::Trigger if hook.url.is_none() => {
            Err(ApiError::missing("Configuration.Url"))
        }
        ChannelWebhookType::Webhook if hook.filters.is_empty() => {
            Err(ApiError::missing("Configuration.Filters"))
        }
        ChannelWebhookType::Trigger if hook.triggers.is_empty() => {
            Err(ApiError::missing("Configuration.Triggers"))
        }
        ChannelWebhookType::Studio if hook.flow_sid.is_none() => {
            Err(ApiError::missing("Configuration.FlowSid"))
        }
        _ => Ok(()),
    }
}

fn view(state: &AppState, base: &PublicBase, scope: &AdminChannel, hook: &ChannelWebhook) -> Value {
    hook.to_json(
        &scope.channel.service_sid,
        &scope.channel.sid,
        state.view_at(base.as_str()),
    )
}

/// Applies `change` to the channel's webhooks and saves them on the condition of
/// the version read; a lost race reads again.
async fn change<T>(
    state: &AppState,
    scope: &AdminChannel,
    change: impl Fn(&mut Vec<ChannelWebhook>) -> ApiResult<T>,
) -> ApiResult<T> {
    for _ in 0..MAX_ATTEMPTS {
        let mut stored = state.store.channel_webhooks(&scope.channel.sid).await?;
        let out = change(&mut stored.webhooks)?;
        let next = ChannelWebhooks {
            version: stored.version + 1,
            webhooks: stored.webhooks,
        };
        match state
            .store
            .save_channel_webhooks(&scope.channel.sid, &next)
            .await
        {
            Ok(()) => return Ok(out),
            Err(SaveWebhooksError::Changed) => continue,
            Err(SaveWebhooksError::ChannelGone) => {
                return Err(ApiError::not_found(format!(
                    "Channel {} not found",
                    scope.channel.sid
                )))
            }
            Err(SaveWebhooksError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        code::CONFLICT,
        "The channel's webhooks kept changing; try again",
    ))
}

fn not_found(sid: &str) -> ApiError {
    ApiError::not_found(format!("Webhook {sid} not found"))
}

/// POST …/Webhooks: `Type` and the `Configuration.*` parameters.
pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    scope: AdminChannel,
    form: TwilioForm,
) -> ApiResult<Response> {
    let kind: ChannelWebhookType = form
        .parsed("Type")?
        .ok_or_else(|| ApiError::missing("Type"))?;
    let config = Configuration::parse(&form, state.settings.webhook_allow_http)?;
    let now = model::now();
    let mut hook = ChannelWebhook {
        sid: WebhookSid::generate(),
        kind,
        url: None,
        method: WebhookMethod::Post,
        filters: Vec::new(),
        triggers: Vec::new(),
        flow_sid: None,
        retry_count: 0,
        date_created: now,
        date_updated: now,
    };
    config.apply(&mut hook);
    complete(&hook)?;
    change(&state, &scope, |hooks| {
        if hooks.len() >= MAX_CHANNEL_WEBHOOKS {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                code::TOO_MANY_CHANNEL_WEBHOOKS,
                format!(
                    "Channel {} already has {MAX_CHANNEL_WEBHOOKS} webhooks, the most a channel may have",
                    scope.channel.sid
                ),
            ));
        }
        hooks.push(hook.clone());
        Ok(())
    })
    .await?;
    tracing::info!(webhook = %hook.sid, channel = %scope.channel.sid, kind = %hook.kind, "channel webhook created");
    Ok(created(view(&state, &base, &scope, &hook)))
}

/// GET …/Webhooks: in creation order, paged (`PageSize`, `PageToken`).
pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    scope: AdminChannel,
    Paging(req): Paging,
) -> ApiResult<Json<Value>> {
    let hooks = state
        .store
        .channel_webhooks(&scope.channel.sid)
        .await?
        .webhooks;
    // The token is the SID the previous page ended with.
    let start = match &req.token {
        None => 0,
        Some(t) => {
            let after: WebhookSid = parse_sid("PageToken", t)?;
            hooks
                .iter()
                .position(|h| h.sid == after)
                .map_or(hooks.len(), |i| i + 1)
        }
    };
    let size = req.size as usize;
    let items: Vec<Value> = hooks
        .iter()
        .skip(start)
        .take(size)
        .map(|h| view(&state, &base, &scope, h))
        .collect();
    let next_token = (start + size < hooks.len())
        .then(|| hooks.get(start + size - 1).map(|h| h.sid.to_string()))
        .flatten();
    let path = format!("{}/Webhooks", scope.channel.path());
    Ok(chat_media::http::page_response(
        base.as_str(),
        &path,
        "webhooks",
        &req,
        Page { items, next_token },
    ))
}

/// GET …/Webhooks/{Sid}.
pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    scope: AdminChannel,
    Path((_, _, sid)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let wanted: WebhookSid = parse_sid("Sid", &sid)?;
    let hooks = state
        .store
        .channel_webhooks(&scope.channel.sid)
        .await?
        .webhooks;
    let hook = hooks
        .iter()
        .find(|h| h.sid == wanted)
        .ok_or_else(|| not_found(&sid))?;
    Ok(Json(view(&state, &base, &scope, hook)))
}

/// POST …/Webhooks/{Sid}: the `Configuration.*` parameters to change.
pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    scope: AdminChannel,
    Path((_, _, sid)): Path<(String, String, String)>,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let wanted: WebhookSid = parse_sid("Sid", &sid)?;
    if form.has("Type") {
        return Err(ApiError::invalid("Type", "a webhook's type cannot change"));
    }
    let allow_http = state.settings.webhook_allow_http;
    let hook = change(&state, &scope, |hooks| {
        let hook = hooks
            .iter_mut()
            .find(|h| h.sid == wanted)
            .ok_or_else(|| not_found(&sid))?;
        Configuration::parse(&form, allow_http)?.apply(hook);
        complete(hook)?;
        hook.date_updated = model::now();
        Ok(hook.clone())
    })
    .await?;
    Ok(Json(view(&state, &base, &scope, &hook)))
}

/// DELETE …/Webhooks/{Sid}.
pub async fn delete(
    State(state): State<AppState>,
    scope: AdminChannel,
    Path((_, _, sid)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let wanted: WebhookSid = parse_sid("Sid", &sid)?;
    change(&state, &scope, |hooks| {
        let before = hooks.len();
        hooks.retain(|h| h.sid != wanted);
        if hooks.len() == before {
            return Err(not_found(&sid));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
