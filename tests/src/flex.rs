//! A stand-in for Twilio's token validation API (`POST
//! /v1/Accounts/{AccountSid}/Tokens/validate`, what npm
//! `twilio-flex-token-validator` calls): a third party the tests cannot reach.
//! It answers as that API is documented: HTTP Basic `AccountSid:AuthToken`, a JSON
//! body `{"token"}`, and `{"valid", "code", "message", "expiration", "realm_user_id",
//! "identity", "roles", "worker_sid"}`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// A Flex token as the stand-in knows it: whose, with which Flex roles.
#[derive(Clone, Debug)]
pub struct FlexGrant {
    pub identity: String,
    pub roles: Vec<String>,
    /// Seconds from now until the token expires.
    pub ttl_secs: i64,
}

#[derive(Default)]
struct Inner {
    /// The account's SID and auth token the API expects in Basic auth.
    account: (String, String),
    tokens: Mutex<HashMap<String, FlexGrant>>,
    calls: AtomicUsize,
    /// Answer 500 to everything (the API is down).
    down: std::sync::atomic::AtomicBool,
}

/// The running stand-in; it stops when dropped.
pub struct FlexValidationApi {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FlexValidationApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A new token in the shape of a Flex token (a compact JWE, five parts).
pub fn flex_token(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("eyJ6aXAiOiJERUYiLCJraWQiOiJKV1QifQ.{name}.{nanos:x}{n}.ciphertext.tag")
}

impl FlexValidationApi {
    /// The stand-in for the harness's account ([`crate::credentials`]).
    pub async fn start() -> Self {
        let c = crate::credentials();
        Self::start_for(c.account_sid.as_str(), &c.auth_token).await
    }

    /// The stand-in for an account with these credentials.
    pub async fn start_for(account_sid: &str, auth_token: &str) -> Self {
        let inner = Arc::new(Inner {
            account: (account_sid.to_owned(), auth_token.to_owned()),
            ..Inner::default()
        });
        let app = Router::new()
            .route("/v1/Accounts/{account}/Tokens/validate", post(validate))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            inner,
            server,
        }
    }

    /// The validation URL as `FLEX_TOKEN_VALIDATION_URL` takes it.
    pub fn url(&self) -> String {
        format!(
            "http://{}/v1/Accounts/{{AccountSid}}/Tokens/validate",
            self.addr
        )
    }

    /// Makes `token` valid for `grant`.
    pub fn grant(&self, token: &str, grant: FlexGrant) {
        self.inner
            .tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), grant);
    }

    /// A new valid Flex token of `identity` with these Flex roles.
    pub fn token(&self, identity: &str, roles: &[&str]) -> String {
        let token = flex_token(identity);
        self.grant(
            &token,
            FlexGrant {
                identity: identity.into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                ttl_secs: 3600,
            },
        );
        token
    }

    /// Validation requests answered so far (any outcome).
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// Makes the API answer 500 (or answer again).
    pub fn set_down(&self, down: bool) {
        self.inner.down.store(down, Ordering::SeqCst);
    }
}

async fn validate(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    if inner.down.load(Ordering::SeqCst) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"code": 20500, "message": "Internal Server Error", "status": 500})),
        );
    }
    use base64::Engine as _;
    let (account_sid, auth_token) = &inner.account;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{account_sid}:{auth_token}"))
    );
    let authorized = headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !authorized || &account != account_sid {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        );
    }
    let token = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(str::to_owned));
    let grant = token.and_then(|t| inner.tokens.lock().unwrap().get(&t).cloned());
    match grant {
        Some(g) if g.ttl_secs > 0 => {
            let expiration = chrono::Utc::now() + chrono::Duration::seconds(g.ttl_secs);
            (
                StatusCode::OK,
                Json(json!({
                    "valid": true,
                    "code": 0,
                    "message": null,
                    "expiration": expiration.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "realm_user_id": format!("{}@example.com", g.identity),
                    "identity": g.identity,
                    "roles": g.roles,
                    "worker_sid": "WK00000000000000000000000000000001",
                })),
            )
        }
        _ => (
            StatusCode::OK,
            Json(json!({
                "valid": false,
                "code": 20101,
                "message": "Invalid Access Token",
                "expiration": null,
                "realm_user_id": null,
                "identity": null,
                "roles": null,
                "worker_sid": null,
            })),
        ),
    }
}
