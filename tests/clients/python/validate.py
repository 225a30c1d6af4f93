"""Twilio's own RequestValidator, for the Rust tests: reads a JSON request on
stdin and prints one JSON answer.

  {"op": "validate", "token", "url", "params": [[k, v], ...], "signature"} -> {"valid": bool}
  {"op": "sign", "token", "url", "params": [[k, v], ...]}                 -> {"signature": str}
"""
import json
import sys

from twilio.request_validator import RequestValidator


def multidict(pairs):
    # twilio-python accepts a dict of lists (or a Django/Werkzeug MultiDict) for
    # repeated parameters; a plain dict of lists goes through its get_values().
    out = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return {k: v if len(v) > 1 else v[0] for k, v in out.items()}


def main():
    req = json.load(sys.stdin)
    validator = RequestValidator(req["token"])
    params = multidict(req.get("params", []))
    if req["op"] == "validate":
        print(json.dumps({"valid": validator.validate(req["url"], params, req["signature"])}))
    elif req["op"] == "sign":
        print(json.dumps({"signature": validator.compute_signature(req["url"], params)}))
    else:
        sys.exit(f"unknown op {req['op']}")


if __name__ == "__main__":
    main()
