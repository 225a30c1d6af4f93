use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chat_media::access;
use chat_media::http::code;
use chat_media::http::PublicBase;
use chat_media::http::{
    created, page_json, parse_sid, AdminService, ApiResult, Paging, TwilioForm,
};
use chat_media::limits;
use chat_media::model::{
    self, ChatSettings, MediaQuotas, NotificationSettings, Service, WebhookConfig, WebhookMethod,
    WebhookUrl, MAX_MEDIA_SIZE_MB, MAX_QUOTA_WINDOW_HOURS, MAX_RETENTION_DAYS, MAX_RETRY_COUNT,
    MAX_SERVICE_LIMIT,
};
use chat_media::permission::RoleType;
use chat_media::sid::{RoleSid, ServiceSid};
use chat_media::{ApiError, AppState, Principal};

use crate::text_param;

/// POST /v2/Services: a service with Twilio's default roles and a blocked role.
pub async fn create(
    State(state): State<AppState>,
    base: PublicBase,
    who: Principal,
    form: TwilioForm,
) -> ApiResult<Response> {
    who.require_admin()?;
    let friendly_name = text_param(
        "FriendlyName",
        form.required("FriendlyName")?,
        limits::FRIENDLY_NAME,
    )?;
    let (mut service, roles) = Service::with_default_roles(
        ServiceSid::generate(),
        friendly_name,
        RoleSid::generate,
        model::now(),
    );
    apply_media_settings(&mut service, &form)?;
    apply_quota_settings(&mut service.quotas, &form)?;
    apply_webhook_settings(
        &mut service.webhooks,
        &form,
        state.settings.webhook_allow_http,
    )?;
    apply_chat_settings(&mut service.chat, &form)?;
    state.store.create_service(&service, &roles).await?;
    tracing::info!(service = %service.sid, "service created");
    Ok(created(service.to_json(state.view_at(base.as_str()))))
}

pub async fn list(
    State(state): State<AppState>,
    base: PublicBase,
    who: Principal,
    Paging(req): Paging,
) -> ApiResult<Json<serde_json::Value>> {
    who.require_admin()?;
    let page = state.store.list_services(&req).await?;
    Ok(page_json(
        &state,
        &base,
        "/v2/Services",
        "services",
        &req,
        page,
        |r, ctx| r.to_json(ctx),
    ))
}

pub async fn fetch(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(service): AdminService,
) -> Json<serde_json::Value> {
    Json(service.to_json(state.view_at(base.as_str())))
}

/// Reads `Media.*` parameters into the service's media settings.
fn apply_media_settings(service: &mut Service, form: &TwilioForm) -> ApiResult<()> {
    let media = &mut service.media;
    if let Some(message) = form.get("Media.CompatibilityMessage") {
        if message.trim().is_empty() {
            return Err(ApiError::invalid(
                "Media.CompatibilityMessage",
                "must not be empty",
            ));
        }
        media.compatibility_message = text_param(
            "Media.CompatibilityMessage",
            message,
            limits::COMPATIBILITY_MESSAGE,
        )?;
    }
    if let Some(limit) = form.get("Media.SizeLimitMb") {
        media.size_limit_mb = limit
            .parse()
            .ok()
            .filter(|mb| (1..=MAX_MEDIA_SIZE_MB).contains(mb))
            .ok_or_else(|| {
                ApiError::invalid(
                    "Media.SizeLimitMb",
                    format!("must be a number from 1 to {MAX_MEDIA_SIZE_MB}"),
                )
            })?;
    }
    if form.has("Media.AllowedTypes") {
        let mut types = Vec::new();
        for t in form
            .all("Media.AllowedTypes")
            .into_iter()
            .filter(|t| !t.is_empty())
        {
            types.push(parse_type_pattern(t)?);
        }
        media.allowed_types = types;
    }
    if form.has("Media.BlockedExtensions") {
        let mut exts = Vec::new();
        for e in form
            .all("Media.BlockedExtensions")
            .into_iter()
            .filter(|e| !e.is_empty())
        {
            let e = e.trim_start_matches('.').to_ascii_lowercase();
            if e.is_empty() || e.len() > 16 || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ApiError::invalid(
                    "Media.BlockedExtensions",
                    format!("'{e}' is not a file extension"),
                ));
            }
            exts.push(e);
        }
        exts.sort();
        exts.dedup();
        media.blocked_extensions = exts;
    }
    // --- issue 17 §1 (s20-images): metadata stripping ---
    if let Some(strip) = bool_param(form, "Media.StripMetadata")? {
        media.strip_metadata = strip;
    }
    Ok(())
}

// ---- s20-quota (issue 17 §4–5) ----

/// Reads `Media.QuotaBytesPerIdentity`, `Media.QuotaWindowHours`,
/// `Media.QuotaBytesPerService` and `Media.RetentionDays`: a positive whole
/// number, or empty or `0` to turn the limit off.
fn apply_quota_settings(quotas: &mut MediaQuotas, form: &TwilioForm) -> ApiResult<()> {
    fn limit<T: std::str::FromStr + PartialOrd + Default + std::fmt::Display>(
        form: &TwilioForm,
        name: &str,
        max: T,
    ) -> ApiResult<Option<Option<T>>> {
        let Some(raw) = form.get(name) else {
            return Ok(None);
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Some(None));
        }
        let value: T = raw.parse().ok().filter(|v| *v <= max).ok_or_else(|| {
            ApiError::invalid(
                name,
                format!("must be a whole number from 0 (off) to {max}, or empty (off)"),
            )
        })?;
        Ok(Some((value > T::default()).then_some(value)))
    }
    if let Some(v) = limit(form, "Media.QuotaBytesPerIdentity", u64::MAX / 2)? {
        quotas.bytes_per_identity = v;
    }
    if let Some(v) = limit(form, "Media.QuotaWindowHours", MAX_QUOTA_WINDOW_HOURS)? {
        quotas.window_hours = v;
    }
    if let Some(v) = limit(form, "Media.QuotaBytesPerService", u64::MAX / 2)? {
        quotas.bytes_per_service = v;
    }
    if let Some(v) = limit(form, "Media.RetentionDays", MAX_RETENTION_DAYS)? {
        quotas.retention_days = v;
    }
    Ok(())
}

// ---- end s20-quota ----

/// Reads Twilio's webhook parameters (`PreWebhookUrl`, `PostWebhookUrl`,
/// `WebhookMethod`, repeated `WebhookFilters`, `PreWebhookRetryCount`,
/// `PostWebhookRetryCount`) and ours (`PreWebhookFailOpen`, `PreWebhookForRest`).
/// An empty URL clears it; a `WebhookFilters` with only an empty value clears the list.
fn apply_webhook_settings(
    hooks: &mut WebhookConfig,
    form: &TwilioForm,
    allow_http: bool,
) -> ApiResult<()> {
    let url = |name: &str| -> ApiResult<Option<Option<WebhookUrl>>> {
        match form.get(name) {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(v) => WebhookUrl::parse(v, allow_http)
                .map(|u| Some(Some(u)))
                .map_err(|e| ApiError::invalid(name, e)),
        }
    };
    if let Some(u) = url("PreWebhookUrl")? {
        hooks.pre_url = u;
    }
    if let Some(u) = url("PostWebhookUrl")? {
        hooks.post_url = u;
    }
    if let Some(m) = form.get("WebhookMethod") {
        hooks.method = Some(
            WebhookMethod::parse(m)
                .ok_or_else(|| ApiError::invalid("WebhookMethod", "must be POST or GET"))?,
        );
    }
    if form.has("WebhookFilters") {
        let mut filters = Vec::new();
        for f in form
            .all("WebhookFilters")
            .into_iter()
            .filter(|f| !f.is_empty())
        {
            if !model::is_event(f) {
                return Err(ApiError::invalid(
                    "WebhookFilters",
                    format!("'{f}' is not a webhook event such as onMessageSend"),
                ));
            }
            if !filters.iter().any(|x| x == f) {
                filters.push(f.to_owned());
            }
        }
        hooks.filters = filters;
    }
    let count = |name: &str| -> ApiResult<Option<u32>> {
        form.get(name)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_RETRY_COUNT)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            name,
                            format!("must be a number from 0 to {MAX_RETRY_COUNT}"),
                        )
                    })
            })
            .transpose()
    };
    if let Some(n) = count("PreWebhookRetryCount")? {
        hooks.pre_retry_count = n;
    }
    if let Some(n) = count("PostWebhookRetryCount")? {
        hooks.post_retry_count = n;
    }
    if let Some(b) = bool_param(form, "PreWebhookFailOpen")? {
        hooks.pre_fail_open = b;
    }
    if let Some(b) = bool_param(form, "PreWebhookForRest")? {
        hooks.pre_for_rest = b;
    }
    Ok(())
}

// ---- Chat v2 Service parameters (issue 12, s20-service): begin ----

/// `true`/`false` (any case), as Twilio's libraries send booleans.
fn bool_param(form: &TwilioForm, name: &str) -> ApiResult<Option<bool>> {
    form.get(name)
        .map(|v| match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid(name, "must be true or false")),
        })
        .transpose()
}

/// A whole number of seconds (at most a day: these are client timings).
fn seconds_param(form: &TwilioForm, name: &str) -> ApiResult<Option<u32>> {
    const DAY: u32 = 86_400;
    form.get(name)
        .map(|v| {
            v.parse::<u32>().ok().filter(|n| *n <= DAY).ok_or_else(|| {
                ApiError::invalid(name, format!("must be a number of seconds from 0 to {DAY}"))
            })
        })
        .transpose()
}

/// `Limits.*`: 1 to 1,000 (Twilio's maximum); Twilio's code for a bad one.
fn limit_param(form: &TwilioForm, name: &str, twilio_code: u32) -> ApiResult<Option<u32>> {
    form.get(name)
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_SERVICE_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        twilio_code,
                        format!(
                            "Invalid parameter {name}: must be a number from 1 to {MAX_SERVICE_LIMIT}"
                        ),
                    )
                })
        })
        .transpose()
}

/// `Notifications.<kind>.{Enabled,Template,Sound}` (and `BadgeCountEnabled` for
/// `NewMessage`); an empty `Template` or `Sound` clears it.
fn apply_notification(
    n: &mut NotificationSettings,
    form: &TwilioForm,
    kind: &str,
) -> ApiResult<()> {
    if let Some(b) = bool_param(form, &format!("Notifications.{kind}.Enabled"))? {
        n.enabled = b;
    }
    for (field, slot, too_long) in [
        (
            "Template",
            &mut n.template,
            code::NOTIFICATION_TEMPLATE_TOO_LONG,
        ),
        ("Sound", &mut n.sound, code::NOTIFICATION_SOUND_TOO_LONG),
    ] {
        let name = format!("Notifications.{kind}.{field}");
        if let Some(v) = form.get(&name) {
            if limits::NOTIFICATION_TEXT.check(v).is_err() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    too_long,
                    format!(
                        "Invalid parameter {name}: must be at most {} characters",
                        limits::NOTIFICATION_TEXT.chars
                    ),
                ));
            }
            *slot = match v {
                "" => None,
                v => Some(text_param(&name, v, limits::NOTIFICATION_TEXT)?),
            };
        }
    }
    if kind == "NewMessage" {
        if let Some(b) = bool_param(form, "Notifications.NewMessage.BadgeCountEnabled")? {
            n.badge_count_enabled = Some(b);
        }
    }
    Ok(())
}

/// Reads Twilio's remaining Chat v2 Service parameters: `ReadStatusEnabled`,
/// `ReachabilityEnabled`, `TypingIndicatorTimeout`, `ConsumptionReportInterval`,
/// `Limits.ChannelMembers` (50061 when bad), `Limits.UserChannels` (50060) and
/// `Notifications.*`.
fn apply_chat_settings(chat: &mut ChatSettings, form: &TwilioForm) -> ApiResult<()> {
    if let Some(b) = bool_param(form, "ReadStatusEnabled")? {
        chat.read_status_enabled = b;
    }
    if let Some(b) = bool_param(form, "ReachabilityEnabled")? {
        chat.reachability_enabled = b;
    }
    if let Some(n) = seconds_param(form, "TypingIndicatorTimeout")? {
        chat.typing_indicator_timeout = n;
    }
    if let Some(n) = seconds_param(form, "ConsumptionReportInterval")? {
        chat.consumption_report_interval = n;
    }
    if let Some(n) = limit_param(
        form,
        "Limits.ChannelMembers",
        code::INVALID_CHANNEL_MEMBERS_LIMIT,
    )? {
        chat.limits.channel_members = n;
    }
    if let Some(n) = limit_param(
        form,
        "Limits.UserChannels",
        code::INVALID_USER_CHANNELS_LIMIT,
    )? {
        chat.limits.user_channels = n;
    }
    let n = &mut chat.notifications;
    apply_notification(&mut n.new_message, form, "NewMessage")?;
    apply_notification(&mut n.added_to_channel, form, "AddedToChannel")?;
    apply_notification(&mut n.removed_from_channel, form, "RemovedFromChannel")?;
    apply_notification(&mut n.invited_to_channel, form, "InvitedToChannel")?;
    if let Some(b) = bool_param(form, "Notifications.LogEnabled")? {
        n.log_enabled = b;
    }
    Ok(())
}

// ---- Chat v2 Service parameters (issue 12, s20-service): end ----

/// `type/subtype` or `type/*`, lower-cased.
fn parse_type_pattern(t: &str) -> ApiResult<String> {
    let t = t.trim().to_ascii_lowercase();
    let valid_part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match t.split_once('/') {
        Some((ty, sub)) if valid_part(ty) && (sub == "*" || valid_part(sub)) => Ok(t),
        _ => Err(ApiError::invalid(
            "Media.AllowedTypes",
            format!("'{t}' is not a media type pattern such as image/*"),
        )),
    }
}

/// A role named in a service update must be of that service and of the right type.
async fn role_param(
    state: &AppState,
    service: &ServiceSid,
    form: &TwilioForm,
    name: &'static str,
    role_type: RoleType,
) -> ApiResult<Option<RoleSid>> {
    let Some(value) = form.get(name) else {
        return Ok(None);
    };
    let sid: RoleSid = parse_sid(name, value)?;
    access::role_of_type(state, service, name, &sid, role_type).await?;
    Ok(Some(sid))
}

pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    AdminService(mut service): AdminService,
    form: TwilioForm,
) -> ApiResult<Json<serde_json::Value>> {
    let sid = service.sid.clone();
    if let Some(name) = form.get("FriendlyName") {
        service.friendly_name = text_param("FriendlyName", name, limits::FRIENDLY_NAME)?;
    }
    if let Some(r) = role_param(
        &state,
        &sid,
        &form,
        "DefaultServiceRoleSid",
        RoleType::Deployment,
    )
    .await?
    {
        service.default_service_role_sid = r;
    }
    if let Some(r) = role_param(
        &state,
        &sid,
        &form,
        "DefaultChannelRoleSid",
        RoleType::Channel,
    )
    .await?
    {
        service.default_channel_role_sid = r;
    }
    if let Some(r) = role_param(
        &state,
        &sid,
        &form,
        "DefaultChannelCreatorRoleSid",
        RoleType::Channel,
    )
    .await?
    {
        service.default_channel_creator_role_sid = r;
    }
    if let Some(r) = role_param(
        &state,
        &sid,
        &form,
        "BlockedChannelRoleSid",
        RoleType::Channel,
    )
    .await?
    {
        service.blocked_channel_role_sid = r;
    }
    apply_media_settings(&mut service, &form)?;
    apply_quota_settings(&mut service.quotas, &form)?;
    apply_webhook_settings(
        &mut service.webhooks,
        &form,
        state.settings.webhook_allow_http,
    )?;
    apply_chat_settings(&mut service.chat, &form)?;
    service.date_updated = model::now();
    state
        .store
        .update_service(&service)
        .await
        .map_err(|e| match e {
            chat_media::store::StoreError::ConditionFailed => {
                ApiError::not_found(format!("Service {sid} not found"))
            }
            other => other.into(),
        })?;
    Ok(Json(service.to_json(state.view_at(base.as_str()))))
}

/// DELETE /v2/Services/{sid}: the service and everything in it; S3 objects of its
/// media are deleted after the records, and the sweep retries any that fail.
pub async fn delete(
    State(state): State<AppState>,
    AdminService(service): AdminService,
) -> ApiResult<Response> {
    let sid = service.sid;
    let pending = state.store.delete_service(&sid).await?;
    chat_media::cleanup::delete_objects(&state, &pending).await;
    tracing::info!(service = %sid, objects = pending.len(), "service deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
