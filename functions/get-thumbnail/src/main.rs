//! Lambda entry point: build the state once per cold start, then serve the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    chat_media::telemetry::init();
    let state = chat_media::AppState::from_env().await?;
    lambda_http::run(get_thumbnail::router(state)).await
}
