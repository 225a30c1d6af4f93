#!/usr/bin/env python3
"""Writes events/<function>/<case>-<status>.json: HTTP API (payload v2) events as API
Gateway delivers them (form bodies base64-encoded), one per route and case, for
`cargo lambda invoke <fn> --data-file ...` and `sam local invoke -e ...`.

SIDs are fixed placeholders (IS...01, CH...01, ...) that `chat-media-local fixture`
creates; the admin credentials come from scripts/local.env, and user tokens are minted
by the local runner (`target/debug/chat-media-local token`, so build it first:
`cargo build -p chat-media-local`) with the same credentials. Tokens live 24 h: run
this again to refresh them. scripts/invoke-events (run by scripts/test) invokes every
file against the fixture, re-minting tokens, and checks the status in its name.
"""
import base64
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "target", "debug", "chat-media-local")


def local_env():
    """scripts/local.env's KEY=value lines."""
    with open(os.path.join(ROOT, "scripts", "local.env")) as f:
        lines = [l.strip() for l in f]
    return dict(l.split("=", 1) for l in lines if l and not l.startswith("#"))


LOCAL = local_env()
ACCOUNT = LOCAL["CHAT_MEDIA_ACCOUNT_SID"]
AUTH_TOKEN = LOCAL["CHAT_MEDIA_AUTH_TOKEN"]


def sid(prefix, n):
    return f"{prefix}{n:032x}"


SERVICE = sid("IS", 1)
CHANNEL = sid("CH", 1)
MEDIA = sid("ME", 1)
UNKNOWN_MEDIA = sid("ME", 0x99)
OWN_MESSAGE = sid("IM", 1)
OTHERS_MESSAGE = sid("IM", 2)
UNKNOWN_MESSAGE = sid("IM", 0x99)
ALICE_MEMBER = sid("MB", 1)
BOB_MEMBER = sid("MB", 2)
AGENT_MEMBER = sid("MB", 3)
CHANNEL_ADMIN_ROLE = sid("RL", 1)
OTHER_SERVICE_ROLE = sid("RL", 2)


def token(identity, service=SERVICE, ttl=24 * 3600 - 60):
    """A user access token from the local runner, with scripts/local.env's API key."""
    env = {k: v for k, v in os.environ.items() if k not in LOCAL}
    minted = subprocess.run([RUNNER, "token", service, identity, str(ttl)],
                            capture_output=True, text=True, env=env)
    if minted.returncode != 0:
        sys.exit(f"chat-media-local token failed (cargo build -p chat-media-local?): {minted.stderr}")
    return minted.stdout.strip()


BASIC = "Basic " + base64.b64encode(f"{ACCOUNT}:{AUTH_TOKEN}".encode()).decode()


def event(method, route, params, auth=None, form=None, headers=None, raw=None, query=""):
    """An HTTP API v2 event for `route` (with {Name} placeholders) and `params`."""
    path = route
    for k, v in params.items():
        path = path.replace("{" + k + "}", v)
    h = {
        "accept": "application/json",
        "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "user-agent": "twilio-node/5.0",
        "x-amzn-trace-id": "Root=1-65f00000-0123456789abcdef01234567",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if auth == "admin":
        h["authorization"] = BASIC
    elif auth is not None:
        h["x-twilio-token"] = token(auth)
    body = None
    if form is not None:
        raw = "&".join(f"{k}={v}" for k, v in form).encode()
        h["content-type"] = "application/x-www-form-urlencoded"
    if raw is not None:
        body = base64.b64encode(raw).decode()
        h["content-length"] = str(len(raw))
    h.update(headers or {})
    ev = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": h["user-agent"],
            },
            "requestId": "Ab1Cd2Ef3Gh4Ij=",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "12/Mar/2024:10:00:00 +0000",
            "timeEpoch": 1710237600000,
        },
        "isBase64Encoded": body is not None,
    }
    if query:
        ev["queryStringParameters"] = dict(p.split("=", 1) for p in query.split("&"))
    if params:
        ev["pathParameters"] = params
    if body is not None:
        ev["body"] = body
    return ev


# Routes as template.yaml names them (HTTP API path parameters).
SERVICES = "/v2/Services"
SERVICE_ROUTE = SERVICES + "/{service}"
ROLES = SERVICE_ROUTE + "/Roles"
CHANNELS = SERVICE_ROUTE + "/Channels"
CHANNEL_ROUTE = CHANNELS + "/{channel}"
MEMBERS = CHANNEL_ROUTE + "/Members"
USERS = SERVICE_ROUTE + "/Users"
MESSAGES = CHANNEL_ROUTE + "/Messages"
MESSAGE = MESSAGES + "/{message}"
MEDIA_ROUTE = "/v1/Services/{service}/Media/{media}"
CONTENT = MEDIA_ROUTE + "/Content"
THUMBNAIL = MEDIA_ROUTE + "/Thumbnail"
MEMBER = MEMBERS + "/{member}"
SV = {"service": SERVICE}
UPLOADS = "/v1/Services/{service}/Media"
SESSIONS = "/v1/Services/{service}/MediaUploads"
COMPLETE = MEDIA_ROUTE + "/Complete"
PENDING_UPLOAD = sid("ME", 2)
# A 1x1 PNG, as a phone would upload it.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000b4944415478da63f80f040009fb03fd68fa1ccc0000000049454e44ae426082"
)
BOUNDARY = "----chatmediaFormBoundary7MA4YWxkTrZu0gW"
FORM_DATA = (
    f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"dot.png\"\r\n"
    f"Content-Type: image/png\r\n\r\n"
).encode() + PNG + f"\r\n--{BOUNDARY}--\r\n".encode()
EXE = b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode"
CH = {"service": SERVICE, "channel": CHANNEL}
PLUGIN_HEADERS = {
    "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
    "origin": "https://flex.twilio.com",
    "referer": "https://flex.twilio.com/",
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0",
}

EVENTS = {
    "upload-media": {
        "direct-raw-201": event("POST", UPLOADS, SV, "alice", headers={"content-type": "image/png", "content-disposition": "attachment; filename=\"dot.png\""}, raw=PNG),
        "direct-raw-filename-query-201": event("POST", UPLOADS, SV, "admin", headers={"content-type": "image/png"}, raw=PNG, query="Filename=dot.png"),
        "direct-form-data-201": event("POST", UPLOADS, SV, "alice", headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}, raw=FORM_DATA),
        "disguised-executable-415": event("POST", UPLOADS, SV, "alice", headers={"content-type": "image/png", "content-disposition": "attachment; filename=\"cat.png\""}, raw=EXE),
        "no-credentials-401": event("POST", UPLOADS, SV, None, headers={"content-type": "image/png"}, raw=PNG),
        "create-session-single-201": event("POST", SESSIONS, SV, "alice", [("Size", "5242880"), ("ContentType", "video/mp4"), ("Filename", "clip.mp4")]),
        "create-session-multipart-201": event("POST", SESSIONS, SV, "alice", [("Size", "104857600"), ("ContentType", "video/mp4"), ("Filename", "talk.mp4")]),
        "create-session-too-large-413": event("POST", SESSIONS, SV, "alice", [("Size", "157286401"), ("ContentType", "video/mp4")]),
        "complete-single-200": event("POST", COMPLETE, {"service": SERVICE, "media": PENDING_UPLOAD}, "alice", []),
    },
    "chat-api": {
        "create-service-201": event("POST", SERVICES, {}, "admin", [("FriendlyName", "Demo")]),
        "list-services-200": event("GET", SERVICES, {}, "admin"),
        "list-services-unauthenticated-401": event("GET", SERVICES, {}, None),
        "fetch-service-200": event("GET", SERVICE_ROUTE, SV, "admin"),
        "fetch-service-malformed-sid-400": event("GET", SERVICE_ROUTE, {"service": "IS123"}, "admin"),
        "update-service-media-200": event("POST", SERVICE_ROUTE, SV, "admin", [("Media.CompatibilityMessage", "Sent%20a%20file"), ("Media.SizeLimitMb", "100")]),
        "update-service-size-limit-400": event("POST", SERVICE_ROUTE, SV, "admin", [("Media.SizeLimitMb", "151")]),
        "list-roles-200": event("GET", ROLES, SV, "admin"),
        "create-role-201": event("POST", ROLES, SV, "admin", [("FriendlyName", "moderator"), ("Type", "channel"), ("Permission", "sendMessage"), ("Permission", "removeMember")]),
        "create-channel-201": event("POST", CHANNELS, SV, "admin", [("UniqueName", "support"), ("FriendlyName", "Support")]),
        "create-channel-duplicate-name-409": event("POST", CHANNELS, SV, "admin", [("UniqueName", "general")]),
        "list-channels-200": event("GET", CHANNELS, SV, "admin"),
        "fetch-channel-by-name-as-member-200": event("GET", CHANNEL_ROUTE, {"service": SERVICE, "channel": "general"}, "alice"),
        "fetch-channel-as-non-member-403": event("GET", CHANNEL_ROUTE, CH, "mallory"),
        "add-member-201": event("POST", MEMBERS, CH, "admin", [("Identity", "carol")]),
        "add-member-twice-409": event("POST", MEMBERS, CH, "admin", [("Identity", "alice")]),
        "fetch-member-200": event("GET", MEMBER, {**CH, "member": "alice"}, "admin"),
        "list-messages-as-member-200": event("GET", MESSAGES, CH, "alice"),
        "create-user-201": event("POST", USERS, SV, "admin", [("Identity", "carol")]),
        "admin-only-as-user-403": event("GET", ROLES, SV, "alice"),
    },
    "create-message": {
        "text-201": event("POST", MESSAGES, CH, "alice", [("Body", "Hello%20from%20alice"), ("Attributes", "%7B%22k%22%3A1%7D")]),
        "media-201": event("POST", MESSAGES, CH, "alice", [("MediaSid", MEDIA)]),
        "admin-as-bot-201": event("POST", MESSAGES, CH, "admin", [("From", "bot"), ("Body", "Welcome")]),
        "attributes-not-json-400": event("POST", MESSAGES, CH, "alice", [("Body", "x"), ("Attributes", "%7Bnot")]),
        "body-too-long-400": event("POST", MESSAGES, CH, "alice", [("Body", "x" * (32 * 1024 + 1))]),
        "not-a-member-403": event("POST", MESSAGES, CH, "mallory", [("Body", "hi")]),
        "from-someone-else-403": event("POST", MESSAGES, CH, "alice", [("From", "bob"), ("Body", "hi")]),
        "no-credentials-401": event("POST", MESSAGES, CH, None, [("Body", "hi")]),
    },
    "get-media": {
        "fetch-200": event("GET", MEDIA_ROUTE, {"service": SERVICE, "media": MEDIA}, "alice"),
        "content-302": event("GET", CONTENT, {"service": SERVICE, "media": MEDIA}, "alice"),
        "admin-fetch-200": event("GET", MEDIA_ROUTE, {"service": SERVICE, "media": MEDIA}, "admin"),
        "another-users-upload-403": event("GET", MEDIA_ROUTE, {"service": SERVICE, "media": MEDIA}, "bob"),
        "unknown-404": event("GET", MEDIA_ROUTE, {"service": SERVICE, "media": UNKNOWN_MEDIA}, "alice"),
    },
    "get-thumbnail": {
        "scale-302": event("GET", THUMBNAIL, {"service": SERVICE, "media": MEDIA}, "alice", query="Width=96&Height=96"),
        "admin-crop-302": event("GET", THUMBNAIL, {"service": SERVICE, "media": MEDIA}, "admin", query="Width=320&Height=200&Method=crop"),
        "another-users-upload-403": event("GET", THUMBNAIL, {"service": SERVICE, "media": MEDIA}, "bob", query="Width=96&Height=96"),
        "width-zero-400": event("GET", THUMBNAIL, {"service": SERVICE, "media": MEDIA}, "alice", query="Width=0&Height=96"),
        "unknown-404": event("GET", THUMBNAIL, {"service": SERVICE, "media": UNKNOWN_MEDIA}, "alice", query="Width=96&Height=96"),
    },
    "update-member": {
        "role-update-200": event("POST", MEMBER, {**CH, "member": ALICE_MEMBER}, "admin", [("RoleSid", CHANNEL_ADMIN_ROLE)]),
        "role-of-another-service-400": event("POST", MEMBER, {**CH, "member": ALICE_MEMBER}, "admin", [("RoleSid", OTHER_SERVICE_ROLE)]),
        "own-role-403": event("POST", MEMBER, {**CH, "member": AGENT_MEMBER}, "agent", [("RoleSid", CHANNEL_ADMIN_ROLE)]),
        # The Flex plugin's request: a form with the token in it, no auth headers.
        "plugin-block-user-200": event(
            "POST", "/block-user", {}, None,
            [("chatChannelSid", CHANNEL), ("memberSid", ALICE_MEMBER), ("Token", token("agent"))],
            PLUGIN_HEADERS,
        ),
        "plugin-unblock-user-200": event(
            "POST", "/unblock-user", {}, None,
            [("chatChannelSid", CHANNEL), ("memberSid", ALICE_MEMBER), ("Token", token("agent"))],
            PLUGIN_HEADERS,
        ),
        "plugin-block-without-removemember-403": event(
            "POST", "/block-user", {}, None,
            [("chatChannelSid", CHANNEL), ("memberSid", ALICE_MEMBER), ("Token", token("bob"))],
            PLUGIN_HEADERS,
        ),
        "plugin-unknown-channel-404": event(
            "POST", "/block-user", {}, None,
            [("chatChannelSid", sid("CH", 0x99)), ("memberSid", ALICE_MEMBER), ("Token", token("agent"))],
            PLUGIN_HEADERS,
        ),
    },
    "delete-message": {
        "own-204": event("DELETE", MESSAGE, {**CH, "message": OWN_MESSAGE}, "alice"),
        "admin-204": event("DELETE", MESSAGE, {**CH, "message": OTHERS_MESSAGE}, "admin"),
        "someone-elses-403": event("DELETE", MESSAGE, {**CH, "message": OTHERS_MESSAGE}, "alice"),
        "unknown-404": event("DELETE", MESSAGE, {**CH, "message": UNKNOWN_MESSAGE}, "admin"),
    },
}


def s3_object_created(key, size):
    """What S3 sends media-events when an object appears (one record)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T18:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:upload"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "media-object-created",
               "bucket": {"name": "chat-media", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::chat-media"},
               "object": {"key": key, "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}},
    }]}


EVENTS["media-events"] = {
    # Not HTTP: the invoke check only requires a JSON answer.
    "s3-object-created": s3_object_created(f"services/{SERVICE}/media/{PENDING_UPLOAD}", len(PNG)),
    "scheduled-sweep": {
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-22T18:00:00Z",
        "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/chat-media-sweep"],
        "detail": {},
    },
}


def main():
    only = set(sys.argv[1:])
    for function, cases in EVENTS.items():
        if only and function not in only:
            continue
        folder = os.path.join(ROOT, "events", function)
        os.makedirs(folder, exist_ok=True)
        for stale in os.listdir(folder):
            if stale.endswith(".json") and stale[:-5] not in cases:
                os.remove(os.path.join(folder, stale))
        for name, ev in cases.items():
            with open(os.path.join(folder, f"{name}.json"), "w") as f:
                json.dump(ev, f, indent=2)
                f.write("\n")
        print(f"events/{function}: {len(cases)} events", file=sys.stderr)


if __name__ == "__main__":
    main()
