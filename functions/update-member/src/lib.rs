//! update-member: moderation.
//!
//! - `POST /v2/Services/{ServiceSid}/Channels/{ChannelSid}/Members/{MemberSid}` with
//!   `RoleSid` (Twilio's member update; member by SID or identity) → Member JSON.
//! - `POST /block-user` and `POST /unblock-user` with form fields `chatChannelSid`
//!   and `memberSid`, as the Flex plugin sends them; the token may come as the form
//!   field `Token`, ours or (when `FLEX_TOKEN_VALIDATION_URL` is set) the agent's own
//!   Flex token, which Twilio's token validation API vouches for. Block moves the member to the service's blocked role and keeps
//!   the role it had; unblock restores it (or the default channel role).
//!
//! Who may: admins, and moderators (users whose role in the channel has
//! `removeMember`, and Flex users whose Flex role is a moderator role:
//! `supervisor` and `admin` unless `FLEX_MODERATOR_ROLES` says otherwise). A moderator only moves a member between the service's default
//! channel role and its blocked role: blocking a member of the default role, and
//! unblocking one who was blocked from it. Every other change (another role, a
//! custom role given or taken, unblocking a member an admin blocked from another
//! role, a moderator's own role or another moderator's) is an admin's. Role
//! changes are conditional writes on the role read, so concurrent changes never
//! lose one; every change logs one structured line (target `audit`).

use axum::extract::{Path, Request, State};
use axum::http::{Extensions, HeaderMap};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use chat_media::access::{self, AccessError};
use chat_media::auth::Principal;
use chat_media::dispatch::{self, Hooks};
use chat_media::flex::{looks_like_flex_token, FlexUser};
use chat_media::http::hooks::WebhookEnabled;
use chat_media::http::params::{attributes_update, date_param};
use chat_media::http::PublicBase;
use chat_media::http::{
    code, parse_sid, read_body_limited, unix_now, ApiResult, Caller, ChannelScope, TwilioForm,
    MAX_FORM_BYTES,
};
use chat_media::model::{self, Channel, Member, Role, Service};
use chat_media::permission::{Permission, RoleType};
use chat_media::sid::{ChannelSid, RoleSid, ServiceSid};
use chat_media::store::StoreError;
use chat_media::webhook::Firing;
use chat_media::Identity;
use chat_media::{ApiError, AppState};
use serde_json::{json, Value};

/// Attempts at a role change when another change to the same member wins the race.
const MAX_ATTEMPTS: usize = 5;

/// The routes of this function, without state or fallbacks (the local runner merges them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v2/Services/{service}/Channels/{channel}/Members/{member}",
            post(update),
        )
        .route("/block-user", post(block))
        .route("/unblock-user", post(unblock))
}

/// The function's full router, as Lambda serves it.
pub fn router(state: AppState) -> Router {
    chat_media::http::with_fallbacks(routes()).with_state(state)
}

/// What a request asks for the member's role.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action<'a> {
    /// Twilio's member update, to this (validated) channel role.
    Update(&'a Role),
    Block,
    Unblock,
}

impl Action<'_> {
    fn as_str(self) -> &'static str {
        match self {
            Action::Update(_) => "update",
            Action::Block => "block",
            Action::Unblock => "unblock",
        }
    }
}

/// Who asks for a role change.
#[derive(Debug)]
enum Actor {
    /// An admin, or a member of the channel (Basic credentials or our access token).
    Caller(Caller),
    /// A Flex user whose Flex role may moderate (a Flex token Twilio vouched for).
    /// Not a member of the channel: bound by the same rules as a moderator.
    Flex(FlexUser),
}

impl Actor {
    /// The moderator's identity; `None` for admins, who may make any change.
    fn moderator(&self) -> Option<&str> {
        match self {
            Actor::Caller(Caller::Admin) => None,
            Actor::Caller(Caller::Member(member, _)) => Some(member.identity.as_str()),
            Actor::Flex(user) => Some(&user.identity),
        }
    }
}

/// The request id for the audit line: API Gateway's, else Lambda's, else the
/// caller's `X-Request-Id`, else a fresh one.
fn request_id(headers: &HeaderMap, extensions: &Extensions) -> String {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    if let Some(RequestContext::ApiGatewayV2(ctx)) = extensions.request_context_ref() {
        if let Some(id) = &ctx.request_id {
            return id.clone();
        }
    }
    if let Some(ctx) = extensions.lambda_context_ref() {
        return ctx.request_id.clone();
    }
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 12]>()))
}

/// The caller may change roles in its channel at all: admins, members whose
/// role has `removeMember`, and Flex moderators (their Flex role was checked with
/// their token). Checked before the target is even looked up, so nobody else
/// learns who is a member.
fn authorize_caller(actor: &Actor) -> ApiResult<()> {
    match actor {
        Actor::Caller(caller) => caller.require(Permission::RemoveMember),
        Actor::Flex(_) => Ok(()),
    }
}

/// The change itself is allowed. Admins make any change. A moderator never
/// changes its own role nor a moderator's, never gives `removeMember`, and only
/// moves a member between the service's default channel role and its blocked
/// role; leaving the blocked role is theirs only for a member blocked from the
/// default role (one an admin blocked from another role is the admin's to
/// restore).
fn authorize_change(
    actor: &Actor,
    service: &Service,
    target: &Member,
    current: &Role,
    new_role: &Role,
) -> ApiResult<()> {
    let Some(moderator) = actor.moderator() else {
        return Ok(());
    };
    if moderator == target.identity.as_str() {
        return Err(ApiError::role_refused("Nobody may change their own role"));
    }
    if current.has(Permission::RemoveMember) {
        return Err(ApiError::role_refused(format!(
            "{} holds removeMember (role {}); only an admin may change that member's role",
            target.identity, current.sid
        )));
    }
    if new_role.has(Permission::RemoveMember) {
        return Err(ApiError::role_refused(format!(
            "Role {} holds removeMember; only an admin may give it",
            new_role.sid
        )));
    }
    let (default, blocked) = (
        &service.default_channel_role_sid,
        &service.blocked_channel_role_sid,
    );
    let rule = || {
        format!(
            "a moderator only moves members between the default channel role {default} \
             and the blocked role {blocked}; anything else is an admin's change"
        )
    };
    if current.sid != *default && current.sid != *blocked {
        return Err(ApiError::role_refused(format!(
            "{} has role {}: {}",
            target.identity,
            current.sid,
            rule()
        )));
    }
    if new_role.sid != *default && new_role.sid != *blocked {
        return Err(ApiError::role_refused(format!(
            "Role {}: {}",
            new_role.sid,
            rule()
        )));
    }
    if new_role.sid != *blocked {
        if let Some(before) = target.role_before_block.as_ref().filter(|r| *r != default) {
            return Err(ApiError::role_refused(format!(
                "{} was blocked from role {before}: {}",
                target.identity,
                rule()
            )));
        }
    }
    Ok(())
}

/// A channel role of the service, or `None` if it is gone or of another kind.
async fn channel_role(
    state: &AppState,
    service: &ServiceSid,
    sid: &RoleSid,
) -> ApiResult<Option<Role>> {
    Ok(state
        .store
        .get_role(service, sid)
        .await?
        .filter(|r| r.role_type == RoleType::Channel))
}

/// The outcome of one role change, for the response and the audit line.
struct Change {
    member: Member,
    previous_role: RoleSid,
}

/// Reads the member, decides its new role, checks the caller may make the change
/// and writes it on the condition that the role is still the one read; a lost race
/// starts over from a fresh read.
async fn change_role(
    state: &AppState,
    caller: &Actor,
    service: &Service,
    channel: &Channel,
    member_ref: &str,
    action: Action<'_>,
    (fields, hooks): (&MemberFields, &Hooks),
) -> ApiResult<Change> {
    authorize_caller(caller)?;
    let mut fired = false;
    for _ in 0..MAX_ATTEMPTS {
        let member = access::member(state, channel, member_ref).await?;
        let current = access::member_role(state, &member).await?;
        let blocked_role = &service.blocked_channel_role_sid;
        let (new_role, role_before_block) = match action {
            Action::Update(requested) => {
                let role = requested.clone();
                let before = if &role.sid == blocked_role {
                    member
                        .role_before_block
                        .clone()
                        .or(Some(member.role_sid.clone()))
                        .filter(|r| r != blocked_role)
                } else {
                    None
                };
                (role, before)
            }
            Action::Block => {
                let role = channel_role(state, &service.sid, blocked_role)
                    .await?
                    .ok_or_else(|| {
                        ApiError::unprocessable(format!(
                            "The service's blocked role {blocked_role} is missing or not a channel role"
                        ))
                    })?;
                let before = member
                    .role_before_block
                    .clone()
                    .or(Some(member.role_sid.clone()))
                    .filter(|r| r != blocked_role);
                (role, before)
            }
            Action::Unblock => {
                let is_blocked =
                    &member.role_sid == blocked_role || member.role_before_block.is_some();
                if !is_blocked {
                    (current.clone(), None)
                } else {
                    let restored = match &member.role_before_block {
                        Some(sid) => channel_role(state, &service.sid, sid).await?,
                        None => None,
                    };
                    let role = match restored {
                        Some(role) => role,
                        None => {
                            channel_role(state, &service.sid, &service.default_channel_role_sid)
                                .await?
                                .ok_or_else(|| {
                                    ApiError::unprocessable(format!(
                                        "The service's default channel role {} is missing",
                                        service.default_channel_role_sid
                                    ))
                                })?
                        }
                    };
                    (role, None)
                }
            }
        };
        if new_role.sid == member.role_sid
            && role_before_block == member.role_before_block
            && fields.is_empty()
        {
            // Nothing to change: idempotent, but still only for those who may ask.
            authorize_change(caller, service, &member, &current, &new_role)?;
            return Ok(Change {
                previous_role: member.role_sid.clone(),
                member,
            });
        }
        authorize_change(caller, service, &member, &current, &new_role)?;
        match caller {
            Actor::Caller(caller) => fields.authorize(caller, &member)?,
            // The plugin endpoints change roles only.
            Actor::Flex(_) if !fields.is_empty() => {
                return Err(ApiError::forbidden(
                    "A Flex moderator only blocks and unblocks",
                ))
            }
            Actor::Flex(_) => {}
        }
        let previous_role = member.role_sid.clone();
        let mut updated = Member {
            role_sid: new_role.sid.clone(),
            role_before_block,
            date_updated: model::now(),
            ..member
        };
        fields.apply(&mut updated);
        if !fired {
            pre_member_update(state, hooks, &updated).await?;
            fired = true;
        }
        let events = post_member_update(state, hooks, &updated);
        match state
            .store
            .replace_member_with_events(&updated, &previous_role, &events)
            .await
        {
            Ok(()) => {
                return Ok(Change {
                    member: updated,
                    previous_role,
                })
            }
            // Changed or removed meanwhile: read again and decide again.
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        code::CONFLICT,
        "The member's role kept changing; try again",
    ))
}

/// One structured line per role change: who, whom, where, from, to, when, request.
fn audit(caller: &Actor, channel: &Channel, change: &Change, action: Action<'_>, request_id: &str) {
    if change.previous_role == change.member.role_sid {
        return;
    }
    let (actor_type, actor) = match caller {
        Actor::Caller(Caller::Admin) => ("admin", "admin".to_owned()),
        Actor::Caller(Caller::Member(member, _)) => ("user", member.identity.to_string()),
        Actor::Flex(user) => ("flex", user.identity.clone()),
    };
    tracing::info!(
        target: "audit",
        event = "member_role_changed",
        action = action.as_str(),
        actor_type,
        actor = %actor,
        member_sid = %change.member.sid,
        member_identity = %change.member.identity,
        channel_sid = %channel.sid,
        service_sid = %channel.service_sid,
        from_role_sid = %change.previous_role,
        to_role_sid = %change.member.role_sid,
        time = %model::iso(&change.member.date_updated),
        request_id = %request_id,
        "member role changed"
    );
}

/// The parameters of Twilio's member update besides `RoleSid`, each optional.
#[derive(Debug, Default)]
struct MemberFields {
    attributes: Option<String>,
    /// `Some(None)` clears the horizon (an empty `LastConsumedMessageIndex`).
    last_consumed_message_index: Option<Option<u64>>,
    last_consumption_timestamp: Option<model::Timestamp>,
    date_created: Option<model::Timestamp>,
    date_updated: Option<model::Timestamp>,
}

impl MemberFields {
    fn parse(form: &TwilioForm) -> ApiResult<Self> {
        Ok(Self {
            attributes: attributes_update(form.get("Attributes"))?,
            last_consumed_message_index: form
                .get("LastConsumedMessageIndex")
                .map(|v| match v {
                    "" | "null" => Ok(None),
                    v => v.parse::<u64>().map(Some).map_err(|_| {
                        ApiError::invalid("LastConsumedMessageIndex", "must be a message index")
                    }),
                })
                .transpose()?,
            last_consumption_timestamp: date_param(
                "LastConsumptionTimestamp",
                form.get("LastConsumptionTimestamp"),
            )?,
            date_created: date_param("DateCreated", form.get("DateCreated"))?,
            date_updated: date_param("DateUpdated", form.get("DateUpdated"))?,
        })
    }

    fn is_empty(&self) -> bool {
        self.attributes.is_none()
            && self.last_consumed_message_index.is_none()
            && self.last_consumption_timestamp.is_none()
            && self.date_created.is_none()
            && self.date_updated.is_none()
    }

    /// Admins set anything; a member sets its own consumption horizon and
    /// attributes; the dates are an admin's.
    fn authorize(&self, caller: &Caller, target: &Member) -> ApiResult<()> {
        let Caller::Member(own, _) = caller else {
            return Ok(());
        };
        if self.is_empty() {
            return Ok(());
        }
        if own.identity != target.identity {
            return Err(ApiError::forbidden(
                "Users may only update their own membership",
            ));
        }
        if self.date_created.is_some() || self.date_updated.is_some() {
            return Err(ApiError::forbidden(
                "Only an admin may set DateCreated or DateUpdated",
            ));
        }
        Ok(())
    }

    fn apply(&self, member: &mut Member) {
        if let Some(a) = &self.attributes {
            member.attributes = a.clone();
        }
        if let Some(i) = self.last_consumed_message_index {
            member.last_consumed_message_index = i;
        }
        if let Some(t) = self.last_consumption_timestamp {
            member.last_consumption_timestamp = Some(t);
        }
        if let Some(d) = self.date_created {
            member.date_created = d;
        }
        if let Some(d) = self.date_updated {
            member.date_updated = d;
        }
    }
}

/// A member update without `RoleSid`: the other fields, written on the condition
/// that the member is still as read (a lost race reads again).
async fn update_fields(
    state: &AppState,
    caller: &Caller,
    channel: &Channel,
    member_ref: &str,
    fields: &MemberFields,
    hooks: &Hooks,
) -> ApiResult<Member> {
    // A user addressing anyone else's membership learns nothing about it.
    if let Caller::Member(own, _) = caller {
        if own.sid.as_str() != member_ref && own.identity.as_str() != member_ref {
            return Err(ApiError::forbidden(
                "Users may only update their own membership",
            ));
        }
    }
    let mut fired = false;
    for _ in 0..MAX_ATTEMPTS {
        let read = access::member(state, channel, member_ref).await?;
        fields.authorize(caller, &read)?;
        if fields.is_empty() {
            return Ok(read);
        }
        let mut updated = read.clone();
        updated.date_updated = model::now();
        fields.apply(&mut updated);
        if !fired {
            pre_member_update(state, hooks, &updated).await?;
            fired = true;
        }
        let events = post_member_update(state, hooks, &updated);
        match state
            .store
            .replace_member_unchanged_with_events(&updated, &read, &events)
            .await
        {
            Ok(()) => return Ok(updated),
            Err(e) if e.condition_failed_at(0) || e.is_conflict() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        code::CONFLICT,
        "The member kept changing; try again",
    ))
}

/// POST .../Members/{MemberSid}: Twilio's member update. Every parameter is
/// optional: `RoleSid` (the moderation rules above), `Attributes`,
/// `LastConsumedMessageIndex`, `LastConsumptionTimestamp`, `DateCreated`,
/// `DateUpdated`.
pub async fn update(
    State(state): State<AppState>,
    base: PublicBase,
    ChannelScope {
        service,
        channel,
        caller,
    }: ChannelScope,
    Path((_, _, member)): Path<(String, String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
    form: TwilioForm,
) -> ApiResult<Json<Value>> {
    let enabled = WebhookEnabled::of(&headers);
    let fields = MemberFields::parse(&form)?;
    let Some(role_sid) = form.get("RoleSid") else {
        let hooks = enabled
            .hooks_of(&state, &service, &caller)
            .await?
            .with_channel(&state, &channel.sid)
            .await?;
        let member = update_fields(&state, &caller, &channel, &member, &fields, &hooks).await?;
        return Ok(Json(member.to_json(state.view_at(base.as_str()))));
    };
    let role_sid: RoleSid = parse_sid("RoleSid", role_sid)?;
    let service = state
        .store
        .get_service(&service)
        .await?
        .ok_or(AccessError::ServiceNotFound(service))?;
    let role = access::role_of_type(
        &state,
        &service.sid,
        "RoleSid",
        &role_sid,
        RoleType::Channel,
    )
    .await?;
    let caller = Actor::Caller(caller);
    let hooks = actor_hooks(&service, &caller, enabled)
        .with_channel(&state, &channel.sid)
        .await?;
    let change = change_role(
        &state,
        &caller,
        &service,
        &channel,
        &member,
        Action::Update(&role),
        (&fields, &hooks),
    )
    .await?;
    audit(
        &caller,
        &channel,
        &change,
        Action::Update(&role),
        &request_id(&headers, &extensions),
    );
    Ok(Json(change.member.to_json(state.view_at(base.as_str()))))
}

pub async fn block(State(state): State<AppState>, req: Request) -> ApiResult<impl IntoResponse> {
    plugin(state, req, Action::Block).await
}

pub async fn unblock(State(state): State<AppState>, req: Request) -> ApiResult<impl IntoResponse> {
    plugin(state, req, Action::Unblock).await
}

/// The plugin endpoints: the channel names the service, the token may be a form field.
async fn plugin(state: AppState, req: Request, action: Action<'static>) -> ApiResult<Json<Value>> {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    if !chat_media::http::has_content_type(&headers, "application/x-www-form-urlencoded") {
        return Err(ApiError::unsupported_media_type(
            "Request body must be application/x-www-form-urlencoded",
        ));
    }
    let body = read_body_limited(Request::new(body), MAX_FORM_BYTES).await?;
    let form = TwilioForm::parse(&body);
    // A Flex token (a JWE) in the form, when Flex tokens are accepted: Twilio's
    // validation API says whose it is, before any input is looked at.
    enum Who {
        Ours(Principal),
        Flex(FlexUser),
    }
    let flex_token = form
        .get("Token")
        .map(str::trim)
        .filter(|t| looks_like_flex_token(t));
    let who = match (&state.flex, flex_token) {
        (Some(flex), Some(token)) => Who::Flex(flex.moderator(token, unix_now()).await?),
        _ => Who::Ours(state.credentials.authenticate_with_form_token(
            &headers,
            form.get("Token"),
            unix_now(),
        )?),
    };
    let channel_sid: ChannelSid = parse_sid("chatChannelSid", form.required("chatChannelSid")?)?;
    let member_ref = form.required("memberSid")?;
    let not_found = || AccessError::ChannelNotFound(channel_sid.to_string());
    let channel = access::live(
        state.store.find_channel(&channel_sid).await?,
        channel_sid.as_str(),
    )?;
    // A channel of another service does not exist for this caller. A Flex token
    // is the account's, as the validation API (asked with the account's
    // credentials) vouched: every service of the account is its own.
    if let Who::Ours(who) = &who {
        if who.require_service(&channel.service_sid).is_err() {
            return Err(not_found().into());
        }
    }
    let service = state
        .store
        .get_service(&channel.service_sid)
        .await?
        .ok_or_else(not_found)?;
    let caller = match who {
        Who::Ours(who) => Actor::Caller(Caller::of(&state, &who, &channel).await?),
        Who::Flex(user) => Actor::Flex(user),
    };
    let enabled = WebhookEnabled::of(&headers);
    let hooks = actor_hooks(&service, &caller, enabled)
        .with_channel(&state, &channel.sid)
        .await?;
    let change = change_role(
        &state,
        &caller,
        &service,
        &channel,
        member_ref,
        action,
        (&MemberFields::default(), &hooks),
    )
    .await?;
    audit(
        &caller,
        &channel,
        &change,
        action,
        &request_id(&headers, &parts.extensions),
    );
    let blocked = change.member.role_sid == service.blocked_channel_role_sid;
    Ok(Json(json!({
        "member_sid": change.member.sid,
        "channel_sid": channel.sid,
        "role_sid": change.member.role_sid,
        "previous_role_sid": change.previous_role,
        "blocked": blocked,
    })))
}

/// The hooks of a role change: a member or a Flex moderator acts as a user
/// (pre- and post-events), an admin as REST.
fn actor_hooks(service: &Service, actor: &Actor, enabled: WebhookEnabled) -> Hooks {
    let identity = match actor {
        Actor::Caller(caller) => caller.identity().cloned(),
        Actor::Flex(user) => Identity::parse(&user.identity).ok(),
    };
    let firing = match actor {
        Actor::Flex(_) => Firing::User,
        Actor::Caller(caller) => enabled.firing(caller.identity()),
    };
    Hooks::new(
        service.sid.clone(),
        service.webhooks.clone(),
        firing,
        identity,
    )
}

/// Fires `onMemberUpdate` with the member as it would become; the hook may
/// veto (no change is written). Twilio's member pre-events change nothing else.
async fn pre_member_update(state: &AppState, hooks: &Hooks, member: &Member) -> ApiResult<()> {
    let mut event = hooks.event(state, "onMemberUpdate");
    dispatch::member_params(&mut event, member, true);
    hooks.pre(state, &event).await?;
    Ok(())
}

/// The `onMemberUpdated` post-event for the outbox, when it fires.
fn post_member_update(state: &AppState, hooks: &Hooks, member: &Member) -> Vec<model::OutboxEvent> {
    const NAME: &str = "onMemberUpdated";
    if !hooks.fires_post(NAME) {
        return Vec::new();
    }
    let mut event = hooks.event(state, NAME);
    dispatch::member_params(&mut event, member, true);
    hooks
        .post(event, Some(&member.channel_sid))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_media::identity::Identity;
    use chat_media::permission::PermissionSet;
    use chat_media::sid::MemberSid;

    fn role(permissions: &[Permission]) -> Role {
        Role::new(
            RoleSid::generate(),
            ServiceSid::generate(),
            "r",
            RoleType::Channel,
            PermissionSet::of(permissions),
            model::now(),
        )
    }

    fn member(identity: &str, role: &Role) -> Member {
        let channel = Channel::new(
            ChannelSid::generate(),
            role.service_sid.clone(),
            model::NewChannel {
                friendly_name: None,
                unique_name: None,
                attributes: "{}".into(),
                channel_type: model::ChannelType::Public,
                created_by: Identity::system(),
            },
            model::now(),
        );
        Member::new(
            MemberSid::generate(),
            &channel,
            Identity::parse(identity).unwrap(),
            role.sid.clone(),
            "{}".into(),
            model::now(),
        )
    }

    fn moderator(identity: &str) -> Actor {
        let r = role(&[Permission::RemoveMember]);
        Actor::Caller(Caller::Member(Box::new(member(identity, &r)), Box::new(r)))
    }

    const ADMIN: Actor = Actor::Caller(Caller::Admin);

    /// A service whose default channel role is `default` and blocked role `blocked`.
    fn service(default: &Role, blocked: &Role) -> Service {
        let (mut service, _) = Service::with_default_roles(
            default.service_sid.clone(),
            "s".into(),
            RoleSid::generate,
            model::now(),
        );
        service.default_channel_role_sid = default.sid.clone();
        service.blocked_channel_role_sid = blocked.sid.clone();
        service
    }

    #[test]
    fn admins_may_make_any_change() {
        let moderator_role = role(&[Permission::RemoveMember]);
        let custom = role(&[Permission::DeleteAnyMessage]);
        let svc = service(&role(&[]), &role(&[]));
        let target = member("bob", &moderator_role);
        assert!(authorize_change(&ADMIN, &svc, &target, &moderator_role, &moderator_role).is_ok());
        assert!(authorize_change(&ADMIN, &svc, &target, &moderator_role, &custom).is_ok());
    }

    #[test]
    fn moderators_change_plain_members_only_and_never_themselves() {
        let plain = role(&[Permission::SendMessage]);
        let blocked = role(&[]);
        let svc = service(&plain, &blocked);
        let powerful = role(&[Permission::RemoveMember]);
        let bob = member("bob", &plain);
        let caller = moderator("mod");
        assert!(authorize_change(&caller, &svc, &bob, &plain, &blocked).is_ok());
        // Nobody changes their own role.
        let own = member("mod", &plain);
        let e = authorize_change(&caller, &svc, &own, &plain, &blocked).unwrap_err();
        assert_eq!(e.status, 403);
        // A moderator's role is an admin's to change.
        let other_mod = member("carol", &powerful);
        let e = authorize_change(&caller, &svc, &other_mod, &powerful, &blocked).unwrap_err();
        assert!(e.message.contains("removeMember"), "{e}");
        // So is making a moderator.
        let e = authorize_change(&caller, &svc, &bob, &plain, &powerful).unwrap_err();
        assert!(e.message.contains("removeMember"), "{e}");
    }

    #[test]
    fn moderators_move_members_only_between_the_default_and_the_blocked_role() {
        let default = role(&[Permission::SendMessage]);
        let blocked = role(&[]);
        let custom = role(&[Permission::SendMessage, Permission::DeleteAnyMessage]);
        let svc = service(&default, &blocked);
        let caller = moderator("mod");
        let denied = |target: &Member, current: &Role, new_role: &Role| {
            let e = authorize_change(&caller, &svc, target, current, new_role).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (403, code::UNAUTHORIZED_TO_SET_ROLE),
                "{e}"
            );
            assert!(e.message.contains("admin"), "{e}");
        };
        // Block a member of the default role, unblock one blocked from it (or
        // put in the blocked role directly), and the no-op of each.
        let plain = member("bob", &default);
        assert!(authorize_change(&caller, &svc, &plain, &default, &blocked).is_ok());
        assert!(authorize_change(&caller, &svc, &plain, &default, &default).is_ok());
        let mut held = member("bob", &blocked);
        assert!(authorize_change(&caller, &svc, &held, &blocked, &default).is_ok());
        held.role_before_block = Some(default.sid.clone());
        assert!(authorize_change(&caller, &svc, &held, &blocked, &default).is_ok());
        assert!(authorize_change(&caller, &svc, &held, &blocked, &blocked).is_ok());
        // Granting a custom role (one without removeMember) is an admin's change.
        denied(&plain, &default, &custom);
        // So is any change of a member holding a custom role, blocking included.
        let special = member("carol", &custom);
        denied(&special, &custom, &blocked);
        denied(&special, &custom, &default);
        // Unblocking a member an admin blocked from a custom role: to that role
        // or to the default one, both the admin's.
        let mut admin_blocked = member("dave", &blocked);
        admin_blocked.role_before_block = Some(custom.sid.clone());
        denied(&admin_blocked, &blocked, &custom);
        denied(&admin_blocked, &blocked, &default);
        // Keeping them blocked is no change of that.
        assert!(authorize_change(&caller, &svc, &admin_blocked, &blocked, &blocked).is_ok());
    }

    #[test]
    fn only_callers_with_remove_member_may_change_roles() {
        assert!(authorize_caller(&ADMIN).is_ok());
        assert!(authorize_caller(&moderator("mod")).is_ok());
        let plain = role(&[Permission::SendMessage]);
        let user = Actor::Caller(Caller::Member(
            Box::new(member("bob", &plain)),
            Box::new(plain),
        ));
        let e = authorize_caller(&user).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (403, code::USER_UNAUTHORIZED));
    }
}
