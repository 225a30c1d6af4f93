//! The Chat events beyond message sends (s20-hooks): channels, members, message
//! updates and removals, users. Pre-events veto or modify, post-events go
//! through the outbox exactly once, only events in the filters fire. Every hook
//! request is a real HTTP request to a receiver started by the test, its
//! signature checked by twilio-python.

use chat_media_tests::hooks::{HookReceiver, Received, Reply};
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{credentials, send, sid, twilio_python, Fixture, TestApp};
use serde_json::{json, Value};

const ENABLED: &str = "X-Twilio-Webhook-Enabled";

async fn configure(app: &TestApp, f: &Fixture, form: &[(&str, &str)]) {
    let (status, body) = send(app.admin(Method::POST, &f.service_path()).form(form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn events(seen: &[Received]) -> Vec<String> {
    seen.iter()
        .map(|r| r.param("EventType").unwrap_or_default().to_owned())
        .collect()
}

/// The request of the one `event` the hook received.
fn only<'a>(seen: &'a [Received], event: &str) -> &'a Received {
    let found: Vec<_> = seen
        .iter()
        .filter(|r| r.param("EventType") == Some(event))
        .collect();
    assert_eq!(found.len(), 1, "{event} exactly once: {:?}", events(seen));
    found[0]
}

async fn dispatch_all(app: &TestApp) {
    let now = chat_media_tests::now();
    chat_media::dispatch::run(&app.state, now).await.unwrap();
    chat_media::dispatch::run(&app.state, now).await.unwrap();
}

const POST_EVENTS: &[&str] = &[
    "onChannelAdded",
    "onChannelUpdated",
    "onChannelDestroyed",
    "onMemberAdded",
    "onMemberUpdated",
    "onMemberRemoved",
    "onMessageUpdated",
    "onMessageRemoved",
    "onUserAdded",
    "onUserUpdated",
];

#[tokio::test]
async fn twilio_python_sets_the_webhooks_of_a_service() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let c = credentials();
    let input = json!({
        "base": app.base,
        "account_sid": c.account_sid.as_str(),
        "auth_token": c.auth_token,
        "service_sid": f.service_sid.as_str(),
        "pre": "https://hooks.example.com/pre",
        "post": "https://hooks.example.com/post",
        "filters": ["onMessageSend", "onChannelUpdated", "onMemberAdd"],
    });
    let out = tokio::task::spawn_blocking(move || twilio_python("webhooks.py", &input))
        .await
        .unwrap();
    for name in ["updated", "fetched"] {
        let s = &out[name];
        assert_eq!(
            s["pre_webhook_url"], "https://hooks.example.com/pre",
            "{out}"
        );
        assert_eq!(s["post_webhook_url"], "https://hooks.example.com/post");
        assert_eq!(s["webhook_method"], "POST");
        assert_eq!(
            s["webhook_filters"],
            json!(["onMessageSend", "onChannelUpdated", "onMemberAdd"])
        );
        assert_eq!(s["pre_webhook_retry_count"], 1);
        assert_eq!(s["post_webhook_retry_count"], 2);
    }
    // Stored: what the API renders afterwards.
    let (_, stored) = send(app.admin(Method::GET, &f.service_path())).await;
    assert_eq!(stored["webhook_filters"][1], "onChannelUpdated");
}

#[tokio::test]
async fn every_chat_post_event_is_delivered_exactly_once_with_twilios_parameters() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::ok()).await;
    let f = app.service_with_member("alice").await;
    let url = hook.url("/post");
    let mut form = vec![("PostWebhookUrl", url.as_str())];
    form.extend(POST_EVENTS.iter().map(|e| ("WebhookFilters", *e)));
    configure(&app, &f, &form).await;
    let service = f.service_path();

    // Admin REST without the header fires nothing.
    let (status, _) = send(
        app.admin(Method::POST, &format!("{service}/Channels"))
            .form(&[("FriendlyName", "quiet")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let loud = |m: Method, path: &str| app.admin(m, path).header(ENABLED, "true");
    let (status, user) = send(
        loud(Method::POST, &format!("{service}/Users"))
            .form(&[("Identity", "bob"), ("FriendlyName", "Bob")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let (status, _) = send(
        loud(Method::POST, &format!("{service}/Users/{}", sid(&user)))
            .form(&[("FriendlyName", "Bobby")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, channel) = send(loud(Method::POST, &format!("{service}/Channels")).form(&[
        ("FriendlyName", "hooked"),
        ("UniqueName", "hooked-room"),
        ("Attributes", r#"{"topic":"x"}"#),
    ]))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let channel_path = format!("{service}/Channels/{}", sid(&channel));
    let (status, _) =
        send(loud(Method::POST, &channel_path).form(&[("FriendlyName", "renamed")])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, member) =
        send(loud(Method::POST, &format!("{channel_path}/Members")).form(&[("Identity", "bob")]))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let member_path = format!("{channel_path}/Members/{}", sid(&member));
    let (status, _) =
        send(loud(Method::POST, &member_path).form(&[("Attributes", r#"{"seat":1}"#)])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, message) = send(
        loud(Method::POST, &format!("{channel_path}/Messages"))
            .form(&[("From", "bob"), ("Body", "first")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    let message_path = format!("{channel_path}/Messages/{}", sid(&message));
    let (status, _) = send(loud(Method::POST, &message_path).form(&[("Body", "edited")])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(loud(Method::DELETE, &message_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(loud(Method::DELETE, &member_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(loud(Method::DELETE, &channel_path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    assert!(
        hook.requests().is_empty(),
        "post-events never block the action"
    );
    dispatch_all(&app).await;
    let seen = hook.requests();
    assert_eq!(
        events(&seen),
        POST_EVENTS_IN_ORDER,
        "each event once, in the order of the changes"
    );
    let added = only(&seen, "onChannelAdded");
    assert_eq!(added.param("ChannelSid"), channel["sid"].as_str());
    assert_eq!(added.param("UniqueName"), Some("hooked-room"));
    assert_eq!(added.param("FriendlyName"), Some("hooked"));
    assert_eq!(added.param("Attributes"), Some(r#"{"topic":"x"}"#));
    assert_eq!(added.param("ChannelType"), Some("public"));
    assert_eq!(added.param("ClientIdentity"), None);
    assert_eq!(
        only(&seen, "onChannelUpdated").param("FriendlyName"),
        Some("renamed")
    );
    let member_added = only(&seen, "onMemberAdded");
    assert_eq!(member_added.param("MemberSid"), member["sid"].as_str());
    assert_eq!(member_added.param("Identity"), Some("bob"));
    assert_eq!(member_added.param("Reason"), Some("ADDED"));
    assert_eq!(member_added.param("RoleSid"), member["role_sid"].as_str());
    assert_eq!(
        only(&seen, "onMemberUpdated").param("Attributes"),
        Some(r#"{"seat":1}"#)
    );
    assert_eq!(
        only(&seen, "onMemberRemoved").param("Reason"),
        Some("REMOVED")
    );
    let updated = only(&seen, "onMessageUpdated");
    assert_eq!(updated.param("MessageSid"), message["sid"].as_str());
    assert_eq!(updated.param("Body"), Some("edited"));
    assert_eq!(updated.param("From"), Some("bob"));
    assert_eq!(updated.param("Index"), Some("0"));
    let removed = only(&seen, "onMessageRemoved");
    assert_eq!(removed.param("Body"), Some("edited"));
    assert!(removed.param("DateRemoved").is_some());
    let user_added = only(&seen, "onUserAdded");
    assert_eq!(user_added.param("UserSid"), user["sid"].as_str());
    assert_eq!(user_added.param("Identity"), Some("bob"));
    assert_eq!(
        only(&seen, "onUserUpdated").param("FriendlyName"),
        Some("Bobby")
    );
    assert_eq!(
        only(&seen, "onChannelDestroyed").param("ChannelSid"),
        channel["sid"].as_str()
    );
    for r in &seen {
        assert_eq!(r.param("InstanceSid"), Some(f.service_sid.as_str()));
        assert_eq!(r.param("WebhookType"), Some("webhook"));
    }
    hook.assert_signed(&credentials().auth_token);
    // Nothing is left to deliver a second time.
    dispatch_all(&app).await;
    assert_eq!(hook.requests().len(), POST_EVENTS_IN_ORDER.len());
}

const POST_EVENTS_IN_ORDER: &[&str] = &[
    "onUserAdded",
    "onUserUpdated",
    "onChannelAdded",
    "onChannelUpdated",
    "onMemberAdded",
    "onMemberUpdated",
    "onMessageUpdated",
    "onMessageRemoved",
    "onMemberRemoved",
    "onChannelDestroyed",
];

#[tokio::test]
async fn user_actions_fire_post_events_without_the_header() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::ok()).await;
    let f = app.service_with_member("alice").await;
    let url = hook.url("/post");
    configure(
        &app,
        &f,
        &[
            ("PostWebhookUrl", url.as_str()),
            ("WebhookFilters", "onMessageUpdated"),
            ("WebhookFilters", "onMessageRemoved"),
        ],
    )
    .await;
    let message = app.send_text(&f, &f.token, "mine").await;
    let path = f.message_path(&message);
    let (status, body) = send(
        app.user(&f.token, Method::POST, &path)
            .form(&[("Body", "mine, edited")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(app.user(&f.token, Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    dispatch_all(&app).await;
    let seen = hook.requests();
    assert_eq!(events(&seen), ["onMessageUpdated", "onMessageRemoved"]);
    assert_eq!(seen[0].param("ClientIdentity"), Some("alice"));
    assert_eq!(seen[0].param("ModifiedBy"), Some("alice"));
    assert_eq!(seen[1].param("RemovedBy"), Some("alice"));
    hook.assert_signed(&credentials().auth_token);
}

/// One vetoed request: the event, the method, the path and the form.
type Case<'a> = (&'a str, Method, String, Vec<(&'a str, &'a str)>);

/// A service whose pre-event hook vetoes everything, for admin REST too.
async fn vetoing(app: &TestApp, hook: &HookReceiver, filters: &[&str]) -> Fixture {
    let f = app.service_with_member("alice").await;
    let url = hook.url("/pre");
    let mut form = vec![
        ("PreWebhookUrl", url.as_str()),
        ("PreWebhookForRest", "true"),
    ];
    form.extend(filters.iter().map(|e| ("WebhookFilters", *e)));
    configure(app, &f, &form).await;
    f
}

#[tokio::test]
async fn pre_events_veto_every_family_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::json(403, json!({"reason": "not today"}))).await;
    let f = vetoing(
        &app,
        &hook,
        &[
            "onChannelAdd",
            "onChannelUpdate",
            "onChannelDestroy",
            "onMemberAdd",
            "onMemberUpdate",
            "onMemberRemove",
            "onMessageUpdate",
            "onMessageRemove",
            "onUserUpdate",
        ],
    )
    .await;
    let service = f.service_path();
    // Written before the hooks were set, so they exist to be acted on.
    let (_, user) = send(
        app.admin(Method::POST, &format!("{service}/Users"))
            .form(&[("Identity", "carol")]),
    )
    .await;
    let message = {
        configure(&app, &f, &[("PreWebhookForRest", "false")]).await;
        let m = app.send_text(&f, &f.token, "keep me").await;
        configure(&app, &f, &[("PreWebhookForRest", "true")]).await;
        m
    };
    let member_path = format!("{}/Members/{}", f.channel_path(), f.member_sid);
    let other_role = app
        .create_channel_role(&f.service_sid, "other", &["sendMessage"])
        .await;
    let cases: Vec<Case> = vec![
        (
            "onChannelAdd",
            Method::POST,
            format!("{service}/Channels"),
            vec![("FriendlyName", "new")],
        ),
        (
            "onChannelUpdate",
            Method::POST,
            f.channel_path(),
            vec![("FriendlyName", "renamed")],
        ),
        ("onChannelDestroy", Method::DELETE, f.channel_path(), vec![]),
        (
            "onMemberAdd",
            Method::POST,
            format!("{}/Members", f.channel_path()),
            vec![("Identity", "dave")],
        ),
        (
            "onMemberUpdate",
            Method::POST,
            member_path.clone(),
            vec![("Attributes", r#"{"x":1}"#)],
        ),
        (
            "onMemberUpdate",
            Method::POST,
            member_path.clone(),
            vec![("RoleSid", other_role.as_str())],
        ),
        (
            "onMemberRemove",
            Method::DELETE,
            member_path.clone(),
            vec![],
        ),
        (
            "onMessageUpdate",
            Method::POST,
            f.message_path(&message),
            vec![("Body", "changed")],
        ),
        (
            "onMessageRemove",
            Method::DELETE,
            f.message_path(&message),
            vec![],
        ),
        (
            "onUserUpdate",
            Method::POST,
            format!("{service}/Users/{}", sid(&user)),
            vec![("FriendlyName", "Caroline")],
        ),
    ];
    for (event, method, path, form) in cases {
        let before = hook.requests().len();
        let (status, body) = send(app.admin(method.clone(), &path).form(&form)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{event} {method} {path}: {body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("not today"),
            "{event}: {body}"
        );
        let seen = hook.requests();
        assert_eq!(seen.len(), before + 1, "{event}: one hook request");
        assert_eq!(seen[before].param("EventType"), Some(event));
    }
    // Nothing was written.
    let (_, channel) = send(app.admin(Method::GET, &f.channel_path())).await;
    assert_eq!(channel["friendly_name"], "general");
    assert_eq!(channel["members_count"], 1);
    let (status, member) = send(app.admin(Method::GET, &member_path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(member["attributes"], "{}");
    let (status, kept) = send(app.admin(Method::GET, &f.message_path(&message))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kept["body"], "keep me");
    let (_, carol) = send(app.admin(Method::GET, &format!("{service}/Users/{}", sid(&user)))).await;
    assert_eq!(carol["friendly_name"], Value::Null);
    let (_, channels) = send(app.admin(Method::GET, &format!("{service}/Channels"))).await;
    assert_eq!(channels["channels"].as_array().unwrap().len(), 1);
    hook.assert_signed(&credentials().auth_token);
}

#[tokio::test]
async fn user_actions_fire_pre_events_and_admin_rest_only_with_pre_webhook_for_rest() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::status(403)).await;
    let f = app.service_with_member("alice").await;
    let url = hook.url("/pre");
    configure(
        &app,
        &f,
        &[
            ("PreWebhookUrl", url.as_str()),
            ("WebhookFilters", "onMessageUpdate"),
            ("WebhookFilters", "onMessageRemove"),
        ],
    )
    .await;
    let message = app.send_text(&f, &f.token, "mine").await;
    let path = f.message_path(&message);
    let (status, _) = send(
        app.user(&f.token, Method::POST, &path)
            .form(&[("Body", "edited")]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(app.user(&f.token, Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        events(&hook.requests()),
        ["onMessageUpdate", "onMessageRemove"]
    );
    assert_eq!(hook.requests()[1].param("ClientIdentity"), Some("alice"));
    // Admin REST: Twilio's pre-events never fire for it.
    let (status, body) = send(
        app.admin(Method::POST, &path)
            .form(&[("Body", "admin edit")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(hook.requests().len(), 2);
}

#[tokio::test]
async fn pre_events_modify_channels_messages_and_users() {
    let app = TestApp::spawn().await;
    let hook = HookReceiver::start(|r, _| match r.param("EventType") {
        Some("onChannelAdd") | Some("onChannelUpdate") => Reply::json(
            200,
            json!({"friendlyName": "[moderated]", "attributes": {"checked": true}}),
        ),
        Some("onMessageUpdate") => Reply::json(200, json!({"body": "[redacted]"})),
        Some("onUserUpdate") => Reply::json(200, json!({"friendlyName": "Nice Name"})),
        _ => Reply::ok(),
    })
    .await;
    let f = vetoing(
        &app,
        &hook,
        &[
            "onChannelAdd",
            "onChannelUpdate",
            "onMessageUpdate",
            "onUserUpdate",
        ],
    )
    .await;
    let service = f.service_path();
    let (status, channel) = send(
        app.admin(Method::POST, &format!("{service}/Channels"))
            .form(&[("FriendlyName", "rude name")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    assert_eq!(channel["friendly_name"], "[moderated]");
    assert_eq!(channel["attributes"], r#"{"checked":true}"#);
    let (_, stored) = send(app.admin(
        Method::GET,
        &format!("{service}/Channels/{}", sid(&channel)),
    ))
    .await;
    assert_eq!(stored["friendly_name"], "[moderated]");
    // A member's channel update goes through the hook too.
    let (status, updated) = send(
        app.user(&f.token, Method::POST, &f.channel_path())
            .form(&[("FriendlyName", "another rude name")]),
    )
    .await;
    if status == StatusCode::OK {
        assert_eq!(updated["friendly_name"], "[moderated]");
    } else {
        // The default channel user may not rename: then the admin does.
        let (status, updated) = send(
            app.admin(Method::POST, &f.channel_path())
                .form(&[("FriendlyName", "another rude name")]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["friendly_name"], "[moderated]");
    }
    let message = app.send_text(&f, &f.token, "fine").await;
    let (status, edited) = send(
        app.user(&f.token, Method::POST, &f.message_path(&message))
            .form(&[("Body", "rude")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["body"], "[redacted]");
    let (_, stored) = send(app.admin(Method::GET, &f.message_path(&message))).await;
    assert_eq!(stored["body"], "[redacted]");
    let (_, user) = send(
        app.admin(Method::POST, &format!("{service}/Users"))
            .form(&[("Identity", "erin")]),
    )
    .await;
    let (status, renamed) = send(
        app.admin(Method::POST, &format!("{service}/Users/{}", sid(&user)))
            .form(&[("FriendlyName", "rude")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["friendly_name"], "Nice Name");
    // A modification is checked like the caller's own value.
    let bad = HookReceiver::answering(Reply::json(200, json!({"attributes": "{not json"}))).await;
    let url = bad.url("/pre");
    configure(&app, &f, &[("PreWebhookUrl", url.as_str())]).await;
    let (status, body) = send(
        app.admin(Method::POST, &f.channel_path())
            .form(&[("FriendlyName", "x")]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("attributes"),
        "{body}"
    );
    hook.assert_signed(&credentials().auth_token);
}

#[tokio::test]
async fn only_events_in_the_filters_fire_for_the_other_families() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::status(403)).await;
    let f = vetoing(&app, &hook, &["onChannelUpdate"]).await;
    let post = hook.url("/post");
    configure(
        &app,
        &f,
        &[
            ("PostWebhookUrl", post.as_str()),
            ("WebhookFilters", "onChannelUpdate"),
            ("WebhookFilters", "onMemberAdded"),
        ],
    )
    .await;
    // Not listed: no pre-event, the member is added; its post-event is listed.
    let loud = |m: Method, path: &str| app.admin(m, path).header(ENABLED, "true");
    let (status, _) = send(
        loud(Method::POST, &format!("{}/Members", f.channel_path())).form(&[("Identity", "zed")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(
        loud(Method::POST, &format!("{}/Users", f.service_path())).form(&[("Identity", "zed")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(hook.requests().is_empty());
    // Listed: vetoed.
    let (status, _) =
        send(loud(Method::POST, &f.channel_path()).form(&[("FriendlyName", "x")])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    dispatch_all(&app).await;
    assert_eq!(
        events(&hook.requests()),
        ["onChannelUpdate", "onMemberAdded"]
    );
}

#[tokio::test]
async fn blocking_a_member_fires_on_member_update() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::start(|r, _| match r.param("EventType") {
        Some("onMemberUpdate") if r.param("Identity") == Some("vetoed") => Reply::status(403),
        _ => Reply::ok(),
    })
    .await;
    let f = app.service_with_member("alice").await;
    let pre = hook.url("/pre");
    let post = hook.url("/post");
    configure(
        &app,
        &f,
        &[
            ("PreWebhookUrl", pre.as_str()),
            ("PostWebhookUrl", post.as_str()),
            ("PreWebhookForRest", "true"),
            ("WebhookFilters", "onMemberUpdate"),
            ("WebhookFilters", "onMemberUpdated"),
        ],
    )
    .await;
    let (bob, _) = app.add_member(&f, "bob", None).await;
    let (vetoed, _) = app.add_member(&f, "vetoed", None).await;
    let block = |member: &Value| {
        let member = sid(member);
        app.admin(Method::POST, "/block-user")
            .header(ENABLED, "true")
            .form(&[
                ("chatChannelSid", f.channel_sid.as_str()),
                ("memberSid", member.as_str()),
            ])
    };
    let (status, body) = send(block(&bob)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["blocked"], true);
    let (status, body) = send(block(&vetoed)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, still) = send(app.admin(
        Method::GET,
        &format!("{}/Members/{}", f.channel_path(), sid(&vetoed)),
    ))
    .await;
    assert_eq!(
        still["role_sid"], vetoed["role_sid"],
        "a veto changes no role"
    );
    dispatch_all(&app).await;
    let seen = hook.requests();
    assert_eq!(
        events(&seen),
        ["onMemberUpdate", "onMemberUpdate", "onMemberUpdated"]
    );
    let updated = &seen[2];
    assert_eq!(updated.param("Identity"), Some("bob"));
    let (_, blocked) = send(app.admin(
        Method::GET,
        &format!("{}/Members/{}", f.channel_path(), sid(&bob)),
    ))
    .await;
    assert_ne!(blocked["role_sid"], bob["role_sid"]);
    assert_eq!(updated.param("RoleSid"), blocked["role_sid"].as_str());
    hook.assert_signed(&credentials().auth_token);
}

// ---------------------------------------------------------------------------
// Channel-scoped webhooks
// ---------------------------------------------------------------------------

#[tokio::test]
async fn twilio_python_drives_channel_webhooks_up_to_five() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let c = credentials();
    let input = json!({
        "base": app.base,
        "account_sid": c.account_sid.as_str(),
        "auth_token": c.auth_token,
        "service_sid": f.service_sid.as_str(),
        "channel_sid": f.channel_sid.as_str(),
        "url": "https://hooks.example.com/channel",
    });
    let out = tokio::task::spawn_blocking(move || twilio_python("channel_webhooks.py", &input))
        .await
        .unwrap();
    let created = &out["created"];
    let hook_sid = created["sid"].as_str().unwrap();
    assert!(hook_sid.starts_with("WH") && hook_sid.len() == 34, "{out}");
    assert_eq!(created["type"], "webhook");
    assert_eq!(created["channel_sid"], f.channel_sid.as_str());
    assert_eq!(created["service_sid"], f.service_sid.as_str());
    assert_eq!(
        created["configuration"],
        json!({
            "url": "https://hooks.example.com/channel",
            "method": "POST",
            "filters": ["onMessageSent", "onMemberAdded"],
            "retry_count": 1,
        })
    );
    assert_eq!(
        out["trigger"]["configuration"]["triggers"],
        json!(["help", "urgent"])
    );
    assert_eq!(
        out["studio"]["configuration"]["flow_sid"],
        format!("FW{}", "0".repeat(32))
    );
    assert_eq!(out["fetched"]["sid"], hook_sid);
    let listed: Vec<&str> = [&out["created"], &out["trigger"], &out["studio"]]
        .iter()
        .map(|h| h["sid"].as_str().unwrap())
        .collect();
    assert_eq!(out["listed"], json!(listed));
    assert_eq!(
        out["paged"],
        json!(listed),
        "pages of two, in creation order"
    );
    assert_eq!(out["updated"]["configuration"]["method"], "GET");
    assert_eq!(
        out["updated"]["configuration"]["filters"],
        json!(["onMessageSent"])
    );
    assert_eq!(out["deleted"], true);
    assert_eq!(out["sixth"], json!({"status": 400, "code": 50321}));
    assert_eq!(out["final"].as_array().unwrap().len(), 5);
    // The channel links to them.
    let (_, channel) = send(app.admin(Method::GET, &f.channel_path())).await;
    let link = channel["links"]["webhooks"].as_str().unwrap();
    let (status, page) = send(app.admin(Method::GET, link.trim_start_matches(&app.base))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["webhooks"].as_array().unwrap().len(), 5);
}

async fn channel_hook(app: &TestApp, f: &Fixture, form: &[(&str, &str)]) -> (StatusCode, Value) {
    send(
        app.admin(Method::POST, &format!("{}/Webhooks", f.channel_path()))
            .form(form),
    )
    .await
}

#[tokio::test]
async fn channel_webhook_parameters_are_checked() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let url = "https://hooks.example.com/c";
    for (form, named, code) in [
        (vec![("Configuration.Url", url)], "Type", 20001),
        (vec![("Type", "bot")], "Type", 20001),
        (
            vec![
                ("Type", "webhook"),
                ("Configuration.Filters", "onMessageSent"),
            ],
            "Configuration.Url",
            20001,
        ),
        (
            vec![
                ("Type", "webhook"),
                ("Configuration.Url", "http://hooks.example.com/c"),
                ("Configuration.Filters", "onMessageSent"),
            ],
            "Configuration.Url",
            20001,
        ),
        (
            vec![
                ("Type", "webhook"),
                ("Configuration.Url", url),
                ("Configuration.Filters", "onMessageSend"),
            ],
            "Configuration.Filters",
            20001,
        ),
        (
            vec![("Type", "webhook"), ("Configuration.Url", url)],
            "Configuration.Filters",
            20001,
        ),
        (
            vec![("Type", "trigger"), ("Configuration.Url", url)],
            "Configuration.Triggers",
            20001,
        ),
        (
            vec![
                ("Type", "trigger"),
                ("Configuration.Url", url),
                ("Configuration.Triggers", "two words"),
            ],
            "Configuration.Triggers",
            20001,
        ),
        (
            vec![
                ("Type", "trigger"),
                ("Configuration.Url", url),
                ("Configuration.Triggers", "a"),
                ("Configuration.Triggers", "b"),
                ("Configuration.Triggers", "c"),
                ("Configuration.Triggers", "d"),
                ("Configuration.Triggers", "e"),
                ("Configuration.Triggers", "f"),
            ],
            "Configuration.Triggers",
            50322,
        ),
        (
            vec![("Type", "studio"), ("Configuration.FlowSid", "FWnope")],
            "Configuration.FlowSid",
            20001,
        ),
        (
            vec![
                ("Type", "webhook"),
                ("Configuration.Url", url),
                ("Configuration.Filters", "onMessageSent"),
                ("Configuration.RetryCount", "4"),
            ],
            "Configuration.RetryCount",
            50065,
        ),
        (
            vec![
                ("Type", "webhook"),
                ("Configuration.Url", url),
                ("Configuration.Filters", "onMessageSent"),
                ("Configuration.Method", "PUT"),
            ],
            "Configuration.Method",
            20001,
        ),
    ] {
        let (status, body) = channel_hook(&app, &f, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert_eq!(body["code"], code, "{form:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(named),
            "{form:?}: {body}"
        );
    }
    let (status, body) =
        send(app.admin(Method::GET, &format!("{}/Webhooks", f.channel_path()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["webhooks"], json!([]), "nothing was stored");
    // Users may not read or create them (Twilio's are REST only).
    let (status, _) = send(app.user(
        &f.token,
        Method::GET,
        &format!("{}/Webhooks", f.channel_path()),
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn channel_webhooks_receive_their_channels_post_events_filtered_and_triggered() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::ok()).await;
    let f = app.service_with_member("alice").await;
    let other = app
        .channel_with_member(&f.service, &[("FriendlyName", "other")], "alice")
        .await;
    let filtered = hook.url("/filtered");
    let triggered = hook.url("/triggered");
    let (status, webhook) = channel_hook(
        &app,
        &f,
        &[
            ("Type", "webhook"),
            ("Configuration.Url", filtered.as_str()),
            ("Configuration.Filters", "onMessageSent"),
            ("Configuration.Filters", "onMemberAdded"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{webhook}");
    let (status, trigger) = channel_hook(
        &app,
        &f,
        &[
            ("Type", "trigger"),
            ("Configuration.Url", triggered.as_str()),
            ("Configuration.Triggers", "help"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{trigger}");
    let (status, _) = channel_hook(
        &app,
        &f,
        &[
            ("Type", "studio"),
            ("Configuration.FlowSid", &format!("FW{}", "1".repeat(32))),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // No service hooks at all: only the channel's webhooks receive anything.
    let hello = app.send_text(&f, &f.token, "hello there").await;
    let help = app.send_text(&f, &f.token, "I need HELP!").await;
    app.send_text(&other, &other.token, "help in another channel")
        .await;
    app.add_member(&f, "bob", None).await; // admin REST without the header: nothing
    let (status, _) = send(
        app.admin(Method::POST, &format!("{}/Members", f.channel_path()))
            .header(ENABLED, "true")
            .form(&[("Identity", "carol")]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    dispatch_all(&app).await;
    let seen = hook.requests();
    let at =
        |path: &str| -> Vec<&Received> { seen.iter().filter(|r| r.url.ends_with(path)).collect() };
    let filtered_seen = at("/filtered");
    assert_eq!(
        filtered_seen
            .iter()
            .map(|r| r.param("EventType").unwrap())
            .collect::<Vec<_>>(),
        ["onMessageSent", "onMessageSent", "onMemberAdded"],
        "{seen:?}"
    );
    assert_eq!(filtered_seen[0].param("MessageSid"), hello["sid"].as_str());
    assert_eq!(filtered_seen[2].param("Identity"), Some("carol"));
    for r in &filtered_seen {
        assert_eq!(r.param("WebhookType"), Some("webhook"));
        assert_eq!(r.param("WebhookSid"), webhook["sid"].as_str());
        assert_eq!(r.param("ChannelSid"), Some(f.channel_sid.as_str()));
    }
    let triggered_seen = at("/triggered");
    assert_eq!(
        triggered_seen.len(),
        1,
        "only the body with the keyword: {seen:?}"
    );
    assert_eq!(triggered_seen[0].param("MessageSid"), help["sid"].as_str());
    assert_eq!(triggered_seen[0].param("WebhookType"), Some("trigger"));
    assert_eq!(seen.len(), 4, "the studio webhook is never invoked");
    hook.assert_signed(&credentials().auth_token);

    // Deleting the channel deletes its webhooks.
    let (status, _) = send(app.admin(Method::DELETE, &f.channel_path())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stored = app
        .state
        .store
        .channel_webhooks(&f.channel_sid)
        .await
        .unwrap();
    assert!(stored.webhooks.is_empty());
    assert!(app.partition(f.channel_sid.as_str()).await.is_empty());
}

#[tokio::test]
async fn the_tables_stream_delivers_an_outbox_insert_at_once() {
    let _only = chat_media_tests::sweeping().await;
    let app = TestApp::spawn().await;
    let hook = HookReceiver::answering(Reply::ok()).await;
    let f = app.service_with_member("alice").await;
    let url = hook.url("/post");
    configure(
        &app,
        &f,
        &[
            ("PostWebhookUrl", url.as_str()),
            ("WebhookFilters", "onMessageUpdated"),
        ],
    )
    .await;
    let message = app.send_text(&f, &f.token, "typo").await;
    let (status, _) = send(
        app.user(&f.token, Method::POST, &f.message_path(&message))
            .form(&[("Body", "fixed")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let waiting = app.state.store.outbox(100).await.unwrap();
    let ours: Vec<_> = waiting
        .iter()
        .filter(|e| e.service_sid == f.service_sid)
        .collect();
    assert_eq!(ours.len(), 1);
    // The record the KEYS_ONLY stream hands media-events for that insert.
    let event = json!({"Records": [{
        "eventSource": "aws:dynamodb",
        "eventName": "INSERT",
        "dynamodb": {"Keys": {
            "PK": {"S": format!("OUTBOX#{}", ours[0].id)},
            "SK": {"S": "EVENT"},
        }},
    }]});
    let report = media_events::handle(&app.state, event, chat_media_tests::now())
        .await
        .unwrap();
    assert!(
        report["webhooks"]["delivered"].as_u64().unwrap() >= 1,
        "{report}"
    );
    let seen = hook.requests();
    assert_eq!(events(&seen), ["onMessageUpdated"]);
    assert_eq!(seen[0].param("Body"), Some("fixed"));
    // A stream batch without outbox inserts runs no dispatch.
    let other = json!({"Records": [{
        "eventSource": "aws:dynamodb",
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"PK": {"S": "IS0"}, "SK": {"S": "USER#x"}}},
    }]});
    let report = media_events::handle(&app.state, other, chat_media_tests::now())
        .await
        .unwrap();
    assert!(report.get("webhooks").is_none(), "{report}");
}
