//! Fixed SIDs the sample events in `events/` refer to (see `scripts/make-events.py`);
//! `chat-media-local fixture` recreates them before each event is invoked.

use chat_media::model::{
    self, Channel, ChannelType, Media, MediaSettings, MediaStatus, Member, Message, Role, Service,
    UploadSession,
};
use chat_media::permission::{DefaultRoles, RoleType};
use chat_media::sid::{ChannelSid, MediaSid, MemberSid, MessageSid, RoleSid, ServiceSid};
use chat_media::store::{keys, AttributeValue};
use chat_media::{AppState, Identity};

/// A complete 1×1 PNG: the fixture's uploads, and the integration tests' image.
pub const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\
\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

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
    let now = model::now();
    let d = DefaultRoles::twilio();
    let specs = [
        ("channel user", RoleType::Channel, d.channel_user),
        ("channel admin", RoleType::Channel, d.channel_admin),
        ("service user", RoleType::Deployment, d.service_user),
        ("service admin", RoleType::Deployment, d.service_admin),
        ("blocked user", RoleType::Channel, d.blocked_user),
    ];
    let roles: Vec<Role> = specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, role_type, permissions))| Role {
            sid: if i == 1 {
                admin_role.clone()
            } else {
                sid("RL", first_role + i as u32)
            },
            service_sid: service_sid.clone(),
            friendly_name: name.into(),
            role_type,
            permissions,
            date_created: now,
            date_updated: now,
        })
        .collect();
    let service = Service {
        sid: service_sid,
        friendly_name: format!("events fixture {n}"),
        default_channel_role_sid: roles[0].sid.clone(),
        default_channel_creator_role_sid: roles[1].sid.clone(),
        default_service_role_sid: roles[2].sid.clone(),
        blocked_channel_role_sid: roles[4].sid.clone(),
        media: MediaSettings::default(),
        deleting: false,
        date_created: now,
        date_updated: now,
    };
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
    let mut channel = Channel {
        sid: sid::<ChannelSid>("CH", 1),
        service_sid: service.sid.clone(),
        friendly_name: Some("General".into()),
        unique_name: Some("general".into()),
        attributes: "{}".into(),
        channel_type: ChannelType::Public,
        created_by: Identity::system(),
        members_count: 0,
        messages_count: 0,
        next_message_index: 0,
        deleting: false,
        date_created: now,
        date_updated: now,
    };
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
        let member = Member {
            sid: sid::<MemberSid>("MB", n),
            service_sid: service.sid.clone(),
            channel_sid: channel.sid.clone(),
            identity: identity(name),
            role_sid: role.sid.clone(),
            role_before_block: None,
            attributes: "{}".into(),
            date_created: now,
            date_updated: now,
        };
        state
            .store
            .add_member(&member)
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
        sid: media_sid,
        service_sid: service.sid.clone(),
        author: identity("alice"),
        content_type: "image/png".into(),
        filename: Some("photo.png".into()),
        size: PNG.len() as u64,
        sha256: None,
        status: MediaStatus::Ready,
        status_reason: None,
        object_key,
        message_sid: None,
        channel_sid: None,
        date_created: now,
        date_upload_updated: now,
        date_updated: now,
        expires_at: Some(now.timestamp() + 24 * 3600),
        upload: None,
        finalizing_until: None,
        holds_slot: false,
        rejection_code: None,
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
        filename: Some("upload.png".into()),
        upload: Some(UploadSession {
            multipart_upload_id: None,
            part_size: PNG.len() as u64,
            part_count: 1,
        }),
        expires_at: Some(now.timestamp() + 3600),
        ..media
    };
    state.store.create_media(&pending).await?;

    for (n, from) in [(1, "alice"), (2, "bob")] {
        let message = Message {
            sid: sid::<MessageSid>("IM", n),
            service_sid: service.sid.clone(),
            channel_sid: channel.sid.clone(),
            index: channel.next_message_index,
            from: identity(from),
            body: Some(format!("hello from {from}")),
            attributes: "{}".into(),
            media: None,
            was_edited: false,
            date_created: now,
            date_updated: now,
        };
        state
            .store
            .create_message(&channel, &message, None, None)
            .await
            .map_err(|e| anyhow::anyhow!("fixture message: {e:?}"))?;
        channel.next_message_index += 1;
    }
    Ok(())
}
