//! What a default deploy of template.yaml gets: virus scanning required, no browser
//! origin allowed until the deployer lists one, the credentials' secrets in
//! Secrets Manager instead of the functions' environment, and no IAM grant a
//! function does not use.

use std::path::Path;

use serde_yaml::Value as Yaml;

fn template() -> Yaml {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(root.join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn functions(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(_, r)| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
            (binary.to_owned(), &r["Properties"])
        })
        .collect()
}

/// Every IAM action a function's inline policies grant.
fn actions(properties: &Yaml) -> Vec<String> {
    let mut out = Vec::new();
    for policy in properties["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            for action in statement["Action"].as_sequence().into_iter().flatten() {
                out.push(action.as_str().unwrap().to_owned());
            }
        }
    }
    out
}

#[test]
fn scanning_is_required_and_no_origin_is_allowed_by_default() {
    let t = template();
    assert_eq!(t["Parameters"]["ScanRequired"]["Default"], "true");
    assert_eq!(t["Parameters"]["CorsAllowedOrigins"]["Default"], "");
    // A default deploy without a scanner fails before anything is created.
    let rule = &t["Rules"]["ScannerUnlessExplicitlyOff"];
    assert!(
        serde_yaml::to_string(rule)
            .unwrap()
            .contains("ClamdAddress"),
        "{rule:?}"
    );
}

#[test]
fn secrets_are_read_from_secrets_manager_not_the_environment() {
    let t = template();
    let globals = &t["Globals"]["Function"]["Environment"]["Variables"];
    assert!(!globals["CHAT_MEDIA_SECRET_ARN"].is_null());
    for (name, properties) in std::iter::once(("Globals".to_owned(), globals)).chain(
        functions(&t)
            .into_iter()
            .map(|(name, p)| (name, &p["Environment"]["Variables"])),
    ) {
        for secret in ["CHAT_MEDIA_AUTH_TOKEN", "CHAT_MEDIA_API_KEY_SECRET"] {
            assert!(
                properties[secret].is_null(),
                "{name} has {secret} in its environment"
            );
        }
    }
    for (name, properties) in functions(&t) {
        assert!(
            actions(properties).contains(&"secretsmanager:GetSecretValue".to_owned()),
            "{name} cannot read its secret"
        );
    }
}

#[test]
fn functions_are_granted_only_what_they_use() {
    let t = template();
    let refused = [
        ("upload-media", "dynamodb:Query"),
        ("upload-media", "dynamodb:BatchGetItem"),
        ("upload-media", "dynamodb:ConditionCheckItem"),
        ("update-member", "dynamodb:BatchGetItem"),
        ("delete-message", "dynamodb:BatchGetItem"),
        ("delete-message", "dynamodb:ConditionCheckItem"),
        ("get-media", "dynamodb:PutItem"),
        ("get-thumbnail", "dynamodb:PutItem"),
        ("get-thumbnail", "s3:DeleteObject"),
    ];
    let functions = functions(&t);
    for (function, action) in refused {
        let (_, properties) = functions
            .iter()
            .find(|(name, _)| name == function)
            .unwrap_or_else(|| panic!("no function {function}"));
        assert!(
            !actions(properties).contains(&action.to_owned()),
            "{function} is granted {action}, which it does not use"
        );
    }
    // get-thumbnail writes thumbnails only, next to their media: never an uploaded object.
    let (_, get_thumbnail) = functions
        .iter()
        .find(|(n, _)| n == "get-thumbnail")
        .unwrap();
    assert!(
        actions(get_thumbnail).contains(&"s3:PutObject".to_owned()),
        "get-thumbnail cannot store the thumbnails it makes"
    );
    for policy in get_thumbnail["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let grants_put = statement["Action"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|a| a.as_str() == Some("s3:PutObject"));
            if grants_put {
                let resources = serde_yaml::to_string(&statement["Resource"]).unwrap();
                assert!(
                    resources.contains("/services/*/media/*.thumbnails/*")
                        && !resources.contains("/services/*\""),
                    "get-thumbnail may put objects beyond thumbnails: {resources}"
                );
            }
        }
    }
}

/// A function's `MemorySize` in MB: its own, else the template's global one.
fn memory_mb(t: &Yaml, properties: &Yaml) -> u64 {
    properties["MemorySize"]
        .as_u64()
        .or_else(|| t["Globals"]["Function"]["MemorySize"].as_u64())
        .unwrap()
}

/// Only get-thumbnail pays for image decoding: its memory holds the decode bound of
/// `chat_media::thumbnail` (source + decoder allocations + the largest thumbnail +
/// the runtime), while get-media, every download's function, runs at the API
/// functions' 128 MB with read-only S3 access (presigned GETs need s3:GetObject).
#[test]
fn only_the_thumbnail_function_pays_for_decoding_images() {
    use chat_media::thumbnail::{MAX_DECODE_ALLOC, MAX_SOURCE_BYTES, SIZES};
    let t = template();
    let functions = functions(&t);
    let find = |name: &str| {
        functions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no function {name}"))
    };
    let (get_media, get_thumbnail) = (find("get-media"), find("get-thumbnail"));

    assert_eq!(memory_mb(&t, get_media), 128, "get-media's MemorySize");
    let s3: Vec<String> = actions(get_media)
        .into_iter()
        .filter(|a| a.starts_with("s3:"))
        .collect();
    assert_eq!(s3, ["s3:GetObject"], "get-media's S3 actions");

    const MIB: u64 = 1024 * 1024;
    let largest = u64::from(*SIZES.iter().max().unwrap());
    let runtime = 30 * MIB; // measured RSS after init is ~16 MiB (scripts/bench-lambda)
    let bound = MAX_SOURCE_BYTES + MAX_DECODE_ALLOC + largest * largest * 4 + runtime;
    let memory = memory_mb(&t, get_thumbnail) * 1_000_000; // decimal MB: the lower reading
    assert!(
        memory >= bound,
        "get-thumbnail has {memory} bytes, below its decode bound of {bound}"
    );
}

#[test]
fn http_functions_outlive_a_hung_dependency() {
    let t = template();
    let global = t["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    let bound = chat_media::config::OPERATION_TIMEOUT.as_secs();
    for (name, properties) in functions(&t) {
        if name == "media-events" {
            continue; // not HTTP: a failure is retried by Lambda, not answered
        }
        let timeout = properties["Timeout"].as_u64().unwrap_or(global);
        assert!(
            timeout > bound,
            "{name} times out after {timeout} s, before a hung DynamoDB or S3 call ({bound} s) becomes its 503"
        );
    }
}
