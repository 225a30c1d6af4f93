//! A webhook receiver for tests and benches: a real HTTP server on 127.0.0.1
//! that records every request and answers as the test scripts it. Its
//! signatures are checked with Twilio's own `RequestValidator` (twilio-python)
//! by [`HookReceiver::assert_signed`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One request as the hook saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The full URL, as the sender had to sign it.
    pub url: String,
    pub signature: Option<String>,
    pub idempotency_token: Option<String>,
    /// The form (POST) parameters, in order; empty for GET.
    pub form: Vec<(String, String)>,
    /// The query parameters (GET), in order.
    pub query: Vec<(String, String)>,
}

impl Received {
    /// A parameter from the form or, for GET, the query.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(&self.query)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the hook answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Responder = dyn Fn(&Received, usize) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    base: String,
    seen: Arc<Mutex<Vec<Received>>>,
    responder: Arc<Responder>,
}

/// A running receiver; stops when dropped.
pub struct HookReceiver {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    seen: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl HookReceiver {
    /// A receiver answering each request with `responder(request, how many came before it)`.
    pub async fn start(
        responder: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            base: base.clone(),
            seen: seen.clone(),
            responder: Arc::new(responder),
        };
        let app = axum::Router::new().fallback(receive).with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, seen, server }
    }

    /// A receiver that always answers `reply`.
    pub async fn answering(reply: Reply) -> Self {
        Self::start(move |_, _| reply.clone()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Every request so far carries a signature that twilio-python's
    /// `RequestValidator` accepts for `token` (and one changed parameter would not).
    pub fn assert_signed(&self, token: &str) {
        let requests = self.requests();
        assert!(!requests.is_empty(), "the hook received nothing");
        let mut batch = Vec::new();
        for r in &requests {
            let params: Vec<[&str; 2]> = r
                .form
                .iter()
                .map(|(k, v)| [k.as_str(), v.as_str()])
                .collect();
            batch.push(json!({"url": r.url, "params": params, "signature": r.signature}));
            // The same request with its first parameter changed must not validate.
            let mut tampered = r.form.clone();
            if let Some(first) = tampered.first_mut() {
                first.1.push('x');
            }
            let url = if tampered.is_empty() {
                format!("{}&tampered=1", r.url)
            } else {
                r.url.clone()
            };
            let params: Vec<[&str; 2]> = tampered
                .iter()
                .map(|(k, v)| [k.as_str(), v.as_str()])
                .collect();
            batch.push(json!({"url": url, "params": params, "signature": r.signature}));
        }
        let answer = crate::twilio_python(
            "validate.py",
            &json!({"op": "validate_many", "token": token, "requests": batch}),
        );
        let valid = answer["valid"]
            .as_array()
            .expect("validate_many answers a list");
        for (i, r) in requests.iter().enumerate() {
            assert_eq!(
                valid[2 * i],
                true,
                "twilio-python refused the signature of {r:?}"
            );
            assert_eq!(
                valid[2 * i + 1],
                false,
                "a tampered copy of {r:?} validated"
            );
        }
    }
}

async fn receive(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let pairs = |raw: &[u8]| -> Vec<(String, String)> {
        form_urlencoded::parse(raw).into_owned().collect()
    };
    let received = Received {
        method: parts.method.to_string(),
        url: format!("{}{}", shared.base, parts.uri),
        signature: header("x-twilio-signature"),
        idempotency_token: header("i-twilio-idempotency-token"),
        form: if parts.method == axum::http::Method::POST {
            pairs(&bytes)
        } else {
            Vec::new()
        },
        query: pairs(parts.uri.query().unwrap_or_default().as_bytes()),
    };
    let count = {
        let mut seen = shared.seen.lock().unwrap();
        seen.push(received.clone());
        seen.len() - 1
    };
    let reply = (shared.responder)(&received, count);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        reply.body,
    )
        .into_response()
}
