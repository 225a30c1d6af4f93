//! A caller who may not read something learns nothing about whether it exists:
//! every member, message and user route a non-member (or a member without the
//! right) could probe answers the same status and the same body for an identity,
//! member, message or user that exists and for one that does not.

use chat_media::sid::{MemberSid, MessageSid, UserSid};
use chat_media_tests::reqwest::{Method, RequestBuilder};
use chat_media_tests::{assert_error, send, sid, TestApp};

/// Sends both requests and asserts they got the same answer, a 403.
async fn same_answer(what: &str, existing: RequestBuilder, missing: RequestBuilder) {
    let (status, body) = send(existing).await;
    let (other_status, other_body) = send(missing).await;
    assert_eq!(
        (status, &body),
        (other_status, &other_body),
        "{what}: the answer tells whether it exists"
    );
    assert_error(status, &body, 403, None);
}

#[tokio::test]
async fn non_members_learn_nothing_about_members_messages_or_users() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let message = app.send_text(&f, &f.token, "hello").await;
    let (status, user) = send(
        app.admin(Method::POST, &format!("{}/Users", f.service_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{user}");
    // Callers: a user of the service outside the channel, and a plain member
    // (who may read the channel, but not others' memberships or user records,
    // and may not change roles).
    let outsider = app.token(&f.service_sid, "outsider");
    let bob = app.join(&f, "bob", None).await.token;
    let members = format!("{}/Members", f.channel_path());
    let blocked_role = f.role("blocked_channel_role_sid");

    for (who, token) in [("outsider", &outsider), ("bob", &bob)] {
        let probes: Vec<(&str, String, String)> = vec![
            (
                "member by identity",
                format!("{members}/alice"),
                format!("{members}/nobody"),
            ),
            (
                "member by SID",
                format!("{members}/{}", f.member_sid),
                format!("{members}/{}", MemberSid::generate()),
            ),
            (
                "user by identity",
                format!("{}/Users/alice", f.service_path()),
                format!("{}/Users/nobody", f.service_path()),
            ),
            (
                "user by SID",
                format!("{}/Users/{}", f.service_path(), sid(&user)),
                format!("{}/Users/{}", f.service_path(), UserSid::generate()),
            ),
        ];
        for (what, existing, missing) in probes {
            same_answer(
                &format!("{who}: GET {what}"),
                app.user(token, Method::GET, &existing),
                app.user(token, Method::GET, &missing),
            )
            .await;
        }
        // Role changes: Twilio's member update and the plugin's block/unblock.
        for (existing, missing) in [
            (format!("{members}/alice"), format!("{members}/nobody")),
            (
                format!("{members}/{}", f.member_sid),
                format!("{members}/{}", MemberSid::generate()),
            ),
        ] {
            same_answer(
                &format!("{who}: POST member update"),
                app.user(token, Method::POST, &existing)
                    .form(&[("RoleSid", blocked_role.as_str())]),
                app.user(token, Method::POST, &missing)
                    .form(&[("RoleSid", blocked_role.as_str())]),
            )
            .await;
        }
        for path in ["/block-user", "/unblock-user"] {
            let probe = |member: String| {
                app.user(token, Method::POST, path).form(&[
                    ("chatChannelSid", f.channel_sid.to_string()),
                    ("memberSid", member),
                ])
            };
            same_answer(
                &format!("{who}: {path}"),
                probe("alice".into()),
                probe("nobody".into()),
            )
            .await;
        }
    }

    // Messages: a non-member cannot tell an existing message from a missing one.
    let missing = format!("{}/{}", f.messages_path(), MessageSid::generate());
    for method in [Method::GET, Method::DELETE] {
        same_answer(
            &format!("outsider: {method} message"),
            app.user(&outsider, method.clone(), &f.message_path(&message)),
            app.user(&outsider, method.clone(), &missing),
        )
        .await;
    }
    // Alice is untouched, and still reads her own membership and user record.
    let (status, body) = send(app.user(&f.token, Method::GET, &format!("{members}/alice"))).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(
        body["role_sid"],
        f.role("default_channel_role_sid").as_str()
    );
    let (status, body) = send(app.user(
        &f.token,
        Method::GET,
        &format!("{}/Users/alice", f.service_path()),
    ))
    .await;
    assert_eq!(status.as_u16(), 200, "{body}");
}
