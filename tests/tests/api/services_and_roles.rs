//! Services and roles through the HTTP API, against real DynamoDB.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, send, sid, TestApp};

#[tokio::test]
async fn create_service_makes_default_roles_and_reads_back() {
    let app = TestApp::spawn().await;
    let service = app.create_service().await;
    let service_sid = sid(&service);
    assert!(service_sid.starts_with("IS") && service_sid.len() == 34);
    assert_eq!(service["friendly_name"], "test service");
    assert_eq!(service["media"]["size_limit_mb"], 150);
    assert!(service["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v2/Services/{service_sid}")));
    assert!(service["date_created"].as_str().unwrap().ends_with('Z'));

    let (status, fetched) =
        send(app.admin(Method::GET, &format!("/v2/Services/{service_sid}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, service);

    let (status, roles) =
        send(app.admin(Method::GET, &format!("/v2/Services/{service_sid}/Roles"))).await;
    assert_eq!(status, StatusCode::OK);
    let roles = roles["roles"].as_array().unwrap().clone();
    let by_name = |name: &str| {
        roles
            .iter()
            .find(|r| r["friendly_name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no role {name}"))
    };
    let perms = |name: &str| {
        by_name(name)["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(roles.len(), 5);
    assert!(perms("channel user").contains(&"sendMediaMessage".into()));
    assert!(perms("channel admin").contains(&"removeMember".into()));
    assert!(perms("service user").contains(&"createChannel".into()));
    assert!(perms("service admin").contains(&"editAnyUserInfo".into()));
    let blocked = perms("blocked user");
    assert!(
        !blocked.contains(&"sendMessage".into()) && !blocked.contains(&"sendMediaMessage".into())
    );
    assert!(blocked.contains(&"leaveChannel".into()));
    assert_eq!(
        service["default_channel_role_sid"],
        by_name("channel user")["sid"]
    );
    assert_eq!(
        service["blocked_channel_role_sid"],
        by_name("blocked user")["sid"]
    );
    assert_eq!(
        service["default_service_role_sid"],
        by_name("service user")["sid"]
    );
    assert_eq!(by_name("channel user")["type"], "channel");
    assert_eq!(by_name("service admin")["type"], "deployment");
}

#[tokio::test]
async fn update_service_media_settings_and_refusals() {
    let app = TestApp::spawn().await;
    let service_sid = sid(&app.create_service().await);
    let path = format!("/v2/Services/{service_sid}");
    let (status, updated) = send(app.admin(Method::POST, &path).form(&[
        ("FriendlyName", "renamed"),
        ("Media.CompatibilityMessage", "Sent you a file"),
        ("Media.SizeLimitMb", "20"),
        ("Media.AllowedTypes", "image/*"),
        ("Media.AllowedTypes", "application/pdf"),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["friendly_name"], "renamed");
    assert_eq!(updated["media"]["compatibility_message"], "Sent you a file");
    assert_eq!(updated["media"]["size_limit_mb"], 20);
    assert_eq!(
        updated["media"]["allowed_types"],
        serde_json::json!(["image/*", "application/pdf"])
    );
    let (_, fetched) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(fetched["media"]["compatibility_message"], "Sent you a file");

    for (name, value) in [
        ("Media.SizeLimitMb", "151"),
        ("Media.SizeLimitMb", "0"),
        ("Media.AllowedTypes", "images"),
        ("Media.CompatibilityMessage", " "),
        ("DefaultChannelRoleSid", "RL123"),
    ] {
        let (status, body) = send(app.admin(Method::POST, &path).form(&[(name, value)])).await;
        assert_error(status, &body, 400, Some(20001));
        assert!(body["message"].as_str().unwrap().contains(name), "{body}");
    }
    // A deployment role cannot be the default channel role.
    let service_role = fetched["default_service_role_sid"].as_str().unwrap();
    let (status, body) = send(
        app.admin(Method::POST, &path)
            .form(&[("DefaultChannelRoleSid", service_role)]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (_, unchanged) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(unchanged["media"]["size_limit_mb"], 20);
}

#[tokio::test]
async fn list_services_pages_with_tokens() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.create_service().await;
    }
    let (status, page) = send(app.admin(Method::GET, "/v2/Services?PageSize=2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["services"].as_array().unwrap().len(), 2);
    assert_eq!(page["meta"]["page_size"], 2);
    assert_eq!(page["meta"]["key"], "services");
    let next = page["meta"]["next_page_url"]
        .as_str()
        .expect("a next page")
        .to_owned();
    assert!(next.contains("PageToken=") && next.contains("Page=1"));
    let (status, page2) = send(app.http.get(&next).basic_auth(
        "AC00000000000000000000000000000001",
        Some("test-auth-token-0001"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page2}");
    let first: Vec<_> = page["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(sid)
        .collect();
    for s in page2["services"].as_array().unwrap() {
        assert!(!first.contains(&sid(s)), "page 2 repeats page 1");
    }
    assert_eq!(page2["meta"]["page"], 1);
}

#[tokio::test]
async fn paging_parameters_are_validated() {
    let app = TestApp::spawn().await;
    for query in [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=abc",
        "PageToken=garbage",
        "Page=2",
    ] {
        let (status, body) = send(app.admin(Method::GET, &format!("/v2/Services?{query}"))).await;
        assert_error(status, &body, 400, Some(20001));
    }
    // A token from one list is refused on another.
    let f = app.service_with_member("alice").await;
    for _ in 0..2 {
        app.create_service().await;
    }
    let (_, page) = send(app.admin(Method::GET, "/v2/Services?PageSize=1")).await;
    let next = page["meta"]["next_page_url"].as_str().unwrap();
    let token = next.split("PageToken=").nth(1).unwrap();
    let (status, body) = send(app.admin(
        Method::GET,
        &format!("/v2/Services/{}/Roles?PageToken={token}", f.service_sid),
    ))
    .await;
    assert_error(status, &body, 400, Some(20001));
}

#[tokio::test]
async fn custom_roles_create_update_delete() {
    let app = TestApp::spawn().await;
    let service_sid = sid(&app.create_service().await);
    let roles = format!("/v2/Services/{service_sid}/Roles");
    let (status, role) = send(app.admin(Method::POST, &roles).form(&[
        ("FriendlyName", "moderator"),
        ("Type", "channel"),
        ("Permission", "sendMessage"),
        ("Permission", "removeMember"),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    let role_path = format!("{roles}/{}", sid(&role));
    assert_eq!(
        role["permissions"],
        serde_json::json!(["removeMember", "sendMessage"])
    );

    let (status, updated) = send(
        app.admin(Method::POST, &role_path)
            .form(&[("Permission", "sendMediaMessage")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        updated["permissions"],
        serde_json::json!(["sendMediaMessage"])
    );

    // Refusals: unknown permission (Twilio's 50104), wrong scope, bad type
    // (Twilio's 50105), none given.
    for (form, code) in [
        (
            vec![
                ("FriendlyName", "x"),
                ("Type", "channel"),
                ("Permission", "flyToTheMoon"),
            ],
            50104,
        ),
        (
            vec![
                ("FriendlyName", "x"),
                ("Type", "channel"),
                ("Permission", "createChannel"),
            ],
            20001,
        ),
        (
            vec![
                ("FriendlyName", "x"),
                ("Type", "galaxy"),
                ("Permission", "sendMessage"),
            ],
            50105,
        ),
        (vec![("FriendlyName", "x"), ("Type", "channel")], 20001),
        (
            vec![("Type", "channel"), ("Permission", "sendMessage")],
            20001,
        ),
    ] {
        let (status, body) = send(app.admin(Method::POST, &roles).form(&form)).await;
        assert_error(status, &body, 400, Some(code));
    }

    // In use by a member → 409; free again → 204; gone → 404.
    let (_, channel) = send(
        app.admin(
            Method::POST,
            &format!("/v2/Services/{service_sid}/Channels"),
        )
        .form(&[("FriendlyName", "c")]),
    )
    .await;
    let members = format!(
        "/v2/Services/{service_sid}/Channels/{}/Members",
        sid(&channel)
    );
    let (status, member) = send(
        app.admin(Method::POST, &members)
            .form(&[("Identity", "mod"), ("RoleSid", &sid(&role))]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["role_sid"], role["sid"]);
    let (status, body) = send(app.admin(Method::DELETE, &role_path)).await;
    assert_error(status, &body, 409, None);
    let (status, _) = send(app.admin(Method::DELETE, &format!("{members}/{}", sid(&member)))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(app.admin(Method::DELETE, &role_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = send(app.admin(Method::GET, &role_path)).await;
    assert_error(status, &body, 404, Some(20404));

    // Default roles are never deletable.
    let (_, service) = send(app.admin(Method::GET, &format!("/v2/Services/{service_sid}"))).await;
    let blocked = service["blocked_channel_role_sid"].as_str().unwrap();
    let (status, body) = send(app.admin(Method::DELETE, &format!("{roles}/{blocked}"))).await;
    assert_error(status, &body, 409, None);
}

#[tokio::test]
async fn delete_service_removes_everything_under_it() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, _) = send(app.admin(Method::DELETE, &f.service_path())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for path in [
        format!("/v2/Services/{}", f.service_sid),
        format!("/v2/Services/{}/Roles", f.service_sid),
        f.channel_path(),
        format!("{}/Members/alice", f.channel_path()),
    ] {
        let (status, body) = send(app.admin(Method::GET, &path)).await;
        assert_error(status, &body, 404, Some(20404));
    }
    // Nothing of the channel partition is left in the table.
    let left = app.partition(f.channel_sid.as_str()).await;
    assert!(left.is_empty(), "{left:?}");
    let (status, body) = send(app.admin(Method::DELETE, &f.service_path())).await;
    assert_error(status, &body, 404, Some(20404));
}
