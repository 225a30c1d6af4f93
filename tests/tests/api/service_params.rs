//! Chat v2 Service parameters (issue 12): every one of Twilio's spec set through
//! twilio-python and twilio-node's `services(sid).update(...)` and read back, and
//! `Limits.ChannelMembers` / `Limits.UserChannels` enforced with Twilio's codes
//! (50403, 50208; 50061 / 50060 for a bad limit), atomically under concurrency.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, credentials, send, twilio_node, twilio_python, TestApp};
use futures::future::join_all;
use serde_json::{json, Value};

fn stack(app: &TestApp) -> Value {
    let c = credentials();
    json!({
        "base": app.base,
        "account_sid": c.account_sid.as_str(),
        "auth_token": c.auth_token,
    })
}

async fn run(f: fn(&str, &Value) -> Value, script: &'static str, input: Value) -> Value {
    tokio::task::spawn_blocking(move || f(script, &input))
        .await
        .expect("the client script ran")
}

/// What both libraries must have seen, and what the app stores after them.
async fn check(app: &TestApp, out: &Value, lib: &str) {
    assert_eq!(
        out["created"]["limits"],
        json!({"channel_members": 100, "user_channels": 250}),
        "{lib}: Twilio's defaults"
    );
    let f = &out["fetched"];
    assert_eq!(f["read_status_enabled"], false, "{lib}: {f}");
    assert_eq!(f["reachability_enabled"], true, "{lib}: {f}");
    assert_eq!(f["typing_indicator_timeout"], 9, "{lib}: {f}");
    assert_eq!(f["consumption_report_interval"], 20, "{lib}: {f}");
    assert_eq!(
        f["limits"],
        json!({"channel_members": 2, "user_channels": 2}),
        "{lib}"
    );
    let n = &f["notifications"];
    assert_eq!(
        n["new_message"],
        json!({"enabled": true, "template": "${USER}: ${MESSAGE}", "sound": "ding.wav", "badge_count_enabled": true}),
        "{lib}: {n}"
    );
    for (kind, template, sound) in [
        ("added_to_channel", "Added to ${CHANNEL}", "added.wav"),
        (
            "removed_from_channel",
            "Removed from ${CHANNEL}",
            "removed.wav",
        ),
        ("invited_to_channel", "Invited to ${CHANNEL}", "invited.wav"),
    ] {
        assert_eq!(
            n[kind],
            json!({"enabled": true, "template": template, "sound": sound}),
            "{lib}: {n}"
        );
    }
    assert_eq!(n["log_enabled"], true, "{lib}: {n}");
    assert_eq!(
        out["bad_limit"],
        json!({"status": 400, "code": 50061}),
        "{lib}"
    );
    assert_eq!(
        out["bad_user_limit"],
        json!({"status": 400, "code": 50060}),
        "{lib}"
    );
    assert_eq!(
        out["third_member"],
        json!({"status": 403, "code": 50403}),
        "{lib}"
    );
    assert_eq!(
        out["third_channel"],
        json!({"status": 403, "code": 50208}),
        "{lib}"
    );
    assert_eq!(out["after_leaving"], "alice", "{lib}");
    // Stored: the refused members are not there; the counts are exact.
    let service = out["sid"].as_str().unwrap();
    let third = out["third_sid"].as_str().unwrap();
    let (status, members) = send(app.admin(
        Method::GET,
        &format!("/v2/Services/{service}/Channels/{third}/Members"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "{lib}"
    );
}

#[tokio::test]
async fn twilio_python_sets_reads_and_meets_the_service_parameters() {
    let app = TestApp::spawn().await;
    let out = run(twilio_python, "service_params.py", stack(&app)).await;
    check(&app, &out, "python").await;
}

#[tokio::test]
async fn twilio_node_sets_reads_and_meets_the_service_parameters() {
    let app = TestApp::spawn().await;
    let out = run(twilio_node, "service_params.js", stack(&app)).await;
    check(&app, &out, "node").await;
}

#[tokio::test]
async fn bad_parameters_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for (name, value, code) in [
        ("ReadStatusEnabled", "yes", 20001),
        ("TypingIndicatorTimeout", "-1", 20001),
        ("ConsumptionReportInterval", "soon", 20001),
        ("Limits.ChannelMembers", "0", 50061),
        ("Limits.ChannelMembers", "1001", 50061),
        ("Limits.UserChannels", "many", 50060),
        ("Notifications.NewMessage.Enabled", "1", 20001),
        ("Notifications.LogEnabled", "", 20001),
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &f.service_path())
                .form(&[(name, value)]),
        )
        .await;
        assert_error(status, &body, 400, Some(code));
    }
    let (_, service) = send(app.admin(Method::GET, &f.service_path())).await;
    assert_eq!(service["read_status_enabled"], true);
    assert_eq!(
        service["limits"],
        json!({"channel_members": 100, "user_channels": 250})
    );
    // An empty template clears it.
    for value in ["hello", ""] {
        let (status, body) = send(
            app.admin(Method::POST, &f.service_path())
                .form(&[("Notifications.AddedToChannel.Template", value)]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let expected = if value.is_empty() {
            Value::Null
        } else {
            json!(value)
        };
        assert_eq!(
            body["notifications"]["added_to_channel"]["template"],
            expected
        );
    }
}

#[tokio::test]
async fn concurrent_adds_never_pass_the_limits() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, body) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Limits.ChannelMembers", "5"), ("Limits.UserChannels", "3")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Twelve identities at once into a channel that holds alice and 4 more.
    let path = format!("{}/Members", f.channel_path());
    let results = join_all((0..12).map(|i| {
        let req = app
            .admin(Method::POST, &path)
            .form(&[("Identity", format!("u{i}"))]);
        send(req)
    }))
    .await;
    let added = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(added, 4, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 403, Some(50403));
    }
    let channel = app.channel_record(&f.channel_sid).await;
    assert_eq!(channel.members_count, 5);
    // Bob into eight channels at once: he may be in three.
    let channels = join_all((0..8).map(|i| {
        let req = app
            .admin(Method::POST, &format!("{}/Channels", f.service_path()))
            .form(&[("FriendlyName", format!("c{i}"))]);
        send(req)
    }))
    .await;
    let results = join_all(channels.iter().map(|(_, c)| {
        let req = app
            .admin(
                Method::POST,
                &format!(
                    "{}/Channels/{}/Members",
                    f.service_path(),
                    c["sid"].as_str().unwrap()
                ),
            )
            .form(&[("Identity", "bob")]);
        send(req)
    }))
    .await;
    let added = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(added, 3, "{results:?}");
    for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_error(*status, body, 403, Some(50208));
    }
    // Deleting one of his channels frees a slot.
    let joined = channels
        .iter()
        .zip(&results)
        .find(|(_, (s, _))| *s == StatusCode::CREATED)
        .map(|((_, c), _)| c["sid"].as_str().unwrap().to_owned())
        .unwrap();
    let other = channels
        .iter()
        .zip(&results)
        .find(|(_, (s, _))| *s != StatusCode::CREATED)
        .map(|((_, c), _)| c["sid"].as_str().unwrap().to_owned())
        .unwrap();
    let (status, _) = send(app.admin(
        Method::DELETE,
        &format!("{}/Channels/{joined}", f.service_path()),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("{}/Channels/{other}/Members", f.service_path()),
        )
        .form(&[("Identity", "bob")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A user's delete takes its memberships with it (each with its pointers and
/// counts): the channels no longer list it, and its channel count starts again.
#[tokio::test]
async fn deleting_a_user_removes_its_memberships_and_frees_its_channel_slots() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, _) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Limits.UserChannels", "2")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, user) = send(
        app.admin(Method::POST, &format!("{}/Users", f.service_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let other = app
        .channel_with_member(&f.service, &[("FriendlyName", "other")], "bob")
        .await;
    app.add_member(&other, "alice", None).await;
    let user_path = format!(
        "{}/Users/{}",
        f.service_path(),
        user["sid"].as_str().unwrap()
    );
    let (_, listed) = send(app.admin(Method::GET, &format!("{user_path}/Channels"))).await;
    assert_eq!(
        listed["channels"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    let (status, _) = send(app.admin(Method::DELETE, &user_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for channel in [&f, &other] {
        let (status, _) = send(app.admin(
            Method::GET,
            &format!("{}/Members/alice", channel.channel_path()),
        ))
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.channel_record(&f.channel_sid).await.members_count, 0);
    assert_eq!(
        app.channel_record(&other.channel_sid).await.members_count,
        1
    );
    // Her count went with her: two channels again, not zero.
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Members", f.channel_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Members", other.channel_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The migration step for memberships from before the user pointers: they get
/// their pointer and count, User Channels lists them, the limit counts them, and
/// a second run adds nothing.
#[tokio::test]
async fn the_backfill_gives_older_memberships_their_pointers_and_counts() {
    use chat_media::store::{keys, AttributeValue};
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // What a membership written before the feature looks like: no pointer, no count.
    let alice = chat_media::Identity::parse("alice").unwrap();
    for sk in [
        keys::user_channel(&alice, &f.channel_sid),
        keys::user_channel_count(&alice),
    ] {
        app.state
            .store
            .client()
            .delete_item()
            .table_name(app.state.store.table())
            .key(keys::PK, AttributeValue::S(f.service_sid.to_string()))
            .key(keys::SK, AttributeValue::S(sk))
            .send()
            .await
            .unwrap();
    }
    let (status, user) = send(
        app.admin(Method::POST, &format!("{}/Users", f.service_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let channels = format!(
        "{}/Users/{}/Channels",
        f.service_path(),
        user["sid"].as_str().unwrap()
    );
    let (_, listed) = send(app.admin(Method::GET, &channels)).await;
    assert_eq!(
        listed["channels"],
        json!([]),
        "not visible before the backfill"
    );

    let (_, added) = app.state.store.backfill_user_channels().await.unwrap();
    assert!(added >= 1);
    let (_, listed) = send(app.admin(Method::GET, &channels)).await;
    assert_eq!(
        listed["channels"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["channels"][0]["channel_sid"], f.channel_sid.as_str());
    // Counted: with a limit of one channel, a second is refused.
    let (status, _) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Limits.UserChannels", "1")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let other = app
        .channel_with_member(&f.service, &[("FriendlyName", "other")], "bob")
        .await;
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Members", other.channel_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_error(status, &body, 403, Some(50208));
    // Idempotent: alice's membership is not counted twice.
    app.state.store.backfill_user_channels().await.unwrap();
    let (status, _) = send(app.admin(
        Method::DELETE,
        &format!("{}/Members/alice", f.channel_path()),
    ))
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(
        app.admin(Method::POST, &format!("{}/Members", other.channel_path()))
            .form(&[("Identity", "alice")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
