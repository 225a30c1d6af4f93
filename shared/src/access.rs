//! Resolving path references to records, and deciding who may act on them.
//! Every function goes through here so a check is written once.

use crate::auth::Principal;
use crate::config::AppState;
use crate::error::{code, ApiError, ApiResult};
use crate::identity::Identity;
use crate::model::{Channel, Member, Role, Service};
use crate::permission::{Permission, RoleType};
use crate::sid::{ChannelSid, MemberSid, RoleSid, ServiceSid};

/// The service of a request, after checking the caller may address it at all.
pub async fn service(state: &AppState, who: &Principal, sid: &ServiceSid) -> ApiResult<Service> {
    who.require_service(sid)?;
    state
        .store
        .get_service(sid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Service {sid} not found")))
}

/// The service of an admin-only request: the caller is an admin, the path SID parses,
/// the service exists.
pub async fn admin_service(state: &AppState, who: &Principal, raw: &str) -> ApiResult<Service> {
    who.require_admin()?;
    let sid = crate::http::parse_sid("ServiceSid", raw)?;
    service(state, who, &sid).await
}

/// A channel by SID or by unique name, as Twilio accepts both in the path.
pub async fn channel(
    state: &AppState,
    service: &ServiceSid,
    reference: &str,
) -> ApiResult<Channel> {
    let found = match ChannelSid::parse(reference) {
        Ok(sid) => state.store.get_channel(service, &sid).await?,
        Err(_) => {
            state
                .store
                .get_channel_by_unique_name(service, reference)
                .await?
        }
    };
    found.ok_or_else(|| ApiError::not_found(format!("Channel {reference} not found")))
}

/// A member by SID or by identity.
pub async fn member(state: &AppState, channel: &Channel, reference: &str) -> ApiResult<Member> {
    let found = match MemberSid::parse(reference) {
        Ok(sid) => state.store.get_member_by_sid(&channel.sid, &sid).await?,
        Err(_) => match Identity::parse(reference) {
            Ok(identity) => state.store.get_member(&channel.sid, &identity).await?,
            Err(_) => None,
        },
    };
    found.ok_or_else(|| ApiError::not_found(format!("Member {reference} not found")))
}

/// A role of `service` that must be of `role_type`; anything else is the caller's 400.
pub async fn role_of_type(
    state: &AppState,
    service: &ServiceSid,
    param: &str,
    sid: &RoleSid,
    role_type: RoleType,
) -> ApiResult<Role> {
    let role = state.store.get_role(service, sid).await?.ok_or_else(|| {
        ApiError::invalid(
            param,
            format!("role {sid} is not a role of service {service}"),
        )
    })?;
    if role.role_type != role_type {
        return Err(ApiError::invalid(
            param,
            format!(
                "role {sid} is a {} role, not a {} role",
                role.role_type.as_str(),
                role_type.as_str()
            ),
        ));
    }
    Ok(role)
}

/// The caller's own membership of a channel with its role, read strongly consistent
/// so a block applies to the very next request. `None` for admins.
pub async fn caller_membership(
    state: &AppState,
    who: &Principal,
    channel: &Channel,
) -> ApiResult<Option<(Member, Role)>> {
    let Principal::User { identity, .. } = who else {
        return Ok(None);
    };
    let member = state
        .store
        .get_member(&channel.sid, identity)
        .await?
        .ok_or_else(|| not_a_member(identity, &channel.sid))?;
    let role = member_role(state, &member).await?;
    Ok(Some((member, role)))
}

/// 403 (code 50107) for a user who is not a member of the channel.
pub fn not_a_member(identity: &Identity, channel: &ChannelSid) -> ApiError {
    ApiError::new(
        http::StatusCode::FORBIDDEN,
        code::USER_UNAUTHORIZED,
        format!("{identity} is not a member of channel {channel}"),
    )
}

/// A member's role, read strongly consistent. A member whose role vanished holds
/// no permissions: fail closed.
pub async fn member_role(state: &AppState, member: &Member) -> ApiResult<Role> {
    Ok(state
        .store
        .get_role(&member.service_sid, &member.role_sid)
        .await?
        .unwrap_or_else(|| Role {
            sid: member.role_sid.clone(),
            service_sid: member.service_sid.clone(),
            friendly_name: "missing role".into(),
            role_type: RoleType::Channel,
            permissions: Default::default(),
            date_created: member.date_created,
            date_updated: member.date_updated,
        }))
}

/// Refuses with 403 (code 50107) naming the missing permission.
pub fn require(role: &Role, permission: Permission, identity: &Identity) -> ApiResult<()> {
    if role.has(permission) {
        Ok(())
    } else {
        Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            code::USER_UNAUTHORIZED,
            format!(
                "{identity} lacks the {permission} permission (role {})",
                role.sid
            ),
        ))
    }
}
