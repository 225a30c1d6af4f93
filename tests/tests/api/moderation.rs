//! update-member: Twilio role updates, the plugin's block-user / unblock-user, who
//! may use them, their effect on create-message, the audit line and CORS.

use std::sync::{Arc, OnceLock};

use chat_media::sid::{ChannelSid, MemberSid};
use chat_media_tests::audit;
use chat_media_tests::reqwest::{header, Method, StatusCode};
use chat_media_tests::{assert_error, send, send_full, sid, Fixture, TestApp};
use serde_json::{json, Value};

// ---- helpers --------------------------------------------------------------------

/// A channel with alice (a "vip" role that can send), an agent (channel admin, so
/// `removeMember`) and a plain user.
struct Moderation {
    f: Fixture,
    vip_role: String,
    /// The service's default channel role: alice's. Moderators block and unblock
    /// only between it and the blocked role; a vip is an admin's to move.
    default_role: String,
    alice_member: String,
    agent: String,
    agent_member: String,
    user: String,
    blocked_role: String,
}

async fn moderation(app: &TestApp) -> Moderation {
    let f = app.service_with_member("seed").await;
    let vip_role = app
        .create_channel_role(
            &f.service_sid,
            "vip",
            &["sendMessage", "sendMediaMessage", "deleteOwnMessage"],
        )
        .await;
    let admin_role = f.role("default_channel_creator_role_sid");
    let (agent_member, agent) = app.add_member(&f, "agent", Some(&admin_role)).await;
    let (_, user) = app.add_member(&f, "user", None).await;
    let blocked_role = f.role("blocked_channel_role_sid");
    // alice (default channel role) is the fixture's member from here on.
    let f = app.join(&f, "alice", None).await;
    Moderation {
        default_role: f.role("default_channel_role_sid"),
        alice_member: f.member_sid.to_string(),
        f,
        vip_role,
        agent,
        agent_member: sid(&agent_member),
        user,
        blocked_role,
    }
}

/// The Flex plugin's request, exactly: `fetch(url, {method: 'POST', body: new
/// URLSearchParams({chatChannelSid, memberSid, Token}), headers: {'Content-Type':
/// 'application/x-www-form-urlencoded;charset=UTF-8'}})`.
async fn plugin(
    app: &TestApp,
    endpoint: &str,
    token: &str,
    channel: &str,
    member: &str,
) -> (StatusCode, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("chatChannelSid", channel)
        .append_pair("memberSid", member)
        .append_pair("Token", token)
        .finish();
    send(
        app.anon(Method::POST, endpoint)
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body(body),
    )
    .await
}

async fn send_text(app: &TestApp, f: &Fixture) -> (StatusCode, Value) {
    app.post_text(f, &f.token, "hello").await
}

async fn send_media(app: &TestApp, f: &Fixture) -> (StatusCode, Value) {
    let media = app
        .ready_media(&f.service_sid, "alice", "image/png", None, b"png")
        .await;
    app.post_media(f, &f.token, media.sid.as_str()).await
}

async fn member_role(app: &TestApp, f: &Fixture, member: &str) -> (String, Option<String>) {
    let member: MemberSid = member.parse().unwrap();
    let m = app
        .state
        .store
        .get_member_by_sid(&f.channel_sid, &member)
        .await
        .unwrap()
        .unwrap();
    (
        m.role_sid.to_string(),
        m.role_before_block.map(|r| r.to_string()),
    )
}

/// Twilio's member update of `member` to `role`, by `token`'s holder (None: an admin).
async fn update_role(
    app: &TestApp,
    f: &Fixture,
    token: Option<&str>,
    member: &str,
    role: &str,
) -> (StatusCode, Value) {
    let path = format!("{}/Members/{member}", f.channel_path());
    let req = match token {
        Some(token) => app.user(token, Method::POST, &path),
        None => app.admin(Method::POST, &path),
    };
    send(req.form(&[("RoleSid", role)])).await
}

/// `endpoint` (`/block-user` or `/unblock-user`) of `member` by an admin.
async fn admin_plugin(
    app: &TestApp,
    f: &Fixture,
    endpoint: &str,
    member: &str,
) -> (StatusCode, Value) {
    send(app.admin(Method::POST, endpoint).form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", member),
    ]))
    .await
}

/// The refusal of a change only an admin may make: 403, Twilio's 50205 (user
/// unauthorized to set role), a body saying so.
#[track_caller]
fn assert_admins_change(status: StatusCode, body: &Value) {
    assert_error(status, body, 403, Some(50205));
    assert!(
        body["message"].as_str().unwrap().contains("admin"),
        "{body}"
    );
}

// ---- tests ----------------------------------------------------------------------

#[tokio::test]
async fn block_stops_sending_but_not_reading_and_unblock_restores_the_role() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    let (status, before) = send_media(&app, f).await;
    assert_eq!(status, StatusCode::CREATED, "{before}");
    let media_sid = before["media"]["sid"].as_str().unwrap().to_owned();

    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.agent,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "member_sid": m.alice_member,
            "channel_sid": f.channel_sid,
            "role_sid": m.blocked_role,
            "previous_role_sid": m.default_role,
            "blocked": true,
        })
    );
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.blocked_role.clone(), Some(m.default_role.clone()))
    );

    // Text and media sends are refused, naming the missing permission.
    let (status, body) = send_text(&app, f).await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"].as_str().unwrap().contains("sendMessage"),
        "{body}"
    );
    let (status, body) = send_media(&app, f).await;
    assert_error(status, &body, 403, Some(50107));
    // Reading still works: messages, and the media sent before.
    let (status, _) = send(app.user(&f.token, Method::GET, &f.messages_path())).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(app.user(
        &f.token,
        Method::GET,
        &f.media_path(&media_sid.parse().unwrap()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = plugin(
        &app,
        "/unblock-user",
        &m.agent,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_sid"], m.default_role.as_str());
    assert_eq!(body["previous_role_sid"], m.blocked_role.as_str());
    assert_eq!(body["blocked"], false);
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.default_role.clone(), None)
    );
    let (status, body) = send_text(&app, f).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send_media(&app, f).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // One audit line per change: who, whom, where, from, to, when, which request.
    let lines = audit::lines_for(&m.alice_member);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let block = &lines[0];
    assert_eq!(block["event"], "member_role_changed");
    assert_eq!(block["action"], "block");
    assert_eq!(block["actor_type"], "user");
    assert_eq!(block["actor"], "agent");
    assert_eq!(block["member_identity"], "alice");
    assert_eq!(block["channel_sid"], f.channel_sid.as_str());
    assert_eq!(block["service_sid"], f.service_sid.as_str());
    assert_eq!(block["from_role_sid"], m.default_role.as_str());
    assert_eq!(block["to_role_sid"], m.blocked_role.as_str());
    assert!(block["time"].as_str().unwrap().ends_with('Z'));
    assert!(!block["request_id"].as_str().unwrap().is_empty());
    assert_eq!(lines[1]["action"], "unblock");
    assert_eq!(lines[1]["to_role_sid"], m.default_role.as_str());
}

#[tokio::test]
async fn block_and_unblock_are_idempotent() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    for _ in 0..2 {
        let (status, body) = plugin(
            &app,
            "/block-user",
            &m.agent,
            f.channel_sid.as_str(),
            &m.alice_member,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["blocked"], true);
        assert_eq!(body["role_sid"], m.blocked_role.as_str());
    }
    // The role to restore survived the second block.
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.blocked_role.clone(), Some(m.default_role.clone()))
    );
    for _ in 0..2 {
        let (status, body) = plugin(
            &app,
            "/unblock-user",
            &m.agent,
            f.channel_sid.as_str(),
            &m.alice_member,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["blocked"], false);
        assert_eq!(body["role_sid"], m.default_role.as_str());
    }
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.default_role.clone(), None)
    );
    // Only real changes are logged.
    assert_eq!(audit::lines_for(&m.alice_member).len(), 2);

    // Concurrent blocks agree too, and the restore role is the original one.
    let blocks = futures::future::join_all((0..6).map(|_| {
        plugin(
            &app,
            "/block-user",
            &m.agent,
            f.channel_sid.as_str(),
            &m.alice_member,
        )
    }))
    .await;
    for (status, body) in &blocks {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_eq!(body["role_sid"], m.blocked_role.as_str());
    }
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.blocked_role.clone(), Some(m.default_role.clone()))
    );
    assert_eq!(audit::lines_for(&m.alice_member).len(), 3);

    // A member blocked without a recorded role gets the default channel role back.
    let (user_member, _) = app.add_member(f, "plain", Some(&m.blocked_role)).await;
    let (status, body) = plugin(
        &app,
        "/unblock-user",
        &m.agent,
        f.channel_sid.as_str(),
        &sid(&user_member),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_sid"], f.service["default_channel_role_sid"]);
}

#[tokio::test]
async fn who_may_block_and_change_roles() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    let outsider = app.token(&f.service_sid, "outsider");

    // Without removeMember (a plain user): 403 50107 naming it; not a member: 403 50400.
    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.user,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"].as_str().unwrap().contains("removeMember"),
        "{body}"
    );
    let (status, body) = plugin(
        &app,
        "/block-user",
        &outsider,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_error(status, &body, 403, Some(50400));
    // Nobody changes their own role.
    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.agent,
        f.channel_sid.as_str(),
        &m.agent_member,
    )
    .await;
    assert_error(status, &body, 403, Some(50205));
    let (status, body) = send(
        app.user(
            &m.agent,
            Method::POST,
            &format!("{}/Members/agent", f.channel_path()),
        )
        .form(&[("RoleSid", m.vip_role.as_str())]),
    )
    .await;
    assert_error(status, &body, 403, Some(50205));
    // A moderator cannot block another moderator; an admin can.
    let admin_role = f.role("default_channel_creator_role_sid");
    let (other_mod, _) = app.add_member(f, "other-mod", Some(&admin_role)).await;
    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.agent,
        f.channel_sid.as_str(),
        &sid(&other_mod),
    )
    .await;
    assert_error(status, &body, 403, None);
    assert!(
        body["message"].as_str().unwrap().contains("only an admin"),
        "{body}"
    );
    // Nor make one.
    let (status, body) = send(
        app.user(
            &m.agent,
            Method::POST,
            &format!("{}/Members/alice", f.channel_path()),
        )
        .form(&[("RoleSid", admin_role.as_str())]),
    )
    .await;
    assert_error(status, &body, 403, None);
    assert_eq!(
        member_role(&app, f, &m.alice_member).await.0,
        m.default_role
    );

    // Admins (Basic) may do all of it.
    let (status, body) = send(app.admin(Method::POST, "/block-user").form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", &sid(&other_mod)),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(audit::lines_for(&sid(&other_mod))[0]["actor_type"], "admin");

    // Unknown channel or member → 404; another service's token → 404 (the
    // channel does not exist for it); malformed → 400; no credentials → 401.
    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.agent,
        ChannelSid::generate().as_str(),
        &m.alice_member,
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.agent,
        f.channel_sid.as_str(),
        MemberSid::generate().as_str(),
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = plugin(
        &app,
        "/block-user",
        &m.agent,
        f.channel_sid.as_str(),
        "nobody",
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let other = app.service_with_member("agent").await;
    let (status, body) = plugin(
        &app,
        "/block-user",
        &other.token,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    let (status, body) = plugin(&app, "/block-user", &m.agent, "CH123", &m.alice_member).await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(app.anon(Method::POST, "/block-user").form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", &m.alice_member),
    ]))
    .await;
    assert_error(status, &body, 401, None);
    let (status, body) = send(
        app.user(&m.agent, Method::POST, "/block-user")
            .form(&[("memberSid", &m.alice_member)]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));
    let (status, body) = send(
        app.user(&m.agent, Method::POST, "/block-user")
            .json(&json!({"chatChannelSid": f.channel_sid})),
    )
    .await;
    assert_error(status, &body, 415, None);
    // Nothing above changed alice.
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.default_role.clone(), None)
    );
}

#[tokio::test]
async fn the_twilio_member_update_changes_roles_within_the_service() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    let member_path = format!("{}/Members/{}", f.channel_path(), m.alice_member);
    let default_role = f.service["default_channel_role_sid"].as_str().unwrap();

    let (status, body) = send(
        app.admin(Method::POST, &member_path)
            .form(&[("RoleSid", default_role)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sid"], m.alice_member.as_str());
    assert_eq!(body["role_sid"], default_role);
    assert_eq!(body["identity"], "alice");
    assert_eq!(body["channel_sid"], f.channel_sid.as_str());
    // By identity too; giving a custom role is an admin's change (a moderator's
    // attempt is 403 and changes nothing); the GET agrees.
    let by_identity = format!("{}/Members/alice", f.channel_path());
    let (status, body) = send(
        app.user(&m.agent, Method::POST, &by_identity)
            .form(&[("RoleSid", m.vip_role.as_str())]),
    )
    .await;
    assert_error(status, &body, 403, Some(50205));
    assert_eq!(member_role(&app, f, &m.alice_member).await.0, default_role);
    let (status, body) = send(
        app.admin(Method::POST, &by_identity)
            .form(&[("RoleSid", m.vip_role.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, fetched) = send(app.admin(Method::GET, &member_path)).await;
    assert_eq!(fetched["role_sid"], m.vip_role.as_str());
    // Moving to the blocked role is a block: the role to restore is kept.
    let (status, _) = send(
        app.admin(Method::POST, &member_path)
            .form(&[("RoleSid", m.blocked_role.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        member_role(&app, f, &m.alice_member).await,
        (m.blocked_role.clone(), Some(m.vip_role.clone()))
    );
    // Restoring vip is the admin's (a moderator's unblock is 403); the admin's
    // unblock restores it.
    let (status, body) = plugin(
        &app,
        "/unblock-user",
        &m.agent,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_error(status, &body, 403, Some(50205));
    let (status, body) = send(app.admin(Method::POST, "/unblock-user").form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", m.alice_member.as_str()),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_sid"], m.vip_role.as_str());

    // A role of another service, a deployment role, a missing or malformed RoleSid → 400.
    let other = app.create_service().await;
    for role in [
        other["default_channel_role_sid"].as_str().unwrap(),
        f.service["default_service_role_sid"].as_str().unwrap(),
        "RL123",
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &member_path)
                .form(&[("RoleSid", role)]),
        )
        .await;
        assert_error(status, &body, 400, Some(20001));
    }
    // Without RoleSid (every parameter of Twilio's member update is optional):
    // the other fields change, the role does not.
    let (status, body) = send(
        app.admin(Method::POST, &member_path)
            .form(&[("Attributes", "{}")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_sid"], m.vip_role.as_str());
    // Unknown member → 404.
    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("{}/Members/{}", f.channel_path(), MemberSid::generate()),
        )
        .form(&[("RoleSid", default_role)]),
    )
    .await;
    assert_error(status, &body, 404, Some(20404));
    assert_eq!(member_role(&app, f, &m.alice_member).await.0, m.vip_role);
}

#[tokio::test]
async fn the_exact_plugin_request_works_and_tokens_must_agree() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    // Raw, as the browser sends it: no Authorization, no X-Twilio-Token, only the
    // form with the token in it; Origin is what any cross-origin fetch carries.
    let body = format!(
        "chatChannelSid={}&memberSid={}&Token={}",
        f.channel_sid, m.alice_member, m.agent
    );
    let (status, headers, json) = send_full(
        app.anon(Method::POST, "/block-user")
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .header("Origin", "https://flex.twilio.com")
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["blocked"], true);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://flex.twilio.com"
    );

    // The token in a header instead works the same; both must be the same token.
    let (status, json) = send(app.user(&m.agent, Method::POST, "/unblock-user").form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", &m.alice_member),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["blocked"], false);
    let (status, json) = send(app.user(&m.agent, Method::POST, "/block-user").form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", &m.alice_member),
        ("Token", &m.agent),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) = send(app.user(&m.agent, Method::POST, "/unblock-user").form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", &m.alice_member),
        ("Token", &m.user),
    ]))
    .await;
    assert_error(status, &json, 401, Some(20101));
    assert_eq!(
        member_role(&app, f, &m.alice_member).await.0,
        m.blocked_role
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_for_configured_origins_only() {
    let app = TestApp::spawn().await;
    for path in ["/block-user", "/v2/Services/IS00000000000000000000000000000001/Channels/CH00000000000000000000000000000001/Messages"] {
        let (status, headers, _) = send_full(
            app.anon(Method::OPTIONS, path)
                .header("Origin", "http://localhost:3000")
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type,x-twilio-token"),
        )
        .await;
        assert!(status.is_success(), "{status}");
        assert_eq!(headers["access-control-allow-origin"], "http://localhost:3000");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        for m in ["GET", "POST", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
        for h in ["authorization", "content-type", "x-twilio-token"] {
            assert!(allowed.contains(h), "{allowed}");
        }
        assert_eq!(headers["access-control-max-age"], "600");
        assert!(headers.get("access-control-allow-credentials").is_none());
    }
    // Another origin gets no permission.
    let (_, headers, _) = send_full(
        app.anon(Method::OPTIONS, "/block-user")
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "POST"),
    )
    .await;
    assert!(headers.get("access-control-allow-origin").is_none());
    // Configured origins replace the defaults.
    let state = app.state.clone();
    let custom = chat_media_local::app_with_cors(state, &["https://agents.example.com".to_owned()]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, custom).await });
    for (origin, allowed) in [
        ("https://agents.example.com", true),
        ("https://flex.twilio.com", false),
    ] {
        let resp = app
            .http
            .request(Method::OPTIONS, format!("http://{addr}/block-user"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.headers().get("access-control-allow-origin").is_some(),
            allowed,
            "{origin}"
        );
    }
    server.abort();
}

#[tokio::test]
async fn no_send_is_accepted_after_block_user_returned() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    let channel_sid: ChannelSid = f.channel_sid.clone();
    let blocked_at = Arc::new(OnceLock::<std::time::Instant>::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Sends that went through, and answers to sends started after the block: the
    // blocker waits on these rather than on the clock, so a slow machine cannot
    // leave either side of the block empty.
    let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let late_answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let until = |counter: Arc<std::sync::atomic::AtomicUsize>, at_least: usize| async move {
        for _ in 0..3000 {
            if counter.load(std::sync::atomic::Ordering::SeqCst) >= at_least {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };

    // Four senders keep sending text and media as alice; each records when it
    // started a send and what came back.
    let senders = (0..4).map(|i| {
        let (app, f, blocked_at, stop) = (&app, f, blocked_at.clone(), stop.clone());
        let (created, late_answers) = (created.clone(), late_answers.clone());
        async move {
            let mut results = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let started = std::time::Instant::now();
                let (status, body) = if i % 2 == 0 {
                    send_text(app, f).await
                } else {
                    send_media(app, f).await
                };
                let after_block = blocked_at.get().is_some_and(|b| started > *b);
                if status == StatusCode::CREATED {
                    created.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                if after_block {
                    late_answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                results.push((status, body, after_block));
            }
            results
        }
    });
    let blocker = async {
        until(created.clone(), 1).await;
        let (status, body) = plugin(
            &app,
            "/block-user",
            &m.agent,
            f.channel_sid.as_str(),
            &m.alice_member,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        blocked_at.set(std::time::Instant::now()).unwrap();
        // The channel as block-user left it: no message may be added after this.
        let at_block = app.channel_record(&channel_sid).await;
        // Eight answers to sends started after the block.
        until(late_answers.clone(), 8).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        at_block.messages_count
    };
    let (results, count_at_block) = tokio::join!(futures::future::join_all(senders), blocker);
    let results: Vec<_> = results.into_iter().flatten().collect();
    assert!(
        results.iter().any(|(s, _, _)| *s == StatusCode::CREATED),
        "some sends went through before the block"
    );
    let late: Vec<_> = results.iter().filter(|(_, _, after)| *after).collect();
    assert!(!late.is_empty(), "some sends started after the block");
    for (status, body, _) in late {
        assert_error(*status, body, 403, Some(50107));
    }
    for (status, body, _) in &results {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::FORBIDDEN,
            "{status} {body}"
        );
    }
    // Nothing was committed after block-user returned, not even a send that had
    // checked alice's role before the block. (Such a send may have taken an index
    // with its atomic ADD, which is then skipped: the count of messages, grown in
    // the message's own transaction, is what says nothing was written.)
    let now = app.channel_record(&channel_sid).await;
    assert_eq!(now.messages_count, count_at_block);
}

#[tokio::test]
async fn a_send_checked_before_a_block_cannot_commit_after_it() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    let channel_sid: ChannelSid = f.channel_sid.clone();
    let alice = chat_media::Identity::parse("alice").unwrap();
    // The send read alice's membership (vip, may send)...
    let channel = app.channel_record(&channel_sid).await;
    let member = app
        .state
        .store
        .get_member(&channel_sid, &alice)
        .await
        .unwrap()
        .unwrap();
    // ...then the block committed...
    let (status, _) = plugin(
        &app,
        "/block-user",
        &m.agent,
        f.channel_sid.as_str(),
        &m.alice_member,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // ...so the send's transaction is refused and nothing is written.
    let now = chat_media::model::now();
    let message = chat_media::model::Message::text(
        chat_media::sid::MessageSid::generate(),
        &channel,
        alice,
        "sneaky".into(),
        "{}".into(),
        now,
    );
    let err = app
        .state
        .store
        .create_message(&channel, &message, None, Some(&member))
        .await
        .unwrap_err();
    assert_eq!(err, chat_media::store::CreateMessageError::SenderChanged);
    assert!(app
        .state
        .store
        .get_message(&channel_sid, &message.sid)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_function_serves_the_plugin_event_as_lambda_delivers_it() {
    use tower::ServiceExt;
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let f = &m.f;
    // The plugin's request as API Gateway (HTTP API, payload v2) hands it to Lambda.
    let form = format!(
        "chatChannelSid={}&memberSid={}&Token={}",
        f.channel_sid, m.alice_member, m.agent
    );
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /block-user",
        "rawPath": "/block-user",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
            "origin": "https://flex.twilio.com",
            "host": "abcdef1234.execute-api.us-east-1.amazonaws.com"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/block-user", "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "requestId": "plugin-request-42",
            "routeKey": "POST /block-user",
            "stage": "$default",
            "time": "12/Mar/2024:10:00:00 +0000",
            "timeEpoch": 1710237600000u64
        },
        "body": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &form),
        "isBase64Encoded": true
    });
    let request = lambda_http::request::from_str(&event.to_string()).unwrap();
    let response = update_member::router(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 16)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["blocked"], true);
    let lines = audit::lines_for(&m.alice_member);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["request_id"], "plugin-request-42");
}

/// The moderator rule: a moderator only moves a member between the service's
/// default channel role and its blocked role, by the plugin or the member update.
#[tokio::test]
async fn moderators_block_and_unblock_between_the_default_and_the_blocked_role() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let (f, agent, alice) = (&m.f, Some(m.agent.as_str()), m.alice_member.as_str());
    let channel = f.channel_sid.as_str();

    let (status, body) = plugin(&app, "/block-user", &m.agent, channel, alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(member_role(&app, f, alice).await.0, m.blocked_role);
    let (status, body) = plugin(&app, "/unblock-user", &m.agent, channel, alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(member_role(&app, f, alice).await.0, m.default_role);
    // The member update to the blocked role is a block (the default role is kept
    // to restore), and back to the default role an unblock.
    for (role, kept) in [
        (&m.blocked_role, Some(m.default_role.clone())),
        (&m.default_role, None),
    ] {
        let (status, body) = update_role(&app, f, agent, alice, role).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(member_role(&app, f, alice).await, (role.clone(), kept));
    }
}

/// Every other role change is an admin's: 403 with a Twilio body, nothing changes.
#[tokio::test]
async fn every_other_role_change_is_an_admins() {
    let app = TestApp::spawn().await;
    let m = moderation(&app).await;
    let (f, agent, alice) = (&m.f, Some(m.agent.as_str()), m.alice_member.as_str());
    let channel = f.channel_sid.as_str();

    // Granting a custom role (one without removeMember).
    let (status, body) = update_role(&app, f, agent, alice, &m.vip_role).await;
    assert_admins_change(status, &body);
    assert_eq!(member_role(&app, f, alice).await.0, m.default_role);

    // Blocking, or moving, a member who holds a custom role.
    let (bob, _) = app.add_member(f, "bob", Some(&m.vip_role)).await;
    let bob = sid(&bob);
    let (status, body) = plugin(&app, "/block-user", &m.agent, channel, &bob).await;
    assert_admins_change(status, &body);
    let (status, body) = update_role(&app, f, agent, &bob, &m.default_role).await;
    assert_admins_change(status, &body);
    assert_eq!(member_role(&app, f, &bob).await, (m.vip_role.clone(), None));

    // Unblocking a member an admin blocked from the custom role: by the plugin
    // (which would restore it) or by moving them to the default role.
    let (status, body) = admin_plugin(&app, f, "/block-user", &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let blocked = (m.blocked_role.clone(), Some(m.vip_role.clone()));
    let (status, body) = plugin(&app, "/unblock-user", &m.agent, channel, &bob).await;
    assert_admins_change(status, &body);
    let (status, body) = update_role(&app, f, agent, &bob, &m.default_role).await;
    assert_admins_change(status, &body);
    assert_eq!(member_role(&app, f, &bob).await, blocked);
    // Keeping them blocked is no change of that: the moderator's block is a no-op.
    let (status, body) = plugin(&app, "/block-user", &m.agent, channel, &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(member_role(&app, f, &bob).await, blocked);
    // The admin's unblock restores the custom role.
    let (status, body) = admin_plugin(&app, f, "/unblock-user", &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_sid"], m.vip_role.as_str());

    // A member an admin put in another restricted role is the admin's too.
    let muted = app
        .create_channel_role(&f.service_sid, "muted", &["deleteOwnMessage"])
        .await;
    let (carol, _) = app.add_member(f, "carol", Some(&muted)).await;
    let carol = sid(&carol);
    let (status, body) = plugin(&app, "/unblock-user", &m.agent, channel, &carol).await;
    assert_admins_change(status, &body);
    let (status, body) = update_role(&app, f, agent, &carol, &m.blocked_role).await;
    assert_admins_change(status, &body);
    assert_eq!(member_role(&app, f, &carol).await, (muted, None));
}
