//! Media uploads against the real DynamoDB and S3 servers: direct uploads (raw and
//! multipart/form-data), upload sessions (single PUT and 150 MiB multipart), the
//! content policy, the unbound-upload limit, the S3-event finalization and the sweep.

use chat_media::config::Settings;
use chat_media::model::{Media, MediaStatus};
use chat_media::sid::{MediaSid, ServiceSid};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    assert_error, exe, json, media_path, now, send, sessions_path, sha256_hex, sid, TestApp, PNG,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[tokio::test]
async fn raw_upload_round_trips_with_its_hash_and_filename() {
    let app = TestApp::spawn().await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .header("Content-Type", "image/png")
            .header(
                "Content-Disposition",
                "attachment; filename=\"EUR cat.png\"; filename*=UTF-8''%e2%82%ac%20cat.png",
            )
            .body(PNG.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let media = sid(&body);
    assert!(media.starts_with("ME"), "{body}");
    assert_eq!(body["service_sid"], service.as_str());
    assert_eq!(body["status"], "ready");
    assert_eq!(body["size"], PNG.len());
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["filename"], "€ cat.png");
    assert_eq!(body["author"], "system");
    assert_eq!(body["category"], "media");
    assert_eq!(body["sha256"], sha256_hex(PNG));
    assert_eq!(body["message_sid"], Value::Null);
    assert_eq!(body["channel_sid"], Value::Null);
    assert_eq!(
        body["url"],
        app.url(&format!("/v1/Services/{service}/Media/{media}"))
    );
    assert_eq!(
        body["links"]["content"],
        app.url(&format!("/v1/Services/{service}/Media/{media}/Content"))
    );
    for date in ["date_created", "date_upload_updated", "date_updated"] {
        assert!(
            body[date].as_str().is_some_and(|d| d.ends_with('Z')),
            "{body}"
        );
    }

    let stored = app.media_record(&media).await.expect("record");
    assert_eq!(stored.status, MediaStatus::Ready);
    assert!(!stored.holds_slot, "admin uploads hold no slot");
    assert_eq!(stored.finalizing_until, None);
    assert!(stored.expires_at.unwrap() > now() + 23 * 3600);
    assert_eq!(app.object(&stored.object_key).await.unwrap(), PNG);
}

#[tokio::test]
async fn form_data_upload_by_a_user_round_trips() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let form = chat_media_tests::reqwest::multipart::Form::new()
        .text("note", "ignored text field")
        .part(
            "media",
            chat_media_tests::reqwest::multipart::Part::bytes(data.clone())
                .file_name("blob.bin")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let (status, body) = send(
        app.user(&f.token, Method::POST, &media_path(&f.service_sid))
            .multipart(form),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["author"], "alice");
    assert_eq!(body["filename"], "blob.bin");
    assert_eq!(body["content_type"], "application/octet-stream");
    assert_eq!(body["size"], data.len());
    assert_eq!(body["sha256"], sha256_hex(&data));
    let stored = app.media_record(&sid(&body)).await.unwrap();
    assert_eq!(app.object(&stored.object_key).await.unwrap(), data);
    assert!(stored.holds_slot);
    assert_eq!(app.slots(&f.service_sid, "alice").await, 1);
}

#[tokio::test]
async fn filename_query_parameter_and_bad_requests() {
    let app = TestApp::spawn().await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("{}?Filename=notes%20v2.txt", media_path(&service)),
        )
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("hello"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["filename"], "notes v2.txt");
    assert_eq!(body["content_type"], "text/plain");

    // Empty body, missing type, a form posted by mistake, two file parts.
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .header("Content-Type", "image/png")
            .body(Vec::new()),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    assert!(
        body["message"].as_str().unwrap().contains("empty"),
        "{body}"
    );
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .body(PNG.to_vec()),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .form(&[("a", "b")]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let two = chat_media_tests::reqwest::multipart::Form::new()
        .part(
            "a",
            chat_media_tests::reqwest::multipart::Part::bytes(PNG.to_vec())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .part(
            "b",
            chat_media_tests::reqwest::multipart::Part::bytes(PNG.to_vec())
                .file_name("b.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .multipart(two),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    assert!(
        app.objects_of(&service).await.len() == 1,
        "only the text file is stored"
    );
}

#[tokio::test]
async fn direct_uploads_above_the_direct_limit_point_to_upload_sessions() {
    let settings = Settings {
        direct_upload_max_bytes: 64 * 1024,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(chat_media_tests::aws_options(), settings).await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let mut big = PNG.to_vec();
    big.resize(64 * 1024 + 1, 0);
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .header("Content-Type", "image/png")
            .body(big.clone()),
    )
    .await;
    assert_error(status, &body, 413, Some(20413));
    assert!(
        body["message"].as_str().unwrap().contains("MediaUploads"),
        "{body}"
    );
    // Without a Content-Length (chunked), the limit holds while reading.
    let stream = futures::stream::iter(
        big.chunks(4096)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .header("Content-Type", "image/png")
            .body(chat_media_tests::reqwest::Body::wrap_stream(stream)),
    )
    .await;
    assert_error(status, &body, 413, Some(20413));
    // In a form too.
    let form = chat_media_tests::reqwest::multipart::Form::new().part(
        "file",
        chat_media_tests::reqwest::multipart::Part::bytes(big)
            .file_name("big.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let (status, body) = send(
        app.admin(Method::POST, &media_path(&service))
            .multipart(form),
    )
    .await;
    assert_error(status, &body, 413, Some(20413));
    assert!(app.objects_of(&service).await.is_empty());
    assert!(app.media_records(&service).await.is_empty());
}

#[tokio::test]
async fn disguised_executable_is_refused_and_leaves_nothing() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("mallory").await;
    for (ct, name) in [
        ("image/png", "cat.png"),
        ("application/octet-stream", "data.bin"),
    ] {
        let (status, body) = send(
            app.user(&f.token, Method::POST, &media_path(&f.service_sid))
                .header("Content-Type", ct)
                .header(
                    "Content-Disposition",
                    format!("attachment; filename={name}"),
                )
                .body(exe()),
        )
        .await;
        assert_error(status, &body, 415, Some(20415));
        assert!(
            body["message"].as_str().unwrap().contains("executable"),
            "{body}"
        );
    }
    // HTML disguised as an image, in a form.
    let form = chat_media_tests::reqwest::multipart::Form::new().part(
        "file",
        chat_media_tests::reqwest::multipart::Part::bytes(
            b"<html><body><script>alert(1)</script></body></html>".to_vec(),
        )
        .file_name("cat.jpg")
        .mime_str("image/jpeg")
        .unwrap(),
    );
    let (status, body) = send(
        app.user(&f.token, Method::POST, &media_path(&f.service_sid))
            .multipart(form),
    )
    .await;
    assert_error(status, &body, 415, Some(20415));
    assert!(
        body["message"].as_str().unwrap().contains("text/html"),
        "{body}"
    );
    assert!(app.objects_of(&f.service_sid).await.is_empty());
    assert!(app.media_records(&f.service_sid).await.is_empty());
    assert_eq!(app.slots(&f.service_sid, "mallory").await, 0);
}

#[tokio::test]
async fn allow_list_and_block_list_refusals() {
    let app = TestApp::spawn().await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let upload = |ct: &'static str, name: &'static str, bytes: Vec<u8>| {
        app.admin(Method::POST, &media_path(&service))
            .header("Content-Type", ct)
            .header(
                "Content-Disposition",
                format!("attachment; filename=\"{name}\""),
            )
            .body(bytes)
    };
    // Default block list: executables and scripts by extension, whatever the type.
    let (status, body) = send(upload("text/plain", "run.SH", b"echo hi".to_vec())).await;
    assert_error(status, &body, 415, Some(20415));
    assert!(body["message"].as_str().unwrap().contains(".sh"), "{body}");

    let (status, body) = send(
        app.admin(Method::POST, &format!("/v2/Services/{service}"))
            .form(&[
                ("Media.AllowedTypes", "image/*"),
                ("Media.AllowedTypes", "application/pdf"),
                ("Media.BlockedExtensions", "txt"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(upload("video/mp4", "clip.mp4", vec![0; 64])).await;
    assert_error(status, &body, 415, Some(20415));
    assert!(
        body["message"].as_str().unwrap().contains("video/mp4"),
        "{body}"
    );
    let (status, body) = send(upload("image/png", "notes.txt", PNG.to_vec())).await;
    assert_error(status, &body, 415, Some(20415));
    // The service's own block list replaced the default one.
    let (status, body) = send(upload("image/png", "tool.exe.png", PNG.to_vec())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The same rules hold for upload sessions, before any URL is handed out.
    let (status, body) = send(
        app.admin(Method::POST, &sessions_path(&service))
            .form(&[("Size", "10000000"), ("ContentType", "video/mp4")]),
    )
    .await;
    assert_error(status, &body, 415, Some(20415));
    assert_eq!(app.objects_of(&service).await.len(), 1);
    assert_eq!(app.media_records(&service).await.len(), 1);
}

#[tokio::test]
async fn auth_refusals() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let other = app.service_with_member("bob").await;
    let (status, body) = send(
        app.anon(Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await;
    assert_error(status, &body, 401, Some(20003));
    let (status, body) = send(
        app.user(&other.token, Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await;
    assert_error(status, &body, 403, Some(20403));
    let (status, body) = send(
        app.user(&other.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "100"), ("ContentType", "image/png")]),
    )
    .await;
    assert_error(status, &body, 403, Some(20403));
    let (status, body) = send(
        app.anon(Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "100"), ("ContentType", "image/png")]),
    )
    .await;
    assert_error(status, &body, 401, Some(20003));

    // Completing someone else's upload: 403; an unknown one: 404.
    let (status, session) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "100"), ("ContentType", "image/png")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let intruder = app.token(&f.service_sid, "eve");
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&session));
    let (status, body) = send(app.user(&intruder, Method::POST, &complete)).await;
    assert_error(status, &body, 403, Some(20403));
    let (status, body) = send(app.user(&other.token, Method::POST, &complete)).await;
    assert_error(status, &body, 403, Some(20403));
    let unknown = format!(
        "{}/{}/Complete",
        media_path(&f.service_sid),
        MediaSid::generate()
    );
    let (status, body) = send(app.admin(Method::POST, &unknown)).await;
    assert_error(status, &body, 404, Some(20404));
    assert!(app.objects_of(&f.service_sid).await.is_empty());
}

#[tokio::test]
async fn too_many_unbound_uploads_is_429_and_binding_frees_a_slot() {
    let settings = Settings {
        max_unbound_uploads: 2,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(chat_media_tests::aws_options(), settings).await;
    let f = app.service_with_member("carol").await;
    let upload = || {
        app.user(&f.token, Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", "image/png")
            .body(PNG.to_vec())
    };
    let (status, first) = send(upload()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, body) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "100"), ("ContentType", "image/png")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(upload()).await;
    assert_error(status, &body, 429, Some(20429));
    assert!(
        body["message"].as_str().unwrap().contains("carol"),
        "{body}"
    );
    let (status, body) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "100"), ("ContentType", "image/png")]),
    )
    .await;
    assert_error(status, &body, 429, Some(20429));
    assert_eq!(app.slots(&f.service_sid, "carol").await, 2);
    // Admins are not limited; other identities have their own slots.
    let (status, _) = send(
        app.admin(Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Binding the first upload to a message gives its slot back, in the same
    // transaction that writes the message.
    let media = app.media_record(&sid(&first)).await.unwrap();
    let channel = app.channel_record(&f.channel_sid).await;
    let today = chat_media::model::now();
    let message = chat_media::model::Message::media(
        chat_media::sid::MessageSid::generate(),
        &channel,
        chat_media::Identity::parse("carol").unwrap(),
        "Media message".into(),
        &media,
        "{}".into(),
        today,
    );
    app.state
        .store
        .create_message(&channel, &message, Some(&media), None)
        .await
        .unwrap();
    assert_eq!(app.slots(&f.service_sid, "carol").await, 1);
    let bound = app.media_record(media.sid.as_ref()).await.unwrap();
    assert_eq!(bound.message_sid.as_ref(), Some(&message.sid));
    assert!(!bound.holds_slot);
    assert_eq!(bound.expires_at, None);
    let (status, body) = send(upload()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn single_put_session_completes_and_its_url_cannot_overwrite() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("dave").await;
    let data: Vec<u8> = [PNG, &vec![7u8; 100_000]].concat();
    let (status, session) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[
                ("Size", data.len().to_string().as_str()),
                ("ContentType", "image/png"),
                ("Filename", "big.png"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["status"], "uploading");
    assert_eq!(session["author"], "dave");
    assert_eq!(session["size"], data.len());
    assert_eq!(session["sha256"], Value::Null);
    let upload = &session["upload"];
    assert_eq!(upload["type"], "single", "{session}");
    assert_eq!(upload["part_count"], 1);
    let part = &upload["parts"][0];
    assert_eq!(part["method"], "PUT");
    assert_eq!(part["size"], data.len());
    assert_eq!(part["headers"]["if-none-match"], "*", "{part}");
    eprintln!("PART {part}");

    // Completing before uploading: 409, and nothing changes.
    let complete = upload["complete_url"].as_str().unwrap().to_owned();
    assert_eq!(complete, session["links"]["complete"]);
    let (status, body) = send(app.user(
        &f.token,
        Method::POST,
        complete.trim_start_matches(&app.base),
    ))
    .await;
    assert_error(status, &body, 409, None);

    // The length is part of the signature: a longer body (with its true
    // Content-Length) is refused by S3.
    let longer = app
        .http
        .put(part["url"].as_str().unwrap())
        .header("if-none-match", "*")
        .body([data.clone(), vec![0; 10]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(
        longer.status().as_u16(),
        403,
        "a longer body must be refused"
    );
    let key = app.media_record(&sid(&session)).await.unwrap().object_key;
    assert_eq!(app.state.blob.size(&key).await.unwrap(), None);
    let (status, _) = app.put_part(part, data.clone()).await;
    assert!(status.is_success(), "{status}");
    let (status, body) = send(app.user(
        &f.token,
        Method::POST,
        complete.trim_start_matches(&app.base),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["sha256"], sha256_hex(&data));
    assert_eq!(body["filename"], "big.png");
    // Media is immutable: the URL cannot replace the checked bytes.
    let (status, _) = app
        .put_part(part, data.iter().rev().copied().collect())
        .await;
    assert_eq!(
        status.as_u16(),
        412,
        "If-None-Match: * must refuse an overwrite"
    );
    let stored = app.media_record(&sid(&session)).await.unwrap();
    assert_eq!(app.object(&stored.object_key).await.unwrap(), data);
    assert_eq!(stored.upload, None);
    // Completing again answers the same.
    let (status, again) = send(app.user(
        &f.token,
        Method::POST,
        complete.trim_start_matches(&app.base),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["sha256"], body["sha256"]);
}

#[tokio::test]
async fn upload_session_of_150_mib_completes_through_multipart() {
    const SIZE: u64 = 157_286_400;
    let app = TestApp::spawn().await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let (status, session) = send(app.admin(Method::POST, &sessions_path(&service)).form(&[
        ("Size", SIZE.to_string().as_str()),
        ("ContentType", "video/mp4"),
        ("Filename", "talk.mp4"),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let upload = &session["upload"];
    assert_eq!(upload["type"], "multipart");
    let part_size = upload["part_size"].as_u64().unwrap();
    assert!((8 << 20..=16 << 20).contains(&part_size), "{upload}");
    let parts = upload["parts"].as_array().unwrap();
    assert_eq!(parts.len() as u64, SIZE.div_ceil(part_size));

    // Parts are generated one at a time; the whole file is never in memory.
    let mut hasher = Sha256::new();
    let mut etags = Vec::new();
    for part in parts {
        let n = part["part_number"].as_u64().unwrap();
        let len = part["size"].as_u64().unwrap() as usize;
        let mut body: Vec<u8> = (0..len)
            .map(|i| ((i as u64 * 31 + n * 17) % 253) as u8)
            .collect();
        if n == 1 {
            let ftyp = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
            body[..ftyp.len()].copy_from_slice(ftyp);
        }
        hasher.update(&body);
        let (status, etag) = app.put_part(part, body).await;
        assert!(status.is_success(), "part {n}: {status}");
        etags.push(etag.expect("S3 returns an ETag per part"));
    }
    let expected = hex::encode(hasher.finalize());
    let complete = format!("{}/{}/Complete", media_path(&service), sid(&session));
    // Wrong number of ETags: the caller's 400, and the upload stays open.
    let (status, body) = send(
        app.admin(Method::POST, &complete)
            .form(&[("PartETag", etags[0].as_str())]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let form: Vec<(&str, &str)> = etags.iter().map(|e| ("PartETag", e.as_str())).collect();
    let (status, body) = send(app.admin(Method::POST, &complete).form(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["size"], SIZE);
    assert_eq!(body["sha256"], expected);
    let stored = app.media_record(&sid(&session)).await.unwrap();
    assert_eq!(
        app.state.blob.size(&stored.object_key).await.unwrap(),
        Some(SIZE)
    );
}

/// A Complete whose S3 completion already happened (an SDK attempt that timed out
/// after S3 had assembled the object, then retried) meets `NoSuchUpload` and
/// finalizes from the object: the upload is ready, not a 500.
#[tokio::test]
async fn a_complete_retried_after_s3_completed_the_upload_finalizes_from_the_object() {
    const SIZE: usize = 20_000_000;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("hugo").await;
    let (status, session) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[
                ("Size", SIZE.to_string().as_str()),
                ("ContentType", "video/mp4"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["upload"]["type"], "multipart");
    let mut etags = Vec::new();
    for part in session["upload"]["parts"].as_array().unwrap() {
        let mut body = vec![7u8; part["size"].as_u64().unwrap() as usize];
        if part["part_number"] == 1 {
            let ftyp = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
            body[..ftyp.len()].copy_from_slice(ftyp);
        }
        let (status, etag) = app.put_part(part, body).await;
        assert!(status.is_success(), "{status}");
        etags.push(etag.expect("an ETag per part"));
    }
    let stored = app.media_record(&sid(&session)).await.unwrap();
    let upload_id = stored
        .upload
        .as_ref()
        .and_then(|u| u.multipart_upload_id.clone())
        .expect("a multipart upload id");
    // The attempt that "timed out": S3 completed the upload.
    app.state
        .blob
        .complete_multipart(&stored.object_key, &upload_id, &etags)
        .await
        .unwrap();
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&session));
    let form: Vec<(&str, &str)> = etags.iter().map(|e| ("PartETag", e.as_str())).collect();
    let (status, body) = send(app.user(&f.token, Method::POST, &complete).form(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["size"], SIZE);
}

#[tokio::test]
async fn declared_sizes_above_150_mib_are_refused() {
    let app = TestApp::spawn().await;
    let service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
    let (status, body) = send(
        app.admin(Method::POST, &sessions_path(&service))
            .form(&[("Size", "157286401"), ("ContentType", "video/mp4")]),
    )
    .await;
    assert_error(status, &body, 413, Some(20413));
    assert!(
        body["message"].as_str().unwrap().contains("157286400"),
        "{body}"
    );
    // A service limit below 150 MiB applies too.
    send(
        app.admin(Method::POST, &format!("/v2/Services/{service}"))
            .form(&[("Media.SizeLimitMb", "1")]),
    )
    .await;
    let (status, body) = send(
        app.admin(Method::POST, &sessions_path(&service))
            .form(&[("Size", "1048577"), ("ContentType", "image/png")]),
    )
    .await;
    assert_error(status, &body, 413, Some(20413));
    for bad in ["0", "-1", "ten"] {
        let (status, body) = send(
            app.admin(Method::POST, &sessions_path(&service))
                .form(&[("Size", bad), ("ContentType", "image/png")]),
        )
        .await;
        assert_error(status, &body, 400, Some(20001));
    }
    let (status, body) = send(
        app.admin(Method::POST, &sessions_path(&service))
            .form(&[("Size", "10"), ("ContentType", "png")]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    assert!(
        body["message"].as_str().unwrap().contains("ContentType"),
        "{body}"
    );
    assert!(app.media_records(&service).await.is_empty());
}

#[tokio::test]
async fn more_bytes_than_declared_are_caught_at_complete_and_deleted() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("erin").await;
    let (status, session) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "1000"), ("ContentType", "image/png")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let stored = app.media_record(&sid(&session)).await.unwrap();
    // The presigned URL signs the length, so the 2000 bytes reach the key another
    // way (any writer with bucket access); complete must still catch it.
    let mut body = PNG.to_vec();
    body.resize(2000, 0);
    app.state
        .blob
        .put(
            &stored.object_key,
            chat_media::blob::ByteStream::from(body),
            "image/png",
        )
        .await
        .unwrap();
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&session));
    let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_error(status, &body, 413, Some(20413));
    assert!(body["message"].as_str().unwrap().contains("1000"), "{body}");
    assert_eq!(app.object(&stored.object_key).await, None, "object deleted");
    let rejected = app.media_record(&sid(&session)).await.unwrap();
    assert_eq!(rejected.status, MediaStatus::Rejected);
    assert!(rejected.status_reason.unwrap().contains("declared"));
    assert!(!rejected.holds_slot);
    assert_eq!(app.slots(&f.service_sid, "erin").await, 0);
    // Asking again gives the same answer.
    let (status, again) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_error(status, &again, 413, Some(20413));
}

#[tokio::test]
async fn the_s3_event_finalizes_an_upload_nobody_completed() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("frank").await;
    let new_session = |size: usize, ct: &'static str| {
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", size.to_string()), ("ContentType", ct.to_owned())])
    };

    // A good upload: finalized by the event alone.
    let (_, good) = send(new_session(PNG.len(), "image/png")).await;
    app.put_part(&good["upload"]["parts"][0], PNG.to_vec())
        .await;
    let key = app.media_record(&sid(&good)).await.unwrap().object_key;
    let report = media_events::handle(&app.state, app.s3_object_created(&key), now())
        .await
        .unwrap();
    assert_eq!(report["finalized"], json!([key]), "{report}");
    let ready = app.media_record(&sid(&good)).await.unwrap();
    assert_eq!(ready.status, MediaStatus::Ready);
    assert_eq!(ready.sha256.as_deref(), Some(sha256_hex(PNG).as_str()));
    // The client's late complete call sees the same result.
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&good));
    let (status, body) = send(app.user(&f.token, Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");

    // A disguised executable: refused by the event, object deleted.
    let bad_bytes = exe();
    let (_, bad) = send(new_session(bad_bytes.len(), "image/gif")).await;
    app.put_part(&bad["upload"]["parts"][0], bad_bytes).await;
    let bad_key = app.media_record(&sid(&bad)).await.unwrap().object_key;
    let report = media_events::handle(&app.state, app.s3_object_created(&bad_key), now())
        .await
        .unwrap();
    assert_eq!(report["refused"], json!([bad_key]), "{report}");
    assert_eq!(app.object(&bad_key).await, None);
    let (status, body) = send(app.user(
        &f.token,
        Method::POST,
        &format!("{}/{}/Complete", media_path(&f.service_sid), sid(&bad)),
    ))
    .await;
    assert_error(status, &body, 415, Some(20415));

    // An object under a media key with no record is an orphan: deleted.
    let orphan = Media::object_key_for(&f.service_sid, &MediaSid::generate());
    app.state
        .blob
        .put(
            &orphan,
            chat_media::blob::ByteStream::from(PNG.to_vec()),
            "image/png",
        )
        .await
        .unwrap();
    let report = media_events::handle(&app.state, app.s3_object_created(&orphan), now())
        .await
        .unwrap();
    assert_eq!(report["orphans_deleted"], json!([orphan]), "{report}");
    assert_eq!(app.object(&orphan).await, None);
    // Keys that are not media objects are left alone.
    let report = media_events::handle(
        &app.state,
        app.s3_object_created("elsewhere/file.txt"),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(report["ignored"], json!(["elsewhere/file.txt"]));
    assert_eq!(
        app.slots(&f.service_sid, "frank").await,
        1,
        "only the good one"
    );
}

#[tokio::test]
async fn expired_unbound_media_and_abandoned_sessions_are_swept() {
    // The sweep also clears every pending deletion and rescans with a scanner.
    let _sweeping = chat_media_tests::sweeping().await;
    // Short lifetimes so this test's media expire at once; every other test's
    // media live for hours, so this sweep cannot touch them.
    let settings = Settings {
        unbound_media_ttl: std::time::Duration::from_secs(1),
        upload_session_ttl: std::time::Duration::from_secs(120),
        upload_url_ttl: std::time::Duration::from_secs(60),
        single_put_max_bytes: 5 << 20,
        upload_part_size: 5 << 20,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(chat_media_tests::aws_options(), settings).await;
    let f = app.service_with_member("gina").await;
    // Before anything is created: every expiry below lies after it, however slow
    // the machine is between here and the first sweep.
    let before = now();
    let (status, ready) = send(
        app.user(&f.token, Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ready}");
    let (status, abandoned) = send(
        app.user(&f.token, Method::POST, &sessions_path(&f.service_sid))
            .form(&[("Size", "12000000"), ("ContentType", "video/mp4")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{abandoned}");
    assert_eq!(abandoned["upload"]["type"], "multipart");
    let first_part = abandoned["upload"]["parts"][0].clone();
    let (status, _) = app.put_part(&first_part, vec![1; 5 << 20]).await;
    assert!(status.is_success());
    assert_eq!(app.slots(&f.service_sid, "gina").await, 2);
    let ready_key = app.media_record(&sid(&ready)).await.unwrap().object_key;

    // Nothing has expired yet at a "now" before the uploads began.
    let report = media_events::sweep(&app.state, before).await.unwrap();
    assert_eq!(
        app.media_records(&f.service_sid).await.len(),
        2,
        "{report:?}"
    );

    let report = media_events::sweep(&app.state, now() + 200).await.unwrap();
    assert!(report.expired_media >= 2, "{report:?}");
    assert!(report.uploads_aborted >= 1, "{report:?}");
    assert!(app.media_records(&f.service_sid).await.is_empty());
    assert!(app.objects_of(&f.service_sid).await.is_empty());
    assert_eq!(app.object(&ready_key).await, None);
    assert_eq!(app.slots(&f.service_sid, "gina").await, 0);
    // The aborted multipart upload takes no more parts.
    let (status, _) = app.put_part(&first_part, vec![1; 16]).await;
    assert!(status.is_client_error(), "{status}");
}

/// Streams an upload of `size` bytes the way Twilio's MCS client (Node's http)
/// does: the whole body is written before the answer is read, and a failed write
/// (EPIPE, reset) is the client's error. Chunked unless `declared`, then with a
/// Content-Length. Returns the status and the JSON body.
async fn post_streaming(
    app: &TestApp,
    path: &str,
    token: &str,
    size: usize,
    declared: bool,
) -> std::io::Result<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const CHUNK: usize = 64 * 1024;
    let mut conn = tokio::net::TcpStream::connect(app.addr).await?;
    let framing = if declared {
        format!("Content-Length: {size}")
    } else {
        "Transfer-Encoding: chunked".to_owned()
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nX-Twilio-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\n{framing}\r\n\r\n",
        app.addr
    );
    conn.write_all(head.as_bytes()).await?;
    let chunk = vec![7u8; CHUNK];
    for _ in 0..size / CHUNK {
        if declared {
            conn.write_all(&chunk).await?;
        } else {
            conn.write_all(format!("{CHUNK:x}\r\n").as_bytes()).await?;
            conn.write_all(&chunk).await?;
            conn.write_all(b"\r\n").await?;
        }
    }
    if !declared {
        conn.write_all(b"0\r\n\r\n").await?;
    }
    conn.flush().await?;
    // The answer: headers, then Content-Length bytes of JSON.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let split = loop {
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        answer.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    let status = head[9..12].parse().expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    while answer.len() < split + length {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        answer.extend_from_slice(&buf[..n]);
    }
    Ok((
        status,
        serde_json::from_slice(&answer[split..split + length]).unwrap(),
    ))
}

/// A direct upload over the limit, streamed, reads the Twilio 413 every time,
/// never a reset connection (EPIPE) while it is still sending; chunked and with a
/// declared Content-Length over the limit. Two clients: one that writes its whole
/// body before reading, as Twilio's MCS client (Node's http) does, and reqwest
/// with a streamed body (hyper stops sending when an early answer arrives).
#[tokio::test]
async fn an_oversized_streamed_direct_upload_always_reads_the_413() {
    const CHUNK: usize = 64 * 1024;
    const SIZE: usize = 6 << 20;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let streamed = || {
        let chunks = (0..SIZE / CHUNK).map(|_| Ok::<_, std::io::Error>(vec![7u8; CHUNK]));
        chat_media_tests::reqwest::Body::wrap_stream(futures::stream::iter(chunks))
    };
    for attempt in 0..20 {
        for declared in [false, true] {
            let context = format!("attempt {attempt}, length declared: {declared}");
            let (status, body) = post_streaming(&app, &f.uploads_path(), &f.token, SIZE, declared)
                .await
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_error(
                StatusCode::from_u16(status).unwrap(),
                &body,
                413,
                Some(20413),
            );
            assert!(
                body["message"].as_str().unwrap().contains("MediaUploads"),
                "{body}"
            );

            let mut req = app
                .user(&f.token, Method::POST, &f.uploads_path())
                .header("Content-Type", "application/octet-stream");
            if declared {
                req = req.header("Content-Length", SIZE.to_string());
            }
            let resp = req
                .body(streamed())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{context} (reqwest): {e:?}"));
            let status = resp.status();
            let body: Value = resp.json().await.expect("a JSON body");
            assert_error(status, &body, 413, Some(20413));
        }
    }
}
