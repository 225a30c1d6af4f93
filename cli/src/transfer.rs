//! Uploads (direct below the direct limit, else an upload session whose parts go
//! in parallel, with retries, and resume from a state file) and downloads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::api::{check, encode_form, json_of, Api, ApiError};
use crate::output::Out;

/// The server's direct-upload ceiling (`DIRECT_UPLOAD_MAX_BYTES`, 4 MiB).
const DIRECT_MAX: u64 = 4 * 1024 * 1024;
/// Body chunks, so progress moves while a part is on the wire.
const CHUNK: usize = 256 * 1024;

#[derive(clap::Args, Clone)]
pub struct UploadOptions {
    /// Content type (default: from the file's extension)
    #[arg(long)]
    pub content_type: Option<String>,
    /// Name the media carries (default: the file's name)
    #[arg(long)]
    pub filename: Option<String>,
    /// Parts uploaded at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    pub parallel: u16,
    /// Files up to this many bytes go in one direct POST; larger ones in a session
    #[arg(long, default_value_t = DIRECT_MAX)]
    pub direct_max: u64,
    /// Always use an upload session
    #[arg(long)]
    pub session: bool,
    /// Attempts per part before giving up (backoff doubles from 250 ms)
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Where interrupted sessions are remembered [default: ~/.local/state/chat-media]
    #[arg(long, env = "CHAT_MEDIA_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct UploadArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub opts: UploadOptions,
}

#[derive(clap::Args)]
pub struct DownloadArgs {
    /// ME…
    pub media: String,
    /// Output file (`-` for stdout); default: the media's filename
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

pub async fn upload_cmd(api: &Api, out: &Out, args: UploadArgs) -> Result<()> {
    let media = upload(api, out, &args.file, &args.opts).await?;
    out.item(&media);
    Ok(())
}

fn guess_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("mp4") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        Some("wav") => "audio/wav",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("zip") => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Uploads `file` as Media of the configured service; returns the Media JSON once
/// it is `ready`.
pub async fn upload(api: &Api, out: &Out, file: &Path, opts: &UploadOptions) -> Result<Value> {
    let meta = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    let size = meta.len();
    let filename = match &opts.filename {
        Some(f) => f.clone(),
        None => file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "upload".into()),
    };
    let content_type = opts
        .content_type
        .clone()
        .unwrap_or_else(|| guess_type(&filename).to_owned());
    if !opts.session && size <= opts.direct_max {
        direct(api, out, file, size, &filename, &content_type).await
    } else {
        let upload = Upload {
            file: file.to_owned(),
            size,
            filename,
            content_type,
            mtime: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        };
        session(api, out, &upload, opts).await
    }
}

/// Yields `data` in chunks, advancing `bar` as each one is taken by the connection.
fn progress_body(data: Bytes, bar: ProgressBar) -> reqwest::Body {
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(CHUNK)
        .map(|at| data.slice(at..(at + CHUNK).min(data.len())))
        .collect();
    let stream = futures::stream::iter(chunks).map(move |c| {
        bar.inc(c.len() as u64);
        Ok::<_, std::io::Error>(c)
    });
    reqwest::Body::wrap_stream(stream)
}

async fn direct(
    api: &Api,
    out: &Out,
    file: &Path,
    size: u64,
    filename: &str,
    content_type: &str,
) -> Result<Value> {
    let data = Bytes::from(tokio::fs::read(file).await?);
    let bar = out.bar(size, "upload");
    let path = format!("/v1/Services/{}/Media", api.service()?);
    let response = api
        .request(Method::POST, &path)?
        .query(&[("Filename", filename)])
        .header("Content-Type", content_type)
        .header("Content-Length", size)
        .body(progress_body(data, bar.clone()))
        .send()
        .await;
    bar.finish_and_clear();
    json_of(response?).await
}

struct Upload {
    file: PathBuf,
    size: u64,
    filename: String,
    content_type: String,
    mtime: u128,
}

/// What an interrupted session leaves behind: the session as the server gave it
/// and the ETag of each part already uploaded.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    media: Value,
    etags: std::collections::BTreeMap<u32, String>,
}

fn state_file(api: &Api, u: &Upload, opts: &UploadOptions) -> Result<PathBuf> {
    let dir = match &opts.state_dir {
        Some(d) => d.clone(),
        None => std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .context("no HOME for the upload state; set --state-dir")?
            .join("chat-media"),
    };
    let abs = std::fs::canonicalize(&u.file)?;
    let key = json!([
        api.config.url,
        api.config.service,
        abs.to_string_lossy(),
        u.size,
        u.mtime.to_string(),
        u.filename,
        u.content_type,
    ]);
    let digest = hex_digest(key.to_string().as_bytes());
    Ok(dir.join("uploads").join(format!("{}.json", &digest[..32])))
}

fn hex_digest(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn save(path: &Path, saved: &Saved) -> Result<()> {
    std::fs::create_dir_all(path.parent().expect("a parent"))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(saved)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A saved session still worth resuming: its URLs valid for another minute and
/// the server still waiting for its bytes.
async fn resumable(api: &Api, path: &Path) -> Option<Saved> {
    let saved: Saved = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let expires = saved.media["upload"]["url_expires"].as_str()?;
    let expires = chrono::DateTime::parse_from_rfc3339(expires).ok()?;
    if expires.timestamp() < chrono::Utc::now().timestamp() + 60 {
        return None;
    }
    let url = saved.media["url"].as_str()?;
    let now = api.get(url).await.ok()?;
    (now["status"] == "uploading").then_some(saved)
}

async fn session(api: &Api, out: &Out, u: &Upload, opts: &UploadOptions) -> Result<Value> {
    let state_path = state_file(api, u, opts)?;
    let saved = match resumable(api, &state_path).await {
        Some(saved) => {
            out.note(&format!(
                "resuming {}: {} of {} parts already uploaded",
                saved.media["sid"].as_str().unwrap_or_default(),
                saved.etags.len(),
                saved.media["upload"]["part_count"]
            ));
            saved
        }
        None => {
            let form = [
                ("Size".to_owned(), u.size.to_string()),
                ("ContentType".to_owned(), u.content_type.clone()),
                ("Filename".to_owned(), u.filename.clone()),
            ];
            let path = format!("/v1/Services/{}/MediaUploads", api.service()?);
            let media = api.post_form(&path, &form).await?;
            let saved = Saved {
                media,
                etags: Default::default(),
            };
            save(&state_path, &saved)?;
            saved
        }
    };
    let media = saved.media.clone();
    let parts: Vec<Value> = media["upload"]["parts"]
        .as_array()
        .context("the session has no upload.parts")?
        .clone();
    let part_size = media["upload"]["part_size"]
        .as_u64()
        .context("the session has no upload.part_size")?;
    let done: u64 = parts
        .iter()
        .filter(|p| {
            saved
                .etags
                .contains_key(&(p["part_number"].as_u64().unwrap_or(0) as u32))
        })
        .map(|p| p["size"].as_u64().unwrap_or(0))
        .sum();
    let bar = out.bar(u.size, "upload");
    bar.set_position(done);
    let todo: Vec<Value> = parts
        .iter()
        .filter(|p| {
            !saved
                .etags
                .contains_key(&(p["part_number"].as_u64().unwrap_or(0) as u32))
        })
        .cloned()
        .collect();
    let state = Arc::new(Mutex::new(saved));
    let results = futures::stream::iter(todo.into_iter().map(|part| {
        let bar = bar.clone();
        let state = state.clone();
        let state_path = state_path.clone();
        async move {
            let n = part["part_number"].as_u64().context("part_number")? as u32;
            let etag = put_part(api, &u.file, &part, part_size, &bar, opts.attempts).await?;
            let mut s = state.lock().expect("state lock");
            s.etags.insert(n, etag);
            save(&state_path, &s)?;
            Ok::<_, anyhow::Error>(())
        }
    }))
    .buffer_unordered(opts.parallel as usize)
    .try_collect::<Vec<()>>()
    .await;
    bar.finish_and_clear();
    results?;

    let etags: Vec<(String, String)> = {
        let s = state.lock().expect("state lock");
        if media["upload"]["type"] == "multipart" {
            s.etags
                .values()
                .map(|e| ("PartETag".to_owned(), e.clone()))
                .collect()
        } else {
            Vec::new()
        }
    };
    let complete = media["links"]["complete"]
        .as_str()
        .context("the session has no links.complete")?;
    let finished = match complete_session(api, complete, &encode_form(&etags), opts.attempts).await
    {
        Ok(r) => {
            let status = r.status();
            let v: Value = r.json().await?;
            if status.as_u16() == 202 {
                wait_ready(api, &v).await?
            } else {
                v
            }
        }
        Err(e) => {
            // The server refused the upload: nothing left to resume.
            if e.downcast_ref::<ApiError>().is_some() {
                let _ = std::fs::remove_file(&state_path);
            }
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(&state_path);
    match finished["status"].as_str() {
        Some("ready") => Ok(finished),
        other => bail!(
            "media {} is {}: {}",
            finished["sid"].as_str().unwrap_or_default(),
            other.unwrap_or("unknown"),
            finished["status_reason"].as_str().unwrap_or("")
        ),
    }
}

/// POSTs `Complete`, again after a network error, 5xx or 429 with doubling
/// backoff: completing is idempotent (a repeat answers what the first did), and a
/// finalize cut short by a busy server must not cost the whole upload.
async fn complete_session(
    api: &Api,
    url: &str,
    form: &str,
    attempts: u32,
) -> Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = api
            .request(Method::POST, url)?
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await;
        let error = match sent {
            Ok(r) => match check(r).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    let retry = e
                        .downcast_ref::<ApiError>()
                        .is_some_and(|a| a.status >= 500 || a.status == 429);
                    if !retry {
                        return Err(e);
                    }
                    e
                }
            },
            Err(e) => e.into(),
        };
        if attempt >= attempts {
            return Err(error.context(format!("Complete failed {attempt} times")));
        }
        let backoff = Duration::from_millis(250 << (attempt - 1).min(5));
        eprintln!("{error:#}; retrying Complete in {backoff:?}");
        tokio::time::sleep(backoff).await;
    }
}

/// Polls a media that is being finalized (202) until it leaves `scanning`.
async fn wait_ready(api: &Api, media: &Value) -> Result<Value> {
    let url = media["url"].as_str().context("media url")?;
    for _ in 0..600 {
        let v = api.get(url).await?;
        if !matches!(v["status"].as_str(), Some("scanning" | "uploading")) {
            return Ok(v);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("media {url} still not ready after 5 minutes")
}

/// Sends one part to its presigned URL with exactly the signed headers, retrying
/// network errors, 5xx, 408 and 429 with doubling backoff; returns its ETag.
async fn put_part(
    api: &Api,
    file: &Path,
    part: &Value,
    part_size: u64,
    bar: &ProgressBar,
    attempts: u32,
) -> Result<String> {
    let n = part["part_number"].as_u64().context("part_number")?;
    let len = part["size"].as_u64().context("part size")?;
    let url = part["url"].as_str().context("part url")?;
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start((n - 1) * part_size))
        .await?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).await?;
    let data = Bytes::from(buf);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = bar.position();
        let mut req = api
            .http
            .put(url)
            .body(progress_body(data.clone(), bar.clone()));
        if let Some(headers) = part["headers"].as_object() {
            for (k, v) in headers {
                if let Some(v) = v.as_str() {
                    req = req.header(k.as_str(), v);
                }
            }
        }
        let error = match req.send().await {
            Ok(r) if r.status().is_success() => {
                let etag = r
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                return Ok(etag);
            }
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                let retry = status >= 500 || status == 408 || status == 429;
                let e = anyhow::anyhow!("part {n}: storage answered {status}: {text:.200}");
                if !retry {
                    return Err(e);
                }
                e
            }
            Err(e) => anyhow::anyhow!("part {n}: {e}"),
        };
        // What this attempt had counted is sent again.
        let counted = bar.position().saturating_sub(sent).min(len);
        bar.set_position(bar.position() - counted);
        if attempt >= attempts {
            return Err(error.context(format!("part {n} failed {attempt} times")));
        }
        let backoff = Duration::from_millis(250 << (attempt - 1).min(5));
        bar.println(format!("{error:#}; retrying in {backoff:?}"));
        tokio::time::sleep(backoff).await;
    }
}

pub async fn download_cmd(api: &Api, out: &Out, args: DownloadArgs) -> Result<()> {
    let path = format!("/v1/Services/{}/Media/{}", api.service()?, args.media);
    let media = api.get(&path).await?;
    let Some(url) = media["links"]["content_direct_temporary"].as_str() else {
        bail!(
            "media {} has no content URL (status {})",
            args.media,
            media["status"].as_str().unwrap_or("unknown")
        );
    };
    let response = check(api.http.get(url).send().await?).await?;
    let total = response
        .content_length()
        .or_else(|| media["size"].as_u64())
        .unwrap_or(0);
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    let target = match args.output {
        Some(p) => p,
        None => {
            let name = media["filename"].as_str().unwrap_or(&args.media);
            // Only the last segment: a media name never writes outside the cwd.
            PathBuf::from(Path::new(name).file_name().unwrap_or(args.media.as_ref()))
        }
    };
    let bar = out.bar(total, "download");
    let mut stream = response.bytes_stream();
    if to_stdout {
        let mut stdout = tokio::io::stdout();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            stdout.write_all(&chunk).await?;
            bar.inc(chunk.len() as u64);
        }
        stdout.flush().await?;
        bar.finish_and_clear();
        return Ok(());
    }
    let mut written = 0u64;
    let tmp = target.with_extension("part");
    let mut f = tokio::fs::File::create(&tmp).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        f.write_all(&chunk).await?;
        bar.inc(chunk.len() as u64);
        written += chunk.len() as u64;
    }
    f.flush().await?;
    drop(f);
    tokio::fs::rename(&tmp, &target).await?;
    bar.finish_and_clear();
    if out.json {
        crate::output::print_json(&json!({
            "sid": args.media,
            "path": target.to_string_lossy(),
            "size": written,
            "content_type": media["content_type"],
        }));
    } else {
        println!("{} → {} ({written} bytes)", args.media, target.display());
    }
    Ok(())
}
