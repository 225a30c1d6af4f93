//! The clamd client against a real clamd: verdicts, archives, large streams, clamd's
//! limits, outages and timeouts, and objects streamed from the real S3 server.

use std::time::Duration;

use chat_media::config::Settings;
use chat_media::model::Refusal;
use chat_media::scan::{ClamdAddress, ScanError, ScanVerdict, Scanner};
use chat_media::ApiError;
use chat_media_tests::clamd::{
    eicar, shared_scanner, zip_one, Clamd, ClamdOptions, EICAR_SIGNATURE,
};
use chat_media_tests::{aws_options, state_with};
use tokio::io::AsyncReadExt;

const MB: u64 = 1024 * 1024;

/// Guards against a hang turning into a stuck test run; not a timing assertion.
async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the scan returned")
}

fn infected() -> ScanVerdict {
    ScanVerdict::Infected(EICAR_SIGNATURE.into())
}

#[tokio::test]
async fn eicar_is_infected_with_the_signature_name() {
    let scanner = shared_scanner();
    assert_eq!(scanner.scan_bytes(&eicar()).await, Ok(infected()));
    // Anywhere in the content, not only at the start.
    let mut content = b"report.txt: see below\n".to_vec();
    content.extend_from_slice(&eicar());
    content.extend_from_slice(b"\ntrailing text");
    assert_eq!(scanner.scan_bytes(&content).await, Ok(infected()));
    // The verdict becomes the uploader's 422, naming the signature.
    let err = ApiError::from(Refusal::Infected {
        signature: EICAR_SIGNATURE.into(),
    });
    assert_eq!(err.status.as_u16(), 422);
    assert!(err.message.contains(EICAR_SIGNATURE), "{err}");
}

#[tokio::test]
async fn clean_content_is_clean() {
    let scanner = shared_scanner();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    assert_eq!(scanner.scan_bytes(&png).await, Ok(ScanVerdict::Clean));
    assert_eq!(scanner.scan_bytes(b"").await, Ok(ScanVerdict::Clean));
    // Half of the test string is not the test string.
    assert_eq!(
        scanner.scan_bytes(&eicar()[..30]).await,
        Ok(ScanVerdict::Clean)
    );
}

#[tokio::test]
async fn eicar_inside_a_stored_zip_is_infected() {
    let zip = zip_one("docs/readme.com", &eicar(), false);
    assert_eq!(shared_scanner().scan_bytes(&zip).await, Ok(infected()));
}

#[tokio::test]
async fn eicar_inside_a_deflated_zip_is_infected() {
    // Compressed, the test string is not in the bytes sent: clamd must unpack the zip.
    let zip = zip_one("docs/readme.com", &eicar(), true);
    assert!(!contains(&zip, &eicar()[..16]), "the zip hides the string");
    assert_eq!(shared_scanner().scan_bytes(&zip).await, Ok(infected()));
    // The same archive with a harmless member is clean: the zip itself is fine.
    let clean = zip_one("docs/readme.txt", b"nothing to see here", true);
    assert_eq!(
        shared_scanner().scan_bytes(&clean).await,
        Ok(ScanVerdict::Clean)
    );
}

#[tokio::test]
async fn eicar_at_the_end_of_a_150_mb_stream_is_infected() {
    // Generated while streamed: 150 MB of text, then the test string; never in memory.
    let content = tokio::io::repeat(b'a')
        .take(150 * MB)
        .chain(std::io::Cursor::new(eicar()));
    assert_eq!(
        within(shared_scanner().scan_reader(content)).await,
        Ok(infected())
    );
}

#[tokio::test]
async fn a_stream_over_clamds_limit_is_an_error_never_clean() {
    let clamd = Clamd::start(ClamdOptions {
        stream_max_length: "1M".into(),
        max_file_size: "1M".into(),
    })
    .await;
    let scanner = clamd.scanner();
    assert_eq!(
        scanner.scan_bytes(&vec![b'a'; MB as usize]).await,
        Ok(ScanVerdict::Clean),
        "at the limit clamd still scans"
    );
    for size in [MB + 1, 2 * MB, 20 * MB] {
        let content = tokio::io::repeat(b'a').take(size);
        assert_eq!(
            within(scanner.scan_reader(content)).await,
            Err(ScanError::SizeLimitExceeded),
            "{size} bytes"
        );
    }
    // Small chunks hit the limit on a later chunk; the reply is still read.
    let small_chunks = scanner.clone().with_chunk_size(1000);
    let content = tokio::io::repeat(b'a').take(3 * MB);
    assert_eq!(
        within(small_chunks.scan_reader(content)).await,
        Err(ScanError::SizeLimitExceeded)
    );
    let e: ApiError = ScanError::SizeLimitExceeded.into();
    assert_eq!(e.status.as_u16(), 503);
}

#[tokio::test]
async fn content_beyond_clamds_file_size_limit_is_never_clean() {
    // StreamMaxLength above MaxFileSize: without AlertExceedsMax clamd would answer
    // "OK" without looking at the content; with it, the excess is a detection.
    let clamd = Clamd::start(ClamdOptions {
        stream_max_length: "8M".into(),
        max_file_size: "1M".into(),
    })
    .await;
    let content = tokio::io::repeat(b'a').take(2 * MB);
    let verdict = within(clamd.scanner().scan_reader(content)).await;
    assert_eq!(
        verdict,
        Ok(ScanVerdict::Infected(
            "Heuristics.Limits.Exceeded.MaxFileSize".into()
        ))
    );
}

#[tokio::test]
async fn unix_socket_works_like_tcp() {
    let clamd = Clamd::start(ClamdOptions::default()).await;
    let scanner = Scanner::new(ClamdAddress::Unix(clamd.unix_socket()));
    scanner.ping().await.expect("PONG over the Unix socket");
    assert_eq!(scanner.scan_bytes(&eicar()).await, Ok(infected()));
    assert_eq!(
        scanner.scan_bytes(b"plain text").await,
        Ok(ScanVerdict::Clean)
    );
    let addr = format!("unix:{}", clamd.unix_socket().display());
    assert_eq!(
        addr.parse::<ClamdAddress>(),
        Ok(ClamdAddress::Unix(clamd.unix_socket()))
    );
}

#[tokio::test]
async fn stopped_clamd_is_an_error_and_a_restarted_one_scans_again() {
    let mut clamd = Clamd::start(ClamdOptions::default()).await;
    let scanner = clamd.scanner();
    scanner.ping().await.expect("PONG");
    clamd.stop().await;

    let err = scanner.ping().await.unwrap_err();
    assert!(matches!(err, ScanError::Connect { .. }), "{err:?}");
    let err = scanner.scan_bytes(b"harmless").await.unwrap_err();
    assert!(matches!(err, ScanError::Connect { .. }), "{err:?}");
    let unix = Scanner::new(ClamdAddress::Unix(clamd.unix_socket()));
    assert!(unix.scan_bytes(b"harmless").await.is_err());
    let api: ApiError = err.into();
    assert_eq!(api.status.as_u16(), 503);

    clamd.restart().await;
    assert_eq!(
        scanner.scan_bytes(b"harmless").await,
        Ok(ScanVerdict::Clean)
    );
    assert_eq!(scanner.scan_bytes(&eicar()).await, Ok(infected()));
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let scanner = Scanner::new(ClamdAddress::Tcp(format!("127.0.0.1:{port}")));
    let err = scanner.scan_bytes(&eicar()).await.unwrap_err();
    assert!(matches!(err, ScanError::Connect { .. }), "{err:?}");
    let missing = Scanner::new(ClamdAddress::Unix("/nonexistent/clamd.sock".into()));
    let err = missing.ping().await.unwrap_err();
    assert!(matches!(err, ScanError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts and reads everything, never replies: the verdict wait times out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            held.push(tokio::spawn(async move {
                let mut sink = tokio::io::sink();
                let _ = tokio::io::copy(&mut socket, &mut sink).await;
                // Keep the connection open, silent.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(socket);
            }));
        }
    });
    let read_timeout = Duration::from_millis(300);
    let scanner = Scanner::new(ClamdAddress::Tcp(addr.to_string()))
        .with_timeouts(Duration::from_secs(2), read_timeout);
    assert_eq!(
        within(scanner.scan_bytes(&eicar())).await,
        Err(ScanError::Timeout(read_timeout))
    );
    assert_eq!(
        within(scanner.ping()).await,
        Err(ScanError::Timeout(read_timeout))
    );
    server.abort();
}

#[tokio::test]
async fn a_server_that_stops_reading_times_out() {
    // Accepts and never reads: once the socket buffers fill, the write times out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(socket);
    });
    let read_timeout = Duration::from_millis(300);
    let scanner = Scanner::new(ClamdAddress::Tcp(addr.to_string()))
        .with_timeouts(Duration::from_secs(2), read_timeout);
    let content = tokio::io::repeat(b'a').take(200 * MB);
    assert_eq!(
        within(scanner.scan_reader(content)).await,
        Err(ScanError::Timeout(read_timeout))
    );
    server.abort();
}

#[tokio::test]
async fn a_full_accept_queue_is_a_connect_timeout() {
    // A listener that never accepts, with its queue full: new SYNs are dropped, so
    // connecting hangs as it does towards an unreachable host.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let scanner = Scanner::new(ClamdAddress::Tcp(addr.to_string()))
        .with_timeouts(Duration::from_millis(300), Duration::from_secs(2));
    let err = within(scanner.scan_bytes(b"x")).await.unwrap_err();
    match err {
        ScanError::Connect { reason, .. } => assert!(reason.contains("timed out"), "{reason}"),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    drop(listener);
}

#[tokio::test]
async fn s3_objects_are_streamed_through_clamd() {
    let state = state_with(&aws_options(), Settings::default()).await;
    let scanner = shared_scanner();
    let prefix = format!("scan-test/{}", std::process::id());
    let put = |key: String, body: Vec<u8>| {
        let blob = state.blob.clone();
        async move {
            blob.client()
                .put_object()
                .bucket(blob.bucket())
                .key(&key)
                .body(body.into())
                .send()
                .await
                .expect("put object");
            key
        }
    };

    let mut infected_body = vec![0u8; 3 * MB as usize];
    infected_body.extend_from_slice(&eicar());
    let infected_key = put(format!("{prefix}/infected"), infected_body).await;
    let clean_key = put(format!("{prefix}/clean"), vec![7u8; 3 * MB as usize + 17]).await;

    assert_eq!(
        within(scanner.scan_object(&state.blob, &infected_key)).await,
        Ok(infected())
    );
    assert_eq!(
        within(scanner.scan_object(&state.blob, &clean_key)).await,
        Ok(ScanVerdict::Clean)
    );
    let missing = scanner
        .scan_object(&state.blob, &format!("{prefix}/missing"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            ScanError::Blob(chat_media::blob::BlobError::NotFound)
        ),
        "{missing:?}"
    );
    assert_eq!(ApiError::from(missing).status.as_u16(), 404);

    // A configured scanner that is down: the object is not called clean.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = Scanner::new(ClamdAddress::Tcp(format!("127.0.0.1:{port}")));
    let err = down.scan_object(&state.blob, &clean_key).await.unwrap_err();
    assert_eq!(ApiError::from(err).status.as_u16(), 503);

    for key in [infected_key, clean_key] {
        state.blob.delete(&key).await.unwrap();
    }
}

#[tokio::test]
async fn app_state_takes_a_scanner() {
    let state = state_with(&aws_options(), Settings::default()).await;
    assert!(state.scanner.is_none(), "no scanner unless configured");
    let state = state.with_scanner(shared_scanner());
    let scanner = state.scanner.as_ref().expect("scanner set");
    scanner.ping().await.expect("PONG from the shared clamd");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
