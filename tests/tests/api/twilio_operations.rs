//! Twilio's update operations (members, messages, channels, users), user delete
//! and the User Channels list, with Twilio's parameters, permissions and JSON.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, send, sid, TestApp, PNG};

#[tokio::test]
async fn member_update_takes_every_parameter_optionally() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let path = format!("{}/Members/{}", f.channel_path(), f.member_sid);
    assert!(f.member["last_consumed_message_index"].is_null());

    // Attributes alone: no RoleSid needed; the role is kept.
    let (status, m) = send(
        app.admin(Method::POST, &path)
            .form(&[("Attributes", r#"{"x":1}"#)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["attributes"], r#"{"x":1}"#);
    assert_eq!(m["role_sid"], f.member["role_sid"]);

    // The consumption horizon, as the member itself sets it.
    let (status, m) = send(app.user(&f.token, Method::POST, &path).form(&[
        ("LastConsumedMessageIndex", "0"),
        ("LastConsumptionTimestamp", "2026-11-30T01:02:03Z"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["last_consumed_message_index"], 0);
    assert_eq!(m["last_consumption_timestamp"], "2026-11-30T01:02:03Z");
    let (_, fetched) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(fetched["last_consumed_message_index"], 0);
    assert_eq!(fetched["attributes"], r#"{"x":1}"#);

    // Dates are an admin's to set.
    let (status, m) = send(app.admin(Method::POST, &path).form(&[
        ("DateCreated", "2020-01-02T03:04:05Z"),
        ("DateUpdated", "2020-01-03T03:04:05Z"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["date_created"], "2020-01-02T03:04:05Z");
    assert_eq!(m["date_updated"], "2020-01-03T03:04:05Z");
    let (status, body) = send(
        app.user(&f.token, Method::POST, &path)
            .form(&[("DateCreated", "2020-01-02T03:04:05Z")]),
    )
    .await;
    assert_error(status, &body, 403, None);

    // Another member may not touch alice's membership; nothing changes.
    let bob = app.join(&f, "bob", None).await;
    let (status, body) = send(
        app.user(&bob.token, Method::POST, &path)
            .form(&[("Attributes", r#"{"by":"bob"}"#)]),
    )
    .await;
    assert_error(status, &body, 403, None);
    let (_, fetched) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(fetched["attributes"], r#"{"x":1}"#);

    // Bad values are 400 naming the parameter.
    for (k, v) in [
        ("Attributes", "{"),
        ("LastConsumedMessageIndex", "-1"),
        ("LastConsumptionTimestamp", "yesterday"),
    ] {
        let (status, body) = send(app.admin(Method::POST, &path).form(&[(k, v)])).await;
        assert_error(status, &body, 400, None);
        assert!(body["message"].as_str().unwrap().contains(k), "{body}");
    }

    // RoleSid still works, together with the other fields.
    let admin_role = f.role("default_channel_creator_role_sid");
    let (status, m) = send(app.admin(Method::POST, &path).form(&[
        ("RoleSid", admin_role.as_str()),
        ("Attributes", r#"{"y":2}"#),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["role_sid"], admin_role);
    assert_eq!(m["attributes"], r#"{"y":2}"#);
}

#[tokio::test]
async fn message_update_with_twilio_permissions() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let bob = app.join(&f, "bob", None).await;
    let moderator = app
        .join(&f, "mod", Some(&f.role("default_channel_creator_role_sid")))
        .await;
    let message = app.send_text(&f, &f.token, "first").await;
    let path = f.message_path(&message);
    assert_eq!(message["was_edited"], false);
    assert!(message["last_updated_by"].is_null());

    // Her own message: editOwnMessage.
    let (status, m) = send(
        app.user(&f.token, Method::POST, &path)
            .form(&[("Body", "fixed")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["body"], "fixed");
    assert_eq!(m["was_edited"], true);
    assert_eq!(m["last_updated_by"], "alice");
    assert_eq!(m["index"], message["index"]);
    assert_eq!(m["from"], "alice");

    // Bob may not edit alice's message or its attributes (no editAny*).
    for form in [[("Body", "bob was here")], [("Attributes", r#"{"b":1}"#)]] {
        let (status, body) = send(app.user(&bob.token, Method::POST, &path).form(&form)).await;
        assert_error(status, &body, 403, Some(50107));
    }
    let (_, fetched) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(fetched["body"], "fixed");
    assert_eq!(fetched["attributes"], "{}");

    // The channel admin role has editAnyMessageAttributes.
    let (status, m) = send(
        app.user(&moderator.token, Method::POST, &path)
            .form(&[("Attributes", r#"{"pinned":true}"#)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["attributes"], r#"{"pinned":true}"#);
    assert_eq!(m["last_updated_by"], "mod");

    // From, LastUpdatedBy and dates: admins only.
    let (status, body) = send(
        app.user(&f.token, Method::POST, &path)
            .form(&[("From", "bob")]),
    )
    .await;
    assert_error(status, &body, 403, None);
    let (status, m) = send(app.admin(Method::POST, &path).form(&[
        ("From", "carol"),
        ("LastUpdatedBy", "support"),
        ("DateUpdated", "2026-01-01T00:00:00Z"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (&m["from"], &m["last_updated_by"], &m["date_updated"]),
        (
            &"carol".into(),
            &"support".into(),
            &"2026-01-01T00:00:00Z".into()
        )
    );

    // A media message's media never changes, whatever is edited.
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", Some("dot.png"), PNG)
        .await;
    let sent = app.send_media(&f, &f.token, &media).await;
    let (status, m) = send(
        app.user(&f.token, Method::POST, &f.message_path(&sent))
            .form(&[
                ("Body", "a caption"),
                ("MediaSid", "ME00000000000000000000000000000000"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["body"], "a caption");
    assert_eq!(m["media"], sent["media"]);
    assert_eq!(m["type"], "media");

    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("{}/IM00000000000000000000000000000000", f.messages_path()),
        )
        .form(&[("Body", "x")]),
    )
    .await;
    assert_error(status, &body, 404, None);
}

#[tokio::test]
async fn channel_update_moves_the_unique_name_atomically() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let channels = format!("{}/Channels", f.service_path());
    let (status, _) = send(
        app.admin(Method::POST, &channels)
            .form(&[("UniqueName", "taken")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let path = f.channel_path();

    let (status, c) = send(app.admin(Method::POST, &path).form(&[
        ("FriendlyName", "Renamed"),
        ("UniqueName", "support"),
        ("Attributes", r#"{"a":1}"#),
        ("CreatedBy", "bob"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["friendly_name"], "Renamed");
    assert_eq!(c["unique_name"], "support");
    assert_eq!(c["attributes"], r#"{"a":1}"#);
    assert_eq!(c["created_by"], "bob");
    let (status, by_name) = send(app.admin(Method::GET, &format!("{channels}/support"))).await;
    assert_eq!((status, &by_name["sid"]), (StatusCode::OK, &c["sid"]));

    // A name another channel holds: 409, and nothing changes.
    let (status, body) = send(
        app.admin(Method::POST, &path)
            .form(&[("UniqueName", "taken"), ("FriendlyName", "Not applied")]),
    )
    .await;
    assert_error(status, &body, 409, Some(50307));
    let (_, now) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(
        (&now["unique_name"], &now["friendly_name"]),
        (&"support".into(), &"Renamed".into())
    );

    // Renamed again: the old name is free for another channel.
    let (status, _) = send(
        app.admin(Method::POST, &path)
            .form(&[("UniqueName", "helpdesk")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(app.admin(Method::GET, &format!("{channels}/support"))).await;
    assert_error(status, &body, 404, None);
    let (status, _) = send(
        app.admin(Method::POST, &channels)
            .form(&[("UniqueName", "support")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Two renames racing to one name: exactly one wins.
    let (_, other) = send(
        app.admin(Method::POST, &channels)
            .form(&[("FriendlyName", "other")]),
    )
    .await;
    let other_path = format!("{channels}/{}", sid(&other));
    let (a, b) = tokio::join!(
        send(
            app.admin(Method::POST, &path)
                .form(&[("UniqueName", "contested")])
        ),
        send(
            app.admin(Method::POST, &other_path)
                .form(&[("UniqueName", "contested")])
        ),
    );
    let mut statuses = [a.0.as_u16(), b.0.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{} {}", a.1, b.1);

    // A plain member lacks editChannelName and editChannelAttributes.
    for form in [[("FriendlyName", "mine")], [("Attributes", "{}")]] {
        let (status, body) = send(app.user(&f.token, Method::POST, &path).form(&form)).await;
        assert_error(status, &body, 403, Some(50107));
    }
    for bad in [
        [("UniqueName", "CH00000000000000000000000000000001")],
        [("Attributes", "[")],
    ] {
        let (status, body) = send(app.admin(Method::POST, &path).form(&bad)).await;
        assert_error(status, &body, 400, None);
    }
}

#[tokio::test]
async fn user_update_delete_and_channels() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let users = format!("{}/Users", f.service_path());
    let (status, alice) = send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    let path = format!("{users}/{}", sid(&alice));

    // Alice names herself (editOwnUserInfo); the role is an admin's.
    let (status, u) = send(app.user(&f.token, Method::POST, &path).form(&[
        ("FriendlyName", "Alice A."),
        ("Attributes", r#"{"tz":"UTC"}"#),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(
        (&u["friendly_name"], &u["attributes"]),
        (&"Alice A.".into(), &r#"{"tz":"UTC"}"#.into())
    );
    let admin_role = f.role("default_service_role_sid");
    let (status, body) = send(
        app.user(&f.token, Method::POST, &path)
            .form(&[("RoleSid", admin_role.as_str())]),
    )
    .await;
    assert_error(status, &body, 403, None);
    let (status, body) = send(
        app.admin(Method::POST, &path)
            .form(&[("RoleSid", f.role("default_channel_role_sid").as_str())]),
    )
    .await;
    assert_error(status, &body, 400, None);

    // Her channels: the fixture's and a second one, with Twilio's User Channel JSON.
    let second = app
        .channel_with_member(&f.service, &[("FriendlyName", "second")], "alice")
        .await;
    let (status, list) = send(app.user(&f.token, Method::GET, &format!("{path}/Channels"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut got: Vec<String> = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel_sid"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = vec![f.channel_sid.to_string(), second.channel_sid.to_string()];
    want.sort();
    assert_eq!(got, want);
    let row = &list["channels"][0];
    assert_eq!(row["user_sid"], alice["sid"]);
    assert_eq!(row["status"], "joined");
    assert!(row["member_sid"].as_str().unwrap().starts_with("MB"));
    assert!(row["links"]["channel"]
        .as_str()
        .unwrap()
        .starts_with("http"));
    // One she left is no longer listed; bob may not list hers.
    let (status, _) = send(app.admin(
        Method::DELETE,
        &format!("{}/Members/alice", second.channel_path()),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = send(app.admin(Method::GET, &format!("{path}/Channels"))).await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 1, "{list}");
    let bob = app.token(&f.service_sid, "bob");
    let (status, body) = send(app.user(&bob, Method::GET, &format!("{path}/Channels"))).await;
    assert_error(status, &body, 403, None);

    // Delete: admins only; then 404; the identity can be created again.
    let (status, body) = send(app.user(&f.token, Method::DELETE, &path)).await;
    assert_error(status, &body, 403, None);
    let (status, _) = send(app.admin(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(app.admin(Method::GET, &path)).await;
    assert_error(status, &body, 404, None);
    let (status, body) = send(app.admin(Method::DELETE, &path)).await;
    assert_error(status, &body, 404, None);
    let (status, _) = send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}
