//! What went wrong talking to DynamoDB, in the terms callers decide on. The
//! SDK's text is kept in the error for the log; the HTTP edge shows none of it.

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

    pub(super) fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err {
            SdkError::DispatchFailure(e) => {
                StoreError::Unavailable(format!("cannot reach DynamoDB: {e:?}"))
            }
            SdkError::TimeoutError(_) => StoreError::Unavailable("DynamoDB timed out".into()),
            SdkError::ServiceError(e) => {
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
                    _ => StoreError::Other(format!("{code}: {message}")),
                }
            }
            other => StoreError::Unavailable(format!("{other:?}")),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
