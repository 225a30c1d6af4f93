//! The public origin a request was addressed to, so every `url` we answer is
//! absolute (Twilio's spec types them `format: uri`, and its libraries request
//! `next_page_url` as given) and so a Twilio signature can be checked against
//! the URL Twilio signed.
//!
//! `PUBLIC_BASE_URL` wins when set (a custom domain in front of a CDN, say).
//! Otherwise the origin comes from the request: API Gateway's HTTP API passes
//! the domain it was called on in `Host` and sets `X-Forwarded-Proto`; a proxy
//! in front of the local runner sets `X-Forwarded-Host`. Behind API Gateway the
//! caller cannot choose `Host` (it must match the API's domain to be routed),
//! so deriving links from it does not let a caller point them elsewhere.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::config::AppState;

/// `scheme://host[:port]` (or `PUBLIC_BASE_URL`), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase(pub String);

impl PublicBase {
    /// The base for a request with these headers when `configured` is the
    /// deployment's `PUBLIC_BASE_URL` (empty when unset).
    pub fn from_headers(configured: &str, headers: &HeaderMap) -> Self {
        if !configured.is_empty() {
            return Self(configured.trim_end_matches('/').to_owned());
        }
        let first = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty() && is_host_like(v))
        };
        let host = first("x-forwarded-host")
            .or_else(|| first(header::HOST.as_str()))
            .unwrap_or("localhost");
        let scheme = match first("x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            Some(_) => "https",
            // Without a proxy's word, only a loopback host is plain HTTP.
            None if is_loopback(host) => "http",
            None => "https",
        };
        Self(format!("{scheme}://{host}"))
    }

    /// The absolute URL of `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.0, path_and_query)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A host, optionally with a port: no path, query, userinfo or whitespace
/// can ride in on a header and end up inside the links we hand out.
fn is_host_like(v: &str) -> bool {
    v.len() <= 255
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(h, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
        })
        .map_or(host, |(h, _)| h);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

impl<S> FromRequestParts<S> for PublicBase
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        Ok(Self::from_headers(&state.settings.base_url, &parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn configured_base_wins() {
        let h = headers(&[("host", "evil.example")]);
        assert_eq!(
            PublicBase::from_headers("https://media.example.com/", &h).0,
            "https://media.example.com"
        );
    }

    #[test]
    fn api_gateway_host_and_proto() {
        let h = headers(&[
            ("host", "abc.execute-api.eu-west-1.amazonaws.com"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            PublicBase::from_headers("", &h).url("/v2/Services"),
            "https://abc.execute-api.eu-west-1.amazonaws.com/v2/Services"
        );
    }

    #[test]
    fn forwarded_host_first_value_and_loopback_is_http() {
        let h = headers(&[
            ("x-forwarded-host", "proxy.example, inner"),
            ("host", "127.0.0.1:9000"),
        ]);
        assert_eq!(PublicBase::from_headers("", &h).0, "https://proxy.example");
        let h = headers(&[("host", "127.0.0.1:9000")]);
        assert_eq!(PublicBase::from_headers("", &h).0, "http://127.0.0.1:9000");
    }

    #[test]
    fn a_header_smuggling_a_path_is_ignored() {
        let h = headers(&[
            ("x-forwarded-host", "evil.example/phish?"),
            ("host", "api.example"),
        ]);
        assert_eq!(PublicBase::from_headers("", &h).0, "https://api.example");
    }
}
