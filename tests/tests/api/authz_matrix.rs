//! The authorization matrix: every route of the product (the list `template_routes`
//! holds equal between template.yaml and the routers) × every kind of caller →
//! the status it must get, in ONE table ([`MATRIX`]). Each request is meaningful:
//! the fixtures are real (a service with a channel, members in each role, a message
//! by the member, an attached ready media), a request that changes something gets
//! its own fresh target, and the forged tokens differ from the member's valid one
//! only in their defect. A route without a row, or a row without a route, fails.
//!
//! Run it alone (it prints the matrix with the statuses received):
//! `cargo test -p chat-media-tests --test api authz_matrix -- --nocapture`
//! (with the servers of `scripts/test`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_media::auth::TOKEN_CONTENT_TYPE;
use chat_media::sid::ServiceSid;
use chat_media_tests::reqwest::{Method, RequestBuilder, StatusCode};
use chat_media_tests::{
    credentials, json, now, send, sid, sign_token, token_claims, Fixture, TestApp, PNG,
};
use futures::future::join_all;
use serde_json::Value;

use crate::template_routes::{all_routes, function_routes, Routes};

/// The callers, in the column order of [`MATRIX`].
const CALLERS: [&str; 12] = [
    "no-auth",    // no credentials at all
    "malformed",  // an Authorization header that is neither valid Basic nor Bearer
    "alg-none",   // the member's claims, unsigned (`alg: none`)
    "wrong-key",  // the member's claims, signed with another secret
    "expired",    // the member's claims, expired an hour ago
    "nbf+1h",     // the member's claims, valid from an hour from now
    "other-svc",  // a valid token for the member's identity in another service
    "non-member", // a valid token of the service, not a member of the channel
    "blocked",    // a member in the service's blocked role
    "member",     // a member in the default channel role
    "moderator",  // a member in the channel admin role (has removeMember)
    "admin",      // account credentials (HTTP Basic)
];

/// The Twilio code of each 401 column's refusal: the request is refused for its
/// defect, not for something else.
const AUTH_CODES: [Option<u64>; 12] = [
    Some(20003), // no credentials
    Some(20003), // bad Basic credentials
    Some(20102), // token header (alg none)
    Some(20107), // signature
    Some(20104), // expired
    Some(20105), // not yet valid
    None,
    None,
    None,
    None,
    None,
    None,
];

/// Route → expected status per caller (columns as [`CALLERS`]).
#[rustfmt::skip]
const MATRIX: &[(&str, &str, [u16; 12])] = &[
    //                                                                                     no-a mal  none wkey exp  nbf  osvc nonm blck mbr  mod  admin
    ("GET",    "/v2/Services",                                                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services",                                                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 201]),
    ("GET",    "/v2/Services/{service}",                                                [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}",                                                [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("DELETE", "/v2/Services/{service}",                                                [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
    ("GET",    "/v2/Services/{service}/Roles",                                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}/Roles",                                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 201]),
    ("GET",    "/v2/Services/{service}/Roles/{role}",                                   [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}/Roles/{role}",                                   [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("DELETE", "/v2/Services/{service}/Roles/{role}",                                   [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
    ("GET",    "/v2/Services/{service}/Channels",                                       [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}/Channels",                                       [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 201]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}",                             [401, 401, 401, 401, 401, 401, 403, 403, 200, 200, 200, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}",                             [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 200, 200]),
    ("DELETE", "/v2/Services/{service}/Channels/{channel}",                             [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}/Webhooks",                    [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}/Webhooks",                    [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 201]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}/Webhooks/{webhook}",          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}/Webhooks/{webhook}",          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("DELETE", "/v2/Services/{service}/Channels/{channel}/Webhooks/{webhook}",          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}/Members",                     [401, 401, 401, 401, 401, 401, 403, 403, 200, 200, 200, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}/Members",                     [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 201]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}/Members/{member}",            [401, 401, 401, 401, 401, 401, 403, 403, 403, 200, 403, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}/Members/{member}",            [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 200, 200]),
    ("DELETE", "/v2/Services/{service}/Channels/{channel}/Members/{member}",            [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}/Messages",                    [401, 401, 401, 401, 401, 401, 403, 403, 200, 200, 200, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}/Messages",                    [401, 401, 401, 401, 401, 401, 403, 403, 403, 201, 201, 201]),
    ("GET",    "/v2/Services/{service}/Channels/{channel}/Messages/{message}",          [401, 401, 401, 401, 401, 401, 403, 403, 200, 200, 200, 200]),
    ("POST",   "/v2/Services/{service}/Channels/{channel}/Messages/{message}",          [401, 401, 401, 401, 401, 401, 403, 403, 403, 200, 200, 200]),
    ("DELETE", "/v2/Services/{service}/Channels/{channel}/Messages/{message}",          [401, 401, 401, 401, 401, 401, 403, 403, 403, 204, 204, 204]),
    ("GET",    "/v2/Services/{service}/Users",                                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v2/Services/{service}/Users",                                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 201]),
    ("GET",    "/v2/Services/{service}/Users/{user}",                                   [401, 401, 401, 401, 401, 401, 403, 403, 403, 200, 403, 200]),
    ("POST",   "/v2/Services/{service}/Users/{user}",                                   [401, 401, 401, 401, 401, 401, 403, 403, 403, 200, 403, 200]),
    ("DELETE", "/v2/Services/{service}/Users/{user}",                                   [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
    ("GET",    "/v2/Services/{service}/Users/{user}/Channels",                          [401, 401, 401, 401, 401, 401, 403, 403, 403, 200, 403, 200]),
    ("POST",   "/block-user",                                                           [401, 401, 401, 401, 401, 401, 404, 403, 403, 403, 200, 200]),
    ("POST",   "/unblock-user",                                                         [401, 401, 401, 401, 401, 401, 404, 403, 403, 403, 200, 200]),
    ("POST",   "/v2/Services/{service}/InboundMessages",                                [403, 401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200]),
    ("GET",    "/v2/Services/{service}/InboundMessages/{message}",                      [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("POST",   "/v1/Services/{service}/Media",                                          [401, 401, 401, 401, 401, 401, 403, 201, 201, 201, 201, 201]),
    ("POST",   "/v1/Services/{service}/MediaUploads",                                   [401, 401, 401, 401, 401, 401, 403, 201, 201, 201, 201, 201]),
    ("GET",    "/v1/Services/{service}/Media/{media}",                                  [401, 401, 401, 401, 401, 401, 403, 403, 200, 200, 200, 200]),
    ("GET",    "/v1/Services/{service}/Media/{media}/Content",                          [401, 401, 401, 401, 401, 401, 403, 403, 302, 302, 302, 302]),
    // Each entry carries its own code (a non-member's entry is 403); the request is 200.
    ("POST",   "/v1/Services/{service}/MediaSet",                                       [401, 401, 401, 401, 401, 401, 403, 200, 200, 200, 200, 200]),
    ("GET",    "/v1/Services/{service}/Media/{media}/Thumbnail",                        [401, 401, 401, 401, 401, 401, 403, 403, 302, 302, 302, 302]),
    ("POST",   "/v1/Services/{service}/Media/{media}/Complete",                         [401, 401, 401, 401, 401, 401, 403, 403, 403, 200, 403, 200]),
    ("POST",   "/v1/Services/{service}/Media/{media}/Quarantine",                       [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("GET",    "/v1/Services/{service}/QuarantinedHashes",                              [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("GET",    "/v1/Services/{service}/QuarantinedHashes/{sha256}",                     [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 200]),
    ("DELETE", "/v1/Services/{service}/QuarantinedHashes/{sha256}",                     [401, 401, 401, 401, 401, 401, 403, 403, 403, 403, 403, 204]),
];

/// The member's identity; every forged token carries it too.
const MEMBER: &str = "member";

/// What the matrix acts on, built through the API for each run.
struct World {
    f: Fixture,
    other_service: ServiceSid,
    message: String,
    media: String,
    role: String,
    /// A digest on the service's deny-list (a quarantined upload's).
    sha256: String,
    tokens: [Option<String>; 12],
    next: AtomicUsize,
}

impl World {
    async fn build(app: &TestApp) -> World {
        let f = app.service_with_member(MEMBER).await;
        let blocked_role = f.role("blocked_channel_role_sid");
        let channel_admin = f.role("default_channel_creator_role_sid");
        let blocked = app.join(&f, "blocked", Some(&blocked_role)).await;
        let moderator = app.join(&f, "moderator", Some(&channel_admin)).await;
        // The member's user record (Users/{user}) and a custom role (Roles/{role}).
        let (status, user) = send(
            app.admin(Method::POST, &format!("{}/Users", f.service_path()))
                .form(&[("Identity", MEMBER)]),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let role = app
            .create_channel_role(&f.service_sid, "matrix role", &["sendMessage"])
            .await;
        let message = sid(&app.send_text(&f, &f.token, "hello").await);
        let upload = app
            .ready_media(&f.service_sid, MEMBER, "image/png", Some("dot.png"), PNG)
            .await;
        app.send_media(&f, &f.token, &upload).await;
        let other_service: ServiceSid = sid(&app.create_service().await).parse().unwrap();
        let sha256 = quarantined_upload(app, &f, "world").await.1;

        let secret = credentials().api_key_secret;
        let claims = |nbf: i64, exp: i64| token_claims(&f.service_sid, MEMBER, nbf, exp);
        let t = now();
        let unsigned = {
            use base64::Engine;
            let b64 =
                |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
            let header = json!({"typ": "JWT", "alg": "none", "cty": TOKEN_CONTENT_TYPE});
            format!("{}.{}.", b64(header), b64(claims(t, t + 3600)))
        };
        let tokens = [
            None,
            None,
            Some(unsigned),
            Some(sign_token(&claims(t, t + 3600), "not-the-api-key-secret")),
            Some(sign_token(&claims(t - 7200, t - 3600), &secret)),
            Some(sign_token(&claims(t + 3600, t + 7200), &secret)),
            Some(app.token(&other_service, MEMBER)),
            Some(app.token(&f.service_sid, "outsider")),
            Some(blocked.token),
            Some(f.token.clone()),
            Some(moderator.token),
            None,
        ];
        World {
            f,
            other_service,
            message,
            media: upload.sid.to_string(),
            role,
            sha256,
            tokens,
            next: AtomicUsize::new(0),
        }
    }

    /// A name no earlier request used.
    fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// `path` with the world's SIDs in place of its parameters.
    fn fill(&self, path: &str) -> String {
        path.replace("{service}", self.f.service_sid.as_str())
            .replace("{channel}", self.f.channel_sid.as_str())
            .replace("{member}", MEMBER)
            .replace("{message}", &self.message)
            .replace("{role}", &self.role)
            .replace("{user}", MEMBER)
            .replace("{media}", &self.media)
            .replace("{sha256}", &self.sha256)
    }

    /// `req` with the credentials of caller `caller` (a column of the matrix).
    fn authorize(&self, req: RequestBuilder, caller: usize) -> RequestBuilder {
        match (CALLERS[caller], &self.tokens[caller]) {
            ("no-auth", _) => req,
            ("malformed", _) => req.header("Authorization", "Basic %%%not-base64%%%"),
            ("admin", _) => {
                let c = credentials();
                req.basic_auth(c.account_sid.as_str(), Some(&c.auth_token))
            }
            (_, Some(token)) => req.header("X-Twilio-Token", token),
            (name, None) => panic!("caller {name} has no credentials"),
        }
    }
}

/// A request's path and body, after any per-request set-up.
enum Body {
    None,
    Form(Vec<(&'static str, String)>),
    Png,
    Json(Value),
}

/// The request for `route`: the world's records, or a fresh target where the
/// request changes or removes what it addresses (so each caller meets the same
/// state). A route without a recipe here fails the test.
async fn prepare(app: &TestApp, w: &World, method: &str, route: &str) -> (String, Body) {
    let f = &w.f;
    let form = |pairs: &[(&'static str, &str)]| {
        Body::Form(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
    };
    let path = w.fill(route);
    let blocked_role = f.role("blocked_channel_role_sid");
    match (method, route) {
        ("POST", "/v2/Services/{service}/Channels/{channel}/Webhooks") => {
            // Only the admin's succeeds: one of the channel's five.
            let body = form(&[
                ("Type", "webhook"),
                ("Configuration.Url", "https://hooks.example.com/matrix"),
                ("Configuration.Filters", "onMessageSent"),
            ]);
            (path, body)
        }
        (_, "/v2/Services/{service}/Channels/{channel}/Webhooks/{webhook}") => {
            // A channel and webhook of its own for each request.
            let (status, channel) = send(
                app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
                    .form(&[("FriendlyName", "hooked")]),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{channel}");
            let channel_path = format!("{}/Channels/{}", f.service_path(), sid(&channel));
            let (status, hook) = send(
                app.admin(Method::POST, &format!("{channel_path}/Webhooks"))
                    .form(&[
                        ("Type", "trigger"),
                        ("Configuration.Url", "https://hooks.example.com/matrix"),
                        ("Configuration.Triggers", "help"),
                    ]),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{hook}");
            let path = format!("{channel_path}/Webhooks/{}", sid(&hook));
            let body = match method {
                "POST" => form(&[("Configuration.Triggers", "urgent")]),
                _ => Body::None,
            };
            (path, body)
        }
        ("GET", "/v2/Services/{service}/InboundMessages/{message}") => {
            let message_sid = inbound_sid(w);
            let (status, _) = send(
                app.admin(
                    Method::POST,
                    &format!("{}/InboundMessages", f.service_path()),
                )
                .form(&[
                    ("MessageSid", message_sid.as_str()),
                    ("From", "sms-sender"),
                    ("Body", "hi"),
                ]),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            (
                format!("{}/InboundMessages/{message_sid}", f.service_path()),
                Body::None,
            )
        }
        ("GET", "/v1/Services/{service}/Media/{media}/Thumbnail") => {
            (format!("{path}?Width=96&Height=96&Method=crop"), Body::None)
        }
        ("GET", _) => (path, Body::None),
        ("DELETE", "/v2/Services/{service}") => (path, Body::None),
        ("POST", "/v2/Services") | ("POST", "/v2/Services/{service}") => {
            (path, form(&[("FriendlyName", "matrix")]))
        }
        ("POST", "/v2/Services/{service}/Roles") => {
            let name = w.fresh("role");
            let body = form(&[
                ("FriendlyName", &name),
                ("Type", "channel"),
                ("Permission", "sendMessage"),
            ]);
            (path, body)
        }
        ("POST", "/v2/Services/{service}/Roles/{role}") => {
            (path, form(&[("Permission", "sendMessage")]))
        }
        ("DELETE", "/v2/Services/{service}/Roles/{role}") => {
            let role = app
                .create_channel_role(&f.service_sid, &w.fresh("doomed"), &["sendMessage"])
                .await;
            (path.replace(&w.role, &role), Body::None)
        }
        ("POST", "/v2/Services/{service}/Channels") => (path, form(&[("FriendlyName", "matrix")])),
        ("POST", "/v2/Services/{service}/Channels/{channel}") => {
            (path, form(&[("FriendlyName", &w.fresh("renamed"))]))
        }
        ("POST", "/v2/Services/{service}/Channels/{channel}/Messages/{message}") => {
            (path, form(&[("Body", &w.fresh("edited"))]))
        }
        ("POST", "/v2/Services/{service}/Users/{user}") => {
            (path, form(&[("FriendlyName", &w.fresh("name"))]))
        }
        ("DELETE", "/v2/Services/{service}/Users/{user}") => {
            let target = w.fresh("leaver");
            let (status, user) = send(
                app.admin(Method::POST, &format!("{}/Users", f.service_path()))
                    .form(&[("Identity", target.as_str())]),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{user}");
            (w.fill(&route.replace("{user}", &sid(&user))), Body::None)
        }
        ("DELETE", "/v2/Services/{service}/Channels/{channel}") => {
            // A channel of its own, in which the member callers are members.
            let (status, channel) = send(
                app.admin(Method::POST, &format!("{}/Channels", f.service_path()))
                    .form(&[("FriendlyName", "doomed")]),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{channel}");
            let doomed = Fixture {
                channel_sid: sid(&channel).parse().unwrap(),
                ..f.clone()
            };
            let channel_admin = f.role("default_channel_creator_role_sid");
            for (identity, role) in [
                (MEMBER, None),
                ("blocked", Some(blocked_role.as_str())),
                ("moderator", Some(channel_admin.as_str())),
            ] {
                app.add_member(&doomed, identity, role).await;
            }
            (doomed.channel_path(), Body::None)
        }
        ("POST", "/v2/Services/{service}/Channels/{channel}/Members") => {
            (path, form(&[("Identity", &w.fresh("joiner"))]))
        }
        ("POST", "/v2/Services/{service}/Users") => (path, form(&[("Identity", &w.fresh("user"))])),
        ("POST", "/v2/Services/{service}/Channels/{channel}/Members/{member}")
        | ("DELETE", "/v2/Services/{service}/Channels/{channel}/Members/{member}") => {
            let target = w.fresh("target");
            app.add_member(f, &target, None).await;
            let path = w.fill(&route.replace("{member}", &target));
            let body = match method {
                "POST" => form(&[("RoleSid", &blocked_role)]),
                _ => Body::None,
            };
            (path, body)
        }
        ("POST", "/block-user") | ("POST", "/unblock-user") => {
            // Unblock: a member an admin put in the blocked role (from the default).
            let target = w.fresh("target");
            let role = (route == "/unblock-user").then_some(blocked_role.as_str());
            app.add_member(f, &target, role).await;
            let body = form(&[
                ("chatChannelSid", f.channel_sid.as_str()),
                ("memberSid", &target),
            ]);
            (path, body)
        }
        ("POST", "/v2/Services/{service}/Channels/{channel}/Messages") => {
            (path, form(&[("Body", "hello")]))
        }
        ("DELETE", "/v2/Services/{service}/Channels/{channel}/Messages/{message}") => {
            // The member's message, sent for this request.
            let message = app.send_text(f, &f.token, "doomed").await;
            (f.message_path(&message), Body::None)
        }
        ("POST", "/v2/Services/{service}/InboundMessages") => {
            // A fresh inbound message each time; without a signature only an
            // admin's Basic credentials are accepted.
            let message_sid = inbound_sid(w);
            (
                path,
                form(&[
                    ("MessageSid", &message_sid),
                    ("From", "whatsapp:+14155550100"),
                    ("Body", "hi"),
                ]),
            )
        }
        ("POST", "/v1/Services/{service}/Media") => (path, Body::Png),
        ("POST", "/v1/Services/{service}/MediaSet") => (
            path,
            Body::Json(json!({"command": "get", "list": [{"media_sid": w.media}]})),
        ),
        ("POST", "/v1/Services/{service}/MediaUploads") => {
            let size = PNG.len().to_string();
            let body = form(&[
                ("Size", &size),
                ("ContentType", "image/png"),
                ("Filename", "dot.png"),
            ]);
            (path, body)
        }
        ("POST", "/v1/Services/{service}/Media/{media}/Complete") => {
            // The member's own upload session, its bytes uploaded.
            let session = app
                .uploaded_session(&f.token, &f.service_sid, "image/png", PNG)
                .await;
            (path.replace(&w.media, &sid(&session)), Body::None)
        }
        ("POST", "/v1/Services/{service}/Media/{media}/Quarantine") => {
            // An upload of bytes of its own, for this request.
            let media = uploaded(app, f, &w.fresh("quarantine")).await;
            let body = form(&[("Reason", "matrix")]);
            (path.replace(&w.media, &media), body)
        }
        ("DELETE", "/v1/Services/{service}/QuarantinedHashes/{sha256}") => {
            let sha256 = quarantined_upload(app, f, &w.fresh("lift")).await.1;
            (path.replace(&w.sha256, &sha256), Body::None)
        }
        _ => panic!(
            "no request recipe for {method} {route}: add one to prepare() and a row to MATRIX"
        ),
    }
}

/// A fresh inbound `MessageSid` (`MM` and 32 hex digits).
fn inbound_sid(w: &World) -> String {
    format!(
        "MM{:032x}",
        (now() as u128) << 64 | w.next.fetch_add(1, Ordering::Relaxed) as u128
    )
}

/// A ready upload by an admin (it holds no upload slot, so the member's are left
/// to the other rows) of PNG bytes followed by `tag` (bytes no other upload of
/// the matrix has); returns its SID.
async fn uploaded(app: &TestApp, f: &Fixture, tag: &str) -> String {
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    let (status, media) = send(
        app.admin(Method::POST, &f.uploads_path())
            .header("Content-Type", "image/png")
            .body(bytes),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{media}");
    sid(&media)
}

/// As [`uploaded`], then quarantined by an admin: its SID and deny-listed digest.
async fn quarantined_upload(app: &TestApp, f: &Fixture, tag: &str) -> (String, String) {
    let media = uploaded(app, f, tag).await;
    let (status, body) = send(
        app.admin(
            Method::POST,
            &format!("{}/Quarantine", f.media_path(&media.parse().unwrap())),
        )
        .form(&[("Reason", "matrix")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (media, body["sha256"].as_str().unwrap().to_owned())
}

/// One request of the matrix: its status and body.
async fn call(app: &TestApp, w: &World, method: &str, route: &str, caller: usize) -> (u16, Value) {
    let (path, body) = prepare(app, w, method, route).await;
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let req = w.authorize(app.anon(m, &path), caller);
    let req = match body {
        Body::None => req,
        Body::Form(pairs) => req.form(&pairs),
        Body::Json(v) => req.json(&v),
        Body::Png => req
            .header("Content-Type", "image/png")
            .header("Content-Disposition", "attachment; filename=\"dot.png\"")
            .body(PNG.to_vec()),
    };
    let (status, body) = send(req).await;
    (status.as_u16(), body)
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_the_matrix_says() {
    // The table covers exactly the product's routes, as the template and the
    // routers declare them.
    let in_table: Routes = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(in_table.len(), MATRIX.len(), "a route has two rows");
    let in_template = all_routes();
    let in_routers: Routes = function_routes().into_values().flatten().collect();
    for (source, routes) in [
        ("template.yaml", &in_template),
        ("the routers", &in_routers),
    ] {
        let missing: BTreeSet<_> = routes.difference(&in_table).collect();
        let stale: BTreeSet<_> = in_table.difference(routes).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "routes of {source} without a row in MATRIX: {missing:?}; rows without a route: {stale:?}"
        );
    }

    let app = TestApp::spawn().await;
    let w = World::build(&app).await;
    assert_ne!(w.other_service, w.f.service_sid);

    // Deleting the service goes last: everything else addresses it.
    let mut rows: Vec<_> = MATRIX.iter().collect();
    rows.sort_by_key(|(m, p, _)| (*m, *p) == ("DELETE", "/v2/Services/{service}"));
    let mut report = vec![format!(
        "{:<7}{:<66}{}",
        "",
        "route \\ caller",
        CALLERS.map(|c| format!("{c:>11}")).concat()
    )];
    let (mut requests, mut mismatches, mut bare) = (0, Vec::new(), Vec::new());
    for (method, route, expected) in rows {
        let got = join_all((0..CALLERS.len()).map(|c| call(&app, &w, method, route, c))).await;
        let mut line = format!("{method:<7}{route:<66}");
        for (c, ((status, body), want)) in got.into_iter().zip(expected).enumerate() {
            requests += 1;
            if status == *want {
                line.push_str(&format!("{status:>11}"));
            } else {
                line.push_str(&format!("{:>11}", format!("{status}!={want}")));
                mismatches.push(format!(
                    "{method} {route} as {}: {status}, expected {want}",
                    CALLERS[c]
                ));
            }
            // Every refusal is a Twilio error body; a 401 names the defect.
            let twilio_body = status < 400 || body["status"] == status;
            let code_ok = status != 401 || AUTH_CODES[c].is_none_or(|code| body["code"] == code);
            if !twilio_body || !code_ok {
                bare.push(format!("{method} {route} as {}: {body}", CALLERS[c]));
            }
        }
        report.push(line);
    }
    report.push(format!(
        "authz matrix: {} routes × {} callers = {requests} requests, {} mismatches",
        MATRIX.len(),
        CALLERS.len(),
        mismatches.len()
    ));
    println!("{}", report.join("\n"));
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(
        bare.is_empty(),
        "refusals without a Twilio error body or with the wrong 401 code: {bare:#?}"
    );
}
