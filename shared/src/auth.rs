//! Who is calling: an admin (HTTP Basic with account or API-key credentials) or a
//! user of one service (a Twilio-format Access Token, HS256 only).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::identity::Identity;
use crate::sid::{AccountSid, ApiKeySid, ServiceSid};

type HmacSha256 = Hmac<Sha256>;

/// The header an access token's `cty` must carry.
pub const TOKEN_CONTENT_TYPE: &str = "twilio-fpa;v=1";
/// Longest lifetime a token may claim, as Twilio (24 h).
pub const MAX_TOKEN_TTL_SECS: i64 = 24 * 3600;
/// How far a token minter's clock may run ahead of ours (`TOKEN_CLOCK_SKEW_SECS`).
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;
/// The largest leeway configuration accepts.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// Why a caller is not let in. 401s carry the [`AuthFault`] that picks the
/// Twilio code; the text says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("{message}")]
    Unauthenticated {
        fault: AuthFault,
        message: &'static str,
    },
    #[error("The access token is not valid for service {0}")]
    WrongService(ServiceSid),
    #[error("This operation requires account or API key credentials")]
    AdminOnly,
}

/// What is wrong with the credentials or the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFault {
    /// None sent, an unknown scheme, or a wrong username or password.
    Credentials,
    /// Not a JWT, an unreadable payload, or tokens that disagree.
    Malformed,
    /// Wrong algorithm (including `none`) or content type.
    Header,
    Signature,
    Issuer,
    Expired,
    NotYetValid,
    Grants,
}

impl AuthError {
    pub fn new(fault: AuthFault, message: &'static str) -> Self {
        Self::Unauthenticated { fault, message }
    }
}

/// Credentials from configuration; the API key also signs user tokens.
#[derive(Clone)]
pub struct Credentials {
    pub account_sid: AccountSid,
    pub auth_token: String,
    pub api_key_sid: ApiKeySid,
    pub api_key_secret: String,
    /// Seconds a token's `nbf` and `iat` may lie in the future (the minter's clock
    /// runs ahead); never applied to `exp`, so an expired token is refused at once.
    pub clock_skew_secs: i64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("api_key_sid", &self.api_key_sid)
            .field("clock_skew_secs", &self.clock_skew_secs)
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
    pub fn require_service(&self, service: &ServiceSid) -> Result<(), AuthError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::User { service: own, .. } if own == service => Ok(()),
            Principal::User { .. } => Err(AuthError::WrongService(service.clone())),
        }
    }

    pub fn require_admin(&self) -> Result<(), AuthError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AuthError::AdminOnly)
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

/// Why configured credentials are unusable (a start-up error, never a caller's).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialsError(String);

impl Credentials {
    /// `CHAT_MEDIA_ACCOUNT_SID`, `CHAT_MEDIA_AUTH_TOKEN`, `CHAT_MEDIA_API_KEY_SID`,
    /// `CHAT_MEDIA_API_KEY_SECRET`, and `TOKEN_CLOCK_SKEW_SECS` (the leeway for a
    /// token's `nbf`/`iat`, default 60, at most 300), read through `lookup` (blank
    /// counts as unset): a caller with its own defaults passes a lookup that falls
    /// back to them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| CredentialsError(format!("{name} must be set")))
        };
        let account_sid = AccountSid::parse(&required("CHAT_MEDIA_ACCOUNT_SID")?)
            .map_err(|e| CredentialsError(format!("CHAT_MEDIA_ACCOUNT_SID: {e}")))?;
        let api_key_sid = ApiKeySid::parse(&required("CHAT_MEDIA_API_KEY_SID")?)
            .map_err(|e| CredentialsError(format!("CHAT_MEDIA_API_KEY_SID: {e}")))?;
        let auth_token = required("CHAT_MEDIA_AUTH_TOKEN")?;
        let api_key_secret = required("CHAT_MEDIA_API_KEY_SECRET")?;
        if auth_token.len() < 16 || api_key_secret.len() < 16 {
            return Err(CredentialsError(
                "CHAT_MEDIA_AUTH_TOKEN and CHAT_MEDIA_API_KEY_SECRET must be at least 16 characters"
                    .into(),
            ));
        }
        let clock_skew_secs = match lookup("TOKEN_CLOCK_SKEW_SECS").filter(|v| !v.trim().is_empty())
        {
            None => DEFAULT_CLOCK_SKEW_SECS,
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| (0..=MAX_CLOCK_SKEW_SECS).contains(s))
                .ok_or_else(|| {
                    CredentialsError(format!(
                        "TOKEN_CLOCK_SKEW_SECS must be a whole number of seconds from 0 to {MAX_CLOCK_SKEW_SECS}"
                    ))
                })?,
        };
        Ok(Self {
            account_sid,
            auth_token,
            api_key_sid,
            api_key_secret,
            clock_skew_secs,
        })
    }

    /// Authenticates from the `Authorization` or `X-Twilio-Token` headers.
    pub fn authenticate(&self, headers: &HeaderMap, now: i64) -> Result<Principal, AuthError> {
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
                        return Err(AuthError::new(
                            AuthFault::Malformed,
                            "Authorization and X-Twilio-Token carry different tokens",
                        ));
                    }
                }
                return self.verify_token(bearer, now);
            }
            return Err(AuthError::new(
                AuthFault::Credentials,
                "Unsupported Authorization scheme (use Basic or Bearer)",
            ));
        }
        match header_token {
            Some(token) => self.verify_token(&token, now),
            None => Err(AuthError::new(
                AuthFault::Credentials,
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
    ) -> Result<Principal, AuthError> {
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
                    return Err(AuthError::new(
                        AuthFault::Credentials,
                        "Send either account credentials or an access token, not both",
                    ))
                }
            },
        };
        for other in [header_token, bearer].into_iter().flatten() {
            if other != field {
                return Err(AuthError::new(
                    AuthFault::Malformed,
                    "The Token field and the token header carry different tokens",
                ));
            }
        }
        self.verify_token(field, now)
    }

    fn basic(&self, encoded: &str) -> Result<Principal, AuthError> {
        let invalid = || AuthError::new(AuthFault::Credentials, "Invalid username or password");
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
    pub fn verify_token(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        let bad = AuthError::new;
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                AuthFault::Malformed,
                "Invalid access token: not a JWT (header.payload.signature)",
            ));
        };

        let header: TokenHeader =
            decode_json(h).ok_or_else(|| bad(AuthFault::Header, "Invalid access token header"))?;
        match header.alg.as_deref() {
            Some("HS256") => {}
            Some(alg) if alg.eq_ignore_ascii_case("none") => {
                return Err(bad(
                    AuthFault::Header,
                    "Unsigned access tokens (alg none) are refused",
                ))
            }
            _ => {
                return Err(bad(
                    AuthFault::Header,
                    "Access token algorithm must be HS256",
                ))
            }
        }
        if header.cty.as_deref() != Some(TOKEN_CONTENT_TYPE) {
            return Err(bad(
                AuthFault::Header,
                "Access token header must have cty twilio-fpa;v=1",
            ));
        }

        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad(AuthFault::Signature, "Invalid access token signature"))?;
        let mut mac = HmacSha256::new_from_slice(self.api_key_secret.as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| bad(AuthFault::Signature, "Invalid access token signature"))?;

        let claims: TokenClaims = decode_json(p)
            .ok_or_else(|| bad(AuthFault::Malformed, "Invalid access token payload"))?;
        if claims.iss.as_deref() != Some(self.api_key_sid.as_str())
            || claims.sub.as_deref() != Some(self.account_sid.as_str())
        {
            return Err(bad(
                AuthFault::Issuer,
                "Invalid access token issuer/subject",
            ));
        }
        let exp = claims
            .exp
            .ok_or_else(|| bad(AuthFault::Expired, "Access token has no expiry (exp)"))?;
        if exp <= now {
            return Err(bad(AuthFault::Expired, "Access token expired"));
        }
        // Our clock may be behind the minter's by the leeway: a token minted "now"
        // there may have its nbf/iat, and its full lifetime, that far ahead of us.
        let skew = self.clock_skew_secs;
        if exp - now > MAX_TOKEN_TTL_SECS + skew {
            return Err(bad(
                AuthFault::Expired,
                "Access token expiry exceeds the maximum of 24 hours",
            ));
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + skew) {
            return Err(bad(AuthFault::NotYetValid, "Access token not yet valid"));
        }
        if claims.iat.is_some_and(|iat| iat > now + skew) {
            return Err(bad(
                AuthFault::NotYetValid,
                "Access token issued in the future (iat)",
            ));
        }
        let grants = claims
            .grants
            .ok_or_else(|| bad(AuthFault::Grants, "Access token has no grants"))?;
        let identity = grants
            .identity
            .as_deref()
            .and_then(|i| Identity::parse(i).ok())
            .ok_or_else(|| {
                bad(
                    AuthFault::Grants,
                    "Access token grants carry no valid identity",
                )
            })?;
        let service = grants
            .chat
            .and_then(|c| c.service_sid)
            .and_then(|s| ServiceSid::parse(&s).ok())
            .ok_or_else(|| {
                bad(
                    AuthFault::Grants,
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
    iat: Option<i64>,
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
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
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

    fn fault(e: AuthError) -> Option<AuthFault> {
        match e {
            AuthError::Unauthenticated { fault, .. } => Some(fault),
            _ => None,
        }
    }

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
        assert_eq!(fault(missing), Some(AuthFault::Credentials));
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
        assert!(matches!(
            expected.require_service(&ServiceSid::generate()),
            Err(AuthError::WrongService(_))
        ));
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
        assert_eq!(fault(err), Some(AuthFault::Malformed));
        let basic = headers(
            "authorization",
            &format!(
                "Basic {}",
                STANDARD.encode(format!("{}:token", c.account_sid))
            ),
        );
        assert_eq!(
            fault(
                c.authenticate_with_form_token(&basic, Some(&alice), NOW)
                    .unwrap_err()
            ),
            Some(AuthFault::Credentials)
        );
        let err = c
            .authenticate_with_form_token(&none, Some("garbage"), NOW)
            .unwrap_err();
        assert_eq!(fault(err), Some(AuthFault::Malformed));
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
            (none_token, AuthFault::Header),
            (
                sign_jwt(
                    &serde_json::json!({"alg": "HS512", "cty": TOKEN_CONTENT_TYPE}),
                    &claims(NOW + 60, NOW),
                    "secret",
                ),
                AuthFault::Header,
            ),
            (
                sign_jwt(
                    &serde_json::json!({"alg": "HS256"}),
                    &claims(NOW + 60, NOW),
                    "secret",
                ),
                AuthFault::Header,
            ),
            (
                sign_jwt(&hs, &claims(NOW + 60, NOW), "wrong"),
                AuthFault::Signature,
            ),
            (
                sign_jwt(&hs, &claims(NOW - 1, NOW - 100), "secret"),
                AuthFault::Expired,
            ),
            (
                sign_jwt(&hs, &claims(NOW + 600, NOW + 61), "secret"),
                AuthFault::NotYetValid,
            ),
            (format!("{good}x"), AuthFault::Signature),
            ("abc".to_string(), AuthFault::Malformed),
        ];
        for (token, expected) in cases {
            let err = c.verify_token(&token, NOW).unwrap_err();
            assert_eq!(fault(err.clone()), Some(expected), "{err}");
        }
        let other_issuer = creds();
        let err = other_issuer.verify_token(&good, NOW).unwrap_err();
        assert!(matches!(
            fault(err),
            Some(AuthFault::Signature | AuthFault::Issuer)
        ));
    }

    /// A token as a minter whose clock reads `minted` makes it: iat = nbf = minted.
    fn minted_at(c: &Credentials, minted: i64, ttl: i64) -> String {
        let claims = serde_json::json!({"iss": c.api_key_sid.as_str(), "sub": c.account_sid.as_str(),
            "iat": minted, "nbf": minted, "exp": minted + ttl,
            "grants": {"identity": "alice", "chat": {"service_sid": ServiceSid::generate().as_str()}}});
        let header = serde_json::json!({"alg": "HS256", "cty": TOKEN_CONTENT_TYPE});
        sign_jwt(&header, &claims, "secret")
    }

    #[test]
    fn a_minter_clock_ahead_by_the_leeway_is_accepted() {
        let c = creds();
        assert_eq!(c.clock_skew_secs, 60);
        for ahead in [1, 30, 60] {
            // Also with the longest lifetime, counted from the minter's clock.
            for ttl in [3600, MAX_TOKEN_TTL_SECS] {
                let token = minted_at(&c, NOW + ahead, ttl);
                assert!(c.verify_token(&token, NOW).is_ok(), "{ahead} s ahead");
            }
        }
        let err = c
            .verify_token(&minted_at(&c, NOW + 61, 3600), NOW)
            .unwrap_err();
        assert_eq!(fault(err), Some(AuthFault::NotYetValid));
    }

    #[test]
    fn iat_in_the_future_beyond_the_leeway_is_refused() {
        let c = creds();
        let claims = |iat: i64| {
            serde_json::json!({"iss": c.api_key_sid.as_str(), "sub": c.account_sid.as_str(),
                "iat": iat, "exp": NOW + 600,
                "grants": {"identity": "alice", "chat": {"service_sid": ServiceSid::generate().as_str()}}})
        };
        let hs = serde_json::json!({"alg": "HS256", "cty": TOKEN_CONTENT_TYPE});
        assert!(c
            .verify_token(&sign_jwt(&hs, &claims(NOW + 60), "secret"), NOW)
            .is_ok());
        let err = c
            .verify_token(&sign_jwt(&hs, &claims(NOW + 61), "secret"), NOW)
            .unwrap_err();
        assert_eq!(fault(err), Some(AuthFault::NotYetValid));
    }

    #[test]
    fn no_leeway_beyond_expiry() {
        let c = creds();
        // Expired one second ago, or expiring right now: refused at once.
        for expired_at in [NOW - 1, NOW] {
            let token = minted_at(&c, expired_at - 3600, 3600);
            let err = c.verify_token(&token, NOW).unwrap_err();
            assert_eq!(fault(err), Some(AuthFault::Expired), "exp {expired_at}");
        }
        assert!(c
            .verify_token(&minted_at(&c, NOW - 3599, 3600), NOW)
            .is_ok());
    }

    #[test]
    fn without_leeway_one_second_ahead_is_too_early() {
        let c = Credentials {
            clock_skew_secs: 0,
            ..creds()
        };
        let err = c
            .verify_token(&minted_at(&c, NOW + 1, 3600), NOW)
            .unwrap_err();
        assert_eq!(fault(err), Some(AuthFault::NotYetValid));
        assert!(c.verify_token(&minted_at(&c, NOW, 3600), NOW).is_ok());
    }

    fn lookup(skew: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |name| {
            match name {
                "CHAT_MEDIA_ACCOUNT_SID" => Some("AC00000000000000000000000000000001"),
                "CHAT_MEDIA_API_KEY_SID" => Some("SK00000000000000000000000000000001"),
                "CHAT_MEDIA_AUTH_TOKEN" | "CHAT_MEDIA_API_KEY_SECRET" => Some("0123456789abcdef"),
                "TOKEN_CLOCK_SKEW_SECS" => skew,
                _ => None,
            }
            .map(str::to_owned)
        }
    }

    #[test]
    fn token_clock_skew_defaults_to_a_minute_and_is_bounded() {
        let skew = |v| Credentials::from_lookup(lookup(v)).map(|c| c.clock_skew_secs);
        assert_eq!(skew(None).unwrap(), 60);
        assert_eq!(skew(Some(" ")).unwrap(), 60);
        assert_eq!(skew(Some("0")).unwrap(), 0);
        assert_eq!(skew(Some("300")).unwrap(), 300);
        for bad in ["301", "-1", "1.5", "soon"] {
            let e = skew(Some(bad)).unwrap_err();
            assert!(e.to_string().contains("TOKEN_CLOCK_SKEW_SECS"), "{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn minted_tokens_verify_to_their_identity_and_service(
            identity in "[A-Za-z0-9@._+ é-]{1,64}", ttl in 1i64..=MAX_TOKEN_TTL_SECS
        ) {
            let creds = creds();
            let service = ServiceSid::generate();
            // Blank identities and reserved ones (`system`) are not minted.
            let Ok(who) = Identity::parse(&identity) else {
                return Ok(());
            };
            let token = creds.mint_token(&service, &who, 1_800_000_000, ttl);
            let verified = creds.verify_token(&token, 1_800_000_000);
            proptest::prop_assert!(
                matches!(&verified, Ok(Principal::User { identity, service: s })
                    if *identity == who && *s == service),
                "{:?}", verified
            );
        }

        #[test]
        fn any_single_byte_change_is_refused(at in proptest::prelude::any::<usize>(), byte in 0u8..=127) {
            let creds = creds();
            let service = ServiceSid::generate();
            let token = creds.mint_token(&service, &Identity::parse("alice").unwrap(), 1_800_000_000, 3600);
            let mut bytes = token.clone().into_bytes();
            let at = at % bytes.len();
            proptest::prop_assume!(bytes[at] != byte);
            bytes[at] = byte;
            let changed = String::from_utf8(bytes).unwrap();
            proptest::prop_assert!(creds.verify_token(&changed, 1_800_000_000).is_err(), "{}", changed);
        }

        #[test]
        fn arbitrary_strings_are_refused_without_panic(s in "\\PC*", parts in "[A-Za-z0-9_-]{0,40}(\\.[A-Za-z0-9_=-]{0,40}){0,3}") {
            proptest::prop_assert!(creds().verify_token(&s, 1_800_000_000).is_err());
            proptest::prop_assert!(creds().verify_token(&parts, 1_800_000_000).is_err());
        }
    }
}
