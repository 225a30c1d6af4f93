//! The post-event dispatcher: delivers what the outbox holds, oldest first, in
//! order per channel, at least once. An event is claimed with a lease before it
//! is sent and deleted only after the hook answered 2xx (or its retries ran
//! out), so a dispatcher that dies mid-delivery leaves it to the next run once
//! the lease lapses: a possible duplicate, never a loss. Hooks can drop repeats
//! by `I-Twilio-Idempotency-Token`, the same on every redelivery.
//!
//! Runs from the scheduled event in AWS (media-events) and from the local
//! runner's background task; every outcome is one structured log line.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::AppState;
use crate::model::{event_name, OutboxEvent};
use crate::store::StoreResult;
use crate::webhook::Event;

/// Events read per run.
const BATCH: i32 = 100;

/// How long one run may deliver before it stops (the rest waits for the next).
pub const RUN_BUDGET: Duration = Duration::from_secs(60);

/// What one run did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct DispatchReport {
    pub delivered: u32,
    pub retried: u32,
    pub dropped: u32,
    /// Not due yet, held by another dispatcher, or behind an earlier event of its channel.
    pub waiting: u32,
}

/// The lease of one delivery: every attempt's timeout plus a margin.
fn lease_secs(state: &AppState) -> i64 {
    state.webhooks.timeout().as_secs() as i64 + 30
}

/// Backoff before retry `attempts` (1 s, 2 s, 4 s, … up to 5 min).
fn backoff(attempts: u32) -> i64 {
    1i64 << attempts.saturating_sub(1).min(8)
}

/// One pass over the outbox at `now` (epoch seconds).
pub async fn run(state: &AppState, now: i64) -> StoreResult<DispatchReport> {
    let started = Instant::now();
    let mut report = DispatchReport::default();
    // A channel whose earliest waiting event is not delivered yet holds back the rest.
    let mut held: HashSet<String> = HashSet::new();
    for event in state.store.outbox(BATCH).await? {
        let channel = event.channel_sid.as_ref().map(|c| c.to_string());
        if channel.as_ref().is_some_and(|c| held.contains(c)) || started.elapsed() > RUN_BUDGET {
            report.waiting += 1;
            continue;
        }
        let lease = now + lease_secs(state);
        if !state.store.claim_outbox(&event.id, now, lease).await? {
            report.waiting += 1;
            held.extend(channel);
            continue;
        }
        if deliver(state, &event, now, &mut report).await? {
            continue;
        }
        held.extend(channel);
    }
    Ok(report)
}

/// Sends one claimed event; `true` when it is done with (delivered or dropped).
async fn deliver(
    state: &AppState,
    stored: &OutboxEvent,
    now: i64,
    report: &mut DispatchReport,
) -> StoreResult<bool> {
    let Some(name) = event_name(&stored.event) else {
        tracing::warn!(event = %stored.event, id = %stored.id, "unknown outbox event dropped");
        state.store.delete_outbox(&stored.id).await?;
        report.dropped += 1;
        return Ok(true);
    };
    let event = Event {
        name,
        params: stored.params.clone(),
        token: Some(stored.id.clone()),
        retry_base: stored.attempts,
    };
    // One attempt per run: retries are spread out by the backoff, not held in a loop.
    let deadline = Instant::now() + state.webhooks.timeout();
    let outcome = state
        .webhooks
        .deliver(
            &state.credentials.auth_token,
            &stored.url,
            stored.method,
            &event,
            0,
            deadline,
        )
        .await;
    let attempts = stored.attempts + 1;
    if outcome.succeeded() {
        state.store.delete_outbox(&stored.id).await?;
        report.delivered += 1;
        tracing::info!(event = name, id = %stored.id, service = %stored.service_sid, attempts, outcome = "delivered", "post-event");
        return Ok(true);
    }
    if attempts > stored.retry_count {
        state.store.delete_outbox(&stored.id).await?;
        report.dropped += 1;
        tracing::warn!(event = name, id = %stored.id, service = %stored.service_sid, attempts, outcome = "dropped", "post-event");
        return Ok(true);
    }
    state
        .store
        .retry_outbox(&stored.id, attempts, now + backoff(attempts))
        .await?;
    report.retried += 1;
    tracing::info!(event = name, id = %stored.id, service = %stored.service_sid, attempts, outcome = "retry", "post-event");
    Ok(false)
}

// ---------------------------------------------------------------------------
// Firing the events of one action (s20-hooks): the service's settings and who
// acts, the pre-event before anything is written, the post-event as an outbox
// item for the transaction of the change.
// ---------------------------------------------------------------------------

use crate::identity::Identity;
use crate::model::{Channel, ChannelWebhook, Member, Message, User, WebhookConfig};
use crate::sid::{ChannelSid, ServiceSid};
use crate::webhook::{Firing, Proceed, Refused};

/// The hooks of one action on a service: its webhook settings, who fires
/// (user or admin REST) and the acting user's identity (`ClientIdentity`).
#[derive(Debug, Clone)]
pub struct Hooks {
    pub service: ServiceSid,
    pub config: WebhookConfig,
    pub firing: Firing,
    pub identity: Option<Identity>,
    /// The webhooks of the channel acted on (Twilio's channel-scoped webhooks),
    /// once [`Hooks::with_channel`] read them.
    pub channel_hooks: Vec<ChannelWebhook>,
}

impl Hooks {
    pub fn new(
        service: ServiceSid,
        config: WebhookConfig,
        firing: Firing,
        identity: Option<Identity>,
    ) -> Self {
        Self {
            service,
            config,
            firing,
            identity,
            channel_hooks: Vec::new(),
        }
    }

    /// Reads the webhooks of `channel`, which receive its post-events, when this
    /// caller fires post-events at all (one GetItem).
    pub async fn with_channel(
        mut self,
        state: &AppState,
        channel: &ChannelSid,
    ) -> StoreResult<Self> {
        if self.firing.fires_post() {
            self.channel_hooks = state.store.channel_webhooks(channel).await?.webhooks;
        }
        Ok(self)
    }

    /// Whether the pre-event `name` would be sent (a hook is set, the filters
    /// list it, and this caller fires pre-events).
    pub fn fires_pre(&self, name: &str) -> bool {
        self.config.pre_hook(name).is_some() && self.firing.fires_pre(&self.config)
    }

    /// A new event with the common parameters (`AccountSid`, `InstanceSid`, `ClientIdentity`).
    pub fn event(&self, state: &AppState, name: &'static str) -> Event {
        state.event(name, &self.service, self.identity.as_ref())
    }

    /// Sends the pre-event and returns the hook's decision (`NotFired` when it does not fire).
    pub async fn pre(&self, state: &AppState, event: &Event) -> Result<Proceed, Refused> {
        if !self.fires_pre(event.name) {
            return Ok(Proceed::NotFired);
        }
        state.pre_event(&self.config, self.firing, event).await
    }

    /// The post-event `event` as outbox items for the transaction of the change:
    /// one for the service's post hook (if set and the filters list the event)
    /// and one for each channel webhook that receives it (its filters, or a
    /// trigger keyword in the event's `Body`); none when this caller does not
    /// fire post-events.
    pub fn post(&self, event: Event, channel: Option<&ChannelSid>) -> Vec<OutboxEvent> {
        if !self.firing.fires_post() {
            return Vec::new();
        }
        let created_ms = crate::model::now().timestamp_millis();
        let item = |url: &crate::model::WebhookUrl,
                    method,
                    retry_count,
                    params: Vec<(String, String)>| OutboxEvent {
            id: OutboxEvent::new_id(),
            service_sid: self.service.clone(),
            channel_sid: channel.cloned(),
            event: event.name.to_owned(),
            url: url.clone(),
            method,
            params,
            retry_count,
            created_ms,
            attempts: 0,
            next_attempt_at: 0,
            lease_until: 0,
        };
        let mut out = Vec::new();
        if let Some(url) = self.config.post_hook(event.name) {
            out.push(item(
                url,
                self.config.method(),
                self.config.post_retry_count,
                event.params.clone(),
            ));
        }
        let body = event
            .params
            .iter()
            .find(|(k, _)| k == "Body")
            .map(|(_, v)| v.as_str());
        for hook in self
            .channel_hooks
            .iter()
            .filter(|h| h.receives(event.name, body))
        {
            let Some(url) = &hook.url else { continue };
            let mut params = vec![
                ("WebhookType".to_owned(), hook.kind.as_str().to_owned()),
                ("WebhookSid".to_owned(), hook.sid.to_string()),
            ];
            params.extend(event.params.iter().cloned());
            out.push(item(url, hook.method, hook.retry_count, params));
        }
        out
    }

    /// Whether the post-event `name` would be written (to build its parameters only then).
    pub fn fires_post(&self, name: &str) -> bool {
        self.firing.fires_post()
            && (self.config.post_hook(name).is_some()
                || self.channel_hooks.iter().any(|h| {
                    // A trigger's keywords are matched once the body is known.
                    h.receives(name, None)
                        || (h.kind == crate::model::ChannelWebhookType::Trigger
                            && name == "onMessageSent")
                }))
    }
}

/// Twilio's channel parameters: `ChannelSid` (when it exists), `ChannelType`,
/// `UniqueName`, `FriendlyName`, `Attributes`, `CreatedBy`, `DateCreated`, `DateUpdated`.
pub fn channel_params(event: &mut Event, channel: &Channel, with_sid: bool) {
    if with_sid {
        event.param("ChannelSid", channel.sid.as_str());
        event.param("DateCreated", crate::model::iso(&channel.date_created));
        event.param("DateUpdated", crate::model::iso(&channel.date_updated));
    }
    event
        .param("ChannelType", channel.channel_type.as_str())
        .param(
            "UniqueName",
            channel.unique_name.clone().unwrap_or_default(),
        )
        .param(
            "FriendlyName",
            channel.friendly_name.clone().unwrap_or_default(),
        )
        .param("Attributes", channel.attributes.as_str())
        .param("CreatedBy", channel.created_by.as_str());
}

/// Twilio's member parameters: `ChannelSid`, `Identity`, `RoleSid`, `Attributes`
/// and, once it exists, `MemberSid` and its dates.
pub fn member_params(event: &mut Event, member: &Member, with_sid: bool) {
    event
        .param("ChannelSid", member.channel_sid.as_str())
        .param("Identity", member.identity.as_str())
        .param("RoleSid", member.role_sid.as_str())
        .param("Attributes", member.attributes.as_str());
    if let Some(index) = member.last_consumed_message_index {
        event.param("LastConsumedMessageIndex", index.to_string());
    }
    if with_sid {
        event
            .param("MemberSid", member.sid.as_str())
            .param("DateCreated", crate::model::iso(&member.date_created))
            .param("DateUpdated", crate::model::iso(&member.date_updated));
    }
}

/// Twilio's message parameters: `ChannelSid`, `MessageSid`, `Index`, `Body`,
/// `Attributes`, `From`, dates; media messages add `MediaSid` and the media's
/// filename, type and size.
pub fn message_params(event: &mut Event, message: &Message) {
    event
        .param("ChannelSid", message.channel_sid.as_str())
        .param("MessageSid", message.sid.as_str())
        .param("Index", message.index.to_string())
        .param("Body", message.body.clone().unwrap_or_default())
        .param("Attributes", message.attributes.as_str())
        .param("From", message.from.as_str())
        .param("DateCreated", crate::model::iso(&message.date_created))
        .param("DateUpdated", crate::model::iso(&message.date_updated));
    if let Some(media) = &message.media {
        event.param("MediaSid", media.sid.as_str());
        if let Some(name) = &media.filename {
            event.param("MediaFilename", name.as_str());
        }
        event
            .param("MediaContentType", media.content_type.as_str())
            .param("MediaSize", media.size.to_string());
    }
}

/// Twilio's user parameters: `UserSid`, `Identity`, `RoleSid`, `FriendlyName`,
/// `Attributes`, dates.
pub fn user_params(event: &mut Event, user: &User) {
    event
        .param("UserSid", user.sid.as_str())
        .param("Identity", user.identity.as_str())
        .param("RoleSid", user.role_sid.as_str())
        .param(
            "FriendlyName",
            user.friendly_name.clone().unwrap_or_default(),
        )
        .param("Attributes", user.attributes.as_str())
        .param("DateCreated", crate::model::iso(&user.date_created))
        .param("DateUpdated", crate::model::iso(&user.date_updated));
}
