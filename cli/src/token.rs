//! User access tokens in Twilio's format (HS256 JWT with a `chat` grant), as the
//! server's `Credentials::mint_token` makes them; the CLI has its own copy so it
//! needs nothing of the server.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};

pub fn mint(
    account_sid: &str,
    api_key_sid: &str,
    api_key_secret: &str,
    service: &str,
    identity: &str,
    now: i64,
    ttl: i64,
) -> String {
    let header = serde_json::json!({"typ": "JWT", "alg": "HS256", "cty": "twilio-fpa;v=1"});
    let claims = serde_json::json!({
        "jti": format!("{api_key_sid}-{now}"),
        "iss": api_key_sid,
        "sub": account_sid,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "grants": {"identity": identity, "chat": {"service_sid": service}},
    });
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(api_key_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{h}.{p}").as_bytes());
    let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{s}")
}
