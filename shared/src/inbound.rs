//! The work behind Twilio's inbound messaging webhook and uploads by URL.
//!
//! The webhook only records an [`InboundJob`] (idempotent by `MessageSid`) and
//! answers; the job is then run here, by a task of the local runner or, as
//! deployed, by media-events invoked from the table's stream, and resumed by the
//! sweep when a run dies (its lease runs out). A run:
//!
//! 1. finds the channel: `ChannelSid` of the webhook URL (SID or unique name), or
//!    the channel whose unique name is `From`, created on first contact with
//!    `From` as a member in the service's default channel role;
//! 2. posts the text (`Body`) as a message from `From`;
//! 3. for each media in order: fetches it into a media record
//!    ([`upload::ingest_url`]: allowed hosts, address checks, size limit, then
//!    the checks and scan of every upload) and posts it as a media message, or,
//!    if it was refused or could not be fetched, a text message saying so;
//! 4. ends `done`, or `failed` with a reason (the channel is gone).
//!
//! Message and media SIDs derive from the job, so a repeated run finds what an
//! earlier one made and makes nothing twice; progress is saved after each
//! message under the run's lease.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::config::{AppState, InboundDispatch};
use crate::identity::Identity;
use crate::model::{
    self, Channel, ChannelType, InboundJob, InboundKind, InboundMedia, InboundStatus, Media,
    MediaOutcome, MediaStatus, Member, Message, NewChannel, Refusal,
};
use crate::sid::{ChannelSid, MemberSid, MessageSid, ServiceSid};
use crate::store::{AddMemberError, CreateChannelError, CreateMessageError, StoreError};
use crate::upload::{self, FinalizeError, Outcome};

/// A run's lease on its job (seconds): ten media fetched with retries, and room.
pub const JOB_LEASE_SECS: i64 = 900;
/// After a run stopped on a passing failure, when the sweep may try again.
const RETRY_AFTER_SECS: i64 = 60;
/// Jobs the sweep resumes per invocation.
const RESUME_BATCH: i32 = 20;

fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// Why a run stopped before the end.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// A dependency failed; the job stays pending for the sweep.
    #[error("{0}")]
    Retry(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FinalizeError> for InboundError {
    fn from(e: FinalizeError) -> Self {
        match e {
            FinalizeError::Store(s) => InboundError::Store(s),
            other => InboundError::Retry(other.to_string()),
        }
    }
}

/// How a step ended when it did not succeed.
enum Step {
    /// The job cannot be done (the channel is gone): `failed` with this reason.
    Fail(String),
    /// Try again later.
    Retry(InboundError),
    /// Another run holds the job now.
    LeaseLost,
}

impl From<StoreError> for Step {
    fn from(e: StoreError) -> Self {
        Step::Retry(e.into())
    }
}

impl From<FinalizeError> for Step {
    fn from(e: FinalizeError) -> Self {
        Step::Retry(e.into())
    }
}

/// Hands a recorded job to its worker: a task of this process, or nobody when
/// the table's stream delivers it ([`InboundDispatch::Stream`]).
pub fn dispatch(state: &AppState, service: &ServiceSid, key: &str) {
    if state.settings.inbound_dispatch != InboundDispatch::InProcess {
        return;
    }
    let (state, service, key) = (state.clone(), service.clone(), key.to_owned());
    tokio::spawn(async move {
        if let Err(e) = process(&state, &service, &key, unix_now()).await {
            tracing::warn!(service = %service, job = %key, error = %e, "inbound job stopped; the sweep resumes it");
        }
    });
}

/// Runs the job if it is pending and nobody holds it; `None` when there was
/// nothing to do. Transient failures leave it pending for the sweep.
pub async fn process(
    state: &AppState,
    service: &ServiceSid,
    key: &str,
    now: i64,
) -> Result<Option<InboundJob>, InboundError> {
    let lease = now + JOB_LEASE_SECS;
    let Some(mut job) = state.store.claim_inbound(service, key, now, lease).await? else {
        return Ok(None);
    };
    tracing::info!(service = %service, job = %key, attempt = job.attempts, "inbound job started");
    let result = match job.kind {
        InboundKind::Webhook => run_webhook(state, &mut job, lease).await,
        InboundKind::Url => run_url(state, &mut job).await,
    };
    job.date_updated = model::now();
    match result {
        Ok(()) => job.status = InboundStatus::Done,
        Err(Step::Fail(reason)) => {
            job.status = InboundStatus::Failed;
            job.status_reason = Some(reason);
        }
        Err(Step::LeaseLost) => return Ok(None),
        Err(Step::Retry(e)) => {
            // Still pending; the reason says what it waits for.
            job.status_reason = Some(format!("will retry: {e}"));
            job.working_until = unix_now() + RETRY_AFTER_SECS;
            state.store.save_inbound(&job, lease).await?;
            return Err(e);
        }
    }
    job.working_until = 0;
    if job.status == InboundStatus::Done {
        job.status_reason = None;
    }
    state.store.save_inbound(&job, lease).await?;
    tracing::info!(service = %service, job = %key, status = job.status.as_str(), messages = job.messages.len(), "inbound job ended");
    Ok(Some(job))
}

/// The sweep's part: runs pending jobs whose run died or stopped. Returns how
/// many ended.
pub async fn resume(state: &AppState, now: i64) -> Result<usize, InboundError> {
    let mut ended = 0;
    for (service, key) in state.store.claimable_inbound(now, RESUME_BATCH).await? {
        match process(state, &service, &key, now).await {
            Ok(Some(_)) => ended += 1,
            Ok(None) => {}
            Err(e) => {
                // A dependency is failing (jobs' own failures end them as `failed`):
                // stop here rather than wait out its timeout once per job, and
                // let the next sweep resume the rest.
                tracing::warn!(service = %service, job = %key, error = %e, "resumed inbound job stopped again");
                return Err(e);
            }
        }
    }
    Ok(ended)
}

/// The account's own credentials: Twilio requires them for its media URLs. The
/// fetcher sends them to the first host only.
fn media_credentials(state: &AppState) -> (&str, &str) {
    (
        state.credentials.account_sid.as_str(),
        state.credentials.auth_token.as_str(),
    )
}

async fn run_url(state: &AppState, job: &mut InboundJob) -> Result<(), Step> {
    for i in 0..job.media.len() {
        let m = job.media[i].clone();
        let (outcome, _, reason) = ingest(state, job, &m).await?;
        job.media[i].outcome = Some(outcome);
        job.media[i].reason = reason;
    }
    Ok(())
}

/// Records media `m` as `uploading` (by the sender, with the declared type)
/// unless an earlier run did.
async fn ensure_media(state: &AppState, job: &InboundJob, m: &InboundMedia) -> Result<(), Step> {
    if state.store.get_media(&m.media_sid).await?.is_some() {
        return Ok(());
    }
    let now = unix_now();
    let media = upload::fetched_upload(
        m.media_sid.clone(),
        job.service_sid.clone(),
        job.from.clone(),
        m.content_type.as_deref(),
        None,
        now + state.settings.upload_session_ttl.as_secs() as i64,
        now,
    );
    match state.store.create_media(&media).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Fetches one media (or finds how an earlier run left it).
async fn ingest(
    state: &AppState,
    job: &InboundJob,
    m: &InboundMedia,
) -> Result<(MediaOutcome, Option<Media>, Option<String>), Step> {
    ensure_media(state, job, m).await?;
    let basic = media_credentials(state);
    match upload::ingest_url(state, &m.media_sid, &m.url, Some(basic), unix_now()).await {
        Ok(Outcome::Finished(media)) if media.status == MediaStatus::Ready => {
            Ok((MediaOutcome::Ready, Some(media), None))
        }
        Ok(Outcome::Refused(media)) => match media.refusal() {
            // The scanner is out: the media is kept and rescanned; come back later.
            Some(Refusal::ScanFailed { .. }) => Err(Step::Retry(InboundError::Retry(
                "the virus scanner is unavailable".into(),
            ))),
            _ => {
                let outcome = match media.status {
                    MediaStatus::Failed => MediaOutcome::Failed,
                    _ => MediaOutcome::Refused,
                };
                Ok((outcome, None, media.status_reason.clone()))
            }
        },
        Ok(other) => Err(Step::Retry(InboundError::Retry(format!(
            "media {} is still being checked ({:?})",
            m.media_sid,
            match other {
                Outcome::InProgress(m) | Outcome::Finished(m) | Outcome::Refused(m) => m.status,
            }
        )))),
        Err(e) => Err(e.into()),
    }
}

async fn run_webhook(state: &AppState, job: &mut InboundJob, lease: i64) -> Result<(), Step> {
    let channel = resolve_channel(state, job).await?;
    job.channel_sid = Some(channel.sid.clone());
    if let Some(body) = job.body.clone().filter(|b| !b.trim().is_empty()) {
        let sid = job.message_sid_for("body");
        let attributes = json!({ "inbound_message_sid": job.key, "part": "body" });
        post(
            state,
            job,
            &channel.sid,
            &sid,
            Posted::Text(body),
            attributes,
        )
        .await?;
        remember(job, sid);
        save(state, job, lease).await?;
    }
    for i in 0..job.media.len() {
        let m = job.media[i].clone();
        let (outcome, media, reason) = ingest(state, job, &m).await?;
        let sid = job.message_sid_for(&format!("media-{}", m.index));
        let mut attributes = json!({
            "inbound_message_sid": job.key,
            "part": "media",
            "media_index": m.index,
            "media_status": outcome,
            "media_content_type": m.content_type,
        });
        let posted = match media {
            Some(media) => Posted::Media(Box::new(media)),
            None => {
                let why = reason.clone().unwrap_or_else(|| "unknown reason".into());
                attributes["media_reason"] = json!(why);
                Posted::Text(format!(
                    "A media ({}) could not be delivered: {why}",
                    m.content_type.as_deref().unwrap_or("unknown type")
                ))
            }
        };
        post(state, job, &channel.sid, &sid, posted, attributes).await?;
        job.media[i].outcome = Some(outcome);
        job.media[i].reason = reason;
        remember(job, sid);
        save(state, job, lease).await?;
    }
    Ok(())
}

fn remember(job: &mut InboundJob, sid: MessageSid) {
    if !job.messages.contains(&sid) {
        job.messages.push(sid);
    }
}

async fn save(state: &AppState, job: &mut InboundJob, lease: i64) -> Result<(), Step> {
    job.date_updated = model::now();
    if state.store.save_inbound(job, lease).await? {
        Ok(())
    } else {
        Err(Step::LeaseLost)
    }
}

/// The channel of the job, created for `From` on first contact.
async fn resolve_channel(state: &AppState, job: &InboundJob) -> Result<Channel, Step> {
    let service_sid = &job.service_sid;
    let Some(service) = state.store.get_service(service_sid).await? else {
        return Err(Step::Fail("the service no longer exists".into()));
    };
    if let Some(named) = &job.channel {
        let sid = match ChannelSid::parse(named) {
            Ok(sid) => Some(sid),
            Err(_) => {
                state
                    .store
                    .channel_sid_by_unique_name(service_sid, named)
                    .await?
            }
        };
        let channel = match sid {
            Some(sid) => state.store.get_channel(service_sid, &sid).await?,
            None => None,
        };
        return channel
            .filter(|c| !c.deleting)
            .ok_or_else(|| Step::Fail(format!("channel {named} not found")));
    }
    let name = job.from.as_str();
    for _ in 0..3 {
        if let Some(channel) = state
            .store
            .get_channel_by_unique_name(service_sid, name)
            .await?
        {
            if channel.deleting {
                return Err(Step::Fail(format!("channel {name} is being deleted")));
            }
            ensure_member(
                state,
                &channel,
                &job.from,
                &service.default_channel_role_sid,
                service.chat.limits,
            )
            .await?;
            return Ok(channel);
        }
        let channel = Channel::new(
            ChannelSid::generate(),
            service_sid.clone(),
            NewChannel {
                friendly_name: Some(job.profile_name.clone().unwrap_or_else(|| name.to_owned())),
                unique_name: Some(name.to_owned()),
                attributes: json!({ "inbound": { "from": name, "to": job.to } }).to_string(),
                channel_type: ChannelType::Private,
                created_by: Identity::system(),
            },
            model::now(),
        );
        match state.store.create_channel(&channel).await {
            Ok(()) => {
                tracing::info!(channel = %channel.sid, from = name, "channel created for a new sender");
                ensure_member(
                    state,
                    &channel,
                    &job.from,
                    &service.default_channel_role_sid,
                    service.chat.limits,
                )
                .await?;
                return Ok(channel);
            }
            // Another run created it first: read it.
            Err(CreateChannelError::UniqueNameTaken) => continue,
            Err(CreateChannelError::ServiceGone) => {
                return Err(Step::Fail("the service is being deleted".into()))
            }
            Err(CreateChannelError::Store(e)) => return Err(e.into()),
        }
    }
    Err(Step::Retry(InboundError::Retry(format!(
        "channel {name} could not be created"
    ))))
}

async fn ensure_member(
    state: &AppState,
    channel: &Channel,
    identity: &Identity,
    role: &crate::sid::RoleSid,
    limits: crate::model::ServiceLimits,
) -> Result<(), Step> {
    if state
        .store
        .get_member(&channel.sid, identity)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let member = Member::new(
        MemberSid::generate(),
        channel,
        identity.clone(),
        role.clone(),
        "{}".into(),
        model::now(),
    );
    match state.store.add_member(&member, limits).await {
        Ok(()) | Err(AddMemberError::AlreadyMember) => Ok(()),
        Err(AddMemberError::ChannelGone | AddMemberError::ChannelDeleting) => {
            Err(Step::Fail("the channel was deleted".into()))
        }
        Err(AddMemberError::ChannelFull(max)) => Err(Step::Fail(format!(
            "the channel has {max} members, the service's Limits.ChannelMembers"
        ))),
        Err(AddMemberError::UserChannelsFull(max)) => Err(Step::Fail(format!(
            "the sender is in {max} channels, the service's Limits.UserChannels"
        ))),
        Err(AddMemberError::Store(e)) => Err(e.into()),
    }
}

enum Posted {
    Text(String),
    Media(Box<Media>),
}

/// Posts message `sid` from the job's sender unless an earlier run did; the
/// same transaction as any send (next index, media binding).
async fn post(
    state: &AppState,
    job: &InboundJob,
    channel_sid: &ChannelSid,
    sid: &MessageSid,
    posted: Posted,
    attributes: serde_json::Value,
) -> Result<(), Step> {
    let media_sid = match &posted {
        Posted::Media(m) => Some(m.sid.clone()),
        Posted::Text(_) => None,
    };
    for attempt in 0u32..60 {
        if state.store.get_message(channel_sid, sid).await?.is_some() {
            return Ok(());
        }
        let ctx = state
            .store
            .load_send_context(&job.service_sid, channel_sid, None, media_sid.as_ref())
            .await?;
        let Some(service) = ctx.service else {
            return Err(Step::Fail("the service no longer exists".into()));
        };
        let Some(mut channel) = ctx.channel.filter(|c| !c.deleting) else {
            return Err(Step::Fail("the channel was deleted".into()));
        };
        // The index is taken with one atomic ADD, as create-message does; one
        // taken by an attempt that then fails is skipped, never reused.
        channel.next_message_index = match state.store.take_message_index(channel_sid).await? {
            Some(index) => index,
            None => return Err(Step::Fail("the channel was deleted".into())),
        };
        let (message, media) = match &posted {
            Posted::Text(body) => (
                Message::text(
                    sid.clone(),
                    &channel,
                    job.from.clone(),
                    body.clone(),
                    attributes.to_string(),
                    model::now(),
                ),
                None,
            ),
            Posted::Media(_) => {
                let Some(media) = ctx.media else {
                    return Err(Step::Fail(
                        "a media was deleted before it was posted".into(),
                    ));
                };
                let message = Message::media(
                    sid.clone(),
                    &channel,
                    job.from.clone(),
                    service.media.compatibility_message.clone(),
                    &media,
                    attributes.to_string(),
                    model::now(),
                );
                (message, Some(media))
            }
        };
        match state
            .store
            .create_message(&channel, &message, media.as_ref(), None)
            .await
        {
            Ok(()) => return Ok(()),
            Err(CreateMessageError::IndexTaken | CreateMessageError::ChannelMoved(_)) => {
                let ms = 5u64 << attempt.min(6);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(CreateMessageError::SenderChanged) => {}
            Err(CreateMessageError::MediaUnavailable) => {
                // Bound by an earlier run's message (found above next time), or gone.
                if state.store.get_message(channel_sid, sid).await?.is_some() {
                    return Ok(());
                }
                return Err(Step::Fail(
                    "a media could not be bound to its message".into(),
                ));
            }
            Err(CreateMessageError::Store(e)) => return Err(e.into()),
        }
    }
    Err(Step::Retry(InboundError::Retry(
        "the channel is too busy".into(),
    )))
}
