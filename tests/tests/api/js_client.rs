//! `clients/js` (the browser/Flex library) against the real app: its Node tests
//! (`clients/js/test`, `node --test`) run with a service, a channel, a member and a
//! moderator made here. `scripts/test` builds the library (`npm ci`, `npm run build`).

use std::path::Path;

use chat_media_tests::reqwest::Method;
use chat_media_tests::{send, TestApp, PNG};

#[tokio::test]
async fn js_library_uploads_sends_reads_deletes_and_moderates() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, body) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Media.SizeLimitMb", "40")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let moderator = f.role("default_channel_creator_role_sid");
    let (_, agent) = app.add_member(&f, "agent", Some(&moderator)).await;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/js");
    assert!(
        dir.join("dist/index.js").exists(),
        "clients/js is not built: scripts/test runs npm ci and npm run build there"
    );
    let mut node = tokio::process::Command::new("node");
    node.current_dir(&dir)
        .args(["--test", "--test-reporter=spec", "test/"])
        .env("CHAT_MEDIA_URL", &app.base)
        .env("CHAT_MEDIA_SERVICE_SID", f.service_sid.as_str())
        .env("CHAT_MEDIA_CHANNEL_SID", f.channel_sid.as_str())
        .env("CHAT_MEDIA_ALICE_TOKEN", &f.token)
        .env("CHAT_MEDIA_AGENT_TOKEN", &agent)
        .env("CHAT_MEDIA_PNG_HEX", hex::encode(PNG));
    let out = node.output().await.expect("node (20+) on PATH");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(out.status.success(), "clients/js tests failed:\n{report}");
    assert!(report.contains("ℹ fail 0"), "{report}");
}
