//! Issue 16's mechanisms, as a user and the store see them: ranged reads of a stored
//! object come back whole and in order, a large upload session is checked in one
//! read, and concurrent sends to one channel never retry for an index.

use chat_media::blob::ByteStream;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{dynamodb_calls, send_full, sha256_hex, sid, TestApp};
use futures::TryStreamExt;

/// `len` bytes where each position differs from its neighbours, so a chunk out of
/// order or repeated changes the result.
fn varied(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 % 253) as u8 ^ (i >> 10) as u8)
        .collect()
}

#[tokio::test]
async fn ranged_reads_come_back_whole_and_in_order() {
    let app = TestApp::spawn().await;
    let blob = &app.state.blob;
    let range = 256 * 1024;
    let data = varied(3 * range as usize + 100);
    let key = format!("tests/ranges/{}", chat_media::sid::MediaSid::generate());
    blob.put(
        &key,
        ByteStream::from(data.clone()),
        "application/octet-stream",
    )
    .await
    .unwrap();
    let read: Vec<bytes::Bytes> = blob
        .read_ranges(&key, data.len() as u64, range, 3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read.len(), 4, "one chunk per range");
    assert_eq!(read.concat(), data);

    // An object shorter than expected: the short range is the last one read.
    let read: Vec<bytes::Bytes> = blob
        .read_ranges(&key, data.len() as u64 + 50, range, 3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        read.concat(),
        data,
        "nothing appended after the short range"
    );
}

#[tokio::test]
async fn a_session_spanning_several_ranged_reads_is_hashed_whole() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // Two ranges in flight together (one PUT: within the single-PUT limit).
    // A well-formed PNG: metadata stripping refuses a malformed one.
    let data = chat_media_tests::png_like(chat_media::blob::READ_RANGE_BYTES as usize + 12_345);
    let session = app
        .uploaded_session(&f.token, &f.service_sid, "image/png", &data)
        .await;
    let (status, _, body) = send_full(app.user(
        &f.token,
        Method::POST,
        &format!("{}/{}/Complete", f.uploads_path(), sid(&session)),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["sha256"], sha256_hex(&data));
    assert_eq!(body["size"], data.len() as u64);
}

#[tokio::test]
async fn concurrent_sends_to_one_channel_take_their_index_without_retrying() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let sends = (0..24).map(|i| {
        send_full(
            app.user(&f.token, Method::POST, &f.messages_path())
                .form(&[("Body", format!("m{i}"))]),
        )
    });
    let mut indexes = Vec::new();
    for (status, headers, body) in futures::future::join_all(sends).await {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // BatchGetItem, GetItem (role), the index ADD, the transaction: no retry.
        assert_eq!(dynamodb_calls(&headers), 4, "{body}");
        indexes.push(body["index"].as_u64().unwrap());
    }
    indexes.sort();
    indexes.dedup();
    assert_eq!(indexes.len(), 24, "indexes are unique");
}
