//! Resolving references to records and deciding who may act on them. Every
//! function goes through here (mostly by the scope extractors of `http::scope`),
//! so each rule is written once:
//!
//! - a token is valid for its own service only;
//! - channels, members and users are found by SID or by unique name / identity,
//!   as Twilio accepts both in paths;
//! - a channel being deleted is hidden from everything but its delete, which
//!   resumes the cascade;
//! - a user acts in a channel only as a member, with the permissions of the
//!   member's role, read strongly consistent so a block applies to the very next
//!   request.

use crate::auth::{AuthError, Principal};
use crate::config::AppState;
use crate::identity::Identity;
use crate::limits;
use crate::model::{Channel, Member, Role, Service, User};
use crate::permission::{Permission, RoleType};
use crate::sid::{ChannelSid, MemberSid, RoleSid, ServiceSid, UserSid};
use crate::store::StoreError;

/// Why a reference does not resolve, or the caller may not act on it.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("service {0} not found")]
    ServiceNotFound(ServiceSid),
    #[error("channel {0} not found")]
    ChannelNotFound(String),
    #[error("member {0} not found")]
    MemberNotFound(String),
    #[error("user {0} not found")]
    UserNotFound(String),
    #[error("{identity} is not a member of channel {channel}")]
    NotAMember {
        identity: Identity,
        channel: ChannelSid,
    },
    #[error("{identity} lacks the {permission} permission (role {role})")]
    Lacks {
        identity: Identity,
        permission: Permission,
        role: RoleSid,
    },
    #[error("{param}: role {role} is not a role of service {service}")]
    RoleNotInService {
        param: &'static str,
        role: RoleSid,
        service: ServiceSid,
    },
    #[error("{param}: role {role} is a {is:?} role, not {wanted:?}")]
    WrongRoleType {
        param: &'static str,
        role: RoleSid,
        is: RoleType,
        wanted: RoleType,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AccessResult<T> = Result<T, AccessError>;

/// The service of a request, after checking the caller may address it at all.
pub async fn service(state: &AppState, who: &Principal, sid: &ServiceSid) -> AccessResult<Service> {
    who.require_service(sid)?;
    state
        .store
        .get_service(sid)
        .await?
        .ok_or_else(|| AccessError::ServiceNotFound(sid.clone()))
}

/// Whether a channel being deleted can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleting {
    /// Hidden, as it is gone for everyone.
    Hidden,
    /// Found: only its delete, so a repeated delete resumes the cascade.
    Found,
}

/// A channel by SID or by unique name.
pub async fn channel(
    state: &AppState,
    service: &ServiceSid,
    reference: &str,
    deleting: Deleting,
) -> AccessResult<Channel> {
    let found = match ChannelSid::parse(reference) {
        Ok(sid) => state.store.get_channel(service, &sid).await?,
        // A name over the limit was never created, and would not fit a key.
        Err(_) if limits::UNIQUE_NAME.check(reference).is_err() => None,
        Err(_) => {
            state
                .store
                .get_channel_by_unique_name(service, reference)
                .await?
        }
    };
    match deleting {
        Deleting::Found => found.ok_or_else(|| AccessError::ChannelNotFound(reference.to_owned())),
        Deleting::Hidden => live(found, reference),
    }
}

/// The channel if it exists and is not being deleted: the one place that hides
/// a channel whose delete has started (for callers that read it by other means,
/// e.g. in a batch).
pub fn live(found: Option<Channel>, reference: &str) -> AccessResult<Channel> {
    found
        .filter(|c| !c.deleting)
        .ok_or_else(|| AccessError::ChannelNotFound(reference.to_owned()))
}

/// A member by SID or by identity.
pub async fn member(state: &AppState, channel: &Channel, reference: &str) -> AccessResult<Member> {
    let found = match MemberSid::parse(reference) {
        Ok(sid) => state.store.get_member_by_sid(&channel.sid, &sid).await?,
        Err(_) => match Identity::reference(reference) {
            Ok(identity) => state.store.get_member(&channel.sid, &identity).await?,
            Err(_) => None,
        },
    };
    found.ok_or_else(|| AccessError::MemberNotFound(reference.to_owned()))
}

/// A user by SID or by identity.
pub async fn user(state: &AppState, service: &ServiceSid, reference: &str) -> AccessResult<User> {
    let found = match UserSid::parse(reference) {
        Ok(sid) => state.store.get_user_by_sid(service, &sid).await?,
        Err(_) => match Identity::reference(reference) {
            Ok(identity) => state.store.get_user(service, &identity).await?,
            Err(_) => None,
        },
    };
    found.ok_or_else(|| AccessError::UserNotFound(reference.to_owned()))
}

/// A role of `service` that must be of `role_type`; anything else is the
/// caller's mistake in parameter `param`.
pub async fn role_of_type(
    state: &AppState,
    service: &ServiceSid,
    param: &'static str,
    sid: &RoleSid,
    role_type: RoleType,
) -> AccessResult<Role> {
    let role =
        state
            .store
            .get_role(service, sid)
            .await?
            .ok_or_else(|| AccessError::RoleNotInService {
                param,
                role: sid.clone(),
                service: service.clone(),
            })?;
    if role.role_type != role_type {
        return Err(AccessError::WrongRoleType {
            param,
            role: sid.clone(),
            is: role.role_type,
            wanted: role_type,
        });
    }
    Ok(role)
}

/// The role a new member or user gets: `requested` (a role of `service` of
/// `role_type`, named by parameter `param`), or else `default`.
pub async fn role_or_default(
    state: &AppState,
    service: &ServiceSid,
    param: &'static str,
    requested: Option<&RoleSid>,
    role_type: RoleType,
    default: RoleSid,
) -> AccessResult<RoleSid> {
    match requested {
        Some(sid) => Ok(role_of_type(state, service, param, sid, role_type)
            .await?
            .sid),
        None => Ok(default),
    }
}

/// The caller's own membership of a channel with its role. `None` for admins.
pub async fn caller_membership(
    state: &AppState,
    who: &Principal,
    channel: &Channel,
) -> AccessResult<Option<(Member, Role)>> {
    let Principal::User { identity, .. } = who else {
        return Ok(None);
    };
    let member = state
        .store
        .get_member(&channel.sid, identity)
        .await?
        .ok_or_else(|| AccessError::NotAMember {
            identity: identity.clone(),
            channel: channel.sid.clone(),
        })?;
    let role = member_role(state, &member).await?;
    Ok(Some((member, role)))
}

/// A member's role, read strongly consistent. A member whose role vanished holds
/// no permissions: fail closed.
pub async fn member_role(state: &AppState, member: &Member) -> AccessResult<Role> {
    Ok(state
        .store
        .get_role(&member.service_sid, &member.role_sid)
        .await?
        .unwrap_or_else(|| {
            Role::new(
                member.role_sid.clone(),
                member.service_sid.clone(),
                "missing role",
                RoleType::Channel,
                Default::default(),
                member.date_created,
            )
        }))
}

/// Refuses unless `role` grants `permission`.
pub fn require(role: &Role, permission: Permission, identity: &Identity) -> AccessResult<()> {
    if role.has(permission) {
        Ok(())
    } else {
        Err(AccessError::Lacks {
            identity: identity.clone(),
            permission,
            role: role.sid.clone(),
        })
    }
}
