//! Twilio's own error codes where its dictionary has one (issue 12): attributes
//! too long / not JSON (50303 / 50304, for channels, members, messages and
//! users), a unique name like a channel SID (50306), an unknown permission
//! (50104), an invalid role type (50105), a role the caller may not set (50205),
//! a resource being deleted (50002), and the notification texts (50058 / 50059).

use chat_media_tests::reqwest::Method;
use chat_media_tests::{assert_error, send, TestApp};

#[tokio::test]
async fn attributes_too_long_or_not_json_are_50303_and_50304_everywhere() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let message = app.send_text(&f, &f.token, "hello").await;
    let (_, user) = send(
        app.admin(Method::POST, &format!("{}/Users", f.service_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    let long = format!("{{\"x\":\"{}\"}}", "a".repeat(16 * 1024));
    let targets = [
        (Method::POST, format!("{}/Channels", f.service_path())),
        (Method::POST, f.channel_path()),
        (Method::POST, format!("{}/Members", f.channel_path())),
        (Method::POST, format!("{}/Members/alice", f.channel_path())),
        (Method::POST, f.messages_path()),
        (
            Method::POST,
            format!("{}/{}", f.messages_path(), message["sid"].as_str().unwrap()),
        ),
        (Method::POST, format!("{}/Users", f.service_path())),
        (
            Method::POST,
            format!(
                "{}/Users/{}",
                f.service_path(),
                user["sid"].as_str().unwrap()
            ),
        ),
    ];
    for (method, path) in targets {
        for (attributes, code) in [(long.as_str(), 50303), ("{not json", 50304)] {
            let (status, body) = send(app.admin(method.clone(), &path).form(&[
                ("Attributes", attributes),
                ("Identity", "bob"),
                ("Body", "hi"),
            ]))
            .await;
            assert_error(status, &body, 400, Some(code));
            assert!(
                body["message"].as_str().unwrap().contains("Attributes"),
                "{path}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn role_and_name_codes() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let roles = format!("{}/Roles", f.service_path());
    // 50104: a permission Twilio does not have; a known one of the other type stays 20001.
    let (status, body) = send(app.admin(Method::POST, &roles).form(&[
        ("FriendlyName", "r"),
        ("Type", "channel"),
        ("Permission", "sendMessage"),
        ("Permission", "flyToTheMoon"),
    ]))
    .await;
    assert_error(status, &body, 400, Some(50104));
    let (status, body) = send(app.admin(Method::POST, &roles).form(&[
        ("FriendlyName", "r"),
        ("Type", "channel"),
        ("Permission", "createChannel"),
    ]))
    .await;
    assert_error(status, &body, 400, Some(20001));
    // 50105: a role type that is neither channel nor deployment.
    let (status, body) = send(app.admin(Method::POST, &roles).form(&[
        ("FriendlyName", "r"),
        ("Type", "galaxy"),
        ("Permission", "sendMessage"),
    ]))
    .await;
    assert_error(status, &body, 400, Some(50105));
    // 50306: a unique name in the form of a channel SID.
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
            .form(&[("UniqueName", "CH0123456789abcdef0123456789abcdef")]),
    )
    .await;
    assert_error(status, &body, 400, Some(50306));
    // 50205: a user giving itself a service role.
    let (_, user) = send(
        app.admin(Method::POST, &format!("{}/Users", f.service_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    let admin_role = f.role("default_service_role_sid");
    let (status, body) = send(
        app.user(
            &f.token,
            Method::POST,
            &format!(
                "{}/Users/{}",
                f.service_path(),
                user["sid"].as_str().unwrap()
            ),
        )
        .form(&[("RoleSid", admin_role.as_str())]),
    )
    .await;
    assert_error(status, &body, 403, Some(50205));
    // 50205: a moderator giving a member a custom role.
    let creator = f.role("default_channel_creator_role_sid");
    let moderator = app.join(&f, "mod", Some(&creator)).await;
    app.add_member(&f, "bob", None).await;
    let custom = app
        .create_channel_role(&f.service_sid, "custom", &["sendMessage"])
        .await;
    let (status, body) = send(
        app.user(
            &moderator.token,
            Method::POST,
            &format!("{}/Members/bob", f.channel_path()),
        )
        .form(&[("RoleSid", custom.as_str())]),
    )
    .await;
    assert_error(status, &body, 403, Some(50205));
    // 50058 / 50059: notification texts too long.
    let long = "x".repeat(1025);
    for (name, code) in [
        ("Notifications.NewMessage.Template", 50058),
        ("Notifications.AddedToChannel.Sound", 50059),
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &f.service_path())
                .form(&[(name, long.as_str())]),
        )
        .await;
        assert_error(status, &body, 400, Some(code));
    }
}

#[tokio::test]
async fn writing_into_a_channel_being_deleted_is_50002() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // The channel as its delete leaves it after a crash: marked, not yet gone.
    let mut channel = app.channel_record(&f.channel_sid).await;
    channel.deleting = true;
    app.state
        .store
        .replace_channel_unchanged(&channel, &app.channel_record(&f.channel_sid).await)
        .await
        .expect("marked");
    let stored = app.channel_record(&f.channel_sid).await;
    assert!(stored.deleting);
    // The add read the channel before the mark (a race): the store refuses it.
    let member = chat_media::model::Member::new(
        chat_media::sid::MemberSid::generate(),
        &stored,
        chat_media::Identity::parse("late").unwrap(),
        f.role("default_channel_role_sid").parse().unwrap(),
        "{}".into(),
        chat_media::model::now(),
    );
    let refused = app
        .state
        .store
        .add_member(&member, Default::default())
        .await;
    assert!(
        matches!(
            refused,
            Err(chat_media::store::AddMemberError::ChannelDeleting)
        ),
        "{refused:?}"
    );
}
