//! Twilio's own libraries, unchanged and pinned (tests/clients: twilio-python,
//! twilio-node, the three MCS clients, twilio-run), against the app: each test
//! spawns `TestApp`, runs a script of `tests/clients/` against its address,
//! and checks what the library returned and what is stored.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use chat_media::sid::ServiceSid;
use chat_media::Credentials;
use chat_media_tests::flex::FlexValidationApi;
use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{
    credentials, node_clients_dir, send, sha256_hex, sid, twilio_node, twilio_python, TestApp, PNG,
};
use serde_json::{json, Value};

/// The twelve message bodies the scripts send, in order.
fn bodies(range: impl Iterator<Item = usize>) -> Vec<String> {
    range.map(|i| format!("m{i:02}")).collect()
}

/// The strings of a JSON array, sorted.
fn sorted(v: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = v
        .as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    out.sort_unstable();
    out
}

/// A JSON document held in a string field (`attributes`), parsed.
fn json_text(v: &Value) -> Value {
    serde_json::from_str(v.as_str().unwrap_or_else(|| panic!("a string: {v}")))
        .unwrap_or_else(|_| panic!("JSON text: {v}"))
}

/// What the app is reached with: its base URL and the account's credentials.
fn stack(app: &TestApp) -> Value {
    let c = credentials();
    json!({
        "base": app.base,
        "account_sid": c.account_sid.as_str(),
        "auth_token": c.auth_token,
    })
}

/// Runs a client script off the runtime's thread (it calls back into the app).
async fn run(f: fn(&str, &Value) -> Value, script: &'static str, input: Value) -> Value {
    tokio::task::spawn_blocking(move || f(script, &input))
        .await
        .expect("the client script ran")
}

/// The checks common to the Python and Node scenarios (same operations, same
/// data), and what the app stored after them.
async fn check_chat_scenario(app: &TestApp, out: &Value, client: &str) {
    let service_sid: ServiceSid = out["service"]["sid"].as_str().unwrap().parse().unwrap();
    assert_eq!(out["service_fetched"], format!("{client} clients"));
    assert_eq!(
        out["service_updated"]["friendly_name"],
        format!("{client} clients renamed")
    );
    assert_eq!(
        out["service_updated"]["media"]["compatibility_message"],
        "sent a file"
    );
    assert_eq!(out["service_listed"], true);
    assert_eq!(out["service_deleted"], true);
    assert_eq!(out["service_deleted_fetch"]["status"], 404);

    assert_eq!(out["role_created"]["type"], "channel");
    assert_eq!(
        sorted(&out["role_created"]["permissions"]),
        ["removeMember", "sendMessage"]
    );
    assert_eq!(out["role_fetched"], format!("{client} moderators"));
    assert_eq!(
        sorted(&out["role_updated"]),
        ["removeMember", "sendMediaMessage", "sendMessage"]
    );
    assert!(out["roles_listed"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("{client} moderators"))));
    assert_eq!(out["role_deleted"], true);

    assert_eq!(out["user_created"]["identity"], "alice");
    assert_eq!(out["user_fetched"], out["user_created"]["sid"]);
    assert!(out["users_listed"]
        .as_array()
        .unwrap()
        .contains(&json!("alice")));

    let channel_sid = out["channel_created"]["sid"].as_str().unwrap();
    assert_eq!(out["channel_fetched"], channel_sid);
    assert_eq!(out["channels_listed"], json!(["Extra", "General"]));
    assert_eq!(out["channel_deleted"], true);
    assert_eq!(out["channel_deleted_fetch"]["status"], 404);

    // Members: seven created, listed three a page, bob's role changed, grace gone.
    assert_eq!(out["member_fetched"], true);
    assert_eq!(
        out["members_listed"],
        json!(["alice", "bob", "carol", "dave", "erin", "frank", "grace"])
    );
    assert_eq!(
        out["members_filtered"],
        json!(["alice", "carol"]),
        "Identity filter"
    );
    assert!(out["member_updated"].as_str().unwrap().starts_with("RL"));
    // A member update without RoleSid: attributes and the consumption horizon.
    let carol = &out["member_fields_updated"];
    assert_eq!(json_text(&carol["attributes"]), json!({"x": 1}), "{carol}");
    assert_eq!(carol["last_consumed_message_index"], 0, "{carol}");
    assert!(carol["role_sid"].as_str().unwrap().starts_with("RL"));
    assert_eq!(out["member_deleted"], true);
    assert_eq!(out["member_deleted_fetch"]["status"], 404);

    // Messages: every page, in the order asked.
    assert_eq!(
        out["message_fetched"],
        json!({"body": "m00", "from": "alice", "index": 0})
    );
    assert_eq!(out["list_asc"], json!(bodies(0..12)), "list asc");
    assert_eq!(out["page_two"], json!(bodies(5..10)), "page two");
    let newest_first: Vec<String> = bodies(0..12).into_iter().rev().collect();
    assert_eq!(out["list_desc"], json!(newest_first), "list desc");
    let (asc, desc, limit) = match client {
        "python" => ("stream_asc", "stream_desc", "stream_limit"),
        _ => ("each_asc", "each_desc", "each_limit"),
    };
    assert_eq!(out[asc], json!(bodies(0..12)), "{asc}");
    assert_eq!(out[desc], json!(newest_first), "{desc}");
    assert_eq!(out[limit], json!(bodies(0..7)), "{limit}");
    let edited = &out["message_updated"];
    assert_eq!(edited["body"], "m01 edited", "{edited}");
    assert_eq!(
        json_text(&edited["attributes"]),
        json!({"e": 1}),
        "{edited}"
    );
    assert_eq!(edited["was_edited"], true, "{edited}");
    assert_eq!(out["message_deleted"], true);
    assert_eq!(out["message_deleted_fetch"]["status"], 404);

    // Channel and user updates, the user's channels, a user deleted.
    assert_eq!(out["channel_updated"]["friendly_name"], "General renamed");
    assert_eq!(
        json_text(&out["channel_updated"]["attributes"]),
        json!({"topic": "news"})
    );
    assert_eq!(out["user_updated"], "Alice B");
    assert_eq!(out["user_channels"], json!([channel_sid]));
    assert_eq!(out["user_deleted"], true);
    assert_eq!(out["user_deleted_fetch"]["status"], 404);

    // What is stored: through the API as the admin, independent of the client.
    let base = format!("/v2/Services/{service_sid}/Channels/{channel_sid}");
    let (status, members) = send(app.admin(Method::GET, &format!("{base}/Members"))).await;
    assert_eq!(status, StatusCode::OK);
    let members = members["members"].as_array().unwrap();
    assert_eq!(members.len(), 6);
    let bob = members.iter().find(|m| m["identity"] == "bob").unwrap();
    assert_eq!(bob["role_sid"], out["member_updated"]);
    let (status, messages) =
        send(app.admin(Method::GET, &format!("{base}/Messages?PageSize=50"))).await;
    assert_eq!(status, StatusCode::OK);
    let stored: Vec<&str> = messages["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    let mut expected = bodies(0..11);
    expected[1] = "m01 edited".into();
    assert_eq!(stored, expected);
    let carol = members.iter().find(|m| m["identity"] == "carol").unwrap();
    assert_eq!(carol["last_consumed_message_index"], 0);
    let (status, channel) = send(app.admin(Method::GET, &base)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(channel["friendly_name"], "General renamed");
}

#[tokio::test]
async fn twilio_python_drives_the_chat_v2_api() {
    let app = TestApp::spawn().await;
    let out = run(twilio_python, "chat_v2.py", stack(&app)).await;
    check_chat_scenario(&app, &out, "python").await;
}

#[tokio::test]
async fn twilio_node_drives_the_chat_v2_api() {
    let app = TestApp::spawn().await;
    let out = run(twilio_node, "chat_v2.js", stack(&app)).await;
    check_chat_scenario(&app, &out, "node").await;
}

#[tokio::test]
async fn the_mcs_clients_upload_fetch_and_download() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    // For MediaSet: bob's media, sent to the channel alice is in (she may read it).
    let bob = app.join(&f, "bob", None).await;
    let other = app
        .ready_media(&f.service_sid, "bob", "image/png", Some("bob.png"), PNG)
        .await;
    app.send_media(&f, &bob.token, &other).await;
    let missing = "ME0123456789abcdef0123456789abcdef";
    let big = 5 * 1024 * 1024;
    let out = run(
        twilio_node,
        "mcs.js",
        json!({
            "base": app.base,
            "service_sid": f.service_sid.as_str(),
            "token": f.token,
            "png_b64": base64::engine::general_purpose::STANDARD.encode(PNG),
            "big_bytes": big,
            "other_sid": other.sid.as_str(),
            "missing_sid": missing,
        }),
    )
    .await;
    for client in [
        "mcs-client-1.0.1",
        "mcs-client-0.5",
        "twilio-mcs-client-0.4",
    ] {
        let o = &out[client];
        assert_eq!(o["posted"]["content_type"], "image/png", "{client}: {o}");
        assert_eq!(o["posted"]["size"], PNG.len(), "{client}: {o}");
        assert_eq!(o["fetched"]["sid"], o["sid"], "{client}: {o}");
        assert_eq!(o["download_status"], 200, "{client}: {o}");
        assert_eq!(o["same_bytes"], true, "{client}: {o}");
        // The 413 for a 5 MB body reaches the client (Lambda's payload limit).
        let refused = o["too_large"]
            .as_str()
            .unwrap_or_else(|| panic!("{client}: 5 MB accepted: {o}"));
        assert!(refused.contains("413"), "{client}: {refused}");
        // Stored as uploaded, by alice.
        let record = app.record(o["sid"].as_str().unwrap()).await;
        assert_eq!(record.author.as_str(), "alice");
        assert_eq!(record.sha256.as_deref(), Some(sha256_hex(PNG).as_str()));
        let bytes = app
            .object(&chat_media::model::Media::object_key_for(
                &record.service_sid,
                &record.sid,
            ))
            .await
            .expect("the object is stored");
        assert_eq!(bytes, PNG);
    }
    assert_eq!(
        out["mcs-client-1.0.1"]["posted"]["filename"],
        "mcs-client-1.0.1.png"
    );
    // MediaSet: both records in the order asked; a missing media fails the
    // client's call naming its SID (a per-entry code, not a failed request);
    // 1.0.1's content URLs download the uploaded bytes.
    for client in ["mcs-client-1.0.1", "mcs-client-0.5"] {
        let set = &out[client]["media_set"];
        let sids: Vec<&Value> = set["records"]
            .as_array()
            .unwrap_or_else(|| panic!("{client}: {set}"))
            .iter()
            .map(|r| &r["sid"])
            .collect();
        assert_eq!(
            sids,
            [&out[client]["sid"], &json!(other.sid.as_str())],
            "{client}: {set}"
        );
        assert_eq!(set["records"][1]["size"], PNG.len(), "{client}: {set}");
        let missing_refused = set["missing"].as_str().unwrap_or_else(|| panic!("{set}"));
        assert!(
            missing_refused.contains(&format!("failed SID {missing}")),
            "{client}: {missing_refused}"
        );
    }
    let set = &out["mcs-client-1.0.1"]["media_set"];
    assert_eq!(set["urls"].as_array().map(Vec::len), Some(2), "{set}");
    assert_eq!(set["url_same_bytes"], true, "{set}");
}

/// twilio-run, unchanged, serving the Flex guide's block-user Function from
/// `tests/clients/node/flex-functions`, its Twilio client pointed at the app by
/// the one-line shim `chat-base-url.js`, its token validator at the stand-in.
struct TwilioRun {
    child: tokio::process::Child,
    port: u16,
}

impl TwilioRun {
    async fn start(
        app: &TestApp,
        api: &FlexValidationApi,
        service: &str,
        blocked_role: &str,
    ) -> Self {
        let dir = node_clients_dir();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = &app.state.credentials;
        let node_options = format!(
            "--require {} --require {}",
            dir.join("chat-base-url.js").display(),
            dir.join("iam-stand-in.js").display()
        );
        let child = tokio::process::Command::new(
            std::env::var("CHAT_MEDIA_TEST_NODE").unwrap_or_else(|_| "node".into()),
        )
        .arg(dir.join("node_modules/twilio-run/bin/twilio-run.js"))
        .args(["start", "--load-local-env", "--logs", "false", "--port"])
        .arg(port.to_string())
        .arg(dir.join("flex-functions"))
        .current_dir(&dir)
        .env("NODE_OPTIONS", node_options)
        .env("NO_UPDATE_NOTIFIER", "1")
        .env("TWILIO_CHAT_BASE_URL", &app.base)
        .env(
            "FLEX_TOKEN_VALIDATION_STAND_IN",
            format!("http://{}", api.addr),
        )
        .env("ACCOUNT_SID", c.account_sid.as_str())
        .env("AUTH_TOKEN", &c.auth_token)
        .env("CHAT_SERVICE_SID", service)
        .env("BLOCKED_ROLE_SID", blocked_role)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start twilio-run");
        let run = Self { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "twilio-run did not listen on {port} within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        run
    }
}

impl Drop for TwilioRun {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn the_flex_block_user_function_runs_under_twilio_run() {
    // twilio-run insists on an auth token in Twilio's format (32 letters and digits).
    let twilio_like = Credentials {
        auth_token: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
        ..credentials()
    };
    let api =
        FlexValidationApi::start_for(twilio_like.account_sid.as_str(), &twilio_like.auth_token)
            .await;
    let app = TestApp::spawn_with_credentials(twilio_like).await;
    let f = app.service_with_member("alice").await;
    let blocked = f.role("blocked_channel_role_sid");
    let alice = sid(&f.member);
    let run = TwilioRun::start(&app, &api, f.service_sid.as_str(), &blocked).await;
    let url = format!("http://127.0.0.1:{}/block-user", run.port);

    // As the Flex plugin calls it: the agent's Flex token in the form.
    let supervisor = api.token("sup", &["supervisor"]);
    let (status, body) = send(app.http.post(&url).form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", alice.as_str()),
        ("Token", supervisor.as_str()),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["memberSid"], alice);
    assert_eq!(body["roleSid"], blocked);
    assert_eq!(api.calls(), 1, "the Function validated the token once");
    let stored = app
        .state
        .store
        .get_member_by_sid(&f.channel_sid, &alice.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.role_sid.as_str(), blocked);
    let (status, _) = app.post_text(&f, &f.token, "still here?").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "blocked: alice cannot send");

    // A token Twilio does not vouch for: the validator's 403, nothing changes.
    let (status, _) = send(app.http.post(&url).form(&[
        ("chatChannelSid", f.channel_sid.as_str()),
        ("memberSid", alice.as_str()),
        (
            "Token",
            chat_media_tests::flex::flex_token("forged").as_str(),
        ),
    ]))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
