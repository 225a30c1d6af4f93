//! Twilio's request signature (`X-Twilio-Signature`), both ways: we sign the
//! webhooks we send and check the ones Twilio sends us, so the algorithm lives
//! once, here, and must agree with Twilio's own `RequestValidator`.
//!
//! The signed text is the full URL, then for each parameter name in byte order
//! the name followed by each of its values in byte order (twilio-python sorts
//! the distinct values of a repeated name; so do we). The signature is
//! base64(HMAC-SHA1(auth token, text)).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The header Twilio puts its signature in.
pub const HEADER: &str = "X-Twilio-Signature";

/// The signature of a request to `url` carrying the form `params`
/// (empty for a GET, whose parameters are already in `url`).
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    for (name, value) in signed_pairs(params) {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `signature` is Twilio's for this request. Like Twilio's validators,
/// the URL is also tried with its default port added and removed, because
/// proxies disagree on whether `:443` is part of the URL Twilio signed.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    url_variants(url).iter().any(|candidate| {
        let expected = sign(auth_token, candidate, params);
        expected
            .as_bytes()
            .ct_eq(signature.trim().as_bytes())
            .into()
    })
}

fn signed_pairs(params: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// `url` as given, without its default port, and with it.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // Userinfo would hide a port behind '@'; Twilio's URLs carry credentials
    // there only for Basic-auth webhooks, and the signature covers them as given.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    let bare_host = match host_port.rsplit_once(':') {
        Some((h, port)) if !h.ends_with(']') || host_port.starts_with('[') => {
            if port == default_port {
                Some(h)
            } else if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() {
                return out; // a non-default port is part of the URL, never dropped
            } else {
                None
            }
        }
        _ => None,
    };
    match bare_host {
        Some(h) => out.push(format!("{scheme}://{userinfo}{h}{tail}")),
        None => out.push(format!(
            "{scheme}://{userinfo}{host_port}:{default_port}{tail}"
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// The request of Twilio's security documentation ("Validating requests"),
    /// signed with token `12345`; the expected value was computed with Python's
    /// `hmac` following twilio-python's `compute_signature`. The integration
    /// tests check our signatures with twilio-python's `RequestValidator` itself.
    #[test]
    fn matches_twilio_pythons_algorithm() {
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = sign("12345", url, &params);
        assert_eq!(sig, "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert!(verify("12345", url, &params, &sig));
        assert!(!verify("12346", url, &params, &sig));
    }

    #[test]
    fn order_of_parameters_does_not_matter_but_values_do() {
        let a = pairs(&[("B", "2"), ("A", "1"), ("A", "0")]);
        let b = pairs(&[("A", "0"), ("A", "1"), ("B", "2")]);
        let url = "https://example.com/hook";
        assert_eq!(sign("t", url, &a), sign("t", url, &b));
        let c = pairs(&[("A", "0"), ("A", "1"), ("B", "3")]);
        assert_ne!(sign("t", url, &a), sign("t", url, &c));
    }

    #[test]
    fn default_port_is_tried_both_ways_and_others_never_dropped() {
        let p = pairs(&[("X", "1")]);
        let signed_with_port = sign("t", "https://example.com:443/hook?a=1", &p);
        assert!(verify(
            "t",
            "https://example.com/hook?a=1",
            &p,
            &signed_with_port
        ));
        let signed_without = sign("t", "https://example.com/hook", &p);
        assert!(verify(
            "t",
            "https://example.com:443/hook",
            &p,
            &signed_without
        ));
        let on_8443 = sign("t", "https://example.com:8443/hook", &p);
        assert!(!verify("t", "https://example.com/hook", &p, &on_8443));
        assert!(verify("t", "https://example.com:8443/hook", &p, &on_8443));
    }
}
