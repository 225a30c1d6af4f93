//! `chat-media`: the command line client of the chat-media API.
//!
//! Credentials come from flags, else the environment (`CHAT_MEDIA_URL`,
//! `CHAT_MEDIA_ACCOUNT_SID`, `CHAT_MEDIA_AUTH_TOKEN`, `CHAT_MEDIA_API_KEY_SID`,
//! `CHAT_MEDIA_API_KEY_SECRET`, `CHAT_MEDIA_TOKEN`, `CHAT_MEDIA_SERVICE_SID`), else a
//! profile file of the same `KEY=value` lines (`--profile`, default
//! `~/.config/chat-media/default.env`), the format of `scripts/local.env`.

mod api;
mod config;
mod output;
mod token;
mod transfer;

use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::api::Api;
use crate::config::Config;

#[derive(Parser)]
#[command(
    name = "chat-media",
    version,
    about = "Client of the chat-media API (Twilio Chat v2 + Media compatible)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Clone)]
pub struct Global {
    /// API base URL, e.g. http://127.0.0.1:8787 [env: CHAT_MEDIA_URL]
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// Account SID for admin (Basic) auth [env: CHAT_MEDIA_ACCOUNT_SID]
    #[arg(long, global = true)]
    pub account_sid: Option<String>,
    /// Auth token for admin (Basic) auth [env: CHAT_MEDIA_AUTH_TOKEN]
    #[arg(long, global = true)]
    pub auth_token: Option<String>,
    /// A user's access token: act as that user instead of as admin [env: CHAT_MEDIA_TOKEN]
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Act as this identity: mints a token with the API key (needs --service)
    #[arg(long = "as", global = true, value_name = "IDENTITY")]
    pub as_identity: Option<String>,
    /// Service SID (IS…) [env: CHAT_MEDIA_SERVICE_SID]
    #[arg(long, short = 's', global = true)]
    pub service: Option<String>,
    /// Profile: a KEY=value file, or a name under ~/.config/chat-media/NAME.env [env: CHAT_MEDIA_PROFILE]
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Machine-readable JSON on stdout; no progress bars
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Upload a file as Media: direct below the direct limit, else an upload session
    /// with parallel parts; resumes an interrupted session of the same file
    Upload(transfer::UploadArgs),
    /// Download a media's content (through its temporary URL)
    Download(transfer::DownloadArgs),
    /// Send a message to a channel: a text body, or a file (upload + bind)
    Send(SendArgs),
    /// Services: list, get, create, update, delete
    Services(Crud),
    /// Channels of --service
    Channels(Crud),
    /// Members of a channel of --service (--channel)
    Members(Crud),
    /// Roles of --service
    Roles(Crud),
    /// Users of --service
    Users(Crud),
    /// Media of --service: get one
    Media {
        /// ME…
        media: String,
    },
    /// Block a member of a channel (moves them to the service's blocked role)
    Block(Moderate),
    /// Unblock a member of a channel (restores their role)
    Unblock(Moderate),
    /// Print a user access token (HS256, Twilio's format) signed with the API key
    Token {
        /// IS…
        #[arg(value_name = "SERVICE")]
        service_sid: String,
        identity: String,
        /// Lifetime in seconds
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions { shell: clap_complete::Shell },
}

#[derive(clap::Args)]
pub struct SendArgs {
    /// Channel SID or unique name
    pub channel: String,
    /// Text of the message
    #[arg(
        long,
        short = 'b',
        conflicts_with = "file",
        required_unless_present = "file"
    )]
    pub body: Option<String>,
    /// A file to upload and send as a media message
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Author (admin only; a user's messages are theirs)
    #[arg(long)]
    pub from: Option<String>,
    #[command(flatten)]
    pub upload: transfer::UploadOptions,
}

#[derive(clap::Args)]
pub struct Crud {
    /// Channel SID or unique name (members only)
    #[arg(long, short = 'c', global = true)]
    pub channel: Option<String>,
    #[command(subcommand)]
    pub action: CrudAction,
}

#[derive(Subcommand)]
pub enum CrudAction {
    /// Every item (follows next_page_url)
    List {
        /// Extra query parameters, KEY=VALUE
        #[arg(long = "param", short = 'p', value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// One item by SID (or unique name / identity where the API takes one)
    Get { id: String },
    /// Create, with Twilio's form parameters: -p FriendlyName=General -p UniqueName=general
    Create {
        #[arg(long = "param", short = 'p', value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// Update with Twilio's form parameters
    Update {
        id: String,
        #[arg(long = "param", short = 'p', value_parser = parse_kv)]
        params: Vec<(String, String)>,
    },
    /// Delete by SID
    Delete { id: String },
}

#[derive(clap::Args)]
pub struct Moderate {
    /// Channel SID (CH…)
    pub channel: String,
    /// Member SID or identity
    pub member: String,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn main() {
    let cli = Cli::parse();
    let json = cli.global.json;
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        output::fail(&e, json);
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "chat-media",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    let config = Config::load(&cli.global)?;
    if let Command::Token {
        service_sid: service,
        identity,
        ttl,
    } = &cli.command
    {
        let token = config.mint_token(service, identity, *ttl)?;
        if cli.global.json {
            output::print_json(&serde_json::json!({ "token": token }));
        } else {
            println!("{token}");
        }
        return Ok(());
    }
    let api = Api::new(config)?;
    let out = output::Out::new(&cli.global);
    match cli.command {
        Command::Upload(args) => transfer::upload_cmd(&api, &out, args).await,
        Command::Download(args) => transfer::download_cmd(&api, &out, args).await,
        Command::Send(args) => send(&api, &out, args).await,
        Command::Services(c) => crud(&api, &out, Kind::Services, c).await,
        Command::Channels(c) => crud(&api, &out, Kind::Channels, c).await,
        Command::Members(c) => crud(&api, &out, Kind::Members, c).await,
        Command::Roles(c) => crud(&api, &out, Kind::Roles, c).await,
        Command::Users(c) => crud(&api, &out, Kind::Users, c).await,
        Command::Media { media } => {
            let path = format!("/v1/Services/{}/Media/{media}", api.service()?);
            let v = api.get(&path).await?;
            out.item(&v);
            Ok(())
        }
        Command::Block(m) => moderate(&api, &out, "/block-user", m).await,
        Command::Unblock(m) => moderate(&api, &out, "/unblock-user", m).await,
        Command::Token { .. } | Command::Completions { .. } => unreachable!("handled above"),
    }
}

async fn send(api: &Api, out: &output::Out, args: SendArgs) -> Result<()> {
    let service = api.service()?;
    let mut form: Vec<(String, String)> = Vec::new();
    if let Some(from) = args.from {
        form.push(("From".into(), from));
    }
    match (args.body, args.file) {
        (Some(body), _) => form.push(("Body".into(), body)),
        (None, Some(file)) => {
            let media = transfer::upload(api, out, &file, &args.upload).await?;
            let sid = media["sid"].as_str().unwrap_or_default().to_owned();
            form.push(("MediaSid".into(), sid));
        }
        (None, None) => anyhow::bail!("--body or --file"),
    }
    let path = format!("/v2/Services/{service}/Channels/{}/Messages", args.channel);
    let message = api.post_form(&path, &form).await?;
    out.item(&message);
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Services,
    Channels,
    Members,
    Roles,
    Users,
}

impl Kind {
    /// The list's key in a Twilio page (`{"services": [...], "meta": {...}}`).
    fn key(self) -> &'static str {
        match self {
            Kind::Services => "services",
            Kind::Channels => "channels",
            Kind::Members => "members",
            Kind::Roles => "roles",
            Kind::Users => "users",
        }
    }

    fn collection(self, api: &Api, channel: Option<&str>) -> Result<String> {
        Ok(match self {
            Kind::Services => "/v2/Services".to_owned(),
            Kind::Members => {
                let channel =
                    channel.ok_or_else(|| anyhow::anyhow!("members need --channel CHANNEL"))?;
                format!("/v2/Services/{}/Channels/{channel}/Members", api.service()?)
            }
            Kind::Channels => format!("/v2/Services/{}/Channels", api.service()?),
            Kind::Roles => format!("/v2/Services/{}/Roles", api.service()?),
            Kind::Users => format!("/v2/Services/{}/Users", api.service()?),
        })
    }
}

async fn crud(api: &Api, out: &output::Out, kind: Kind, c: Crud) -> Result<()> {
    let base = kind.collection(api, c.channel.as_deref())?;
    match c.action {
        CrudAction::List { params } => {
            let items = api.list(&base, kind.key(), &params).await?;
            out.list(&items);
        }
        CrudAction::Get { id } => out.item(&api.get(&format!("{base}/{id}")).await?),
        CrudAction::Create { params } => out.item(&api.post_form(&base, &params).await?),
        CrudAction::Update { id, params } => {
            out.item(&api.post_form(&format!("{base}/{id}"), &params).await?)
        }
        CrudAction::Delete { id } => {
            api.delete(&format!("{base}/{id}")).await?;
            out.deleted(&id);
        }
    }
    Ok(())
}

async fn moderate(api: &Api, out: &output::Out, path: &str, m: Moderate) -> Result<()> {
    let form = vec![
        ("chatChannelSid".to_owned(), m.channel),
        ("memberSid".to_owned(), m.member),
    ];
    let answer = api.post_form(path, &form).await?;
    out.item(&answer);
    Ok(())
}
