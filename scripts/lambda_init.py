#!/usr/bin/env python3
"""Init time and RSS after init of Lambda binaries (run by scripts/bench-lambda).

A stand-in for the Lambda Runtime API: each binary is started with
AWS_LAMBDA_RUNTIME_API pointing here; its init is over when it asks for its first
event (GET /2018-06-01/runtime/invocation/next). That moment is timed from exec and
the process's VmRSS read from /proc; no event is ever given, and the process (ours)
is then stopped by its PID. The first binary is the reference (the hello-world)."""
import http.server
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

STARTS = int(os.environ.get("BENCH_STARTS", "7"))
ready = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            ready.set()
            # Never answer: the function waits here, as between invocations.
            time.sleep(30)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The credentials and names come from scripts/local.env (bench-lambda exports it).
    env = dict(
        os.environ,
        AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
        AWS_LAMBDA_LOG_GROUP_NAME="bench",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        RUST_LOG="warn",
    )
    env.pop("CHAT_MEDIA_SECRET_ARN", None)
    rows = []
    for binary in sys.argv[1:]:
        inits, rsss = [], []
        for _ in range(STARTS):
            ready.clear()
            t = time.perf_counter()
            proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if not ready.wait(10):
                proc.kill()
                err = proc.stderr.read().decode(errors="replace")[-500:]
                sys.exit(f"{binary} did not ask for an event within 10 s: {err}")
            inits.append((time.perf_counter() - t) * 1000)
            rsss.append(rss_kib(proc.pid) / 1024)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        rows.append((os.path.basename(binary), statistics.median(inits), min(inits), statistics.median(rsss)))
    ref_init, ref_rss = rows[0][1], rows[0][3]
    print(f"{'binary':<16} {'init p50 ms':>11} {'min ms':>7} {'x hello':>8} {'RSS MiB':>8} {'x hello':>8}   ({STARTS} starts each)")
    for name, init, fastest, rss in rows:
        print(f"{name:<16} {init:>11.1f} {fastest:>7.1f} {init / ref_init:>8.2f} {rss:>8.1f} {rss / ref_rss:>8.2f}")
    worst_init = max(r[1] / ref_init for r in rows[1:])
    worst_rss = max(r[3] for r in rows[1:])
    print(f"GOAL init <= 1.3x hello-world: worst {worst_init:.2f}x; RSS after init <= 16 MiB: worst {worst_rss:.1f} MiB")


if __name__ == "__main__":
    main()
