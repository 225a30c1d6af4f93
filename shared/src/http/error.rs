//! The one error every handler returns, rendered as Twilio's error body
//! `{"code","message","more_info","status"}` in exactly one place, and every
//! conversion from a domain error into it.
//!
//! Domain modules (`store`, `blob`, `scan`, `policy`, `upload`, `access`, `auth`)
//! know nothing of HTTP: they return their own errors, and this module decides
//! what the caller sees. A failure that is not the caller's (5xx) keeps its cause
//! as `source` for the log and tells the caller only what it can act on: no SDK,
//! clamd or network text ever reaches an answer. The cause is logged once, when
//! the response is built.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::access::AccessError;
use crate::auth::{AuthError, AuthFault};
use crate::blob::BlobError;
use crate::filename::FilenameError;
use crate::flex::FlexError;
use crate::identity::Identity;
use crate::model::Media;
use crate::permission::Permission;
use crate::scan::ScanError;
use crate::sid::{ChannelSid, RoleSid, SidError};
use crate::store::StoreError;
use crate::takedown::TakedownError;
use crate::thumbnail::{SpecError, ThumbnailError};
use crate::upload::{FinalizeError, Refusal};

/// Twilio error codes used by this service. Chat-specific ones are 5xxxx.
pub mod code {
    pub const INVALID_PARAMETER: u32 = 20001;
    pub const AUTHENTICATE: u32 = 20003;
    pub const INVALID_ACCESS_TOKEN: u32 = 20101;
    pub const INVALID_TOKEN_HEADER: u32 = 20102;
    pub const INVALID_TOKEN_ISSUER: u32 = 20103;
    pub const TOKEN_EXPIRED: u32 = 20104;
    pub const TOKEN_NOT_YET_VALID: u32 = 20105;
    pub const INVALID_TOKEN_GRANTS: u32 = 20106;
    pub const INVALID_TOKEN_SIGNATURE: u32 = 20107;
    pub const FORBIDDEN: u32 = 20403;
    pub const NOT_FOUND: u32 = 20404;
    /// Twilio's "Method not allowed".
    pub const METHOD_NOT_ALLOWED: u32 = 20004;
    pub const CONFLICT: u32 = 20409;
    pub const TOO_LARGE: u32 = 20413;
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 20415;
    pub const UNPROCESSABLE: u32 = 20422;
    pub const TOO_MANY_REQUESTS: u32 = 20429;
    /// An upload quota (`Media.QuotaBytesPerIdentity`, `Media.QuotaBytesPerService`)
    /// has no room for the upload (s20-quota).
    pub const QUOTA_EXCEEDED: u32 = 20430;
    pub const INTERNAL: u32 = 20500;
    pub const UNAVAILABLE: u32 = 20503;
    pub const USER_UNAUTHORIZED: u32 = 50107;
    /// Programmable Chat: User not member of channel.
    pub const NOT_A_MEMBER: u32 = 50400;
    /// Programmable Chat: Message body not provided.
    pub const MESSAGE_BODY_MISSING: u32 = 50503;
    pub const USER_EXISTS: u32 = 50201;
    pub const CHANNEL_UNIQUE_NAME_EXISTS: u32 = 50307;
    pub const MEMBER_EXISTS: u32 = 50404;
    pub const MESSAGE_BODY_TOO_LONG: u32 = 50504;
    // Channel-scoped webhooks (s20-hooks).
    /// Twilio's "Too many channel webhooks" (a sixth on one channel).
    pub const TOO_MANY_CHANNEL_WEBHOOKS: u32 = 50321;
    /// Twilio's "Too many channel webhook triggers".
    pub const TOO_MANY_WEBHOOK_TRIGGERS: u32 = 50322;
    /// Twilio's "Invalid webhook retry count".
    pub const INVALID_WEBHOOK_RETRY_COUNT: u32 = 50065;
    // Chat v2 Service limits (issue 12), as Twilio's error dictionary names them.
    /// Programmable Chat: Invalid user channels limit format.
    pub const INVALID_USER_CHANNELS_LIMIT: u32 = 50060;
    /// Programmable Chat: Invalid channel members limit format.
    pub const INVALID_CHANNEL_MEMBERS_LIMIT: u32 = 50061;
    /// Programmable Chat: User channel limit exceeded.
    pub const USER_CHANNEL_LIMIT: u32 = 50208;
    /// Programmable Chat: Channel member limit exceeded.
    pub const CHANNEL_MEMBER_LIMIT: u32 = 50403;
    /// Programmable Chat: Notification template too long.
    pub const NOTIFICATION_TEMPLATE_TOO_LONG: u32 = 50058;
    /// Programmable Chat: Notification sound name too long.
    pub const NOTIFICATION_SOUND_TOO_LONG: u32 = 50059;
    /// Programmable Chat: Resource is being deleted.
    pub const BEING_DELETED: u32 = 50002;
    /// Programmable Chat: Permission not found.
    pub const PERMISSION_NOT_FOUND: u32 = 50104;
    /// Programmable Chat: Invalid role type.
    pub const INVALID_ROLE_TYPE: u32 = 50105;
    /// Programmable Chat: User unauthorized to set role.
    pub const UNAUTHORIZED_TO_SET_ROLE: u32 = 50205;
    /// Programmable Chat: Attributes too long (the dictionary describes it for
    /// channels and has no other code: used for every `Attributes`).
    pub const ATTRIBUTES_TOO_LONG: u32 = 50303;
    /// Programmable Chat: Attributes not valid JSON (likewise, for every `Attributes`).
    pub const ATTRIBUTES_NOT_JSON: u32 = 50304;
    /// Programmable Chat: Unique name should not match channel SID pattern.
    pub const UNIQUE_NAME_LIKE_SID: u32 = 50306;

    /// The generic code of an HTTP error status: 20001 for 400, 20003 for 401,
    /// 20004 for 405 (Twilio's), else 20000 + the status (20404, 20500, …).
    pub fn for_status(status: axum::http::StatusCode) -> u32 {
        match status.as_u16() {
            400 => INVALID_PARAMETER,
            401 => AUTHENTICATE,
            405 => METHOD_NOT_ALLOWED,
            other => 20_000 + u32::from(other),
        }
    }
}

/// The cause of a failure, kept for the log only.
type Source = Arc<dyn std::error::Error + Send + Sync>;

/// A refusal or failure, with the HTTP status and Twilio code the caller sees.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} ({code}): {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    /// What really went wrong, for the log (never shown to the caller).
    #[source]
    source: Option<Source>,
    /// Seconds for a `Retry-After` header (a 429 that knows when it frees up).
    retry_after: Option<u64>,
}

impl PartialEq for ApiError {
    fn eq(&self, other: &Self) -> bool {
        (self.status, self.code, &self.message) == (other.status, other.code, &other.message)
    }
}

impl Eq for ApiError {}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// An error of `status` with its generic code ([`code::for_status`]).
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, code::for_status(status), message)
    }

    /// Keeps `source` for the log.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// 403 with Twilio's 50205: the caller may not give or take this role.
    pub fn role_refused(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            code::UNAUTHORIZED_TO_SET_ROLE,
            message,
        )
    }

    /// 409 with Twilio's 50002: what the request writes into is being deleted.
    pub fn being_deleted(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            code::BEING_DELETED,
            format!("{what} is being deleted"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code::INVALID_PARAMETER, message)
    }

    /// A required form or query parameter is absent.
    pub fn missing(param: &str) -> Self {
        Self::bad_request(format!(
            "Missing required parameter {param} in the post body"
        ))
    }

    /// A parameter is present but unusable; the message names it.
    pub fn invalid(param: &str, why: impl std::fmt::Display) -> Self {
        Self::bad_request(format!("Invalid parameter {param}: {why}"))
    }

    pub fn sid(param: &str, err: SidError) -> Self {
        Self::invalid(param, err)
    }

    pub fn unauthenticated(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code::FORBIDDEN, message)
    }

    /// 403 (50107): `identity`'s role lacks `permission`.
    pub fn user_unauthorized(identity: &Identity, permission: Permission, role: &RoleSid) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            code::USER_UNAUTHORIZED,
            format!("{identity} lacks the {permission} permission (role {role})"),
        )
    }

    /// 403 (Twilio's 50400): `identity` is not a member of `channel`.
    pub fn not_a_member(identity: &Identity, channel: &ChannelSid) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            code::NOT_A_MEMBER,
            format!("{identity} is not a member of channel {channel}"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code::NOT_FOUND, message)
    }

    pub fn conflict(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code::TOO_LARGE, message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::UNSUPPORTED_MEDIA_TYPE,
            message,
        )
    }

    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::UNPROCESSABLE,
            message,
        )
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            code::TOO_MANY_REQUESTS,
            message,
        )
    }

    /// 429 (code 20430): an upload quota is full; `retry_after` seconds until it
    /// frees up, when it will.
    pub fn quota_exceeded(message: impl Into<String>, retry_after: Option<u64>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, code::QUOTA_EXCEEDED, message);
        e.retry_after = retry_after;
        e
    }

    /// The `Retry-After` seconds this answer carries, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, message)
    }

    /// 500 whose body says only that it happened; the cause goes to the log, and
    /// the answer carries a reference to find that log line.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            "Internal error",
        )
        .with_source(source)
    }

    /// 503 for the data store.
    fn store_unavailable(source: StoreError) -> Self {
        Self::unavailable("The data store is unavailable; retry later").with_source(source)
    }

    /// 503 for the media store.
    fn media_store_unavailable(source: BlobError) -> Self {
        Self::unavailable("The media store is unavailable; retry later").with_source(source)
    }

    pub fn more_info(&self) -> String {
        format!("https://www.twilio.com/docs/errors/{}", self.code)
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info(),
            "status": self.status.as_u16(),
        })
    }
}

impl IntoResponse for ApiError {
    /// Logs the refusal or failure once, with its cause, and renders the body.
    fn into_response(mut self) -> Response {
        let cause = self.source.as_ref().map(|s| error_chain(s.as_ref()));
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            let reference = hex::encode(rand::random::<[u8; 8]>());
            self.message = format!("Internal error, reference {reference}");
            tracing::error!(status = 500, code = self.code, %reference, cause = cause.as_deref().unwrap_or("unknown"), "request failed");
        } else if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code, message = %self.message, cause = cause.as_deref().unwrap_or("unknown"), "request failed");
        } else {
            tracing::info!(status = self.status.as_u16(), code = self.code, message = %self.message, "request refused");
        }
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// An error and its sources, joined: the whole cause on one log line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::store_unavailable(e),
            StoreError::ConditionFailed | StoreError::Cancelled(_) => ApiError::conflict(
                code::CONFLICT,
                "The resource was changed by another request; try again",
            ),
            StoreError::InvalidPageToken => {
                ApiError::invalid("PageToken", "not a token issued for this list")
            }
            StoreError::Other(_) => ApiError::internal(e),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound => ApiError::not_found("The media content was not found"),
            BlobError::Unavailable(_) => ApiError::media_store_unavailable(e),
            BlobError::Other(_) => ApiError::internal(e),
        }
    }
}

impl From<ScanError> for ApiError {
    /// A scan that could not finish is the scanner's outage, not the caller's
    /// fault: 503, try again later. (S3 failures keep their own mapping.)
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Blob(b) => b.into(),
            other => ApiError::unavailable("The virus scanner is unavailable; retry later")
                .with_source(other),
        }
    }
}

impl From<Refusal> for ApiError {
    /// A refused upload: 400 for what the caller declared wrong, 413 too large,
    /// 415 content the service does not take, 422 infected, 503 when the scan or
    /// the storage failed (the caller may retry).
    fn from(r: Refusal) -> Self {
        let message = r.to_string();
        match r {
            Refusal::MissingType
            | Refusal::InvalidType(_)
            | Refusal::Empty
            | Refusal::SmallerThanDeclared { .. }
            | Refusal::Sha256Mismatch { .. } => ApiError::bad_request(message),
            Refusal::TooLarge { .. } | Refusal::LargerThanDeclared { .. } => {
                ApiError::too_large(message)
            }
            Refusal::TypeNotAllowed(_)
            | Refusal::ExtensionBlocked(_)
            | Refusal::Executable { .. }
            | Refusal::Contradicts { .. }
            | Refusal::MalformedImage { .. } => ApiError::unsupported_media_type(message),
            Refusal::Infected { signature } => ApiError::unprocessable(format!(
                "The media was rejected by the virus scanner: {signature}"
            )),
            Refusal::ServiceGone
            | Refusal::FetchFailed { .. }
            | Refusal::Quarantined { .. }
            | Refusal::Hook { .. } => ApiError::unprocessable(message),
            Refusal::ScanFailed { .. } | Refusal::UploadFailed => ApiError::unavailable(message),
        }
    }
}

impl ApiError {
    /// The answer about a refused media, the same every time it is asked.
    pub fn refused(media: &Media) -> Self {
        match media.refusal() {
            Some(Refusal::ScanFailed { reason }) => ApiError::unavailable(format!(
                "The virus scanner is unavailable ({reason}); Media {} is kept and will be \
                 scanned again shortly: GET {} shows its status",
                media.sid,
                media.path()
            )),
            Some(r) => r.clone().into(),
            // Records from before refusals were stored.
            None => ApiError::unprocessable(
                media
                    .status_reason
                    .clone()
                    .unwrap_or_else(|| format!("Media {} was refused", media.sid)),
            ),
        }
    }
}

impl From<FilenameError> for ApiError {
    fn from(e: FilenameError) -> Self {
        ApiError::invalid("Filename", e)
    }
}

impl From<FinalizeError> for ApiError {
    fn from(e: FinalizeError) -> Self {
        match e {
            FinalizeError::NotFound(sid) => ApiError::not_found(format!("Media {sid} not found")),
            FinalizeError::Expired(sid) => ApiError::not_found(format!(
                "The upload session of Media {sid} has expired; start a new one"
            )),
            FinalizeError::LeaseLost(sid) => ApiError::conflict(
                code::CONFLICT,
                format!(
                    "Media {sid} is being finalized by another request; GET the media for its status"
                ),
            ),
            FinalizeError::MissingPartETags => ApiError::missing("PartETag"),
            FinalizeError::PartETagCount { expected, got } => ApiError::invalid(
                "PartETag",
                format!("expected {expected} values (one per part, in part order), got {got}"),
            ),
            FinalizeError::InvalidParts(why) => ApiError::invalid("PartETag", why),
            FinalizeError::NothingUploaded(sid) => ApiError::conflict(
                code::CONFLICT,
                format!("Media {sid} has no uploaded content yet"),
            ),
            FinalizeError::ObjectChanged => {
                ApiError::unavailable("The uploaded object changed while it was checked; try again")
            }
            FinalizeError::Store(e) => e.into(),
            FinalizeError::Blob(e) => e.into(),
        }
    }
}

impl From<TakedownError> for ApiError {
    fn from(e: TakedownError) -> Self {
        match e {
            TakedownError::NotFound(sid) => ApiError::not_found(format!("Media {sid} not found")),
            TakedownError::NotReady { sid, status } => ApiError::conflict(
                code::CONFLICT,
                format!(
                    "Media {sid} is {}: only ready media can be quarantined",
                    status.as_str()
                ),
            ),
            TakedownError::Changed(sid) => ApiError::conflict(
                code::CONFLICT,
                format!("Media {sid} changed while it was quarantined; try again"),
            ),
            TakedownError::Store(e) => e.into(),
        }
    }
}

impl From<SpecError> for ApiError {
    /// A thumbnail parameter out of range: 400 naming it.
    fn from(e: SpecError) -> Self {
        ApiError::invalid(e.param, e.why)
    }
}

impl From<ThumbnailError> for ApiError {
    /// No thumbnail can be made of this media: 415 (its type, or an image too
    /// large, broken or too slow to decode: the media's fault, never a 500).
    fn from(e: ThumbnailError) -> Self {
        ApiError::unsupported_media_type(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::Unauthenticated { fault, .. } => ApiError::unauthenticated(
                match fault {
                    AuthFault::Credentials => code::AUTHENTICATE,
                    AuthFault::Malformed => code::INVALID_ACCESS_TOKEN,
                    AuthFault::Header => code::INVALID_TOKEN_HEADER,
                    AuthFault::Issuer => code::INVALID_TOKEN_ISSUER,
                    AuthFault::Expired => code::TOKEN_EXPIRED,
                    AuthFault::NotYetValid => code::TOKEN_NOT_YET_VALID,
                    AuthFault::Grants => code::INVALID_TOKEN_GRANTS,
                    AuthFault::Signature => code::INVALID_TOKEN_SIGNATURE,
                },
                message,
            ),
            AuthError::WrongService(_) | AuthError::AdminOnly => ApiError::forbidden(message),
        }
    }
}

impl From<FlexError> for ApiError {
    /// The validation API's own words stay out of answers: a bad token is 401, a
    /// role that may not moderate 403, an API we cannot ask 503.
    fn from(e: FlexError) -> Self {
        match &e {
            FlexError::Invalid(_) => ApiError::unauthenticated(
                code::INVALID_ACCESS_TOKEN,
                "The Flex token is not valid (Twilio's token validation refused it)",
            ),
            FlexError::NotModerator(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                code::USER_UNAUTHORIZED,
                e.to_string(),
            ),
            FlexError::Unavailable(_) => {
                tracing::warn!(error = %e, "Flex token validation failed");
                ApiError::unavailable("The Flex token could not be validated; try again")
            }
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Auth(e) => e.into(),
            AccessError::ServiceNotFound(sid) => {
                ApiError::not_found(format!("Service {sid} not found"))
            }
            AccessError::ChannelNotFound(reference) => {
                ApiError::not_found(format!("Channel {reference} not found"))
            }
            AccessError::MemberNotFound(reference) => {
                ApiError::not_found(format!("Member {reference} not found"))
            }
            AccessError::UserNotFound(reference) => {
                ApiError::not_found(format!("User {reference} not found"))
            }
            AccessError::NotAMember { identity, channel } => {
                ApiError::not_a_member(&identity, &channel)
            }
            AccessError::Lacks {
                identity,
                permission,
                role,
            } => ApiError::user_unauthorized(&identity, permission, &role),
            AccessError::RoleNotInService {
                param,
                role,
                service,
            } => ApiError::invalid(
                param,
                format!("role {role} is not a role of service {service}"),
            ),
            AccessError::WrongRoleType {
                param,
                role,
                is,
                wanted,
            } => ApiError::invalid(
                param,
                format!(
                    "role {role} is a {} role, not a {} role",
                    is.as_str(),
                    wanted.as_str()
                ),
            ),
            AccessError::Store(e) => e.into(),
        }
    }
}

/// A pre-event webhook stopped the action: a veto is 403 with the hook's reason,
/// no answer (failing closed) is 503, an unusable modification 403; the hook's
/// URL and any network text stay in the log.
impl From<crate::webhook::Refused> for ApiError {
    fn from(refused: crate::webhook::Refused) -> Self {
        use crate::webhook::Refused;
        match &refused {
            Refused::Vetoed {
                event,
                reason: Some(reason),
                ..
            } => ApiError::forbidden(format!("The {event} webhook rejected the action: {reason}")),
            Refused::Vetoed { event, .. } => {
                ApiError::forbidden(format!("The {event} webhook rejected the action"))
            }
            Refused::NoAnswer { event } => ApiError::unavailable(format!(
                "The {event} webhook did not answer in time; the action was refused"
            )),
            Refused::InvalidModification { .. } => ApiError::forbidden(refused.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_twilio_shape() {
        let err = ApiError::not_found("The requested resource /x was not found");
        assert_eq!(
            err.body(),
            serde_json::json!({
                "code": 20404,
                "message": "The requested resource /x was not found",
                "more_info": "https://www.twilio.com/docs/errors/20404",
                "status": 404
            })
        );
    }

    #[test]
    fn server_errors_say_nothing_internal() {
        let leaky = "ValidationException: key size 1030 > 1024 bytes at ddb.internal:8000";
        for e in [
            ApiError::from(StoreError::Other(leaky.into())),
            ApiError::from(StoreError::Unavailable(leaky.into())),
            ApiError::from(BlobError::Other(leaky.into())),
            ApiError::from(BlobError::Unavailable(leaky.into())),
            ApiError::from(ScanError::Connect {
                address: "10.0.0.7:3310".into(),
                reason: leaky.into(),
            }),
        ] {
            assert!(e.status.is_server_error(), "{e:?}");
            assert!(!e.message.contains("Exception"), "{}", e.message);
            assert!(!e.message.contains("10.0.0.7"), "{}", e.message);
            assert!(!e.message.contains("ddb.internal"), "{}", e.message);
            assert!(
                std::error::Error::source(&e).is_some(),
                "the cause is kept for the log"
            );
        }
    }

    #[test]
    fn refusals_map_to_statuses() {
        let e: ApiError = Refusal::TooLarge { size: 2, limit: 1 }.into();
        assert_eq!(e.status.as_u16(), 413);
        let e: ApiError = Refusal::TypeNotAllowed("video/mp4".into()).into();
        assert_eq!(e.status.as_u16(), 415);
        assert!(e.message.contains("video/mp4"));
        let e: ApiError = Refusal::Empty.into();
        assert_eq!(e.status.as_u16(), 400);
        let e: ApiError = Refusal::MissingType.into();
        assert_eq!((e.status.as_u16(), e.code), (400, 20001));
        let e: ApiError = Refusal::Infected {
            signature: "ChatMedia.Test.EICAR.UNOFFICIAL".into(),
        }
        .into();
        assert_eq!(e.status.as_u16(), 422);
        assert!(e.message.contains("ChatMedia.Test.EICAR.UNOFFICIAL"));
        let e: ApiError = Refusal::ScanFailed {
            reason: "the virus scanner is unreachable".into(),
        }
        .into();
        assert_eq!(e.status.as_u16(), 503);
    }

    #[test]
    fn each_auth_fault_has_its_twilio_code() {
        for (fault, want) in [
            (AuthFault::Credentials, code::AUTHENTICATE),
            (AuthFault::Malformed, code::INVALID_ACCESS_TOKEN),
            (AuthFault::Header, code::INVALID_TOKEN_HEADER),
            (AuthFault::Issuer, code::INVALID_TOKEN_ISSUER),
            (AuthFault::Expired, code::TOKEN_EXPIRED),
            (AuthFault::NotYetValid, code::TOKEN_NOT_YET_VALID),
            (AuthFault::Grants, code::INVALID_TOKEN_GRANTS),
            (AuthFault::Signature, code::INVALID_TOKEN_SIGNATURE),
        ] {
            let e = ApiError::from(AuthError::new(fault, "x"));
            assert_eq!((e.status.as_u16(), e.code), (401, want), "{fault:?}");
        }
        assert_eq!(ApiError::from(AuthError::AdminOnly).status.as_u16(), 403);
    }

    #[test]
    fn each_status_has_its_generic_code() {
        for (status, want) in [
            (400, code::INVALID_PARAMETER),
            (401, code::AUTHENTICATE),
            (403, code::FORBIDDEN),
            (404, code::NOT_FOUND),
            (405, code::METHOD_NOT_ALLOWED),
            (413, code::TOO_LARGE),
            (415, code::UNSUPPORTED_MEDIA_TYPE),
            (500, code::INTERNAL),
            (503, code::UNAVAILABLE),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(code::for_status(status), want, "{status}");
        }
    }

    #[test]
    fn internal_errors_answer_a_reference_only() {
        let response =
            ApiError::internal(StoreError::Other("secret detail".into())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_lost_finalize_lease_is_in_progress_not_gone() {
        let sid = crate::sid::MediaSid::generate();
        let e = ApiError::from(FinalizeError::LeaseLost(sid.clone()));
        assert_eq!((e.status.as_u16(), e.code), (409, code::CONFLICT));
        assert!(e.message.contains(sid.as_str()), "{}", e.message);
        let gone = ApiError::from(FinalizeError::Expired(sid));
        assert_eq!(gone.status.as_u16(), 404, "an expired session stays 404");
    }
}
