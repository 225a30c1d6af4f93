//! template.yaml and the routers must agree: every HttpApi route of a function is a
//! route of that function's router (same method, same path), and the other way round;
//! and every template route is served by the merged app the local runner uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chat_media_tests::reqwest::{Method, StatusCode};
use chat_media_tests::{send, TestApp};
use serde_yaml::Value as Yaml;

/// (method, path) pairs, e.g. `("GET", "/v2/Services/{service}")`.
pub(crate) type Routes = BTreeSet<(String, String)>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// (binary name → routes) from the template's `AWS::Serverless::Function` resources:
/// each function's `Metadata.BuildProperties.Binary` and the `Method` and `Path` of
/// its `HttpApi` events. Read with a YAML parser (CloudFormation's short tags such
/// as `!Ref` parse as tagged values), so layout and quoting do not matter.
pub(crate) fn template_routes() -> BTreeMap<String, Routes> {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    parse_template_routes(&text)
}

fn parse_template_routes(text: &str) -> BTreeMap<String, Routes> {
    let template: Yaml = serde_yaml::from_str(text).expect("template.yaml is YAML");
    let resources = template["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources");
    let mut out: BTreeMap<String, Routes> = BTreeMap::new();
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name:?} names no Binary"));
        let routes = out.entry(binary.to_owned()).or_default();
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (event, spec) in events {
            if spec["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let field = |key: &str| {
                spec["Properties"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name:?} event {event:?} has no {key}"))
                    .to_owned()
            };
            routes.insert((field("Method"), field("Path")));
        }
    }
    out
}

/// Routes declared in a function's `src/lib.rs`: `.route("path", get(..).post(..))`.
fn router_routes(lib_rs: &str) -> Routes {
    let mut routes = Routes::new();
    let mut rest = lib_rs;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let open = rest.find('"').unwrap();
        let close = open + 1 + rest[open + 1..].find('"').unwrap();
        let path = &rest[open + 1..close];
        // Walk to the closing paren of `.route(`, noting method calls at depth 1.
        let mut depth = 1;
        let mut i = close + 1;
        let bytes = rest.as_bytes();
        let mut word = String::new();
        while depth > 0 {
            let c = bytes[i] as char;
            match c {
                '(' => {
                    if depth == 1
                        && ["get", "post", "delete", "put", "patch"].contains(&word.as_str())
                    {
                        routes.insert((word.to_uppercase(), path.to_owned()));
                    }
                    depth += 1;
                    word.clear();
                }
                ')' => {
                    depth -= 1;
                    word.clear();
                }
                c if c.is_alphanumeric() || c == '_' => word.push(c),
                _ => word.clear(),
            }
            i += 1;
        }
        rest = &rest[i..];
    }
    routes
}

/// (function name → routes) from each function's router (`functions/*/src/lib.rs`);
/// functions without routes (event handlers) are left out.
pub(crate) fn function_routes() -> BTreeMap<String, Routes> {
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(root().join("functions")).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        let routes = router_routes(&lib);
        if !routes.is_empty() {
            out.insert(name, routes);
        }
    }
    out
}

/// Every HTTP route of the product: the template's, which the test below holds
/// equal to the routers'. The authz matrix is generated from this list.
pub(crate) fn all_routes() -> Routes {
    template_routes().into_values().flatten().collect()
}

#[test]
fn every_function_router_matches_its_template_routes() {
    let template = template_routes();
    let mut checked = 0;
    for (name, in_code) in function_routes() {
        let in_template = template.get(&name).cloned().unwrap_or_default();
        let only_code: Vec<_> = in_code.difference(&in_template).collect();
        let only_template: Vec<_> = in_template.difference(&in_code).collect();
        assert!(
            only_code.is_empty() && only_template.is_empty(),
            "{name}: routes only in the router: {only_code:?}; only in template.yaml: {only_template:?}"
        );
        checked += 1;
    }
    assert!(checked >= 1, "no function routers found");
}

#[test]
fn the_template_parser_reads_http_api_events_and_cloudformation_tags() {
    let template = r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {TableName: !Ref TableName}
  Api:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: api
    Properties:
      Role: !GetAtt [Role, Arn]
      Environment:
        Variables: {TABLE: !Sub "${Table}"}
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref HttpApi, Method: GET, Path: "/a/{x}"}
        Post:
          Type: HttpApi
          Properties:
            ApiId: {Ref: HttpApi}
            Method: POST
            Path: /a/{x}
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
"#;
    let expected: Routes = [("GET", "/a/{x}"), ("POST", "/a/{x}")]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .into();
    assert_eq!(
        parse_template_routes(template),
        BTreeMap::from([("api".to_owned(), expected)])
    );
}

#[test]
fn the_route_parser_reads_chained_methods() {
    let routes = router_routes(
        r#"Router::new().route("/a/{x}", get(h::a).post(h::b)).route("/b", delete(f(g)))"#,
    );
    let expected: Routes = [("GET", "/a/{x}"), ("POST", "/a/{x}"), ("DELETE", "/b")]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .into();
    assert_eq!(routes, expected);
}

#[tokio::test]
async fn every_template_route_is_served_by_the_local_app() {
    let app = TestApp::spawn().await;
    let sample = |path: &str| {
        path.replace("{service}", "IS00000000000000000000000000000001")
            .replace("{channel}", "CH00000000000000000000000000000001")
            .replace(['{', '}'], "")
    };
    let mut checked = 0;
    for (function, routes) in template_routes() {
        for (method, path) in routes {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = app.anon(m.clone(), &sample(&path));
            if m == Method::POST {
                req = req.form(&[("x", "")]); // plugin endpoints read credentials from the form
            }
            let (status, body) = send(req).await;
            // Routed handlers authenticate first; the fallbacks would say 404 or 405.
            // Twilio's inbound webhook answers a request without its signature 403.
            let refused = if m == Method::POST && path.ends_with("/InboundMessages") {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(
                status, refused,
                "{function}: {method} {path} is not routed: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10);
}
