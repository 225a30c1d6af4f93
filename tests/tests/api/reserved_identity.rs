//! `system` is the author of what an admin uploads or sends without `From`. No
//! token, user, member or `From` may carry it, in any case or look-alike spelling,
//! so no user can act as the owner of an admin's upload, session or message.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    assert_error, credentials, media_path, now, send, sessions_path, sid, sign_token, token_claims,
    TestApp, PNG,
};

/// Spellings that read as `system`: the name itself, case variants, and look-alikes
/// (zero-width space, Cyrillic letters, fullwidth forms, a bidi override).
const SYSTEM_SPELLINGS: [&str; 7] = [
    "system",
    "SYSTEM",
    "System",
    "sys\u{200B}tem",
    "ѕуѕтем",
    "ｓｙｓｔｅｍ",
    "\u{202E}system",
];

#[tokio::test]
async fn a_token_for_system_cannot_act_on_what_an_admin_authored() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;

    // What an admin authors: a direct upload, an upload session (bytes uploaded,
    // not completed), and a message without From. All are recorded as "system".
    let (status, upload) = send(
        app.admin(Method::POST, &media_path(&f.service_sid))
            .header("Content-Type", "image/png")
            .body(PNG.to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{upload}");
    assert_eq!(upload["author"], "system");
    let upload_path = format!("{}/{}", media_path(&f.service_sid), sid(&upload));
    let (status, session) = send(
        app.admin(Method::POST, &sessions_path(&f.service_sid))
            .form(&[
                ("Size", PNG.len().to_string().as_str()),
                ("ContentType", "image/png"),
            ]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert_eq!(session["author"], "system");
    let (status, _) = app
        .put_part(&session["upload"]["parts"][0], PNG.to_vec())
        .await;
    assert!(status.is_success());
    let complete = format!("{}/{}/Complete", media_path(&f.service_sid), sid(&session));
    let (status, message) = send(
        app.admin(Method::POST, &f.messages_path())
            .form(&[("Body", "from the admin")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["from"], "system");
    // The member who would delete it as its author cannot exist either.
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Members", f.channel_path()))
            .form(&[("Identity", "system")]),
    )
    .await;
    assert_error(status, &body, 400, Some(20001));

    // A correctly signed, current token whose grant names `system` (or a look-alike)
    // is refused as bad grants, whatever it asks for.
    for name in SYSTEM_SPELLINGS {
        let t = now();
        let token = sign_token(
            &token_claims(&f.service_sid, name, t, t + 3600),
            &credentials().api_key_secret,
        );
        let attempts = [
            app.user(&token, Method::GET, &upload_path),
            app.user(&token, Method::GET, &format!("{upload_path}/Content")),
            app.user(&token, Method::POST, &f.messages_path())
                .form(&[("MediaSid", sid(&upload).as_str())]),
            app.user(&token, Method::POST, &complete),
            app.user(&token, Method::DELETE, &f.message_path(&message)),
        ];
        for attempt in attempts {
            let (status, body) = send(attempt).await;
            assert_error(status, &body, 401, Some(20106));
        }
    }

    // Nothing was read into a binding, completed or deleted meanwhile.
    assert!(app.record(sid(&upload)).await.message_sid.is_none());
    assert_eq!(app.record(sid(&session)).await.status.as_str(), "uploading");
    let (status, _) = send(app.admin(Method::GET, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::OK);
    // The admin still acts on all of it.
    let (status, body) = send(app.admin(Method::POST, &complete)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(app.admin(Method::DELETE, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn system_is_refused_as_a_user_a_member_a_sender_or_a_creator() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for name in SYSTEM_SPELLINGS {
        let refusals = [
            (
                "Identity",
                app.admin(Method::POST, &format!("{}/Users", f.service_path()))
                    .form(&[("Identity", name)]),
            ),
            (
                "Identity",
                app.admin(Method::POST, &format!("{}/Members", f.channel_path()))
                    .form(&[("Identity", name)]),
            ),
            (
                "From",
                app.admin(Method::POST, &f.messages_path())
                    .form(&[("Body", "hi"), ("From", name)]),
            ),
            (
                "CreatedBy",
                app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
                    .form(&[("FriendlyName", "x"), ("CreatedBy", name)]),
            ),
        ];
        for (param, request) in refusals {
            let (status, body) = send(request).await;
            assert_error(status, &body, 400, Some(20001));
            let message = body["message"].as_str().unwrap();
            assert!(
                message.contains(param) && message.contains("reserved"),
                "{name:?}: {body}"
            );
        }
    }
    // Names that only contain it are ordinary identities.
    for name in ["systems", "system-bot", "ops-system"] {
        let (status, body) = send(
            app.admin(Method::POST, &format!("{}/Members", f.channel_path()))
                .form(&[("Identity", name)]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    }
}
