//! `chat-media-local`: the local runner.
//!
//! - `serve` (default): every function on one port, with an embedded S3 server and
//!   the DynamoDB endpoint from `DYNAMODB_ENDPOINT`; creates table and bucket.
//! - `s3`: only the S3 server (the test script starts one for a whole test run).
//! - `token <ServiceSid> <identity> [ttl-seconds]`: prints a user access token.
//! - `fixture`: creates table, bucket and the fixed-SID records `events/` refer to,
//!   against `DYNAMODB_ENDPOINT` and `S3_ENDPOINT`.
//! - `secret <name>`: stores the credentials' secrets as the Secrets Manager secret
//!   `name` (at `AWS_ENDPOINT_URL_SECRETS_MANAGER`) and prints its ARN, the value of
//!   `CHAT_MEDIA_SECRET_ARN` for functions run in the Lambda runtime.
//! - `backfill-user-channels`: the one-time migration step for memberships written
//!   before `…/Users/{UserSid}/Channels` and `Limits.UserChannels` existed (their
//!   user pointers and counts), against `DYNAMODB_ENDPOINT` (or AWS) and
//!   `TABLE_NAME`; idempotent.
//! - `backfill-retention [ServiceSid]`: the one-time migration step for media bound
//!   before the retention index existed (`Media.RetentionDays` finds them after it);
//!   same environment; idempotent.
//! - `backfill-stored-bytes [ServiceSid]`: the one-time migration step that counts
//!   media stored before every upload was counted in its service's stored total
//!   (`Media.QuotaBytesPerService`); same environment; idempotent.

use std::path::PathBuf;

use anyhow::{bail, Context};
use chat_media::config::{AwsOptions, Settings};
use chat_media::sid::ServiceSid;
use chat_media::{AppState, Credentials, Identity};
use tokio::net::TcpListener;

/// A variable from the environment, else its `scripts/local.env` default, else "".
fn env(name: &str) -> String {
    chat_media_local::local_lookup(name).unwrap_or_default()
}

fn port(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().with_context(|| format!("{name} must be a port")),
        _ => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    chat_media::telemetry::init();
    let credentials = Credentials::from_lookup(chat_media_local::local_lookup)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        None | Some("serve") => runtime.block_on(serve(credentials)),
        Some("s3") => runtime.block_on(s3_only()),
        Some("fixture") => runtime.block_on(fixture(credentials)),
        Some("token") => {
            let (Some(service), Some(identity)) = (args.get(1), args.get(2)) else {
                bail!("usage: chat-media-local token <ServiceSid> <identity> [ttl-seconds]");
            };
            let service = ServiceSid::parse(service)?;
            let identity = Identity::parse(identity).map_err(anyhow::Error::msg)?;
            let ttl: i64 = args.get(3).map(|t| t.parse()).transpose()?.unwrap_or(3600);
            let now = chrono::Utc::now().timestamp();
            println!("{}", credentials.mint_token(&service, &identity, now, ttl));
            Ok(())
        }
        Some("secret") => {
            let Some(name) = args.get(1) else {
                bail!("usage: chat-media-local secret <name>");
            };
            let arn = runtime.block_on(put_secret(&credentials, name))?;
            println!("{arn}");
            Ok(())
        }
        Some("backfill-user-channels") => runtime.block_on(backfill_user_channels()),
        Some(step @ ("backfill-retention" | "backfill-stored-bytes")) => {
            let service = args.get(1).map(|s| ServiceSid::parse(s)).transpose()?;
            runtime.block_on(backfill_media(step, service.as_ref()))
        }
        Some(other) => bail!(
            "unknown command {other:?} (serve, s3, token, fixture, secret, \
             backfill-user-channels, backfill-retention, backfill-stored-bytes)"
        ),
    }
}

/// Creates or updates the secret `name` with the values a deployment keeps out of
/// its environment; returns its ARN.
async fn put_secret(credentials: &Credentials, name: &str) -> anyhow::Result<String> {
    let aws = AwsOptions {
        region: Some(env("AWS_REGION")),
        static_credentials: Some((env("S3_ACCESS_KEY"), env("S3_SECRET_KEY"))),
        ..AwsOptions::default()
    };
    let client = aws_sdk_secretsmanager::Client::new(&aws.sdk_config().await);
    let value = serde_json::json!({
        "CHAT_MEDIA_AUTH_TOKEN": credentials.auth_token,
        "CHAT_MEDIA_API_KEY_SECRET": credentials.api_key_secret,
    })
    .to_string();
    let created = client
        .create_secret()
        .name(name)
        .secret_string(&value)
        .send()
        .await;
    let arn = match created {
        Ok(out) => out.arn().map(str::to_owned),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            let out = client
                .put_secret_value()
                .secret_id(name)
                .secret_string(&value)
                .send()
                .await
                .context("updating the secret")?;
            out.arn().map(str::to_owned)
        }
        Err(e) => {
            return Err(anyhow::anyhow!(
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string()
            ))
        }
    };
    arn.context("Secrets Manager returned no ARN")
}

fn data_dir() -> PathBuf {
    PathBuf::from(env("DATA_DIR")).join("s3")
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

async fn s3_only() -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port("S3_PORT", 9000)?)).await?;
    let (addr, _task) = chat_media_local::spawn_s3(
        listener,
        &data_dir(),
        &env("S3_ACCESS_KEY"),
        &env("S3_SECRET_KEY"),
    )?;
    println!("READY s3 http://{addr}");
    shutdown_signal().await;
    Ok(())
}

/// State against local DynamoDB and S3 endpoints, with table and bucket in place.
async fn local_state(
    credentials: Credentials,
    dynamodb: String,
    s3: String,
    settings: Settings,
) -> anyhow::Result<AppState> {
    let aws = AwsOptions {
        region: Some(env("AWS_REGION")),
        dynamodb_endpoint: Some(dynamodb),
        s3_endpoint: Some(s3),
        static_credentials: Some((env("S3_ACCESS_KEY"), env("S3_SECRET_KEY"))),
    };
    let sdk = aws.sdk_config().await;
    let state = AppState::new(
        &sdk,
        &aws,
        &env("TABLE_NAME"),
        &env("BUCKET_NAME"),
        credentials,
        settings,
    );
    state
        .store
        .ensure_table()
        .await
        .context("creating the DynamoDB table")?;
    state
        .blob
        .ensure_bucket()
        .await
        .context("creating the S3 bucket")?;
    Ok(state)
}

fn dynamodb_endpoint() -> anyhow::Result<String> {
    std::env::var("DYNAMODB_ENDPOINT")
        .context("DYNAMODB_ENDPOINT must point at the local DynamoDB (scripts/dev sets it)")
}

/// The store the migration steps run against: `TABLE_NAME`, at `DYNAMODB_ENDPOINT`
/// when set (locally), else AWS's DynamoDB of `AWS_REGION`.
async fn migration_store() -> chat_media::store::Store {
    let aws = AwsOptions::from_env();
    let mut config = aws_sdk_dynamodb::config::Builder::from(&aws.sdk_config().await);
    if let Some(endpoint) = &aws.dynamodb_endpoint {
        config = config.endpoint_url(endpoint);
    }
    chat_media::store::Store::new(
        aws_sdk_dynamodb::Client::from_conf(config.build()),
        env("TABLE_NAME"),
    )
}

async fn backfill_user_channels() -> anyhow::Result<()> {
    let store = migration_store().await;
    let (seen, added) = store.backfill_user_channels().await?;
    println!("backfill-user-channels: {seen} memberships seen, {added} pointers added");
    Ok(())
}

/// The migration steps for media from before issue 17's indexes and counts, on
/// the whole table or one service; each prints what it found and what it wrote.
async fn backfill_media(step: &str, service: Option<&ServiceSid>) -> anyhow::Result<()> {
    let store = migration_store().await;
    let (done, found, wrote) = match step {
        "backfill-retention" => (
            store.backfill_retention_index(service).await?,
            "bound media without the retention index seen",
            "indexed",
        ),
        _ => (
            store.backfill_stored_bytes(service).await?,
            "uncounted media seen",
            "counted in their service's stored total",
        ),
    };
    println!("{step}: {} {found}, {} {wrote}", done.seen, done.written);
    if done.written < done.seen {
        println!("{step}: the others changed meanwhile; run it again until it finds none");
    }
    Ok(())
}

async fn fixture(credentials: Credentials) -> anyhow::Result<()> {
    let s3 = std::env::var("S3_ENDPOINT").context("S3_ENDPOINT must point at the local S3")?;
    let state = local_state(credentials, dynamodb_endpoint()?, s3, Settings::from_env()?).await?;
    chat_media_local::fixture::create(&state).await?;
    println!(
        "fixture ready: service {}",
        chat_media_local::fixture::placeholder("IS", 1)
    );
    Ok(())
}

async fn serve(credentials: Credentials) -> anyhow::Result<()> {
    let dynamodb = dynamodb_endpoint()?;
    let app_port = port("PORT", 8787)?;
    let s3_listener = TcpListener::bind(("127.0.0.1", port("S3_PORT", app_port + 1)?)).await?;
    let (s3_addr, _s3) = chat_media_local::spawn_s3(
        s3_listener,
        &data_dir(),
        &env("S3_ACCESS_KEY"),
        &env("S3_SECRET_KEY"),
    )?;
    let mut settings = Settings::from_env()?;
    if settings.base_url.is_empty() {
        settings.base_url = format!("http://127.0.0.1:{app_port}");
    }
    let state = local_state(credentials, dynamodb, format!("http://{s3_addr}"), settings).await?;
    let state = match chat_media::config::scanner_from_env()? {
        Some(scanner) => state.with_scanner(scanner),
        None => state,
    };
    let listener = TcpListener::bind(("127.0.0.1", app_port)).await?;
    let addr = listener.local_addr()?;
    let clamd = state.scanner.as_ref().map(|s| s.address().to_string());
    tracing::info!(s3 = %s3_addr, table = state.store.table(), bucket = state.blob.bucket(), clamd = ?clamd, "local stack ready");
    let sweep_every = std::time::Duration::from_secs(
        std::env::var("SWEEP_INTERVAL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|s: &u64| *s > 0)
            .unwrap_or(60),
    );
    let _sweeper = chat_media_local::spawn_sweeper(state.clone(), sweep_every);
    // Post-event webhooks: the outbox is read every second.
    let _dispatcher =
        chat_media_local::spawn_dispatcher(state.clone(), std::time::Duration::from_secs(1));
    println!("READY http://{addr}");
    axum::serve(listener, chat_media_local::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
