//! `GET /demo`: a small page using `clients/js` (upload with progress, send, see
//! media from temporary URLs, delete, block/unblock), served by the local runner
//! only, never by a Lambda function. Its tokens come from `GET /demo/token`, which
//! mints one for any identity: local only, like everything this crate serves.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chat_media::sid::ServiceSid;
use chat_media::{AppState, Identity};

const PAGE: &str = include_str!("demo.html");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo", get(page))
        .route("/demo/client.js", get(library))
        .route("/demo/token", get(token))
}

async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The built library (`npm run build` in clients/js), read at each request so a
/// rebuild needs no restart.
async fn library() -> Response {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/dist/index.js");
    match tokio::fs::read_to_string(path).await {
        Ok(js) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            js,
        )
            .into_response(),
        Err(_) => (
            StatusCode::NOT_FOUND,
            "clients/js is not built: cd clients/js && npm ci && npm run build",
        )
            .into_response(),
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    service: String,
    identity: String,
}

async fn token(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let (Ok(service), Ok(identity)) = (ServiceSid::parse(&q.service), Identity::parse(&q.identity))
    else {
        return (StatusCode::BAD_REQUEST, "service and identity").into_response();
    };
    let now = chrono::Utc::now().timestamp();
    let token = state.credentials.mint_token(&service, &identity, now, 3600);
    Json(serde_json::json!({ "token": token })).into_response()
}
