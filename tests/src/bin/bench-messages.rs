//! Benchmark (prints figures; not a test): create-message with media and get-media
//! through the app on a local port, against the real DynamoDB (ministack) and S3
//! (s3s-fs) servers, with 1, 8 and 32 concurrent clients. For each: requests/s,
//! p50/p99 latency, and the DynamoDB calls per request as counted by the SDK
//! interceptor (returned by the local runner in a response header).
//!
//! Run with `scripts/bench-messages` (starts the servers like scripts/test).
//! `BENCH_REQUESTS` sets the requests per row (default 256).

use std::time::{Duration, Instant};

use chat_media::model::Media;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{dynamodb_calls, Fixture, TestApp};

const LEVELS: [usize; 3] = [1, 8, 32];

struct Sample {
    latency: Duration,
    calls: u32,
    status: u16,
}

struct Row {
    what: String,
    clients: usize,
    requests: usize,
    wall: Duration,
    samples: Vec<Sample>,
    /// Refusals by status (a busy channel answers 429).
    refused: Vec<u16>,
}

impl Row {
    fn ok_per_sec(&self) -> f64 {
        (self.requests - self.refused.len()) as f64 / self.wall.as_secs_f64()
    }

    fn p99(&self) -> Duration {
        let mut lat: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        lat.sort();
        lat[((lat.len() as f64 * 0.99).ceil() as usize).clamp(1, lat.len()) - 1]
    }

    fn print(&self) {
        let mut lat: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
        let calls: Vec<u32> = self.samples.iter().map(|s| s.calls).collect();
        let mean = calls.iter().map(|c| *c as f64).sum::<f64>() / calls.len() as f64;
        let mut refused = self.refused.clone();
        refused.sort();
        refused.dedup();
        let refused = refused
            .iter()
            .map(|s| format!("{}×{s}", self.refused.iter().filter(|r| *r == s).count()))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {} / {:.2} / {} |",
            self.what,
            self.clients,
            self.requests,
            if refused.is_empty() {
                "0".into()
            } else {
                refused
            },
            (self.requests - self.refused.len()) as f64 / self.wall.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            calls.iter().min().unwrap(),
            mean,
            calls.iter().max().unwrap(),
        );
    }
}

/// A service with one channel per client (or one shared channel), each client a
/// member with a token.
struct Setup {
    fixtures: Vec<(Fixture, String)>,
}

async fn setup(app: &TestApp, clients: usize, shared_channel: bool) -> Setup {
    let base = app.service_with_member("client-0").await;
    let mut fixtures = Vec::new();
    for i in 0..clients {
        let identity = format!("client-{i}");
        let f = if i == 0 {
            base.clone()
        } else if shared_channel {
            app.join(&base, &identity, None).await
        } else {
            app.channel_with_member(
                &base.service,
                &[("FriendlyName", identity.as_str())],
                &identity,
            )
            .await
        };
        let identity = f.member["identity"].as_str().unwrap().to_owned();
        fixtures.push((f, identity));
    }
    Setup { fixtures }
}

/// Runs `requests` requests split over `clients` workers; each worker's request
/// `i` is made by `make(worker, i)`.
async fn run<F, Fut>(what: &str, clients: usize, requests: usize, make: F) -> Row
where
    F: Fn(usize, usize) -> Fut,
    Fut: std::future::Future<Output = (StatusCode, u32)>,
{
    let per_worker = requests / clients;
    let started = Instant::now();
    let workers = (0..clients).map(|w| {
        let make = &make;
        async move {
            let mut samples = Vec::with_capacity(per_worker);
            for i in 0..per_worker {
                let t = Instant::now();
                let (status, calls) = make(w, i).await;
                assert!(
                    status.is_success()
                        || status.is_redirection()
                        || status == StatusCode::TOO_MANY_REQUESTS,
                    "{what}: {status}"
                );
                samples.push(Sample {
                    latency: t.elapsed(),
                    calls,
                    status: status.as_u16(),
                });
            }
            samples
        }
    });
    let samples: Vec<Sample> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    Row {
        what: what.to_owned(),
        clients,
        requests: samples.len(),
        wall: started.elapsed(),
        refused: samples
            .iter()
            .filter(|s| s.status >= 400)
            .map(|s| s.status)
            .collect(),
        samples,
    }
}

/// Sends every client's uploads as media messages; returns the row, the setup and
/// the media each client sent.
async fn create_with_media(
    app: &TestApp,
    requests: usize,
    clients: usize,
    shared: bool,
) -> (Row, Setup, Vec<Vec<Media>>) {
    let s = setup(app, clients, shared).await;
    let per_worker = requests / clients;
    // Uploads made before the clock starts, as the upload function leaves them.
    let mut media = Vec::new();
    for (f, identity) in &s.fixtures {
        let mut mine = Vec::new();
        for _ in 0..per_worker {
            mine.push(
                app.ready_media(
                    &f.service_sid,
                    identity,
                    "image/jpeg",
                    Some("photo.jpg"),
                    &[0xFF; 2048],
                )
                .await,
            );
        }
        media.push(mine);
    }
    let what = if shared {
        "create-message (media), one shared channel"
    } else {
        "create-message (media)"
    };
    let row = run(what, clients, requests, |w, i| {
        let (f, _) = &s.fixtures[w];
        let req = app
            .user(&f.token, Method::POST, &f.messages_path())
            .form(&[("MediaSid", media[w][i].sid.as_str())]);
        async move {
            let resp = req.send().await.expect("sent");
            (resp.status(), dynamodb_calls(resp.headers()))
        }
    })
    .await;
    (row, s, media)
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let app = TestApp::spawn().await;
    println!(
        "| operation | clients | requests | refused | ok req/s | p50 ms | p99 ms | DynamoDB calls min / mean / max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut separate = None;
    for clients in LEVELS {
        let (create, s, media) = create_with_media(&app, requests, clients, false).await;
        create.print();
        // Every client reads the media it sent, as a member of the channel.
        let get = run("get-media (member, attached)", clients, requests, |w, i| {
            let (f, _) = &s.fixtures[w];
            let req = app.user(&f.token, Method::GET, &f.media_path(&media[w][i].sid));
            async move {
                let resp = req.send().await.expect("sent");
                (resp.status(), dynamodb_calls(resp.headers()))
            }
        })
        .await;
        get.print();
        separate = Some(create);
    }
    // Every client sending to one channel: each takes the next index with an
    // atomic ADD, so none races for it.
    let mut shared = None;
    for clients in [8, 32] {
        let (row, _, _) = create_with_media(&app, requests, clients, true).await;
        row.print();
        shared = Some(row);
    }
    if let (Some(one), Some(many)) = (shared, separate) {
        let too_busy = one.refused.iter().filter(|s| **s == 429).count();
        println!(
            "\nGOAL 32 senders, one channel vs 32 channels: throughput {:.2}x (goal >= 0.70), \
             p99 {:.2}x (goal <= 3.00), {too_busy} x 429 (goal 0)",
            one.ok_per_sec() / many.ok_per_sec(),
            one.p99().as_secs_f64() / many.p99().as_secs_f64(),
        );
    }
}
