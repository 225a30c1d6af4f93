"""Twilio's own RequestValidator, for the Rust tests: reads a JSON request on
stdin and prints one JSON answer.

  {"op": "validate", "token", "url", "params": [[k, v], ...], "signature"} -> {"valid": bool}
  {"op": "sign", "token", "url", "params": [[k, v], ...]}                 -> {"signature": str}
  {"op": "validate_many", "token", "requests": [{"url", "params", "signature"}, ...]}
                                                                        -> {"valid": [bool, ...]}
"""
import json
import sys

from twilio.request_validator import RequestValidator


class MultiDict(dict):
    """Repeated form parameters as a web framework hands them to twilio-python:
    its get_values() calls getall() (Flask/Werkzeug's MultiDict API)."""

    def getall(self, name):
        return self[name]


def multidict(pairs):
    out = MultiDict()
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return out


def main():
    req = json.load(sys.stdin)
    validator = RequestValidator(req["token"])
    params = multidict(req.get("params", []))
    if req["op"] == "validate":
        print(json.dumps({"valid": validator.validate(req["url"], params, req["signature"])}))
    elif req["op"] == "validate_many":
        print(json.dumps({"valid": [
            bool(r.get("signature")) and validator.validate(r["url"], multidict(r["params"]), r["signature"])
            for r in req["requests"]
        ]}))
    elif req["op"] == "sign":
        print(json.dumps({"signature": validator.compute_signature(req["url"], params)}))
    else:
        sys.exit(f"unknown op {req['op']}")


if __name__ == "__main__":
    main()
