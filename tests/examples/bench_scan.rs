//! Scan benchmark (prints figures, asserts nothing): throughput of a 150 MB object
//! streamed from S3 through clamd, and the latency of scanning a 1 MB buffer.
//! Run through `scripts/bench-scan`, which starts S3 and clamd.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::timeout::TimeoutConfig;
use chat_media::config::{AwsOptions, Settings};
use chat_media::scan::{ScanVerdict, Scanner};
use chat_media::AppState;
use chat_media_tests::{credentials, s3_keys, BUCKET, TABLE};
use tokio::io::AsyncReadExt;

const MB: usize = 1024 * 1024;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: use scripts/bench-scan"))
}

/// Deterministic incompressible bytes, like real media.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn rss_mb(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MB as f64 / d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let size = std::env::var("BENCH_SCAN_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
        * MB;
    let scanner = Scanner::new(env("CHAT_MEDIA_TEST_CLAMD").parse().unwrap())
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(300));
    let clamd_pid = std::env::var("CHAT_MEDIA_BENCH_CLAMD_PID").unwrap_or_default();
    let aws = AwsOptions {
        region: Some("us-east-1".into()),
        // Not used: the benchmark touches only S3 and clamd.
        dynamodb_endpoint: Some("http://127.0.0.1:9".into()),
        s3_endpoint: Some(env("CHAT_MEDIA_TEST_S3")),
        static_credentials: Some(s3_keys()),
    };
    let sdk = aws.sdk_config().await;
    let state = AppState::new(
        &sdk,
        &aws,
        TABLE,
        BUCKET,
        credentials(),
        Settings::default(),
    );
    state.blob.ensure_bucket().await.expect("bucket");
    scanner.ping().await.expect("clamd answers PING");
    println!(
        "# scan benchmark: {} MB object, clamd at {}, build: {}",
        size / MB,
        scanner.address(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let key = format!("bench/scan-{}", std::process::id());
    {
        let content = noise(size, 0x9E37_79B9_7F4A_7C15);
        let started = Instant::now();
        state
            .blob
            .client()
            .put_object()
            .bucket(state.blob.bucket())
            .key(&key)
            .body(content.clone().into())
            // 150 MB on a busy machine can outlast the SDK's 25 s operation timeout.
            .customize()
            .config_override(
                aws_sdk_s3::config::Builder::new().timeout_config(
                    TimeoutConfig::builder()
                        .operation_timeout(Duration::from_secs(600))
                        .operation_attempt_timeout(Duration::from_secs(600))
                        .build(),
                ),
            )
            .send()
            .await
            .expect("put object");
        println!(
            "S3 PUT {} MB: {:.2} s ({:.0} MB/s)",
            size / MB,
            started.elapsed().as_secs_f64(),
            mbps(size, started.elapsed())
        );

        // clamd alone: the same bytes from memory, by chunk size (after a warm-up).
        let _ = scanner.scan_reader(&content[..8 * MB]).await;
        for chunk in [64 * 1024, 256 * 1024, MB] {
            let s = scanner.clone().with_chunk_size(chunk);
            let mut runs = Vec::new();
            for _ in 0..2 {
                let started = Instant::now();
                let verdict = s.scan_reader(&content[..]).await;
                runs.push(started.elapsed());
                assert_eq!(verdict, Ok(ScanVerdict::Clean), "noise is clean");
            }
            let best = *runs.iter().min().unwrap();
            println!(
                "memory -> clamd, {:>4} KiB chunks: best of 2 {:.2} s ({:.0} MB/s)",
                chunk / 1024,
                best.as_secs_f64(),
                mbps(size, best)
            );
        }
    }

    // S3 alone: GET and drain.
    let started = Instant::now();
    let object = state
        .blob
        .client()
        .get_object()
        .bucket(state.blob.bucket())
        .key(&key)
        .send()
        .await
        .expect("get object");
    let mut reader = object.body.into_async_read();
    let (mut buf, mut drained) = (vec![0u8; 256 * 1024], 0);
    loop {
        match reader.read(&mut buf).await.unwrap() {
            0 => break,
            n => drained += n,
        }
    }
    assert_eq!(drained, size);
    let took = started.elapsed();
    println!(
        "S3 GET -> discard (256 KiB reads): {:.2} s ({:.0} MB/s)",
        took.as_secs_f64(),
        mbps(size, took)
    );

    // The real path: S3 GetObject streamed through clamd; our RSS sampled meanwhile.
    let before = rss_mb("self", "VmRSS").unwrap_or(0.0);
    let mut times = Vec::new();
    for _ in 0..3 {
        let peak = Arc::new(AtomicU64::new(0));
        let sampling = tokio::spawn({
            let peak = peak.clone();
            async move {
                loop {
                    let kb = (rss_mb("self", "VmRSS").unwrap_or(0.0) * 1024.0) as u64;
                    peak.fetch_max(kb, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        let started = Instant::now();
        let verdict = scanner.scan_object(&state.blob, &key).await;
        let took = started.elapsed();
        sampling.abort();
        assert_eq!(verdict, Ok(ScanVerdict::Clean));
        times.push(took);
        println!(
            "S3 -> clamd scan_object: {:.2} s ({:.0} MB/s), our peak RSS {:.0} MB (before {:.0} MB)",
            took.as_secs_f64(),
            mbps(size, took),
            peak.load(Ordering::Relaxed) as f64 / 1024.0,
            before
        );
    }
    times.sort();
    println!(
        "=> scan_object {} MB: median {:.2} s, {:.0} MB/s",
        size / MB,
        times[1].as_secs_f64(),
        mbps(size, times[1])
    );
    state.blob.delete(&key).await.unwrap();

    // Latency of scanning a 1 MB buffer (what a scan adds to a 1 MB direct upload).
    let one_mb = noise(MB, 42);
    let mut lat = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        assert_eq!(scanner.scan_bytes(&one_mb).await, Ok(ScanVerdict::Clean));
        lat.push(started.elapsed());
    }
    lat.sort();
    println!(
        "=> 1 MB buffer scan, 50 runs: p50 {}, p95 {}, max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.95)),
        ms(*lat.last().unwrap())
    );
    let mut pings = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        scanner.ping().await.unwrap();
        pings.push(started.elapsed());
    }
    pings.sort();
    println!("PING: p50 {}", ms(percentile(&pings, 0.5)));

    // A small buffer through a fresh reader, to show a per-scan floor.
    let mut small = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let r = tokio::io::repeat(b'x').take(1024);
        assert_eq!(scanner.scan_reader(r).await, Ok(ScanVerdict::Clean));
        small.push(started.elapsed());
    }
    small.sort();
    println!("1 KiB scan: p50 {}", ms(percentile(&small, 0.5)));

    if !clamd_pid.is_empty() {
        println!(
            "clamd RSS now {:.0} MB, peak {:.0} MB",
            rss_mb(&clamd_pid, "VmRSS").unwrap_or(f64::NAN),
            rss_mb(&clamd_pid, "VmHWM").unwrap_or(f64::NAN)
        );
    }
}
