#!/usr/bin/env python3
"""Warm and cold invocation durations of Lambda functions (run by scripts/bench-peer).

A stand-in for the Lambda Runtime API that, unlike lambda_init.py, hands out events:
each command line (a binary, or e.g. `node bootstrap.mjs`) is started with
AWS_LAMBDA_RUNTIME_API pointing here, and timed from exec to its first
`GET …/invocation/next` (init). Then the same event is handed out INVOCATIONS times
(default 300), and each invocation is timed from the moment the event is given to
the moment the function posts its response: what Lambda bills as the duration.
The first invocation (connections, lazy SDK set-up) is reported apart from the warm
ones. Every answer must be the expected HTTP status, or the run stops. RSS is read
after init and after the last invocation. Each process is ours; it is stopped by PID.

Usage: lambda_invoke.py EVENT.json STATUS 'label=command …' ['label=command …' …]
The first command is the reference of the ratios."""
import http.server
import json
import os
import queue
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time

INVOCATIONS = int(os.environ.get("INVOCATIONS", "300"))
events = queue.Queue()
results = queue.Queue()
first_next = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            return self.reply(404, b"")
        first_next.set()
        request_id, body = events.get()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        done = time.perf_counter()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(202, b"{}")
        results.put((done, self.path.rsplit("/", 1)[-1], body))

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A function stopped by its PID drops its pending /next: expected, not an error.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def invoke(event, want):
    given = time.perf_counter()
    events.put((f"bench-{given}", event))
    done, kind, body = results.get(timeout=30)
    status = json.loads(body).get("statusCode") if kind == "response" else None
    if status != want:
        sys.exit(f"expected status {want}, got {kind}: {body[:500]!r}")
    return (done - given) * 1000


def main():
    event_path, want, commands = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    event = open(event_path, "rb").read()
    server = Server(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        RUST_LOG="warn",
    )
    rows = []
    for spec in commands:
        label, command = spec.split("=", 1)
        first_next.clear()
        started = time.perf_counter()
        proc = subprocess.Popen(shlex.split(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if not first_next.wait(20):
                sys.exit(f"{label} did not ask for an event within 20 s: {proc.stderr.read(2000)!r}")
            init = (time.perf_counter() - started) * 1000
            rss_init = rss_mib(proc.pid)
            first = invoke(event, want)
            warm = sorted(invoke(event, want) for _ in range(INVOCATIONS))
            rss_end = rss_mib(proc.pid)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        p99 = warm[max(0, int(len(warm) * 0.99 + 0.5) - 1)]
        rows.append((label, init, first, statistics.median(warm), p99, rss_init, rss_end))
    ref = rows[0]
    print(f"| function | init ms | first invoke ms | warm p50 ms | warm p99 ms | RSS after init MiB | RSS after {INVOCATIONS} MiB | init × ref | warm p50 × ref |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, init, first, p50, p99, rss_init, rss_end in rows:
        print(f"| {label} | {init:.1f} | {first:.1f} | {p50:.2f} | {p99:.2f} | {rss_init:.1f} | {rss_end:.1f} | {init / ref[1]:.2f} | {p50 / ref[3]:.2f} |")
    for label, _, first, p50, *_ in rows:
        print(f"DURATION {label} first={first:.1f} p50={p50:.2f}")


if __name__ == "__main__":
    main()
