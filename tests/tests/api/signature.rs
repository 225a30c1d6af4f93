//! `chat_media::signature` agrees with Twilio's own `RequestValidator`
//! (twilio-python), both ways: what we sign, Twilio's code accepts; what
//! Twilio's code signs, we accept; and neither accepts a changed request.

use chat_media::signature::{sign, verify};
use chat_media_tests::twilio_python;
use serde_json::json;

const TOKEN: &str = "test-auth-token-0001";

fn cases() -> Vec<(&'static str, Vec<(String, String)>)> {
    let p = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    vec![
        ("https://hooks.example.com/chat", p(&[])),
        (
            "https://hooks.example.com/chat?x=1&y=%20z",
            p(&[
                ("EventType", "onMessageSend"),
                ("Body", "héllo & <b>ünïcode</b> 👋"),
                ("Attributes", "{\"a\":[1,2]}"),
                ("ChannelSid", "CH00000000000000000000000000000001"),
            ]),
        ),
        (
            "https://hooks.example.com:8443/chat",
            p(&[
                ("WebhookFilters", "onMessageSend"),
                ("WebhookFilters", "onMemberAdd"),
                ("A", ""),
            ]),
        ),
        (
            "http://127.0.0.1:9999/v2/Services/IS1/InboundMessages",
            p(&[
                ("NumMedia", "2"),
                ("MediaUrl0", "https://api.twilio.com/x?a=b"),
                ("From", "whatsapp:+14155550100"),
            ]),
        ),
    ]
}

fn wire(params: &[(String, String)]) -> serde_json::Value {
    json!(params.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>())
}

#[test]
fn twilio_python_accepts_our_signatures() {
    for (url, params) in cases() {
        let ours = sign(TOKEN, url, &params);
        let answer = twilio_python(
            "validate.py",
            &json!({"op": "validate", "token": TOKEN, "url": url, "params": wire(&params), "signature": ours}),
        );
        assert_eq!(
            answer["valid"], true,
            "twilio-python refused our signature of {url}"
        );
        let tampered = twilio_python(
            "validate.py",
            &json!({"op": "validate", "token": "another-token", "url": url, "params": wire(&params), "signature": ours}),
        );
        assert_eq!(tampered["valid"], false);
    }
}

#[test]
fn we_accept_twilio_pythons_signatures_and_nothing_else() {
    for (url, mut params) in cases() {
        let theirs = twilio_python(
            "validate.py",
            &json!({"op": "sign", "token": TOKEN, "url": url, "params": wire(&params)}),
        )["signature"]
            .as_str()
            .expect("a signature")
            .to_owned();
        assert!(
            verify(TOKEN, url, &params, &theirs),
            "we refused Twilio's signature of {url}"
        );
        assert!(!verify(
            TOKEN,
            &format!("{url}&tampered=1"),
            &params,
            &theirs
        ));
        params.push(("Extra".into(), "1".into()));
        assert!(
            !verify(TOKEN, url, &params, &theirs),
            "an added parameter went unnoticed"
        );
    }
}
