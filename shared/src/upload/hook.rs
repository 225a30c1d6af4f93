//! `onMediaUpload`: Flex's client-side `beforeAttachFile`, on the server. Fired
//! once an upload has passed every check (size, type, sniffing, and the virus
//! scan when scanning), just before it becomes `ready`, on every path that gets
//! there (direct uploads, completed sessions, S3 events, rescans). The hook gets
//! a temporary `ContentUrl` to check the content itself; a refusal rejects the media.

use crate::config::AppState;
use crate::disposition::download_headers;
use crate::identity::SYSTEM;
use crate::model::{Media, Refusal};
use crate::webhook::{Firing, Proceed, Refused};

use super::FinalizeResult;

/// How long the hook's `ContentUrl` is valid.
const CONTENT_URL_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// `Ok(None)`: go ahead; `Ok(Some(refusal))`: the hook refused the media.
pub async fn on_media_upload(
    state: &AppState,
    media: &Media,
    sha256: &str,
    size: u64,
) -> FinalizeResult<Option<Refusal>> {
    const EVENT: &str = "onMediaUpload";
    let Some(service) = state.store.get_service(&media.service_sid).await? else {
        return Ok(None);
    };
    let hooks = &service.webhooks;
    let firing = if media.author.as_str() == SYSTEM {
        Firing::Rest {
            webhook_enabled: false,
        }
    } else {
        Firing::User
    };
    if hooks.pre_hook(EVENT).is_none() || !firing.fires_pre(hooks) {
        return Ok(None);
    }
    let headers = download_headers(
        &media.content_type,
        media.filename.as_ref(),
        media.sid.as_str(),
    );
    let content_url = state
        .blob
        .presign_get(&media.object_key, CONTENT_URL_TTL, &headers)
        .await?;
    let user = (firing == Firing::User).then_some(&media.author);
    let mut event = state.event(EVENT, &media.service_sid, user);
    event
        .param("MediaSid", media.sid.as_str())
        .param("Author", media.author.as_str())
        .param(
            "Filename",
            media
                .filename
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        )
        .param("ContentType", media.content_type.as_str())
        .param("Size", size.to_string())
        .param("Sha256", sha256)
        .param("ContentUrl", content_url);
    Ok(match state.pre_event(hooks, firing, &event).await {
        Ok(Proceed::NotFired | Proceed::Unchanged | Proceed::Modified(_) | Proceed::FailedOpen) => {
            None
        }
        Err(Refused::Vetoed { reason, status, .. }) => Some(Refusal::Hook {
            reason: reason.unwrap_or_else(|| format!("refused with status {status}")),
        }),
        Err(Refused::NoAnswer { .. } | Refused::InvalidModification { .. }) => {
            Some(Refusal::Hook {
                reason: "the webhook did not answer in time".into(),
            })
        }
    })
}
