//! The HTTP side: one client, the caller's auth on every API request, Twilio error
//! bodies turned into [`ApiError`].

use anyhow::{Context, Result};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::config::Config;

/// A refusal from the API, with Twilio's error body.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<i64>,
    pub message: String,
    pub body: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "HTTP {} (code {code}): {}", self.status, self.message),
            None => write!(f, "HTTP {}: {}", self.status, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

pub struct Api {
    pub config: Config,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(config: Config) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("chat-media-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { config, http })
    }

    pub fn service(&self) -> Result<&str> {
        self.config
            .service
            .as_deref()
            .context("no service: --service IS…, CHAT_MEDIA_SERVICE_SID or a profile")
    }

    /// A request to an API path (or a full URL the API handed out, such as
    /// `next_page_url`), authenticated as the configured caller.
    pub fn request(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.config.url)
        };
        let req = self.http.request(method, url);
        Ok(match (&self.config.token, &self.config.account_sid, &self.config.auth_token) {
            (Some(token), _, _) => req.header("X-Twilio-Token", token),
            (None, Some(sid), Some(secret)) => req.basic_auth(sid, Some(secret)),
            _ => anyhow::bail!(
                "no credentials: --token / --as, or CHAT_MEDIA_ACCOUNT_SID and CHAT_MEDIA_AUTH_TOKEN"
            ),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        json_of(self.request(Method::GET, path)?.send().await?).await
    }

    pub async fn post_form(&self, path: &str, form: &[(String, String)]) -> Result<Value> {
        let body = encode_form(form);
        let req = self
            .request(Method::POST, path)?
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        json_of(req.send().await?).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        let response = self.request(Method::DELETE, path)?.send().await?;
        check(response).await.map(|_| ())
    }

    /// Every item of a Twilio list, following `meta.next_page_url`.
    pub async fn list(
        &self,
        path: &str,
        key: &str,
        query: &[(String, String)],
    ) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut page = self
            .request(Method::GET, path)?
            .query(&[("PageSize", "1000")])
            .query(query)
            .send()
            .await?;
        loop {
            let v = json_of(page).await?;
            if let Some(arr) = v[key].as_array() {
                items.extend(arr.iter().cloned());
            }
            match v["meta"]["next_page_url"].as_str() {
                Some(next) if !next.is_empty() => {
                    page = self.request(Method::GET, next)?.send().await?;
                }
                _ => return Ok(items),
            }
        }
    }
}

pub fn encode_form(form: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The response if it is a success, else its Twilio error as an [`ApiError`].
pub async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let message = body["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| text.chars().take(200).collect());
    Err(ApiError {
        status: status.as_u16(),
        code: body["code"].as_i64(),
        message,
        body,
    }
    .into())
}

pub async fn json_of(response: Response) -> Result<Value> {
    let response = check(response).await?;
    let status = response.status();
    let text = response.text().await?;
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("HTTP {status}: not JSON"))
}
