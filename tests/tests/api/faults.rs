//! Dependencies failing mid-operation, through the harness's fault proxy
//! (`chat_media_tests::faults`): callers get a Twilio 503 (never a 500, never a
//! hang), nothing is half-written, nothing internal leaks, and one sweep after the
//! dependency returns leaves no orphan object, no dangling media and no upload
//! stuck in `uploading` or `scanning`. Also: a finalizer that lost its lease
//! deletes nothing.

use std::time::Duration;

use chat_media::config::{AwsOptions, Settings};
use chat_media::model::{Media, MediaStatus};
use chat_media::upload::FINALIZE_LEASE_SECS;
use chat_media_tests::clamd::shared_scanner;
use chat_media_tests::faults::{Fault, FaultProxy};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    aws_options, json, now, send, sid, state_with, sweeping, Fixture, TestApp, PNG,
};
use serde_json::Value;

/// The S3 endpoint the tests run against.
fn s3_endpoint() -> String {
    aws_options().s3_endpoint.expect("an S3 endpoint")
}

#[tokio::test]
async fn a_finalizer_that_lost_its_lease_deletes_nothing() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", PNG)
        .await;
    let media = sid(&session);
    let key = app.record(&media).await.object_key;

    // Finalizer A (the S3 event) reaches S3 through a proxy that holds its calls,
    // and works at a `now` so far back that its lease has already run out.
    let proxy = FaultProxy::start(&s3_endpoint()).await;
    let slow = state_with(
        &AwsOptions {
            s3_endpoint: Some(proxy.url()),
            ..aws_options()
        },
        Settings::default(),
    )
    .await;
    proxy.set(Fault::Stall);
    let stale = now() - 2 * FINALIZE_LEASE_SECS;
    let event = app.s3_object_created(&key);
    let a = tokio::spawn(async move { media_events::handle(&slow, event, stale).await });
    // A holds the (lapsed) lease and waits on S3.
    for _ in 0..200 {
        if app.record(&media).await.finalizing_until == Some(stale + FINALIZE_LEASE_SECS) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.record(&media).await.finalizing_until,
        Some(stale + FINALIZE_LEASE_SECS),
        "finalizer A claimed the upload"
    );

    // Finalizer B (the complete call) takes the lapsed lease over and finishes.
    let complete = format!("{}/Complete", f.media_path(&media.parse().unwrap()));
    let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");

    // A goes on, loses its write, and must leave B's media alone.
    proxy.set(Fault::Pass);
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), a)
        .await
        .expect("finalizer A ends")
        .unwrap()
        .expect("a lost lease is not an error to retry");
    assert_eq!(report["orphans_deleted"], json!([]), "{report}");
    assert_eq!(report["in_progress"], json!([key]), "{report}");
    assert_eq!(app.record(&media).await.status, MediaStatus::Ready);
    assert_eq!(
        app.object(&key).await.as_deref(),
        Some(PNG),
        "the ready media keeps its object"
    );
    let (status, body) = app.post_media(&f, &f.token, &media).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A dependency the proxies can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dep {
    DynamoDb,
    S3,
    Clamd,
}

/// How it fails: down from the start, or dying halfway through the operation
/// (reset after half the bytes the operation moves to and from it when healthy);
/// or only slow (every chunk delayed), which must still succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Refuse,
    ResetMidway,
    Slow,
}

const MODES: [Mode; 3] = [Mode::Refuse, Mode::ResetMidway, Mode::Slow];

/// How the faulty runs answered.
#[derive(Debug, Default)]
struct Tally {
    /// A Twilio 503 from an operation that needed the failing dependency.
    unavailable: usize,
    /// media-events failed the event or sweep so Lambda retries it.
    retried: usize,
    /// Succeeded: the operation does not need the dependency, or it was only slow.
    succeeded: usize,
    /// Stored `status_reason`s read right after a faulty run.
    reasons: usize,
    problems: Vec<String>,
}

/// Each function's main operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    DirectUpload,
    CreateSession,
    CompleteSession,
    TextMessage,
    MediaMessage,
    GetMedia,
    DeleteMessage,
    BlockUser,
    S3Event,
    Sweep,
}

const OPS: [Op; 10] = [
    Op::DirectUpload,
    Op::CreateSession,
    Op::CompleteSession,
    Op::TextMessage,
    Op::MediaMessage,
    Op::GetMedia,
    Op::DeleteMessage,
    Op::BlockUser,
    Op::S3Event,
    Op::Sweep,
];

/// What an operation answered.
#[derive(Debug)]
enum Answer {
    Http(StatusCode, Value),
    /// media-events: the summary, or the error that makes Lambda retry.
    Event(Result<Value, String>),
    /// No answer within the bound.
    Hung,
}

/// No answer may take longer (the SDK's own operation timeout is 25 s).
const ANSWER_BOUND: Duration = Duration::from_secs(30);

/// Texts that would tell a caller about the inside: addresses, the scanner's
/// name, SDK and socket error wording.
fn leaks(text: &str, ports: &[u16]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let words = [
        "127.0.0.1",
        "localhost",
        "clamd",
        "dispatch",
        "exception",
        "os error",
        "hyper",
        "connection reset",
        "broken pipe",
        "sdk",
        "io error",
    ];
    if let Some(w) = words.iter().find(|w| lower.contains(*w)) {
        return Some((*w).to_owned());
    }
    ports
        .iter()
        .find(|p| text.contains(&p.to_string()))
        .map(|p| p.to_string())
}

/// One dependency failing one way, for every operation: its own app, whose
/// DynamoDB, S3 and clamd are each behind a proxy.
struct Scenario {
    dep: Dep,
    mode: Mode,
    app: TestApp,
    dynamodb: FaultProxy,
    s3: FaultProxy,
    clamd: FaultProxy,
    f: Fixture,
    moderator: String,
}

/// What an operation needs prepared while everything is healthy.
#[derive(Default)]
struct Prepared {
    media: Option<String>,
    message: Option<Value>,
    member: Option<String>,
    key: Option<String>,
}

impl Scenario {
    async fn start(dep: Dep, mode: Mode) -> Self {
        let aws = aws_options();
        let dynamodb = FaultProxy::start(aws.dynamodb_endpoint.as_deref().unwrap()).await;
        let s3 = FaultProxy::start(aws.s3_endpoint.as_deref().unwrap()).await;
        let clamd_address = std::env::var("CHAT_MEDIA_TEST_CLAMD").expect("CHAT_MEDIA_TEST_CLAMD");
        let clamd = FaultProxy::start(&clamd_address).await;
        let settings = Settings {
            // Short sessions, so the sweep after the faults can expire what a
            // failure left `uploading`; ready media keep the default day.
            upload_session_ttl: Duration::from_secs(60),
            max_unbound_uploads: 200,
            ..Settings::default()
        };
        let app = TestApp::spawn_via(
            AwsOptions {
                dynamodb_endpoint: Some(dynamodb.url()),
                s3_endpoint: Some(s3.url()),
                ..aws
            },
            settings,
            Some(clamd.scanner()),
        )
        .await;
        let f = app.service_with_member("alice").await;
        let moderator_role = f.role("default_channel_creator_role_sid");
        let (_, moderator) = app.add_member(&f, "moderator", Some(&moderator_role)).await;
        Self {
            dep,
            mode,
            app,
            dynamodb,
            s3,
            clamd,
            f,
            moderator,
        }
    }

    fn proxy(&self) -> &FaultProxy {
        match self.dep {
            Dep::DynamoDb => &self.dynamodb,
            Dep::S3 => &self.s3,
            Dep::Clamd => &self.clamd,
        }
    }

    fn ports(&self) -> Vec<u16> {
        let mut ports = vec![
            self.dynamodb.addr.port(),
            self.s3.addr.port(),
            self.clamd.addr.port(),
        ];
        let aws = aws_options();
        for endpoint in [aws.dynamodb_endpoint.unwrap(), aws.s3_endpoint.unwrap()] {
            if let Some(port) = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()) {
                ports.push(port);
            }
        }
        ports
    }

    async fn direct_upload(&self) -> (StatusCode, Value) {
        send(
            self.app
                .user(&self.f.token, Method::POST, &self.f.uploads_path())
                .header("Content-Type", "image/png")
                .body(PNG.to_vec()),
        )
        .await
    }

    /// A session with its object PUT (healthy).
    async fn uploaded_session(&self) -> String {
        let f = &self.f;
        sid(&self
            .app
            .uploaded_session(&f.token, &f.service_sid, "image/png", PNG)
            .await)
    }

    async fn ready_media(&self) -> String {
        let (status, body) = self.direct_upload().await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        sid(&body)
    }

    async fn prepare(&self, op: Op, n: usize) -> Prepared {
        let mut p = Prepared::default();
        match op {
            Op::CompleteSession => p.media = Some(self.uploaded_session().await),
            Op::MediaMessage | Op::GetMedia => p.media = Some(self.ready_media().await),
            Op::DeleteMessage => {
                let media = self.ready_media().await;
                let (status, message) = self.app.post_media(&self.f, &self.f.token, &media).await;
                assert_eq!(status, StatusCode::CREATED, "{message}");
                p.message = Some(message);
            }
            Op::BlockUser => {
                let (member, _) = self
                    .app
                    .add_member(&self.f, &format!("target{n}"), None)
                    .await;
                p.member = Some(sid(&member));
            }
            Op::S3Event => {
                let media = self.uploaded_session().await;
                p.key = Some(Media::object_key_for(
                    &self.f.service_sid,
                    &media.parse().unwrap(),
                ));
            }
            _ => {}
        }
        p
    }

    async fn act(&self, op: Op, p: &Prepared) -> Answer {
        let f = &self.f;
        let app = &self.app;
        let answer = async {
            let http = match op {
                Op::DirectUpload => self.direct_upload().await,
                Op::CreateSession => {
                    send(
                        app.user(&f.token, Method::POST, &f.sessions_path())
                            .form(&[("Size", "20000000"), ("ContentType", "video/mp4")]),
                    )
                    .await
                }
                Op::CompleteSession => {
                    let media = p.media.as_deref().unwrap().parse().unwrap();
                    let path = format!("{}/Complete", f.media_path(&media));
                    send(app.user(&f.token, Method::POST, &path)).await
                }
                Op::TextMessage => app.post_text(f, &f.token, "hello").await,
                Op::MediaMessage => {
                    app.post_media(f, &f.token, p.media.as_deref().unwrap())
                        .await
                }
                Op::GetMedia => {
                    let media = p.media.as_deref().unwrap().parse().unwrap();
                    send(app.user(&f.token, Method::GET, &f.media_path(&media))).await
                }
                Op::DeleteMessage => {
                    let path = f.message_path(p.message.as_ref().unwrap());
                    send(app.admin(Method::DELETE, &path)).await
                }
                Op::BlockUser => {
                    send(app.anon(Method::POST, "/block-user").form(&[
                        ("chatChannelSid", f.channel_sid.as_str()),
                        ("memberSid", p.member.as_deref().unwrap()),
                        ("Token", self.moderator.as_str()),
                    ]))
                    .await
                }
                Op::S3Event => {
                    let event = app.s3_object_created(p.key.as_deref().unwrap());
                    let handled = media_events::handle(&app.state, event, now()).await;
                    return Answer::Event(handled.map_err(|e| e.to_string()));
                }
                Op::Sweep => {
                    let swept = media_events::sweep(&app.state, now()).await;
                    return Answer::Event(
                        swept
                            .map(|r| serde_json::to_value(r).unwrap())
                            .map_err(|e| e.to_string()),
                    );
                }
            };
            Answer::Http(http.0, http.1)
        };
        tokio::time::timeout(ANSWER_BOUND, answer)
            .await
            .unwrap_or(Answer::Hung)
    }

    /// Runs every operation healthy (to measure it), then with the fault.
    async fn run(&self) -> Tally {
        let mut tally = Tally::default();
        let problems = &mut tally.problems;
        let ports = self.ports();
        for (n, op) in OPS.into_iter().enumerate() {
            let healthy = self.prepare(op, 2 * n).await;
            let before = self.proxy().forwarded();
            let baseline = self.act(op, &healthy).await;
            let moved = self.proxy().forwarded() - before;
            let ok = match &baseline {
                Answer::Http(status, _) => status.is_success(),
                Answer::Event(r) => r.is_ok(),
                Answer::Hung => false,
            };
            assert!(ok, "{op:?} healthy: {baseline:?}");

            let faulty = self.prepare(op, 2 * n + 1).await;
            self.proxy().set(match self.mode {
                Mode::Refuse => Fault::Refuse,
                Mode::ResetMidway => Fault::ResetAfter(moved / 2),
                Mode::Slow => Fault::Delay(Duration::from_millis(20)),
            });
            let answer = self.act(op, &faulty).await;
            self.proxy().set(Fault::Pass);
            let case = format!("{op:?} with {:?} {:?}", self.dep, self.mode);
            // What the failure stored says nothing internal either.
            for m in self.app.media_records(&self.f.service_sid).await {
                let Some(reason) = m.status_reason else {
                    continue;
                };
                tally.reasons += 1;
                if let Some(leak) = leaks(&reason, &ports) {
                    problems.push(format!("{case}: {} status_reason leaks {leak:?}", m.sid));
                }
            }
            // An operation that never reaches the dependency is not affected; one
            // that does answers 503 (a delete whose S3 call fails has already
            // committed: 204, and the sweep deletes the object).
            let unaffected = moved == 0
                || self.mode == Mode::Slow
                || (op == Op::DeleteMessage && self.dep == Dep::S3);
            match &answer {
                Answer::Hung => problems.push(format!("{case}: no answer within {ANSWER_BOUND:?}")),
                Answer::Http(status, body) => {
                    // Error bodies only: a success carries the app's own URLs.
                    let error = !status.is_success();
                    if let Some(leak) = leaks(&body.to_string(), &ports).filter(|_| error) {
                        problems.push(format!("{case}: the answer leaks {leak:?}: {body}"));
                    }
                    let expected = unaffected && status.is_success()
                        || !unaffected
                            && *status == StatusCode::SERVICE_UNAVAILABLE
                            && body["code"] == 20503
                            && body["status"] == 503
                            && body["more_info"].is_string();
                    if !expected {
                        problems.push(format!("{case}: {status} {body}"));
                    } else if status.is_success() {
                        tally.succeeded += 1;
                    } else {
                        tally.unavailable += 1;
                    }
                }
                // media-events fails the event so Lambda retries it, or handles it.
                Answer::Event(Ok(_)) => tally.succeeded += 1,
                Answer::Event(Err(e)) if e.contains("unrecognised") || unaffected => {
                    problems.push(format!("{case}: {e}"))
                }
                Answer::Event(Err(_)) => tally.retried += 1,
            }
        }
        tally
    }
}

#[tokio::test]
async fn every_operation_fails_cleanly_and_one_sweep_repairs_what_is_left() {
    // The sweep at the end acts on the whole table.
    let _sweeping = sweeping().await;
    let checker = TestApp::spawn_scanning(shared_scanner()).await;
    let mut scenarios = Vec::new();
    for dep in [Dep::DynamoDb, Dep::S3, Dep::Clamd] {
        for mode in MODES {
            scenarios.push(Scenario::start(dep, mode).await);
        }
    }
    let mut total = Tally::default();
    for t in futures::future::join_all(scenarios.iter().map(|s| s.run())).await {
        total.unavailable += t.unavailable;
        total.retried += t.retried;
        total.succeeded += t.succeeded;
        total.reasons += t.reasons;
        total.problems.extend(t.problems);
    }
    let problems = total.problems;

    // Every dependency is back: one sweep, late enough that whatever a failure
    // left `uploading` has expired (sessions of 60 s, leases of 120 s) and a scan
    // that died has lost its lease.
    let report = media_events::sweep(&checker.state, now() + 2 * FINALIZE_LEASE_SECS)
        .await
        .expect("the sweep runs");
    let (mut orphans, mut dangling, mut stuck) = (Vec::new(), Vec::new(), Vec::new());
    for s in &scenarios {
        let records = checker.media_records(&s.f.service_sid).await;
        for key in checker.objects_of(&s.f.service_sid).await {
            let kept = records
                .iter()
                .any(|m| m.object_key == key && m.status != MediaStatus::Rejected);
            if !kept {
                orphans.push(key);
            }
        }
        for m in &records {
            if matches!(m.status, MediaStatus::Uploading | MediaStatus::Scanning) {
                stuck.push(format!("{} {}", m.sid, m.status.as_str()));
            }
            if m.status == MediaStatus::Ready && !checker.object_exists(&m.object_key).await {
                dangling.push(format!("{} is ready without its object", m.sid));
            }
            if let (Some(channel), Some(message)) = (&m.channel_sid, &m.message_sid) {
                let stored = checker
                    .state
                    .store
                    .get_message(channel, message)
                    .await
                    .unwrap();
                if stored.and_then(|msg| msg.media).map(|x| x.sid) != Some(m.sid.clone()) {
                    dangling.push(format!("{} is bound to a missing message", m.sid));
                }
            }
        }
        let (status, list) = send(checker.admin(Method::GET, &s.f.messages_path())).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        for message in list["messages"].as_array().unwrap() {
            let Some(media) = message["media"]["sid"].as_str() else {
                continue;
            };
            match checker.media_record(media).await {
                Some(m) if m.status == MediaStatus::Ready => {}
                other => dangling.push(format!(
                    "message {} carries media {media}: {:?}",
                    sid(message),
                    other.map(|m| m.status)
                )),
            }
        }
    }

    let cases = OPS.len() * scenarios.len();
    let non_503 = problems.len();
    println!(
        "faults: {} operations × 3 dependencies × {} modes = {cases} cases ({} answered 503, \
         {} events left to Lambda's retry, {} unaffected or only slow; {} stored reasons read): \
         {non_503} non-503 or leaking, {} orphans, {} dangling, {} stuck after one sweep",
        OPS.len(),
        MODES.len(),
        total.unavailable,
        total.retried,
        total.succeeded,
        total.reasons,
        orphans.len(),
        dangling.len(),
        stuck.len()
    );
    tracing::info!(?report, "sweep after the faults");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(orphans.is_empty(), "orphan objects: {orphans:#?}");
    assert!(dangling.is_empty(), "{dangling:#?}");
    assert!(stuck.is_empty(), "{stuck:#?}");
}

/// A dependency that hangs (accepts, then never answers): every operation still
/// answers within [`ANSWER_BOUND`], 503 when it needs the dependency (the SDK's
/// 25 s operation timeout, the scanner's read timeout), and no operation waits on
/// the hung dependency twice. Each operation runs on its own proxies, all at once.
#[tokio::test]
async fn a_hung_dependency_is_answered_within_the_bound() {
    // One of the operations is the (table-wide) sweep.
    let _sweeping = sweeping().await;
    let mut runs = Vec::new();
    for dep in [Dep::DynamoDb, Dep::S3, Dep::Clamd] {
        for op in OPS {
            runs.push(async move {
                let s = Scenario::start(dep, Mode::Refuse).await;
                let p = s.prepare(op, 0).await;
                s.proxy().set(Fault::Stall);
                let answer = s.act(op, &p).await;
                s.proxy().set(Fault::Pass);
                let case = format!("{op:?} with {dep:?} hung");
                match answer {
                    Answer::Hung => Some(format!("{case}: no answer within {ANSWER_BOUND:?}")),
                    Answer::Http(status, body)
                        if !status.is_success()
                            && (status != StatusCode::SERVICE_UNAVAILABLE
                                || body["code"] != 20503) =>
                    {
                        Some(format!("{case}: {status} {body}"))
                    }
                    _ => None,
                }
            });
        }
    }
    let problems: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    println!(
        "faults: {} operations × 3 hung dependencies: {} past {ANSWER_BOUND:?} or not 503",
        OPS.len(),
        problems.len()
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
