//! The local runner's parts, shared with the integration tests: every function's
//! routes on one router (the same paths as template.yaml), and an S3 server (s3s-fs,
//! GETs served in 1 MiB buffers) that checks SigV4 signatures and URL expiry like AWS.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use chat_media::AppState;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;

pub mod demo;
pub mod fixture;
mod s3;

/// `scripts/local.env`, embedded: the local stack's credentials and names, the
/// one source the scripts read too.
const LOCAL_ENV: &str = include_str!("../../scripts/local.env");

/// The value `scripts/local.env` gives `name`, if any.
fn local_default(name: &str) -> Option<&'static str> {
    LOCAL_ENV
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// `name` from the environment (blank counts as unset), else from `scripts/local.env`.
pub fn local_lookup(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| local_default(name).map(str::to_owned))
}

/// Every function's routes merged, with the shared fallbacks, ready to serve.
/// Each response carries the DynamoDB calls its request made (tests assert call
/// budgets with it, the benchmark reports it). CORS is answered as the HTTP API's
/// CorsConfiguration in template.yaml does, for `CORS_ALLOWED_ORIGINS`.
pub fn app(state: AppState) -> Router {
    app_with_cors(state, &cors_allowed_origins_from_env())
}

/// Origins browsers may call from when `CORS_ALLOWED_ORIGINS` is not set: Twilio
/// Flex, and a plugin's local dev server.
const DEFAULT_CORS_ORIGINS: &[&str] = &["https://flex.twilio.com", "http://localhost:3000"];
/// Methods and request headers allowed cross-origin (template.yaml has the same).
const CORS_METHODS: &[&str] = &["GET", "POST", "DELETE", "OPTIONS"];
const CORS_HEADERS: &[&str] = &["authorization", "content-type", "x-twilio-token"];
/// How long a browser may cache a preflight answer.
const CORS_MAX_AGE_SECS: u64 = 600;

/// `CORS_ALLOWED_ORIGINS`: comma-separated origins, or `*`.
fn cors_allowed_origins_from_env() -> Vec<String> {
    match std::env::var("CORS_ALLOWED_ORIGINS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        _ => DEFAULT_CORS_ORIGINS
            .iter()
            .map(|o| (*o).to_owned())
            .collect(),
    }
}

/// The CORS rules: preflights are answered here (any path, as API Gateway does),
/// and responses to allowed origins carry `Access-Control-Allow-Origin`. No
/// credentials mode: callers authenticate with a token, never with cookies.
fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(
            CORS_METHODS
                .iter()
                .map(|m| m.parse::<http::Method>().expect("a method"))
                .collect::<Vec<_>>(),
        )
        .allow_headers(
            CORS_HEADERS
                .iter()
                .map(|h| http::HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .max_age(std::time::Duration::from_secs(CORS_MAX_AGE_SECS))
}

/// The OpenAPI 3.1 document of every route (`openapi.json` at the repository
/// root; `tests/tests/api/openapi.rs` keeps it equal to the routes).
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// `GET /openapi.json`: only the local runner serves it, never a Lambda function.
async fn openapi_json() -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
}

/// As [`app`], with explicit allowed origins.
pub fn app_with_cors(state: AppState, origins: &[String]) -> Router {
    let routes = Router::new()
        .route("/openapi.json", axum::routing::get(openapi_json))
        .merge(demo::routes())
        .merge(chat_api::routes())
        .merge(create_message::routes())
        .merge(delete_message::routes())
        .merge(get_media::routes())
        .merge(get_thumbnail::routes())
        .merge(inbound_messages::routes())
        .merge(update_member::routes())
        .merge(upload_media::routes());
    chat_media::http::with_fallbacks(routes)
        .with_state(state)
        .layer(axum::middleware::from_fn(count_dynamodb_calls))
        .layer(cors_layer(origins))
}

async fn count_dynamodb_calls(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (mut response, calls) = chat_media::metrics::count_dynamodb_calls(next.run(req)).await;
    response.headers_mut().insert(
        chat_media::metrics::DYNAMODB_CALLS_HEADER,
        axum::http::HeaderValue::from(calls),
    );
    response
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
    let mut builder = s3s::service::S3ServiceBuilder::new(s3::BufferedFs::new(root)?);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        access_key.to_owned(),
        secret_key.to_owned(),
    ));
    let service = builder.build();
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move {
            if let Some(preflight) = bucket_cors_preflight(&req) {
                return Ok::<_, s3s::HttpError>(preflight);
            }
            let overrides = response_overrides(&req);
            let mut response = hyper::service::Service::call(&service, req).await?;
            if response.status().is_success() {
                for (name, value) in overrides {
                    response.headers_mut().insert(name, value);
                }
            }
            bucket_cors_headers(response.headers_mut());
            Ok::<_, s3s::HttpError>(response)
        }
    });
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

/// The bucket CORS rule a browser client needs (README: allow `PUT` and `GET`,
/// expose `ETag`), which s3s-fs does not implement: any origin, as a bucket rule
/// with `AllowedOrigins: ["*"]` would. Requests are still checked by SigV4.
fn bucket_cors_preflight(
    req: &http::Request<hyper::body::Incoming>,
) -> Option<http::Response<s3s::Body>> {
    if req.method() != http::Method::OPTIONS
        || !req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let mut response = http::Response::new(s3s::Body::empty());
    let h = response.headers_mut();
    bucket_cors_headers(h);
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_METHODS,
        http::HeaderValue::from_static("GET, PUT, HEAD"),
    );
    if let Some(asked) = req
        .headers()
        .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
    {
        h.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(
        http::header::ACCESS_CONTROL_MAX_AGE,
        http::HeaderValue::from_static("600"),
    );
    Some(response)
}

fn bucket_cors_headers(h: &mut http::HeaderMap) {
    h.insert(
        http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    h.insert(
        http::header::ACCESS_CONTROL_EXPOSE_HEADERS,
        http::HeaderValue::from_static("ETag"),
    );
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

/// Delivers post-event webhooks from the outbox every `every` (in AWS the
/// schedule does), until the task is dropped.
pub fn spawn_dispatcher(
    state: AppState,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp();
            if let Err(e) = chat_media::dispatch::run(&state, now).await {
                tracing::warn!(error = %e, "webhook dispatch failed; next tick retries");
            }
        }
    })
}

/// The `response-content-type` and `response-content-disposition` overrides of a
/// signed GET, which S3 applies to its answer and s3s-fs 0.14 ignores. s3s checks
/// the signature (which covers them) before anything is returned.
fn response_overrides(
    req: &http::Request<hyper::body::Incoming>,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    if req.method() != http::Method::GET {
        return Vec::new();
    }
    let query = req.uri().query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .filter_map(|(k, v)| {
            let name = match k.as_ref() {
                "response-content-type" => http::header::CONTENT_TYPE,
                "response-content-disposition" => http::header::CONTENT_DISPOSITION,
                _ => return None,
            };
            Some((name, http::HeaderValue::from_str(&v).ok()?))
        })
        .collect()
}
