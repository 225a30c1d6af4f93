# Helpers shared by scripts/dev and scripts/test. Everything binds to 127.0.0.1
# and is stopped by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv/ministack"
# The template checkers pin their own botocore, so they live apart from ministack.
TOOLS_VENV="$ROOT/.venv/tools"
MINISTACK_VERSION="1.5.33"
CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"
CARGO_LAMBDA_VERSION="1.9.2"
LAMBDA_VENV="$ROOT/.venv/lambda"
# Twilio's own Python library (and what it pins), for the tests that use Twilio's code.
TWILIO_VENV="$ROOT/.venv/twilio"
TWILIO_LOCK="$ROOT/tests/clients/python/requirements.lock"
# Twilio's own Node libraries (twilio-node, the MCS clients, twilio-run), exactly as
# tests/clients/node/package-lock.json pins them.
NODE_CLIENTS="$ROOT/tests/clients/node"
PIDS=()
export SAM_CLI_TELEMETRY=0
# The local stack's credentials and names (KEY=value lines): the one copy of them.
# chat-media-local embeds the same file as its defaults.
LOCAL_ENV="$ROOT/scripts/local.env"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A virtualenv at $1 holding exactly the pinned packages that follow.
ensure_pip() {
  local venv="$1"; shift
  [ -x "$venv/bin/python" ] || { log "creating $venv"; python3 -m venv "$venv"; }
  local want missing=()
  for want in "$@"; do
    [ "$("$venv/bin/pip" show "${want%%==*}" 2>/dev/null | sed -n "s/^Version: //p")" = "${want##*==}" ] || missing+=("$want")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}"
  fi
}

# ministack (DynamoDB) in the project virtualenv.
ensure_venv() { ensure_pip "$VENV" "ministack==$MINISTACK_VERSION"; }

# cfn-lint and the SAM CLI, for template checks.
ensure_tools() { ensure_pip "$TOOLS_VENV" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION"; }

# cargo-lambda (brings zig) for the Lambda runtime emulator and arm64 builds.
ensure_cargo_lambda() { ensure_pip "$LAMBDA_VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION"; }

# twilio-python exactly as locked in tests/clients/python/requirements.lock; the
# lock's hash is kept in the venv so a changed lock reinstalls.
ensure_twilio_python() {
  local stamp="$TWILIO_VENV/.lock-sha256" want
  want="$(sha256sum "$TWILIO_LOCK" | cut -d' ' -f1)"
  [ -x "$TWILIO_VENV/bin/python" ] || { log "creating $TWILIO_VENV"; python3 -m venv "$TWILIO_VENV"; }
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing twilio-python from $TWILIO_LOCK"
    "$TWILIO_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$TWILIO_LOCK"
    echo "$want" >"$stamp"
  fi
}

# Node 20+ and npm (Debian's packages) for clients/js and its tests.
ensure_node() {
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ "$major" -lt 20 ] || ! command -v npm >/dev/null; then
    log "installing nodejs and npm (Debian)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
}

# Debian's chromium for the demo page test (playwright-core drives it; no browser
# is ever downloaded).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  log "installing chromium (Debian)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

# clients/js built from its lock file (dist/ for the tests), and the Flex plugin
# sample type-checked against it.
build_js_clients() {
  ensure_node
  log "building clients/js and type-checking clients/flex-plugin-sample (npm ci)"
  (cd "$ROOT/clients/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build)
  (cd "$ROOT/clients/flex-plugin-sample" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent typecheck)
}

# schemathesis exactly as locked, in its own venv (scripts/test runs it against the
# app through tests/tests/api/openapi.rs); reinstalled when the lock changes.
SCHEMATHESIS_VENV="$ROOT/.venv/schemathesis"
SCHEMATHESIS_LOCK="$ROOT/tests/clients/schemathesis/requirements.lock"
ensure_schemathesis() {
  local stamp="$SCHEMATHESIS_VENV/.lock-sha256" want
  want="$(sha256sum "$SCHEMATHESIS_LOCK" | cut -d' ' -f1)"
  [ -x "$SCHEMATHESIS_VENV/bin/python" ] || { log "creating $SCHEMATHESIS_VENV"; python3 -m venv "$SCHEMATHESIS_VENV"; }
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing schemathesis from $SCHEMATHESIS_LOCK"
    "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$SCHEMATHESIS_LOCK"
    echo "$want" >"$stamp"
  fi
}

# The Node clients with `npm ci` from the lock file (Debian's nodejs and npm if
# missing); the lock's hash is kept in node_modules so a changed lock reinstalls.
ensure_node_clients() {
  local stamp="$NODE_CLIENTS/node_modules/.lock-sha256" want
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing nodejs and npm (Debian)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
  fi
  want="$(sha256sum "$NODE_CLIENTS/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the Node clients from $NODE_CLIENTS/package-lock.json"
    (cd "$NODE_CLIENTS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
  fi
}

# Builds what the benchmarks run, always as one and the same cargo invocation per
# profile, so cargo unifies the same features each time and a second bench script
# rebuilds nothing: dev = what scripts/test builds; otherwise every function, the
# local runner and the tests crate's binaries (LTO off, parallel codegen, so a
# release build takes minutes on 2 cores). Prints the binaries' directory.
build_bench_bins() {
  local profile="$1" packages=() dir
  if [ "$profile" = dev ]; then
    cargo build --locked --workspace --all-targets >&2
    echo "$ROOT/target/debug"
    return
  fi
  for dir in "$ROOT"/functions/*/; do packages+=(-p "$(basename "$dir")"); done
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo build --profile "$profile" --locked "${packages[@]}" -p chat-media-local -p chat-media-tests --bins >&2
  echo "$ROOT/target/$profile"
}

# Waits until URL answers (any HTTP status), or fails after ~30 s.
wait_http() {
  local url="$1" name="$2"
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  log "$name did not start; its log:"
  cat "${3:-/dev/null}" >&2 || true
  return 1
}

# Starts ministack (DynamoDB, and Secrets Manager for the deployed credential path) on PORT; persists under STATE_DIR when given.
start_dynamodb() {
  local port="$1" logfile="$2" state_dir="${3:-}"
  local persist=0
  [ -n "$state_dir" ] && persist=1 && mkdir -p "$state_dir"
  BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" SERVICES=dynamodb,secretsmanager LOG_LEVEL=WARNING \
    PERSIST_STATE="$persist" STATE_DIR="${state_dir:-/tmp/unused}" \
    "$VENV/bin/ministack" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/_ministack/health" "ministack" "$logfile"
  log "DynamoDB (ministack $MINISTACK_VERSION) on 127.0.0.1:$port, pid ${PIDS[-1]}"
}

# clamd from Debian's clamav-daemon. The package's own services stay stopped
# (policy-rc.d) and no official signatures are downloaded: tests bring their own.
CLAMD_BIN=""
ensure_clamd() {
  CLAMD_BIN="$(command -v clamd || true)"
  [ -z "$CLAMD_BIN" ] && [ -x /usr/sbin/clamd ] && CLAMD_BIN=/usr/sbin/clamd
  [ -n "$CLAMD_BIN" ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null \
      && $sudo chmod +x "$policy" && added_policy=1
  fi
  log "installing clamav-daemon (Debian)"
  local rc=0
  { $sudo apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clamav-daemon >/dev/null; } || rc=$?
  [ "$added_policy" -eq 1 ] && $sudo rm -f "$policy"
  [ "$rc" -eq 0 ] || { log "installing clamav-daemon failed"; return "$rc"; }
  CLAMD_BIN="$(command -v clamd || echo /usr/sbin/clamd)"
}

# Our only signature: the EICAR test string (hex below) as an .ndb body signature;
# clamd reports it as ChatMedia.Test.EICAR.UNOFFICIAL. ClamAV itself ships none.
EICAR_HEX="58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a"

# PING -> PONG on 127.0.0.1:PORT; succeeds when clamd answers (bash /dev/tcp, no tools).
clamd_ping() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'zPING\0' >&3 \
      && IFS= read -r -d '' -t 2 reply <&3 && [ "$reply" = PONG ] ) 2>/dev/null
}

# Starts clamd on 127.0.0.1:PORT with config, signatures, pid file and temp files
# in DIR, logging to LOG. MAX (default 200M) is StreamMaxLength and MaxFileSize:
# keep it above the largest upload (150 MB), or large files pass unscanned.
# AlertExceedsMax turns anything beyond the limits into a detection, never "OK".
# Runs as the current user (no User directive), root included.
start_clamd() {
  local port="$1" dir="$2" logfile="$3" max="${4:-200M}"
  [ -n "$CLAMD_BIN" ] || ensure_clamd
  mkdir -p "$dir/tmp"
  echo "ChatMedia.Test.EICAR:0:*:$EICAR_HEX" >"$dir/chat-media-test.ndb"
  printf '%s\n' \
    "TCPAddr 127.0.0.1" \
    "TCPSocket $port" \
    "Foreground yes" \
    "DatabaseDirectory $dir" \
    "TemporaryDirectory $dir/tmp" \
    "PidFile $dir/clamd.pid" \
    "LogFile $logfile" \
    "LogTime yes" \
    "StreamMaxLength $max" \
    "MaxFileSize $max" \
    "MaxScanSize 400M" \
    "AlertExceedsMax yes" \
    "ConcurrentDatabaseReload no" >"$dir/clamd.conf"
  local started pid i
  started=$(date +%s%N)
  "$CLAMD_BIN" --config-file="$dir/clamd.conf" >"$dir/clamd.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for i in $(seq 1 1500); do
    if clamd_ping "$port"; then
      local ms=$(( ($(date +%s%N) - started) / 1000000 ))
      local rss; rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status" 2>/dev/null || echo "?")
      log "clamd ($("$CLAMD_BIN" --version)) on 127.0.0.1:$port, pid $pid, ready in ${ms} ms, RSS ${rss} MB"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  log "clamd did not start; its output and log:"
  cat "$dir/clamd.out" "$logfile" >&2 2>/dev/null || true
  return 1
}

stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
