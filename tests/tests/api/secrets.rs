//! Deployed functions read their credentials' secrets from Secrets Manager once
//! per cold start (`CHAT_MEDIA_SECRET_ARN`), here against ministack's Secrets
//! Manager. (The Lambda-runtime event checks in scripts/test start every function
//! this way.)

use chat_media::config::secret_values;
use chat_media::sid::MediaSid;
use chat_media::Credentials;

async fn client() -> aws_sdk_secretsmanager::Client {
    let aws = chat_media_tests::aws_options();
    let sdk = aws.sdk_config().await;
    let endpoint = aws
        .dynamodb_endpoint
        .expect("ministack serves Secrets Manager too");
    let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// A new secret holding `value`; its ARN.
async fn secret(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    let out = client
        .create_secret()
        .name(format!("test-{}", MediaSid::generate()))
        .secret_string(value)
        .send()
        .await
        .expect("create the secret");
    out.arn().expect("an ARN").to_owned()
}

#[tokio::test]
async fn credentials_come_from_the_secret_and_the_rest_from_the_environment() {
    let client = client().await;
    let arn = secret(
        &client,
        r#"{"CHAT_MEDIA_AUTH_TOKEN": "secret-auth-token-0001", "CHAT_MEDIA_API_KEY_SECRET": "secret-key-secret-0001"}"#,
    )
    .await;
    let values = secret_values(&client, &arn).await.unwrap();
    let env = |name: &str| match name {
        "CHAT_MEDIA_ACCOUNT_SID" => Some("AC00000000000000000000000000000009".to_owned()),
        "CHAT_MEDIA_API_KEY_SID" => Some("SK00000000000000000000000000000009".to_owned()),
        _ => None,
    };
    let credentials =
        Credentials::from_lookup(|name| values.get(name).cloned().or_else(|| env(name))).unwrap();
    assert_eq!(credentials.auth_token, "secret-auth-token-0001");
    assert_eq!(credentials.api_key_secret, "secret-key-secret-0001");
    assert_eq!(
        credentials.account_sid.as_str(),
        "AC00000000000000000000000000000009"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_secret_stops_the_cold_start() {
    let client = client().await;
    let missing = secret_values(&client, "no-such-secret").await.unwrap_err();
    assert!(
        missing.to_string().contains("cannot read the secret"),
        "{missing}"
    );
    let not_json = secret(&client, "just a password").await;
    let e = secret_values(&client, &not_json).await.unwrap_err();
    assert!(e.to_string().contains("JSON object"), "{e}");
    // Without the auth token (in the secret or the environment) nothing starts.
    let partial = secret(
        &client,
        r#"{"CHAT_MEDIA_API_KEY_SECRET": "secret-key-secret-0001"}"#,
    )
    .await;
    let values = secret_values(&client, &partial).await.unwrap();
    let e = Credentials::from_lookup(|name| values.get(name).cloned()).unwrap_err();
    assert!(e.to_string().contains("must be set"), "{e}");
}
