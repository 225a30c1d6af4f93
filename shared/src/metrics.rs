//! Counting DynamoDB calls per request: an SDK interceptor on the DynamoDB client
//! adds one per operation (retried attempts of one operation count once) to the
//! counter of the request being served, if any. Tests assert call budgets with it
//! and the benchmark reports it; the local runner returns it in a response header.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};

/// Response header (local runner only) carrying the request's DynamoDB call count.
pub const DYNAMODB_CALLS_HEADER: &str = "x-chat-media-dynamodb-calls";

tokio::task_local! {
    static CALLS: Arc<AtomicU32>;
}

/// The interceptor; installed on every DynamoDB client [`crate::AppState`] builds.
#[derive(Debug, Clone, Default)]
pub struct CountDynamoDbCalls;

impl Intercept for CountDynamoDbCalls {
    fn name(&self) -> &'static str {
        "CountDynamoDbCalls"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let _ = CALLS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        Ok(())
    }
}

/// Runs `fut` and returns its output with the DynamoDB operations it started
/// (in this task; work spawned onto other tasks is not counted).
pub async fn count_dynamodb_calls<F: Future>(fut: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let out = CALLS.scope(counter.clone(), fut).await;
    (out, counter.load(Ordering::Relaxed))
}
