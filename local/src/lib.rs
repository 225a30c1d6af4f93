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
/// Each response carries the DynamoDB calls its request made (tests assert call
/// budgets with it, the benchmark reports it). CORS is answered as the HTTP API's
/// CorsConfiguration in template.yaml does, for `CORS_ALLOWED_ORIGINS`.
pub fn app(state: AppState) -> Router {
    app_with_cors(state, &cors_allowed_origins_from_env())
}

/// Origins browsers may call from when `CORS_ALLOWED_ORIGINS` is not set: Twilio
/// Flex, and a plugin's local dev server.
pub const DEFAULT_CORS_ORIGINS: &[&str] = &["https://flex.twilio.com", "http://localhost:3000"];
/// Methods and request headers allowed cross-origin (template.yaml has the same).
pub const CORS_METHODS: &[&str] = &["GET", "POST", "DELETE", "OPTIONS"];
pub const CORS_HEADERS: &[&str] = &["authorization", "content-type", "x-twilio-token"];
/// How long a browser may cache a preflight answer.
pub const CORS_MAX_AGE_SECS: u64 = 600;

/// `CORS_ALLOWED_ORIGINS`: comma-separated origins, or `*`.
pub fn cors_allowed_origins_from_env() -> Vec<String> {
    match std::env::var("CORS_ALLOWED_ORIGINS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        _ => DEFAULT_CORS_ORIGINS
            .iter()
            .map(|o| (*o).to_owned())
            .collect(),
    }
}

/// The CORS rules: preflights are answered here (any path, as API Gateway does),
/// and responses to allowed origins carry `Access-Control-Allow-Origin`. No
/// credentials mode: callers authenticate with a token, never with cookies.
pub fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(
            CORS_METHODS
                .iter()
                .map(|m| m.parse::<http::Method>().expect("a method"))
                .collect::<Vec<_>>(),
        )
        .allow_headers(
            CORS_HEADERS
                .iter()
                .map(|h| http::HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .max_age(std::time::Duration::from_secs(CORS_MAX_AGE_SECS))
}

/// As [`app`], with explicit allowed origins.
pub fn app_with_cors(state: AppState, origins: &[String]) -> Router {
    let routes = Router::new()
        .merge(chat_api::routes())
        .merge(create_message::routes())
        .merge(delete_message::routes())
        .merge(get_media::routes())
        .merge(update_member::routes())
        .merge(upload_media::routes());
    chat_media::http::with_fallbacks(routes)
        .with_state(state)
        .layer(axum::middleware::from_fn(count_dynamodb_calls))
        .layer(cors_layer(origins))
}

async fn count_dynamodb_calls(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (mut response, calls) = chat_media::metrics::count_dynamodb_calls(next.run(req)).await;
    response.headers_mut().insert(
        chat_media::metrics::DYNAMODB_CALLS_HEADER,
        axum::http::HeaderValue::from(calls),
    );
    response
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
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move {
            let overrides = response_overrides(&req);
            let mut response = hyper::service::Service::call(&service, req).await?;
            if response.status().is_success() {
                for (name, value) in overrides {
                    response.headers_mut().insert(name, value);
                }
            }
            Ok::<_, s3s::HttpError>(response)
        }
    });
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

/// Runs the media-events sweep every `every` (what the schedule does in AWS), until
/// the task is dropped.
pub fn spawn_sweeper(state: AppState, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp();
            if let Err(e) = media_events::sweep(&state, now).await {
                tracing::warn!(error = %e, "sweep failed; next tick retries");
            }
        }
    })
}

/// The `response-content-type` and `response-content-disposition` overrides of a
/// signed GET, which S3 applies to its answer and s3s-fs 0.14 ignores. s3s checks
/// the signature (which covers them) before anything is returned.
fn response_overrides(
    req: &http::Request<hyper::body::Incoming>,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    if req.method() != http::Method::GET {
        return Vec::new();
    }
    let query = req.uri().query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .filter_map(|(k, v)| {
            let name = match k.as_ref() {
                "response-content-type" => http::header::CONTENT_TYPE,
                "response-content-disposition" => http::header::CONTENT_DISPOSITION,
                _ => return None,
            };
            Some((name, http::HeaderValue::from_str(&v).ok()?))
        })
        .collect()
}

/// Fixed SIDs the sample events in `events/` refer to (see `scripts/make-events.py`);
/// `chat-media-local fixture` recreates them before each event is invoked.
pub mod fixture {
    use chat_media::filename::Filename;
    use chat_media::model::{
        self, Channel, ChannelType, Media, MediaStatus, Member, Message, NewChannel, NewUpload,
        Role, Service, UploadSession,
    };
    use chat_media::sid::{MediaSid, MemberSid, RoleSid, ServiceSid};
    use chat_media::store::{keys, AttributeValue};
    use chat_media::{AppState, Identity};

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
        const PNG: &[u8] =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
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
            }),
            expires_at: Some(now.timestamp() + 3600),
            ..media
        };
        state.store.create_media(&pending).await?;

        for (n, from) in [(1, "alice"), (2, "bob")] {
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
            channel.next_message_index += 1;
        }
        Ok(())
    }
}
