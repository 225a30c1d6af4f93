//! Channels, members, users and message reads, with the user-visible access rules.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, send, sid, TestApp};

#[tokio::test]
async fn channels_by_sid_and_unique_name() {
    let app = TestApp::spawn().await;
    let service_sid = sid(&app.create_service().await);
    let channels = format!("/v2/Services/{service_sid}/Channels");
    let (status, channel) = send(app.admin(Method::POST, &channels).form(&[
        ("UniqueName", "support-42"),
        ("FriendlyName", "Support"),
        ("Type", "private"),
        ("Attributes", r#"{"topic":"billing"}"#),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    assert!(sid(&channel).starts_with("CH"));
    assert_eq!(channel["type"], "private");
    assert_eq!(channel["attributes"], r#"{"topic":"billing"}"#);
    assert_eq!(channel["members_count"], 0);

    let (status, by_name) = send(app.admin(Method::GET, &format!("{channels}/support-42"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_name["sid"], channel["sid"]);

    let (status, body) = send(
        app.admin(Method::POST, &channels)
            .form(&[("UniqueName", "support-42")]),
    )
    .await;
    assert_error(status, &body, 409, Some(50307));

    for (form, code) in [
        (vec![("Type", "secret")], 20001),
        (vec![("Attributes", "{not json")], 50304),
        (
            vec![("UniqueName", "CH0123456789abcdef0123456789abcdef")],
            50306,
        ),
    ] {
        let (status, body) = send(app.admin(Method::POST, &channels).form(&form)).await;
        assert_error(status, &body, 400, Some(code));
    }

    let (_, list) = send(app.admin(Method::GET, &channels)).await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 1);

    let (status, _) =
        send(app.admin(Method::DELETE, &format!("{channels}/{}", sid(&channel)))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(app.admin(Method::GET, &format!("{channels}/support-42"))).await;
    assert_error(status, &body, 404, Some(20404));
    // The unique name is free again.
    let (status, _) = send(
        app.admin(Method::POST, &channels)
            .form(&[("UniqueName", "support-42")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn members_add_fetch_list_remove() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let members = format!("{}/Members", f.channel_path());
    assert_eq!(f.member["identity"], "alice");
    assert_eq!(f.member["role_sid"], f.service["default_channel_role_sid"]);
    assert!(sid(&f.member).starts_with("MB"));

    let (status, body) = send(
        app.admin(Method::POST, &members)
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_error(status, &body, 409, Some(50404));

    // A role of another service, a deployment role, a malformed SID → 400.
    let other = app.create_service().await;
    for role in [
        other["default_channel_role_sid"].as_str().unwrap(),
        f.service["default_service_role_sid"].as_str().unwrap(),
        "RLnope",
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &members)
                .form(&[("Identity", "bob"), ("RoleSid", role)]),
        )
        .await;
        assert_error(status, &body, 400, Some(20001));
    }

    let (status, by_sid) =
        send(app.admin(Method::GET, &format!("{members}/{}", sid(&f.member)))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, by_identity) = send(app.admin(Method::GET, &format!("{members}/alice"))).await;
    assert_eq!(by_sid, by_identity);

    send(
        app.admin(Method::POST, &members)
            .form(&[("Identity", "bob")]),
    )
    .await;
    let (_, channel) = send(app.admin(Method::GET, &f.channel_path())).await;
    assert_eq!(channel["members_count"], 2);
    let (_, list) = send(app.admin(Method::GET, &members)).await;
    assert_eq!(list["members"].as_array().unwrap().len(), 2);

    let (status, _) = send(app.admin(Method::DELETE, &format!("{members}/bob"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(app.admin(Method::GET, &format!("{members}/bob"))).await;
    assert_error(status, &body, 404, Some(20404));
    let (_, channel) = send(app.admin(Method::GET, &f.channel_path())).await;
    assert_eq!(channel["members_count"], 1);
}

#[tokio::test]
async fn users_read_their_channels_and_own_membership_only() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let members = format!("{}/Members", f.channel_path());
    send(
        app.admin(Method::POST, &members)
            .form(&[("Identity", "bob")]),
    )
    .await;

    let (status, _) = send(app.user(&f.token, Method::GET, &f.channel_path())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(app.user(&f.token, Method::GET, &format!("{members}/alice"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(app.user(
        &f.token,
        Method::GET,
        &format!("{}/Messages", f.channel_path()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(app.user(&f.token, Method::GET, &format!("{members}/bob"))).await;
    assert_error(status, &body, 403, None);

    // A non-member of the channel cannot read it.
    let carol = app.token(&f.service_sid, "carol");
    for path in [
        f.channel_path(),
        format!("{}/Messages", f.channel_path()),
        members.clone(),
    ] {
        let (status, body) = send(app.user(&carol, Method::GET, &path)).await;
        assert_error(status, &body, 403, Some(50400));
    }
    // Users cannot write or administer.
    for (method, path) in [
        (Method::POST, members.clone()),
        (Method::DELETE, f.channel_path()),
        (Method::GET, format!("/v2/Services/{}", f.service_sid)),
        (Method::GET, format!("/v2/Services/{}/Roles", f.service_sid)),
        (
            Method::POST,
            format!("/v2/Services/{}/Channels", f.service_sid),
        ),
        (Method::GET, "/v2/Services".to_string()),
    ] {
        let (status, body) = send(
            app.user(&f.token, method, &path)
                .form(&[("Identity", "x"), ("FriendlyName", "x")]),
        )
        .await;
        assert_error(status, &body, 403, None);
    }
    // A token for another service is refused on this one.
    let other = app.create_service().await;
    let foreign = app.token(
        &chat_media::sid::ServiceSid::parse(&sid(&other)).unwrap(),
        "alice",
    );
    let (status, body) = send(app.user(&foreign, Method::GET, &f.channel_path())).await;
    assert_error(status, &body, 403, Some(20403));
}

#[tokio::test]
async fn users_create_fetch_list() {
    let app = TestApp::spawn().await;
    let service = app.create_service().await;
    let users = format!("/v2/Services/{}/Users", sid(&service));
    let (status, user) = send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "dana"), ("FriendlyName", "Dana")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(sid(&user).starts_with("US"));
    assert_eq!(user["role_sid"], service["default_service_role_sid"]);
    let (status, body) = send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "dana")]),
    )
    .await;
    assert_error(status, &body, 409, Some(50201));
    let (status, body) = send(app.admin(Method::POST, &users).form(&[
        ("Identity", "eve"),
        (
            "RoleSid",
            service["default_channel_role_sid"].as_str().unwrap(),
        ),
    ]))
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(
        app.admin(Method::POST, &users)
            .form(&[("FriendlyName", "no identity")]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    assert!(body["message"].as_str().unwrap().contains("Identity"));

    let (_, by_sid) = send(app.admin(Method::GET, &format!("{users}/{}", sid(&user)))).await;
    let (_, by_identity) = send(app.admin(Method::GET, &format!("{users}/dana"))).await;
    assert_eq!(by_sid, user);
    assert_eq!(by_identity, user);
    let (_, list) = send(app.admin(Method::GET, &users)).await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1);

    let dana = app.token(
        &chat_media::sid::ServiceSid::parse(&sid(&service)).unwrap(),
        "dana",
    );
    let (status, _) = send(app.user(&dana, Method::GET, &format!("{users}/dana"))).await;
    assert_eq!(status, StatusCode::OK);
    send(
        app.admin(Method::POST, &users)
            .form(&[("Identity", "frank")]),
    )
    .await;
    let (status, body) = send(app.user(&dana, Method::GET, &format!("{users}/frank"))).await;
    assert_error(status, &body, 403, None);
}

#[tokio::test]
async fn messages_list_and_fetch_refusals() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let messages = format!("{}/Messages", f.channel_path());
    let (status, list) = send(app.admin(Method::GET, &messages)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["messages"], serde_json::json!([]));
    assert_eq!(list["meta"]["key"], "messages");
    let (status, body) = send(app.admin(Method::GET, &format!("{messages}?Order=sideways"))).await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(app.admin(
        Method::GET,
        &format!("{messages}/IM0123456789abcdef0123456789abcdef"),
    ))
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = send(app.admin(Method::GET, &format!("{messages}/not-a-sid"))).await;
    assert_error(status, &body, 400, Some(20001));
    assert!(body["message"].as_str().unwrap().contains("MessageSid"));
}
