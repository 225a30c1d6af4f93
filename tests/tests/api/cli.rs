//! The `chat-media` CLI end to end: the real binary (built by `cargo build
//! --workspace`) against a running app, as a user runs it — admin CRUD, tokens,
//! send, upload, download, block, `--json` for scripts; and a 150 MiB upload
//! interrupted (killed) and resumed with its progress bar drawn to a pseudo-terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chat_media_tests::reqwest::Method;
use chat_media_tests::{png_like, send, sha256_hex, TestApp, PNG};
use serde_json::Value;

/// `target/debug/chat-media`, next to the directory of this test binary.
fn cli_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("chat-media");
    assert!(
        bin.exists(),
        "{} missing: cargo build --workspace",
        bin.display()
    );
    bin
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!(
        "chat-media-cli-{name}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// A test's scratch directory, removed when the test ends, failed ones too (the
/// 150 MiB test would otherwise leave its file in /tmp at every failure).
struct Scratch(PathBuf);

impl Scratch {
    fn as_path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CLI configured for `app` through the environment, as a user would.
fn cli(app: &TestApp, dir: &Path) -> Command {
    let creds = chat_media_tests::credentials();
    let mut c = Command::new(cli_bin());
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CHAT_MEDIA_URL", &app.base)
        .env("CHAT_MEDIA_ACCOUNT_SID", creds.account_sid.as_str())
        .env("CHAT_MEDIA_AUTH_TOKEN", &creds.auth_token)
        .env("CHAT_MEDIA_API_KEY_SID", creds.api_key_sid.as_str())
        .env("CHAT_MEDIA_API_KEY_SECRET", &creds.api_key_secret)
        .env("CHAT_MEDIA_STATE_DIR", dir.join("state"));
    c
}

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Runs `args` with `--json`; asserts success and returns the JSON printed.
async fn json_ok(app: &TestApp, dir: &Path, args: &[&str]) -> Value {
    let mut c = cli(app, dir);
    c.args(args).arg("--json");
    let out = run(c).await;
    assert!(
        out.status.success(),
        "chat-media {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "chat-media {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs `args` with `--json`; asserts exit status 1 and returns the `error` printed.
async fn json_err(app: &TestApp, dir: &Path, args: &[&str]) -> Value {
    let mut c = cli(app, dir);
    c.args(args).arg("--json");
    let out = run(c).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "chat-media {args:?} should fail"
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["error"].clone()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} in {v}"))
        .to_owned()
}

#[tokio::test]
async fn cli_manages_a_service_sends_uploads_downloads_and_blocks() {
    let app = TestApp::spawn().await;
    let dir = scratch("crud");
    let d = dir.as_path();

    let svc = json_ok(&app, d, &["services", "create", "-p", "FriendlyName=cli"]).await;
    let sid = s(&svc, "sid");
    let updated = json_ok(
        &app,
        d,
        &["services", "update", &sid, "-p", "Media.SizeLimitMb=40"],
    )
    .await;
    assert_eq!(updated["media"]["size_limit_mb"], 40, "{updated}");
    let listed = json_ok(&app, d, &["services", "list"]).await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["sid"] == sid.as_str()));

    let svc_args = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
        v.extend(["--service".into(), sid.clone()]);
        v
    };
    macro_rules! ok {
        ($($a:expr),*) => {{
            let a = svc_args(&[$($a),*]);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            json_ok(&app, d, &a).await
        }};
    }
    macro_rules! err {
        ($($a:expr),*) => {{
            let a = svc_args(&[$($a),*]);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            json_err(&app, d, &a).await
        }};
    }

    let channel = ok!(
        "channels",
        "create",
        "-p",
        "UniqueName=general",
        "-p",
        "FriendlyName=General"
    );
    let ch = s(&channel, "sid");
    assert_eq!(ok!("channels", "get", "general")["sid"], ch.as_str());
    assert_eq!(ok!("channels", "list").as_array().unwrap().len(), 1);
    ok!("members", "create", "-c", "general", "-p", "Identity=alice");
    ok!("members", "create", "-c", "general", "-p", "Identity=bob");
    let members = ok!("members", "list", "-c", "general");
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
    assert_eq!(ok!("roles", "list").as_array().unwrap().len(), 5);
    let user = ok!("users", "create", "-p", "Identity=carol");
    assert_eq!(ok!("users", "get", "carol")["sid"], user["sid"]);

    // A token minted by the CLI is accepted by the server.
    let token = ok!("token", &sid, "alice")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = send(app.user(
        &token,
        Method::GET,
        &format!("/v2/Services/{sid}/Channels/{ch}/Messages"),
    ))
    .await;
    assert_eq!(status, 200);
    let msg = ok!(
        "send",
        "general",
        "--body",
        "hello from the cli",
        "--token",
        &token
    );
    assert_eq!(msg["body"], "hello from the cli");
    assert_eq!(msg["from"], "alice");

    // A small file goes direct; a 9 MiB one through a session (two parts of a
    // multipart upload would need > 16 MiB, so this is one presigned PUT).
    std::fs::write(d.join("dot.png"), PNG).unwrap();
    let media = ok!("upload", "dot.png", "--as", "alice");
    assert_eq!(media["status"], "ready");
    assert_eq!(media["author"], "alice");
    assert_eq!(media["sha256"], sha256_hex(PNG).as_str());
    let big = png_like(9 << 20);
    std::fs::write(d.join("big.png"), &big).unwrap();
    let session_media = ok!("upload", "big.png", "--as", "alice");
    assert_eq!(session_media["size"], big.len() as u64);
    assert_eq!(session_media["sha256"], sha256_hex(&big).as_str());

    // send --file: upload + bind.
    let sent = ok!("send", "general", "--file", "dot.png", "--as", "alice");
    assert_eq!(sent["type"], "media", "{sent}");
    let me = s(&sent["media"], "sid");
    let got = ok!("download", &me, "-o", "back.png", "--as", "bob");
    assert_eq!(got["size"], PNG.len() as u64);
    assert_eq!(std::fs::read(d.join("back.png")).unwrap(), PNG);

    // A refused file: the Twilio error body on stdout, exit 1.
    std::fs::write(d.join("tool.exe"), chat_media_tests::exe()).unwrap();
    let refused = err!("upload", "tool.exe", "--as", "alice");
    assert_eq!(refused["status"], 415, "{refused}");
    assert_eq!(refused["code"], 20415, "{refused}");

    // Moderation: admin blocks alice; her send is refused with 50107; unblock.
    let blocked = ok!("block", &ch, "alice");
    assert_eq!(blocked["blocked"], true, "{blocked}");
    let refused = err!("send", "general", "--body", "still here?", "--as", "alice");
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["code"], 50107);
    let unblocked = ok!("unblock", &ch, "alice");
    assert_eq!(unblocked["blocked"], false);
    ok!("send", "general", "--body", "back", "--as", "alice");

    // Not found → 404 body; deletes.
    assert_eq!(err!("channels", "get", "nosuch")["status"], 404);
    ok!("members", "delete", "-c", "general", "bob");
    assert_eq!(
        ok!("members", "list", "-c", "general")
            .as_array()
            .unwrap()
            .len(),
        1
    );
    ok!("channels", "delete", "general");
    assert_eq!(ok!("channels", "list").as_array().unwrap().len(), 0);
    json_ok(&app, d, &["services", "delete", &sid]).await;

    // Completions for the shells people use.
    let mut c = cli(&app, d);
    c.args(["completions", "bash"]);
    let out = run(c).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("_chat__media()"));
}

/// `script` gives the command a pseudo-terminal, so indicatif draws its bar.
fn on_a_pty(c: &Command) -> Command {
    let mut line = String::new();
    line.push_str(&shell_quote(c.get_program().to_str().unwrap()));
    for a in c.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(a.to_str().unwrap()));
    }
    let mut p = Command::new("script");
    p.args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(c.get_current_dir().unwrap())
        .env_clear();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            p.env(k, v);
        }
    }
    p.env("TERM", "xterm").env("COLUMNS", "120");
    p
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[tokio::test]
async fn cli_uploads_150_mib_resuming_after_a_kill_with_a_progress_bar_on_a_pty() {
    let app = TestApp::spawn().await;
    let dir = scratch("big");
    let d = dir.as_path();
    let svc = json_ok(&app, d, &["services", "create", "-p", "FriendlyName=big"]).await;
    let sid = s(&svc, "sid");
    json_ok(
        &app,
        d,
        &["services", "update", &sid, "-p", "Media.SizeLimitMb=150"],
    )
    .await;
    let data = png_like(150 << 20);
    let file = d.join("talk.png");
    std::fs::write(&file, &data).unwrap();
    drop(data);
    let want_sha = sha256_hex(&std::fs::read(&file).unwrap());

    // First run: one part at a time; killed once two parts are recorded.
    let state = d.join("state/uploads");
    let mut first = cli(&app, d);
    first.args(["upload", "talk.png", "--parallel", "1", "--service", &sid]);
    let log = d.join("first.log");
    first
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = first.spawn().unwrap();
    let started = Instant::now();
    let recorded = loop {
        let n = std::fs::read_dir(&state)
            .ok()
            .and_then(|mut it| it.next())
            .and_then(|e| std::fs::read(e.unwrap().path()).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|v| v["etags"].as_object().map_or(0, |o| o.len()))
            .unwrap_or(0);
        if n >= 2 {
            break n;
        }
        let why = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no parts recorded: {}",
            why()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "upload ended before the kill: {}",
            why()
        );
        // The app under test runs on this runtime: yield, never block.
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(recorded < 19, "{recorded} parts done before the kill");

    // Second run, on a pseudo-terminal: resumes and draws the progress bar.
    let mut second = cli(&app, d);
    second.args(["upload", "talk.png", "--service", &sid]);
    let started = Instant::now();
    let out = run(on_a_pty(&second)).await;
    let elapsed = started.elapsed();
    let screen = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("resuming ME"), "{screen}");
    assert!(screen.contains("parts already uploaded"), "{screen}");
    assert!(screen.contains("upload ["), "no progress bar: {screen}");
    assert!(screen.contains("ETA"), "no ETA: {screen}");
    assert!(
        screen.contains("MiB/s") || screen.contains("KiB/s"),
        "no rate: {screen}"
    );
    let line = screen
        .lines()
        .rev()
        .find(|l| l.contains("ME"))
        .unwrap_or_else(|| panic!("no media line: {screen}"));
    let me = line
        .split_whitespace()
        .find(|w| w.contains("ME"))
        .unwrap_or_else(|| panic!("{line:?}"))
        .split("ME")
        .nth(1)
        .map(|rest| format!("ME{}", &rest[..32]))
        .unwrap();
    assert!(line.contains("[ready]"), "{line}");
    let record = app.record(&me).await;
    assert_eq!(record.size, 150 << 20);
    assert_eq!(record.sha256.as_deref(), Some(want_sha.as_str()));
    // Nothing left to resume.
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
    println!("cli: 150 MiB resumed upload finished in {elapsed:?}");
}
