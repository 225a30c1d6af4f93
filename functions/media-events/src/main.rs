//! Lambda entry point: build the state once per cold start, then handle S3 and
//! scheduled events.

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    chat_media::telemetry::init();
    let state = chat_media::AppState::from_env().await?;
    let state = &state;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = chrono::Utc::now().timestamp();
        media_events::handle(state, event.payload, now)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
