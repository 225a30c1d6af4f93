//! Fixed SIDs the sample events in `events/` refer to (see `scripts/make-events.py`);
//! `chat-media-local fixture` recreates them before each event is invoked.

use chat_media::filename::Filename;
use chat_media::model::{
    self, Channel, ChannelType, Media, MediaStatus, Member, Message, NewChannel, NewUpload, Role,
    Service, UploadSession,
};
use chat_media::sid::{MediaSid, RoleSid, ServiceSid};
use chat_media::store::{keys, AttributeValue};
use chat_media::{AppState, Identity};

/// A complete 1×1 PNG: the fixture's uploads, and the integration tests' image.
pub const PNG: &[u8] = b"\x89PNG\x0d\x0a\x1a\x0a\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0bIDATx\xdac\xf8\x0f\x04\x00\x09\xfb\x03\xfdh\xfa\x1c\xcc\x00\x00\x00\x00IEND\xaeB`\x82";

/// `XX` followed by `n` as 32 hex digits, like the event generator's placeholders.
pub fn placeholder(prefix: &str, n: u32) -> String {
    format!("{prefix}{n:032x}")
}

fn sid<T: std::str::FromStr>(prefix: &str, n: u32) -> T
where
    T::Err: std::fmt::Debug,
{
    placeholder(prefix, n)
        .parse()
        .expect("placeholder SIDs are valid")
}

fn identity(name: &str) -> Identity {
    Identity::parse(name).expect("fixture identities are valid")
}

/// A service with Twilio's default roles; `roles[1]` (channel admin) gets `admin_role`.
async fn service(
    state: &AppState,
    n: u32,
    admin_role: RoleSid,
    first_role: u32,
) -> anyhow::Result<(Service, Vec<Role>)> {
    let service_sid: ServiceSid = sid("IS", n);
    state.store.delete_service(&service_sid).await?;
    // Roles in Twilio's order; the channel admin role (the second) gets `admin_role`.
    let mut i = 0;
    let (service, roles) = Service::with_default_roles(
        service_sid,
        format!("events fixture {n}"),
        || {
            i += 1;
            if i == 2 {
                admin_role.clone()
            } else {
                sid("RL", first_role + i - 1)
            }
        },
        model::now(),
    );
    state.store.create_service(&service, &roles).await?;
    Ok((service, roles))
}

async fn drop_media(state: &AppState, sid: &MediaSid) -> anyhow::Result<()> {
    state
        .store
        .client()
        .delete_item()
        .table_name(state.store.table())
        .key(keys::PK, AttributeValue::S(sid.to_string()))
        .key(keys::SK, AttributeValue::S(keys::MEDIA.into()))
        .send()
        .await?;
    Ok(())
}

/// Recreates, dropping any earlier copy: service `IS…01` (channel admin role
/// `RL…01`), channel `CH…01` ("general") with members alice `MB…01`, bob `MB…02`
/// and agent `MB…03` (channel admin); alice's ready upload `ME…01` (a PNG);
/// alice's pending single-PUT upload `ME…02` (bytes in S3, never completed);
/// messages `IM…01` by alice and `IM…02` by bob; and service `IS…02` whose channel
/// role `RL…02` belongs elsewhere.
pub async fn create(state: &AppState) -> anyhow::Result<()> {
    service(state, 2, sid("RL", 2), 0x20).await?;
    let (service, roles) = service(state, 1, sid("RL", 1), 0x10).await?;
    let now = model::now();
    let mut channel = Channel::new(
        sid("CH", 1),
        service.sid.clone(),
        NewChannel {
            friendly_name: Some("General".into()),
            unique_name: Some("general".into()),
            attributes: "{}".into(),
            channel_type: ChannelType::Public,
            created_by: Identity::system(),
        },
        now,
    );
    state
        .store
        .create_channel(&channel)
        .await
        .map_err(|e| anyhow::anyhow!("fixture channel: {e:?}"))?;
    for (n, name, role) in [
        (1, "alice", &roles[0]),
        (2, "bob", &roles[0]),
        (3, "agent", &roles[1]),
    ] {
        let member = Member::new(
            sid("MB", n),
            &channel,
            identity(name),
            role.sid.clone(),
            "{}".into(),
            now,
        );
        state
            .store
            .add_member(&member, service.chat.limits)
            .await
            .map_err(|e| anyhow::anyhow!("fixture member {name}: {e:?}"))?;
    }

    let media_sid: MediaSid = sid("ME", 1);
    let object_key = Media::object_key_for(&service.sid, &media_sid);
    drop_media(state, &media_sid).await?;
    state
        .blob
        .put(&object_key, PNG.to_vec().into(), "image/png")
        .await?;
    let media = Media {
        status: MediaStatus::Ready,
        ..Media::new_upload(
            media_sid,
            service.sid.clone(),
            NewUpload {
                author: identity("alice"),
                content_type: "image/png".into(),
                filename: Filename::parse("photo.png")?,
                size: PNG.len() as u64,
                upload: None,
                holds_slot: false,
            },
            now.timestamp() + 24 * 3600,
            None,
            now,
        )
    };
    state.store.create_media(&media).await?;

    // ME…02: alice's single-PUT upload session, bytes already in S3, not completed.
    let pending_sid: MediaSid = sid("ME", 2);
    drop_media(state, &pending_sid).await?;
    let pending_key = Media::object_key_for(&service.sid, &pending_sid);
    state
        .blob
        .put(&pending_key, PNG.to_vec().into(), "image/png")
        .await?;
    let pending = Media {
        sid: pending_sid,
        status: MediaStatus::Uploading,
        object_key: pending_key,
        filename: Filename::parse("upload.png")?,
        upload: Some(UploadSession {
            multipart_upload_id: None,
            part_size: PNG.len() as u64,
            part_count: 1,
            declared_sha256: None,
        }),
        expires_at: Some(now.timestamp() + 3600),
        ..media
    };
    state.store.create_media(&pending).await?;

    for (n, from) in [(1, "alice"), (2, "bob")] {
        // Indexes are taken as create-message takes them (one atomic ADD).
        channel.next_message_index = state
            .store
            .take_message_index(&channel.sid)
            .await?
            .ok_or_else(|| anyhow::anyhow!("fixture channel vanished"))?;
        let message = Message::text(
            sid("IM", n),
            &channel,
            identity(from),
            format!("hello from {from}"),
            "{}".into(),
            now,
        );
        state
            .store
            .create_message(&channel, &message, None, None)
            .await
            .map_err(|e| anyhow::anyhow!("fixture message: {e:?}"))?;
    }
    Ok(())
}
