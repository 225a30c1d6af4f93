//! What went wrong talking to DynamoDB, in the terms callers decide on. The
//! SDK's text is kept in the error for the log; the HTTP edge shows none of it.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// What went wrong talking to DynamoDB, in the terms handlers decide on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A condition on a single write failed.
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled; one reason code per item (`None` = that item was fine).
    #[error("transaction cancelled: {0:?}")]
    Cancelled(Vec<Option<String>>),
    /// The caller's PageToken is not one this query issued.
    #[error("invalid page token")]
    InvalidPageToken,
    #[error("DynamoDB is unavailable: {0}")]
    Unavailable(String),
    #[error("DynamoDB error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether item `i` of a cancelled transaction failed its condition.
    pub fn condition_failed_at(&self, i: usize) -> bool {
        match self {
            StoreError::Cancelled(reasons) => reasons
                .get(i)
                .and_then(|r| r.as_deref())
                .is_some_and(|c| c == "ConditionalCheckFailed"),
            StoreError::ConditionFailed => true,
            _ => false,
        }
    }

    /// A conflict with a concurrent transaction: safe to retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Cancelled(r) if r.iter().flatten().any(|c| c == "TransactionConflict"))
    }

    /// DynamoDB's own failures (a 5xx, whatever its code) are an outage the
    /// caller may retry, never a 500 of ours.
    pub(super) fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::DispatchFailure(e) => {
                StoreError::Unavailable(format!("cannot reach DynamoDB: {e:?}"))
            }
            SdkError::TimeoutError(_) => StoreError::Unavailable("DynamoDB timed out".into()),
            SdkError::ServiceError(e) => {
                let server_error = e.raw().status().is_server_error();
                let e = e.into_err();
                let code = e.code().unwrap_or_default().to_owned();
                let message = e.message().unwrap_or_default().to_owned();
                match code.as_str() {
                    "ConditionalCheckFailedException" => StoreError::ConditionFailed,
                    "ProvisionedThroughputExceededException"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "ResourceNotFoundException" => {
                        StoreError::Unavailable(format!("{code}: {message}"))
                    }
                    _ if server_error => StoreError::Unavailable(format!("{code}: {message}")),
                    _ => StoreError::Other(format!("{code}: {message}")),
                }
            }
            other => StoreError::Unavailable(format!("{other:?}")),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(status: u16, code: &str) -> StoreError {
        let err = PutItemError::generic(ErrorMetadata::builder().code(code).message("m").build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        StoreError::from_sdk(SdkError::service_error(err, raw))
    }

    #[test]
    fn any_server_error_is_an_outage_and_an_unknown_client_error_is_not() {
        assert!(matches!(
            service_error(500, "SomethingNew"),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            service_error(400, "SomethingNew"),
            StoreError::Other(_)
        ));
        assert_eq!(
            service_error(400, "ConditionalCheckFailedException"),
            StoreError::ConditionFailed
        );
        assert!(matches!(
            service_error(400, "ThrottlingException"),
            StoreError::Unavailable(_)
        ));
    }
}
