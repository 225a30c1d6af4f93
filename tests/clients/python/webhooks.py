"""twilio-python, unchanged, setting a Chat service's webhooks. Reads
{"base", "account_sid", "auth_token", "service_sid", "pre", "post", "filters"}
as JSON on stdin; prints what the library returned after the update and a fetch.
"""
import json
import sys

from twilio.rest import Client


def main():
    req = json.load(sys.stdin)
    client = Client(req["account_sid"], req["auth_token"])
    client.chat.base_url = req["base"]
    svc = client.chat.v2.services(req["service_sid"])
    updated = svc.update(
        pre_webhook_url=req["pre"],
        post_webhook_url=req["post"],
        webhook_method="POST",
        webhook_filters=req["filters"],
        pre_webhook_retry_count=1,
        post_webhook_retry_count=2,
    )
    fetched = svc.fetch()
    out = {}
    for name, s in (("updated", updated), ("fetched", fetched)):
        out[name] = {
            "pre_webhook_url": s.pre_webhook_url,
            "post_webhook_url": s.post_webhook_url,
            "webhook_method": s.webhook_method,
            "webhook_filters": s.webhook_filters,
            "pre_webhook_retry_count": s.pre_webhook_retry_count,
            "post_webhook_retry_count": s.post_webhook_retry_count,
        }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
