//! Who is calling: an admin (HTTP Basic with account or API-key credentials) or a
//! user of one service (a Twilio-format Access Token, HS256 only).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{code, ApiError};
use crate::identity::Identity;
use crate::sid::{AccountSid, ApiKeySid, ServiceSid};

type HmacSha256 = Hmac<Sha256>;

/// The header an access token's `cty` must carry.
pub const TOKEN_CONTENT_TYPE: &str = "twilio-fpa;v=1";
/// Longest lifetime a token may claim, as Twilio (24 h).
pub const MAX_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// Credentials from configuration; the API key also signs user tokens.
#[derive(Clone)]
pub struct Credentials {
    pub account_sid: AccountSid,
    pub auth_token: String,
    pub api_key_sid: ApiKeySid,
    pub api_key_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .finish_non_exhaustive()
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    User {
        identity: Identity,
        service: ServiceSid,
    },
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::Admin)
    }

    /// A token is valid for its one service only.
    pub fn require_service(&self, service: &ServiceSid) -> Result<(), ApiError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::User { service: own, .. } if own == service => Ok(()),
            Principal::User { .. } => Err(ApiError::forbidden(format!(
                "The access token is not valid for service {service}"
            ))),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "This operation requires account or API key credentials",
            ))
        }
    }

    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Principal::Admin => None,
            Principal::User { identity, .. } => Some(identity),
        }
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Credentials {
    /// Authenticates from the `Authorization` or `X-Twilio-Token` headers.
    pub fn authenticate(&self, headers: &HeaderMap, now: i64) -> Result<Principal, ApiError> {
        let header_token = headers
            .get("x-twilio-token")
            .map(|v| v.to_str().unwrap_or_default().trim().to_owned());
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or_default().trim().to_owned());

        if let Some(auth) = authorization.as_deref() {
            let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
            if scheme.eq_ignore_ascii_case("basic") {
                return self.basic(rest.trim());
            }
            if scheme.eq_ignore_ascii_case("bearer") {
                let bearer = rest.trim();
                if let Some(other) = header_token.as_deref() {
                    if other != bearer {
                        return Err(ApiError::unauthenticated(
                            code::INVALID_ACCESS_TOKEN,
                            "Authorization and X-Twilio-Token carry different tokens",
                        ));
                    }
                }
                return self.verify_token(bearer, now);
            }
            return Err(ApiError::unauthenticated(
                code::AUTHENTICATE,
                "Unsupported Authorization scheme (use Basic or Bearer)",
            ));
        }
        match header_token {
            Some(token) => self.verify_token(&token, now),
            None => Err(ApiError::unauthenticated(
                code::AUTHENTICATE,
                "Authentication required: HTTP Basic credentials or an access token",
            )),
        }
    }

    /// As [`Credentials::authenticate`], for endpoints that also take the access
    /// token as a form field `Token`: a Flex plugin posts a form without custom
    /// headers (a CORS simple request, so no preflight). Header and field are
    /// equivalent; a request carrying both must carry the same token, and account
    /// credentials do not mix with a token field.
    pub fn authenticate_with_form_token(
        &self,
        headers: &HeaderMap,
        form_token: Option<&str>,
        now: i64,
    ) -> Result<Principal, ApiError> {
        let Some(field) = form_token.map(str::trim) else {
            return self.authenticate(headers, now);
        };
        let header_token = headers
            .get("x-twilio-token")
            .map(|v| v.to_str().unwrap_or_default().trim().to_owned());
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or_default().trim().to_owned());
        let bearer = match authorization.as_deref() {
            None => None,
            Some(auth) => match auth.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Some(rest.trim().to_owned())
                }
                _ => {
                    return Err(ApiError::unauthenticated(
                        code::AUTHENTICATE,
                        "Send either account credentials or an access token, not both",
                    ))
                }
            },
        };
        for other in [header_token, bearer].into_iter().flatten() {
            if other != field {
                return Err(ApiError::unauthenticated(
                    code::INVALID_ACCESS_TOKEN,
                    "The Token field and the token header carry different tokens",
                ));
            }
        }
        self.verify_token(field, now)
    }

    fn basic(&self, encoded: &str) -> Result<Principal, ApiError> {
        let invalid =
            || ApiError::unauthenticated(code::AUTHENTICATE, "Invalid username or password");
        let decoded = STANDARD.decode(encoded).map_err(|_| invalid())?;
        let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
        let (user, pass) = decoded.split_once(':').ok_or_else(invalid)?;
        // Evaluate both pairs so timing does not tell which username exists.
        let account = ct_eq(user, self.account_sid.as_str()) & ct_eq(pass, &self.auth_token);
        let api_key = ct_eq(user, self.api_key_sid.as_str()) & ct_eq(pass, &self.api_key_secret);
        if account | api_key {
            Ok(Principal::Admin)
        } else {
            Err(invalid())
        }
    }

    /// Verifies a Twilio access token; each refusal has its own code and message.
    pub fn verify_token(&self, token: &str, now: i64) -> Result<Principal, ApiError> {
        let bad = |c: u32, m: &str| ApiError::unauthenticated(c, m.to_owned());
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                code::INVALID_ACCESS_TOKEN,
                "Invalid access token: not a JWT (header.payload.signature)",
            ));
        };

        let header: TokenHeader = decode_json(h)
            .ok_or_else(|| bad(code::INVALID_TOKEN_HEADER, "Invalid access token header"))?;
        match header.alg.as_deref() {
            Some("HS256") => {}
            Some(alg) if alg.eq_ignore_ascii_case("none") => {
                return Err(bad(
                    code::INVALID_TOKEN_HEADER,
                    "Unsigned access tokens (alg none) are refused",
                ))
            }
            _ => {
                return Err(bad(
                    code::INVALID_TOKEN_HEADER,
                    "Access token algorithm must be HS256",
                ))
            }
        }
        if header.cty.as_deref() != Some(TOKEN_CONTENT_TYPE) {
            return Err(bad(
                code::INVALID_TOKEN_HEADER,
                "Access token header must have cty twilio-fpa;v=1",
            ));
        }

        let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| {
            bad(
                code::INVALID_TOKEN_SIGNATURE,
                "Invalid access token signature",
            )
        })?;
        let mut mac = HmacSha256::new_from_slice(self.api_key_secret.as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&signature).map_err(|_| {
            bad(
                code::INVALID_TOKEN_SIGNATURE,
                "Invalid access token signature",
            )
        })?;

        let claims: TokenClaims = decode_json(p)
            .ok_or_else(|| bad(code::INVALID_ACCESS_TOKEN, "Invalid access token payload"))?;
        if claims.iss.as_deref() != Some(self.api_key_sid.as_str())
            || claims.sub.as_deref() != Some(self.account_sid.as_str())
        {
            return Err(bad(
                code::INVALID_TOKEN_ISSUER,
                "Invalid access token issuer/subject",
            ));
        }
        let exp = claims
            .exp
            .ok_or_else(|| bad(code::TOKEN_EXPIRED, "Access token has no expiry (exp)"))?;
        if exp <= now {
            return Err(bad(code::TOKEN_EXPIRED, "Access token expired"));
        }
        if exp - now > MAX_TOKEN_TTL_SECS {
            return Err(bad(
                code::TOKEN_EXPIRED,
                "Access token expiry exceeds the maximum of 24 hours",
            ));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(bad(code::TOKEN_NOT_YET_VALID, "Access token not yet valid"));
        }
        let grants = claims
            .grants
            .ok_or_else(|| bad(code::INVALID_TOKEN_GRANTS, "Access token has no grants"))?;
        let identity = grants
            .identity
            .as_deref()
            .and_then(|i| Identity::parse(i).ok())
            .ok_or_else(|| {
                bad(
                    code::INVALID_TOKEN_GRANTS,
                    "Access token grants carry no valid identity",
                )
            })?;
        let service = grants
            .chat
            .and_then(|c| c.service_sid)
            .and_then(|s| ServiceSid::parse(&s).ok())
            .ok_or_else(|| {
                bad(
                    code::INVALID_TOKEN_GRANTS,
                    "Access token has no chat grant with a valid service_sid",
                )
            })?;
        Ok(Principal::User { identity, service })
    }

    /// Mints an access token for a user of a service (the runner's `token` command, tests).
    pub fn mint_token(
        &self,
        service: &ServiceSid,
        identity: &Identity,
        now: i64,
        ttl_secs: i64,
    ) -> String {
        let header = serde_json::json!({"typ": "JWT", "alg": "HS256", "cty": TOKEN_CONTENT_TYPE});
        let claims = serde_json::json!({
            "jti": format!("{}-{now}", self.api_key_sid),
            "iss": self.api_key_sid.as_str(),
            "sub": self.account_sid.as_str(),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_secs,
            "grants": {
                "identity": identity.as_str(),
                "chat": {"service_sid": service.as_str()},
            },
        });
        sign_jwt(&header, &claims, &self.api_key_secret)
    }
}

/// Signs any header and claims with HS256; tests use it to forge edge cases.
pub fn sign_jwt(header: &serde_json::Value, claims: &serde_json::Value, secret: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{s}")
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[derive(Deserialize)]
struct TokenHeader {
    alg: Option<String>,
    cty: Option<String>,
}

#[derive(Deserialize)]
struct TokenClaims {
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    grants: Option<Grants>,
}

#[derive(Deserialize)]
struct Grants {
    identity: Option<String>,
    chat: Option<ChatGrant>,
}

#[derive(Deserialize)]
struct ChatGrant {
    service_sid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            account_sid: AccountSid::generate(),
            auth_token: "token".into(),
            api_key_sid: ApiKeySid::generate(),
            api_key_secret: "secret".into(),
        }
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn basic_auth_with_either_credential_pair() {
        let c = creds();
        let account = STANDARD.encode(format!("{}:token", c.account_sid));
        let key = STANDARD.encode(format!("{}:secret", c.api_key_sid));
        let crossed = STANDARD.encode(format!("{}:secret", c.account_sid));
        for (value, ok) in [(account, true), (key, true), (crossed, false)] {
            let r = c.authenticate(&headers("authorization", &format!("Basic {value}")), NOW);
            assert_eq!(r.is_ok(), ok);
        }
        let missing = c.authenticate(&HeaderMap::new(), NOW).unwrap_err();
        assert_eq!(missing.status, 401);
    }

    #[test]
    fn minted_token_round_trips_in_both_headers() {
        let c = creds();
        let service = ServiceSid::generate();
        let alice = Identity::parse("alice").unwrap();
        let token = c.mint_token(&service, &alice, NOW, 3600);
        let expected = Principal::User {
            identity: alice,
            service: service.clone(),
        };
        assert_eq!(
            c.authenticate(&headers("x-twilio-token", &token), NOW)
                .unwrap(),
            expected
        );
        assert_eq!(
            c.authenticate(&headers("authorization", &format!("Bearer {token}")), NOW)
                .unwrap(),
            expected
        );
        assert!(expected.require_service(&service).is_ok());
        assert_eq!(
            expected
                .require_service(&ServiceSid::generate())
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn form_token_is_equivalent_to_the_header_and_must_agree_with_it() {
        let c = creds();
        let service = ServiceSid::generate();
        let alice = c.mint_token(&service, &Identity::parse("alice").unwrap(), NOW, 3600);
        let bob = c.mint_token(&service, &Identity::parse("bob").unwrap(), NOW, 3600);
        let expected = Principal::User {
            identity: Identity::parse("alice").unwrap(),
            service,
        };
        let none = HeaderMap::new();
        let same = headers("x-twilio-token", &alice);
        let bearer = headers("authorization", &format!("Bearer {alice}"));
        for h in [&none, &same, &bearer] {
            assert_eq!(
                c.authenticate_with_form_token(h, Some(&alice), NOW)
                    .unwrap(),
                expected
            );
        }
        // Without the field, the headers alone decide.
        assert_eq!(
            c.authenticate_with_form_token(&same, None, NOW).unwrap(),
            expected
        );
        let other = headers("x-twilio-token", &bob);
        let err = c
            .authenticate_with_form_token(&other, Some(&alice), NOW)
            .unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (401, code::INVALID_ACCESS_TOKEN)
        );
        let basic = headers(
            "authorization",
            &format!(
                "Basic {}",
                STANDARD.encode(format!("{}:token", c.account_sid))
            ),
        );
        assert_eq!(
            c.authenticate_with_form_token(&basic, Some(&alice), NOW)
                .unwrap_err()
                .status,
            401
        );
        let err = c
            .authenticate_with_form_token(&none, Some("garbage"), NOW)
            .unwrap_err();
        assert_eq!(err.status, 401);
    }

    #[test]
    fn each_bad_token_has_its_own_code() {
        let c = creds();
        let service = ServiceSid::generate();
        let alice = Identity::parse("alice").unwrap();
        let good = c.mint_token(&service, &alice, NOW, 3600);
        let claims = |exp: i64, nbf: i64| {
            serde_json::json!({"iss": c.api_key_sid.as_str(), "sub": c.account_sid.as_str(), "exp": exp, "nbf": nbf,
                "grants": {"identity": "alice", "chat": {"service_sid": service.as_str()}}})
        };
        let hs = serde_json::json!({"alg": "HS256", "cty": TOKEN_CONTENT_TYPE});
        let none_token = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","cty":"twilio-fpa;v=1"}"#),
            URL_SAFE_NO_PAD.encode(claims(NOW + 60, NOW).to_string())
        );
        let cases = [
            (none_token, code::INVALID_TOKEN_HEADER),
            (
                sign_jwt(
                    &serde_json::json!({"alg": "HS512", "cty": TOKEN_CONTENT_TYPE}),
                    &claims(NOW + 60, NOW),
                    "secret",
                ),
                code::INVALID_TOKEN_HEADER,
            ),
            (
                sign_jwt(
                    &serde_json::json!({"alg": "HS256"}),
                    &claims(NOW + 60, NOW),
                    "secret",
                ),
                code::INVALID_TOKEN_HEADER,
            ),
            (
                sign_jwt(&hs, &claims(NOW + 60, NOW), "wrong"),
                code::INVALID_TOKEN_SIGNATURE,
            ),
            (
                sign_jwt(&hs, &claims(NOW - 1, NOW - 100), "secret"),
                code::TOKEN_EXPIRED,
            ),
            (
                sign_jwt(&hs, &claims(NOW + 600, NOW + 60), "secret"),
                code::TOKEN_NOT_YET_VALID,
            ),
            (format!("{good}x"), code::INVALID_TOKEN_SIGNATURE),
            ("abc".to_string(), code::INVALID_ACCESS_TOKEN),
        ];
        for (token, expected) in cases {
            let err = c.verify_token(&token, NOW).unwrap_err();
            assert_eq!(err.code, expected, "{}", err.message);
            assert_eq!(err.status, 401);
        }
        let other_issuer = creds();
        let err = other_issuer.verify_token(&good, NOW).unwrap_err();
        assert!(
            err.code == code::INVALID_TOKEN_SIGNATURE || err.code == code::INVALID_TOKEN_ISSUER
        );
    }
}
