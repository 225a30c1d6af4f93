//! Scan-skip (issue 17 §3): bytes already scanned clean in a service under clamd's
//! current signature version are not scanned again. The app's scanner talks to
//! the real clamd through a counting proxy that also answers `VERSION` with a
//! version the test sets (the test clamd has no versioned database), so the test
//! sees whether a scan reached clamd, and changes the signatures' version.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chat_media::model::MediaStatus;
use chat_media::scan::{ClamdAddress, Scanner};
use chat_media_tests::clamd::shared_scanner;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, png_like, send, sid, Fixture, TestApp};
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
    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("{}/Quarantine", f.media_path(&sid(&first).parse().unwrap())),
        )
        .form(&[("Reason", "reported")]),
    )
    .await;
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
