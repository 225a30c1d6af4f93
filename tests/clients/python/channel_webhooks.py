"""twilio-python, unchanged, driving a channel's webhooks (create, fetch, list,
update, delete) and the sixth create's error. Reads {"base", "account_sid",
"auth_token", "service_sid", "channel_sid", "url"} as JSON on stdin; prints what
the library returned.
"""
import json
import sys

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client


def view(w):
    return {
        "sid": w.sid,
        "account_sid": w.account_sid,
        "service_sid": w.service_sid,
        "channel_sid": w.channel_sid,
        "type": w.type,
        "url": w.url,
        "configuration": w.configuration,
        "date_created": w.date_created.isoformat() if w.date_created else None,
    }


def main():
    req = json.load(sys.stdin)
    client = Client(req["account_sid"], req["auth_token"])
    client.chat.base_url = req["base"]
    hooks = client.chat.v2.services(req["service_sid"]).channels(req["channel_sid"]).webhooks
    out = {}
    hook = hooks.create(
        type="webhook",
        configuration_url=req["url"],
        configuration_method="POST",
        configuration_filters=["onMessageSent", "onMemberAdded"],
        configuration_retry_count=1,
    )
    out["created"] = view(hook)
    trigger = hooks.create(
        type="trigger",
        configuration_url=req["url"],
        configuration_triggers=["help", "urgent"],
    )
    out["trigger"] = view(trigger)
    studio = hooks.create(type="studio", configuration_flow_sid="FW" + "0" * 32)
    out["studio"] = view(studio)
    out["fetched"] = view(hooks(hook.sid).fetch())
    out["listed"] = [w.sid for w in hooks.list()]
    out["paged"] = [w.sid for w in hooks.stream(page_size=2)]
    out["updated"] = view(
        hooks(hook.sid).update(configuration_filters=["onMessageSent"], configuration_method="GET")
    )
    out["deleted"] = hooks(studio.sid).delete()
    for i in range(3):
        hooks.create(type="trigger", configuration_url=req["url"], configuration_triggers=[f"k{i}"])
    try:
        hooks.create(type="trigger", configuration_url=req["url"], configuration_triggers=["six"])
        out["sixth"] = None
    except TwilioRestException as e:
        out["sixth"] = {"status": e.status, "code": e.code}
    out["final"] = [w.sid for w in hooks.list()]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
