//! Upload benchmark (prints figures; not a test). Run it with `scripts/bench-upload`,
//! which builds in release mode, starts DynamoDB (ministack) and the local runner
//! (`chat-media-local serve`, with its embedded S3), and passes:
//!
//! - `BENCH_APP`: the runner's base URL; `BENCH_S3`: its S3 endpoint;
//! - `BENCH_PID`: the runner's process id (its RSS is sampled from /proc);
//! - `BENCH_DIRECT_LIMIT`: the runner's `DIRECT_UPLOAD_MAX_BYTES`, for the report;
//! - `BENCH_DIR`: a scratch directory for the 150 MiB file.
//!
//! Measures: direct uploads of 1 MB and 5 MB (requests/s, p50, p99); an upload
//! session of 150 MiB (create, presigned multipart PUTs, complete with the server's
//! checks and SHA-256) against one presigned PUT of the same file to the same S3
//! server; and the runner's peak RSS during each. With `BENCH_APP_SCANNING` and
//! `BENCH_PID_SCANNING` (a second runner with `CLAMD_ADDRESS`), also the latency a
//! clamd scan adds to a 1 MB direct upload (p50, p99, alternating rounds) and the
//! req/s ratio scanning on / off. With `BENCH_S3_SCANNING` and `BENCH_CLAMD` too,
//! the issue-16 goal for 150 MiB: session create → `ready` with scanning, against
//! one presigned PUT of the same bytes plus clamd scanning them from memory, as a
//! ratio. `BENCH_SKIP_SESSION=1` skips the 150 MiB part.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_media::blob::Blob;
use chat_media::config::AwsOptions;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

const SESSION_SIZE: u64 = 157_286_400;

/// The runner's admin credentials: the environment, else `scripts/local.env`.
fn local(name: &str) -> String {
    chat_media_local::local_lookup(name).unwrap_or_else(|| panic!("{name} in scripts/local.env"))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (run scripts/bench-upload)"))
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples the runner's RSS every 5 ms until stopped; returns the peak (KiB).
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        // Reset the kernel's high-water mark too, when allowed.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss(pid).0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(pid).0, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Self { stop, peak, task }
    }

    async fn finish(self, pid: u32) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed).max(rss(pid).1)
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn direct_uploads(
    http: &reqwest::Client,
    app: &str,
    service: &str,
    size: usize,
    count: usize,
    concurrency: usize,
    pid: u32,
) -> (Duration, Duration, f64) {
    let body = bytes::Bytes::from(chat_media_tests::png_like(size));
    let url = format!("{app}/v1/Services/{service}/Media");
    let sampler = RssSampler::start(pid);
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..count)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.clone(), body.clone());
            async move {
                let t = Instant::now();
                let resp = http
                    .post(&url)
                    .basic_auth(
                        local("CHAT_MEDIA_ACCOUNT_SID"),
                        Some(local("CHAT_MEDIA_AUTH_TOKEN")),
                    )
                    .header("Content-Type", "image/png")
                    .body(body)
                    .send()
                    .await
                    .expect("request sent");
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                assert_eq!(status, StatusCode::CREATED, "{text}");
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let peak = sampler.finish(pid).await;
    latencies.sort();
    println!(
        "direct {:>9} bytes x{count} (concurrency {concurrency}): {:>7.1} req/s, {:>6.1} MB/s, p50 {:>7.1} ms, p99 {:>7.1} ms, runner peak RSS {:.0} MiB",
        size,
        count as f64 / wall.as_secs_f64(),
        (size * count) as f64 / 1e6 / wall.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        mib(peak),
    );
    (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        count as f64 / wall.as_secs_f64(),
    )
}

/// Writes the 150 MiB test file (MP4 signature first) in 8 MiB chunks.
async fn write_file(path: &std::path::Path) {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.unwrap();
    let chunk = 8 << 20;
    let mut written = 0u64;
    while written < SESSION_SIZE {
        let len = chunk.min((SESSION_SIZE - written) as usize);
        let mut buf: Vec<u8> = (0..len)
            .map(|i| ((written as usize + i) * 31 % 253) as u8)
            .collect();
        if written == 0 {
            let ftyp = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
            buf[..ftyp.len()].copy_from_slice(ftyp);
        }
        file.write_all(&buf).await.unwrap();
        written += len as u64;
    }
    file.flush().await.unwrap();
}

/// A streaming request body over `len` bytes of the file from `offset`.
async fn file_body(path: &std::path::Path, offset: u64, len: u64) -> reqwest::Body {
    let mut file = tokio::fs::File::open(path).await.unwrap();
    file.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
    let reader = file.take(len);
    let stream = futures::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; 1 << 20];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    reqwest::Body::wrap_stream(stream)
}

async fn send_presigned(
    http: &reqwest::Client,
    part: &Value,
    body: reqwest::Body,
) -> Option<String> {
    let mut req = http.put(part["url"].as_str().unwrap());
    for (k, v) in part["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let resp = req.body(body).send().await.expect("PUT sent");
    assert!(resp.status().is_success(), "PUT refused: {}", resp.status());
    resp.headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn session_upload(
    http: &reqwest::Client,
    app: &str,
    service: &str,
    path: &std::path::Path,
    concurrency: usize,
) -> (Duration, Duration, String) {
    let started = Instant::now();
    let resp = http
        .post(format!("{app}/v1/Services/{service}/MediaUploads"))
        .basic_auth(
            local("CHAT_MEDIA_ACCOUNT_SID"),
            Some(local("CHAT_MEDIA_AUTH_TOKEN")),
        )
        .form(&[
            ("Size", SESSION_SIZE.to_string()),
            ("ContentType", "video/mp4".into()),
            ("Filename", "bench.mp4".into()),
        ])
        .send()
        .await
        .unwrap();
    let session: Value = resp.json().await.unwrap();
    let parts = session["upload"]["parts"].as_array().unwrap().clone();
    let part_size = session["upload"]["part_size"].as_u64().unwrap();
    let mut etags: Vec<(u64, String)> = futures::stream::iter(parts)
        .map(|part| {
            let http = http.clone();
            async move {
                let n = part["part_number"].as_u64().unwrap();
                let len = part["size"].as_u64().unwrap();
                let body = file_body(path, (n - 1) * part_size, len).await;
                (n, send_presigned(&http, &part, body).await.expect("ETag"))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    etags.sort();
    let uploaded = started.elapsed();
    let form: Vec<(&str, &str)> = etags
        .iter()
        .map(|(_, e)| ("PartETag", e.as_str()))
        .collect();
    let resp = http
        .post(session["links"]["complete"].as_str().unwrap())
        .basic_auth(
            local("CHAT_MEDIA_ACCOUNT_SID"),
            Some(local("CHAT_MEDIA_AUTH_TOKEN")),
        )
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let done: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "ready");
    let key = chat_media::model::Media::object_key_for(
        &service.parse().unwrap(),
        &done["sid"].as_str().unwrap().parse().unwrap(),
    );
    (uploaded, started.elapsed(), key)
}

/// The latency a clamd scan adds to a 1 MB direct upload: the same uploads through
/// a runner without a scanner and one with `CLAMD_ADDRESS` (same DynamoDB, each its
/// own embedded S3), in alternating rounds so load from the machine hits both.
async fn scan_latency(
    http: &reqwest::Client,
    plain: &str,
    plain_pid: u32,
    scanning: &str,
    scanning_pid: u32,
) {
    const ROUNDS: usize = 3;
    let plain_service = create_service(http, plain).await;
    let scanning_service = create_service(http, scanning).await;
    println!("scan latency, 1 MB direct uploads: runner without a scanner vs. runner with clamd");
    direct_uploads(
        http,
        scanning,
        &scanning_service,
        100_000,
        20,
        4,
        scanning_pid,
    )
    .await;
    for (concurrency, count) in [(1, 100), (8, 200)] {
        let (mut p50s, mut p99s, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            print!("  round {} without scanner: ", round + 1);
            let off = direct_uploads(
                http,
                plain,
                &plain_service,
                1_000_000,
                count,
                concurrency,
                plain_pid,
            )
            .await;
            print!("  round {} with clamd:      ", round + 1);
            let on = direct_uploads(
                http,
                scanning,
                &scanning_service,
                1_000_000,
                count,
                concurrency,
                scanning_pid,
            )
            .await;
            ratios.push(on.2 / off.2);
            p50s.push(on.0.as_secs_f64() * 1e3 - off.0.as_secs_f64() * 1e3);
            p99s.push(on.1.as_secs_f64() * 1e3 - off.1.as_secs_f64() * 1e3);
        }
        let list = |v: &[f64]| {
            v.iter()
                .map(|d| format!("{d:+.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "scan adds to a 1 MB direct upload (concurrency {concurrency}): p50 {} ms, p99 {} ms (per round)",
            list(&p50s),
            list(&p99s)
        );
        println!(
            "GOAL 1 MB direct uploads, req/s scanning on / off (concurrency {concurrency}, goal >= 0.90): {} (per round)",
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
}

async fn create_service(http: &reqwest::Client, app: &str) -> String {
    let resp = http
        .post(format!("{app}/v2/Services"))
        .basic_auth(
            local("CHAT_MEDIA_ACCOUNT_SID"),
            Some(local("CHAT_MEDIA_AUTH_TOKEN")),
        )
        .form(&[("FriendlyName", "bench")])
        .send()
        .await
        .unwrap();
    let service: Value = resp.json().await.unwrap();
    service["sid"].as_str().unwrap().to_owned()
}

#[tokio::main]
async fn main() {
    let app = env("BENCH_APP");
    let s3 = env("BENCH_S3");
    let pid: u32 = env("BENCH_PID").parse().unwrap();
    let direct_limit: u64 = env("BENCH_DIRECT_LIMIT").parse().unwrap();
    let dir = std::path::PathBuf::from(env("BENCH_DIR"));
    let http = reqwest::Client::new();

    let resp = http
        .post(format!("{app}/v2/Services"))
        .basic_auth(
            local("CHAT_MEDIA_ACCOUNT_SID"),
            Some(local("CHAT_MEDIA_AUTH_TOKEN")),
        )
        .form(&[("FriendlyName", "bench")])
        .send()
        .await
        .unwrap();
    let service: Value = resp.json().await.unwrap();
    let service = service["sid"].as_str().unwrap().to_owned();
    let (idle, _) = rss(pid);
    println!(
        "runner idle RSS {:.0} MiB; DIRECT_UPLOAD_MAX_BYTES={direct_limit}",
        mib(idle)
    );
    if direct_limit < 5_000_000 {
        println!("(5 MB exceeds the direct limit: rerun with a raised DIRECT_UPLOAD_MAX_BYTES)");
    }

    // Warm-up, then the measured runs.
    direct_uploads(&http, &app, &service, 100_000, 20, 4, pid).await;
    direct_uploads(&http, &app, &service, 1_000_000, 200, 8, pid).await;
    if direct_limit >= 5_000_000 {
        direct_uploads(&http, &app, &service, 5_000_000, 60, 8, pid).await;
    }

    if let Ok(scanning) = std::env::var("BENCH_APP_SCANNING") {
        let scanning_pid: u32 = env("BENCH_PID_SCANNING").parse().unwrap();
        scan_latency(&http, &app, pid, &scanning, scanning_pid).await;
    }
    if std::env::var("BENCH_SKIP_SESSION").is_ok_and(|v| v == "1") {
        return;
    }

    let file = dir.join("bench-150MiB.mp4");
    write_file(&file).await;

    // The same file in one presigned PUT to the same S3 server.
    let blob = blob_for(&s3).await;
    let mut runs = Vec::new();
    for round in 0..2 {
        let key = format!("bench/direct-{round}-{}", std::process::id());
        let put = blob
            .presign_put(&key, SESSION_SIZE, Duration::from_secs(600))
            .await
            .unwrap();
        let part = serde_json::to_value(&put).unwrap();
        let sampler = RssSampler::start(pid);
        let t = Instant::now();
        send_presigned(&http, &part, file_body(&file, 0, SESSION_SIZE).await).await;
        let direct = t.elapsed();
        let direct_peak = sampler.finish(pid).await;
        blob.delete(&key).await.unwrap();

        let sampler = RssSampler::start(pid);
        let (uploaded, total, key) = session_upload(&http, &app, &service, &file, 4).await;
        let session_peak = sampler.finish(pid).await;
        // How much of complete is re-reading the object to hash it (same S3 path).
        let t = Instant::now();
        blob.digest(&key).await.unwrap().expect("object");
        let hashing = t.elapsed();
        // And how much of that is only reading it.
        let t = Instant::now();
        let mut body = blob
            .client()
            .get_object()
            .bucket(blob.bucket())
            .key(&key)
            .send()
            .await
            .unwrap()
            .body;
        while body.try_next().await.unwrap().is_some() {}
        let reading = t.elapsed();
        runs.push((
            direct,
            direct_peak,
            uploaded,
            total,
            session_peak,
            hashing,
            reading,
        ));
    }
    for (i, (direct, direct_peak, uploaded, total, session_peak, hashing, reading)) in
        runs.iter().enumerate()
    {
        let mb = SESSION_SIZE as f64 / 1e6;
        println!(
            "150 MiB run {}: direct presigned PUT {:.2} s ({:.0} MB/s, runner peak RSS {:.0} MiB); \
             upload session {:.2} s total = parts {:.2} s (4 in parallel) + complete {:.2} s \
             ({:.0} MB/s, runner peak RSS {:.0} MiB); session/direct = {:.2}x; \
             reading+hashing the object alone takes {:.2} s (reading only {:.2} s)",
            i + 1,
            direct.as_secs_f64(),
            mb / direct.as_secs_f64(),
            mib(*direct_peak),
            total.as_secs_f64(),
            uploaded.as_secs_f64(),
            (*total - *uploaded).as_secs_f64(),
            mb / total.as_secs_f64(),
            mib(*session_peak),
            total.as_secs_f64() / direct.as_secs_f64(),
            hashing.as_secs_f64(),
            reading.as_secs_f64(),
        );
    }
    if let (Ok(scanning), Ok(scanning_s3), Ok(clamd)) = (
        std::env::var("BENCH_APP_SCANNING"),
        std::env::var("BENCH_S3_SCANNING"),
        std::env::var("BENCH_CLAMD"),
    ) {
        let scanning_pid: u32 = env("BENCH_PID_SCANNING").parse().unwrap();
        session_with_scanning(&http, &scanning, scanning_pid, &scanning_s3, &clamd, &file).await;
    }
    let _ = std::fs::remove_file(&file);
}

/// A client of the runner's embedded S3 at `s3`.
async fn blob_for(s3: &str) -> Blob {
    let aws = AwsOptions {
        region: Some("us-east-1".into()),
        dynamodb_endpoint: None,
        s3_endpoint: Some(s3.to_owned()),
        static_credentials: Some(chat_media_tests::s3_keys()),
    };
    let sdk = aws.sdk_config().await;
    let s3_client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .endpoint_url(aws.s3_endpoint.clone().unwrap())
            .force_path_style(true)
            .build(),
    );
    Blob::new(
        s3_client,
        std::env::var("BUCKET_NAME").unwrap_or_else(|_| "chat-media".into()),
    )
}

/// The issue-16 goal for large uploads, in one run: a 150 MiB upload session on
/// the scanning runner (create → parts → complete → `ready`, scanned) against the
/// least the same work can take: one presigned PUT of the bytes to the same S3 plus
/// clamd scanning them from memory.
async fn session_with_scanning(
    http: &reqwest::Client,
    app: &str,
    pid: u32,
    s3: &str,
    clamd: &str,
    file: &std::path::Path,
) {
    let service = create_service(http, app).await;
    let blob = blob_for(s3).await;
    let scanner = chat_media::scan::Scanner::new(clamd.parse().expect("clamd address"));
    let bytes = tokio::fs::read(file).await.unwrap();
    for round in 1..=2 {
        let key = format!("bench/direct-scan-{round}-{}", std::process::id());
        let put = blob
            .presign_put(&key, SESSION_SIZE, Duration::from_secs(600))
            .await
            .unwrap();
        let t = Instant::now();
        send_presigned(
            http,
            &serde_json::to_value(&put).unwrap(),
            file_body(file, 0, SESSION_SIZE).await,
        )
        .await;
        let direct = t.elapsed();
        blob.delete(&key).await.unwrap();
        let t = Instant::now();
        let verdict = scanner.scan_bytes(&bytes).await.expect("clamd answers");
        assert!(verdict.is_clean(), "{verdict:?}");
        let scan = t.elapsed();

        let sampler = RssSampler::start(pid);
        let (uploaded, total, _) = session_upload(http, app, &service, file, 4).await;
        let peak = sampler.finish(pid).await;
        let floor = direct + scan;
        println!(
            "GOAL 150 MiB with scanning, run {round}: session create -> ready {:.2} s (parts {:.2} s + complete {:.2} s, \
             runner peak RSS {:.0} MiB); direct PUT {:.2} s + clamd from memory {:.2} s = {:.2} s; \
             ratio {:.2} (goal <= 1.15)",
            total.as_secs_f64(),
            uploaded.as_secs_f64(),
            (total - uploaded).as_secs_f64(),
            mib(peak),
            direct.as_secs_f64(),
            scan.as_secs_f64(),
            floor.as_secs_f64(),
            total.as_secs_f64() / floor.as_secs_f64(),
        );
    }
}
