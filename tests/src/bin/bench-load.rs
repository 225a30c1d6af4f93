//! Load benchmark (prints figures; exits non-zero only on a 5xx, a transport
//! error, a lost or duplicated message or media, or an orphan): `LOAD_CLIENTS`
//! (32) concurrent clients for `LOAD_SECONDS` (60) against the whole app (every
//! function's routes as `scripts/dev` serves them, uploads scanned by clamd) on
//! a loopback port, over the real DynamoDB (ministack) and S3 (s3s-fs) servers.
//!
//! Each client is a member of one of the service's channels (4 members a
//! channel) and loops over a weighted mix: upload a media (direct, as the
//! user), bind one of its uploads in a media message, get one of its media,
//! delete one of its media messages, and have an admin block and unblock it
//! (`/block-user`, `/unblock-user`). Each client keeps a ledger of what it
//! created and deleted. Afterwards the ledgers are compared with what the API
//! lists (every channel's messages, every media by SID) and what the table
//! holds, one sweep (`media_events::sweep`) runs, and the bucket is compared
//! with the media records (objects without records, ready records without
//! objects).
//!
//! Run with `scripts/bench-load` (starts the servers like scripts/test).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_media::model::MediaStatus;
use chat_media::sid::{ChannelSid, ServiceSid};
use chat_media_tests::reqwest::{Method, RequestBuilder, StatusCode};
use chat_media_tests::{sid, Fixture, TestApp};
use futures::StreamExt;
use serde_json::Value;

const MEMBERS_PER_CHANNEL: usize = 4;
/// Unbound uploads a client keeps at most (the service allows 20 an identity).
const MAX_UNBOUND: usize = 8;
const UPLOAD_BYTES: usize = 32 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Upload,
    Bind,
    Get,
    Delete,
    Block,
    Unblock,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::Upload,
        Op::Bind,
        Op::Get,
        Op::Delete,
        Op::Block,
        Op::Unblock,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Upload => "upload (direct, 32 KiB, scanned)",
            Op::Bind => "bind (media message)",
            Op::Get => "get media",
            Op::Delete => "delete message",
            Op::Block => "block-user",
            Op::Unblock => "unblock-user",
        }
    }

    fn expected(self) -> StatusCode {
        match self {
            Op::Upload | Op::Bind => StatusCode::CREATED,
            Op::Delete => StatusCode::NO_CONTENT,
            Op::Get | Op::Block | Op::Unblock => StatusCode::OK,
        }
    }
}

/// What one client did and saw.
#[derive(Default)]
struct Ledger {
    latencies: BTreeMap<Op, Vec<Duration>>,
    /// Answers other than the expected one, by operation and status (0: no answer).
    unexpected: BTreeMap<(Op, u16), usize>,
    uploaded: Vec<String>,
    /// (message, media) of every media message this client created.
    bound: Vec<(String, String)>,
    /// (message, media) of the media messages it deleted.
    deleted: Vec<(String, String)>,
}

struct Client {
    app: &'static TestApp,
    fixture: Fixture,
    rng: u64,
    unbound: Vec<String>,
    live: Vec<(String, String)>,
    ledger: Ledger,
    body: bytes::Bytes,
}

impl Client {
    fn next(&mut self, n: usize) -> usize {
        // xorshift64*: enough to mix operations.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }

    /// Sends `req` as `op`, records its latency and status; the JSON body when expected.
    async fn call(&mut self, op: Op, req: RequestBuilder) -> Option<Value> {
        let started = Instant::now();
        let answer = req.send().await;
        let (status, body) = match answer {
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                (status.as_u16(), text)
            }
            Err(e) => (0, e.to_string()),
        };
        self.ledger
            .latencies
            .entry(op)
            .or_default()
            .push(started.elapsed());
        if status != op.expected().as_u16() {
            if status == 0 || status >= 500 {
                eprintln!("{op:?}: {status} {body}");
            }
            *self.ledger.unexpected.entry((op, status)).or_default() += 1;
            return None;
        }
        Some(serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn upload(&mut self) {
        let n = self.ledger.uploaded.len();
        let req = self
            .app
            .user(
                &self.fixture.token,
                Method::POST,
                &format!("{}?Filename=load-{n}.png", self.fixture.uploads_path()),
            )
            .header("Content-Type", "image/png")
            .body(self.body.clone());
        if let Some(media) = self.call(Op::Upload, req).await {
            let media = sid(&media);
            self.ledger.uploaded.push(media.clone());
            self.unbound.push(media);
        }
    }

    async fn bind(&mut self) {
        let Some(media) = self.unbound.pop() else {
            return self.upload().await;
        };
        let req = self
            .app
            .user(
                &self.fixture.token,
                Method::POST,
                &self.fixture.messages_path(),
            )
            .form(&[("MediaSid", media.as_str())]);
        match self.call(Op::Bind, req).await {
            Some(message) => {
                let pair = (sid(&message), media);
                self.ledger.bound.push(pair.clone());
                self.live.push(pair);
            }
            None => self.unbound.push(media),
        }
    }

    async fn get(&mut self) {
        let total = self.unbound.len() + self.live.len();
        if total == 0 {
            return self.upload().await;
        }
        let i = self.next(total);
        let media = match self.unbound.get(i) {
            Some(m) => m.clone(),
            None => self.live[i - self.unbound.len()].1.clone(),
        };
        let req = self.app.user(
            &self.fixture.token,
            Method::GET,
            &format!("{}/{media}", self.fixture.uploads_path()),
        );
        self.call(Op::Get, req).await;
    }

    async fn delete(&mut self) {
        if self.live.is_empty() {
            return self.bind().await;
        }
        let i = self.next(self.live.len());
        let (message, media) = self.live.swap_remove(i);
        let req = self.app.user(
            &self.fixture.token,
            Method::DELETE,
            &format!("{}/{message}", self.fixture.messages_path()),
        );
        match self.call(Op::Delete, req).await {
            Some(_) => self.ledger.deleted.push((message, media)),
            None => self.live.push((message, media)),
        }
    }

    async fn block_unblock(&mut self) {
        let form = [
            ("chatChannelSid", self.fixture.channel_sid.to_string()),
            ("memberSid", self.fixture.member_sid.to_string()),
        ];
        let block = self.app.admin(Method::POST, "/block-user").form(&form);
        self.call(Op::Block, block).await;
        let unblock = self.app.admin(Method::POST, "/unblock-user").form(&form);
        self.call(Op::Unblock, unblock).await;
    }

    async fn run(mut self, until: Instant) -> Ledger {
        while Instant::now() < until {
            match self.next(100) {
                0..30 if self.unbound.len() < MAX_UNBOUND => self.upload().await,
                0..55 => self.bind().await,
                55..80 => self.get().await,
                80..92 => self.delete().await,
                _ => self.block_unblock().await,
            }
        }
        self.ledger
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every message of a channel, as the API lists them (admin, all pages).
async fn list_messages(app: &TestApp, path: String) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = app.url(&format!("{path}?PageSize=1000"));
    loop {
        let resp = app
            .http
            .get(&url)
            .basic_auth(
                chat_media_tests::credentials().account_sid.as_str(),
                Some(chat_media_tests::credentials().auth_token),
            )
            .send()
            .await
            .expect("list messages");
        assert_eq!(resp.status(), StatusCode::OK, "listing {url}");
        let page: Value = resp.json().await.expect("a JSON page");
        out.extend(page["messages"].as_array().cloned().unwrap_or_default());
        match page["meta"]["next_page_url"].as_str() {
            Some(next) => url = next.to_owned(),
            None => return out,
        }
    }
}

#[tokio::main]
async fn main() {
    let clients = env_or("LOAD_CLIENTS", 32) as usize;
    let seconds = env_or("LOAD_SECONDS", 60);
    let app: &'static TestApp = Box::leak(Box::new(
        TestApp::spawn_scanning(chat_media_tests::clamd::shared_scanner()).await,
    ));

    // One service; channels of MEMBERS_PER_CHANNEL members, one per client.
    let service = app.create_service().await;
    let mut fixtures: Vec<Fixture> = Vec::new();
    for i in 0..clients {
        let identity = format!("load-{i}");
        let f = if i % MEMBERS_PER_CHANNEL == 0 {
            let name = format!("load channel {}", i / MEMBERS_PER_CHANNEL);
            app.channel_with_member(&service, &[("FriendlyName", name.as_str())], &identity)
                .await
        } else {
            let first = &fixtures[i - i % MEMBERS_PER_CHANNEL];
            app.join(first, &identity, None).await
        };
        fixtures.push(f);
    }
    let service_sid: ServiceSid = fixtures[0].service_sid.clone();
    let channels: Vec<(ChannelSid, String)> = fixtures
        .iter()
        .step_by(MEMBERS_PER_CHANNEL)
        .map(|f| (f.channel_sid.clone(), f.messages_path()))
        .collect();

    println!(
        "load: {clients} clients for {seconds} s, {} channels of {MEMBERS_PER_CHANNEL} members, \
         one service, uploads scanned by clamd, {} cores",
        channels.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let body = bytes::Bytes::from(chat_media_tests::png_like(UPLOAD_BYTES));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = fixtures
        .into_iter()
        .enumerate()
        .map(|(i, fixture)| {
            let client = Client {
                app,
                fixture,
                rng: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
                unbound: Vec::new(),
                live: Vec::new(),
                ledger: Ledger::default(),
                body: body.clone(),
            };
            tokio::spawn(client.run(until))
        })
        .collect();
    let mut ledgers = Vec::new();
    for t in tasks {
        ledgers.push(t.await.expect("client task"));
    }
    let wall = started.elapsed();

    // Figures per operation.
    let mut all: BTreeMap<Op, Vec<Duration>> = BTreeMap::new();
    let mut unexpected: BTreeMap<(Op, u16), usize> = BTreeMap::new();
    for l in &ledgers {
        for (op, lat) in &l.latencies {
            all.entry(*op).or_default().extend(lat);
        }
        for (k, n) in &l.unexpected {
            *unexpected.entry(*k).or_default() += n;
        }
    }
    println!("\n| operation | requests | req/s | p50 ms | p99 ms | other answers |");
    println!("|---|---:|---:|---:|---:|---|");
    let mut total = 0;
    for op in Op::ALL {
        let mut lat = all.remove(&op).unwrap_or_default();
        if lat.is_empty() {
            continue;
        }
        lat.sort();
        let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
        let other: Vec<String> = unexpected
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|((_, s), n)| format!("{n}×{s}"))
            .collect();
        total += lat.len();
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            op.name(),
            lat.len(),
            lat.len() as f64 / wall.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            if other.is_empty() {
                "-".into()
            } else {
                other.join(", ")
            },
        );
    }
    println!(
        "| all | {total} | {:.1} | | | |",
        total as f64 / wall.as_secs_f64()
    );
    let server_errors: usize = unexpected
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();
    let no_answer: usize = unexpected
        .iter()
        .filter(|((_, s), _)| *s == 0)
        .map(|(_, n)| n)
        .sum();

    // What the clients created against what the API lists.
    let uploaded: HashSet<String> = ledgers.iter().flat_map(|l| l.uploaded.clone()).collect();
    let bound: HashMap<String, String> = ledgers.iter().flat_map(|l| l.bound.clone()).collect();
    let deleted: HashMap<String, String> = ledgers.iter().flat_map(|l| l.deleted.clone()).collect();
    let mut listed: Vec<(String, Option<String>)> = Vec::new();
    for (_, path) in &channels {
        for m in list_messages(app, path.clone()).await {
            let media = m["media"]["sid"].as_str().map(str::to_owned);
            listed.push((sid(&m), media));
        }
    }
    let listed_sids: HashSet<&String> = listed.iter().map(|(m, _)| m).collect();
    let expected_messages: HashSet<&String> =
        bound.keys().filter(|m| !deleted.contains_key(*m)).collect();
    let lost_messages = expected_messages
        .iter()
        .filter(|m| !listed_sids.contains(*m))
        .count();
    let mut seen_media = HashSet::new();
    let duplicated_messages = listed.len() - listed_sids.len()
        + listed
            .iter()
            .filter(|(m, media)| {
                let wrong = !expected_messages.contains(m)
                    || media.as_ref() != bound.get(m)
                    || media
                        .as_ref()
                        .is_some_and(|x| !seen_media.insert(x.clone()));
                wrong
            })
            .count();

    // Every media by SID: live ones are served (bound to their message), deleted ones 404.
    let media_of: HashMap<&String, &String> = bound.iter().map(|(m, me)| (me, m)).collect();
    let checks = uploaded.iter().map(|media| {
        let url = format!("{}/{media}", chat_media_tests::media_path(&service_sid));
        let message = media_of.get(media).map(|m| (*m).clone());
        let gone = message.as_ref().is_some_and(|m| deleted.contains_key(m));
        let req = app.admin(Method::GET, &url);
        async move {
            let resp = req.send().await.expect("get media");
            let status = resp.status();
            let json: Value = resp.json().await.unwrap_or(Value::Null);
            if gone {
                (status != StatusCode::NOT_FOUND) as usize * 2
            } else {
                let ok = status == StatusCode::OK
                    && json["status"] == "ready"
                    && json["message_sid"].as_str().map(str::to_owned) == message;
                (!ok) as usize
            }
        }
    });
    let results: Vec<usize> = futures::stream::iter(checks)
        .buffer_unordered(32)
        .collect()
        .await;
    let lost_media = results.iter().filter(|r| **r == 1).count();
    let deleted_still_served = results.iter().filter(|r| **r == 2).count();
    let records = app.media_records(&service_sid).await;
    let unknown_records = records
        .iter()
        .filter(|m| !uploaded.contains(m.sid.as_str()))
        .count();
    let live_records: HashSet<String> = records.iter().map(|m| m.sid.to_string()).collect();
    let deleted_records = deleted
        .values()
        .filter(|me| live_records.contains(*me))
        .count();

    // One sweep, then the bucket against the records.
    let report = media_events::sweep(&app.state, chat_media_tests::now())
        .await
        .expect("the sweep runs");
    let records = app.media_records(&service_sid).await;
    let objects: HashSet<String> = app.objects_of(&service_sid).await.into_iter().collect();
    let keys: HashSet<&str> = records.iter().map(|m| m.object_key.as_str()).collect();
    let objects_without_records = objects
        .iter()
        .filter(|k| !keys.contains(k.as_str()))
        .count();
    let records_without_objects = records
        .iter()
        .filter(|m| m.status == MediaStatus::Ready && !objects.contains(&m.object_key))
        .count();

    println!(
        "\nresponses >= 500: {server_errors}; no answer: {no_answer}\n\
         messages: {} created, {} deleted, {} listed; lost {lost_messages}, duplicated or unexpected {duplicated_messages}\n\
         media: {} uploaded, {} bound, {} deleted with their message; lost {lost_media}, \
         deleted but still served {deleted_still_served}, records nobody uploaded {unknown_records}, \
         records of deleted media {deleted_records}\n\
         sweep: {report:?}\n\
         after one sweep: {} objects, {} records; objects without records {objects_without_records}, \
         ready records without objects {records_without_objects}",
        bound.len(),
        deleted.len(),
        listed.len(),
        uploaded.len(),
        bound.len(),
        deleted.len(),
        objects.len(),
        records.len(),
    );
    let failures = server_errors
        + no_answer
        + lost_messages
        + duplicated_messages
        + lost_media
        + deleted_still_served
        + unknown_records
        + deleted_records
        + objects_without_records
        + records_without_objects;
    if failures > 0 {
        println!("FAILED: {failures} problems above");
        std::process::exit(1);
    }
    println!("OK: no 5xx, nothing lost or duplicated, no orphans");
}
