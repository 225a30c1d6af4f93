//! The moderator rule (update-member): a moderator (a channel role with
//! `removeMember`, not an admin) only moves a member between the service's default
//! channel role and its blocked role. Giving a custom role, changing a member who
//! holds one, and unblocking a member an admin blocked from one are an admin's:
//! 403 with a Twilio body, and nothing changes.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, send, sid, Fixture, TestApp};
use serde_json::Value;

struct Setup {
    f: Fixture,
    moderator: String,
    default_role: String,
    blocked_role: String,
    custom_role: String,
}

async fn setup(app: &TestApp) -> Setup {
    let f = app.service_with_member("alice").await;
    let channel_admin = f.role("default_channel_creator_role_sid");
    let (_, moderator) = app.add_member(&f, "mod", Some(&channel_admin)).await;
    // A role without removeMember, but more than a plain member's.
    let custom_role = app
        .create_channel_role(
            &f.service_sid,
            "trusted",
            &["sendMessage", "sendMediaMessage", "deleteAnyMessage"],
        )
        .await;
    Setup {
        default_role: f.role("default_channel_role_sid"),
        blocked_role: f.role("blocked_channel_role_sid"),
        f,
        moderator,
        custom_role,
    }
}

/// `/block-user` or `/unblock-user` of `member` by the holder of `token` (None: admin).
async fn plugin(
    app: &TestApp,
    s: &Setup,
    path: &str,
    token: Option<&str>,
    member: &str,
) -> (StatusCode, Value) {
    let req = match token {
        Some(token) => app.user(token, Method::POST, path),
        None => app.admin(Method::POST, path),
    };
    send(req.form(&[
        ("chatChannelSid", s.f.channel_sid.as_str()),
        ("memberSid", member),
    ]))
    .await
}

/// Twilio's member update of `member` to `role` by the holder of `token` (None: admin).
async fn update(
    app: &TestApp,
    s: &Setup,
    token: Option<&str>,
    member: &str,
    role: &str,
) -> (StatusCode, Value) {
    let path = format!("{}/Members/{member}", s.f.channel_path());
    let req = match token {
        Some(token) => app.user(token, Method::POST, &path),
        None => app.admin(Method::POST, &path),
    };
    send(req.form(&[("RoleSid", role)])).await
}

/// The member's role, as an admin reads it.
async fn role_of(app: &TestApp, s: &Setup, member: &str) -> String {
    let (status, body) = send(app.admin(
        Method::GET,
        &format!("{}/Members/{member}", s.f.channel_path()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["role_sid"].as_str().unwrap().to_owned()
}

/// The refusal of a change only an admin may make: 403, a Twilio body saying so.
#[track_caller]
fn assert_admins_change(status: StatusCode, body: &Value) {
    assert_error(status, body, 403, Some(20403));
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("admin"), "{body}");
}

#[tokio::test]
async fn moderators_block_and_unblock_between_the_default_and_the_blocked_role() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let m = Some(s.moderator.as_str());

    let (status, body) = plugin(&app, &s, "/block-user", m, "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(role_of(&app, &s, "alice").await, s.blocked_role);
    let (status, body) = plugin(&app, &s, "/unblock-user", m, "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(role_of(&app, &s, "alice").await, s.default_role);
    // The same moves through Twilio's member update.
    let (status, body) = update(&app, &s, m, "alice", &s.blocked_role).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = update(&app, &s, m, "alice", &s.default_role).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(role_of(&app, &s, "alice").await, s.default_role);
}

#[tokio::test]
async fn every_other_role_change_is_an_admins() {
    let app = TestApp::spawn().await;
    let s = setup(&app).await;
    let m = Some(s.moderator.as_str());

    // Granting a custom role (one without removeMember).
    let (status, body) = update(&app, &s, m, "alice", &s.custom_role).await;
    assert_admins_change(status, &body);
    assert_eq!(role_of(&app, &s, "alice").await, s.default_role);

    // Blocking, or moving, a member who holds a custom role.
    let (member, _) = app.add_member(&s.f, "bob", Some(&s.custom_role)).await;
    let bob = sid(&member);
    let (status, body) = plugin(&app, &s, "/block-user", m, &bob).await;
    assert_admins_change(status, &body);
    let (status, body) = update(&app, &s, m, &bob, &s.default_role).await;
    assert_admins_change(status, &body);
    assert_eq!(role_of(&app, &s, &bob).await, s.custom_role);

    // Unblocking a member an admin blocked from the custom role: by the plugin
    // (which would restore it) or by moving them to the default role.
    let (status, body) = plugin(&app, &s, "/block-user", None, &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = plugin(&app, &s, "/unblock-user", m, &bob).await;
    assert_admins_change(status, &body);
    let (status, body) = update(&app, &s, m, &bob, &s.default_role).await;
    assert_admins_change(status, &body);
    assert_eq!(role_of(&app, &s, &bob).await, s.blocked_role);
    // Keeping them blocked is no change of that: the moderator's block is a no-op.
    let (status, body) = plugin(&app, &s, "/block-user", m, &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The admin unblocks, restoring the custom role.
    let (status, body) = plugin(&app, &s, "/unblock-user", None, &bob).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role_sid"], s.custom_role.as_str());

    // A member an admin put in another restricted role is the admin's too.
    let channel_user_like = app
        .create_channel_role(&s.f.service_sid, "muted", &["deleteOwnMessage"])
        .await;
    let (member, _) = app
        .add_member(&s.f, "carol", Some(&channel_user_like))
        .await;
    let carol = sid(&member);
    let (status, body) = plugin(&app, &s, "/unblock-user", m, &carol).await;
    assert_admins_change(status, &body);
    let (status, body) = update(&app, &s, m, &carol, &s.blocked_role).await;
    assert_admins_change(status, &body);
    assert_eq!(role_of(&app, &s, &carol).await, channel_user_like);
}
