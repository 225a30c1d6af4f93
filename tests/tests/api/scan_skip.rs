//! Scan-skip (issue 17 §3): bytes already scanned clean in a service under clamd's
//! current signature version are not scanned again. The app's scanner talks to
//! the real clamd through a counting proxy that also answers `VERSION` with a
//! version the test sets (the test clamd has no versioned database), so the test
//! sees whether a scan reached clamd, and changes the signatures' version.
//!
//! Session uploads skip through a `Sha256` declared at session create: the
//! declared hash must be in the index under the current version, and the bytes
//! must have it (else they are refused, scan or no scan).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_media::identity::Identity;
use chat_media::model::{MediaStatus, Refusal, Sha256};
use chat_media::scan::{ClamdAddress, Scanner};
use chat_media_tests::clamd::{eicar, shared_scanner};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    assert_error, png_like, send, sessions_path, sha256_hex, sid, Fixture, TestApp,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP proxy in front of clamd: counts `zINSTREAM` sessions and answers
/// `zVERSION` itself (`ClamAV 1.4.6/<version>/…`, or no version when 0).
struct CountingClamd {
    port: u16,
    scans: Arc<AtomicUsize>,
    version: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CountingClamd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CountingClamd {
    async fn start(version: u64) -> Self {
        let upstream = match shared_scanner().address() {
            ClamdAddress::Tcp(a) => a.clone(),
            other => panic!("the shared clamd is on TCP, not {other}"),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scans = Arc::new(AtomicUsize::new(0));
        let version = Arc::new(AtomicU64::new(version));
        let (s, v) = (scans.clone(), version.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (s, v, upstream) = (s.clone(), v.clone(), upstream.clone());
                tokio::spawn(async move {
                    // The command: up to its NUL (what came after it is forwarded).
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.contains(&0) {
                        match client.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if head.starts_with(b"zVERSION\0") {
                        let reply = match v.load(Ordering::SeqCst) {
                            0 => "ClamAV 1.4.6\0".to_owned(),
                            n => format!("ClamAV 1.4.6/{n}/Mon Nov 30 00:00:00 2026\0"),
                        };
                        let _ = client.write_all(reply.as_bytes()).await;
                        return;
                    }
                    if head.starts_with(b"zINSTREAM\0") {
                        s.fetch_add(1, Ordering::SeqCst);
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    if server.write_all(&head).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            port,
            scans,
            version,
            task,
        }
    }

    /// A scanner through this proxy that asks the version on every upload.
    fn scanner(&self) -> Scanner {
        Scanner::new(ClamdAddress::Tcp(format!("127.0.0.1:{}", self.port)))
            .with_version_ttl(Duration::ZERO)
    }

    fn scans(&self) -> usize {
        self.scans.load(Ordering::SeqCst)
    }
}

async fn upload(app: &TestApp, f: &Fixture, token: &str, bytes: &[u8]) -> (StatusCode, Value) {
    send(
        app.user(token, Method::POST, &f.uploads_path())
            .header("Content-Type", "image/png")
            .body(bytes.to_vec()),
    )
    .await
}

#[tokio::test]
async fn clean_bytes_are_scanned_once_per_signature_version() {
    let clamd = CountingClamd::start(27_500).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let bytes = png_like(64 * 1024);

    let (status, first) = upload(&app, &f, &f.token, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "ready");
    assert_eq!(clamd.scans(), 1);

    // The same bytes again, by another identity: ready, and clamd never saw them.
    let (status, again) = upload(&app, &f, &bob, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["status"], "ready");
    assert_eq!(clamd.scans(), 1, "the second upload did not reach clamd");
    let record = app.record(sid(&again)).await;
    assert_eq!(record.status, MediaStatus::Ready);
    assert_eq!(record.sha256, app.record(sid(&first)).await.sha256);

    // Other bytes are scanned.
    let (status, _) = upload(&app, &f, &bob, &png_like(1000)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(clamd.scans(), 2);

    // New signatures: the same bytes are scanned again, once.
    clamd.version.store(27_501, Ordering::SeqCst);
    for expected in [3, 3] {
        let (status, body) = upload(&app, &f, &f.token, &bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(clamd.scans(), expected);
    }

    // Another service has its own index: its first upload of the bytes is scanned.
    let g = app.service_with_member("carol").await;
    let (status, body) = upload(&app, &g, &g.token, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(clamd.scans(), 4);

    // The deny-list wins over the index: quarantined bytes known clean are refused.
    let (status, body) = app.quarantine(&f, &sid(&first), "reported").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = upload(&app, &f, &bob, &bytes).await;
    assert_error(status, &body, 422, Some(20422));
}

#[tokio::test]
async fn a_session_upload_indexes_its_bytes_and_nothing_is_skipped_without_a_version() {
    let clamd = CountingClamd::start(9).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let bytes = png_like(32 * 1024);
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", &bytes)
        .await;
    let (status, body) = send(app.user(
        &f.token,
        Method::POST,
        &format!("{}/{}/Complete", f.uploads_path(), sid(&session)),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(clamd.scans(), 1);
    let (status, body) = upload(&app, &f, &f.token, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(clamd.scans(), 1, "known from the session's scan");

    // clamd without a versioned database: every upload is scanned.
    clamd.version.store(0, Ordering::SeqCst);
    for expected in [2, 3] {
        let (status, body) = upload(&app, &f, &f.token, &bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(clamd.scans(), expected);
    }
}

/// A direct upload as admin (admins hold no unbound-upload slots).
async fn admin_upload(app: &TestApp, f: &Fixture, bytes: &[u8]) -> (StatusCode, Value) {
    send(
        app.admin(Method::POST, &f.uploads_path())
            .header("Content-Type", "image/png")
            .body(bytes.to_vec()),
    )
    .await
}

/// The median of `samples` in milliseconds.
fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// What the index costs an upload of new bytes (hashing before the scan, one
/// GetItem), and what a known upload saves. Printed, with loose assertions only
/// (timings on a shared machine).
#[tokio::test]
async fn prints_what_the_index_costs_and_saves() {
    let clamd = CountingClamd::start(5).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let size = 4 * 1024 * 1024;
    let (mut new, mut known, mut hash, mut lookup) = (vec![], vec![], vec![], vec![]);
    let same = png_like(size);
    for i in 0..8u8 {
        let mut bytes = png_like(size);
        bytes[size - 1] = i;
        let t = std::time::Instant::now();
        let (status, body) = admin_upload(&app, &f, &bytes).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        new.push(t.elapsed());

        let t = std::time::Instant::now();
        let digest = chat_media::digest::ContentHash::of(&bytes);
        hash.push(t.elapsed());
        let digest = chat_media::model::Sha256::parse(&digest).unwrap();
        let t = std::time::Instant::now();
        let _ = app.state.store.scanned_clean(&f.service_sid, &digest).await;
        lookup.push(t.elapsed());

        let (status, body) = admin_upload(&app, &f, &same).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let t = std::time::Instant::now();
        let (status, body) = admin_upload(&app, &f, &same).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        known.push(t.elapsed());
    }
    assert_eq!(
        clamd.scans(),
        9,
        "8 new uploads and the first of the repeated bytes"
    );
    println!(
        "scan-skip: 4 MiB direct upload, new bytes median {:.1} ms (of which hashing first {:.1} ms, \
         index GetItem {:.1} ms, both before the scan and beside the S3 put); known bytes median \
         {:.1} ms (no clamd)",
        median_ms(new),
        median_ms(hash),
        median_ms(lookup),
        median_ms(known)
    );
}

/// Creates a session of `size` bytes declaring `declared` as its `Sha256`
/// (none when `None`): the status and body of the create.
async fn create_session(
    app: &TestApp,
    f: &Fixture,
    token: &str,
    content_type: &str,
    size: usize,
    declared: Option<&str>,
) -> (StatusCode, Value) {
    let size = size.to_string();
    let mut form = vec![("Size", size.as_str()), ("ContentType", content_type)];
    if let Some(d) = declared {
        form.push(("Sha256", d));
    }
    send(
        app.user(token, Method::POST, &sessions_path(&f.service_sid))
            .form(&form),
    )
    .await
}

/// A session declaring `declared`, `bytes` PUT to it, then Complete: the
/// session's SID and the status and body of the Complete.
async fn session_upload(
    app: &TestApp,
    f: &Fixture,
    token: &str,
    content_type: &str,
    bytes: &[u8],
    declared: Option<&str>,
) -> (String, StatusCode, Value) {
    let (status, session) =
        create_session(app, f, token, content_type, bytes.len(), declared).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let (status, _) = app
        .put_part(&session["upload"]["parts"][0], bytes.to_vec())
        .await;
    assert!(status.is_success(), "PUT of the session's part: {status}");
    let media = sid(&session);
    let (status, body) = send(app.user(
        token,
        Method::POST,
        &format!("{}/{media}/Complete", f.uploads_path()),
    ))
    .await;
    (media, status, body)
}

/// The signature version the index lists `sha256` under in `f`'s service.
async fn indexed(app: &TestApp, f: &Fixture, sha256: &str) -> Option<u64> {
    app.state
        .store
        .scanned_clean(&f.service_sid, &Sha256::parse(sha256).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_declaring_bytes_known_clean_is_not_scanned() {
    let clamd = CountingClamd::start(27_600).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let bytes = png_like(64 * 1024);
    let hash = sha256_hex(&bytes);
    let (status, body) = upload(&app, &f, &f.token, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(clamd.scans(), 1);

    // Declared in upper case (kept in lower case), on the session.
    let (status, session) = create_session(
        &app,
        &f,
        &bob,
        "image/png",
        bytes.len(),
        Some(&hash.to_uppercase()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["upload"]["sha256"], hash.as_str());
    assert_eq!(
        app.record(sid(&session))
            .await
            .upload
            .and_then(|u| u.declared_sha256),
        Some(Sha256::parse(&hash).unwrap()),
        "stored on the session"
    );

    // By another identity: ready, and clamd never saw the session's bytes.
    let (media, status, body) =
        session_upload(&app, &f, &bob, "image/png", &bytes, Some(&hash)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["sha256"], hash.as_str());
    assert_eq!(
        clamd.scans(),
        1,
        "the known clean declaration skipped clamd"
    );
    let record = app.record(&media).await;
    assert_eq!(record.status, MediaStatus::Ready);
    assert_eq!(record.sha256.as_deref(), Some(hash.as_str()));
    assert_eq!(
        app.object(&record.object_key).await.as_deref(),
        Some(&bytes[..])
    );

    // Without a declaration the same bytes are scanned, as before.
    let (_, status, body) = session_upload(&app, &f, &bob, "image/png", &bytes, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(clamd.scans(), 2, "no declared hash: scanned");

    // Declared bytes the index does not list are scanned, and then indexed.
    let other = png_like(20_000);
    let other_hash = sha256_hex(&other);
    for expected in [3, 3] {
        let (_, status, body) =
            session_upload(&app, &f, &f.token, "image/png", &other, Some(&other_hash)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(clamd.scans(), expected);
    }

    // New signatures: a declared session is scanned again once, then skips.
    clamd.version.store(27_601, Ordering::SeqCst);
    for expected in [4, 4] {
        let (_, status, body) =
            session_upload(&app, &f, &bob, "image/png", &bytes, Some(&hash)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(clamd.scans(), expected);
    }
    assert_eq!(indexed(&app, &f, &hash).await, Some(27_601));

    // clamd without a versioned database: nothing is skipped.
    clamd.version.store(0, Ordering::SeqCst);
    let (_, status, body) = session_upload(&app, &f, &bob, "image/png", &bytes, Some(&hash)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(clamd.scans(), 5);
}

/// Asserts the session `media` was refused for its declared hash and left
/// nothing behind: `rejected` with the refusal, object deleted, slot and quota
/// charge given back (its author holds `slots` others); asked again, the same answer.
async fn assert_mismatch_refused(
    app: &TestApp,
    f: &Fixture,
    (media, status, body): (&str, StatusCode, &Value),
    slots: i64,
) {
    assert_error(status, body, 400, Some(20001));
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("do not match the declared Sha256"),
        "{message}"
    );
    let record = app.record(media).await;
    assert_eq!(record.status, MediaStatus::Rejected);
    assert!(
        matches!(record.refusal, Some(Refusal::Sha256Mismatch { .. })),
        "{:?}",
        record.refusal
    );
    assert!(!record.holds_slot);
    assert!(record.quota.is_none(), "its quota charge is given back");
    assert!(
        !app.object_exists(&record.object_key).await,
        "object deleted"
    );
    assert_eq!(
        app.slots(&f.service_sid, record.author.as_str()).await,
        slots
    );
    let (again, again_body) = send(app.user(
        &f.token,
        Method::POST,
        &format!("{}/{media}/Complete", f.uploads_path()),
    ))
    .await;
    assert_eq!((again, &again_body), (status, body));
}

#[tokio::test]
async fn bytes_that_do_not_match_the_declared_sha256_are_refused_and_free_their_slot() {
    let clamd = CountingClamd::start(31).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let (status, body) = send(app.admin(Method::POST, &f.service_path()).form(&[
        ("Media.QuotaBytesPerIdentity", "100000"),
        ("Media.QuotaBytesPerService", "100000"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let clean = png_like(30_000);
    let (status, body) = admin_upload(&app, &f, &clean).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(clamd.scans(), 1);
    let stored = app.state.store.stored_bytes(&f.service_sid).await.unwrap();

    // Other bytes of the same size declared as the known clean ones: refused,
    // without clamd (the declaration was the only reason not to scan).
    let mut other = clean.clone();
    other[100] ^= 1;
    let (media, status, body) = session_upload(
        &app,
        &f,
        &f.token,
        "image/png",
        &other,
        Some(&sha256_hex(&clean)),
    )
    .await;
    assert_mismatch_refused(&app, &f, (&media, status, &body), 0).await;
    assert_eq!(clamd.scans(), 1);
    assert_eq!(
        app.state.store.stored_bytes(&f.service_sid).await.unwrap(),
        stored,
        "the service total is given back"
    );
    let used = app
        .state
        .store
        .quota_used(
            &f.service_sid,
            &Identity::parse("alice").unwrap(),
            3600,
            chat_media_tests::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        used.map(|u| u.0),
        Some(0),
        "the identity's window is given back"
    );

    // A declaration the index does not know is checked as well (the bytes are
    // scanned in the same read): whether a wrong hash is refused does not
    // depend on what the index holds.
    let unknown = sha256_hex(b"never uploaded");
    let (media, status, body) =
        session_upload(&app, &f, &f.token, "image/png", &other, Some(&unknown)).await;
    assert_mismatch_refused(&app, &f, (&media, status, &body), 0).await;
    assert_eq!(clamd.scans(), 2);

    // The right bytes with the same declaration pass, without clamd.
    let (_, status, body) = session_upload(
        &app,
        &f,
        &f.token,
        "image/png",
        &clean,
        Some(&sha256_hex(&clean)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(clamd.scans(), 2);
}

#[tokio::test]
async fn malware_cannot_borrow_the_declared_hash_of_clean_bytes() {
    let clamd = CountingClamd::start(77).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let clean = b"a clean text file, scanned once".to_vec();
    let (status, body) = send(
        app.user(&f.token, Method::POST, &f.uploads_path())
            .header("Content-Type", "text/plain")
            .body(clean.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(clamd.scans(), 1);
    assert_eq!(indexed(&app, &f, &sha256_hex(&clean)).await, Some(77));

    let (media, status, body) = session_upload(
        &app,
        &f,
        &f.token,
        "text/plain",
        &eicar(),
        Some(&sha256_hex(&clean)),
    )
    .await;
    assert_mismatch_refused(&app, &f, (&media, status, &body), 1).await;
    assert_eq!(
        indexed(&app, &f, &sha256_hex(&eicar())).await,
        None,
        "never indexed"
    );
    // Declared as what it is, the EICAR string is scanned and found.
    let (_, status, body) = session_upload(
        &app,
        &f,
        &f.token,
        "text/plain",
        &eicar(),
        Some(&sha256_hex(&eicar())),
    )
    .await;
    assert_error(status, &body, 422, Some(20422));
    assert_eq!(clamd.scans(), 2);
    assert!(app
        .media_records(&f.service_sid)
        .await
        .iter()
        .all(|m| m.status != MediaStatus::Ready || m.sha256 == Some(sha256_hex(&clean))));
}

#[tokio::test]
async fn a_deny_listed_declared_sha256_is_refused_at_session_create() {
    let clamd = CountingClamd::start(12).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let bytes = png_like(10_000);
    let hash = sha256_hex(&bytes);
    let (status, first) = upload(&app, &f, &f.token, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // A session declaring the (known clean) bytes before they are quarantined.
    let (status, early) =
        create_session(&app, &f, &bob, "image/png", bytes.len(), Some(&hash)).await;
    assert_eq!(status, StatusCode::CREATED, "{early}");
    let (status, _) = app
        .put_part(&early["upload"]["parts"][0], bytes.clone())
        .await;
    assert!(status.is_success());
    let (status, body) = app.quarantine(&f, &sid(&first), "reported abuse").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Its finalize checks the deny-list on the bytes that arrived.
    let (status, body) = send(app.user(
        &bob,
        Method::POST,
        &format!("{}/{}/Complete", f.uploads_path(), sid(&early)),
    ))
    .await;
    assert_error(status, &body, 422, Some(20422));
    assert_eq!(app.record(sid(&early)).await.status, MediaStatus::Rejected);
    assert_eq!(clamd.scans(), 1);
    let before = app.media_records(&f.service_sid).await.len();

    let (status, body) = create_session(
        &app,
        &f,
        &bob,
        "image/png",
        bytes.len(),
        Some(&hash.to_uppercase()),
    )
    .await;
    assert_error(status, &body, 422, Some(20422));
    assert!(
        body["message"].as_str().unwrap().contains("reported abuse"),
        "{body}"
    );
    assert_eq!(
        app.media_records(&f.service_sid).await.len(),
        before,
        "no session recorded"
    );
    assert_eq!(app.slots(&f.service_sid, "bob").await, 0);

    // Not declared, the same bytes are refused at finalize, as before, with
    // the same status, code and message.
    let (_, status, finalized) = session_upload(&app, &f, &bob, "image/png", &bytes, None).await;
    assert_error(status, &finalized, 422, Some(20422));
    assert_eq!(finalized["message"], body["message"]);
    // Declared as other bytes, the real bytes are refused at finalize.
    let clean = png_like(10_001);
    let (_, status, refused) = session_upload(
        &app,
        &f,
        &bob,
        "image/png",
        &bytes,
        Some(&sha256_hex(&clean)),
    )
    .await;
    assert_error(status, &refused, 400, Some(20001));
}

#[tokio::test]
async fn a_stripped_session_is_indexed_by_the_bytes_clamd_scanned() {
    let clamd = CountingClamd::start(8).await;
    let app = TestApp::spawn_scanning(clamd.scanner()).await;
    let f = app.service_with_member("alice").await;
    // A PNG with a tEXt chunk after IHDR: stripping removes it.
    let plain = png_like(8_000);
    let mut bytes = plain[..33].to_vec();
    let text = b"Comment\0taken at home";
    bytes.extend_from_slice(&(text.len() as u32).to_be_bytes());
    bytes.extend_from_slice(b"tEXt");
    bytes.extend_from_slice(text);
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(&plain[33..]);
    let uploaded = sha256_hex(&bytes);

    let (media, status, body) = session_upload(&app, &f, &f.token, "image/png", &bytes, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(clamd.scans(), 1);
    let record = app.record(&media).await;
    assert_eq!(record.original_sha256.as_deref(), Some(uploaded.as_str()));
    let stored = record.sha256.clone().unwrap();
    assert_ne!(stored, uploaded, "stripped");
    assert_eq!(
        indexed(&app, &f, &uploaded).await,
        Some(8),
        "indexed under the hash of the bytes clamd scanned"
    );
    assert_eq!(
        indexed(&app, &f, &stored).await,
        None,
        "the stripped bytes were never scanned"
    );

    // The same photo declared as uploaded: not scanned, and still stripped.
    let (media, status, body) =
        session_upload(&app, &f, &f.token, "image/png", &bytes, Some(&uploaded)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(clamd.scans(), 1, "skipped");
    let record = app.record(&media).await;
    assert_eq!(record.sha256.as_deref(), Some(stored.as_str()));
    assert_eq!(record.original_sha256.as_deref(), Some(uploaded.as_str()));
    let object = app.object(&record.object_key).await.unwrap();
    assert!(
        !object.windows(4).any(|w| w == b"tEXt"),
        "metadata stripped"
    );
    assert_eq!(sha256_hex(&object), stored);
}

#[tokio::test]
async fn a_malformed_sha256_is_a_400_with_a_twilio_body() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let prefixed = format!("sha256:{}", "a".repeat(57));
    for bad in [
        "",
        "abc",
        &"a".repeat(63),
        &"a".repeat(65),
        &"g".repeat(64),
        &prefixed,
    ] {
        let (status, body) = create_session(&app, &f, &f.token, "image/png", 100, Some(bad)).await;
        assert_error(status, &body, 400, Some(20001));
        assert_eq!(
            body["more_info"], "https://www.twilio.com/docs/errors/20001",
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("Sha256"),
            "names the parameter: {body}"
        );
        assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
    }
    assert_eq!(
        app.slots(&f.service_sid, "alice").await,
        0,
        "nothing recorded"
    );
    // Without a scanner a declaration is still checked against the bytes.
    let bytes = png_like(5_000);
    let (media, status, body) = session_upload(
        &app,
        &f,
        &f.token,
        "image/png",
        &bytes,
        Some(&sha256_hex(b"x")),
    )
    .await;
    assert_mismatch_refused(&app, &f, (&media, status, &body), 0).await;
    let (_, status, body) = session_upload(
        &app,
        &f,
        &f.token,
        "image/png",
        &bytes,
        Some(&sha256_hex(&bytes)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
