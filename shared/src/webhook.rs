//! Calling webhooks as Twilio does: the event's parameters as a form (`POST`) or
//! query string (`GET`), signed with `X-Twilio-Signature`, an
//! `I-Twilio-Idempotency-Token` that stays the same across retries, a 5 s
//! timeout per attempt and retries on timeout, 429 and 5xx. Every delivery also
//! has a deadline, so a slow or dead hook never holds a Lambda past its timeout.
//!
//! Pre-events ([`WebhookClient::pre_event`]) block the action and decide it:
//! proceed, proceed with changed values, or refuse. Who fires them is
//! [`Firing`]: user (access-token) actions always, admin REST actions only
//! when the service sets `PreWebhookForRest`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::model::{WebhookConfig, WebhookMethod, WebhookUrl};
use crate::signature;

/// The header carrying one delivery's idempotency token, as Twilio names it.
pub const IDEMPOTENCY_HEADER: &str = "I-Twilio-Idempotency-Token";

/// The header that makes an admin REST action fire post-events, as Twilio's.
pub const ENABLED_HEADER: &str = "X-Twilio-Webhook-Enabled";

/// Twilio's timeout for one webhook request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest a pre-event may block an action, retries included: well inside
/// the 29 s Lambda timeout, leaving room for the action's own writes.
pub const PRE_EVENT_BUDGET: Duration = Duration::from_secs(15);

/// The webhook HTTP client; one per cold start, in `AppState`.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: crate::fetch::LazyClient,
    timeout: Duration,
    budget: Duration,
}

/// Who acts, for deciding whether hooks fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firing {
    /// A user with an access token (Twilio's SDK actions): pre- and post-events.
    User,
    /// Admin REST; `webhook_enabled` is the `X-Twilio-Webhook-Enabled: true` header.
    Rest { webhook_enabled: bool },
}

impl Firing {
    pub fn fires_pre(self, config: &WebhookConfig) -> bool {
        match self {
            Self::User => true,
            Self::Rest { .. } => config.pre_for_rest,
        }
    }

    pub fn fires_post(self) -> bool {
        match self {
            Self::User => true,
            Self::Rest { webhook_enabled } => webhook_enabled,
        }
    }
}

/// An event about to be sent: its name and parameters (without `EventType`,
/// `RetryCount` and `WebhookType`, which each attempt adds).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: &'static str,
    pub params: Vec<(String, String)>,
    /// The idempotency token (outbox events keep theirs across redeliveries);
    /// `None`: a fresh one per delivery.
    pub token: Option<String>,
    /// `RetryCount` of the first attempt (attempts already made by earlier runs).
    pub retry_base: u32,
}

impl Event {
    /// An event with Twilio's common parameters: `AccountSid`, `InstanceSid`
    /// (the service) and, for user actions, `ClientIdentity`.
    pub fn new(
        name: &'static str,
        account_sid: &str,
        service_sid: &str,
        client_identity: Option<&str>,
    ) -> Self {
        let mut event = Self {
            name,
            params: Vec::new(),
            token: None,
            retry_base: 0,
        };
        event.param("AccountSid", account_sid);
        event.param("InstanceSid", service_sid);
        if let Some(identity) = client_identity {
            event.param("ClientIdentity", identity);
        }
        event
    }

    pub fn param(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.params.push((name.to_owned(), value.into()));
        self
    }

    /// The parameters one attempt sends.
    fn attempt_params(&self, retry: u32) -> Vec<(String, String)> {
        let mut params = vec![
            ("EventType".to_owned(), self.name.to_owned()),
            (
                "RetryCount".to_owned(),
                (self.retry_base + retry).to_string(),
            ),
        ];
        // A channel-scoped webhook's event names its own type (`webhook`, `trigger`).
        if !self.params.iter().any(|(k, _)| k == "WebhookType") {
            params.push(("WebhookType".to_owned(), "webhook".to_owned()));
        }
        params.extend(self.params.iter().cloned());
        params
    }
}

/// What one delivery (all its attempts) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The hook answered with a status that is not retried (or retries ran out on one).
    Answered {
        status: u16,
        body: String,
        attempts: u32,
    },
    /// No answer: every attempt timed out or failed to connect.
    NoAnswer { attempts: u32, error: String },
}

impl Outcome {
    /// 2xx.
    pub fn succeeded(&self) -> bool {
        matches!(self, Self::Answered { status, .. } if (200..300).contains(status))
    }

    /// No answer, or a 429/5xx after the retries: the hook is unavailable
    /// rather than refusing, so `PreWebhookFailOpen` applies.
    pub fn unavailable(&self) -> bool {
        match self {
            Self::NoAnswer { .. } => true,
            Self::Answered { status, .. } => retried(*status),
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            Self::Answered { attempts, .. } | Self::NoAnswer { attempts, .. } => *attempts,
        }
    }
}

fn retried(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// The pre-event's decision when the action may go ahead.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Proceed {
    /// No hook is set for this event or caller.
    #[default]
    NotFired,
    /// The hook allowed the action as it is.
    Unchanged,
    /// The hook allowed it with these values (its JSON object answer, e.g. `body`, `attributes`).
    Modified(Map<String, Value>),
    /// The hook did not answer and the service fails open.
    FailedOpen,
}

/// Why a pre-event stopped the action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The hook answered with a refusing status; `reason` is its `{"reason": …}`, if any.
    #[error("the {event} webhook rejected the action (status {status})")]
    Vetoed {
        event: &'static str,
        status: u16,
        reason: Option<String>,
    },
    /// No answer, and the service fails closed.
    #[error("the {event} webhook did not answer; the action was refused")]
    NoAnswer { event: &'static str },
    /// The hook's modification is not valid for the action.
    #[error("the {event} webhook answered with an invalid {field}: {why}")]
    InvalidModification {
        event: &'static str,
        field: &'static str,
        why: String,
    },
}

impl WebhookClient {
    /// `timeout` per attempt (Twilio: 5 s).
    pub fn new(timeout: Duration) -> Self {
        let http = crate::fetch::LazyClient::new(move || {
            reqwest::Client::builder()
                .connect_timeout(timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("TwilioProxy/1.1")
        });
        Self {
            http,
            timeout,
            budget: PRE_EVENT_BUDGET.max(timeout),
        }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Delivers `event` to `url` with up to `retries` retries, stopping at
    /// `deadline` whatever is left.
    pub async fn deliver(
        &self,
        auth_token: &str,
        url: &WebhookUrl,
        method: WebhookMethod,
        event: &Event,
        retries: u32,
        deadline: Instant,
    ) -> Outcome {
        let token = event.token.clone().unwrap_or_else(idempotency_token);
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Outcome::NoAnswer {
                    attempts: attempt,
                    error: "deadline reached".into(),
                };
            }
            let params = event.attempt_params(attempt);
            let request = match method {
                WebhookMethod::Post => {
                    let signature = signature::sign(auth_token, url.as_str(), &params);
                    self.http
                        .get()
                        .post(url.as_str())
                        .header(signature::HEADER, signature)
                        .form(&params)
                }
                WebhookMethod::Get => {
                    let full = with_query(url.as_str(), &params);
                    let signature = signature::sign(auth_token, &full, &[]);
                    self.http
                        .get()
                        .get(full)
                        .header(signature::HEADER, signature)
                }
            };
            attempt += 1;
            let result = request
                .header(IDEMPOTENCY_HEADER, &token)
                .timeout(self.timeout.min(left))
                .send()
                .await;
            let outcome = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // A hook's answer is small; a huge one is cut, never buffered whole.
                    let body = read_capped(response, 64 * 1024).await;
                    Outcome::Answered {
                        status,
                        body,
                        attempts: attempt,
                    }
                }
                Err(e) => Outcome::NoAnswer {
                    attempts: attempt,
                    error: if e.is_timeout() {
                        "timed out".into()
                    } else if e.is_connect() {
                        "could not connect".into()
                    } else {
                        "request failed".into()
                    },
                },
            };
            let retry = match &outcome {
                Outcome::NoAnswer { .. } => true,
                Outcome::Answered { status, .. } => retried(*status),
            };
            if !retry || attempt > retries {
                tracing::info!(
                    event = event.name,
                    outcome = outcome_label(&outcome),
                    attempts = attempt,
                    "webhook delivered"
                );
                return outcome;
            }
        }
    }

    /// Fires the pre-event `event` if the service's filters list it and `who`
    /// fires pre-events, and turns the answer into a decision.
    pub async fn pre_event(
        &self,
        auth_token: &str,
        config: &WebhookConfig,
        who: Firing,
        event: &Event,
    ) -> Result<Proceed, Refused> {
        let Some(url) = config
            .pre_hook(event.name)
            .filter(|_| who.fires_pre(config))
        else {
            return Ok(Proceed::NotFired);
        };
        let deadline = Instant::now() + self.budget;
        let outcome = self
            .deliver(
                auth_token,
                url,
                config.method(),
                event,
                config.pre_retry_count,
                deadline,
            )
            .await;
        decide(event.name, &outcome, config.pre_fail_open)
    }
}

/// A pre-event's answer as a decision.
pub fn decide(event: &'static str, outcome: &Outcome, fail_open: bool) -> Result<Proceed, Refused> {
    if outcome.unavailable() {
        return if fail_open {
            tracing::warn!(event, "pre-event webhook unavailable; failing open");
            Ok(Proceed::FailedOpen)
        } else {
            Err(Refused::NoAnswer { event })
        };
    }
    let Outcome::Answered { status, body, .. } = outcome else {
        return Err(Refused::NoAnswer { event });
    };
    let json = serde_json::from_str::<Value>(body.trim()).ok();
    if !(200..300).contains(status) {
        let reason = json
            .as_ref()
            .and_then(|j| j.get("reason"))
            .and_then(Value::as_str)
            .map(|r| r.chars().take(256).collect());
        return Err(Refused::Vetoed {
            event,
            status: *status,
            reason,
        });
    }
    match json {
        Some(Value::Object(map)) if !map.is_empty() => Ok(Proceed::Modified(map)),
        _ => Ok(Proceed::Unchanged),
    }
}

fn outcome_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered { status, .. } => status.to_string(),
        Outcome::NoAnswer { error, .. } => error.clone(),
    }
}

/// One delivery's token: the same on each retry, so a hook can drop repeats.
fn idempotency_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn with_query(url: &str, params: &[(String, String)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> String {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() >= cap {
            out.truncate(cap);
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A modified text value from a hook's answer: a string, or for `attributes`
/// also a JSON object (sent back as its text).
pub fn modified_text(map: &Map<String, Value>, field: &str) -> Option<String> {
    match map.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other if field == "attributes" => Some(other.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, body: &str) -> Outcome {
        Outcome::Answered {
            status,
            body: body.into(),
            attempts: 1,
        }
    }

    #[test]
    fn answers_become_decisions() {
        assert_eq!(
            decide("onMessageSend", &answered(200, ""), false),
            Ok(Proceed::Unchanged)
        );
        assert_eq!(
            decide("onMessageSend", &answered(204, "not json"), false),
            Ok(Proceed::Unchanged)
        );
        let Ok(Proceed::Modified(map)) =
            decide("onMessageSend", &answered(200, r#"{"body":"x"}"#), false)
        else {
            panic!("modified")
        };
        assert_eq!(modified_text(&map, "body").as_deref(), Some("x"));
        assert!(matches!(
            decide("onMessageSend", &answered(403, r#"{"reason":"spam"}"#), true),
            Err(Refused::Vetoed { status: 403, reason: Some(ref r), .. }) if r == "spam"
        ));
        assert_eq!(
            decide("onMessageSend", &answered(503, ""), false),
            Err(Refused::NoAnswer {
                event: "onMessageSend"
            })
        );
        assert_eq!(
            decide("onMessageSend", &answered(503, ""), true),
            Ok(Proceed::FailedOpen)
        );
    }

    #[test]
    fn get_parameters_go_in_the_query() {
        let params = vec![("Body".to_owned(), "a b&c".to_owned())];
        assert_eq!(
            with_query("https://h.example/x?k=1", &params),
            "https://h.example/x?k=1&Body=a+b%26c"
        );
    }
}
