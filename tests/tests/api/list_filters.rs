//! Lists carry their filters and options (`Order`, `Identity`, `Type`) in `url`,
//! `first_page_url` and `next_page_url`, and a page token only works with the
//! filters it was issued under: following `next_page_url` as Twilio's helper
//! libraries do reaches every record exactly once, in the asked order.

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{assert_error, send, sid, Fixture, TestApp};
use serde_json::Value;

/// Follows `next_page_url` from `first` (a path) to the end, as a helper library does;
/// returns `key`'s records of every page and the pages' `meta`.
async fn follow(app: &TestApp, first: &str, key: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut records, mut metas) = (Vec::new(), Vec::new());
    let mut next = Some(app.url(first));
    while let Some(url) = next {
        let (status, page) = send(app.http.get(&url).basic_auth(
            chat_media_tests::credentials().account_sid.as_str(),
            Some(&chat_media_tests::credentials().auth_token),
        ))
        .await;
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        records.extend(page[key].as_array().unwrap().iter().cloned());
        next = page["meta"]["next_page_url"].as_str().map(str::to_owned);
        metas.push(page["meta"].clone());
        assert!(metas.len() < 50, "paging does not end");
    }
    (records, metas)
}

async fn messages(app: &TestApp, f: &Fixture, n: usize) {
    for i in 0..n {
        app.send_text(f, &f.token, &format!("m{i:02}")).await;
    }
}

#[tokio::test]
async fn messages_desc_pages_carry_order_to_the_last_page() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    messages(&app, &f, 12).await;
    let first = format!("{}?Order=desc&PageSize=5", f.messages_path());
    let (records, metas) = follow(&app, &first, "messages").await;
    let bodies: Vec<&str> = records
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..12).rev().map(|i| format!("m{i:02}")).collect();
    assert_eq!(bodies, expected);
    assert_eq!(metas.len(), 3);
    for meta in &metas {
        for field in ["url", "first_page_url"] {
            let url = meta[field].as_str().unwrap();
            assert!(url.starts_with("http"), "{field} absolute: {url}");
            assert!(url.contains("Order=desc"), "{field}: {url}");
        }
    }
    let next = metas[0]["next_page_url"].as_str().unwrap();
    assert!(
        next.contains("Order=desc") && next.contains("PageToken="),
        "{next}"
    );
    assert!(metas[2]["next_page_url"].is_null());

    // Ascending, the default, still pages through all of them oldest first.
    let (records, _) = follow(
        &app,
        &format!("{}?PageSize=5", f.messages_path()),
        "messages",
    )
    .await;
    let bodies: Vec<&str> = records
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..12).map(|i| format!("m{i:02}")).collect();
    assert_eq!(bodies, expected);
}

#[tokio::test]
async fn a_token_with_other_filters_is_refused() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    messages(&app, &f, 4).await;
    let (_, page) = send(app.admin(
        Method::GET,
        &format!("{}?Order=desc&PageSize=2", f.messages_path()),
    ))
    .await;
    let next = page["meta"]["next_page_url"].as_str().unwrap().to_owned();
    let token = next.split("PageToken=").nth(1).unwrap().to_owned();
    // The same token without Order, or with the other order: 400 naming PageToken.
    for query in [
        format!("PageSize=2&Page=1&PageToken={token}"),
        format!("Order=asc&PageSize=2&Page=1&PageToken={token}"),
    ] {
        let (status, body) =
            send(app.admin(Method::GET, &format!("{}?{query}", f.messages_path()))).await;
        assert_error(status, &body, 400, Some(20001));
        assert!(
            body["message"].as_str().unwrap().contains("PageToken"),
            "{body}"
        );
    }
    // With its own filters it works.
    let (status, page) = send(app.http.get(&next).basic_auth(
        chat_media_tests::credentials().account_sid.as_str(),
        Some(&chat_media_tests::credentials().auth_token),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["messages"][0]["body"], "m01");
}

#[tokio::test]
async fn members_filtered_by_repeated_identity_across_pages() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    for name in ["bob", "carol", "dave", "erin", "frank", "grace"] {
        app.add_member(&f, name, None).await;
    }
    let path = format!("{}/Members", f.channel_path());
    let (status, page) = send(app.admin(
        Method::GET,
        &format!("{path}?Identity=alice&Identity=carol"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "carol"]);
    let url = page["meta"]["url"].as_str().unwrap();
    assert!(url.contains("Identity=alice&Identity=carol"), "{url}");

    // Page by page (PageSize=1), the filter stays on every next_page_url.
    let (records, metas) = follow(
        &app,
        &format!("{path}?Identity=grace&Identity=bob&Identity=erin&PageSize=1"),
        "members",
    )
    .await;
    let ids: Vec<&str> = records
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bob", "erin", "grace"]);
    for meta in &metas[..metas.len() - 1] {
        let next = meta["next_page_url"].as_str().unwrap();
        assert!(
            next.contains("Identity=grace&Identity=bob&Identity=erin"),
            "{next}"
        );
    }
    // Without a filter: everyone.
    let (records, _) = follow(&app, &path, "members").await;
    assert_eq!(records.len(), 7);

    // An identity the API would refuse is refused as a filter too.
    let long = "x".repeat(300);
    let (status, body) = send(app.admin(Method::GET, &format!("{path}?Identity={long}"))).await;
    assert_error(status, &body, 400, Some(20001));
}

#[tokio::test]
async fn channels_filtered_by_type() {
    let app = TestApp::spawn().await;
    let service = sid(&app.create_service().await);
    let path = format!("/v2/Services/{service}/Channels");
    for (name, kind) in [
        ("a", "public"),
        ("b", "private"),
        ("c", "public"),
        ("d", "private"),
    ] {
        let (status, body) = send(
            app.admin(Method::POST, &path)
                .form(&[("FriendlyName", name), ("Type", kind)]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (records, metas) =
        follow(&app, &format!("{path}?Type=private&PageSize=1"), "channels").await;
    let names: Vec<&str> = records
        .iter()
        .map(|c| c["friendly_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "d"]);
    assert!(metas[0]["next_page_url"]
        .as_str()
        .unwrap()
        .contains("Type=private"));
    let (records, _) = follow(
        &app,
        &format!("{path}?Type=private&Type=public"),
        "channels",
    )
    .await;
    assert_eq!(records.len(), 4);
    let (status, body) = send(app.admin(Method::GET, &format!("{path}?Type=secret"))).await;
    assert_error(status, &body, 400, Some(20001));
}

/// Without `PUBLIC_BASE_URL` (the template's default), every `url`, `links.*` and
/// `meta.*_page_url` is absolute, on the origin the request was addressed to.
#[tokio::test]
async fn urls_are_absolute_without_a_configured_base() {
    let app = TestApp::spawn().await;
    let f = app.service_with_member("alice").await;
    app.send_text(&f, &f.token, "hi").await;
    let mut state = app.state.clone();
    let mut settings = (*state.settings).clone();
    settings.base_url = String::new();
    state.settings = std::sync::Arc::new(settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, chat_media_local::app(state)).await;
    });
    let c = chat_media_tests::credentials();
    let get = |path: String, host: Option<&'static str>| {
        let mut req = app
            .http
            .get(format!("http://{addr}{path}"))
            .basic_auth(c.account_sid.as_str(), Some(&c.auth_token));
        if let Some(h) = host {
            req = req
                .header("X-Forwarded-Host", h)
                .header("X-Forwarded-Proto", "https");
        }
        req
    };
    let (status, page) = send(get(format!("{}?PageSize=1", f.messages_path()), None)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let origin = format!("http://{addr}/");
    for url in [
        &page["meta"]["url"],
        &page["meta"]["first_page_url"],
        &page["messages"][0]["url"],
    ] {
        assert!(url.as_str().unwrap().starts_with(&origin), "{url}");
    }
    // Behind a proxy (API Gateway sets Host and X-Forwarded-Proto).
    let (_, channel) = send(get(f.channel_path(), Some("chat.example.com"))).await;
    assert_eq!(
        channel["url"],
        format!("https://chat.example.com{}", f.channel_path())
    );
    assert!(channel["links"]["members"]
        .as_str()
        .unwrap()
        .starts_with("https://chat.example.com/v2/"));
    let (_, media) = send(get(
        f.media_path(
            &app.ready_media(
                &f.service_sid,
                "alice",
                "image/png",
                None,
                chat_media_tests::PNG,
            )
            .await
            .sid,
        ),
        Some("chat.example.com"),
    ))
    .await;
    assert!(
        media["url"]
            .as_str()
            .unwrap()
            .starts_with("https://chat.example.com/v1/"),
        "{media}"
    );
    server.abort();
}
