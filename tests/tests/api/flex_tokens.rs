//! Flex's own tokens at `/block-user` and `/unblock-user`: a deployed Flex plugin
//! sends the agent's Flex token in the `Token` field. The app validates it with
//! Twilio's token validation API (here the stand-in of `chat_media_tests::flex`),
//! caches a valid answer for the token's lifetime, and lets Flex `supervisor`s and
//! `admin`s moderate, not `agent`s unless configured.

use chat_media::config::Settings;
use chat_media::flex::FlexConfig;
use chat_media::sid::MemberSid;
use chat_media_tests::flex::{flex_token, FlexGrant, FlexValidationApi};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, aws_options, send, sid, Fixture, TestApp};
use serde_json::Value;

/// An app that accepts Flex tokens validated at `api`, moderator roles `roles`.
async fn app_with_flex(api: &FlexValidationApi, roles: &[&str]) -> TestApp {
    TestApp::spawn_with(
        aws_options(),
        Settings {
            flex: Some(FlexConfig {
                validation_url: api.url(),
                moderator_roles: roles.iter().map(|r| r.to_string()).collect(),
            }),
            ..Settings::default()
        },
    )
    .await
}

/// A channel with member alice (default role); returns the fixture.
async fn channel(app: &TestApp) -> Fixture {
    app.service_with_member("alice").await
}

/// `endpoint` of `member` with `token` in the form, as the Flex plugin posts it.
async fn plugin(
    app: &TestApp,
    endpoint: &str,
    token: &str,
    f: &Fixture,
    member: &str,
) -> (StatusCode, Value) {
    send(app.anon(Method::POST, endpoint).form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", member),
        ("Token", token),
    ]))
    .await
}

/// The member's role as stored.
async fn stored_role(app: &TestApp, f: &Fixture, member: &str) -> String {
    let member: MemberSid = member.parse().unwrap();
    app.state
        .store
        .get_member_by_sid(&f.channel_sid, &member)
        .await
        .unwrap()
        .expect("the member exists")
        .role_sid
        .to_string()
}

#[tokio::test]
async fn a_flex_supervisor_blocks_and_unblocks_with_one_validation_per_token() {
    let api = FlexValidationApi::start().await;
    let app = app_with_flex(&api, &["supervisor", "admin"]).await;
    let f = channel(&app).await;
    let alice = sid(&f.member);
    let supervisor = api.token("sup_40example_2Dcom", &["supervisor"]);

    let (status, body) = plugin(&app, "/block-user", &supervisor, &f, &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["blocked"], true);
    assert_eq!(
        stored_role(&app, &f, &alice).await,
        f.role("blocked_channel_role_sid")
    );
    // Blocked: alice can no longer send.
    let (status, _) = app.post_text(&f, &f.token, "hi").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = plugin(&app, "/unblock-user", &supervisor, &f, &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        stored_role(&app, &f, &alice).await,
        f.role("default_channel_role_sid")
    );
    // The second request used the cached answer.
    assert_eq!(api.calls(), 1);

    // A Flex admin too.
    let admin = api.token("boss", &["admin", "agent"]);
    let (status, body) = plugin(&app, "/block-user", &admin, &f, &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_flex_agent_may_not_moderate_unless_configured() {
    let api = FlexValidationApi::start().await;
    let app = app_with_flex(&api, &["supervisor", "admin"]).await;
    let f = channel(&app).await;
    let alice = sid(&f.member);
    let agent = api.token("agent_1", &["agent"]);
    let (status, body) = plugin(&app, "/block-user", &agent, &f, &alice).await;
    assert_error(status, &body, 403, Some(50107));
    assert!(
        body["message"].as_str().unwrap().contains("agent"),
        "{body}"
    );
    assert_eq!(
        stored_role(&app, &f, &alice).await,
        f.role("default_channel_role_sid")
    );

    // Configured: agents moderate too.
    let lenient = app_with_flex(&api, &["supervisor", "admin", "agent"]).await;
    let f = channel(&lenient).await;
    let alice = sid(&f.member);
    let (status, body) = plugin(&lenient, "/block-user", &agent, &f, &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        stored_role(&lenient, &f, &alice).await,
        f.role("blocked_channel_role_sid")
    );
}

#[tokio::test]
async fn invalid_expired_and_unverifiable_flex_tokens_change_nothing() {
    let api = FlexValidationApi::start().await;
    let app = app_with_flex(&api, &["supervisor"]).await;
    let f = channel(&app).await;
    let alice = sid(&f.member);
    let default_role = f.role("default_channel_role_sid");

    // Unknown to Twilio.
    let (status, body) = plugin(&app, "/block-user", &flex_token("nobody"), &f, &alice).await;
    assert_error(status, &body, 401, Some(20101));
    // Already expired by the time Twilio answers.
    let expired = flex_token("late");
    api.grant(
        &expired,
        FlexGrant {
            identity: "late".into(),
            roles: vec!["supervisor".into()],
            ttl_secs: -5,
        },
    );
    let (status, body) = plugin(&app, "/block-user", &expired, &f, &alice).await;
    assert_error(status, &body, 401, Some(20101));
    // The API is down: 503, and a later good answer is not spoiled by it.
    let supervisor = api.token("sup", &["supervisor"]);
    api.set_down(true);
    let (status, body) = plugin(&app, "/block-user", &supervisor, &f, &alice).await;
    assert_error(status, &body, 503, None);
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "no internal address in {body}"
    );
    assert_eq!(stored_role(&app, &f, &alice).await, default_role);
    api.set_down(false);
    let (status, body) = plugin(&app, "/block-user", &supervisor, &f, &alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_flex_moderator_follows_the_moderator_rules() {
    let api = FlexValidationApi::start().await;
    let app = app_with_flex(&api, &["supervisor"]).await;
    let f = channel(&app).await;
    // A channel moderator (holding removeMember) is an admin's to block.
    let moderator = app
        .join(&f, "mod", Some(&f.role("default_channel_creator_role_sid")))
        .await;
    let supervisor = api.token("sup", &["supervisor"]);
    let (status, body) = plugin(
        &app,
        "/block-user",
        &supervisor,
        &f,
        moderator.member_sid.as_str(),
    )
    .await;
    assert_error(status, &body, 403, None);
    // Nobody changes their own role, Flex users included.
    let own = app.join(&f, "sup", None).await;
    let (status, body) = plugin(
        &app,
        "/block-user",
        &supervisor,
        &f,
        own.member_sid.as_str(),
    )
    .await;
    assert_error(status, &body, 403, None);
    assert_eq!(
        stored_role(&app, &f, own.member_sid.as_str()).await,
        f.role("default_channel_role_sid")
    );
}

#[tokio::test]
async fn flex_tokens_are_refused_when_not_configured() {
    let api = FlexValidationApi::start().await;
    let app = TestApp::spawn().await;
    let f = channel(&app).await;
    let supervisor = api.token("sup", &["supervisor"]);
    let (status, body) = plugin(&app, "/block-user", &supervisor, &f, &sid(&f.member)).await;
    assert_error(status, &body, 401, None);
    assert_eq!(api.calls(), 0);
}
