//! The local runner's parts, shared with the integration tests: every function's
//! routes on one router (the same paths as template.yaml), and an S3 server (s3s-fs)
//! that checks SigV4 signatures and URL expiry like AWS.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use chat_media::AppState;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;

/// Every function's routes merged, with the shared fallbacks, ready to serve.
pub fn app(state: AppState) -> Router {
    let routes = Router::new().merge(chat_api::routes());
    chat_media::http::with_fallbacks(routes).with_state(state)
}

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve_app(listener: TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

/// Starts an S3 server on `listener` storing objects under `root`; every request
/// must be signed with `access_key`/`secret_key`.
pub fn spawn_s3(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    std::fs::create_dir_all(root)?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        access_key.to_owned(),
        secret_key.to_owned(),
    ));
    let service = builder.build();
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok((addr, handle))
}

/// Fixed SIDs the sample events in `events/` refer to; `fixture` creates them.
pub mod fixture {
    use chat_media::model::{self, Channel, ChannelType, MediaSettings, Member, Role, Service};
    use chat_media::permission::{DefaultRoles, RoleType};
    use chat_media::sid::{ChannelSid, MemberSid, RoleSid, ServiceSid};
    use chat_media::{AppState, Identity};

    pub const SERVICE: &str = "IS00000000000000000000000000000e01";
    pub const CHANNEL: &str = "CH00000000000000000000000000000e01";
    pub const CHANNEL_NAME: &str = "general";
    pub const MEMBER: &str = "MB00000000000000000000000000000e01";
    pub const MEMBER_IDENTITY: &str = "alice";
    /// channel user, channel admin, service user, service admin, blocked user.
    pub const ROLES: [&str; 5] = [
        "RL00000000000000000000000000000e01",
        "RL00000000000000000000000000000e02",
        "RL00000000000000000000000000000e03",
        "RL00000000000000000000000000000e04",
        "RL00000000000000000000000000000e05",
    ];

    fn sid<T: std::str::FromStr>(s: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        s.parse().expect("fixed fixture SIDs are valid")
    }

    /// Recreates the fixture service (with its default roles), the channel
    /// `general` and its member `alice` with fixed SIDs, dropping any earlier copy.
    pub async fn create(state: &AppState) -> anyhow::Result<()> {
        let service_sid: ServiceSid = sid(SERVICE);
        state.store.delete_service(&service_sid).await?;
        let now = model::now();
        let defaults = DefaultRoles::twilio();
        let specs = [
            ("channel user", RoleType::Channel, defaults.channel_user),
            ("channel admin", RoleType::Channel, defaults.channel_admin),
            ("service user", RoleType::Deployment, defaults.service_user),
            (
                "service admin",
                RoleType::Deployment,
                defaults.service_admin,
            ),
            ("blocked user", RoleType::Channel, defaults.blocked_user),
        ];
        let roles: Vec<Role> = specs
            .into_iter()
            .zip(ROLES)
            .map(|((name, role_type, permissions), role_sid)| Role {
                sid: sid::<RoleSid>(role_sid),
                service_sid: service_sid.clone(),
                friendly_name: name.into(),
                role_type,
                permissions,
                date_created: now,
                date_updated: now,
            })
            .collect();
        let service = Service {
            sid: service_sid.clone(),
            friendly_name: "events fixture".into(),
            default_channel_role_sid: roles[0].sid.clone(),
            default_channel_creator_role_sid: roles[1].sid.clone(),
            default_service_role_sid: roles[2].sid.clone(),
            blocked_channel_role_sid: roles[4].sid.clone(),
            media: MediaSettings::default(),
            date_created: now,
            date_updated: now,
        };
        state.store.create_service(&service, &roles).await?;
        let channel = Channel {
            sid: sid::<ChannelSid>(CHANNEL),
            service_sid: service_sid.clone(),
            friendly_name: Some("General".into()),
            unique_name: Some(CHANNEL_NAME.into()),
            attributes: "{}".into(),
            channel_type: ChannelType::Public,
            created_by: Identity::system(),
            members_count: 0,
            messages_count: 0,
            next_message_index: 0,
            date_created: now,
            date_updated: now,
        };
        state
            .store
            .create_channel(&channel)
            .await
            .map_err(|e| anyhow::anyhow!("fixture channel: {e:?}"))?;
        let member = Member {
            sid: sid::<MemberSid>(MEMBER),
            service_sid,
            channel_sid: channel.sid.clone(),
            identity: Identity::parse(MEMBER_IDENTITY).map_err(anyhow::Error::msg)?,
            role_sid: roles[0].sid.clone(),
            role_before_block: None,
            attributes: "{}".into(),
            date_created: now,
            date_updated: now,
        };
        state
            .store
            .add_member(&member)
            .await
            .map_err(|e| anyhow::anyhow!("fixture member: {e:?}"))?;
        Ok(())
    }
}
