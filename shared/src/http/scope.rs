//! Scope extractors: what a handler acts on, resolved and authorized before the
//! handler runs, so every handler starts at its own logic. They read the path
//! parameters `{service}` and `{channel}` of the routes.
//!
//! - [`ServiceScope`]: the path's service SID, parsed, and the caller allowed to
//!   address it (nothing read).
//! - [`AdminService`]: an admin request on a service that exists.
//! - [`ChannelScope`]: the path's channel (by SID or unique name; one being
//!   deleted is hidden) and the caller, an admin or a member with its role.
//! - [`AdminChannel`]: an admin request on the path's channel (and its service).
//! - [`ChannelForDelete`]: as `AdminChannel`, finding a channel being deleted
//!   too, so a repeated delete resumes.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use super::error::ApiError;
use super::parse_sid;
use crate::access::{self, Deleting};
use crate::auth::Principal;
use crate::config::AppState;
use crate::identity::Identity;
use crate::model::{Channel, Member, Role, Service};
use crate::permission::Permission;
use crate::sid::ServiceSid;

/// The value of path parameter `name`; a route without it is a programming error
/// answered as a 500.
async fn path_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    name: &str,
) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request(format!("Invalid path: {}", e.body_text())))?;
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| {
            ApiError::internal(std::io::Error::other(format!(
                "route has no {{{name}}} parameter"
            )))
        })
}

/// The `{service}` path parameter as a SID.
async fn path_service(parts: &mut Parts, state: &AppState) -> Result<ServiceSid, ApiError> {
    parse_sid("ServiceSid", &path_param(parts, state, "service").await?)
}

/// The caller and the path's service, which the caller may address.
#[derive(Debug, Clone)]
pub struct ServiceScope {
    pub sid: ServiceSid,
    pub caller: Principal,
}

impl FromRequestParts<AppState> for ServiceScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Principal::from_request_parts(parts, state).await?;
        let sid = path_service(parts, state).await?;
        caller.require_service(&sid)?;
        Ok(Self { sid, caller })
    }
}

impl ServiceScope {
    /// Reads the service; 404 when it does not exist.
    pub async fn load(&self, state: &AppState) -> Result<Service, ApiError> {
        Ok(access::service(state, &self.caller, &self.sid).await?)
    }
}

/// An admin request on an existing service.
#[derive(Debug, Clone)]
pub struct AdminService(pub Service);

impl FromRequestParts<AppState> for AdminService {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Principal::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        let sid = path_service(parts, state).await?;
        Ok(Self(access::service(state, &caller, &sid).await?))
    }
}

/// Who acts in a channel.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    /// A user, as the member it is, with its role (read strongly consistent).
    Member(Box<Member>, Box<Role>),
}

impl Caller {
    /// `who` acting in `channel`: an admin, or the member it is (403 if none).
    pub async fn of(
        state: &AppState,
        who: &Principal,
        channel: &Channel,
    ) -> Result<Self, ApiError> {
        Ok(
            match access::caller_membership(state, who, channel).await? {
                None => Caller::Admin,
                Some((member, role)) => Caller::Member(Box::new(member), Box::new(role)),
            },
        )
    }

    /// The member's identity; `None` for admins.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Caller::Admin => None,
            Caller::Member(member, _) => Some(&member.identity),
        }
    }

    /// Admins may do anything; a member needs `permission` in its role.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Member(member, role) => {
                Ok(access::require(role, permission, &member.identity)?)
            }
        }
    }
}

/// A channel of the path and the caller acting in it.
#[derive(Debug, Clone)]
pub struct ChannelScope {
    pub service: ServiceSid,
    pub channel: Channel,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for ChannelScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ServiceScope { sid, caller } = ServiceScope::from_request_parts(parts, state).await?;
        let reference = path_param(parts, state, "channel").await?;
        let channel = access::channel(state, &sid, &reference, Deleting::Hidden).await?;
        let caller = Caller::of(state, &caller, &channel).await?;
        Ok(Self {
            service: sid,
            channel,
            caller,
        })
    }
}

/// An admin request on the path's channel.
#[derive(Debug, Clone)]
pub struct AdminChannel {
    pub service: Service,
    pub channel: Channel,
}

impl FromRequestParts<AppState> for AdminChannel {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AdminService(service) = AdminService::from_request_parts(parts, state).await?;
        let reference = path_param(parts, state, "channel").await?;
        let channel = access::channel(state, &service.sid, &reference, Deleting::Hidden).await?;
        Ok(Self { service, channel })
    }
}

/// An admin's delete of a channel of the path, found even while being deleted.
#[derive(Debug, Clone)]
pub struct ChannelForDelete(pub Channel);

impl FromRequestParts<AppState> for ChannelForDelete {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ServiceScope { sid, caller } = ServiceScope::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        let reference = path_param(parts, state, "channel").await?;
        Ok(Self(
            access::channel(state, &sid, &reference, Deleting::Found).await?,
        ))
    }
}
