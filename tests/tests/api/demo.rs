//! The demo page (`GET /demo`, local runner only) in headless Debian Chromium
//! through playwright-core (`clients/js/browser/demo.test.mjs`): a 20 MB upload
//! with progress events, the message, the rendered image's natural size, the
//! refused `.exe`, a delete, a blocked member's send refused. The page is loaded
//! from `http://localhost:P` and calls the API at `http://127.0.0.1:P`: two
//! origins, so CORS and the `X-Twilio-Token` preflight are the browser's own.
//! Writes `docs/demo.png`, the README's screenshot.

use std::path::Path;

use chat_media::config::Settings;
use chat_media_tests::reqwest::Method;
use chat_media_tests::{aws_options, send, state_with, TestApp};

#[tokio::test]
async fn the_demo_page_works_in_headless_chromium() {
    // One server, two names: the page's origin is localhost, the API's 127.0.0.1.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let api = format!("http://127.0.0.1:{port}");
    let page_origin = format!("http://localhost:{port}");
    let settings = Settings {
        base_url: api.clone(),
        ..Settings::default()
    };
    let state = state_with(&aws_options(), settings).await;
    let router = chat_media_local::app_with_cors(state, std::slice::from_ref(&page_origin));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    let (status, body) = send(
        app.admin(Method::POST, &f.service_path())
            .form(&[("Media.SizeLimitMb", "40")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let moderator = f.role("default_channel_creator_role_sid");
    app.add_member(&f, "agent", Some(&moderator)).await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let js = root.join("clients/js");
    assert!(
        js.join("node_modules/playwright-core").exists() && js.join("dist/index.js").exists(),
        "clients/js is not installed and built: scripts/test runs npm ci and npm run build"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: scripts/test installs it with apt"
    );
    let out = tokio::process::Command::new("node")
        .current_dir(&js)
        .args(["--test", "--test-reporter=spec", "browser/"])
        .env("DEMO_PAGE_ORIGIN", &page_origin)
        .env("DEMO_API", &api)
        .env("DEMO_SERVICE_SID", f.service_sid.as_str())
        .env("DEMO_CHANNEL_SID", f.channel_sid.as_str())
        .env("DEMO_SCREENSHOT", root.join("docs/demo.png"))
        .output()
        .await
        .expect("node on PATH");
    server.abort();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "the demo in Chromium failed:\n{report}"
    );
    assert!(report.contains("ℹ fail 0"), "{report}");
}
