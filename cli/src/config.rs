//! Where the CLI finds its URL and credentials: flags, then the environment, then
//! a profile file of `KEY=value` lines (the format of `scripts/local.env`).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::Global;

pub struct Config {
    pub url: String,
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub api_key_sid: Option<String>,
    pub api_key_secret: Option<String>,
    /// A user token; when set, requests are that user's.
    pub token: Option<String>,
    pub service: Option<String>,
}

/// The profile file: `--profile` (a path, or a name under ~/.config/chat-media),
/// else `CHAT_MEDIA_PROFILE`, else `~/.config/chat-media/default.env` if present.
fn profile_path(flag: Option<&str>) -> Option<PathBuf> {
    let dir = || {
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .map(|d| d.join("chat-media"))
    };
    let named = flag.map(str::to_owned).or_else(|| {
        std::env::var("CHAT_MEDIA_PROFILE")
            .ok()
            .filter(|v| !v.is_empty())
    });
    match named {
        Some(p) if p.contains('/') || p.ends_with(".env") => Some(PathBuf::from(p)),
        Some(name) => dir().map(|d| d.join(format!("{name}.env"))),
        None => dir().map(|d| d.join("default.env")).filter(|p| p.exists()),
    }
}

fn read_profile(path: &PathBuf) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading profile {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

impl Config {
    pub fn load(g: &Global) -> Result<Self> {
        let profile = match profile_path(g.profile.as_deref()) {
            Some(p) => read_profile(&p)?,
            None => HashMap::new(),
        };
        let pick = |flag: &Option<String>, name: &str| -> Option<String> {
            flag.clone()
                .or_else(|| std::env::var(name).ok())
                .or_else(|| profile.get(name).cloned())
                .filter(|v| !v.trim().is_empty())
        };
        let url = pick(&g.url, "CHAT_MEDIA_URL")
            .context("no API URL: --url, CHAT_MEDIA_URL or a profile")?
            .trim_end_matches('/')
            .to_owned();
        let mut config = Config {
            url,
            account_sid: pick(&g.account_sid, "CHAT_MEDIA_ACCOUNT_SID"),
            auth_token: pick(&g.auth_token, "CHAT_MEDIA_AUTH_TOKEN"),
            api_key_sid: pick(&None, "CHAT_MEDIA_API_KEY_SID"),
            api_key_secret: pick(&None, "CHAT_MEDIA_API_KEY_SECRET"),
            token: pick(&g.token, "CHAT_MEDIA_TOKEN"),
            service: pick(&g.service, "CHAT_MEDIA_SERVICE_SID"),
        };
        if let Some(identity) = &g.as_identity {
            let Some(service) = config.service.clone() else {
                bail!("--as needs --service");
            };
            config.token = Some(config.mint_token(&service, identity, 3600)?);
        }
        Ok(config)
    }

    pub fn mint_token(&self, service: &str, identity: &str, ttl: i64) -> Result<String> {
        let (Some(account), Some(key), Some(secret)) = (
            self.account_sid.as_deref(),
            self.api_key_sid.as_deref(),
            self.api_key_secret.as_deref(),
        ) else {
            bail!("minting a token needs CHAT_MEDIA_ACCOUNT_SID, CHAT_MEDIA_API_KEY_SID and CHAT_MEDIA_API_KEY_SECRET");
        };
        let now = chrono::Utc::now().timestamp();
        Ok(crate::token::mint(
            account, key, secret, service, identity, now, ttl,
        ))
    }
}
