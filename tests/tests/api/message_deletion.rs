//! delete-message and the delete cascades of channels and services: permissions,
//! what goes with a message, S3 failures left to the sweep, races with binds, and
//! that bucket and table agree afterwards.

use chat_media::config::Settings;
use chat_media::model::Media;
use chat_media::sid::ServiceSid;
use chat_media::sid::{ChannelSid, MessageSid};
use chat_media::store::{keys, AttributeValue};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, aws_options, send, sid, sweeping, Fixture, TestApp};

/// Bucket and table agree for a service: every object under its media prefix has
/// a media record, every media record's object exists, and every bound media's
/// message exists and carries it.
async fn assert_no_orphans(app: &TestApp, service_sid: &ServiceSid, known: &[Media]) {
    for key in app.objects_of(service_sid).await {
        let media_sid = key.rsplit('/').next().unwrap();
        assert!(
            app.media_record(media_sid).await.is_some(),
            "object {key} has no media record"
        );
    }
    for media in known {
        let Some(stored) = app.media_record(&media.sid).await else {
            assert!(
                !app.object_exists(&media.object_key).await,
                "{} lost its record but kept its object",
                media.sid
            );
            continue;
        };
        assert!(
            app.object_exists(&stored.object_key).await,
            "{} has no object",
            media.sid
        );
        if let (Some(message), Some(channel)) = (&stored.message_sid, &stored.channel_sid) {
            let message = app
                .state
                .store
                .get_message(channel, message)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{} is bound to a missing message", media.sid));
            assert_eq!(message.media.map(|m| m.sid), Some(media.sid.clone()));
        }
    }
}

#[tokio::test]
async fn who_may_delete_a_message() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (_, bob) = app.add_member(&f, "bob", None).await;
    let moderator_role = f.role("default_channel_creator_role_sid");
    let (_, moderator) = app.add_member(&f, "mod", Some(&moderator_role)).await;
    let no_delete = app
        .create_channel_role(&f.service_sid, "no delete", &["sendMessage"])
        .await;
    let (_, carol) = app.add_member(&f, "carol", Some(&no_delete)).await;
    let outsider = app.token(&f.service_sid, "outsider");

    // Own message with deleteOwnMessage → 204.
    let own = app.send_text(&f, &f.token, "mine").await;
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&own))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&own))).await;
    assert_error(status, &body, 404, Some(20404));

    // Someone else's: needs deleteAnyMessage.
    let bobs = app.send_text(&f, &bob, "bob's").await;
    let (status, body) = send(app.user(&f.token, Method::DELETE, &f.message_path(&bobs))).await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("deleteAnyMessage"),
        "{body}"
    );
    let (status, body) = send(app.user(&outsider, Method::DELETE, &f.message_path(&bobs))).await;
    assert_error(status, &body, 403, Some(50400));
    let (status, _) = send(app.user(&moderator, Method::DELETE, &f.message_path(&bobs))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Own message without deleteOwnMessage → 403 naming it.
    let carols = app.send_text(&f, &carol, "carol's").await;
    let (status, body) = send(app.user(&carol, Method::DELETE, &f.message_path(&carols))).await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("deleteOwnMessage"),
        "{body}"
    );
    // Admins always.
    let (status, _) = send(app.admin(Method::DELETE, &f.message_path(&carols))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = send(app.admin(
        Method::DELETE,
        &format!("{}/{}", f.messages_path(), MessageSid::generate()),
    ))
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) =
        send(app.admin(Method::DELETE, &format!("{}/IM12", f.messages_path()))).await;
    assert_error(status, &body, 400, Some(20001));
    let (_, channel) = send(app.admin(Method::GET, &f.channel_path())).await;
    assert_eq!(channel["messages_count"], 0);
}

#[tokio::test]
async fn deleting_a_media_message_removes_its_media_object_and_urls() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            Some("a.png"),
            b"bytes",
        )
        .await;
    let message = app.send_media(&f, &f.token, &media).await;
    let (_, json) = send(app.user(&f.token, Method::GET, &f.media_path(&media.sid))).await;
    let url = json["links"]["content_direct_temporary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        chat_media_tests::reqwest::get(&url).await.unwrap().status(),
        StatusCode::OK
    );

    let (status, _) = send(app.user(&f.token, Method::DELETE, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    for req in [
        app.user(&f.token, Method::GET, &f.media_path(&media.sid)),
        app.admin(Method::GET, &f.media_path(&media.sid)),
        app.admin(
            Method::GET,
            &format!("{}/Content", f.media_path(&media.sid)),
        ),
        app.admin(Method::GET, &f.message_path(&message)),
    ] {
        let (status, body) = send(req).await;
        assert_error(status, &body, 404, Some(20404));
    }
    // The URL handed out before no longer returns the bytes.
    let resp = chat_media_tests::reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!resp.text().await.unwrap().contains("bytes"));
    assert!(!app.object_exists(&media.object_key).await);
    assert!(!app.deletion_pending(&media.object_key).await);
    assert!(app.media_record(&media.sid).await.is_none());
}

#[tokio::test]
async fn s3_unreachable_during_a_delete_leaves_a_marker_the_sweep_clears() {
    // Runs the sweep, and expects its markers to stay until then.
    let _sweeping = sweeping().await;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            None,
            b"keep me for now",
        )
        .await;
    let message = app.send_media(&f, &f.token, &media).await;

    // The same table, but S3 on a port where nothing listens.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut broken_aws = aws_options();
    broken_aws.s3_endpoint = Some(format!("http://127.0.0.1:{closed}"));
    let broken = TestApp::spawn_with(broken_aws, Settings::default()).await;
    let (status, body) =
        send(broken.user(&f.token, Method::DELETE, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Records are gone, the object is still there, and its deletion is pending.
    let (status, _) = send(app.admin(Method::GET, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app.media_record(&media.sid).await.is_none());
    assert!(app.object_exists(&media.object_key).await);
    assert!(app.deletion_pending(&media.object_key).await);

    // S3 is back: the sweep removes object and marker.
    app.sweep().await;
    assert!(!app.object_exists(&media.object_key).await);
    assert!(!app.deletion_pending(&media.object_key).await);
    assert!(app.objects_of(&f.service_sid).await.is_empty());
    assert_no_orphans(&app, &f.service_sid, &[media]).await;
}

#[tokio::test]
async fn a_delete_racing_a_rebind_of_its_media_leaves_nothing_dangling() {
    // Runs the sweep, and expects its markers to stay until then.
    let _sweeping = sweeping().await;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"x")
        .await;
    let message = app.send_media(&f, &f.token, &media).await;
    let path = f.message_path(&message);

    let delete = send(app.user(&f.token, Method::DELETE, &path));
    let rebinds = futures::future::join_all((0..8).map(|_| {
        send(
            app.user(&f.token, Method::POST, &f.messages_path())
                .form(&[("MediaSid", media.sid.as_str())]),
        )
    }));
    let ((status, _), rebinds) = tokio::join!(delete, rebinds);
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (status, body) in &rebinds {
        // Still bound (409) or already gone (404): never a second message.
        assert!(
            *status == StatusCode::CONFLICT || *status == StatusCode::NOT_FOUND,
            "{status} {body}"
        );
    }
    let (_, list) = send(app.admin(Method::GET, &f.messages_path())).await;
    assert_eq!(list["messages"].as_array().unwrap().len(), 0);
    app.sweep().await;
    assert_no_orphans(&app, &f.service_sid, &[media]).await;
}

/// `n` text messages written straight through the store, to give a channel bulk.
async fn prefill(app: &TestApp, f: &Fixture, n: u64) {
    let channel_sid: ChannelSid = f.channel_sid.clone();
    let mut channel = app.channel_record(&channel_sid).await;
    for _ in 0..n {
        channel.next_message_index = app
            .state
            .store
            .take_message_index(&channel_sid)
            .await
            .unwrap()
            .unwrap();
        let now = chat_media::model::now();
        let message = chat_media::model::Message::text(
            MessageSid::generate(),
            &channel,
            chat_media::Identity::system(),
            "t".into(),
            "{}".into(),
            now,
        );
        app.state
            .store
            .create_message(&channel, &message, None, None)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_channel_delete_racing_binds_leaves_nothing_dangling() {
    // Runs the sweep, and expects its markers to stay until then.
    let _sweeping = sweeping().await;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // Enough messages that the cascade takes a while, and sends keep arriving
    // while it pages through them.
    prefill(&app, &f, 250).await;
    let mut uploads = Vec::new();
    for i in 0..24 {
        uploads.push(
            app.ready_media(
                &f.service_sid,
                "alice",
                "image/png",
                None,
                format!("m{i}").as_bytes(),
            )
            .await,
        );
    }
    for media in &uploads[..2] {
        app.send_media(&f, &f.token, media).await;
    }
    // Four senders, each sending its uploads one after another, race the delete.
    let (app_ref, f_ref) = (&app, &f);
    let senders = futures::future::join_all(uploads[2..].chunks(6).map(|chunk| async move {
        let (app, f) = (app_ref, f_ref);
        let mut statuses = Vec::new();
        for media in chunk {
            let (status, body) = send(
                app.user(&f.token, Method::POST, &f.messages_path())
                    .form(&[("MediaSid", media.sid.as_str())]),
            )
            .await;
            // Sent before the delete took hold (201, then cascaded), or refused
            // because the channel is being deleted or gone (404).
            assert!(
                status == StatusCode::CREATED || status == StatusCode::NOT_FOUND,
                "{status} {body}"
            );
            statuses.push(status.as_u16());
        }
        statuses
    }));
    let delete = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        send(app.admin(Method::DELETE, &f.channel_path())).await
    };
    let (statuses, (status, body)) = tokio::join!(senders, delete);
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(
        statuses.iter().flatten().any(|s| *s == 404),
        "some sends met the delete"
    );
    let (status, _) = send(app.admin(Method::GET, &f.channel_path())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    app.sweep().await;
    // Every upload is either gone with its object (it was sent) or still an
    // unbound upload with its object (its send was refused).
    for media in &uploads {
        match app.media_record(&media.sid).await {
            None => assert!(!app.object_exists(&media.object_key).await),
            Some(stored) => {
                assert_eq!(
                    stored.message_sid, None,
                    "{} bound into a deleted channel",
                    media.sid
                );
                assert!(app.object_exists(&media.object_key).await);
            }
        }
    }
    // Nothing is left of the channel's partition.
    let left = app.partition(f.channel_sid.as_str()).await;
    assert!(
        left.is_empty(),
        "items left in the channel's partition: {left:?}"
    );
    assert_no_orphans(&app, &f.service_sid, &uploads).await;
}

#[tokio::test]
async fn channel_and_service_deletes_cascade_through_pages_of_messages() {
    // Runs the sweep, and expects its markers to stay until then.
    let _sweeping = sweeping().await;
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // More messages than one page of the cascade (100), media ones among them.
    let mut sent = Vec::new();
    for i in 0..104 {
        if i % 20 == 0 {
            let media = app
                .ready_media(&f.service_sid, "alice", "image/png", None, b"p")
                .await;
            app.send_media(&f, &f.token, &media).await;
            sent.push(media);
        } else {
            send(
                app.admin(Method::POST, &f.messages_path())
                    .form(&[("Body", "t")]),
            )
            .await;
        }
    }
    assert_eq!(sent.len(), 6);
    let unbound = app
        .ready_media(
            &f.service_sid,
            "alice",
            "image/png",
            None,
            b"still uploading",
        )
        .await;
    let (status, _) = send(app.admin(Method::DELETE, &f.channel_path())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for media in &sent {
        assert!(app.media_record(&media.sid).await.is_none());
        assert!(!app.object_exists(&media.object_key).await);
        assert!(!app.deletion_pending(&media.object_key).await);
    }
    // An upload not sent anywhere is not the channel's: it stays until it expires.
    assert_eq!(
        app.objects_of(&f.service_sid).await,
        vec![unbound.object_key.clone()]
    );

    // A service delete goes through every channel the same way.
    let g = app
        .channel_with_member(&f.service, &[("UniqueName", "second")], "alice")
        .await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"q")
        .await;
    app.send_media(&g, &f.token, &media).await;
    let (status, _) = send(app.admin(Method::DELETE, &f.service_path())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app.media_record(&media.sid).await.is_none());
    assert!(!app.object_exists(&media.object_key).await);
    let (status, _) = send(app.admin(Method::GET, &f.service_path())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut all = sent;
    all.extend([media, unbound]);
    assert_no_orphans(&app, &f.service_sid, &all).await;
}

/// Marks a record as an interrupted delete would have left it.
async fn mark_deleting(app: &TestApp, pk: &str, sk: &str) {
    app.state
        .store
        .client()
        .update_item()
        .table_name(app.state.store.table())
        .key(keys::PK, AttributeValue::S(pk.into()))
        .key(keys::SK, AttributeValue::S(sk.into()))
        .update_expression("SET deleting = :yes")
        .expression_attribute_values(":yes", AttributeValue::Bool(true))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_interrupted_channel_or_service_delete_refuses_new_content_and_resumes() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        let media = app
            .ready_media(&f.service_sid, "alice", "image/png", None, b"r")
            .await;
        let message = app.send_media(&f, &f.token, &media).await;
        sent.push((media, message));
    }
    // The crash happened after the mark and the first media message.
    mark_deleting(&app, f.channel_sid.as_str(), keys::CHANNEL).await;
    let channel_sid: ChannelSid = f.channel_sid.clone();
    let first: MessageSid = sid(&sent[0].1).parse().unwrap();
    let first = app
        .state
        .store
        .get_message(&channel_sid, &first)
        .await
        .unwrap()
        .unwrap();
    app.state.store.delete_message(&first).await.unwrap();

    // Meanwhile nothing new gets in.
    let late = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"late")
        .await;
    for form in [vec![("Body", "hi")], vec![("MediaSid", late.sid.as_str())]] {
        let (status, body) = send(
            app.user(&f.token, Method::POST, &f.messages_path())
                .form(&form),
        )
        .await;
        assert_error(status, &body, 404, Some(20404));
    }
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Members", f.channel_path()))
            .form(&[("Identity", "newcomer")]),
    )
    .await;
    assert_error(status, &body, 404, None);
    assert_eq!(app.media_record(&late.sid).await.unwrap().message_sid, None);

    // Deleting again finishes the job.
    let (status, _) = send(app.admin(Method::DELETE, &f.channel_path())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (media, _) in &sent[1..] {
        assert!(app.media_record(&media.sid).await.is_none());
        assert!(!app.object_exists(&media.object_key).await);
    }
    assert!(app
        .state
        .store
        .find_channel(&channel_sid)
        .await
        .unwrap()
        .is_none());

    // The same for a service: once marked, no channel can be added; a delete resumes.
    mark_deleting(&app, f.service_sid.as_str(), keys::SERVICE).await;
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
            .form(&[("FriendlyName", "late")]),
    )
    .await;
    assert_error(status, &body, 409, Some(50002));
    let (status, body) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("FriendlyName", "renamed")]),
    )
    .await;
    assert_error(status, &body, 404, None);
    let (status, _) = send(app.admin(Method::DELETE, &f.service_path())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(app.admin(Method::GET, &f.service_path())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_send_checked_before_a_channel_delete_cannot_commit_after_its_mark() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"m")
        .await;
    let channel_sid: ChannelSid = f.channel_sid.clone();
    // The send read the channel before the delete marked it...
    let channel = app.channel_record(&channel_sid).await;
    mark_deleting(&app, f.channel_sid.as_str(), keys::CHANNEL).await;
    // ...so its transaction, which would bind the media, must not commit.
    let now = chat_media::model::now();
    let message = chat_media::model::Message::text(
        MessageSid::generate(),
        &channel,
        chat_media::Identity::parse("alice").unwrap(),
        "Media message".into(),
        "{}".into(),
        now,
    );
    let err = app
        .state
        .store
        .create_message(&channel, &message, Some(&media), None)
        .await
        .unwrap_err();
    // The cancellation hands back the channel as it is: being deleted.
    match err {
        chat_media::store::CreateMessageError::ChannelMoved(current) => assert!(current.deleting),
        other => panic!("expected the marked channel back, got {other:?}"),
    }
    assert!(app
        .state
        .store
        .get_message(&channel_sid, &message.sid)
        .await
        .unwrap()
        .is_none());
    let stored = app.media_record(&media.sid).await.unwrap();
    assert_eq!(stored.message_sid, None);
}
