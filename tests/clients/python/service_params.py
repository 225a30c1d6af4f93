"""twilio-python, unchanged: every Chat v2 Service parameter of Twilio's spec set
with `services(sid).update(...)` and read back, then `Limits.ChannelMembers` and
`Limits.UserChannels` refused with Twilio's codes. Reads {"base", "account_sid",
"auth_token"} as JSON on stdin; prints what the library returned as JSON
(tests/tests/api/service_params.rs checks it).
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
    service = chat.services.create(friendly_name="python service params")
    svc = chat.services(service.sid)
    out = {"sid": service.sid, "created": {"limits": service.limits,
                                           "read_status_enabled": service.read_status_enabled}}
    svc.update(
        read_status_enabled=False,
        reachability_enabled=True,
        typing_indicator_timeout=9,
        consumption_report_interval=20,
        notifications_new_message_enabled=True,
        notifications_new_message_template="${USER}: ${MESSAGE}",
        notifications_new_message_sound="ding.wav",
        notifications_new_message_badge_count_enabled=True,
        notifications_added_to_channel_enabled=True,
        notifications_added_to_channel_template="Added to ${CHANNEL}",
        notifications_added_to_channel_sound="added.wav",
        notifications_removed_from_channel_enabled=True,
        notifications_removed_from_channel_template="Removed from ${CHANNEL}",
        notifications_removed_from_channel_sound="removed.wav",
        notifications_invited_to_channel_enabled=True,
        notifications_invited_to_channel_template="Invited to ${CHANNEL}",
        notifications_invited_to_channel_sound="invited.wav",
        notifications_log_enabled=True,
        limits_channel_members=2,
        limits_user_channels=2,
    )
    fetched = svc.fetch()
    out["fetched"] = {
        "read_status_enabled": fetched.read_status_enabled,
        "reachability_enabled": fetched.reachability_enabled,
        "typing_indicator_timeout": fetched.typing_indicator_timeout,
        "consumption_report_interval": fetched.consumption_report_interval,
        "notifications": fetched.notifications,
        "limits": fetched.limits,
    }
    out["bad_limit"] = error_of(lambda: svc.update(limits_channel_members=1001))
    out["bad_user_limit"] = error_of(lambda: svc.update(limits_user_channels=0))
    # Two members fill a channel; a third is refused.
    general = svc.channels.create(friendly_name="general")
    for identity in ["alice", "bob"]:
        svc.channels(general.sid).members.create(identity=identity)
    out["third_member"] = error_of(
        lambda: svc.channels(general.sid).members.create(identity="carol"))
    # Alice in two channels; a third is refused.
    second = svc.channels.create(friendly_name="second")
    svc.channels(second.sid).members.create(identity="alice")
    third = svc.channels.create(friendly_name="third")
    out["third_channel"] = error_of(
        lambda: svc.channels(third.sid).members.create(identity="alice"))
    # Leaving a channel frees the slot.
    svc.channels(second.sid).members("alice").delete()
    out["after_leaving"] = svc.channels(third.sid).members.create(identity="alice").identity
    out["third_sid"] = third.sid
    print(json.dumps(out))


if __name__ == "__main__":
    main()
