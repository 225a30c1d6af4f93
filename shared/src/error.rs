//! The one error type every handler returns, rendered as Twilio's error body
//! `{"code","message","more_info","status"}` in exactly one place.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::sid::SidError;

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
    pub const METHOD_NOT_ALLOWED: u32 = 20405;
    pub const CONFLICT: u32 = 20409;
    pub const TOO_LARGE: u32 = 20413;
    pub const UNSUPPORTED_MEDIA_TYPE: u32 = 20415;
    pub const UNPROCESSABLE: u32 = 20422;
    pub const TOO_MANY_REQUESTS: u32 = 20429;
    pub const INTERNAL: u32 = 20500;
    pub const UNAVAILABLE: u32 = 20503;
    pub const USER_UNAUTHORIZED: u32 = 50107;
    pub const USER_EXISTS: u32 = 50201;
    pub const CHANNEL_UNIQUE_NAME_EXISTS: u32 = 50307;
    pub const MEMBER_EXISTS: u32 = 50404;
    pub const MESSAGE_BODY_TOO_LONG: u32 = 50504;
}

/// A refusal or failure, with the HTTP status and Twilio code the caller sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} ({code}): {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
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

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL, message)
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
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        } else {
            tracing::info!(status = self.status.as_u16(), code = self.code, message = %self.message, "request refused");
        }
        (self.status, Json(self.body())).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

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
}
