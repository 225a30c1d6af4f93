//! `openapi.json` (OpenAPI 3.1, one file at the repository root) documents every
//! route: its operations equal template.yaml's routes (which
//! `template_routes.rs` holds equal to the routers), the local runner serves it at
//! `/openapi.json`, and schemathesis (pinned, installed by scripts/test) finds no
//! server error and no response that breaks the document, as admin and as a user.

use std::path::Path;

use chat_media_tests::reqwest::Method;
use chat_media_tests::{send, TestApp};
use serde_json::Value;

use crate::template_routes::{all_routes, Routes};

fn document() -> Value {
    serde_json::from_str(chat_media_local::OPENAPI_JSON).expect("openapi.json is JSON")
}

fn operations(doc: &Value) -> Routes {
    let mut out = Routes::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_has_its_operation_and_every_operation_a_route() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = operations(&doc);
    let routes = all_routes();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routes without an operation in openapi.json: {undocumented:?}; operations without a route: {unrouted:?}"
    );
    // Every operation has an id, its path parameters declared, and an error answer.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: operationId"
            );
            assert!(
                op["responses"]["default"].is_object(),
                "{method} {path}: default"
            );
            let declared: Vec<String> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p["$ref"].as_str())
                        .map(|r| r.rsplit('/').next().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(['{', '}']);
                assert!(
                    declared.iter().any(|d| d == name),
                    "{method} {path}: path parameter {name} not declared"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_local_runner_serves_the_document() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.anon(Method::GET, "/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body, document());
}

/// schemathesis from `CHAT_MEDIA_TEST_SCHEMATHESIS` (scripts/test installs the
/// pinned one) against the app, with `auth` arguments; returns its summary line.
async fn schemathesis(
    app: &TestApp,
    label: &str,
    auth: &[String],
    f: &chat_media_tests::Fixture,
) -> String {
    let bin = std::env::var("CHAT_MEDIA_TEST_SCHEMATHESIS")
        .expect("CHAT_MEDIA_TEST_SCHEMATHESIS is not set: run through scripts/test");
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
    // Path parameters fixed to a real service and channel, so requests get past
    // the 404s and reach the handlers; the rest is generated.
    let config = std::env::temp_dir()
        .join(format!(
            "chat-media-schemathesis-{}-{label}.toml",
            std::process::id()
        ))
        .to_string_lossy()
        .replace(' ', "-");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.service\" = \"{}\"\n\"path.channel\" = \"{}\"\n",
            f.service_sid, f.channel_sid
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["--config-file", &config])
        .arg("run")
        .arg(&spec)
        .args(["--url", &app.base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        // One worker: with two threads, hypothesis' lambda-source parsing trips
        // CPython 3.11's `ast` ("AST constructor recursion depth mismatch"), a
        // crash of the tool that reads as a failure of ours.
        .args(["--max-examples", "12", "--seed", "1", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--no-color", "--generation-with-security-parameters", "false"])
        .args(auth)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1");
    let out = cmd.output().await.expect("schemathesis runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // "983 generated, 983 passed" and the closing "== 2 warnings in 15.17s ==".
    let cases = text
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or("")
        .trim();
    let closing = text
        .lines()
        .rev()
        .find(|l| l.starts_with("==") && l.contains(" in "))
        .unwrap_or("")
        .trim_matches(|c: char| c == '=' || c.is_whitespace());
    let summary = format!("{cases} ({closing})");
    assert!(
        out.status.success(),
        "schemathesis as {label} found problems:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("schemathesis ({label}): {summary}")
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let creds = chat_media_tests::credentials();
    let user = schemathesis(
        &app,
        "user token",
        &["-H".into(), format!("X-Twilio-Token: {}", f.token)],
        &f,
    )
    .await;
    let admin = schemathesis(
        &app,
        "admin",
        &[
            "--auth".into(),
            format!("{}:{}", creds.account_sid.as_str(), creds.auth_token),
        ],
        &f,
    )
    .await;
    println!("{user}\n{admin}");

    if let Ok(path) = std::env::var("CHAT_MEDIA_TEST_SCHEMATHESIS_SUMMARY") {
        std::fs::write(path, format!("{user}\n{admin}\n")).unwrap();
    }
}
