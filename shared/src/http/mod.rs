//! The HTTP edge, the only layer that knows axum: the caller as an extractor,
//! scope extractors ([`scope`]), Twilio form bodies and parameters ([`params`]),
//! paging parameters and envelope, the 404/405 fallbacks, the one error type
//! with every conversion from a domain error ([`error`]), and reading a media as
//! its viewers may, shared by get-media and get-thumbnail ([`media`]).

pub mod error;
pub mod hooks;
pub mod media;
pub mod origin;
pub mod params;
pub mod scope;

pub use error::{code, ApiError, ApiResult};
pub use origin::PublicBase;
pub use scope::{AdminChannel, AdminService, Caller, ChannelForDelete, ChannelScope, ServiceScope};

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::config::AppState;
use crate::sid::SidError;
use crate::store::{Page, PageRequest};

/// Largest form body accepted: a 32 KiB message body and 16 KiB of attributes,
/// each up to three times longer once percent-encoded, and room for the rest.
pub const MAX_FORM_BYTES: usize = 192 * 1024;

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl<S> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        Ok(state.credentials.authenticate(&parts.headers, unix_now())?)
    }
}

/// Parses a SID from a path segment or parameter; the 400 names the parameter.
pub fn parse_sid<T: FromStr<Err = SidError>>(param: &str, value: &str) -> Result<T, ApiError> {
    value.parse().map_err(|e| ApiError::sid(param, e))
}

/// An `application/x-www-form-urlencoded` body with Twilio's PascalCase names,
/// keeping repeated keys (e.g. `Permission`).
#[derive(Debug, Clone, Default)]
pub struct TwilioForm {
    pairs: Vec<(String, String)>,
}

impl TwilioForm {
    pub fn parse(body: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// A form of these pairs, as if posted (for unit tests of form parsing).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::missing(name))
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// An optional parameter parsed with `FromStr`; the 400 names it.
    pub fn parsed<T>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(name)
            .map(|v| v.parse::<T>().map_err(|e| ApiError::invalid(name, e)))
            .transpose()
    }
}

/// Whether the request's `Content-Type` is `mime` (parameters such as charset ignored).
pub fn has_content_type(headers: &axum::http::HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(mime))
}

/// Reads a body up to `limit` bytes; more is a 413, a broken stream a 400.
pub async fn read_body_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_big {
                ApiError::too_large(format!("Request body exceeds {limit} bytes"))
            } else {
                ApiError::bad_request(format!("Could not read the request body: {e}"))
            }
        })
}

impl<S> FromRequest<S> for TwilioForm
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let has_body = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
            || req.headers().contains_key(header::TRANSFER_ENCODING);
        if has_body && !has_content_type(req.headers(), "application/x-www-form-urlencoded") {
            return Err(ApiError::unsupported_media_type(
                "Request body must be application/x-www-form-urlencoded",
            ));
        }
        let body = read_body_limited(req, MAX_FORM_BYTES).await?;
        Ok(Self::parse(&body))
    }
}

/// `PageSize`, `PageToken` and `Page` from the query string.
pub struct Paging(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = TwilioForm::parse(parts.uri.query().unwrap_or_default().as_bytes());
        let mut req = PageRequest::default();
        if let Some(size) = query.get("PageSize") {
            req.size = size
                .parse()
                .ok()
                .filter(|s| (1..=crate::store::MAX_PAGE_SIZE).contains(s))
                .ok_or_else(|| ApiError::invalid("PageSize", "must be a number from 1 to 1000"))?;
        }
        if let Some(page) = query.get("Page") {
            req.page = page
                .parse()
                .map_err(|_| ApiError::invalid("Page", "must be a non-negative number"))?;
        }
        req.token = query.get("PageToken").map(str::to_owned);
        if req.page > 0 && req.token.is_none() {
            return Err(ApiError::invalid(
                "Page",
                "pages after the first need the PageToken from next_page_url",
            ));
        }
        Ok(Paging(req))
    }
}

/// The query string as a form (lists read their filters from it, repeated ones too).
pub struct QueryForm(pub TwilioForm);

impl<S: Send + Sync> FromRequestParts<S> for QueryForm {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryForm(TwilioForm::parse(
            parts.uri.query().unwrap_or_default().as_bytes(),
        )))
    }
}

/// Twilio's list envelope: `{ <key>: [...], meta: {...} }`.
pub fn page_response(
    base_url: &str,
    path: &str,
    key: &str,
    req: &PageRequest,
    page: Page<Value>,
) -> Json<Value> {
    let filters = req.filter_query();
    let url = |page_no: u32, token: Option<&str>| {
        let mut q = format!("{base_url}{path}?");
        if !filters.is_empty() {
            q.push_str(&filters);
            q.push('&');
        }
        q.push_str(&format!("PageSize={}&Page={page_no}", req.size));
        if let Some(t) = token {
            q.push_str("&PageToken=");
            q.push_str(t);
        }
        q
    };
    let next = page
        .next_token
        .as_deref()
        .map(|t| url(req.page + 1, Some(t)));
    Json(json!({
        key: page.items,
        "meta": {
            "page": req.page,
            "page_size": req.size,
            "first_page_url": url(0, None),
            "previous_page_url": null,
            "url": url(req.page, req.token.as_deref()),
            "next_page_url": next,
            "key": key,
        }
    }))
}

/// A Twilio list page of `page`'s records under `key`, each rendered by `view`.
pub fn page_json<T>(
    state: &AppState,
    base: &PublicBase,
    path: &str,
    key: &str,
    req: &PageRequest,
    page: Page<T>,
    view: impl Fn(&T, crate::model::ViewCtx<'_>) -> Value,
) -> Json<Value> {
    let ctx = state.view_at(base.as_str());
    page_response(base.as_str(), path, key, req, page.map(|r| view(&r, ctx)))
}

/// 201 with a JSON body.
pub fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

pub async fn not_found_fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "The requested resource {} was not found",
        uri.path()
    ))
}

pub async fn method_not_allowed_fallback(method: axum::http::Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        format!("Method {method} is not allowed on this resource"),
    )
}

/// Longest text of a non-JSON error answer carried into a Twilio error message.
const MAX_REJECTION_TEXT: usize = 512;

/// Every error answer as a Twilio error body: one that is not JSON already (axum's
/// own rejections, e.g. a path segment that is not UTF-8 or a repeated query
/// parameter, are plain text) gets the Twilio body with the same status and
/// headers. A 4xx keeps the rejection's text (it describes the caller's request);
/// a 5xx says nothing but its status, and the text goes to the log.
pub async fn twilio_error_body(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_TEXT)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty());
    let reason = status.canonical_reason().unwrap_or("Error").to_owned();
    let error = match text {
        Some(text) if status.is_client_error() => ApiError::with_status(status, text),
        Some(text) => {
            ApiError::with_status(status, reason).with_source(std::io::Error::other(text))
        }
        None => ApiError::with_status(status, reason),
    };
    let mut out = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

/// Adds the Twilio-style fallbacks every function router ends with, and turns
/// any other error answer into a Twilio error body ([`twilio_error_body`]).
pub fn with_fallbacks(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .layer(axum::middleware::map_response(twilio_error_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn mapped(
        status: StatusCode,
        content_type: &str,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let response = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ALLOW, "GET")
            .body(axum::body::Body::from(body))
            .unwrap();
        let out = twilio_error_body(response).await;
        let status = out.status();
        assert_eq!(out.headers()[header::ALLOW], "GET", "headers are kept");
        let bytes = axum::body::to_bytes(out.into_body(), 4096).await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn plain_text_errors_become_twilio_bodies() {
        let (status, body) = mapped(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "Failed to deserialize query string: duplicate field `Order`",
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["code"], 20001);
        assert_eq!(body["status"], 400);
        assert!(body["message"].as_str().unwrap().contains("`Order`"));
        assert!(body["more_info"].as_str().is_some());
        let (_, body) = mapped(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "").await;
        assert_eq!(
            (body["code"].as_u64(), body["status"].as_u64()),
            (Some(20413), Some(413))
        );
    }

    #[tokio::test]
    async fn a_server_error_text_is_not_shown() {
        for status in [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::BAD_GATEWAY] {
            let (got, body) = mapped(status, "text/plain", "cannot reach 10.0.0.7:8000").await;
            assert_eq!(got, status);
            assert_eq!(body["status"], status.as_u16());
            assert!(!body.to_string().contains("10.0.0.7"), "{body}");
        }
    }

    #[tokio::test]
    async fn json_and_successful_answers_pass_unchanged() {
        let (status, body) =
            mapped(StatusCode::NOT_FOUND, "application/json", r#"{"code":1}"#).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"code": 1})));
        let (status, body) = mapped(StatusCode::OK, "text/plain", "fine").await;
        assert_eq!((status, body), (StatusCode::OK, Value::Null));
    }
}

#[cfg(test)]
/// Properties of form parsing (proptest).
mod form_properties {
    use super::TwilioForm;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn forms_round_trip_pairs_with_repeated_keys(
            pairs in proptest::collection::vec(
                (proptest::sample::select(vec!["Permission", "Body", "Media.AllowedTypes", "a b", "&=%"]),
                 any::<String>()),
                0..12,
            )
        ) {
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                body.append_pair(k, v);
            }
            let form = TwilioForm::parse(body.finish().as_bytes());
            for key in ["Permission", "Body", "Media.AllowedTypes", "a b", "&=%"] {
                let sent: Vec<&str> =
                    pairs.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.as_str()).collect();
                prop_assert_eq!(form.all(key), sent.clone());
                prop_assert_eq!(form.get(key), sent.first().copied());
                prop_assert_eq!(form.has(key), !sent.is_empty());
            }
        }

        #[test]
        fn any_body_parses_and_typed_reads_refuse_cleanly(body in any::<Vec<u8>>()) {
            let form = TwilioForm::parse(&body);
            for key in ["PageSize", "MediaSid", ""] {
                let _ = form.parsed::<u32>(key);
                let _ = form.parsed::<crate::sid::MediaSid>(key);
            }
        }
    }
}
