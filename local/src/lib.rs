//! The local runner's parts, shared with the integration tests: every function's
//! routes on one router (the same paths as template.yaml), and an S3 server (s3s-fs)
//! that checks SigV4 signatures and URL expiry like AWS.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use chat_media::AppState;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;

/// Every function's routes merged, with the shared fallbacks, ready to serve.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .merge(chat_api::routes())
        .merge(upload_media::routes());
    chat_media::http::with_fallbacks(routes).with_state(state)
}

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve_app(listener: TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

/// Starts an S3 server on `listener` storing objects under `root`; every request
/// must be signed with `access_key`/`secret_key`.
pub fn spawn_s3(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        access_key.to_owned(),
        secret_key.to_owned(),
    ));
    let service = builder.build();
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok((addr, handle))
}

/// Runs the media-events sweep every `every` (what the schedule does in AWS), until
/// the task is dropped.
pub fn spawn_sweeper(state: AppState, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp();
            if let Err(e) = media_events::sweep(&state, now).await {
                tracing::warn!(error = %e, "sweep failed; next tick retries");
            }
        }
    })
}
