"""twilio-python, unchanged, driving every Chat v2 operation chat-media implements
against the stack the Rust test started. Reads {"base", "account_sid", "auth_token"}
as JSON on stdin; prints one JSON object of what the library returned, which the
Rust test (tests/tests/api/twilio_clients.rs) checks together with what is stored.

Pointing the library at the stack is one line: the Chat domain's `base_url`, the
attribute twilio-python's own Domain reads for every URL it builds (absolute
`next_page_url`s from the server are requested as given).
"""
import json
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client


def error_of(call):
    """The status and Twilio code of a call that must fail."""
    try:
        call()
    except TwilioRestException as e:
        return {"status": e.status, "code": e.code}
    return None


def main():
    req = json.load(sys.stdin)
    client = Client(req["account_sid"], req["auth_token"])
    client.chat.base_url = req["base"]
    chat = client.chat.v2
    out = {}

    # Services: create, fetch, update, list, delete.
    service = chat.services.create(friendly_name="python clients")
    svc = chat.services(service.sid)
    out["service"] = {"sid": service.sid, "friendly_name": service.friendly_name}
    out["service_fetched"] = svc.fetch().friendly_name
    updated = svc.update(
        friendly_name="python clients renamed",
        media_compatibility_message="sent a file",
    )
    out["service_updated"] = {
        "friendly_name": updated.friendly_name,
        "media": updated.media,
    }
    out["service_listed"] = service.sid in [s.sid for s in chat.services.stream()]
    doomed = chat.services.create(friendly_name="python doomed")
    out["service_deleted"] = chat.services(doomed.sid).delete()
    out["service_deleted_fetch"] = error_of(chat.services(doomed.sid).fetch)

    # Roles: create, fetch, update, list, delete.
    role = svc.roles.create(
        friendly_name="python moderators",
        type="channel",
        permission=["sendMessage", "removeMember"],
    )
    out["role_created"] = {"type": role.type, "permissions": role.permissions}
    out["role_fetched"] = svc.roles(role.sid).fetch().friendly_name
    out["role_updated"] = svc.roles(role.sid).update(
        permission=["sendMessage", "sendMediaMessage", "removeMember"]
    ).permissions
    out["roles_listed"] = sorted(r.friendly_name for r in svc.roles.list())
    spare = svc.roles.create(friendly_name="python spare", type="deployment", permission=["createChannel"])
    out["role_deleted"] = svc.roles(spare.sid).delete()

    # Users: create, fetch (by SID and identity), list.
    user = svc.users.create(identity="alice", friendly_name="Alice")
    out["user_created"] = {"sid": user.sid, "identity": user.identity}
    out["user_fetched"] = svc.users("alice").fetch().sid
    out["users_listed"] = [u.identity for u in svc.users.list()]

    # Channels: create, fetch (by SID and unique name), list, delete.
    channel = svc.channels.create(friendly_name="General", unique_name="general")
    out["channel_created"] = {"sid": channel.sid, "unique_name": channel.unique_name}
    out["channel_fetched"] = svc.channels("general").fetch().sid
    extra = svc.channels.create(friendly_name="Extra")
    out["channels_listed"] = sorted(c.friendly_name for c in svc.channels.list())
    out["channel_deleted"] = svc.channels(extra.sid).delete()
    out["channel_deleted_fetch"] = error_of(svc.channels(extra.sid).fetch)
    ch = svc.channels(channel.sid)

    # Members: create, fetch (by SID and identity), list (paged), update, delete.
    members = {}
    for name in ["alice", "bob", "carol", "dave", "erin", "frank", "grace"]:
        members[name] = ch.members.create(identity=name).sid
    out["member_fetched"] = ch.members("bob").fetch().sid == members["bob"]
    out["members_listed"] = sorted(m.identity for m in ch.members.list(page_size=3))
    # Twilio's repeated Identity filter, one member a page.
    out["members_filtered"] = sorted(
        m.identity for m in ch.members.list(identity=["alice", "carol", "nobody"], page_size=1)
    )
    out["member_updated"] = ch.members(members["bob"]).update(role_sid=role.sid).role_sid
    carol = ch.members(members["carol"]).update(
        attributes='{"x":1}', last_consumed_message_index=0
    )
    out["member_fields_updated"] = {
        "attributes": carol.attributes,
        "last_consumed_message_index": carol.last_consumed_message_index,
        "role_sid": carol.role_sid,
    }
    out["member_deleted"] = ch.members(members["grace"]).delete()
    out["member_deleted_fetch"] = error_of(ch.members(members["grace"]).fetch)

    # Messages: create, fetch, list/stream in both orders past page one, delete.
    sent = [
        ch.messages.create(body=f"m{i:02}", from_="alice").sid for i in range(12)
    ]
    first = ch.messages(sent[0]).fetch()
    out["message_fetched"] = {"body": first.body, "from": first._from, "index": first.index}
    out["list_asc"] = [m.body for m in ch.messages.list(page_size=5)]
    out["list_desc"] = [m.body for m in ch.messages.list(order="desc", page_size=5)]
    out["stream_asc"] = [m.body for m in ch.messages.stream(order="asc", page_size=5)]
    out["stream_desc"] = [m.body for m in ch.messages.stream(order="desc", page_size=5)]
    out["stream_limit"] = [m.body for m in ch.messages.stream(limit=7, page_size=5)]
    page = ch.messages.page(page_size=5)
    out["page_two"] = [m.body for m in page.next_page()]
    edited = ch.messages(sent[1]).update(body="m01 edited", attributes='{"e":1}')
    out["message_updated"] = {
        "body": edited.body,
        "attributes": edited.attributes,
        "was_edited": edited.was_edited,
    }
    out["message_deleted"] = ch.messages(sent[11]).delete()
    out["message_deleted_fetch"] = error_of(ch.messages(sent[11]).fetch)
    # Channel update; users: update, their channels, delete.
    renamed = ch.update(friendly_name="General renamed", attributes='{"topic":"news"}')
    out["channel_updated"] = {"friendly_name": renamed.friendly_name, "attributes": renamed.attributes}
    out["user_updated"] = svc.users("alice").update(friendly_name="Alice B").friendly_name
    out["user_channels"] = [c.channel_sid for c in svc.users(user.sid).user_channels.list()]
    zed = svc.users.create(identity="zed")
    out["user_deleted"] = svc.users(zed.sid).delete()
    out["user_deleted_fetch"] = error_of(svc.users(zed.sid).fetch)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
