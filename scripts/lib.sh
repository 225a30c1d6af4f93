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
PIDS=()
export SAM_CLI_TELEMETRY=0

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

# Starts ministack (DynamoDB only) on PORT; persists under STATE_DIR when given.
start_dynamodb() {
  local port="$1" logfile="$2" state_dir="${3:-}"
  local persist=0
  [ -n "$state_dir" ] && persist=1 && mkdir -p "$state_dir"
  BIND_HOST=127.0.0.1 GATEWAY_PORT="$port" SERVICES=dynamodb LOG_LEVEL=WARNING \
    PERSIST_STATE="$persist" STATE_DIR="${state_dir:-/tmp/unused}" \
    "$VENV/bin/ministack" >"$logfile" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/_ministack/health" "ministack" "$logfile"
  log "DynamoDB (ministack $MINISTACK_VERSION) on 127.0.0.1:$port, pid ${PIDS[-1]}"
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
