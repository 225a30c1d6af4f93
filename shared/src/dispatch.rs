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
