//! Benchmark (prints figures; not a test): the latency an `onMessageSend`
//! pre-event hook adds to create-message. One user sends text messages one at a
//! time through the app on a local port (real DynamoDB and S3), first with no
//! hook, then with a hook (a real HTTP receiver on 127.0.0.1) answering in 0 ms
//! and in 50 ms. Prints p50/p90/p99 and the p50 added over no hook.
//!
//! Run with `scripts/bench-webhooks`; `BENCH_REQUESTS` sets the sends per row (default 200).

use std::time::{Duration, Instant};

use chat_media_tests::hooks::{HookReceiver, Reply};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{send, Fixture, TestApp};

/// A user's channel in a new service, sending through `hook` if any.
async fn fixture(app: &TestApp, hook: Option<&HookReceiver>) -> Fixture {
    let f = app.service_with_member("alice").await;
    if let Some(hook) = hook {
        let url = hook.url("/pre");
        let (status, body) = send(app.admin(Method::POST, &f.service_path()).form(&[
            ("PreWebhookUrl", url.as_str()),
            ("WebhookFilters", "onMessageSend"),
        ]))
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Warm-up (connections, first reads).
    for _ in 0..5 {
        app.send_text(&f, &f.token, "warm-up").await;
    }
    f
}

fn print(what: &str, mut lat: Vec<Duration>) -> Duration {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {what} | {} | {:.1} | {:.1} | {:.1} |",
        lat.len(),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99))
    );
    pct(0.5)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let app = TestApp::spawn().await;
    let instant = HookReceiver::answering(Reply::ok()).await;
    let slow = HookReceiver::answering(Reply::ok().after(Duration::from_millis(50))).await;
    let rows = [
        ("no hook", fixture(&app, None).await),
        (
            "onMessageSend hook, answers in 0 ms",
            fixture(&app, Some(&instant)).await,
        ),
        (
            "onMessageSend hook, answers in 50 ms",
            fixture(&app, Some(&slow)).await,
        ),
    ];
    // Round-robin, so that load from elsewhere on the machine hits every row alike.
    let mut lat = vec![Vec::with_capacity(n); rows.len()];
    for i in 0..n {
        for (row, (_, f)) in rows.iter().enumerate() {
            let started = Instant::now();
            let (status, body) = app.post_text(f, &f.token, &format!("message {i}")).await;
            lat[row].push(started.elapsed());
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    println!("| create-message (text, user) | sends | p50 ms | p90 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut p50 = Vec::new();
    for ((what, _), lat) in rows.iter().zip(lat) {
        p50.push(print(what, lat));
    }
    let (base, zero, fifty) = (p50[0], p50[1], p50[2]);
    let added = |d: Duration| (d.as_secs_f64() - base.as_secs_f64()) * 1000.0;
    println!();
    println!(
        "p50 added by the hook: {:.1} ms (0 ms hook), {:.1} ms (50 ms hook)",
        added(zero),
        added(fifty)
    );
}
