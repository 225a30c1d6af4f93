//! The HTTP edge, the only layer that knows axum: the caller as an extractor,
//! scope extractors ([`scope`]), Twilio form bodies and parameters ([`params`]),
//! paging parameters and envelope, the 404/405 fallbacks, and the one error type
//! with every conversion from a domain error ([`error`]).

pub mod error;
pub mod params;
pub mod scope;

pub use error::{code, ApiError, ApiResult};
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

/// Twilio's list envelope: `{ <key>: [...], meta: {...} }`.
pub fn page_response(
    base_url: &str,
    path: &str,
    key: &str,
    req: &PageRequest,
    page: Page<Value>,
) -> Json<Value> {
    let url = |page_no: u32, token: Option<&str>| {
        let mut q = format!("{base_url}{path}?PageSize={}&Page={page_no}", req.size);
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
    path: &str,
    key: &str,
    req: &PageRequest,
    page: Page<T>,
    view: impl Fn(&T, crate::model::ViewCtx<'_>) -> Value,
) -> Json<Value> {
    let ctx = state.view();
    page_response(
        &state.settings.base_url,
        path,
        key,
        req,
        page.map(|r| view(&r, ctx)),
    )
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

/// Adds the Twilio-style fallbacks every function router ends with.
pub fn with_fallbacks(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback)
}

#[cfg(test)]
mod tests {
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
